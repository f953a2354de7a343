//! The lockfile: what was rendered, from which inputs, by which job, into which files.
//!
//! It lives beside the manifest (`shotlist.yaml` → `shotlist.lock`), is YAML with a
//! `version`, and holds one entry per shot id, sorted, so diffs and merges stay clean.
//! It is always written atomically and only when its content changed. A lockfile that
//! does not parse, or is of a newer version, is reported and never overwritten.
//! It never holds a key or a token: endpoints are recorded by host only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::atomic_write;
use crate::diagnostic::{Diagnostics, Problem};
use crate::limits::Api;
use crate::render_inputs::RenderInputs;

/// The lockfile format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Additions within [`VERSION`] this build knows. 0: shotlist 0.1 (no `revision` key,
/// raw `request` bodies); 1: `inputs` (the normalized render inputs); 2: `ledger` (every
/// job created, kept across re-renders) and each job's estimated charge; 3: a shot's
/// `source` (taken from a shared cache). A lockfile of a newer revision is read, but never
/// rewritten: its additions would be lost.
pub const REVISION: u32 = 3;

/// The last line of every lockfile of revision 1 on: one without it was cut short (a
/// crash of another tool, a bad merge) and is refused rather than taken for fewer shots.
pub const FOOTER: &str = "# end of lockfile\n";

const HEADER: &str = "# Written by shotlist: what was rendered, from which inputs, into which files.\n# Commit it with the manifest. Do not edit by hand.\n";

/// The whole lockfile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    /// First, so that a lockfile cut short after its first lines is still known for one
    /// that must end with [`FOOTER`].
    #[serde(default)]
    pub revision: u32,
    pub version: u32,
    /// One entry per shot id, sorted by id.
    #[serde(default)]
    pub shots: BTreeMap<String, ShotLock>,
    /// Every job created for this board, kept when its shot is rendered anew: what was
    /// paid for and what came of it (`shotlist spend`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<LedgerEntry>,
    /// Frames taken from rendered videos for the shots that start from them, by file
    /// (relative to the manifest's folder): reused while their video is unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frames: BTreeMap<String, FrameLock>,
}

/// One frame taken from a shot's video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameLock {
    pub shot: String,
    pub take: u32,
    /// `first`, `last` or seconds.
    pub frame: String,
    /// The sha256 of the video it was taken from.
    pub video_sha256: String,
    /// The PNG file.
    pub file: FileLock,
}

/// One job in the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub job: String,
    pub shot: String,
    pub api: Api,
    pub model: String,
    /// The shot's render inputs when the job was made.
    pub input_hash: String,
    /// What the job was estimated to cost when created; absent: the price is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<crate::cost::Money>,
    pub created_at: Timestamp,
    /// When the run that created it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// When every video of the job was on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloaded_at: Option<Timestamp>,
    pub outcome: LedgerOutcome,
    /// The service's words, when the job did not deliver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What came of a job, as far as shotlist knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOutcome {
    /// Queued or running at the service.
    Running,
    /// Finished at the service; not every video saved yet.
    Finished,
    /// Every video saved.
    Delivered,
    /// Failed at the service (after running: paid for).
    Failed,
    /// Refused by the service's content checks.
    Moderated,
    /// Its videos expired or were deleted before they were saved.
    Expired,
    Cancelled,
}

impl LedgerOutcome {
    /// Paid for and not delivered: what a refund request is about.
    pub fn is_waste(self) -> bool {
        matches!(
            self,
            LedgerOutcome::Failed
                | LedgerOutcome::Moderated
                | LedgerOutcome::Expired
                | LedgerOutcome::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerOutcome::Running => "running",
            LedgerOutcome::Finished => "finished",
            LedgerOutcome::Delivered => "delivered",
            LedgerOutcome::Failed => "failed",
            LedgerOutcome::Moderated => "moderated",
            LedgerOutcome::Expired => "expired",
            LedgerOutcome::Cancelled => "cancelled",
        }
    }

