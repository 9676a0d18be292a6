//! Health of one deployment: what happened to its requests (a sliding window of successes and
//! failures, latency and time-to-first-token), how many are in flight, and whether it is cooling
//! down. The cooldown rules are LiteLLM's router rules (litellm 1.110.2,
//! `router_utils/cooldown_handlers.py`), so a deployment is taken out of rotation exactly when
//! LiteLLM's own router would take it out:
//!
//! - only some failures count: a 4xx other than 401, 402, 404, 408 and 429 is the caller's fault;
//! - a cooldown lasts the deployment's own `cooldown_time`, else the Retry-After the provider sent,
//!   else the router's `cooldown_time`; a zero cooldown means none;
//! - with `allowed_fails` set, the failures counted (each one extends that counter's life by the
//!   cooldown time) must exceed it; a model group with a single deployment is never cooled down;
//! - without it: a 429 cools down at once (not the only deployment of its group); more than half
//!   of this minute's requests failing, with at least 5 of them, cools down (same condition);
//!   a status that is never retried (401, 402, 404) cools down at once; all of at least 1,000
//!   requests failing cools down even a group's only deployment.
//!
//! On top of that an optional circuit breaker: when a cooldown ends the deployment is half-open,
//! one request probes it (no other is sent there while it runs), a success closes the circuit, a
//! failure opens it again for another cooldown. LiteLLM has no such state, so it is off unless
//! asked for.
//!
//! Time is seconds from the caller's clock (`now` on every call); nothing here reads a clock.
//!
//! Why the percentiles come from the last 256 latencies rather than an `hdrhistogram`: the Python
//! fallback must report the same numbers, and an exact nearest-rank over a small ring is the same
//! in both; recent latencies are also what a health report is about. (Lifetime histograms of the
//! package's own operations belong to the monitoring feature.)

pub mod probe;

/// LiteLLM's `DEFAULT_COOLDOWN_TIME_SECONDS`.
pub const DEFAULT_COOLDOWN_SECONDS: f64 = 5.0;
/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_PERCENT`.
pub const FAILURE_THRESHOLD_PERCENT: f64 = 0.5;
/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_MINIMUM_REQUESTS`.
pub const FAILURE_THRESHOLD_MINIMUM_REQUESTS: u64 = 5;
/// LiteLLM's `SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD`.
pub const SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD: u64 = 1000;
/// LiteLLM keeps the last 10 latencies of a deployment for latency-based routing
/// (`RoutingArgs.max_latency_list_size`).
pub const LATENCY_SAMPLES: usize = 10;
/// The latency LiteLLM records for a timed-out request (seconds).
pub const TIMEOUT_PENALTY_SECONDS: f64 = 1000.0;
/// Recent latencies kept for the percentiles of `status()`.
pub const PERCENTILE_SAMPLES: usize = 256;
/// Weight of the newest latency in the moving average.
pub const EWMA_ALPHA: f64 = 0.2;
/// Length of the sliding window of successes and failures, in one-second buckets.
pub const WINDOW_SECONDS: usize = 60;
/// LiteLLM's per-minute counters live 60 s after their last increment.
const MINUTE_COUNTER_TTL: f64 = 60.0;

/// A counter that forgets its value `ttl` seconds after its last increment, as LiteLLM's
/// in-memory `increment_cache(key, ttl=...)` does (every increment sets the key again).
#[derive(Clone, Debug, Default)]
pub struct ExpiringCounter {
    value: u64,
    expires_at: f64,
}

impl ExpiringCounter {
    pub fn get(&self, now: f64) -> u64 {
        if now < self.expires_at {
            self.value
        } else {
            0
        }
    }

    pub fn increment(&mut self, now: f64, ttl: f64) -> u64 {
        self.value = self.get(now) + 1;
        self.expires_at = now + ttl;
        self.value
    }

    pub fn clear(&mut self) {
        self.value = 0;
        self.expires_at = 0.0;
    }
}

/// Counts per calendar minute of the clock (`floor(now / 60)`), as LiteLLM keys its usage.
#[derive(Clone, Debug, Default)]
pub struct MinuteCounter {
    minute: i64,
    value: u64,
}

impl MinuteCounter {
    pub fn get(&self, now: f64) -> u64 {
        if self.minute == minute_of(now) {
            self.value
        } else {
            0
        }
    }

