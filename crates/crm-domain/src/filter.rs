//! The filter language of API.md: one AST shared by lists, search, segments, exports and
//! every later feature that selects records.
//!
//! `parse` turns JSON into an untyped [`Node`]; `check` resolves each field through the
//! caller's catalogue (columns, custom fields, relations) and coerces each value to the
//! field's kind, so the SQL layer only ever sees well-typed conditions.

use crate::FieldError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

pub const MAX_DEPTH: usize = 8;
pub const MAX_CONDITIONS: usize = 100;
pub const MAX_LIST_VALUES: usize = 500;
pub const MAX_VALUE_CHARS: usize = 1000;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = FilterOp)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
    Contains,
    StartsWith,
    IsNull,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Neq,
        Op::Lt,
        Op::Lte,
        Op::Gt,
        Op::Gte,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::StartsWith,
        Op::IsNull,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::IsNull => "is_null",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A filter as the client wrote it, before its fields are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cond { field: String, op: Op, value: Value },
}

/// The kind of a filterable field: which operators apply and how values are read.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text,
    /// Stored lower-cased (e-mail addresses): values are lower-cased before comparing.
    LowerText,
    Enum(Vec<String>),
    Integer,
    Float,
    Decimal,
    Timestamp,
    Date,
    Bool,
    Id,
    /// A list of strings (tags, multi-select): `contains`, `in` (any of), `not_in`, `is_null` (empty).
    TextList,
}

impl FieldKind {
    fn allows(&self, op: Op) -> bool {
        use Op::*;
        match self {
            FieldKind::TextList => matches!(op, Contains | In | NotIn | IsNull),
            FieldKind::Text | FieldKind::LowerText => true,
            FieldKind::Bool => matches!(op, Eq | Neq | IsNull),
            FieldKind::Enum(_) | FieldKind::Id => matches!(op, Eq | Neq | In | NotIn | IsNull),
            FieldKind::Integer
            | FieldKind::Float
            | FieldKind::Decimal
            | FieldKind::Timestamp
            | FieldKind::Date => !matches!(op, Contains | StartsWith),
        }
    }
}

/// A value coerced to its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    /// Canonical decimal string.
    Decimal(String),
    Bool(bool),
    Timestamp(NaiveDateTime),
    Date(NaiveDate),
}

/// A checked filter whose fields are the catalogue's handles `F`.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<F> {
    And(Vec<Typed<F>>),
    Or(Vec<Typed<F>>),
    Not(Box<Typed<F>>),
    Cond {
        field: F,
        kind: FieldKind,
        op: Op,
        values: Vec<Scalar>,
    },
    /// `is_null` with its boolean: true → the field is absent/empty.
    IsNull {
        field: F,
        kind: FieldKind,
        null: bool,
    },
}

/// Parses a filter node from JSON; `path` names where it sits for error messages.
pub fn parse(v: &Value, path: &str) -> Result<Node, Vec<FieldError>> {
    let mut count = 0;
    let mut errors = Vec::new();
    let node = parse_inner(v, path, 0, &mut count, &mut errors);
    match node {
        Some(n) if errors.is_empty() => Ok(n),
        _ => Err(errors),
    }
}

