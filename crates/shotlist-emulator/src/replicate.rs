//! Replicate's predictions API (`api.replicate.com/v1`): create with
//! `POST /v1/models/{owner}/{name}/predictions` or `POST /v1/predictions` (`version`:
//! `owner/name`, `owner/name:id` or the id), get, list (newest first, cursor pages) and
//! cancel.
//!
//! Bodies follow the spec's `schemas_prediction_response` and
//! `schemas_paginated_prediction_response`; errors are RFC 7807 problem details. Creates
//! are limited to the create rate (429 with `Retry-After`, apart from the request quota)
//! and never refused for slots: beyond `max_running` a prediction stays `starting`.
//! `Prefer: wait[=N]` holds a create up to N (at most 60) real seconds. `Cancel-After`
//! sets a deadline: `aborted` before processing starts, `canceled` after. After
//! `retention` from completion the prediction's data is removed (`data_removed`, no
//! input, output or logs, and its file leaves the media host); the prediction stays
//! readable and listed. Inputs are checked against the model's catalogue entry
//! (`model_input.rs`). Webhooks are validated and never called. Model versions are
//! emulated: each model has one, a hash of its name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use shotlist_models::catalogue::Model;
use shotlist_models::limits::Api;

use super::clock::EmuMillis;
use super::errors::{ApiError, Flavor};
use super::media;
use super::model_input::{self, ProblemKind};
use super::server::App;
use super::state::{Failure, Job, JobSpec, Phase};

const FLAVOR: Flavor = Flavor::Replicate;
/// The spec: "It will return 100 records per page."
const PAGE_SIZE: usize = 100;
/// `Prefer: wait` holds at most this long (the spec's `wait=1..60`).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a held create looks at its prediction again (real time).
const WAIT_STEP: Duration = Duration::from_millis(20);
/// `Cancel-After` takes no less (the spec).
const MIN_CANCEL_AFTER: Duration = Duration::from_secs(5);
const WEBHOOK_EVENTS: [&str; 4] = ["start", "output", "logs", "completed"];
/// Replicate's own wording of a moderation failure (E005).
const SENSITIVE: &str =
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)";
const INTERRUPTED: &str = "Prediction interrupted; please retry (code: PA)";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/models/{owner}/{name}/predictions",
            post(create_for_model),
        )
        .route("/v1/predictions", get(list).post(create_for_version))
        .route("/v1/predictions/{id}", get(get_prediction))
        .route("/v1/predictions/{id}/cancel", post(cancel))
}

