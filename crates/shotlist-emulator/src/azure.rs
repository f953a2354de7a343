//! The Azure OpenAI video generation jobs API (model `sora`, preview), under
//! `/openai/v1/video/generations`: create, list, get and delete jobs, get generations,
//! download video and thumbnail.
//!
//! Bodies follow the spec's `VideoGenerationJob`, `VideoGeneration`,
//! `VideoGenerationJobList`; requests are validated against `Api::AzureJobs.limits()` (the catalogue)
//! (never against numbers written here). Every route requires `api-version=preview`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use shotlist_models::limits::{Api, Size};

use super::assets::{self, AssetKind};
use super::content::Serve;
use super::errors::{ApiError, Flavor};
use super::server::{App, no_content, query_list};
use super::state::{Failure, Job, JobSpec, Phase};

const FLAVOR: Flavor = Flavor::Azure;
const PREFIX: &str = "/openai/v1/video/generations";
/// The only `api-version` the video generation preview answers to.
const API_VERSION: &str = "preview";
/// The spec's `JobStatus` values.
const JOB_STATUSES: [&str; 7] = [
    "preprocessing",
    "queued",
    "running",
    "processing",
    "cancelled",
    "succeeded",
    "failed",
];
const DEFAULT_LIST_LIMIT: usize = 10;
const MAX_LIST_LIMIT: usize = 100;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(&format!("{PREFIX}/jobs"), get(list_jobs).post(create_job))
        .route(
            &format!("{PREFIX}/jobs/{{job_id}}"),
            get(get_job).delete(delete_job),
        )
        .route(&format!("{PREFIX}/{{generation_id}}"), get(get_generation))
        .route(
            &format!("{PREFIX}/{{generation_id}}/content/video"),
            get(video),
        )
        .route(
            &format!("{PREFIX}/{{generation_id}}/content/thumbnail"),
            get(thumbnail),
        )
        .route_layer(middleware::from_fn(require_api_version))
}

/// `api-version` is required; the service answers 400 without it.
async fn require_api_version(
    Query(query): Query<HashMap<String, String>>,
    req: Request,
    next: Next,
) -> Response {
    match query.get("api-version").map(String::as_str) {
        Some(API_VERSION) => next.run(req).await,
        None => ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("MissingApiVersionParameter"),
            format!("The api-version query parameter (?api-version=) is required for all requests. Use `api-version={API_VERSION}` for video generation."),
        )
        .param("api-version")
        .into_response(),
        Some(_) => ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("BadRequest"),
            format!("API version not supported. Video generation jobs require `api-version={API_VERSION}`."),
        )
        .param("api-version")
        .into_response(),
    }
}

fn status_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Waiting | Phase::Queued => "queued",
        Phase::Preprocessing { .. } => "preprocessing",
        Phase::Running { .. } => "running",
        Phase::Processing { .. } => "processing",
        Phase::Succeeded => "succeeded",
        Phase::Failed(_) => "failed",
        Phase::Canceled | Phase::Aborted => "cancelled",
    }
}

fn generation_json(app: &App, job: &Job, generation_id: &str) -> Value {
    json!({
        "object": "video.generation",
        "id": generation_id,
        "job_id": job.id,
        "created_at": app.clock.unix_secs(job.finished_at()),
        "width": job.spec.width,
        "height": job.spec.height,
        "n_seconds": job.spec.seconds,
        "prompt": job.spec.prompt,
    })
}

fn job_json(app: &App, job: &Job) -> Value {
    let phase = job.phase(app.now());
    let generations: Vec<Value> = if phase == Phase::Succeeded {
        job.generations
            .iter()
            .map(|g| generation_json(app, job, &g.id))
            .collect()
    } else {
        Vec::new()
    };
    let mut body = json!({
        "object": "video.generation.job",
        "id": job.id,
        "status": status_of(phase),
        "created_at": app.clock.unix_secs(job.created),
        "expires_at": app.clock.unix_secs(job.expires()),
        "generations": generations,
        "prompt": job.spec.prompt,
        "model": job.spec.model,
        "n_variants": job.spec.variants,
        "n_seconds": job.spec.seconds,
        "height": job.spec.height,
        "width": job.spec.width,
    });
    if let Some(items) = job.spec.input.get("inpaint_items") {
        body["inpaint_items"] = items.clone();
    }
    if phase.is_finished() {
        body["finished_at"] = json!(app.clock.unix_secs(job.finished_at()));
    }
    if let Phase::Failed(failure) = phase {
        body["failure_reason"] = json!(match failure {
            Failure::Moderation => "input_moderation",
            Failure::InternalError => "internal_error",
        });
    }
    body
}

fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        FLAVOR,
        format!(
            "The video generation job `{id}` was not found. It may have been deleted, or it expired (see `expires_at`)."
        ),
    )
}

fn generation_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        FLAVOR,
        format!(
            "The video generation `{id}` was not found. Generations exist once their job has succeeded, until the job is deleted or expires."
        ),
    )
}

/// A required or optional integer field of the create body.
fn int_field(body: &Value, name: &str, default: Option<u32>) -> Result<u32, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => {
            default.ok_or_else(|| ApiError::invalid(FLAVOR, name, format!("`{name}` is required.")))
        }
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    FLAVOR,
                    name,
                    format!("`{name}` must be a positive integer, got `{v}`."),
                )
            }),
    }
}

fn string_field(body: &Value, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(ApiError::invalid(
            FLAVOR,
            name,
            format!("`{name}` is required."),
        )),
        Some(v) => Err(ApiError::invalid(
            FLAVOR,
            name,
            format!("`{name}` must be a string, got `{v}`."),
        )),
    }
}

/// Validates a create body against the limits table.
fn parse_create(app: &App, body: &[u8]) -> Result<JobSpec, ApiError> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("BadRequest"),
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    if !body.is_object() {
        return Err(ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("BadRequest"),
            "The request body must be a JSON object.",
        ));
    }
    let prompt = string_field(&body, "prompt")?;
    let model = string_field(&body, "model")?;
    if model.trim().is_empty() {
        return Err(ApiError::invalid(
            FLAVOR,
            "model",
            "`model` (the deployment name) must not be empty.",
        ));
    }
    let limits = &app.limits_for(Api::AzureJobs, &model);
    let chars = prompt.chars().count();
    if chars < limits.prompt_min_chars || chars > limits.prompt_max_chars {
        return Err(ApiError::invalid(
            FLAVOR,
            "prompt",
            format!(
                "The prompt has {chars} characters; it must have from {} to {} characters.",
                limits.prompt_min_chars, limits.prompt_max_chars
            ),
        ));
    }
    let width = int_field(&body, "width", None)?;
    let height = int_field(&body, "height", None)?;
    let size = Size::new(width, height);
    let Some(rule) = limits.size_rule(size) else {
        return Err(ApiError::invalid(
            FLAVOR,
            "width",
            format!(
                "The resolution {size} is not supported. Supported resolutions (width x height): {}.",
                limits.sizes_list()
            ),
        ));
    };
    let seconds = int_field(&body, "n_seconds", Some(limits.default_seconds))?;
    if !limits.seconds.allows(seconds) {
        return Err(ApiError::invalid(
            FLAVOR,
            "n_seconds",
            format!(
                "`n_seconds` is {seconds}; it must be {}.",
                limits.seconds.describe()
            ),
        ));
    }
    let variants = int_field(&body, "n_variants", Some(limits.default_variants))?;
    if variants < 1 || variants > rule.max_variants {
        return Err(ApiError::invalid(
            FLAVOR,
            "n_variants",
            format!(
                "`n_variants` is {variants}; at {size} it must be from 1 to {}.",
                rule.max_variants
            ),
        ));
    }
    Ok(JobSpec {
        api: limits.api,
        prompt,
        model,
        width,
        height,
        seconds,
        variants,
        remixed_from: None,
        input: Default::default(),
        deadline: None,
        images: Vec::new(),
    })
}

async fn create_job(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let spec = if content_type.starts_with("multipart/form-data") {
        let form = axum::extract::Multipart::from_request(req, &app)
            .await
            .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
        parse_multipart(&app, form).await?
    } else {
        let body = Bytes::from_request(req, &app)
            .await
            .map_err(|e| bad(format!("Could not read the request body: {e}.")))?;
        parse_create(&app, &body)?
    };
    let job = app.create_job(spec, FLAVOR)?;
    Ok(axum::Json(job_json(&app, &job)).into_response())
}

