//! When a request is sent again, and after how long.
//!
//! Retried: a connection that could not be made (nothing reached the server) and a response whose
//! status the policy lists (429 and the overload statuses by default). Never retried: a timeout
//! after the request was sent, a response cut off, a reset: the server may have acted on it, and
//! an LLM call is neither cheap nor idempotent.
//!
//! The wait: the server's `Retry-After` when the policy respects it (seconds or an HTTP date),
//! else "equal jitter" backoff, half the exponential step plus a random share of the other half:
//! many clients refused at once by one overloaded server spread out, while each still waits at
//! least half the step. A `Retry-After` longer than `backoff_max` is not waited for: the caller
//! gets that response and decides (a request blocked for minutes inside a client is worse than
//! an answer).

use std::time::{Duration, SystemTime};

/// The retry settings of a client (`RetryConfig` in Python).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub retry_on_status: Vec<u16>,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub respect_retry_after: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            retry_on_status: vec![429, 500, 502, 503, 504],
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            respect_retry_after: true,
        }
    }
}

impl RetryPolicy {
    pub fn retries_status(&self, status: u16) -> bool {
        self.retry_on_status.contains(&status)
    }

    /// The wait before retry number `attempt` (from 1) after a response with this status and
    /// `Retry-After` value; `None`: do not retry, return the response.
    pub fn wait_after_response(&self, attempt: u32, retry_after: Option<&str>) -> Option<Duration> {
        if self.respect_retry_after {
            if let Some(wait) = retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())) {
                return (wait <= self.backoff_max).then_some(wait);
            }
        }
        Some(self.backoff(attempt))
    }

    /// The jittered backoff before retry number `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        Duration::from_secs_f64(backoff_delay(
            attempt,
            self.backoff_base.as_secs_f64(),
            self.backoff_max.as_secs_f64(),
            fastrand::f64(),
        ))
    }
}

/// Equal-jitter backoff in seconds: the step `min(cap, base * 2^(attempt-1))`, half of it plus
/// `random` (in [0, 1)) times the other half.
pub fn backoff_delay(attempt: u32, base: f64, cap: f64, random: f64) -> f64 {
    // 2^(attempt - 1), the exponent capped where a float overflows, as the Python twin does.
    let exponent = attempt.max(1).saturating_sub(1).min(1023) as i32;
    let step = (base * 2f64.powi(exponent)).min(cap).max(0.0);
    step / 2.0 + random.clamp(0.0, 1.0) * step / 2.0
}

/// A `Retry-After` value as a wait from `now`: delta seconds (ASCII digits, any length) or an
/// HTTP date in one of RFC 9110's three forms, checked by `httpdate` (the weekday must be the
/// date's, years 1970 to 9999; a date in the past is no wait). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    // Longer than a Duration holds is "not in this lifetime": as good as the maximum.
    parse_retry_after_seconds(value, now)
        .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

/// `parse_retry_after` in seconds from `now` (Unix seconds), unbounded, in the float arithmetic
/// the Python twin uses (the same answer to the last bit).
pub fn parse_retry_after_seconds(value: &str, now: f64) -> Option<f64> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a float holds parse as infinity: "never", which no policy waits for.
        return value.parse().ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let unix = date.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as f64;
    Some((unix - now).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(
            parse_retry_after("Mon, 06 Nov 1994 08:49:47 GMT", now),
            None
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        assert_eq!(backoff_delay(1, 0.5, 30.0, 0.0), 0.25);
        assert_eq!(backoff_delay(1, 0.5, 30.0, 1.0), 0.5);
        assert_eq!(backoff_delay(3, 0.5, 30.0, 0.5), 1.5);
        assert_eq!(backoff_delay(40, 0.5, 30.0, 1.0), 30.0);
        assert_eq!(backoff_delay(0, 0.5, 30.0, 1.0), 0.5);
    }

    #[test]
    fn long_retry_after_is_not_waited_for() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.wait_after_response(1, Some("120")), None);
        assert_eq!(
            policy.wait_after_response(1, Some("2")),
            Some(Duration::from_secs(2))
        );
    }
}
