//! Choosing a deployment of a model group, the way LiteLLM's router strategies choose
//! (litellm 1.110.2, `router_strategy/`), among the deployments the health tracker
//! (`crate::health`) does not hold back.
//!
//! - `simple-shuffle`: weighted by `weight`, else `rpm`, else `tpm` of `litellm_params` (the
//!   first of them with a positive value among the candidates), else uniform;
//! - `least-busy`: the fewest requests in flight, the first of equals;
//! - `latency-based-routing`: the mean of the last 10 latencies (per completion token when
//!   known; time to first token for a stream when there is one), a uniform choice among those
//!   within `buffer` (a fraction) of the lowest; this minute's successes and tokens must leave
//!   room under the deployment's rpm/tpm;
//! - `usage-based-routing`: the fewest tokens this minute, a uniform choice among equals, with
//!   room for `input_tokens` under tpm and for one more request under rpm;
//! - `cost-based`: the lowest input + output price per token, equals in the order LiteLLM's usage
//!   map holds them (first success first, then list order).
//!
//! The random choices use SplitMix64 with a caller-given seed and one uniform draw per choice
//! (53 bits, as Python's `random.random()`); the Python fallback runs the same generator with the
//! same arithmetic, so given one seed both make the same choices.
//!
//! Why minute counters and not the rate limiter's GCRA for usage-based routing: LiteLLM counts
//! requests and tokens per calendar minute, and a pick must be one LiteLLM could make; a smooth
//! limiter would refuse or admit at other moments.

use parking_lot::Mutex;

use crate::health::probe::{ProbeAnswer, ProbeSink};
use crate::health::{CooldownPolicy, DeploymentPolicy, Failure, Health, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
    CostBased,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Strategy> {
        Some(match name {
            "simple-shuffle" => Strategy::SimpleShuffle,
            "least-busy" => Strategy::LeastBusy,
            "latency-based-routing" => Strategy::LatencyBased,
            "usage-based-routing" | "usage-based-routing-v2" => Strategy::UsageBased,
            "cost-based-routing" | "cost-based" => Strategy::CostBased,
            _ => return None,
        })
    }
}

/// One deployment, as read from a LiteLLM `model_list` entry.
#[derive(Clone, Debug)]
pub struct DeploymentSpec {
    /// Index of its model group.
    pub group: usize,
    /// `litellm_params.weight`, `.rpm`, `.tpm` (0 when absent): simple-shuffle's weights.
    pub shuffle_weights: [f64; 3],
    /// rpm/tpm limits as usage-based routing reads them (first present; infinite when none).
    pub rpm_limit: f64,
    pub tpm_limit: f64,
    /// rpm/tpm limits as latency- and cost-based routing read them (first truthy).
    pub rpm_limit_truthy: f64,
    pub tpm_limit_truthy: f64,
    /// Input plus output price per token.
    pub cost: f64,
    pub policy: DeploymentPolicy,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoutingError {
    #[error("no model group {0}")]
    UnknownGroup(usize),
    #[error("no deployment {0}")]
    UnknownDeployment(usize),
    #[error("deployment {index} belongs to group {group}, which does not exist")]
    BadGroup { index: usize, group: usize },
    #[error("{0} must be a finite number >= 0")]
    BadNumber(&'static str),
    /// Every deployment is cooling down or over its limits; `retry_after` is when the first
    /// one comes back (None when that is not a matter of time).
    #[error("no deployment available")]
    NoneAvailable { retry_after: Option<f64> },
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and easy to run bit for bit in Python.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_f64() * n as f64) as usize).min(n - 1)
    }
}

struct Inner {
    health: Vec<Health>,
    rng: SplitMix64,
    successes: u64,
    candidates: Vec<usize>,
    scores: Vec<f64>,
}

pub struct Router {
    strategy: Strategy,
    policy: CooldownPolicy,
    buffer: f64,
    specs: Vec<DeploymentSpec>,
    groups: Vec<Vec<usize>>,
    inner: Mutex<Inner>,
}

fn finite_non_negative(value: f64, what: &'static str) -> Result<f64, RoutingError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(RoutingError::BadNumber(what))
    }
}

