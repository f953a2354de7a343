//! The OpenAI videos API (`/v1/videos`, Sora 2), also mounted under `/openai/v1/videos`
//! as Azure serves it: create (JSON or multipart with an `input_reference` file), list,
//! retrieve, delete, content (`video`, `thumbnail`, `spritesheet`) and remix.
//!
//! Bodies follow the spec's `VideoResource`, `VideoListResource`, `DeletedVideoResource`
//! and `ErrorResponse` (nulls included, as the spec requires the keys). Requests are
//! validated against `Api::OpenaiVideos.limits()` (the catalogue), never against numbers written here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use shotlist_models::limits::{Api, ApiLimits, Size};

use super::assets::{self, AssetKind};
use super::content::Serve;
use super::errors::{ApiError, Flavor};
use super::reference::image_size;
use super::server::App;
use super::state::{Failure, Job, JobSpec, Phase};

const FLAVOR: Flavor = Flavor::OpenAi;
const PREFIXES: [&str; 2] = ["/v1/videos", "/openai/v1/videos"];
const DEFAULT_LIST_LIMIT: usize = 20;
const MAX_LIST_LIMIT: usize = 100;
/// The polling hint, emulated: a fixed interval, as a service gives. It does not promise
/// when a job ends, so clients cannot learn the exact end from it.
const POLL_HINT: Duration = Duration::from_secs(10);
const REFERENCE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

pub fn routes() -> Router<Arc<App>> {
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = router
            .route(prefix, get(list).post(create))
            .route(
                &format!("{prefix}/{{video_id}}"),
                get(retrieve).delete(delete),
            )
            .route(&format!("{prefix}/{{video_id}}/content"), get(content))
            .route(&format!("{prefix}/{{video_id}}/remix"), post(remix));
    }
    router
}

fn video_json(app: &App, job: &Job) -> Value {
    let phase = job.phase(app.now());
    let (status, progress) = match phase {
        Phase::Waiting | Phase::Queued => ("queued", 0),
        Phase::Preprocessing { fraction }
        | Phase::Running { fraction }
        | Phase::Processing { fraction } => {
            ("in_progress", ((fraction * 100.0) as u32).clamp(1, 99))
        }
        Phase::Succeeded => ("completed", 100),
        Phase::Failed(_) | Phase::Canceled | Phase::Aborted => ("failed", 0),
    };
    let error = match phase {
        Phase::Failed(Failure::Moderation) => {
            json!({"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."})
        }
        Phase::Failed(Failure::InternalError) => {
            json!({"code": "internal_error", "message": "The video could not be generated because of an internal error. Please try again."})
        }
        _ => Value::Null,
    };
    let completed_at = (phase == Phase::Succeeded).then(|| app.clock.unix_secs(job.finished_at()));
    json!({
        "id": job.id,
        "object": "video",
        "model": job.spec.model,
        "status": status,
        "progress": progress,
        "created_at": app.clock.unix_secs(job.created),
        "completed_at": completed_at,
        "expires_at": app.clock.unix_secs(job.expires()),
        "prompt": job.spec.prompt,
        "size": Size::new(job.spec.width, job.spec.height).to_string(),
        "seconds": job.spec.seconds.to_string(),
        "remixed_from_video_id": job.spec.remixed_from,
        "error": error,
    })
}

/// A video of this API that still exists at `now`, or the API's own 404.
fn video(app: &App, id: &str, now: super::clock::EmuMillis) -> Result<Arc<Job>, ApiError> {
    app.store
        .job_of(Api::OpenaiVideos, id, now)
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(FLAVOR, format!("Video with id '{id}' not found.")).param("video_id")
}

/// The fields of a create or remix request, from JSON or multipart.
#[derive(Default)]
struct Fields {
    prompt: Option<Value>,
    model: Option<Value>,
    seconds: Option<Value>,
    size: Option<Value>,
    /// Multipart `input_reference`: (content type, file name, bytes); `None` file name: a text part.
    reference: Option<(Option<String>, Option<String>, Bytes)>,
    /// JSON `input_reference` object (`image_url` or `file_id`).
    reference_object: Option<Value>,
}

