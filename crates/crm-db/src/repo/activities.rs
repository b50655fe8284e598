//! Activities, their links to records, the calendar and the timeline sources they feed.

use super::records::{changed, ensure_unique, on_unique_race, update_returning};
use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::{ActivityChanges, ActivityLinkRow, ActivityRow};
use crate::query::{Bind, ColumnSpec, Relation, Resource, SqlBuf};
use crate::schema::{activities, activity_links};
use chrono::NaiveDateTime;
use crm_domain::activities::{ActivityPriority, ActivityStatus, ActivityType};
use crm_domain::filter::FieldKind;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// A kind of record an activity can be linked to. A new kind (deals, leads, tickets) is
/// one more entry in [`LINK_TYPES`] (plus its `<kind>_ids` field on the wire).
pub struct LinkType {
    /// The request/response field holding the ids (`contact_ids`).
    pub field: &'static str,
    /// The `record_type` stored in `activity_links` and used by timelines (`contact`).
    pub record_type: &'static str,
    /// The linked records' table (`contacts`).
    pub table: &'static str,
    /// The filter relation from activities to the linked records (`contacts.id=…`).
    pub relation: Relation,
}

macro_rules! link_type {
    ($field:literal, $record_type:literal, $table:literal) => {
        LinkType {
            field: $field,
            record_type: $record_type,
            table: $table,
            relation: Relation {
                name: $table,
                // The link table seen as a two-column relation for one record type.
                link_table: concat!(
                    "(SELECT workspace_id, activity_id, record_id FROM activity_links WHERE record_type = '",
                    $record_type,
                    "')"
                ),
                link_self: "activity_id",
                link_other: "record_id",
                other_table: $table,
            },
        }
    };
}

pub static CONTACT_LINKS: LinkType = link_type!("contact_ids", "contact", "contacts");
pub static COMPANY_LINKS: LinkType = link_type!("company_ids", "company", "companies");
pub static DEAL_LINKS: LinkType = link_type!("deal_ids", "deal", "deals");
pub static LEAD_LINKS: LinkType = link_type!("lead_ids", "lead", "leads");

/// Every kind of record an activity links to.
pub static LINK_TYPES: &[&LinkType] = &[&CONTACT_LINKS, &COMPANY_LINKS, &DEAL_LINKS, &LEAD_LINKS];

pub fn link_type(record_type: &str) -> Option<&'static LinkType> {
    LINK_TYPES
        .iter()
        .copied()
        .find(|l| l.record_type == record_type)
}

fn col(api_name: &'static str, column: &'static str, kind: FieldKind) -> ColumnSpec {
    ColumnSpec {
        api_name,
        column,
        kind,
        sortable: true,
    }
}

fn enum_kind(names: Vec<&'static str>) -> FieldKind {
    FieldKind::Enum(names.into_iter().map(String::from).collect())
}

pub fn activity_resource() -> Resource {
    Resource {
        table: "activities",
        columns: vec![
            ColumnSpec {
                sortable: false,
                ..col("id", "id", FieldKind::Id)
            },
            col("type", "activity_type", enum_kind(ActivityType::names())),
            col("subject", "subject", FieldKind::Text),
            col("due_at", "due_at", FieldKind::Timestamp),
            col("start_at", "start_at", FieldKind::Timestamp),
            col("end_at", "end_at", FieldKind::Timestamp),
            col("all_day", "all_day", FieldKind::Bool),
            col("status", "status", enum_kind(ActivityStatus::names())),
            col("completed_at", "completed_at", FieldKind::Timestamp),
            col("priority", "priority", enum_kind(ActivityPriority::names())),
            col("assignee_id", "assignee_id", FieldKind::Id),
            col("owner_id", "owner_id", FieldKind::Id),
            col("outcome", "outcome", FieldKind::Text),
            col("channel", "channel", FieldKind::Text),
            col("occurred_at", "occurred_at", FieldKind::Timestamp),
            col("external_id", "external_id", FieldKind::Text),
            col("created_at", "created_at", FieldKind::Timestamp),
            col("updated_at", "updated_at", FieldKind::Timestamp),
            col("archived_at", "archived_at", FieldKind::Timestamp),
            col("version", "version", FieldKind::Integer),
        ],
        text_columns: &["subject", "body"],
        text_relations: &[],
    }
}

record_by_id!(get_activity, get_activity_locked, activities, ActivityRow);

