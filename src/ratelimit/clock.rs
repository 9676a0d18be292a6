//! Time for the limiter: a manual clock for tests, and the one seconds-to-nanoseconds rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{RateLimitError, MAX_NS};

/// `seconds` as whole nanoseconds: `seconds * 1e9` rounded half to even, as Python's
/// `round(seconds * 1e9)` does, so both paths turn the same float into the same integer.
/// `what` names the value in the error.
pub fn seconds_to_ns(seconds: f64, what: &'static str) -> Result<u64, RateLimitError> {
    let ns = (seconds * 1e9).round_ties_even();
    if !(0.0..=MAX_NS as f64).contains(&ns) {
        return Err(RateLimitError::SecondsOutOfRange {
            what,
            seconds,
            max_seconds: MAX_NS / 1_000_000_000,
        });
    }
    Ok(ns as u64)
}

/// A clock that moves only when told to. Cloning shares the reading, so a limiter holding a
/// clone sees every `advance`/`set` at once, with no call into Python per check.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    ns: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start_ns: u64) -> Result<Self, RateLimitError> {
        check_range(start_ns as i128, "clock time")?;
        Ok(Self {
            ns: Arc::new(AtomicU64::new(start_ns)),
        })
    }

    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::Acquire)
    }

    pub fn set_ns(&self, ns: u64) -> Result<(), RateLimitError> {
        check_range(ns as i128, "clock time")?;
        self.ns.store(ns, Ordering::Release);
        Ok(())
    }

    /// Moves the clock forward by `delta_ns`; the whole step happens or none of it.
    pub fn advance_ns(&self, delta_ns: u64) -> Result<u64, RateLimitError> {
        self.ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(delta_ns).filter(|t| *t <= MAX_NS)
            })
            .map(|before| before + delta_ns)
            .map_err(|now| RateLimitError::TimeOutOfRange {
                what: "clock time",
                value: now as i128 + delta_ns as i128,
            })
    }
}

fn check_range(value: i128, what: &'static str) -> Result<(), RateLimitError> {
    if (0..=MAX_NS as i128).contains(&value) {
        Ok(())
    } else {
        Err(RateLimitError::TimeOutOfRange { what, value })
    }
}

/// Monotonic nanoseconds since the clock was made (`Instant`, i.e. `CLOCK_MONOTONIC` on Linux).
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl MonotonicClock {
    #[inline]
    pub fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years; the rule caps time at MAX_NS (146 years of uptime).
        (self.origin.elapsed().as_nanos() as u64).min(MAX_NS)
    }
}
