//! Work waiting in the background, across all workspaces, for the operations metrics:
//! import jobs queued or running, and webhook deliveries not yet made.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::schema::{imports, webhook_deliveries};
use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;

/// What the background workers have before them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub imports_queued: i64,
    pub imports_running: i64,
    pub deliveries_pending: i64,
    /// When the oldest pending delivery was queued.
    pub oldest_pending_delivery: Option<NaiveDateTime>,
}

/// Reads the backlog (partial indexes on pending work answer both queries).
pub fn read(conn: &mut DbConnection) -> RepoResult<Backlog> {
    let jobs: Vec<(String, i64)> = imports::table
        .filter(imports::status.eq_any(["queued", "running"]))
        .group_by(imports::status)
        .select((imports::status, count_star()))
        .load(conn)?;
    let count_of = |s: &str| {
        jobs.iter()
            .find(|(status, _)| status == s)
            .map_or(0, |(_, n)| *n)
    };
    let (deliveries_pending, oldest_pending_delivery) = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq("pending"))
        .select((count_star(), min(webhook_deliveries::created_at)))
        .first::<(i64, Option<NaiveDateTime>)>(conn)?;
    Ok(Backlog {
        imports_queued: count_of("queued"),
        imports_running: count_of("running"),
        deliveries_pending,
        oldest_pending_delivery,
    })
}
