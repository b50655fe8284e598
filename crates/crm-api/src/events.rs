//! Events: every change to a record is written to the outbox in the change's own
//! transaction, with the record's state and each changed field's old and new value. The
//! change feed (`GET /events`), the audit log and webhooks all read this one table.

use crate::auth::{Actor, Principal};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use crm_db::models::EventRow;
use crm_db::DbConnection;
use crm_domain::{new_id, Permission};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Fields that change with every write and say nothing about what changed.
const NOISE: &[&str] = &["updated_at", "version"];

/// Who made a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventActor {
    /// `user` or `api_key`.
    #[serde(rename = "type")]
    #[schema(example = "user")]
    pub kind: String,
    pub id: String,
}

/// One field's value before and after a change (`null` where it had none).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// The value before: any JSON type, as the field has it.
    pub old: Value,
    /// The value after: any JSON type, as the field has it.
    pub new: Value,
}

/// A change to a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01", "sequence": 42, "type": "contact.updated", "occurred_at": "2026-11-25T09:00:00Z", "record_type": "contact", "record_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02", "actor": {"type": "user", "id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e03"}, "data": {"id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02", "first_name": "Ada"}, "changes": {"first_name": {"old": "Ad", "new": "Ada"}}}))]
pub struct Event {
    pub id: String,
    /// Gap-free and in commit order within the workspace.
    pub sequence: i64,
    /// `<record type>.<verb>`: `created`, `updated`, `archived`, `restored`, `deleted`,
    /// `merged` (the survivor of a merge; the merged-away record gets `deleted`),
    /// `links_changed`; administration adds `user.deactivated`, `user.reactivated`,
    /// `api_key.revoked` and `webhook.secret_rotated`. An update, merge or lead conversion
    /// that moves a deal
    /// to another stage, a contact to another lifecycle stage, or a lead or quote to
    /// another status is followed, in the same transaction, by `deal.stage_changed`,
    /// `contact.lifecycle_changed`, `lead.status_changed` or `quote.status_changed`,
    /// whose `changes` name only those fields (`stage_id` and `pipeline_id`;
    /// `lifecycle_stage` and `lifecycle_stage_changed_at`; `status` and
    /// `disqualified_reason`; `status`).
    #[serde(rename = "type")]
    #[schema(example = "contact.updated")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(example = "contact")]
    pub record_type: String,
    pub record_id: String,
    pub actor: EventActor,
    /// The record after the change (as `GET` shows it); before it, for `deleted`.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Each changed field by its path (`address.city`, `custom.segment`). A merge also
    /// names the other record: `merged_from` on the survivor's `merged` event and
    /// `merged_into` on the merged-away record's `deleted` event (`old` null, `new` its id).
    /// A user's new password shows as `password` with `new` `"changed"`, never the value.
    pub changes: std::collections::BTreeMap<String, FieldChange>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            sequence: r.seq,
            kind: r.event_type,
            occurred_at: crate::dto::common::utc(r.occurred_at),
            record_type: r.record_type,
            record_id: r.record_id,
            actor: EventActor {
                kind: r.actor_type,
                id: r.actor_id,
            },
            data: serde_json::from_str(&r.data).unwrap_or(Value::Null),
            changes: serde_json::from_str(&r.changes).unwrap_or_default(),
        }
    }
}

/// The fields whose values differ between `before` and `after` (either may be absent), by
/// dotted path (`address.city`) into nested objects; arrays compare whole, and an empty
/// object is no value. Walks both documents side by side and copies only what differs.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    diff(&mut String::new(), before, after, &mut out);
    out
}

/// The non-empty object a value is, if it is one.
fn object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        Some(Value::Object(m)) if !m.is_empty() => Some(m),
        _ => None,
    }
}

/// A value that is not a non-empty object, as a leaf (`null` for none).
fn leaf(v: Option<&Value>) -> &Value {
    match v {
        None | Some(Value::Object(_)) => &Value::Null,
        Some(v) => v,
    }
}