fn bad(message: String) -> ApiError {
    ApiError::new(FLAVOR, StatusCode::BAD_REQUEST, Some("BadRequest"), message)
}

/// The multipart create (`CreateVideoGenerationWithMediaRequestMultiPart`): the JSON
/// create's fields as text parts, `files` (the images) and `inpaint_items` (a JSON list
/// placing each file at a frame), checked as the service checks them.
async fn parse_multipart(
    app: &App,
    mut form: axum::extract::Multipart,
) -> Result<JobSpec, ApiError> {
    let mut fields = serde_json::Map::new();
    let mut items: Option<String> = None;
    let mut files: Vec<(String, Bytes)> = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "files" || name == "files[]" {
            let Some(file_name) = field.file_name().map(str::to_owned) else {
                return Err(ApiError::invalid(
                    FLAVOR,
                    "files",
                    "Each of `files` must be a file part with a file name.",
                ));
            };
            let data = field
                .bytes()
                .await
                .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
            files.push((file_name, data));
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
        if name == "inpaint_items" {
            items = Some(text);
            continue;
        }
        let value = match name.as_str() {
            "width" | "height" | "n_seconds" | "n_variants" => text
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or(Value::String(text)),
            _ => Value::String(text),
        };
        fields.insert(name, value);
    }
    let json = serde_json::to_vec(&Value::Object(fields)).expect("a map serializes");
    let mut spec = parse_create(app, &json)?;
    if files.is_empty() {
        return Err(ApiError::invalid(
            FLAVOR,
            "files",
            "`files` is required in a multipart request.",
        ));
    }
    let items: Vec<Value> = match items.as_deref().map(serde_json::from_str::<Value>) {
        None => {
            return Err(ApiError::invalid(
                FLAVOR,
                "inpaint_items",
                "`inpaint_items` is required with `files`: it places each file at a frame.",
            ));
        }
        Some(Ok(Value::Array(items))) => items,
        Some(_) => {
            return Err(ApiError::invalid(
                FLAVOR,
                "inpaint_items",
                "`inpaint_items` must be a JSON array.",
            ));
        }
    };
    let catalogue = shotlist_models::catalogue::Catalogue::builtin();
    let Some(rules) = catalogue
        .find(Api::AzureJobs, &spec.model)
        .unwrap_or_else(|| catalogue.default_model(Api::AzureJobs))
        .images
        .as_ref()
    else {
        return Err(ApiError::invalid(
            FLAVOR,
            "files",
            "This deployment takes no image inputs.",
        ));
    };
    let takes = usize::from(rules.first_frame.is_some()) + usize::from(rules.last_frame.is_some());
    if items.len() > takes {
        return Err(ApiError::invalid(
            FLAVOR,
            "inpaint_items",
            format!("At most {takes} images can be given; got {}.", items.len()),
        ));
    }
    let frames = spec.seconds * rules.frame_rate.unwrap_or(30);
    let mut images = Vec::new();
    for item in &items {
        let name = item["file_name"].as_str().unwrap_or("");
        let Some((_, data)) = files.iter().find(|(f, _)| f == name) else {
            return Err(ApiError::invalid(
                FLAVOR,
                "inpaint_items",
                format!("Inpaint item file_name `{name}` does not match any attached file."),
            ));
        };
        if item["type"] != "image" {
            return Err(ApiError::invalid(
                FLAVOR,
                "inpaint_items",
                "Only `type: image` inpaint items are supported.",
            ));
        }
        let Some(index) = item["frame_index"]
            .as_u64()
            .filter(|i| *i < u64::from(frames))
        else {
            return Err(ApiError::invalid(
                FLAVOR,
                "inpaint_items",
                format!(
                    "`frame_index` must be from 0 to {} for a {}-second video.",
                    frames.saturating_sub(1),
                    spec.seconds
                ),
            ));
        };
        let role = if index == 0 {
            shotlist_models::catalogue::ImageRole::FirstFrame
        } else {
            shotlist_models::catalogue::ImageRole::LastFrame
        };
        let image =
            super::images::check(role, data, rules, Some(Size::new(spec.width, spec.height)))
                .map_err(|m| {
                    ApiError::invalid(FLAVOR, "files", format!("Invalid image `{name}`: {m}."))
                })?;
        images.push(image);
    }
    if let Some((name, _)) = files
        .iter()
        .find(|(f, _)| !items.iter().any(|i| i["file_name"] == f.as_str()))
    {
        return Err(ApiError::invalid(
            FLAVOR,
            "files",
            format!("File `{name}` is not named by any inpaint item."),
        ));
    }
    spec.input
        .insert("inpaint_items".into(), Value::Array(items));
    spec.images = images;
    Ok(spec)
}

