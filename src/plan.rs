//! The plan: for each shot, what `render` must do and why. Offline, like `make -n`.
//!
//! A shot is fresh when its lockfile entry has the same input hash, was rendered by a
//! compatible endpoint, and every recorded file is on disk unchanged (size and mtime as the
//! fast path; full sha256 with `verify`). Otherwise the plan says the cheapest way back:
//! resume a job still alive, download from a finished job that has not expired, or render.
//! Planning never writes anything and never makes a request.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache_key::hex;
use crate::limits::Api;
use crate::lockfile::{FileLock, JobLock, JobState, Lockfile, ShotLock};
use crate::manifest::Storyboard;
use crate::render_inputs::RenderInputs;
use crate::shot::Shot;

/// The endpoint name the lockfile records for the built-in emulator.
pub const LOCAL_ENDPOINT: &str = "local";

/// What to do with one shot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Up to date: nothing to do.
    Fresh,
    /// Create new job(s).
    Render,
    /// A recorded job has not finished: poll it, then download.
    Resume,
    /// The recorded job finished and has not expired, but files are missing or changed.
    Download,
    /// The shot was renamed: its inputs and files are recorded under its old id. The
    /// files are moved to the new names; nothing is requested.
    Reuse,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Fresh => "fresh",
            Action::Render => "render",
            Action::Resume => "resume",
            Action::Download => "download",
            Action::Reuse => "reuse",
        }
    }
}

/// Why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    UpToDate,
    New,
    Forced,
    /// The render inputs differ from the recorded ones; `fields` names which.
    InputsChanged {
        fields: Vec<String>,
    },
    OutputMissing {
        path: String,
    },
    OutputModified {
        path: String,
    },
    /// Files are gone and the service has deleted the job.
    Expired {
        path: String,
    },
    JobFailed {
        message: String,
    },
    JobPending {
        jobs: Vec<String>,
    },
    /// Only some of a shot's variant jobs were created before an interruption.
    Incomplete {
        created: usize,
        expected: usize,
    },
    /// Rendered by the built-in emulator; the target is a real service.
    Placeholder,
    /// Same inputs as `from`, a shot id no longer in the manifest.
    Renamed {
        from: String,
    },
    /// Up to date at `path`, outside the current output folder.
    Moved {
        path: String,
    },
    /// It starts from a frame of `shot`, which this run renders first.
    Upstream {
        shot: String,
    },
    /// It starts from a frame of `shot` (take `take`), which is not rendered, and the
    /// run was asked not to render it (`--no-deps`).
    UpstreamMissing {
        shot: String,
        take: u32,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::UpToDate => f.write_str("up to date"),
            Reason::New => f.write_str("new shot"),
            Reason::Forced => f.write_str("forced"),
            // "upstream `a` changed" says it all; other changes are named after "changed:".
            Reason::InputsChanged { fields } => {
                let (upstream, own): (Vec<&String>, Vec<&String>) =
                    fields.iter().partition(|f| f.starts_with("upstream `"));
                let mut parts: Vec<String> = upstream.into_iter().cloned().collect();
                if !own.is_empty() {
                    parts.insert(
                        0,
                        format!(
                            "changed: {}",
                            own.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                f.write_str(&parts.join("; "))
            }
            Reason::OutputMissing { path } => write!(f, "missing `{path}`"),
            Reason::OutputModified { path } => write!(f, "modified on disk: `{path}`"),
            Reason::Expired { path } => write!(f, "missing `{path}` and its job expired"),
            Reason::JobFailed { message } => write!(f, "last job failed: {message}"),
            Reason::JobPending { jobs } => write!(f, "job {} not finished", jobs.join(", ")),
            Reason::Incomplete { created, expected } => {
                write!(f, "{created} of {expected} variant jobs created")
            }
            Reason::Moved { path } => write!(f, "`output` changed: moving `{path}`"),
            Reason::Renamed { from } => write!(f, "renamed from `{from}`: its files are reused"),
            Reason::Upstream { shot } => write!(f, "upstream `{shot}` changed"),
            Reason::UpstreamMissing { shot, take } => {
                write!(
                    f,
                    "needs a frame of `{shot}` (take {take}), which is not rendered"
                )
            }
            Reason::Placeholder => {
                f.write_str("placeholder from the emulator; target is a real service")
            }
        }
    }
}

/// The plan for one shot.
#[derive(Clone, Debug, Serialize)]
pub struct ShotPlan {
    pub id: String,
    pub action: Action,
    pub reason: Reason,
    #[serde(skip)]
    pub shot: Shot,
    /// `None` until the shots it starts from are rendered (see `after`).
    pub input_hash: Option<String>,
    /// The render inputs, when known (as `input_hash`).
    #[serde(skip)]
    pub inputs: Option<RenderInputs>,
    /// The shots this one waits for in this run: it starts from their frames.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// New jobs this shot needs (0 unless rendering).
    pub jobs_to_create: u32,
    /// Video-seconds to generate (0 unless rendering).
    pub video_seconds: u64,
    /// The estimated charge of what this shot would create (0 when nothing); `None`:
    /// the model's price is unknown.
    pub estimated_cost: Option<f64>,
    /// What rendering the whole shot costs (for fresh shots: what they are worth).
    pub full_cost: Option<f64>,
    /// What the shared cache holds for it, when it was looked up (see [`mark_cache`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
    /// No job of the shot's recorded entry is alive or half created: the cache may
    /// stand in for it without leaving a job nobody follows (see [`ShotPlan::cache_eligible`]).
    #[serde(skip)]
    pub nothing_in_flight: bool,
}

/// What the shared cache holds for a shot to render.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CacheStatus {
    /// An entry with every blob: taken instead of creating jobs.
    Hit {
        #[serde(skip)]
        entry: Box<crate::cache::Entry>,
    },
    /// Nothing usable, and why (`not in the cache`, a refused entry, an unreachable cache).
    Miss { reason: String },
}

