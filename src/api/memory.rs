//! An in-memory provider for the engine's tests: no HTTP, a script of faults, and
//! counters of what the engine asked. Works on tokio's paused clock.

use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::{ApiError, Result};
use super::job::{Job, JobRequest, JobStatus, PollHint};
use super::{BoxFuture, ContentKind, ContentRef, Downloaded, Provider};
use crate::limits::Api;

/// What the next calls do wrong.
#[derive(Clone, Debug)]
pub struct Script {
    /// Creates that make the job but whose answer is lost.
    pub lose_create_answers: u32,
    /// Polls each job needs before it succeeds.
    pub polls_to_finish: u32,
    /// Jobs never end (they stay `running`).
    pub never_finish: bool,
    /// Seconds after creation at which a job expires.
    pub expires_after_secs: i64,
    /// Status checks answered 429 before any succeeds.
    pub get_429s: u32,
    /// Video downloads that fail half-way before one works.
    pub failed_downloads: u32,
    /// Every video download finds the content expired.
    pub content_expired: bool,
    /// Every video download finds the disk full.
    pub disk_full: bool,
    /// Jobs never end and report this status word (one no protocol documents).
    pub odd_status: Option<&'static str>,
    /// Creates whose answer is lost before they reach the service (no job is made).
    pub lose_creates_unsent: u32,
    /// Creates that succeed before the account runs out of credit (402); `None`: never.
    pub credit_for_creates: Option<u32>,
}

