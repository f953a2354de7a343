//! Carries out a plan: creates, polls and downloads jobs, recording each step at once.
//!
//! Rules it keeps whatever happens:
//! - at most `max_jobs` jobs running at the service (one [`JobSlots`]);
//! - every request goes through the client's shared pacer (see `pacer.rs`);
//! - a job id is in the lockfile before anything else is done with the job;
//! - a job that may exist is never created twice: a lost create response is reconciled
//!   by listing recent jobs first, and recorded pending jobs are polled, not re-created;
//! - a failed download is retried on its own, never by re-creating the job;
//! - one shot's failure never stops the others; only a rejected credential stops the run.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Notify;

use crate::api::{ApiError, Client, ContentKind, ContentRef, Job, JobRequest, JobStatus};
use crate::lockfile::{self, FileLock, GenerationLock, JobLock, JobState, ShotLock};
use crate::manifest::Storyboard;
use crate::plan::{self, Action, Plan, ShotPlan};
use crate::recorder::Recorder;
use crate::reporter::{Event, Reporter, Summary};
use crate::shot::Shot;
use crate::slots::JobSlots;

/// How the run behaves; the renderer fills it from flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// Jobs running at the service at once.
    pub max_jobs: usize,
    /// Shortest and longest wait between two polls of one job.
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// What a job is expected to take before any has been seen to finish: the smallest
    /// job `estimate_min`, the largest `estimate_max`, in between by workload (the
    /// documented 1 to 5 minutes, growing with seconds x pixels x variants).
    pub estimate_min: Duration,
    pub estimate_max: Duration,
    /// Attempts per file download (each attempt is a fresh request).
    pub download_attempts: u32,
    /// Save thumbnails beside the videos.
    pub thumbnails: bool,
    /// The user asked to re-render (`--force`): a create whose outcome is unknown at a
    /// provider that cannot list its jobs may be sent again.
    pub force: bool,
}

impl Config {
    /// Defaults for a real service: jobs take 1 to 5 minutes.
    pub fn for_service() -> Config {
        Config {
            max_jobs: 2,
            poll_min: Duration::from_secs(2),
            poll_max: Duration::from_secs(60),
            estimate_min: Duration::from_secs(60),
            estimate_max: Duration::from_secs(300),
            download_attempts: 6,
            thumbnails: true,
            force: false,
        }
    }

    /// The same, with every duration divided by a clock speed-up (the emulator's).
    pub fn scaled(self, time_scale: f64) -> Config {
        let s = |d: Duration| {
            Duration::from_secs_f64((d.as_secs_f64() / time_scale.max(1e-3)).max(0.005))
        };
        Config {
            poll_min: s(self.poll_min),
            poll_max: s(self.poll_max),
            estimate_min: s(self.estimate_min),
            estimate_max: s(self.estimate_max),
            ..self
        }
    }
}

/// Stop signals: `stop` starts nothing new (first Ctrl-C, or a rejected credential).
#[derive(Default)]
pub struct Stop {
    stopping: AtomicBool,
    notify: Notify,
    fatal: Mutex<Option<String>>,
}

impl Stop {
    pub fn request(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
    fn fatal(&self, message: String) {
        self.fatal.lock().expect("stop lock").get_or_insert(message);
        self.request();
    }
    /// The error that stopped the run (a rejected credential), if any.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.lock().expect("stop lock").clone()
    }
}

/// What happened to each shot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Skipped,
    Rendered,
    Downloaded,
    /// A renamed shot whose files were moved to its new name.
    Reused,
    Failed(String),
    /// Not started because the run was stopping.
    NotStarted,
}

/// The end of a run.
#[derive(Debug)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    pub summary: Summary,
    /// Set when a rejected credential stopped the run.
    pub fatal: Option<String>,
}

struct Run {
    client: Client,
    storyboard: Storyboard,
    recorder: Arc<Recorder>,
    reporter: Arc<Reporter>,
    slots: JobSlots,
    config: Config,
    stop: Arc<Stop>,
    endpoint: String,
    jobs_created: AtomicU64,
    /// Seconds per unit of work (seconds x pixels x variants), learned from finished jobs.
    pace: Mutex<Option<f64>>,
    /// Job ids this run knows, so reconciliation never adopts another shot's job.
    known_jobs: Mutex<HashSet<String>>,
    /// The wall clock at the start and tokio's instant then: the run's "now" follows
    /// tokio's clock, so expiry rules can be tested on a paused clock.
    origin: (Timestamp, tokio::time::Instant),
}

