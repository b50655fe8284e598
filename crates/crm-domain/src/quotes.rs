//! Quotes (proposals): their status and how it may change (DOMAIN.md §4).

use crate::records::string_enum;

string_enum! {
    /// Where a quote stands. Only drafts can be edited.
    QuoteStatus {
        Draft => "draft",
        Sent => "sent",
        Accepted => "accepted",
        Rejected => "rejected",
        Expired => "expired",
    }
}

impl QuoteStatus {
    /// draft → sent → accepted | rejected | expired; the last three are final.
    pub fn can_become(self, next: QuoteStatus) -> bool {
        use QuoteStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, Sent) | (Sent, Accepted) | (Sent, Rejected) | (Sent, Expired)
            )
    }
}

/// Whether a quote valid until `valid_until` can no longer be accepted at `now`: a quote is
/// good through the whole of its last day wherever the customer is, so it lapses when that
/// day has ended in the last time zone to see it (UTC−12), at noon UTC the day after.
pub fn lapsed(valid_until: chrono::NaiveDate, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some(next_day) = valid_until.succ_opt() else {
        return false;
    };
    let end = next_day.and_hms_opt(12, 0, 0).map(|t| t.and_utc());
    end.is_some_and(|end| now >= end)
}

/// Most lines on one quote.
pub const MAX_LINES: usize = 200;

#[cfg(test)]
mod tests {
    use super::QuoteStatus::*;

    #[test]
    fn a_quote_is_sent_before_it_is_decided_and_decisions_are_final() {
        assert!(Draft.can_become(Sent));
        assert!(Sent.can_become(Accepted));
        assert!(Sent.can_become(Rejected));
        assert!(Sent.can_become(Expired));
        assert!(!Draft.can_become(Accepted));
        assert!(!Sent.can_become(Draft));
        assert!(!Accepted.can_become(Rejected));
        assert!(!Expired.can_become(Sent));
        assert!(Accepted.can_become(Accepted));
    }

    #[test]
    fn a_quote_lapses_when_its_last_day_has_ended_everywhere() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(!super::lapsed(day, at("2026-12-07T23:59:59Z")));
        assert!(!super::lapsed(day, at("2026-12-08T11:59:59Z")));
        assert!(super::lapsed(day, at("2026-12-08T12:00:00Z")));
        assert!(super::lapsed(day, at("2027-01-01T00:00:00Z")));
        assert!(!super::lapsed(
            chrono::NaiveDate::MAX,
            at("2027-01-01T00:00:00Z")
        ));
    }
}