impl ShotPlan {
    /// Whether the cache may stand in for this shot's jobs: it is to be rendered from
    /// known inputs, whole (not forced, no job of it alive or half made).
    pub fn cache_eligible(&self) -> bool {
        self.action == Action::Render
            && self.input_hash.is_some()
            && self.nothing_in_flight
            && !matches!(
                self.reason,
                Reason::Forced | Reason::Incomplete { .. } | Reason::UpstreamMissing { .. }
            )
    }
}

/// Marks what the cache holds for the shots `found` names: a hit creates no job and
/// costs nothing; the totals follow.
pub fn mark_cache(plan: &mut Plan, found: &HashMap<String, CacheStatus>) {
    let totals = &mut plan.totals;
    for sp in &mut plan.shots {
        let Some(status) = found.get(&sp.id) else {
            continue;
        };
        if matches!(status, CacheStatus::Hit { .. }) {
            totals.jobs_to_create -= u64::from(sp.jobs_to_create);
            totals.video_seconds -= sp.video_seconds;
            match sp.estimated_cost {
                Some(e) => totals.estimated_cost -= e,
                None => totals.unknown_price.retain(|id| *id != sp.id),
            }
            totals.cache_hits += 1;
            sp.jobs_to_create = 0;
            sp.video_seconds = 0;
            sp.estimated_cost = sp.estimated_cost.map(|_| 0.0);
        } else {
            totals.cache_misses += 1;
        }
        sp.cache = Some(status.clone());
    }
    totals.estimated_cost = totals.estimated_cost.max(0.0);
}

/// The whole plan.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub api: Api,
    pub endpoint: String,
    pub shots: Vec<ShotPlan>,
    pub totals: Totals,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub shots: usize,
    pub fresh: usize,
    pub render: usize,
    pub resume: usize,
    pub download: usize,
    pub reuse: usize,
    pub jobs_to_create: u64,
    pub video_seconds: u64,
    /// The currency of the estimates (the models' prices'), when any is known.
    pub currency: Option<String>,
    /// Estimated charge of every job to create, over the shots whose price is known.
    pub estimated_cost: f64,
    /// What the fresh shots cost to render (already paid for).
    pub fresh_cost: f64,
    /// Shots with something to create whose price is unknown.
    pub unknown_price: Vec<String>,
    /// Fresh shots whose price is unknown (not in `fresh_cost`).
    pub fresh_unknown_price: usize,
    /// Shots to render that the shared cache has, and that it has not (when looked up).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_hits: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_misses: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What to plan for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `local` or the service host: a placeholder is never fresh for a real endpoint.
    pub endpoint: String,
    /// Hash every recorded file instead of trusting size and mtime.
    pub verify: bool,
    /// Re-render the selected shots whatever their state.
    pub force: bool,
    /// Only these shot ids (all when empty).
    pub only: Vec<String>,
    /// Only shots with any of these tags (all when empty).
    pub tags: Vec<String>,
    /// The time that decides expiry (now, except in tests).
    pub now: Option<Timestamp>,
    /// Only the selected shots, never the stale shots whose frames they start from; a
    /// frame of those is taken from what is on disk, or the shot cannot render.
    pub no_deps: bool,
}