fn parse_inner(
    v: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
    errors: &mut Vec<FieldError>,
) -> Option<Node> {
    if depth > MAX_DEPTH {
        errors.push(FieldError::new(
            path,
            "too_deep",
            format!("filters may nest at most {MAX_DEPTH} levels"),
        ));
        return None;
    }
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(
            path,
            "invalid_type",
            "a filter node must be an object",
        ));
        return None;
    };
    let list = |key: &str,
                items: &Value,
                count: &mut usize,
                errors: &mut Vec<FieldError>|
     -> Option<Vec<Node>> {
        let Some(arr) = items.as_array() else {
            errors.push(FieldError::new(
                format!("{path}.{key}"),
                "invalid_type",
                format!("`{key}` takes an array of filter nodes"),
            ));
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        for (i, item) in arr.iter().enumerate() {
            if let Some(n) = parse_inner(
                item,
                &format!("{path}.{key}[{i}]"),
                depth + 1,
                count,
                errors,
            ) {
                out.push(n);
            }
        }
        Some(out)
    };
    if obj.len() == 1 {
        if let Some(items) = obj.get("and") {
            return list("and", items, count, errors).map(Node::And);
        }
        if let Some(items) = obj.get("or") {
            return list("or", items, count, errors).map(Node::Or);
        }
        if let Some(inner) = obj.get("not") {
            return parse_inner(inner, &format!("{path}.not"), depth + 1, count, errors)
                .map(|n| Node::Not(Box::new(n)));
        }
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "field" | "op" | "value") {
            errors.push(FieldError::new(
                format!("{path}.{key}"),
                "unknown_key",
                format!("unknown key `{key}`: a node is {{\"and\": [...]}}, {{\"or\": [...]}}, {{\"not\": {{...}}}} or {{\"field\", \"op\", \"value\"}}"),
            ));
            return None;
        }
    }
    *count += 1;
    if *count > MAX_CONDITIONS {
        errors.push(FieldError::new(
            path,
            "too_many_conditions",
            format!("a filter may hold at most {MAX_CONDITIONS} conditions"),
        ));
        return None;
    }
    let field = match obj.get("field").and_then(Value::as_str) {
        Some(f) => f.to_string(),
        None => {
            errors.push(FieldError::new(
                format!("{path}.field"),
                "required",
                "`field` must be a string",
            ));
            return None;
        }
    };
    let op = match obj.get("op").and_then(Value::as_str) {
        Some(o) => match Op::parse(o) {
            Some(op) => op,
            None => {
                let known: Vec<&str> = Op::ALL.iter().map(Op::as_str).collect();
                errors.push(FieldError::new(
                    format!("{path}.op"),
                    "unknown_operator",
                    format!("unknown operator `{o}`; known: {}", known.join(", ")),
                ));
                return None;
            }
        },
        None => {
            errors.push(FieldError::new(
                format!("{path}.op"),
                "required",
                "`op` must be a string",
            ));
            return None;
        }
    };
    let value = obj.get("value").cloned().unwrap_or(Value::Null);
    Some(Node::Cond { field, op, value })
}

/// Resolves fields through `resolve` and coerces values; every problem is reported at once.
pub fn check<F: Clone>(
    node: &Node,
    path: &str,
    resolve: &dyn Fn(&str) -> Option<(F, FieldKind)>,
) -> Result<Typed<F>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let t = check_inner(node, path, resolve, &mut errors);
    match t {
        Some(t) if errors.is_empty() => Ok(t),
        _ => Err(errors),
    }
}

fn check_inner<F: Clone>(
    node: &Node,
    path: &str,
    resolve: &dyn Fn(&str) -> Option<(F, FieldKind)>,
    errors: &mut Vec<FieldError>,
) -> Option<Typed<F>> {
    match node {
        Node::And(items) | Node::Or(items) => {
            let key = if matches!(node, Node::And(_)) {
                "and"
            } else {
                "or"
            };
            let out: Vec<Typed<F>> = items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| check_inner(n, &format!("{path}.{key}[{i}]"), resolve, errors))
                .collect();
            Some(if key == "and" {
                Typed::And(out)
            } else {
                Typed::Or(out)
            })
        }
        Node::Not(inner) => check_inner(inner, &format!("{path}.not"), resolve, errors)
            .map(|t| Typed::Not(Box::new(t))),
        Node::Cond { field, op, value } => {
            let Some((handle, kind)) = resolve(field) else {
                errors.push(FieldError::new(
                    format!("{path}.field"),
                    "unknown_field",
                    format!("unknown field `{field}`"),
                ));
                return None;
            };
            if !kind.allows(*op) {
                errors.push(FieldError::new(
                    format!("{path}.op"),
                    "unsupported_operator",
                    format!(
                        "operator `{}` does not apply to field `{field}`",
                        op.as_str()
                    ),
                ));
                return None;
            }
            let vpath = format!("{path}.value");
            if *op == Op::IsNull {
                let null = match value {
                    Value::Bool(b) => *b,
                    Value::Null => true,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    _ => {
                        errors.push(FieldError::new(
                            vpath,
                            "invalid_value",
                            "`is_null` takes true or false",
                        ));
                        return None;
                    }
                };
                return Some(Typed::IsNull {
                    field: handle,
                    kind,
                    null,
                });
            }
            let values = if matches!(op, Op::In | Op::NotIn) {
                let items: Vec<Value> = match value {
                    Value::Array(a) => a.clone(),
                    // Query strings give `a,b,c`.
                    Value::String(s) => {
                        s.split(',').map(|p| Value::String(p.to_string())).collect()
                    }
                    _ => {
                        errors.push(FieldError::new(
                            vpath,
                            "invalid_value",
                            format!("`{}` takes an array of values", op.as_str()),
                        ));
                        return None;
                    }
                };
                if items.is_empty() || items.len() > MAX_LIST_VALUES {
                    errors.push(FieldError::new(
                        vpath,
                        "invalid_value",
                        format!("`{}` takes 1 to {MAX_LIST_VALUES} values", op.as_str()),
                    ));
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    match coerce(&kind, it) {
                        Ok(s) => out.push(s),
                        Err(msg) => {
                            errors.push(FieldError::new(
                                format!("{vpath}[{i}]"),
                                "invalid_value",
                                format!("{field}: {msg}"),
                            ));
                            return None;
                        }
                    }
                }
                out
            } else {
                let k = if kind == FieldKind::TextList {
                    &FieldKind::Text
                } else {
                    &kind
                };
                match coerce(k, value) {
                    Ok(s) => vec![s],
                    Err(msg) => {
                        errors.push(FieldError::new(
                            vpath,
                            "invalid_value",
                            format!("{field}: {msg}"),
                        ));
                        return None;
                    }
                }
            };
            Some(Typed::Cond {
                field: handle,
                kind,
                op: *op,
                values,
            })
        }
    }
}

