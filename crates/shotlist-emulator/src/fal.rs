//! fal's queue API (`queue.fal.run`): submit to `POST /{model id}`, then
//! `GET /{owner}/{app}/requests/{id}/status` (202 while `IN_QUEUE`/`IN_PROGRESS`, 200 when
//! `COMPLETED`), `GET /{owner}/{app}/requests/{id}` for the result and
//! `PUT /{owner}/{app}/requests/{id}/cancel`. Status, result and cancel name the app by its
//! first two segments (three under the `workflows/` and `comfy/` namespaces), whatever
//! the model's full id.
//!
//! The account's slots are `max_running`; requests beyond them wait `IN_QUEUE` (never
//! refused), first in, first out, with 0-based queue positions. A failed request is
//! `COMPLETED` with `error` and `error_type`, and its result answers the model's error.
//! The result JSON is kept `retention` after completion, then the request is unknown
//! (404); its video stays on the media host longer. Inputs are checked against the
//! model's catalogue entry (`model_input.rs`) and refused with pydantic-style 422s.
//! Webhooks (`?fal_webhook=`) are accepted and never called.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use shotlist_models::catalogue::Model;
use shotlist_models::limits::Api;

use super::assets::{self, AssetKind};
use super::clock::EmuMillis;
use super::errors::{ApiError, Flavor};
use super::media;
use super::model_input::{self, InputProblem, ProblemKind};
use super::server::App;
use super::state::{Failure, Job, JobSpec, Phase};

const FLAVOR: Flavor = Flavor::Fal;
/// App namespaces that take a third segment in status, result and cancel paths.
const NAMESPACES: [&str; 2] = ["workflows", "comfy"];
/// Where fal's error types are explained (the `url` of a `detail` entry).
const ERRORS_URL: &str = "https://docs.fal.ai/errors";

/// Every fal route: the router's fallback, for paths no other API claims.
pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().trim_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (method.clone(), request_path(&segments)) {
        (Method::POST, _) => submit(&app, &segments.join("/"), &query, req).await,
        (Method::GET, Some((app_id, id, Tail::Status))) => status(&app, &app_id, id, &query),
        (Method::GET, Some((app_id, id, Tail::Result))) => result(&app, &app_id, id).await,
        (Method::PUT, Some((app_id, id, Tail::Cancel))) => cancel(&app, &app_id, id),
        (_, Some(_)) => Err(ApiError::new(
            FLAVOR,
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("`{method}` is not allowed on `/{path}`."),
        )),
        (_, None) => Err(ApiError::not_found(
            FLAVOR,
            format!(
                "No route for `{method} /{path}`: submit with `POST /{{model id}}`, then use the URLs the submit returns."
            ),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    Status,
    Result,
    Cancel,
}

/// `(app id, request id, what)` of `owner/app/requests/{id}[/status|/cancel]`.
fn request_path<'a>(segments: &[&'a str]) -> Option<(String, &'a str, Tail)> {
    let app_len = if NAMESPACES.contains(segments.first()?) {
        3
    } else {
        2
    };
    let app_id = segments.get(..app_len)?.join("/");
    match segments.get(app_len..)? {
        ["requests", id] => Some((app_id, id, Tail::Result)),
        ["requests", id, "status"] => Some((app_id, id, Tail::Status)),
        ["requests", id, "cancel"] => Some((app_id, id, Tail::Cancel)),
        _ => None,
    }
}

/// The part of a model id that status, result and cancel URLs use.
fn app_id(model_id: &str) -> String {
    let segments: Vec<&str> = model_id.split('/').collect();
    let n = if segments.first().is_some_and(|s| NAMESPACES.contains(s)) {
        3
    } else {
        2
    };
    segments[..n.min(segments.len())].join("/")
}

struct Urls {
    response: String,
    status: String,
    cancel: String,
}

fn urls(app: &App, job: &Job) -> Urls {
    let response = format!(
        "{}/{}/requests/{}",
        app.base_url,
        app_id(&job.spec.model),
        job.id
    );
    Urls {
        status: format!("{response}/status"),
        cancel: format!("{response}/cancel"),
        response,
    }
}

fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-fal-request-id", value);
    }
    response
}

/// A pydantic-style `detail` entry.
fn detail_entry(loc: &[&str], msg: &str, kind: &str) -> Value {
    json!({
        "loc": loc,
        "msg": msg,
        "type": kind,
        "url": format!("{ERRORS_URL}#{kind}"),
    })
}

fn problem_entry(model: &Model, p: &InputProblem) -> Value {
    let kind = match p.kind {
        ProblemKind::Missing => "missing".to_owned(),
        ProblemKind::WrongType(t) => format!(
            "{}_type",
            match t {
                "integer" => "int",
                "number" => "float",
                "boolean" => "bool",
                other => other,
            }
        ),
        ProblemKind::TooShort => "string_too_short".to_owned(),
        ProblemKind::TooLong => "string_too_long".to_owned(),
        ProblemKind::NotAllowed => "value_error".to_owned(),
    };
    let mut entry = detail_entry(&["body", &p.field], &p.message, &kind);
    match p.kind {
        ProblemKind::TooLong => entry["ctx"] = json!({"max_length": model.prompt_chars.max}),
        ProblemKind::TooShort => entry["ctx"] = json!({"min_length": model.prompt_chars.min}),
        _ => {}
    }
    entry
}

