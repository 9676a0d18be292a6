//! Bindings for `crate::budget`: `BudgetTracker`, `BudgetCheck` and `RedisBudget` in
//! `fast_litellm._native`.
//!
//! In process, `record` and `check` run with the GIL held: each takes well under a microsecond,
//! less than releasing and re-taking the GIL would cost. The time is read before the store is
//! entered, so a Python clock is never called while a shard lock is held. The Redis calls wait
//! without the GIL (sync) or return asyncio awaitables (async), as the rate limiter's do, and
//! raise `RateLimitBackendError` for a failure of the backend; the Python layer applies the
//! failure policy.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyTuple};

use super::aio::{awaitable, blocking};
use super::ratelimit::{key_arg, ns_arg, seconds_arg, PyManualClock};
use super::ratelimit_redis::backend_arg;
use super::{guard, type_name};
use crate::budget::redis::{redis_key, RedisBudget, SCRIPT};
use crate::budget::{
    dollars_to_nanodollars, format_dollars, BudgetError, BudgetStore, SystemClock, Verdict,
    WindowView, Windows, MAX_NANODOLLARS, NANODOLLARS_PER_DOLLAR,
};
use crate::ratelimit::redis::DEFAULT_KEY_PREFIX;
use crate::ratelimit::{validate_key, ManualClock};

impl From<BudgetError> for PyErr {
    fn from(err: BudgetError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

/// A key as every path checks it first: a non-empty `str` of at most `MAX_KEY_LENGTH`
/// characters.
#[inline]
fn budget_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    let key = key_arg(key)?;
    validate_key(key)?;
    Ok(key)
}

fn dollars(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A cost in dollars: an `int` or `float` (not a `bool`), finite, >= 0, at most
/// `MAX_NANODOLLARS`; as whole nanodollars.
fn cost_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(float) = obj.cast::<PyFloat>() {
        return Ok(dollars_to_nanodollars(float.value(), what)?);
    }
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of dollars (int or float), not {}",
            type_name(obj)
        )));
    }
    let value = obj.extract::<i128>().ok();
    match value {
        Some(v) if v < 0 => Err(PyValueError::new_err(format!(
            "{what} must be a finite number of dollars >= 0, got {v}"
        ))),
        Some(v) if v <= (MAX_NANODOLLARS / NANODOLLARS_PER_DOLLAR) as i128 => {
            Ok(v as u64 * NANODOLLARS_PER_DOLLAR)
        }
        _ => Err(PyValueError::new_err(format!(
            "{what} must be at most ${:.2} (2^53 - 1 nanodollars), got {obj}",
            MAX_NANODOLLARS as f64 / 1e9
        ))),
    }
}

/// The windows from the binding's arguments (limits in nanodollars, validated by the caller).
fn windows_arg(
    daily: Option<u64>,
    monthly: Option<u64>,
    period_ns: Option<u64>,
    period_limit: Option<u64>,
) -> PyResult<Windows> {
    let period = match (period_ns, period_limit) {
        (Some(p), Some(l)) => Some((p, l)),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("period and its limit go together")),
    };
    Ok(Windows::new(daily, monthly, period)?)
}

/// The answer to one check: truthy when the call fits every budget.
#[pyclass(module = "fast_litellm._native", name = "BudgetCheck", frozen, get_all)]
pub(crate) struct PyBudgetCheck {
    allowed: bool,
    window: &'static str,
    limit: f64,
    spent: f64,
    remaining: f64,
    estimated_cost: f64,
    reset_at: Option<f64>,
    retry_after: f64,
    reason: Option<String>,
}

impl From<Verdict> for PyBudgetCheck {
    fn from(v: Verdict) -> Self {
        let view = &v.view;
        Self {
            allowed: v.allowed,
            window: view.window.kind.name(),
            limit: dollars(view.window.limit),
            spent: dollars(view.spent),
            remaining: dollars(view.remaining()),
            estimated_cost: dollars(v.estimate),
            reset_at: view.reset_at_ns.map(seconds),
            retry_after: v.retry_after_ns.map_or(f64::INFINITY, seconds),
            reason: v.reason(),
        }
    }
}

#[pymethods]
impl PyBudgetCheck {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    /// The fields as a dict (the same keys on every path).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("allowed", self.allowed)?;
        d.set_item("window", self.window)?;
        d.set_item("limit", self.limit)?;
        d.set_item("spent", self.spent)?;
        d.set_item("remaining", self.remaining)?;
        d.set_item("estimated_cost", self.estimated_cost)?;
        d.set_item("reset_at", self.reset_at)?;
        d.set_item("retry_after", self.retry_after)?;
        d.set_item("reason", &self.reason)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let allowed = if self.allowed { "True" } else { "False" };
        format!(
            "BudgetCheck(allowed={allowed}, window='{}', remaining={}, reason={})",
            self.window,
            format_dollars((self.remaining * 1e9).round() as u64),
            self.reason
                .as_deref()
                .map_or_else(|| "None".to_owned(), |r| format!("'{r}'")),
        )
    }
}

