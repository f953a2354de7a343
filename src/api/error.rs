//! What can go wrong talking to a video service, classified by what the caller must do.
//!
//! * [`ApiError::Auth`]: stop the whole run (every other request will fail the same way).
//! * [`ApiError::Permanent`]: fail that shot, showing the service's own message.
//! * [`ApiError::Transient`]: retried by the transport; surfaces only once retries ran out.
//! * [`ApiError::CreateOutcomeUnknown`]: a create may or may not have made a job; the
//!   scheduler reconciles with `list_recent` before trying again (a second job is paid twice).
//! * [`ApiError::NotFound`] / [`ApiError::Expired`]: the job or its content is gone.
//!
//! Errors must never carry a key, a token or a URL with its query string: they end up in
//! terminals, logs and bug reports.

use std::path::PathBuf;
use std::time::Duration;

use miette::Diagnostic;
use serde::Deserialize;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ApiError {
    #[error("the service refused the credential ({credential}){}: {message}", status_suffix(*.status))]
    #[diagnostic(
        code(shotlist::api::auth),
        help("check the key or token and that it belongs to this resource; the run stops here")
    )]
    Auth {
        status: Option<u16>,
        credential: String,
        message: String,
    },

    #[error("the account is out of credit (HTTP 402, {credential}): {message}")]
    #[diagnostic(
        code(shotlist::api::out_of_credit),
        help(
            "add credit (or raise the key's limit) at the provider; the run stops here and starts nothing new"
        )
    )]
    OutOfCredit { credential: String, message: String },

    #[error("the service rejected the request (HTTP {status}{}): {message}", code_suffix(.code))]
    #[diagnostic(code(shotlist::api::rejected))]
    Permanent {
        status: u16,
        code: Option<String>,
        message: String,
        param: Option<String>,
        /// The prompt the service rewrote the request into, when it says so
        /// (content filter): worth showing next to the message.
        revised_prompt: Option<String>,
        #[help]
        help: Option<String>,
    },

    #[error("{message}{} (gave up after {attempts} attempt{})", status_suffix(*.status), if *.attempts == 1 { "" } else { "s" })]
    #[diagnostic(
        code(shotlist::api::transient),
        help("the service or the network failed; running again resumes")
    )]
    Transient {
        status: Option<u16>,
        message: String,
        /// The server's delay hint of the last answer, if any.
        retry_after: Option<Duration>,
        attempts: u32,
    },

    #[error("the create request may or may not have reached the service: {message}")]
    #[diagnostic(
        code(shotlist::api::create_outcome_unknown),
        help(
            "look for a job created since {since_unix} with the same request before creating another"
        )
    )]
    CreateOutcomeUnknown {
        message: String,
        /// Unix seconds just before the attempt: jobs created since are candidates.
        since_unix: i64,
        /// The request body as sent, to match candidates against.
        request: serde_json::Value,
    },

    #[error("{what} not found: {message}")]
    #[diagnostic(code(shotlist::api::not_found))]
    NotFound { what: String, message: String },

    #[error("{what} expired: the service keeps generated videos for a limited time")]
    #[diagnostic(code(shotlist::api::expired), help("generate the shot again"))]
    Expired { what: String },

    #[error("the service answered something shotlist does not understand: {message}")]
    #[diagnostic(code(shotlist::api::protocol))]
    Protocol { message: String },

    #[error("{message}")]
    #[diagnostic(code(shotlist::api::config))]
    Config { message: String },

    #[error("failed to write `{}`: {source}", path.display())]
    #[diagnostic(code(shotlist::api::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(", `{c}`"))
        .unwrap_or_default()
}

impl ApiError {
    /// Whether the run must stop (no other request can succeed either).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ApiError::Auth { .. } | ApiError::OutOfCredit { .. })
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }
}

/// What an error body says, whichever of the shapes the service used.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub param: Option<String>,
    pub revised_prompt: Option<String>,
}

#[derive(Deserialize)]
struct Wrapped {
    error: Flat,
}

/// Both `{"error": {...}}` (OpenAI, most Azure endpoints) and the flat
/// `AzureOpenAIVideoGenerationErrorResponse` have these fields.
#[derive(Deserialize)]
struct Flat {
    code: Option<serde_json::Value>,
    message: Option<String>,
    param: Option<String>,
    inner_error: Option<Inner>,
    innererror: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    revised_prompt: Option<String>,
}

impl ErrorBody {
    /// Reads either error shape; a body that is neither (an HTML page from a proxy) gives
    /// its first line as the message, trimmed, so there is still something to show.
    pub fn parse(body: &[u8]) -> ErrorBody {
        let flat = serde_json::from_slice::<Wrapped>(body)
            .map(|w| w.error)
            .or_else(|_| serde_json::from_slice::<Flat>(body));
        match flat {
            Ok(f) if f.message.is_some() || f.code.is_some() => ErrorBody {
                // Some services send numeric codes.
                code: f.code.and_then(|c| match c {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                }),
                message: f.message,
                param: f.param,
                revised_prompt: f
                    .inner_error
                    .or(f.innererror)
                    .and_then(|i| i.revised_prompt),
            },
            _ => {
                if let Some(detail) = Detail::parse(body) {
                    return detail;
                }
                let text = String::from_utf8_lossy(body);
                let line = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                ErrorBody {
                    message: (!line.is_empty()).then(|| line.chars().take(200).collect()),
                    ..ErrorBody::default()
                }
            }
        }
    }
}

