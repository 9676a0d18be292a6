//! Spend budgets per key: dollars per UTC day, per UTC month, or per period of fixed length, in
//! integer nanodollars.
//!
//! Why nanodollars (10^-9 $) in integers:
//! - Concurrent increments must add exactly; floats do not (0.1 + 0.2 != 0.3), integers do.
//! - Micro-dollars are too coarse: LiteLLM prices tokens down to 1e-8 $ a token (embedding and
//!   small models), so a short request costs a few micro-dollars and rounding each one to a
//!   whole micro-dollar would be off by tens of percent. Nanodollars keep such a request to
//!   about 1e-4 of its cost.
//! - The Redis script computes with Lua numbers (doubles), exact for integers below 2^53: every
//!   amount, limit and spent total stays at or below `MAX_NANODOLLARS` = 2^53 - 1
//!   (about $9,007,199.25). A spent total saturates there, on every path.
//!
//! The rule (written out again in `python/fast_litellm/_fallback/budget.py` and, for the state
//! kept in Redis, in `python/fast_litellm/_lua/budget.lua`; all three give the same answers):
//!
//! - A tracker has one to three windows: `daily` (the UTC day), `monthly` (the UTC calendar
//!   month) or `period` (a fixed length that starts with the first spend of a key once the
//!   previous one is over, as LiteLLM's `budget_duration` does), each with a limit.
//! - `record(key, amount)` adds `amount` to the spent total of every window of the key and
//!   counts one request in it; a window that is over starts again from zero first.
//! - `check(key, estimate)` refuses when, in any window, the spent total has reached the limit
//!   (the budget is exhausted) or the spent total plus `estimate` would exceed it. It records
//!   nothing: a check followed by a record is two steps, and two callers may both pass a check
//!   before either records (a budget is a ceiling on what was spent, not a reservation).
//!
//! Time is Unix time in nanoseconds from an injected clock (`SystemClock` in production, the
//! rate limiter's `ManualClock` in tests). No PyO3 here: the bindings are `crate::py::budget`.

pub mod calendar;
pub mod redis;
pub mod store;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::ratelimit::{validate_key, RateLimitError, MAX_KEY_LENGTH, MAX_NS};
pub use store::{BudgetStats, BudgetStore};

/// The largest amount, limit or spent total: 2^53 - 1 nanodollars (about $9,007,199.25).
pub const MAX_NANODOLLARS: u64 = (1 << 53) - 1;
/// Nanodollars in a dollar.
pub const NANODOLLARS_PER_DOLLAR: u64 = 1_000_000_000;
/// Nanoseconds in a day.
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] RateLimitError),
}

/// The kinds of window, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// The UTC day.
    Daily,
    /// The UTC calendar month.
    Monthly,
    /// `period_ns` from the first spend after the previous period ended.
    Period { period_ns: u64 },
}

impl WindowKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
            Self::Period { .. } => "period",
        }
    }
}

/// One window of a tracker: its kind and limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub kind: WindowKind,
    pub limit: u64,
}

/// The windows of one tracker (at most one of each kind; `period` alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows {
    windows: Vec<Window>,
}

impl Windows {
    /// `daily`/`monthly`, or `period` with its `limit`: limits in nanodollars.
    pub fn new(
        daily: Option<u64>,
        monthly: Option<u64>,
        period: Option<(u64, u64)>,
    ) -> Result<Self, BudgetError> {
        let mut windows = Vec::new();
        if let Some(limit) = daily {
            windows.push(Window {
                kind: WindowKind::Daily,
                limit,
            });
        }
        if let Some(limit) = monthly {
            windows.push(Window {
                kind: WindowKind::Monthly,
                limit,
            });
        }
        if let Some((period_ns, limit)) = period {
            if !windows.is_empty() {
                return Err(BudgetError::Invalid(
                    "period (a budget per fixed period) cannot be combined with daily or monthly"
                        .into(),
                ));
            }
            if period_ns == 0 || period_ns > MAX_NS {
                return Err(BudgetError::Invalid(format!(
                    "period must be between 1 ns and {MAX_NS} ns, got {period_ns} ns"
                )));
            }
            windows.push(Window {
                kind: WindowKind::Period { period_ns },
                limit,
            });
        }
        if windows.is_empty() {
            return Err(BudgetError::Invalid(
                "at least one budget is required: daily, monthly, or limit with period".into(),
            ));
        }
        for w in &windows {
            check_nanodollars(w.limit, w.kind.name())?;
        }
        Ok(Self { windows })
    }

