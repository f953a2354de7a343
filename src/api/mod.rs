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
pub mod job;
mod list;
pub mod openai;
pub mod retry;
pub(crate) mod transport;

pub use auth::{Auth, AzureCli, KeyHeader, Secret, TokenSource};
pub use error::{ApiError, Result};
pub use job::{Failure, Job, JobRequest, JobStatus, PollHint};
pub use retry::RetryPolicy;

use transport::{Call, Transport};

/// One generation's files, as the content endpoints address them: Azure by generation
/// id, the videos API by the video's (job's) own id.
#[derive(Clone, Copy, Debug)]
pub struct ContentRef<'a> {
    pub job_id: &'a str,
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
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Video => "video",
            ContentKind::Thumbnail => "thumbnail",
        }
    }
}

/// Generation `index` of `job`, or an error naming how many it has.
fn content_of(job: &Job, index: usize) -> Result<ContentRef<'_>> {
    let generation_id = job.generations.get(index).ok_or_else(|| ApiError::Config {
        message: format!(
            "job `{}` has {} generation(s), not a generation {index}",
            job.id,
            job.generations.len()
        ),
    })?;
    Ok(ContentRef {
        job_id: &job.id,
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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A client of one endpoint. Cheap to clone; clones share the connection pool and pacer.
#[derive(Clone, Debug)]
pub enum Client {
    Azure(azure::AzureClient),
    OpenAi(openai::OpenAiClient),
}

impl Client {
    pub fn new(endpoint: Endpoint, pacer: Arc<Pacer>, options: &ClientOptions) -> Result<Client> {
        let http = http_client(options)?;
        let transport = Transport::new(
            http,
            &endpoint.base_url,
            pacer,
            endpoint.auth,
            options.retry,
        );
        Ok(match endpoint.kind {
            Api::AzureJobs => Client::Azure(azure::AzureClient {
                transport,
                base: endpoint.base_url,
            }),
            Api::OpenaiVideos => Client::OpenAi(openai::OpenAiClient {
                transport,
                base: endpoint.base_url,
            }),
        })
    }

    pub fn api(&self) -> Api {
        match self {
            Client::Azure(_) => Api::AzureJobs,
            Client::OpenAi(_) => Api::OpenaiVideos,
        }
    }

    /// Whether one job can make several variants; when false, N variants are N creates
    /// of `variants: 1`.
    pub fn variants_per_job(&self) -> bool {
        self.api().limits().variants_per_job
    }

    /// Which credential this client sends, without its value.
    pub fn auth_description(&self) -> String {
        self.transport().auth.describe()
    }

    /// The run's pacer (its `requests()` count is the summary's request total).
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.transport().pacer
    }

    /// The create body `create` would send, for the lockfile or for matching.
    pub fn request_body(&self, req: &JobRequest) -> serde_json::Value {
        match self {
            Client::Azure(_) => azure::AzureClient::request_body(req),
            Client::OpenAi(_) => openai::OpenAiClient::request_body(req),
        }
    }

    /// Creates a job. On [`ApiError::CreateOutcomeUnknown`] look for it with
    /// [`Client::list_recent`] before creating again.
    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        match self {
            Client::Azure(c) => c.create(req).await,
            Client::OpenAi(c) => c.create(req).await,
        }
    }

    pub async fn get(&self, id: &str) -> Result<(Job, PollHint)> {
        match self {
            Client::Azure(c) => c.get(id).await,
            Client::OpenAi(c) => c.get(id).await,
        }
    }

    /// Jobs created at or after `since_unix` (service clock), newest first.
    pub async fn list_recent(&self, since_unix: i64) -> Result<Vec<Job>> {
        match self {
            Client::Azure(c) => c.list_recent(since_unix).await,
            Client::OpenAi(c) => c.list_recent(since_unix).await,
        }
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        match self {
            Client::Azure(c) => c.delete(id).await,
            Client::OpenAi(c) => c.delete(id).await,
        }
    }

    /// Downloads variant `generation` of `job` (MP4) to `final_path`, atomically. The
    /// temporary file goes beside `final_path`, so the last step is a rename.
    pub async fn download_video(
        &self,
        job: &Job,
        generation: usize,
        final_path: &Path,
    ) -> Result<Downloaded> {
        let content = content_of(job, generation)?;
        self.download_content(&content, ContentKind::Video, final_path)
            .await
    }

    /// Downloads the thumbnail of variant `generation` (JPEG on Azure, WebP on OpenAI).
    pub async fn download_thumbnail(
        &self,
        job: &Job,
        generation: usize,
        final_path: &Path,
    ) -> Result<Downloaded> {
        let content = content_of(job, generation)?;
        self.download_content(&content, ContentKind::Thumbnail, final_path)
            .await
    }

    /// Downloads one file of one generation (for callers holding ids, not a [`Job`]).
    pub async fn download_content(
        &self,
        content: &ContentRef<'_>,
        kind: ContentKind,
        final_path: &Path,
    ) -> Result<Downloaded> {
        let url = match self {
            Client::Azure(c) => c.content_url(content, kind.as_str()),
            Client::OpenAi(c) => c.content_url(content, kind.as_str()),
        };
        let what = format!("{} of job `{}`", kind.as_str(), content.job_id);
        self.download(url, &what, content.expires_at, final_path)
            .await
    }

    fn transport(&self) -> &Transport {
        match self {
            Client::Azure(c) => &c.transport,
            Client::OpenAi(c) => &c.transport,
        }
    }

    /// A download is retried on its own when the body fails half-way: re-creating the job
    /// would pay for the generation again. (Status failures were retried by the transport.)
    async fn download(
        &self,
        url: Url,
        what: &str,
        expires_at: Option<i64>,
        final_path: &Path,
    ) -> Result<Downloaded> {
        let transport = self.transport();
        let call = Call {
            method: Method::GET,
            url,
            json: None,
            what,
            create: false,
        };
        let mut attempt = 0;
        loop {
            let resp = match transport.open(&call).await {
                Err(ApiError::NotFound { .. })
                    if expires_at.is_some_and(|e| e <= transport::unix_now()) =>
                {
                    return Err(ApiError::Expired {
                        what: what.to_owned(),
                    });
                }
                other => other?,
            };
            match crate::download::stream_to_file(resp, final_path).await {
                Err(ApiError::Transient {
                    status,
                    message,
                    retry_after,
                    ..
                }) => {
                    if !transport.retry.allows_another(attempt) {
                        return Err(ApiError::Transient {
                            status,
                            message,
                            retry_after,
                            attempts: attempt + 1,
                        });
                    }
                    tokio::time::sleep(transport.backoff(attempt, None)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
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
