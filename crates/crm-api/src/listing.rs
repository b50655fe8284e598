//! Lists and search, shared by every resource: query-string and JSON-body requests both
//! become one [`ListRequest`], checked against the resource's catalogue (columns, custom
//! fields, relations) and run as one keyset-paginated query.

use crate::error::{ApiError, ApiResult};
use crate::extract::bool_param;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_db::query::{
    Bind, Direction, FieldRef, FieldResolver, Keyset, ListQuery, Relation, Resource, SortKey,
};
use crm_db::DbConnection;
use crm_domain::custom_field::CustomFieldDef;
use crm_domain::filter::{self, FieldKind, Scalar};
use crm_domain::{FieldError, WorkspaceId};
use diesel::QueryableByName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// Longest free-text query, in characters.
pub const MAX_Q_CHARS: usize = 200;
/// Longest cursor this API hands out is far below this.
pub const MAX_CURSOR_CHARS: usize = 4096;

/// A sort key in a search body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SortSpec {
    /// A sortable field, e.g. `created_at` or `last_name`.
    #[schema(max_length = 100)]
    pub field: String,
    #[serde(default)]
    pub direction: SortDirection,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

/// A node of the filter language: `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`, or a
/// condition `{"field", "op", "value"}`. Fields are the resource's own, `custom.<name>` for
/// custom fields, or `<relation>.<field>` for linked records (e.g. `companies.industry`).
//
// These types describe the language in the OpenAPI document; requests are read by
// `crm_domain::filter::parse`, which reports every problem with its path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Filter {
    And(FilterAnd),
    Or(FilterOr),
    Not(FilterNot),
    Condition(FilterCondition),
}

// The composite nodes are named schemas rather than inline objects: client generators
// (openapi-python-client) resolve a recursive union only through named models.

/// Matches when every node matches.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FilterAnd {
    #[schema(no_recursion)]
    pub and: Vec<Filter>,
}

/// Matches when any node matches.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FilterOr {
    #[schema(no_recursion)]
    pub or: Vec<Filter>,
}

/// Matches when the node does not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FilterNot {
    #[schema(no_recursion)]
    pub not: Box<Filter>,
}

/// One comparison of a filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"field": "lifecycle_stage", "op": "in", "value": ["new", "growing"]}))]
#[allow(dead_code)]
pub struct FilterCondition {
    /// A filterable field, e.g. `lifecycle_stage`, `custom.segment`, `companies.industry`.
    #[schema(max_length = 200)]
    pub field: String,
    pub op: filter::Op,
    /// A value of the field's type; an array for `in` and `not_in`; `true` or `false` for
    /// `is_null`.
    pub value: Option<Value>,
}

/// `POST /{resource}/search`: the full filter language.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"and": [{"field": "lifecycle_stage", "op": "eq", "value": "mature"}, {"field": "companies.industry", "op": "in", "value": ["Retail", "Logistics"]}]}, "q": "ada", "sort": [{"field": "created_at", "direction": "desc"}], "limit": 50}))]
pub struct SearchRequest {
    /// The records to return; all of them when absent.
    #[schema(value_type = Option<Filter>)]
    pub filter: Option<Value>,
    /// Free text matched against names, e-mails, phones (and company names for contacts).
    #[schema(max_length = 200)]
    pub q: Option<String>,
    /// Up to three sort keys; the id breaks ties.
    #[serde(default)]
    #[schema(max_items = 3)]
    pub sort: Vec<SortSpec>,
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[schema(max_length = 4096)]
    pub cursor: Option<String>,
    /// Adds `total`, the number of matching records.
    #[serde(default)]
    pub count: bool,
    /// Search archived records instead of live ones.
    #[serde(default)]
    pub archived: bool,
}

