//! The client layer: talks to the video services so the scheduler does not have to.
//!
//! [`Client`] speaks either protocol ([`Api::AzureJobs`] or [`Api::OpenaiVideos`]) behind
//! one set of methods and one [`Job`] view. Every request goes through the run's one
//! [`Pacer`], the one retry policy (`retry.rs`) and the error classification (`error.rs`).
//! This layer must never decide *what* to render, never create a job twice on its own
//! (a create whose outcome is unknown is reported, not retried), and never let a credential
//! reach a log, an error or a panic message.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

pub use crate::download::Downloaded;
pub use crate::limits::Api;
use crate::pacer::Pacer;

pub mod auth;
pub mod azure;
pub mod error;
pub mod fal;
pub mod job;
mod list;
#[cfg(test)]
pub(crate) mod memory;
pub mod openai;
pub mod openrouter;
pub mod provider;
pub mod replicate;
pub mod retry;
pub(crate) mod transport;
pub mod uncredentialed;

pub use auth::{Auth, AzureCli, KeyHeader, Secret, TokenSource};
pub use error::{ApiError, Result};
pub use job::{Failure, Job, JobRequest, JobStatus, PollHint, RequestImage};
pub use provider::{BoxFuture, Provider};
pub use retry::RetryPolicy;

use transport::{Call, Transport};

/// One generation's files, as the content endpoints address them: Azure by generation
/// id, the videos API by the video's (job's) own id.
#[derive(Clone, Copy, Debug)]
pub struct ContentRef<'a> {
    pub job_id: &'a str,
    /// The model the job renders, as sent (fal addresses a request under its model).
    pub model: &'a str,
    pub generation_id: &'a str,
    /// Unix seconds after which the service no longer has the files.
    pub expires_at: Option<i64>,
}

/// Which file of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    Video,
    Thumbnail,
}

impl ContentKind {
    /// What a file of this kind must be, and its size cap.
    pub fn expect(self) -> crate::download::Expect {
        let kind = match self {
            ContentKind::Video => crate::download::FileKind::Video,
            ContentKind::Thumbnail => crate::download::FileKind::Image,
        };
        crate::download::Expect {
            kind,
            max_bytes: kind.default_max_bytes(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Video => "video",
            ContentKind::Thumbnail => "thumbnail",
        }
    }
}

/// Generation `index` of `job`, or an error naming how many it has.
pub(crate) fn content_of<'a>(job: &'a Job, model: &'a str, index: usize) -> Result<ContentRef<'a>> {
    let generation_id = job.generations.get(index).ok_or_else(|| ApiError::Config {
        message: format!(
            "job `{}` has {} generation(s), not a generation {index}",
            job.id,
            job.generations.len()
        ),
    })?;
    Ok(ContentRef {
        job_id: &job.id,
        model,
        generation_id,
        expires_at: job.expires_at,
    })
}

/// Where to send requests and with which credential.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The API base, to which paths are appended: `https://RESOURCE.openai.azure.com/openai/v1`,
    /// `https://api.openai.com/v1`, `http://127.0.0.1:PORT/v1`.
    pub base_url: Url,
    pub kind: Api,
    pub auth: Auth,
}

impl Endpoint {
    /// An API base URL as is (OpenAI, proxies, or an Azure base that already ends in `/openai/v1`).
    pub fn new(kind: Api, base_url: &str, auth: Auth) -> Result<Endpoint> {
        let base_url = Url::parse(base_url.trim()).map_err(|e| ApiError::Config {
            message: format!("`{}` is not a usable base URL: {e}", base_url.trim()),
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(ApiError::Config {
                message: format!("`{base_url}` is not an http(s) URL"),
            });
        }
        Ok(Endpoint {
            base_url,
            kind,
            auth,
        })
    }

    /// An Azure resource endpoint (`https://RESOURCE.openai.azure.com`): both protocols
    /// live under `{endpoint}/openai/v1`.
    pub fn azure(kind: Api, resource_endpoint: &str, auth: Auth) -> Result<Endpoint> {
        let trimmed = resource_endpoint.trim().trim_end_matches('/');
        let base = if trimmed.ends_with("/openai/v1") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/openai/v1")
        };
        Endpoint::new(kind, &base, auth)
    }
}

/// Timeouts and persistence, the same for every request of a client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer (not a cap on a whole download).
    pub read_timeout: Duration,
    /// Longest a whole JSON answer may take, however it trickles in.
    pub answer_deadline: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            answer_deadline: Duration::from_secs(120),
        }
    }
}

/// A connection to one provider. Cheap to clone; clones share the connection pool and
/// the pacer.
pub type Client = Arc<dyn Provider>;