    pub fn as_slice(&self) -> &[Window] {
        &self.windows
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// An amount in nanodollars must not exceed `MAX_NANODOLLARS`.
pub fn check_nanodollars(value: u64, what: &str) -> Result<u64, BudgetError> {
    if value > MAX_NANODOLLARS {
        return Err(BudgetError::Invalid(format!(
            "{what} must be at most ${:.2} (2^53 - 1 nanodollars), got {value} nanodollars",
            MAX_NANODOLLARS as f64 / 1e9
        )));
    }
    Ok(value)
}

/// `dollars` as whole nanodollars: `dollars * 1e9` rounded half to even (Python's
/// `round(dollars * 1e9)`), refused when negative, not finite or above `MAX_NANODOLLARS`.
pub fn dollars_to_nanodollars(dollars: f64, what: &str) -> Result<u64, BudgetError> {
    if !dollars.is_finite() || dollars < 0.0 {
        return Err(BudgetError::Invalid(format!(
            "{what} must be a finite number of dollars >= 0, got {}",
            python_float(dollars)
        )));
    }
    let nanos = (dollars * 1e9).round_ties_even();
    if nanos > MAX_NANODOLLARS as f64 {
        return Err(BudgetError::Invalid(format!(
            "{what} must be at most ${:.2} (2^53 - 1 nanodollars), got {}",
            MAX_NANODOLLARS as f64 / 1e9,
            python_float(dollars)
        )));
    }
    Ok(nanos as u64)
}

/// `x` the way Python's `repr(float)` shows it (`nan`, `inf`, `-1.5`, `1e-07`, `1e+300`), so
/// both paths word errors alike: Rust's `{:?}` switches to an exponent at the same magnitudes
/// but writes it without a sign and with one digit.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let text = format!("{x:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// The state of one window of one key: which window it belongs to (the UTC day or month
/// number, or the start of a period in ns), what was spent in it and how many requests.
/// `requests == 0` means no window has started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowState {
    pub id: u64,
    pub spent: u64,
    pub requests: u64,
}

/// What one window holds at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowView {
    pub window: Window,
    pub spent: u64,
    pub requests: u64,
    /// When the window ends (Unix ns); `None` for a period not started.
    pub reset_at_ns: Option<u64>,
}

impl WindowView {
    pub fn remaining(&self) -> u64 {
        self.window.limit.saturating_sub(self.spent)
    }
}

impl Window {
    /// The id and end (Unix ns) of the calendar window holding `now`; `None` for a period.
    fn calendar(&self, now: u64) -> Option<(u64, u64)> {
        match self.kind {
            WindowKind::Daily => {
                let day = now / DAY_NS;
                Some((day, (day + 1) * DAY_NS))
            }
            WindowKind::Monthly => {
                let (month, end_day) = calendar::month_of_day(now / DAY_NS);
                Some((month, end_day * DAY_NS))
            }
            WindowKind::Period { .. } => None,
        }
    }

    /// Whether `state` is the window running at `now`.
    fn is_current(&self, state: &WindowState, now: u64) -> bool {
        if state.requests == 0 {
            return false;
        }
        match self.kind {
            WindowKind::Period { period_ns } => now < state.id.saturating_add(period_ns),
            _ => self.calendar(now).is_some_and(|(id, _)| id == state.id),
        }
    }

    /// What `state` holds at `now`.
    pub fn view(&self, state: &WindowState, now: u64) -> WindowView {
        let current = self.is_current(state, now);
        let reset_at_ns = match self.kind {
            WindowKind::Period { period_ns } => current.then(|| state.id.saturating_add(period_ns)),
            _ => self.calendar(now).map(|(_, end)| end),
        };
        WindowView {
            window: *self,
            spent: if current { state.spent } else { 0 },
            requests: if current { state.requests } else { 0 },
            reset_at_ns,
        }
    }