impl Router {
    pub fn new(
        strategy: Strategy,
        policy: CooldownPolicy,
        buffer: f64,
        groups: usize,
        specs: Vec<DeploymentSpec>,
        seed: u64,
    ) -> Result<Router, RoutingError> {
        finite_non_negative(policy.cooldown_time, "cooldown_time")?;
        finite_non_negative(policy.health_check_staleness, "health_check_staleness")?;
        finite_non_negative(buffer, "lowest_latency_buffer")?;
        let mut members = vec![Vec::new(); groups];
        for (index, spec) in specs.iter().enumerate() {
            for weight in spec.shuffle_weights {
                finite_non_negative(weight, "weight")?;
            }
            finite_non_negative(spec.cost, "cost")?;
            for limit in [
                spec.rpm_limit,
                spec.tpm_limit,
                spec.rpm_limit_truthy,
                spec.tpm_limit_truthy,
            ] {
                if limit.is_nan() || limit < 0.0 {
                    return Err(RoutingError::BadNumber("rpm/tpm"));
                }
            }
            members
                .get_mut(spec.group)
                .ok_or(RoutingError::BadGroup {
                    index,
                    group: spec.group,
                })?
                .push(index);
        }
        let count = specs.len();
        Ok(Router {
            strategy,
            policy,
            buffer,
            specs,
            groups: members,
            inner: Mutex::new(Inner {
                health: vec![Health::default(); count],
                rng: SplitMix64::new(seed),
                successes: 0,
                candidates: Vec::new(),
                scores: Vec::new(),
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    fn check(&self, index: usize) -> Result<(), RoutingError> {
        if index < self.specs.len() {
            Ok(())
        } else {
            Err(RoutingError::UnknownDeployment(index))
        }
    }

    /// The deployments of `group` a request may go to now, in list order.
    pub fn available(&self, group: usize, now: f64) -> Result<Vec<usize>, RoutingError> {
        let members = self
            .groups
            .get(group)
            .ok_or(RoutingError::UnknownGroup(group))?;
        let inner = self.inner.lock();
        Ok(members
            .iter()
            .copied()
            .filter(|&i| inner.health[i].available(now, self.policy.health_check_staleness))
            .collect())
    }

    pub fn is_available(&self, index: usize, now: f64) -> Result<bool, RoutingError> {
        self.check(index)?;
        Ok(self.inner.lock().health[index].available(now, self.policy.health_check_staleness))
    }

    /// Picks a deployment of `group` for a request of `input_tokens` tokens.
    pub fn pick(
        &self,
        group: usize,
        input_tokens: u64,
        stream: bool,
        now: f64,
    ) -> Result<usize, RoutingError> {
        let members = self
            .groups
            .get(group)
            .ok_or(RoutingError::UnknownGroup(group))?;
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.candidates.clear();
        inner.candidates.extend(
            members
                .iter()
                .copied()
                .filter(|&i| inner.health[i].available(now, self.policy.health_check_staleness)),
        );
        if inner.candidates.is_empty() {
            let soonest = members
                .iter()
                .map(|&i| inner.health[i].cooldown_until() - now)
                .filter(|wait| *wait > 0.0)
                .fold(None, |best: Option<f64>, wait| {
                    Some(best.map_or(wait, |b| b.min(wait)))
                });
            return Err(RoutingError::NoneAvailable {
                retry_after: soonest,
            });
        }
        let chosen = match self.strategy {
            Strategy::SimpleShuffle => Some(self.shuffle(inner)),
            Strategy::LeastBusy => inner
                .candidates
                .iter()
                .copied()
                .min_by_key(|&i| inner.health[i].in_flight),
            Strategy::LatencyBased => self.lowest_latency(inner, input_tokens, stream, now),
            Strategy::UsageBased => self.lowest_usage(inner, input_tokens, now),
            Strategy::CostBased => self.lowest_cost(inner, input_tokens, now),
        };
        let chosen = chosen.ok_or(RoutingError::NoneAvailable {
            // Over its rpm/tpm limits: the counts start again with the next minute.
            retry_after: Some(60.0 - now.rem_euclid(60.0)),
        })?;
        inner.health[chosen].picked(now);
        Ok(chosen)
    }

    fn shuffle(&self, inner: &mut Inner) -> usize {
        for metric in 0..3 {
            let largest = inner
                .candidates
                .iter()
                .map(|&i| self.specs[i].shuffle_weights[metric])
                .fold(0.0, f64::max);
            if largest <= 0.0 {
                continue;
            }
            // Python's random.choices: cumulative normalized weights, then bisect_right of one
            // uniform draw times the total.
            inner.scores.clear();
            let mut total = 0.0;
            for &i in &inner.candidates {
                total += self.specs[i].shuffle_weights[metric] / largest;
                inner.scores.push(total);
            }
            if total <= 0.0 {
                continue;
            }
            let target = inner.rng.next_f64() * total;
            let last = inner.candidates.len() - 1;
            let position = inner.scores[..last].partition_point(|&c| c <= target);
            return inner.candidates[position];
        }
        let n = inner.candidates.len();
        inner.candidates[inner.rng.below(n)]
    }

    fn lowest_latency(
        &self,
        inner: &mut Inner,
        input_tokens: u64,
        stream: bool,
        now: f64,
    ) -> Option<usize> {
        let Inner {
            health,
            rng,
            candidates,
            scores,
            ..
        } = inner;
        let mut kept = 0;
        scores.clear();
        let mut lowest = f64::INFINITY;
        for k in 0..candidates.len() {
            let i = candidates[k];
            let h = &health[i];
            let spec = &self.specs[i];
            if h.tokens_minute.get(now).saturating_add(input_tokens) as f64 > spec.tpm_limit_truthy
                || h.succeeded_minute.get(now).saturating_add(1) as f64 > spec.rpm_limit_truthy
            {
                continue;
            }
            let latency = if stream && !h.routing_ttft.is_empty() {
                h.routing_ttft.mean()
            } else {
                h.routing_latency.mean()
            };
            lowest = lowest.min(latency);
            candidates[kept] = i;
            scores.push(latency);
            kept += 1;
        }
        candidates.truncate(kept);
        if kept == 0 {
            return None;
        }
        let limit = lowest + self.buffer * lowest;
        let mut within = 0;
        for k in 0..kept {
            if scores[k] <= limit {
                candidates[within] = candidates[k];
                within += 1;
            }
        }
        Some(candidates[rng.below(within)])
    }

    fn lowest_usage(&self, inner: &mut Inner, input_tokens: u64, now: f64) -> Option<usize> {
        let Inner {
            health,
            rng,
            candidates,
            ..
        } = inner;
        let mut lowest = u64::MAX;
        let mut kept = 0;
        for k in 0..candidates.len() {
            let i = candidates[k];
            let h = &health[i];
            let spec = &self.specs[i];
            let tokens = h.tokens_minute.get(now);
            let requests = h.started_minute.get(now);
            // LiteLLM checks the rpm only once the minute has a count (`rpm + 1 >= limit`).
            if tokens.saturating_add(input_tokens) as f64 > spec.tpm_limit
                || (requests > 0 && requests.saturating_add(1) as f64 >= spec.rpm_limit)
            {
                continue;
            }
            if tokens < lowest {
                lowest = tokens;
                kept = 0;
            }
            if tokens == lowest {
                candidates[kept] = i;
                kept += 1;
            }
        }
        if kept == 0 {
            return None;
        }
        Some(candidates[rng.below(kept)])
    }

    fn lowest_cost(&self, inner: &mut Inner, input_tokens: u64, now: f64) -> Option<usize> {
        let mut best: Option<(f64, u64, usize)> = None;
        for &i in &inner.candidates {
            let h = &inner.health[i];
            let spec = &self.specs[i];
            if h.tokens_minute.get(now).saturating_add(input_tokens) as f64 > spec.tpm_limit_truthy
                || h.succeeded_minute.get(now).saturating_add(1) as f64 > spec.rpm_limit_truthy
            {
                continue;
            }
            let key = (spec.cost, h.first_success.unwrap_or(u64::MAX), i);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, i)| i)
    }

    pub fn record_start(&self, index: usize, now: f64) -> Result<(), RoutingError> {
        self.check(index)?;
        self.inner.lock().health[index].start(now);
        Ok(())
    }

    pub fn record_success(
        &self,
        index: usize,
        now: f64,
        latency: f64,
        completion_tokens: u64,
        total_tokens: u64,
        ttft: Option<f64>,
    ) -> Result<(), RoutingError> {
        self.check(index)?;
        finite_non_negative(latency, "latency")?;
        if let Some(ttft) = ttft {
            finite_non_negative(ttft, "time_to_first_token")?;
        }
        let mut inner = self.inner.lock();
        let sequence = inner.successes;
        inner.successes += 1;
        inner.health[index].success(
            now,
            latency,
            completion_tokens,
            total_tokens,
            ttft,
            sequence,
        );
        Ok(())
    }

    /// Records a failure; returns whether the deployment is now cooling down because of it.
    pub fn record_failure(
        &self,
        index: usize,
        now: f64,
        failure: Failure,
        latency: Option<f64>,
    ) -> Result<bool, RoutingError> {
        self.check(index)?;
        if let Some(latency) = latency {
            finite_non_negative(latency, "latency")?;
        }
        if let Some(retry_after) = failure.retry_after {
            if retry_after.is_nan() {
                return Err(RoutingError::BadNumber("retry_after"));
            }
        }
        let group = self.specs[index].group;
        let single = self.groups[group].len() == 1;
        let policy = self.specs[index].policy;
        let mut inner = self.inner.lock();
        Ok(inner.health[index].failure(now, failure, latency, &self.policy, policy, single))
    }

    /// The answer of an active health check; `status` and `latency` (seconds) when known.
    pub fn record_health_check(
        &self,
        index: usize,
        now: f64,
        healthy: bool,
        status: Option<u16>,
        latency: Option<f64>,
    ) -> Result<(), RoutingError> {
        self.check(index)?;
        if let Some(latency) = latency {
            finite_non_negative(latency, "latency")?;
        }
        self.inner.lock().health[index].health_check(now, healthy, status, latency);
        Ok(())
    }

    pub fn clear_cooldown(&self, index: usize) -> Result<(), RoutingError> {
        self.check(index)?;
        self.inner.lock().health[index].clear_cooldown();
        Ok(())
    }

    pub fn snapshot(&self, index: usize, now: f64) -> Result<Snapshot, RoutingError> {
        self.check(index)?;
        Ok(self.inner.lock().health[index].snapshot(now))
    }
}

/// The native health checks write their answers straight into the router's state.
impl ProbeSink for Router {
    fn record_probe(&self, index: usize, now: f64, answer: ProbeAnswer) {
        // An index out of range cannot come from a probe set built for this router, and a
        // latency is a measured duration; neither error can happen, and neither is worth a panic.
        let _ = self.record_health_check(
            index,
            now,
            answer.healthy,
            answer.status,
            Some(answer.latency),
        );
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
