//! Replicate's predictions API (`https://api.replicate.com/v1`).
//!
//! Create on `POST /models/{owner}/{name}/predictions` with `{input}` (or, for a model
//! id with a version, `POST /predictions` with `{version, input}`); follow
//! `GET /predictions/{id}` (`starting`, `processing`, then `succeeded`, `failed`,
//! `canceled` or `aborted`); cancel with `POST /predictions/{id}/cancel`; a lost create is
//! found by listing `GET /predictions?created_after=...` through its cursor pages. The
//! output of the video models is one URI on Replicate's CDN, fetched without the
//! credential. Everything of an API prediction is deleted an hour after it ends
//! (`data_removed`): the download follows at once, and a prediction found later with
//! its output gone is `Expired`. This module must never retry or pace by itself.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, Result};
use super::job::{Failure, Job, JobRequest, JobStatus, PollHint};
use super::provider::Media;
use super::transport::{Call, Transport};
use super::{ContentKind, ContentRef, endpoint_url, parse_json, poll_hint};

/// Most list pages read for one reconciliation, whatever the server answers.
const MAX_PAGES: usize = 20;

#[derive(Debug)]
pub struct ReplicateClient {
    pub(crate) transport: Transport,
    pub(crate) base: Url,
    /// Seconds after a prediction ends that its output is deleted (the catalogue's).
    retention_seconds: i64,
    /// Each succeeded prediction's output, as last seen.
    media: Mutex<HashMap<String, Url>>,
}

/// `schemas_prediction_response` (the fields read here).
#[derive(Deserialize)]
struct WirePrediction {
    id: String,
    status: String,
    model: Option<String>,
    input: Option<Value>,
    output: Option<Value>,
    #[serde(default)]
    data_removed: bool,
    error: Option<Value>,
    created_at: Option<String>,
    completed_at: Option<String>,
}

#[derive(Deserialize)]
struct WirePage {
    next: Option<String>,
    #[serde(default)]
    results: Vec<WirePrediction>,
}

