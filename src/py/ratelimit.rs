//! Bindings for `crate::ratelimit`: `RateLimiter`, `RateLimitResult` and `ManualClock` in
//! `fast_litellm._native`.
//!
//! A check runs with the GIL held: it takes well under a microsecond, less than releasing and
//! re-taking the GIL would cost. The time is read before the core is entered, so a Python clock
//! (a callable) is never called while a shard lock is held.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::{guard, type_name, NativeError};
use crate::metrics;
use crate::ratelimit::{
    seconds_to_ns, Decision, Limit, Limits, ManualClock, MonotonicClock, RateLimitError,
    RateLimiter, NEVER,
};

impl From<RateLimitError> for PyErr {
    fn from(err: RateLimitError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

/// A clock that moves only when told to; a limiter given one reads it directly, with no call into
/// Python per check.
#[pyclass(module = "fast_litellm._native", name = "ManualClock", frozen)]
pub(crate) struct PyManualClock {
    pub(crate) inner: ManualClock,
}

#[pymethods]
impl PyManualClock {
    #[new]
    #[pyo3(signature = (start=None))]
    fn new(start: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let start_ns = match start {
            Some(s) => seconds_arg(s, "start")?,
            None => 0,
        };
        Ok(Self {
            inner: ManualClock::new(start_ns)?,
        })
    }

    /// The reading in seconds.
    fn now(&self) -> f64 {
        self.inner.now_ns() as f64 / 1e9
    }

    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }

    /// Moves the clock forward by `seconds` (rounded to whole nanoseconds).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance_ns(seconds_arg(seconds, "seconds")?)?;
        Ok(())
    }

    fn advance_ns(&self, nanoseconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance_ns(ns_arg(nanoseconds, "nanoseconds")?)?;
        Ok(())
    }

    /// Sets the reading to `seconds` (it may move backwards).
    fn set(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_ns(seconds_arg(seconds, "seconds")?)?;
        Ok(())
    }

    fn set_ns(&self, nanoseconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_ns(ns_arg(nanoseconds, "nanoseconds")?)?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("ManualClock({})", self.now())
    }
}

impl PyManualClock {
    /// The clock itself (shared: the copy moves with the original).
    pub(crate) fn clock(&self) -> ManualClock {
        self.inner.clone()
    }
}

/// The answer to one check: truthy when allowed.
#[pyclass(
    module = "fast_litellm._native",
    name = "RateLimitResult",
    frozen,
    get_all
)]
pub(crate) struct PyRateLimitResult {
    allowed: bool,
    remaining: u64,
    retry_after: f64,
    reset_after: f64,
    limit: u64,
    remaining_tokens: Option<u64>,
    token_limit: Option<u64>,
}

fn seconds(ns: u64) -> f64 {
    if ns == NEVER {
        f64::INFINITY
    } else {
        ns as f64 / 1e9
    }
}

impl From<Decision> for PyRateLimitResult {
    fn from(d: Decision) -> Self {
        // `remaining`/`limit` describe the request limit, or the token limit when it is alone.
        let primary = d.requests.or(d.tokens).unwrap_or_else(|| unreachable!());
        Self {
            allowed: d.allowed,
            remaining: primary.remaining,
            retry_after: seconds(d.retry_after_ns),
            reset_after: seconds(d.reset_after_ns),
            limit: primary.limit,
            remaining_tokens: d.tokens.map(|t| t.remaining),
            token_limit: d.tokens.map(|t| t.limit),
        }
    }
}

#[pymethods]
impl PyRateLimitResult {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    /// The fields as a dict (the same keys on every path).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("allowed", self.allowed)?;
        d.set_item("remaining", self.remaining)?;
        d.set_item("retry_after", self.retry_after)?;
        d.set_item("reset_after", self.reset_after)?;
        d.set_item("limit", self.limit)?;
        d.set_item("remaining_tokens", self.remaining_tokens)?;
        d.set_item("token_limit", self.token_limit)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let mut text = format!(
            "RateLimitResult(allowed={}, remaining={}, retry_after={}, reset_after={}, limit={}",
            if self.allowed { "True" } else { "False" },
            self.remaining,
            float_repr(self.retry_after),
            float_repr(self.reset_after),
            self.limit
        );
        if let (Some(remaining), Some(limit)) = (self.remaining_tokens, self.token_limit) {
            text += &format!(", remaining_tokens={remaining}, token_limit={limit}");
        }
        text + ")"
    }
}

fn float_repr(x: f64) -> String {
    if x.is_infinite() {
        "inf".to_owned()
    } else {
        format!("{x:?}")
    }
}

