//! Bindings for `crate::ratelimit::redis`: `fast_litellm._native.RedisRateLimiter`.
//!
//! Sync calls block on the process-wide runtime (`crate::runtime`) with the GIL released: the
//! wait is a network round trip, and other Python threads run meanwhile. Async calls return an
//! asyncio future completed from that same runtime (`super::aio`), so every thread and every
//! event loop shares one multiplexed connection per limiter.
//!
//! Backend failures (Redis down, slow, answering nonsense) raise
//! `fast_litellm.errors.RateLimitBackendError`; the Python layer applies the limiter's failure
//! policy to them. Caller mistakes raise `ValueError`/`TypeError`, panics `NativeError`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::aio::{awaitable, blocking};
use super::ratelimit::{limits_arg, PyRateLimitResult};
use super::{guard, type_name};
use crate::ratelimit::redis::{
    redis_keys, Backend, RedisBackendError, RedisLimiter, DEFAULT_KEY_PREFIX, SCRIPT,
};
use crate::ratelimit::Decision;

pyo3::import_exception!(fast_litellm.errors, RateLimitBackendError);

impl From<RedisBackendError> for PyErr {
    fn from(err: RedisBackendError) -> PyErr {
        if err.is_backend_failure() {
            RateLimitBackendError::new_err(err.to_string())
        } else {
            PyValueError::new_err(err.to_string())
        }
    }
}

/// A rate limiter whose state lives in Redis (see `crate::ratelimit::redis`).
#[pyclass(module = "fast_litellm._native", name = "RedisRateLimiter", frozen)]
pub(crate) struct PyRedisRateLimiter {
    inner: Arc<RedisLimiter>,
}

#[pymethods]
impl PyRedisRateLimiter {
    #[new]
    #[pyo3(signature = (
        backend, request_interval_ns, burst, token_interval_ns, token_burst,
        *, key_prefix=DEFAULT_KEY_PREFIX, timeout=0.05
    ))]
    fn new(
        backend: &Bound<'_, PyAny>,
        request_interval_ns: Option<u64>,
        burst: Option<u64>,
        token_interval_ns: Option<u64>,
        token_burst: Option<u64>,
        key_prefix: &str,
        timeout: f64,
    ) -> PyResult<Self> {
        let backend = backend_arg(backend)?;
        let limits = limits_arg(request_interval_ns, burst, token_interval_ns, token_burst)?;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
            return Err(PyValueError::new_err(format!(
                "timeout must be a number of seconds in (0, 3600], got {timeout}"
            )));
        }
        let timeout = Duration::from_secs_f64(timeout);
        let inner = guard("Redis backend setup", || {
            Ok(RedisLimiter::new(backend, limits, key_prefix, timeout)?)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Decides and, when allowed, consumes `cost` requests and `tokens` tokens for `key`: one
    /// script call, waited for without the GIL.
    #[pyo3(signature = (key, cost=1, tokens=0))]
    fn check(
        &self,
        py: Python<'_>,
        key: &str,
        cost: u64,
        tokens: u64,
    ) -> PyResult<PyRateLimitResult> {
        self.blocking(py, key, cost, tokens, true)
    }

    /// What `check` would answer now, without consuming.
    #[pyo3(signature = (key, cost=1, tokens=0))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &str,
        cost: u64,
        tokens: u64,
    ) -> PyResult<PyRateLimitResult> {
        self.blocking(py, key, cost, tokens, false)
    }

    /// `check` as an awaitable; concurrent calls share the connection (pipelined).
    #[pyo3(signature = (key, cost=1, tokens=0))]
    fn acheck<'py>(
        &self,
        py: Python<'py>,
        key: String,
        cost: u64,
        tokens: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let check = async move { Ok(inner.check(&key, cost, tokens, true).await?) };
        awaitable(py, "Redis rate limiting", check, result_object)
    }

    /// `peek` as an awaitable.
    #[pyo3(signature = (key, cost=1, tokens=0))]
    fn apeek<'py>(
        &self,
        py: Python<'py>,
        key: String,
        cost: u64,
        tokens: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let peek = async move { Ok(inner.check(&key, cost, tokens, false).await?) };
        awaitable(py, "Redis rate limiting", peek, result_object)
    }

    /// Forgets `key` on the server; whether it held any state.
    fn reset(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let inner = &self.inner;
        blocking(py, "Redis rate limiting", inner.reset(key))
    }

    fn areset<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let reset = async move { Ok(inner.reset(&key).await?) };
        awaitable(py, "Redis rate limiting", reset, |py, deleted: bool| {
            Ok(pyo3::types::PyBool::new(py, deleted)
                .to_owned()
                .into_any()
                .unbind())
        })
    }

    /// One `PING` round trip, bounded by the timeout.
    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        blocking(py, "Redis rate limiting", inner.ping())
    }

    fn aping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let ping = async move { Ok(inner.ping().await?) };
        awaitable(py, "Redis rate limiting", ping, |py, ()| Ok(py.None()))
    }

    /// The backend, with passwords masked.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend().describe()
    }

    #[getter]
    fn is_cluster(&self) -> bool {
        self.inner.backend().is_cluster()
    }

    #[getter]
    fn key_prefix(&self) -> &str {
        self.inner.prefix()
    }

    /// Seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.inner.timeout().as_secs_f64()
    }

    /// The two Redis keys of `key`: `(requests, tokens)`.
    fn redis_keys(&self, key: &str) -> (String, String) {
        redis_keys(self.inner.prefix(), key)
    }

    fn __repr__(&self) -> String {
        format!("<RedisRateLimiter {}>", self.inner.backend().describe())
    }
}

impl PyRedisRateLimiter {
    fn blocking(
        &self,
        py: Python<'_>,
        key: &str,
        cost: u64,
        tokens: u64,
        consume: bool,
    ) -> PyResult<PyRateLimitResult> {
        let inner = &self.inner;
        blocking(
            py,
            "Redis rate limiting",
            inner.check(key, cost, tokens, consume),
        )
        .map(PyRateLimitResult::from)
    }
}

/// The Python object of one decision (made on the event loop thread, with the GIL).
fn result_object(py: Python<'_>, decision: Decision) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, PyRateLimitResult::from(decision))?.into_any())
}

/// A backend: one URL (`str`), or the node URLs of a Redis Cluster (a list or tuple of `str`).
pub(crate) fn backend_arg(obj: &Bound<'_, PyAny>) -> PyResult<Backend> {
    if let Ok(url) = obj.cast::<PyString>() {
        return Ok(Backend::parse(url.to_str()?)?);
    }
    if obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err("backend must be a str URL, not bytes"));
    }
    let urls: Vec<String> = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "backend must be a Redis URL or a list of Redis Cluster node URLs, not {}",
            type_name(obj)
        ))
    })?;
    Ok(Backend::cluster(&urls)?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRedisRateLimiter>()?;
    m.add("REDIS_GCRA_SCRIPT", SCRIPT)?;
    Ok(())
}