/// Reads one JSON value as a value of `kind`. Strings are accepted for every kind, since
/// query-string filters arrive as text.
pub fn coerce(kind: &FieldKind, v: &Value) -> Result<Scalar, String> {
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let Some(s) = text(v) else {
        return Err("expects a string, number or boolean value".into());
    };
    if s.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "values may have at most {MAX_VALUE_CHARS} characters"
        ));
    }
    match kind {
        FieldKind::Text | FieldKind::TextList => Ok(Scalar::Text(s)),
        FieldKind::LowerText => Ok(Scalar::Text(s.trim().to_lowercase())),
        FieldKind::Enum(allowed) => {
            if allowed.contains(&s) {
                Ok(Scalar::Text(s))
            } else {
                Err(format!("`{s}` is not one of {}", allowed.join(", ")))
            }
        }
        FieldKind::Id => uuid::Uuid::parse_str(&s)
            .map(|u| Scalar::Text(u.to_string()))
            .map_err(|_| format!("`{s}` is not a UUID")),
        FieldKind::Integer => s
            .trim()
            .parse::<i64>()
            .map(Scalar::Int)
            .map_err(|_| format!("`{s}` is not an integer")),
        FieldKind::Float => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Scalar::Float(f)),
            _ => Err(format!("`{s}` is not a number")),
        },
        FieldKind::Decimal => crate::values::normalize_decimal(&s)
            .map(Scalar::Decimal)
            .map_err(|m| m.to_string()),
        FieldKind::Bool => match s.as_str() {
            "true" => Ok(Scalar::Bool(true)),
            "false" => Ok(Scalar::Bool(false)),
            _ => Err(format!("`{s}` is not true or false")),
        },
        FieldKind::Date => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Scalar::Date)
            .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)")),
        FieldKind::Timestamp => parse_timestamp(&s)
            .map(Scalar::Timestamp)
            .ok_or_else(|| format!("`{s}` is not an RFC 3339 time or a date")),
    }
}

/// RFC 3339 (any offset, converted to UTC) or a bare date (midnight UTC), truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(crate::values_time::truncate_micros(
            t.with_timezone(&Utc).naive_utc(),
        ));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

// ---- evaluation against a record in memory ----

/// The value at a dotted path (`address.city`, `custom.segment`) of a JSON document.
fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(doc, |v, k| v.get(k))
        .unwrap_or(&Value::Null)
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Decimal strings compare as numbers; other strings (dates, times) as text.
        (Value::String(x), Value::String(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y),
            _ => Some(x.cmp(y)),
        },
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b || compare(a, b) == Some(std::cmp::Ordering::Equal),
    }
}

