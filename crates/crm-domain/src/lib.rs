//! The CRM's domain: identifiers, enumerations, value types and rules.
//!
//! Nothing here knows about HTTP or SQL; the API and repository layers build these
//! types at their edges and trust them inside.

pub mod activities;
pub mod custom_field;
pub mod deals;
pub mod filter;
pub mod forecast;
pub mod ids;
pub mod money;
pub mod quotes;
pub mod records;
pub mod role;
pub mod sign_in;
pub mod values;
pub mod values_time;
pub mod webhook;

pub use ids::{new_id, WorkspaceId};
pub use role::{Permission, Role};

/// A field-level validation failure, named by the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}
