//! Per-operation call counters and latency histograms for the whole process.
//!
//! Every public operation of the package records here: how many calls, on which path (native or
//! fallback), how many raised, how many were refused (a rate-limit denial, an HTTP 429), and how
//! long they took. Native operations time themselves (`start` ... `Call::finish`); Python code
//! records what it timed itself with `Registry::record`.
//!
//! Cost, and why it is shaped this way (measured with `cargo bench --bench metrics`, see
//! `benches/metrics_record.rs`): the hottest native calls are a rate-limit check (~80 ns through
//! Python) and a short token count (~200 ns). Two clock reads and two histogram records under a
//! lock cost ~50 ns, a visible share of both. So:
//! - counts stay exact: one increment per call (errors and refusals only when they happen),
//!   serialised by the GIL rather than by a locked instruction (see `bump`);
//! - latency is sampled on hot operations: one call in `sample_every` (per thread, the first call
//!   of each thread included) reads the clock and records; the others only count. Percentiles of
//!   a sample are the percentiles of the workload within sampling noise, and the table says how
//!   many samples it holds (`latency_samples`). Operations that are not hot time every call.
//! - the recent window is a ring of `WINDOW_SLOTS` slots of `SLOT_NS` each. A slot holds the
//!   histogram of the samples taken in it and the lifetime counters as they were at its first
//!   sample; the window's counts are today's counters minus that baseline of its oldest slot.
//!   When every call is timed (explicit records, `sample_every = 1`) this is exact; when sampled,
//!   calls made in a new slot before its first sample (at most `sample_every - 1` per thread)
//!   count in the slot before.
//!
//! Histograms: `hdrhistogram` with two significant digits (values within 1% of what was
//! recorded), nanoseconds, auto-resizing so an operation that never takes long keeps a small
//! table. The Python fallback (`fast_litellm/_fallback/monitoring.py`) uses the same bucketing and
//! the same quantile rule, so both give the same numbers for the same records.
//!
//! Fork: the registry is published once (`crate::published`) and replaced, empty, in a forked
//! child (`after_fork_in_child`): the child's counters start from zero, and a lock held by a
//! parent thread at the moment of `fork()` is never waited for.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use parking_lot::{Mutex, RwLock};

use crate::published::Published;
use crate::ratelimit::ManualClock;

#[cfg(test)]
mod tests;

/// Significant decimal digits of every latency histogram.
pub const SIGFIG: u8 = 2;
/// The recent window: `WINDOW_SLOTS` slots of `SLOT_NS` (the last 50 to 60 seconds).
pub const WINDOW_SLOTS: usize = 6;
pub const SLOT_NS: u64 = 10_000_000_000;
/// Latencies above this (an hour) are recorded as this.
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Default sampling of the hot native operations: one call in 32 is timed.
pub const DEFAULT_SAMPLE_EVERY: u32 = 32;
/// Operations the registry can hold (built-in plus named at run time).
pub const MAX_OPERATIONS: usize = 128;

/// Which implementation answered a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Native = 0,
    Fallback = 1,
}

impl Path {
    pub const ALL: [Path; 2] = [Path::Native, Path::Fallback];

    pub fn as_str(self) -> &'static str {
        match self {
            Path::Native => "native",
            Path::Fallback => "fallback",
        }
    }

    pub fn parse(name: &str) -> Option<Path> {
        match name {
            "native" => Some(Path::Native),
            "fallback" => Some(Path::Fallback),
            _ => None,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The call raised.
    Error,
    /// The call answered "no" to a request for capacity (a rate-limit denial, an HTTP 429).
    Refused,
}

/// An operation's index in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op(pub u16);

/// The operations native code times itself, in this order (their `Op` is their index).
pub const BUILTIN: [(&str, bool); 8] = [
    ("count_tokens", true),
    ("count_tokens_batch", false),
    ("count_message_tokens", false),
    ("rate_limit_check", true),
    ("cache_get", true),
    ("cache_set", true),
    ("cache_key", false),
    ("count_request_tokens", false),
];
pub const COUNT_TOKENS: Op = Op(0);
pub const COUNT_TOKENS_BATCH: Op = Op(1);
pub const COUNT_MESSAGE_TOKENS: Op = Op(2);
pub const RATE_LIMIT_CHECK: Op = Op(3);
pub const CACHE_GET: Op = Op(4);
pub const CACHE_SET: Op = Op(5);
pub const CACHE_KEY: Op = Op(6);
pub const COUNT_REQUEST_TOKENS: Op = Op(7);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("operation names are 1 to 64 characters of [A-Za-z0-9_.], got {0:?}")]
    BadName(String),
    #[error("at most {MAX_OPERATIONS} operations can be recorded")]
    TooManyOperations,
    #[error("sample_every must be >= 1")]
    BadSampling,
}