fn diff(path: &mut String, a: Option<&Value>, b: Option<&Value>, out: &mut Map<String, Value>) {
    let (old, new) = (leaf(a), leaf(b));
    if old != new && !path.is_empty() && !NOISE.contains(&path.as_str()) {
        out.insert(
            path.clone(),
            serde_json::json!({"old": old.clone(), "new": new.clone()}),
        );
    }
    let (ma, mb) = (object(a), object(b));
    if ma.is_none() && mb.is_none() {
        return;
    }
    let keys_a = ma.into_iter().flat_map(|m| m.keys());
    let keys_b = mb.into_iter().flat_map(|m| m.keys());
    let mut keys: Vec<&String> = keys_a.chain(keys_b).collect();
    keys.sort_unstable();
    keys.dedup();
    let len = path.len();
    for k in keys {
        if len > 0 {
            path.push('.');
        }
        path.push_str(k);
        diff(
            path,
            ma.and_then(|m| m.get(k)),
            mb.and_then(|m| m.get(k)),
            out,
        );
        path.truncate(len);
    }
}

/// Writes the event of one change to `record_type` `record_id` in the caller's transaction.
/// `before`/`after` are the record as the API shows it; `verb` is `created`, `updated`, ….
pub fn record(
    c: &mut DbConnection,
    p: &Principal,
    record_type: &str,
    verb: &str,
    record_id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> ApiResult<()> {
    let row = event_row(p, record_type, verb, record_id, before, after)?;
    append_many(c, p.workspace, vec![row])
}

/// [`record`] for a resource whose API form is a serialisable type (configuration and
/// administration: teams, users, API keys, custom fields, webhooks).
pub fn record_shown<T: Serialize>(
    c: &mut DbConnection,
    p: &Principal,
    record_type: &str,
    verb: &str,
    record_id: &str,
    before: Option<&T>,
    after: Option<&T>,
) -> ApiResult<()> {
    let value = |v: Option<&T>| v.map(serde_json::to_value).transpose();
    let before = value(before).map_err(ApiError::internal)?;
    let after = value(after).map_err(ApiError::internal)?;
    record(
        c,
        p,
        record_type,
        verb,
        record_id,
        before.as_ref(),
        after.as_ref(),
    )
}

/// A change worth an event of its own besides `<record>.updated`: when an update, a merge
/// or a lead's conversion changes `fields[0]`, a `<record_type>.<verb>` event follows the update's, in the same
/// transaction, naming only `fields` in its `changes`. Webhooks and feed readers can then
/// subscribe to, say, stage moves alone.
struct Milestone {
    record_type: &'static str,
    verb: &'static str,
    fields: &'static [&'static str],
}

const MILESTONES: &[Milestone] = &[
    Milestone {
        record_type: "deal",
        verb: "stage_changed",
        fields: &["stage_id", "pipeline_id"],
    },
    Milestone {
        record_type: "contact",
        verb: "lifecycle_changed",
        fields: &["lifecycle_stage", "lifecycle_stage_changed_at"],
    },
    Milestone {
        record_type: "lead",
        verb: "status_changed",
        fields: &["status", "disqualified_reason"],
    },
    Milestone {
        record_type: "quote",
        verb: "status_changed",
        fields: &["status"],
    },
];

/// The types of the milestone events: the audit log leaves them out, as the update each
/// follows already shows the change.
pub fn milestone_types() -> Vec<String> {
    MILESTONES
        .iter()
        .map(|m| format!("{}.{}", m.record_type, m.verb))
        .collect()
}

/// The verbs whose changes can make a milestone.
const MILESTONE_SOURCES: &[&str] = &["updated", "merged", "converted"];

/// The milestone events (see [`MILESTONES`]) that follow `row`.
fn milestones_of(row: &EventRow) -> ApiResult<Vec<EventRow>> {
    let verb = row
        .event_type
        .strip_prefix(row.record_type.as_str())
        .and_then(|v| v.strip_prefix('.'));
    if !verb.is_some_and(|v| MILESTONE_SOURCES.contains(&v)) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut changed: Option<Map<String, Value>> = None;
    for m in MILESTONES
        .iter()
        .filter(|m| m.record_type == row.record_type)
    {
        // Most updates leave these fields alone: a text search, much cheaper than parsing
        // the changes, rules them out before the parse confirms.
        if !row.changes.contains(m.fields[0]) {
            continue;
        }
        let changed = match &mut changed {
            Some(c) => c,
            None => changed.insert(serde_json::from_str(&row.changes).map_err(ApiError::internal)?),
        };
        if !changed.contains_key(m.fields[0]) {
            continue;
        }
        let picked: Map<String, Value> = m
            .fields
            .iter()
            .filter_map(|f| changed.get(*f).map(|v| (f.to_string(), v.clone())))
            .collect();
        out.push(EventRow {
            id: new_id().to_string(),
            event_type: format!("{}.{}", m.record_type, m.verb),
            changes: serde_json::to_string(&picked).map_err(ApiError::internal)?,
            ..row.clone()
        });
    }
    Ok(out)
}

