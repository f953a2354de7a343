//! Polling: a job is followed to its end holding its slot, recorded at every change of
//! status, given up at its expiry. When to ask again is [`PollSchedule`]'s: pure, and
//! tested alone.

use super::*;

impl Run {
    /// Polls a job to its end (holding its slot), records it, then downloads its videos.
    pub(super) async fn follow(
        &self,
        work: &ShotWork,
        job_id: String,
        slot: Option<crate::slots::Slot>,
        first: Option<Job>,
    ) -> Result<(), ShotError> {
        let id = &work.plan.id;
        let started = tokio::time::Instant::now();
        let expected = self.schedule.expected(workload(&work.plan.shot));
        let mut last_status = first.as_ref().map(|j| j.status_raw.clone());
        let mut wait = self.schedule.next_wait(expected, Duration::ZERO, None);
        let mut failures = 0u32;
        let model = self.wire_model(&work.plan.shot.model);
        let job = loop {
            tokio::time::sleep(wait).await;
            let (job, hint) = match self.client.get(&job_id, &model).await {
                Ok(x) => x,
                Err(ApiError::NotFound { .. }) => {
                    self.record_job_failed(
                        id,
                        &job_id,
                        "not_found",
                        "the job no longer exists at the service (expired or deleted)",
                    )?;
                    return Err(ShotError::Job(format!(
                        "job {job_id} no longer exists at the service (expired or deleted); run again to re-render"
                    )));
                }
                Err(e) if e.is_fatal() => {
                    return Err(self.api_failure("failed to check the job", e));
                }
                // The job runs on (and is paid for) whatever the network does: keep its slot
                // and keep asking, more slowly, for as long as the job can exist.
                Err(e) if failures < MAX_POLL_FAILURES => {
                    failures += 1;
                    wait = self.config.poll_max;
                    self.emit(Event::Retry {
                        id: id.clone(),
                        what: format!("status of job {job_id}"),
                        attempt: failures,
                        delay_ms: wait.as_millis() as u64,
                        reason: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(self.api_failure("failed to check the job", e)),
            };
            failures = 0;
            let unknown = !JobStatus::is_known_word(&job.status_raw);
            if last_status.as_deref() != Some(job.status_raw.as_str()) {
                last_status = Some(job.status_raw.clone());
                if unknown {
                    self.emit(Event::Notice {
                        message: format!(
                            "`{id}`: job {job_id} reports a status shotlist does not know, `{}`; asking again slowly until it ends or expires",
                            job.status_raw
                        ),
                    });
                }
                self.recorder
                    .job(id, &job_id, |j| {
                        j.service_status = Some(job.status_raw.clone());
                        j.expires_at = job.expires_at.and_then(ts).or(j.expires_at);
                    })
                    .map_err(ShotError::from)?;
            }
            self.emit(Event::JobStatus {
                id: id.clone(),
                job: job_id.clone(),
                status: job.status_raw.clone(),
                progress: job.progress,
                queue_position: job.queue_position,
            });
            if job.status.is_terminal() {
                break job;
            }
            // A job never outlives its expiry: one still "running" then (or in a state no
            // one documents) will not deliver, so it is given up, recorded, not polled on.
            let expiry = self.recorder.shot(id).and_then(|s| {
                s.jobs.iter().find(|j| j.id == job_id).map(|j| {
                    j.expires_at.unwrap_or_else(|| {
                        let retention = jiff::SignedDuration::from_secs(
                            self.client.facts().retention_seconds as i64,
                        );
                        j.created_at
                            .checked_add(retention)
                            .unwrap_or(Timestamp::MAX)
                    })
                })
            });
            if expiry.is_some_and(|e| e <= self.now()) {
                let message = format!(
                    "job {job_id} was still `{}` when it expired; run again to render it anew",
                    job.status_raw
                );
                self.record_job_failed(id, &job_id, "expired_unfinished", &message)?;
                return Err(ShotError::Job(message));
            }
            let elapsed = started.elapsed();
            // The server's hint is a floor: never sooner than it asks, later if the job is
            // far from done.
            let ours = self.schedule.next_wait(expected, elapsed, job.progress);
            wait = if unknown {
                self.schedule.with_hint(Duration::MAX, None)
            } else {
                self.schedule.with_hint(ours, hint.after)
            };
        };
        drop(slot);
        match job.status {
            // A job's videos are taken only if the job is this shot's: a lockfile pointing
            // at another shot's job (edited, merged badly) must not make its videos ours.
            JobStatus::Succeeded if !job.matches(&self.request_for(work)) => {
                let message = format!(
                    "job {job_id} is not this shot's: the service says it was asked for {}; not taking its videos (run again to render the shot)",
                    describe_request(&job)
                );
                self.record_job_failed(id, &job_id, "not_this_shot", &message)?;
                Err(ShotError::Job(message))
            }
            JobStatus::Succeeded => {
                if first.is_some() {
                    self.schedule
                        .learn(workload(&work.plan.shot), started.elapsed());
                }
                // A job lists as many videos as it was asked for; more is a protocol error
                // that must never turn into extra files, fewer cannot be trusted.
                let per_job = self.per_job();
                let expected = if per_job {
                    work.plan.shot.variants as usize
                } else {
                    1
                };
                if job.generations.len() < expected {
                    let message = format!(
                        "job {job_id} succeeded but lists {} of {expected} videos",
                        job.generations.len()
                    );
                    self.record_job_failed(id, &job_id, "incomplete", &message)?;
                    return Err(ShotError::Job(message));
                }
                let generations: Vec<String> =
                    job.generations.iter().take(expected).cloned().collect();
                self.recorder
                    .job(id, &job_id, |j| {
                        j.status = JobState::Succeeded;
                        j.service_status = Some(job.status_raw.clone());
                        j.finished_at =
                            Some(job.finished_at.and_then(ts).unwrap_or_else(|| self.now()));
                        j.expires_at = job.expires_at.and_then(ts).or(j.expires_at);
                        let job_variant = j.variant.max(1);
                        j.generations = generations
                            .iter()
                            .enumerate()
                            .map(|(i, g)| GenerationLock {
                                id: g.clone(),
                                variant: if per_job { i as u32 + 1 } else { job_variant },
                                file: None,
                                thumbnail: None,
                            })
                            .collect();
                    })
                    .map_err(ShotError::from)?;
                self.download_job(work, &job_id).await
            }
            status => {
                let failure = job.failure.clone().unwrap_or(crate::api::Failure {
                    code: None,
                    message: None,
                    revised_prompt: None,
                });
                let code = failure.code.clone().unwrap_or_else(|| status.to_string());
                let mut message = failure
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("the job ended `{}`", job.status_raw));
                if message.trim().is_empty() {
                    message = code.clone();
                }
                self.recorder
                    .job(id, &job_id, |j| {
                        j.status = if status == JobStatus::Cancelled {
                            JobState::Cancelled
                        } else {
                            JobState::Failed
                        };
                        j.service_status = Some(job.status_raw.clone());
                        j.finished_at =
                            Some(job.finished_at.and_then(ts).unwrap_or_else(|| self.now()));
                        j.failure = Some(lockfile::Failure {
                            code: code.clone(),
                            message: message.clone(),
                            revised_prompt: failure.revised_prompt.clone(),
                        });
                    })
                    .map_err(ShotError::from)?;
                let mut text = format!("job {job_id} {}: {code}: {message}", job.status_raw);
                if let Some(rp) = &failure.revised_prompt {
                    text.push_str(&format!(" (revised prompt: {rp})"));
                }
                Err(ShotError::Job(text))
            }
        }
    }

    /// Records that a job ended without a usable video, in the given words.
    pub(super) fn record_job_failed(
        &self,
        id: &str,
        job_id: &str,
        code: &str,
        message: &str,
    ) -> Result<(), ShotError> {
        self.recorder
            .job(id, job_id, |j| {
                j.status = JobState::Failed;
                j.finished_at = Some(self.now());
                j.failure = Some(lockfile::Failure {
                    code: code.into(),
                    message: message.into(),
                    revised_prompt: None,
                });
            })
            .map_err(ShotError::from)
    }
}

/// What a job says it was asked for, in words (never its whole prompt).
fn describe_request(job: &Job) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &job.prompt {
        let short: String = p.chars().take(40).collect();
        parts.push(format!(
            "prompt `{short}{}`",
            if p.chars().count() > 40 { "..." } else { "" }
        ));
    }
    if let Some(size) = job.size {
        parts.push(format!("size {size}"));
    }
    if let Some(s) = job.seconds {
        parts.push(format!("{s} seconds"));
    }
    if parts.is_empty() {
        "something else".into()
    } else {
        parts.join(", ")
    }
}

/// When to ask about a job again. Pure: durations in, durations out; what it learns is
/// the pace of finished jobs (seconds per unit of work), so later estimates fit.
#[derive(Debug)]
pub struct PollSchedule {
    poll_min: Duration,
    poll_max: Duration,
    estimate_min: Duration,
    estimate_max: Duration,
    /// Seconds per unit of work (seconds x pixels x variants), learned from finished jobs.
    pace: Mutex<Option<f64>>,
}

impl PollSchedule {
    pub fn new(config: &Config) -> PollSchedule {
        PollSchedule {
            poll_min: config.poll_min,
            poll_max: config.poll_max,
            estimate_min: config.estimate_min,
            estimate_max: config.estimate_max,
            pace: Mutex::new(None),
        }
    }

