//! The one view of a generation job that the scheduler sees, whichever protocol made it.
//!
//! Protocol modules translate their wire types into these; nothing here knows a path or
//! a header. Status words differ between the APIs (`succeeded` vs `completed`); the raw
//! word is kept for display, the [`JobStatus`] is what code branches on.

use std::fmt;
use std::time::Duration;

use crate::limits::Size;

/// What to generate: one shot's request, before protocol encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    pub prompt: String,
    /// The model, or on Azure the deployment name.
    pub model: String,
    pub size: Size,
    pub seconds: u32,
    /// Variants in this one job. Must be 1 where `Client::variants_per_job` is false.
    pub variants: u32,
    /// The model's own inputs, sent as the protocol carries them.
    pub params: crate::shot::Params,
    /// The size and length as the model's own fields, where the provider takes them so
    /// (fal, Replicate: `resolution`, `aspect_ratio`, `duration`), from the model's
    /// catalogue entry; empty where the protocol has fields of its own for them.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The images the job starts from, in the shot's order (first frame, last frame,
    /// references), each sent as the protocol documents.
    pub images: Vec<RequestImage>,
}

/// One image of a request. Its bytes never reach a log: `Debug` shows the type, the
/// size in bytes and the hash only.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestImage {
    pub role: crate::catalogue::ImageRole,
    pub format: crate::catalogue::ImageFormat,
    /// Lowercase hex sha256 of `bytes`.
    pub sha256: String,
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// The model's own field for it (fal, Replicate), from the catalogue.
    pub field: Option<String>,
    /// The frame of the video it stands for, where the protocol places images at frame
    /// indices (Azure's `inpaint_items`; from the model's frame rate).
    pub frame_index: Option<u32>,
}

impl std::fmt::Debug for RequestImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestImage")
            .field("role", &self.role)
            .field("format", &self.format)
            .field("bytes", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl RequestImage {
    /// `data:image/png;base64,...`: how JSON protocols carry an image.
    pub fn data_uri(&self) -> String {
        use base64::Engine as _;
        format!(
            "data:{};base64,{}",
            self.format.mime(),
            base64::engine::general_purpose::STANDARD.encode(self.bytes.as_slice())
        )
    }

    /// A file name for a multipart part: from the role and the type only.
    pub fn file_name(&self, index: usize) -> String {
        let role = match self.role {
            crate::catalogue::ImageRole::FirstFrame => "first_frame",
            crate::catalogue::ImageRole::LastFrame => "last_frame",
            crate::catalogue::ImageRole::Reference => "reference",
        };
        format!("{role}-{index}.{}", self.format.extension())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    /// `preprocessing`, `running`, `processing` (Azure), `in_progress` (OpenAI).
    Running,
    /// `succeeded` (Azure), `completed` (OpenAI).
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// Maps a status word of either API. Unknown words count as running: a new
    /// intermediate state must not end a job early, and polling will see the end.
    pub fn from_wire(s: &str) -> JobStatus {
        match s {
            "queued" | "pending" | "starting" | "IN_QUEUE" => JobStatus::Queued,
            "succeeded" | "completed" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            // Replicate's `aborted`: a deadline passed before the prediction started.
            "cancelled" | "canceled" | "aborted" => JobStatus::Cancelled,
            _ => JobStatus::Running,
        }
    }

    /// Whether `s` is a status word of a protocol shotlist speaks (anything else is
    /// polled, slowly, until the job's expiry).
    pub fn is_known_word(s: &str) -> bool {
        matches!(
            s,
            "queued"
                | "pending"
                | "preprocessing"
                | "running"
                | "processing"
                | "in_progress"
                | "succeeded"
                | "completed"
                | "failed"
                | "cancelled"
                | "canceled"
                | "starting"
                | "aborted"
                | "expired"
                | "IN_QUEUE"
                | "IN_PROGRESS"
                | "COMPLETED"
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        })
    }
}

/// Why a job failed, in the service's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Option<String>,
    pub message: Option<String>,
    pub revised_prompt: Option<String>,
}

/// A job as last seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    /// The service's own status word (`preprocessing`, `in_progress`, ...).
    pub status_raw: String,
    /// Percent, when the service reports it (OpenAI).
    pub progress: Option<u8>,
    /// Place in the service's queue (0: next), when it reports one (fal).
    pub queue_position: Option<u32>,
    /// Unix seconds.
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// After this the job and its content are gone.
    pub expires_at: Option<i64>,
    /// What can be downloaded, by index: Azure generation ids; on OpenAI, the video's own
    /// id once it completed (one video per job).
    pub generations: Vec<String>,
    pub failure: Option<Failure>,
    /// What the job says it was asked for, to reconcile a lost create.
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub size: Option<Size>,
    pub seconds: Option<u32>,
    /// The request body exactly as sent; set only on the result of `create`, for the
    /// lockfile.
    pub request: Option<serde_json::Value>,
}

impl Job {
    /// Whether this job could be the one `req` created (used after `CreateOutcomeUnknown`).
    /// Fields the service did not echo are not held against it.
    pub fn matches(&self, req: &JobRequest) -> bool {
        self.prompt.as_deref().is_none_or(|p| p == req.prompt)
            // A service may name the model without the version asked for (Replicate's
            // `owner/name` for `owner/name:version`).
            && self
                .model
                .as_deref()
                .is_none_or(|m| m == req.model || req.model.split(':').next() == Some(m))
            && self.size.is_none_or(|s| s == req.size)
            && self.seconds.is_none_or(|s| s == req.seconds)
    }
}

/// When to poll a job again, if the server said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollHint {
    /// From `openai-poll-after-ms` or `Retry-After` on the job response.
    pub after: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_of_both_apis() {
        for (w, s) in [
            ("queued", JobStatus::Queued),
            ("preprocessing", JobStatus::Running),
            ("running", JobStatus::Running),
            ("processing", JobStatus::Running),
            ("in_progress", JobStatus::Running),
            ("succeeded", JobStatus::Succeeded),
            ("completed", JobStatus::Succeeded),
            ("failed", JobStatus::Failed),
            ("cancelled", JobStatus::Cancelled),
            ("something_new", JobStatus::Running),
        ] {
            assert_eq!(JobStatus::from_wire(w), s, "{w}");
        }
        assert!(JobStatus::Cancelled.is_terminal() && !JobStatus::Running.is_terminal());
    }
}