async fn read_fields(app: &Arc<App>, req: Request) -> Result<Fields, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bad = |message: String| ApiError::new(FLAVOR, StatusCode::BAD_REQUEST, None, message);
    let mut fields = Fields::default();
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, app)
            .await
            .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?
        {
            let name = field.name().unwrap_or("").to_owned();
            if name == "input_reference" {
                let content_type = field.content_type().map(str::to_owned);
                let file_name = field.file_name().map(str::to_owned);
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
                fields.reference = Some((content_type, file_name, data));
                continue;
            }
            let text = field
                .text()
                .await
                .map_err(|e| bad(format!("Invalid multipart body: {e}.")))?;
            let slot = match name.as_str() {
                "prompt" => &mut fields.prompt,
                "model" => &mut fields.model,
                "seconds" => &mut fields.seconds,
                "size" => &mut fields.size,
                _ => continue,
            };
            *slot = Some(Value::String(text));
        }
        return Ok(fields);
    }
    let body = Bytes::from_request(req, app)
        .await
        .map_err(|e| bad(format!("Could not read the request body: {e}.")))?;
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&body) else {
        return Err(bad(
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload (or multipart/form-data).".into(),
        ));
    };
    fields.prompt = object.remove("prompt");
    fields.model = object.remove("model");
    fields.seconds = object.remove("seconds");
    fields.size = object.remove("size");
    fields.reference_object = object.remove("input_reference").filter(|v| !v.is_null());
    Ok(fields)
}

fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
        Value::String(_) => "a string",
    };
    ApiError::new(
        FLAVOR,
        StatusCode::BAD_REQUEST,
        Some("invalid_type"),
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
    )
    .param(param)
}

fn string(value: Option<Value>, param: &str, expected: &str) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid_type(param, expected, &other)),
    }
}

fn quoted_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.map(|s| format!("'{s}'")).collect();
    match items.split_last() {
        Some((last, [only])) => format!("{only} and {last}"),
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

fn check_prompt(prompt: Option<Value>, limits: &ApiLimits) -> Result<String, ApiError> {
    let Some(prompt) = string(prompt, "prompt", "a string")? else {
        return Err(ApiError::new(
            FLAVOR,
            StatusCode::BAD_REQUEST,
            Some("missing_required_parameter"),
            "Missing required parameter: 'prompt'.",
        )
        .param("prompt"));
    };
    let chars = prompt.chars().count();
    if chars < limits.prompt_min_chars {
        return Err(ApiError::invalid(FLAVOR, "prompt", format!("Invalid 'prompt': string too short. Expected a string with minimum length {}, but got a string with length {chars} instead.", limits.prompt_min_chars)).code_as("string_below_min_length"));
    }
    if chars > limits.prompt_max_chars {
        return Err(ApiError::invalid(FLAVOR, "prompt", format!("Invalid 'prompt': string too long. Expected a string with maximum length {}, but got a string with length {chars} instead.", limits.prompt_max_chars)).code_as("string_above_max_length"));
    }
    Ok(prompt)
}

/// Validates a create request against the limits table.
fn parse_create(app: &App, fields: Fields) -> Result<JobSpec, ApiError> {
    let model = string(fields.model, "model", "a string")?
        .unwrap_or_else(|| Api::OpenaiVideos.limits().default_model.to_owned());
    let limits = &app.limits_for(Api::OpenaiVideos, &model);
    let prompt = check_prompt(fields.prompt, limits)?;
    let seconds_list = || quoted_list(limits_seconds(limits).into_iter().map(|s| s.to_string()));
    let seconds = match fields.seconds {
        None | Some(Value::Null) => limits.default_seconds,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| limits.seconds.allows(*n))
            .ok_or_else(|| {
                ApiError::invalid(
                    FLAVOR,
                    "seconds",
                    format!(
                        "Invalid value: '{s}'. Supported values are: {}.",
                        seconds_list()
                    ),
                )
            })?,
        Some(other) => {
            return Err(invalid_type(
                "seconds",
                &format!("one of {}", seconds_list()),
                &other,
            ));
        }
    };
    let sizes_list = || quoted_list(limits.sizes.iter().map(|r| r.size.to_string()));
    let size = match string(fields.size, "size", "a string")? {
        None => limits.default_size.unwrap_or(limits.sizes[0].size),
        Some(s) => Size::parse(s.trim())
            .filter(|size| limits.size_rule(*size).is_some())
            .ok_or_else(|| {
                ApiError::invalid(
                    FLAVOR,
                    "size",
                    format!(
                        "Invalid value: '{s}'. Supported values are: {}.",
                        sizes_list()
                    ),
                )
            })?,
    };
    if let Some(rule) = limits
        .size_rule(size)
        .filter(|r| limits.model_excluded(&model, r))
    {
        let allowed = quoted_list(
            limits
                .sizes
                .iter()
                .filter(|r| !limits.model_excluded(&model, r))
                .map(|r| r.size.to_string()),
        );
        return Err(ApiError::invalid(
            FLAVOR,
            "size",
            format!(
                "Invalid value: '{size}' is only available with `{}` models. Supported values for '{model}' are: {allowed}.",
                rule.only_models.join("`, `")
            ),
        ));
    }
    let mut images = Vec::new();
    if let Some((content_type, file_name, data)) = fields.reference {
        check_reference(content_type.as_deref(), file_name.as_deref(), &data, size)?;
        // The model's own image rules (a name the catalogue does not know: the default
        // model's), as the service applies them to `input_reference`.
        let catalogue = shotlist_models::catalogue::Catalogue::builtin();
        let rules = catalogue
            .find(Api::OpenaiVideos, &model)
            .unwrap_or_else(|| catalogue.default_model(Api::OpenaiVideos))
            .images
            .as_ref();
        let Some(rules) = rules.filter(|r| r.first_frame.is_some()) else {
            return Err(ApiError::invalid(
                FLAVOR,
                "input_reference",
                format!("Model '{model}' does not support 'input_reference'."),
            ));
        };
        let image = super::images::check(
            shotlist_models::catalogue::ImageRole::FirstFrame,
            &data,
            rules,
            Some(size),
        )
        .map_err(|m| {
            ApiError::invalid(
                FLAVOR,
                "input_reference",
                format!("Invalid 'input_reference': {m}."),
            )
        })?;
        images.push(image);
    }
    if let Some(object) = fields.reference_object {
        let ok = object.get("image_url").is_some_and(Value::is_string)
            ^ object.get("file_id").is_some_and(Value::is_string);
        if !ok {
            return Err(ApiError::invalid(
                FLAVOR,
                "input_reference",
                "Invalid 'input_reference': provide exactly one of `image_url` or `file_id`.",
            ));
        }
    }
    Ok(JobSpec {
        api: limits.api,
        prompt,
        model,
        width: size.width,
        height: size.height,
        seconds,
        variants: 1,
        remixed_from: None,
        input: Default::default(),
        deadline: None,
        images,
    })
}

