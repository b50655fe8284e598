//! The events outbox: the change feed (`/events`, webhooks) and the audit log read it.

use crate::conn::{DbConnection, Dialect};
use crate::error::RepoResult;
use crate::models::EventRow;
use crate::query::{Bind, SqlBuf};
use crate::schema::events;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// Up to this many events of one transaction are written pending on PostgreSQL (see
/// [`append_many`]); more (batches, imports) are numbered from the counter at once.
const PENDING_AT_MOST: usize = 64;

/// Statements writing up to this many events stay prepared on the connection.
const PREPARED_AT_MOST: usize = 4;

/// Appends an event in the caller's transaction (see [`append_many`]).
pub fn append(conn: &mut DbConnection, ws: WorkspaceId, row: EventRow) -> RepoResult<()> {
    append_many(conn, ws, vec![row])
}

/// Appends events in the caller's transaction, in order; their `seq` is set here. Call it
/// as the transaction's last writes.
///
/// The feed's numbers are gap-free and in commit order per workspace: they come from the
/// workspace's `event_sequences` row, locked from the draw to the commit. On PostgreSQL a
/// transaction of a few events does not draw: its events are written pending
/// (`seq = -nextval('event_pending')`), so concurrent writers commit side by side, and
/// [`settle`] numbers them once committed. A larger set takes the lock (one short wait
/// instead of rewriting each event), numbering every committed pending event first so that
/// a record's changes keep their order. SQLite writers hold the database, so they draw.
pub fn append_many(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    rows: Vec<EventRow>,
) -> RepoResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if conn.dialect() == Dialect::Postgres && rows.len() <= PENDING_AT_MOST {
        return insert(conn, rows, None);
    }
    let first = number(conn, ws, rows.len() as i64)?;
    insert(conn, rows, Some(first))
}

/// Writes `rows` numbered from `first` on, or pending when `first` is None, up to
/// [`super::bulk::ROWS_PER_STATEMENT`] per statement.
fn insert(conn: &mut DbConnection, rows: Vec<EventRow>, first: Option<i64>) -> RepoResult<()> {
    let mut seq = first;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(super::bulk::ROWS_PER_STATEMENT);
        let mut b = SqlBuf::new(conn.dialect());
        b.push(
            "INSERT INTO events (workspace_id, seq, id, event_type, record_type, record_id, \
             actor_type, actor_id, data, changes, occurred_at) VALUES ",
        );
        for (i, r) in chunk.enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.bind(Bind::Text(r.workspace_id));
            match seq.as_mut() {
                Some(s) => {
                    b.push(", ");
                    b.bind(Bind::Int(*s));
                    *s += 1;
                }
                None => {
                    b.push(", -nextval('event_pending')");
                }
            }
            b.push(", ");
            let values = [
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
        // A single write's few events take a few forms of this statement: kept prepared.
        if b.binds.len() <= 10 * PREPARED_AT_MOST {
            b.execute_prepared(conn)?;
        } else {
            b.execute(conn)?;
        }
    }
    Ok(())
}

/// Locks the workspace's counter until the transaction ends, numbers the committed pending
/// events (PostgreSQL), then reserves `n` more numbers; the first of them.
fn number(conn: &mut DbConnection, ws: WorkspaceId, n: i64) -> RepoResult<i64> {
    use super::records::reserve_in_counter;
    if conn.dialect() == Dialect::Sqlite {
        return Ok(reserve_in_counter(conn, "event_sequences", "last_seq", ws, n)? - n + 1);
    }
    let base = reserve_in_counter(conn, "event_sequences", "last_seq", ws, 0)?;
    let mut b = SqlBuf::new(conn.dialect());
    b.push("UPDATE events SET seq = ");
    b.bind(Bind::Int(base));
    b.push(
        " + p.rn FROM (SELECT seq AS old, row_number() OVER (ORDER BY seq DESC) AS rn \
         FROM events WHERE workspace_id = ",
    );
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND seq < 0) p WHERE events.workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND events.seq = p.old");
    let settled = b.execute_prepared(conn)? as i64;
    if settled + n > 0 {
        reserve_in_counter(conn, "event_sequences", "last_seq", ws, settled + n)?;
    }
    Ok(base + settled + 1)
}

