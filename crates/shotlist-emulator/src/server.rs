//! The HTTP server: shared state, the router of every API, the layers every request goes
//! through (request id, log line, stats, auth, quota, faults), the media host beside it,
//! start (plain or TLS) and shutdown.
//!
//! One address speaks every protocol: OpenRouter's `/api/v1`, Azure's and OpenAI's
//! prefixes, Replicate's
//! `/v1/models/…/predictions` and `/v1/predictions…`, and fal for every other path (fal's
//! paths are model ids). Order of the API layers: count → authenticate (401) → quota (429)
//! → injected fault → handler → `drop`/`slow` on the way out, each answering in the
//! service's own error shape. `/_emulator/*` skips all of them but the request id and the
//! log line: checking the emulator must never change what it does. This module must never
//! log a credential or a query secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shotlist_models::catalogue::Catalogue;
use shotlist_models::limits::{Api, ApiLimits};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::assets::{self, AssetKind};
use super::auth::{self, AuthOutcome};
use super::clock::{Clock, EmuMillis};
use super::content::cut_short;
use super::credit::Credit;
use super::errors::{ApiError, EmulatorError, Flavor};
use super::faults::{Faults, RequestFault};
use super::ids::IdGen;
use super::quota::Quota;
use super::state::{
    Admission, CreateRefused, Failure, Job, JobSpec, Keep, Lifecycle, NewIds, Phase, Store,
};
use super::stats::{Stats, StatsRecorder};
use super::tls::{self, TlsListener};
use super::{EmulatorConfig, azure, fal, media, openai, openrouter, replicate};

/// Uploads (`input_reference`) can be large images.
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// How long shutdown waits for open requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    pub catalogue: Arc<Catalogue>,
    pub api_key: Option<String>,
    pub moderation_word: Option<String>,
    pub log_requests: bool,
    pub clock: Clock,
    pub store: Store,
    pub quota: Quota,
    pub faults: Faults,
    pub stats: Arc<StatsRecorder>,
    pub ids: IdGen,
    pub shutdown: CancellationToken,
    /// `http://127.0.0.1:PORT` (`https://` with TLS): fal's URLs, Replicate's `urls`.
    pub base_url: String,
    /// The media host's, the same way.
    pub media_base_url: String,
    /// Replicate's create rate (separate from the request quota).
    pub create_quota: Quota,
    /// `EmulatorConfig::retention` (emulated).
    pub retention: EmuMillis,
    /// `EmulatorConfig::media_retention` (emulated).
    pub media_retention: EmuMillis,
    /// The OpenRouter account's balance (`EmulatorConfig::credit_usd`).
    pub credit: Credit,
}

impl App {
    /// The limits a create for `model` on `api` is checked against: the model's own when
    /// the catalogue knows it, else the API's (deployment names, gateway names).
    pub fn limits_for(&self, api: Api, model: &str) -> ApiLimits {
        match self.catalogue.find(api, model) {
            Some(entry) => ApiLimits::for_model(&self.catalogue, entry),
            None => ApiLimits::from_catalogue(&self.catalogue, api),
        }
    }

    pub fn now(&self) -> EmuMillis {
        self.clock.now()
    }

    pub fn stats(&self) -> Stats {
        self.stats.snapshot(self.store.running(self.now()))
    }

    fn is_moderated(&self, prompt: &str) -> bool {
        self.moderation_word
            .as_deref()
            .filter(|w| !w.is_empty())
            .is_some_and(|w| prompt.to_lowercase().contains(&w.to_lowercase()))
    }

