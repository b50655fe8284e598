//! Queries, one module per part of the CRM. Each function takes the workspace it works in.

pub mod access;
pub mod activities;
pub mod assignment_rules;
pub mod bulk;
pub mod catalogue;
pub mod contacts;
pub mod deals;
pub mod deltas;
pub mod events;
pub mod fields;
pub mod housekeeping;
pub mod idempotency;
pub mod imports;
pub mod leads;
pub mod links;
pub mod merges;
pub mod pipelines;
pub mod quotas;
pub mod quotes;
pub mod rate_limits;
pub mod records;
pub mod teams;
pub mod timeline;
pub mod webhooks;

use diesel::result::{DatabaseErrorKind, Error};

pub fn is_unique_violation(e: &Error) -> bool {
    matches!(
        e,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}
