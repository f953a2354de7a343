//! A faithful local emulator of every video API shotlist speaks, rendering real
//! placeholder MP4s.
//!
//! `shotlist emulator` runs it as a server; the renderer and the tests start it in-process
//! with [`Emulator::start`]. One address speaks the Azure OpenAI video generation jobs API
//! (`/openai/v1/video/generations/...`), the OpenAI videos API (`/v1/videos`, also under
//! `/openai/v1/videos`), Replicate's predictions API (`/v1/models/{owner}/{name}/predictions`,
//! `/v1/predictions...`), OpenRouter's video generation API (`/api/v1/videos...`) and fal's
//! queue API (every other path: `/{model id}`, `/{owner}/{app}/requests/{id}...`), with the documented limits of the catalogue
//! ([`shotlist_models::catalogue`]), a scaled clock, the request quota, the running-job cap
//! or the queue, expiry, an account's credit (OpenRouter's 402), and seeded fault
//! injection. A second listener, the media host, serves fal's, Replicate's and
//! OpenRouter's output files as their storage hosts do. Both serve plain HTTP, or
//! HTTPS with [`EmulatorConfig::tls`]. State lives in memory only. It must never reach the
//! network beyond its own listeners (webhooks are accepted, never called).

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
mod credit;
mod errors;
mod fal;
mod faults;
mod ids;
mod images;
mod media;
mod model_input;
mod openai;
mod openrouter;
mod quota;
mod reference;
mod replicate;
mod server;
mod state;
mod stats;
mod tls;
pub mod video;

pub use errors::EmulatorError;
pub use faults::{FaultSpec, FaultSpecError};
pub use stats::Stats;
pub use tls::TlsFiles;

/// The default listen address, `127.0.0.1:8089`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8089);
/// The default media host address, `127.0.0.2` on any free port: another host than the
/// API's, as fal's and Replicate's CDNs are, so a client that sends its key there shows.
pub const DEFAULT_MEDIA_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0);
/// How long fal's media files stay after completion by default: fal keeps them "at least
/// 7 days" (<https://docs.fal.ai/documentation/model-apis/media-expiration>).
pub const DEFAULT_MEDIA_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default moderation word: a prompt containing it always fails moderation.
pub const DEFAULT_MODERATION_WORD: &str = "forbidden";

/// How to run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port ([`Emulator::addr`] tells which).
    pub listen: SocketAddr,
    /// Where the media host listens (fal's and Replicate's files); port 0 picks a free
    /// port ([`Emulator::media_addr`]). Where the default `127.0.0.2` cannot be bound, it
    /// falls back to `127.0.0.1` on any port and says so on stderr.
    pub media_listen: SocketAddr,
    /// Serve both listeners over HTTPS with this PEM certificate and key.
    pub tls: Option<TlsFiles>,
    /// When set, every API request must carry it in the service's own scheme: `api-key: KEY`
    /// or `Authorization: Bearer KEY` (Azure, OpenAI), `Authorization: Key KEY` (fal),
    /// `Authorization: Bearer KEY` or `Token KEY` (Replicate), `Authorization: Bearer KEY`
    /// (OpenRouter). The media host asks for none.
    pub api_key: Option<String>,
    /// Requests per emulated minute (all API requests count); 0: no quota.
    pub rpm: u32,
    /// Replicate's creates per emulated minute, apart from `rpm` (a create past it gets 429
    /// with `Retry-After`); `None`: the catalogue's `requests_per_minute` for Replicate;
    /// `Some(0)`: no limit.
    pub create_rpm: Option<u32>,
    /// Jobs running at once per account. Azure and OpenAI (one resource): a create beyond
    /// it gets 429. fal and Replicate (an account each): it is the account's slots, and a
    /// create beyond it waits in the queue (`IN_QUEUE`, `starting`), first in, first out.
    pub max_running: usize,
    /// How much faster than real time the emulated clock runs.
    pub time_scale: f64,
    /// How long (emulated) jobs and their content stay available. Azure and OpenAI: from
    /// creation. fal (the result JSON) and Replicate (input, output, logs): from
    /// completion, the catalogue's `retention_seconds` or this, whichever is shorter.
    /// OpenRouter (the same, shorter of the two): a job still unfinished this long after
    /// creation, or completed this long ago, is `expired` (its video gone).
    pub retention: Duration,
    /// How long (emulated) the media host serves a fal output after completion (longer
    /// than its result JSON, as fal's CDN does); Replicate's go with its data, `retention`.
    pub media_retention: Duration,
    /// The OpenRouter account's credit in US dollars: each create charges its estimated
    /// cost (the catalogue's price per second × seconds; nothing for a model whose price
    /// is unknown), and a create it does not cover gets 402. `None`: no limit.
    pub credit_usd: Option<f64>,
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
            media_listen: DEFAULT_MEDIA_LISTEN,
            tls: None,
            api_key: None,
            rpm: limits.requests_per_minute,
            create_rpm: None,
            max_running: limits.max_running_jobs,
            time_scale: 1.0,
            retention: Duration::from_secs(limits.retention_seconds),
            media_retention: DEFAULT_MEDIA_RETENTION,
            credit_usd: None,
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

    /// The media host's bound address.
    pub fn media_addr(&self) -> SocketAddr {
        self.running.media_addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> String {
        self.running.app.base_url.clone()
    }

    /// `http://127.0.0.2:PORT` (`https://` with TLS): where fal's `video.url` and
    /// Replicate's `output` point, `{media_base_url}/files/{token}/output.mp4`.
    pub fn media_base_url(&self) -> String {
        self.running.app.media_base_url.clone()
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
            .field("media_addr", &self.running.media_addr)
            .finish_non_exhaustive()
    }
}
