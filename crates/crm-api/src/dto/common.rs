//! Pieces shared by several resources, and the conversion of validation results.

use chrono::{DateTime, NaiveDateTime, Utc};
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

/// Renders a stored UTC time.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[validate(length(max = 200))]
    pub line1: Option<String>,
    #[validate(length(max = 200))]
    pub line2: Option<String>,
    #[validate(length(max = 100))]
    pub city: Option<String>,
    /// State, province or county.
    #[validate(length(max = 100))]
    pub region: Option<String>,
    #[validate(length(max = 20))]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[schema(example = "DE")]
    pub country: Option<String>,
}

/// Flattens `validator` errors into field errors with dotted paths.
pub fn validation_errors(errs: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errs.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = match (e.code.as_ref(), e.params.get("max"), e.params.get("min"))
                    {
                        ("length", Some(max), Some(min)) => {
                            format!("must have {min} to {max} characters")
                        }
                        ("length", Some(max), None) => format!("must be at most {max} characters"),
                        ("length", None, Some(min)) => format!("must be at least {min} characters"),
                        ("range", _, _) => "is out of range".to_string(),
                        _ => e
                            .message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| format!("is invalid ({})", e.code)),
                    };
                    let code = if e.code == "length" {
                        "invalid_length".to_string()
                    } else {
                        e.code.to_string()
                    };
                    out.push(FieldError::new(path.clone(), &code, message));
                }
            }
            ValidationErrorsKind::Struct(inner) => validation_errors(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    validation_errors(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

/// Runs `validator` on an input and collects its errors.
pub fn validate_input<T: Validate>(input: &T) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Err(e) = input.validate() {
        validation_errors(&e, "", &mut out);
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

/// Applies a normaliser to an optional field, recording a failure under `field`.
pub fn norm(
    value: Option<String>,
    field: &str,
    f: fn(&str) -> Result<String, &'static str>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let v = value?;
    if v.trim().is_empty() {
        return None;
    }
    match f(&v) {
        Ok(v) => Some(v),
        Err(msg) => {
            errors.push(FieldError::new(field, "invalid_value", msg));
            None
        }
    }
}

/// Trims an optional text and turns blank into absent.
pub fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub fn address_columns(a: Address, errors: &mut Vec<FieldError>) -> [Option<String>; 6] {
    [
        text(a.line1),
        text(a.line2),
        text(a.city),
        text(a.region),
        text(a.postal_code),
        norm(
            a.country,
            "address.country",
            crm_domain::values::normalize_country,
            errors,
        ),
    ]
}

pub fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn parse_object(s: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Normalises tags, recording a failure under `tags`.
pub fn tags(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    crm_domain::values::normalize_tags(raw).unwrap_or_else(|m| {
        errors.push(FieldError::new("tags", "invalid_value", m));
        Vec::new()
    })
}

/// For merge-patch fields: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`
/// (use with `#[serde(default, deserialize_with = "double_option")]`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