/// The limits of a limiter from the binding's arguments (each limit is an interval and a burst,
/// given together or not at all); shared by the in-process and the Redis limiter.
pub(crate) fn limits_arg(
    request_interval_ns: Option<u64>,
    burst: Option<u64>,
    token_interval_ns: Option<u64>,
    token_burst: Option<u64>,
) -> PyResult<Limits> {
    let limit = |interval: Option<u64>, burst: Option<u64>, what: &str| match (interval, burst) {
        (Some(i), Some(b)) => Ok(Some(Limit::new(i, b)?)),
        (None, None) => Ok(None),
        _ => Err(PyValueError::new_err(format!(
            "{what}: the interval and the burst go together"
        ))),
    };
    Ok(Limits::new(
        limit(request_interval_ns, burst, "requests")?,
        limit(token_interval_ns, token_burst, "tokens")?,
    )?)
}

/// Where a limiter takes its time from.
enum Clock {
    Monotonic(MonotonicClock),
    Manual(ManualClock),
    /// Any object with a `now_ns()` method (the fallback's `ManualClock`).
    NowNs(Py<PyAny>),
    /// A zero-argument callable returning seconds.
    Seconds(Py<PyAny>),
}

/// The in-process limiter: GCRA over a sharded map of per-key states (see `crate::ratelimit`).
#[pyclass(module = "fast_litellm._native", name = "RateLimiter", frozen)]
pub(crate) struct PyRateLimiter {
    core: RateLimiter,
    clock: Clock,
    /// Called with the exception when the core fails unexpectedly (the feature's error counter).
    on_error: Option<Py<PyAny>>,
    fail_next: AtomicBool,
}

impl PyRateLimiter {
    #[inline]
    fn now_ns(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.clock {
            Clock::Monotonic(c) => Ok(c.now_ns()),
            Clock::Manual(c) => Ok(c.now_ns()),
            Clock::NowNs(obj) => ns_arg(&obj.bind(py).call_method0("now_ns")?, "clock time"),
            Clock::Seconds(f) => seconds_arg(&f.bind(py).call0()?, "clock time"),
        }
    }

    /// Runs one core operation under the panic guard; an unexpected failure is reported to
    /// `on_error` and raised (never retried: a check may already have consumed).
    #[inline]
    fn run<T>(&self, py: Python<'_>, what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
        let result = guard(what, || {
            // A plain load first: the swap (a write) would bounce the cache line between threads.
            if self.fail_next.load(Ordering::Relaxed)
                && self.fail_next.swap(false, Ordering::Relaxed)
            {
                panic!("failure injected by _testing_fail_next()");
            }
            f()
        });
        if let Err(err) = &result {
            if err.is_instance_of::<NativeError>(py) {
                if let Some(hook) = &self.on_error {
                    // The hook only counts; its own failure must not hide the original error.
                    let _ = hook.bind(py).call1((err.value(py),));
                }
            }
        }
        result
    }

    #[inline]
    fn decide(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: Amount,
        tokens: Amount,
        consume: bool,
    ) -> PyResult<Decision> {
        let key = key_arg(key)?;
        let (cost, tokens) = (cost.0, tokens.0);
        let now = self.now_ns(py)?;
        self.run(py, "rate limiting", || {
            Ok(if consume {
                self.core.check(key, now, cost, tokens)?
            } else {
                self.core.peek(key, now, cost, tokens)?
            })
        })
    }
}

