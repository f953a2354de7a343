//! The jobs store: every job and generation the emulator knows, and where each job is in
//! its life.
//!
//! A job's status is a pure function of the emulated clock: it is fixed at creation when
//! the job gets a slot, when it will finish and how (succeed, fail moderation, fail
//! internally, hit its deadline), and every read derives the status from the time. No
//! background task moves jobs along, so a paused or slow client sees the same timeline as
//! a fast one. Where an account's slots are full, a new job of a queueing service (fal,
//! Replicate) waits: at creation it is given the instant the first slot frees after every
//! job ahead of it has started (first in, first out), and its queue position is read from
//! the clock. The one event that changes a timeline later is a cancel: it ends that job
//! at once and moves up the jobs waiting behind it, never one that has started. This
//! module never does I/O and never encodes video (see `assets.rs`); it holds the lock only
//! for bookkeeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use shotlist_models::limits::{Api, ApiLimits, SecondsRule};

use super::assets::Assets;
use super::clock::EmuMillis;
use super::faults::JobFault;

/// Generation time at the smallest workload and the extra for the largest (emulated).
const BASE_MS: f64 = 60_000.0;
const EXTRA_MS: f64 = 240_000.0;

/// Where in a job's duration each Azure status begins (fractions of the duration, from
/// the moment it got a slot). Until `PREPROCESSING_AT` the job boots (Replicate: still
/// `starting`).
const PREPROCESSING_AT: f64 = 0.10;
const RUNNING_AT: f64 = 0.20;
/// Also when the emulator starts encoding the placeholder videos.
pub const PROCESSING_AT: f64 = 0.85;
/// When a doomed job fails: moderation early, internal errors midway.
const MODERATION_FAILS_AT: f64 = 0.15;
const INTERNAL_ERROR_FAILS_AT: f64 = 0.60;

/// What a client asked for, validated.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub api: Api,
    pub prompt: String,
    pub model: String,
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    pub variants: u32,
    /// OpenAI remixes: the source video's id.
    pub remixed_from: Option<String>,
    /// fal and Replicate: the model input as sent (Replicate echoes it until its data is
    /// removed). Empty for the other APIs.
    pub input: Map<String, Value>,
    /// Replicate `Cancel-After`: the emulated time from creation after which the job is
    /// canceled (aborted if it had not started processing).
    pub deadline: Option<EmuMillis>,
    /// The images the job starts from, as checked and recorded.
    pub images: Vec<super::images::InputImage>,
}

/// Why a job fails, decided when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Moderation,
    InternalError,
}

impl From<JobFault> for Failure {
    fn from(f: JobFault) -> Failure {
        match f {
            JobFault::Moderation => Failure::Moderation,
            JobFault::InternalError => Failure::InternalError,
        }
    }
}

/// Where a job is at one instant, independent of the API's wording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    /// Waiting for a slot of the account (fal, Replicate, beyond `max_running`).
    Waiting,
    /// Has a slot, booting.
    Queued,
    Preprocessing {
        fraction: f64,
    },
    Running {
        fraction: f64,
    },
    Processing {
        fraction: f64,
    },
    Succeeded,
    Failed(Failure),
    /// Canceled by the client, or by its deadline while processing.
    Canceled,
    /// Its deadline came before it started processing (Replicate `aborted`).
    Aborted,
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::Failed(_) | Phase::Canceled | Phase::Aborted
        )
    }
}

/// One placeholder video of a job (Azure: a generation; OpenAI: the video itself; fal and
/// Replicate: the output file, its id the unguessable token of its media URL).
#[derive(Debug)]
pub struct Generation {
    pub id: String,
    /// 1-based.
    pub variant: u32,
    pub assets: Assets,
}

/// How a service takes a create when the account's slots are full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Azure, OpenAI: 429.
    Refuse,
    /// fal, Replicate: the job waits for a slot, first in, first out.
    Queue,
}

