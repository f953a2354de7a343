//! The provider seam: what the engine may ask of any video service, and nothing more.
//!
//! One implementation per protocol, one file each (`azure.rs`, `openai.rs`), plus the
//! engine tests' in-memory provider. The engine holds an `Arc<dyn Provider>` and never
//! asks which one it is: facts (jobs at once, requests per minute, retention, whether one
//! job renders several takes) come from the catalogue entry of [`Provider::api`], and
//! behaviour from the methods below. A provider that cannot list its jobs says so
//! ([`Provider::can_list`]): the engine then never re-creates a job whose create answer
//! was lost unless the user forces it.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use reqwest::Url;

use super::error::Result;
use super::job::{Job, JobRequest, PollHint};
use super::transport::Transport;
use super::{ContentKind, ContentRef, Downloaded};
use crate::catalogue::{Catalogue, ProviderFacts};
use crate::limits::Api;

/// A boxed future, so that `dyn Provider` is possible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Which protocol this is (the key of its catalogue entry).
    fn api(&self) -> Api;

    /// What the catalogue says of this provider.
    fn facts(&self) -> &'static ProviderFacts {
        Catalogue::builtin().provider(self.api())
    }

    /// Whether one job renders several takes; when false, N takes are N jobs.
    fn variants_per_job(&self) -> bool {
        self.facts().takes_per_job
    }

    /// Whether [`Provider::list_recent`] works, so a lost create can be found.
    fn can_list(&self) -> bool {
        true
    }

    /// Whether [`Provider::delete`] can stop a job (when false, an outdated job runs to
    /// its end and is paid for).
    fn can_cancel(&self) -> bool {
        true
    }

    /// The extension of the thumbnails it serves (`jpg`, `webp`); `None`: it serves none.
    fn thumbnail_extension(&self) -> Option<&'static str>;

    /// Which credential it sends, never its value.
    fn auth_description(&self) -> String;

    /// Requests sent so far (the run summary's count).
    fn requests(&self) -> u64;

    /// The create body `create` sends for `req`, as recorded in the lockfile.
    fn request_body(&self, req: &JobRequest) -> serde_json::Value;

    /// Creates a job. On `CreateOutcomeUnknown`, look for it with `list_recent` (when
    /// `can_list`) before creating again.
    fn create<'a>(&'a self, req: &'a JobRequest) -> BoxFuture<'a, Result<Job>>;

    /// The job `id`, which renders `model` (as sent: fal addresses a request under its
    /// model's app).
    fn get<'a>(&'a self, id: &'a str, model: &'a str) -> BoxFuture<'a, Result<(Job, PollHint)>>;

    /// Jobs created at or after `since_unix` (service clock), newest first.
    fn list_recent(&self, since_unix: i64) -> BoxFuture<'_, Result<Vec<Job>>>;

    /// Cancels or deletes a job; one already gone is not an error.
    fn delete<'a>(&'a self, id: &'a str, model: &'a str) -> BoxFuture<'a, Result<()>>;

    /// One attempt at saving one file of one generation to `final_path`, atomically (the
    /// engine retries: it is the only layer that does).
    fn download_content<'a>(
        &'a self,
        content: &'a ContentRef<'a>,
        kind: ContentKind,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>>;

    /// Downloads `kind` of variant `generation` of `job` to `final_path`.
    fn download_generation<'a>(
        &'a self,
        job: &'a Job,
        generation: usize,
        kind: ContentKind,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(async move {
            let model = job.model.as_deref().unwrap_or_default();
            let content = super::content_of(job, model, generation)?;
            self.download_content(&content, kind, final_path).await
        })
    }

    /// Downloads variant `generation` of `job` (an MP4) to `final_path`.
    fn download_video<'a>(
        &'a self,
        job: &'a Job,
        generation: usize,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        self.download_generation(job, generation, ContentKind::Video, final_path)
    }

    /// Downloads the thumbnail of variant `generation` of `job`.
    fn download_thumbnail<'a>(
        &'a self,
        job: &'a Job,
        generation: usize,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        self.download_generation(job, generation, ContentKind::Thumbnail, final_path)
    }
}