/// One slot of the recent window.
struct Slot {
    /// Which `SLOT_NS` period of the clock it holds (`u64::MAX`: never used).
    epoch: u64,
    /// The lifetime counters when the slot was opened (calls, errors, refused).
    baseline: [u64; 3],
    latency: Option<Histogram<u64>>,
}

impl Slot {
    const EMPTY: Slot = Slot {
        epoch: u64::MAX,
        baseline: [0; 3],
        latency: None,
    };
}

/// What is kept under the lock of one operation on one path: everything with a latency.
struct Sampled {
    latency: Option<Histogram<u64>>,
    window: [Slot; WINDOW_SLOTS],
}

/// The counters of one operation on one path.
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    /// The window slot opened last (`u64::MAX`: none): an untimed call compares it with the
    /// registry's `epoch_hint` and opens the current slot when they differ.
    open_epoch: AtomicU64,
    sampled: Mutex<Sampled>,
}

impl Counters {
    fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open_epoch: AtomicU64::new(u64::MAX),
            sampled: Mutex::new(Sampled {
                latency: None,
                window: [Slot::EMPTY; WINDOW_SLOTS],
            }),
        }
    }

    fn totals(&self) -> [u64; 3] {
        [
            self.calls.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        ]
    }

    #[inline]
    fn count(&self, outcome: Outcome) {
        bump(&self.calls);
        match outcome {
            Outcome::Ok => {}
            Outcome::Error => bump(&self.errors),
            Outcome::Refused => bump(&self.refused),
        }
    }

    /// The counters as they were before a call with `outcome` (just counted): the baseline of a
    /// slot that call opens. Read only when a slot opens, not on every call.
    fn before(&self, outcome: Outcome) -> [u64; 3] {
        let [calls, errors, refused] = self.totals();
        [
            calls.saturating_sub(1),
            errors.saturating_sub(u64::from(outcome == Outcome::Error)),
            refused.saturating_sub(u64::from(outcome == Outcome::Refused)),
        ]
    }

    /// Adds one timed sample at clock time `now_ns` of a call with `outcome` (already counted).
    fn sample(&self, latency_ns: u64, now_ns: u64, outcome: Outcome) {
        let value = latency_ns.min(MAX_LATENCY_NS);
        let epoch = now_ns / SLOT_NS;
        let mut sampled = self.sampled.lock();
        record(&mut sampled.latency, value);
        let slot = self.slot(&mut sampled, epoch, outcome);
        record(&mut slot.latency, value);
    }

    /// The window slot of `epoch`, opened (its baseline: the counters before the call with
    /// `outcome`) if it is not yet.
    fn slot<'a>(&self, sampled: &'a mut Sampled, epoch: u64, outcome: Outcome) -> &'a mut Slot {
        let slot = &mut sampled.window[(epoch % WINDOW_SLOTS as u64) as usize];
        if slot.epoch != epoch {
            slot.epoch = epoch;
            slot.baseline = self.before(outcome);
            if let Some(h) = slot.latency.as_mut() {
                h.reset();
            }
            self.open_epoch.store(epoch, Ordering::Relaxed);
        }
        slot
    }

    /// An untimed call in slot `epoch` (the registry's latest reading): opens the slot when it
    /// is not the one opened last, so the window counts calls of operations too rarely called
    /// to be sampled in it.
    #[inline]
    fn untimed(&self, epoch: u64, outcome: Outcome) {
        if self.open_epoch.load(Ordering::Relaxed) != epoch {
            let mut sampled = self.sampled.lock();
            self.slot(&mut sampled, epoch, outcome);
        }
    }
}