/// When the store forgets a job (emulated durations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Azure, OpenAI: `expires_at` counts from creation.
    AfterCreation(EmuMillis),
    /// fal: until its media file is gone, this long after completion.
    AfterCompletion(EmuMillis),
    /// Replicate, OpenRouter: jobs stay readable (their data is removed or they expire,
    /// see `retention`).
    Forever,
}

/// How one service keeps and admits its jobs.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    pub admission: Admission,
    pub keep: Keep,
    /// How long outputs stay after completion where the service counts so (fal's result
    /// JSON, Replicate's input, output and logs).
    pub retention: EmuMillis,
}

/// The part of a job that may change after creation, under the store's lock only.
#[derive(Clone, Copy, Debug)]
struct Timeline {
    /// When it got a slot: its creation where jobs are refused instead of queued.
    started: EmuMillis,
    canceled: Option<EmuMillis>,
}

#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub spec: JobSpec,
    pub created: EmuMillis,
    /// How long it runs once it has a slot, to success (or to when it would have had it
    /// not failed).
    pub duration: EmuMillis,
    pub failure: Option<Failure>,
    pub keep: Keep,
    pub retention: EmuMillis,
    /// Ids are fixed at creation; the generations are shown only once the job succeeded.
    pub generations: Vec<Arc<Generation>>,
    timeline: Mutex<Timeline>,
}

impl Job {
    fn timeline(&self) -> Timeline {
        *self.timeline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn at_fraction(&self, started: EmuMillis, fraction: f64) -> EmuMillis {
        started + (self.duration as f64 * fraction) as EmuMillis
    }

    /// When it would end by itself, having got its slot at `started`.
    fn natural_end(&self, started: EmuMillis) -> EmuMillis {
        match self.failure {
            None => started + self.duration,
            Some(Failure::Moderation) => self.at_fraction(started, MODERATION_FAILS_AT),
            Some(Failure::InternalError) => self.at_fraction(started, INTERNAL_ERROR_FAILS_AT),
        }
    }

    /// When a cancel or the deadline cuts it short, if one does, and whether the deadline did.
    fn cut(&self, timeline: Timeline) -> Option<(EmuMillis, bool)> {
        let deadline = self.spec.deadline.map(|d| (self.created + d, true));
        let cut = [timeline.canceled.map(|c| (c, false)), deadline]
            .into_iter()
            .flatten()
            .min()?;
        (cut.0 < self.natural_end(timeline.started)).then_some(cut)
    }

    /// When it got (or will get) its slot.
    pub fn started(&self) -> EmuMillis {
        self.timeline().started
    }

    /// When it starts processing, after booting (Replicate's `started_at`).
    pub fn processing_started_at(&self) -> EmuMillis {
        self.at_fraction(self.started(), PREPROCESSING_AT)
    }

    /// When the job stops running (succeeds, fails or is cut short).
    pub fn finished_at(&self) -> EmuMillis {
        let timeline = self.timeline();
        self.cut(timeline)
            .map_or_else(|| self.natural_end(timeline.started), |(at, _)| at)
    }

    /// When encoding should start, for jobs that will succeed.
    pub fn processing_at(&self) -> EmuMillis {
        self.at_fraction(self.started(), PROCESSING_AT)
    }

    pub fn phase(&self, now: EmuMillis) -> Phase {
        let timeline = self.timeline();
        if let Some((cut, by_deadline)) = self.cut(timeline)
            && now >= cut
        {
            let processing = self.at_fraction(timeline.started, PREPROCESSING_AT);
            return if by_deadline && cut < processing {
                Phase::Aborted
            } else {
                Phase::Canceled
            };
        }
        if now >= self.natural_end(timeline.started) {
            return match self.failure {
                None => Phase::Succeeded,
                Some(f) => Phase::Failed(f),
            };
        }
        if now < timeline.started {
            return Phase::Waiting;
        }
        let fraction = (now - timeline.started) as f64 / self.duration.max(1) as f64;
        if fraction < PREPROCESSING_AT {
            Phase::Queued
        } else if fraction < RUNNING_AT {
            Phase::Preprocessing { fraction }
        } else if fraction < PROCESSING_AT {
            Phase::Running { fraction }
        } else {
            Phase::Processing { fraction }
        }
    }

    /// When the store forgets it (`EmuMillis::MAX`: never).
    pub fn expires(&self) -> EmuMillis {
        match self.keep {
            Keep::AfterCreation(keep) => self.created.saturating_add(keep),
            Keep::AfterCompletion(keep) => self.finished_at().saturating_add(keep),
            Keep::Forever => EmuMillis::MAX,
        }
    }

    pub fn is_expired(&self, now: EmuMillis) -> bool {
        now >= self.expires()
    }

    /// Until when its outputs are kept, counted from completion (fal's result JSON,
    /// Replicate's data); `None` while it runs.
    pub fn outputs_until(&self, now: EmuMillis) -> Option<EmuMillis> {
        self.phase(now)
            .is_finished()
            .then(|| self.finished_at().saturating_add(self.retention))
    }
}

/// Why a create was refused.
#[derive(Debug)]
pub enum CreateRefused {
    /// `max_running` jobs are already running; one finishes after this (emulated) wait.
    TooManyRunning { max: usize, wait: Duration },
}

/// Largest `seconds` a rule allows.
fn max_seconds(rule: &SecondsRule) -> u32 {
    match rule {
        SecondsRule::Range { max, .. } => *max,
        SecondsRule::OneOf(values) => values.iter().copied().max().unwrap_or(1),
    }
}

/// Emulated generation time: 1 minute plus up to 4 more as the workload (seconds × pixels ×
/// variants) approaches the largest the API allows. Deterministic.
pub fn generation_time(limits: &ApiLimits, pixels: u64, seconds: u32, variants: u32) -> EmuMillis {
    let variants_factor = |v: u32| if limits.variants_per_job { v } else { 1 };
    let max_frame = limits
        .sizes
        .iter()
        .map(|r| r.size.pixels() * u64::from(variants_factor(r.max_variants)))
        .max();
    let max = max_frame.unwrap_or(1) as f64 * f64::from(max_seconds(&limits.seconds));
    let work = pixels as f64 * f64::from(seconds) * f64::from(variants_factor(variants));
    (BASE_MS + EXTRA_MS * (work / max).min(1.0)) as EmuMillis
}

#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    max_running: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Creation order (ids are unique; deleted and expired jobs are removed).
    order: Vec<Arc<Job>>,
    jobs: HashMap<String, Arc<Job>>,
    generations: HashMap<String, (Arc<Job>, Arc<Generation>)>,
}

