//! Leads: the catalogue lists and search use, and their writes.

use super::records::{changed, ensure_unique, on_unique_race, update_returning};
use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{LeadChanges, LeadRow, LeadStatusChangeRow};
use crate::query::{ColumnSpec, Resource};
use crate::schema::{lead_status_changes, leads};
use chrono::NaiveDateTime;
use crm_domain::filter::FieldKind;
use crm_domain::records::LeadStatus;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

fn col(api_name: &'static str, kind: FieldKind, sortable: bool) -> ColumnSpec {
    ColumnSpec {
        api_name,
        column: api_name,
        kind,
        sortable,
    }
}

pub fn lead_resource() -> Resource {
    let status = FieldKind::Enum(LeadStatus::names().into_iter().map(String::from).collect());
    Resource {
        table: "leads",
        columns: vec![
            col("id", FieldKind::Id, false),
            col("first_name", FieldKind::Text, true),
            col("last_name", FieldKind::Text, true),
            col("email", FieldKind::LowerText, true),
            col("phone", FieldKind::Text, true),
            col("company_name", FieldKind::Text, true),
            col("title", FieldKind::Text, true),
            col("source", FieldKind::Text, true),
            col("campaign_id", FieldKind::Id, true),
            col("status", status, true),
            col("disqualified_reason", FieldKind::Text, false),
            col("score", FieldKind::Integer, true),
            col("owner_id", FieldKind::Id, true),
            col("tags", FieldKind::TextList, false),
            col("external_id", FieldKind::Text, true),
            col("converted_at", FieldKind::Timestamp, true),
            col("converted_contact_id", FieldKind::Id, false),
            col("converted_company_id", FieldKind::Id, false),
            col("converted_deal_id", FieldKind::Id, false),
            col("created_at", FieldKind::Timestamp, true),
            col("updated_at", FieldKind::Timestamp, true),
            col("archived_at", FieldKind::Timestamp, true),
            col("version", FieldKind::Integer, true),
        ],
        // Keep in step with the migration `leads` (trigram index and FTS5 table).
        text_columns: &["first_name", "last_name", "email", "company_name"],
        text_relations: &[],
    }
}

fn check_unique(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    email: Option<&str>,
    external: Option<&str>,
) -> RepoResult<()> {
    ensure_unique(
        conn,
        "leads",
        ws,
        id,
        &[("email", email), ("external_id", external)],
    )
}

record_by_id!(get, get_locked, leads, LeadRow);

/// Keeps a lead's move from `from` to `to` (a new lead: from nothing).
fn record_status(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    lead_id: &str,
    from: Option<&str>,
    to: &str,
    at: NaiveDateTime,
    actor: Option<&str>,
) -> RepoResult<()> {
    if from == Some(to) {
        return Ok(());
    }
    diesel::insert_into(lead_status_changes::table)
        .values(LeadStatusChangeRow {
            workspace_id: ws.as_string(),
            id: crm_domain::new_id().to_string(),
            lead_id: lead_id.to_string(),
            from_status: from.map(String::from),
            to_status: to.to_string(),
            changed_at: at,
            changed_by: actor.map(String::from),
        })
        .execute(conn)?;
    Ok(())
}

pub fn insert(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &LeadRow,
    actor: Option<&str>,
) -> RepoResult<LeadRow> {
    check_unique(
        conn,
        ws,
        &row.id,
        row.email.as_deref(),
        row.external_id.as_deref(),
    )?;
    diesel::insert_into(leads::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "leads"))?;
    record_status(conn, ws, &row.id, None, &row.status, row.created_at, actor)?;
    Ok(row.clone())
}

fn bumped(n: usize, current: &LeadRow) -> RepoResult<()> {
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    Ok(())
}

/// Writes the merged state of a lead whose version is still `current.version`.
pub fn update(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &LeadRow,
    changes: &LeadChanges,
    actor: Option<&str>,
) -> RepoResult<LeadRow> {
    check_unique(
        conn,
        ws,
        &current.id,
        changed(&changes.email, &current.email),
        changed(&changes.external_id, &current.external_id),
    )?;
    let now = crm_domain::values_time::now();
    let update = diesel::update(
        leads::table
            .filter(leads::workspace_id.eq(ws.as_string()))
            .filter(leads::id.eq(&current.id))
            .filter(leads::version.eq(current.version)),
    )
    .set((
        changes,
        leads::updated_at.eq(now),
        leads::version.eq(current.version + 1),
    ))
    .returning(leads::all_columns);
    let updated: LeadRow = update_returning(conn, update, "leads", current.version)?;
    let to = &changes.status;
    record_status(conn, ws, &current.id, Some(&current.status), to, now, actor)?;
    Ok(updated)
}

/// What a lead became on conversion.
pub struct Converted<'a> {
    pub contact_id: &'a str,
    pub company_id: Option<&'a str>,
    pub deal_id: Option<&'a str>,
    pub at: NaiveDateTime,
}

/// Marks a lead converted, if it is still at `current.version`.
pub fn mark_converted(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &LeadRow,
    to: &Converted,
    actor: Option<&str>,
) -> RepoResult<LeadRow> {
    let n = diesel::update(
        leads::table
            .filter(leads::workspace_id.eq(ws.as_string()))
            .filter(leads::id.eq(&current.id))
            .filter(leads::version.eq(current.version)),
    )
    .set((
        leads::status.eq(LeadStatus::Converted.as_str()),
        leads::converted_at.eq(to.at),
        leads::converted_contact_id.eq(to.contact_id),
        leads::converted_company_id.eq(to.company_id),
        leads::converted_deal_id.eq(to.deal_id),
        leads::updated_at.eq(to.at),
        leads::version.eq(current.version + 1),
    ))
    .execute(conn)?;
    bumped(n, current)?;
    let converted = LeadStatus::Converted.as_str();
    record_status(
        conn,
        ws,
        &current.id,
        Some(&current.status),
        converted,
        to.at,
        actor,
    )?;
    get(conn, ws, &current.id)
}