    /// How `api`'s service admits and keeps jobs. Azure and OpenAI refuse a create beyond
    /// `max_running` and keep jobs `retention` from creation. fal and Replicate queue it,
    /// and keep outputs the catalogue's `retention_seconds` after completion, or
    /// `retention` where that is shorter (so tests can shorten it): fal forgets the request
    /// then but serves its media `media_retention` after completion; Replicate keeps the
    /// prediction and removes its data.
    pub fn lifecycle(&self, api: Api) -> Lifecycle {
        let provider = self.catalogue.provider(api).retention_seconds * 1000;
        let outputs = provider.min(self.retention);
        match api {
            Api::AzureJobs | Api::OpenaiVideos => Lifecycle {
                admission: Admission::Refuse,
                keep: Keep::AfterCreation(self.retention),
                retention: self.retention,
            },
            Api::Fal => Lifecycle {
                admission: Admission::Queue,
                keep: Keep::AfterCompletion(outputs.max(self.media_retention)),
                retention: outputs,
            },
            Api::Replicate => Lifecycle {
                admission: Admission::Queue,
                keep: Keep::Forever,
                retention: outputs,
            },
            // OpenRouter queues jobs (`pending`) and publishes no retention: its outputs
            // go `retention` after completion, and the job stays readable as `expired`
            // (`openrouter.rs`).
            Api::Openrouter => Lifecycle {
                admission: Admission::Queue,
                keep: Keep::Forever,
                retention: outputs,
            },
        }
    }

    /// Creates a job from a validated spec (every API): the running-job cap or the queue,
    /// the fate of the job (moderation word, `fail`/`moderation` faults), the stats and the
    /// eager render.
    pub fn create_job(
        self: &Arc<Self>,
        spec: JobSpec,
        flavor: Flavor,
    ) -> Result<Arc<Job>, ApiError> {
        let now = self.now();
        // Always draw, so the fault sequence does not depend on prompts.
        let fault = self.faults.on_create();
        let failure = if self.is_moderated(&spec.prompt) {
            Some(Failure::Moderation)
        } else {
            fault.map(Failure::from)
        };
        let unix_ms = self.clock.unix_ms(now);
        let ids = match spec.api {
            Api::AzureJobs => NewIds {
                job: self.ids.job(unix_ms),
                generations: (0..spec.variants)
                    .map(|_| self.ids.generation(unix_ms))
                    .collect(),
            },
            Api::OpenaiVideos => NewIds {
                job: self.ids.video(),
                generations: vec![self.ids.generation(unix_ms)],
            },
            // The video is on the media host, behind a token of its own.
            Api::Openrouter => NewIds {
                job: self.ids.openrouter_job(unix_ms),
                generations: vec![self.ids.media_token()],
            },
            Api::Fal => NewIds {
                job: self.ids.fal_request(),
                generations: vec![self.ids.media_token()],
            },
            Api::Replicate => NewIds {
                job: self.ids.prediction(),
                generations: vec![self.ids.media_token()],
            },
        };
        let prompt = spec.prompt.clone();
        let lifecycle = self.lifecycle(spec.api);
        match self.store.create(spec, ids, failure, lifecycle, now) {
            Ok((job, running)) => {
                if let Some(f) = fault.filter(|_| failure.is_some()) {
                    self.stats.fault(match f {
                        super::faults::JobFault::InternalError => "fail",
                        super::faults::JobFault::Moderation => "moderation",
                    });
                }
                self.stats.job_created(&prompt, running);
                self.stats.input_images(&job.id, &job.spec.images);
                self.schedule_render(&job);
                Ok(job)
            }
            Err(CreateRefused::TooManyRunning { max, wait }) => Err(ApiError::too_many_running(
                flavor,
                max,
                self.clock.to_real(wait),
            )),
        }
    }

    /// Encodes a succeeding job's videos when it reaches `processing`, so downloads right
    /// after success do not wait for the encoder.
    fn schedule_render(self: &Arc<Self>, job: &Arc<Job>) {
        if job.failure.is_some() {
            return;
        }
        let app = self.clone();
        let job = job.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = app.shutdown.cancelled() => return,
                () = tokio::time::sleep(app.clock.real_until(job.processing_at())) => {}
            }
            // Canceled meanwhile: nothing will be downloaded.
            if matches!(job.phase(app.now()), Phase::Canceled | Phase::Aborted) {
                return;
            }
            for generation in &job.generations {
                if app.shutdown.is_cancelled() {
                    return;
                }
                // A failure is retried by the first content request.
                let _ = assets::asset(&job, generation, AssetKind::Mp4).await;
            }
        });
    }
}