/// The emulated version id of a model: 64 hex digits, stable for its name.
fn version_id(model: &str) -> String {
    Sha256::digest(format!("shotlist-emulator/replicate/{model}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn status_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Waiting | Phase::Queued => "starting",
        Phase::Preprocessing { .. } | Phase::Running { .. } | Phase::Processing { .. } => {
            "processing"
        }
        Phase::Succeeded => "succeeded",
        Phase::Failed(_) => "failed",
        Phase::Canceled => "canceled",
        Phase::Aborted => "aborted",
    }
}

fn seconds_between(from: EmuMillis, to: EmuMillis) -> f64 {
    to.saturating_sub(from) as f64 / 1000.0
}

/// The prediction as the API shows it at `now`; `status` overrides what it reports
/// (a `Prefer: wait` that timed out reports `starting`, as the spec says).
fn prediction_json(app: &App, job: &Job, now: EmuMillis, status: Option<&str>) -> Value {
    let phase = job.phase(now);
    let removed = job.outputs_until(now).is_some_and(|until| now >= until);
    let began = job.processing_started_at();
    let has_begun = began <= now && began <= job.finished_at();
    let output = match (phase, removed, job.generations.first()) {
        (Phase::Succeeded, false, Some(generation)) => json!(media::url(app, generation)),
        _ => Value::Null,
    };
    let error = match phase {
        Phase::Failed(Failure::Moderation) => json!(SENSITIVE),
        Phase::Failed(Failure::InternalError) => json!(INTERRUPTED),
        _ => Value::Null,
    };
    let get_url = format!("{}/v1/predictions/{}", app.base_url, job.id);
    let mut body = json!({
        "id": job.id,
        "model": job.spec.model,
        "version": version_id(&job.spec.model),
        "input": if removed { json!({}) } else { json!(job.spec.input) },
        "output": output,
        "data_removed": removed,
        "error": error,
        "status": status.unwrap_or(status_of(phase)),
        "created_at": app.clock.iso8601(job.created),
        "source": "api",
        "logs": if removed { String::new() } else { logs(job, phase) },
        "urls": {
            "get": get_url,
            "cancel": format!("{get_url}/cancel"),
            "web": format!("{}/p/{}", app.base_url, job.id),
        },
    });
    if has_begun {
        body["started_at"] = json!(app.clock.iso8601(began));
    }
    if phase.is_finished() {
        let done = job.finished_at();
        body["completed_at"] = json!(app.clock.iso8601(done));
        body["metrics"] = json!({
            "predict_time": if has_begun { seconds_between(began, done) } else { 0.0 },
            "total_time": seconds_between(job.created, done),
        });
    }
    if let Some(deadline) = job.spec.deadline {
        body["deadline"] = json!(app.clock.iso8601(job.created + deadline));
    }
    body
}

/// A model's log: its start, and a tqdm-style progress line (`45%|████ | 45/100`), which
/// Replicate's Python client reads as `prediction.progress`.
fn logs(job: &Job, phase: Phase) -> String {
    let fraction = match phase {
        Phase::Preprocessing { fraction }
        | Phase::Running { fraction }
        | Phase::Processing { fraction } => fraction,
        Phase::Succeeded => 1.0,
        _ => return String::new(),
    };
    let percent = (fraction * 100.0).min(100.0) as usize;
    let bar = "█".repeat(percent / 10);
    format!(
        "Generating a {}x{} video of {} s\n{percent:>3}%|{bar:<10}| {percent}/100\n",
        job.spec.width, job.spec.height, job.spec.seconds
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(FLAVOR, format!("Prediction `{id}` was not found."))
}

fn invalid_version(version: &str) -> ApiError {
    ApiError::new(
        FLAVOR,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("Invalid version"),
        format!(
            "Invalid version or not permitted: `{version}`. Use `owner/name` of a catalogue model, `owner/name:VERSION` or `VERSION`."
        ),
    )
}

/// A 422 for `fields` (`(field, type, description)`).
fn invalid(fields: Vec<(String, &'static str, String)>) -> ApiError {
    let detail: String = fields
        .iter()
        .map(|(field, _, description)| format!("- {field}: {description}\n"))
        .collect();
    let entries = fields
        .into_iter()
        .map(|(field, kind, description)| {
            json!({"type": kind, "field": field, "description": description})
        })
        .collect();
    ApiError::unprocessable(FLAVOR, detail, entries)
}

fn model(app: &App, name: &str) -> Option<Model> {
    app.catalogue
        .models_of(Api::Replicate)
        .find(|m| m.provider_model == name)
        .cloned()
}

/// The model a `version` names.
fn model_of_version(app: &App, version: &str) -> Result<Model, ApiError> {
    let found = match version.split_once(':') {
        Some((name, id)) => model(app, name).filter(|m| version_id(&m.provider_model) == id),
        None if version.contains('/') => model(app, version),
        None => app
            .catalogue
            .models_of(Api::Replicate)
            .find(|m| version_id(&m.provider_model) == version)
            .cloned(),
    };
    found.ok_or_else(|| invalid_version(version))
}

/// `Prefer: wait` or `wait=N`: how long to hold the create (real time).
fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("prefer")?.to_str().ok()?;
    value
        .split([',', ';'])
        .map(str::trim)
        .find_map(|token| match token.split_once('=') {
            None if token.eq_ignore_ascii_case("wait") => Some(MAX_WAIT),
            Some((name, secs)) if name.trim().eq_ignore_ascii_case("wait") => secs
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s >= 1)
                .map(|s| Duration::from_secs(s).min(MAX_WAIT)),
            _ => None,
        })
}

/// `Cancel-After`: `30s`, `5m`, `1h30m45s`, or bare seconds; at least 5 s.
fn cancel_after(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get("cancel-after") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("Invalid Cancel-After header"),
            format!(
                "`Cancel-After` is a duration such as `30s`, `5m` or `1h30m`, of at least {} seconds.",
                MIN_CANCEL_AFTER.as_secs()
            ),
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let parsed = parse_duration(text).ok_or_else(bad)?;
    if parsed < MIN_CANCEL_AFTER {
        return Err(bad());
    }
    Ok(Some(parsed))
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    digits.is_empty().then(|| Duration::from_secs(total))
}

/// The create body: its `input`, checked for the model, and its webhook fields.
fn read_create(body: &[u8], wants_version: bool) -> Result<Map<String, Value>, ApiError> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("Invalid JSON"),
            "The request body is not a JSON object.",
        ));
    };
    let mut problems = Vec::new();
    if wants_version && !body.get("version").is_some_and(Value::is_string) {
        problems.push((
            "version".to_owned(),
            "required",
            "version is required".to_owned(),
        ));
    }
    match body.get("webhook") {
        None | Some(Value::Null) => {}
        Some(Value::String(url)) if url.starts_with("https://") => {}
        Some(_) => problems.push((
            "webhook".to_owned(),
            "format",
            "webhook must be an HTTPS URL".to_owned(),
        )),
    }
    if let Some(filter) = body.get("webhook_events_filter").filter(|v| !v.is_null()) {
        let ok = filter.as_array().is_some_and(|events| {
            events
                .iter()
                .all(|e| e.as_str().is_some_and(|e| WEBHOOK_EVENTS.contains(&e)))
        });
        if !ok {
            problems.push((
                "webhook_events_filter".to_owned(),
                "enum",
                format!(
                    "webhook_events_filter is a list of: {}",
                    WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
    }
    let input = match body.remove("input") {
        Some(Value::Object(input)) => Some(input),
        None | Some(Value::Null) => {
            problems.push((
                "input".to_owned(),
                "required",
                "input is required".to_owned(),
            ));
            None
        }
        Some(_) => {
            problems.push(("input".to_owned(), "type", "input is an object".to_owned()));
            None
        }
    };
    match input {
        Some(input) if problems.is_empty() => {
            body.insert("input".into(), Value::Object(input.clone()));
            Ok(body)
        }
        _ => Err(invalid(problems)),
    }
}

async fn create_for_model(
    State(app): State<Arc<App>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admit_create(&app)?;
    let name = format!("{owner}/{name}");
    let model = model(&app, &name).ok_or_else(|| {
        ApiError::not_found(
            FLAVOR,
            format!("Model `{name}` was not found: the emulator serves the Replicate models of its catalogue."),
        )
    })?;
    let body = read_create(&body, false)?;
    create(&app, &model, body, &headers).await
}

async fn create_for_version(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admit_create(&app)?;
    let body = read_create(&body, true)?;
    let version = body.get("version").and_then(Value::as_str).unwrap_or("");
    let model = model_of_version(&app, version)?;
    create(&app, &model, body, &headers).await
}

/// The create rate, apart from the request quota.
fn admit_create(app: &App) -> Result<(), ApiError> {
    app.create_quota
        .admit(app.now())
        .map_err(|wait| ApiError::throttled(app.clock.to_real(wait)))
}

async fn create(
    app: &Arc<App>,
    model: &Model,
    mut body: Map<String, Value>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let deadline = cancel_after(headers)?;
    let Some(Value::Object(input)) = body.remove("input") else {
        return Err(ApiError::internal(FLAVOR, "The input went missing."));
    };
    let asked = model_input::check(model, &input).map_err(|problems| {
        invalid(
            problems
                .into_iter()
                .map(|p| {
                    let kind = match p.kind {
                        ProblemKind::Missing => "required",
                        ProblemKind::WrongType(_) => "type",
                        ProblemKind::TooShort => "minLength",
                        ProblemKind::TooLong => "maxLength",
                        ProblemKind::NotAllowed => "enum",
                    };
                    (format!("input.{}", p.field), kind, p.message)
                })
                .collect(),
        )
    })?;
    let spec = JobSpec {
        api: Api::Replicate,
        prompt: asked.prompt,
        model: model.provider_model.clone(),
        width: asked.size.width,
        height: asked.size.height,
        seconds: asked.seconds,
        variants: 1,
        remixed_from: None,
        input,
        deadline: deadline.map(|d| d.as_millis() as EmuMillis),
        images: asked.images,
    };
    let job = app.create_job(spec, FLAVOR)?;
    let (code, status) = match prefer_wait(headers) {
        None => (StatusCode::CREATED, None),
        Some(wait) if hold(app, &job, wait).await => (StatusCode::CREATED, None),
        // The spec: past the wait "the prediction will be returned in a `starting`
        // state" (Replicate's Python client relies on it to go on polling).
        Some(_) => (StatusCode::ACCEPTED, Some("starting")),
    };
    let body = prediction_json(app, &job, app.now(), status);
    Ok((code, axum::Json(body)).into_response())
}

/// Waits up to `wait` (real time) for `job` to finish; whether it did.
async fn hold(app: &App, job: &Job, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        if job.phase(app.now()).is_finished() {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || app.shutdown.is_cancelled() {
            return false;
        }
        let step = app
            .clock
            .real_until(job.finished_at())
            .clamp(Duration::from_millis(1), WAIT_STEP)
            .min(left);
        tokio::select! {
            () = app.shutdown.cancelled() => return false,
            () = tokio::time::sleep(step) => {}
        }
    }
}

fn prediction(app: &App, id: &str, now: EmuMillis) -> Result<Arc<Job>, ApiError> {
    app.store
        .job_of(Api::Replicate, id, now)
        .ok_or_else(|| not_found(id))
}

async fn get_prediction(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = app.now();
    let job = prediction(&app, &id, now)?;
    Ok(axum::Json(prediction_json(&app, &job, now, None)).into_response())
}

async fn cancel(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = app.now();
    let job = prediction(&app, &id, now)?;
    // A finished prediction is answered as it is.
    app.store.cancel(&job, now);
    Ok(axum::Json(prediction_json(&app, &job, now, None)).into_response())
}

/// A list cursor: after (or before) the prediction with this id, hex-encoded.
fn encode_cursor(direction: &str, id: &str) -> String {
    format!("{direction}:{id}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (direction, id) = text.split_once(':')?;
    matches!(direction, "after" | "before").then(|| (direction.to_owned(), id.to_owned()))
}

/// Percent-encodes a query value.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn time_filter(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = query.get(name) else {
        return Ok(None);
    };
    let parsed = text
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp().as_millisecond())
                .ok_or(())
        });
    parsed.map(Some).map_err(|_| {
        ApiError::invalid(
            FLAVOR,
            name,
            format!(
                "`{name}` is an ISO 8601 date-time such as `2026-01-01T00:00:00Z`, got `{text}`."
            ),
        )
    })
}

