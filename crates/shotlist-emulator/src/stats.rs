//! Counters of what the emulator saw, served at `GET /_emulator/stats` and by
//! [`Emulator::stats`](super::Emulator::stats).
//!
//! Tests of clients read these to prove pacing (`requests_max_per_minute`), concurrency
//! (`jobs_running_max`) and idempotency (`creates_by_prompt_hash`). Recording must stay
//! cheap and must never fail a request; `/_emulator/*` requests are not counted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::clock::EmuMillis;
use super::quota::SlidingWindow;

/// A snapshot of the counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Jobs created (both APIs, remixes included; refused creates excluded).
    pub jobs_created: u64,
    /// Jobs neither finished nor deleted right now.
    pub jobs_running: u64,
    /// Most jobs ever running at once.
    pub jobs_running_max: u64,
    /// API requests received (everything but `/_emulator/*`), refused ones included.
    pub requests_total: u64,
    /// Most API requests received in any sliding emulated minute.
    pub requests_max_per_minute: u64,
    /// Responses with status 429 (quota, running-job limit or injected).
    pub responses_429: u64,
    /// Content bytes (videos, thumbnails, sprite sheets) actually sent.
    pub bytes_served: u64,
    /// Content downloads started (GET, not HEAD), on either host.
    pub content_downloads: u64,
    /// Requests to the media host (fal's and Replicate's CDN stand-in), any method.
    pub media_requests: u64,
    /// Media host requests that carried a credential header (`authorization`, `api-key`,
    /// `x-api-key`, `cookie`): the media needs none, so a client sending one leaks it to
    /// a host that is not the API's.
    pub media_requests_with_credential: u64,
    /// Responses by status code.
    pub responses_by_status: BTreeMap<String, u64>,
    /// Faults injected, by kind (`429`, `500`, `503`, `drop`, `slow`, `truncate`, `fail`,
    /// `moderation`, `402`).
    pub faults_injected: BTreeMap<String, u64>,
    /// US dollars charged to the account's credit by OpenRouter creates (their estimated
    /// cost from the catalogue's price; 0 for a model whose price is unknown).
    pub credit_charged_usd: f64,
    /// Creates by the first 16 hex digits of the SHA-256 of the prompt: a count above 1
    /// means a client paid for the same prompt twice.
    pub creates_by_prompt_hash: BTreeMap<String, u64>,
    /// The images each job was created with, by the job's id as its client sees it, in
    /// the order sent.
    #[serde(default)]
    pub input_images: BTreeMap<String, Vec<super::images::InputImage>>,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub struct StatsRecorder {
    inner: Mutex<Inner>,
    bytes_served: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    stats: Stats,
    window: SlidingWindow,
}

/// The key of `creates_by_prompt_hash`.
pub fn prompt_hash(prompt: &str) -> String {
    let digest = Sha256::digest(prompt.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl StatsRecorder {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn request(&self, now: EmuMillis) {
        self.with(|i| {
            i.stats.requests_total += 1;
            let in_window = i.window.push(now) as u64;
            i.stats.requests_max_per_minute = i.stats.requests_max_per_minute.max(in_window);
        });
    }

    pub fn response(&self, status: u16) {
        self.with(|i| {
            if status == 429 {
                i.stats.responses_429 += 1;
            }
            *i.stats
                .responses_by_status
                .entry(status.to_string())
                .or_default() += 1;
        });
    }

    pub fn fault(&self, kind: &str) {
        self.with(|i| *i.stats.faults_injected.entry(kind.to_owned()).or_default() += 1);
    }

    /// A job was created; `running` counts it.
    pub fn job_created(&self, prompt: &str, running: usize) {
        self.with(|i| {
            i.stats.jobs_created += 1;
            i.stats.jobs_running_max = i.stats.jobs_running_max.max(running as u64);
            *i.stats
                .creates_by_prompt_hash
                .entry(prompt_hash(prompt))
                .or_default() += 1;
        });
    }

    pub fn input_images(&self, job: &str, images: &[super::images::InputImage]) {
        if !images.is_empty() {
            self.with(|i| {
                i.stats.input_images.insert(job.to_owned(), images.to_vec());
            });
        }
    }

    pub fn credit_charged(&self, usd: f64) {
        self.with(|i| i.stats.credit_charged_usd += usd);
    }

    pub fn media_request(&self, with_credential: bool) {
        self.with(|i| {
            i.stats.media_requests += 1;
            if with_credential {
                i.stats.media_requests_with_credential += 1;
            }
        });
    }

    pub fn content_download(&self) {
        self.with(|i| i.stats.content_downloads += 1);
    }

    pub fn bytes(&self, n: usize) {
        self.bytes_served.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self, jobs_running: usize) -> Stats {
        let mut stats = self.with(|i| i.stats.clone());
        stats.bytes_served = self.bytes_served.load(Ordering::Relaxed);
        stats.jobs_running = jobs_running as u64;
        stats
    }
}
