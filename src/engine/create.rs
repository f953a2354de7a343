//! Create and reconcile: the write-ahead mark, one create at a time per shot, and a
//! create whose answer was lost found by listing before any second create (or, where
//! the provider cannot list, never sent again unless forced).

use super::*;

impl Run {
    /// Creates one job; reconciles a lost response before ever creating again.
    ///
    /// A shot's creates run one at a time, so that a reconciliation never mistakes the
    /// job of a sibling variant (same request) for its own.
    pub(super) async fn create(&self, work: &ShotWork, index: usize) -> Result<Job, ShotError> {
        let _one_at_a_time = work.creating.lock().await;
        let id = &work.plan.id;
        let req = self.request_with_images(work).await?;
        // A shot the cap stops keeps its old jobs: check before cancelling them.
        self.check_budget(work, &req)?;
        self.cancel_outdated(work).await?;
        // A create sent by an earlier run that died before recording its job: look first.
        let earlier = self
            .recorder
            .shot(id)
            .and_then(|s| s.creating.get(&(index as u32)).copied());
        if let Some(sent) = earlier
            && !self.client.can_list()
            && !self.config.force
        {
            return Err(ShotError::NotSent(format!(
                "a create sent at {sent} may have made a job, and this provider cannot list its jobs to find it; not sending another (check the provider's dashboard, then run with --force to render it anew)"
            )));
        }
        if let Some(sent) = earlier.filter(|_| self.client.can_list()) {
            match self.reconcile(&req, sent.as_second() - 120, 1).await {
                Ok(Some(job)) => return self.adopt(work, index, job),
                Ok(None) => {}
                Err(e) => {
                    return Err(
                        self.api_failure("failed to look for a job an earlier run created", e)
                    );
                }
            }
        }
        let since = self.now().as_second() - 120;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // Every attempt that may make a job is charged against the cap, a retry of a
            // lost create too: it may be a second paid job.
            let estimate = self.reserve(work, &req)?;
            let marked = self.recorder.update(|l| {
                self.ensure_entry(l, work);
                if let Some(shot) = l.shots.get_mut(id) {
                    shot.creating.insert(index as u32, self.now());
                }
            });
            if let Err(e) = marked {
                // Not marked, so not sent: nothing to pay.
                self.refund(estimate.as_ref());
                return Err(e.into());
            }
            match self.client.create(&req).await {
                Ok(job) => {
                    self.record_created(work, index, &job)?;
                    self.jobs_created.fetch_add(1, Ordering::SeqCst);
                    self.emit(Event::JobCreated {
                        id: id.clone(),
                        job: job.id.clone(),
                    });
                    return Ok(job);
                }
                Err(ApiError::CreateOutcomeUnknown { message, .. }) if !self.client.can_list() => {
                    // The mark stays: the next run refuses to create again unless forced.
                    return Err(ShotError::NotSent(format!(
                        "the answer to the create was lost ({message}) and this provider cannot list its jobs: the job may exist and is not sent again; check the provider's dashboard, then run with --force to render it anew"
                    )));
                }
                Err(ApiError::CreateOutcomeUnknown { .. }) => {
                    // The request may have reached the service, which may still be making
                    // the job: look a few times, waiting longer each time, before creating
                    // again.
                    match self.reconcile(&req, since, 3).await {
                        Ok(Some(job)) => return self.adopt(work, index, job),
                        Ok(None) if attempt < 4 => {
                            self.emit(Event::Retry {
                                id: id.clone(),
                                what: format!("create (job {})", index + 1),
                                attempt,
                                delay_ms: 0,
                                reason: "the response was lost and no such job appeared".into(),
                            });
                        }
                        Ok(None) => {
                            return Err(ShotError::NotSent(
                                "failed to create the job: the connection was lost repeatedly"
                                    .into(),
                            ));
                        }
                        Err(e) => {
                            return Err(self.api_failure(
                                "failed to look for the job after a lost response",
                                e,
                            ));
                        }
                    }
                }
                Err(e) => {
                    // The service answered: no job was made, nothing to pay.
                    self.refund(estimate.as_ref());
                    let _ = self.recorder.update(|l| {
                        if let Some(shot) = l.shots.get_mut(id) {
                            shot.creating.remove(&(index as u32));
                        }
                    });
                    return Err(self.api_failure("failed to create the job", e));
                }
            }
        }
    }

    /// The estimated charge of one create of `req` for `work`'s shot, committed to this
    /// run's spend; refused when the cap would be passed (the shot is then noted).
    pub(super) fn reserve(
        &self,
        work: &ShotWork,
        req: &JobRequest,
    ) -> Result<Option<crate::cost::Money>, ShotError> {
        let mut spend = self.spend.lock().expect("spend lock");
        // A second currency is not added to the first: it counts as unknown.
        let estimate = self
            .job_estimate(work, req)
            .filter(|m| spend.currency.as_ref().is_none_or(|c| *c == m.currency));
        if let Some(budget) = &self.config.budget
            && let Err(why) = crate::cost::fits(budget, spend.committed, estimate.as_ref())
        {
            spend.over_budget.insert(work.plan.id.clone());
            return Err(ShotError::OverBudget(format!(
                "a job of `{}`: {why}",
                work.plan.id
            )));
        }
        match &estimate {
            Some(m) => {
                spend.committed += m.amount;
                spend.currency.get_or_insert_with(|| m.currency.clone());
            }
            None => spend.unknown += 1,
        }
        Ok(estimate)
    }

    /// The estimated charge of one job of `req` (seconds × the takes in it).
    fn job_estimate(&self, work: &ShotWork, req: &JobRequest) -> Option<crate::cost::Money> {
        crate::cost::estimate(
            &self.storyboard.catalogue,
            self.storyboard.api,
            &work.plan.shot,
            u64::from(req.seconds) * u64::from(req.variants),
        )
    }

    /// Whether one create of `req` would fit the cap now (nothing is committed).
    pub(super) fn check_budget(&self, work: &ShotWork, req: &JobRequest) -> Result<(), ShotError> {
        let Some(budget) = &self.config.budget else {
            return Ok(());
        };
        let estimate = self.job_estimate(work, req);
        let mut spend = self.spend.lock().expect("spend lock");
        crate::cost::fits(budget, spend.committed, estimate.as_ref()).map_err(|why| {
            spend.over_budget.insert(work.plan.id.clone());
            ShotError::OverBudget(format!("a job of `{}`: {why}", work.plan.id))
        })
    }

    /// Gives back a reservation whose create made no job.
    pub(super) fn refund(&self, estimate: Option<&crate::cost::Money>) {
        let mut spend = self.spend.lock().expect("spend lock");
        match estimate {
            Some(m) => spend.committed -= m.amount,
            None => spend.unknown = spend.unknown.saturating_sub(1),
        }
    }

    /// Before a render's first create: cancel the shot's outdated jobs still alive at the
    /// service. If one cannot be cancelled, nothing is created: a shot never has two jobs
    /// running, and the outdated one stays recorded.
    pub(super) async fn cancel_outdated(&self, work: &ShotWork) -> Result<(), ShotError> {
        if work.plan.action != Action::Render || work.entry_started.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(old) = self.recorder.shot(&work.plan.id) else {
            return Ok(());
        };
        // The model the old jobs were sent for (a changed model is what made them outdated).
        let model = self.wire_model(&old.model);
        for job in old.jobs.iter().filter(|j| j.status.is_alive()) {
            if !self.client.can_cancel() {
                let message = "outdated by a new render; the service cannot cancel it, so it runs to its end (and is billed)";
                self.record_outdated(&work.plan.id, &job.id, message)?;
                self.emit(Event::Notice {
                    message: format!("`{}`: job {}: {message}", work.plan.id, job.id),
                });
                continue;
            }
            match self.client.delete(&job.id, &model).await {
                Ok(()) => {
                    self.record_outdated(
                        &work.plan.id,
                        &job.id,
                        "cancelled: outdated by a new render",
                    )?;
                    self.emit(Event::Notice {
                        message: format!("cancelled outdated job {} of `{}`", job.id, work.plan.id),
                    })
                }
                Err(e) => {
                    let what = format!(
                        "failed to cancel the outdated job {} (still running; not starting a second one)",
                        job.id
                    );
                    return Err(self.api_failure(&what, e));
                }
            }
        }
        Ok(())
    }

    /// Records an outdated job as cancelled (the ledger keeps it, as paid for).
    fn record_outdated(&self, id: &str, job_id: &str, message: &str) -> Result<(), ShotError> {
        self.recorder
            .job(id, job_id, |j| {
                j.status = JobState::Cancelled;
                j.failure = Some(lockfile::Failure {
                    code: "outdated".into(),
                    message: message.into(),
                    revised_prompt: None,
                });
            })
            .map_err(ShotError::from)
    }

    /// A render starts the shot's lockfile entry afresh, once per run, with its first
    /// create (called under the recorder's lock, so concurrent variant creates agree).
    /// Creates an earlier run sent whose job is unknown stay marked: they may have made
    /// a paid job, and the take's create must look for it (or refuse) before another.
    pub(super) fn ensure_entry(&self, l: &mut lockfile::Lockfile, work: &ShotWork) {
        if work.plan.action == Action::Render && !work.entry_started.swap(true, Ordering::SeqCst) {
            let mut entry = self.new_entry(&work.plan);
            if let Some(old) = l.shots.get(&work.plan.id) {
                entry.creating = old.creating.clone();
            }
            l.shots.insert(work.plan.id.clone(), entry);
        }
    }

    pub(super) fn new_entry(&self, sp: &ShotPlan) -> ShotLock {
        ShotLock {
            input_hash: sp.input_hash.clone().unwrap_or_else(|| {
                sp.inputs
                    .as_ref()
                    .map_or_else(String::new, RenderInputs::hash)
            }),
            api: self.storyboard.api,
            endpoint: self.endpoint.clone(),
            model: sp.shot.model.clone(),
            inputs: Some(
                sp.inputs
                    .clone()
                    .unwrap_or_else(|| RenderInputs::of(self.storyboard.api, &sp.shot)),
            ),
            request: serde_json::Value::Null,
            jobs: Vec::new(),
            creating: Default::default(),
            source: None,
        }
    }

    pub(super) fn adopt(&self, work: &ShotWork, index: usize, job: Job) -> Result<Job, ShotError> {
        self.record_created(work, index, &job)?;
        self.jobs_created.fetch_add(1, Ordering::SeqCst);
        self.emit(Event::JobAdopted {
            id: work.plan.id.clone(),
            job: job.id.clone(),
        });
        Ok(job)
    }

    /// Finds the job a lost create made: same request, created since, not known already.
    /// Looks up to `looks` times, waiting longer before each look after the first: a
    /// service may list a job only some time after the create that made it.
    pub(super) async fn reconcile(
        &self,
        req: &JobRequest,
        since: i64,
        looks: u32,
    ) -> Result<Option<Job>, ApiError> {
        for look in 0..looks {
            if look > 0 {
                tokio::time::sleep(self.config.poll_min * (1 << look)).await;
            }
            let jobs = self.client.list_recent(since).await?;
            let known = self.known_jobs.lock().expect("known lock").clone();
            let found = jobs
                .into_iter()
                .filter(|j| j.matches(req) && !known.contains(&j.id))
                .min_by_key(|j| j.created_at);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    pub(super) fn record_created(
        &self,
        work: &ShotWork,
        index: usize,
        job: &Job,
    ) -> Result<(), ShotError> {
        self.known_jobs
            .lock()
            .expect("known lock")
            .insert(job.id.clone());
        let takes = if self.per_job() {
            work.plan.shot.variants
        } else {
            1
        };
        let estimated_cost = crate::cost::estimate(
            &self.storyboard.catalogue,
            self.storyboard.api,
            &work.plan.shot,
            u64::from(work.plan.shot.seconds) * u64::from(takes),
        );
        let lock = JobLock {
            estimated_cost,
            run: Some(self.origin.0),
            id: job.id.clone(),
            variant: if self.per_job() { 0 } else { index as u32 + 1 },
            status: JobState::Pending,
            service_status: Some(job.status_raw.clone()),
            created_at: ts(job.created_at).unwrap_or_else(|| self.now()),
            finished_at: None,
            expires_at: job.expires_at.and_then(ts),
            failure: None,
            generations: Vec::new(),
        };
        self.recorder
            .update(|l| {
                self.ensure_entry(l, work);
                if let Some(shot) = l.shots.get_mut(&work.plan.id) {
                    shot.creating.remove(&(index as u32));
                    shot.jobs.retain(|j| j.id != lock.id);
                    shot.jobs.push(lock);
                }
            })
            .map_err(ShotError::from)
    }
}
