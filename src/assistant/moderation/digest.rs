//! When the daily digest of insights is due: a time of day in UTC
//! (`SHOPKEEP_DIGEST_AT=09:00`), and the next moment it comes round.

use std::fmt;
use std::str::FromStr;

use crate::store::UnixMillis;

use super::insights::{start_of_day, DAY_MS};

/// A time of day, UTC, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyTime {
    hour: u8,
    minute: u8,
}

/// A time of day that is not `HH:MM` with `HH` 00–23 and `MM` 00–59.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time of day HH:MM (00:00 to 23:59)")]
pub struct BadDailyTime(String);

impl DailyTime {
    /// `hour`:`minute`, when both are in range.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    /// Milliseconds after UTC midnight.
    fn offset_ms(self) -> i64 {
        (i64::from(self.hour) * 60 + i64::from(self.minute)) * 60_000
    }

    /// The first moment strictly after `now` at this time of day.
    pub fn next_after(self, now: UnixMillis) -> UnixMillis {
        let today = start_of_day(now) + self.offset_ms();
        if today > now {
            today
        } else {
            today + DAY_MS
        }
    }
}

impl FromStr for DailyTime {
    type Err = BadDailyTime;

    /// `HH:MM`, 24-hour, two digits each (`09:00`, `17:30`); spaces around are ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadDailyTime(text.to_string());
        let (hour, minute) = text.trim().split_once(':').ok_or_else(bad)?;
        let two_digits = |part: &str| {
            (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u8>().ok())
                .flatten()
        };
        let (hour, minute) = (
            two_digits(hour).ok_or_else(bad)?,
            two_digits(minute).ok_or_else(bad)?,
        );
        Self::new(hour, minute).ok_or_else(bad)
    }
}

impl fmt::Display for DailyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_hh_mm_in_range() {
        let nine: DailyTime = "09:00".parse().unwrap();
        assert_eq!(nine, DailyTime::new(9, 0).unwrap());
        assert_eq!(" 23:59 ".parse::<DailyTime>().unwrap().to_string(), "23:59");
        for bad in [
            "9:00", "24:00", "12:60", "0900", "09:00:00", "nine", "", "-1:00", "+9:00",
        ] {
            assert!(bad.parse::<DailyTime>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_next_time_is_today_if_still_ahead_else_tomorrow() {
        let nine = DailyTime::new(9, 0).unwrap();
        let midnight = 20_000 * DAY_MS;
        let at_nine = midnight + 9 * 3_600_000;
        assert_eq!(nine.next_after(midnight), at_nine);
        assert_eq!(nine.next_after(at_nine - 1), at_nine);
        assert_eq!(nine.next_after(at_nine), at_nine + DAY_MS);
        assert_eq!(nine.next_after(at_nine + 3_600_000), at_nine + DAY_MS);
    }
}
