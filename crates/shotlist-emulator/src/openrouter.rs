//! OpenRouter's video generation API (`openrouter.ai/api/v1`): submit with
//! `POST /api/v1/videos` (202, `pending`), poll `GET /api/v1/videos/{id}` (`pending`,
//! `in_progress`, then `completed`, `failed` or `expired`), download from the job's
//! `unsigned_urls[0]` (the media host, no credential) or `GET
//! /api/v1/videos/{id}/content?index=0` (the API, with it), and list the models with
//! `GET /api/v1/videos/models`.
//!
//! Bodies follow the spec's `VideoGenerationResponse` and `VideoModelsListResponse`;
//! errors are `{"error": {"code", "message", "metadata"?}}` with `code` the HTTP status.
//! The request names one of the catalogue's OpenRouter models (else 404, the spec's
//! "Resource does not exist"); its size travels as `resolution` + `aspect_ratio`, or as
//! `size: "WxH"` when that is one of the model's sizes, and its length as `duration`,
//! all checked against the model's entry (`model_input.rs`; 400 otherwise). Each create
//! charges its estimated cost (the catalogue's price per second × seconds, nothing when
//! the price is unknown) to the account's credit, and one the credit does not cover is
//! refused with 402, as is one the `402` fault picks.
//!
//! Expiry, which OpenRouter does not publish: a job still unfinished `retention` after its
//! creation turns `expired` then and never completes; a completed job turns `expired`
//! `retention` after completion, its video gone from both the media host and the content
//! route. The job itself stays readable. Failed jobs stay `failed`. `cancelled` is never
//! reached: the spec has no cancel. Webhooks (`callback_url`) are checked and never called.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use shotlist_models::catalogue::{ImageRole, Model};
use shotlist_models::limits::{Api, SecondsRule, Size};

use super::assets::{self, AssetKind};
use super::clock::EmuMillis;
use super::content::Serve;
use super::errors::{ApiError, Flavor};
use super::images::{self, InputImage};
use super::media;
use super::model_input::{self, InputProblem};
use super::server::App;
use super::state::{Failure, Job, JobSpec, Phase};

const FLAVOR: Flavor = Flavor::OpenRouter;
const PREFIX: &str = "/api/v1/videos";
/// The request fields that carry the size (the spec's `VideoGenerationRequest`).
const SIZE_FIELD: &str = "size";
const EXPIRED: &str = "Job exceeded maximum time to live";
const MODERATED: &str = "The request was blocked by the provider's content moderation. Try again with a different prompt.";
const PROVIDER_FAILED: &str = "The provider returned an error while generating the video (injected by the emulator's `--faults`).";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(PREFIX, post(create))
        .route(&format!("{PREFIX}/models"), get(models))
        .route(&format!("{PREFIX}/{{id}}"), get(retrieve))
        .route(&format!("{PREFIX}/{{id}}/content"), get(content))
}

fn model(app: &App, name: &str) -> Option<Model> {
    app.catalogue
        .models_of(Api::Openrouter)
        .find(|m| m.provider_model == name)
        .cloned()
}

/// US dollars for `seconds` at `size`, where the catalogue knows the model's price.
fn cost(model: &Model, size: Size, seconds: u32) -> Option<f64> {
    let price = model.price.as_ref().filter(|p| p.currency == "USD")?;
    let usd = price.per_second_at(size) * f64::from(seconds);
    // Whole micro-dollars, so sums of prices read as the prices do.
    Some((usd * 1e6).round() / 1e6)
}

/// When `job` turns `expired`, if it does (see the module docs).
fn expires_at(job: &Job) -> Option<EmuMillis> {
    let ttl = job.created.saturating_add(job.retention);
    let done = job.finished_at();
    if done > ttl {
        Some(ttl)
    } else if job.failure.is_none() {
        Some(done.saturating_add(job.retention))
    } else {
        None
    }
}

fn status_of(job: &Job, now: EmuMillis) -> &'static str {
    if expires_at(job).is_some_and(|at| now >= at) {
        return "expired";
    }
    match job.phase(now) {
        Phase::Waiting | Phase::Queued => "pending",
        Phase::Preprocessing { .. } | Phase::Running { .. } | Phase::Processing { .. } => {
            "in_progress"
        }
        Phase::Succeeded => "completed",
        Phase::Failed(_) => "failed",
        Phase::Canceled | Phase::Aborted => "cancelled",
    }
}

