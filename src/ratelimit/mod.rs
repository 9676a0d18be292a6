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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateLimitError {
    #[error("{0}")]
    InvalidLimit(String),
    #[error("key must not be empty")]
    EmptyKey,
    #[error("key is {length} characters long; the longest accepted is {MAX_KEY_LENGTH}")]
    KeyTooLong { length: usize },
    #[error("{what} must be between 0 and {MAX_NS} ns (about 146 years), got {value}")]
    TimeOutOfRange { what: &'static str, value: i128 },
    /// Seconds given by a caller (a clock reading, an advance): shown as given, so NaN reads
    /// "nan" and a huge value reads as itself, not as a saturated count of nanoseconds.
    #[error("{what} must be a number of seconds from 0 to {max_seconds} (about 146 years), got {}", python_float(*.seconds))]
    SecondsOutOfRange {
        what: &'static str,
        seconds: f64,
        max_seconds: u64,
    },
}

/// `seconds` the way Python's `repr(float)` shows it (`nan`, `inf`, `1e+300`, `-1.5`), so both
/// paths word the error alike.
fn python_float(seconds: f64) -> String {
    if seconds.is_nan() {
        "nan".to_owned()
    } else if seconds.is_infinite() {
        if seconds > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if seconds.abs() >= 1e16 {
        let text = format!("{seconds:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent:0>2}")
            }
            _ => text,
        }
    } else {
        format!("{seconds:?}")
    }
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
