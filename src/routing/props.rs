//! Property tests of the router: whatever happened before, a pick goes to a deployment of the
//! group that may take a request now, and the deterministic strategies pick their optimum.

use proptest::prelude::*;
use proptest::strategy::Strategy as Generator;

use super::{
    CooldownPolicy, DeploymentPolicy, DeploymentSpec, Failure, Router, RoutingError, Strategy,
};

#[derive(Clone, Debug)]
enum Op {
    Start(usize),
    Success(usize, f64, u64),
    Failure(usize, u16, Option<f64>),
    Advance(f64),
}

fn op() -> impl Generator<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Start),
        (0..4usize, 0.0..10.0f64, 0..500u64).prop_map(|(i, l, t)| Op::Success(i, l, t)),
        (
            0..4usize,
            prop::sample::select(vec![400u16, 401, 404, 429, 500, 503]),
            prop::option::of(0.0..30.0f64)
        )
            .prop_map(|(i, s, r)| Op::Failure(i, s, r)),
        (0.0..20.0f64).prop_map(Op::Advance),
    ]
}

fn strategy() -> impl Generator<Value = Strategy> {
    prop::sample::select(vec![
        Strategy::SimpleShuffle,
        Strategy::LeastBusy,
        Strategy::LatencyBased,
        Strategy::UsageBased,
        Strategy::CostBased,
    ])
}

fn specs() -> Vec<DeploymentSpec> {
    (0..4)
        .map(|i| DeploymentSpec {
            group: 0,
            shuffle_weights: [f64::from(i as u8), 0.0, 0.0],
            rpm_limit: f64::INFINITY,
            tpm_limit: 2000.0,
            rpm_limit_truthy: f64::INFINITY,
            tpm_limit_truthy: 2000.0,
            cost: f64::from(4 - i as u8),
            policy: DeploymentPolicy::default(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_pick_goes_to_an_available_deployment(
        strategy in strategy(),
        breaker in any::<bool>(),
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let policy = CooldownPolicy { circuit_breaker: breaker, ..CooldownPolicy::default() };
        let router = Router::new(strategy, policy, 0.0, 1, specs(), seed).unwrap();
        let mut now = 0.0;
        for op in ops {
            match op {
                Op::Start(i) => router.record_start(i, now).unwrap(),
                Op::Success(i, l, t) => router.record_success(i, now, l, 0, t, None).unwrap(),
                Op::Failure(i, status, retry_after) => {
                    let failure = Failure { status, retry_after, ..Failure::default() };
                    router.record_failure(i, now, failure, None).unwrap();
                }
                Op::Advance(seconds) => now += seconds,
            }
            let available = router.available(0, now).unwrap();
            match router.pick(0, 0, false, now) {
                Ok(chosen) => {
                    prop_assert!(available.contains(&chosen));
                    let inner = router.inner.lock();
                    if strategy == Strategy::LeastBusy {
                        let least = available.iter().map(|&i| inner.health[i].in_flight).min();
                        prop_assert_eq!(Some(inner.health[chosen].in_flight), least);
                    }
                }
                Err(RoutingError::NoneAvailable { retry_after }) => {
                    if available.is_empty() {
                        // cooling down: the wait is the soonest end, and it is in the future
                        if let Some(wait) = retry_after {
                            prop_assert!(wait > 0.0);
                        }
                    } else {
                        // only the per-minute limits may refuse available deployments
                        prop_assert!(matches!(
                            strategy,
                            Strategy::LatencyBased
                                | Strategy::UsageBased
                                | Strategy::CostBased
                        ));
                    }
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
