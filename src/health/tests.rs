use super::*;

fn failure(status: u16) -> Failure {
    Failure {
        status,
        ..Failure::default()
    }
}

#[test]
fn a_429_cools_down_for_its_retry_after() {
    let mut h = Health::default();
    let policy = CooldownPolicy::default();
    let f = Failure {
        status: 429,
        retry_after: Some(12.0),
        ..Failure::default()
    };
    assert!(h.failure(100.0, f, None, &policy, DeploymentPolicy::default(), false));
    assert_eq!(h.state(111.9), State::CoolingDown);
    assert_eq!(h.state(112.0), State::Healthy);
}

#[test]
fn the_only_deployment_of_a_group_is_not_cooled_down_for_a_429() {
    let mut h = Health::default();
    let policy = CooldownPolicy::default();
    assert!(!h.failure(
        0.0,
        failure(429),
        None,
        &policy,
        DeploymentPolicy::default(),
        true
    ));
    assert!(h.available(0.0, f64::INFINITY));
}

#[test]
fn auth_and_not_found_cool_down_at_once_other_4xx_never() {
    let policy = CooldownPolicy::default();
    for status in [401, 404] {
        let mut h = Health::default();
        assert!(h.failure(
            0.0,
            failure(status),
            None,
            &policy,
            DeploymentPolicy::default(),
            false
        ));
        assert_eq!(h.state(4.9), State::CoolingDown);
        assert_eq!(h.state(5.0), State::Healthy);
    }
    for status in [400, 403, 422] {
        let mut h = Health::default();
        for _ in 0..20 {
            assert!(!h.failure(
                0.0,
                failure(status),
                None,
                &policy,
                DeploymentPolicy::default(),
                false
            ));
        }
    }
}

#[test]
fn failure_rate_needs_five_requests_and_more_than_half_failing() {
    let policy = CooldownPolicy::default();
    let mut h = Health::default();
    for t in 0..3 {
        h.success(t as f64, 0.1, 0, 0, None, 0);
    }
    // 500s: 1/4, 2/5 fail: no; 3/6 = 0.5 is not more than half; 4/7 is.
    for (t, expected) in [(3.0, false), (4.0, false), (5.0, false), (6.0, true)] {
        assert_eq!(
            h.failure(
                t,
                failure(500),
                None,
                &policy,
                DeploymentPolicy::default(),
                false
            ),
            expected,
            "at {t}"
        );
    }
}

#[test]
fn allowed_fails_mode_counts_failures_that_expire_after_the_cooldown_time() {
    let policy = CooldownPolicy {
        allowed_fails: Some(2),
        cooldown_time: 30.0,
        ..CooldownPolicy::default()
    };
    let mut h = Health::default();
    let d = DeploymentPolicy::default();
    assert!(!h.failure(0.0, failure(500), None, &policy, d, false));
    assert!(!h.failure(1.0, failure(500), None, &policy, d, false));
    // the counter forgot them 30 s after the last one
    assert!(!h.failure(31.0, failure(500), None, &policy, d, false));
    assert!(!h.failure(32.0, failure(500), None, &policy, d, false));
    assert!(h.failure(33.0, failure(500), None, &policy, d, false));
    assert_eq!(h.state(62.9), State::CoolingDown);
    assert_eq!(h.state(63.0), State::Healthy);
}

#[test]
fn circuit_breaker_half_open_probe() {
    let policy = CooldownPolicy {
        circuit_breaker: true,
        ..CooldownPolicy::default()
    };
    let d = DeploymentPolicy::default();
    let mut h = Health::default();
    assert!(h.failure(0.0, failure(401), None, &policy, d, false));
    assert_eq!(h.state(5.0), State::HalfOpen);
    assert!(h.available(5.0, f64::INFINITY));
    h.start(5.0);
    assert!(!h.available(5.1, f64::INFINITY), "one probe at a time");
    // the probe fails: open again, even for a status that alone would not cool down
    assert!(h.failure(6.0, failure(503), None, &policy, d, true));
    assert_eq!(h.state(10.9), State::CoolingDown);
    h.start(11.0);
    h.success(11.5, 0.2, 0, 0, None, 0);
    assert_eq!(h.state(11.5), State::Healthy);
}

#[test]
fn window_and_percentiles() {
    let mut h = Health::default();
    for i in 0..100 {
        h.success(i as f64 * 0.5, (i + 1) as f64 / 100.0, 0, 0, None, 0);
    }
    let s = h.snapshot(49.5);
    assert_eq!(s.successes, 100);
    assert_eq!(s.latency_p50, Some(0.5));
    assert_eq!(s.latency_p99, Some(0.99));
    let later = h.snapshot(100.0);
    // at 100 s the window holds seconds 41 to 100: the samples of seconds 41 to 49
    assert_eq!(later.successes, 18);
}

#[test]
fn a_failed_health_check_goes_stale() {
    let mut h = Health::default();
    h.health_check(100.0, false, Some(503), None);
    assert!(!h.available(100.0, 600.0));
    assert!(!h.available(699.9, 600.0));
    assert!(
        h.available(700.0, 600.0),
        "older than the staleness: unknown"
    );
    assert!(h.available(100.0, 0.0), "a staleness of 0 never holds back");
    h.health_check(700.0, false, Some(503), None);
    assert!(!h.available(700.0, 600.0), "a new failure holds back again");
}

#[test]
fn a_failed_health_check_holds_back_until_one_passes() {
    let policy = CooldownPolicy {
        circuit_breaker: true,
        ..CooldownPolicy::default()
    };
    let mut h = Health::default();
    h.health_check(0.0, false, None, None);
    assert!(!h.available(0.0, f64::INFINITY));
    h.health_check(1.0, true, None, None);
    assert!(h.available(1.0, f64::INFINITY));
    assert!(h.failure(
        2.0,
        failure(401),
        None,
        &policy,
        DeploymentPolicy::default(),
        false
    ));
    h.health_check(3.0, true, None, None);
    assert_eq!(
        h.state(3.0),
        State::CoolingDown,
        "a check never ends a cooldown"
    );
    assert_eq!(h.state(7.0), State::HalfOpen);
    h.health_check(7.0, true, None, None);
    assert_eq!(h.state(7.0), State::Healthy);
}
