//! Bindings for `crate::metrics`: the process-wide registry behind `fast_litellm.monitoring`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::ratelimit::PyManualClock;
use super::type_name;
use crate::metrics::{self, MetricsError, Outcome, Path, Summary};

impl From<MetricsError> for PyErr {
    fn from(err: MetricsError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

fn outcome_arg(outcome: &str) -> PyResult<Outcome> {
    match outcome {
        "ok" => Ok(Outcome::Ok),
        "error" => Ok(Outcome::Error),
        "refused" => Ok(Outcome::Refused),
        other => Err(PyValueError::new_err(format!(
            "outcome must be 'ok', 'error' or 'refused', not {other:?}"
        ))),
    }
}

fn path_arg(path: &str) -> PyResult<Path> {
    Path::parse(path).ok_or_else(|| {
        PyValueError::new_err(format!("path must be 'native' or 'fallback', not {path:?}"))
    })
}

/// Records one call timed by the caller: `latency_ns` nanoseconds on `path`.
#[pyfunction]
#[pyo3(signature = (operation, path, latency_ns, outcome="ok"))]
fn metrics_record(
    operation: &Bound<'_, PyString>,
    path: &str,
    latency_ns: u64,
    outcome: &str,
) -> PyResult<()> {
    let registry = metrics::registry();
    // The name quoted as Python quotes it (`repr`), as the fallback registry's error does; a
    // name that is not valid Unicode (a lone surrogate) is a bad name like any other.
    let bad_name = || -> PyResult<PyErr> {
        Ok(PyValueError::new_err(format!(
            "operation names are 1 to 64 characters of [A-Za-z0-9_.], got {}",
            operation.repr()?
        )))
    };
    let Ok(name) = operation.to_str() else {
        return Err(bad_name()?);
    };
    let op = match registry.operation(name) {
        Ok(op) => op,
        Err(MetricsError::BadName(_)) => return Err(bad_name()?),
        Err(other) => return Err(other.into()),
    };
    registry.record(op, path_arg(path)?, latency_ns, outcome_arg(outcome)?);
    Ok(())
}

fn summary<'py>(py: Python<'py>, s: &Summary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("calls", s.calls)?;
    d.set_item("errors", s.errors)?;
    d.set_item("refused", s.refused)?;
    d.set_item("samples", s.samples)?;
    d.set_item("mean_ns", s.mean_ns)?;
    d.set_item("p50_ns", s.p50_ns)?;
    d.set_item("p95_ns", s.p95_ns)?;
    d.set_item("p99_ns", s.p99_ns)?;
    d.set_item("max_ns", s.max_ns)?;
    Ok(d)
}

/// `[(operation, scope, lifetime, window), ...]` for every operation and path (`native`,
/// `fallback`, and `all` for both together) with a call; each period a dict of counters and
/// latencies in nanoseconds.
#[pyfunction]
fn metrics_snapshot(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let stats = py.detach(|| metrics::registry().snapshot());
    let out = PyList::empty(py);
    for operation in &stats {
        let rows = Path::ALL
            .map(|path| (path.as_str(), &operation.paths[path as usize]))
            .into_iter()
            .chain([("all", &operation.all)]);
        for (scope, p) in rows {
            if p.lifetime.calls == 0 {
                continue;
            }
            out.append((
                operation.name.as_str(),
                scope,
                summary(py, &p.lifetime)?,
                summary(py, &p.window)?,
            ))?;
        }
    }
    Ok(out)
}

/// The lifetime summary of `latencies_ns` recorded into a fresh registry (the health probe
/// compares it with the fallback's answer for the same records).
#[pyfunction]
fn _metrics_probe(py: Python<'_>, latencies_ns: Vec<u64>) -> PyResult<Bound<'_, PyDict>> {
    let registry = metrics::Registry::new();
    let op = registry.operation("probe")?;
    for latency in latencies_ns {
        registry.record(op, Path::Native, latency, Outcome::Ok);
    }
    let stats = registry.snapshot();
    let lifetime = stats
        .first()
        .map(|s| s.paths[Path::Native as usize].lifetime)
        .unwrap_or_default();
    summary(py, &lifetime)
}

#[pyfunction]
fn metrics_reset() {
    metrics::registry().reset();
}

/// Window time from a native `ManualClock` (tests), or the monotonic clock with `None`.
#[pyfunction]
#[pyo3(signature = (clock=None))]
fn metrics_use_clock(clock: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let manual = match clock {
        None => None,
        Some(c) => Some(
            c.cast::<PyManualClock>()
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "clock must be a native ManualClock or None, not {}",
                        type_name(c)
                    ))
                })?
                .get()
                .clock(),
        ),
    };
    metrics::registry().use_clock(manual);
    Ok(())
}

/// Whether native operations time themselves; returns the previous setting.
#[pyfunction]
fn metrics_self_timing(on: bool) -> bool {
    let before = metrics::self_timing();
    metrics::set_self_timing(on);
    before
}

/// Sets how many calls of a hot native operation share one latency sample (with `None`, only
/// reads it); returns the setting before.
#[pyfunction]
#[pyo3(signature = (every=None))]
fn metrics_sample_every(every: Option<u32>) -> PyResult<u32> {
    let registry = metrics::registry();
    let before = registry.sample_every();
    if let Some(every) = every {
        registry.set_sample_every(every)?;
    }
    Ok(before)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(metrics_record, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_reset, m)?)?;
    m.add_function(wrap_pyfunction!(_metrics_probe, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_use_clock, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_self_timing, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_sample_every, m)?)?;
    m.add("METRICS_SLOT_SECONDS", metrics::SLOT_NS / 1_000_000_000)?;
    m.add("METRICS_WINDOW_SLOTS", metrics::WINDOW_SLOTS)?;
    m.add(
        "METRICS_BUILTIN_OPERATIONS",
        metrics::BUILTIN.map(|(n, _)| n).to_vec(),
    )?;
    Ok(())
}
