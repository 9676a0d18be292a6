use super::calendar::{civil_from_days, days_from_civil, month_of_day};
use super::*;

const S: u64 = 1_000_000_000;
const DOLLAR: u64 = NANODOLLARS_PER_DOLLAR;

/// Unix ns of a UTC date.
fn at(year: u64, month: u64, day: u64) -> u64 {
    days_from_civil(year, month, day) * DAY_NS
}

fn daily_monthly(daily: u64, monthly: u64) -> BudgetStore {
    BudgetStore::new(Windows::new(Some(daily * DOLLAR), Some(monthly * DOLLAR), None).unwrap())
}

#[test]
fn calendar_round_trips_and_knows_leap_years() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(
        days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 1),
        29
    );
    assert_eq!(
        days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 1),
        28
    );
    for day in (0..200_000).step_by(7) {
        let (y, m, d) = civil_from_days(day);
        assert_eq!(days_from_civil(y, m, d), day);
    }
    let (month, next) = month_of_day(days_from_civil(2026, 12, 31));
    assert_eq!(month, 2026 * 12 + 11);
    assert_eq!(next, days_from_civil(2027, 1, 1));
}

#[test]
fn dollars_become_nanodollars_half_to_even() {
    assert_eq!(dollars_to_nanodollars(0.1, "cost").unwrap(), 100_000_000);
    assert_eq!(dollars_to_nanodollars(1.5e-7, "cost").unwrap(), 150);
    assert_eq!(dollars_to_nanodollars(2.5e-9, "cost").unwrap(), 2);
    for bad in [f64::NAN, f64::INFINITY, -1e-9, 1e7] {
        assert!(dollars_to_nanodollars(bad, "cost").is_err(), "{bad}");
    }
}

#[test]
fn records_add_exactly_and_checks_refuse_what_would_exceed() {
    let store = daily_monthly(10, 100);
    let now = at(2026, 3, 14) + 5 * S;
    for _ in 0..10 {
        store.record("k", now, 100_000_000).unwrap(); // $0.10, exactly
    }
    let views = store.status("k", now).unwrap();
    assert_eq!(views[0].spent, DOLLAR);
    assert_eq!(views[0].requests, 10);
    assert_eq!(views[0].reset_at_ns, Some(at(2026, 3, 15)));
    assert_eq!(views[1].reset_at_ns, Some(at(2026, 4, 1)));
    assert!(store.check("k", now, 9 * DOLLAR).unwrap().allowed);
    let refused = store.check("k", now, 9 * DOLLAR + 1).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.view.window.kind, WindowKind::Daily);
    assert_eq!(refused.retry_after_ns, Some(at(2026, 3, 15) - now));
    let never = store.check("k", now, 11 * DOLLAR).unwrap();
    assert_eq!(never.retry_after_ns, None);
    store.record("k", now, 9 * DOLLAR).unwrap();
    let exhausted = store.check("k", now, 0).unwrap();
    assert!(!exhausted.allowed && exhausted.exhausted);
}

#[test]
fn windows_roll_over_at_utc_midnight_and_month_end() {
    let store = daily_monthly(10, 100);
    let eve = at(2026, 12, 31) + DAY_NS - 1;
    store.record("k", eve, 3 * DOLLAR).unwrap();
    let views = store.status("k", eve + 1).unwrap();
    assert_eq!((views[0].spent, views[1].spent), (0, 0));
    assert_eq!(views[1].reset_at_ns, Some(at(2027, 2, 1)));
    store.record("k", at(2027, 1, 1), DOLLAR).unwrap();
    store.record("k", at(2027, 1, 2), DOLLAR).unwrap();
    let views = store.status("k", at(2027, 1, 2)).unwrap();
    assert_eq!((views[0].spent, views[1].spent), (DOLLAR, 2 * DOLLAR));
}

#[test]
fn a_period_starts_with_the_first_spend() {
    let store = BudgetStore::new(Windows::new(None, None, Some((3600 * S, DOLLAR))).unwrap());
    assert_eq!(store.status("k", 5).unwrap()[0].reset_at_ns, None);
    store.record("k", 100 * S, DOLLAR / 2).unwrap();
    let view = store.status("k", 3699 * S).unwrap()[0];
    assert_eq!((view.spent, view.reset_at_ns), (DOLLAR / 2, Some(3700 * S)));
    assert_eq!(store.status("k", 3700 * S).unwrap()[0].spent, 0);
    store.record("k", 5000 * S, 1).unwrap();
    assert_eq!(
        store.status("k", 5000 * S).unwrap()[0].reset_at_ns,
        Some(8600 * S)
    );
}

#[test]
fn bad_configurations_are_refused() {
    assert!(Windows::new(None, None, None).is_err());
    assert!(Windows::new(Some(1), None, Some((S, 1))).is_err());
    assert!(Windows::new(None, None, Some((0, 1))).is_err());
    assert!(Windows::new(Some(MAX_NANODOLLARS + 1), None, None).is_err());
    let store = daily_monthly(1, 1);
    assert!(store.record("", 0, 1).is_err());
}

#[test]
fn spent_saturates_and_idle_keys_are_swept() {
    let store = BudgetStore::new(Windows::new(Some(DOLLAR), None, None).unwrap());
    store.record("k", 0, MAX_NANODOLLARS).unwrap();
    store.record("k", 0, MAX_NANODOLLARS).unwrap();
    assert_eq!(store.status("k", 0).unwrap()[0].spent, MAX_NANODOLLARS);
    assert_eq!(store.cleanup(0), 0);
    assert_eq!(store.cleanup(DAY_NS), 1);
    assert_eq!(store.stats().keys, 0);
}

#[test]
fn concurrent_records_add_exactly() {
    let store = std::sync::Arc::new(daily_monthly(1_000_000, 1_000_000));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    store.record("shared", 0, 7).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let views = store.status("shared", 0).unwrap();
    assert_eq!((views[0].spent, views[0].requests), (560_000, 80_000));
}

#[test]
fn floats_in_messages_read_as_python_writes_them() {
    let message = |x: f64| dollars_to_nanodollars(x, "cost").unwrap_err().to_string();
    assert!(message(-1e-7).ends_with("got -1e-07"), "{}", message(-1e-7));
    assert!(message(1e300).ends_with("got 1e+300"));
    assert!(message(-0.5).ends_with("got -0.5"));
    assert_eq!(format_dollars(12_500_000_000), "$12.50");
    assert_eq!(format_dollars(1_500), "$0.0000015");
    assert_eq!(format_dollars(0), "$0.00");
}