async fn list(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let after = time_filter(&query, "created_after")?;
    let before = time_filter(&query, "created_before")?;
    if let Some(source) = query.get("source").filter(|s| *s != "web") {
        return Err(ApiError::invalid(
            FLAVOR,
            "source",
            format!("`source` can only be `web`, got `{source}`."),
        ));
    }
    let now = app.now();
    let mut predictions = app.store.list(Api::Replicate, now);
    predictions.reverse();
    let web_only = query.contains_key("source");
    predictions.retain(|j| {
        let created = app.clock.unix_ms(j.created) as i64;
        !web_only && after.is_none_or(|a| created >= a) && before.is_none_or(|b| created < b)
    });
    let position = |id: &str| predictions.iter().position(|j| j.id == id);
    let (start, end) = match query.get("cursor") {
        None => (0, PAGE_SIZE.min(predictions.len())),
        Some(cursor) => {
            let (direction, id) = decode_cursor(cursor)
                .and_then(|(d, id)| Some((d, position(&id)?)))
                .ok_or_else(|| {
                    ApiError::invalid(FLAVOR, "cursor", "The cursor is not one this API gave.")
                })?;
            if direction == "after" {
                let start = id + 1;
                (start, (start + PAGE_SIZE).min(predictions.len()))
            } else {
                (id.saturating_sub(PAGE_SIZE), id)
            }
        }
    };
    let page = &predictions[start..end];
    let page_url = |direction: &str, id: &str| {
        let mut url = format!(
            "{}/v1/predictions?cursor={}",
            app.base_url,
            encode_cursor(direction, id)
        );
        for name in ["created_after", "created_before"] {
            if let Some(value) = query.get(name) {
                url.push_str(&format!("&{name}={}", query_value(value)));
            }
        }
        url
    };
    let next = (end < predictions.len())
        .then(|| page.last().map(|j| page_url("after", &j.id)))
        .flatten();
    let previous = (start > 0)
        .then(|| page.first().map(|j| page_url("before", &j.id)))
        .flatten();
    Ok(axum::Json(json!({
        "next": next,
        "previous": previous,
        "results": page.iter().map(|j| prediction_json(&app, j, now, None)).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prefer_and_cancel_after() {
        let headers = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            h
        };
        assert_eq!(prefer_wait(&headers("prefer", "wait")), Some(MAX_WAIT));
        assert_eq!(
            prefer_wait(&headers("prefer", "wait=5")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(prefer_wait(&headers("prefer", "wait=600")), Some(MAX_WAIT));
        assert_eq!(prefer_wait(&headers("prefer", "respond-async")), None);
        assert_eq!(parse_duration("1h30m45s"), Some(Duration::from_secs(5445)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5x"), None);
        assert!(cancel_after(&headers("cancel-after", "4s")).is_err());
        assert_eq!(
            cancel_after(&headers("cancel-after", "5m")).unwrap(),
            Some(Duration::from_secs(300))
        );
        let cursor = encode_cursor("after", "abc");
        assert_eq!(decode_cursor(&cursor), Some(("after".into(), "abc".into())));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(version_id("google/veo-3.1").len(), 64);
    }
}