/// The router of every API and `/_emulator`.
pub fn router(app: Arc<App>) -> Router {
    let api = azure::routes()
        .merge(openai::routes())
        .merge(openrouter::routes())
        .merge(replicate::routes())
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(app.clone(), api_layer));
    Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/health", get(|| async { "ok" }))
        .merge(api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), common_layer))
        .with_state(app)
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.stats()).into_response()
}

/// fal's routes (its paths are model ids), or a 404 in the shape of the prefix's service.
async fn fallback(State(app): State<Arc<App>>, req: Request) -> Response {
    match Flavor::for_path(req.uri().path()) {
        Flavor::Fal => fal::handle(app, req).await,
        _ => not_found(req).await.into_response(),
    }
}

async fn not_found(req: Request) -> ApiError {
    let flavor = Flavor::for_path(req.uri().path());
    let mut e = ApiError::not_found(
        flavor,
        format!("No route for `{} {}`.", req.method(), req.uri().path()),
    );
    if flavor == Flavor::Azure {
        e.code = Some("404".into());
        e.message = "Resource not found".into();
    }
    e
}

/// Request id and log line, for every route.
async fn common_layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let target = loggable_target(req.uri());
    let request_id = app.ids.request();
    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert("apim-request-id", value.clone());
        response.headers_mut().insert("x-request-id", value);
    }
    if app.log_requests {
        eprintln!(
            "{method} {target} {} {}ms",
            response.status().as_u16(),
            started.elapsed().as_millis()
        );
    }
    response
}

/// The path and query, with the values of secret-looking query parameters hidden.
fn loggable_target(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let secret = |name: &str| {
        let n = name.to_ascii_lowercase();
        ["key", "token", "sig", "secret", "password", "auth"]
            .iter()
            .any(|s| n.contains(s))
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(name) => format!("{name}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// Stats, auth, quota and faults, for the API routes only.
async fn api_layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let flavor = Flavor::for_path(req.uri().path());
    app.stats.request(app.now());
    let response = api_layer_inner(&app, flavor, req, next).await;
    app.stats.response(response.status().as_u16());
    response
}

async fn api_layer_inner(app: &Arc<App>, flavor: Flavor, req: Request, next: Next) -> Response {
    match auth::check(app.api_key.as_deref(), req.headers(), flavor) {
        AuthOutcome::Allowed => {}
        outcome => {
            return ApiError::unauthorized(flavor, outcome == AuthOutcome::Wrong).into_response();
        }
    }
    if let Err(wait) = app.quota.admit(app.now()) {
        return ApiError::quota(flavor, app.quota.rpm(), app.clock.to_real(wait)).into_response();
    }
    let fault = app.faults.on_request();
    match fault {
        RequestFault::Status(status) => {
            app.stats.fault(&status.to_string());
            let mut e = ApiError::injected(flavor, status);
            if let Some(wait) = e
                .retry_after
                .filter(|_| e.status == StatusCode::TOO_MANY_REQUESTS)
            {
                let limit = match app.quota.rpm() {
                    0 => app.catalogue.provider(Api::Openrouter).requests_per_minute,
                    rpm => rpm,
                };
                e = e.rate_limited(limit, wait);
            }
            return e.into_response();
        }
        RequestFault::Slow(delay) => {
            app.stats.fault("slow");
            tokio::time::sleep(delay).await;
        }
        RequestFault::Drop | RequestFault::None => {}
    }
    let response = next.run(req).await;
    if fault != RequestFault::Drop {
        return response;
    }
    app.stats.fault("drop");
    let (mut parts, body) = response.into_parts();
    let len = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| body.size_hint().exact());
    let Some(len) = len else {
        return Response::from_parts(parts, cut_short(body, 0));
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, cut_short(body, len / 2))
}

/// Parses a comma-separated query list value (`statuses=a,b`).
pub fn query_list(query: &HashMap<String, String>, name: &str) -> Vec<String> {
    query
        .get(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A running server: the API listener and the media host.
pub struct Running {
    pub addr: SocketAddr,
    pub media_addr: SocketAddr,
    pub app: Arc<App>,
    pub servers: Vec<JoinHandle<std::io::Result<()>>>,
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, EmulatorError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })
}

/// Binds the media host: where `127.0.0.2` cannot be had (a loopback of one address),
/// `127.0.0.1` on any port, saying so.
async fn bind_media(addr: SocketAddr) -> Result<tokio::net::TcpListener, EmulatorError> {
    match bind(addr).await {
        Err(e) if addr.ip() == super::DEFAULT_MEDIA_LISTEN.ip() => {
            let fallback = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
            let listener = bind(fallback).await?;
            eprintln!(
                "warning: {e} ({}); the media host listens on {} instead",
                std::error::Error::source(&e).map_or_else(String::new, |s| s.to_string()),
                listener.local_addr().unwrap_or(fallback),
            );
            Ok(listener)
        }
        other => other,
    }
}

fn local_addr(
    listener: &tokio::net::TcpListener,
    asked: SocketAddr,
) -> Result<SocketAddr, EmulatorError> {
    listener.local_addr().map_err(|source| EmulatorError::Bind {
        addr: asked,
        source,
    })
}

/// Serves `router` on `listener` (through TLS when `acceptor` is set) until `token`.
fn serve(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    token: CancellationToken,
) -> std::io::Result<JoinHandle<std::io::Result<()>>> {
    Ok(match acceptor {
        None => tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        }),
        Some(acceptor) => {
            let listener = TlsListener::new(listener, acceptor)?;
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await
            })
        }
    })
}