    /// A job's outcome from its lockfile record.
    fn of(job: &JobLock) -> LedgerOutcome {
        match job.status {
            JobState::Pending => LedgerOutcome::Running,
            JobState::Cancelled => LedgerOutcome::Cancelled,
            JobState::Succeeded
                if !job.generations.is_empty()
                    && job.generations.iter().all(|g| g.file.is_some()) =>
            {
                LedgerOutcome::Delivered
            }
            JobState::Succeeded => LedgerOutcome::Finished,
            JobState::Failed => {
                let (code, message) = job
                    .failure
                    .as_ref()
                    .map_or((String::new(), String::new()), |f| {
                        (f.code.to_lowercase(), f.message.to_lowercase())
                    });
                // The codes shotlist records itself when a job's videos are gone, and
                // OpenRouter's `expired`; moderation by the service's code, or its words
                // where it has no code for it (Replicate).
                if matches!(
                    code.as_str(),
                    "gone" | "not_found" | "expired_unfinished" | "expired"
                ) {
                    LedgerOutcome::Expired
                } else if [
                    "moderat",
                    "content_policy",
                    "contentfilter",
                    "responsibleai",
                ]
                .iter()
                .any(|w| code.contains(w))
                    || ["moderation", "flagged as sensitive", "content policy"]
                        .iter()
                        .any(|w| message.contains(w))
                {
                    LedgerOutcome::Moderated
                } else {
                    LedgerOutcome::Failed
                }
            }
        }
    }
}

/// What shotlist knows about one shot's render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShotLock {
    /// `sha256:...` of the render inputs (see `cache_key.rs`).
    pub input_hash: String,
    pub api: Api,
    /// Host of the service (`myres.openai.azure.com`), or `local` for the built-in emulator.
    pub endpoint: String,
    pub model: String,
    /// The render inputs the shot was rendered from (revision 1 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<RenderInputs>,
    /// Revision 0 only: the create request body as sent; read to tell what changed.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub request: serde_json::Value,
    /// Jobs, in variant order: one for `azure-jobs`, one per variant for `openai-videos`.
    pub jobs: Vec<JobLock>,
    /// Creates sent whose job is not recorded yet, by job index: when each was sent.
    /// Written before the request goes out, so after a crash the next run looks for
    /// the job at the service before ever creating another one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub creating: BTreeMap<u32, Timestamp>,
    /// Where the files came from when not from this board's own jobs: a shared cache
    /// (its `jobs` are then the ones that rendered them for whoever published them, not
    /// paid for by this board, and kept out of the ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Where a shot's files came from, when not from its own jobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `cache`.
    pub kind: String,
    /// The cache's URL (it never holds a credential).
    pub from: String,
    /// When the entry was published, and when this board took it.
    pub published_at: Timestamp,
    pub taken_at: Timestamp,
}

impl ShotLock {
    /// Its files came from a shared cache (its jobs are someone else's).
    pub fn from_cache(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.kind == "cache")
    }
}

/// One job at the service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobLock {
    pub id: String,
    /// For APIs with one job per variant (`openai-videos`): the 1-based variant this job
    /// renders. 0 when one job renders every variant (`azure-jobs`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub variant: u32,
    pub status: JobState,
    /// The service's own status word, as last seen (`running`, `in_progress`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// After this the service deletes the job and its videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generations: Vec<GenerationLock>,
    /// What the job was estimated to cost when created (absent: unknown price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<crate::cost::Money>,
    /// When the run that created it started (a run's jobs share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Timestamp>,
}

/// Where a job stands, in shotlist's terms (both APIs' status words map onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created; queued or running at the service.
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_alive(self) -> bool {
        self == JobState::Pending
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
}

/// One generated video and the file it was saved to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationLock {
    /// Generation id (`gen_...`) for `azure-jobs`; the video id for `openai-videos`.
    pub id: String,
    /// 1-based variant number.
    pub variant: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileLock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<FileLock>,
}

/// A downloaded file, as it was when shotlist wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLock {
    /// Relative to the manifest's folder, `/`-separated.
    pub path: String,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    pub bytes: u64,
    /// Modification time when written, nanoseconds since the Unix epoch: the fast path of
    /// freshness checks. When it differs, the file is hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i128>,
}

