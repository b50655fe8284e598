//! Typed custom fields: admins define them per object; records carry their values under
//! `custom`, validated against the definitions.

use crate::filter::FieldKind;
use crate::records::string_enum;
use crate::FieldError;
use serde_json::{Map, Value};
use std::sync::OnceLock;

string_enum! {
    /// The type of a custom field's values.
    CustomFieldType {
        Text => "text",
        Number => "number",
        Decimal => "decimal",
        Date => "date",
        Boolean => "boolean",
        Select => "select",
        MultiSelect => "multi_select",
    }
}

string_enum! {
    /// Objects that carry custom fields.
    CustomObject {
        Contacts => "contacts",
        Companies => "companies",
        Leads => "leads",
        Deals => "deals",
        Products => "products",
    }
}

pub const MAX_TEXT_CHARS: usize = 10_000;
pub const MAX_OPTIONS: usize = 500;
pub const MAX_FIELDS_PER_OBJECT: usize = 200;

/// What the validator needs of a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldDef {
    pub name: String,
    pub field_type: CustomFieldType,
    pub options: Vec<String>,
    pub required: bool,
}

impl CustomFieldDef {
    pub fn filter_kind(&self) -> FieldKind {
        match self.field_type {
            CustomFieldType::Text => FieldKind::Text,
            CustomFieldType::Number => FieldKind::Float,
            CustomFieldType::Decimal => FieldKind::Decimal,
            CustomFieldType::Date => FieldKind::Date,
            CustomFieldType::Boolean => FieldKind::Bool,
            CustomFieldType::Select => FieldKind::Enum(self.options.clone()),
            CustomFieldType::MultiSelect => FieldKind::TextList,
        }
    }
}

/// Field names are identifiers so they can be addressed as `custom.<name>` in filters.
pub fn valid_name(name: &str) -> bool {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^[a-z][a-z0-9_]{0,62}$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(name))
}

/// Validates a whole `custom` object against the definitions and returns it in canonical
/// form (decimals normalised, nulls dropped). `path` prefixes error fields (`custom`).
pub fn validate_values(
    defs: &[CustomFieldDef],
    values: &Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = Map::new();
    for (key, v) in values {
        let field = format!("{path}.{key}");
        let Some(def) = defs.iter().find(|d| &d.name == key) else {
            errors.push(FieldError::new(
                field,
                "unknown_field",
                format!("no custom field `{key}` is defined for this object"),
            ));
            continue;
        };
        if v.is_null() {
            continue;
        }
        match validate_one(def, v) {
            Ok(canon) => {
                out.insert(key.clone(), canon);
            }
            Err(msg) => errors.push(FieldError::new(field, "invalid_value", msg)),
        }
    }
    for def in defs.iter().filter(|d| d.required) {
        if !out.contains_key(&def.name) {
            errors.push(FieldError::new(
                format!("{path}.{}", def.name),
                "required",
                "this custom field is required",
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn validate_one(def: &CustomFieldDef, v: &Value) -> Result<Value, String> {
    match def.field_type {
        CustomFieldType::Text => match v.as_str() {
            Some(s) if s.chars().count() <= MAX_TEXT_CHARS => Ok(Value::String(s.to_string())),
            Some(_) => Err(format!("must be at most {MAX_TEXT_CHARS} characters")),
            None => Err("must be a string".into()),
        },
        CustomFieldType::Number => match v.as_f64() {
            Some(f) if f.is_finite() => Ok(v.clone()),
            _ => Err("must be a number".into()),
        },
        CustomFieldType::Decimal => match v.as_str() {
            Some(s) => crate::values::normalize_decimal(s)
                .map(Value::String)
                .map_err(|m| m.to_string()),
            None => Err("must be a decimal number written as a string, like \"12.50\"".into()),
        },
        CustomFieldType::Date => match v
            .as_str()
            .map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        {
            Some(Ok(d)) => Ok(Value::String(d.format("%Y-%m-%d").to_string())),
            _ => Err("must be a date written YYYY-MM-DD".into()),
        },
        CustomFieldType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err("must be true or false".into()),
        },
        CustomFieldType::Select => match v.as_str() {
            Some(s) if def.options.iter().any(|o| o == s) => Ok(v.clone()),
            _ => Err(format!("must be one of: {}", def.options.join(", "))),
        },
        CustomFieldType::MultiSelect => {
            let Some(items) = v.as_array() else {
                return Err("must be an array of options".into());
            };
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for it in items {
                match it.as_str() {
                    Some(s) if def.options.iter().any(|o| o == s) => {
                        if !out.iter().any(|o| o.as_str() == Some(s)) {
                            out.push(it.clone());
                        }
                    }
                    _ => {
                        return Err(format!(
                            "each item must be one of: {}",
                            def.options.join(", ")
                        ))
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Vec<CustomFieldDef> {
        vec![
            CustomFieldDef {
                name: "size".into(),
                field_type: CustomFieldType::Select,
                options: vec!["s".into(), "l".into()],
                required: false,
            },
            CustomFieldDef {
                name: "score".into(),
                field_type: CustomFieldType::Number,
                options: vec![],
                required: true,
            },
            CustomFieldDef {
                name: "budget".into(),
                field_type: CustomFieldType::Decimal,
                options: vec![],
                required: false,
            },
        ]
    }

    #[test]
    fn validates_types_and_required() {
        let ok = json!({"size": "s", "score": 3, "budget": "10.50"});
        let out = validate_values(&defs(), ok.as_object().expect("obj"), "custom").expect("valid");
        assert_eq!(out["budget"], json!("10.5"));
        let bad = json!({"size": "xl", "other": 1});
        let errs =
            validate_values(&defs(), bad.as_object().expect("obj"), "custom").expect_err("invalid");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["custom.other", "custom.size", "custom.score"]);
    }

    #[test]
    fn names_are_identifiers() {
        assert!(valid_name("renewal_date"));
        assert!(!valid_name("Renewal"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name("x'); drop"));
    }
}
