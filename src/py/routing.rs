//! Bindings for `crate::routing` and `crate::health`: `Router` in `fast_litellm._native`.
//!
//! The Python layer (`fast_litellm/routing.py`) reads the `model_list`, keeps the deployment
//! dicts and the clock, and hands this class plain numbers: a model group and a deployment are
//! indices, the time is seconds. A pick runs with the GIL held: it takes well under a
//! microsecond among ten deployments, less than releasing the GIL would cost.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::aio::blocking_task;
use super::guard;
use super::ratelimit::PyManualClock;
use crate::health::probe::{probe_client, ProbeClock, ProbeSet, ProbeSink, Prober};
use crate::health::{CooldownPolicy, DeploymentPolicy, Failure};
use crate::http::Client;
use crate::routing::{DeploymentSpec, Router, RoutingError, Strategy};

pyo3::import_exception!(fast_litellm.errors, NoDeploymentAvailable);

impl From<RoutingError> for PyErr {
    fn from(err: RoutingError) -> PyErr {
        match err {
            RoutingError::NoneAvailable { retry_after } => {
                NoDeploymentAvailable::new_err(("no deployment available", retry_after))
            }
            other => PyValueError::new_err(other.to_string()),
        }
    }
}

/// One deployment as the Python layer reads it from a `model_list` entry: its group, the
/// simple-shuffle weights (weight, rpm, tpm), the rpm/tpm limits (first present, then first
/// truthy), the price per token, and its own cooldown time and allowed fails.
type SpecTuple = (
    usize,
    (f64, f64, f64),
    (f64, f64, f64, f64),
    f64,
    Option<f64>,
    Option<u64>,
);