async fn submit(
    app: &Arc<App>,
    model_id: &str,
    query: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(model) = app
        .catalogue
        .models_of(Api::Fal)
        .find(|m| m.provider_model == model_id)
    else {
        return Err(ApiError::not_found(
            FLAVOR,
            format!(
                "Application `{model_id}` not found: the emulator serves the fal models of its catalogue."
            ),
        ));
    };
    let body = Bytes::from_request(req, app).await.map_err(|e| {
        ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("bad_request"),
            format!("Could not read the request body: {e}."),
        )
    })?;
    let input: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(input)) => input,
        Ok(_) => {
            return Err(ApiError::unprocessable(
                FLAVOR,
                "",
                vec![detail_entry(
                    &["body"],
                    "Input should be a valid dictionary",
                    "dict_type",
                )],
            ));
        }
        Err(e) => {
            return Err(ApiError::unprocessable(
                FLAVOR,
                "",
                vec![detail_entry(
                    &["body"],
                    &format!("JSON decode error: {e}"),
                    "json_invalid",
                )],
            ));
        }
    };
    let asked = model_input::check(model, &input).map_err(|problems| {
        ApiError::unprocessable(
            FLAVOR,
            "",
            problems.iter().map(|p| problem_entry(model, p)).collect(),
        )
    })?;
    let spec = JobSpec {
        api: Api::Fal,
        prompt: asked.prompt,
        model: model.provider_model.clone(),
        width: asked.size.width,
        height: asked.size.height,
        seconds: asked.seconds,
        variants: 1,
        remixed_from: None,
        input,
        deadline: None,
        images: asked.images,
    };
    let job = app.create_job(spec, FLAVOR)?;
    let urls = urls(app, &job);
    let mut body = json!({
        "status": "IN_QUEUE",
        "request_id": job.id,
        "response_url": urls.response,
        "status_url": urls.status,
        "cancel_url": urls.cancel,
        "queue_position": app.store.queue_position(&job, app.now()),
    });
    if query
        .split('&')
        .any(|pair| pair.starts_with("fal_webhook="))
    {
        body["gateway_request_id"] = json!(job.id);
    }
    Ok(with_request_id(axum::Json(body).into_response(), &job.id))
}

/// A request of app `app_id` whose result has not expired.
fn request(app: &App, app_id_: &str, id: &str, now: EmuMillis) -> Option<Arc<Job>> {
    app.store
        .job_of(Api::Fal, id, now)
        .filter(|j| app_id(&j.spec.model) == app_id_)
        .filter(|j| j.outputs_until(now).is_none_or(|until| now < until))
}

fn request_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        FLAVOR,
        format!(
            "Request `{id}` not found: it never existed, or its result expired (fal keeps a result for an hour after it completes)."
        ),
    )
}

/// `status`, `error` and `error_type` of a finished request.
fn outcome(phase: Phase) -> Option<(&'static str, &'static str)> {
    match phase {
        Phase::Failed(Failure::Moderation) => Some((
            "The content could not be processed because it was flagged by a content checker.",
            "content_policy_violation",
        )),
        Phase::Failed(Failure::InternalError) => Some((
            "The runner failed while generating the video (emulated internal error).",
            "runner_server_error",
        )),
        Phase::Canceled | Phase::Aborted => {
            Some(("The request was cancelled.", "client_cancelled"))
        }
        _ => None,
    }
}

fn logs(app: &App, job: &Job, phase: Phase, now: EmuMillis) -> Vec<Value> {
    let line = |at: EmuMillis, message: String| json!({"timestamp": app.clock.iso8601(at), "level": "INFO", "source": "user", "message": message});
    let mut lines = Vec::new();
    let started = job.started();
    if phase == Phase::Waiting || started > now.min(job.finished_at()) {
        return lines;
    }
    lines.push(line(
        started,
        format!(
            "Generating a {}x{} video of {} s",
            job.spec.width, job.spec.height, job.spec.seconds
        ),
    ));
    match phase {
        Phase::Queued
        | Phase::Preprocessing { .. }
        | Phase::Running { .. }
        | Phase::Processing { .. } => {
            let fraction = now.saturating_sub(started) as f64 / job.duration.max(1) as f64;
            lines.push(line(
                now,
                format!("Progress: {}%", (fraction * 100.0) as u32),
            ));
        }
        Phase::Succeeded => lines.push(line(job.finished_at(), "Video ready".into())),
        _ => {
            let (error, _) = outcome(phase).unwrap_or(("failed", ""));
            lines.push(line(job.finished_at(), error.to_owned()));
        }
    }
    lines
}

