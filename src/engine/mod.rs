//! The engine: carries out a plan (creates, polls and downloads jobs, recording each step
//! at once), in parts: `dispatch.rs` (order, slots, stop, summary), `create.rs` (marks,
//! creates, reconciliation), `poll.rs` (following a job; the poll schedule), `fetch.rs`
//! (downloads), `reuse.rs` (renamed shots). It speaks to a service only through
//! [`crate::api::Provider`].
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
use crate::board_path::rel_string;
use crate::lockfile::{self, FileLock, GenerationLock, JobLock, JobState, ShotLock};
use crate::manifest::Storyboard;
use crate::plan::{self, Action, Plan, ShotPlan};
use crate::recorder::Recorder;
use crate::render_inputs::RenderInputs;
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
    /// `--verify`: a recorded file is hashed, not trusted by size and mtime, so a
    /// corrupted video that `plan --verify` calls modified is downloaded again.
    pub verify: bool,
    /// The run's spending cap: no job starts whose estimated charge would pass it.
    pub budget: Option<crate::cost::Budget>,
    /// The shared cache: shots it has are taken from it, shots rendered are published.
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// `--coordinate`: the account's slots are shared with other processes through it.
    pub coordinator: Option<Arc<crate::coordinate::Coordinator>>,
    /// `--locked`: no job may be created. The plan checked that; a cache hit that cannot
    /// be taken fails its shot instead of rendering it.
    pub locked: bool,
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
            verify: false,
            budget: None,
            cache: None,
            coordinator: None,
            locked: false,
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
    fatal: Mutex<Option<Fatal>>,
}

/// What stopped a whole run: the service refused the credential, the account is out of
/// credit (every further create would be refused the same way), or the coordinator that
/// shares the account's limits went away (no new job may start without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    pub out_of_credit: bool,
    /// The coordinator (`--coordinate`) went away.
    pub coordinator: bool,
    pub message: String,
}

impl Stop {
    pub fn request(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
    /// Returns once a stop is requested.
    pub async fn wait(&self) {
        loop {
            // Registered before the check: a request in between still wakes it.
            let notified = self.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
    fn fatal(&self, fatal: Fatal) {
        self.fatal.lock().expect("stop lock").get_or_insert(fatal);
        self.request();
    }
    /// The coordinator went away: start nothing new; what runs is finished and recorded.
    pub fn coordinator_gone(&self, message: String) {
        self.fatal(Fatal {
            out_of_credit: false,
            coordinator: true,
            message,
        });
    }

    /// The error that stopped the run (a rejected credential, no credit left), if any.
    pub fn fatal_error(&self) -> Option<Fatal> {
        self.fatal.lock().expect("stop lock").clone()
    }
}

/// Why a shot did not end rendered. The run goes on for the other shots; only a refused
/// credential ([`ShotError::is_fatal`]) stops it.
#[derive(Debug, thiserror::Error)]
pub enum ShotError {
    /// The service refused or failed a request (after the transport's retries).
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<ApiError>,
    },
    /// The lockfile could not be written: nothing more is done for the shot.
    #[error("failed to record the shot: {0}")]
    Lock(Box<lockfile::LockError>),
    /// The job ended without a usable video: failed, cancelled, moderated, expired, gone.
    #[error("{0}")]
    Job(String),
    /// No create was sent: one sent earlier may have made a job that cannot be found.
    #[error("{0}")]
    NotSent(String),
    /// Saving or moving the shot's files failed.
    #[error("{0}")]
    Files(String),
    /// The run's cap kept a job from starting.
    #[error("not started within the cap: {0}")]
    OverBudget(String),
}

impl From<lockfile::LockError> for ShotError {
    fn from(e: lockfile::LockError) -> ShotError {
        ShotError::Lock(Box::new(e))
    }
}

impl ShotError {
    pub fn is_fatal(&self) -> bool {
        matches!(self, ShotError::Api { source, .. } if source.is_fatal())
    }
}

/// How a run ended when not cleanly; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A refused credential stopped the run.
    #[error("{0}")]
    CredentialRefused(String),
    /// The account ran out of credit (402): nothing new was started.
    #[error("{0}")]
    OutOfCredit(String),
    /// The coordinator went away: nothing new was started.
    #[error("the coordinator went away: {0}")]
    CoordinatorGone(String),
    /// The cap kept jobs of these shots from starting.
    #[error("the cap kept {} shot{} from starting: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    OverBudget(Vec<String>),
    #[error("{} shot{} failed: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    ShotsFailed(Vec<String>),
    #[error("interrupted; what finished is recorded")]
    Interrupted,
}

impl RenderError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RenderError::CredentialRefused(_) => crate::exit_codes::AUTH,
            RenderError::OutOfCredit(_) => crate::exit_codes::OUT_OF_CREDIT,
            RenderError::CoordinatorGone(_) => crate::exit_codes::ERROR,
            RenderError::ShotsFailed(_) => crate::exit_codes::SHOTS_FAILED,
            RenderError::OverBudget(_) => crate::exit_codes::OVER_BUDGET,
            RenderError::Interrupted => crate::exit_codes::INTERRUPTED,
        }
    }
}

