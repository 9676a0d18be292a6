//! Bindings for `crate::routing` and `crate::health`: `Router` in `fast_litellm._native`.
//!
//! The Python layer (`fast_litellm/routing.py`) reads the `model_list`, keeps the deployment
//! dicts and the clock, and hands this class plain numbers: a model group and a deployment are
//! indices, the time is seconds. A pick runs with the GIL held: it takes well under a
//! microsecond among ten deployments, less than releasing the GIL would cost.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::guard;
use crate::health::{CooldownPolicy, DeploymentPolicy, Failure};
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
    core: Router,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (strategy, groups, deployments, *, allowed_fails, cooldown_time, circuit_breaker, lowest_latency_buffer, seed))]
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
        };
        let core = Router::new(strategy, policy, lowest_latency_buffer, groups, specs, seed)?;
        Ok(Self { core })
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

    fn record_health_check(&self, index: usize, now: f64, healthy: bool) -> PyResult<()> {
        guard("routing", || {
            Ok(self.core.record_health_check(index, now, healthy)?)
        })
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
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRouter>()?;
    Ok(())
}
