//! Stored responses behind `Idempotency-Key`. A key belongs to the caller that sent it
//! (a user or an API key of a workspace): two callers using the same key never meet.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::IdempotencyRow;
use crate::schema::idempotency_keys as ik;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;

/// One caller's key: the workspace, the caller (`user:<id>` or `key:<id>`) and the key.
#[derive(Debug, Clone)]
pub struct Key {
    pub workspace: WorkspaceId,
    pub caller: String,
    pub key: String,
}

/// The stored row of `key` (a `Key`), as a query to read, change or delete.
macro_rules! key_row {
    ($key:expr) => {
        ik::table
            .filter(ik::workspace_id.eq($key.workspace.as_string()))
            .filter(ik::caller.eq($key.caller.as_str()))
            .filter(ik::idempotency_key.eq($key.key.as_str()))
    };
}

/// Claims `key` for a request with `hash`. Returns None when the claim is new, or the row
/// already there (completed or still in flight) otherwise. Expired keys are replaced.
pub fn claim(conn: &mut DbConnection, key: &Key, hash: &str) -> RepoResult<Option<IdempotencyRow>> {
    let now = crm_domain::values_time::now();
    let cutoff = now - chrono::Duration::hours(RETENTION_HOURS);
    if let Some(row) = key_row!(key).first::<IdempotencyRow>(conn).optional()? {
        if row.created_at >= cutoff {
            return Ok(Some(row));
        }
        diesel::delete(key_row!(key)).execute(conn)?;
    }
    let row = IdempotencyRow {
        workspace_id: key.workspace.as_string(),
        caller: key.caller.clone(),
        idempotency_key: key.key.clone(),
        request_hash: hash.to_string(),
        response_status: None,
        response_headers: None,
        response_body: None,
        created_at: now,
    };
    match diesel::insert_into(ik::table).values(&row).execute(conn) {
        Ok(_) => Ok(None),
        Err(e) if super::is_unique_violation(&e) => {
            Ok(key_row!(key).first::<IdempotencyRow>(conn).optional()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores the response of the request that claimed `key`.
pub fn complete(
    conn: &mut DbConnection,
    key: &Key,
    status: i32,
    headers: &str,
    body: &str,
) -> RepoResult<()> {
    diesel::update(key_row!(key))
        .set((
            ik::response_status.eq(status),
            ik::response_headers.eq(headers),
            ik::response_body.eq(body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets a claim whose request failed on the server's side, so it can be retried.
pub fn release(conn: &mut DbConnection, key: &Key) -> RepoResult<()> {
    diesel::delete(key_row!(key)).execute(conn)?;
    Ok(())
}
