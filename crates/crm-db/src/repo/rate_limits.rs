//! Rate-limit counters shared by every server process: each adds the requests it counted
//! in a window and reads back the total all processes counted (see the API's
//! `ratelimit` module for the policy).

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::query::{Bind, SqlBuf};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;

/// Requests of one caller and budget in one window.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Hits {
    #[diesel(sql_type = Text)]
    pub workspace_id: String,
    #[diesel(sql_type = Text)]
    pub subject: String,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = BigInt)]
    pub window_start: i64,
    #[diesel(sql_type = BigInt)]
    pub hits: i64,
}

/// Rows per statement (5 parameters each, well under SQLite's limit of 32 766).
const CHUNK: usize = 500;

/// Adds each entry's `hits` to its counter (creating it) and returns the counters' new
/// totals, one multi-row upsert per 500 entries. An entry of 0 hits reads the total.
pub fn add(conn: &mut DbConnection, entries: &[Hits]) -> RepoResult<Vec<Hits>> {
    let mut totals = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(CHUNK) {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("INSERT INTO rate_limit_counters (workspace_id, subject, bucket, window_start, hits) VALUES ");
        for (i, e) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.bind(Bind::Text(e.workspace_id.clone()));
            b.push(", ");
            b.bind(Bind::Text(e.subject.clone()));
            b.push(", ");
            b.bind(Bind::Text(e.bucket.clone()));
            b.push(", ");
            b.bind(Bind::Int(e.window_start));
            b.push(", ");
            b.bind(Bind::Int(e.hits));
            b.push(")");
        }
        b.push(
            " ON CONFLICT (workspace_id, subject, bucket, window_start) \
             DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits \
             RETURNING workspace_id, subject, bucket, window_start, hits",
        );
        totals.extend(b.load::<Hits>(conn)?);
    }
    Ok(totals)
}

/// Deletes the workspace's counters of windows that started before `before`.
pub fn prune(conn: &mut DbConnection, workspace_id: &str, before: i64) -> RepoResult<usize> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("DELETE FROM rate_limit_counters WHERE workspace_id = ");
    b.bind(Bind::Text(workspace_id.to_string()));
    b.push(" AND window_start < ");
    b.bind(Bind::Int(before));
    Ok(b.execute(conn)?)
}
