//! The request quota: at most `rpm` requests per emulated minute, sliding window.
//!
//! Every API request counts (the Azure rule: all requests, not only creates); requests
//! refused with 429 do not use up the quota, so a client that waits the `Retry-After` it
//! was given gets through. This module only counts and answers; it never sleeps, and it
//! never sees `/_emulator/*` requests.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use super::clock::EmuMillis;

/// One emulated minute.
pub const MINUTE_MS: EmuMillis = 60_000;

/// Instants of events in the last emulated minute.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    times: VecDeque<EmuMillis>,
}

impl SlidingWindow {
    fn prune(&mut self, now: EmuMillis) {
        while self.times.front().is_some_and(|&t| t + MINUTE_MS <= now) {
            self.times.pop_front();
        }
    }

    /// Events in the minute ending at `now`.
    pub fn count(&mut self, now: EmuMillis) -> usize {
        self.prune(now);
        self.times.len()
    }

    /// Records an event at `now`; returns the count in the minute ending at `now`.
    pub fn push(&mut self, now: EmuMillis) -> usize {
        self.prune(now);
        self.times.push_back(now);
        self.times.len()
    }

    /// Emulated time until the oldest event leaves the window.
    fn until_oldest_leaves(&self, now: EmuMillis) -> Duration {
        let leaves = self.times.front().map_or(now, |&t| t + MINUTE_MS);
        Duration::from_millis(leaves.saturating_sub(now).max(1))
    }
}

/// The per-server request quota.
#[derive(Debug)]
pub struct Quota {
    rpm: u32,
    admitted: Mutex<SlidingWindow>,
}

impl Quota {
    /// `rpm == 0` means no quota.
    pub fn new(rpm: u32) -> Quota {
        Quota {
            rpm,
            admitted: Mutex::new(SlidingWindow::default()),
        }
    }

    /// Admits a request at `now`, or says how long (emulated) until one would be.
    pub fn admit(&self, now: EmuMillis) -> Result<(), Duration> {
        if self.rpm == 0 {
            return Ok(());
        }
        let mut window = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        if window.count(now) >= self.rpm as usize {
            return Err(window.until_oldest_leaves(now));
        }
        window.push(now);
        Ok(())
    }

    pub fn rpm(&self) -> u32 {
        self.rpm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_until_the_oldest_leaves() {
        let q = Quota::new(2);
        assert!(q.admit(0).is_ok());
        assert!(q.admit(10_000).is_ok());
        assert_eq!(q.admit(20_000), Err(Duration::from_secs(40)));
        assert!(q.admit(60_000).is_ok());
        assert!(q.admit(60_001).is_err());
        assert!(q.admit(70_000).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let q = Quota::new(0);
        assert!((0..1000).all(|_| q.admit(5).is_ok()));
    }
}
