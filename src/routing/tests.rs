use super::*;

fn spec(group: usize) -> DeploymentSpec {
    DeploymentSpec {
        group,
        shuffle_weights: [0.0; 3],
        rpm_limit: f64::INFINITY,
        tpm_limit: f64::INFINITY,
        rpm_limit_truthy: f64::INFINITY,
        tpm_limit_truthy: f64::INFINITY,
        cost: 10.0,
        policy: DeploymentPolicy::default(),
    }
}

fn router(strategy: Strategy, specs: Vec<DeploymentSpec>) -> Router {
    Router::new(strategy, CooldownPolicy::default(), 0.0, 1, specs, 7).unwrap()
}

#[test]
fn weighted_shuffle_follows_the_weights() {
    let mut specs = vec![spec(0), spec(0), spec(0)];
    for (s, w) in specs.iter_mut().zip([1.0, 2.0, 7.0]) {
        s.shuffle_weights[0] = w;
    }
    let r = router(Strategy::SimpleShuffle, specs);
    let mut counts = [0u32; 3];
    for _ in 0..100_000 {
        counts[r.pick(0, 0, false, 0.0).unwrap()] += 1;
    }
    for (count, expected) in counts.iter().zip([10_000.0, 20_000.0, 70_000.0]) {
        assert!((f64::from(*count) - expected).abs() < 800.0, "{counts:?}");
    }
}

#[test]
fn least_busy_and_cooldowns() {
    let r = router(Strategy::LeastBusy, vec![spec(0), spec(0), spec(0)]);
    r.record_start(0, 0.0).unwrap();
    assert_eq!(r.pick(0, 0, false, 0.0), Ok(1));
    r.record_start(1, 0.0).unwrap();
    assert_eq!(r.pick(0, 0, false, 0.0), Ok(2));
    let auth = Failure {
        status: 401,
        ..Failure::default()
    };
    r.record_start(2, 0.0).unwrap();
    assert!(r.record_failure(2, 0.0, auth, None).unwrap());
    r.record_start(1, 0.0).unwrap();
    assert_eq!(r.pick(0, 0, false, 1.0), Ok(0));
    for i in 0..2 {
        r.record_failure(i, 2.0, auth, None).unwrap();
    }
    assert_eq!(
        r.pick(0, 0, false, 3.0),
        Err(RoutingError::NoneAvailable {
            retry_after: Some(2.0)
        })
    );
}

#[test]
fn latency_based_picks_within_the_buffer() {
    let r = Router::new(
        Strategy::LatencyBased,
        CooldownPolicy::default(),
        0.5,
        1,
        vec![spec(0), spec(0), spec(0)],
        1,
    )
    .unwrap();
    for (i, latency) in [(0, 1.0), (1, 1.4), (2, 2.0)] {
        r.record_success(i, 0.0, latency, 0, 0, None).unwrap();
    }
    let mut seen = [false; 3];
    for _ in 0..200 {
        seen[r.pick(0, 0, false, 1.0).unwrap()] = true;
    }
    assert_eq!(seen, [true, true, false]);
}

#[test]
fn bad_numbers_are_refused() {
    let mut s = spec(0);
    s.shuffle_weights[0] = f64::NAN;
    assert!(Router::new(
        Strategy::SimpleShuffle,
        CooldownPolicy::default(),
        0.0,
        1,
        vec![s],
        0
    )
    .is_err());
    let r = router(Strategy::LeastBusy, vec![spec(0)]);
    assert!(r.record_success(0, 0.0, -1.0, 0, 0, None).is_err());
    assert!(r.record_success(5, 0.0, 1.0, 0, 0, None).is_err());
    assert_eq!(r.pick(3, 0, false, 0.0), Err(RoutingError::UnknownGroup(3)));
}