impl Report {
    /// How the run ended, when not cleanly (the credential first, then failures).
    pub fn error(&self) -> Option<RenderError> {
        if let Some(fatal) = &self.fatal {
            return Some(if fatal.coordinator {
                RenderError::CoordinatorGone(fatal.message.clone())
            } else if fatal.out_of_credit {
                RenderError::OutOfCredit(fatal.message.clone())
            } else {
                RenderError::CredentialRefused(fatal.message.clone())
            });
        }
        if !self.over_budget.is_empty() {
            return Some(RenderError::OverBudget(self.over_budget.clone()));
        }
        let failed: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .map(|(id, _)| id.clone())
            .collect();
        if !failed.is_empty() {
            return Some(RenderError::ShotsFailed(failed));
        }
        self.summary.interrupted.then_some(RenderError::Interrupted)
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
    /// Taken from the shared cache: no job created.
    Cached,
    Failed(String),
    /// Not started because the run was stopping.
    NotStarted,
}

/// The end of a run.
#[derive(Debug)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    pub summary: Summary,
    /// Set when a rejected credential (or an account out of credit) stopped the run.
    pub fatal: Option<Fatal>,
    /// Shots the cap kept from starting a job, sorted.
    pub over_budget: Vec<String>,
}

struct Run {
    client: Client,
    storyboard: Storyboard,
    recorder: Arc<Recorder>,
    /// Events for the reporter; only dispatch talks to the reporter (see `emit`).
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    slots: JobSlots,
    config: Config,
    stop: Arc<Stop>,
    endpoint: String,
    jobs_created: AtomicU64,
    /// Estimated charges of the creates this run sent (each attempt that may have made a
    /// job), and the shots the cap stopped.
    spend: Mutex<Spend>,
    /// When to poll again, learning from finished jobs.
    schedule: poll::PollSchedule,
    /// Job ids this run knows, so reconciliation never adopts another shot's job.
    known_jobs: Mutex<HashSet<String>>,
    /// The wall clock at the start and tokio's instant then: the run's "now" follows
    /// tokio's clock, so expiry rules can be tested on a paused clock.
    origin: (Timestamp, tokio::time::Instant),
    /// Publishes to the shared cache under way, by shot.
    publishing: Mutex<Vec<Publishing>>,
}

/// A publish to the shared cache under way: the shot, and whether its entry was written
/// (`false`: another run's was there first).
type Publishing = (String, tokio::task::JoinHandle<Result<bool, String>>);

/// One shot's work, shared by its job tasks.
struct ShotWork {
    plan: ShotPlan,
    started: Instant,
    remaining: AtomicUsize,
    state: Mutex<ShotState>,
    /// Held while one of the shot's jobs is being created.
    creating: tokio::sync::Mutex<()>,
    /// Whether this run has written the shot's new lockfile entry.
    entry_started: AtomicBool,
    /// Taken from the shared cache.
    from_cache: AtomicBool,
    /// The images its jobs start from, read (or extracted) once.
    images: tokio::sync::OnceCell<Vec<crate::api::RequestImage>>,
    /// Told when the shot is done: `true` rendered, `false` not (the shots that start
    /// from its frames wait for this).
    done: tokio::sync::watch::Sender<Option<bool>>,
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

/// The largest workload any catalogue model accepts (longest duration at its largest
/// size): where the prior estimate of a job's time reaches its maximum.
fn max_workload() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        crate::catalogue::Catalogue::builtin()
            .models
            .iter()
            .filter_map(|m| {
                let seconds = match m.seconds.rule().ok()? {
                    crate::limits::SecondsRule::Range { max, .. } => max,
                    crate::limits::SecondsRule::OneOf(v) => v.into_iter().max()?,
                };
                let pixels = m.sizes.iter().map(|s| s.size.pixels()).max()?;
                Some(u64::from(seconds) * pixels)
            })
            .max()
            .unwrap_or(1)
    })
}

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

/// What this run has committed to spend, by estimate.
#[derive(Debug, Default)]
struct Spend {
    committed: f64,
    currency: Option<String>,
    /// Creates of unknown price sent.
    unknown: u64,
    over_budget: std::collections::BTreeSet<String>,
}

/// Where one shot stands in this run. Moves forward only: a failure or a stop is final.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ShotState {
    /// Items queued or running.
    Working,
    /// A create was not started because the run is stopping (the shot stays as it was).
    NotStarted,
    /// The first failure, in words (the others of the shot's items are not reported).
    Failed(String),
}

impl ShotWork {
    fn new(plan: ShotPlan) -> ShotWork {
        ShotWork {
            plan,
            started: Instant::now(),
            remaining: AtomicUsize::new(0),
            state: Mutex::new(ShotState::Working),
            entry_started: AtomicBool::new(false),
            from_cache: AtomicBool::new(false),
            creating: tokio::sync::Mutex::new(()),
            images: tokio::sync::OnceCell::new(),
            done: tokio::sync::watch::channel(None).0,
        }
    }

    /// The shot's render inputs (known for every shot the engine works on: a shot that
    /// waits for others is planned again once they are rendered).
    fn inputs(&self, api: crate::limits::Api) -> RenderInputs {
        self.plan
            .inputs
            .clone()
            .unwrap_or_else(|| RenderInputs::of(api, &self.plan.shot))
    }

    fn fail(&self, error: &ShotError) {
        let mut state = self.state.lock().expect("work lock");
        if !matches!(*state, ShotState::Failed(_)) {
            *state = ShotState::Failed(error.to_string());
        }
    }

    fn not_started(&self) {
        let mut state = self.state.lock().expect("work lock");
        if *state == ShotState::Working {
            *state = ShotState::NotStarted;
        }
    }

    fn state(&self) -> ShotState {
        self.state.lock().expect("work lock").clone()
    }
}

mod cached;
mod create;
mod dispatch;
mod fetch;
mod images;
mod poll;
mod reuse;

pub use dispatch::run;
pub use poll::PollSchedule;

#[cfg(test)]
mod tests;