/// Query parameters of list endpoints. Any other parameter is a filter: `field=value`
/// (equality) or `field[op]=value` (e.g. `created_at[gte]=2026-01-01`, `lifecycle_stage[in]=new,mature`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// A sortable field, `-` for descending; several comma-separated (default `created_at`).
    sort: Option<String>,
    /// Adds `total`.
    count: Option<bool>,
    /// List archived records instead of live ones.
    archived: Option<bool>,
    /// Free text.
    q: Option<String>,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// With `count=true`: how many records match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl SearchRequest {
    /// Builds a request from query-string pairs.
    pub fn from_query(pairs: &[(String, String)]) -> ApiResult<SearchRequest> {
        let mut req = SearchRequest::default();
        let mut conds = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => {
                    req.limit = Some(v.parse().map_err(|_| {
                        ApiError::field("limit", "invalid_value", "must be an integer")
                    })?)
                }
                "cursor" => req.cursor = Some(v.clone()),
                "sort" => {
                    for part in v.split(',').filter(|p| !p.is_empty()) {
                        let (dir, field) = match part.strip_prefix('-') {
                            Some(f) => (SortDirection::Desc, f),
                            None => (SortDirection::Asc, part.strip_prefix('+').unwrap_or(part)),
                        };
                        req.sort.push(SortSpec {
                            field: field.to_string(),
                            direction: dir,
                        });
                    }
                }
                "count" => req.count = bool_param("count", v)?,
                "archived" => req.archived = bool_param("archived", v)?,
                "q" => req.q = Some(v.clone()),
                // Parameters of individual endpoints that are not filters.
                "permanent" => {}
                _ => {
                    let (field, op) = match k.split_once('[') {
                        Some((f, rest)) => (f.to_string(), rest.trim_end_matches(']').to_string()),
                        None => (k.clone(), "eq".to_string()),
                    };
                    conds.push(json!({"field": field, "op": op, "value": v}));
                }
            }
        }
        if !conds.is_empty() {
            req.filter = Some(if conds.len() == 1 {
                conds.remove(0)
            } else {
                json!({"and": conds})
            });
        }
        Ok(req)
    }
}

/// How a catalogue names the catalogue at the other end of a relation.
pub type RelatedCatalogue = fn() -> &'static Catalogue;

/// One resource's catalogue plus the relations its filters may follow.
pub struct Catalogue {
    pub object: &'static str,
    pub resource: &'static Resource,
    pub relations: &'static [(&'static Relation, RelatedCatalogue)],
}

