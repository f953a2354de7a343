//! The one request pacer of a run: at most `N` requests in any sliding window of `W`.
//!
//! Every HTTP request shotlist sends, to any endpoint, first waits in [`Pacer::acquire`].
//! The services count *all* requests against a per-minute quota, so the pacer keeps the
//! exact start times of the last `N` requests (a sliding log) rather than a token bucket:
//! a bucket of burst `N` refilled at `N/W` lets `2N-1` requests through in one window,
//! which is exactly the burst that earns a 429. Waiters are served first come, first
//! served. When the server pushes back anyway, [`Pacer::pause_until`] holds every task
//! at once.
//!
//! This module must never sleep on a wall clock (it uses `tokio::time`, so tests can run
//! on a paused clock) and never know about HTTP.

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Shared by every request of a run (wrap it in an `Arc`).
#[derive(Debug)]
pub struct Pacer {
    max_requests: usize,
    window: Duration,
    /// Start times of the most recent requests, oldest first, at most `max_requests`.
    /// The tokio mutex hands the lock out in FIFO order, and the holder sleeps while
    /// holding it: that is what makes waiters fair without a queue of our own.
    starts: Mutex<VecDeque<Instant>>,
    /// Set from outside (a 429) while the head waiter may be asleep: a plain mutex, so
    /// `pause_until` never waits behind the queue.
    paused_until: StdMutex<Option<Instant>>,
    requests: AtomicU64,
    /// Where the account's pacing is shared with other processes (`--coordinate`): a
    /// request waits for this process's window, then the account's.
    coordinator: std::sync::OnceLock<std::sync::Arc<crate::coordinate::Coordinator>>,
}

impl Pacer {
    /// At most `max_requests` (at least 1) request starts in any window of `window`.
    pub fn new(max_requests: u32, window: Duration) -> Pacer {
        let max_requests = max_requests.max(1) as usize;
        Pacer {
            max_requests,
            window,
            starts: Mutex::new(VecDeque::with_capacity(max_requests)),
            paused_until: StdMutex::new(None),
            requests: AtomicU64::new(0),
            coordinator: std::sync::OnceLock::new(),
        }
    }

    /// The documented default quota: 60 requests per minute, on a clock running
    /// `time_scale` times faster than real time (the emulator's fast clock; 1.0 = real).
    pub fn per_minute(max_requests: u32, time_scale: f64) -> Pacer {
        let scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        Pacer::new(max_requests, Duration::from_secs_f64(60.0 / scale))
    }

    pub fn max_requests(&self) -> usize {
        self.max_requests
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until one more request may start now, and records it.
    ///
    /// Cancel-safe: a caller dropped while waiting records nothing.
    pub async fn acquire(&self) {
        let mut starts = self.starts.lock().await;
        loop {
            let now = Instant::now();
            let mut ready = now;
            if starts.len() >= self.max_requests
                && let Some(&oldest) = starts.front()
            {
                ready = ready.max(oldest + self.window);
            }
            if let Some(until) = *self.paused_until.lock().expect("pacer pause lock") {
                ready = ready.max(until);
            }
            if ready <= now {
                // The account's window too, while the coordinator answers; once it has
                // gone, the requests of running jobs go on within this process's window.
                let now = match self.coordinator.get() {
                    Some(c) if c.gone().is_none() => {
                        let _ = c.pace().await;
                        Instant::now()
                    }
                    _ => now,
                };
                if starts.len() >= self.max_requests {
                    starts.pop_front();
                }
                starts.push_back(now);
                self.requests.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Re-check after waking: a 429 may have pushed the pause further meanwhile.
            tokio::time::sleep_until(ready).await;
        }
    }

    /// Shares the pacing with every process of the account through `coordinator`.
    pub fn coordinate(&self, coordinator: std::sync::Arc<crate::coordinate::Coordinator>) {
        let _ = self.coordinator.set(coordinator);
    }

    /// Holds every request (of every task) until `until`. A later pause extends an
    /// earlier one; an earlier one never shortens it.
    pub fn pause_until(&self, until: Instant) {
        let mut paused = self.paused_until.lock().expect("pacer pause lock");
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// Requests started so far (retries included): the run summary prints it.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn acquire_all(pacer: &Arc<Pacer>, tasks: usize) -> Vec<Instant> {
        let stamps = Arc::new(StdMutex::new(Vec::new()));
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let pacer = Arc::clone(pacer);
            let stamps = Arc::clone(&stamps);
            handles.push(tokio::spawn(async move {
                pacer.acquire().await;
                stamps.lock().unwrap().push(Instant::now());
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut v = stamps.lock().unwrap().clone();
        v.sort();
        v
    }

    fn max_in_any_window(stamps: &[Instant], window: Duration) -> usize {
        // Any window's worst case starts at some request: count those within [s, s+W).
        (0..stamps.len())
            .map(|i| {
                stamps[i..]
                    .iter()
                    .take_while(|&&t| t < stamps[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_n_in_any_window_and_reaches_n() {
        let window = Duration::from_secs(60);
        let pacer = Arc::new(Pacer::new(60, window));
        let start = Instant::now();
        let stamps = acquire_all(&pacer, 200).await;
        assert_eq!(stamps.len(), 200);
        assert_eq!(max_in_any_window(&stamps, window), 60);
        // Full throughput: 60 at once, then 60 per window: the 200th starts in window 4.
        assert_eq!(stamps.iter().filter(|&&t| t < start + window).count(), 60);
        assert_eq!(*stamps.last().unwrap() - start, 3 * window);
        assert_eq!(pacer.requests(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn fast_clock_window() {
        let pacer = Arc::new(Pacer::per_minute(5, 60.0));
        assert_eq!(pacer.window(), Duration::from_secs(1));
        let stamps = acquire_all(&pacer, 23).await;
        assert_eq!(max_in_any_window(&stamps, Duration::from_secs(1)), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order() {
        let pacer = Arc::new(Pacer::new(1, Duration::from_secs(1)));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..10 {
            let pacer = Arc::clone(&pacer);
            let order = Arc::clone(&order);
            handles.push(tokio::spawn(async move {
                pacer.acquire().await;
                order.lock().unwrap().push(i);
            }));
            // Let task i reach the queue before task i+1 is spawned.
            tokio::task::yield_now().await;
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn pause_until_holds_everyone_and_only_extends() {
        let pacer = Arc::new(Pacer::new(100, Duration::from_secs(60)));
        let start = Instant::now();
        pacer.pause_until(start + Duration::from_secs(7));
        pacer.pause_until(start + Duration::from_secs(3));
        let stamps = acquire_all(&pacer, 5).await;
        assert!(stamps.iter().all(|&t| t == start + Duration::from_secs(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_arriving_while_waiting_is_honoured() {
        let pacer = Arc::new(Pacer::new(1, Duration::from_secs(10)));
        let start = Instant::now();
        pacer.acquire().await;
        let waiter = {
            let pacer = Arc::clone(&pacer);
            tokio::spawn(async move {
                pacer.acquire().await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        pacer.pause_until(start + Duration::from_secs(30));
        assert_eq!(waiter.await.unwrap() - start, Duration::from_secs(30));
    }
}
