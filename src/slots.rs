//! The one bound on jobs running at the service at once, handed out by priority.
//!
//! The service runs at most N jobs per resource; a job holds a slot from its create until
//! it succeeds or fails (downloads need none). Waiters are served highest priority first
//! (jobs already running at the service, then the longest jobs: that shortens the whole
//! run), ties in arrival order. This is the only place concurrency of jobs is limited.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub struct JobSlots {
    inner: Arc<Mutex<Inner>>,
    /// Where the account's slots are shared with other processes (`--coordinate`).
    coordinator: Option<Arc<crate::coordinate::Coordinator>>,
}

struct Inner {
    free: usize,
    seq: u64,
    waiters: BinaryHeap<(u64, Reverse<u64>, WaiterTx)>,
}

struct WaiterTx(oneshot::Sender<()>);

impl PartialEq for WaiterTx {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for WaiterTx {}
impl PartialOrd for WaiterTx {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WaiterTx {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// A held slot; dropping it gives the slot to the next waiter (and the account's shared
/// slot, when coordinated, back to every process).
pub struct Slot {
    inner: Arc<Mutex<Inner>>,
    _lease: Option<crate::coordinate::Lease>,
}

impl JobSlots {
    pub fn new(n: usize) -> JobSlots {
        JobSlots::coordinated(n, None)
    }

    /// N slots here, and, with a coordinator, one of the account's shared ones besides.
    pub fn coordinated(
        n: usize,
        coordinator: Option<Arc<crate::coordinate::Coordinator>>,
    ) -> JobSlots {
        JobSlots {
            coordinator,
            inner: Arc::new(Mutex::new(Inner {
                free: n.max(1),
                seq: 0,
                waiters: BinaryHeap::new(),
            })),
        }
    }

    /// Waits for a slot. Higher `priority` is served first.
    pub async fn acquire(&self, priority: u64) -> Slot {
        let rx = {
            let mut inner = self.inner.lock().expect("slots lock");
            if inner.free > 0 && inner.waiters.is_empty() {
                inner.free -= 1;
                return Slot {
                    inner: Arc::clone(&self.inner),
                    _lease: None,
                };
            }
            let (tx, rx) = oneshot::channel();
            inner.seq += 1;
            let seq = inner.seq;
            inner.waiters.push((priority, Reverse(seq), WaiterTx(tx)));
            rx
        };
        // The sender is only dropped after sending, or with the whole JobSlots.
        let _ = rx.await;
        Slot {
            inner: Arc::clone(&self.inner),
            _lease: None,
        }
    }

    /// A slot here (by priority), then, when coordinated, one of the account's shared
    /// slots, held as a lease for as long as the slot. A job already `running` at the
    /// service takes its lease at once (it holds the service's slot whatever anyone
    /// says) and is never refused. `Err`: the coordinator went away (a new job must not
    /// start).
    pub async fn acquire_shared(&self, priority: u64, running: bool) -> Result<Slot, String> {
        let mut slot = self.acquire(priority).await;
        if let Some(coordinator) = &self.coordinator {
            slot._lease = if running {
                coordinator.hold_running().await
            } else {
                Some(coordinator.acquire_slot().await?)
            };
        }
        Ok(slot)
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.inner.lock().expect("slots lock").free
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.inner.lock().expect("slots lock");
        // Hand the slot straight to the best waiter still listening.
        while let Some((_, _, WaiterTx(tx))) = inner.waiters.pop() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        inner.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn never_more_than_n_and_highest_priority_first() {
        let slots = Arc::new(JobSlots::new(2));
        let a = slots.acquire(0).await;
        let b = slots.acquire(0).await;
        assert_eq!(slots.available(), 0);
        let order = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(2));
        let max = Arc::new(AtomicUsize::new(2));
        let mut tasks = Vec::new();
        for p in [1u64, 5, 3, 5] {
            let (slots, order, running, max) =
                (slots.clone(), order.clone(), running.clone(), max.clone());
            tasks.push(tokio::spawn(async move {
                let _s = slots.acquire(p).await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                order.lock().unwrap().push(p);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        running.fetch_sub(2, Ordering::SeqCst);
        drop(a);
        drop(b);
        for t in tasks {
            t.await.unwrap();
        }
        assert!(max.load(Ordering::SeqCst) <= 2);
        let order = order.lock().unwrap().clone();
        assert_eq!(order[..2], [5, 5]);
        assert_eq!(order[2..], [3, 1]);
        assert_eq!(slots.available(), 2);
    }
}
