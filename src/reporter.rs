//! What a render tells the user: one place, three forms.
//!
//! On a terminal, a live display (an overall bar and a line per running shot with its
//! state and elapsed time); plain lines when not a terminal or in CI; NDJSON events with
//! `--json`. Every message goes through here, so the forms never disagree. Nothing here
//! ever prints a credential: events carry ids, paths and the service's own messages.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One thing that happened during a render.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        manifest: String,
        api: String,
        endpoint: String,
        shots: usize,
        to_do: usize,
    },
    Notice {
        message: String,
    },
    Shot {
        id: String,
        action: String,
        reason: String,
    },
    JobCreated {
        id: String,
        job: String,
    },
    /// A create whose response was lost turned out to have made this job.
    JobAdopted {
        id: String,
        job: String,
    },
    JobStatus {
        id: String,
        job: String,
        status: String,
        progress: Option<u8>,
        /// Place in the service's queue (0: next), where it says (fal).
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_position: Option<u32>,
    },
    Retry {
        id: String,
        what: String,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    Downloaded {
        id: String,
        path: String,
        bytes: u64,
    },
    ShotDone {
        id: String,
        elapsed_ms: u64,
    },
    ShotFailed {
        id: String,
        message: String,
    },
    Summary(Summary),
}

/// The closing numbers of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub rendered: usize,
    pub downloaded: usize,
    pub reused: usize,
    pub skipped: usize,
    pub failed: usize,
    pub jobs_created: u64,
    pub video_seconds: u64,
    pub requests: u64,
    pub wall_ms: u64,
    pub interrupted: bool,
    /// Estimated charges of the jobs this run created (retries of lost creates included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_spend: Option<crate::cost::Money>,
    /// Jobs created whose price is unknown (not in `estimated_spend`).
    pub unknown_price_jobs: u64,
    /// Shots the cap kept from starting a job.
    pub over_budget: usize,
    /// The shared cache, when one is used (else absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSummary>,
}

/// What the shared cache did in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheSummary {
    /// Shots taken from the cache (no job created).
    pub hits: u64,
    /// Shots looked up and not found usable (rendered instead).
    pub misses: u64,
    pub pulled_bytes: u64,
    /// Entries this run published, and the bytes of the blobs it uploaded.
    pub published: u64,
    pub published_bytes: u64,
    /// `--cache-read-only`: nothing was published.
    pub read_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Plain,
    Json,
}

impl Mode {
    /// `--json` wins; otherwise a live display only on a terminal outside CI.
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

pub struct Reporter {
    mode: Mode,
    started: Instant,
    live: Option<Live>,
    out: Mutex<Box<dyn Write + Send>>,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    shots: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    pub fn new(mode: Mode) -> Reporter {
        Reporter::with_output(mode, Box::new(std::io::stdout()))
    }

    /// A reporter writing plain or JSON lines to `out` (tests capture them).
    pub fn with_output(mode: Mode, out: Box<dyn Write + Send>) -> Reporter {
        let live = (mode == Mode::Live).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} shots  {elapsed}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            overall.set_prefix("render");
            Live {
                multi,
                overall,
                shots: Mutex::new(HashMap::new()),
            }
        });
        Reporter {
            mode,
            started: Instant::now(),
            live,
            out: Mutex::new(out),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn emit(&self, event: Event) {
        match self.mode {
            Mode::Json => {
                let line = serde_json::to_string(&event).expect("events serialize");
                self.line(&line);
            }
            Mode::Plain => {
                if let Some(text) = describe(&event) {
                    self.line(&text);
                }
            }
            Mode::Live => self.live(&event),
        }
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().expect("reporter lock");
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn live(&self, event: &Event) {
        let Some(live) = &self.live else { return };
        let mut shots = live.shots.lock().expect("reporter lock");
        let spinner = |id: &str, shots: &mut HashMap<String, ProgressBar>| {
            shots
                .entry(id.to_string())
                .or_insert_with(|| {
                    let bar = live.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  {spinner} {prefix:<24} {wide_msg} {elapsed:>4}",
                        )
                        .expect("valid template"),
                    );
                    bar.set_prefix(id.to_string());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                })
                .clone()
        };
        match event {
            Event::Started { to_do, .. } => {
                live.overall.set_length(*to_do as u64);
                if let Some(text) = describe(event) {
                    live.multi.println(text).ok();
                }
            }
            Event::Shot { id, action, reason } => {
                spinner(id, &mut shots).set_message(format!("{action} ({reason}): waiting"))
            }
            Event::JobCreated { id, job } | Event::JobAdopted { id, job } => {
                spinner(id, &mut shots).set_message(format!("job {job}"))
            }
            Event::JobStatus {
                id,
                status,
                progress,
                queue_position,
                ..
            } => {
                let msg = match (progress, queue_position) {
                    (Some(p), _) => format!("{status} {p}%"),
                    (None, Some(0)) => format!("{status} (next in the queue)"),
                    (None, Some(q)) => format!("{status} ({q} ahead in the queue)"),
                    (None, None) => status.clone(),
                };
                spinner(id, &mut shots).set_message(msg);
            }
            Event::Retry {
                id, what, reason, ..
            } => spinner(id, &mut shots).set_message(format!("retrying {what}: {reason}")),
            Event::Downloaded { id, path, .. } => {
                spinner(id, &mut shots).set_message(format!("saved {path}"))
            }
            Event::ShotDone { id, .. } | Event::ShotFailed { id, .. } => {
                if let Some(bar) = shots.remove(id) {
                    bar.finish_and_clear();
                    live.multi.remove(&bar);
                }
                live.overall.inc(1);
                if let Some(text) = describe(event) {
                    live.multi.println(text).ok();
                }
            }
            Event::Summary(_) => {
                live.overall.finish_and_clear();
                drop(shots);
                if let Some(text) = describe(event) {
                    self.line(&text);
                }
            }
            Event::Notice { .. } => {
                if let Some(text) = describe(event) {
                    live.multi.println(text).ok();
                }
            }
        }
    }
}

