//! Removing what has served its time: idempotency keys past their 24 hours, finished
//! webhook deliveries (with their attempts) past their retention, and, when configured,
//! events past theirs. Every statement names one workspace and removes at most
//! [`CHUNK`] rows, so a sweep never holds long locks and each query is routed by
//! `workspace_id` on a sharded database.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::query::{Bind, SqlBuf};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use diesel::QueryableByName;

/// Rows removed per statement.
pub const CHUNK: i64 = 5000;

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Every workspace's id.
pub fn workspaces(conn: &mut DbConnection) -> RepoResult<Vec<String>> {
    let b = {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("SELECT id FROM workspaces ORDER BY id");
        b
    };
    Ok(b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}

fn ws_text(b: &mut SqlBuf, ws: WorkspaceId) {
    b.bind(Bind::Text(ws.as_string()));
}

/// Runs `step` (which removes at most [`CHUNK`] rows and says how many) until a step
/// removes fewer; the total.
fn in_chunks(mut step: impl FnMut() -> RepoResult<usize>) -> RepoResult<usize> {
    let mut total = 0;
    loop {
        let n = step()?;
        total += n;
        if (n as i64) < CHUNK {
            return Ok(total);
        }
    }
}

/// Deletes the workspace's idempotency keys made before `before`; how many.
pub fn prune_idempotency_keys(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    before: NaiveDateTime,
) -> RepoResult<usize> {
    in_chunks(|| {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("DELETE FROM idempotency_keys WHERE workspace_id = ");
        ws_text(&mut b, ws);
        b.push(" AND idempotency_key IN (SELECT idempotency_key FROM idempotency_keys WHERE workspace_id = ");
        ws_text(&mut b, ws);
        b.push(" AND created_at < ");
        b.bind(Bind::Ts(before));
        b.push(" LIMIT ");
        b.bind(Bind::Int(CHUNK));
        b.push(")");
        Ok(b.execute(conn)?)
    })
}

/// Deletes the workspace's finished (succeeded or failed) webhook deliveries last changed
/// before `before`, with their attempts; how many deliveries.
pub fn prune_deliveries(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    before: NaiveDateTime,
) -> RepoResult<usize> {
    in_chunks(|| {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("SELECT id FROM webhook_deliveries WHERE workspace_id = ");
        ws_text(&mut b, ws);
        b.push(" AND status <> 'pending' AND updated_at < ");
        b.bind(Bind::Ts(before));
        b.push(" LIMIT ");
        b.bind(Bind::Int(CHUNK));
        let ids: Vec<String> = b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect();
        for (table, column) in [
            ("webhook_attempts", "delivery_id"),
            ("webhook_deliveries", "id"),
        ] {
            for part in ids.chunks(500) {
                let mut b = SqlBuf::new(conn.dialect());
                b.push(&format!("DELETE FROM {table} WHERE workspace_id = "));
                ws_text(&mut b, ws);
                b.push(&format!(" AND {column} IN ("));
                b.bind_list(part.iter().map(|id| Bind::Text(id.clone())));
                b.push(")");
                b.execute(conn)?;
            }
        }
        Ok(ids.len())
    })
}

#[derive(QueryableByName)]
struct Bound {
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
}

#[derive(QueryableByName)]
struct EventAt {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Timestamp)]
    occurred_at: NaiveDateTime,
}