/// One shot decided: what to do, why, its inputs when known, the shots it waits for.
type Decided = (Action, Reason, Option<RenderInputs>, Vec<String>);

/// Decides what to do for each selected shot.
pub fn plan(storyboard: &Storyboard, lock: &Lockfile, options: &Options) -> Plan {
    // The built-in emulator lives only as long as one render: every job it made is
    // gone by the next run, so nothing recorded can be resumed or downloaded again.
    let now = if options.endpoint == LOCAL_ENDPOINT {
        Timestamp::MAX
    } else {
        options.now.unwrap_or_else(Timestamp::now)
    };
    let limits = storyboard.limits();
    // Entries of ids the manifest no longer has, by input hash: a renamed shot finds its
    // old render here instead of paying for a new one.
    let current: HashSet<&str> = storyboard.shots.iter().map(|s| s.id.as_str()).collect();
    let mut orphans: HashMap<&str, (&str, &ShotLock)> = lock
        .shots
        .iter()
        .filter(|(id, _)| !current.contains(id.as_str()))
        .map(|(id, entry)| (entry.input_hash.as_str(), (id.as_str(), entry)))
        .collect();
    // Every shot is decided, the shots a shot starts from before it, so that it knows
    // what becomes of them; the plan holds the selected ones and (unless `no_deps`) the
    // stale shots they start from, in manifest order.
    let mut decided: HashMap<&str, Decided> = HashMap::new();
    for shot in storyboard.render_order() {
        // `--force` is for the shots asked for, not the stale ones they start from.
        let force = options.force && selected(shot, options);
        let found = |frame: &crate::shot::FrameRef| {
            let up = decided.get(frame.shot.as_str())?;
            let on_disk = options.no_deps || matches!(up.0, Action::Fresh | Action::Download);
            on_disk
                .then(|| lock.shots.get(&frame.shot)?.video_of(frame.take))
                .flatten()
                .map(|f| f.sha256.clone())
        };
        let resolved = RenderInputs::resolve(storyboard.api, shot, found);
        let after: Vec<String> = shot
            .upstream()
            .into_iter()
            .filter(|up| decided.get(up).is_some_and(|d| d.0 != Action::Fresh))
            .map(str::to_owned)
            .collect();
        let entry = lock.shots.get(&shot.id);
        let (action, reason, inputs) = match resolved {
            Err(frame) if options.no_deps => (
                Action::Render,
                Reason::UpstreamMissing {
                    shot: frame.shot,
                    take: frame.take,
                },
                None,
            ),
            Err(_) if force => (Action::Render, Reason::Forced, None),
            Err(_) if entry.is_none() => (Action::Render, Reason::New, None),
            Err(frame) => (Action::Render, Reason::Upstream { shot: frame.shot }, None),
            Ok(inputs) => {
                let input_hash = inputs.hash();
                let (action, reason) = match (force, entry) {
                    (true, _) => (Action::Render, Reason::Forced),
                    (false, None) => match orphans.get(input_hash.as_str()) {
                        Some(&(from, entry))
                            if matches!(
                                decide(storyboard, shot, &inputs, &input_hash, entry, options, now)
                                    .0,
                                Action::Fresh | Action::Reuse
                            ) =>
                        {
                            orphans.remove(input_hash.as_str());
                            (
                                Action::Reuse,
                                Reason::Renamed {
                                    from: from.to_string(),
                                },
                            )
                        }
                        _ => (Action::Render, Reason::New),
                    },
                    (false, Some(entry)) => {
                        decide(storyboard, shot, &inputs, &input_hash, entry, options, now)
                    }
                };
                (action, reason, Some(inputs))
            }
        };
        // Only a shot that creates a job waits: one with a job already (to resume or to
        // download) goes on at once, whatever becomes of the shots upstream.
        let after = if action == Action::Render {
            after
        } else {
            Vec::new()
        };
        decided.insert(&shot.id, (action, reason, inputs, after));
    }
    let mut wanted: HashSet<&str> = storyboard
        .shots
        .iter()
        .filter(|s| selected(s, options))
        .map(|s| s.id.as_str())
        .collect();
    if !options.no_deps {
        // What a wanted shot waits for is wanted too, back to fresh shots (like make).
        for shot in storyboard.render_order().into_iter().rev() {
            if wanted.contains(shot.id.as_str()) {
                for up in &decided[shot.id.as_str()].3 {
                    if let Some(up) = storyboard.shot(up) {
                        wanted.insert(&up.id);
                    }
                }
            }
        }
    }
    let mut shots = Vec::new();
    let mut totals = Totals::default();
    for shot in storyboard
        .shots
        .iter()
        .filter(|s| wanted.contains(s.id.as_str()))
    {
        let (action, reason, inputs, after) = decided
            .remove(shot.id.as_str())
            .expect("every shot is decided");
        let after = if options.no_deps { Vec::new() } else { after };
        let input_hash = inputs.as_ref().map(RenderInputs::hash);
        let per_job = limits.variants_per_job;
        let (jobs_to_create, video_seconds) = match (action, lock.shots.get(&shot.id)) {
            (Action::Render, _) => (
                if per_job { 1 } else { shot.variants },
                shot.video_seconds(),
            ),
            (Action::Resume, Some(entry)) => {
                let n = variants_to_create(per_job, shot, entry).len() as u32;
                let seconds = if per_job {
                    u64::from(n) * shot.video_seconds()
                } else {
                    u64::from(n * shot.seconds)
                };
                (n, seconds)
            }
            _ => (0, 0),
        };
        totals.shots += 1;
        match action {
            Action::Fresh => totals.fresh += 1,
            Action::Render => totals.render += 1,
            Action::Resume => totals.resume += 1,
            Action::Download => totals.download += 1,
            Action::Reuse => totals.reuse += 1,
        }
        totals.jobs_to_create += u64::from(jobs_to_create);
        totals.video_seconds += video_seconds;
        // Amounts in a second currency are not added to the first: such a shot counts
        // as of unknown price (so a cap refuses it unless unknown prices are allowed).
        let price = crate::cost::rate(&storyboard.catalogue, storyboard.api, shot)
            .filter(|r| totals.currency.as_ref().is_none_or(|c| *c == r.currency));
        let estimated_cost = price.as_ref().map(|r| r.amount * video_seconds as f64);
        let full_cost = price
            .as_ref()
            .map(|r| r.amount * shot.video_seconds() as f64);
        if let Some(r) = &price {
            totals.currency.get_or_insert_with(|| r.currency.clone());
        }
        match (action, estimated_cost, full_cost) {
            (Action::Fresh, _, Some(full)) => totals.fresh_cost += full,
            (Action::Fresh, _, None) => totals.fresh_unknown_price += 1,
            (_, Some(e), _) => totals.estimated_cost += e,
            (_, None, _) if jobs_to_create > 0 => totals.unknown_price.push(shot.id.clone()),
            _ => {}
        }
        shots.push(ShotPlan {
            id: shot.id.clone(),
            action,
            reason,
            shot: shot.clone(),
            input_hash,
            inputs,
            after,
            jobs_to_create,
            video_seconds,
            estimated_cost,
            full_cost,
            cache: None,
            nothing_in_flight: lock.shots.get(&shot.id).is_none_or(|e| {
                e.creating.is_empty() && !e.jobs.iter().any(|j| j.status.is_alive())
            }),
        });
    }
    Plan {
        api: storyboard.api,
        endpoint: options.endpoint.clone(),
        shots,
        totals,
    }
}