/// The one place that maps an API to its provider: connects to `endpoint`.
pub fn connect(endpoint: Endpoint, pacer: Arc<Pacer>, options: &ClientOptions) -> Result<Client> {
    let http = http_client(options)?;
    let transport = Transport::new(
        http,
        &endpoint.base_url,
        pacer,
        endpoint.auth,
        options.retry,
        options.answer_deadline,
    );
    Ok(match endpoint.kind {
        Api::AzureJobs => Arc::new(azure::AzureClient {
            transport,
            base: endpoint.base_url,
        }),
        Api::OpenaiVideos => Arc::new(openai::OpenAiClient {
            transport,
            base: endpoint.base_url,
        }),
        Api::Fal => Arc::new(fal::FalClient::new(transport, endpoint.base_url)),
        Api::Openrouter => Arc::new(openrouter::OpenRouterClient::new(
            transport,
            endpoint.base_url,
        )),
        Api::Replicate => Arc::new(replicate::ReplicateClient::new(
            transport,
            endpoint.base_url,
            crate::catalogue::Catalogue::builtin()
                .provider(Api::Replicate)
                .retention_seconds,
        )),
    })
}

/// One attempt at downloading `url` to `final_path` (status failures and a body cut
/// short are errors for the caller to retry: the engine is the one layer of download
/// retries). A 404 after the content's expiry is [`ApiError::Expired`].
pub(crate) async fn download_once(
    transport: &Transport,
    url: Url,
    what: &str,
    expires_at: Option<i64>,
    final_path: &Path,
    expect: crate::download::Expect,
) -> Result<Downloaded> {
    let call = Call {
        method: Method::GET,
        url,
        json: None,
        what,
        create: false,
        multipart: None,
    };
    let resp = match transport.open_once(&call).await {
        Err(ApiError::NotFound { .. })
            if expires_at.is_some_and(|e| e <= transport::unix_now()) =>
        {
            return Err(ApiError::Expired {
                what: what.to_owned(),
            });
        }
        other => other?,
    };
    crate::download::stream_to_file(resp, final_path, expect).await
}

/// Installs rustls' ring provider (once per process; "already installed" is fine) and
/// builds the HTTP client: reqwest is built without a provider of its own.
fn http_client(options: &ClientOptions) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("shotlist/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        // Redirects are followed by the transport, which knows where credentials may go.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ApiError::Config {
            message: format!("could not set up HTTPS: {}", transport::describe(&e)),
        })
}

/// `base` + path segments (each percent-encoded: ids are server data) + query pairs.
pub(crate) fn endpoint_url(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// A create body with the model's own inputs added as top-level fields (the Sora
/// protocols take extra inputs there; a field the protocol already sets is never replaced).
pub(crate) fn with_params(
    mut body: serde_json::Value,
    params: &crate::shot::Params,
) -> serde_json::Value {
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in params {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    body
}

/// Refuses a request for several takes in one job, where `service` (`fal`, `the videos
/// API`) makes one video per job: the engine sends N jobs for N takes.
pub(crate) fn one_take_per_job(req: &JobRequest, service: &str) -> Result<()> {
    if req.variants == 1 {
        return Ok(());
    }
    Err(ApiError::Config {
        message: format!(
            "{service} makes one video per job; create {} jobs instead of one with {} takes",
            req.variants, req.variants
        ),
    })
}

/// The input of a provider that takes each model's own fields (fal, Replicate,
/// OpenRouter): the prompt, the size and length as the model's fields, then its params
/// (a field already set is never replaced by a param).
pub(crate) fn model_input(req: &JobRequest) -> serde_json::Value {
    let mut input = serde_json::Map::new();
    input.insert(
        "prompt".into(),
        serde_json::Value::from(req.prompt.as_str()),
    );
    for (k, v) in &req.fields {
        input.insert(k.clone(), v.clone());
    }
    // Images in the model's own fields, as data URIs (references: a list).
    for image in &req.images {
        let Some(field) = &image.field else { continue };
        let uri = serde_json::Value::from(image.data_uri());
        if image.role == crate::catalogue::ImageRole::Reference {
            match input
                .entry(field.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                serde_json::Value::Array(list) => list.push(uri),
                other => *other = serde_json::Value::Array(vec![uri]),
            }
        } else {
            input.insert(field.clone(), uri);
        }
    }
    with_params(serde_json::Value::Object(input), &req.params)
}

/// A param's value as a multipart text part: strings as they are, others as JSON.
pub(crate) fn text_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Deserializes an answer; a mismatch names the thing and serde's reason, not the body.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::Protocol {
        message: format!("{what}: {e}"),
    })
}

/// The server's polling hint: `openai-poll-after-ms`, else the usual retry headers.
pub(crate) fn poll_hint(headers: &HeaderMap) -> PollHint {
    let ms = headers
        .get("openai-poll-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    PollHint {
        after: ms.or_else(|| retry::server_hint(headers, SystemTime::now())),
    }
}

#[cfg(test)]
mod tests;