pub async fn start(cfg: EmulatorConfig) -> Result<Running, EmulatorError> {
    if !(cfg.time_scale.is_finite() && cfg.time_scale > 0.0) {
        return Err(EmulatorError::TimeScale(cfg.time_scale));
    }
    let acceptor = cfg.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = bind(cfg.listen).await?;
    let addr = local_addr(&listener, cfg.listen)?;
    let media_listener = bind_media(cfg.media_listen).await?;
    let media_addr = local_addr(&media_listener, cfg.media_listen)?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let create_rpm = cfg
        .create_rpm
        .unwrap_or_else(|| cfg.catalogue.provider(Api::Replicate).requests_per_minute);
    let millis = |d: Duration| d.as_millis().min(u128::from(EmuMillis::MAX)) as EmuMillis;
    let app = Arc::new(App {
        api_key: cfg.api_key.filter(|k| !k.is_empty()),
        moderation_word: cfg.moderation_word,
        log_requests: cfg.log_requests,
        clock: Clock::new(cfg.time_scale),
        store: Store::new(cfg.max_running),
        quota: Quota::new(cfg.rpm),
        faults: Faults::new(cfg.faults, cfg.seed),
        stats: Arc::new(StatsRecorder::default()),
        ids: IdGen::new(cfg.seed),
        shutdown: CancellationToken::new(),
        base_url: format!("{scheme}://{addr}"),
        media_base_url: format!("{scheme}://{media_addr}"),
        create_quota: Quota::new(create_rpm),
        retention: millis(cfg.retention),
        media_retention: millis(cfg.media_retention),
        credit: Credit::new(cfg.credit_usd),
        catalogue: cfg.catalogue,
    });
    let bind_error = |addr| move |source| EmulatorError::Bind { addr, source };
    let servers = vec![
        serve(
            listener,
            acceptor.clone(),
            router(app.clone()),
            app.shutdown.clone(),
        )
        .map_err(bind_error(addr))?,
        serve(
            media_listener,
            acceptor,
            media::router(app.clone())
                .layer(middleware::from_fn_with_state(app.clone(), common_layer)),
            app.shutdown.clone(),
        )
        .map_err(bind_error(media_addr))?,
    ];
    Ok(Running {
        addr,
        media_addr,
        app,
        servers,
    })
}

impl Running {
    pub async fn shutdown(self) {
        self.app.shutdown.cancel();
        for server in self.servers {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// `StatusCode` of a response a handler builds by hand (204).
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