#[pyclass(module = "fast_litellm._native", name = "Router", frozen)]
pub(crate) struct PyRouter {
    /// Shared with the health-check task, which writes into it.
    core: Arc<Router>,
    /// The client of the health checks, built on first use (a slot, not a lock: see
    /// `crate::published` on locks and fork).
    health_client: ArcSwapOption<Client>,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (strategy, groups, deployments, *, allowed_fails, cooldown_time, circuit_breaker, lowest_latency_buffer, seed, health_check_staleness))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        strategy: &str,
        groups: usize,
        deployments: Vec<SpecTuple>,
        allowed_fails: Option<u64>,
        cooldown_time: f64,
        circuit_breaker: bool,
        lowest_latency_buffer: f64,
        seed: u64,
        health_check_staleness: f64,
    ) -> PyResult<Self> {
        let strategy = Strategy::parse(strategy)
            .ok_or_else(|| PyValueError::new_err(format!("unknown strategy {strategy:?}")))?;
        let specs = deployments
            .into_iter()
            .map(
                |(group, (weight, rpm, tpm), limits, cost, own_cooldown, own_fails)| {
                    DeploymentSpec {
                        group,
                        shuffle_weights: [weight, rpm, tpm],
                        rpm_limit: limits.0,
                        tpm_limit: limits.1,
                        rpm_limit_truthy: limits.2,
                        tpm_limit_truthy: limits.3,
                        cost,
                        policy: DeploymentPolicy {
                            cooldown_time: own_cooldown,
                            allowed_fails: own_fails,
                        },
                    }
                },
            )
            .collect();
        let policy = CooldownPolicy {
            allowed_fails,
            cooldown_time,
            circuit_breaker,
            health_check_staleness,
        };
        let core = Router::new(strategy, policy, lowest_latency_buffer, groups, specs, seed)?;
        Ok(Self {
            core: Arc::new(core),
            health_client: ArcSwapOption::empty(),
        })
    }

    fn pick(&self, group: usize, input_tokens: u64, stream: bool, now: f64) -> PyResult<usize> {
        guard("routing", || {
            Ok(self.core.pick(group, input_tokens, stream, now)?)
        })
    }

    fn available(&self, group: usize, now: f64) -> PyResult<Vec<usize>> {
        guard("routing", || Ok(self.core.available(group, now)?))
    }

    fn is_available(&self, index: usize, now: f64) -> PyResult<bool> {
        guard("routing", || Ok(self.core.is_available(index, now)?))
    }

    fn record_start(&self, index: usize, now: f64) -> PyResult<()> {
        guard("routing", || Ok(self.core.record_start(index, now)?))
    }

    #[pyo3(signature = (index, now, latency, completion_tokens, total_tokens, time_to_first_token))]
    fn record_success(
        &self,
        index: usize,
        now: f64,
        latency: f64,
        completion_tokens: u64,
        total_tokens: u64,
        time_to_first_token: Option<f64>,
    ) -> PyResult<()> {
        guard("routing", || {
            Ok(self.core.record_success(
                index,
                now,
                latency,
                completion_tokens,
                total_tokens,
                time_to_first_token,
            )?)
        })
    }

    #[pyo3(signature = (index, now, status, retry_after, timeout, connection_error, latency))]
    #[allow(clippy::too_many_arguments)]
    fn record_failure(
        &self,
        index: usize,
        now: f64,
        status: u16,
        retry_after: Option<f64>,
        timeout: bool,
        connection_error: bool,
        latency: Option<f64>,
    ) -> PyResult<bool> {
        let failure = Failure {
            status,
            retry_after,
            timeout,
            connection_error,
        };
        guard("routing", || {
            Ok(self.core.record_failure(index, now, failure, latency)?)
        })
    }

    #[pyo3(signature = (index, now, healthy, status_code=None, latency=None))]
    fn record_health_check(
        &self,
        index: usize,
        now: f64,
        healthy: bool,
        status_code: Option<u16>,
        latency: Option<f64>,
    ) -> PyResult<()> {
        guard("routing", || {
            Ok(self
                .core
                .record_health_check(index, now, healthy, status_code, latency)?)
        })
    }

    /// One round of health checks of `targets` (index, URL), all at once on the runtime with the
    /// GIL released; each answer is recorded at the time of `clock` (a `ManualClock`, else the
    /// caller's monotonic clock, which read `origin` just before the call). The answers
    /// (healthy or not) in the order of `targets`.
    #[pyo3(signature = (targets, timeout, clock, origin))]
    fn check_health(
        &self,
        py: Python<'_>,
        targets: Vec<(usize, String)>,
        timeout: f64,
        clock: Option<PyRef<'_, PyManualClock>>,
        origin: f64,
    ) -> PyResult<Vec<bool>> {
        let set = self.probe_set(targets, timeout, clock, origin)?;
        let core = Arc::clone(&self.core);
        // As a task of the runtime, so that Ctrl-C (or a server's SIGTERM handler) stops the
        // round at once instead of when its slowest check ends (see `blocking_task`).
        let answers = blocking_task(py, "routing", async move {
            Ok::<_, PyErr>(set.round(&*core).await)
        })?;
        Ok(answers.iter().map(|a| a.healthy).collect())
    }

    /// Starts health checks of `targets` every `interval` seconds on the runtime (see
    /// `check_health` for the clock); they run until the returned prober is stopped or dropped.
    #[pyo3(signature = (targets, interval, timeout, clock, origin))]
    fn start_health_checks(
        &self,
        targets: Vec<(usize, String)>,
        interval: f64,
        timeout: f64,
        clock: Option<PyRef<'_, PyManualClock>>,
        origin: f64,
    ) -> PyResult<PyHealthProber> {
        let interval = seconds(interval, "interval")?;
        let set = self.probe_set(targets, timeout, clock, origin)?;
        let sink: Arc<dyn ProbeSink> = self.core.clone();
        let prober = guard("routing", || Ok(Prober::start(set, sink, interval)))?;
        Ok(PyHealthProber { inner: prober })
    }

    fn clear_cooldown(&self, index: usize) -> PyResult<()> {
        guard("routing", || Ok(self.core.clear_cooldown(index)?))
    }

    fn status<'py>(&self, py: Python<'py>, index: usize, now: f64) -> PyResult<Bound<'py, PyDict>> {
        let s = guard("routing", || Ok(self.core.snapshot(index, now)?))?;
        let d = PyDict::new(py);
        d.set_item("state", s.state.name())?;
        d.set_item("cooldown_remaining", s.cooldown_remaining)?;
        d.set_item(
            "cooldown_status_code",
            (s.cooldown_status != 0).then_some(s.cooldown_status),
        )?;
        d.set_item("successes", s.successes)?;
        d.set_item("failures", s.failures)?;
        d.set_item("total_successes", s.total_successes)?;
        d.set_item("total_failures", s.total_failures)?;
        d.set_item("consecutive_failures", s.consecutive_failures)?;
        d.set_item("in_flight", s.in_flight)?;
        d.set_item("latency_ewma", s.latency_ewma)?;
        d.set_item("latency_p50", s.latency_p50)?;
        d.set_item("latency_p95", s.latency_p95)?;
        d.set_item("latency_p99", s.latency_p99)?;
        d.set_item("time_to_first_token_ewma", s.ttft_ewma)?;
        d.set_item("requests_this_minute", s.requests_this_minute)?;
        d.set_item("tokens_this_minute", s.tokens_this_minute)?;
        d.set_item("health_check", s.health_check)?;
        let checks = s.health_checks;
        d.set_item("health_checks_passed", checks.passed)?;
        d.set_item("health_checks_failed", checks.failed)?;
        d.set_item(
            "consecutive_health_check_failures",
            checks.consecutive_failures,
        )?;
        d.set_item("health_check_status_code", checks.last_status)?;
        d.set_item("health_check_latency", checks.last_latency)?;
        d.set_item(
            "health_check_age",
            checks.last_at.map(|at| (now - at).max(0.0)),
        )?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 {
        Duration::try_from_secs_f64(value)
            .map_err(|_| PyValueError::new_err(format!("{what} is too large: {value}")))
    } else {
        Err(PyValueError::new_err(format!(
            "{what} must be a finite number > 0, got {value}"
        )))
    }
}

