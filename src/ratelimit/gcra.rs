//! The rule: GCRA, a token bucket with continuous refill, in integer nanoseconds.
//!
//! One limit is `burst` units refilled at one unit per `interval_ns`. A key's whole state for it is
//! one number, `tat` (the "theoretical arrival time"): the instant at which its bucket is full
//! again. A fresh key has `tat = 0`, which is a full bucket at any `now >= 0`.
//!
//! For `amount` units at time `now` (everything in `u64` nanoseconds):
//!
//! ```text
//! capacity = burst * interval                  window the bucket covers
//! base     = max(tat, now)
//! new_tat  = base + amount * interval
//! allowed  = amount <= burst and new_tat <= now + capacity
//! if allowed: tat = new_tat
//!             remaining   = (now + capacity - new_tat) / interval       (integer division)
//!             retry_after = 0
//! otherwise:  tat unchanged
//!             remaining   = saturating(now + capacity - base) / interval
//!             retry_after = new_tat - (now + capacity), or NEVER when amount > burst
//! reset_after = max(tat, now) - now                    (tat after the decision)
//! ```
//!
//! Several limits on one call (requests and tokens) are all evaluated first; the call is allowed
//! only if every limit allows it, and then every `tat` is updated, otherwise none: a call consumes
//! all of its limits or nothing. The combined `retry_after` is the largest of the refusing limits',
//! `reset_after` the largest of all. Keeping every operand below `MAX_NS` (2^62) means no sum here
//! can overflow.
//!
//! Guarantee: over any interval of length `w`, one key admits at most `burst + w / interval`
//! units, and a key that keeps asking is admitted at exactly the rate in the long run.

use super::{RateLimitError, MAX_NS};

/// `retry_after_ns` of a request that can never be admitted (its amount exceeds the burst).
pub const NEVER: u64 = u64::MAX;

/// One limit: `burst` units, refilled at one unit per `interval_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    interval_ns: u64,
    burst: u64,
    capacity_ns: u64,
}

/// What one limit says about one amount.
#[derive(Clone, Copy, Debug)]
struct Verdict {
    fits: bool,
    new_tat: u64,
    remaining_now: u64,
    remaining_after: u64,
    retry_after_ns: u64,
}

impl Limit {
    pub fn new(interval_ns: u64, burst: u64) -> Result<Self, RateLimitError> {
        if interval_ns == 0 {
            return Err(RateLimitError::InvalidLimit(
                "emission interval must be at least 1 ns".into(),
            ));
        }
        if burst == 0 {
            return Err(RateLimitError::InvalidLimit(
                "burst must be at least 1".into(),
            ));
        }
        let capacity_ns = interval_ns
            .checked_mul(burst)
            .filter(|c| *c <= MAX_NS)
            .ok_or_else(|| {
                RateLimitError::InvalidLimit(format!(
                    "burst {burst} x interval {interval_ns} ns exceeds the longest supported \
                     window ({MAX_NS} ns, about 146 years)"
                ))
            })?;
        Ok(Self {
            interval_ns,
            burst,
            capacity_ns,
        })
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    pub fn capacity_ns(&self) -> u64 {
        self.capacity_ns
    }

    #[inline]
    fn verdict(&self, tat: u64, now: u64, amount: u64) -> Verdict {
        let base = tat.max(now);
        let limit_at = now + self.capacity_ns;
        let remaining_now = limit_at.saturating_sub(base) / self.interval_ns;
        if amount > self.burst {
            return Verdict {
                fits: false,
                new_tat: base,
                remaining_now,
                remaining_after: remaining_now,
                retry_after_ns: NEVER,
            };
        }
        let new_tat = base + amount * self.interval_ns;
        if new_tat <= limit_at {
            Verdict {
                fits: true,
                new_tat,
                remaining_now,
                remaining_after: (limit_at - new_tat) / self.interval_ns,
                retry_after_ns: 0,
            }
        } else {
            Verdict {
                fits: false,
                new_tat,
                remaining_now,
                remaining_after: remaining_now,
                retry_after_ns: new_tat - limit_at,
            }
        }
    }
}

/// `remaining` and `limit` (the burst) of one limit after a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitView {
    pub remaining: u64,
    pub limit: u64,
}

/// The answer to one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// 0 when allowed; `NEVER` when the amount exceeds a burst.
    pub retry_after_ns: u64,
    /// Time until every bucket of the key is full again.
    pub reset_after_ns: u64,
    pub requests: Option<LimitView>,
    pub tokens: Option<LimitView>,
}

/// The limits of one limiter: a request limit, a token limit, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub requests: Option<Limit>,
    pub tokens: Option<Limit>,
}

/// A key's state: the `tat` of the request limit and of the token limit (0 when unused).
pub type State = [u64; 2];

impl Limits {
    pub fn new(requests: Option<Limit>, tokens: Option<Limit>) -> Result<Self, RateLimitError> {
        if requests.is_none() && tokens.is_none() {
            return Err(RateLimitError::InvalidLimit(
                "at least one limit (requests or tokens) is required".into(),
            ));
        }
        Ok(Self { requests, tokens })
    }

    /// Decides `cost` requests and `tokens` tokens for a key in `state` at `now`; returns the
    /// decision and the state to store when the caller commits (`state` itself when refused).
    #[inline]
    pub fn decide(&self, state: &State, now: u64, cost: u64, tokens: u64) -> (Decision, State) {
        let request = self.requests.map(|l| (l, l.verdict(state[0], now, cost)));
        let token = self.tokens.map(|l| (l, l.verdict(state[1], now, tokens)));
        let allowed = request.is_none_or(|(_, v)| v.fits) && token.is_none_or(|(_, v)| v.fits);
        let mut next = *state;
        let mut retry_after_ns = 0;
        let mut reset_after_ns = 0;
        let mut view = |slot: usize, entry: Option<(Limit, Verdict)>| {
            entry.map(|(limit, v)| {
                if allowed {
                    next[slot] = v.new_tat;
                } else if !v.fits {
                    retry_after_ns = retry_after_ns.max(v.retry_after_ns);
                }
                reset_after_ns = reset_after_ns.max(next[slot].saturating_sub(now));
                LimitView {
                    remaining: if allowed {
                        v.remaining_after
                    } else {
                        v.remaining_now
                    },
                    limit: limit.burst,
                }
            })
        };
        let requests = view(0, request);
        let tokens = view(1, token);
        (
            Decision {
                allowed,
                retry_after_ns,
                reset_after_ns,
                requests,
                tokens,
            },
            next,
        )
    }

    /// Whether a key in `state` is indistinguishable from a fresh key at `now` (every bucket
    /// full), so that forgetting it changes no answer.
    #[inline]
    pub fn is_full(&self, state: &State, now: u64) -> bool {
        state[0] <= now && state[1] <= now
    }
}