/// What differs between the HTTP providers: the protocol's paths and wire types. Each
/// protocol file implements it; `Provider` comes with it, through the shared transport
/// (pacing, credentials, redirects, retries) and the shared one-attempt download.
pub(crate) trait Protocol: Send + Sync + std::fmt::Debug {
    const API: Api;
    const THUMBNAIL_EXTENSION: Option<&'static str>;
    /// Whether the service lists recent jobs (so a lost create can be found).
    const CAN_LIST: bool = true;
    /// Whether the service can cancel a job.
    const CAN_CANCEL: bool = true;

    fn transport(&self) -> &Transport;
    fn body(req: &JobRequest) -> serde_json::Value;
    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send;
    fn get(&self, id: &str, model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send;
    fn list_recent(&self, since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send;
    fn delete(&self, id: &str, model: &str) -> impl Future<Output = Result<()>> + Send;
    /// Where `kind` of a generation is served: on the API (with the credential) or, from
    /// what the service said, on a media host (without it).
    fn content_url(
        &self,
        content: &ContentRef<'_>,
        kind: ContentKind,
    ) -> impl Future<Output = Result<Media>> + Send;
}

/// Where one file is served, and its length when the service declared one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Media {
    pub url: Url,
    pub declared_bytes: Option<u64>,
}

impl Media {
    pub(crate) fn at(url: Url) -> Media {
        Media {
            url,
            declared_bytes: None,
        }
    }
}

impl<P: Protocol> Provider for P {
    fn api(&self) -> Api {
        P::API
    }

    fn thumbnail_extension(&self) -> Option<&'static str> {
        P::THUMBNAIL_EXTENSION
    }

    fn can_list(&self) -> bool {
        P::CAN_LIST
    }

    fn can_cancel(&self) -> bool {
        P::CAN_CANCEL
    }

    fn auth_description(&self) -> String {
        self.transport().auth.describe()
    }

    fn requests(&self) -> u64 {
        self.transport().pacer.requests()
    }

    fn request_body(&self, req: &JobRequest) -> serde_json::Value {
        P::body(req)
    }

    fn create<'a>(&'a self, req: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(Protocol::create(self, req))
    }

    fn get<'a>(&'a self, id: &'a str, model: &'a str) -> BoxFuture<'a, Result<(Job, PollHint)>> {
        Box::pin(Protocol::get(self, id, model))
    }

    fn list_recent(&self, since_unix: i64) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(Protocol::list_recent(self, since_unix))
    }

    fn delete<'a>(&'a self, id: &'a str, model: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Protocol::delete(self, id, model))
    }

    fn download_content<'a>(
        &'a self,
        content: &'a ContentRef<'a>,
        kind: ContentKind,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(async move {
            let what = format!("{} of job `{}`", kind.as_str(), content.job_id);
            let media = self.content_url(content, kind).await?;
            let transport = self.transport();
            let mut expect = kind.expect();
            if media.url.origin() != transport.api_origin {
                // A URL from the service's answer, on another host (a CDN): https only
                // (plain http on loopback alone), never with the credential (the
                // transport sends it to the API's origin only).
                if media.url.scheme() != "https" && !super::transport::is_loopback(&media.url) {
                    return Err(super::ApiError::Protocol {
                        message: format!(
                            "{what}: the service gave a plain http URL on `{}`; only https is fetched from another host",
                            super::transport::host_of(&media.url)
                        ),
                    });
                }
            }
            if let Some(declared) = media.declared_bytes {
                if declared > expect.max_bytes {
                    return Err(super::ApiError::Protocol {
                        message: format!(
                            "{what}: the service declares {declared} bytes, more than the {} a {} may have; not downloaded",
                            expect.max_bytes,
                            kind.as_str()
                        ),
                    });
                }
                // Read no more than declared (a little slack for a service that rounds).
                expect.max_bytes = declared.saturating_add(64 * 1024).min(expect.max_bytes);
            }
            super::download_once(
                transport,
                media.url,
                &what,
                content.expires_at,
                final_path,
                expect,
            )
            .await
        })
    }
}
