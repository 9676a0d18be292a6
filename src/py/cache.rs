//! Bindings for `crate::cache`: `fast_litellm._native.ResponseCache` and `cache_key`.
//!
//! Every method runs with the GIL held: a lookup is a hash-table probe, far cheaper than
//! releasing the GIL. Values are Python objects; the ones an operation removes are dropped after
//! the cache's lock is released (a value's `__del__` may call back into the cache).

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};

use super::ratelimit::PyManualClock;
use super::type_name;
use crate::cache::key::{digest, Writer, IGNORED_PARAMETERS, MAX_DEPTH};
use crate::cache::{Cache, CacheError, NEVER};
use crate::metrics;
use crate::ratelimit::{ManualClock, MonotonicClock};

impl From<CacheError> for PyErr {
    fn from(err: CacheError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

fn write_value(w: &mut Writer, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "a cache key cannot nest deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        w.none();
    } else if let Ok(s) = obj.cast::<PyString>() {
        match s.to_str() {
            Ok(text) => w.str(text.as_bytes()),
            Err(_) => {
                // Lone surrogates: the bytes Python's `surrogatepass` writes, as the fallback does.
                let py = obj.py();
                let raw = py
                    .get_type::<PyString>()
                    .call_method1("encode", (s, "utf-8", "surrogatepass"))?;
                w.str(raw.cast::<PyBytes>()?.as_bytes());
            }
        }
    } else if let Ok(b) = obj.cast::<PyBool>() {
        w.bool(b.is_true());
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(value) => w.int(value),
            Err(_) => {
                // Beyond 64 bits: the decimal text of the int itself (not a subclass's `str`).
                let text = obj
                    .py()
                    .get_type::<PyInt>()
                    .call_method1("__repr__", (obj,))?;
                w.int_text(text.cast::<PyString>()?.to_str()?);
            }
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        w.float(f.value());
    } else if let Ok(d) = obj.cast::<PyDict>() {
        write_map(w, d, depth, false)?;
    } else if let Ok(l) = obj.cast::<PyList>() {
        w.list(l.len());
        for item in l.iter() {
            write_value(w, &item, depth + 1)?;
        }
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        w.list(t.len());
        for item in t.iter() {
            write_value(w, &item, depth + 1)?;
        }
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        w.raw_bytes(b.as_bytes());
    } else {
        return Err(PyTypeError::new_err(format!(
            "a {} cannot be part of a cache key (use str, int, float, bool, None, bytes, list, \
             tuple or dict)",
            type_name(obj)
        )));
    }
    Ok(())
}

fn write_map(w: &mut Writer, d: &Bound<'_, PyDict>, depth: usize, top: bool) -> PyResult<()> {
    let mut pairs = Vec::with_capacity(d.len());
    for (key, value) in d.iter() {
        if top {
            if let Ok(name) = key.cast::<PyString>() {
                if IGNORED_PARAMETERS
                    .iter()
                    .any(|p| name.to_str().is_ok_and(|n| n == *p))
                {
                    continue;
                }
            }
        }
        let (mut kw, mut vw) = (Writer::default(), Writer::default());
        write_value(&mut kw, &key, depth + 1)?;
        write_value(&mut vw, &value, depth + 1)?;
        pairs.push((kw.bytes, vw.bytes));
    }
    w.map(pairs);
    Ok(())
}

/// The canonical key of a request dict (model, messages and parameters; `stream` and `user`
/// left out): 64 hex digits.
fn request_key(request: &Bound<'_, PyAny>) -> PyResult<String> {
    let Ok(d) = request.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "a cache key is made from a request dict (model, messages, parameters), not a {}",
            type_name(request)
        )));
    };
    let mut w = Writer::default();
    write_map(&mut w, d, 0, true)?;
    Ok(digest(&w.bytes))
}

#[pyfunction]
fn cache_key(request: &Bound<'_, PyAny>) -> PyResult<String> {
    metrics::timed(metrics::CACHE_KEY, || request_key(request))
}