impl Catalogue {
    fn resolver<'a>(
        &'a self,
        defs: &'a [CustomFieldDef],
        related_defs: &'a [(&'static str, Vec<CustomFieldDef>)],
    ) -> impl Fn(&str) -> Option<(FieldRef, FieldKind)> + 'a {
        move |name: &str| {
            let custom = |n: &str| defs.iter().find(|d| d.name == n).map(|d| d.filter_kind());
            let rels: Vec<(&'static Relation, Box<FieldResolver<'_>>)> = self
                .relations
                .iter()
                .map(|(rel, other)| {
                    let other = other();
                    let odefs: &[CustomFieldDef] = related_defs
                        .iter()
                        .find(|(o, _)| *o == other.object)
                        .map(|(_, d)| d.as_slice())
                        .unwrap_or(&[]);
                    let f: Box<FieldResolver<'_>> = Box::new(move |n: &str| {
                        other.resource.resolve(
                            n,
                            &|c| odefs.iter().find(|d| d.name == c).map(|d| d.filter_kind()),
                            &[],
                        )
                    });
                    (*rel, f)
                })
                .collect();
            let rel_refs: Vec<(&'static Relation, &FieldResolver<'_>)> = rels
                .iter()
                .map(|(r, f)| (*r, f.as_ref() as &FieldResolver<'_>))
                .collect();
            self.resource.resolve(name, &custom, &rel_refs)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorData {
    /// The sort the cursor was made for.
    s: String,
    a: bool,
    v: Vec<Value>,
    id: String,
}

fn sort_signature(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| {
            format!(
                "{}{}",
                if k.direction == Direction::Desc {
                    "-"
                } else {
                    ""
                },
                k.api_name
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Looks up a dotted path (`address.city`) in a record's JSON.
fn json_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |acc, p| acc.get(p).unwrap_or(&Value::Null))
}

fn cursor_bind(kind: &FieldKind, v: &Value) -> ApiResult<Option<Bind>> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || {
        ApiError::field(
            "cursor",
            "invalid_cursor",
            "the cursor is not valid for this list",
        )
    };
    let scalar = filter::coerce(kind, v).map_err(|_| bad())?;
    Ok(Some(match scalar {
        Scalar::Text(t) | Scalar::Decimal(t) => Bind::Text(t),
        Scalar::Int(i) => Bind::Int(i),
        Scalar::Float(f) => Bind::Float(f),
        Scalar::Bool(b) => Bind::Bool(b),
        Scalar::Timestamp(t) => Bind::Ts(t),
        Scalar::Date(d) => Bind::Text(d.format("%Y-%m-%d").to_string()),
    }))
}

/// Parses a filter and checks it against the catalogue (columns, custom fields, related
/// records), as lists and search do: 422 naming each unknown field, operator or bad value.
pub fn check_filter(
    conn: &mut DbConnection,
    cat: &Catalogue,
    ws: WorkspaceId,
    filter: &Value,
) -> ApiResult<filter::Typed<FieldRef>> {
    // Custom-field definitions are read only when the filter names any.
    let filter_text = filter.to_string();
    let defs = if filter_text.contains("custom.") {
        crm_db::repo::fields::defs(conn, ws, cat.object)?
    } else {
        Vec::new()
    };
    let mut related_defs = Vec::new();
    for (rel, other) in cat.relations {
        if filter_text.contains(&format!("{}.custom.", rel.name)) {
            let other = other();
            related_defs.push((
                other.object,
                crm_db::repo::fields::defs(conn, ws, other.object)?,
            ));
        }
    }
    let resolver = cat.resolver(&defs, &related_defs);
    let node = filter::parse(filter, "filter")?;
    Ok(filter::check(&node, "filter", &resolver)?)
}

/// The values of `sort`'s keys in a record as the API shows it (its JSON rendering).
fn sort_values(sort: &[SortKey], shown: &Value) -> Vec<Value> {
    sort.iter()
        .map(|k| json_path(shown, k.api_name).clone())
        .collect()
}

/// The id of a record as the API shows it.
fn shown_id(shown: &Value) -> String {
    shown
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The keyset position just after a record (as the API shows it) in the order of `sort`.
pub fn keyset_after(sort: &[SortKey], shown: &Value) -> ApiResult<Keyset> {
    let values = sort
        .iter()
        .zip(sort_values(sort, shown))
        .map(|(k, v)| cursor_bind(&k.kind, &v))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Keyset {
        values,
        id: shown_id(shown),
    })
}

/// Checks a list or search request against the catalogue (free text, filter, sort, cursor)
/// and turns it into the query of its first page (`limit` is left for the caller). With
/// no sort asked for, `default_sort` orders the rows (the id alone breaks ties, or orders
/// them all when it is `None`).
pub fn prepare(
    conn: &mut DbConnection,
    cat: &Catalogue,
    ws: WorkspaceId,
    req: &SearchRequest,
    default_sort: Option<&str>,
) -> ApiResult<ListQuery> {
    if req
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_Q_CHARS)
    {
        return Err(ApiError::field(
            "q",
            "invalid_length",
            format!("must be at most {MAX_Q_CHARS} characters"),
        ));
    }
    if req
        .cursor
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CURSOR_CHARS)
    {
        return Err(ApiError::field(
            "cursor",
            "invalid_cursor",
            "the cursor is not valid for this list",
        ));
    }
    let typed = match &req.filter {
        None | Some(Value::Null) => None,
        Some(f) => Some(check_filter(conn, cat, ws, f)?),
    };
    if req.sort.len() > 3 {
        return Err(ApiError::field(
            "sort",
            "too_many_keys",
            "sort by at most 3 fields",
        ));
    }
    let mut sort = Vec::new();
    for (i, s) in req.sort.iter().enumerate() {
        let dir = match s.direction {
            SortDirection::Asc => Direction::Asc,
            SortDirection::Desc => Direction::Desc,
        };
        match cat.resource.sort_key(&s.field, dir) {
            Some(k) => sort.push(k),
            None => {
                return Err(ApiError::Validation(vec![FieldError::new(
                    format!("sort[{i}].field"),
                    "unknown_field",
                    format!(
                        "cannot sort by `{}`; sortable: {}",
                        s.field,
                        cat.resource.sortable_names().join(", ")
                    ),
                )]))
            }
        }
    }
    if sort.is_empty() {
        if let Some(field) = default_sort {
            sort.extend(cat.resource.sort_key(field, Direction::Asc));
        }
    }
    let sig = sort_signature(&sort);
    let after = match &req.cursor {
        None => None,
        Some(c) => {
            let bad = || {
                ApiError::field(
                    "cursor",
                    "invalid_cursor",
                    "the cursor is not valid for this list; start again without it",
                )
            };
            let data: CursorData = URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(bad)?;
            if data.s != sig || data.a != req.archived || data.v.len() != sort.len() {
                return Err(ApiError::field(
                    "cursor",
                    "invalid_cursor",
                    "the cursor was made for another sort order",
                ));
            }
            let values = sort
                .iter()
                .zip(&data.v)
                .map(|(k, v)| cursor_bind(&k.kind, v))
                .collect::<ApiResult<Vec<_>>>()?;
            Some(Keyset {
                values,
                id: data.id,
            })
        }
    };
    let q = req
        .q
        .as_ref()
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if q.is_some() && cat.resource.text_columns.is_empty() {
        return Err(ApiError::field(
            "q",
            "unsupported",
            format!("{} have no free text; use a filter", cat.object),
        ));
    }
    if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field(
            "q",
            "too_long",
            "must be at most 200 characters",
        ));
    }
    Ok(ListQuery {
        filter: typed,
        q,
        sort,
        after,
        limit: DEFAULT_LIMIT,
        archived: req.archived,
        include_archived: false,
    })
}

