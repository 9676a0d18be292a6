//! The gate every request passes before it may use a connection: at most `limit` requests in
//! flight. hyper's pool has no limit of its own (it opens a connection whenever none is idle),
//! so `max_connections` is enforced here, and waiting here is the pool wait (`PoolTimeout`).
//!
//! Adaptive concurrency (opt-in) moves the limit between 1 and `max_connections` the way the
//! rate-limit advice of the LLM providers reads: add one more request in flight after a full
//! window of successes whose latency stayed within twice the best seen, halve it on a 429 or a
//! timeout. Only requests that started after the last cut can cut again, so one wave of 429s
//! from an overloaded server halves the limit once, not once per refused request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::HttpError;

pub(crate) struct Gate {
    semaphore: Arc<Semaphore>,
    limit: AtomicUsize,
    max: usize,
    /// Permits to forget as they come back, after a cut found them in use.
    debt: AtomicUsize,
    /// Bumped by every cut (see the module notes).
    cuts: AtomicU64,
    adaptive: Option<Mutex<Window>>,
}

#[derive(Default)]
struct Window {
    best: Option<Duration>,
    successes: usize,
}

/// A place in the gate, given back when dropped.
pub(crate) struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    gate: Arc<Gate>,
    cuts_at_start: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let owed = self
                .gate
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
            if owed.is_ok() {
                permit.forget();
            }
        }
    }
}

impl Gate {
    /// `limit` as a gate with at most `max` places takes it: at least 1, at most `max`.
    pub(crate) fn bounded(limit: usize, max: usize) -> usize {
        limit.clamp(1, Self::most(max))
    }

    /// `max` places, or as many as a semaphore holds (2^61 - 1 on 64-bit targets): a limit
    /// beyond that, as `sys.maxsize` for "no limit", is no limit either, where tokio's
    /// `Semaphore::new` would panic on every request.
    fn most(max: usize) -> usize {
        max.clamp(1, Semaphore::MAX_PERMITS)
    }

    pub(crate) fn new(limit: usize, max: usize, adaptive: bool) -> Arc<Self> {
        let limit = Self::bounded(limit, max);
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit: AtomicUsize::new(limit),
            max: Self::most(max),
            debt: AtomicUsize::new(0),
            cuts: AtomicU64::new(0),
            adaptive: adaptive.then(|| Mutex::new(Window::default())),
        })
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Waits for a place, at most `timeout`; how long it waited is the caller's to record.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        timeout: Option<Duration>,
    ) -> Result<(Permit, Duration), HttpError> {
        let started = Instant::now();
        let waiting = Arc::clone(&self.semaphore).acquire_owned();
        let permit = match timeout {
            Some(limit) => match super::rt::timeout(limit, waiting).await {
                Ok(permit) => permit,
                Err(_) => return Err(HttpError::PoolTimeout(self.limit())),
            },
            None => waiting.await,
        }
        // The semaphore is never closed.
        .map_err(|_| HttpError::Closed)?;
        Ok((
            Permit {
                permit: Some(permit),
                gate: Arc::clone(self),
                cuts_at_start: self.cuts.load(Ordering::Acquire),
            },
            started.elapsed(),
        ))
    }

    /// A request of `permit` succeeded in `latency` (adaptive gates only).
    pub(crate) fn succeeded(&self, latency: Duration) {
        let Some(window) = &self.adaptive else {
            return;
        };
        let grow = {
            let mut window = window.lock();
            let best = *window.best.get_or_insert(latency);
            if latency < best {
                window.best = Some(latency);
            }
            if latency > best * 2 {
                window.successes = 0;
                false
            } else {
                window.successes += 1;
                window.successes >= self.limit()
            }
        };
        if grow && self.limit() < self.max {
            if let Some(window) = &self.adaptive {
                window.lock().successes = 0;
            }
            self.limit.fetch_add(1, Ordering::AcqRel);
            let repaid = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
            if repaid.is_err() {
                self.semaphore.add_permits(1);
            }
        }
    }

    /// The server is overloaded (a 429, a timeout): halve the limit (adaptive gates only).
    pub(crate) fn overloaded(&self, permit: &Permit) {
        if self.adaptive.is_none() {
            return;
        }
        let cuts = self.cuts.load(Ordering::Acquire);
        if permit.cuts_at_start < cuts
            || self
                .cuts
                .compare_exchange(cuts, cuts + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let limit = self.limit();
        let new_limit = (limit / 2).max(1);
        let removed = limit - new_limit;
        self.limit.store(new_limit, Ordering::Release);
        if let Some(window) = &self.adaptive {
            window.lock().successes = 0;
        }
        let forgotten = self.semaphore.forget_permits(removed);
        self.debt.fetch_add(removed - forgotten, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn adaptive_limit_halves_once_per_wave_and_grows_back() {
        let gate = Gate::new(8, 16, true);
        let mut permits = Vec::new();
        for _ in 0..8 {
            permits.push(gate.acquire(None).await.unwrap().0);
        }
        for permit in &permits {
            gate.overloaded(permit);
        }
        assert_eq!(gate.limit(), 4);
        drop(permits);
        // Four of the eight places were forgotten as they came back.
        assert_eq!(gate.semaphore.available_permits(), 4);
        for _ in 0..4 {
            gate.succeeded(Duration::from_millis(10));
        }
        assert_eq!(gate.limit(), 5);
        assert_eq!(gate.semaphore.available_permits(), 5);
    }

    #[tokio::test]
    async fn a_limit_beyond_a_semaphore_is_no_limit() {
        let gate = Gate::new(usize::MAX, usize::MAX, true);
        assert_eq!(gate.limit(), Semaphore::MAX_PERMITS);
        assert!(gate.acquire(None).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_gate_times_out() {
        let gate = Gate::new(1, 1, false);
        let _held = gate.acquire(None).await.unwrap();
        let waited = gate.acquire(Some(Duration::from_millis(1))).await;
        assert!(matches!(waited, Err(HttpError::PoolTimeout(1))));
    }
}
