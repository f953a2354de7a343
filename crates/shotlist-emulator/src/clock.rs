//! The emulator's scaled clock.
//!
//! Everything that takes time in the emulated services (job durations, retention, the
//! quota window) is measured on this clock, which runs `time_scale` times faster than the
//! wall clock. Timestamps in response bodies are plausible unix seconds: the wall time at
//! start plus the emulated elapsed time. Hints sent to clients (`Retry-After`,
//! `openai-poll-after-ms`) are converted back to real time, because clients wait in real
//! time. This module must never read the wall clock after start: one instant, one scale.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point on the emulated clock, in emulated milliseconds since the emulator started.
pub type EmuMillis = u64;

/// Emulated time = start wall time + elapsed real time × scale.
#[derive(Clone, Debug)]
pub struct Clock {
    started: Instant,
    start_unix_ms: u64,
    scale: f64,
}

impl Clock {
    /// A clock starting now. `scale` must be finite and positive (checked by the caller).
    pub fn new(scale: f64) -> Clock {
        let start_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            started: Instant::now(),
            start_unix_ms,
            scale,
        }
    }

    /// Emulated milliseconds since start.
    pub fn now(&self) -> EmuMillis {
        (self.started.elapsed().as_secs_f64() * 1000.0 * self.scale) as EmuMillis
    }

    /// Unix milliseconds of an emulated instant.
    pub fn unix_ms(&self, at: EmuMillis) -> u64 {
        self.start_unix_ms + at
    }

    /// Unix seconds of an emulated instant (what response bodies carry).
    pub fn unix_secs(&self, at: EmuMillis) -> i64 {
        (self.unix_ms(at) / 1000) as i64
    }

    /// An emulated instant as ISO 8601 in UTC with microseconds
    /// (`2026-12-01T09:30:00.000000Z`), as Replicate writes its times.
    pub fn iso8601(&self, at: EmuMillis) -> String {
        let ms = i64::try_from(self.unix_ms(at)).unwrap_or(i64::MAX);
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| format!("{t:.6}"))
            .unwrap_or_default()
    }

    /// The system time of an emulated instant (for `last-modified`).
    pub fn system_time(&self, at: EmuMillis) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_ms(at))
    }

    /// How long a client must wait in real time for `emulated` to pass.
    pub fn to_real(&self, emulated: Duration) -> Duration {
        Duration::from_secs_f64(emulated.as_secs_f64() / self.scale)
    }

    /// Real time from now until the emulated instant `at` (zero if it has passed).
    pub fn real_until(&self, at: EmuMillis) -> Duration {
        let now = self.now();
        self.to_real(Duration::from_millis(at.saturating_sub(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_converts_both_ways() {
        let clock = Clock::new(60.0);
        assert_eq!(
            clock.to_real(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert!(clock.unix_secs(0) > 1_600_000_000);
        assert_eq!(clock.unix_secs(61_000) - clock.unix_secs(1_000), 60);
        let iso = clock.iso8601(1_500);
        assert!(iso.ends_with('Z') && iso.len() == 27, "{iso}");
        let back: jiff::Timestamp = iso.parse().unwrap();
        assert_eq!(back.as_millisecond() as u64, clock.unix_ms(1_500));
    }
}
