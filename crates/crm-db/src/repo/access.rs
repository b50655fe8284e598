//! Workspaces, users, refresh tokens and API keys.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::*;
use crate::schema::{api_keys, refresh_tokens, users, workspaces};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub fn count_workspaces(conn: &mut DbConnection) -> RepoResult<i64> {
    Ok(workspaces::table.count().get_result(conn)?)
}

/// Creates a workspace and its first admin in the caller's transaction.
pub fn create_workspace(
    conn: &mut DbConnection,
    ws: &WorkspaceRow,
    admin: &UserRow,
) -> RepoResult<()> {
    diesel::insert_into(workspaces::table)
        .values(ws)
        .execute(conn)?;
    diesel::insert_into(users::table)
        .values(admin)
        .execute(conn)?;
    super::pipelines::create_default(conn, &ws.id, ws.created_at)?;
    Ok(())
}

pub fn get_workspace(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<WorkspaceRow> {
    workspaces::table
        .find(ws.as_string())
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

// ---- users ----

/// Every active user with this e-mail, in any workspace (login names no workspace).
pub fn users_by_email(conn: &mut DbConnection, email: &str) -> RepoResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .filter(users::active.eq(true))
        .load(conn)?)
}

/// The id of the workspace's user with this e-mail (active or not), if there is one.
pub fn user_id_by_email(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    email: &str,
) -> RepoResult<Option<String>> {
    Ok(users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::email.eq(email))
        .select(users::id)
        .first(conn)
        .optional()?)
}

pub fn get_user(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<UserRow> {
    users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// The role of an active user, for authenticating each request; None when the user is
/// gone or deactivated.
pub fn active_role(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
) -> RepoResult<Option<String>> {
    Ok(users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq(id))
        .filter(users::active.eq(true))
        .select(users::role)
        .first(conn)
        .optional()?)
}

/// Whether each of these users exists in the workspace and is active: (id, active).
pub fn users_active(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<Vec<(String, bool)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        out.extend(
            users::table
                .filter(users::workspace_id.eq(ws.as_string()))
                .filter(users::id.eq_any(chunk))
                .select((users::id, users::active))
                .load::<(String, bool)>(conn)?,
        );
    }
    Ok(out)
}

/// Which of a workspace's users a list shows; every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<String>,
    pub active: Option<bool>,
    /// The e-mail, normalised.
    pub email: Option<String>,
    /// Part of the name or e-mail, any case.
    pub text: Option<String>,
    /// Locked out of password sign-in at `now` (true), or not (false).
    pub locked: Option<(bool, NaiveDateTime)>,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

pub fn list_users(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    filter: &UserFilter,
    after_id: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<UserRow>> {
    let mut q = users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .into_boxed();
    if let Some(role) = &filter.role {
        q = q.filter(users::role.eq(role.clone()));
    }
    if let Some(active) = filter.active {
        q = q.filter(users::active.eq(active));
    }
    if let Some(email) = &filter.email {
        q = q.filter(users::email.eq(email.clone()));
    }
    if let Some(text) = &filter.text {
        let escaped: String = text
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        q = q.filter(
            lower(users::name)
                .like(pattern.clone())
                .escape('\\')
                .or(users::email.like(pattern).escape('\\')),
        );
    }
    match filter.locked {
        Some((true, now)) => q = q.filter(users::locked_until.gt(now)),
        Some((false, now)) => {
            q = q.filter(
                users::locked_until
                    .is_null()
                    .or(users::locked_until.le(now)),
            )
        }
        None => {}
    }
    page_after_id!(conn, q, users, after_id, limit)
}

pub fn insert_user(conn: &mut DbConnection, user: &UserRow) -> RepoResult<UserRow> {
    let ws = WorkspaceId::from_authenticated(
        uuid::Uuid::parse_str(&user.workspace_id).unwrap_or_default(),
    );
    super::records::ensure_unique(conn, "users", ws, &user.id, &[("email", Some(&user.email))])?;
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map_err(|e| super::records::on_unique_race(e, "users"))?;
    Ok(user.clone())
}

pub fn update_user(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    expected_version: i32,
    changes: &UserChanges,
) -> RepoResult<UserRow> {
    super::records::ensure_unique(conn, "users", ws, id, &[("email", Some(&changes.email))])?;
    let n = diesel::update(
        users::table
            .filter(users::workspace_id.eq(ws.as_string()))
            .filter(users::id.eq(id))
            .filter(users::version.eq(expected_version)),
    )
    .set(changes)
    .execute(conn)
    .map_err(|e| super::records::on_unique_race(e, "users"))?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: expected_version,
            current: expected_version + 1,
        });
    }
    get_user(conn, ws, id)
}