    pub fn add(&mut self, now: f64, amount: u64) {
        let minute = minute_of(now);
        if self.minute != minute {
            self.minute = minute;
            self.value = 0;
        }
        self.value = self.value.saturating_add(amount);
    }
}

pub fn minute_of(now: f64) -> i64 {
    (now / 60.0).floor() as i64
}

/// Successes and failures over the last `WINDOW_SECONDS` seconds, in one-second buckets.
#[derive(Clone, Debug)]
pub struct Window {
    seconds: [i64; WINDOW_SECONDS],
    successes: [u32; WINDOW_SECONDS],
    failures: [u32; WINDOW_SECONDS],
}

impl Default for Window {
    fn default() -> Self {
        Window {
            seconds: [i64::MIN; WINDOW_SECONDS],
            successes: [0; WINDOW_SECONDS],
            failures: [0; WINDOW_SECONDS],
        }
    }
}

impl Window {
    fn slot(&mut self, now: f64) -> usize {
        let second = now.floor() as i64;
        let slot = second.rem_euclid(WINDOW_SECONDS as i64) as usize;
        if self.seconds[slot] != second {
            self.seconds[slot] = second;
            self.successes[slot] = 0;
            self.failures[slot] = 0;
        }
        slot
    }

    pub fn add(&mut self, now: f64, success: bool) {
        let slot = self.slot(now);
        if success {
            self.successes[slot] = self.successes[slot].saturating_add(1);
        } else {
            self.failures[slot] = self.failures[slot].saturating_add(1);
        }
    }

    /// (successes, failures) in the window ending at `now`.
    pub fn totals(&self, now: f64) -> (u64, u64) {
        let current = now.floor() as i64;
        let mut totals = (0u64, 0u64);
        for slot in 0..WINDOW_SECONDS {
            let second = self.seconds[slot];
            if second <= current && second > current - WINDOW_SECONDS as i64 {
                totals.0 += u64::from(self.successes[slot]);
                totals.1 += u64::from(self.failures[slot]);
            }
        }
        totals
    }
}

/// A fixed-size ring of the most recent samples, oldest first when read.
#[derive(Clone, Debug)]
pub struct Recent<const N: usize> {
    samples: Vec<f64>,
    next: usize,
}

impl<const N: usize> Default for Recent<N> {
    fn default() -> Self {
        Recent {
            samples: Vec::new(),
            next: 0,
        }
    }
}

impl<const N: usize> Recent<N> {
    pub fn push(&mut self, sample: f64) {
        if self.samples.len() < N {
            self.samples.push(sample);
        } else {
            self.samples[self.next] = sample;
            self.next = (self.next + 1) % N;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, oldest first (the order matters for a sum in floating point).
    pub fn ordered(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.samples.split_at(self.next);
        older.iter().chain(newer.iter()).copied()
    }

    /// LiteLLM's `_average_latency`: the mean of the samples in order, 0 when there are none.
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for sample in self.ordered() {
            sum += sample;
        }
        sum / self.samples.len() as f64
    }

    /// Nearest-rank percentile (`q` in 0..=1) of the samples, `None` when there are none.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = (q * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }
}

/// Where a deployment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Healthy,
    CoolingDown,
    /// The cooldown is over and the circuit breaker waits for one request to succeed.
    HalfOpen,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::CoolingDown => "cooldown",
            State::HalfOpen => "half_open",
        }
    }
}

/// Router-wide settings of the cooldown rules.
#[derive(Clone, Debug)]
pub struct CooldownPolicy {
    /// `Some(n)`: LiteLLM's "allowed fails" mode; `None`: its failure-rate mode.
    pub allowed_fails: Option<u64>,
    pub cooldown_time: f64,
    pub circuit_breaker: bool,
    /// Seconds after which a failed health check no longer keeps a deployment out: the answer
    /// is then unknown, as LiteLLM treats a stale health state (its default, twice its
    /// 300-second check interval, is [`DEFAULT_HEALTH_CHECK_STALENESS_SECONDS`]).
    pub health_check_staleness: f64,
}

/// LiteLLM's default staleness of a health check (`DEFAULT_HEALTH_CHECK_INTERVAL` times
/// `DEFAULT_HEALTH_CHECK_STALENESS_MULTIPLIER`).
pub const DEFAULT_HEALTH_CHECK_STALENESS_SECONDS: f64 = 600.0;

