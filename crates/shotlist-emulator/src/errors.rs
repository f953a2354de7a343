//! Error responses in each API's own shape, and the emulator's start-up error.
//!
//! Azure: `{"error": {"code", "message", "param"?, "type", "inner_error"?}}` (the inner
//! object is the spec's `AzureOpenAIVideoGenerationErrorResponse`). OpenAI:
//! `{"error": {"message", "type", "param", "code"}}` (the spec's `ErrorResponse`, nulls
//! included). fal: `{"detail": "...", "error_type"?}` with `X-Fal-Error-Type`, or for input
//! errors `{"detail": [{"loc", "msg", "type", ...}]}`. Replicate: RFC 7807 problem details
//! `{"type", "title", "status", "detail"}` (+ `invalid_fields` for input errors).
//! OpenRouter: `{"error": {"code", "message", "metadata"?}}` with `code` the HTTP status
//! (the spec's `BadRequestResponse` and siblings), and on 429 `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix milliseconds). Retry hints are
//! real time, so a client that obeys them waits the right amount at any
//! `--time-scale`. Messages must never echo a credential.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which service's wording and shape an error takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Azure,
    OpenAi,
    Fal,
    Replicate,
    OpenRouter,
}

impl Flavor {
    /// The flavor of whatever route `path` is on (used before routing, e.g. for 401/429):
    /// OpenRouter's `/api/v1`, the OpenAI and Azure prefixes, Replicate's `/v1/models/` and
    /// `/v1/predictions`, and fal for every other path (fal's paths are model ids).
    pub fn for_path(path: &str) -> Flavor {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/api") {
            Flavor::OpenRouter
        } else if under("/v1/videos") || under("/openai/v1/videos") {
            Flavor::OpenAi
        } else if under("/v1/models") || under("/v1/predictions") {
            Flavor::Replicate
        } else if under("/openai") || under("/v1") {
            Flavor::Azure
        } else {
            Flavor::Fal
        }
    }
}

/// An error answer of one of the emulated APIs (boxed: handlers return it by value).
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorParts>);

/// The parts of an [`ApiError`].
#[derive(Debug)]
pub struct ApiErrorParts {
    pub flavor: Flavor,
    pub status: StatusCode,
    /// Azure and OpenAI: `code`; fal: `error_type` (and `X-Fal-Error-Type`); Replicate:
    /// the problem's `title`; OpenRouter: not shown (its `code` is the HTTP status).
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    pub kind: &'static str,
    /// Real-time wait hint (`Retry-After`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
    pub inner_error: Option<Value>,
    /// Input errors of fal (the `detail` list, in place of the message), Replicate
    /// (`invalid_fields`) and OpenRouter (`metadata.invalid_fields`).
    pub fields: Vec<Value>,
    /// OpenRouter's 429: the `X-RateLimit-*` headers.
    pub rate_limit: Option<RateLimit>,
}

/// What OpenRouter's `X-RateLimit-*` headers of a 429 say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (`X-RateLimit-Limit`).
    pub limit: u32,
    /// When the window admits a request again, unix milliseconds of the real clock
    /// (`X-RateLimit-Reset`).
    pub reset_unix_ms: u64,
}