/// Appends `rows` to the outbox in the caller's transaction, in order, each followed by
/// the milestone events it makes (see [`MILESTONES`]). Every event of the API is written
/// through here.
pub fn append_many(
    c: &mut DbConnection,
    ws: crm_domain::WorkspaceId,
    rows: Vec<EventRow>,
) -> ApiResult<()> {
    let mut all = Vec::with_capacity(rows.len());
    for row in rows {
        let extra = milestones_of(&row)?;
        all.push(row);
        all.extend(extra);
    }
    crm_db::repo::events::append_many(c, ws, all)?;
    Ok(())
}

/// Record types whose events are shown only to callers holding a permission beyond
/// `events:read` / `audit:read`: an API key's scopes, and a webhook's URL (which may carry
/// the receiver's token), are for admins.
const GUARDED: &[(&str, Permission)] = &[
    ("api_key", Permission::ApiKeysManage),
    ("webhook", Permission::WebhooksManage),
];

/// The record types whose events `p` may not read (see [`GUARDED`]).
pub fn hidden_record_types(p: &Principal) -> Vec<String> {
    GUARDED
        .iter()
        .filter(|(_, perm)| !p.can(*perm))
        .map(|(t, _)| t.to_string())
        .collect()
}

/// The event of a change, not yet written (see [`record`]).
pub fn event_row(
    p: &Principal,
    record_type: &str,
    verb: &str,
    record_id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> ApiResult<EventRow> {
    event_row_noting(p, record_type, verb, record_id, before, after, None)
}

/// [`event_row`] with one more entry in `changes`, for what the record's fields do not
/// show: a merge names the other record (`merged_from` / `merged_into`, old value null).
pub fn event_row_noting(
    p: &Principal,
    record_type: &str,
    verb: &str,
    record_id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    note: Option<(&str, Value)>,
) -> ApiResult<EventRow> {
    let (actor_type, actor_id) = match &p.actor {
        Actor::User { id, .. } => ("user", id.clone()),
        Actor::ApiKey { id, .. } => ("api_key", id.clone()),
    };
    let data = after.or(before).unwrap_or(&Value::Null);
    let row = EventRow {
        workspace_id: p.workspace.as_string(),
        seq: 0,
        id: new_id().to_string(),
        event_type: format!("{record_type}.{verb}"),
        record_type: record_type.to_string(),
        record_id: record_id.to_string(),
        actor_type: actor_type.to_string(),
        actor_id,
        data: serde_json::to_string(data).map_err(ApiError::internal)?,
        changes: {
            let mut changes = changes(before, after);
            if let Some((key, value)) = note {
                changes.insert(
                    key.to_string(),
                    serde_json::json!({"old": null, "new": value}),
                );
            }
            serde_json::to_string(&changes).map_err(ApiError::internal)?
        },
        occurred_at: crm_domain::values_time::now(),
    };
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_nested_paths_and_skip_noise() {
        let a = json!({"first_name": "Ad", "address": {"city": "Paris", "country": "FR"}, "tags": ["a"], "version": 1, "custom": {}});
        let b = json!({"first_name": "Ada", "address": {"city": "Lyon", "country": "FR"}, "tags": ["a", "b"], "version": 2, "custom": {"segment": "smb"}});
        let c = changes(Some(&a), Some(&b));
        assert_eq!(
            Value::Object(c),
            json!({
                "address.city": {"old": "Paris", "new": "Lyon"},
                "custom.segment": {"old": null, "new": "smb"},
                "first_name": {"old": "Ad", "new": "Ada"},
                "tags": {"old": ["a"], "new": ["a", "b"]},
            })
        );
        let created = changes(None, Some(&json!({"first_name": "Ada", "email": null})));
        assert_eq!(
            Value::Object(created),
            json!({"first_name": {"old": null, "new": "Ada"}})
        );
    }
}
