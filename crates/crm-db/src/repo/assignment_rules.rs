//! Assignment rules and their round-robin rotation.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{AssignmentRuleChanges, AssignmentRuleRow};
use crate::query::{Bind, SqlBuf};
use crate::schema::{assignment_rules as ar, users};
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// The rules of an object, in the order they are tried (position, then id); `active_only`
/// leaves out the switched-off ones.
pub fn list(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
    active_only: bool,
) -> RepoResult<Vec<AssignmentRuleRow>> {
    let mut q = ar::table
        .filter(ar::workspace_id.eq(ws.as_string()))
        .filter(ar::object.eq(object))
        .into_boxed();
    if active_only {
        q = q.filter(ar::active.eq(true));
    }
    Ok(q.order((ar::position.asc(), ar::id.asc())).load(conn)?)
}

pub fn count(conn: &mut DbConnection, ws: WorkspaceId, object: &str) -> RepoResult<i64> {
    Ok(ar::table
        .filter(ar::workspace_id.eq(ws.as_string()))
        .filter(ar::object.eq(object))
        .count()
        .get_result(conn)?)
}

pub fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<AssignmentRuleRow> {
    ar::table
        .filter(ar::workspace_id.eq(ws.as_string()))
        .filter(ar::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

pub fn insert(conn: &mut DbConnection, row: &AssignmentRuleRow) -> RepoResult<()> {
    diesel::insert_into(ar::table).values(row).execute(conn)?;
    Ok(())
}

/// Writes a rule's new state if it is still at `current.version` (the rotation is kept).
pub fn update(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &AssignmentRuleRow,
    changes: &AssignmentRuleChanges,
) -> RepoResult<AssignmentRuleRow> {
    let n = diesel::update(
        ar::table
            .filter(ar::workspace_id.eq(ws.as_string()))
            .filter(ar::id.eq(&current.id))
            .filter(ar::version.eq(current.version)),
    )
    .set((
        changes,
        ar::updated_at.eq(crm_domain::values_time::now()),
        ar::version.eq(current.version + 1),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    get(conn, ws, &current.id)
}

pub fn delete(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    let n = diesel::delete(
        ar::table
            .filter(ar::workspace_id.eq(ws.as_string()))
            .filter(ar::id.eq(id)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}

/// Takes the rule's next round-robin turn: advances its rotation and returns the turn
/// taken (0, 1, 2, …). The update locks the rule's row until the caller's transaction
/// ends, so concurrent creates queue up here and each gets its own turn.
pub fn take_turn(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<i64> {
    #[derive(QueryableByName)]
    struct Turn {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        assigned_count: i64,
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push("UPDATE assignment_rules SET assigned_count = assigned_count + 1 WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id = ");
    b.bind(Bind::Text(id.to_string()));
    b.push(" RETURNING assigned_count");
    let rows: Vec<Turn> = b.load(conn)?;
    rows.first()
        .map(|t| t.assigned_count - 1)
        .ok_or(RepoError::NotFound)
}

/// Of `user_ids`, the active users of the workspace, in the order given.
pub fn active_users(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    user_ids: &[String],
) -> RepoResult<Vec<String>> {
    let active: Vec<String> = users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq_any(user_ids))
        .filter(users::active.eq(true))
        .select(users::id)
        .load(conn)?;
    Ok(user_ids
        .iter()
        .filter(|u| active.contains(u))
        .cloned()
        .collect())
}