/// Variants a resumed shot must create a job for: with one job for all variants, none
/// once a job exists; with one job per variant, those without a live or succeeded job.
pub fn variants_to_create(per_job: bool, shot: &Shot, entry: &ShotLock) -> Vec<u32> {
    match (per_job, entry.jobs.is_empty()) {
        (true, true) => vec![1],
        (true, false) => Vec::new(),
        (false, _) => entry.variants_without_job(shot.variants),
    }
}

fn selected(shot: &Shot, options: &Options) -> bool {
    (options.only.is_empty() || options.only.contains(&shot.id))
        && (options.tags.is_empty() || shot.tags.iter().any(|t| options.tags.contains(t)))
}

fn decide(
    sb: &Storyboard,
    shot: &Shot,
    inputs: &RenderInputs,
    input_hash: &str,
    entry: &ShotLock,
    options: &Options,
    now: Timestamp,
) -> (Action, Reason) {
    if entry.input_hash != input_hash || entry.api != sb.api {
        return (
            Action::Render,
            Reason::InputsChanged {
                fields: changed_fields(sb.api, shot, inputs, entry),
            },
        );
    }
    if entry.endpoint == LOCAL_ENDPOINT && options.endpoint != LOCAL_ENDPOINT {
        return (Action::Render, Reason::Placeholder);
    }
    let per_job = sb.limits().variants_per_job;
    let failure = |job: &JobLock| {
        job.failure.as_ref().map_or_else(
            || format!("{:?}", job.status).to_lowercase(),
            |f| f.message.clone(),
        )
    };
    // One job for all variants: a failed job means rendering the shot again.
    if per_job
        && let Some(job) = entry
            .jobs
            .iter()
            .find(|j| !matches!(j.status, JobState::Pending | JobState::Succeeded))
    {
        return (
            Action::Render,
            Reason::JobFailed {
                message: failure(job),
            },
        );
    }
    let pending: Vec<String> = entry
        .jobs
        .iter()
        .filter(|j| j.status.is_alive())
        .map(|j| j.id.clone())
        .collect();
    if !pending.is_empty() {
        let expired = entry
            .jobs
            .iter()
            .any(|j| j.status.is_alive() && expiry(j, sb) <= now);
        if expired {
            return (
                Action::Render,
                Reason::Expired {
                    path: "(pending job)".into(),
                },
            );
        }
        return (Action::Resume, Reason::JobPending { jobs: pending });
    }
    // One job per variant: only the variants without a job are created again.
    let missing = variants_to_create(per_job, shot, entry);
    if !missing.is_empty() {
        let failed = entry
            .jobs
            .iter()
            .rev()
            .find(|j| missing.contains(&j.variant) && !j.status.is_alive());
        let reason = match failed {
            Some(job) if job.status != JobState::Succeeded => Reason::JobFailed {
                message: failure(job),
            },
            _ => Reason::Incomplete {
                created: shot.variants as usize - missing.len(),
                expected: shot.variants as usize,
            },
        };
        return (Action::Resume, reason);
    }
    // Every job succeeded: check every variant's file. A shot taken from a shared cache
    // has no job of this board's to download from: a file gone means taking it again.
    let expiry = |job: &JobLock, sb: &Storyboard| {
        if entry.from_cache() {
            Timestamp::MIN
        } else {
            expiry(job, sb)
        }
    };
    for variant in 1..=shot.variants {
        let found = entry.generations().find(|(_, g)| g.variant == variant);
        let Some((job, generation)) = found else {
            return (
                Action::Render,
                Reason::OutputMissing {
                    path: shot.video_file_name(variant),
                },
            );
        };
        let Some(file) = &generation.file else {
            return download_or_render(
                Some(expiry(job, sb)),
                now,
                shot.video_file_name(variant),
                false,
            );
        };
        match check_file(&sb.dir, file, options.verify) {
            FileState::Unchanged => {}
            FileState::Missing => {
                return download_or_render(Some(expiry(job, sb)), now, file.path.clone(), false);
            }
            FileState::Modified => {
                return download_or_render(Some(expiry(job, sb)), now, file.path.clone(), true);
            }
        }
    }
    // Up to date, but recorded under another output folder (`output:` changed).
    let expected = |name: String| crate::board_path::rel_string(&sb.output.join(name));
    if let Some(f) = entry.generations().find_map(|(_, g)| {
        g.file
            .as_ref()
            .filter(|f| f.path != expected(shot.video_file_name(g.variant)))
    }) {
        return (
            Action::Reuse,
            Reason::Moved {
                path: f.path.clone(),
            },
        );
    }
    (Action::Fresh, Reason::UpToDate)
}