enum Clock {
    Monotonic(MonotonicClock),
    Manual(ManualClock),
    /// Any object with a `now_ns()` method (the fallback's `ManualClock`).
    NowNs(Py<PyAny>),
}

#[pyclass(module = "fast_litellm._native", name = "ResponseCache", frozen)]
pub(crate) struct PyResponseCache {
    core: Cache<Py<PyAny>>,
    ttl_ns: u64,
    clock: Clock,
}

impl PyResponseCache {
    fn now_ns(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.clock {
            Clock::Monotonic(c) => Ok(c.now_ns()),
            Clock::Manual(c) => Ok(c.now_ns()),
            Clock::NowNs(obj) => obj.bind(py).call_method0("now_ns")?.extract::<u64>(),
        }
    }

    /// The time for a lookup: a Python clock is read before the lock is taken (never call into
    /// Python under it); a Rust clock only when the entry found may have expired.
    fn lookup_time(&self, py: Python<'_>) -> PyResult<impl Fn() -> u64 + '_> {
        let read_before = match &self.clock {
            Clock::NowNs(_) => Some(self.now_ns(py)?),
            _ => None,
        };
        Ok(move || match (&self.clock, read_before) {
            (_, Some(now)) => now,
            (Clock::Monotonic(c), None) => c.now_ns(),
            (Clock::Manual(c), None) => c.now_ns(),
            (Clock::NowNs(_), None) => 0,
        })
    }

    /// A str is a key as it is; a dict is a request, keyed canonically.
    fn key_of<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
        if let Ok(s) = key.cast::<PyString>() {
            return s.to_str().map(Cow::Borrowed).map_err(|_| {
                PyValueError::new_err(
                    "a cache key must be valid Unicode text (it holds a lone surrogate)",
                )
            });
        }
        if key.is_instance_of::<PyDict>() {
            return Ok(Cow::Owned(request_key(key)?));
        }
        Err(PyTypeError::new_err(format!(
            "a cache key is a str or a request dict, not a {}",
            type_name(key)
        )))
    }

    /// The size counted against `max_bytes`: UTF-8 bytes of a str, length of bytes, otherwise
    /// `sys.getsizeof` (shallow; pass `size=` for nested values).
    fn size_of(value: &Bound<'_, PyAny>) -> PyResult<u64> {
        if let Ok(s) = value.cast::<PyString>() {
            if let Ok(text) = s.to_str() {
                return Ok(text.len() as u64);
            }
            let raw = value
                .py()
                .get_type::<PyString>()
                .call_method1("encode", (s, "utf-8", "surrogatepass"))?;
            return Ok(raw.len()? as u64);
        }
        if value.is_instance_of::<PyBytes>() || value.is_instance_of::<PyByteArray>() {
            return Ok(value.len()? as u64);
        }
        let sys = value.py().import(pyo3::intern!(value.py(), "sys"))?;
        sys.call_method1("getsizeof", (value,))?.extract::<u64>()
    }
}

fn nonneg_int(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>()
        .map_err(|_| PyValueError::new_err(format!("{what} must be an int >= 0, got {obj}")))
}

/// Seconds (int or float, not bool) as whole nanoseconds, truncated (the fallback truncates the
/// same product).
fn seconds_ns(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
        || obj.is_instance_of::<PyBool>()
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds, not {}",
            type_name(obj)
        )));
    }
    let seconds: f64 = obj.extract()?;
    if seconds.is_nan() || seconds < 0.0 || seconds.is_infinite() {
        return Err(PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, got {}",
            obj.repr()?
        )));
    }
    // `as` saturates: beyond u64 nanoseconds (584 years) is never.
    Ok((seconds * 1e9) as u64)
}

