//! The Azure OpenAI video generation *jobs* protocol (model `sora`, preview).
//!
//! Base `{endpoint}/openai/v1`, `api-version=preview` on every call, jobs under
//! `/video/generations/jobs`, content per *generation* (one job, `n_variants` videos).
//! Wire types stay private to this file; callers see [`Job`]. This module must never
//! retry or pace by itself (the transport does) nor guess a size or duration (limits.rs).

use reqwest::{Method, Url};
use serde::Deserialize;
use std::sync::Arc;

use serde_json::json;

use super::error::{ApiError, Result};
use super::job::{Failure, Job, JobRequest, JobStatus, PollHint};
use super::transport::{Call, FilePart, Multipart, Transport};
use super::{endpoint_url, parse_json, poll_hint};
use crate::limits::Size;

/// Every call carries it: the jobs API exists only in the preview version.
const API_VERSION: (&str, &str) = ("api-version", "preview");
/// Page size for `list_recent` (pages are bounded in `list.rs`).
const LIST_PAGE: &str = "50";

#[derive(Clone, Debug)]
pub struct AzureClient {
    pub(crate) transport: Transport,
    pub(crate) base: Url,
}

/// `VideoGenerationJob`.
#[derive(Deserialize)]
struct WireJob {
    id: String,
    status: String,
    created_at: i64,
    finished_at: Option<i64>,
    expires_at: Option<i64>,
    #[serde(default)]
    generations: Vec<WireGeneration>,
    prompt: Option<String>,
    model: Option<String>,
    n_seconds: Option<u32>,
    width: Option<u32>,
    height: Option<u32>,
    failure_reason: Option<String>,
    /// Not in the spec; read when a service adds it.
    progress: Option<f64>,
}

/// `VideoGeneration` (only its id matters here).
#[derive(Deserialize)]
struct WireGeneration {
    id: String,
}

impl WireJob {
    fn into_job(self) -> Job {
        let status = JobStatus::from_wire(&self.status);
        let failure =
            (status == JobStatus::Failed || self.failure_reason.is_some()).then(|| Failure {
                message: self
                    .failure_reason
                    .as_deref()
                    .and_then(failure_text)
                    .map(str::to_owned),
                code: self.failure_reason,
                revised_prompt: None,
            });
        Job {
            id: self.id,
            status,
            status_raw: self.status,
            progress: self.progress.map(|p| p.clamp(0.0, 100.0) as u8),
            queue_position: None,
            created_at: self.created_at,
            finished_at: self.finished_at,
            expires_at: self.expires_at,
            generations: self.generations.into_iter().map(|g| g.id).collect(),
            failure,
            prompt: self.prompt,
            model: self.model,
            size: self.width.zip(self.height).map(|(w, h)| Size::new(w, h)),
            seconds: self.n_seconds,
            request: None,
        }
    }
}

/// The documented `failure_reason` values, in words.
fn failure_text(reason: &str) -> Option<&'static str> {
    match reason {
        "input_moderation" => Some("the prompt was blocked by content moderation"),
        "internal_error" => Some("the service failed while generating the video"),
        _ => None,
    }
}

