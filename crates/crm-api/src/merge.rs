//! Merging two records of a resource into one (`POST /{resource}/{id}/merge`), written once
//! over [`Record`]: the survivor (`{id}`) takes the other's values where it has none (or
//! where `prefer` picks the other's), lists are joined, everything that pointed at the other
//! record is repointed at the survivor, and the other is erased, its id remembered so that
//! reads of it name the survivor. Each resource says what points at it ([`Merge::relink`])
//! and what its fields keep of the other's ([`Merge::absorb`]).

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, RawJson};
use crate::links::{Changed, LinkKind};
use crate::records::{check_references, id_of, respond, shown, Known, Record};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use crm_db::models::EventRow;
use crm_db::repo::bulk::lock_rows;
use crm_db::DbConnection;
use crm_domain::{FieldError, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A resource's merges: see the module documentation.
pub struct Merge {
    /// Keeps in the merged fields what would otherwise be lost of the two records' (the
    /// e-mail address that is not kept as the main one, say). Gets the merged writable
    /// fields, then the survivor's and the other's.
    pub absorb: Absorb,
    /// Repoints what points at `from` at `to`, in the caller's transaction, adding the
    /// events of the records it changes.
    pub relink: Relink,
    /// Finds the candidate pairs of `GET /{resource}/duplicates`.
    pub find: crate::duplicates::FindFn,
}

pub type Fields = Map<String, Value>;
pub type Absorb = fn(&mut Fields, &Fields, &Fields);
pub type Relink =
    fn(&mut DbConnection, &Principal, &str, &str, &mut Vec<EventRow>) -> ApiResult<()>;

/// Whose value a merge keeps for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The record merged into (`{id}`).
    Survivor,
    /// The record merged away (`other_id`).
    Other,
}

/// Merges `other_id` into the record of the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"other_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02", "prefer": {"phone": "other", "custom.segment": "other"}}))]
pub struct MergeRequest {
    /// The record merged away: erased after the merge; its id then answers with a pointer
    /// to the survivor (`GET` → 301 with `Location`, other requests → 404), both carrying
    /// `merged_into`.
    #[schema(max_length = 36)]
    pub other_id: String,
    /// Per field, whose value to keep. By default the survivor keeps its own values and
    /// takes the other's where it has none, and lists (tags, additional e-mails) are
    /// joined; `other` takes the other's value where it has one (a list: the other's
    /// alone). Name a custom field `custom.<name>`; nested objects (`address`, `consent`)
    /// go whole.
    #[serde(default)]
    #[schema(value_type = Object, additional_properties)]
    pub prefer: BTreeMap<String, Side>,
}

/// A value that says nothing: null, blank, an empty list, or an object of such values
/// (an address without lines, consent with every flag off).
fn empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(empty),
        _ => false,
    }
}

fn pick(survivor: &Value, other: &Value, side: Option<Side>) -> Value {
    match (side, survivor, other) {
        (Some(Side::Survivor), s, _) => s.clone(),
        (Some(Side::Other), s, o) => {
            if empty(o) && !matches!(o, Value::Bool(_)) {
                s.clone()
            } else {
                o.clone()
            }
        }
        (None, Value::Array(s), Value::Array(o)) => {
            let mut joined = s.clone();
            for v in o {
                if !joined.contains(v) {
                    joined.push(v.clone());
                }
            }
            Value::Array(joined)
        }
        (None, s, o) => {
            if empty(s) {
                o.clone()
            } else {
                s.clone()
            }
        }
    }
}