/// Evaluates a filter (the API's filter language, already parsed) against a record as the
/// API shows it. Text compares without regard to case; lists match `eq`/`contains` when any
/// element does, like the list endpoints' any-of semantics.
/// Used wherever a record is tested in memory: webhook subscriptions, assignment rules.
pub fn matches(node: &Node, doc: &Value) -> bool {
    match node {
        Node::And(ns) => ns.iter().all(|n| matches(n, doc)),
        Node::Or(ns) => ns.iter().any(|n| matches(n, doc)),
        Node::Not(n) => !matches(n, doc),
        Node::Cond { field, op, value } => {
            let v = at(doc, field);
            if let (Value::Array(items), Op::Eq | Op::Contains | Op::In) = (v, op) {
                return items.iter().any(|i| cond(i, *op, value));
            }
            cond(v, *op, value)
        }
    }
}

fn cond(v: &Value, op: Op, want: &Value) -> bool {
    use std::cmp::Ordering::*;
    let text = |x: &Value| x.as_str().map(str::to_lowercase);
    match op {
        Op::Eq => equal(v, want),
        Op::Neq => !equal(v, want),
        Op::Lt => compare(v, want) == Some(Less),
        Op::Lte => matches!(compare(v, want), Some(Less | Equal)),
        Op::Gt => compare(v, want) == Some(Greater),
        Op::Gte => matches!(compare(v, want), Some(Greater | Equal)),
        Op::In => want
            .as_array()
            .is_some_and(|l| l.iter().any(|w| equal(v, w))),
        Op::NotIn => !want
            .as_array()
            .is_some_and(|l| l.iter().any(|w| equal(v, w))),
        Op::Contains => match (text(v), text(want)) {
            (Some(a), Some(b)) => a.contains(&b),
            _ => false,
        },
        Op::StartsWith => match (text(v), text(want)) {
            (Some(a), Some(b)) => a.starts_with(&b),
            _ => false,
        },
        Op::IsNull => v.is_null() == want.as_bool().unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolver(name: &str) -> Option<(String, FieldKind)> {
        match name {
            "email" => Some((name.into(), FieldKind::LowerText)),
            "stage" => Some((
                name.into(),
                FieldKind::Enum(vec!["new".into(), "mature".into()]),
            )),
            "created_at" => Some((name.into(), FieldKind::Timestamp)),
            "tags" => Some((name.into(), FieldKind::TextList)),
            _ => None,
        }
    }

    #[test]
    fn parses_and_checks_nested_nodes() {
        let v = json!({"and": [{"field": "email", "op": "eq", "value": "A@X.io"}, {"not": {"field": "stage", "op": "in", "value": ["new"]}}]});
        let n = parse(&v, "filter").expect("parses");
        let t = check(&n, "filter", &resolver).expect("checks");
        let Typed::And(items) = t else { panic!("and") };
        assert_eq!(items.len(), 2);
        assert!(
            matches!(&items[0], Typed::Cond { values, .. } if values == &vec![Scalar::Text("a@x.io".into())])
        );
    }

    #[test]
    fn names_unknown_fields_and_ops() {
        let n = parse(&json!({"field": "nope", "op": "eq", "value": 1}), "filter").expect("parses");
        let e = check(&n, "filter", &resolver).expect_err("unknown field");
        assert_eq!(e[0].field, "filter.field");
        assert!(e[0].message.contains("nope"));
        let e = parse(
            &json!({"field": "email", "op": "like", "value": 1}),
            "filter",
        )
        .expect_err("unknown op");
        assert_eq!(e[0].code, "unknown_operator");
        assert!(e[0].message.contains("like"));
    }

    #[test]
    fn rejects_bad_values_and_ops() {
        let n =
            parse(&json!({"field": "stage", "op": "eq", "value": "gone"}), "f").expect("parses");
        assert!(check(&n, "f", &resolver).is_err());
        let n = parse(
            &json!({"field": "stage", "op": "contains", "value": "x"}),
            "f",
        )
        .expect("parses");
        assert_eq!(
            check(&n, "f", &resolver).expect_err("op")[0].code,
            "unsupported_operator"
        );
        let n = parse(
            &json!({"field": "created_at", "op": "gt", "value": "2026-01-01T00:00:00+02:00"}),
            "f",
        )
        .expect("parses");
        assert!(check(&n, "f", &resolver).is_ok());
    }

    #[test]
    fn limits_depth() {
        let mut v = json!({"field": "email", "op": "eq", "value": "a"});
        for _ in 0..(MAX_DEPTH + 2) {
            v = json!({"not": v});
        }
        assert_eq!(parse(&v, "f").expect_err("deep")[0].code, "too_deep");
    }
}