fn status(app: &Arc<App>, app_id: &str, id: &str, query: &str) -> Result<Response, ApiError> {
    let now = app.now();
    let job = request(app, app_id, id, now).ok_or_else(|| request_not_found(id))?;
    let with_logs = query
        .split('&')
        .any(|pair| matches!(pair, "logs=1" | "logs=true" | "logs=True"));
    let phase = job.phase(now);
    let urls = urls(app, &job);
    let mut body = json!({
        "request_id": job.id,
        "response_url": urls.response,
        "status_url": urls.status,
        "cancel_url": urls.cancel,
        // fal's clients read `logs` in every state but the queue: null unless asked for.
        "logs": if with_logs { json!(logs(app, &job, phase, now)) } else { Value::Null },
    });
    let code = match phase {
        Phase::Waiting => {
            body["status"] = json!("IN_QUEUE");
            body["queue_position"] = json!(app.store.queue_position(&job, now));
            StatusCode::ACCEPTED
        }
        phase if !phase.is_finished() => {
            body["status"] = json!("IN_PROGRESS");
            StatusCode::ACCEPTED
        }
        phase => {
            body["status"] = json!("COMPLETED");
            let ran = job
                .finished_at()
                .saturating_sub(job.started().min(job.finished_at()));
            body["metrics"] = json!({"inference_time": ran as f64 / 1000.0});
            if let Some((error, error_type)) = outcome(phase) {
                body["error"] = json!(error);
                body["error_type"] = json!(error_type);
            }
            StatusCode::OK
        }
    };
    Ok(with_request_id(
        (code, axum::Json(body)).into_response(),
        &job.id,
    ))
}

/// The seed of a result: the one asked for, else one derived from the request id.
fn seed(job: &Job) -> u64 {
    job.spec
        .input
        .get("seed")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            let digest = Sha256::digest(job.id.as_bytes());
            u64::from(u32::from_be_bytes([
                digest[0], digest[1], digest[2], digest[3],
            ]))
        })
}

async fn result(app: &Arc<App>, app_id: &str, id: &str) -> Result<Response, ApiError> {
    let now = app.now();
    let job = request(app, app_id, id, now).ok_or_else(|| request_not_found(id))?;
    let phase = job.phase(now);
    let error = match phase {
        Phase::Succeeded => None,
        Phase::Failed(Failure::Moderation) => {
            let (msg, kind) = outcome(phase).unwrap_or_default();
            Some(ApiError::unprocessable(
                FLAVOR,
                msg,
                vec![detail_entry(&["body", "prompt"], msg, kind)],
            ))
        }
        Phase::Failed(Failure::InternalError) => {
            let (msg, _) = outcome(phase).unwrap_or_default();
            Some(ApiError::internal(FLAVOR, msg))
        }
        Phase::Canceled | Phase::Aborted => {
            let (msg, kind) = outcome(phase).unwrap_or_default();
            let status = StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST);
            Some(ApiError::new(FLAVOR, status, Some(kind), msg))
        }
        _ => Some(ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("bad_request"),
            format!(
                "Request `{id}` is still in progress: poll its `status_url` until it is `COMPLETED`."
            ),
        )),
    };
    if let Some(error) = error {
        return Ok(with_request_id(error.into_response(), &job.id));
    }
    let generation = job
        .generations
        .first()
        .ok_or_else(|| ApiError::internal(FLAVOR, "The request has no output."))?;
    let bytes = assets::asset(&job, generation, AssetKind::Mp4)
        .await
        .map_err(|e| ApiError::internal(FLAVOR, e.to_string()))?;
    let body = json!({
        "video": {
            "url": media::url(app, generation),
            "content_type": AssetKind::Mp4.content_type(),
            "file_name": media::FILE_NAME,
            "file_size": bytes.len(),
        },
        "seed": seed(&job),
    });
    Ok(with_request_id(axum::Json(body).into_response(), &job.id))
}

fn cancel(app: &Arc<App>, app_id: &str, id: &str) -> Result<Response, ApiError> {
    let now = app.now();
    let answer = |code: StatusCode, status: &str, detail: &str| {
        (
            code,
            axum::Json(json!({"status": status, "detail": detail})),
        )
            .into_response()
    };
    let Some(job) = request(app, app_id, id, now) else {
        return Ok(answer(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Request `{id}` not found."),
        ));
    };
    if !app.store.cancel(&job, now) {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "ALREADY_COMPLETED",
            &format!("Request `{id}` has already completed."),
        ));
    }
    Ok(answer(
        StatusCode::ACCEPTED,
        "CANCELLATION_REQUESTED",
        "Cancellation requested.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_name_the_app_by_its_first_segments() {
        assert_eq!(app_id("fal-ai/veo3.1/image-to-video"), "fal-ai/veo3.1");
        assert_eq!(app_id("workflows/me/flow/step"), "workflows/me/flow");
        let segments = ["fal-ai", "kling-video", "requests", "r1", "status"];
        assert_eq!(
            request_path(&segments),
            Some(("fal-ai/kling-video".into(), "r1", Tail::Status))
        );
        assert_eq!(
            request_path(&["comfy", "me", "app", "requests", "r2"]),
            Some(("comfy/me/app".into(), "r2", Tail::Result))
        );
        assert_eq!(request_path(&["fal-ai", "veo3.1"]), None);
        assert_eq!(request_path(&["nowhere"]), None);
    }
}