/// Why a lockfile could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("failed to read the lockfile `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the lockfile `{}` does not parse", diagnostics.path.display())]
    #[diagnostic(help("fix or delete the lockfile; shotlist never overwrites one it cannot read"))]
    Malformed {
        diagnostics: Diagnostics,
        #[related]
        reports: Vec<crate::diagnostic::ProblemReport>,
    },
    #[error("the lockfile `{}` is version {found}, newer than this shotlist reads ({VERSION})", path.display())]
    #[diagnostic(help("upgrade shotlist; the lockfile was left untouched"))]
    Newer { path: PathBuf, found: u64 },
    #[error("the lockfile `{}` is revision {found}, newer than this shotlist writes ({REVISION})", path.display())]
    #[diagnostic(help(
        "upgrade shotlist: rewriting it would drop what the newer one recorded; the lockfile was left untouched"
    ))]
    NewerRevision { path: PathBuf, found: u32 },
    #[error("failed to write the lockfile `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Lockfile {
    pub fn new() -> Lockfile {
        Lockfile {
            version: VERSION,
            revision: REVISION,
            shots: BTreeMap::new(),
            ledger: Vec::new(),
            frames: BTreeMap::new(),
        }
    }

    /// Brings the ledger up to date with the shots' jobs: a job seen for the first time
    /// is added, a known one takes its latest state; a job no longer under its shot (the
    /// shot was rendered anew) keeps its last. Never removes an entry.
    pub fn sync_ledger(&mut self, now: Timestamp) {
        let mut index: std::collections::HashMap<String, usize> = self
            .ledger
            .iter()
            .enumerate()
            .map(|(i, e)| (e.job.clone(), i))
            .collect();
        // A shot taken from a shared cache was paid for by whoever published it.
        for (shot_id, shot) in self.shots.iter().filter(|(_, s)| !s.from_cache()) {
            for job in &shot.jobs {
                let outcome = LedgerOutcome::of(job);
                let i = *index.entry(job.id.clone()).or_insert_with(|| {
                    self.ledger.push(LedgerEntry {
                        job: job.id.clone(),
                        shot: shot_id.clone(),
                        api: shot.api,
                        model: shot.model.clone(),
                        input_hash: shot.input_hash.clone(),
                        estimated_cost: job.estimated_cost.clone(),
                        created_at: job.created_at,
                        run: job.run,
                        finished_at: None,
                        downloaded_at: None,
                        outcome,
                        message: None,
                    });
                    self.ledger.len() - 1
                });
                let e = &mut self.ledger[i];
                e.outcome = outcome;
                e.finished_at = job.finished_at.or(e.finished_at);
                if e.estimated_cost.is_none() {
                    e.estimated_cost = job.estimated_cost.clone();
                }
                if outcome == LedgerOutcome::Delivered && e.downloaded_at.is_none() {
                    e.downloaded_at = Some(now);
                }
                e.message = job
                    .failure
                    .as_ref()
                    .map(|f| f.message.clone())
                    .or(e.message.take());
            }
        }
    }

    /// Reads the lockfile at `path`; a missing file is an empty lockfile.
    pub fn read(path: &Path) -> Result<Lockfile, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lockfile::parse(path, text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lockfile::new()),
            Err(source) => Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: String) -> Result<Lockfile, LockError> {
        let malformed = |text: String, span: std::ops::Range<usize>, message: String| {
            let problem = Problem::new(span, message)
                .help("restore it from version control, or delete it to start over");
            let diagnostics = Diagnostics::new(path, Arc::new(text), vec![problem]);
            LockError::Malformed {
                reports: diagnostics.reports(),
                diagnostics,
            }
        };
        let located = |err: &serde_saphyr::Error| crate::yaml::error_span(err, &text);
        // A newer format may not parse as this one: look at its top-level `version:` line
        // first, so the message says "upgrade" rather than "malformed".
        let declared = text
            .lines()
            .find_map(|l| l.strip_prefix("version:"))
            .and_then(|v| v.split('#').next()?.trim().parse::<u64>().ok());
        if let Some(v) = declared.filter(|v| *v > u64::from(VERSION)) {
            return Err(LockError::Newer {
                path: path.to_path_buf(),
                found: v,
            });
        }
        match serde_saphyr::from_str_with_options::<Lockfile>(&text, crate::yaml::options()) {
            Ok(lock) if lock.revision >= 1 && !text.ends_with(FOOTER) => {
                let end = text.len();
                Err(malformed(
                    text,
                    end..end,
                    format!(
                        "the lockfile is cut short: it lacks its last line `{}`",
                        FOOTER.trim_end()
                    ),
                ))
            }
            Ok(mut lock) if lock.version == VERSION => match lock.foreign_paths().first() {
                None => {
                    // An older revision is upgraded in memory (what it lacks is optional);
                    // a newer one is kept, so that `write` refuses.
                    lock.revision = lock.revision.max(REVISION);
                    Ok(lock)
                }
                Some((id, bad)) => {
                    let span = crate::yaml::parse(&text)
                        .ok()
                        .and_then(|root| locate_path(&root, id, bad))
                        .unwrap_or(0..0);
                    let problem = Problem::new(
                        span,
                        format!("recorded file `{bad}` of shot `{id}` is not one shotlist writes"),
                    )
                    .label("not a file of this shot inside the manifest's folder")
                    .help(format!(
                        "a recorded path is relative to the manifest, without `..`, and named after its shot (`{id}.mp4`, `{id}-2.mp4`, ...); restore the lockfile from version control, or delete it to start over"
                    ));
                    let diagnostics = Diagnostics::new(path, Arc::new(text), vec![problem]);
                    Err(LockError::Malformed {
                        reports: diagnostics.reports(),
                        diagnostics,
                    })
                }
            },
            Ok(lock) => Err(malformed(
                text,
                0..0,
                format!(
                    "unsupported lockfile `version: {}` (expected {VERSION})",
                    lock.version
                ),
            )),
            Err(e) => {
                let span = located(&e);
                let message = format!(
                    "invalid lockfile: {}",
                    crate::yaml::clean_message(&e.without_snippet().to_string())
                );
                Err(malformed(text, span, message))
            }
        }
    }

    /// The canonical text: header, then YAML with shots sorted by id.
    pub fn to_yaml(&self) -> String {
        let body = serde_saphyr::to_string(self).expect("lockfile types always serialize");
        format!("{HEADER}{body}{FOOTER}")
    }

    /// Writes atomically, only when the content changed. Returns whether it wrote.
    pub fn write(&self, path: &Path) -> Result<bool, LockError> {
        if self.revision > REVISION {
            return Err(LockError::NewerRevision {
                path: path.to_path_buf(),
                found: self.revision,
            });
        }
        atomic_write::write_if_changed(path, self.to_yaml().as_bytes()).map_err(|source| {
            LockError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

impl Lockfile {
    /// Recorded file paths that shotlist could not have written for their entry, as
    /// (shot id, path). A lockfile is shared like the manifest, so a path in it must never
    /// make a run move or delete a file that is not that shot's output: each must be plain
    /// relative (no `..`, not absolute) and named after its entry's id and variant.
    fn foreign_paths(&self) -> Vec<(&str, &str)> {
        let mut bad = Vec::new();
        for (id, shot) in &self.shots {
            for (_, g) in shot.generations() {
                if let Some(f) = &g.file
                    && !is_output_path(&f.path, id, g.variant, &["mp4"])
                {
                    bad.push((id.as_str(), f.path.as_str()));
                }
                if let Some(t) = &g.thumbnail
                    && !is_output_path(&t.path, id, g.variant, THUMBNAIL_EXTENSIONS)
                {
                    bad.push((id.as_str(), t.path.as_str()));
                }
            }
        }
        bad
    }
}

/// Extensions a recorded thumbnail may have (what the services serve).
const THUMBNAIL_EXTENSIONS: &[&str] = &["jpg", "jpeg", "webp", "png"];

/// `rel` is inside the manifest's folder and named as shot `id`'s file of `variant`.
fn is_output_path(rel: &str, id: &str, variant: u32, extensions: &[&str]) -> bool {
    if !crate::board_path::is_plain_relative(rel) {
        return false;
    }
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = if variant <= 1 {
        id.to_owned()
    } else {
        format!("{id}-{variant}")
    };
    name.strip_prefix(stem.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|ext| extensions.contains(&ext))
}

/// The span of the `path:` value `value` under `shots: {id: ...}`.
fn locate_path(root: &crate::yaml::Node, id: &str, value: &str) -> Option<crate::yaml::Span> {
    use crate::yaml::{Node, Value};
    fn find(node: &Node, value: &str) -> Option<crate::yaml::Span> {
        match &node.value {
            Value::Map(entries) => entries.iter().find_map(|(k, v)| {
                if k.as_str() == Some("path") && v.as_str() == Some(value) {
                    Some(v.span.clone())
                } else {
                    find(v, value)
                }
            }),
            Value::Seq(items) => items.iter().find_map(|n| find(n, value)),
            _ => None,
        }
    }
    find(root.get("shots")?.get(id)?, value)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ShotLock {
    /// The job that renders `variant` on a one-job-per-variant API: the live or
    /// succeeded one (failed attempts stay in the history but do not count).
    pub fn job_for_variant(&self, variant: u32) -> Option<&JobLock> {
        self.jobs.iter().rev().find(|j| {
            j.variant == variant && matches!(j.status, JobState::Pending | JobState::Succeeded)
        })
    }

    /// Variants (of `1..=variants`) with no live or succeeded job: they need a create.
    pub fn variants_without_job(&self, variants: u32) -> Vec<u32> {
        (1..=variants)
            .filter(|v| self.job_for_variant(*v).is_none())
            .collect()
    }

    /// Every generation with its job, in variant order.
    pub fn generations(&self) -> impl Iterator<Item = (&JobLock, &GenerationLock)> {
        self.jobs
            .iter()
            .flat_map(|j| j.generations.iter().map(move |g| (j, g)))
    }

    /// The video file of take `take` (1-based), where one is recorded.
    pub fn video_of(&self, take: u32) -> Option<&FileLock> {
        self.jobs
            .iter()
            .filter(|j| j.status == JobState::Succeeded)
            .flat_map(|j| j.generations.iter())
            .filter(|g| g.variant == take)
            .filter_map(|g| g.file.as_ref())
            .next_back()
    }

    /// Latest expiry of the shot's jobs, if the service told one.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.jobs.iter().filter_map(|j| j.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> ShotLock {
        ShotLock {
            input_hash: format!("sha256:{id}"),
            api: Api::AzureJobs,
            endpoint: "local".into(),
            model: "sora".into(),
            inputs: None,
            request: serde_json::json!({"prompt": "p", "width": 480, "height": 480, "n_seconds": 5, "n_variants": 1, "model": "sora"}),
            jobs: vec![JobLock {
                estimated_cost: None,
                run: None,
                id: format!("task_{id}"),
                variant: 0,
                status: JobState::Succeeded,
                service_status: Some("succeeded".into()),
                created_at: Timestamp::from_second(1_764_000_000).unwrap(),
                finished_at: Some(Timestamp::from_second(1_764_000_100).unwrap()),
                expires_at: Some(Timestamp::from_second(1_764_086_400).unwrap()),
                failure: None,
                generations: vec![GenerationLock {
                    id: format!("gen_{id}"),
                    variant: 1,
                    file: Some(FileLock {
                        path: format!("renders/{id}.mp4"),
                        sha256: "ab".repeat(32),
                        bytes: 1234,
                        mtime_ns: Some(1),
                    }),
                    thumbnail: None,
                }],
            }],
            creating: Default::default(),
            source: None,
        }
    }

    #[test]
    fn round_trips_and_is_sorted_whatever_the_insertion_order() {
        let ids = ["zeta", "alpha", "mid", "beta"];
        let mut a = Lockfile::new();
        let mut b = Lockfile::new();
        for id in ids {
            a.shots.insert(id.into(), sample(id));
        }
        for id in ids.iter().rev() {
            b.shots.insert((*id).into(), sample(id));
        }
        assert_eq!(a.to_yaml(), b.to_yaml());
        let text = a.to_yaml();
        let pos: Vec<usize> = ["alpha:", "beta:", "mid:", "zeta:"]
            .iter()
            .map(|k| text.find(k).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        let back = Lockfile::parse(Path::new("x.lock"), text).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn newer_version_is_refused() {
        let err =
            Lockfile::parse(Path::new("x.lock"), "version: 2\nshots: {}\n".into()).unwrap_err();
        assert!(matches!(err, LockError::Newer { found: 2, .. }), "{err:?}");
    }

    #[test]
    fn malformed_lockfile_is_located_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.lock");
        std::fs::write(&p, "version: 1\nshots:\n  a:\n    input_hash: [\n").unwrap();
        let err = Lockfile::read(&p).unwrap_err();
        let LockError::Malformed { diagnostics: d, .. } = err else {
            panic!("{err:?}")
        };
        assert!(d.to_json()[0].line >= 4, "{:?}", d.to_json());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "version: 1\nshots:\n  a:\n    input_hash: [\n"
        );
    }

    #[test]
    fn a_recorded_path_outside_the_board_or_of_another_shot_is_refused_located() {
        for bad in [
            "../../elsewhere/notes.txt",
            "/etc/passwd",
            "renders/../shotlist.yaml",
            "renders/notes.txt",
            "renders/b.mp4",
            "renders/a-2.mp4",
        ] {
            let mut lock = Lockfile::new();
            let mut entry = sample("a");
            entry.jobs[0].generations[0].file.as_mut().unwrap().path = bad.into();
            lock.shots.insert("a".into(), entry);
            lock.shots.insert("b".into(), sample("b"));
            let text = lock.to_yaml();
            let err = Lockfile::parse(Path::new("x.lock"), text.clone()).unwrap_err();
            let LockError::Malformed { diagnostics: d, .. } = err else {
                panic!("{bad}: {err:?}")
            };
            let json = d.to_json();
            let expected_line = text
                .lines()
                .position(|l| l.trim_start().starts_with("path:") && l.contains(bad))
                .unwrap()
                + 1;
            assert_eq!(json[0].line, expected_line, "{bad}: {json:?}");
            assert!(json[0].message.contains(bad), "{json:?}");
        }
        // Thumbnails by their own names; variant 2 of `a` is `a-2`.
        let mut lock = Lockfile::new();
        let mut entry = sample("a");
        let g = &mut entry.jobs[0].generations[0];
        g.variant = 2;
        g.file.as_mut().unwrap().path = "out/a-2.mp4".into();
        g.thumbnail = Some(FileLock {
            path: "out/a-2.webp".into(),
            ..g.file.clone().unwrap()
        });
        lock.shots.insert("a".into(), entry);
        Lockfile::parse(Path::new("x.lock"), lock.to_yaml()).unwrap();
    }

    #[test]
    fn a_lockfile_cut_at_any_line_is_refused_never_read_as_fewer_shots() {
        let mut lock = Lockfile::new();
        for id in ["alpha", "beta", "gamma"] {
            lock.shots.insert(id.into(), sample(id));
        }
        let text = lock.to_yaml();
        assert!(text.ends_with(FOOTER));
        Lockfile::parse(Path::new("x.lock"), text.clone()).unwrap();
        let cuts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        for &cut in &cuts[..cuts.len() - 1] {
            let short = text[..cut].to_string();
            assert!(
                Lockfile::parse(Path::new("x.lock"), short.clone()).is_err(),
                "a lockfile cut after {cut} bytes was accepted:\n{short}"
            );
        }
    }

    #[test]
    fn a_failed_write_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = Lockfile::new()
            .write(&dir.path().join("gone/s.lock"))
            .unwrap_err();
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
    }

    #[test]
    fn missing_lockfile_is_empty_and_write_only_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.lock");
        let mut lock = Lockfile::read(&p).unwrap();
        assert!(lock.shots.is_empty());
        lock.shots.insert("a".into(), sample("a"));
        assert!(lock.write(&p).unwrap());
        assert!(!lock.write(&p).unwrap());
    }
}