/// `(now_ns, [(window, limit, spent, requests, reset_at_ns or None), ...])` in nanodollars.
fn status_object(py: Python<'_>, now: u64, views: &[WindowView]) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for view in views {
        list.append(PyTuple::new(
            py,
            [
                view.window.kind.name().into_pyobject(py)?.into_any(),
                view.window.limit.into_pyobject(py)?.into_any(),
                view.spent.into_pyobject(py)?.into_any(),
                view.requests.into_pyobject(py)?.into_any(),
                view.reset_at_ns.into_pyobject(py)?.into_any(),
            ],
        )?)?;
    }
    Ok((now, list).into_pyobject(py)?.into_any().unbind())
}

/// Where a tracker takes its time from (Unix time).
enum Clock {
    System(SystemClock),
    Manual(ManualClock),
    /// Any object with a `now_ns()` method (the fallback's `ManualClock`).
    NowNs(Py<PyAny>),
    /// A zero-argument callable returning seconds.
    Seconds(Py<PyAny>),
}

impl Clock {
    fn from_arg(clock: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(match clock {
            None => Clock::System(SystemClock),
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
        })
    }

    #[inline]
    fn now_ns(&self, py: Python<'_>) -> PyResult<u64> {
        match self {
            Clock::System(c) => Ok(c.now_ns()),
            Clock::Manual(c) => Ok(c.now_ns()),
            Clock::NowNs(obj) => ns_arg(&obj.bind(py).call_method0("now_ns")?, "clock time"),
            Clock::Seconds(f) => seconds_arg(&f.bind(py).call0()?, "clock time"),
        }
    }
}

/// The in-process tracker (see `crate::budget`).
#[pyclass(module = "fast_litellm._native", name = "BudgetTracker", frozen)]
pub(crate) struct PyBudgetTracker {
    store: BudgetStore,
    clock: Clock,
}

#[pymethods]
impl PyBudgetTracker {
    /// Limits in nanodollars; `period_ns` with `period_limit` for a fixed-length period.
    #[new]
    #[pyo3(signature = (daily, monthly, period_ns, period_limit, *, clock=None))]
    fn new(
        daily: Option<u64>,
        monthly: Option<u64>,
        period_ns: Option<u64>,
        period_limit: Option<u64>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            store: BudgetStore::new(windows_arg(daily, monthly, period_ns, period_limit)?),
            clock: Clock::from_arg(clock)?,
        })
    }

    /// Adds `cost` dollars (and one request) to every window of `key`.
    fn record(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let key = budget_key(key)?;
        let amount = cost_arg(cost, "cost")?;
        let now = self.clock.now_ns(py)?;
        guard("budget tracking", || {
            Ok(self.store.record(key, now, amount)?)
        })
    }

    /// Whether `estimated_cost` dollars more fit every budget of `key`.
    #[pyo3(signature = (key, estimated_cost=None))]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        estimated_cost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyBudgetCheck> {
        let key = budget_key(key)?;
        let estimate = match estimated_cost {
            Some(c) => cost_arg(c, "estimated_cost")?,
            None => 0,
        };
        let now = self.clock.now_ns(py)?;
        guard("budget tracking", || {
            Ok(self.store.check(key, now, estimate)?.into())
        })
    }

    /// `(now_ns, [(window, limit, spent, requests, reset_at_ns), ...])`, amounts in nanodollars.
    fn status(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let key = budget_key(key)?;
        let now = self.clock.now_ns(py)?;
        let views = guard("budget tracking", || Ok(self.store.status(key, now)?))?;
        status_object(py, now, &views)
    }

    /// Forgets `key`; whether it was tracked.
    fn reset(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = budget_key(key)?;
        guard("budget tracking", || Ok(self.store.reset(key)?))
    }

    /// Drops every key whose windows are all over; returns how many.
    fn cleanup(&self, py: Python<'_>) -> PyResult<usize> {
        let now = self.clock.now_ns(py)?;
        guard("budget tracking", || Ok(self.store.cleanup(now)))
    }

    /// `{"keys", "recorded", "allowed", "denied"}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.store.stats();
        let d = PyDict::new(py);
        d.set_item("keys", stats.keys)?;
        d.set_item("recorded", stats.recorded)?;
        d.set_item("allowed", stats.allowed)?;
        d.set_item("denied", stats.denied)?;
        Ok(d)
    }
}

/// A tracker whose spend lives in Redis (see `crate::budget::redis`). `now_ns` (Unix ns) is the
/// caller's clock; without it the server's clock decides.
#[pyclass(module = "fast_litellm._native", name = "RedisBudget", frozen)]
pub(crate) struct PyRedisBudget {
    inner: Arc<RedisBudget>,
}