#[pymethods]
impl PyRateLimiter {
    #[new]
    #[pyo3(signature = (request_interval_ns, burst, token_interval_ns, token_burst, *, clock=None, on_error=None))]
    fn new(
        request_interval_ns: Option<u64>,
        burst: Option<u64>,
        token_interval_ns: Option<u64>,
        token_burst: Option<u64>,
        clock: Option<&Bound<'_, PyAny>>,
        on_error: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let limits = limits_arg(request_interval_ns, burst, token_interval_ns, token_burst)?;
        let clock = match clock {
            None => Clock::Monotonic(MonotonicClock::default()),
            Some(c) => {
                if let Ok(manual) = c.cast::<PyManualClock>() {
                    Clock::Manual(manual.get().inner.clone())
                } else if c.hasattr("now_ns")? {
                    Clock::NowNs(c.clone().unbind())
                } else if c.is_callable() {
                    Clock::Seconds(c.clone().unbind())
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "clock must be a ManualClock or a zero-argument callable returning \
                         seconds, not {}",
                        type_name(c)
                    )));
                }
            }
        };
        Ok(Self {
            core: RateLimiter::new(limits),
            clock,
            on_error,
            fail_next: AtomicBool::new(false),
        })
    }

    /// Decides and, when allowed, consumes `cost` requests and `tokens` tokens for `key`.
    #[pyo3(signature = (key, cost=Amount(1), tokens=Amount(0)))]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = cost_arg)] cost: Amount,
        #[pyo3(from_py_with = tokens_arg)] tokens: Amount,
    ) -> PyResult<PyRateLimitResult> {
        let call = metrics::start(metrics::RATE_LIMIT_CHECK);
        let decision = self.decide(py, key, cost, tokens, true);
        call.finish(metrics::outcome_of(&decision, |d| d.allowed));
        Ok(decision?.into())
    }

    /// `check` without the result object: whether the call was allowed.
    #[pyo3(signature = (key, cost=Amount(1), tokens=Amount(0)))]
    fn allow(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = cost_arg)] cost: Amount,
        #[pyo3(from_py_with = tokens_arg)] tokens: Amount,
    ) -> PyResult<bool> {
        let call = metrics::start(metrics::RATE_LIMIT_CHECK);
        let decision = self.decide(py, key, cost, tokens, true);
        call.finish(metrics::outcome_of(&decision, |d| d.allowed));
        Ok(decision?.allowed)
    }

    /// What `check` would answer now, without consuming.
    #[pyo3(signature = (key, cost=Amount(1), tokens=Amount(0)))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = cost_arg)] cost: Amount,
        #[pyo3(from_py_with = tokens_arg)] tokens: Amount,
    ) -> PyResult<PyRateLimitResult> {
        Ok(self.decide(py, key, cost, tokens, false)?.into())
    }

    /// Forgets `key` (its buckets are full again).
    fn reset(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = key_arg(key)?;
        self.run(py, "rate limiting", || {
            Ok(self.core.reset(key).map(|_| ())?)
        })
    }

    /// Drops every key whose buckets are full again; returns how many.
    fn cleanup(&self, py: Python<'_>) -> PyResult<usize> {
        let now = self.now_ns(py)?;
        self.run(py, "rate limiting", || Ok(self.core.cleanup(now)))
    }

    /// `{"keys", "memory_bytes", "allowed", "denied"}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.run(py, "rate limiting", || Ok(self.core.stats()))?;
        let d = PyDict::new(py);
        d.set_item("keys", stats.keys)?;
        d.set_item("memory_bytes", stats.memory_bytes)?;
        d.set_item("allowed", stats.allowed)?;
        d.set_item("denied", stats.denied)?;
        Ok(d)
    }

    /// Makes the next operation fail as a Rust panic would, to test the error path.
    fn _testing_fail_next(&self) {
        self.fail_next.store(true, Ordering::Relaxed);
    }
}

/// A key: a non-empty `str` of valid Unicode, at most `MAX_KEY_LENGTH` characters (the length is
/// checked by the core).
#[inline]
pub(crate) fn key_arg<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    let Ok(s) = key.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "key must be a str, not {}",
            type_name(key)
        )));
    };
    s.to_str().map_err(|_| {
        PyValueError::new_err("key must be valid Unicode text (it holds a lone surrogate)")
    })
}

/// A request or token amount: an `int` >= 0 (not a `bool`; `None` is refused too, not taken
/// for the default). Amounts beyond `u64` exceed every burst, so they are kept as `u64::MAX`
/// (never allowed) rather than refused.
pub(crate) struct Amount(u64);

#[inline]
fn amount(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Amount> {
    if let Ok(int) = obj.cast_exact::<PyInt>() {
        if let Ok(value) = int.extract::<u64>() {
            return Ok(Amount(value));
        }
    }
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    if obj.lt(0)? {
        return Err(PyValueError::new_err(format!(
            "{what} must be >= 0, got {obj}"
        )));
    }
    Ok(Amount(obj.extract::<u64>().unwrap_or(u64::MAX)))
}

fn cost_arg(obj: &Bound<'_, PyAny>) -> PyResult<Amount> {
    amount(obj, "cost")
}

fn tokens_arg(obj: &Bound<'_, PyAny>) -> PyResult<Amount> {
    amount(obj, "tokens")
}

/// Seconds given as an `int` or `float` (not a `bool`), as whole nanoseconds.
pub(crate) fn seconds_arg(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    if !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
        || obj.is_instance_of::<PyBool>()
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds (int or float), not {}",
            type_name(obj)
        )));
    }
    Ok(seconds_to_ns(obj.extract::<f64>()?, what)?)
}

/// Nanoseconds given as an `int` (not a `bool`).
pub(crate) fn ns_arg(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int of nanoseconds, not {}",
            type_name(obj)
        )));
    }
    let value = obj.extract::<i128>().unwrap_or(i128::MAX);
    if !(0..=crate::ratelimit::MAX_NS as i128).contains(&value) {
        return Err(RateLimitError::TimeOutOfRange { what, value }.into());
    }
    Ok(value as u64)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRateLimiter>()?;
    m.add_class::<PyRateLimitResult>()?;
    m.add_class::<PyManualClock>()?;
    m.add(
        "RATE_LIMIT_MAX_KEY_LENGTH",
        crate::ratelimit::MAX_KEY_LENGTH,
    )?;
    m.add("RATE_LIMIT_MAX_NS", crate::ratelimit::MAX_NS)?;
    Ok(())
}