/// Whether two APIs share one account's slots: Azure and OpenAI run on one resource, fal
/// and Replicate are accounts of their own.
fn same_account(a: Api, b: Api) -> bool {
    let account = |api| match api {
        Api::AzureJobs | Api::OpenaiVideos => 0,
        Api::Fal => 1,
        Api::Replicate => 2,
        Api::Openrouter => 3,
    };
    account(a) == account(b)
}

/// A job's slot as `(start, end)`; a job canceled while waiting has `end <= start`.
type Span = (EmuMillis, EmuMillis);

fn running_at(spans: &[Span], t: EmuMillis) -> usize {
    spans.iter().filter(|(s, e)| *s <= t && t < *e).count()
}

/// The first instant at or after `arrival` when a job behind `ahead` (first in, first
/// out) finds one of `max` slots free. Once every job ahead has started, slots only free
/// up, so the answer is the first end (or the arrival) with a free slot.
fn fifo_start(ahead: &[Span], arrival: EmuMillis, max: usize) -> EmuMillis {
    let not_before = ahead
        .iter()
        .filter(|(s, e)| e > s)
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0)
        .max(arrival);
    let mut candidates: Vec<EmuMillis> = ahead
        .iter()
        .map(|(_, e)| *e)
        .filter(|e| *e > not_before)
        .collect();
    candidates.push(not_before);
    candidates.sort_unstable();
    candidates
        .into_iter()
        .find(|t| running_at(ahead, *t) < max.max(1))
        .unwrap_or(not_before)
}

