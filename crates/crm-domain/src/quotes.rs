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
}