/// Adds one to a counter with a plain load and store rather than a locked `fetch_add` (about
/// 1 ns instead of 5 to 6 on the machines measured: a visible share of an 80 ns rate-limit
/// check). Every writer holds the GIL: native calls count before they return to Python, and
/// Python records through the binding (the module is built for the stable ABI, which
/// free-threaded Python does not load). Two writers without it could lose a count, never corrupt
/// one; `cargo test` threads use `Registry::record`, which counts under the operation's lock.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("two significant digits is a valid histogram precision")
}

fn record(histogram: &mut Option<Histogram<u64>>, value: u64) {
    // Auto-resizing up to `MAX_LATENCY_NS` cannot fail; a failure would only lose one sample.
    let _ = histogram.get_or_insert_with(new_histogram).record(value);
}

struct Operation {
    paths: [Counters; 2],
}

/// Every operation's counters.
pub struct Registry {
    names: RwLock<Vec<String>>,
    operations: Vec<Operation>,
    /// A manual window clock (tests); `manual` says whether there is one, so the common case
    /// reads no lock.
    manual: AtomicBool,
    manual_clock: RwLock<Option<ManualClock>>,
    origin: Instant,
    sample_every: AtomicU32,
    /// The window slot of the latest clock reading (by a timed call or a snapshot).
    epoch_hint: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let operations = (0..MAX_OPERATIONS)
            .map(|_| Operation {
                paths: [Counters::new(), Counters::new()],
            })
            .collect();
        let origin = Instant::now();
        Self {
            names: RwLock::new(BUILTIN.iter().map(|(n, _)| (*n).to_owned()).collect()),
            operations,
            manual: AtomicBool::new(false),
            manual_clock: RwLock::new(None),
            origin,
            sample_every: AtomicU32::new(DEFAULT_SAMPLE_EVERY),
            epoch_hint: AtomicU64::new(0),
        }
    }

    /// The operation called `name`, registered on first use.
    pub fn operation(&self, name: &str) -> Result<Op, MetricsError> {
        if let Some(i) = self.names.read().iter().position(|n| n == name) {
            return Ok(Op(i as u16));
        }
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !valid {
            return Err(MetricsError::BadName(name.to_owned()));
        }
        let mut names = self.names.write();
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(Op(i as u16));
        }
        if names.len() >= MAX_OPERATIONS {
            return Err(MetricsError::TooManyOperations);
        }
        names.push(name.to_owned());
        Ok(Op((names.len() - 1) as u16))
    }

    /// Reads the window clock: nanoseconds since the registry was made, or the manual clock.
    pub fn now_ns(&self) -> u64 {
        self.window_now(Instant::now())
    }

    /// The window clock's time when the monotonic clock read `at` (a timed call passes the
    /// reading that ended it, so timing a call reads the clock twice, not three times).
    #[inline]
    fn window_now(&self, at: Instant) -> u64 {
        let now = if self.manual.load(Ordering::Relaxed) {
            match &*self.manual_clock.read() {
                Some(clock) => clock.now_ns(),
                None => at.saturating_duration_since(self.origin).as_nanos() as u64,
            }
        } else {
            at.saturating_duration_since(self.origin).as_nanos() as u64
        };
        let epoch = now / SLOT_NS;
        if self.epoch_hint.load(Ordering::Relaxed) != epoch {
            self.epoch_hint.store(epoch, Ordering::Relaxed);
        }
        now
    }

    /// Takes window time from `clock` (tests), or the monotonic clock again with `None`.
    pub fn use_clock(&self, clock: Option<ManualClock>) {
        let manual = clock.is_some();
        *self.manual_clock.write() = clock;
        self.manual.store(manual, Ordering::Relaxed);
    }

    pub fn sample_every(&self) -> u32 {
        self.sample_every.load(Ordering::Relaxed)
    }

    pub fn set_sample_every(&self, every: u32) -> Result<(), MetricsError> {
        if every == 0 {
            return Err(MetricsError::BadSampling);
        }
        self.sample_every.store(every, Ordering::Relaxed);
        Ok(())
    }

    /// Records one call that was timed by its caller (every call recorded this way is a sample).
    pub fn record(&self, op: Op, path: Path, latency_ns: u64, outcome: Outcome) {
        let Some(operation) = self.operations.get(op.0 as usize) else {
            return;
        };
        let counters = &operation.paths[path as usize];
        let now = self.now_ns();
        // Counted under the lock the sample takes, so a snapshot never sees the count without
        // its slot (explicit records are exact).
        let mut sampled = counters.sampled.lock();
        counters.count(outcome);
        let value = latency_ns.min(MAX_LATENCY_NS);
        record(&mut sampled.latency, value);
        let slot = counters.slot(&mut sampled, now / SLOT_NS, outcome);
        record(&mut slot.latency, value);
    }

    /// Clears every counter (names stay registered).
    pub fn reset(&self) {
        for operation in &self.operations {
            for counters in &operation.paths {
                let mut sampled = counters.sampled.lock();
                counters.calls.store(0, Ordering::Relaxed);
                counters.errors.store(0, Ordering::Relaxed);
                counters.refused.store(0, Ordering::Relaxed);
                counters.open_epoch.store(u64::MAX, Ordering::Relaxed);
                sampled.latency = None;
                sampled.window = [Slot::EMPTY; WINDOW_SLOTS];
            }
        }
    }

    /// Every operation with at least one call, at the window clock's current time.
    pub fn snapshot(&self) -> Vec<OperationStats> {
        let now_epoch = self.now_ns() / SLOT_NS;
        let names = self.names.read().clone();
        let mut out = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let operation = &self.operations[i];
            let raw = Path::ALL.map(|path| Raw::read(&operation.paths[path as usize], now_epoch));
            if raw.iter().all(|r| r.totals[0] == 0) {
                continue;
            }
            let all = Raw::merge(&raw);
            out.push(OperationStats {
                name,
                paths: raw.map(|r| r.summarise()),
                all: all.summarise(),
            });
        }
        out
    }
}