/// The generation id of a job: its id without `vid-` (`gen-vid-1748…-…` → `gen-1748…-…`).
fn generation_id(job_id: &str) -> String {
    job_id
        .strip_prefix("gen-vid-")
        .map_or_else(|| job_id.to_owned(), |rest| format!("gen-{rest}"))
}

/// `VideoGenerationResponse` of `job` at `now`.
fn video_json(app: &App, job: &Job, now: EmuMillis) -> Value {
    let status = status_of(job, now);
    let mut body = json!({
        "id": job.id,
        "polling_url": format!("{}{PREFIX}/{}", app.base_url, job.id),
        "status": status,
        "generation_id": generation_id(&job.id),
    });
    match status {
        "completed" => {
            body["unsigned_urls"] = json!(
                job.generations
                    .iter()
                    .map(|g| media::url(app, g))
                    .collect::<Vec<_>>()
            );
        }
        "failed" => {
            body["error"] = json!(match job.phase(now) {
                Phase::Failed(Failure::Moderation) => MODERATED,
                _ => PROVIDER_FAILED,
            });
        }
        "expired" => body["error"] = json!(EXPIRED),
        _ => {}
    }
    if job.phase(now) == Phase::Succeeded {
        let cost = model(app, &job.spec.model).and_then(|m| {
            cost(
                &m,
                Size::new(job.spec.width, job.spec.height),
                job.spec.seconds,
            )
        });
        body["usage"] = json!({"cost": cost, "is_byok": false});
    }
    body
}

fn bad_request(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(FLAVOR, param, message)
}

