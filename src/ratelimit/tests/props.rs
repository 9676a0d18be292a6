//! Property tests: the GCRA guarantee under random arrivals and costs on an injected clock, and
//! the probe index against a `HashMap`.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use super::super::index::Index;
use super::*;

/// Fixed seed and no failure files: every run tries the same cases, and a failure prints its
/// (shrunk) input.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6c7a_2b01),
        ..Config::default()
    })
}

/// One call: how long after the previous one it comes, its cost and its tokens.
type Arrival = (u64, u64, u64);

/// Checks every window between two admitted calls: at most `burst + w / interval` units.
fn assert_window_bound(admitted: &[(u64, u64)], limit: Limit, what: &str) {
    for (i, &(start, _)) in admitted.iter().enumerate() {
        let mut units = 0;
        for &(at, amount) in &admitted[i..] {
            units += amount;
            let bound = limit.burst() + (at - start) / limit.interval_ns();
            assert!(
                units <= bound,
                "{what}: {units} units admitted in [{start}, {at}], bound {bound}"
            );
        }
    }
}

#[test]
fn gcra_never_admits_more_than_burst_plus_rate_times_window() {
    let arrivals = proptest::collection::vec(
        (
            prop_oneof![3 => Just(0u64), 5 => 0..2_000u64, 2 => 0..50_000u64],
            0..6u64,
            0..40u64,
        ),
        1..150,
    );
    let case = (1..5_000u64, 1..8u64, 1..500u64, 1..60u64, arrivals);
    runner(400)
        .run(
            &case,
            |(request_interval, burst, token_interval, token_burst, arrivals): (
                u64,
                u64,
                u64,
                u64,
                Vec<Arrival>,
            )| {
                let requests = Limit::new(request_interval, burst).unwrap();
                let tokens = Limit::new(token_interval, token_burst).unwrap();
                let limiter = RateLimiter::new(Limits::new(Some(requests), Some(tokens)).unwrap());
                let clock = ManualClock::new(1_000_000).unwrap();
                let (mut admitted_requests, mut admitted_tokens) = (Vec::new(), Vec::new());
                for (delta, cost, spent) in arrivals {
                    let now = clock.advance_ns(delta).unwrap();
                    let decision = limiter.check("k", now, cost, spent).unwrap();
                    let fits = cost <= burst && spent <= token_burst;
                    if decision.allowed {
                        admitted_requests.push((now, cost));
                        admitted_tokens.push((now, spent));
                        prop_assert_eq!(decision.retry_after_ns, 0);
                    } else if !fits {
                        prop_assert_eq!(decision.retry_after_ns, NEVER);
                    } else {
                        // Refused for now: admitted once the answer's wait has passed.
                        prop_assert!(decision.retry_after_ns > 0);
                        let later = now + decision.retry_after_ns;
                        prop_assert!(limiter.peek("k", later, cost, spent).unwrap().allowed);
                        prop_assert!(!limiter.peek("k", later - 1, cost, spent).unwrap().allowed);
                    }
                }
                assert_window_bound(&admitted_requests, requests, "requests");
                assert_window_bound(&admitted_tokens, tokens, "tokens");
                Ok(())
            },
        )
        .unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u32),
    Remove(u32),
    Find(u32),
    /// Moves a key's entry to another position, as the store does when it compacts.
    Repoint(u32, u32),
    ShrinkTo(usize),
    Clear,
}

/// 32-bit hashes with many collisions, so probe runs are long and wrap around.
fn hash_of(key: u32) -> u32 {
    key % 23
}

#[test]
fn probe_index_agrees_with_a_hash_map() {
    let key = 0..300u32;
    let op = prop_oneof![
        8 => key.clone().prop_map(Op::Insert),
        5 => key.clone().prop_map(Op::Remove),
        5 => key.clone().prop_map(Op::Find),
        2 => (key, 0..1_000u32).prop_map(|(k, e)| Op::Repoint(k, e)),
        1 => (0..200usize).prop_map(Op::ShrinkTo),
        1 => Just(Op::Clear),
    ];
    runner(300)
        .run(&proptest::collection::vec(op, 1..400), |ops| {
            let mut index = Index::new();
            // key -> entry, and entry -> key (what the store's `is_key` reads).
            let mut model: HashMap<u32, u32> = HashMap::new();
            let mut keys_of: HashMap<u32, u32> = HashMap::new();
            let mut next_entry = 1_000;
            for op in ops {
                match op {
                    Op::Insert(key) => {
                        if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(key) {
                            next_entry += 1;
                            index.insert(hash_of(key), next_entry);
                            slot.insert(next_entry);
                            keys_of.insert(next_entry, key);
                        }
                    }
                    Op::Remove(key) => {
                        let removed = index.remove(hash_of(key), |e| keys_of.get(&e) == Some(&key));
                        prop_assert_eq!(removed, model.remove(&key));
                        if let Some(entry) = removed {
                            keys_of.remove(&entry);
                        }
                    }
                    Op::Find(key) => {
                        let found = index.find(hash_of(key), |e| keys_of.get(&e) == Some(&key));
                        prop_assert_eq!(found, model.get(&key).copied());
                    }
                    Op::Repoint(key, to) => {
                        let to = to + 2_000_000;
                        if let Some(from) = model.get(&key).copied() {
                            if !keys_of.contains_key(&to) {
                                index.repoint(hash_of(key), from, to);
                                keys_of.remove(&from);
                                keys_of.insert(to, key);
                                model.insert(key, to);
                            }
                        }
                    }
                    Op::ShrinkTo(len) => index.shrink_to(len),
                    Op::Clear => {
                        index.clear();
                        model.clear();
                        keys_of.clear();
                    }
                }
            }
            for (&key, &entry) in &model {
                let found = index.find(hash_of(key), |e| keys_of.get(&e) == Some(&key));
                prop_assert_eq!(found, Some(entry));
            }
            Ok(())
        })
        .unwrap();
}