fn limits_seconds(limits: &ApiLimits) -> Vec<u32> {
    match &limits.seconds {
        shotlist_models::limits::SecondsRule::OneOf(values) => values.clone(),
        shotlist_models::limits::SecondsRule::Range { min, max } => (*min..=*max).collect(),
    }
}

fn check_reference(
    content_type: Option<&str>,
    file_name: Option<&str>,
    data: &[u8],
    size: Size,
) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::invalid(FLAVOR, "input_reference", message);
    if file_name.is_none() {
        return Err(invalid("Invalid 'input_reference': expected a file upload (a multipart file part with a filename), got a text field.".into()));
    }
    let content_type = content_type.unwrap_or("application/octet-stream");
    let known = REFERENCE_TYPES.contains(&content_type);
    let measured = image_size(data);
    if !known && measured.is_none() {
        return Err(invalid(format!(
            "Invalid file type `{content_type}` for 'input_reference'. Supported types: {}.",
            REFERENCE_TYPES.join(", ")
        )));
    }
    match measured {
        Some((w, h)) if (w, h) != (size.width, size.height) => Err(invalid(format!(
            "Inpaint image must match the requested width and height: the image is {w}x{h}, the video is {size}."
        ))),
        _ => Ok(()),
    }
}

async fn create(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    let fields = read_fields(&app, req).await?;
    let spec = parse_create(&app, fields)?;
    let job = app.create_job(spec, FLAVOR)?;
    Ok(axum::Json(video_json(&app, &job)).into_response())
}

