//! Time helpers: the API keeps times in UTC at microsecond precision on both databases.

use chrono::{NaiveDateTime, SubsecRound, Utc};

pub fn truncate_micros(t: NaiveDateTime) -> NaiveDateTime {
    t.trunc_subsecs(6)
}

/// The current time as stored: UTC, truncated to microseconds.
pub fn now() -> NaiveDateTime {
    truncate_micros(Utc::now().naive_utc())
}
