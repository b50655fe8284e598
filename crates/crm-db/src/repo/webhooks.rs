//! Webhook subscriptions, their queued deliveries and each delivery attempt.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{AttemptRow, DeliveryRow, WebhookRow};
use crate::query::{Bind, SqlBuf};
use crate::schema::{webhook_attempts, webhook_deliveries, webhooks};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &WebhookRow) -> RepoResult<()> {
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<WebhookRow> {
    webhooks::table
        .filter(webhooks::workspace_id.eq(ws.as_string()))
        .filter(webhooks::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// Every subscription of the workspace, by id (for the delivery worker).
pub fn all(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<Vec<WebhookRow>> {
    page(conn, ws, None, i64::MAX)
}

/// A page of the workspace's subscriptions by id: up to `limit` after `after_id`.
pub fn page(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after_id: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<WebhookRow>> {
    let q = webhooks::table
        .filter(webhooks::workspace_id.eq(ws.as_string()))
        .into_boxed();
    page_after_id!(conn, q, webhooks, after_id, limit)
}

/// Writes a changed subscription (every field but the dispatch cursor) if it is still at
/// `row.version - 1`.
pub fn update(conn: &mut DbConnection, ws: WorkspaceId, row: &WebhookRow) -> RepoResult<()> {
    let n = diesel::update(
        webhooks::table
            .filter(webhooks::workspace_id.eq(ws.as_string()))
            .filter(webhooks::id.eq(&row.id))
            .filter(webhooks::version.eq(row.version - 1)),
    )
    .set((
        webhooks::url.eq(&row.url),
        webhooks::description.eq(&row.description),
        webhooks::event_types.eq(&row.event_types),
        webhooks::filter.eq(&row.filter),
        webhooks::secret.eq(&row.secret),
        webhooks::previous_secret.eq(&row.previous_secret),
        webhooks::previous_secret_expires_at.eq(row.previous_secret_expires_at),
        webhooks::active.eq(row.active),
        webhooks::updated_at.eq(row.updated_at),
        webhooks::version.eq(row.version),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: row.version - 1,
            current: row.version,
        });
    }
    Ok(())
}

pub fn delete(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    let n = diesel::delete(
        webhooks::table
            .filter(webhooks::workspace_id.eq(ws.as_string()))
            .filter(webhooks::id.eq(id)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}

/// The workspaces that have at least one active subscription (for the workers).
pub fn workspaces_with_active(conn: &mut DbConnection) -> RepoResult<Vec<String>> {
    Ok(webhooks::table
        .filter(webhooks::active.eq(true))
        .select(webhooks::workspace_id)
        .distinct()
        .load(conn)?)
}

pub fn active(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<Vec<WebhookRow>> {
    Ok(webhooks::table
        .filter(webhooks::workspace_id.eq(ws.as_string()))
        .filter(webhooks::active.eq(true))
        .order(webhooks::id.asc())
        .load(conn)?)
}

/// Moves a subscription's dispatch cursor from `from` to `to`; false when another worker
/// moved it first (the caller then rolls back what it queued).
pub fn advance_cursor(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    from: i64,
    to: i64,
) -> RepoResult<bool> {
    let n = diesel::update(
        webhooks::table
            .filter(webhooks::workspace_id.eq(ws.as_string()))
            .filter(webhooks::id.eq(id))
            .filter(webhooks::cursor_seq.eq(from)),
    )
    .set(webhooks::cursor_seq.eq(to))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn queue(conn: &mut DbConnection, rows: &[DeliveryRow]) -> RepoResult<()> {
    // Row by row: diesel's multi-row insert is not available across both backends.
    for row in rows {
        diesel::insert_into(webhook_deliveries::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Deliveries due now for active subscriptions, oldest event first, that have no earlier
/// pending delivery for the same subscription and record (so each record's changes arrive
/// in order) and that no sender holds.
pub fn due(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    now: NaiveDateTime,
    limit: i64,
) -> RepoResult<Vec<DeliveryRow>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT d.* FROM webhook_deliveries d WHERE d.workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(
        " AND d.status = 'pending' AND EXISTS (SELECT 1 FROM webhooks w WHERE \
         w.workspace_id = d.workspace_id AND w.id = d.webhook_id AND w.active = ",
    );
    b.bind(Bind::Bool(true));
    b.push(") AND d.next_attempt_at <= ");
    b.bind(Bind::Ts(now));
    b.push(" AND (d.locked_until IS NULL OR d.locked_until < ");
    b.bind(Bind::Ts(now));
    b.push(
        ") AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.workspace_id = d.workspace_id \
         AND e.webhook_id = d.webhook_id AND e.record_id = d.record_id AND e.status = 'pending' \
         AND e.event_seq < d.event_seq) ORDER BY d.event_seq LIMIT ",
    );
    b.bind(Bind::Int(limit));
    Ok(b.load(conn)?)
}

/// Takes a delivery for one attempt until `until`; false when another sender has it.
pub fn claim(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::workspace_id.eq(ws.as_string()))
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(
                webhook_deliveries::locked_until
                    .is_null()
                    .or(webhook_deliveries::locked_until.lt(now)),
            ),
    )
    .set(webhook_deliveries::locked_until.eq(until))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records an attempt and the delivery's new state in one go.
pub fn finish_attempt(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    attempt: &AttemptRow,
    status: &str,
    next_attempt_at: Option<NaiveDateTime>,
) -> RepoResult<()> {
    diesel::insert_into(webhook_attempts::table)
        .values(attempt)
        .execute(conn)?;
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::workspace_id.eq(ws.as_string()))
            .filter(webhook_deliveries::id.eq(&attempt.delivery_id)),
    )
    .set((
        webhook_deliveries::status.eq(status),
        webhook_deliveries::attempts.eq(attempt.attempt),
        webhook_deliveries::next_attempt_at.eq(next_attempt_at),
        webhook_deliveries::locked_until.eq(None::<NaiveDateTime>),
        webhook_deliveries::last_status_code.eq(attempt.status_code),
        webhook_deliveries::last_error.eq(&attempt.error),
        webhook_deliveries::updated_at.eq(attempt.attempted_at),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn get_delivery(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    webhook_id: &str,
    id: &str,
) -> RepoResult<DeliveryRow> {
    webhook_deliveries::table
        .filter(webhook_deliveries::workspace_id.eq(ws.as_string()))
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .filter(webhook_deliveries::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// A subscription's deliveries, newest event first, before `before_seq` when given.
pub fn deliveries(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    webhook_id: &str,
    before: Option<(i64, String)>,
    limit: i64,
) -> RepoResult<Vec<DeliveryRow>> {
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::workspace_id.eq(ws.as_string()))
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .into_boxed();
    if let Some((seq, id)) = before {
        q = q.filter(
            webhook_deliveries::event_seq
                .lt(seq)
                .or(webhook_deliveries::event_seq
                    .eq(seq)
                    .and(webhook_deliveries::id.lt(id))),
        );
    }
    Ok(q.order((
        webhook_deliveries::event_seq.desc(),
        webhook_deliveries::id.desc(),
    ))
    .limit(limit)
    .load(conn)?)
}

/// The attempts of the given deliveries, in one query.
pub fn attempts(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    delivery_ids: &[String],
) -> RepoResult<Vec<AttemptRow>> {
    Ok(webhook_attempts::table
        .filter(webhook_attempts::workspace_id.eq(ws.as_string()))
        .filter(webhook_attempts::delivery_id.eq_any(delivery_ids))
        .order((
            webhook_attempts::delivery_id.asc(),
            webhook_attempts::attempt.asc(),
        ))
        .load(conn)?)
}