/// The counters and histograms of one operation on one path (or merged over both).
struct Raw {
    totals: [u64; 3],
    lifetime: Histogram<u64>,
    window_counts: [u64; 3],
    window: Histogram<u64>,
}

impl Raw {
    fn read(counters: &Counters, now_epoch: u64) -> Raw {
        let sampled = counters.sampled.lock();
        // Read under the lock, so no slot opens between this read and the window's baseline.
        let totals = counters.totals();
        let mut lifetime = new_histogram();
        if let Some(h) = &sampled.latency {
            // Same precision on both sides: adding cannot fail.
            let _ = lifetime.add(h);
        }
        let first_epoch = now_epoch.saturating_sub(WINDOW_SLOTS as u64 - 1);
        let in_window: Vec<&Slot> = sampled
            .window
            .iter()
            .filter(|s| s.epoch != u64::MAX && s.epoch >= first_epoch && s.epoch <= now_epoch)
            .collect();
        let mut window = new_histogram();
        let mut window_counts = [0; 3];
        if let Some(oldest) = in_window.iter().min_by_key(|s| s.epoch) {
            for slot in &in_window {
                if let Some(h) = &slot.latency {
                    let _ = window.add(h);
                }
            }
            window_counts = [0, 1, 2].map(|k| totals[k].saturating_sub(oldest.baseline[k]));
        }
        Raw {
            totals,
            lifetime,
            window_counts,
            window,
        }
    }

    fn merge(parts: &[Raw]) -> Raw {
        let mut all = Raw {
            totals: [0; 3],
            lifetime: new_histogram(),
            window_counts: [0; 3],
            window: new_histogram(),
        };
        for part in parts {
            for k in 0..3 {
                all.totals[k] += part.totals[k];
                all.window_counts[k] += part.window_counts[k];
            }
            let _ = all.lifetime.add(&part.lifetime);
            let _ = all.window.add(&part.window);
        }
        all
    }

    fn summarise(&self) -> PathStats {
        PathStats {
            lifetime: Summary::new(self.totals, Some(&self.lifetime)),
            window: Summary::new(self.window_counts, Some(&self.window)),
        }
    }
}