    /// Adds `amount` (and one request) to `state` at `now`, starting a new window first when
    /// the stored one is over.
    pub fn record(&self, state: &mut WindowState, now: u64, amount: u64) {
        if self.is_current(state, now) {
            state.spent = state.spent.saturating_add(amount).min(MAX_NANODOLLARS);
            state.requests = state.requests.saturating_add(1);
        } else {
            state.id = self.calendar(now).map_or(now, |(id, _)| id);
            state.spent = amount.min(MAX_NANODOLLARS);
            state.requests = 1;
        }
    }

    /// Whether `state` can be forgotten at `now` (it answers like a key never seen).
    pub fn is_over(&self, state: &WindowState, now: u64) -> bool {
        !self.is_current(state, now)
    }
}

/// The answer to `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The window the answer is about: when refused, the refusing window that resets last;
    /// when allowed, the one with the least left (the first in order on a tie).
    pub view: WindowView,
    pub estimate: u64,
    /// Whether the refusing window was already exhausted (`spent >= limit`), rather than
    /// exceeded only by the estimate.
    pub exhausted: bool,
    /// ns until the call could be allowed: 0 when allowed; `None` when never (the estimate
    /// alone exceeds a limit).
    pub retry_after_ns: Option<u64>,
}

/// The check rule over the views of one key's windows (in-process and Redis alike).
pub fn verdict(views: &[WindowView], now: u64, estimate: u64) -> Verdict {
    let mut refused: Option<(WindowView, bool)> = None;
    let mut never = false;
    let mut tightest: Option<WindowView> = None;
    for view in views {
        let limit = view.window.limit;
        let exhausted = view.spent >= limit;
        let exceeds = view.spent.saturating_add(estimate) > limit;
        if exhausted || exceeds {
            never |= estimate > limit;
            let later = match refused {
                None => true,
                Some((r, _)) => {
                    view.reset_at_ns.unwrap_or(u64::MAX) > r.reset_at_ns.unwrap_or(u64::MAX)
                }
            };
            if later {
                refused = Some((*view, exhausted));
            }
        }
        if tightest.is_none_or(|t| view.remaining() < t.remaining()) {
            tightest = Some(*view);
        }
    }
    match refused {
        Some((view, exhausted)) => Verdict {
            allowed: false,
            view,
            estimate,
            exhausted,
            retry_after_ns: if never {
                None
            } else {
                Some(view.reset_at_ns.map_or(0, |at| at.saturating_sub(now)))
            },
        },
        None => Verdict {
            allowed: true,
            // `views` is never empty (a tracker has at least one window).
            view: tightest.unwrap_or(WindowView {
                window: Window {
                    kind: WindowKind::Daily,
                    limit: 0,
                },
                spent: 0,
                requests: 0,
                reset_at_ns: None,
            }),
            estimate,
            exhausted: false,
            retry_after_ns: Some(0),
        },
    }
}

/// Unix time in nanoseconds from the system clock (budgets follow the calendar, so they need
/// wall-clock time, not a monotonic one).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    #[inline]
    pub fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d.as_nanos() as u64).min(MAX_NS))
    }
}

/// `nanos` as dollars, exactly: `$12.50`, `$0.0000015` (at least two decimals, no trailing
/// zeros beyond them). Integer arithmetic, so every path words amounts alike.
pub fn format_dollars(nanos: u64) -> String {
    let whole = nanos / NANODOLLARS_PER_DOLLAR;
    let fraction = format!("{:09}", nanos % NANODOLLARS_PER_DOLLAR);
    let digits = fraction.trim_end_matches('0');
    let digits = if digits.len() < 2 {
        &fraction[..2]
    } else {
        digits
    };
    format!("${whole}.{digits}")
}

impl Verdict {
    /// Why the call was refused (`None` when allowed).
    pub fn reason(&self) -> Option<String> {
        if self.allowed {
            return None;
        }
        let view = &self.view;
        let name = view.window.kind.name();
        let limit = format_dollars(view.window.limit);
        let spent = format_dollars(view.spent);
        Some(if self.exhausted {
            format!("{name} budget of {limit} is exhausted: {spent} spent")
        } else {
            format!(
                "{name} budget of {limit} would be exceeded: {spent} spent + {} estimated",
                format_dollars(self.estimate)
            )
        })
    }
}
