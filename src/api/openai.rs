//! The OpenAI-style videos protocol (`/v1/videos`, Sora 2 on OpenAI, Azure and proxies).
//!
//! One job is one video: N variants are N creates (the scheduler's job). `seconds` and
//! `size` are strings on the wire. Wire types stay private to this file; callers see
//! [`Job`]. This module must never retry or pace by itself (the transport does).

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, Result};
use super::job::{Failure, Job, JobRequest, JobStatus, PollHint};
use super::transport::{Call, FilePart, Multipart, Transport};
use super::{endpoint_url, parse_json, poll_hint};
use crate::limits::Size;

const LIST_PAGE: &str = "100";
/// Bounded so a service ignoring `after` cannot loop us forever.

#[derive(Clone, Debug)]
pub struct OpenAiClient {
    pub(crate) transport: Transport,
    pub(crate) base: Url,
}

/// `VideoResource`. Fields the spec marks required are optional here: proxies omit some.
#[derive(Deserialize)]
struct WireVideo {
    id: String,
    status: String,
    progress: Option<f64>,
    created_at: i64,
    completed_at: Option<i64>,
    expires_at: Option<i64>,
    prompt: Option<String>,
    model: Option<String>,
    size: Option<String>,
    /// A string per the spec; some compatible services send a number.
    seconds: Option<serde_json::Value>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<String>,
    message: Option<String>,
}

impl WireVideo {
    fn into_job(self) -> Job {
        let status = JobStatus::from_wire(&self.status);
        let seconds = match &self.seconds {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        let failure = self.error.map(|e| Failure {
            code: e.code,
            message: e.message,
            revised_prompt: None,
        });
        let failure = failure.or_else(|| {
            (status == JobStatus::Failed).then_some(Failure {
                code: None,
                message: None,
                revised_prompt: None,
            })
        });
        Job {
            generations: if status == JobStatus::Succeeded {
                vec![self.id.clone()]
            } else {
                Vec::new()
            },
            id: self.id,
            status,
            status_raw: self.status,
            progress: self.progress.map(|p| p.clamp(0.0, 100.0) as u8),
            queue_position: None,
            created_at: self.created_at,
            finished_at: self.completed_at,
            expires_at: self.expires_at,
            failure,
            prompt: self.prompt,
            model: self.model,
            size: self.size.as_deref().and_then(Size::parse),
            seconds,
            request: None,
        }
    }
}

impl OpenAiClient {
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        endpoint_url(&self.base, segments, query)
    }

    /// `CreateVideoJsonBody`.
    pub fn request_body(req: &JobRequest) -> serde_json::Value {
        super::with_params(
            json!({
                "prompt": req.prompt,
                "model": req.model,
                "size": req.size.to_string(),
                "seconds": req.seconds.to_string(),
            }),
            &req.params,
        )
    }

    /// The multipart create: the same fields as text parts, the first frame as the
    /// `input_reference` file (the only image the protocol takes).
    pub(crate) fn multipart_body(req: &JobRequest) -> Result<Multipart> {
        let mut files = Vec::new();
        for image in &req.images {
            if image.role != crate::catalogue::ImageRole::FirstFrame || !files.is_empty() {
                return Err(ApiError::Config {
                    message: "the videos API takes one image, the first frame (`input_reference`)"
                        .into(),
                });
            }
            files.push(FilePart {
                name: "input_reference".into(),
                file_name: image.file_name(0),
                mime: image.format.mime(),
                bytes: std::sync::Arc::clone(&image.bytes),
            });
        }
        let text = Self::request_body(req)
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), super::text_value(v)))
            .collect();
        Ok(Multipart { text, files })
    }

    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        super::one_take_per_job(req, "the videos API")?;
        let body = Self::request_body(req);
        let multipart = (!req.images.is_empty())
            .then(|| Self::multipart_body(req))
            .transpose()?;
        let call = Call {
            method: Method::POST,
            url: self.url(&["videos"], &[]),
            json: multipart.is_none().then_some(&body),
            what: "new video",
            create: true,
            multipart: multipart.as_ref(),
        };
        let answer = self.transport.fetch(&call).await?;
        let mut job = parse_json::<WireVideo>(&answer.body, "the created video")?.into_job();
        job.request = Some(body);
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> Result<(Job, PollHint)> {
        let what = format!("video `{id}`");
        let call = Call {
            method: Method::GET,
            url: self.url(&["videos", id], &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let job = parse_json::<WireVideo>(&answer.body, &what)?.into_job();
        Ok((job, poll_hint(&answer.headers)))
    }

    /// Videos created at or after `since_unix`, newest first.
    pub async fn list_recent(&self, since_unix: i64) -> Result<Vec<Job>> {
        let url = |after: Option<&str>| {
            let mut query = vec![("limit", LIST_PAGE), ("order", "desc")];
            if let Some(a) = after {
                query.push(("after", a));
            }
            self.url(&["videos"], &query)
        };
        super::list::since(
            &self.transport,
            "the video list",
            since_unix,
            url,
            WireVideo::into_job,
        )
        .await
    }

    /// Deletes a video. One already gone is not an error: the goal is reached.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let what = format!("video `{id}`");
        let call = Call {
            method: Method::DELETE,
            url: self.url(&["videos", id], &[]),
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

    /// `variant`: `video` or `thumbnail`. One video per job: `index` must be 0.
    /// A video is its own (only) generation: content is addressed by the video id.
    pub(crate) fn content_url(&self, content: &super::ContentRef<'_>, variant: &str) -> Url {
        self.url(
            &["videos", content.job_id, "content"],
            &[("variant", variant)],
        )
    }
}

impl super::provider::Protocol for OpenAiClient {
    const API: crate::limits::Api = crate::limits::Api::OpenaiVideos;
    const THUMBNAIL_EXTENSION: Option<&'static str> = Some("webp");

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn body(req: &JobRequest) -> serde_json::Value {
        OpenAiClient::request_body(req)
    }

    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send {
        OpenAiClient::create(self, req)
    }

    fn get(&self, id: &str, _model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send {
        OpenAiClient::get(self, id)
    }

    fn list_recent(&self, since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send {
        OpenAiClient::list_recent(self, since_unix)
    }

    fn delete(&self, id: &str, _model: &str) -> impl Future<Output = Result<()>> + Send {
        OpenAiClient::delete(self, id)
    }

    fn content_url(
        &self,
        content: &super::ContentRef<'_>,
        kind: super::ContentKind,
    ) -> impl Future<Output = Result<super::provider::Media>> + Send {
        std::future::ready(Ok(super::provider::Media::at(OpenAiClient::content_url(
            self,
            content,
            kind.as_str(),
        ))))
    }
}
