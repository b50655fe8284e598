//! Queries, one module per part of the CRM. Each function takes the workspace it works in.

pub mod access;
pub mod bulk;
pub mod catalogue;
pub mod contacts;
pub mod events;
pub mod fields;
pub mod idempotency;
pub mod quotes;
pub mod records;
pub mod teams;
pub mod webhooks;

use diesel::result::{DatabaseErrorKind, Error};

pub fn is_unique_violation(e: &Error) -> bool {
    matches!(
        e,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}