impl Default for CooldownPolicy {
    fn default() -> Self {
        CooldownPolicy {
            allowed_fails: None,
            cooldown_time: DEFAULT_COOLDOWN_SECONDS,
            circuit_breaker: false,
            health_check_staleness: DEFAULT_HEALTH_CHECK_STALENESS_SECONDS,
        }
    }
}

/// One failure as the tracker sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Failure {
    /// The HTTP status (LiteLLM reads a failure without one as a 500).
    pub status: u16,
    /// The provider's Retry-After, in seconds.
    pub retry_after: Option<f64>,
    /// A timed-out request, which LiteLLM's latency routing charges 1000 s.
    pub timeout: bool,
    /// The "APIConnectionError" failures LiteLLM never cools down for.
    pub connection_error: bool,
}

/// Per-deployment settings that override the router's (LiteLLM reads them from `model_info`,
/// then `litellm_params`).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeploymentPolicy {
    pub cooldown_time: Option<f64>,
    pub allowed_fails: Option<u64>,
}

/// Everything the tracker knows about one deployment.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub in_flight: u64,
    /// When the half-open circuit's probe was sent, while it runs.
    probe_started: Option<f64>,
    /// How long a probe holds the half-open circuit: the cooldown that opened it (at least the
    /// default). A probe whose end is never recorded (its task cancelled, a crash between
    /// `start` and the outcome) stops holding it then, instead of keeping the deployment out of
    /// rotation for ever; a probe still running by then lets one more through.
    probe_lease: f64,
    cooldown_until: f64,
    cooldown_status: u16,
    half_open: bool,
    pub consecutive_failures: u64,
    pub total_successes: u64,
    pub total_failures: u64,
    window: Window,
    successes_minute: ExpiringCounter,
    failures_minute: ExpiringCounter,
    allowed_fails: ExpiringCounter,
    /// LiteLLM's latency routing list: the last 10 latencies (per completion token when known).
    pub routing_latency: Recent<LATENCY_SAMPLES>,
    pub routing_ttft: Recent<LATENCY_SAMPLES>,
    latencies: Recent<PERCENTILE_SAMPLES>,
    latency_ewma: Option<f64>,
    ttft_ewma: Option<f64>,
    /// Requests started (usage-based routing's rpm) and successes with their tokens (latency-
    /// and cost-based routing's rpm/tpm) in the current minute.
    pub started_minute: MinuteCounter,
    pub succeeded_minute: MinuteCounter,
    pub tokens_minute: MinuteCounter,
    /// Order of the first success (LiteLLM's usage map lists deployments in that order).
    pub first_success: Option<u64>,
    /// The answer of the last active health check, if any: a deployment that failed it takes no
    /// request until one passes (LiteLLM's health-check routing).
    health_check: Option<bool>,
    /// The active health checks' own record, apart from the requests' (a check is not a request:
    /// it neither counts toward the failure rate that cools a deployment down nor moves the
    /// latencies that latency-based routing compares).
    pub health_checks: HealthChecks,
}

/// What the active health checks of one deployment found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HealthChecks {
    pub passed: u64,
    pub failed: u64,
    pub consecutive_failures: u64,
    /// The HTTP status of the last check, when it answered in time.
    pub last_status: Option<u16>,
    /// Seconds the last check took, when known.
    pub last_latency: Option<f64>,
    /// The tracker's time of the last check.
    pub last_at: Option<f64>,
}

fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        None => sample,
        Some(value) => value + EWMA_ALPHA * (sample - value),
    }
}

/// What `status()` reports for one deployment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub state: State,
    pub cooldown_remaining: f64,
    pub cooldown_status: u16,
    pub successes: u64,
    pub failures: u64,
    pub total_successes: u64,
    pub total_failures: u64,
    pub consecutive_failures: u64,
    pub in_flight: u64,
    pub latency_ewma: Option<f64>,
    pub latency_p50: Option<f64>,
    pub latency_p95: Option<f64>,
    pub latency_p99: Option<f64>,
    pub ttft_ewma: Option<f64>,
    pub requests_this_minute: u64,
    pub tokens_this_minute: u64,
    pub health_check: Option<bool>,
    pub health_checks: HealthChecks,
}

