//! Fault injection: the `--faults` spec and the seeded dice that apply it.
//!
//! A spec is a comma-separated list of `KIND=PROBABILITY` (`429=0.1,500=0.05,drop=0.02`),
//! plus `slow-ms=N` for the delay of `slow`. Decisions come from one
//! `fastrand::Rng::with_seed(seed)`, drawn a fixed number of times per request, so the
//! same seed and the same request sequence give the same faults. This module decides;
//! it never touches a request or a response itself, and never applies to `/_emulator/*`
//! (the router keeps those routes out of its reach).

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// Probabilities of each fault kind, each in `0..=1`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// Answer 429 (with `Retry-After`) instead of handling the request.
    pub p_429: f64,
    /// Answer 500 instead of handling the request.
    pub p_500: f64,
    /// Answer 503 instead of handling the request.
    pub p_503: f64,
    /// Handle the request, then close the connection partway through the response body.
    pub p_drop: f64,
    /// Handle the request, then wait `slow_delay` (real time) before answering.
    pub p_slow: f64,
    /// Content downloads only: announce the full `content-length`, then stop early.
    pub p_truncate: f64,
    /// Creates only: the job fails with `internal_error`.
    pub p_fail: f64,
    /// Creates only: the job fails moderation (`input_moderation` / `moderation_blocked`).
    pub p_moderation: f64,
    /// OpenRouter creates only: refused with 402 (out of credits), no job made.
    pub p_402: f64,
    /// Delay of a `slow` response, in real time.
    pub slow_delay: Duration,
}

impl Default for FaultSpec {
    fn default() -> FaultSpec {
        FaultSpec {
            p_429: 0.0,
            p_500: 0.0,
            p_503: 0.0,
            p_drop: 0.0,
            p_slow: 0.0,
            p_truncate: 0.0,
            p_fail: 0.0,
            p_moderation: 0.0,
            p_402: 0.0,
            slow_delay: Duration::from_secs(2),
        }
    }
}

impl FaultSpec {
    /// No faults at all.
    pub fn none() -> FaultSpec {
        FaultSpec::default()
    }

    fn request_kinds(&self) -> [(f64, RequestFault); 5] {
        [
            (self.p_429, RequestFault::Status(429)),
            (self.p_500, RequestFault::Status(500)),
            (self.p_503, RequestFault::Status(503)),
            (self.p_drop, RequestFault::Drop),
            (self.p_slow, RequestFault::Slow(self.slow_delay)),
        ]
    }
}

/// Why a `--faults` spec was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FaultSpecError {
    #[error("failed to parse the fault `{0}`: expected `KIND=PROBABILITY`")]
    #[diagnostic(help("write e.g. `429=0.1,500=0.05,drop=0.02`"))]
    NotAPair(String),
    #[error("unknown fault kind `{0}`")]
    #[diagnostic(help(
        "known kinds: `429`, `500`, `503`, `drop`, `slow`, `truncate`, `fail`, `moderation`, `402` (and `slow-ms=N`)"
    ))]
    UnknownKind(String),
    #[error("invalid probability `{value}` for `{kind}`")]
    #[diagnostic(help("a probability is a number from 0 to 1, e.g. `0.05`"))]
    BadProbability { kind: String, value: String },
    #[error("invalid delay `{0}` for `slow-ms`")]
    #[diagnostic(help("`slow-ms` is a whole number of milliseconds, e.g. `slow-ms=1500`"))]
    BadDelay(String),
    #[error("the probabilities of {group} add up to {sum}, more than 1")]
    #[diagnostic(help("at most one of these faults applies to one request: lower them"))]
    SumAboveOne { group: &'static str, sum: f64 },
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut spec = FaultSpec::none();
        for item in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (kind, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| FaultSpecError::NotAPair(item.to_owned()))?;
            if kind == "slow-ms" {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| FaultSpecError::BadDelay(value.to_owned()))?;
                spec.slow_delay = Duration::from_millis(ms);
                continue;
            }
            let slot = match kind {
                "429" => &mut spec.p_429,
                "500" => &mut spec.p_500,
                "503" => &mut spec.p_503,
                "drop" => &mut spec.p_drop,
                "slow" => &mut spec.p_slow,
                "truncate" => &mut spec.p_truncate,
                "fail" => &mut spec.p_fail,
                "moderation" => &mut spec.p_moderation,
                "402" => &mut spec.p_402,
                _ => return Err(FaultSpecError::UnknownKind(kind.to_owned())),
            };
            let p: f64 = value
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| FaultSpecError::BadProbability {
                    kind: kind.to_owned(),
                    value: value.to_owned(),
                })?;
            *slot = p;
        }
        let request_sum: f64 = spec.request_kinds().iter().map(|(p, _)| p).sum();
        if request_sum > 1.0 + 1e-9 {
            return Err(FaultSpecError::SumAboveOne {
                group: "`429`, `500`, `503`, `drop` and `slow`",
                sum: request_sum,
            });
        }
        let job_sum = spec.p_fail + spec.p_moderation;
        if job_sum > 1.0 + 1e-9 {
            return Err(FaultSpecError::SumAboveOne {
                group: "`fail` and `moderation`",
                sum: job_sum,
            });
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = [
            ("429", self.p_429),
            ("500", self.p_500),
            ("503", self.p_503),
            ("drop", self.p_drop),
            ("slow", self.p_slow),
            ("truncate", self.p_truncate),
            ("fail", self.p_fail),
            ("moderation", self.p_moderation),
            ("402", self.p_402),
        ];
        let mut parts: Vec<String> = pairs
            .iter()
            .filter(|(_, p)| *p > 0.0)
            .map(|(k, p)| format!("{k}={p}"))
            .collect();
        if self.p_slow > 0.0 {
            parts.push(format!("slow-ms={}", self.slow_delay.as_millis()));
        }
        f.write_str(&parts.join(","))
    }
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFault {
    None,
    /// Answer this status instead of handling the request.
    Status(u16),
    /// Close the connection partway through the response body.
    Drop,
    /// Answer after this real-time delay.
    Slow(Duration),
}

