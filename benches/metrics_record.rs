//! The cost of recording one call into the metrics registry (`src/metrics`), without Python.
//!
//!     cargo bench --bench metrics_record
//!
//! Prints nanoseconds per call for: a native call that is only counted (the common case of a
//! hot operation: one in `sample_every` is timed), a native call timed every time, and an
//! explicit `Registry::record` of a latency measured elsewhere. Each figure is the median of 25
//! rounds of 200,000 calls.

use std::hint::black_box;
use std::time::Instant;

use _native::metrics::{self, Outcome, Path};

fn median_ns(mut f: impl FnMut()) -> f64 {
    const CALLS: u32 = 200_000;
    let mut rounds: Vec<f64> = (0..25)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..CALLS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    let registry = metrics::registry();
    let empty = median_ns(|| {
        let _: Result<u32, ()> = black_box(Ok(black_box(1)));
    });
    let report = |name: &str, ns: f64| println!("{name:<48} {:>7.1} ns", ns - empty);

    registry.set_sample_every(1_000_000).unwrap();
    report(
        "native call, counted only (untimed)",
        median_ns(|| {
            let _ = black_box(metrics::timed(metrics::RATE_LIMIT_CHECK, || {
                Ok::<u32, ()>(black_box(1))
            }));
        }),
    );
    registry
        .set_sample_every(metrics::DEFAULT_SAMPLE_EVERY)
        .unwrap();
    report(
        "native call, as shipped (1 in 32 timed)",
        median_ns(|| {
            let _ = black_box(metrics::timed(metrics::RATE_LIMIT_CHECK, || {
                Ok::<u32, ()>(black_box(1))
            }));
        }),
    );
    registry.set_sample_every(1).unwrap();
    report(
        "native call, every call timed",
        median_ns(|| {
            let _ = black_box(metrics::timed(metrics::RATE_LIMIT_CHECK, || {
                Ok::<u32, ()>(black_box(1))
            }));
        }),
    );
    let op = registry.operation("bench_record").unwrap();
    let mut latency = 0u64;
    report(
        "Registry::record (latency measured elsewhere)",
        median_ns(|| {
            latency = (latency + 977) % 1_000_000;
            registry.record(op, Path::Fallback, black_box(latency), Outcome::Ok);
        }),
    );
    report(
        "(for scale) Instant::now()",
        median_ns(|| {
            black_box(Instant::now());
        }),
    );
    let mut histogram = hdrhistogram::Histogram::<u64>::new(metrics::SIGFIG).unwrap();
    report(
        "(for scale) hdrhistogram record",
        median_ns(|| {
            latency = (latency + 977) % 1_000_000;
            let _ = histogram.record(black_box(latency));
        }),
    );
    let lock = parking_lot::Mutex::new(0u64);
    report(
        "(for scale) uncontended mutex lock + unlock",
        median_ns(|| {
            *lock.lock() += 1;
        }),
    );
    metrics::set_self_timing(false);
    report(
        "native call, self-timing off",
        median_ns(|| {
            let _ = black_box(metrics::timed(metrics::RATE_LIMIT_CHECK, || {
                Ok::<u32, ()>(black_box(1))
            }));
        }),
    );
}
