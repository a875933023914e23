//! Calendar arithmetic for the segment language: relative dates, day boundaries and
//! anniversaries, all from a `now` and a time zone the caller passes (the domain reads no clock).
//!
//! Calendar terms (a date such as `2024-01-31`, "this month", "today", months and years) are
//! read in the workspace's time zone, because a marketer in São Paulo means São Paulo's
//! midnight; fixed lengths (minutes to weeks) are plain durations.

use super::ast::{DateValue, TimeUnit, Window};
use crate::Timestamp;
use chrono::{Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A half-open time range: `since` inclusive, `until` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeBounds {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl TimeBounds {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|since| t >= since) && self.until.is_none_or(|until| t < until)
    }
}

impl Window {
    /// The instants this window covers at `now`, for the store's indexed count
    /// (`timestamp >= since and timestamp < until`).
    ///
    /// `in the last N` has no upper bound: an event stamped slightly ahead of the server's clock
    /// (ingestion allows some skew) still happened "recently".
    pub fn bounds(&self, now: Timestamp, tz: Tz) -> TimeBounds {
        match self {
            Window::Ever => TimeBounds {
                since: None,
                until: None,
            },
            Window::Last { amount, unit } => TimeBounds {
                since: Some(shift(now, *amount, *unit, tz, Direction::Back)),
                until: None,
            },
            Window::Between { from, to } => TimeBounds {
                since: Some(lower_bound(*from, tz)),
                until: Some(upper_bound(*to, tz)),
            },
        }
    }
}

/// The first instant a date value covers: the start of a day, or the instant itself.
pub(crate) fn lower_bound(value: DateValue, tz: Tz) -> Timestamp {
    match value {
        DateValue::Date(d) => start_of_day(d, tz),
        DateValue::Instant(t) => t,
    }
}

/// The first instant after a date value as an inclusive end: the start of the next day, or
/// the instant itself (instants end ranges exclusively).
pub(crate) fn upper_bound(value: DateValue, tz: Tz) -> Timestamp {
    match value {
        DateValue::Date(d) => d
            .succ_opt()
            .map_or(far_future(), |next| start_of_day(next, tz)),
        DateValue::Instant(t) => t,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Back,
    Forward,
}

/// The earliest instant relative dates reach: two days inside chrono's range, so that it can
/// still be shown in any time zone.
pub(crate) fn far_past() -> Timestamp {
    Timestamp::MIN_UTC + Duration::days(2)
}

/// The latest instant relative dates reach (see [`far_past`]).
pub(crate) fn far_future() -> Timestamp {
    Timestamp::MAX_UTC - Duration::days(2)
}

/// `now` moved by `amount unit`. Out-of-range results saturate near the ends of time, so an
/// absurd "within 4000000000 years" means "ever" rather than a panic.
pub(crate) fn shift(
    now: Timestamp,
    amount: u32,
    unit: TimeUnit,
    tz: Tz,
    direction: Direction,
) -> Timestamp {
    let saturated = match direction {
        Direction::Back => far_past(),
        Direction::Forward => far_future(),
    };
    let fixed = match unit {
        TimeUnit::Minutes => Duration::try_minutes(i64::from(amount)),
        TimeUnit::Hours => Duration::try_hours(i64::from(amount)),
        TimeUnit::Days => Duration::try_days(i64::from(amount)),
        TimeUnit::Weeks => Duration::try_weeks(i64::from(amount)),
        TimeUnit::Months | TimeUnit::Years => None,
    };
    if let Some(duration) = fixed {
        let shifted = match direction {
            Direction::Back => now.checked_sub_signed(duration),
            Direction::Forward => now.checked_add_signed(duration),
        };
        return shifted.map_or(saturated, |t| t.clamp(far_past(), far_future()));
    }
    let months = match unit {
        TimeUnit::Years => amount.checked_mul(12),
        _ => Some(amount),
    };
    let local = now.with_timezone(&tz).naive_local();
    let shifted = months.and_then(|m| match direction {
        Direction::Back => local.checked_sub_months(Months::new(m)),
        Direction::Forward => local.checked_add_months(Months::new(m)),
    });
    shifted.map_or(saturated, |naive| {
        from_local(naive, tz).clamp(far_past(), far_future())
    })
}

/// A wall-clock time in `tz` as an instant. An ambiguous time (clocks turned back) is the
/// earlier one; a time that does not exist (clocks turned forward, as Brazil's summer time did
/// at midnight) moves forward to the first time that does.
pub(crate) fn from_local(naive: NaiveDateTime, tz: Tz) -> Timestamp {
    let mut probe = naive;
    for _ in 0..8 {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
            LocalResult::None => match probe.checked_add_signed(Duration::minutes(15)) {
                Some(later) => probe = later,
                None => break,
            },
        }
    }
    Utc.from_utc_datetime(&naive)
}

