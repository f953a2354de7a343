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
    /// When to poll again, learning from finished jobs.
    schedule: poll::PollSchedule,
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

mod create;
mod dispatch;
mod fetch;
mod poll;
mod reuse;

pub use dispatch::run;
pub use poll::PollSchedule;

/// A relative path with `/` separators, as the lockfile records it.
fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