    /// What a job of `workload` should take, from what this run has seen (or the prior:
    /// the documented range, by workload).
    pub fn expected(&self, workload: u64) -> Duration {
        match *self.pace.lock().expect("pace lock") {
            Some(secs_per_unit) => Duration::from_secs_f64(secs_per_unit * workload as f64),
            None => {
                let share = (workload as f64 / max_workload() as f64).min(1.0);
                self.estimate_min + (self.estimate_max - self.estimate_min).mul_f64(share)
            }
        }
    }

    /// A job of `workload` took `took` from create to end.
    pub fn learn(&self, workload: u64, took: Duration) {
        let sample = took.as_secs_f64() / workload.max(1) as f64;
        let mut pace = self.pace.lock().expect("pace lock");
        *pace = Some(match *pace {
            Some(old) => old * 0.7 + sample * 0.3,
            None => sample,
        });
    }

    /// Waits long while the job is far from done, short once it is due: few requests,
    /// quick notice of completion. Past its expected end, a job is polled at a seventh of
    /// its age, so noticing the end costs at most ~15% more time whatever the estimate.
    pub fn next_wait(
        &self,
        expected: Duration,
        elapsed: Duration,
        progress: Option<u8>,
    ) -> Duration {
        let remaining = match progress {
            Some(p) if p > 0 && p < 100 => elapsed.mul_f64(f64::from(100 - p) / f64::from(p)),
            _ => expected.saturating_sub(elapsed),
        };
        let wait = if remaining.is_zero() {
            elapsed / 7
        } else {
            remaining / 2
        };
        wait.clamp(self.poll_min, self.poll_max)
    }