#[pymethods]
impl PyResponseCache {
    /// `ttl_seconds`: the time to live of an entry, `None` for no expiry.
    #[new]
    #[pyo3(signature = (max_entries, ttl_seconds=None, max_bytes=None, *, clock=None))]
    fn new(
        max_entries: &Bound<'_, PyAny>,
        ttl_seconds: Option<&Bound<'_, PyAny>>,
        max_bytes: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let max_entries = nonneg_int(max_entries, "max_entries")?;
        let max_bytes = max_bytes.map(|b| nonneg_int(b, "max_bytes")).transpose()?;
        let ttl_ns = match ttl_seconds {
            None => NEVER,
            Some(t) => seconds_ns(t, "ttl_seconds")?,
        };
        let clock = match clock {
            None => Clock::Monotonic(MonotonicClock::default()),
            Some(c) => {
                if let Ok(manual) = c.cast::<PyManualClock>() {
                    Clock::Manual(manual.get().clock())
                } else if c.hasattr("now_ns")? {
                    Clock::NowNs(c.clone().unbind())
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "clock must be a ManualClock (or have a now_ns() method), not {}",
                        type_name(c)
                    )));
                }
            }
        };
        Ok(Self {
            core: Cache::new(max_entries, max_bytes)?,
            ttl_ns,
            clock,
        })
    }

    /// The value stored under `key` (a str, or a request dict), or `default`.
    #[pyo3(signature = (key, default=None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        metrics::timed(metrics::CACHE_GET, || {
            let key = Self::key_of(key)?;
            let now = self.lookup_time(py)?;
            let (found, removed) = self.core.get(&key, now, |v| v.clone_ref(py));
            drop(removed);
            Ok(found.or(default).unwrap_or_else(|| py.None()))
        })
    }

    /// Stores `value` under `key`; `ttl` (seconds) overrides the cache's time to live, `size`
    /// the size counted against `max_bytes`. Whether it was stored (a value larger than
    /// `max_bytes` is not).
    #[pyo3(signature = (key, value, *, ttl=None, size=None))]
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        metrics::timed(metrics::CACHE_SET, || {
            let key = Self::key_of(key)?;
            let ttl = match ttl {
                None => self.ttl_ns,
                Some(t) => seconds_ns(t, "ttl")?,
            };
            let size = match size {
                Some(s) => nonneg_int(s, "size")?,
                None if self.core.max_bytes().is_some() => Self::size_of(value)?,
                None => 0,
            };
            let now = self.now_ns(py)?;
            let expires_at = if ttl == NEVER {
                NEVER
            } else {
                now.saturating_add(ttl)
            };
            let (stored, removed) = self
                .core
                .set(&key, value.clone().unbind(), size, expires_at);
            drop(removed);
            Ok(stored)
        })
    }

    /// Removes `key`; whether it was there.
    fn delete(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = Self::key_of(key)?;
        let (found, removed) = self.core.delete(&key);
        drop(removed);
        Ok(found)
    }

    /// Removes every expired entry; how many.
    fn cleanup(&self, py: Python<'_>) -> PyResult<usize> {
        let now = self.now_ns(py)?;
        Ok(self.core.cleanup(now).len())
    }

    /// Removes every entry (the counters stay).
    fn clear(&self) {
        drop(self.core.clear());
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    /// The keys from least to most recently used.
    fn keys(&self) -> Vec<String> {
        self.core.keys_lru_first()
    }

    /// `{"entries", "bytes", "hits", "misses", "evictions", "expirations", "max_entries",
    /// "max_bytes"}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.core.stats();
        let d = PyDict::new(py);
        d.set_item("entries", s.entries)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("expirations", s.expirations)?;
        d.set_item("max_entries", self.core.max_entries())?;
        d.set_item("max_bytes", self.core.max_bytes())?;
        let ttl = (self.ttl_ns != NEVER).then(|| self.ttl_ns as f64 / 1e9);
        d.set_item("ttl_seconds", ttl)?;
        Ok(d)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyResponseCache>()?;
    m.add_function(wrap_pyfunction!(cache_key, m)?)?;
    m.add("CACHE_IGNORED_PARAMETERS", IGNORED_PARAMETERS.to_vec())?;
    m.add("CACHE_MAX_DEPTH", MAX_DEPTH)?;
    Ok(())
}
