//! The jobs store: every job and generation the emulator knows, and where each job is in
//! its life.
//!
//! A job's status is a pure function of the emulated clock: it is fixed at creation when
//! the job will finish and how (succeed, fail moderation, fail internally), and every read
//! derives the status from the time. No background task moves jobs along, so a paused or
//! slow client sees the same timeline as a fast one. This module never does I/O and never
//! encodes video (see `assets.rs`); it holds the lock only for bookkeeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shotlist_models::limits::{Api, ApiLimits, SecondsRule};

use super::assets::Assets;
use super::clock::EmuMillis;
use super::faults::JobFault;

/// Generation time at the smallest workload and the extra for the largest (emulated).
const BASE_MS: f64 = 60_000.0;
const EXTRA_MS: f64 = 240_000.0;

/// Where in a job's duration each Azure status begins (fractions of the duration).
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
    Queued,
    Preprocessing { fraction: f64 },
    Running { fraction: f64 },
    Processing { fraction: f64 },
    Succeeded,
    Failed(Failure),
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed(_))
    }
}

/// One placeholder video of a job (Azure: a generation; OpenAI: the video itself).
#[derive(Debug)]
pub struct Generation {
    pub id: String,
    /// 1-based.
    pub variant: u32,
    pub assets: Assets,
}

#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub spec: JobSpec,
    pub created: EmuMillis,
    /// When the job succeeds, or would have had it not failed.
    pub duration: EmuMillis,
    pub failure: Option<Failure>,
    pub expires: EmuMillis,
    /// Ids are fixed at creation; the generations are shown only once the job succeeded.
    pub generations: Vec<Arc<Generation>>,
}

impl Job {
    fn at_fraction(&self, fraction: f64) -> EmuMillis {
        self.created + (self.duration as f64 * fraction) as EmuMillis
    }

    /// When the job stops running (succeeds or fails).
    pub fn finished_at(&self) -> EmuMillis {
        match self.failure {
            None => self.created + self.duration,
            Some(Failure::Moderation) => self.at_fraction(MODERATION_FAILS_AT),
            Some(Failure::InternalError) => self.at_fraction(INTERNAL_ERROR_FAILS_AT),
        }
    }

    /// When encoding should start, for jobs that will succeed.
    pub fn processing_at(&self) -> EmuMillis {
        self.at_fraction(PROCESSING_AT)
    }

    pub fn phase(&self, now: EmuMillis) -> Phase {
        if now >= self.finished_at() {
            return match self.failure {
                None => Phase::Succeeded,
                Some(f) => Phase::Failed(f),
            };
        }
        let fraction = now.saturating_sub(self.created) as f64 / self.duration.max(1) as f64;
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

    pub fn is_expired(&self, now: EmuMillis) -> bool {
        now >= self.expires
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
    retention: EmuMillis,
}

#[derive(Debug, Default)]
struct Inner {
    /// Creation order (ids are unique; deleted and expired jobs are removed).
    order: Vec<Arc<Job>>,
    jobs: HashMap<String, Arc<Job>>,
    generations: HashMap<String, (Arc<Job>, Arc<Generation>)>,
}

impl Inner {
    fn running(&self, now: EmuMillis) -> impl Iterator<Item = &Arc<Job>> {
        self.order.iter().filter(move |j| j.finished_at() > now)
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
    pub fn new(max_running: usize, retention: Duration) -> Store {
        Store {
            inner: Mutex::new(Inner::default()),
            max_running,
            retention: retention.as_millis() as EmuMillis,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a job unless `max_running` are running. Returns the job and how many run now.
    pub fn create(
        &self,
        spec: JobSpec,
        ids: NewIds,
        failure: Option<Failure>,
        now: EmuMillis,
    ) -> Result<(Arc<Job>, usize), CreateRefused> {
        let mut inner = self.lock();
        inner.purge_expired(now);
        let running = inner.running(now).count();
        if running >= self.max_running {
            let first_done = inner
                .running(now)
                .map(|j| j.finished_at())
                .min()
                .unwrap_or(now);
            return Err(CreateRefused::TooManyRunning {
                max: self.max_running,
                wait: Duration::from_millis(first_done.saturating_sub(now).max(1)),
            });
        }
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
            expires: now + self.retention,
            generations,
        });
        inner.order.push(job.clone());
        inner.jobs.insert(job.id.clone(), job.clone());
        for g in &job.generations {
            inner
                .generations
                .insert(g.id.clone(), (job.clone(), g.clone()));
        }
        Ok((job, running + 1))
    }

    /// A live (not deleted, not expired) job.
    pub fn job(&self, id: &str, now: EmuMillis) -> Option<Arc<Job>> {
        self.lock()
            .jobs
            .get(id)
            .filter(|j| !j.is_expired(now))
            .cloned()
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

    fn spec() -> JobSpec {
        JobSpec {
            api: Api::AzureJobs,
            prompt: "a cat".into(),
            model: "sora".into(),
            width: 480,
            height: 480,
            seconds: 5,
            variants: 1,
            remixed_from: None,
        }
    }

    fn ids(n: u32) -> NewIds {
        NewIds {
            job: format!("task_{n}"),
            generations: vec![format!("gen_{n}")],
        }
    }

    #[test]
    fn phases_follow_the_clock_and_running_jobs_are_capped() {
        let store = Store::new(2, Duration::from_secs(3600));
        let (job, running) = store.create(spec(), ids(1), None, 0).unwrap();
        assert_eq!(running, 1);
        assert_eq!(job.phase(0), Phase::Queued);
        assert!(matches!(job.phase(job.duration / 2), Phase::Running { .. }));
        assert_eq!(job.phase(job.duration), Phase::Succeeded);
        store
            .create(spec(), ids(2), Some(Failure::Moderation), 0)
            .unwrap();
        let Err(CreateRefused::TooManyRunning { max: 2, .. }) =
            store.create(spec(), ids(3), None, 1)
        else {
            panic!("third job accepted")
        };
        // The moderated job fails early, freeing a slot.
        let later = job.duration / 2;
        assert!(store.create(spec(), ids(4), None, later).is_ok());
        assert!(store.generation("gen_1", later).is_none());
        assert!(store.generation("gen_1", job.duration).is_some());
        assert!(store.job("task_1", 3_600_000).is_none(), "expired");
    }
}