pub fn count_active_admins(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<i64> {
    Ok(users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::role.eq("admin"))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)?)
}

/// Notes a successful sign-in: its time, and no failures since.
pub fn touch_login(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    at: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(
        users::table
            .filter(users::workspace_id.eq(ws.as_string()))
            .filter(users::id.eq(id)),
    )
    .set((
        users::last_login_at.eq(at),
        users::failed_sign_ins.eq(0),
        users::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Counts a failed sign-in of the user, in the caller's transaction; the failures in a
/// row, this one included. Concurrent failures each count (the increment is the
/// database's).
pub fn count_failed_sign_in(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<i32> {
    let mine = users::table
        .filter(users::workspace_id.eq(ws.as_string()))
        .filter(users::id.eq(id));
    diesel::update(mine.clone())
        .set(users::failed_sign_ins.eq(users::failed_sign_ins + 1))
        .execute(conn)?;
    Ok(mine.select(users::failed_sign_ins).first(conn)?)
}

/// Refuses the user's password sign-in until `until`.
pub fn lock_sign_in(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    until: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(
        users::table
            .filter(users::workspace_id.eq(ws.as_string()))
            .filter(users::id.eq(id)),
    )
    .set(users::locked_until.eq(until))
    .execute(conn)?;
    Ok(())
}

// ---- refresh tokens ----

pub fn insert_refresh_token(conn: &mut DbConnection, row: &RefreshTokenRow) -> RepoResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh_token(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    hash: &str,
) -> RepoResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::workspace_id.eq(ws.as_string()))
        .filter(refresh_tokens::token_hash.eq(hash))
        .first(conn)
        .optional()?)
}

/// Marks a token used, only if nobody used it first; false means it was already used.
pub fn use_refresh_token(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    at: NaiveDateTime,
) -> RepoResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::workspace_id.eq(ws.as_string()))
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(at))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn revoke_family(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    family_id: &str,
    at: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::workspace_id.eq(ws.as_string()))
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(at))
    .execute(conn)?;
    Ok(())
}

pub fn revoke_user_tokens(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    user_id: &str,
    at: NaiveDateTime,
) -> RepoResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::workspace_id.eq(ws.as_string()))
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(at))
    .execute(conn)?;
    Ok(())
}

// ---- API keys ----

pub fn insert_api_key(conn: &mut DbConnection, row: &ApiKeyRow) -> RepoResult<()> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get_api_key(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<ApiKeyRow> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(ws.as_string()))
        .filter(api_keys::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// A page of the workspace's active keys by id: up to `limit` after `after_id`.
pub fn list_api_keys(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after_id: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<ApiKeyRow>> {
    let q = api_keys::table
        .filter(api_keys::workspace_id.eq(ws.as_string()))
        .filter(api_keys::revoked_at.is_null())
        .into_boxed();
    page_after_id!(conn, q, api_keys, after_id, limit)
}

pub fn revoke_api_key(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    at: NaiveDateTime,
) -> RepoResult<()> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::workspace_id.eq(ws.as_string()))
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(at))
    .execute(conn)?;
    if n == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}
