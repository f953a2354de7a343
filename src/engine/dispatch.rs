//! Dispatch: the order of the work, the slots, the stop, and the run's summary. Shots
//! are prepared into items (create, poll, download), downloads start at once, jobs get
//! slots by priority (jobs already running first, then the longest).

use std::collections::HashMap;

use super::*;

/// Runs the plan to the end (or to a stop). Fresh shots are skipped.
pub async fn run(
    client: Client,
    storyboard: Storyboard,
    plan: Plan,
    recorder: Arc<Recorder>,
    reporter: Arc<Reporter>,
    config: Config,
    stop: Arc<Stop>,
) -> Report {
    let known: HashSet<String> = recorder
        .snapshot()
        .shots
        .values()
        .flat_map(|s| s.jobs.iter().map(|j| j.id.clone()))
        .collect();
    // Tasks send their events here; this function alone hands them to the reporter, in
    // the order they were sent.
    let (events, mut inbox) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let forward = {
        let reporter = Arc::clone(&reporter);
        tokio::spawn(async move {
            while let Some(event) = inbox.recv().await {
                reporter.emit(event);
            }
        })
    };
    let run = Arc::new(Run {
        client,
        storyboard,
        recorder,
        events,
        slots: JobSlots::coordinated(config.max_jobs, config.coordinator.clone()),
        schedule: poll::PollSchedule::new(&config),
        config,
        stop,
        endpoint: plan.endpoint.clone(),
        jobs_created: AtomicU64::new(0),
        spend: Mutex::new(Spend::default()),
        known_jobs: Mutex::new(known),
        origin: (Timestamp::now(), tokio::time::Instant::now()),
        publishing: Mutex::default(),
    });
    // The misses the plan's lookups found count with the run's own.
    if let Some(cache) = run.cache() {
        let misses = plan
            .shots
            .iter()
            .filter(|sp| matches!(sp.cache, Some(plan::CacheStatus::Miss { .. })))
            .count();
        cache
            .stats
            .misses
            .fetch_add(misses as u64, Ordering::Relaxed);
    }

    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut works: Vec<Arc<ShotWork>> = Vec::new();
    let mut waiting: Vec<Arc<ShotWork>> = Vec::new();
    for sp in plan.shots {
        if sp.action == Action::Fresh {
            outcomes.push((sp.id.clone(), Outcome::Skipped));
            continue;
        }
        let work = Arc::new(ShotWork::new(sp));
        if work.plan.after.is_empty() {
            works.push(work);
        } else {
            waiting.push(work);
        }
    }
    // What each shot that waits is told when a shot it starts from is done.
    let signals: HashMap<String, tokio::sync::watch::Receiver<Option<bool>>> = works
        .iter()
        .chain(&waiting)
        .map(|w| (w.plan.id.clone(), w.done.subscribe()))
        .collect();
    // The works of the shots that waited, as planned again once they could start.
    let replanned: Arc<Mutex<Vec<Arc<ShotWork>>>> = Arc::default();

    // Longest jobs first: with two at a time, that shortens the whole run.
    works.sort_by_key(|w| std::cmp::Reverse(workload(&w.plan.shot)));
    let mut tasks = tokio::task::JoinSet::new();
    // Shots that start from frames of shots of this run wait for them, holding no slot.
    for work in &waiting {
        run.emit(Event::Shot {
            id: work.plan.id.clone(),
            action: work.plan.action.as_str().into(),
            reason: format!(
                "{}; waits for {}",
                work.plan.reason,
                quoted(&work.plan.after)
            ),
        });
        let (run, work, replanned) = (Arc::clone(&run), Arc::clone(work), Arc::clone(&replanned));
        let upstream: Vec<_> = work
            .plan
            .after
            .iter()
            .filter_map(|id| signals.get(id).cloned().map(|rx| (id.clone(), rx)))
            .collect();
        tasks.spawn(async move {
            let ready = run.wait_for(&work, upstream).await;
            let resolved = match ready {
                // Planning reads the lockfile and checks files: off the runtime's threads.
                Ok(()) => {
                    let (r, w) = (Arc::clone(&run), Arc::clone(&work));
                    match tokio::task::spawn_blocking(move || r.replan(&w)).await {
                        Ok(resolved) => resolved,
                        Err(_) => Arc::clone(&work),
                    }
                }
                Err(()) => {
                    run.finish_shot(&work);
                    return;
                }
            };
            replanned
                .lock()
                .expect("replanned lock")
                .push(Arc::clone(&resolved));
            let _ = work.done.send_replace(None);
            run.start(resolved, work).await;
        });
    }
    let mut queued: Vec<(u64, Arc<ShotWork>, Item)> = Vec::new();
    for work in &works {
        // What the cache has is taken at once, with no slot (and rendered if it fails).
        if let Some(plan::CacheStatus::Hit { entry }) = &work.plan.cache {
            run.emit(Event::Shot {
                id: work.plan.id.clone(),
                action: "cache".into(),
                reason: format!("{}; in the cache", work.plan.reason),
            });
            let (run, work, entry) = (Arc::clone(&run), Arc::clone(work), (**entry).clone());
            tasks.spawn(async move { run.take_or_render(work, entry).await });
            continue;
        }
        run.emit(Event::Shot {
            id: work.plan.id.clone(),
            action: work.plan.action.as_str().into(),
            reason: work.plan.reason.to_string(),
        });
        let items = match run.prepare(work).await {
            Ok(items) => items,
            Err(error) => {
                run.emit(Event::ShotFailed {
                    id: work.plan.id.clone(),
                    message: error.to_string(),
                });
                work.fail(&error);
                run.finish_shot(work);
                continue;
            }
        };
        work.remaining.store(items.len(), Ordering::SeqCst);
        if items.is_empty() {
            run.finish_shot(work);
        }
        for item in items {
            queued.push((item.priority(&work.plan.shot), Arc::clone(work), item));
        }
    }
    // Downloads need no slot: start them all. Then hand out slots in priority order (jobs
    // already running at the service first, then the longest), acquiring here so that
    // the order holds; a stop ends the hand-out of slots to new jobs.
    queued.sort_by_key(|(p, _, _)| std::cmp::Reverse(*p));
    let (downloads, jobs): (Vec<_>, Vec<_>) = queued
        .into_iter()
        .partition(|(_, _, item)| matches!(item, Item::Download { .. }));
    for (_, work, item) in downloads.into_iter().chain(jobs) {
        let Some(slot) = run.slot_for(&work, &item).await else {
            continue;
        };
        let run = Arc::clone(&run);
        tasks.spawn(async move {
            run.item(&work, item, slot).await;
            if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                run.finish_shot(&work);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    run.finish_publishing().await;

    let replanned = std::mem::take(&mut *replanned.lock().expect("replanned lock"));
    let replanned_ids: HashSet<String> = replanned.iter().map(|w| w.plan.id.clone()).collect();
    // A shot that waited is counted by its new plan, or as it was left when it could not
    // start.
    let works: Vec<Arc<ShotWork>> = works
        .into_iter()
        .chain(
            waiting
                .into_iter()
                .filter(|w| !replanned_ids.contains(&w.plan.id)),
        )
        .chain(replanned)
        .collect();
    for work in &works {
        let outcome = match work.state() {
            ShotState::Failed(message) => Outcome::Failed(message),
            ShotState::NotStarted => Outcome::NotStarted,
            ShotState::Working if work.from_cache.load(Ordering::SeqCst) => Outcome::Cached,
            ShotState::Working if work.plan.action == Action::Fresh => Outcome::Skipped,
            ShotState::Working if work.plan.action == Action::Download => Outcome::Downloaded,
            ShotState::Working if work.plan.action == Action::Reuse => Outcome::Reused,
            ShotState::Working => Outcome::Rendered,
        };
        outcomes.push((work.plan.id.clone(), outcome));
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let video_seconds: u64 = works
        .iter()
        .filter(|w| {
            w.plan.action == Action::Render
                && w.state() == ShotState::Working
                && !w.from_cache.load(Ordering::SeqCst)
        })
        .map(|w| w.plan.shot.video_seconds())
        .sum();
    let summary = Summary {
        rendered: count(|o| *o == Outcome::Rendered),
        downloaded: count(|o| *o == Outcome::Downloaded),
        reused: count(|o| *o == Outcome::Reused),
        skipped: count(|o| *o == Outcome::Skipped),
        failed: count(|o| matches!(o, Outcome::Failed(_))),
        jobs_created: run.jobs_created.load(Ordering::SeqCst),
        video_seconds,
        requests: run.client.requests(),
        wall_ms: reporter.elapsed().as_millis() as u64,
        interrupted: run.stop.requested() && run.stop.fatal_error().is_none(),
        cache: run.cache().map(|c| crate::reporter::CacheSummary {
            hits: c.stats.hits.load(Ordering::Relaxed),
            misses: c.stats.misses.load(Ordering::Relaxed),
            pulled_bytes: c.stats.pulled_bytes.load(Ordering::Relaxed),
            published: c.stats.published.load(Ordering::Relaxed),
            published_bytes: c.stats.published_bytes.load(Ordering::Relaxed),
            read_only: c.read_only(),
        }),
        ..Summary::default()
    };
    let (summary, over_budget) = {
        let spend = run.spend.lock().expect("spend lock");
        (
            Summary {
                estimated_spend: spend
                    .currency
                    .as_ref()
                    .map(|c| crate::cost::Money::new(spend.committed, c)),
                unknown_price_jobs: spend.unknown,
                over_budget: spend.over_budget.len(),
                ..summary
            },
            spend.over_budget.iter().cloned().collect::<Vec<_>>(),
        )
    };
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let fatal = run.stop.fatal_error();
    // Every event reaches the reporter before the summary does.
    drop(run);
    let _ = forward.await;
    Report {
        outcomes,
        summary,
        fatal,
        over_budget,
    }
}

/// `` `a`, `b` ``
fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Run {
    /// The slot an item needs (downloads need none); `None`: the run is stopping and the
    /// create is not started (the shot is finished when it was its last item).
    async fn slot_for(
        &self,
        work: &Arc<ShotWork>,
        item: &Item,
    ) -> Option<Option<crate::slots::Slot>> {
        let not_started = || {
            work.not_started();
            if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.finish_shot(work);
            }
        };
        let slot = match item {
            Item::Download { .. } => None,
            Item::Create { .. } if self.stop.requested() => {
                not_started();
                return None;
            }
            _ => match self.shared_slot(work, item).await {
                // The run stopped while the job waited for a slot.
                None => {
                    not_started();
                    return None;
                }
                Some(Ok(slot)) => Some(slot),
                // The coordinator went away: no new job starts without it (a job already
                // at the service always gets its slot and is followed to its end).
                Some(Err(why)) => {
                    self.stop.coordinator_gone(why);
                    not_started();
                    return None;
                }
            },
        };
        if matches!(item, Item::Create { .. }) && self.stop.requested() {
            not_started();
            return None;
        }
        Some(slot)
    }

    /// A job's slot (and, coordinated, the account's): a job already running at the
    /// service takes it whatever happens; a new one waits, and `None` when the run stops
    /// meanwhile (a first Ctrl-C is not kept waiting for other machines' jobs).
    async fn shared_slot(
        &self,
        work: &ShotWork,
        item: &Item,
    ) -> Option<Result<crate::slots::Slot, String>> {
        let priority = item.priority(&work.plan.shot);
        if matches!(item, Item::Poll { .. }) {
            return Some(self.slots.acquire_shared(priority, true).await);
        }
        tokio::select! {
            slot = self.slots.acquire_shared(priority, false) => Some(slot),
            () = self.stop.wait() => None,
        }
    }

    /// Waits until every shot `work` starts from is done; `Err`: one was not rendered (or
    /// the run is stopping), and `work` is left so (reported).
    async fn wait_for(
        &self,
        work: &ShotWork,
        upstream: Vec<(String, tokio::sync::watch::Receiver<Option<bool>>)>,
    ) -> Result<(), ()> {
        for (id, mut rx) in upstream {
            let rendered = match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(false),
                Err(_) => false,
            };
            if !rendered {
                if self.stop.requested() {
                    work.not_started();
                } else {
                    let error = ShotError::NotSent(format!(
                        "not started: upstream `{id}` was not rendered"
                    ));
                    self.emit(Event::ShotFailed {
                        id: work.plan.id.clone(),
                        message: error.to_string(),
                    });
                    work.fail(&error);
                }
                return Err(());
            }
        }
        Ok(())
    }

    /// The shot planned again now that the shots it starts from are rendered: its inputs
    /// are known, and its lockfile entry may say it is fresh after all.
    fn replan(&self, work: &ShotWork) -> Arc<ShotWork> {
        let options = plan::Options {
            endpoint: self.endpoint.clone(),
            verify: self.config.verify,
            force: work.plan.reason == plan::Reason::Forced,
            only: vec![work.plan.id.clone()],
            no_deps: true,
            ..plan::Options::default()
        };
        let lock = self.recorder.snapshot();
        let mut planned = plan::plan(&self.storyboard, &lock, &options);
        let sp = planned
            .shots
            .pop()
            .filter(|sp| sp.id == work.plan.id)
            .unwrap_or_else(|| work.plan.clone());
        Arc::new(ShotWork::new(sp))
    }

    /// Runs a shot that waited: its items, each with a slot as it needs, then tells the
    /// shots that wait for it. `waited` is the work it was planned as first (whose
    /// signal they hold).
    async fn start(self: &Arc<Self>, work: Arc<ShotWork>, waited: Arc<ShotWork>) {
        // The shots waiting for this one listen to the first plan's signal.
        let mut forward = work.done.subscribe();
        let relay = tokio::spawn(async move {
            let value = forward
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|v| *v);
            let _ = waited.done.send_replace(value);
        });
        if let Some(entry) = self.look_up(&work).await {
            self.emit(Event::Shot {
                id: work.plan.id.clone(),
                action: "cache".into(),
                reason: format!("{}; in the cache", work.plan.reason),
            });
            self.take_or_render(work, entry).await;
        } else {
            self.emit(Event::Shot {
                id: work.plan.id.clone(),
                action: work.plan.action.as_str().into(),
                reason: work.plan.reason.to_string(),
            });
            self.run_items(work).await;
        }
        let _ = relay.await;
    }

    /// Prepares a shot's items and runs them, each with a slot as it needs (for a shot
    /// not in the initial hand-out: one that waited, or a cache hit that failed).
    pub(super) async fn run_items(self: &Arc<Self>, work: Arc<ShotWork>) {
        let items = match self.prepare(&work).await {
            Ok(items) => items,
            Err(error) => {
                self.emit(Event::ShotFailed {
                    id: work.plan.id.clone(),
                    message: error.to_string(),
                });
                work.fail(&error);
                Vec::new()
            }
        };
        work.remaining.store(items.len(), Ordering::SeqCst);
        if items.is_empty() {
            self.finish_shot(&work);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for item in items {
            let Some(slot) = self.slot_for(&work, &item).await else {
                continue;
            };
            let (run, work) = (Arc::clone(self), Arc::clone(&work));
            tasks.spawn(async move {
                run.item(&work, item, slot).await;
                if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                    run.finish_shot(&work);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Sends an event to the reporter (through dispatch, the one that talks to it).
    pub(super) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Decides the items of one shot and records a new lockfile entry when rendering.
    pub(super) async fn prepare(&self, work: &ShotWork) -> Result<Vec<Item>, ShotError> {
        let sp = &work.plan;
        let shot = &sp.shot;
        if sp.action == Action::Reuse {
            let from = match &sp.reason {
                plan::Reason::Renamed { from } => from.as_str(),
                _ => sp.id.as_str(),
            };
            self.reuse(sp, from)?;
            return Ok(Vec::new());
        }
        let existing = self.recorder.shot(&sp.id);
        if sp.action == Action::Render {
            // The new entry is written with the first create (see `create`), so a shot
            // that a stop leaves unstarted keeps its old entry.
            return Ok((0..self.jobs_needed(shot))
                .map(|index| Item::Create { index })
                .collect());
        }
        let Some(entry) = existing else {
            return Err(ShotError::Files(
                "the lockfile entry vanished during the run".into(),
            ));
        };
        let per_job = self.per_job();
        let needs_download = |job: &JobLock| {
            job.generations.is_empty()
                || job.generations.iter().any(|g| {
                    g.file.as_ref().is_none_or(|f| {
                        plan::check_file(&self.storyboard.dir, f, self.config.verify)
                            != plan::FileState::Unchanged
                    })
                })
        };
        // The jobs that count: the shot's one job, or each variant's live or succeeded one.
        let current: Vec<&JobLock> = if per_job {
            entry
                .jobs
                .iter()
                .filter(|j| matches!(j.status, JobState::Pending | JobState::Succeeded))
                .collect()
        } else {
            (1..=shot.variants)
                .filter_map(|v| entry.job_for_variant(v))
                .collect()
        };
        let mut items = Vec::new();
        for job in current {
            match job.status {
                JobState::Pending => items.push(Item::Poll {
                    job: job.id.clone(),
                }),
                JobState::Succeeded if needs_download(job) => items.push(Item::Download {
                    job: job.id.clone(),
                }),
                _ => {}
            }
        }
        let to_create = plan::variants_to_create(per_job, shot, &entry);
        items.extend(to_create.into_iter().map(|v| Item::Create {
            index: v as usize - 1,
        }));
        Ok(items)
    }

    pub(super) async fn item(&self, work: &ShotWork, item: Item, slot: Option<crate::slots::Slot>) {
        let id = work.plan.id.clone();
        let result = match item {
            Item::Create { index } => match self.create(work, index).await {
                Ok(job) => self.follow(work, job.id.clone(), slot, Some(job)).await,
                Err(e) => Err(e),
            },
            Item::Poll { job } => self.follow(work, job, slot, None).await,
            Item::Download { job } => {
                drop(slot);
                self.download_job(work, &job).await
            }
        };
        if let Err(error) = result {
            self.emit(Event::ShotFailed {
                id: id.clone(),
                message: error.to_string(),
            });
            work.fail(&error);
        }
    }

    pub(super) fn finish_shot(&self, work: &ShotWork) {
        self.publish_later(work);
        let id = work.plan.id.clone();
        let _ = work
            .done
            .send_replace(Some(work.state() == ShotState::Working));
        match work.state() {
            // Already reported when it happened.
            ShotState::Failed(_) => {}
            ShotState::NotStarted => self.emit(Event::Notice {
                message: format!("`{id}` not started: the run is stopping"),
            }),
            ShotState::Working => self.emit(Event::ShotDone {
                id,
                elapsed_ms: work.started.elapsed().as_millis() as u64,
            }),
        }
    }

    /// Turns a client error into the shot's message; a rejected credential stops the run.
    pub(super) fn api_failure(&self, what: &str, e: ApiError) -> ShotError {
        let error = ShotError::Api {
            what: what.to_owned(),
            source: Box::new(e),
        };
        if error.is_fatal() {
            let out_of_credit = matches!(
                &error,
                ShotError::Api { source, .. } if matches!(**source, ApiError::OutOfCredit { .. })
            );
            self.stop.fatal(Fatal {
                out_of_credit,
                coordinator: false,
                message: error.to_string(),
            });
        }
        error
    }

    /// Now, by the run's clock (see `origin`).
    pub(super) fn now(&self) -> Timestamp {
        let (wall, at) = self.origin;
        let elapsed = jiff::SignedDuration::try_from(at.elapsed()).unwrap_or_default();
        wall.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    pub(super) fn per_job(&self) -> bool {
        self.client.variants_per_job()
    }

    /// The request of the shot's jobs, without its images (see `request_with_images`).
    pub(super) fn request_for(&self, work: &ShotWork) -> JobRequest {
        let entry = self
            .storyboard
            .catalogue
            .find(self.storyboard.api, &work.plan.shot.model);
        work.inputs(self.storyboard.api)
            .job_request(self.per_job(), entry)
    }

    /// The model a shot's jobs were sent for, as the provider names it (what `get`,
    /// `delete` and downloads address them by).
    pub(super) fn wire_model(&self, name: &str) -> String {
        self.storyboard
            .catalogue
            .find(self.storyboard.api, name)
            .map_or_else(|| name.to_owned(), |m| m.provider_model.clone())
    }

    pub(super) fn jobs_needed(&self, shot: &Shot) -> usize {
        if self.per_job() {
            1
        } else {
            shot.variants as usize
        }
    }
}
