use super::*;

mod props;

const S: u64 = 1_000_000_000;

fn per_minute(rate: u64, burst: u64) -> Limit {
    Limit::new((60 * S).div_ceil(rate), burst).unwrap()
}

fn requests_only(rate: u64, burst: u64) -> RateLimiter {
    RateLimiter::new(Limits::new(Some(per_minute(rate, burst)), None).unwrap())
}

#[test]
fn sixty_per_minute_admits_the_burst_of_six_then_one_per_second() {
    let limiter = requests_only(60, 6);
    let allowed = (0..100)
        .filter(|_| limiter.check("k", 0, 1, 0).unwrap().allowed)
        .count();
    assert_eq!(allowed, 6);
    let refused = limiter.check("k", 0, 1, 0).unwrap();
    assert_eq!(refused.retry_after_ns, S);
    assert_eq!(refused.reset_after_ns, 6 * S);
    assert_eq!(
        refused.requests,
        Some(LimitView {
            remaining: 0,
            limit: 6
        })
    );
    assert!(!limiter.check("k", S - 1, 1, 0).unwrap().allowed);
    let one = limiter.check("k", S, 1, 0).unwrap();
    assert!(one.allowed);
    assert_eq!(one.retry_after_ns, 0);
    assert_eq!(one.requests.unwrap().remaining, 0);
    let stats = limiter.stats();
    assert_eq!((stats.keys, stats.allowed, stats.denied), (1, 7, 96));
}

#[test]
fn first_check_reports_what_is_left() {
    let limiter = requests_only(60, 6);
    let first = limiter.check("k", 0, 2, 0).unwrap();
    assert!(first.allowed);
    assert_eq!(first.requests.unwrap().remaining, 4);
    assert_eq!(first.reset_after_ns, 2 * S);
    // Half a second later, half a unit has come back: still 4 whole units.
    let peek = limiter.peek("k", S / 2, 0, 0).unwrap();
    assert_eq!(peek.requests.unwrap().remaining, 4);
    assert_eq!(peek.reset_after_ns, 3 * S / 2);
}

#[test]
fn combined_limits_consume_both_or_neither() {
    let limits = Limits::new(Some(per_minute(60, 6)), Some(per_minute(600, 60))).unwrap();
    let limiter = RateLimiter::new(limits);
    let big = limiter.check("k", 0, 1, 50).unwrap();
    assert!(big.allowed);
    assert_eq!(big.tokens.unwrap().remaining, 10);
    // Tokens refuse: the request must not be consumed either.
    let refused = limiter.check("k", 0, 1, 20).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_ns, 10 * S / 10);
    assert_eq!(refused.requests.unwrap().remaining, 5);
    assert_eq!(refused.tokens.unwrap().remaining, 10);
    assert_eq!(
        limiter
            .peek("k", 0, 0, 0)
            .unwrap()
            .requests
            .unwrap()
            .remaining,
        5
    );
}

#[test]
fn an_amount_over_the_burst_is_never_allowed() {
    let limiter = requests_only(60, 6);
    let never = limiter.check("k", 0, 7, 0).unwrap();
    assert!(!never.allowed);
    assert_eq!(never.retry_after_ns, NEVER);
    assert_eq!(never.requests.unwrap().remaining, 6);
    assert_eq!(limiter.stats().keys, 0);
}

#[test]
fn keys_and_limiters_are_independent() {
    let a = requests_only(60, 1);
    let b = requests_only(6000, 100);
    assert!(a.check("k", 0, 1, 0).unwrap().allowed);
    assert!(!a.check("k", 0, 1, 0).unwrap().allowed);
    assert!(a.check("other", 0, 1, 0).unwrap().allowed);
    assert_eq!(
        (0..200)
            .filter(|_| b.check("k", 0, 1, 0).unwrap().allowed)
            .count(),
        100
    );
}

#[test]
fn reset_and_cleanup_forget_keys() {
    let limiter = requests_only(60, 6);
    for i in 0..1000 {
        limiter.check(&format!("key-{i}"), 0, 1, 0).unwrap();
    }
    limiter.check("busy", 0, 6, 0).unwrap();
    assert!(limiter.reset("key-1").unwrap());
    assert!(!limiter.reset("key-1").unwrap());
    // At 1 s every single-use key is full again; "busy" still owes 5 s.
    assert_eq!(limiter.cleanup(S), 999);
    assert_eq!(limiter.stats().keys, 1);
    assert_eq!(limiter.cleanup(6 * S), 1);
}

