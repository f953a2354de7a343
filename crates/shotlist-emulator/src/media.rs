//! The media host: the second listener (default `127.0.0.2`), standing in for fal's CDN
//! (`v3.fal.media`), Replicate's (`replicate.delivery`) and the storage behind
//! OpenRouter's `unsigned_urls`. It serves each fal, Replicate or OpenRouter output at `/files/{token}/output.mp4` (`GET`, `HEAD`, single ranges), where
//! the token is random and told only by the result or prediction, with no auth, as both
//! CDNs do.
//!
//! How long a file stays: fal's media outlive the result JSON (fal keeps them "at least 7
//! days": `EmulatorConfig::media_retention` after completion); Replicate's go with the
//! prediction's data, OpenRouter's when the job expires, `retention` after completion. Every request is counted, and so is
//! every request that carries a credential header: the host needs none, so a client that
//! sends one leaks its key to a host other than the API's. This module never serves an
//! Azure or OpenAI file, and never reads a credential beyond noticing one is there.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shotlist_models::limits::Api;

use super::assets::{self, AssetKind};
use super::clock::EmuMillis;
use super::content::Serve;
use super::server::App;
use super::state::{Generation, Job};

/// The file name of every output (fal's `file_name`).
pub const FILE_NAME: &str = "output.mp4";
/// Headers that carry a credential.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "api-key", "x-api-key", "cookie"];

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/files/{token}/{name}", get(file))
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}

/// The media URL of a generation.
pub fn url(app: &App, generation: &Generation) -> String {
    format!("{}/files/{}/{FILE_NAME}", app.media_base_url, generation.id)
}

/// Until when (emulated) the media host serves a finished job's file.
pub fn served_until(app: &App, job: &Job) -> EmuMillis {
    let keep = match job.spec.api {
        Api::Fal => app.media_retention,
        _ => job.retention,
    };
    job.finished_at().saturating_add(keep)
}

async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let with_credential = CREDENTIAL_HEADERS
        .iter()
        .any(|h| req.headers().contains_key(*h));
    app.stats.media_request(with_credential);
    next.run(req).await
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn file(
    State(app): State<Arc<App>>,
    Path((token, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let now = app.now();
    let Some((job, generation)) = app
        .store
        .generation(&token, now)
        .filter(|(job, _)| matches!(job.spec.api, Api::Fal | Api::Replicate | Api::Openrouter))
        .filter(|(job, _)| now < served_until(&app, job))
    else {
        return not_found();
    };
    if name != FILE_NAME {
        return not_found();
    }
    let bytes = match assets::asset(&job, &generation, AssetKind::Mp4).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
    };
    let truncate = method == Method::GET && app.faults.truncate_content();
    if truncate {
        app.stats.fault("truncate");
    }
    Serve {
        bytes,
        content_type: AssetKind::Mp4.content_type(),
        last_modified: app.clock.system_time(job.finished_at()),
        method: &method,
        headers: &headers,
        truncate,
        stats: &app.stats,
    }
    .response()
}
