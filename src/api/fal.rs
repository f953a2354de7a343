//! fal's queue API (`https://queue.fal.run`): one protocol for every model fal hosts.
//!
//! Submit `POST /{model id}` with the model's own input (the prompt, the size and length
//! as the model's fields, its params); follow `GET /{owner}/{app}/requests/{id}/status`
//! (202 while `IN_QUEUE` / `IN_PROGRESS`, 200 once `COMPLETED`); read the result at
//! `GET /{owner}/{app}/requests/{id}`; cancel with `PUT .../cancel`. Status, result and
//! cancel are addressed under the model's *app* (its first two path segments) and
//! rebuilt from the base, as fal's JS client does, so a request an earlier run recorded
//! is followed the same way as one just submitted.
//!
//! There is no failed state: a failed request is `COMPLETED` with an `error`, or its
//! result is the model's error. There is no request list either: a submit whose answer
//! was lost cannot be found ([`Protocol::CAN_LIST`] is false; the engine never submits
//! it again on its own). Videos are on fal's CDN: the result names the URL, which is
//! fetched without the credential. This module must never retry or pace by itself.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, Result};
use super::job::{Failure, Job, JobRequest, JobStatus, PollHint};
use super::provider::Media;
use super::transport::{Call, Transport, unix_now};
use super::{ContentKind, ContentRef, endpoint_url, parse_json, poll_hint};

#[derive(Debug)]
pub struct FalClient {
    pub(crate) transport: Transport,
    pub(crate) base: Url,
    /// Each completed request's video, as its result named it: the download right after
    /// the poll that saw it complete needs no second request.
    media: Mutex<HashMap<String, Media>>,
}

/// The submit answer.
#[derive(Deserialize)]
struct WireSubmit {
    request_id: String,
    status: Option<String>,
    queue_position: Option<u32>,
}

/// A status answer.
#[derive(Deserialize)]
struct WireStatus {
    status: String,
    queue_position: Option<u32>,
    /// Set on a `COMPLETED` request that failed.
    error: Option<Value>,
    error_type: Option<String>,
}

/// A video model's result: `{"video": File, ...}`.
#[derive(Deserialize)]
struct WireResult {
    video: Option<WireFile>,
}

#[derive(Deserialize)]
struct WireFile {
    url: String,
    file_size: Option<u64>,
}

/// `owner/app` of a model id (`fal-ai/veo3.1/image-to-video` → `fal-ai/veo3.1`); fal's
/// namespaces (`workflows/`, `comfy/`) keep a third segment.
fn app_of(model: &str) -> Vec<&str> {
    let parts: Vec<&str> = model.split('/').filter(|s| !s.is_empty()).collect();
    let keep = if matches!(parts.first(), Some(&("workflows" | "comfy"))) {
        3
    } else {
        2
    };
    parts.into_iter().take(keep).collect()
}

/// The service's words for a failure: a string, or whatever JSON it sent, shortened.
fn failure_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string().chars().take(500).collect(),
    }
}

impl FalClient {
    pub(crate) fn new(transport: Transport, base: Url) -> FalClient {
        FalClient {
            transport,
            base,
            media: Mutex::new(HashMap::new()),
        }
    }

    fn request_url(&self, model: &str, id: &str, tail: &[&str]) -> Url {
        let mut segments = app_of(model);
        segments.extend(["requests", id]);
        segments.extend(tail);
        endpoint_url(&self.base, &segments, &[])
    }

    /// The model's input: prompt, the size and length as its fields, its params.
    pub fn request_body(req: &JobRequest) -> Value {
        super::model_input(req)
    }

    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        super::one_take_per_job(req, "fal")?;
        let body = Self::request_body(req);
        let segments: Vec<&str> = req.model.split('/').filter(|s| !s.is_empty()).collect();
        let call = Call {
            method: Method::POST,
            url: endpoint_url(&self.base, &segments, &[]),
            json: Some(&body),
            what: "new request",
            create: true,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let submit = parse_json::<WireSubmit>(&answer.body, "the submitted request")?;
        let status_raw = submit.status.unwrap_or_else(|| "IN_QUEUE".to_owned());
        Ok(Job {
            status: JobStatus::from_wire(&status_raw),
            status_raw,
            progress: None,
            queue_position: submit.queue_position,
            created_at: unix_now(),
            finished_at: None,
            expires_at: None,
            generations: Vec::new(),
            failure: None,
            prompt: Some(req.prompt.clone()),
            model: Some(req.model.clone()),
            size: Some(req.size),
            seconds: Some(req.seconds),
            request: Some(body),
            id: submit.request_id,
        })
    }

