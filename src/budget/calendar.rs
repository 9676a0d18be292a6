//! The proleptic Gregorian calendar on day numbers (days since 1970-01-01), after Howard
//! Hinnant's `civil_from_days` / `days_from_civil` (public-domain algorithms, also used by the
//! C++ `<chrono>` library). Plain integer arithmetic, so the Python fallback and the Redis
//! script compute the same months with the same steps; only days on or after 1970 are needed.

/// `(year, month 1..=12, day 1..=31)` of day number `days`.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The day number of `year`-`month`-`day` (on or after 1970-01-01).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = year - u64::from(month <= 2);
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The month holding day number `days` as `year * 12 + month - 1`, and the day number of the
/// first day of the next month.
pub fn month_of_day(days: u64) -> (u64, u64) {
    let (year, month, _) = civil_from_days(days);
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    (year * 12 + month - 1, next)
}