/// Midnight at the start of `date` in `tz`.
pub(crate) fn start_of_day(date: NaiveDate, tz: Tz) -> Timestamp {
    from_local(date.and_time(chrono::NaiveTime::MIN), tz)
}

/// The calendar date of an instant in `tz`.
pub(crate) fn local_date(t: Timestamp, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The anniversary of `date` in `year`. 29 February falls on the 28th in common years: the
/// day stays in February, as "birthday this month" says it should.
pub fn anniversary_in(date: NaiveDate, year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .unwrap_or(date)
}

/// Days from `today` to the next anniversary of `date` (0 when it is today).
pub fn days_until_anniversary(date: NaiveDate, today: NaiveDate) -> i64 {
    let this_year = anniversary_in(date, today.year());
    let next = if this_year >= today {
        this_year
    } else {
        anniversary_in(date, today.year() + 1)
    };
    (next - today).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_and_years_are_calendar_steps_in_the_zone() {
        let sp = chrono_tz::America::Sao_Paulo;
        // 31 March 22:00 in São Paulo is 1 April in UTC; a month back is the end of February there.
        let now = at("2026-04-01T01:00:00Z");
        assert_eq!(
            shift(now, 1, TimeUnit::Months, sp, Direction::Back),
            at("2026-03-01T01:00:00Z")
        );
        let now = at("2026-03-31T15:00:00-03:00");
        assert_eq!(
            shift(now, 1, TimeUnit::Months, sp, Direction::Back),
            at("2026-02-28T15:00:00-03:00")
        );
        assert_eq!(
            shift(now, 1, TimeUnit::Years, sp, Direction::Forward),
            at("2027-03-31T15:00:00-03:00")
        );
        assert_eq!(
            shift(now, 2, TimeUnit::Days, sp, Direction::Back),
            at("2026-03-29T15:00:00-03:00")
        );
        assert_eq!(
            shift(now, u32::MAX, TimeUnit::Years, sp, Direction::Back),
            far_past()
        );
        assert_eq!(
            shift(now, u32::MAX, TimeUnit::Weeks, sp, Direction::Forward),
            far_future()
        );
        assert_eq!(
            shift(now, u32::MAX, TimeUnit::Days, sp, Direction::Back),
            far_past()
        );
        // Saturated instants still have a local date.
        assert!(local_date(far_past(), sp) < local_date(far_future(), chrono_tz::Asia::Tokyo));
    }

    #[test]
    fn a_day_starts_at_local_midnight_or_the_first_time_after_it() {
        let sp = chrono_tz::America::Sao_Paulo;
        assert_eq!(
            start_of_day(date("2026-01-10"), sp),
            at("2026-01-10T03:00:00Z")
        );
        // Brazil's summer time began at 00:00 on 2018-11-04: that midnight never happened.
        assert_eq!(
            start_of_day(date("2018-11-04"), sp),
            at("2018-11-04T01:00:00-02:00")
        );
        assert_eq!(
            local_date(at("2026-01-10T02:59:59Z"), sp),
            date("2026-01-09")
        );
    }

    #[test]
    fn leap_day_anniversaries_fall_on_the_28th_in_common_years() {
        let leap = date("2000-02-29");
        assert_eq!(anniversary_in(leap, 2027), date("2027-02-28"));
        assert_eq!(anniversary_in(leap, 2028), date("2028-02-29"));
        assert_eq!(days_until_anniversary(leap, date("2027-02-28")), 0);
        assert_eq!(days_until_anniversary(leap, date("2028-02-28")), 1);
        assert_eq!(days_until_anniversary(leap, date("2027-03-01")), 365);
        assert_eq!(
            days_until_anniversary(date("1990-01-02"), date("2026-12-28")),
            5
        );
    }

    #[test]
    fn window_bounds_are_half_open() {
        let sp = chrono_tz::America::Sao_Paulo;
        let now = at("2026-05-10T12:00:00Z");
        let last = Window::Last {
            amount: 7,
            unit: TimeUnit::Days,
        }
        .bounds(now, sp);
        assert_eq!(
            last,
            TimeBounds {
                since: Some(at("2026-05-03T12:00:00Z")),
                until: None
            }
        );
        assert!(last.contains(at("2026-05-03T12:00:00Z")));
        assert!(!last.contains(at("2026-05-03T11:59:59Z")));
        let between = Window::Between {
            from: DateValue::parse("2026-01-01").unwrap(),
            to: DateValue::parse("2026-01-31").unwrap(),
        }
        .bounds(now, sp);
        assert_eq!(between.since, Some(at("2026-01-01T03:00:00Z")));
        assert_eq!(between.until, Some(at("2026-02-01T03:00:00Z")));
        assert!(between.contains(at("2026-02-01T02:59:59Z")));
        assert!(!between.contains(at("2026-02-01T03:00:00Z")));
        assert_eq!(
            Window::Ever.bounds(now, sp),
            TimeBounds {
                since: None,
                until: None
            }
        );
    }
}