impl Inner {
    fn running(&self, now: EmuMillis) -> impl Iterator<Item = &Arc<Job>> {
        self.order
            .iter()
            .filter(move |j| j.started() <= now && now < j.finished_at())
    }

    fn account(&self, api: Api) -> impl Iterator<Item = &Arc<Job>> {
        self.order
            .iter()
            .filter(move |j| same_account(j.spec.api, api))
    }

    fn spans(&self, api: Api) -> Vec<Span> {
        self.account(api)
            .map(|j| (j.started(), j.finished_at()))
            .collect()
    }

    /// Gives the waiting jobs of `api`'s account the slots freed by a cancel at `now`.
    fn reschedule(&self, api: Api, now: EmuMillis, max: usize) {
        let mut spans: Vec<Span> = Vec::new();
        for job in self.account(api) {
            let waiting = job.started() > now && !job.phase(now).is_finished();
            if waiting {
                let started = fifo_start(&spans, job.created.max(now), max);
                job.timeline
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .started = started;
            }
            spans.push((job.started(), job.finished_at()));
        }
    }

    fn purge_expired(&mut self, now: EmuMillis) {
        if !self.order.iter().any(|j| j.is_expired(now)) {
            return;
        }
        self.order.retain(|j| !j.is_expired(now));
        self.jobs.retain(|_, j| !j.is_expired(now));
        self.generations.retain(|_, (j, _)| !j.is_expired(now));
    }
}

/// Ids of a new job and its generations.
pub struct NewIds {
    pub job: String,
    pub generations: Vec<String>,
}