/// Counters and latency of one operation on one path over one period, latencies in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub calls: u64,
    pub errors: u64,
    pub refused: u64,
    pub samples: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl Summary {
    fn new(counts: [u64; 3], latency: Option<&Histogram<u64>>) -> Self {
        let [calls, errors, refused] = counts;
        let mut summary = Summary {
            calls,
            errors,
            refused,
            ..Summary::default()
        };
        if let Some(h) = latency.filter(|h| !h.is_empty()) {
            summary.samples = h.len();
            summary.mean_ns = h.mean();
            summary.p50_ns = h.value_at_quantile(0.50);
            summary.p95_ns = h.value_at_quantile(0.95);
            summary.p99_ns = h.value_at_quantile(0.99);
            summary.max_ns = h.max();
        }
        summary
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathStats {
    pub lifetime: Summary,
    pub window: Summary,
}

#[derive(Debug, Clone)]
pub struct OperationStats {
    pub name: String,
    /// Indexed by `Path as usize`.
    pub paths: [PathStats; 2],
    /// Both paths together.
    pub all: PathStats,
}

// ---- the process-wide registry and native self-timing ------------------------------------------

static REGISTRY: Published<Registry> = Published::new();
/// Whether native operations time themselves (off while monitoring runs on the Python fallback,
/// which then times every call itself).
static SELF_TIMING: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// Per built-in operation: calls left before this thread times the next one (0: the next
    /// call is timed, so the first call of each operation on each thread is).
    static UNTIL_SAMPLE: [Cell<u32>; BUILTIN.len()] = const { [const { Cell::new(0) }; BUILTIN.len()] };
}

/// The process's registry, made on first use.
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_build(Registry::new, drop)
}

pub fn set_self_timing(on: bool) {
    SELF_TIMING.store(on, Ordering::Relaxed);
}

pub fn self_timing() -> bool {
    SELF_TIMING.load(Ordering::Relaxed)
}

/// A native call being timed; `finish` records it.
pub struct Call {
    op: Op,
    started: Option<Instant>,
    active: bool,
}

/// Starts a native call of `op` (see the module notes for what is timed).
#[inline]
pub fn start(op: Op) -> Call {
    if !SELF_TIMING.load(Ordering::Relaxed) {
        return Call {
            op,
            started: None,
            active: false,
        };
    }
    let index = op.0 as usize;
    let hot = BUILTIN.get(index).is_some_and(|(_, hot)| *hot);
    let timed = !hot
        || UNTIL_SAMPLE.with(|counters| {
            let left = &counters[index];
            let n = left.get();
            if n == 0 {
                left.set(registry().sample_every().saturating_sub(1));
                true
            } else {
                left.set(n - 1);
                false
            }
        });
    Call {
        op,
        started: timed.then(Instant::now),
        active: true,
    }
}

impl Call {
    #[inline]
    pub fn finish(self, outcome: Outcome) {
        if !self.active {
            return;
        }
        let registry = registry();
        let Some(operation) = registry.operations.get(self.op.0 as usize) else {
            return;
        };
        let counters = &operation.paths[Path::Native as usize];
        counters.count(outcome);
        match self.started {
            Some(started) => {
                let end = Instant::now();
                let latency = end.saturating_duration_since(started).as_nanos() as u64;
                counters.sample(latency, registry.window_now(end), outcome);
            }
            None => counters.untimed(registry.epoch_hint.load(Ordering::Relaxed), outcome),
        }
    }
}

/// The outcome of a rate-limit style answer: refused when not allowed.
pub fn outcome_of<T, E>(result: &Result<T, E>, allowed: impl Fn(&T) -> bool) -> Outcome {
    match result {
        Ok(value) if allowed(value) => Outcome::Ok,
        Ok(_) => Outcome::Refused,
        Err(_) => Outcome::Error,
    }
}

/// Runs `f` as one native call of `op`: an `Err` counts as an error.
#[inline]
pub fn timed<T, E>(op: Op, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let call = start(op);
    let result = f();
    call.finish(if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Error
    });
    result
}

/// Called in a child process right after `fork()`: the child counts from zero, in a registry no
/// parent thread can be holding a lock of. The old one is leaked (see `crate::published`).
pub fn after_fork_in_child() {
    // The sampling setting carries over; a manual window clock (a test's) does not.
    let every = REGISTRY
        .get()
        .map_or(DEFAULT_SAMPLE_EVERY, Registry::sample_every);
    REGISTRY.forget();
    let _ = registry().set_sample_every(every);
}
