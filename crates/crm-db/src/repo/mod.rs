//! Queries, one module per part of the CRM. Each function takes the workspace it works in.

/// Defines `$get`, a record of `$table` by id (NotFound when there is none), and `$locked`,
/// the same with its row locked until the caller's transaction ends, so that a
/// read-modify-write is not overtaken by another: one `SELECT … FOR UPDATE` on PostgreSQL;
/// on SQLite the write transaction already holds the database.
macro_rules! record_by_id {
    ($get:ident, $locked:ident, $table:ident, $row:ty) => {
        pub fn $get(
            conn: &mut crate::conn::DbConnection,
            ws: crm_domain::WorkspaceId,
            id: &str,
        ) -> crate::error::RepoResult<$row> {
            $table::table
                .filter($table::workspace_id.eq(ws.as_string()))
                .filter($table::id.eq(id))
                .first::<$row>(conn)
                .optional()?
                .ok_or(crate::error::RepoError::NotFound)
        }

        #[doc = concat!("[`", stringify!($get), "`], its row locked until the caller's transaction ends.")]
        pub fn $locked(
            conn: &mut crate::conn::DbConnection,
            ws: crm_domain::WorkspaceId,
            id: &str,
        ) -> crate::error::RepoResult<$row> {
            let q = $table::table
                .filter($table::workspace_id.eq(ws.as_string()))
                .filter($table::id.eq(id));
            let row = match conn {
                crate::conn::DbConnection::Pg(pg) => {
                    q.for_update().first::<$row>(pg).optional()?
                }
                crate::conn::DbConnection::Sqlite(_) => q.first::<$row>(conn).optional()?,
            };
            row.ok_or(crate::error::RepoError::NotFound)
        }
    };
}

/// A page of the lists ordered by id alone: the rows of `$query` (a boxed query of `$table`,
/// already filtered) whose id comes after `$after` (the previous page's last id), by id, at
/// most `$limit` of them.
macro_rules! page_after_id {
    ($conn:expr, $query:expr, $table:ident, $after:expr, $limit:expr) => {{
        let mut q = $query;
        if let Some(a) = $after {
            q = q.filter($table::id.gt(a.to_string()));
        }
        Ok(q.order($table::id.asc()).limit($limit).load($conn)?)
    }};
}

pub mod access;
pub mod activities;
pub mod assignment_rules;
pub mod backlog;
pub mod bulk;
pub mod catalogue;
pub mod contacts;
pub mod deals;
pub mod deltas;
pub mod events;
pub mod fields;
pub mod housekeeping;
pub mod idempotency;
pub mod imports;
pub mod leads;
pub mod links;
pub mod merges;
pub mod pipelines;
pub mod quotas;
pub mod quotes;
pub mod rate_limits;
pub mod records;
pub mod teams;
pub mod timeline;
pub mod webhooks;

use diesel::result::{DatabaseErrorKind, Error};

pub fn is_unique_violation(e: &Error) -> bool {
    matches!(
        e,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}