impl RateLimit {
    /// `limit` per window, a request admitted again after `wait` (real time).
    pub fn after(limit: u32, wait: Duration) -> RateLimit {
        let reset = SystemTime::now() + wait;
        RateLimit {
            limit,
            reset_unix_ms: reset
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorParts;
    fn deref(&self) -> &ApiErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(
        flavor: Flavor,
        status: StatusCode,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError(Box::new(ApiErrorParts {
            flavor,
            status,
            code: code.map(str::to_owned),
            message: message.into(),
            param: None,
            kind: "invalid_request_error",
            retry_after: None,
            inner_error: None,
            fields: Vec::new(),
            rate_limit: None,
        }))
    }

    pub fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    pub fn code_as(mut self, code: &str) -> ApiError {
        self.code = Some(code.to_owned());
        self
    }

    pub fn kind(mut self, kind: &'static str) -> ApiError {
        self.kind = kind;
        self
    }

    pub fn retry_after(mut self, wait: Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }

    /// OpenRouter's `X-RateLimit-*` (with `Retry-After`): `limit` per window, admitted
    /// again after `wait` (real time). Other flavors ignore the headers.
    pub fn rate_limited(mut self, limit: u32, wait: Duration) -> ApiError {
        self.rate_limit = Some(RateLimit::after(limit, wait));
        self.retry_after(wait)
    }

    /// OpenRouter's 402: the account's credit does not cover the job.
    pub fn payment_required(message: impl Into<String>) -> ApiError {
        ApiError::new(
            Flavor::OpenRouter,
            StatusCode::PAYMENT_REQUIRED,
            None,
            message,
        )
    }

    /// 400 with a parameter named.
    pub fn invalid(flavor: Flavor, param: &str, message: impl Into<String>) -> ApiError {
        let code = match flavor {
            Flavor::Azure => "BadRequest",
            Flavor::OpenAi => "invalid_value",
            Flavor::Fal => "bad_request",
            Flavor::Replicate => "Bad request",
            Flavor::OpenRouter => "bad_request",
        };
        ApiError::new(flavor, StatusCode::BAD_REQUEST, Some(code), message).param(param)
    }

    pub fn not_found(flavor: Flavor, message: impl Into<String>) -> ApiError {
        let code = match flavor {
            Flavor::Azure => Some("NotFound"),
            Flavor::OpenAi | Flavor::Fal | Flavor::OpenRouter => None,
            Flavor::Replicate => Some("Not found"),
        };
        ApiError::new(flavor, StatusCode::NOT_FOUND, code, message)
    }

    /// 422 for a model input that does not validate (fal and Replicate): `fields` are the
    /// service's own entries (fal's `detail` list, Replicate's `invalid_fields`).
    pub fn unprocessable(
        flavor: Flavor,
        message: impl Into<String>,
        fields: Vec<Value>,
    ) -> ApiError {
        let code = (flavor == Flavor::Replicate).then_some("Input validation failed");
        let mut e = ApiError::new(flavor, StatusCode::UNPROCESSABLE_ENTITY, code, message);
        e.fields = fields;
        e
    }

    pub fn unauthorized(flavor: Flavor, had_credential: bool) -> ApiError {
        match flavor {
            Flavor::Azure => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                Some("401"),
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
            ),
            Flavor::OpenAi if had_credential => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                Some("invalid_api_key"),
                "Incorrect API key provided. You can find your API key in your emulator's `--api-key` or `SHOTLIST_EMULATOR_API_KEY`.",
            ),
            Flavor::OpenAi => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                None,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            ),
            Flavor::Fal if had_credential => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                None,
                "No user found for the key: check `FAL_KEY` against the emulator's `--api-key`.",
            ),
            Flavor::Fal => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                None,
                "Authentication is required to access this application: send `Authorization: Key YOUR_KEY`.",
            ),
            Flavor::Replicate => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                Some("Unauthenticated"),
                if had_credential {
                    "Invalid token: check `REPLICATE_API_TOKEN` against the emulator's `--api-key`."
                } else {
                    "You did not pass an authentication token: send `Authorization: Bearer YOUR_TOKEN`."
                },
            ),
            Flavor::OpenRouter => ApiError::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                None,
                if had_credential {
                    "User not found: check `OPENROUTER_API_KEY` against the emulator's `--api-key`."
                } else {
                    "Missing Authentication header: send `Authorization: Bearer YOUR_KEY`."
                },
            ),
        }
    }

    /// The request quota is used up; `wait` is real time.
    pub fn quota(flavor: Flavor, rpm: u32, wait: Duration) -> ApiError {
        let secs = retry_after_secs(wait);
        let e = match flavor {
            Flavor::Azure => ApiError::new(
                flavor,
                StatusCode::TOO_MANY_REQUESTS,
                Some("429"),
                format!(
                    "Requests to the video generation API have exceeded the call rate limit of {rpm} requests per minute of your current pricing tier. Please retry after {secs} seconds."
                ),
            ),
            Flavor::OpenAi => ApiError::new(
                flavor,
                StatusCode::TOO_MANY_REQUESTS,
                Some("rate_limit_exceeded"),
                format!("Rate limit reached for requests per minute: limit {rpm}. Please try again in {secs}s."),
            )
            .kind("requests"),
            Flavor::Fal => ApiError::new(
                flavor,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!("Too many requests: at most {rpm} requests per minute (the emulator's `--rpm`). Retry after {secs} seconds."),
            ),
            Flavor::Replicate => ApiError::throttled(wait),
            Flavor::OpenRouter => ApiError::new(
                flavor,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!("Rate limit exceeded: at most {rpm} requests per minute (the emulator's `--rpm`). Retry after {secs} seconds."),
            )
            .rate_limited(rpm, wait),
        };
        e.retry_after(wait)
    }

    /// Replicate's 429, for the create rate and the request quota alike; `wait` is real time.
    pub fn throttled(wait: Duration) -> ApiError {
        ApiError::new(
            Flavor::Replicate,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Request was throttled"),
            format!(
                "Request was throttled. Your rate limit resets in ~{}s.",
                retry_after_secs(wait)
            ),
        )
        .retry_after(wait)
    }

    /// `max` jobs are running already; `wait` (real) until one finishes.
    pub fn too_many_running(flavor: Flavor, max: usize, wait: Duration) -> ApiError {
        let message = format!(
            "Too many running jobs: at most {max} video generation jobs can run at the same time. Wait for one to finish (succeeded or failed), then try again."
        );
        let code = match flavor {
            Flavor::Azure => "too_many_running_jobs",
            Flavor::OpenAi | Flavor::Fal | Flavor::Replicate | Flavor::OpenRouter => {
                "rate_limit_exceeded"
            }
        };
        ApiError::new(flavor, StatusCode::TOO_MANY_REQUESTS, Some(code), message)
            .kind("requests")
            .retry_after(wait)
    }

    pub fn internal(flavor: Flavor, message: impl Into<String>) -> ApiError {
        let code = match flavor {
            Flavor::Azure | Flavor::OpenAi => "internal_error",
            Flavor::Fal => "runner_server_error",
            Flavor::Replicate => "Internal Server Error",
            Flavor::OpenRouter => "internal_error",
        };
        ApiError::new(
            flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(code),
            message,
        )
        .kind("server_error")
    }

    /// An injected status fault (429, 500 or 503).
    pub fn injected(flavor: Flavor, status: u16) -> ApiError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match status {
            StatusCode::TOO_MANY_REQUESTS => ApiError::new(
                flavor,
                status,
                match flavor {
                    Flavor::Azure => Some("429"),
                    Flavor::OpenAi => Some("rate_limit_exceeded"),
                    Flavor::Fal | Flavor::OpenRouter => None,
                    Flavor::Replicate => Some("Request was throttled"),
                },
                "Rate limit reached (injected by the emulator's `--faults`). Please retry after 1 second.",
            )
            .kind("requests")
            .retry_after(Duration::from_secs(1)),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::new(
                flavor,
                status,
                Some(match flavor {
                    Flavor::Azure | Flavor::OpenAi | Flavor::OpenRouter => "service_unavailable",
                    Flavor::Fal => "runner_unavailable",
                    Flavor::Replicate => "Service Unavailable",
                }),
                "The service is temporarily unavailable (injected by the emulator's `--faults`).",
            )
            .kind("server_error"),
            _ => ApiError::internal(
                flavor,
                "The server had an error while processing your request (injected by the emulator's `--faults`).",
            ),
        }
    }

    pub fn body(&self) -> Value {
        match self.flavor {
            Flavor::Azure => {
                let mut error = json!({
                    "code": self.code.clone().unwrap_or_else(|| self.status.as_u16().to_string()),
                    "message": self.message,
                    "type": self.kind,
                });
                if let Some(param) = &self.param {
                    error["param"] = json!(param);
                }
                if let Some(inner) = &self.inner_error {
                    error["inner_error"] = inner.clone();
                }
                json!({ "error": error })
            }
            Flavor::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind,
                    "param": self.param,
                    "code": self.code,
                }
            }),
            Flavor::Fal if !self.fields.is_empty() => json!({ "detail": self.fields }),
            Flavor::Fal => {
                let mut body = json!({ "detail": self.message });
                if let Some(code) = &self.code {
                    body["error_type"] = json!(code);
                }
                body
            }
            Flavor::Replicate => {
                let title = self.code.clone().unwrap_or_else(|| {
                    self.status.canonical_reason().unwrap_or("Error").to_owned()
                });
                let mut body = json!({
                    "type": "about:blank",
                    "title": title,
                    "status": self.status.as_u16(),
                    "detail": self.message,
                });
                if !self.fields.is_empty() {
                    body["invalid_fields"] = json!(self.fields);
                }
                body
            }
            Flavor::OpenRouter => {
                let mut error = json!({
                    "code": self.status.as_u16(),
                    "message": self.message,
                });
                let mut metadata = serde_json::Map::new();
                if let Some(param) = &self.param {
                    metadata.insert("param".into(), json!(param));
                }
                if !self.fields.is_empty() {
                    metadata.insert("invalid_fields".into(), json!(self.fields));
                }
                if !metadata.is_empty() {
                    error["metadata"] = Value::Object(metadata);
                }
                json!({ "error": error })
            }
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.flavor == Flavor::Replicate {
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
        }
        if let Some(code) = self.code.as_deref().filter(|_| self.flavor == Flavor::Fal)
            && let Ok(value) = HeaderValue::from_str(code)
        {
            response.headers_mut().insert("x-fal-error-type", value);
        }
        if let Some(wait) = self.retry_after {
            let headers = response.headers_mut();
            let ms = HeaderValue::from(wait.as_millis().max(1) as u64);
            headers.insert("retry-after", HeaderValue::from(retry_after_secs(wait)));
            headers.insert("retry-after-ms", ms.clone());
            if self.flavor == Flavor::Azure {
                headers.insert("x-ms-retry-after-ms", ms);
            }
        }
        if let Some(limit) = self
            .rate_limit
            .filter(|_| self.flavor == Flavor::OpenRouter)
        {
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(limit.limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
            headers.insert("x-ratelimit-reset", HeaderValue::from(limit.reset_unix_ms));
        }
        response
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EmulatorError {
    #[error("failed to listen on `{addr}`")]
    #[diagnostic(help("pick another address with `--listen`, or port 0 for any free port"))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load the TLS certificate `{cert}` and key `{key}`: {message}")]
    #[diagnostic(help(
        "give a PEM certificate chain with `--tls-cert` and its PEM private key (PKCS#8, PKCS#1 or SEC1) with `--tls-key`"
    ))]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("invalid `--time-scale` {0}")]
    #[diagnostic(help(
        "the time scale is a positive number, e.g. `1` (real time) or `60` (a minute per second)"
    ))]
    TimeScale(f64),
}
