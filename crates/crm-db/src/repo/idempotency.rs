//! Stored responses behind `Idempotency-Key`.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::IdempotencyRow;
use crate::schema::idempotency_keys as ik;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;

/// Claims `key` for a request with `hash`. Returns None when the claim is new, or the row
/// already there (completed or still in flight) otherwise. Expired keys are replaced.
pub fn claim(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    key: &str,
    hash: &str,
) -> RepoResult<Option<IdempotencyRow>> {
    let now = crm_domain::values_time::now();
    let cutoff = now - chrono::Duration::hours(RETENTION_HOURS);
    let filter = || {
        ik::table
            .filter(ik::workspace_id.eq(ws.as_string()))
            .filter(ik::idempotency_key.eq(key.to_string()))
    };
    if let Some(row) = filter().first::<IdempotencyRow>(conn).optional()? {
        if row.created_at >= cutoff {
            return Ok(Some(row));
        }
        diesel::delete(filter()).execute(conn)?;
    }
    let row = IdempotencyRow {
        workspace_id: ws.as_string(),
        idempotency_key: key.to_string(),
        request_hash: hash.to_string(),
        response_status: None,
        response_headers: None,
        response_body: None,
        created_at: now,
    };
    match diesel::insert_into(ik::table).values(&row).execute(conn) {
        Ok(_) => Ok(None),
        Err(e) if super::is_unique_violation(&e) => {
            Ok(filter().first::<IdempotencyRow>(conn).optional()?)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn complete(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    key: &str,
    status: i32,
    headers: &str,
    body: &str,
) -> RepoResult<()> {
    diesel::update(
        ik::table
            .filter(ik::workspace_id.eq(ws.as_string()))
            .filter(ik::idempotency_key.eq(key)),
    )
    .set((
        ik::response_status.eq(status),
        ik::response_headers.eq(headers),
        ik::response_body.eq(body),
    ))
    .execute(conn)?;
    Ok(())
}

/// Forgets a claim whose request failed on the server's side, so it can be retried.
pub fn release(conn: &mut DbConnection, ws: WorkspaceId, key: &str) -> RepoResult<()> {
    diesel::delete(
        ik::table
            .filter(ik::workspace_id.eq(ws.as_string()))
            .filter(ik::idempotency_key.eq(key)),
    )
    .execute(conn)?;
    Ok(())
}
