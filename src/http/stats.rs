//! Counters of one client, kept for its whole life (across the pools a forked child rebuilds).
//! Open connections are not counted here: they are read from the live registry of the current
//! pool (`conn::Registry`), so a connection the server closed is never reported as open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// The kinds of failure counted in `errors`, in the order of `Stats::errors`.
pub const ERROR_KINDS: [&str; 7] = [
    "connect",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "pool_timeout",
    "protocol",
    "other",
];

/// Cumulative counters of one host.
#[derive(Debug)]
pub struct HostCounters {
    pub key: String,
    pub requests: AtomicU64,
    pub connections_opened: AtomicU64,
}

#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_reused: AtomicU64,
    pub connections_closed: AtomicU64,
    pub in_flight: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS.len()],
    hosts: Mutex<HashMap<String, Arc<HostCounters>>>,
    /// Microseconds waited for a free connection (or a concurrency slot), from 1 µs to an hour
    /// with two significant digits: percentiles without keeping every sample.
    pool_wait: Mutex<Histogram<u64>>,
}

/// Pool-wait percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitSummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            connections_reused: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            errors: Default::default(),
            hosts: Mutex::new(HashMap::new()),
            pool_wait: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2)
                    .expect("static histogram bounds are valid"),
            ),
        }
    }
}

impl Stats {
    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The counters of `key` ("host:port"), created on first use.
    pub fn host(&self, key: &str) -> Arc<HostCounters> {
        let mut hosts = self.hosts.lock();
        if let Some(host) = hosts.get(key) {
            return Arc::clone(host);
        }
        let host = Arc::new(HostCounters {
            key: key.to_owned(),
            requests: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
        });
        hosts.insert(key.to_owned(), Arc::clone(&host));
        host
    }

    pub fn hosts(&self) -> Vec<Arc<HostCounters>> {
        self.hosts.lock().values().cloned().collect()
    }

    pub(crate) fn connection_opened(&self, host: &HostCounters) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        host.connections_opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_closed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, kind: &str) {
        let index = ERROR_KINDS.iter().position(|k| *k == kind).unwrap_or(6);
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> Vec<(&'static str, u64)> {
        ERROR_KINDS
            .iter()
            .zip(&self.errors)
            .map(|(kind, count)| (*kind, count.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn record_pool_wait(&self, waited: Duration) {
        let micros = (waited.as_micros() as u64).clamp(1, 3_600_000_000);
        // `saturating_record` cannot fail for values inside the bounds.
        self.pool_wait.lock().saturating_record(micros);
    }

    pub fn pool_wait(&self) -> WaitSummary {
        let histogram = self.pool_wait.lock();
        if histogram.is_empty() {
            return WaitSummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        WaitSummary {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}