/// When a job and its videos are gone: as the service said, else its documented
/// retention after creation.
fn expiry(job: &JobLock, sb: &Storyboard) -> Timestamp {
    job.expires_at.unwrap_or_else(|| {
        let retention = jiff::SignedDuration::from_secs(sb.limits().retention_seconds as i64);
        job.created_at
            .checked_add(retention)
            .unwrap_or(Timestamp::MAX)
    })
}

/// A file missing or modified: downloaded again from its job while the job lives, else
/// rendered (or taken from the cache again when the shot came from one: its jobs are
/// someone else's).
fn download_or_render(
    expires_at: Option<Timestamp>,
    now: Timestamp,
    path: String,
    modified: bool,
) -> (Action, Reason) {
    match expires_at {
        Some(e) if e > now => {
            let reason = if modified {
                Reason::OutputModified { path }
            } else {
                Reason::OutputMissing { path }
            };
            (Action::Download, reason)
        }
        _ if modified => (Action::Render, Reason::OutputModified { path }),
        Some(e) if e == Timestamp::MIN => (Action::Render, Reason::OutputMissing { path }),
        _ => (Action::Render, Reason::Expired { path }),
    }
}

/// Which recorded inputs differ, by name: from the recorded inputs, or (a lockfile of
/// shotlist 0.1) from the request body it recorded.
fn changed_fields(api: Api, shot: &Shot, inputs: &RenderInputs, entry: &ShotLock) -> Vec<String> {
    if let Some(recorded) = &entry.inputs {
        let mut fields = inputs.changes_from(recorded);
        if fields.is_empty() {
            fields.push("render inputs".into());
        }
        return fields;
    }
    let mut fields = Vec::new();
    if entry.api != api {
        fields.push("api".to_string());
    }
    if entry.model != shot.model {
        fields.push("model".into());
    }
    let r = &entry.request;
    let str_of = |k: &str| r.get(k).and_then(|v| v.as_str().map(str::to_string));
    let num_of = |k: &str| {
        r.get(k).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    if str_of("prompt").is_some_and(|p| p != shot.prompt) {
        fields.push("prompt".into());
    }
    let recorded_size = match (num_of("width"), num_of("height"), str_of("size")) {
        (Some(w), Some(h), _) => Some(format!("{w}x{h}")),
        (_, _, s) => s,
    };
    if recorded_size.is_some_and(|s| s != shot.size.to_string()) {
        fields.push("size".into());
    }
    if num_of("n_seconds")
        .or_else(|| num_of("seconds"))
        .is_some_and(|s| s != u64::from(shot.seconds))
    {
        fields.push("seconds".into());
    }
    let recorded_variants = match api {
        Api::AzureJobs => num_of("n_variants"),
        // Revision-0 lockfiles come from the two Sora APIs only; any other is one job a take.
        Api::OpenaiVideos | Api::Fal | Api::Replicate | Api::Openrouter => {
            Some(entry.jobs.len() as u64).filter(|n| *n > 0)
        }
    };
    if recorded_variants.is_some_and(|v| v != u64::from(shot.variants)) {
        fields.push("variants".into());
    }
    if fields.is_empty() {
        fields.push("render inputs".into());
    }
    fields
}

/// What the disk says about a recorded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    Unchanged,
    Missing,
    Modified,
}