/// Numbers the workspace's committed pending events, in a transaction of its own (nested in
/// the caller's, if any); a no-op on SQLite and when none is pending. Readers of the feed
/// call it first, so that a change is in the feed as soon as its write has answered.
pub fn settle(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<()> {
    if conn.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    let pending = events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .filter(events::seq.lt(0))
        .select(events::seq)
        .first::<i64>(conn)
        .optional()?;
    if pending.is_some() {
        crate::conn::write_tx(conn, |c| number(c, ws, 0).map(drop))?;
    }
    Ok(())
}

/// The workspaces that have pending events (see [`settle`]), one ordered probe of
/// PostgreSQL's partial index `events_pending` (`WHERE seq < 0`) per workspace found. The
/// condition is written out, not bound: the index serves only a literal one. A plain
/// `DISTINCT` is planned from the table's statistics, which count the many rows that were
/// pending once: it then scans the whole outbox, in parallel, on every webhook round.
pub fn pending_workspaces(conn: &mut DbConnection) -> RepoResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    loop {
        let mut q = events::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("seq < 0"))
            .select(events::workspace_id)
            .order(events::workspace_id)
            .limit(1)
            .into_boxed();
        if let Some(last) = out.last() {
            q = q.filter(events::workspace_id.gt(last.clone()));
        }
        match q.first::<String>(conn).optional()? {
            Some(ws) => out.push(ws),
            None => return Ok(out),
        }
    }
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

/// Events after `after_seq`, oldest first, optionally of the given types only, never of the
/// `hidden` record types.
pub fn feed(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after_seq: i64,
    types: &[String],
    hidden: &[String],
    limit: i64,
) -> RepoResult<Vec<EventRow>> {
    let mut q = events::table
        .filter(events::workspace_id.eq(ws.as_string()))
        .filter(events::seq.gt(after_seq))
        .into_boxed();
    if !types.is_empty() {
        q = q.filter(events::event_type.eq_any(types));
    }
    if !hidden.is_empty() {
        q = q.filter(events::record_type.ne_all(hidden));
    }
    Ok(q.order(events::seq.asc()).limit(limit).load(conn)?)
}

/// What the audit log is filtered by.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub record_type: Option<String>,
    pub record_id: Option<String>,
    /// Records merged into `record_id`, whose events belong to its history too.
    pub merged_ids: Vec<String>,
    pub actor_id: Option<String>,
    /// Record types left out, whatever else is asked.
    pub hidden: Vec<String>,
    /// Event types left out, whatever else is asked.
    pub left_out_types: Vec<String>,
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
        .filter(events::seq.gt(0))
        .into_boxed();
    if let Some(t) = &f.record_type {
        q = q.filter(events::record_type.eq(t.clone()));
    }
    if let Some(r) = &f.record_id {
        if f.merged_ids.is_empty() {
            q = q.filter(events::record_id.eq(r.clone()));
        } else {
            let mut ids = f.merged_ids.clone();
            ids.push(r.clone());
            q = q.filter(events::record_id.eq_any(ids));
        }
    }
    if let Some(a) = &f.actor_id {
        q = q.filter(events::actor_id.eq(a.clone()));
    }
    if !f.hidden.is_empty() {
        q = q.filter(events::record_type.ne_all(f.hidden.clone()));
    }
    if !f.left_out_types.is_empty() {
        q = q.filter(events::event_type.ne_all(f.left_out_types.clone()));
    }
    if let Some(b) = f.before_seq {
        q = q.filter(events::seq.lt(b));
    }
    Ok(q.order(events::seq.desc()).limit(limit).load(conn)?)
}

/// The workspace's latest sequence number (0 before its first event), after [`settle`].
pub fn last_seq(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<i64> {
    use crate::schema::event_sequences as es;
    settle(conn, ws)?;
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