/// Of `ids`, those that are not live records of `link`'s table in the workspace.
pub fn missing_records(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    link: &LinkType,
    ids: &[String],
) -> RepoResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "SELECT id FROM {} WHERE archived_at IS NULL AND workspace_id = ",
        link.table
    ));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id IN (");
    b.bind_list(ids.iter().map(|id| Bind::Text(id.clone())));
    b.push(")");
    let found: Vec<String> = b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect();
    Ok(ids.iter().filter(|i| !found.contains(i)).cloned().collect())
}

/// Replaces the links of an activity with `sets` ((record type, ids) pairs).
fn write_links(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    activity_id: &str,
    occurred_at: NaiveDateTime,
    sets: &[(&'static str, Vec<String>)],
) -> RepoResult<()> {
    diesel::delete(
        activity_links::table
            .filter(activity_links::workspace_id.eq(ws.as_string()))
            .filter(activity_links::activity_id.eq(activity_id)),
    )
    .execute(conn)?;
    let now = crm_domain::values_time::now();
    for (record_type, ids) in sets {
        for id in ids {
            diesel::insert_into(activity_links::table)
                .values(ActivityLinkRow {
                    workspace_id: ws.as_string(),
                    activity_id: activity_id.to_string(),
                    record_type: record_type.to_string(),
                    record_id: id.clone(),
                    occurred_at,
                    created_at: now,
                })
                .execute(conn)?;
        }
    }
    Ok(())
}

pub fn insert_activity(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &ActivityRow,
    links: &[(&'static str, Vec<String>)],
) -> RepoResult<ActivityRow> {
    ensure_unique(
        conn,
        "activities",
        ws,
        &row.id,
        &[("external_id", row.external_id.as_deref())],
    )?;
    diesel::insert_into(activities::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "activities"))?;
    write_links(conn, ws, &row.id, row.occurred_at, links)?;
    Ok(row.clone())
}

/// The derived columns of an update: when it was completed, where it sits on timelines and
/// its links as the API shows them.
pub struct Derived {
    pub completed_at: Option<NaiveDateTime>,
    pub occurred_at: NaiveDateTime,
    pub links: String,
}

/// Writes the merged state of a live activity whose version is still `current.version`.
pub fn update_activity(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &ActivityRow,
    changes: &ActivityChanges,
    derived: &Derived,
    links: &[(&'static str, Vec<String>)],
) -> RepoResult<ActivityRow> {
    let external = changed(&changes.external_id, &current.external_id);
    ensure_unique(
        conn,
        "activities",
        ws,
        &current.id,
        &[("external_id", external)],
    )?;
    let now = crm_domain::values_time::now();
    let update = diesel::update(
        activities::table
            .filter(activities::workspace_id.eq(ws.as_string()))
            .filter(activities::id.eq(&current.id))
            .filter(activities::version.eq(current.version)),
    )
    .set((
        changes,
        activities::completed_at.eq(derived.completed_at),
        activities::occurred_at.eq(derived.occurred_at),
        activities::links.eq(&derived.links),
        activities::updated_at.eq(now),
        activities::version.eq(current.version + 1),
    ))
    .returning(activities::all_columns);
    let updated: ActivityRow = update_returning(conn, update, "activities", current.version)?;
    write_links(conn, ws, &current.id, derived.occurred_at, links)?;
    Ok(updated)
}

/// Live, not cancelled activities assigned to `users` that belong in `[from, to)`:
/// meetings overlapping it, tasks and calls due in it; by time (`start_at`, else `due_at`),
/// then id; after the (time, id) `after`, when given.
pub fn calendar(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    users: &[String],
    (from, to): (NaiveDateTime, NaiveDateTime),
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> RepoResult<Vec<ActivityRow>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT a.* FROM activities a WHERE a.workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND a.archived_at IS NULL AND a.status <> 'cancelled' AND a.assignee_id IN (");
    b.bind_list(users.iter().map(|u| Bind::Text(u.clone())));
    b.push(") AND ((a.activity_type = 'meeting' AND a.start_at < ");
    b.bind(Bind::Ts(to));
    b.push(" AND (a.end_at > ");
    b.bind(Bind::Ts(from));
    b.push(" OR (a.end_at IS NULL AND a.start_at >= ");
    b.bind(Bind::Ts(from));
    b.push("))) OR (a.activity_type IN ('task', 'call') AND a.due_at >= ");
    b.bind(Bind::Ts(from));
    b.push(" AND a.due_at < ");
    b.bind(Bind::Ts(to));
    b.push("))");
    if let Some((at, id)) = after {
        b.push(" AND (COALESCE(a.start_at, a.due_at) > ");
        b.bind(Bind::Ts(at));
        b.push(" OR (COALESCE(a.start_at, a.due_at) = ");
        b.bind(Bind::Ts(at));
        b.push(" AND a.id > ");
        b.bind(Bind::Text(id));
        b.push("))");
    }
    b.push(" ORDER BY COALESCE(a.start_at, a.due_at), a.id LIMIT ");
    b.bind(Bind::Int(limit));
    Ok(b.load(conn)?)
}

/// Drops every link of activities to the record `id` of `table` (being erased), so no
/// activity names a record that is gone: the link rows and the id in each activity's
/// `links`, whose version goes up. Tables activities do not link to are left alone.
pub fn unlink_record(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    table: &str,
    id: &str,
) -> RepoResult<()> {
    relink_record(conn, ws, table, id, None).map(|_| ())
}

/// The ids of the activities linked to the record `id` of `table`, in id order.
pub fn linked_activities(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    table: &str,
    id: &str,
) -> RepoResult<Vec<String>> {
    let Some(link) = LINK_TYPES.iter().find(|l| l.table == table) else {
        return Ok(Vec::new());
    };
    Ok(activity_links::table
        .filter(activity_links::workspace_id.eq(ws.as_string()))
        .filter(activity_links::record_type.eq(link.record_type))
        .filter(activity_links::record_id.eq(id.to_string()))
        .select(activity_links::activity_id)
        .order(activity_links::activity_id)
        .load(conn)?)
}

/// Moves every link of activities to the record `from` of `table` over to `to` (merged
/// into it), or drops them with `to` = `None`: the link rows and the id in each activity's
/// `links` (an activity linked to both keeps one link), whose version goes up. The ids of
/// the activities changed, in id order.
pub fn relink_record(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    table: &str,
    from: &str,
    to: Option<&str>,
) -> RepoResult<Vec<String>> {
    let Some(link) = LINK_TYPES.iter().find(|l| l.table == table) else {
        return Ok(Vec::new());
    };
    let linked = |id: &str| {
        activity_links::table
            .filter(activity_links::workspace_id.eq(ws.as_string()))
            .filter(activity_links::record_type.eq(link.record_type))
            .filter(activity_links::record_id.eq(id.to_string()))
    };
    let moved: Vec<ActivityLinkRow> = linked(from)
        .select(ActivityLinkRow::as_select())
        .order(activity_links::activity_id)
        .load(conn)?;
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    let activity_ids: Vec<String> = moved.iter().map(|l| l.activity_id.clone()).collect();
    diesel::delete(linked(from)).execute(conn)?;
    if let Some(to) = to {
        let has: Vec<String> = linked(to)
            .filter(activity_links::activity_id.eq_any(&activity_ids))
            .select(activity_links::activity_id)
            .load(conn)?;
        for l in moved.into_iter().filter(|l| !has.contains(&l.activity_id)) {
            diesel::insert_into(activity_links::table)
                .values(ActivityLinkRow {
                    record_id: to.to_string(),
                    ..l
                })
                .execute(conn)?;
        }
    }
    let rows: Vec<(String, String, i32)> = activities::table
        .filter(activities::workspace_id.eq(ws.as_string()))
        .filter(activities::id.eq_any(&activity_ids))
        .select((activities::id, activities::links, activities::version))
        .load(conn)?;
    let now = crm_domain::values_time::now();
    for (activity_id, links, version) in rows {
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&links).unwrap_or_default();
        if let Some(serde_json::Value::Array(ids)) = map.get_mut(link.record_type) {
            let had_to = to.is_some_and(|to| ids.iter().any(|v| v.as_str() == Some(to)));
            match to {
                Some(to) if !had_to => {
                    for v in ids.iter_mut().filter(|v| v.as_str() == Some(from)) {
                        *v = serde_json::Value::String(to.to_string());
                    }
                }
                _ => ids.retain(|v| v.as_str() != Some(from)),
            }
        }
        diesel::update(
            activities::table
                .filter(activities::workspace_id.eq(ws.as_string()))
                .filter(activities::id.eq(&activity_id)),
        )
        .set((
            activities::links.eq(serde_json::Value::Object(map).to_string()),
            activities::updated_at.eq(now),
            activities::version.eq(version + 1),
        ))
        .execute(conn)?;
    }
    Ok(activity_ids)
}