/// Compares a file with its record: size, then mtime; sha256 when `verify` or mtime moved.
pub fn check_file(dir: &Path, file: &FileLock, verify: bool) -> FileState {
    // A recorded file reached through a symlink is not ours to trust (or to move).
    let Ok(path) = crate::board_path::resolve_owned(dir, &file.path) else {
        return FileState::Missing;
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return FileState::Missing;
    };
    if !meta.is_file() {
        return FileState::Missing;
    }
    if meta.len() != file.bytes {
        return FileState::Modified;
    }
    if !verify && file.mtime_ns.is_some() && file.mtime_ns == mtime_ns(&meta) {
        return FileState::Unchanged;
    }
    match sha256_file(&path) {
        Ok(h) if h == file.sha256 => FileState::Unchanged,
        Ok(_) => FileState::Modified,
        Err(_) => FileState::Missing,
    }
}

/// Modification time in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> Option<i128> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_nanos() as i128)
}

/// Lowercase hex sha256 of a file, read in chunks (memory stays flat).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::{GenerationLock, JobLock};
    use crate::manifest;

    const SRC: &str = "version: 1\ndefaults:\n  size: 480x480\nshots:\n  - id: a\n    prompt: A cat.\n  - id: b\n    prompt: A dog.\n    tags: [dog]\n";

    fn setup() -> (tempfile::TempDir, Storyboard) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shotlist.yaml");
        std::fs::write(&path, SRC).unwrap();
        let sb = manifest::load(&path).unwrap();
        (dir, sb)
    }

    fn rendered(sb: &Storyboard, shot: &Shot, expires: i64) -> ShotLock {
        let rel = format!("renders/{}.mp4", shot.id);
        let abs = sb.dir.join(&rel);
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        std::fs::write(&abs, shot.id.as_bytes()).unwrap();
        let meta = std::fs::metadata(&abs).unwrap();
        ShotLock {
            input_hash: crate::cache_key::input_hash(sb.api, shot),
            api: sb.api,
            endpoint: SERVICE.into(),
            model: shot.model.clone(),
            inputs: Some(crate::render_inputs::RenderInputs::of(sb.api, shot)),
            request: serde_json::Value::Null,
            jobs: vec![JobLock {
                estimated_cost: None,
                run: None,
                id: format!("task_{}", shot.id),
                variant: 0,
                status: JobState::Succeeded,
                service_status: None,
                created_at: Timestamp::from_second(1000).unwrap(),
                finished_at: None,
                expires_at: Some(Timestamp::from_second(expires).unwrap()),
                failure: None,
                generations: vec![GenerationLock {
                    id: "gen".into(),
                    variant: 1,
                    file: Some(FileLock {
                        path: rel,
                        sha256: sha256_file(&abs).unwrap(),
                        bytes: meta.len(),
                        mtime_ns: mtime_ns(&meta),
                    }),
                    thumbnail: None,
                }],
            }],
            creating: Default::default(),
            source: None,
        }
    }

    const SERVICE: &str = "res.openai.azure.com";

    fn opts(now: i64) -> Options {
        Options {
            endpoint: SERVICE.into(),
            now: Some(Timestamp::from_second(now).unwrap()),
            ..Options::default()
        }
    }

    #[test]
    fn new_then_fresh_then_changed() {
        let (_d, sb) = setup();
        let mut lock = Lockfile::new();
        let p = plan(&sb, &lock, &opts(2000));
        assert!(
            p.shots
                .iter()
                .all(|s| s.action == Action::Render && s.reason == Reason::New)
        );
        assert_eq!((p.totals.jobs_to_create, p.totals.video_seconds), (2, 10));

        for shot in &sb.shots {
            lock.shots
                .insert(shot.id.clone(), rendered(&sb, shot, 5000));
        }
        let p = plan(&sb, &lock, &opts(2000));
        assert!(
            p.shots.iter().all(|s| s.action == Action::Fresh),
            "{:?}",
            p.shots
        );
        assert_eq!(p.totals.jobs_to_create, 0);

        let mut changed = sb.clone();
        changed.shots[1].prompt = "A wolf.".into();
        changed.shots[1].seconds = 7;
        let p = plan(&changed, &lock, &opts(2000));
        assert_eq!(p.shots[0].action, Action::Fresh);
        assert_eq!(
            p.shots[1].reason,
            Reason::InputsChanged {
                fields: vec!["prompt".into(), "seconds".into()]
            }
        );
    }

    #[test]
    fn missing_or_edited_outputs_download_until_expiry() {
        let (_d, sb) = setup();
        let mut lock = Lockfile::new();
        for shot in &sb.shots {
            lock.shots
                .insert(shot.id.clone(), rendered(&sb, shot, 5000));
        }
        std::fs::remove_file(sb.dir.join("renders/a.mp4")).unwrap();
        std::fs::write(sb.dir.join("renders/b.mp4"), b"B").unwrap(); // same size, new content
        let p = plan(&sb, &lock, &opts(2000));
        assert_eq!(p.shots[0].action, Action::Download);
        assert_eq!(p.shots[1].action, Action::Download);
        assert_eq!(
            p.shots[1].reason,
            Reason::OutputModified {
                path: "renders/b.mp4".into()
            }
        );
        let p = plan(&sb, &lock, &opts(6000));
        assert_eq!(p.shots[0].action, Action::Render);
        assert_eq!(
            p.shots[0].reason,
            Reason::Expired {
                path: "renders/a.mp4".into()
            }
        );
    }

    #[test]
    fn pending_jobs_resume_and_placeholders_are_not_fresh_for_real_endpoints() {
        let (_d, sb) = setup();
        let mut lock = Lockfile::new();
        for shot in &sb.shots {
            lock.shots
                .insert(shot.id.clone(), rendered(&sb, shot, 5000));
        }
        lock.shots.get_mut("a").unwrap().jobs[0].status = JobState::Pending;
        let p = plan(&sb, &lock, &opts(2000));
        assert_eq!(p.shots[0].action, Action::Resume);
        assert_eq!(p.shots[1].action, Action::Fresh);
        lock.shots.get_mut("b").unwrap().endpoint = LOCAL_ENDPOINT.into();
        let p = plan(&sb, &lock, &opts(2000));
        assert_eq!(p.shots[1].reason, Reason::Placeholder);
    }

    #[test]
    fn the_built_in_emulator_keeps_no_jobs_between_runs() {
        let (_d, sb) = setup();
        let mut lock = Lockfile::new();
        for shot in &sb.shots {
            let mut entry = rendered(&sb, shot, 5000);
            entry.endpoint = LOCAL_ENDPOINT.into();
            lock.shots.insert(shot.id.clone(), entry);
        }
        let local = Options {
            endpoint: LOCAL_ENDPOINT.into(),
            ..opts(2000)
        };
        assert!(
            plan(&sb, &lock, &local)
                .shots
                .iter()
                .all(|s| s.action == Action::Fresh)
        );
        lock.shots.get_mut("a").unwrap().jobs[0].status = JobState::Pending;
        std::fs::remove_file(sb.dir.join("renders/b.mp4")).unwrap();
        let p = plan(&sb, &lock, &local);
        assert_eq!(p.shots[0].action, Action::Render);
        assert_eq!(p.shots[1].action, Action::Render);
    }

    #[test]
    fn a_renamed_shot_reuses_its_old_render() {
        let (_d, sb) = setup();
        let mut lock = Lockfile::new();
        for shot in &sb.shots {
            lock.shots
                .insert(shot.id.clone(), rendered(&sb, shot, 5000));
        }
        let mut renamed = sb.clone();
        renamed.shots[0].id = "cat".into();
        let p = plan(&renamed, &lock, &opts(2000));
        assert_eq!(p.shots[0].action, Action::Reuse);
        assert_eq!(p.shots[0].reason, Reason::Renamed { from: "a".into() });
        assert_eq!(p.totals.jobs_to_create, 0);
        // Changing `output` moves the files.
        let mut moved = sb.clone();
        moved.output = "videos".into();
        let p = plan(&moved, &lock, &opts(2000));
        assert_eq!(p.shots[1].action, Action::Reuse);
        assert_eq!(
            p.shots[1].reason,
            Reason::Moved {
                path: "renders/b.mp4".into()
            }
        );
        // Not when the old files are gone.
        std::fs::remove_file(sb.dir.join("renders/a.mp4")).unwrap();
        let p = plan(&renamed, &lock, &opts(2000));
        assert_eq!(p.shots[0].reason, Reason::New);
    }

    #[test]
    fn selection_by_id_and_tag() {
        let (_d, sb) = setup();
        let lock = Lockfile::new();
        let p = plan(
            &sb,
            &lock,
            &Options {
                tags: vec!["dog".into()],
                ..opts(0)
            },
        );
        assert_eq!(
            p.shots.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let p = plan(
            &sb,
            &lock,
            &Options {
                only: vec!["a".into()],
                force: true,
                ..opts(0)
            },
        );
        assert_eq!(p.shots[0].reason, Reason::Forced);
    }
}
