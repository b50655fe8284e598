//! Bulk import jobs: the job, its uploaded file (in chunks) and its failed rows.
//!
//! A worker claims a job with a lease and moves it on batch by batch; every write it makes
//! is conditional on still holding the lease while the job is `running`, so a worker that
//! lost its lease (it stalled, or another process took the job over after a crash) or a job
//! cancelled meanwhile changes nothing.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{ImportErrorRow, ImportRow};
use crate::schema::{import_chunks, import_errors, imports};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// The job while `owner` holds it running: what a worker's writes are conditional on.
macro_rules! held {
    ($ws:expr, $id:expr, $owner:expr) => {
        imports::table
            .filter(imports::workspace_id.eq($ws.as_string()))
            .filter(imports::id.eq($id))
            .filter(imports::status.eq("running"))
            .filter(imports::lease_owner.eq($owner))
    };
}

/// The statuses a job can still run in.
const PENDING: [&str; 2] = ["queued", "running"];

pub fn insert(conn: &mut DbConnection, row: &ImportRow) -> RepoResult<()> {
    diesel::insert_into(imports::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Stores one piece of an upload, starting at byte `start_offset` of the file.
pub fn add_chunk(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    import_id: &str,
    seq: i32,
    start_offset: i64,
    data: &[u8],
) -> RepoResult<()> {
    diesel::insert_into(import_chunks::table)
        .values((
            import_chunks::workspace_id.eq(ws.as_string()),
            import_chunks::import_id.eq(import_id),
            import_chunks::seq.eq(seq),
            import_chunks::start_offset.eq(start_offset),
            import_chunks::data.eq(data),
        ))
        .execute(conn)?;
    // An upload still arriving is not abandoned (see `prune_uploads`).
    diesel::update(
        imports::table
            .filter(imports::workspace_id.eq(ws.as_string()))
            .filter(imports::id.eq(import_id)),
    )
    .set(imports::updated_at.eq(crm_domain::values_time::now()))
    .execute(conn)?;
    Ok(())
}

/// Removes uploads that stopped arriving before `before` (the server stopped while
/// receiving them), with their stored chunks; returns how many.
pub fn prune_uploads(conn: &mut DbConnection, before: NaiveDateTime) -> RepoResult<usize> {
    let stale: Vec<(String, String)> = imports::table
        .filter(imports::status.eq("uploading"))
        .filter(imports::updated_at.lt(before))
        .select((imports::workspace_id, imports::id))
        .limit(100)
        .load(conn)?;
    for (ws, id) in &stale {
        diesel::delete(
            import_chunks::table
                .filter(import_chunks::workspace_id.eq(ws))
                .filter(import_chunks::import_id.eq(id)),
        )
        .execute(conn)?;
        diesel::delete(
            imports::table
                .filter(imports::workspace_id.eq(ws))
                .filter(imports::id.eq(id))
                .filter(imports::status.eq("uploading")),
        )
        .execute(conn)?;
    }
    Ok(stale.len())
}

/// What an upload found, for [`queue`].
#[derive(Debug, Clone)]
pub struct Queued {
    pub bytes_total: i64,
    pub rows_total: i64,
    /// CSV: where each column goes, as JSON.
    pub column_targets: Option<String>,
    /// Where the first data row starts (after a CSV header).
    pub next_offset: i64,
    pub next_line: i64,
}

/// The upload is complete: the job is queued with its size and row count.
pub fn queue(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    q: Queued,
    now: NaiveDateTime,
) -> RepoResult<ImportRow> {
    diesel::update(
        imports::table
            .filter(imports::workspace_id.eq(ws.as_string()))
            .filter(imports::id.eq(id))
            .filter(imports::status.eq("uploading")),
    )
    .set((
        imports::status.eq("queued"),
        imports::bytes_total.eq(q.bytes_total),
        imports::rows_total.eq(q.rows_total),
        imports::column_targets.eq(q.column_targets),
        imports::next_offset.eq(q.next_offset),
        imports::next_line.eq(q.next_line),
        imports::updated_at.eq(now),
    ))
    .execute(conn)?;
    get(conn, ws, id)
}

/// Removes a job and everything it holds (an upload that did not complete).
pub fn delete(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    diesel::delete(
        import_errors::table
            .filter(import_errors::workspace_id.eq(ws.as_string()))
            .filter(import_errors::import_id.eq(id)),
    )
    .execute(conn)?;
    drop_chunks(conn, ws, id)?;
    diesel::delete(
        imports::table
            .filter(imports::workspace_id.eq(ws.as_string()))
            .filter(imports::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<ImportRow> {
    imports::table
        .filter(imports::workspace_id.eq(ws.as_string()))
        .filter(imports::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// Jobs of these objects, newest first, after the id `before` (a cursor).
pub fn list(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    objects: &[&str],
    statuses: Option<&[String]>,
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<ImportRow>> {
    let mut q = imports::table
        .filter(imports::workspace_id.eq(ws.as_string()))
        .filter(imports::status.ne("uploading"))
        .filter(imports::object.eq_any(objects))
        .order(imports::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(s) = statuses {
        q = q.filter(imports::status.eq_any(s.to_vec()));
    }
    if let Some(b) = before {
        q = q.filter(imports::id.lt(b.to_string()));
    }
    Ok(q.load(conn)?)
}

/// A job's failed rows by line, after line `after`.
pub fn errors(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    after: i64,
    limit: i64,
) -> RepoResult<Vec<ImportErrorRow>> {
    Ok(import_errors::table
        .filter(import_errors::workspace_id.eq(ws.as_string()))
        .filter(import_errors::import_id.eq(id))
        .filter(import_errors::line.gt(after))
        .order(import_errors::line.asc())
        .limit(limit)
        .load(conn)?)
}

/// Takes the oldest job no live worker holds, for `lease`; `None` when there is none.
pub fn claim(
    conn: &mut DbConnection,
    owner: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> RepoResult<Option<ImportRow>> {
    let candidates: Vec<(String, String)> = imports::table
        .filter(imports::status.eq_any(PENDING))
        .filter(
            imports::lease_until
                .is_null()
                .or(imports::lease_until.lt(now)),
        )
        .order(imports::created_at.asc())
        .select((imports::workspace_id, imports::id))
        .limit(8)
        .load(conn)?;
    for (ws, id) in candidates {
        let taken = diesel::update(
            imports::table
                .filter(imports::workspace_id.eq(&ws))
                .filter(imports::id.eq(&id))
                .filter(imports::status.eq_any(PENDING))
                .filter(
                    imports::lease_until
                        .is_null()
                        .or(imports::lease_until.lt(now)),
                ),
        )
        .set((
            imports::status.eq("running"),
            imports::lease_owner.eq(owner),
            imports::lease_until.eq(lease_until),
            imports::updated_at.eq(now),
            imports::attempts.eq(imports::attempts + 1),
        ))
        .execute(conn)?;
        if taken == 1 {
            diesel::update(
                imports::table
                    .filter(imports::workspace_id.eq(&ws))
                    .filter(imports::id.eq(&id))
                    .filter(imports::started_at.is_null()),
            )
            .set(imports::started_at.eq(now))
            .execute(conn)?;
            return Ok(imports::table
                .filter(imports::workspace_id.eq(&ws))
                .filter(imports::id.eq(&id))
                .first(conn)
                .optional()?);
        }
    }
    Ok(None)
}

/// The chunk holding byte `offset` of the file: its first byte's offset and its data.
pub fn chunk_at(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    offset: i64,
) -> RepoResult<Option<(i32, i64, Vec<u8>)>> {
    Ok(import_chunks::table
        .filter(import_chunks::workspace_id.eq(ws.as_string()))
        .filter(import_chunks::import_id.eq(id))
        .filter(import_chunks::start_offset.le(offset))
        .order(import_chunks::start_offset.desc())
        .select((
            import_chunks::seq,
            import_chunks::start_offset,
            import_chunks::data,
        ))
        .first(conn)
        .optional()?)
}

/// The chunk after `seq`.
pub fn chunk_after(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    seq: i32,
) -> RepoResult<Option<(i32, i64, Vec<u8>)>> {
    Ok(import_chunks::table
        .filter(import_chunks::workspace_id.eq(ws.as_string()))
        .filter(import_chunks::import_id.eq(id))
        .filter(import_chunks::seq.eq(seq + 1))
        .select((
            import_chunks::seq,
            import_chunks::start_offset,
            import_chunks::data,
        ))
        .first(conn)
        .optional()?)
}

/// What one batch of rows did, for [`advance`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    pub next_offset: i64,
    pub next_line: i64,
}

/// Adds a batch's counts and moves the checkpoint, renewing the lease; false (and nothing
/// written) when `owner` no longer holds the running job. Called first in the batch's
/// transaction, it also holds the job's row until the batch commits, so a cancel waits
/// for the batch in progress.
pub fn advance(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    owner: &str,
    p: Progress,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(held!(ws, id, owner))
        .set((
            imports::rows_processed.eq(imports::rows_processed + p.processed),
            imports::created.eq(imports::created + p.created),
            imports::updated.eq(imports::updated + p.updated),
            imports::failed.eq(imports::failed + p.failed),
            imports::next_offset.eq(p.next_offset),
            imports::next_line.eq(p.next_line),
            imports::lease_until.eq(lease_until),
            imports::updated_at.eq(now),
            imports::attempts.eq(0),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// A worker's turn at a running job ended in an error: the job keeps its checkpoint, notes
/// `error`, and may be taken again from `retry_at`.
pub fn interrupted(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    owner: &str,
    error: &str,
    retry_at: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(held!(ws, id, owner))
        .set((
            imports::error.eq(error),
            imports::lease_until.eq(retry_at),
            imports::updated_at.eq(crm_domain::values_time::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn add_errors(conn: &mut DbConnection, rows: &[ImportErrorRow]) -> RepoResult<()> {
    super::bulk::insert_chunks!(conn, import_errors::table, rows);
    Ok(())
}

/// Ends a running job held by `owner` as `completed` or `failed` and frees its upload;
/// false when `owner` no longer holds it.
pub fn finish(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    owner: &str,
    status: &str,
    error: Option<&str>,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(held!(ws, id, owner))
        .set((
            imports::status.eq(status),
            imports::error.eq(error),
            imports::lease_owner.eq(None::<String>),
            imports::lease_until.eq(None::<NaiveDateTime>),
            imports::finished_at.eq(now),
            imports::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 1 {
        drop_chunks(conn, ws, id)?;
    }
    Ok(n == 1)
}

/// Gives a job back (the worker is stopping): another worker may take it at once.
pub fn release(conn: &mut DbConnection, ws: WorkspaceId, id: &str, owner: &str) -> RepoResult<()> {
    diesel::update(
        imports::table
            .filter(imports::workspace_id.eq(ws.as_string()))
            .filter(imports::id.eq(id))
            .filter(imports::lease_owner.eq(owner)),
    )
    .set((
        imports::lease_owner.eq(None::<String>),
        imports::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Cancels a job that has not ended; false when it had.
pub fn cancel(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    now: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(
        imports::table
            .filter(imports::workspace_id.eq(ws.as_string()))
            .filter(imports::id.eq(id))
            .filter(imports::status.eq_any(PENDING)),
    )
    .set((
        imports::status.eq("cancelled"),
        imports::lease_owner.eq(None::<String>),
        imports::lease_until.eq(None::<NaiveDateTime>),
        imports::finished_at.eq(now),
        imports::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 1 {
        drop_chunks(conn, ws, id)?;
    }
    Ok(n == 1)
}

fn drop_chunks(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    diesel::delete(
        import_chunks::table
            .filter(import_chunks::workspace_id.eq(ws.as_string()))
            .filter(import_chunks::import_id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}