    pub async fn get(&self, id: &str, model: &str) -> Result<(Job, PollHint)> {
        let what = format!("request `{id}`");
        let call = Call {
            method: Method::GET,
            url: self.request_url(model, id, &["status"]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let status = parse_json::<WireStatus>(&answer.body, &what)?;
        let hint = poll_hint(&answer.headers);
        let mut job = Job {
            id: id.to_owned(),
            status: match status.status.as_str() {
                "IN_QUEUE" => JobStatus::Queued,
                "COMPLETED" => JobStatus::Succeeded,
                _ => JobStatus::Running,
            },
            status_raw: status.status.clone(),
            progress: None,
            queue_position: status.queue_position,
            created_at: 0,
            finished_at: None,
            expires_at: None,
            generations: Vec::new(),
            failure: None,
            prompt: None,
            model: Some(model.to_owned()),
            size: None,
            seconds: None,
            request: None,
        };
        if job.status != JobStatus::Succeeded {
            return Ok((job, hint));
        }
        job.finished_at = Some(unix_now());
        if let Some(error) = status.error.filter(|e| !e.is_null()) {
            job.status = JobStatus::Failed;
            job.failure = Some(Failure {
                code: status.error_type,
                message: Some(failure_text(&error)),
                revised_prompt: None,
            });
            return Ok((job, hint));
        }
        match self.result(id, model).await? {
            Ok(media) => {
                self.media
                    .lock()
                    .expect("media lock")
                    .insert(id.to_owned(), media);
                job.generations = vec![id.to_owned()];
            }
            Err(failure) => {
                job.status = JobStatus::Failed;
                job.failure = Some(failure);
            }
        }
        Ok((job, hint))
    }

    /// The result of a completed request: its video, or the model's failure (a result
    /// that is a 4xx error; a failed request's status usually says so first).
    async fn result(&self, id: &str, model: &str) -> Result<std::result::Result<Media, Failure>> {
        let what = format!("result of request `{id}`");
        let call = Call {
            method: Method::GET,
            url: self.request_url(model, id, &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = match self.transport.fetch(&call).await {
            Ok(a) => a,
            Err(ApiError::Permanent { code, message, .. }) => {
                return Ok(Err(Failure {
                    code,
                    message: Some(message),
                    revised_prompt: None,
                }));
            }
            // A 5xx that outlasted the retries may be fal's outage, not the model's
            // failure: the request stays as it is (the next poll, or run, asks again)
            // rather than be taken for failed and paid for again.
            Err(e) => return Err(e),
        };
        let result = parse_json::<WireResult>(&answer.body, &what)?;
        let Some(video) = result.video else {
            return Ok(Err(Failure {
                code: Some("no_video".to_owned()),
                message: Some("the request completed, but its result holds no video".to_owned()),
                revised_prompt: None,
            }));
        };
        let url = Url::parse(&video.url).map_err(|e| ApiError::Protocol {
            message: format!("{what}: the video URL is not a URL ({e})"),
        })?;
        Ok(Ok(Media {
            url,
            declared_bytes: video.file_size,
        }))
    }

    /// Cancels a request; one already completed or unknown is not an error.
    pub async fn delete(&self, id: &str, model: &str) -> Result<()> {
        let what = format!("request `{id}`");
        let call = Call {
            method: Method::PUT,
            url: self.request_url(model, id, &["cancel"]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        match self.transport.fetch(&call).await {
            // `ALREADY_COMPLETED` (400) and `NOT_FOUND`: nothing runs any more.
            Ok(_) | Err(ApiError::NotFound { .. } | ApiError::Permanent { status: 400, .. }) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn content(&self, content: &ContentRef<'_>, kind: ContentKind) -> Result<Media> {
        if kind != ContentKind::Video {
            return Err(ApiError::Config {
                message: "fal serves no thumbnails".to_owned(),
            });
        }
        if let Some(m) = self
            .media
            .lock()
            .expect("media lock")
            .get(content.job_id)
            .cloned()
        {
            return Ok(m);
        }
        match self.result(content.job_id, content.model).await? {
            Ok(media) => Ok(media),
            Err(f) => Err(ApiError::Expired {
                what: format!(
                    "the video of request `{}` ({})",
                    content.job_id,
                    f.message.unwrap_or_default()
                ),
            }),
        }
    }
}

impl super::provider::Protocol for FalClient {
    const API: crate::limits::Api = crate::limits::Api::Fal;
    const THUMBNAIL_EXTENSION: Option<&'static str> = None;
    const CAN_LIST: bool = false;

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn body(req: &JobRequest) -> Value {
        FalClient::request_body(req)
    }

    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send {
        FalClient::create(self, req)
    }

    fn get(&self, id: &str, model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send {
        FalClient::get(self, id, model)
    }

    fn list_recent(&self, _since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send {
        std::future::ready(Err(ApiError::Config {
            message: "fal keeps no list of requests".to_owned(),
        }))
    }

    fn delete(&self, id: &str, model: &str) -> impl Future<Output = Result<()>> + Send {
        FalClient::delete(self, id, model)
    }

    fn content_url(
        &self,
        content: &ContentRef<'_>,
        kind: ContentKind,
    ) -> impl Future<Output = Result<Media>> + Send {
        self.content(content, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_addressed_under_the_app() {
        assert_eq!(app_of("fal-ai/veo3.1/image-to-video"), ["fal-ai", "veo3.1"]);
        assert_eq!(
            app_of("fal-ai/kling-video/v3/pro/text-to-video"),
            ["fal-ai", "kling-video"]
        );
        assert_eq!(app_of("workflows/me/flow/x"), ["workflows", "me", "flow"]);
    }
}
