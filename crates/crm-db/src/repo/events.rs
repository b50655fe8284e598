//! The events outbox: the change feed (`/events`, webhooks) and the audit log read it.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::EventRow;
use crate::query::{Bind, SqlBuf};
use crate::schema::events;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// Draws the workspace's next sequence number. The counter row stays locked until the
/// caller's transaction ends, so numbers are handed out in commit order and never skip.
pub fn next_seq(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<i64> {
    super::records::next_in_counter(conn, "event_sequences", "last_seq", ws)
}

/// Appends an event in the caller's transaction; `row.seq` is filled in here. Call it as
/// the transaction's last writes: from the first append until commit, other writers of the
/// workspace wait for the counter, so a row locked after it could deadlock.
pub fn append(conn: &mut DbConnection, ws: WorkspaceId, mut row: EventRow) -> RepoResult<EventRow> {
    row.seq = next_seq(conn, ws)?;
    diesel::insert_into(events::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// Appends events in the caller's transaction, in order, as [`append`] does one by one:
/// their sequence numbers are taken from the counter in one step, and the rows written up
/// to [`super::bulk::ROWS_PER_STATEMENT`] per statement.
pub fn append_many(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    rows: Vec<EventRow>,
) -> RepoResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len() as i64;
    let last = super::records::reserve_in_counter(conn, "event_sequences", "last_seq", ws, n)?;
    let mut seq = last - n;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(super::bulk::ROWS_PER_STATEMENT);
        let mut b = SqlBuf::new(conn.dialect());
        b.push(
            "INSERT INTO events (workspace_id, seq, id, event_type, record_type, record_id, \
             actor_type, actor_id, data, changes, occurred_at) VALUES ",
        );
        for (i, r) in chunk.enumerate() {
            seq += 1;
            b.push(if i == 0 { "(" } else { ", (" });
            let values = [
                Bind::Text(r.workspace_id),
                Bind::Int(seq),
                Bind::Text(r.id),
                Bind::Text(r.event_type),
                Bind::Text(r.record_type),
                Bind::Text(r.record_id),
                Bind::Text(r.actor_type),
                Bind::Text(r.actor_id),
                Bind::Text(r.data),
                Bind::Text(r.changes),
                Bind::Ts(r.occurred_at),
            ];
            b.bind_list(values);
            b.push(")");
        }
        b.execute(conn)?;
    }
    Ok(())
}

/// The sequence number of an event, by id.
pub fn seq_of(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<Option<i64>> {
    Ok(events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .filter(events::id.eq(id))
        .select(events::seq)
        .first(conn)
        .optional()?)
}

/// Events after `after_seq`, oldest first, optionally of the given types only.
pub fn feed(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after_seq: i64,
    types: &[String],
    limit: i64,
) -> RepoResult<Vec<EventRow>> {
    let mut q = events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .filter(events::seq.gt(after_seq))
        .into_boxed();
    if !types.is_empty() {
        q = q.filter(events::event_type.eq_any(types));
    }
    Ok(q.order(events::seq.asc()).limit(limit).load(conn)?)
}

/// What the audit log is filtered by.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub record_type: Option<String>,
    pub record_id: Option<String>,
    pub actor_id: Option<String>,
    /// Only events older than this sequence number (the page cursor).
    pub before_seq: Option<i64>,
}

/// Events newest first, filtered by record and/or actor.
pub fn audit(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    f: &AuditFilter,
    limit: i64,
) -> RepoResult<Vec<EventRow>> {
    let mut q = events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .into_boxed();
    if let Some(t) = &f.record_type {
        q = q.filter(events::record_type.eq(t.clone()));
    }
    if let Some(r) = &f.record_id {
        q = q.filter(events::record_id.eq(r.clone()));
    }
    if let Some(a) = &f.actor_id {
        q = q.filter(events::actor_id.eq(a.clone()));
    }
    if let Some(b) = f.before_seq {
        q = q.filter(events::seq.lt(b));
    }
    Ok(q.order(events::seq.desc()).limit(limit).load(conn)?)
}

/// The workspace's latest sequence number (0 before its first event).
pub fn last_seq(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<i64> {
    use crate::schema::event_sequences as es;
    Ok(es::table
        .filter(es::workspace_id.eq(ws.as_string()))
        .select(es::last_seq)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// The given events (by id), in sequence order.
pub fn by_ids(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<Vec<EventRow>> {
    Ok(events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .filter(events::id.eq_any(ids))
        .order(events::seq.asc())
        .load(conn)?)
}
