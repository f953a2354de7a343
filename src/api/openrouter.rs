//! OpenRouter's video generation API (`https://openrouter.ai/api/v1`): many video models
//! behind one key.
//!
//! Submit `POST /videos` (202) with the model's own fields (`duration`, `resolution`,
//! `aspect_ratio`, and its params: `generate_audio`, `seed`, ...); follow
//! `GET /videos/{id}` (`pending`, `in_progress`, then `completed`, `failed`,
//! `cancelled` or `expired`); download from an `unsigned_urls` entry when the job names
//! one (on a storage host: without the credential), else from `GET /videos/{id}/content`
//! (on the API: with it). There is neither a job list nor a cancel in the spec: a lost
//! submit is never sent again on its own, and an outdated job runs to its end. A 402 is
//! [`ApiError::OutOfCredit`]: the run stops. This module must never retry or pace.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, Result};
use super::job::{Failure, Job, JobRequest, JobStatus, PollHint};
use super::provider::Media;
use super::transport::{Call, Transport, unix_now};
use super::{ContentKind, ContentRef, endpoint_url, parse_json, poll_hint};

#[derive(Debug)]
pub struct OpenRouterClient {
    pub(crate) transport: Transport,
    pub(crate) base: Url,
    /// The unsigned URL of each completed job's video, as last seen.
    media: Mutex<HashMap<String, Url>>,
}

/// `VideoGenerationResponse`.
#[derive(Deserialize)]
struct WireVideo {
    id: String,
    status: String,
    error: Option<Value>,
    #[serde(default)]
    unsigned_urls: Vec<String>,
}

impl OpenRouterClient {
    pub(crate) fn new(transport: Transport, base: Url) -> OpenRouterClient {
        OpenRouterClient {
            transport,
            base,
            media: Mutex::new(HashMap::new()),
        }
    }

    /// `VideoGenerationRequest`: model, prompt, the size and length as the model's fields,
    /// its params.
    pub fn request_body(req: &JobRequest) -> Value {
        let mut body = json!({ "model": req.model });
        if let (Some(obj), Value::Object(input)) = (body.as_object_mut(), super::model_input(req)) {
            for (k, v) in input {
                obj.entry(k).or_insert(v);
            }
        }
        // Frames as `frame_images`, references as `input_references`, data URIs both.
        let mut frames = Vec::new();
        let mut references = Vec::new();
        for image in req.images.iter().filter(|i| i.field.is_none()) {
            let part = json!({"type": "image_url", "image_url": {"url": image.data_uri()}});
            match image.role {
                crate::catalogue::ImageRole::FirstFrame => {
                    frames.push(json!({"type": "image_url", "image_url": part["image_url"], "frame_type": "first_frame"}))
                }
                crate::catalogue::ImageRole::LastFrame => {
                    frames.push(json!({"type": "image_url", "image_url": part["image_url"], "frame_type": "last_frame"}))
                }
                crate::catalogue::ImageRole::Reference => references.push(part),
            }
        }
        if let Some(obj) = body.as_object_mut() {
            if !frames.is_empty() {
                obj.insert("frame_images".into(), Value::Array(frames));
            }
            if !references.is_empty() {
                obj.insert("input_references".into(), Value::Array(references));
            }
        }
        body
    }

    fn read(&self, body: &[u8], what: &str, model: Option<&str>) -> Result<Job> {
        let w = parse_json::<WireVideo>(body, what)?;
        let status = match w.status.as_str() {
            // Past its time to live: nothing will come of it.
            "expired" => JobStatus::Failed,
            other => JobStatus::from_wire(other),
        };
        let failure = match (&w.error, status) {
            (Some(e), _) if !e.is_null() => Some(Failure {
                code: Some(w.status.clone()),
                message: Some(match e {
                    Value::String(s) => s.clone(),
                    other => other
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| other.to_string().chars().take(500).collect()),
                }),
                revised_prompt: None,
            }),
            (_, JobStatus::Failed) => Some(Failure {
                code: Some(w.status.clone()),
                message: (w.status == "expired")
                    .then(|| "the job exceeded its time to live".to_owned()),
                revised_prompt: None,
            }),
            _ => None,
        };
        if let Some(url) = w.unsigned_urls.first() {
            // Relative URLs (the spec's examples) are the API's own.
            let url = self.base.join(url).map_err(|e| ApiError::Protocol {
                message: format!("{what}: an unsigned URL is not a URL ({e})"),
            })?;
            self.media
                .lock()
                .expect("media lock")
                .insert(w.id.clone(), url);
        }
        Ok(Job {
            generations: if status == JobStatus::Succeeded {
                vec![w.id.clone()]
            } else {
                Vec::new()
            },
            status,
            status_raw: w.status,
            progress: None,
            queue_position: None,
            created_at: unix_now(),
            finished_at: status.is_terminal().then(unix_now),
            expires_at: None,
            failure,
            prompt: None,
            model: model.map(str::to_owned),
            size: None,
            seconds: None,
            request: None,
            id: w.id,
        })
    }

    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        super::one_take_per_job(req, "OpenRouter")?;
        let body = Self::request_body(req);
        let call = Call {
            method: Method::POST,
            url: endpoint_url(&self.base, &["videos"], &[]),
            json: Some(&body),
            what: "new video",
            create: true,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let mut job = self.read(&answer.body, "the submitted video", Some(&req.model))?;
        job.prompt = Some(req.prompt.clone());
        job.size = Some(req.size);
        job.seconds = Some(req.seconds);
        job.request = Some(body);
        Ok(job)
    }

    pub async fn get(&self, id: &str, model: &str) -> Result<(Job, PollHint)> {
        let what = format!("video `{id}`");
        let call = Call {
            method: Method::GET,
            url: endpoint_url(&self.base, &["videos", id], &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let job = self.read(&answer.body, &what, Some(model))?;
        Ok((job, poll_hint(&answer.headers)))
    }

    async fn content(&self, content: &ContentRef<'_>, kind: ContentKind) -> Result<Media> {
        if kind != ContentKind::Video {
            return Err(ApiError::Config {
                message: "OpenRouter serves no thumbnails".to_owned(),
            });
        }
        let unsigned = self
            .media
            .lock()
            .expect("media lock")
            .get(content.job_id)
            .cloned();
        Ok(Media::at(unsigned.unwrap_or_else(|| {
            endpoint_url(
                &self.base,
                &["videos", content.job_id, "content"],
                &[("index", "0")],
            )
        })))
    }
}

impl super::provider::Protocol for OpenRouterClient {
    const API: crate::limits::Api = crate::limits::Api::Openrouter;
    const THUMBNAIL_EXTENSION: Option<&'static str> = None;
    const CAN_LIST: bool = false;
    const CAN_CANCEL: bool = false;

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn body(req: &JobRequest) -> Value {
        OpenRouterClient::request_body(req)
    }

    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send {
        OpenRouterClient::create(self, req)
    }

    fn get(&self, id: &str, model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send {
        OpenRouterClient::get(self, id, model)
    }

    fn list_recent(&self, _since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send {
        std::future::ready(Err(ApiError::Config {
            message: "OpenRouter keeps no list of video jobs".to_owned(),
        }))
    }

    fn delete(&self, _id: &str, _model: &str) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(Err(ApiError::Config {
            message: "OpenRouter cannot cancel a video job".to_owned(),
        }))
    }

    fn content_url(
        &self,
        content: &ContentRef<'_>,
        kind: ContentKind,
    ) -> impl Future<Output = Result<Media>> + Send {
        self.content(content, kind)
    }
}