/// fal's `{"detail": "text", "error_type": ...}` and `{"detail": [{loc, msg, type}]}`,
/// and Replicate's problem details `{"title", "detail", "status"}`.
#[derive(Deserialize)]
struct Detail {
    detail: Option<serde_json::Value>,
    title: Option<String>,
    error_type: Option<String>,
}

impl Detail {
    fn parse(body: &[u8]) -> Option<ErrorBody> {
        let d: Detail = serde_json::from_slice(body).ok()?;
        let (message, code, param) = match d.detail? {
            serde_json::Value::String(s) => (s, d.error_type, None),
            serde_json::Value::Array(items) => {
                let first = items.first();
                let field = |item: &serde_json::Value| {
                    item.get("loc")?
                        .as_array()?
                        .iter()
                        .filter_map(|l| l.as_str())
                        .rfind(|l| *l != "body")
                        .map(str::to_owned)
                };
                let text: Vec<String> = items
                    .iter()
                    .filter_map(|i| {
                        let msg = i.get("msg")?.as_str()?;
                        Some(match field(i) {
                            Some(f) => format!("{f}: {msg}"),
                            None => msg.to_owned(),
                        })
                    })
                    .collect();
                let code = first
                    .and_then(|i| i.get("type")?.as_str().map(str::to_owned))
                    .or(d.error_type);
                (text.join("; "), code, first.and_then(field))
            }
            _ => return None,
        };
        let message = match d.title {
            Some(t) if !message.contains(&t) => format!("{t}: {message}"),
            _ => message,
        };
        Some(ErrorBody {
            code,
            message: Some(message.chars().take(500).collect()),
            param,
            revised_prompt: None,
        })
    }
}

/// How an HTTP status is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    Auth,
    /// 402: out of credit.
    Payment,
    NotFound,
    Transient,
    Permanent,
}

pub fn classify(status: u16) -> StatusClass {
    match status {
        401 | 403 => StatusClass::Auth,
        402 => StatusClass::Payment,
        404 | 410 => StatusClass::NotFound,
        408 | 409 | 429 | 500..=599 => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wrapped_shape() {
        let b = br#"{"error":{"code":"invalid_value","message":"Bad size","param":"size","type":"invalid_request_error"}}"#;
        let e = ErrorBody::parse(b);
        assert_eq!(e.code.as_deref(), Some("invalid_value"));
        assert_eq!(e.message.as_deref(), Some("Bad size"));
        assert_eq!(e.param.as_deref(), Some("size"));
    }

    #[test]
    fn reads_the_flat_azure_shape_with_revised_prompt() {
        let b = br#"{"code":"contentFilter","message":"Blocked by policy","param":null,"type":null,
            "inner_error":{"code":"ResponsibleAIPolicyViolation","revised_prompt":"a calm cat","error_details":{}}}"#;
        let e = ErrorBody::parse(b);
        assert_eq!(e.code.as_deref(), Some("contentFilter"));
        assert_eq!(e.message.as_deref(), Some("Blocked by policy"));
        assert_eq!(e.revised_prompt.as_deref(), Some("a calm cat"));
    }

    #[test]
    fn reads_wrapped_inner_error_and_numeric_codes() {
        let b =
            br#"{"error":{"code":429,"message":"slow down","inner_error":{"revised_prompt":"p"}}}"#;
        let e = ErrorBody::parse(b);
        assert_eq!(e.code.as_deref(), Some("429"));
        assert_eq!(e.revised_prompt.as_deref(), Some("p"));
    }

    #[test]
    fn non_json_bodies_give_their_first_line() {
        let e = ErrorBody::parse(b"\n  <html>Bad Gateway</html>\nmore");
        assert_eq!(e.message.as_deref(), Some("<html>Bad Gateway</html>"));
        assert_eq!(ErrorBody::parse(b""), ErrorBody::default());
    }

    #[test]
    fn reads_fal_and_replicate_shapes() {
        let e = ErrorBody::parse(br#"{"detail":[{"loc":["body","duration"],"msg":"unexpected value","type":"literal_error"}]}"#);
        assert_eq!(e.message.as_deref(), Some("duration: unexpected value"));
        assert_eq!(
            (e.code.as_deref(), e.param.as_deref()),
            (Some("literal_error"), Some("duration"))
        );
        let e =
            ErrorBody::parse(br#"{"detail":"Runner crashed","error_type":"runner_server_error"}"#);
        assert_eq!(
            (e.message.as_deref(), e.code.as_deref()),
            (Some("Runner crashed"), Some("runner_server_error"))
        );
        let e = ErrorBody::parse(br#"{"type":"about:blank","title":"Input validation failed","status":422,"detail":"- duration: must be one of 4, 6, 8"}"#);
        assert_eq!(
            e.message.as_deref(),
            Some("Input validation failed: - duration: must be one of 4, 6, 8")
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(classify(401), StatusClass::Auth);
        assert_eq!(classify(403), StatusClass::Auth);
        assert_eq!(classify(404), StatusClass::NotFound);
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), StatusClass::Transient, "{s}");
        }
        for s in [400, 413, 415, 422] {
            assert_eq!(classify(s), StatusClass::Permanent, "{s}");
        }
    }
}