impl Store {
    /// `max_running`: the slots of each account (a cap where creates are refused).
    pub fn new(max_running: usize) -> Store {
        Store {
            inner: Mutex::new(Inner::default()),
            max_running,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a job: refused if `max_running` of its account run and it is not a queueing
    /// service, else given its slot. Returns the job and how many of its account run when
    /// it starts, itself included.
    pub fn create(
        &self,
        spec: JobSpec,
        ids: NewIds,
        failure: Option<Failure>,
        lifecycle: Lifecycle,
        now: EmuMillis,
    ) -> Result<(Arc<Job>, usize), CreateRefused> {
        let mut inner = self.lock();
        inner.purge_expired(now);
        let spans = inner.spans(spec.api);
        let started = match lifecycle.admission {
            Admission::Refuse => {
                if running_at(&spans, now) >= self.max_running {
                    let first_done = spans
                        .iter()
                        .filter(|(s, e)| *s <= now && now < *e)
                        .map(|(_, e)| *e)
                        .min()
                        .unwrap_or(now);
                    return Err(CreateRefused::TooManyRunning {
                        max: self.max_running,
                        wait: Duration::from_millis(first_done.saturating_sub(now).max(1)),
                    });
                }
                now
            }
            Admission::Queue => fifo_start(&spans, now, self.max_running),
        };
        let running = running_at(&spans, started) + 1;
        let limits = spec.api.limits();
        let duration = generation_time(
            limits,
            u64::from(spec.width) * u64::from(spec.height),
            spec.seconds,
            spec.variants,
        );
        let generations = ids
            .generations
            .into_iter()
            .zip(1..)
            .map(|(id, variant)| {
                Arc::new(Generation {
                    id,
                    variant,
                    assets: Assets::default(),
                })
            })
            .collect();
        let job = Arc::new(Job {
            id: ids.job,
            spec,
            created: now,
            duration,
            failure,
            keep: lifecycle.keep,
            retention: lifecycle.retention,
            generations,
            timeline: Mutex::new(Timeline {
                started,
                canceled: None,
            }),
        });
        inner.order.push(job.clone());
        inner.jobs.insert(job.id.clone(), job.clone());
        for g in &job.generations {
            inner
                .generations
                .insert(g.id.clone(), (job.clone(), g.clone()));
        }
        Ok((job, running))
    }

    /// Cancels `job` at `now` unless it has finished (`false` then); the jobs waiting
    /// behind it in its account move up.
    pub fn cancel(&self, job: &Job, now: EmuMillis) -> bool {
        let inner = self.lock();
        if job.phase(now).is_finished() {
            return false;
        }
        job.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .canceled = Some(now);
        inner.reschedule(job.spec.api, now, self.max_running);
        true
    }

    /// How many jobs of `job`'s account wait for a slot ahead of it (0-based).
    pub fn queue_position(&self, job: &Job, now: EmuMillis) -> usize {
        self.lock()
            .account(job.spec.api)
            .take_while(|j| j.id != job.id)
            .filter(|j| j.phase(now) == Phase::Waiting)
            .count()
    }

    /// A live (not deleted, not expired) job.
    pub fn job(&self, id: &str, now: EmuMillis) -> Option<Arc<Job>> {
        self.lock()
            .jobs
            .get(id)
            .filter(|j| !j.is_expired(now))
            .cloned()
    }

    /// A live job of `api` (another API's job of that id is not one).
    pub fn job_of(&self, api: Api, id: &str, now: EmuMillis) -> Option<Arc<Job>> {
        self.job(id, now).filter(|j| j.spec.api == api)
    }

    /// A generation of a live job that has succeeded.
    pub fn generation(&self, id: &str, now: EmuMillis) -> Option<(Arc<Job>, Arc<Generation>)> {
        let inner = self.lock();
        let (job, generation) = inner.generations.get(id)?;
        (!job.is_expired(now) && job.phase(now) == Phase::Succeeded)
            .then(|| (job.clone(), generation.clone()))
    }

    /// Live jobs of one API in creation order, oldest first.
    pub fn list(&self, api: Api, now: EmuMillis) -> Vec<Arc<Job>> {
        let mut inner = self.lock();
        inner.purge_expired(now);
        inner
            .order
            .iter()
            .filter(|j| j.spec.api == api)
            .cloned()
            .collect()
    }

    /// Removes a job and its generations; `false` if there was no such live job.
    pub fn delete(&self, id: &str, now: EmuMillis) -> bool {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.remove(id) else {
            return false;
        };
        inner.order.retain(|j| j.id != id);
        for g in &job.generations {
            inner.generations.remove(&g.id);
        }
        !job.is_expired(now)
    }

    /// Jobs of every account that have a slot and have not finished.
    pub fn running(&self, now: EmuMillis) -> usize {
        self.lock().running(now).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_time_spans_one_to_five_minutes() {
        let azure = Api::AzureJobs.limits();
        let openai_limits = Api::OpenaiVideos.limits();
        let smallest = generation_time(azure, 480 * 480, 1, 1);
        let largest = generation_time(azure, 1920 * 1080, 20, 1);
        assert!((60_000..70_000).contains(&smallest), "{smallest}");
        assert_eq!(largest, 300_000);
        let openai = generation_time(openai_limits, 1792 * 1024, 12, 1);
        assert_eq!(openai, 300_000);
        assert!(generation_time(openai_limits, 720 * 1280, 4, 1) < openai);
    }

    fn spec_of(api: Api) -> JobSpec {
        JobSpec {
            api,
            prompt: "a cat".into(),
            model: "sora".into(),
            width: 480,
            height: 480,
            seconds: 5,
            variants: 1,
            remixed_from: None,
            input: Map::new(),
            deadline: None,
            images: Vec::new(),
        }
    }

    fn spec() -> JobSpec {
        spec_of(Api::AzureJobs)
    }

    fn ids(n: u32) -> NewIds {
        NewIds {
            job: format!("task_{n}"),
            generations: vec![format!("gen_{n}")],
        }
    }

    const AZURE: Lifecycle = Lifecycle {
        admission: Admission::Refuse,
        keep: Keep::AfterCreation(3_600_000),
        retention: 3_600_000,
    };
    const QUEUED: Lifecycle = Lifecycle {
        admission: Admission::Queue,
        keep: Keep::AfterCompletion(3_600_000),
        retention: 3_600_000,
    };

    #[test]
    fn phases_follow_the_clock_and_running_jobs_are_capped() {
        let store = Store::new(2);
        let (job, running) = store.create(spec(), ids(1), None, AZURE, 0).unwrap();
        assert_eq!(running, 1);
        assert_eq!(job.phase(0), Phase::Queued);
        assert!(matches!(job.phase(job.duration / 2), Phase::Running { .. }));
        assert_eq!(job.phase(job.duration), Phase::Succeeded);
        store
            .create(spec(), ids(2), Some(Failure::Moderation), AZURE, 0)
            .unwrap();
        let Err(CreateRefused::TooManyRunning { max: 2, .. }) =
            store.create(spec(), ids(3), None, AZURE, 1)
        else {
            panic!("third job accepted")
        };
        // The moderated job fails early, freeing a slot.
        let later = job.duration / 2;
        assert!(store.create(spec(), ids(4), None, AZURE, later).is_ok());
        assert!(store.generation("gen_1", later).is_none());
        assert!(store.generation("gen_1", job.duration).is_some());
        assert!(store.job("task_1", 3_600_000).is_none(), "expired");
    }

    #[test]
    fn queued_jobs_wait_for_a_slot_in_order_and_move_up_on_cancel() {
        let store = Store::new(2);
        let jobs: Vec<Arc<Job>> = (0..4)
            .map(|n| {
                store
                    .create(spec_of(Api::Fal), ids(n), None, QUEUED, u64::from(n))
                    .unwrap()
                    .0
            })
            .collect();
        let d = jobs[0].duration;
        assert_eq!(jobs[2].started(), jobs[0].finished_at());
        assert_eq!(jobs[3].started(), jobs[1].finished_at());
        assert_eq!(jobs[2].phase(10), Phase::Waiting);
        assert_eq!(store.queue_position(&jobs[2], 10), 0);
        assert_eq!(store.queue_position(&jobs[3], 10), 1);
        assert_eq!(store.running(10), 2, "waiting jobs hold no slot");
        // Azure's cap is another account's.
        assert!(store.create(spec(), ids(9), None, AZURE, 10).is_ok());
        // Canceling a running job starts the first waiting one now, and the next moves up.
        assert!(store.cancel(&jobs[0], d / 2));
        assert_eq!(jobs[0].phase(d / 2), Phase::Canceled);
        assert_eq!(jobs[2].started(), d / 2);
        assert_eq!(store.queue_position(&jobs[3], d / 2), 0);
        // Canceling a waiting job frees no slot but lets the one behind it pass.
        assert!(store.cancel(&jobs[3], d / 2 + 1));
        assert!(!store.cancel(&jobs[3], d / 2 + 2), "already finished");
        assert_eq!(jobs[3].phase(d), Phase::Canceled);
        assert_eq!(jobs[1].phase(d + 10), Phase::Succeeded);
        // Kept until completion + keep.
        assert!(store.job("task_1", d + 3_600_000).is_some());
        assert!(
            store
                .job("task_1", jobs[1].finished_at() + 3_600_000)
                .is_none()
        );
    }

    #[test]
    fn a_deadline_aborts_a_waiting_job_and_cancels_a_processing_one() {
        let store = Store::new(1);
        let first = store
            .create(spec_of(Api::Replicate), ids(1), None, QUEUED, 0)
            .unwrap()
            .0;
        let mut short = spec_of(Api::Replicate);
        short.deadline = Some(5_000);
        let aborted = store
            .create(short.clone(), ids(2), None, QUEUED, 0)
            .unwrap()
            .0;
        assert_eq!(aborted.phase(4_999), Phase::Waiting);
        assert_eq!(aborted.phase(5_000), Phase::Aborted);
        short.deadline = Some(first.duration / 2);
        let store = Store::new(1);
        let canceled = store.create(short, ids(3), None, QUEUED, 0).unwrap().0;
        assert_eq!(canceled.phase(canceled.duration / 2), Phase::Canceled);
        assert_eq!(canceled.finished_at(), canceled.duration / 2);
    }
}
