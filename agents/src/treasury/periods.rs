//! The UTC windows the treasury's caps are counted over: the calendar day, the ISO week (from Monday 00:00
//! UTC) and the calendar month, each as the unix second it starts at, plus the velocity window (the last M
//! minutes). Pure functions of a timestamp (time is an input, never read here); the calendar arithmetic is
//! the `time` crate's, not hand-rolled. The spend ledger sums a payer's history from these starts, so the
//! policy engine and the ledger agree on what "today" and "this week" mean.

use time::{Date, OffsetDateTime};

const DAY: i64 = 86_400;

/// A timestamp outside what the calendar can represent (beyond the years ±9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0} is outside the supported calendar range")]
pub struct OutOfRange(pub i64);

/// Where each window that contains `at` starts, in unix seconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub day_start: i64,
    /// Monday 00:00 UTC of the ISO week.
    pub week_start: i64,
    /// The 1st of the calendar month, 00:00 UTC.
    pub month_start: i64,
}

fn date_of(at: i64) -> Result<Date, OutOfRange> {
    OffsetDateTime::from_unix_timestamp(at)
        .map(OffsetDateTime::date)
        .map_err(|_| OutOfRange(at))
}

fn start_of(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp()
}

impl Windows {
    /// The day, week and month windows containing `at`.
    pub fn containing(at: i64) -> Result<Self, OutOfRange> {
        let date = date_of(at)?;
        let monday = date
            .checked_sub(time::Duration::days(i64::from(
                date.weekday().number_days_from_monday(),
            )))
            .ok_or(OutOfRange(at))?;
        let first = Date::from_calendar_date(date.year(), date.month(), 1).map_err(|_| OutOfRange(at))?;
        Ok(Windows {
            day_start: start_of(date),
            week_start: start_of(monday),
            month_start: start_of(first),
        })
    }
}

/// Seconds since 00:00 UTC of `at`'s day (0..86400); defined for every `i64`.
pub fn second_of_day(at: i64) -> i64 {
    at.rem_euclid(DAY)
}

/// The first second of a velocity window of `window_seconds` ending at `at`: payments at or after it count.
pub fn velocity_window_start(at: i64, window_seconds: i64) -> i64 {
    at.saturating_sub(window_seconds).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    // 2026-12-04 is a Friday.
    const FRI_2026_12_04_1530: i64 = 1_796_398_200;

    #[test]
    fn day_week_and_month_of_a_friday_afternoon() {
        let w = Windows::containing(FRI_2026_12_04_1530).unwrap();
        assert_eq!(w.day_start, 1_796_342_400, "2026-12-04 00:00 UTC");
        assert_eq!(w.week_start, 1_796_342_400 - 4 * DAY, "Monday 2026-11-30 00:00 UTC");
        assert_eq!(w.month_start, 1_796_342_400 - 3 * DAY, "2026-12-01 00:00 UTC");
    }

    #[test]
    fn a_week_spanning_the_new_year_starts_in_the_old_one() {
        // Friday 2027-01-01 00:00 UTC; its ISO week starts Monday 2026-12-28.
        let new_year = 1_798_761_600;
        let w = Windows::containing(new_year).unwrap();
        assert_eq!(w.day_start, new_year);
        assert_eq!(w.month_start, new_year);
        assert_eq!(w.week_start, new_year - 4 * DAY);
    }

    #[test]
    fn monday_midnight_starts_its_own_week_and_the_second_before_does_not() {
        let monday = 1_796_342_400 - 4 * DAY;
        assert_eq!(Windows::containing(monday).unwrap().week_start, monday);
        assert_eq!(Windows::containing(monday - 1).unwrap().week_start, monday - 7 * DAY);
    }

    #[test]
    fn leap_day_belongs_to_february() {
        // 2028-02-29 12:00 UTC.
        let leap = 1_835_438_400;
        let w = Windows::containing(leap).unwrap();
        let feb_first = OffsetDateTime::from_unix_timestamp(w.month_start).unwrap();
        assert_eq!((feb_first.month(), feb_first.day()), (Month::February, 1));
        assert_eq!(leap - w.day_start, 12 * 3600);
    }

    #[test]
    fn timestamps_before_1970_and_far_out_of_range() {
        let w = Windows::containing(-1).unwrap();
        assert_eq!(w.day_start, -DAY, "1969-12-31");
        assert_eq!(second_of_day(-1), DAY - 1);
        assert_eq!(Windows::containing(i64::MAX), Err(OutOfRange(i64::MAX)));
    }

    #[test]
    fn the_velocity_window_holds_exactly_its_seconds() {
        assert_eq!(velocity_window_start(1_000, 300), 701);
        assert_eq!(velocity_window_start(i64::MIN, 300), i64::MIN + 1);
    }
}