impl Default for Script {
    /// Nothing goes wrong; jobs finish at the first poll and are kept a day.
    fn default() -> Script {
        Script {
            lose_create_answers: 0,
            polls_to_finish: 0,
            never_finish: false,
            expires_after_secs: 86_400,
            get_429s: 0,
            failed_downloads: 0,
            content_expired: false,
            disk_full: false,
            odd_status: None,
            credit_for_creates: None,
            lose_creates_unsent: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub creates: u32,
    pub gets: u32,
    pub lists: u32,
    pub deletes: u32,
    pub downloads: u32,
}

#[derive(Debug)]
struct MemJob {
    job: Job,
    req: JobRequest,
    polls: u32,
}

#[derive(Debug)]
pub struct MemoryProvider {
    api: Api,
    can_list: bool,
    state: Mutex<(Script, Counters, Vec<MemJob>)>,
}

/// The bytes of every placeholder video it serves: an MP4 `ftyp` box, then filler.
pub const VIDEO: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2 memory video";

impl MemoryProvider {
    pub fn new(api: Api, can_list: bool, script: Script) -> MemoryProvider {
        MemoryProvider {
            api,
            can_list,
            state: Mutex::new((script, Counters::default(), Vec::new())),
        }
    }

    /// A job that an earlier (dead) run created: it exists, the lockfile does not know it.
    pub fn seed_job(&self, req: &JobRequest, created_at: i64) -> String {
        let mut state = self.state.lock().unwrap();
        let id = format!("mem_seed_{}", state.2.len() + 1);
        let job = self.job_for(&id, req, created_at, &state.0);
        state.2.push(MemJob {
            job,
            req: req.clone(),
            polls: 0,
        });
        id
    }

    pub fn counters(&self) -> Counters {
        self.state.lock().unwrap().1
    }

    fn job_for(&self, id: &str, req: &JobRequest, created_at: i64, script: &Script) -> Job {
        Job {
            queue_position: None,
            id: id.to_owned(),
            status: JobStatus::Queued,
            status_raw: "queued".into(),
            progress: None,
            created_at,
            finished_at: None,
            expires_at: Some(created_at + script.expires_after_secs.max(1)),
            generations: Vec::new(),
            failure: None,
            prompt: Some(req.prompt.clone()),
            model: Some(req.model.clone()),
            size: Some(req.size),
            seconds: Some(req.seconds),
            request: None,
        }
    }
}

impl Provider for MemoryProvider {
    fn api(&self) -> Api {
        self.api
    }

    fn can_list(&self) -> bool {
        self.can_list
    }

    fn thumbnail_extension(&self) -> Option<&'static str> {
        Some("jpg")
    }

    fn auth_description(&self) -> String {
        "no credential (in memory)".into()
    }

    fn requests(&self) -> u64 {
        let c = &self.state.lock().unwrap().1;
        u64::from(c.creates + c.gets + c.lists + c.deletes + c.downloads)
    }

    fn request_body(&self, req: &JobRequest) -> serde_json::Value {
        serde_json::json!({
            "prompt": req.prompt, "model": req.model, "size": req.size.to_string(),
            "seconds": req.seconds, "variants": req.variants,
        })
    }

    fn create<'a>(&'a self, req: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            state.1.creates += 1;
            match &mut state.0.credit_for_creates {
                Some(0) => {
                    return Err(ApiError::OutOfCredit {
                        credential: "no credential (in memory)".into(),
                        message: "Insufficient credits".into(),
                    });
                }
                Some(n) => *n -= 1,
                None => {}
            }
            let now = (jiff::Timestamp::now()).as_second();
            if state.0.lose_creates_unsent > 0 {
                state.0.lose_creates_unsent -= 1;
                return Err(ApiError::CreateOutcomeUnknown {
                    message: "the connection dropped before the request was sent".into(),
                    since_unix: now - 120,
                    request: serde_json::Value::Null,
                });
            }
            // Never reused, as a service never reuses an id (a deleted job leaves a gap).
            let id = format!("mem_{}", state.1.creates);
            let job = self.job_for(&id, req, now, &state.0);
            state.2.push(MemJob {
                job: job.clone(),
                req: req.clone(),
                polls: 0,
            });
            if state.0.lose_create_answers > 0 {
                state.0.lose_create_answers -= 1;
                return Err(ApiError::CreateOutcomeUnknown {
                    message: "the connection dropped".into(),
                    since_unix: now - 120,
                    request: serde_json::Value::Null,
                });
            }
            Ok(Job {
                request: Some(self.request_body(req)),
                ..job
            })
        })
    }

    fn get<'a>(&'a self, id: &'a str, _model: &'a str) -> BoxFuture<'a, Result<(Job, PollHint)>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            state.1.gets += 1;
            if state.0.get_429s > 0 {
                state.0.get_429s -= 1;
                return Err(ApiError::Transient {
                    status: Some(429),
                    message: "too many requests".into(),
                    retry_after: Some(std::time::Duration::from_secs(5)),
                    attempts: 1,
                });
            }
            let (polls_to_finish, never) = (state.0.polls_to_finish, state.0.never_finish);
            let odd = state.0.odd_status;
            let Some(m) = state.2.iter_mut().find(|m| m.job.id == id) else {
                return Err(ApiError::NotFound {
                    what: format!("job `{id}`"),
                    message: "no such job".into(),
                });
            };
            m.polls += 1;
            if let Some(word) = odd {
                m.job.status = JobStatus::from_wire(word);
                m.job.status_raw = word.into();
            } else if never || m.polls < polls_to_finish {
                m.job.status = JobStatus::Running;
                m.job.status_raw = "running".into();
            } else {
                m.job.status = JobStatus::Succeeded;
                m.job.status_raw = "succeeded".into();
                m.job.finished_at = Some(m.job.created_at + 60);
                let variants = m.req.variants.max(1);
                m.job.generations = (1..=variants).map(|v| format!("{id}_gen{v}")).collect();
            }
            Ok((m.job.clone(), PollHint::default()))
        })
    }

    fn list_recent(&self, since_unix: i64) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            state.1.lists += 1;
            if !self.can_list {
                return Err(ApiError::Config {
                    message: "this provider cannot list its jobs".into(),
                });
            }
            let mut jobs: Vec<Job> = state
                .2
                .iter()
                .filter(|m| m.job.created_at >= since_unix)
                .map(|m| m.job.clone())
                .collect();
            jobs.reverse();
            Ok(jobs)
        })
    }

    fn delete<'a>(&'a self, id: &'a str, _model: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            state.1.deletes += 1;
            state.2.retain(|m| m.job.id != id);
            Ok(())
        })
    }

    fn download_content<'a>(
        &'a self,
        content: &'a ContentRef<'a>,
        kind: ContentKind,
        final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(async move {
            {
                let mut state = self.state.lock().unwrap();
                if kind == ContentKind::Video {
                    state.1.downloads += 1;
                    if state.0.disk_full {
                        return Err(ApiError::Io {
                            path: final_path.to_owned(),
                            source: std::io::Error::other("No space left on device"),
                        });
                    }
                    if state.0.content_expired {
                        return Err(ApiError::Expired {
                            what: format!("video of job `{}`", content.job_id),
                        });
                    }
                    if state.0.failed_downloads > 0 {
                        state.0.failed_downloads -= 1;
                        return Err(ApiError::Transient {
                            status: None,
                            message: "the download stopped after 10 of 100 bytes".into(),
                            retry_after: None,
                            attempts: 1,
                        });
                    }
                }
            }
            let bytes = match kind {
                ContentKind::Video => VIDEO.to_vec(),
                ContentKind::Thumbnail => b"\xff\xd8\xff\xe0 memory thumbnail".to_vec(),
            };
            if let Some(dir) = final_path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| ApiError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            crate::atomic_write::write(final_path, &bytes).map_err(|source| ApiError::Io {
                path: final_path.to_owned(),
                source,
            })?;
            Ok(Downloaded {
                sha256: crate::cache_key::hex(&Sha256::digest(&bytes)),
                bytes: bytes.len() as u64,
                content_type: None,
            })
        })
    }
}
