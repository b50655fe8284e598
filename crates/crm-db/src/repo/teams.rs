//! Teams: named groups of users, for assignment and reporting.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{TeamMemberRow, TeamRow, UserRow};
use crate::schema::{team_members, teams, users};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub fn list(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after_id: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<TeamRow>> {
    let q = teams::table
        .filter(teams::workspace_id.eq(ws.as_string()))
        .into_boxed();
    page_after_id!(conn, q, teams, after_id, limit)
}

pub fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<TeamRow> {
    teams::table
        .filter(teams::workspace_id.eq(ws.as_string()))
        .filter(teams::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

pub fn insert(conn: &mut DbConnection, ws: WorkspaceId, row: &TeamRow) -> RepoResult<()> {
    super::records::ensure_unique(conn, "teams", ws, &row.id, &[("name", Some(&row.name))])?;
    diesel::insert_into(teams::table)
        .values(row)
        .execute(conn)
        .map_err(|e| super::records::on_unique_race(e, "teams"))?;
    Ok(())
}

/// Renames a team and bumps its version, only if it is still at `expected_version`.
pub fn update(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    expected_version: i32,
    name: &str,
    at: NaiveDateTime,
) -> RepoResult<TeamRow> {
    super::records::ensure_unique(conn, "teams", ws, id, &[("name", Some(name))])?;
    let n = diesel::update(
        teams::table
            .filter(teams::workspace_id.eq(ws.as_string()))
            .filter(teams::id.eq(id))
            .filter(teams::version.eq(expected_version)),
    )
    .set((
        teams::name.eq(name),
        teams::updated_at.eq(at),
        teams::version.eq(expected_version + 1),
    ))
    .execute(conn)
    .map_err(|e| super::records::on_unique_race(e, "teams"))?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: expected_version,
            current: expected_version + 1,
        });
    }
    get(conn, ws, id)
}

pub fn delete(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    diesel::delete(
        team_members::table
            .filter(team_members::workspace_id.eq(ws.as_string()))
            .filter(team_members::team_id.eq(id)),
    )
    .execute(conn)?;
    let n = diesel::delete(
        teams::table
            .filter(teams::workspace_id.eq(ws.as_string()))
            .filter(teams::id.eq(id)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}

/// (team id, user id) pairs of the given teams, in one query, ordered by team then user.
pub fn member_ids(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    team_ids: &[String],
) -> RepoResult<Vec<(String, String)>> {
    Ok(team_members::table
        .filter(team_members::workspace_id.eq(ws.as_string()))
        .filter(team_members::team_id.eq_any(team_ids))
        .order((team_members::team_id.asc(), team_members::user_id.asc()))
        .select((team_members::team_id, team_members::user_id))
        .load(conn)?)
}

/// The users of a team, by name.
pub fn members(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    team_id: &str,
) -> RepoResult<Vec<UserRow>> {
    let ids: Vec<String> = team_members::table
        .filter(team_members::workspace_id.eq(ws.as_string()))
        .filter(team_members::team_id.eq(team_id))
        .select(team_members::user_id)
        .load(conn)?;
    Ok(users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq_any(ids))
        .order((users::name.asc(), users::id.asc()))
        .load(conn)?)
}

/// Of `user_ids`, those that are not users of the workspace.
pub fn unknown_users(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    user_ids: &[String],
) -> RepoResult<Vec<String>> {
    let found: Vec<String> = users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq_any(user_ids))
        .select(users::id)
        .load(conn)?;
    Ok(user_ids
        .iter()
        .filter(|id| !found.contains(id))
        .cloned()
        .collect())
}

/// Adds a member; true when the user was not yet in the team.
pub fn add_member(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    team_id: &str,
    user_id: &str,
    at: NaiveDateTime,
) -> RepoResult<bool> {
    let present: i64 = team_members::table
        .filter(team_members::workspace_id.eq(ws.as_string()))
        .filter(team_members::team_id.eq(team_id))
        .filter(team_members::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    if present > 0 {
        return Ok(false);
    }
    diesel::insert_into(team_members::table)
        .values(&TeamMemberRow {
            workspace_id: ws.as_string(),
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
            created_at: at,
        })
        .execute(conn)?;
    Ok(true)
}

/// Removes a member; true when the user was in the team.
pub fn remove_member(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    team_id: &str,
    user_id: &str,
) -> RepoResult<bool> {
    let n = diesel::delete(
        team_members::table
            .filter(team_members::workspace_id.eq(ws.as_string()))
            .filter(team_members::team_id.eq(team_id))
            .filter(team_members::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Bumps a team's version after its membership changed (so ETags follow members too).
pub fn touch(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    at: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(
        teams::table
            .filter(teams::workspace_id.eq(ws.as_string()))
            .filter(teams::id.eq(id)),
    )
    .set((
        teams::updated_at.eq(at),
        teams::version.eq(teams::version + 1),
    ))
    .execute(conn)?;
    Ok(())
}
