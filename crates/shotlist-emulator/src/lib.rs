//! A faithful local emulator of both video APIs, rendering real placeholder MP4s.
//!
//! `shotlist emulator` runs it as a server; the renderer and the tests start it in-process
//! with [`Emulator::start`]. It speaks the Azure OpenAI video generation jobs API
//! (`/openai/v1/video/generations/...`) and the OpenAI videos API (`/v1/videos`, also under
//! `/openai/v1/videos`), with the documented limits of [`shotlist_models::limits`], a scaled clock,
//! the request quota, the running-job cap, expiry, and seeded fault injection. State lives
//! in memory only. It must never reach the network beyond its own listener.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use std::sync::Arc;

use shotlist_models::catalogue::Catalogue;
use shotlist_models::limits::Api;

mod assets;
mod auth;
mod azure;
mod clock;
mod content;
mod errors;
mod faults;
mod ids;
mod openai;
mod quota;
mod reference;
mod server;
mod state;
mod stats;
pub mod video;

pub use errors::EmulatorError;
pub use faults::{FaultSpec, FaultSpecError};
pub use stats::Stats;

/// The default listen address, `127.0.0.1:8089`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8089);
/// The default moderation word: a prompt containing it always fails moderation.
pub const DEFAULT_MODERATION_WORD: &str = "forbidden";

/// How to run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port ([`Emulator::addr`] tells which).
    pub listen: SocketAddr,
    /// When set, every API request must carry `api-key: KEY` or `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Requests per emulated minute (all API requests count); 0: no quota.
    pub rpm: u32,
    /// Jobs running at once; a create beyond that gets 429.
    pub max_running: usize,
    /// How much faster than real time the emulated clock runs.
    pub time_scale: f64,
    /// How long (emulated) jobs and their content stay available.
    pub retention: Duration,
    /// Seeds fault injection and ids.
    pub seed: u64,
    pub faults: FaultSpec,
    /// A prompt containing this word (case-insensitive) always fails moderation.
    pub moderation_word: Option<String>,
    /// One line per request on stderr.
    pub log_requests: bool,
    /// The models it serves and their limits: the shipped catalogue, or a board's (with
    /// its `shotlist.models.yaml`), so a model added there renders with no code change.
    pub catalogue: Arc<Catalogue>,
}

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        let limits = Api::AzureJobs.limits();
        EmulatorConfig {
            listen: DEFAULT_LISTEN,
            api_key: None,
            rpm: limits.requests_per_minute,
            max_running: limits.max_running_jobs,
            time_scale: 1.0,
            retention: Duration::from_secs(limits.retention_seconds),
            seed: 0,
            faults: FaultSpec::none(),
            moderation_word: Some(DEFAULT_MODERATION_WORD.to_owned()),
            log_requests: false,
            catalogue: Arc::new(Catalogue::builtin().clone()),
        }
    }
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] leaves the server
/// running until the runtime ends.
pub struct Emulator {
    running: server::Running,
}

impl Emulator {
    /// Binds `cfg.listen` and starts serving in the background.
    pub async fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        Ok(Emulator {
            running: server::start(cfg).await?,
        })
    }

    /// The bound address (the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// A snapshot of the counters (the same as `GET /_emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.running.app.stats()
    }

    /// Stops accepting requests, lets open ones finish (a few seconds at most), and stops
    /// pending renders.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.running.addr)
            .finish_non_exhaustive()
    }
}