async fn remix(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let fields = read_fields(&app, req).await?;
    let now = app.now();
    let source = video(&app, &id, now)?;
    if source.phase(now) != Phase::Succeeded {
        return Err(ApiError::invalid(
            FLAVOR,
            "video_id",
            format!("Video '{id}' is not completed; only completed videos can be remixed."),
        )
        .code_as("invalid_request"));
    }
    let prompt = check_prompt(
        fields.prompt,
        &app.limits_for(Api::OpenaiVideos, &source.spec.model),
    )?;
    let spec = JobSpec {
        prompt,
        remixed_from: Some(source.id.clone()),
        ..source.spec.clone()
    };
    let job = app.create_job(spec, FLAVOR)?;
    Ok(axum::Json(video_json(&app, &job)).into_response())
}

async fn list(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIST_LIMIT,
        Some(v) => v.parse::<usize>().ok().filter(|n| *n <= MAX_LIST_LIMIT).ok_or_else(|| {
            ApiError::invalid(FLAVOR, "limit", format!("Invalid 'limit': expected an integer from 0 to {MAX_LIST_LIMIT}, got '{v}'."))
        })?,
    };
    let ascending = match query.get("order").map(String::as_str) {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                FLAVOR,
                "order",
                format!("Invalid value: '{other}'. Supported values are: 'asc' and 'desc'."),
            ));
        }
    };
    let now = app.now();
    let mut videos = app.store.list(Api::OpenaiVideos, now);
    if !ascending {
        videos.reverse();
    }
    let start = match query.get("after") {
        None => 0,
        Some(after) => videos
            .iter()
            .position(|v| &v.id == after)
            .map_or(videos.len(), |i| i + 1),
    };
    let end = (start + limit).min(videos.len());
    let page = &videos[start..end];
    Ok(axum::Json(json!({
        "object": "list",
        "data": page.iter().map(|v| video_json(&app, v)).collect::<Vec<_>>(),
        "first_id": page.first().map(|v| v.id.clone()),
        "last_id": page.last().map(|v| v.id.clone()),
        "has_more": end < videos.len(),
    }))
    .into_response())
}

async fn retrieve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = app.now();
    let job = video(&app, &id, now)?;
    // Poll hint: a fixed interval, as a service gives (it does not know the exact end).
    let hint = app.clock.to_real(POLL_HINT).as_millis().max(1) as u64;
    let mut response = axum::Json(video_json(&app, &job)).into_response();
    response
        .headers_mut()
        .insert("openai-poll-after-ms", HeaderValue::from(hint));
    Ok(response)
}

async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = app.now();
    let live = app
        .store
        .job(&id, now)
        .is_some_and(|j| j.spec.api == Api::OpenaiVideos);
    if !live || !app.store.delete(&id, now) {
        return Err(not_found(&id));
    }
    Ok(axum::Json(json!({"id": id, "object": "video.deleted", "deleted": true})).into_response())
}

async fn content(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = match query.get("variant").map(String::as_str) {
        None | Some("video") => AssetKind::Mp4,
        Some("thumbnail") => AssetKind::ThumbnailWebp,
        Some("spritesheet") => AssetKind::SpritesheetWebp,
        Some(other) => {
            return Err(ApiError::invalid(
                FLAVOR,
                "variant",
                format!(
                    "Invalid value: '{other}'. Supported values are: 'video', 'thumbnail', and 'spritesheet'."
                ),
            ));
        }
    };
    let now = app.now();
    let job = video(&app, &id, now)?;
    match job.phase(now) {
        Phase::Succeeded => {}
        Phase::Failed(_) => {
            return Err(ApiError::invalid(
                FLAVOR,
                "video_id",
                format!("Video '{id}' failed; it has no content."),
            )
            .code_as("video_failed"));
        }
        _ => {
            return Err(ApiError::new(
                FLAVOR,
                StatusCode::NOT_FOUND,
                Some("video_not_ready"),
                format!(
                    "Video '{id}' is not ready yet (status is not `completed`); use GET /v1/videos/{id} to check its status."
                ),
            ));
        }
    }
    let generation = job
        .generations
        .first()
        .ok_or_else(|| ApiError::internal(FLAVOR, "The video has no rendition."))?;
    let bytes = assets::asset(&job, generation, kind)
        .await
        .map_err(|e| ApiError::internal(FLAVOR, e.to_string()))?;
    let truncate = method == Method::GET && app.faults.truncate_content();
    if truncate {
        app.stats.fault("truncate");
    }
    Ok(Serve {
        bytes,
        content_type: kind.content_type(),
        last_modified: app.clock.system_time(job.finished_at()),
        method: &method,
        headers: &headers,
        truncate,
        stats: &app.stats,
    }
    .response())
}