impl PyRouter {
    fn probe_set(
        &self,
        targets: Vec<(usize, String)>,
        timeout: f64,
        clock: Option<PyRef<'_, PyManualClock>>,
        origin: f64,
    ) -> PyResult<ProbeSet> {
        let timeout = seconds(timeout, "timeout")?;
        if let Some((index, _)) = targets.iter().find(|(i, _)| *i >= self.core.len()) {
            return Err(PyValueError::new_err(format!("no deployment {index}")));
        }
        let clock = match clock {
            Some(manual) => ProbeClock::Manual(manual.clock()),
            None => ProbeClock::monotonic(origin),
        };
        Ok(ProbeSet {
            client: self.health_client()?,
            targets,
            timeout,
            clock,
        })
    }

    /// The health checks' client. Its own limits are the first caller's; each check sets its
    /// own anyway.
    fn health_client(&self) -> PyResult<Arc<Client>> {
        if let Some(client) = self.health_client.load_full() {
            return Ok(client);
        }
        let built = Arc::new(
            probe_client(Duration::from_secs(5))
                .map_err(|err| PyValueError::new_err(err.to_string()))?,
        );
        let previous = self
            .health_client
            .compare_and_swap(&None::<Arc<Client>>, Some(Arc::clone(&built)));
        Ok(match previous.as_ref() {
            Some(winner) => Arc::clone(winner),
            None => built,
        })
    }
}

/// Health checks running on the runtime (`HealthTracker.start_health_checks`); they stop when
/// this is stopped or dropped. In a child process made by `fork()` they are not running (the
/// task stayed in the parent) and `forked` says why.
#[pyclass(module = "fast_litellm._native", name = "HealthProber", frozen)]
pub(crate) struct PyHealthProber {
    inner: Prober,
}

#[pymethods]
impl PyHealthProber {
    /// Stops the checks; waits up to `timeout` seconds (None: as long as it takes, which is
    /// the next await of the task) for them to be gone. Whether they are.
    #[pyo3(signature = (timeout=None))]
    fn stop(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let wait = match timeout {
            Some(value) if value.is_finite() && value >= 0.0 => {
                Some(Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX))
            }
            Some(value) if value == f64::INFINITY => None,
            Some(value) => {
                return Err(PyValueError::new_err(format!(
                    "timeout must be a number >= 0, got {value}"
                )))
            }
            None => None,
        };
        guard("routing", || Ok(py.detach(|| self.inner.stop(wait))))
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner.running()
    }

    #[getter]
    fn forked(&self) -> bool {
        self.inner.forked()
    }

    #[getter]
    fn rounds(&self) -> u64 {
        self.inner.rounds()
    }
}
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRouter>()?;
    m.add_class::<PyHealthProber>()?;
    Ok(())
}
