//! The period insights cover, and its UTC calendar days (the chart's bars).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::UnixMillis;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// A half-open period `[since, until)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The first millisecond covered.
    pub since: UnixMillis,
    /// The first millisecond no longer covered ("now" for the windows below).
    pub until: UnixMillis,
}

impl Window {
    /// The last `days` UTC calendar days up to `now`: today (the day of `now`, so far) and
    /// the `days - 1` whole days before it. `days` of 0 counts as 1.
    pub fn last_days(now: UnixMillis, days: u32) -> Self {
        let days = i64::from(days.max(1));
        Self {
            since: start_of_day(now) - (days - 1) * DAY_MS,
            until: now.saturating_add(1),
        }
    }

    /// The 24 hours up to `now` (the daily digest's period).
    pub fn last_24_hours(now: UnixMillis) -> Self {
        Self {
            since: now - DAY_MS,
            until: now.saturating_add(1),
        }
    }

    /// The UTC date of the first millisecond covered, `YYYY-MM-DD`.
    pub fn first_date(&self) -> String {
        date(self.since)
    }

    /// The UTC date of the last millisecond covered, `YYYY-MM-DD`.
    pub fn last_date(&self) -> String {
        date(self.until - 1)
    }

    /// Whether `at` falls in the window.
    pub fn contains(&self, at: UnixMillis) -> bool {
        (self.since..self.until).contains(&at)
    }

    /// The start (UTC midnight) of every calendar day the window touches, oldest first.
    pub fn day_starts(&self) -> Vec<UnixMillis> {
        let last = start_of_day(self.until.saturating_sub(1).max(self.since));
        let mut day = start_of_day(self.since);
        let mut days = Vec::new();
        while day <= last {
            days.push(day);
            day += DAY_MS;
        }
        days
    }
}

/// UTC midnight at or before `at`.
pub fn start_of_day(at: UnixMillis) -> UnixMillis {
    at.div_euclid(DAY_MS) * DAY_MS
}

/// The UTC date of `at` as `YYYY-MM-DD`.
pub fn date(at: UnixMillis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30 14:30 UTC.
    const NOW: UnixMillis = 1_796_049_000_000;

    #[test]
    fn the_last_days_are_calendar_days_ending_with_today() {
        let week = Window::last_days(NOW, 7);
        assert_eq!(date(NOW), "2026-11-30");
        assert_eq!(week.first_date(), "2026-11-24");
        assert_eq!(week.last_date(), "2026-11-30");
        assert_eq!(week.since, start_of_day(week.since));
        assert!(week.contains(NOW) && !week.contains(week.since - 1));
        let days: Vec<String> = week.day_starts().into_iter().map(date).collect();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], "2026-11-24");
        assert_eq!(days[6], "2026-11-30");
        assert_eq!(Window::last_days(NOW, 0), Window::last_days(NOW, 1));
    }

    #[test]
    fn the_last_24_hours_touch_two_days() {
        let window = Window::last_24_hours(NOW);
        assert_eq!(window.until - window.since, DAY_MS + 1);
        let days: Vec<String> = window.day_starts().into_iter().map(date).collect();
        assert_eq!(days, ["2026-11-29", "2026-11-30"]);
        let midnight = start_of_day(NOW);
        assert_eq!(Window::last_24_hours(midnight).day_starts().len(), 2);
    }
}