/// One shot's work, shared by its job tasks.
struct ShotWork {
    plan: ShotPlan,
    started: Instant,
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    not_started: AtomicBool,
    /// Held while one of the shot's jobs is being created.
    creating: tokio::sync::Mutex<()>,
    /// Whether this run has written the shot's new lockfile entry.
    entry_started: AtomicBool,
}

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
    let run = Arc::new(Run {
        client,
        storyboard,
        recorder,
        reporter,
        slots: JobSlots::new(config.max_jobs),
        config,
        stop,
        endpoint: plan.endpoint.clone(),
        jobs_created: AtomicU64::new(0),
        pace: Mutex::new(None),
        known_jobs: Mutex::new(known),
        origin: (Timestamp::now(), tokio::time::Instant::now()),
    });

    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut works: Vec<Arc<ShotWork>> = Vec::new();
    for sp in plan.shots {
        if sp.action == Action::Fresh {
            outcomes.push((sp.id.clone(), Outcome::Skipped));
            continue;
        }
        works.push(Arc::new(ShotWork {
            plan: sp,
            started: Instant::now(),
            remaining: AtomicUsize::new(0),
            failure: Mutex::new(None),
            not_started: AtomicBool::new(false),
            entry_started: AtomicBool::new(false),
            creating: tokio::sync::Mutex::new(()),
        }));
    }

    // Longest jobs first: with two at a time, that shortens the whole run.
    works.sort_by_key(|w| std::cmp::Reverse(workload(&w.plan.shot)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut queued: Vec<(u64, Arc<ShotWork>, Item)> = Vec::new();
    for work in &works {
        run.reporter.emit(Event::Shot {
            id: work.plan.id.clone(),
            action: work.plan.action.as_str().into(),
            reason: work.plan.reason.to_string(),
        });
        let items = match run.prepare(work).await {
            Ok(items) => items,
            Err(message) => {
                run.reporter.emit(Event::ShotFailed {
                    id: work.plan.id.clone(),
                    message: message.clone(),
                });
                work.fail(message);
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
        let slot = match item {
            Item::Download { .. } => None,
            Item::Create { .. } if run.stop.requested() => {
                work.not_started.store(true, Ordering::SeqCst);
                if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                    run.finish_shot(&work);
                }
                continue;
            }
            _ => Some(run.slots.acquire(item.priority(&work.plan.shot)).await),
        };
        if matches!(item, Item::Create { .. }) && run.stop.requested() {
            work.not_started.store(true, Ordering::SeqCst);
            if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                run.finish_shot(&work);
            }
            continue;
        }
        let run = Arc::clone(&run);
        tasks.spawn(async move {
            run.item(&work, item, slot).await;
            if work.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                run.finish_shot(&work);
            }
        });
    }
    while tasks.join_next().await.is_some() {}

    for work in &works {
        let outcome = match (
            work.failure.lock().expect("work lock").clone(),
            work.not_started.load(Ordering::SeqCst),
        ) {
            (Some(message), _) => Outcome::Failed(message),
            (None, true) => Outcome::NotStarted,
            (None, false) if work.plan.action == Action::Download => Outcome::Downloaded,
            (None, false) if work.plan.action == Action::Reuse => Outcome::Reused,
            (None, false) => Outcome::Rendered,
        };
        outcomes.push((work.plan.id.clone(), outcome));
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let video_seconds: u64 = works
        .iter()
        .filter(|w| {
            w.plan.action == Action::Render
                && w.failure.lock().expect("work lock").is_none()
                && !w.not_started.load(Ordering::SeqCst)
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
        wall_ms: run.reporter.elapsed().as_millis() as u64,
        interrupted: run.stop.requested() && run.stop.fatal_error().is_none(),
    };
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    Report {
        outcomes,
        summary,
        fatal: run.stop.fatal_error(),
    }
}

/// One unit of work for a shot.
enum Item {
    /// Create job number `index` (0-based) of the shot, then poll and download it.
    Create { index: usize },
    /// Poll a recorded job still alive at the service, then download it.
    Poll { job: String },
    /// Download what a finished job made.
    Download { job: String },
}

impl Item {
    fn priority(&self, shot: &Shot) -> u64 {
        match self {
            Item::Poll { .. } => u64::MAX,
            Item::Download { .. } => u64::MAX - 1,
            Item::Create { .. } => workload(shot),
        }
    }
}

/// Failed status checks in a row (each after the client's own retries, `poll_max` apart)
/// before a job is given up for this run; it stays recorded and is resumed next time.
const MAX_POLL_FAILURES: u32 = 30;

/// The largest workload the services accept: 20 s at 1920x1080.
const MAX_WORKLOAD: u64 = 20 * 1920 * 1080;

/// Relative cost of a shot's job: seconds x pixels x variants (how generation time grows).
fn workload(shot: &Shot) -> u64 {
    u64::from(shot.seconds) * shot.size.pixels() * u64::from(shot.variants)
}

/// A service's unix-seconds time, when it is one: a value outside 2000..2200 (a proxy
/// sending milliseconds, say) is unknown, never read as 1970 (which would mean expired).
fn ts(unix: i64) -> Option<Timestamp> {
    const Y2000: i64 = 946_684_800;
    const Y2200: i64 = 7_258_118_400;
    (Y2000..Y2200)
        .contains(&unix)
        .then(|| Timestamp::from_second(unix).ok())
        .flatten()
}

impl ShotWork {
    fn fail(&self, message: String) {
        self.failure
            .lock()
            .expect("work lock")
            .get_or_insert(message);
    }
}

impl Run {
    /// Now, by the run's clock (see `origin`).
    fn now(&self) -> Timestamp {
        let (wall, at) = self.origin;
        let elapsed = jiff::SignedDuration::try_from(at.elapsed()).unwrap_or_default();
        wall.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    fn per_job(&self) -> bool {
        self.client.variants_per_job()
    }

    fn request_for(&self, shot: &Shot) -> JobRequest {
        JobRequest {
            prompt: shot.prompt.clone(),
            model: shot.model.clone(),
            size: shot.size,
            seconds: shot.seconds,
            variants: if self.per_job() { shot.variants } else { 1 },
        }
    }

    fn jobs_needed(&self, shot: &Shot) -> usize {
        if self.per_job() {
            1
        } else {
            shot.variants as usize
        }
    }

    /// Decides the items of one shot and records a new lockfile entry when rendering.
    async fn prepare(&self, work: &ShotWork) -> Result<Vec<Item>, String> {
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
            return Err("the lockfile entry vanished during the run".into());
        };
        let per_job = self.per_job();
        let needs_download = |job: &JobLock| {
            job.generations.is_empty()
                || job.generations.iter().any(|g| {
                    g.file.as_ref().is_none_or(|f| {
                        plan::check_file(&self.storyboard.dir, f, false)
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

    /// Gives a renamed shot the render recorded under its old id: its files are linked
    /// (or copied) to the new names and swapped in atomically, the lockfile entry moves,
    /// then the old names go. A crash anywhere leaves the old entry or the new one valid.
    fn reuse(&self, sp: &ShotPlan, from: &str) -> Result<(), String> {
        let mut entry = self
            .recorder
            .shot(from)
            .ok_or("the renamed shot's entry vanished")?;
        let dir = &self.storyboard.dir;
        let mut moves: Vec<(std::path::PathBuf, std::path::PathBuf)> = Vec::new();
        let out = &self.storyboard.output;
        let mut refused = None;
        let mut plan_move = |path: &mut String, name: String| {
            let rel = rel_string(&out.join(name));
            // Both ends inside the board with no symlink on the way: a move never
            // touches a file outside it, whatever the lockfile says.
            match (
                crate::board_path::resolve_owned(dir, path),
                crate::board_path::resolve_owned(dir, &rel),
            ) {
                (Ok(old), Ok(new)) => moves.push((old, new)),
                (Err(e), _) | (_, Err(e)) => refused = Some(e),
            }
            *path = rel;
        };
        for g in entry.jobs.iter_mut().flat_map(|j| j.generations.iter_mut()) {
            if let Some(f) = &mut g.file {
                plan_move(&mut f.path, sp.shot.video_file_name(g.variant));
            }
            // Thumbnails are a convenience: one that is gone is dropped, not fatal.
            if g.thumbnail
                .as_ref()
                .is_some_and(|t| !dir.join(&t.path).is_file())
            {
                g.thumbnail = None;
            }
            if let Some(t) = &mut g.thumbnail {
                let ext = Path::new(&t.path)
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("jpg")
                    .to_string();
                plan_move(&mut t.path, sp.shot.thumbnail_file_name(g.variant, &ext));
            }
        }
        if let Some(e) = refused {
            return Err(format!("refused to reuse the render of `{from}`: {e}"));
        }
        let staged: Vec<_> = moves
            .iter()
            .enumerate()
            .map(|(i, (old, new))| {
                let tmp =
                    new.with_file_name(format!(".shotlist-reuse-{}-{i}.part", std::process::id()));
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(old, &tmp)
                    .or_else(|_| std::fs::copy(old, &tmp).map(|_| ()))
                    .map_err(|e| format!("failed to reuse `{}`: {e}", old.display()))?;
                Ok((tmp, new))
            })
            .collect::<Result<_, String>>()?;
        for (tmp, new) in staged {
            std::fs::rename(&tmp, new)
                .map_err(|e| format!("failed to move into `{}`: {e}", new.display()))?;
        }
        crate::atomic_write::sync_dir(&self.storyboard.output_dir());
        self.recorder
            .update(|l| {
                l.shots.remove(from);
                l.shots.insert(sp.id.clone(), entry);
            })
            .map_err(|e| e.to_string())?;
        let new_paths: HashSet<&std::path::PathBuf> = moves.iter().map(|(_, n)| n).collect();
        for (old, _) in &moves {
            if !new_paths.contains(old) {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }

    async fn item(&self, work: &ShotWork, item: Item, slot: Option<crate::slots::Slot>) {
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
        if let Err(message) = result {
            self.reporter.emit(Event::ShotFailed {
                id: id.clone(),
                message: message.clone(),
            });
            work.fail(message);
        }
    }

    /// Creates one job; reconciles a lost response before ever creating again.
    ///
    /// A shot's creates run one at a time, so that a reconciliation never mistakes the
    /// job of a sibling variant (same request) for its own.
    async fn create(&self, work: &ShotWork, index: usize) -> Result<Job, String> {
        let _one_at_a_time = work.creating.lock().await;
        let id = &work.plan.id;
        let req = self.request_for(&work.plan.shot);
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
            return Err(format!(
                "a create sent at {sent} may have made a job, and this provider cannot list its jobs to find it; not sending another (check the provider's dashboard, then run with --force to render it anew)"
            ));
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
            self.recorder
                .update(|l| {
                    self.ensure_entry(l, work);
                    if let Some(shot) = l.shots.get_mut(id) {
                        shot.creating.insert(index as u32, self.now());
                    }
                })
                .map_err(|e| e.to_string())?;
            match self.client.create(&req).await {
                Ok(job) => {
                    self.record_created(work, index, &job)?;
                    self.jobs_created.fetch_add(1, Ordering::SeqCst);
                    self.reporter.emit(Event::JobCreated {
                        id: id.clone(),
                        job: job.id.clone(),
                    });
                    return Ok(job);
                }
                Err(ApiError::CreateOutcomeUnknown { message, .. }) if !self.client.can_list() => {
                    // The mark stays: the next run refuses to create again unless forced.
                    return Err(format!(
                        "the answer to the create was lost ({message}) and this provider cannot list its jobs: the job may exist and is not sent again; check the provider's dashboard, then run with --force to render it anew"
                    ));
                }
                Err(ApiError::CreateOutcomeUnknown { .. }) => {
                    // The request may have reached the service, which may still be making
                    // the job: look a few times, waiting longer each time, before creating
                    // again.
                    match self.reconcile(&req, since, 3).await {
                        Ok(Some(job)) => return self.adopt(work, index, job),
                        Ok(None) if attempt < 4 => {
                            self.reporter.emit(Event::Retry {
                                id: id.clone(),
                                what: format!("create (job {})", index + 1),
                                attempt,
                                delay_ms: 0,
                                reason: "the response was lost and no such job appeared".into(),
                            });
                        }
                        Ok(None) => {
                            return Err(
                                "failed to create the job: the connection was lost repeatedly"
                                    .into(),
                            );
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
                    // The service answered: no job was made.
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

    /// Before a render's first create: cancel the shot's outdated jobs still alive at the
    /// service. If one cannot be cancelled, nothing is created: a shot never has two jobs
    /// running, and the outdated one stays recorded.
    async fn cancel_outdated(&self, work: &ShotWork) -> Result<(), String> {
        if work.plan.action != Action::Render || work.entry_started.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(old) = self.recorder.shot(&work.plan.id) else {
            return Ok(());
        };
        for job in old.jobs.iter().filter(|j| j.status.is_alive()) {
            match self.client.delete(&job.id).await {
                Ok(()) => self.reporter.emit(Event::Notice {
                    message: format!("cancelled outdated job {} of `{}`", job.id, work.plan.id),
                }),
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

    /// A render starts the shot's lockfile entry afresh, once per run, with its first
    /// create (called under the recorder's lock, so concurrent variant creates agree).
    fn ensure_entry(&self, l: &mut lockfile::Lockfile, work: &ShotWork) {
        if work.plan.action == Action::Render && !work.entry_started.swap(true, Ordering::SeqCst) {
            l.shots
                .insert(work.plan.id.clone(), self.new_entry(&work.plan));
        }
    }

    fn new_entry(&self, sp: &ShotPlan) -> ShotLock {
        ShotLock {
            input_hash: sp.input_hash.clone(),
            api: self.storyboard.api,
            endpoint: self.endpoint.clone(),
            model: sp.shot.model.clone(),
            request: self.client.request_body(&self.request_for(&sp.shot)),
            jobs: Vec::new(),
            creating: Default::default(),
        }
    }

    fn adopt(&self, work: &ShotWork, index: usize, job: Job) -> Result<Job, String> {
        self.record_created(work, index, &job)?;
        self.jobs_created.fetch_add(1, Ordering::SeqCst);
        self.reporter.emit(Event::JobAdopted {
            id: work.plan.id.clone(),
            job: job.id.clone(),
        });
        Ok(job)
    }

    /// Finds the job a lost create made: same request, created since, not known already.
    /// Looks up to `looks` times, waiting longer before each look after the first: a
    /// service may list a job only some time after the create that made it.
    async fn reconcile(
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

    fn record_created(&self, work: &ShotWork, index: usize, job: &Job) -> Result<(), String> {
        self.known_jobs
            .lock()
            .expect("known lock")
            .insert(job.id.clone());
        let lock = JobLock {
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
            .map_err(|e| e.to_string())
    }

    /// Polls a job to its end (holding its slot), records it, then downloads its videos.
    async fn follow(
        &self,
        work: &ShotWork,
        job_id: String,
        slot: Option<crate::slots::Slot>,
        first: Option<Job>,
    ) -> Result<(), String> {
        let id = &work.plan.id;
        let started = Instant::now();
        let expected = self.expected(&work.plan.shot);
        let mut last_status = first.as_ref().map(|j| j.status_raw.clone());
        let mut wait = self.next_wait(expected, Duration::ZERO, None);
        let mut failures = 0u32;
        let job = loop {
            tokio::time::sleep(wait).await;
            let (job, hint) = match self.client.get(&job_id).await {
                Ok(x) => x,
                Err(ApiError::NotFound { .. }) => {
                    self.record_job_failed(
                        id,
                        &job_id,
                        "not_found",
                        "the job no longer exists at the service (expired or deleted)",
                    )?;
                    return Err(format!(
                        "job {job_id} no longer exists at the service (expired or deleted); run again to re-render"
                    ));
                }
                Err(e) if e.is_fatal() => {
                    return Err(self.api_failure("failed to check the job", e));
                }
                // The job runs on (and is paid for) whatever the network does: keep its slot
                // and keep asking, more slowly, for as long as the job can exist.
                Err(e) if failures < MAX_POLL_FAILURES => {
                    failures += 1;
                    wait = self.config.poll_max;
                    self.reporter.emit(Event::Retry {
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
            if last_status.as_deref() != Some(job.status_raw.as_str()) {
                last_status = Some(job.status_raw.clone());
                self.recorder
                    .job(id, &job_id, |j| {
                        j.service_status = Some(job.status_raw.clone());
                        j.expires_at = job.expires_at.and_then(ts).or(j.expires_at);
                    })
                    .map_err(|e| e.to_string())?;
            }
            self.reporter.emit(Event::JobStatus {
                id: id.clone(),
                job: job_id.clone(),
                status: job.status_raw.clone(),
                progress: job.progress,
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
                return Err(message);
            }
            let elapsed = started.elapsed();
            // The server's hint is a floor: never sooner than it asks, later if the job is
            // far from done.
            let ours = self.next_wait(expected, elapsed, job.progress);
            wait = hint.after.map_or(ours, |h| h.max(ours));
            wait = wait.clamp(self.config.poll_min, self.config.poll_max);
        };
        drop(slot);
        match job.status {
            JobStatus::Succeeded => {
                if first.is_some() {
                    self.learn(&work.plan.shot, started.elapsed());
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
                    return Err(message);
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
                    .map_err(|e| e.to_string())?;
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
                    .map_err(|e| e.to_string())?;
                let mut text = format!("job {job_id} {}: {code}: {message}", job.status_raw);
                if let Some(rp) = &failure.revised_prompt {
                    text.push_str(&format!(" (revised prompt: {rp})"));
                }
                Err(text)
            }
        }
    }

    /// Records that a job ended without a usable video, in the given words.
    fn record_job_failed(
        &self,
        id: &str,
        job_id: &str,
        code: &str,
        message: &str,
    ) -> Result<(), String> {
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
            .map_err(|e| e.to_string())
    }

    /// Downloads every generation of a finished job that is not on disk as recorded.
    async fn download_job(&self, work: &ShotWork, job_id: &str) -> Result<(), String> {
        let id = &work.plan.id;
        let entry = self
            .recorder
            .shot(id)
            .ok_or("the lockfile entry vanished during the run")?;
        let job = entry
            .jobs
            .iter()
            .find(|j| j.id == job_id)
            .ok_or("the job vanished from the lockfile")?
            .clone();
        if job.generations.is_empty() {
            return Err(format!("job {job_id} succeeded but lists no video"));
        }
        let out_dir = self.storyboard.output_dir();
        tokio::fs::create_dir_all(&out_dir)
            .await
            .map_err(|e| format!("failed to create `{}`: {e}", out_dir.display()))?;
        for g in &job.generations {
            if g.file.as_ref().is_some_and(|f| {
                plan::check_file(&self.storyboard.dir, f, false) == plan::FileState::Unchanged
            }) {
                continue;
            }
            let name = work.plan.shot.video_file_name(g.variant);
            let file = self
                .fetch(work, &job, &g.id, &name, ContentKind::Video)
                .await?;
            let thumbnail = if self.config.thumbnails {
                let name = work
                    .plan
                    .shot
                    .thumbnail_file_name(g.variant, self.client.thumbnail_extension());
                match self
                    .fetch(work, &job, &g.id, &name, ContentKind::Thumbnail)
                    .await
                {
                    Ok(t) => Some(t),
                    Err(message) => {
                        self.reporter.emit(Event::Notice {
                            message: format!("`{id}`: thumbnail not saved: {message}"),
                        });
                        None
                    }
                }
            } else {
                None
            };
            self.reporter.emit(Event::Downloaded {
                id: id.clone(),
                path: file.path.clone(),
                bytes: file.bytes,
            });
            self.recorder
                .file_saved(id, job_id, &g.id, file, thumbnail)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Downloads one file with its own retries; the final file appears only when complete.
    async fn fetch(
        &self,
        work: &ShotWork,
        job: &JobLock,
        generation: &str,
        name: &str,
        kind: ContentKind,
    ) -> Result<FileLock, String> {
        let rel = self.storyboard.output.join(name);
        let path = self.storyboard.dir.join(&rel);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if job.expires_at.is_some_and(|e| e <= self.now()) {
                return Err(format!(
                    "job {} expired before its video was saved; run again to re-render",
                    job.id
                ));
            }
            let content = ContentRef {
                job_id: &job.id,
                generation_id: generation,
                expires_at: job.expires_at.map(|t| t.as_second()),
            };
            let result = self.client.download_content(&content, kind, &path).await;
            match result {
                Ok(d) => {
                    let meta = std::fs::metadata(&path).map_err(|e| {
                        format!("failed to read `{}` after saving: {e}", path.display())
                    })?;
                    return Ok(FileLock {
                        path: rel_string(&rel),
                        sha256: d.sha256,
                        bytes: d.bytes,
                        mtime_ns: plan::mtime_ns(&meta),
                    });
                }
                // A 401/403 on content after the same credential polled the job is the
                // known flaky-download case: retried like any failed download, and if it
                // persists only this shot fails (the job stays recorded: the next run
                // downloads it again, never re-creates it).
                Err(e @ ApiError::Auth { .. }) if attempt >= self.config.download_attempts => {
                    return Err(format!(
                        "failed to download {name} after {attempt} attempts: {e}"
                    ));
                }
                Err(ApiError::NotFound { .. } | ApiError::Expired { .. }) => {
                    let message = format!(
                        "the service no longer has the {} of job {} (expired or deleted)",
                        kind.as_str(),
                        job.id
                    );
                    // Recorded, so the next run renders again instead of trying to
                    // download the same missing video forever.
                    if matches!(kind, ContentKind::Video) {
                        self.record_job_failed(&work.plan.id, &job.id, "gone", &message)?;
                    }
                    return Err(format!("{message}; run again to render it anew"));
                }
                Err(e) if attempt < self.config.download_attempts => {
                    let ours = Duration::from_millis(250 * (1 << attempt.min(6)));
                    let hint = match &e {
                        ApiError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = hint.map_or(ours, |h| h.max(ours)).min(self.config.poll_max);
                    self.reporter.emit(Event::Retry {
                        id: work.plan.id.clone(),
                        what: format!("download of {name}"),
                        attempt,
                        delay_ms: delay.as_millis() as u64,
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    return Err(format!(
                        "failed to download {name} after {attempt} attempts: {e}"
                    ));
                }
            }
        }
    }

    fn finish_shot(&self, work: &ShotWork) {
        let id = work.plan.id.clone();
        if work.failure.lock().expect("work lock").is_some() {
            // Already reported when it happened.
        } else if work.not_started.load(Ordering::SeqCst) {
            self.reporter.emit(Event::Notice {
                message: format!("`{id}` not started: the run is stopping"),
            });
        } else {
            self.reporter.emit(Event::ShotDone {
                id,
                elapsed_ms: work.started.elapsed().as_millis() as u64,
            });
        }
    }

    /// Turns a client error into the shot's message; a rejected credential stops the run.
    fn api_failure(&self, what: &str, e: ApiError) -> String {
        let message = format!("{what}: {e}");
        if e.is_fatal() {
            self.stop.fatal(message.clone());
        }
        message
    }

    /// What a job of this shot should take, from what this run has seen (or the prior).
    fn expected(&self, shot: &Shot) -> Duration {
        match *self.pace.lock().expect("pace lock") {
            Some(secs_per_unit) => Duration::from_secs_f64(secs_per_unit * workload(shot) as f64),
            None => {
                let share = (workload(shot) as f64 / MAX_WORKLOAD as f64).min(1.0);
                self.config.estimate_min
                    + (self.config.estimate_max - self.config.estimate_min).mul_f64(share)
            }
        }
    }

    fn learn(&self, shot: &Shot, took: Duration) {
        let sample = took.as_secs_f64() / workload(shot).max(1) as f64;
        let mut pace = self.pace.lock().expect("pace lock");
        *pace = Some(match *pace {
            Some(old) => old * 0.7 + sample * 0.3,
            None => sample,
        });
    }

    /// Waits long while the job is far from done, short once it is due: few requests,
    /// quick notice of completion. Past its expected end, a job is polled at a tenth of
    /// its age, so noticing the end costs at most ~15% more time whatever the estimate.
    fn next_wait(&self, expected: Duration, elapsed: Duration, progress: Option<u8>) -> Duration {
        let remaining = match progress {
            Some(p) if p > 0 && p < 100 => elapsed.mul_f64(f64::from(100 - p) / f64::from(p)),
            _ => expected.saturating_sub(elapsed),
        };
        let wait = if remaining.is_zero() {
            elapsed / 7
        } else {
            remaining / 2
        };
        wait.clamp(self.config.poll_min, self.config.poll_max)
    }
}

/// A relative path with `/` separators, as the lockfile records it.
fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