/// Runs a list or search for `cat` in `ws`. `to_json` renders a row as the API shows it
/// (the cursor is taken from that rendering, so it uses the API's own field names).
pub fn run<R, T>(
    conn: &mut DbConnection,
    cat: &Catalogue,
    ws: WorkspaceId,
    req: &SearchRequest,
    to_dto: impl Fn(R) -> T,
) -> ApiResult<Page<T>>
where
    R: QueryableByName<crm_db::conn::MultiBackend> + 'static,
    T: Serialize + ToSchema,
{
    let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            "out_of_range",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let mut lq = prepare(conn, cat, ws, req, Some("created_at"))?;
    lq.limit = limit + 1;
    let mut rows: Vec<R> = crm_db::query::list(conn, cat.resource, &ws.as_string(), &lq)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let total = if req.count {
        Some(crm_db::query::count(
            conn,
            cat.resource,
            &ws.as_string(),
            &lq,
        )?)
    } else {
        None
    };
    let data: Vec<T> = rows.into_iter().map(to_dto).collect();
    let next_cursor = match (has_more, data.last()) {
        (true, Some(last)) => {
            let v = serde_json::to_value(last).map_err(ApiError::internal)?;
            let data = CursorData {
                s: sort_signature(&lq.sort),
                a: req.archived,
                v: sort_values(&lq.sort, &v),
                id: shown_id(&v),
            };
            Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).map_err(ApiError::internal)?))
        }
        _ => None,
    };
    Ok(Page {
        data,
        next_cursor,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::filter::Op;

    #[test]
    fn documented_operators_are_the_parsed_ones() {
        let schema =
            serde_json::to_value(<Op as utoipa::PartialSchema>::schema()).expect("schema as JSON");
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let parsed: Vec<&str> = Op::ALL.iter().map(Op::as_str).collect();
        assert_eq!(documented, parsed);
    }

    #[test]
    fn the_documented_shape_reads_a_filter() {
        let v = json!({"and": [
            {"field": "companies.industry", "op": "eq", "value": "Retail"},
            {"not": {"field": "email", "op": "is_null", "value": true}},
            {"or": [{"field": "tags", "op": "contains", "value": "vip"}]}
        ]});
        assert!(serde_json::from_value::<Filter>(v.clone()).is_ok());
        assert!(filter::parse(&v, "filter").is_ok());
    }
}