impl Health {
    pub fn state(&self, now: f64) -> State {
        if now < self.cooldown_until {
            State::CoolingDown
        } else if self.half_open {
            State::HalfOpen
        } else {
            State::Healthy
        }
    }

    /// Whether a request may be sent here now; a failed health check keeps it out for
    /// `staleness` seconds.
    pub fn available(&self, now: f64, staleness: f64) -> bool {
        if self.health_check == Some(false)
            && self
                .health_checks
                .last_at
                .is_some_and(|at| now - at < staleness)
        {
            return false;
        }
        match self.state(now) {
            State::Healthy => true,
            State::CoolingDown => false,
            State::HalfOpen => !self.probing(now),
        }
    }

    /// Whether the half-open circuit's probe is running (and still holds it).
    fn probing(&self, now: f64) -> bool {
        self.probe_started
            .is_some_and(|started| now < started + self.probe_lease)
    }

    pub fn cooldown_until(&self) -> f64 {
        self.cooldown_until
    }

    /// A pick gave this deployment to a request: a half-open circuit's probe is that request's
    /// from now on, so a second pick before its `start` does not send a second probe.
    pub fn picked(&mut self, now: f64) {
        if self.state(now) == State::HalfOpen {
            self.probe_started = Some(now);
        }
    }

    pub fn start(&mut self, now: f64) {
        self.picked(now);
        self.in_flight += 1;
        self.started_minute.add(now, 1);
    }

    fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.probe_started = None;
    }

    /// A success: `latency` seconds for the whole request, `completion_tokens` to normalize it
    /// as LiteLLM's latency routing does, `total_tokens` for the tokens-per-minute count.
    pub fn success(
        &mut self,
        now: f64,
        latency: f64,
        completion_tokens: u64,
        total_tokens: u64,
        ttft: Option<f64>,
        sequence: u64,
    ) {
        self.finish();
        self.half_open = false;
        self.consecutive_failures = 0;
        self.total_successes += 1;
        self.window.add(now, true);
        self.successes_minute.increment(now, MINUTE_COUNTER_TTL);
        self.succeeded_minute.add(now, 1);
        self.tokens_minute.add(now, total_tokens);
        self.first_success.get_or_insert(sequence);
        let normalized = if completion_tokens > 0 {
            latency / completion_tokens as f64
        } else {
            latency
        };
        self.routing_latency.push(normalized);
        self.latencies.push(latency);
        self.latency_ewma = Some(ewma(self.latency_ewma, latency));
        if let Some(ttft) = ttft {
            self.routing_ttft.push(ttft);
            self.ttft_ewma = Some(ewma(self.ttft_ewma, ttft));
        }
    }

    /// A failure; returns whether it started a cooldown. `single` says the deployment is the only
    /// one of its model group.
    pub fn failure(
        &mut self,
        now: f64,
        failure: Failure,
        latency: Option<f64>,
        policy: &CooldownPolicy,
        deployment: DeploymentPolicy,
        single: bool,
    ) -> bool {
        let was_probe = self.state(now) == State::HalfOpen;
        self.finish();
        self.consecutive_failures += 1;
        self.total_failures += 1;
        self.window.add(now, false);
        self.failures_minute.increment(now, MINUTE_COUNTER_TTL);
        if failure.timeout {
            self.routing_latency.push(TIMEOUT_PENALTY_SECONDS);
        }
        if let Some(latency) = latency {
            self.latencies.push(latency);
            self.latency_ewma = Some(ewma(self.latency_ewma, latency));
        }
        let duration = deployment
            .cooldown_time
            .filter(|t| *t >= 0.0)
            .or(failure.retry_after.filter(|t| *t >= 0.0))
            .unwrap_or(policy.cooldown_time);
        if policy.circuit_breaker && was_probe {
            // The probe failed: the circuit opens again, whatever the counts say.
            if duration > 1e-9 {
                self.open(now, duration, failure.status, true);
                return true;
            }
        }
        if !cooldown_required(failure.status, failure.connection_error) || duration.abs() <= 1e-9 {
            return false;
        }
        // The failures counted against `allowed_fails` live as long as the cooldown time of the
        // settings (not a Retry-After), 5 s when that is 0, as LiteLLM keys its counter.
        let router_ttl = if policy.cooldown_time > 0.0 {
            policy.cooldown_time
        } else {
            DEFAULT_COOLDOWN_SECONDS
        };
        let cool = if let Some(allowed) = deployment.allowed_fails {
            // A deployment's own `allowed_fails` (LiteLLM: "deployment-level policy first").
            let ttl = deployment.cooldown_time.unwrap_or(router_ttl);
            !single && self.allowed_fails.increment(now, ttl) > allowed
        } else if let Some(allowed) = policy.allowed_fails {
            !single && self.allowed_fails.increment(now, router_ttl) > allowed
        } else {
            self.failure_rate_says_cool(now, failure.status, single)
        };
        if cool {
            self.open(now, duration, failure.status, policy.circuit_breaker);
        }
        cool
    }

    fn failure_rate_says_cool(&self, now: f64, status: u16, single: bool) -> bool {
        if status == 402 && single {
            return false;
        }
        let successes = self.successes_minute.get(now);
        let failures = self.failures_minute.get(now);
        let total = successes + failures;
        let percent = if total > 0 {
            failures as f64 / total as f64
        } else {
            0.0
        };
        if status == 429 && !single {
            return true;
        }
        if percent == 1.0 && total >= SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD {
            return true;
        }
        if percent > FAILURE_THRESHOLD_PERCENT
            && total >= FAILURE_THRESHOLD_MINIMUM_REQUESTS
            && !single
        {
            return true;
        }
        !should_retry(status)
    }

    fn open(&mut self, now: f64, duration: f64, status: u16, half_open_after: bool) {
        self.cooldown_until = now + duration;
        self.cooldown_status = status;
        self.half_open = half_open_after;
        self.probe_started = None;
        self.probe_lease = duration.max(DEFAULT_COOLDOWN_SECONDS);
    }

    /// The answer of an active health check (with its HTTP status and how long it took, when
    /// known). A passed check also closes a half-open circuit whose cooldown is over (it proves
    /// the deployment answers); it never ends a cooldown.
    pub fn health_check(
        &mut self,
        now: f64,
        healthy: bool,
        status: Option<u16>,
        latency: Option<f64>,
    ) {
        self.health_check = Some(healthy);
        let checks = &mut self.health_checks;
        if healthy {
            checks.passed += 1;
            checks.consecutive_failures = 0;
        } else {
            checks.failed += 1;
            checks.consecutive_failures += 1;
        }
        checks.last_status = status;
        checks.last_latency = latency;
        checks.last_at = Some(now);
        if healthy && now >= self.cooldown_until && !self.probing(now) {
            self.half_open = false;
        }
    }

    /// Ends a cooldown by hand (and closes the circuit).
    pub fn clear_cooldown(&mut self) {
        self.cooldown_until = 0.0;
        self.half_open = false;
        self.probe_started = None;
        self.allowed_fails.clear();
    }

    pub fn snapshot(&self, now: f64) -> Snapshot {
        let state = self.state(now);
        let (successes, failures) = self.window.totals(now);
        Snapshot {
            state,
            cooldown_remaining: (self.cooldown_until - now).max(0.0),
            cooldown_status: if state == State::Healthy {
                0
            } else {
                self.cooldown_status
            },
            successes,
            failures,
            total_successes: self.total_successes,
            total_failures: self.total_failures,
            consecutive_failures: self.consecutive_failures,
            in_flight: self.in_flight,
            latency_ewma: self.latency_ewma,
            latency_p50: self.latencies.percentile(0.50),
            latency_p95: self.latencies.percentile(0.95),
            latency_p99: self.latencies.percentile(0.99),
            ttft_ewma: self.ttft_ewma,
            requests_this_minute: self.started_minute.get(now),
            tokens_this_minute: self.tokens_minute.get(now),
            health_check: self.health_check,
            health_checks: self.health_checks,
        }
    }
}

/// LiteLLM's `_is_cooldown_required`: which failures may cool a deployment down at all.
pub fn cooldown_required(status: u16, connection_error: bool) -> bool {
    if connection_error {
        return false;
    }
    if (400..500).contains(&status) {
        matches!(status, 429 | 401 | 402 | 408 | 404)
    } else {
        true
    }
}

/// LiteLLM's `should_retry`: 408, 409, 429 and 5xx are retried.
pub fn should_retry(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

#[cfg(test)]
mod tests;
