//! Activities (DOMAIN.md §4): their kinds, states and the time windows of a rep's action
//! list and calendar.

use crate::records::string_enum;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

string_enum! {
    /// What kind of activity it is.
    ActivityType {
        Task => "task",
        Call => "call",
        Meeting => "meeting",
        Email => "email",
        Note => "note",
    }
}

string_enum! {
    /// Where an activity stands.
    ActivityStatus {
        Open => "open",
        Done => "done",
        Cancelled => "cancelled",
    }
}

string_enum! {
    /// How urgent an activity is.
    ActivityPriority {
        Low => "low",
        Normal => "normal",
        High => "high",
    }
}

impl ActivityType {
    /// The status of a new activity that names none: e-mails and notes record what has
    /// happened, so they are done; the rest are still to do.
    pub fn default_status(self) -> ActivityStatus {
        match self {
            ActivityType::Email | ActivityType::Note => ActivityStatus::Done,
            _ => ActivityStatus::Open,
        }
    }
}

/// The longest range a calendar request may span.
pub const MAX_CALENDAR_DAYS: i64 = 92;

/// A rep's action list: open tasks and calls due before now, today, or this ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWindow {
    Overdue,
    Today,
    ThisWeek,
}

impl DueWindow {
    pub fn parse(s: &str) -> Option<DueWindow> {
        match s {
            "overdue" => Some(DueWindow::Overdue),
            "today" => Some(DueWindow::Today),
            "this_week" => Some(DueWindow::ThisWeek),
            _ => None,
        }
    }

    /// The UTC range `[from, to)` of due times the window covers at `now` in `tz` (overdue
    /// has no lower bound).
    pub fn range(self, now: DateTime<Utc>, tz: Tz) -> (Option<NaiveDateTime>, NaiveDateTime) {
        let today = now.with_timezone(&tz).date_naive();
        match self {
            DueWindow::Overdue => (None, now.naive_utc()),
            DueWindow::Today => (
                Some(local_midnight(today, tz)),
                local_midnight(today + Duration::days(1), tz),
            ),
            DueWindow::ThisWeek => {
                let monday = today - Duration::days(today.weekday().num_days_from_monday().into());
                (
                    Some(local_midnight(monday, tz)),
                    local_midnight(monday + Duration::days(7), tz),
                )
            }
        }
    }
}

/// An IANA time zone name (`Europe/Berlin`).
pub fn parse_time_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// The UTC instant a local day starts at: its midnight, or the first instant after a
/// daylight-saving gap that swallows midnight.
pub fn local_midnight(day: NaiveDate, tz: Tz) -> NaiveDateTime {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.naive_utc())
        .unwrap_or(midnight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn today_is_the_local_day_in_utc() {
        let tz = parse_time_zone("Europe/Berlin").unwrap();
        // 23:30 UTC on the 24th is already the 25th in Berlin (UTC+1 in November).
        let (from, to) = DueWindow::Today.range(at("2026-11-24T23:30:00Z"), tz);
        assert_eq!(from, Some(at("2026-11-24T23:00:00Z").naive_utc()));
        assert_eq!(to, at("2026-11-25T23:00:00Z").naive_utc());
    }

    #[test]
    fn this_week_runs_monday_to_monday() {
        let (from, to) = DueWindow::ThisWeek.range(at("2026-11-25T12:00:00Z"), Tz::UTC);
        assert_eq!(from, Some(at("2026-11-23T00:00:00Z").naive_utc()));
        assert_eq!(to, at("2026-11-30T00:00:00Z").naive_utc());
    }

    #[test]
    fn overdue_ends_now() {
        let now = at("2026-11-25T12:00:00Z");
        assert_eq!(
            DueWindow::Overdue.range(now, Tz::UTC),
            (None, now.naive_utc())
        );
    }

    #[test]
    fn a_midnight_in_a_gap_moves_to_the_first_instant() {
        // Santiago skipped from 00:00 to 01:00 on 2026-09-06.
        let tz = parse_time_zone("America/Santiago").unwrap();
        let start = local_midnight(NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(), tz);
        assert_eq!(start, at("2026-09-06T04:00:00Z").naive_utc());
    }

    #[test]
    fn notes_and_emails_start_done() {
        assert_eq!(ActivityType::Note.default_status(), ActivityStatus::Done);
        assert_eq!(ActivityType::Task.default_status(), ActivityStatus::Open);
        assert!(parse_time_zone("Mars/Olympus").is_none());
    }
}