    /// The server's hint is a floor: never sooner than it asks, later when the job is far
    /// from done; always within `poll_min..=poll_max`.
    pub fn with_hint(&self, ours: Duration, hint: Option<Duration>) -> Duration {
        hint.map_or(ours, |h| h.max(ours))
            .clamp(self.poll_min, self.poll_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> PollSchedule {
        PollSchedule::new(&Config::for_service())
    }

    #[test]
    fn far_from_done_waits_long_and_never_past_the_bounds() {
        let s = schedule();
        let expected = Duration::from_secs(300);
        assert_eq!(
            s.next_wait(expected, Duration::ZERO, None),
            Duration::from_secs(60)
        );
        assert_eq!(
            s.next_wait(expected, Duration::from_secs(290), None),
            Duration::from_secs(5)
        );
        assert_eq!(
            s.next_wait(expected, Duration::from_secs(299), None),
            Duration::from_secs(2),
            "never sooner than poll_min"
        );
        // Progress wins over the estimate: 25% after 60 s leaves 180 s, so wait 60 (cap).
        assert_eq!(
            s.next_wait(expected, Duration::from_secs(60), Some(25)),
            Duration::from_secs(60)
        );
        // 90% after 60 s leaves about 6.7 s: wait half of it.
        let near = s.next_wait(expected, Duration::from_secs(60), Some(90));
        assert!((3.3..3.4).contains(&near.as_secs_f64()), "{near:?}");
    }

    #[test]
    fn a_hint_is_a_floor_within_the_bounds() {
        let s = schedule();
        let ours = Duration::from_secs(10);
        assert_eq!(
            s.with_hint(ours, Some(Duration::from_secs(20))),
            Duration::from_secs(20)
        );
        assert_eq!(s.with_hint(ours, Some(Duration::from_secs(1))), ours);
        assert_eq!(
            s.with_hint(ours, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn learning_moves_the_estimate_to_what_jobs_take() {
        let s = schedule();
        let w = 5 * 480 * 480;
        assert!(s.expected(w) >= Duration::from_secs(60));
        s.learn(w, Duration::from_secs(20));
        assert_eq!(s.expected(w), Duration::from_secs(20));
        s.learn(w, Duration::from_secs(40));
        assert_eq!(s.expected(w), Duration::from_secs(26));
    }

    /// Following the schedule on a paused clock: a job that ends at any time between far
    /// before and far after its estimate is noticed within 15% of its end (plus a
    /// `poll_min`, or a minute at most), with few polls.
    #[tokio::test(start_paused = true)]
    async fn on_a_paused_clock_the_end_is_noticed_soon_with_few_polls() {
        let s = schedule();
        let expected = Duration::from_secs(120);
        for ends in [30u64, 90, 120, 200, 600, 1800] {
            let ends = Duration::from_secs(ends);
            let started = tokio::time::Instant::now();
            let mut polls = 0;
            let mut wait = s.next_wait(expected, Duration::ZERO, None);
            let noticed = loop {
                tokio::time::sleep(wait).await;
                polls += 1;
                let elapsed = started.elapsed();
                if elapsed >= ends {
                    break elapsed;
                }
                wait = s.with_hint(s.next_wait(expected, elapsed, None), None);
            };
            let late = noticed - ends;
            assert!(
                late <= ends.mul_f64(0.15) + Duration::from_secs(2)
                    || late <= Duration::from_secs(60),
                "a job ending at {ends:?} was noticed {late:?} late"
            );
            // A dozen polls plus one a minute at most (polling every 5 s takes ends / 5).
            let bound = 12 + ends.as_secs() / 60;
            assert!(polls <= bound, "{polls} polls for a job of {ends:?}");
        }
    }
}