/// A 400 naming every field at fault.
fn invalid(problems: Vec<InputProblem>) -> ApiError {
    let message = problems
        .iter()
        .map(|p| p.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let param = problems.first().map_or("", |p| p.field.as_str()).to_owned();
    let mut e = bad_request(&param, format!("Invalid request parameters: {message}"));
    e.fields = problems
        .into_iter()
        .map(|p| json!({"field": p.field, "message": p.message}))
        .collect();
    e
}

/// `size: "WxH"` in place of the size fields: one of the model's sizes, whose fields it
/// stands for (any that are sent as well must agree).
fn apply_size(model: &Model, input: &mut Map<String, Value>) -> Result<(), ApiError> {
    let text = match input.remove(SIZE_FIELD) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(text)) => text,
        Some(_) => {
            return Err(bad_request(
                SIZE_FIELD,
                "`size` is a string like `WIDTHxHEIGHT`.",
            ));
        }
    };
    let sizes = || {
        model
            .sizes
            .iter()
            .map(|e| e.size.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let entry = Size::parse(&text)
        .and_then(|s| model.size_entry(s))
        .ok_or_else(|| {
            bad_request(
                SIZE_FIELD,
                format!(
                    "`size` `{text}` is not one `{}` takes: {}.",
                    model.provider_model,
                    sizes()
                ),
            )
        })?;
    for (field, value) in &entry.fields {
        match input.get(field) {
            None | Some(Value::Null) => {
                input.insert(field.clone(), json!(value));
            }
            Some(Value::String(s)) if s == value => {}
            Some(other) => {
                return Err(bad_request(
                    field,
                    format!(
                        "`size` `{text}` and `{field}` {other} ask for different sizes: send one or the other."
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_callback(input: &Map<String, Value>) -> Result<(), ApiError> {
    match input.get("callback_url") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(url)) if url.starts_with("https://") => Ok(()),
        Some(_) => Err(bad_request(
            "callback_url",
            "`callback_url` must be an HTTPS URL.",
        )),
    }
}

/// `frame_images` (`first_frame`, `last_frame`) and image `input_references`, each a data
/// URI (or an https URL, which the emulator cannot fetch), checked by the model's rules;
/// a frame the model does not take is refused, as `supported_frame_images` says.
fn frame_images(
    model: &Model,
    input: &Map<String, Value>,
    size: Size,
) -> Result<Vec<InputImage>, ApiError> {
    let mut out = Vec::new();
    let frames = input.get("frame_images").and_then(Value::as_array);
    let references = input.get("input_references").and_then(Value::as_array);
    let parts = frames
        .into_iter()
        .flatten()
        .map(|f| (f, true))
        .chain(references.into_iter().flatten().map(|r| (r, false)));
    for (part, is_frame) in parts {
        let field = if is_frame {
            "frame_images"
        } else {
            "input_references"
        };
        let role = match (is_frame, part.get("frame_type").and_then(Value::as_str)) {
            (true, Some("first_frame")) => ImageRole::FirstFrame,
            (true, Some("last_frame")) => ImageRole::LastFrame,
            (true, other) => {
                return Err(bad_request(
                    field,
                    format!("`frame_type` must be `first_frame` or `last_frame`, got {other:?}."),
                ));
            }
            (false, _) => ImageRole::Reference,
        };
        let Some(rules) = model.images.as_ref().filter(|i| i.takes(role)) else {
            return Err(bad_request(
                field,
                format!(
                    "Model `{}` does not support {} input.",
                    model.provider_model,
                    role.describe()
                ),
            ));
        };
        let Some(url) = part.pointer("/image_url/url").and_then(Value::as_str) else {
            return Err(bad_request(field, "Each part needs `image_url.url`."));
        };
        let image = images::data_uri_bytes(url)
            .and_then(|bytes| images::check(role, &bytes, rules, Some(size)))
            .map_err(|m| bad_request(field, format!("Invalid {}: {m}.", role.describe())))?;
        out.push(image);
    }
    Ok(out)
}

async fn create(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let Ok(Value::Object(mut input)) = serde_json::from_slice::<Value>(&body) else {
        return Err(bad_request("", "The request body is not a JSON object."));
    };
    let name = match input.remove("model") {
        Some(Value::String(name)) => name,
        None | Some(Value::Null) => return Err(bad_request("model", "`model` is required.")),
        Some(_) => return Err(bad_request("model", "`model` is a string.")),
    };
    let model = model(&app, &name).ok_or_else(|| {
        ApiError::not_found(
            FLAVOR,
            format!(
                "Model `{name}` not found: the emulator serves the OpenRouter video models of its catalogue (GET {PREFIX}/models)."
            ),
        )
    })?;
    check_callback(&input)?;
    apply_size(&model, &mut input)?;
    let asked = model_input::check(&model, &input).map_err(invalid)?;
    let images = frame_images(&model, &input, asked.size)?;
    if app.faults.payment_required() {
        app.stats.fault("402");
        return Err(ApiError::payment_required(
            "Insufficient credits (injected by the emulator's `--faults`). Add more using https://openrouter.ai/credits",
        ));
    }
    let charge = cost(&model, asked.size, asked.seconds).unwrap_or(0.0);
    app.credit.charge(charge).map_err(|left| {
        ApiError::payment_required(format!(
            "Insufficient credits: this video costs ${charge} and ${left:.6} is left (the emulator's credit). Add more using https://openrouter.ai/credits"
        ))
    })?;
    let spec = JobSpec {
        api: Api::Openrouter,
        prompt: asked.prompt,
        model: model.provider_model.clone(),
        width: asked.size.width,
        height: asked.size.height,
        seconds: asked.seconds,
        variants: 1,
        remixed_from: None,
        input,
        deadline: None,
        images,
    };
    let job = match app.create_job(spec, FLAVOR) {
        Ok(job) => job,
        Err(e) => {
            app.credit.refund(charge);
            return Err(e);
        }
    };
    app.stats.credit_charged(charge);
    let body = video_json(&app, &job, app.now());
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(FLAVOR, format!("Video generation job `{id}` not found."))
}

fn video(app: &App, id: &str, now: EmuMillis) -> Result<Arc<Job>, ApiError> {
    app.store
        .job_of(Api::Openrouter, id, now)
        .ok_or_else(|| not_found(id))
}

async fn retrieve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = app.now();
    let job = video(&app, &id, now)?;
    Ok(axum::Json(video_json(&app, &job, now)).into_response())
}

async fn content(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let index = match query.get("index").map(String::as_str) {
        None | Some("" | "null") => 0,
        Some(text) => text.parse::<usize>().map_err(|_| {
            bad_request(
                "index",
                format!("`index` is a whole number of at least 0, got `{text}`."),
            )
        })?,
    };
    let now = app.now();
    let job = video(&app, &id, now)?;
    match status_of(&job, now) {
        "completed" => {}
        status => {
            return Err(ApiError::not_found(
                FLAVOR,
                format!("Video generation job `{id}` has no content: its status is `{status}`."),
            ));
        }
    }
    let generation = job.generations.get(index).ok_or_else(|| {
        bad_request(
            "index",
            format!(
                "`index` {index} is out of range: job `{id}` has {} output(s).",
                job.generations.len()
            ),
        )
    })?;
    let bytes = assets::asset(&job, generation, AssetKind::Mp4)
        .await
        .map_err(|e| ApiError::internal(FLAVOR, e.to_string()))?;
    let truncate = method == Method::GET && app.faults.truncate_content();
    if truncate {
        app.stats.fault("truncate");
    }
    Ok(Serve {
        bytes,
        content_type: AssetKind::Mp4.content_type(),
        last_modified: app.clock.system_time(job.finished_at()),
        method: &method,
        headers: &headers,
        truncate,
        stats: &app.stats,
    }
    .response())
}

/// The distinct values of one size field across the model's sizes, in catalogue order.
fn field_values(model: &Model, field: &str) -> Option<Vec<String>> {
    let mut values: Vec<String> = Vec::new();
    for entry in &model.sizes {
        if let Some(v) = entry.fields.get(field)
            && !values.contains(v)
        {
            values.push(v.clone());
        }
    }
    (!values.is_empty()).then_some(values)
}

/// The unix seconds of the earliest date the catalogue cites for the model (the emulator
/// knows no creation date), or 0.
fn created(model: &Model) -> i64 {
    model
        .sources
        .iter()
        .filter_map(|s| s.date.parse::<jiff::civil::Date>().ok())
        .min()
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map_or(0, |z| z.timestamp().as_second())
}

/// `VideoModel` of a catalogue entry.
fn video_model(model: &Model) -> Value {
    let durations: Vec<u32> = match model.seconds.rule() {
        Ok(SecondsRule::Range { min, max }) => (min..=max).collect(),
        Ok(SecondsRule::OneOf(values)) => values,
        Err(_) => vec![model.default_seconds],
    };
    let has_param = |name: &str| model.params.iter().any(|p| p.name == name);
    let pricing = model.price.as_ref().map(|price| {
        let mut skus = Map::new();
        skus.insert(
            "duration_seconds".into(),
            json!(price.per_second.to_string()),
        );
        for by_size in &price.by_size {
            for size in &by_size.sizes {
                skus.insert(
                    format!("duration_seconds_{size}"),
                    json!(by_size.per_second.to_string()),
                );
            }
        }
        skus
    });
    json!({
        "id": model.provider_model,
        "canonical_slug": model.provider_model,
        "name": model.id,
        "description": model.description.clone().unwrap_or_default(),
        "created": created(model),
        "supported_resolutions": field_values(model, "resolution"),
        "supported_aspect_ratios": field_values(model, "aspect_ratio"),
        "supported_sizes": model.sizes.iter().map(|e| e.size.to_string()).collect::<Vec<_>>(),
        "supported_durations": durations,
        // The emulator takes no frame images.
        "supported_frame_images": null,
        "upscale_factor": null,
        "creativity": null,
        "generate_audio": has_param("generate_audio"),
        "seed": has_param("seed"),
        "pricing_skus": pricing,
        "allowed_passthrough_parameters": [],
    })
}

async fn models(State(app): State<Arc<App>>) -> Response {
    let data: Vec<Value> = app
        .catalogue
        .models_of(Api::Openrouter)
        .map(video_model)
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shotlist_models::catalogue::Catalogue;

    #[test]
    fn lists_each_model_from_its_entry_and_reads_size_as_its_fields() {
        let c = Catalogue::builtin();
        for m in c.models_of(Api::Openrouter) {
            let listed = video_model(m);
            assert_eq!(listed["id"], json!(m.provider_model));
            assert_eq!(
                listed["supported_sizes"].as_array().unwrap().len(),
                m.sizes.len()
            );
            assert!(listed["created"].as_i64().unwrap() > 0);
            for entry in &m.sizes {
                let mut input = Map::new();
                input.insert(SIZE_FIELD.into(), json!(entry.size.to_string()));
                apply_size(m, &mut input).unwrap();
                assert!(input.get(SIZE_FIELD).is_none());
                assert_eq!(m.read_wire_fields(&input).unwrap().0, entry.size);
            }
            let mut bad = Map::new();
            bad.insert(SIZE_FIELD.into(), json!("1x1"));
            assert!(apply_size(m, &mut bad).is_err());
        }
        assert_eq!(generation_id("gen-vid-17-abc"), "gen-17-abc");
    }
}