/// The plain-text line for an event (None: not worth a line of its own).
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started {
            manifest,
            api,
            endpoint,
            shots,
            to_do,
        } => {
            format!(
                "rendering {manifest} ({api}, endpoint: {endpoint}): {to_do} of {shots} shots need work"
            )
        }
        Event::Notice { message } => format!("note: {message}"),
        Event::Shot { id, action, reason } => format!("{action:>9} {id}: {reason}"),
        Event::JobCreated { id, job } => format!("  created {id}: job {job}"),
        Event::JobAdopted { id, job } => {
            format!("  adopted {id}: job {job} (create response was lost)")
        }
        Event::JobStatus { .. } => return None,
        Event::Retry {
            id,
            what,
            attempt,
            delay_ms,
            reason,
        } => {
            format!(
                "    retry {id}: {what} attempt {attempt} in {:.1}s ({reason})",
                *delay_ms as f64 / 1000.0
            )
        }
        Event::Downloaded { id, path, bytes } => {
            format!("    saved {id}: {path} ({})", human_bytes(*bytes))
        }
        Event::ShotDone { id, elapsed_ms } => {
            format!("     done {id} in {:.1}s", *elapsed_ms as f64 / 1000.0)
        }
        Event::ShotFailed { id, message } => format!("   FAILED {id}: {message}"),
        Event::Summary(s) => {
            format!(
                "{}{} rendered, {} downloaded, {} reused, {} skipped, {} failed; {} job{} created, {} video-seconds, {} requests, {:.1}s{}",
                if s.interrupted { "interrupted: " } else { "" },
                s.rendered,
                s.downloaded,
                s.reused,
                s.skipped,
                s.failed,
                s.jobs_created,
                if s.jobs_created == 1 { "" } else { "s" },
                s.video_seconds,
                s.requests,
                s.wall_ms as f64 / 1000.0,
                spend_text(s)
            ) + &cache_text(s)
        }
    })
}

/// `; cache: 3 hits (4.1 MB pulled), 1 miss, 1 published (1.2 MB)` (empty without a cache).
fn cache_text(s: &Summary) -> String {
    let Some(c) = &s.cache else {
        return String::new();
    };
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let published = if c.read_only {
        "read-only, nothing published".to_owned()
    } else {
        format!(
            "{} published ({})",
            c.published,
            human_bytes(c.published_bytes)
        )
    };
    format!(
        "; cache: {} ({} pulled), {}, {published}",
        plural(c.hits, "hit", "hits"),
        human_bytes(c.pulled_bytes),
        plural(c.misses, "miss", "misses"),
    )
}

/// `; est. spend $1.20 (2 jobs of unknown price); the cap stopped 1 shot` (empty when
/// there is nothing to say).
fn spend_text(s: &Summary) -> String {
    let mut out = String::new();
    if let Some(m) = &s.estimated_spend {
        out.push_str(&format!("; est. spend {m}"));
    }
    if s.unknown_price_jobs > 0 {
        out.push_str(&format!(
            "{}{} job{} of unknown price",
            if s.estimated_spend.is_some() {
                " + "
            } else {
                "; "
            },
            s.unknown_price_jobs,
            if s.unknown_price_jobs == 1 { "" } else { "s" }
        ));
    }
    if s.over_budget > 0 {
        out.push_str(&format!(
            "; the cap kept {} shot{} from starting",
            s.over_budget,
            if s.over_budget == 1 { "" } else { "s" }
        ));
    }
    out
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_the_run_spent_and_why_the_cap_stopped_shots() {
        let s = Summary {
            rendered: 2,
            failed: 1,
            jobs_created: 3,
            estimated_spend: Some(crate::cost::Money::new(1.2, "USD")),
            unknown_price_jobs: 1,
            over_budget: 1,
            ..Summary::default()
        };
        let line = describe(&Event::Summary(s)).unwrap();
        assert!(
            line.ends_with(
                "; est. spend $1.20 + 1 job of unknown price; the cap kept 1 shot from starting"
            ),
            "{line}"
        );
        let line = describe(&Event::Summary(Summary::default())).unwrap();
        assert!(!line.contains("spend") && !line.contains("cap"), "{line}");
    }
}