#[test]
fn idle_keys_are_swept_as_new_keys_arrive() {
    let limiter = requests_only(60, 6);
    // Each key is used once; one second later it is full again, so the table must not keep all.
    for i in 0..100_000u64 {
        limiter.check(&format!("key-{i}"), i * S, 1, 0).unwrap();
    }
    assert!(limiter.stats().keys < 16 * 64 * 2, "{:?}", limiter.stats());
}

#[test]
fn long_keys_are_stored_and_counted() {
    let limiter = requests_only(60, 6);
    let key = "x".repeat(MAX_KEY_LENGTH);
    assert!(limiter.check(&key, 0, 1, 0).unwrap().allowed);
    assert!(limiter.stats().memory_bytes >= MAX_KEY_LENGTH);
    assert!(limiter.reset(&key).unwrap());
    let too_long = "é".repeat(MAX_KEY_LENGTH + 1);
    assert_eq!(
        limiter.check(&too_long, 0, 1, 0),
        Err(RateLimitError::KeyTooLong {
            length: MAX_KEY_LENGTH + 1
        })
    );
    // Multi-byte characters count as one each.
    assert!(limiter.check(&"é".repeat(MAX_KEY_LENGTH), 0, 1, 0).is_ok());
    assert_eq!(limiter.check("", 0, 1, 0), Err(RateLimitError::EmptyKey));
}

#[test]
fn limits_are_validated() {
    assert!(Limit::new(0, 1).is_err());
    assert!(Limit::new(1, 0).is_err());
    assert!(Limit::new(MAX_NS, 2).is_err());
    assert!(Limit::new(MAX_NS, 1).is_ok());
    assert!(Limits::new(None, None).is_err());
}

#[test]
fn time_conversion_rounds_half_to_even() {
    assert_eq!(seconds_to_ns(1.5, "t").unwrap(), 1_500_000_000);
    assert_eq!(seconds_to_ns(2.5e-9, "t").unwrap(), 2);
    assert_eq!(seconds_to_ns(3.5e-9, "t").unwrap(), 4);
    assert!(seconds_to_ns(-1.0, "t").is_err());
    assert!(seconds_to_ns(f64::NAN, "t").is_err());
    assert!(seconds_to_ns(f64::INFINITY, "t").is_err());
    let clock = ManualClock::new(0).unwrap();
    assert_eq!(clock.advance_ns(5).unwrap(), 5);
    assert!(clock.advance_ns(MAX_NS).is_err());
    assert_eq!(clock.now_ns(), 5);
}

#[test]
fn threads_never_over_admit() {
    let limiter = std::sync::Arc::new(requests_only(60, 1000));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            std::thread::spawn(move || {
                (0..10_000)
                    .filter(|_| limiter.check("hot", 0, 1, 0).unwrap().allowed)
                    .count()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 1000);
}

#[test]
fn reset_keeps_every_other_key_intact() {
    let limiter = requests_only(60, 3);
    let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        limiter.check(key, 0, 1 + (i as u64 % 3), 0).unwrap();
    }
    for key in keys.iter().step_by(7) {
        assert!(limiter.reset(key).unwrap());
    }
    for (i, key) in keys.iter().enumerate() {
        let left = limiter
            .peek(key, 0, 0, 0)
            .unwrap()
            .requests
            .unwrap()
            .remaining;
        let expected = if i % 7 == 0 { 3 } else { 2 - (i as u64 % 3) };
        assert_eq!(left, expected, "{key}");
    }
    assert_eq!(limiter.stats().keys, 500 - keys.iter().step_by(7).count());
}

#[test]
fn a_token_only_limiter_keeps_its_state() {
    let limiter = RateLimiter::new(Limits::new(None, Some(per_minute(600, 60))).unwrap());
    assert!(limiter.check("k", 0, 0, 60).unwrap().allowed);
    let refused = limiter.check("k", 0, 0, 1).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_ns, S / 10);
    assert_eq!(refused.requests, None);
}