/// The writable fields of the merged record, before [`Merge::absorb`].
pub(crate) fn combine(
    survivor: &Map<String, Value>,
    other: &Map<String, Value>,
    prefer: &BTreeMap<String, Side>,
) -> ApiResult<Map<String, Value>> {
    let unknown: Vec<FieldError> = prefer
        .keys()
        .filter(|k| match k.split_once('.') {
            Some(("custom", name)) => name.is_empty(),
            Some(_) => true,
            None => !survivor.contains_key(k.as_str()),
        })
        .map(|k| {
            FieldError::new(
                format!("prefer.{k}"),
                "unknown_field",
                format!("`{k}` is not a writable field (custom fields: `custom.<name>`)"),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let none = Value::Null;
    let mut out = Map::new();
    for (k, s) in survivor {
        let o = other.get(k).unwrap_or(&none);
        let side = prefer.get(k).copied();
        let v = match (k.as_str(), side, s, o) {
            ("custom", None, Value::Object(sc), Value::Object(oc)) => {
                let mut custom = Map::new();
                for key in sc.keys().chain(oc.keys()) {
                    if custom.contains_key(key) {
                        continue;
                    }
                    let side = prefer.get(&format!("custom.{key}")).copied();
                    let v = pick(
                        sc.get(key).unwrap_or(&none),
                        oc.get(key).unwrap_or(&none),
                        side,
                    );
                    if !v.is_null() {
                        custom.insert(key.clone(), v);
                    }
                }
                Value::Object(custom)
            }
            _ => pick(s, o, side),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

fn writable<R: Record>(row: &R::Row) -> ApiResult<Map<String, Value>> {
    match serde_json::to_value(R::Input::from(row)).map_err(ApiError::internal)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal(
            "a record's writable fields are not an object",
        )),
    }
}

/// The error of a request naming a record that was merged away: 301 to the survivor for a
/// read, 404 naming it otherwise; a plain 404 for a record that never was.
pub(crate) async fn merged_away<R: Record>(
    state: &AppState,
    ws: WorkspaceId,
    id: String,
    read: bool,
) -> ApiError {
    match state.db(move |c| pointer::<R>(c, ws, &id, read)).await {
        Ok(e) | Err(e) => e,
    }
}

/// The 404 (or, for a read, the 301) for `id`: pointing at the record it was merged into,
/// if it was.
pub(crate) fn pointer<R: Record>(
    c: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    read: bool,
) -> ApiResult<ApiError> {
    Ok(
        match crm_db::repo::merges::survivor(c, ws, R::OBJECT, id)? {
            Some(survivor) => ApiError::Merged {
                location: format!("/api/v1/{}/{survivor}", R::OBJECT),
                survivor,
                redirect: read,
            },
            None => ApiError::NotFound,
        },
    )
}

/// Answers `result`, with a pointer to the survivor when it is a 404 for a merged-away id
/// of a resource that merges.
pub(crate) async fn or_merged<R: Record, T>(
    state: &AppState,
    ws: WorkspaceId,
    id: &str,
    read: bool,
    result: ApiResult<T>,
) -> ApiResult<T> {
    match result {
        Err(ApiError::NotFound) if R::merge().is_some() => {
            Err(merged_away::<R>(state, ws, id.to_string(), read).await)
        }
        other => other,
    }
}

/// `POST /{resource}/{id}/merge`.
pub async fn merge<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    id: String,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let m = R::merge().ok_or(ApiError::NotFound)?;
    let req: MergeRequest = parse_json(&body.0)?;
    if req.other_id == id {
        return Err(ApiError::field(
            "other_id",
            "same_record",
            "a record cannot be merged into itself",
        ));
    }
    let ws = p.workspace;
    let path_id = id.clone();
    let result = state
        .tx(move |c| {
            let mut ids = vec![id.clone(), req.other_id.clone()];
            ids.sort();
            let locked: Vec<R::Row> = lock_rows(c, R::TABLE, ws, &ids)?;
            let mut survivor = None;
            let mut other = None;
            for row in locked {
                if id_of::<R>(&row)? == id {
                    survivor = Some(row);
                } else {
                    other = Some(row);
                }
            }
            let survivor = survivor
                .filter(|s| !R::is_archived(s))
                .ok_or(ApiError::NotFound)?;
            let Some(other) = other else {
                let detail = match crm_db::repo::merges::survivor(c, ws, R::OBJECT, &req.other_id)?
                {
                    Some(s) => format!("was merged into {s}"),
                    None => "no such record in this workspace".to_string(),
                };
                return Err(ApiError::field("other_id", "not_found", detail));
            };
            let (sw, ow) = (writable::<R>(&survivor)?, writable::<R>(&other)?);
            let mut merged = combine(&sw, &ow, &req.prefer)?;
            (m.absorb)(&mut merged, &sw, &ow);
            let doc = serde_json::to_vec(&Value::Object(merged)).map_err(ApiError::internal)?;
            let mut input: R::Input = parse_json(&doc)?;
            let custom = check_references::<R>(c, ws, &mut input, &mut Known::default())?;
            let mut events = Vec::new();
            (m.relink)(c, &p, &req.other_id, &id, &mut events)?;
            crm_db::repo::records::purge(c, R::TABLE, ws, &req.other_id, None)?;
            let after = R::update(c, &p, &survivor, input, custom)?;
            let shown_after = shown::<R>(&after)?;
            // The match values the merged-away record held and the survivor does not keep
            // lead upserts to the survivor from now on.
            let keys: Vec<(&str, &str)> = R::MATCH_ON
                .iter()
                .filter_map(|column| {
                    let held = ow.get(*column)?.as_str()?;
                    let kept = shown_after.get(*column).and_then(Value::as_str);
                    (kept != Some(held)).then_some((*column, held))
                })
                .collect();
            crm_db::repo::merges::remember(
                c,
                ws,
                R::OBJECT,
                &req.other_id,
                &id,
                p.actor_id(),
                &keys,
            )?;
            events.push(crate::events::event_row_noting(
                &p,
                R::EVENT,
                "deleted",
                &req.other_id,
                Some(&shown::<R>(&other)?),
                None,
                Some(("merged_into", Value::String(id.clone()))),
            )?);
            events.push(crate::events::event_row_noting(
                &p,
                R::EVENT,
                "merged",
                &id,
                Some(&shown::<R>(&survivor)?),
                Some(&shown_after),
                Some(("merged_from", Value::String(req.other_id.clone()))),
            )?);
            crate::events::append_many(c, ws, events)?;
            Ok(after)
        })
        .await;
    let row = or_merged::<R, _>(&state, ws, &path_id, false, result).await?;
    Ok(respond::<R>(actix_web::http::StatusCode::OK, row, false))
}

/// Repoints the reference column `column` of `T`'s records from `from` to `to` (a deal's
/// `company_id`), with an `updated` event for each record changed.
pub(crate) fn repoint<T: Record>(
    c: &mut DbConnection,
    p: &Principal,
    column: &'static str,
    from: &str,
    to: &str,
    events: &mut Vec<EventRow>,
) -> ApiResult<()> {
    let ws = p.workspace;
    let ids = crm_db::repo::merges::referencing(c, ws, T::TABLE, column, from)?;
    touching::<T>(c, p, &ids, events, |c| {
        Ok(crm_db::repo::merges::repoint(
            c,
            ws,
            T::TABLE,
            column,
            from,
            to,
        )?)
    })
}

/// Moves the activity links of `from` (a record of `table`) to `to`, with an `updated`
/// event for each activity.
pub(crate) fn relink_activities<A: Record>(
    c: &mut DbConnection,
    p: &Principal,
    table: &'static str,
    from: &str,
    to: &str,
    events: &mut Vec<EventRow>,
) -> ApiResult<()> {
    let ws = p.workspace;
    let ids = crm_db::repo::activities::linked_activities(c, ws, table, from)?;
    touching::<A>(c, p, &ids, events, |c| {
        crm_db::repo::activities::relink_record(c, ws, table, from, Some(to))?;
        Ok(())
    })
}

/// Runs `change` and adds an `updated` event for each of `ids` (records of `T`, in id
/// order) that it changed.
fn touching<T: Record>(
    c: &mut DbConnection,
    p: &Principal,
    ids: &[String],
    events: &mut Vec<EventRow>,
    change: impl FnOnce(&mut DbConnection) -> ApiResult<()>,
) -> ApiResult<()> {
    if ids.is_empty() {
        return change(c);
    }
    let before: Vec<T::Row> = lock_rows(c, T::TABLE, p.workspace, ids)?;
    change(c)?;
    let after: Vec<T::Row> = lock_rows(c, T::TABLE, p.workspace, ids)?;
    for (b, a) in before.iter().zip(&after) {
        let (b, a) = (shown::<T>(b)?, shown::<T>(a)?);
        let id = a["id"].as_str().unwrap_or_default().to_string();
        events.push(crate::events::event_row(
            p,
            T::EVENT,
            "updated",
            &id,
            Some(&b),
            Some(&a),
        )?);
    }
    Ok(())
}

/// Moves `from`'s links of `kind` to `to`, where `side` is the column naming them (see
/// `crm_db::repo::merges::move_links`), with a `links_changed` event for each owner whose
/// links changed.
pub(crate) fn move_links<L: Serialize>(
    c: &mut DbConnection,
    p: &Principal,
    kind: &LinkKind<L>,
    side: &'static str,
    from: &str,
    to: &str,
    events: &mut Vec<EventRow>,
) -> ApiResult<()> {
    let ws = p.workspace;
    let t = kind.table;
    let owners = if side == t.owner {
        vec![to.to_string()]
    } else {
        crm_db::repo::merges::linked_to(c, ws, t, side, from)?
    };
    let before = kind.list_each(c, ws, &owners)?;
    crm_db::repo::merges::move_links(c, ws, t, side, from, to)?;
    let after = kind.list_each(c, ws, &owners)?;
    for ((owner_id, before), after) in owners.into_iter().zip(before).zip(after) {
        let same = serde_json::to_value(&before).ok() == serde_json::to_value(&after).ok();
        if !same {
            events.push(kind.event_row(
                p,
                &Changed {
                    owner_id,
                    created: false,
                    before,
                    after,
                },
            )?);
        }
    }
    Ok(())
}
