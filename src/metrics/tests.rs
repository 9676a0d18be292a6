use super::*;

fn op(r: &Registry, name: &str) -> Op {
    r.operation(name).unwrap()
}

#[test]
fn builtin_operations_keep_their_indexes() {
    let r = Registry::new();
    for (i, (name, _)) in BUILTIN.iter().enumerate() {
        assert_eq!(op(&r, name), Op(i as u16));
    }
    let custom = op(&r, "http_request");
    assert_eq!(custom, Op(BUILTIN.len() as u16));
    assert_eq!(op(&r, "http_request"), custom);
    assert!(r.operation("").is_err());
    assert!(r.operation("has space").is_err());
}

#[test]
fn known_latencies_give_exact_bucketed_statistics() {
    let r = Registry::new();
    let clock = ManualClock::new(0).unwrap();
    r.use_clock(Some(clock.clone()));
    let o = op(&r, "x");
    for ns in 1..=100u64 {
        r.record(o, Path::Native, ns * 1000, Outcome::Ok);
    }
    r.record(o, Path::Native, 5, Outcome::Error);
    r.record(o, Path::Fallback, 7, Outcome::Refused);
    let stats = r.snapshot();
    assert_eq!(stats.len(), 1);
    let native = stats[0].paths[0].lifetime;
    assert_eq!(stats[0].all.lifetime.calls, 102);
    assert_eq!(
        (native.calls, native.errors, native.refused, native.samples),
        (101, 1, 0, 101)
    );
    // Two significant digits: 50_000 ns falls in a bucket 256 ns wide.
    assert!(
        (native.p50_ns as f64 - 50_000.0).abs() / 50_000.0 < 0.01,
        "{native:?}"
    );
    assert!((native.p99_ns as f64 - 99_000.0).abs() / 99_000.0 < 0.01);
    assert!((native.max_ns as f64 - 100_000.0).abs() / 100_000.0 < 0.01);
    let fallback = stats[0].paths[1].lifetime;
    assert_eq!(
        (fallback.calls, fallback.refused, fallback.max_ns),
        (1, 1, 7)
    );
    // The window holds the same numbers while the clock stays inside it.
    assert_eq!(stats[0].paths[0].window, native);
}

#[test]
fn the_window_forgets_what_is_older_than_its_slots() {
    let r = Registry::new();
    let clock = ManualClock::new(0).unwrap();
    r.use_clock(Some(clock.clone()));
    let o = op(&r, "x");
    r.record(o, Path::Native, 1000, Outcome::Ok);
    clock.set_ns(35 * 1_000_000_000).unwrap();
    r.record(o, Path::Native, 2000, Outcome::Error);
    r.record(o, Path::Native, 3000, Outcome::Ok);
    let s = r.snapshot()[0].paths[0];
    assert_eq!(
        (s.lifetime.calls, s.window.calls, s.window.errors),
        (3, 3, 1)
    );
    clock.set_ns(65 * 1_000_000_000).unwrap();
    let s = r.snapshot()[0].paths[0];
    // The slot of t=0 left the window (slots 1..=6 remain); t=35 s is in it.
    assert_eq!(
        (s.lifetime.calls, s.window.calls, s.window.samples),
        (3, 2, 2)
    );
    clock.set_ns(200 * 1_000_000_000).unwrap();
    let s = r.snapshot()[0].paths[0];
    assert_eq!(
        (s.window.calls, s.window.samples, s.lifetime.samples),
        (0, 0, 3)
    );
    r.reset();
    assert!(r.snapshot().is_empty());
}

#[test]
fn hot_native_calls_are_counted_exactly_and_sampled() {
    let r = registry();
    r.reset();
    r.set_sample_every(4).unwrap();
    for _ in 0..40 {
        let _: Result<(), ()> = timed(RATE_LIMIT_CHECK, || Ok(()));
    }
    let _: Result<(), ()> = timed(RATE_LIMIT_CHECK, || Err(()));
    let stats = r.snapshot();
    let s = stats
        .iter()
        .find(|s| s.name == "rate_limit_check")
        .unwrap()
        .paths[0]
        .lifetime;
    assert_eq!((s.calls, s.errors), (41, 1));
    assert!((10..=12).contains(&s.samples), "{s:?}");
    r.set_sample_every(DEFAULT_SAMPLE_EVERY).unwrap();
}