#[pymethods]
impl PyRedisBudget {
    #[new]
    #[pyo3(signature = (
        backend, daily, monthly, period_ns, period_limit,
        *, key_prefix=DEFAULT_KEY_PREFIX, timeout=0.05
    ))]
    fn new(
        backend: &Bound<'_, PyAny>,
        daily: Option<u64>,
        monthly: Option<u64>,
        period_ns: Option<u64>,
        period_limit: Option<u64>,
        key_prefix: &str,
        timeout: f64,
    ) -> PyResult<Self> {
        let backend = backend_arg(backend)?;
        let windows = windows_arg(daily, monthly, period_ns, period_limit)?;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
            return Err(PyValueError::new_err(format!(
                "timeout must be a number of seconds in (0, 3600], got {timeout}"
            )));
        }
        let timeout = Duration::from_secs_f64(timeout);
        let inner = guard("Redis backend setup", || {
            Ok(RedisBudget::new(backend, windows, key_prefix, timeout)?)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    #[pyo3(signature = (key, cost, now_ns=None))]
    fn record(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: &Bound<'_, PyAny>,
        now_ns: Option<u64>,
    ) -> PyResult<()> {
        let key = budget_key(key)?;
        let amount = cost_arg(cost, "cost")?;
        let inner = &self.inner;
        blocking(
            py,
            "Redis budget tracking",
            inner.record(key, amount, now_ns),
        )
    }

    #[pyo3(signature = (key, cost, now_ns=None))]
    fn arecord<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'_, PyAny>,
        cost: &Bound<'_, PyAny>,
        now_ns: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = budget_key(key)?.to_owned();
        let amount = cost_arg(cost, "cost")?;
        let inner = Arc::clone(&self.inner);
        let record = async move { Ok(inner.record(&key, amount, now_ns).await?) };
        awaitable(py, "Redis budget tracking", record, |py, ()| Ok(py.None()))
    }

    #[pyo3(signature = (key, estimated_cost=None, now_ns=None))]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        estimated_cost: Option<&Bound<'_, PyAny>>,
        now_ns: Option<u64>,
    ) -> PyResult<PyBudgetCheck> {
        let key = budget_key(key)?;
        let estimate = estimated_cost.map_or(Ok(0), |c| cost_arg(c, "estimated_cost"))?;
        let inner = &self.inner;
        blocking(
            py,
            "Redis budget tracking",
            inner.check(key, estimate, now_ns),
        )
        .map(PyBudgetCheck::from)
    }

    #[pyo3(signature = (key, estimated_cost=None, now_ns=None))]
    fn acheck<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'_, PyAny>,
        estimated_cost: Option<&Bound<'_, PyAny>>,
        now_ns: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = budget_key(key)?.to_owned();
        let estimate = estimated_cost.map_or(Ok(0), |c| cost_arg(c, "estimated_cost"))?;
        let inner = Arc::clone(&self.inner);
        let check = async move { Ok(inner.check(&key, estimate, now_ns).await?) };
        awaitable(py, "Redis budget tracking", check, |py, verdict| {
            Ok(Py::new(py, PyBudgetCheck::from(verdict))?.into_any())
        })
    }

    #[pyo3(signature = (key, now_ns=None))]
    fn status(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        now_ns: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        let key = budget_key(key)?;
        let inner = &self.inner;
        let (now, views) = blocking(py, "Redis budget tracking", inner.status(key, now_ns))?;
        status_object(py, now, &views)
    }

    #[pyo3(signature = (key, now_ns=None))]
    fn astatus<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'_, PyAny>,
        now_ns: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = budget_key(key)?.to_owned();
        let inner = Arc::clone(&self.inner);
        let status = async move { Ok(inner.status(&key, now_ns).await?) };
        awaitable(py, "Redis budget tracking", status, |py, (now, views)| {
            status_object(py, now, &views)
        })
    }

    fn reset(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = budget_key(key)?;
        let inner = &self.inner;
        blocking(py, "Redis budget tracking", inner.reset(key))
    }

    fn areset<'py>(&self, py: Python<'py>, key: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let key = budget_key(key)?.to_owned();
        let inner = Arc::clone(&self.inner);
        let reset = async move { Ok(inner.reset(&key).await?) };
        awaitable(py, "Redis budget tracking", reset, |py, deleted: bool| {
            Ok(PyBool::new(py, deleted).to_owned().into_any().unbind())
        })
    }

    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        blocking(py, "Redis budget tracking", inner.ping())
    }

    #[getter]
    fn backend(&self) -> String {
        self.inner.connection().backend().describe()
    }

    #[getter]
    fn is_cluster(&self) -> bool {
        self.inner.connection().backend().is_cluster()
    }

    #[getter]
    fn key_prefix(&self) -> &str {
        self.inner.prefix()
    }

    /// The Redis key holding `key`'s spend.
    fn redis_key(&self, key: &str) -> String {
        redis_key(self.inner.prefix(), key)
    }

    fn __repr__(&self) -> String {
        format!(
            "<RedisBudget {}>",
            self.inner.connection().backend().describe()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBudgetTracker>()?;
    m.add_class::<PyBudgetCheck>()?;
    m.add_class::<PyRedisBudget>()?;
    m.add("REDIS_BUDGET_SCRIPT", SCRIPT)?;
    m.add("BUDGET_MAX_NANODOLLARS", MAX_NANODOLLARS)?;
    Ok(())
}
