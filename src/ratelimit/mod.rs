//! In-process rate limiting: GCRA (a token bucket with continuous refill) over a sharded map of
//! per-key states, in integer nanoseconds.
//!
//! `gcra` holds the rule (one pure function per decision, shared by every store and written out
//! in `python/fast_litellm/_fallback/ratelimit.py` so the fallback and the Redis script compute
//! the same answers); `store` holds the per-key states of one limiter; `clock` the manual clock
//! tests drive. No PyO3 here: the binding layer is `crate::py::ratelimit`.

pub mod clock;
pub mod gcra;
mod index;
pub mod redis;
pub mod store;

#[cfg(test)]
mod tests;

pub use clock::{seconds_to_ns, ManualClock, MonotonicClock};
pub use gcra::{Decision, Limit, LimitView, Limits, NEVER};
pub use store::{RateLimiter, Stats};

/// The largest time, window or clock reading the rule handles, in nanoseconds (2^62 ns, about 146
/// years). Keeping every operand below it means `time + window` never overflows a `u64`.
pub const MAX_NS: u64 = 1 << 62;

/// The longest key accepted, in characters (Unicode code points, what Python's `len` counts).
/// Keys name callers (an API key, a user, a deployment); a longer one is a mistake, and storing it
/// would let one caller's input cost unbounded memory.
pub const MAX_KEY_LENGTH: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("{0}")]
    InvalidLimit(String),
    #[error("key must not be empty")]
    EmptyKey,
    #[error("key is {length} characters long; the longest accepted is {MAX_KEY_LENGTH}")]
    KeyTooLong { length: usize },
    #[error("{what} must be between 0 and {MAX_NS} ns (about 146 years), got {value}")]
    TimeOutOfRange { what: &'static str, value: i128 },
}

/// Checks a key as every store requires it: non-empty and at most `MAX_KEY_LENGTH` characters.
/// The character count is only taken for keys long enough to possibly exceed the limit.
pub fn validate_key(key: &str) -> Result<(), RateLimitError> {
    if key.is_empty() {
        return Err(RateLimitError::EmptyKey);
    }
    if key.len() > MAX_KEY_LENGTH {
        let length = key.chars().count();
        if length > MAX_KEY_LENGTH {
            return Err(RateLimitError::KeyTooLong { length });
        }
    }
    Ok(())
}