/// How a new job is doomed, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobFault {
    InternalError,
    Moderation,
}

/// The seeded dice. Each method draws exactly once, whatever the spec, so the sequence
/// of decisions depends only on the seed and the sequence of calls.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    rng: Mutex<fastrand::Rng>,
}

impl Faults {
    pub fn new(spec: FaultSpec, seed: u64) -> Faults {
        Faults {
            spec,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64()
    }

    /// Decided once per API request, before it is handled.
    pub fn on_request(&self) -> RequestFault {
        let mut r = self.draw();
        for (p, kind) in self.spec.request_kinds() {
            if r < p {
                return kind;
            }
            r -= p;
        }
        RequestFault::None
    }

    /// Decided once per content download that is about to be served.
    pub fn truncate_content(&self) -> bool {
        self.draw() < self.spec.p_truncate
    }

    /// Decided once per OpenRouter create that passed its checks, before the job is made:
    /// whether it is refused with 402. Other APIs never draw it, so their fault sequence
    /// is the same whatever `402` is.
    pub fn payment_required(&self) -> bool {
        self.draw() < self.spec.p_402
    }

    /// Decided once per job created.
    pub fn on_create(&self) -> Option<JobFault> {
        let r = self.draw();
        if r < self.spec.p_fail {
            Some(JobFault::InternalError)
        } else if r < self.spec.p_fail + self.spec.p_moderation {
            Some(JobFault::Moderation)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_a_spec() {
        let spec: FaultSpec =
            "429=0.1, 500=0.05,drop=0.02,slow=0.1,slow-ms=300,moderation=0.5,402=0.25"
                .parse()
                .unwrap();
        assert_eq!(spec.p_402, 0.25);
        assert_eq!(spec.p_429, 0.1);
        assert_eq!(spec.p_drop, 0.02);
        assert_eq!(spec.slow_delay, Duration::from_millis(300));
        assert_eq!(spec.to_string().parse::<FaultSpec>().unwrap(), spec);
        assert_eq!("".parse::<FaultSpec>().unwrap(), FaultSpec::none());
    }

    #[test]
    fn refuses_bad_specs_clearly() {
        for (bad, needle) in [
            ("429", "KIND=PROBABILITY"),
            ("404=0.1", "unknown fault kind `404`"),
            ("500=2", "invalid probability `2` for `500`"),
            ("500=abc", "invalid probability"),
            ("429=0.6,500=0.6", "more than 1"),
            ("slow-ms=fast", "slow-ms"),
        ] {
            let err = bad.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn same_seed_same_faults() {
        let spec: FaultSpec = "429=0.2,500=0.2,drop=0.1".parse().unwrap();
        let run = |seed| {
            let f = Faults::new(spec.clone(), seed);
            (0..200).map(|_| f.on_request()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7)
            .iter()
            .filter(|f| **f == RequestFault::Status(429))
            .count();
        assert!((20..=60).contains(&hits), "{hits}");
    }
}