fn unix(ts: Option<&str>) -> Option<i64> {
    ts?.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The first URI of an output: one string for the video models, a list for some others.
fn output_url(output: Option<&Value>) -> Option<&str> {
    match output? {
        Value::String(s) => Some(s),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        _ => None,
    }
}

impl WirePrediction {
    fn into_job(self, retention_seconds: i64) -> (Job, Option<String>) {
        let status = JobStatus::from_wire(&self.status);
        let finished_at = unix(self.completed_at.as_deref());
        let url = (!self.data_removed)
            .then(|| output_url(self.output.as_ref()).map(str::to_owned))
            .flatten();
        let failure = match (&self.error, status) {
            (Some(e), _) if !e.is_null() => Some(Failure {
                code: Some(self.status.clone()),
                message: Some(match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string().chars().take(500).collect(),
                }),
                revised_prompt: None,
            }),
            (_, JobStatus::Failed) => Some(Failure {
                code: Some(self.status.clone()),
                message: None,
                revised_prompt: None,
            }),
            _ => None,
        };
        let prompt = self
            .input
            .as_ref()
            .and_then(|i| i.get("prompt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let job = Job {
            generations: if status == JobStatus::Succeeded {
                vec![self.id.clone()]
            } else {
                Vec::new()
            },
            status,
            status_raw: self.status,
            progress: None,
            queue_position: None,
            created_at: unix(self.created_at.as_deref()).unwrap_or(0),
            finished_at,
            expires_at: finished_at.map(|f| f + retention_seconds),
            failure,
            prompt,
            model: self.model,
            size: None,
            seconds: None,
            request: None,
            id: self.id,
        };
        (job, url)
    }
}

impl ReplicateClient {
    pub(crate) fn new(transport: Transport, base: Url, retention_seconds: u64) -> ReplicateClient {
        ReplicateClient {
            transport,
            base,
            retention_seconds: i64::try_from(retention_seconds).unwrap_or(i64::MAX / 2),
            media: Mutex::new(HashMap::new()),
        }
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        endpoint_url(&self.base, segments, query)
    }

    /// `{input}` for an official model (`owner/name`), `{version, input}` for a version.
    pub fn request_body(req: &JobRequest) -> Value {
        if req.model.contains(':') || !req.model.contains('/') {
            json!({ "version": req.model, "input": super::model_input(req) })
        } else {
            json!({ "input": super::model_input(req) })
        }
    }

    fn read(&self, body: &[u8], what: &str) -> Result<Job> {
        let (job, url) = parse_json::<WirePrediction>(body, what)?.into_job(self.retention_seconds);
        let mut media = self.media.lock().expect("media lock");
        match url.map(|u| Url::parse(&u)) {
            Some(Ok(u)) => {
                media.insert(job.id.clone(), u);
            }
            Some(Err(e)) => {
                return Err(ApiError::Protocol {
                    message: format!("{what}: the output is not a URL ({e})"),
                });
            }
            None => {
                media.remove(&job.id);
            }
        }
        Ok(job)
    }

    pub async fn create(&self, req: &JobRequest) -> Result<Job> {
        super::one_take_per_job(req, "Replicate")?;
        let body = Self::request_body(req);
        let url = match req.model.split_once('/') {
            Some((owner, name)) if !req.model.contains(':') => {
                self.url(&["models", owner, name, "predictions"], &[])
            }
            _ => self.url(&["predictions"], &[]),
        };
        let call = Call {
            method: Method::POST,
            url,
            json: Some(&body),
            what: "new prediction",
            create: true,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        let mut job = self.read(&answer.body, "the created prediction")?;
        job.request = Some(body);
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> Result<(Job, PollHint)> {
        let what = format!("prediction `{id}`");
        let call = Call {
            method: Method::GET,
            url: self.url(&["predictions", id], &[]),
            json: None,
            what: &what,
            create: false,
            multipart: None,
        };
        let answer = self.transport.fetch(&call).await?;
        Ok((self.read(&answer.body, &what)?, poll_hint(&answer.headers)))
    }

    /// Predictions created at or after `since_unix`, newest first, through the cursor
    /// pages (each `next` must stay on the API's origin).
    pub async fn list_recent(&self, since_unix: i64) -> Result<Vec<Job>> {
        let since = jiff::Timestamp::from_second(since_unix)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut url = self.url(&["predictions"], &[("created_after", since.as_str())]);
        let mut jobs = Vec::new();
        for _ in 0..MAX_PAGES {
            let call = Call {
                method: Method::GET,
                url: url.clone(),
                json: None,
                what: "the prediction list",
                create: false,
                multipart: None,
            };
            let answer = self.transport.fetch(&call).await?;
            let page = parse_json::<WirePage>(&answer.body, "the prediction list")?;
            let mut reached_older = false;
            for p in page.results {
                let (mut job, _) = p.into_job(self.retention_seconds);
                // A time that does not parse is no reason to rule a prediction out.
                if job.created_at == 0 {
                    job.created_at = since_unix;
                }
                reached_older |= job.created_at < since_unix;
                if job.created_at >= since_unix {
                    jobs.push(job);
                }
            }
            let Some(next) = page.next.filter(|n| !n.is_empty()) else {
                return Ok(jobs);
            };
            if reached_older {
                return Ok(jobs);
            }
            // A list cut short would let a lost create be sent again: say so instead.
            let next = Url::parse(&next).map_err(|e| ApiError::Protocol {
                message: format!("the prediction list: `next` is not a URL ({e})"),
            })?;
            if next.origin() != self.base.origin() || next == url {
                return Err(ApiError::Protocol {
                    message: format!(
                        "the prediction list's next page is on `{}`, not the API: not followed, so a lost create cannot be ruled out",
                        super::transport::host_of(&next)
                    ),
                });
            }
            url = next;
        }
        Err(ApiError::Protocol {
            message: format!(
                "the prediction list runs past {MAX_PAGES} pages since the create: a lost create cannot be ruled out"
            ),
        })
    }

    /// Cancels a prediction; one already ended or gone is not an error.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let what = format!("prediction `{id}`");
        let call = Call {
            method: Method::POST,
            url: self.url(&["predictions", id, "cancel"], &[]),
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

    async fn content(&self, content: &ContentRef<'_>, kind: ContentKind) -> Result<Media> {
        if kind != ContentKind::Video {
            return Err(ApiError::Config {
                message: "Replicate serves no thumbnails".to_owned(),
            });
        }
        let known = self
            .media
            .lock()
            .expect("media lock")
            .get(content.job_id)
            .cloned();
        let url = match known {
            Some(u) => Some(u),
            None => {
                self.get(content.job_id).await?;
                self.media
                    .lock()
                    .expect("media lock")
                    .get(content.job_id)
                    .cloned()
            }
        };
        url.map(Media::at).ok_or_else(|| ApiError::Expired {
            what: format!("the output of prediction `{}`", content.job_id),
        })
    }
}

impl super::provider::Protocol for ReplicateClient {
    const API: crate::limits::Api = crate::limits::Api::Replicate;
    const THUMBNAIL_EXTENSION: Option<&'static str> = None;

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn body(req: &JobRequest) -> Value {
        ReplicateClient::request_body(req)
    }

    fn create(&self, req: &JobRequest) -> impl Future<Output = Result<Job>> + Send {
        ReplicateClient::create(self, req)
    }

    fn get(&self, id: &str, _model: &str) -> impl Future<Output = Result<(Job, PollHint)>> + Send {
        ReplicateClient::get(self, id)
    }

    fn list_recent(&self, since_unix: i64) -> impl Future<Output = Result<Vec<Job>>> + Send {
        ReplicateClient::list_recent(self, since_unix)
    }

    fn delete(&self, id: &str, _model: &str) -> impl Future<Output = Result<()>> + Send {
        ReplicateClient::delete(self, id)
    }

    fn content_url(
        &self,
        content: &ContentRef<'_>,
        kind: ContentKind,
    ) -> impl Future<Output = Result<Media>> + Send {
        self.content(content, kind)
    }
}