/// The first event webhooks may still need: the lowest cursor of any subscription (it
/// resumes from there, even when paused) and the lowest event of any stored delivery (it
/// may be sent or replayed). None: nothing needs any.
fn needed_from(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<Option<i64>> {
    let mut lowest: Option<i64> = None;
    for sql in [
        "SELECT MIN(cursor_seq) + 1 AS seq FROM webhooks WHERE workspace_id = ",
        "SELECT MIN(event_seq) AS seq FROM webhook_deliveries WHERE workspace_id = ",
    ] {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(sql);
        ws_text(&mut b, ws);
        if let Some(seq) = b
            .load::<Bound>(conn)?
            .into_iter()
            .next()
            .and_then(|r| r.seq)
        {
            lowest = Some(lowest.map_or(seq, |l| l.min(seq)));
        }
    }
    Ok(lowest)
}

/// Deletes the workspace's numbered events that occurred before `before` and that no
/// webhook still needs, oldest first; how many (pending events stay). Walks the events in
/// sequence order a chunk at a time (the primary key; no index on time), stopping at the
/// first that must stay.
pub fn prune_events(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    before: NaiveDateTime,
) -> RepoResult<usize> {
    let keep_from = needed_from(conn, ws)?;
    let mut total = 0;
    loop {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("SELECT seq, occurred_at FROM events WHERE workspace_id = ");
        ws_text(&mut b, ws);
        b.push(" AND seq > 0 ORDER BY seq LIMIT ");
        b.bind(Bind::Int(CHUNK));
        let rows: Vec<EventAt> = b.load(conn)?;
        let old = rows
            .iter()
            .take_while(|e| e.occurred_at < before && keep_from.is_none_or(|k| e.seq < k))
            .count();
        let Some(last) = old.checked_sub(1).map(|i| rows[i].seq) else {
            return Ok(total);
        };
        let mut b = SqlBuf::new(conn.dialect());
        b.push("DELETE FROM events WHERE workspace_id = ");
        ws_text(&mut b, ws);
        b.push(" AND seq > 0 AND seq <= ");
        b.bind(Bind::Int(last));
        total += b.execute(conn)?;
        if old < rows.len() || (rows.len() as i64) < CHUNK {
            return Ok(total);
        }
    }
}

#[derive(QueryableByName)]
struct PagesRow {
    #[diesel(sql_type = BigInt)]
    pages: i64,
}

/// On PostgreSQL, moves the entries that writes left in the pending lists of the schema's
/// GIN indexes (the free-text trigram indexes) into the indexes proper, and says how many
/// pending-list pages that emptied; on SQLite, which has no such indexes, does nothing.
///
/// A GIN index takes new entries into an unsorted pending list, cheap to append to, and
/// merges the list into the index once it outgrows `gin_pending_list_limit` (4 MB by
/// default). Left to PostgreSQL, that merge runs inside whichever write fills the list,
/// which then takes hundreds of milliseconds longer than its neighbours, and every search
/// reads the whole list until then. Called often from a background worker, the list stays
/// small and writes rarely pay for it. Only indexes the current user may maintain (owns,
/// or is a member of the owner's role) are touched; a concurrent call waits for the other
/// to finish and then finds little left to do.
pub fn flush_text_indexes(conn: &mut DbConnection) -> RepoResult<i64> {
    if conn.dialect() == crate::conn::Dialect::Sqlite {
        return Ok(0);
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "SELECT CAST(COALESCE(SUM(gin_clean_pending_list(c.oid::regclass)), 0) AS BIGINT) AS pages \
         FROM pg_class c JOIN pg_am a ON a.oid = c.relam \
         WHERE c.relkind = 'i' AND a.amname = 'gin' \
         AND c.relnamespace = current_schema()::regnamespace \
         AND pg_has_role(current_user, c.relowner, 'USAGE')",
    );
    Ok(b.load::<PagesRow>(conn)?
        .first()
        .map(|r| r.pages)
        .unwrap_or(0))
}

/// The running-total tables: appended to by every deal write and folded (every row
/// deleted, one per cell written back) by reads, so they churn through many dead rows.
pub const RUNNING_TOTALS: &[&str] = &["deal_board_deltas", "deal_forecast_deltas"];

/// Dead rows a running-total table holds, at least, before [`vacuum_running_totals`]
/// vacuums it (and more dead than live ones).
pub const DEAD_ROWS_TO_VACUUM: i64 = 1000;

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table: String,
}

/// On PostgreSQL, vacuums (and analyzes) each running-total table of the schema whose
/// folds have left more dead rows than live ones, [`DEAD_ROWS_TO_VACUUM`] at least, and
/// names the tables it vacuumed; on SQLite, which reuses deleted rows' space in place,
/// does nothing.
///
/// A fold deletes every row of a cell it sums, so after folding a pipeline's 100 000
/// deltas the board's dozen rows sit among 100 000 dead ones, and every read of the board
/// wades through them (and plans for 100 000 rows) until the table is vacuumed.
/// Autovacuum gets there within a minute or so where it runs; this does it within a
/// round. Tables the current user may not vacuum are skipped by PostgreSQL with a warning.
/// Must run outside a transaction.
pub fn vacuum_running_totals(conn: &mut DbConnection) -> RepoResult<Vec<String>> {
    use diesel::RunQueryDsl;
    if conn.dialect() == crate::conn::Dialect::Sqlite {
        return Ok(Vec::new());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "SELECT CAST(relname AS TEXT) AS \"table\" FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname IN (",
    );
    b.bind_list(RUNNING_TOTALS.iter().map(|t| Bind::Text(t.to_string())));
    b.push(") AND n_dead_tup >= ");
    b.bind(Bind::Int(DEAD_ROWS_TO_VACUUM));
    b.push(" AND n_dead_tup > n_live_tup ORDER BY relname");
    let churned: Vec<String> = b
        .load::<TableRow>(conn)?
        .into_iter()
        .map(|r| r.table)
        .collect();
    for table in &churned {
        // Only the names listed in RUNNING_TOTALS reach this statement.
        if RUNNING_TOTALS.contains(&table.as_str()) {
            diesel::sql_query(format!("VACUUM (ANALYZE) {table}")).execute(conn)?;
        }
    }
    Ok(churned)
}
