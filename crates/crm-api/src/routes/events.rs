//! `/api/v1/events` (the change feed, oldest first) and `/api/v1/audit-log` (who changed
//! what, newest first): two views of the one events outbox.

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ReadErrors};
use crate::events::Event;
use crate::extract::QueryPairs;
use crate::state::AppState;
use actix_web::{get, web};
use crm_db::repo::events::{self as repo, AuditFilter};
use crm_domain::{Permission, WorkspaceId};
use serde::Serialize;
use utoipa::ToSchema;

/// A page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<Event>,
    /// Pass as `after` to read on: the last event's id (or the `after` given, when no
    /// event is newer). Null only while the workspace has no events at all.
    pub next_cursor: Option<String>,
    /// More events are waiting now; when false, poll later with `next_cursor`.
    pub has_more: bool,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<Event>,
    pub next_cursor: Option<String>,
}

fn limit_of(v: &str) -> ApiResult<i64> {
    v.parse()
        .ok()
        .filter(|l| (1..=500).contains(l))
        .ok_or_else(|| ApiError::field("limit", "out_of_range", "must be between 1 and 500"))
}

fn unknown(k: &str) -> ApiError {
    ApiError::field(k, "unknown_parameter", format!("unknown parameter `{k}`"))
}

/// The sequence number of the event `id` names, or a 422 naming `param`.
fn seq_named(
    c: &mut crm_db::DbConnection,
    ws: WorkspaceId,
    param: &str,
    id: &str,
) -> ApiResult<i64> {
    repo::seq_of(c, ws, id)?.ok_or_else(|| {
        ApiError::field(
            param,
            "not_found",
            "no event with this id in the workspace (events older than the server's event retention are removed)",
        )
    })
}

/// Changes in commit order.
///
/// Every create, update, archive, restore and delete writes one event in the same
/// transaction as the change, so paging with `after` never misses or repeats a change.
/// Administration writes events too (`team.*`, `user.*`, `custom_field.*`, and, shown only
/// to callers with `api_keys:manage` or `webhooks:manage`, `api_key.*` and `webhook.*`).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "list_events",
    params(
        ("after" = Option<String>, Query, description = "An event id: only events after it"),
        ("types" = Option<String>, Query, description = "Comma-separated event types, e.g. `contact.created,contact.updated`"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, description = "Events, oldest first", body = EventPage), ReadErrors), security(("bearer" = [])))]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<EventPage>> {
    p.require(Permission::EventsRead)?;
    let (mut after, mut types, mut limit) = (None, Vec::new(), 50);
    for (k, v) in &q.0 {
        match k.as_str() {
            "after" => after = Some(v.clone()),
            "types" => types.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            ),
            "limit" => limit = limit_of(v)?,
            _ => return Err(unknown(k)),
        }
    }
    let hidden = crate::events::hidden_record_types(&p);
    let (rows, more) = state
        .db(move |c| {
            repo::settle(c, p.workspace)?;
            let from = match &after {
                Some(id) => seq_named(c, p.workspace, "after", id)?,
                None => 0,
            };
            let mut rows = repo::feed(c, p.workspace, from, &types, &hidden, limit + 1)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            Ok((rows, more))
        })
        .await?;
    let next_cursor = rows.last().map(|r| r.id.clone()).or_else(|| {
        q.0.iter()
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v.clone())
    });
    Ok(web::Json(EventPage {
        data: rows.into_iter().map(Event::from).collect(),
        next_cursor,
        has_more: more,
    }))
}

/// The record types that can be merged, with the object their merges are kept under.
const MERGEABLE: &[(&str, &str)] = {
    use super::companies::Companies;
    use super::contacts::Contacts;
    use crate::records::Record;
    &[
        (Contacts::EVENT, Contacts::OBJECT),
        (Companies::EVENT, Companies::OBJECT),
    ]
};

/// Who changed what and when, with each field's old and new value.
///
/// `api_key` and `webhook` changes are listed only for callers with `api_keys:manage` and
/// `webhooks:manage` respectively. Each change is listed once: the milestone events that
/// follow some updates in the change feed (`deal.stage_changed`,
/// `contact.lifecycle_changed`, `lead.status_changed`, `quote.status_changed`) are left
/// out, as the update they follow names the same fields. A contact's or company's
/// history (`record_id`) includes that of the records merged into it, under their own
/// `record_id`s.
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "events", operation_id = "audit_log",
    params(
        ("record_type" = Option<String>, Query, description = "e.g. `contact`, `company`"),
        ("record_id" = Option<String>, Query),
        ("actor_id" = Option<String>, Query, description = "A user or API key id"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "Changes, newest first", body = AuditPage), ReadErrors), security(("bearer" = [])))]
#[get("/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<AuditPage>> {
    p.require(Permission::AuditRead)?;
    let mut f = AuditFilter {
        hidden: crate::events::hidden_record_types(&p),
        left_out_types: crate::events::milestone_types(),
        ..AuditFilter::default()
    };
    let (mut cursor, mut limit) = (None, 50);
    for (k, v) in &q.0 {
        match k.as_str() {
            "record_type" => f.record_type = Some(v.clone()),
            "record_id" => f.record_id = Some(v.clone()),
            "actor_id" => f.actor_id = Some(v.clone()),
            "cursor" => cursor = Some(v.clone()),
            "limit" => limit = limit_of(v)?,
            _ => return Err(unknown(k)),
        }
    }
    let mut rows = state
        .db(move |c| {
            repo::settle(c, p.workspace)?;
            if let Some(id) = &cursor {
                f.before_seq = Some(seq_named(c, p.workspace, "cursor", id)?);
            }
            if let Some(id) = &f.record_id {
                // A record's history includes that of the records merged into it.
                let objects: Vec<&str> = MERGEABLE
                    .iter()
                    .filter(|(t, _)| f.record_type.as_deref().is_none_or(|rt| rt == *t))
                    .map(|(_, o)| *o)
                    .collect();
                if !objects.is_empty() {
                    f.merged_ids = crm_db::repo::merges::merged_into(c, p.workspace, &objects, id)?;
                }
            }
            Ok(repo::audit(c, p.workspace, &f, limit + 1)?)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(web::Json(AuditPage {
        data: rows.into_iter().map(Event::from).collect(),
        next_cursor,
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_events).service(audit_log);
}