impl AzureClient {
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut q = vec![API_VERSION];
        q.extend_from_slice(query);
        endpoint_url(&self.base, segments, &q)
    }

    /// `CreateVideoGenerationRequest`, JSON.
    pub fn request_body(req: &JobRequest) -> serde_json::Value {
        super::with_params(
            json!({
                "prompt": req.prompt,
                "width": req.size.width,
                "height": req.size.height,
                "n_seconds": req.seconds,
                "n_variants": req.variants,
                "model": req.model,
            }),
            &req.params,
        )
    }

    /// The multipart variant (`CreateVideoGenerationWithMediaRequestMultiPart`): the same
    /// fields as text parts, the images as `files`, each placed by an `inpaint_items`
    /// entry at its frame.
    pub(crate) fn multipart_body(req: &JobRequest) -> Multipart {
        let body = Self::request_body(req);
        let mut text: Vec<(String, String)> = body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), super::text_value(v)))
            .collect();
        let mut items = Vec::new();
        let mut files = Vec::new();
        for (i, image) in req.images.iter().enumerate() {
            let file_name = image.file_name(i);
            items.push(json!({
                "frame_index": image.frame_index.unwrap_or(0),
                "type": "image",
                "file_name": file_name,
            }));
            files.push(FilePart {
                name: "files".into(),
                file_name,
                mime: image.format.mime(),
                bytes: Arc::clone(&image.bytes),
            });
        }
        text.push((
            "inpaint_items".into(),
            serde_json::Value::Array(items).to_string(),
        ));
        Multipart { text, files }
    }

    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        let body = Self::request_body(req);
        let multipart = (!req.images.is_empty()).then(|| Self::multipart_body(req));
        let call = Call {
            method: Method::POST,
            url: self.url(&["video", "generations", "jobs"], &[]),
            json: multipart.is_none().then_some(&body),
            what: "new job",
            create: true,
            multipart: multipart.as_ref(),
        };
        let answer = self.transport.fetch(&call).await?;
        let mut job = parse_json::<WireJob>(&answer.body, "the created job")?.into_job();
        job.request = Some(body);
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> Result<(Job, PollHint)> {
        let what = format!("job `{id}`");
        let call = Call {
            method: Method::GET,
            url: self.url(&["video", "generations", "jobs", id], &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let job = parse_json::<WireJob>(&answer.body, &what)?.into_job();
        Ok((job, poll_hint(&answer.headers)))
    }

    /// Jobs created at or after `since_unix`, newest first, following `after` cursors.
    pub async fn list_recent(&self, since_unix: i64) -> Result<Vec<Job>> {
        let url = |after: Option<&str>| {
            let mut query = vec![("limit", LIST_PAGE)];
            if let Some(a) = after {
                query.push(("after", a));
            }
            self.url(&["video", "generations", "jobs"], &query)
        };
        super::list::since(
            &self.transport,
            "the job list",
            since_unix,
            url,
            WireJob::into_job,
        )
        .await
    }

    /// Deletes a job (204). A job already gone is not an error: the goal is reached.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let what = format!("job `{id}`");
        let call = Call {
            method: Method::DELETE,
            url: self.url(&["video", "generations", "jobs", id], &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        match self.transport.fetch(&call).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The URL of generation `index`'s video or thumbnail (`kind`: `video`, `thumbnail`).
    pub(crate) fn content_url(&self, content: &super::ContentRef<'_>, kind: &str) -> Url {
        self.url(
            &[
                "video",
                "generations",
                content.generation_id,
                "content",
                kind,
            ],
            &[],
        )
    }
}

impl super::provider::Protocol for AzureClient {
    const API: crate::limits::Api = crate::limits::Api::AzureJobs;
    const THUMBNAIL_EXTENSION: Option<&'static str> = Some("jpg");

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn body(req: &JobRequest) -> serde_json::Value {
        AzureClient::request_body(req)
    }

    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send {
        AzureClient::create(self, req)
    }

    fn get(&self, id: &str, _model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send {
        AzureClient::get(self, id)
    }

    fn list_recent(&self, since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send {
        AzureClient::list_recent(self, since_unix)
    }

    fn delete(&self, id: &str, _model: &str) -> impl Future<Output = Result<()>> + Send {
        AzureClient::delete(self, id)
    }

    fn content_url(
        &self,
        content: &super::ContentRef<'_>,
        kind: super::ContentKind,
    ) -> impl Future<Output = Result<super::provider::Media>> + Send {
        std::future::ready(Ok(super::provider::Media::at(AzureClient::content_url(
            self,
            content,
            kind.as_str(),
        ))))
    }
}