async fn list_jobs(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIST_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    FLAVOR,
                    "limit",
                    format!("`limit` must be from 1 to {MAX_LIST_LIMIT}, got `{v}`."),
                )
            })?,
    };
    let statuses = query_list(&query, "statuses");
    if let Some(bad) = statuses
        .iter()
        .find(|s| !JOB_STATUSES.contains(&s.as_str()))
    {
        return Err(ApiError::invalid(
            FLAVOR,
            "statuses",
            format!(
                "Unknown job status `{bad}`; known statuses: {}.",
                JOB_STATUSES.join(", ")
            ),
        ));
    }
    let now = app.now();
    // Newest first.
    let mut jobs = app.store.list(Api::AzureJobs, now);
    jobs.reverse();
    jobs.retain(|j| statuses.is_empty() || statuses.iter().any(|s| s == status_of(j.phase(now))));
    let position = |id: &String| jobs.iter().position(|j| &j.id == id);
    let (page, has_more) = if let Some(after) = query.get("after") {
        let start = position(after).map_or(jobs.len(), |i| i + 1);
        let end = (start + limit).min(jobs.len());
        (&jobs[start..end], end < jobs.len())
    } else if let Some(before) = query.get("before") {
        let end = position(before).unwrap_or(0);
        let start = end.saturating_sub(limit);
        (&jobs[start..end], start > 0)
    } else {
        let end = limit.min(jobs.len());
        (&jobs[..end], end < jobs.len())
    };
    let mut body = json!({
        "object": "list",
        "data": page.iter().map(|j| job_json(&app, j)).collect::<Vec<_>>(),
        "has_more": has_more,
    });
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        body["first_id"] = json!(first.id);
        body["last_id"] = json!(last.id);
    }
    Ok(axum::Json(body).into_response())
}

async fn get_job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = app
        .store
        .job(&id, app.now())
        .ok_or_else(|| job_not_found(&id))?;
    Ok(axum::Json(job_json(&app, &job)).into_response())
}

async fn delete_job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if app.store.delete(&id, app.now()) {
        Ok(no_content())
    } else {
        Err(job_not_found(&id))
    }
}

/// A generation of a succeeded Azure job (the other APIs' files are not Azure's).
fn azure_generation(
    app: &App,
    id: &str,
) -> Result<(Arc<Job>, Arc<super::state::Generation>), ApiError> {
    app.store
        .generation(id, app.now())
        .filter(|(job, _)| job.spec.api == Api::AzureJobs)
        .ok_or_else(|| generation_not_found(id))
}

async fn get_generation(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, generation) = azure_generation(&app, &id)?;
    Ok(axum::Json(generation_json(&app, &job, &generation.id)).into_response())
}

async fn video(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(q) = query
        .get("quality")
        .filter(|q| !matches!(q.as_str(), "high" | "low"))
    {
        return Err(ApiError::invalid(
            FLAVOR,
            "quality",
            format!("`quality` must be `high` or `low`, got `{q}`."),
        ));
    }
    content(&app, &id, AssetKind::Mp4, &method, &headers).await
}

async fn thumbnail(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    content(&app, &id, AssetKind::ThumbnailJpeg, &method, &headers).await
}

async fn content(
    app: &Arc<App>,
    id: &str,
    kind: AssetKind,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (job, generation) = azure_generation(app, id)?;
    let bytes = assets::asset(&job, &generation, kind)
        .await
        .map_err(|e| ApiError::internal(FLAVOR, e.to_string()))?;
    let truncate = *method == Method::GET && app.faults.truncate_content();
    if truncate {
        app.stats.fault("truncate");
    }
    Ok(Serve {
        bytes,
        content_type: kind.content_type(),
        last_modified: app.clock.system_time(job.finished_at()),
        method,
        headers,
        truncate,
        stats: &app.stats,
    }
    .response())
}
