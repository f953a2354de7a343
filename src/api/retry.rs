//! The one retry policy: exponential backoff with full jitter, unless the server says when.
//!
//! Pure functions only: [`delay_for`] decides how long to wait, [`server_hint`] reads the
//! server's own delay headers. The transport decides *whether* to retry (see `error.rs`
//! for which failures are transient, and why a create is special). This module must never
//! sleep or send anything.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How persistent to be. Shared by every request of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff ceiling; doubles each attempt.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Longest server hint obeyed: a `Retry-After` of a day is a misconfigured proxy,
    /// not a plan.
    pub max_hint: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 8,
            max_hint: Duration::from_secs(10 * 60),
        }
    }
}

impl RetryPolicy {
    /// Whether a failed attempt number `attempt` (0-based) may be followed by another.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt + 1 < self.max_attempts
    }
}

/// Delay before retrying after failed attempt `attempt` (0-based).
///
/// A server hint wins (clamped to `max_hint`): the server knows its quota. Without one,
/// "full jitter": uniform in `[0, min(cap, base * 2^attempt)]`, so that tasks which failed
/// together do not come back together.
pub fn delay_for(
    policy: &RetryPolicy,
    attempt: u32,
    hint: Option<Duration>,
    rng: &mut fastrand::Rng,
) -> Duration {
    if let Some(hint) = hint {
        return hint.min(policy.max_hint);
    }
    let ceiling = policy
        .base
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(policy.cap)
        .min(policy.cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

/// The server's delay hint, read in order `retry-after-ms`, `x-ms-retry-after-ms`,
/// `Retry-After` (seconds, possibly fractional, or an HTTP date relative to `now`).
pub fn server_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = text(name).and_then(parse_seconds) {
            return Some(ms / 1000);
        }
    }
    let retry_after = text("retry-after")?;
    if let Some(d) = parse_seconds(retry_after) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(retry_after).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-negative decimal number of units (`"2"`, `"1.5"`) as a `Duration` of that many
/// seconds; the `-ms` headers divide by 1000 afterwards.
fn parse_seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.parse().ok()?;
    (0.0..1e9).contains(&v).then(|| Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling_and_the_cap() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..40 {
            let ceiling = Duration::from_secs(1u64 << attempt.min(6)).min(policy.cap);
            let mut max_seen = Duration::ZERO;
            for _ in 0..500 {
                let d = delay_for(&policy, attempt, None, &mut rng);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
                max_seen = max_seen.max(d);
            }
            // Full jitter spreads over the whole range, not just near zero.
            assert!(max_seen > ceiling / 2, "attempt {attempt}");
        }
    }

    #[test]
    fn server_hint_wins_but_is_clamped() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let d = delay_for(&policy, 5, Some(Duration::from_millis(250)), &mut rng);
        assert_eq!(d, Duration::from_millis(250));
        let d = delay_for(&policy, 0, Some(Duration::from_secs(86_400)), &mut rng);
        assert_eq!(d, policy.max_hint);
    }

    #[test]
    fn hints_are_read_in_order() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let all = headers(&[
            ("retry-after-ms", "1500"),
            ("x-ms-retry-after-ms", "9000"),
            ("retry-after", "30"),
        ]);
        assert_eq!(server_hint(&all, now), Some(Duration::from_millis(1500)));
        let ms = headers(&[("x-ms-retry-after-ms", "20.5"), ("retry-after", "30")]);
        assert_eq!(server_hint(&ms, now), Some(Duration::from_micros(20_500)));
        let secs = headers(&[("retry-after", "2.5")]);
        assert_eq!(server_hint(&secs, now), Some(Duration::from_millis(2500)));
        let date = headers(&[(
            "retry-after",
            &httpdate::fmt_http_date(now + Duration::from_secs(42)),
        )]);
        assert_eq!(server_hint(&date, now), Some(Duration::from_secs(42)));
        let past = headers(&[(
            "retry-after",
            &httpdate::fmt_http_date(now - Duration::from_secs(42)),
        )]);
        assert_eq!(server_hint(&past, now), Some(Duration::ZERO));
        // Garbage in the first header falls through to the next one.
        let junk = headers(&[("retry-after-ms", "soon"), ("retry-after", "3")]);
        assert_eq!(server_hint(&junk, now), Some(Duration::from_secs(3)));
        assert_eq!(server_hint(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(server_hint(&HeaderMap::new(), now), None);
    }

    #[test]
    fn attempts_are_counted_with_the_first() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.allows_another(0) && p.allows_another(1) && !p.allows_another(2));
    }
}
