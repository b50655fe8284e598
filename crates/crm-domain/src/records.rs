//! Enumerations of the customer records (DOMAIN.md §2–3).

// The wire names are taken as `tt`, not `literal`: a `literal` fragment reaches the derive
// macros wrapped in an invisible group, and `utoipa` then misses the `serde(rename)` and
// documents the Rust variant names instead of the wire names.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:tt),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Where a customer stands in the relationship (DOMAIN.md §3).
    LifecycleStage {
        Prospect => "prospect",
        New => "new",
        Growing => "growing",
        Mature => "mature",
        Declining => "declining",
        Churned => "churned",
    }
}

string_enum! {
    /// The channel a contact prefers to be reached on.
    PreferredChannel {
        Email => "email",
        Sms => "sms",
        Phone => "phone",
        Mail => "mail",
        InPerson => "in_person",
    }
}

string_enum! {
    /// Head-count band of a company.
    CompanySize {
        S1To10 => "1-10",
        S11To50 => "11-50",
        S51To200 => "51-200",
        S201To500 => "201-500",
        S501To1000 => "501-1000",
        S1001To5000 => "1001-5000",
        S5001Plus => "5001+",
    }
}

string_enum! {
    /// Where a lead stands in qualification (DOMAIN.md §4). `converted` is reached only by
    /// converting the lead.
    LeadStatus {
        New => "new",
        Working => "working",
        Nurturing => "nurturing",
        Qualified => "qualified",
        Disqualified => "disqualified",
        Converted => "converted",
    }
}

string_enum! {
    /// How an assignment rule picks the owner of a new record.
    AssignmentStrategy {
        RoundRobin => "round_robin",
        Fixed => "fixed",
    }
}

string_enum! {
    /// The records assignment rules distribute.
    AssignmentObject {
        Leads => "leads",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for s in LifecycleStage::ALL {
            assert_eq!(LifecycleStage::parse(s.as_str()), Some(*s));
        }
        assert_eq!(CompanySize::parse("5001+"), Some(CompanySize::S5001Plus));
        assert_eq!(PreferredChannel::parse("fax"), None);
    }
}
