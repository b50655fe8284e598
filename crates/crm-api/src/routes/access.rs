//! Workspaces, sign-in, users and API keys. Changes to users and keys record events:
//! `user.created`, `user.updated`, `user.deactivated`, `user.reactivated` (a new password is
//! named in `changes`, never shown) and `api_key.created`, `api_key.revoked` (never the
//! secret).

use crate::auth::{self, Actor, Auth};
use crate::batch::read_as;
use crate::dto::common::{utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::events::{self, record_shown};
use crate::extract::{id_page, id_page_params, parse_json, IfMatch, QueryPairs, RawJson};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::{ApiKeyRow, RefreshTokenRow, UserChanges, UserRow, WorkspaceRow};
use crm_db::repo::access as repo;
use crm_domain::values::normalize_email;
use crm_domain::values_time::now;
use crm_domain::{new_id, FieldError, Permission, Role, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

/// The type of a user's events.
const USER_EVENT: &str = "user";
/// The type of an API key's events.
const KEY_EVENT: &str = "api_key";

/// Creates a workspace and its first admin.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Sales", "admin_email": "admin@acme.example", "admin_password": "correct horse battery", "admin_name": "Ada Admin"}))]
pub struct CreateWorkspace {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    #[schema(max_length = 254)]
    pub admin_email: String,
    /// 8 to 256 characters.
    #[validate(length(min = 8, max = 256))]
    #[schema(max_length = 256, min_length = 8)]
    pub admin_password: String,
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub admin_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<WorkspaceRow> for Workspace {
    fn from(w: WorkspaceRow) -> Self {
        Workspace {
            id: w.id,
            name: w.name,
            created_at: utc(w.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceCreated {
    pub workspace: Workspace,
    pub admin: User,
}

/// A person who signs in.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "sales")]
    pub role: String,
    /// False once deactivated; a deactivated user's tokens stop working at once.
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Failed password sign-ins in a row since the last successful one.
    pub failed_sign_ins: i32,
    /// While set, password sign-in is refused (429): the account locked after too many
    /// failed sign-ins in a row (`CRM_SIGN_IN_MAX_FAILURES`). Tokens already issued keep
    /// working. An admin unlocks it at once with `PATCH {"locked_until": null}` or by
    /// setting a new password; a successful sign-in after the lock also clears it.
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        let t = now();
        User {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            active: u.active,
            last_login_at: u.last_login_at.map(utc),
            failed_sign_ins: u.failed_sign_ins,
            locked_until: u.locked_until.filter(|l| *l > t).map(utc),
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
            version: u.version,
        }
    }
}

fn checked_email(raw: &str, field: &str, errors: &mut Vec<FieldError>) -> String {
    normalize_email(raw).unwrap_or_else(|m| {
        errors.push(FieldError::new(field, "invalid_email", m));
        String::new()
    })
}

fn fail_if(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn insert_workspace(
    c: &mut crm_db::DbConnection,
    name: &str,
    email: String,
    hash: String,
    admin_name: &str,
) -> ApiResult<(WorkspaceRow, UserRow)> {
    let t = now();
    let ws = WorkspaceRow {
        id: new_id().to_string(),
        name: name.trim().to_string(),
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let admin = UserRow {
        workspace_id: ws.id.clone(),
        id: new_id().to_string(),
        email,
        name: admin_name.trim().to_string(),
        role: Role::Admin.as_str().into(),
        password_hash: hash,
        active: true,
        last_login_at: None,
        created_at: t,
        updated_at: t,
        version: 1,
        failed_sign_ins: 0,
        locked_until: None,
    };
    repo::create_workspace(c, &ws, &admin)?;
    // The first admin is the workspace's first event, made by themselves: nobody else was
    // there yet.
    let first = auth::Principal {
        workspace: ws_of(&admin)?,
        actor: Actor::User {
            id: admin.id.clone(),
            role: Role::Admin,
        },
    };
    let shown = User::from(admin.clone());
    record_shown(
        c,
        &first,
        USER_EVENT,
        "created",
        &admin.id,
        None,
        Some(&shown),
    )?;
    Ok((ws, admin))
}

/// `crm init`: creates a workspace and its admin directly in the database; returns the
/// workspace id. Validation is the same as `POST /workspaces`.
pub fn init_workspace(
    pool: &crm_db::Pool,
    name: &str,
    admin_email: &str,
    admin_password: &str,
    admin_name: &str,
) -> ApiResult<String> {
    let input = CreateWorkspace {
        name: name.into(),
        admin_email: admin_email.into(),
        admin_password: admin_password.into(),
        admin_name: admin_name.into(),
    };
    let mut errors = validate_input(&input);
    let email = checked_email(&input.admin_email, "admin_email", &mut errors);
    fail_if(errors)?;
    let hash = auth::hash_password(admin_password)?;
    let mut conn = pool.get()?;
    let (ws, _) = crm_db::write_tx(&mut conn, |c| {
        insert_workspace(c, name, email, hash, admin_name)
    })?;
    Ok(ws.id)
}

/// Create a workspace and its first admin.
///
/// Open while no workspace exists, or when the server runs with `CRM_OPEN_SIGNUP=true`.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "auth", operation_id = "create_workspace", security(()), request_body = CreateWorkspace,
    responses((status = 201, description = "Created", body = WorkspaceCreated), WriteErrors))]
#[post("/workspaces")]
pub async fn create_workspace(
    state: web::Data<AppState>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    let input: CreateWorkspace = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let email = checked_email(&input.admin_email, "admin_email", &mut errors);
    fail_if(errors)?;
    let password = input.admin_password.clone();
    // Slow on purpose: off the async workers.
    let hash = web::block(move || auth::hash_password(&password)).await??;
    let open = state.config.open_signup;
    let (ws, admin) = state
        .tx(move |c| {
            if !open && repo::count_workspaces(c)? > 0 {
                return Err(ApiError::ForbiddenAction("sign-up is closed: ask an admin of an existing workspace, or start the server with CRM_OPEN_SIGNUP=true".into()));
            }
            insert_workspace(c, &input.name, email, hash, &input.admin_name)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/workspaces/{}", ws.id)))
        .json(WorkspaceCreated {
            workspace: ws.into(),
            admin: admin.into(),
        }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@acme.example", "password": "correct horse battery"}))]
pub struct Login {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 256)]
    pub password: String,
    /// Needed only when the e-mail belongs to users in several workspaces.
    #[schema(max_length = 36)]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Single use: each refresh returns a new one; reusing an old one revokes the whole chain.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn issue_pair(
    state: &AppState,
    c: &mut crm_db::DbConnection,
    ws: WorkspaceId,
    user: &UserRow,
    family: Option<String>,
) -> ApiResult<TokenPair> {
    let role =
        Role::parse(&user.role).ok_or_else(|| ApiError::internal("stored role is unknown"))?;
    let access = auth::issue_access_token(&state.config, ws, &user.id, role)?;
    let refresh_token = auth::new_refresh_token(ws);
    let t = now();
    repo::insert_refresh_token(
        c,
        &RefreshTokenRow {
            workspace_id: ws.as_string(),
            id: new_id().to_string(),
            user_id: user.id.clone(),
            family_id: family.unwrap_or_else(|| new_id().to_string()),
            token_hash: auth::sha256_hex(refresh_token.as_bytes()),
            expires_at: t + chrono::Duration::seconds(state.config.refresh_token_ttl_secs),
            used_at: None,
            revoked_at: None,
            created_at: t,
        },
    )?;
    Ok(TokenPair {
        access_token: access,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.config.access_token_ttl_secs,
    })
}

fn ws_of(row: &UserRow) -> ApiResult<WorkspaceId> {
    uuid::Uuid::parse_str(&row.workspace_id)
        .map(WorkspaceId::from_authenticated)
        .map_err(ApiError::internal)
}

/// Sign in with e-mail and password.
///
/// After `CRM_SIGN_IN_MAX_FAILURES` failed sign-ins in a row (default 10), an account's
/// password sign-in is refused for `CRM_SIGN_IN_LOCK_SECS` (default 300 s), and for twice
/// as long after each further failure, up to an hour: 429 with `Retry-After`, even with
/// the right password. A successful sign-in clears the count. An unknown e-mail and a
/// wrong password answer alike, and take as long.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", security(()), request_body = Login,
    responses((status = 200, description = "Signed in", body = TokenPair),
        (status = 429, description = "Too many failed sign-ins in a row: password sign-in to this account is locked for `Retry-After` seconds",
            body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the lock ends"))),
        WriteErrors))]
#[post("/auth/login")]
pub async fn login(state: web::Data<AppState>, body: RawJson) -> ApiResult<web::Json<TokenPair>> {
    let input: Login = parse_json(&body.0)?;
    let bad = || ApiError::Unauthorized("wrong e-mail or password".into());
    let Ok(email) = normalize_email(&input.email) else {
        return Err(bad());
    };
    let candidates = state
        .db(move |c| Ok(repo::users_by_email(c, &email)?))
        .await?;
    let wanted = input.workspace_id.clone();
    let t = now();
    let (locked, open): (Vec<UserRow>, Vec<UserRow>) = candidates
        .into_iter()
        .filter(|u| wanted.as_deref().is_none_or(|w| w == u.workspace_id))
        .partition(|u| u.locked_until.is_some_and(|l| l > t));
    if open.is_empty() && !locked.is_empty() {
        // A locked account's password is not even checked until the lock ends.
        let ends = locked
            .iter()
            .filter_map(|u| u.locked_until)
            .min()
            .unwrap_or(t);
        return Err(ApiError::SignInLocked {
            retry_after: seconds_until(t, ends),
        });
    }
    let password = input.password.clone();
    // Password checks are slow on purpose: run them off the async workers. Without an
    // account to check, a stand-in hash is checked, so that an unknown e-mail takes as
    // long as a wrong password.
    let (matching, failed): (Vec<UserRow>, Vec<UserRow>) = web::block(move || {
        if open.is_empty() {
            auth::verify_password(&password, auth::stand_in_hash());
        }
        open.into_iter()
            .partition(|u| auth::verify_password(&password, &u.password_hash))
    })
    .await?;
    let user = match matching.len() {
        0 => {
            count_failures(&state, failed).await?;
            return Err(bad());
        }
        1 => matching.into_iter().next().ok_or_else(bad)?,
        _ => {
            return Err(ApiError::field(
                "workspace_id",
                "required",
                "this e-mail signs in to several workspaces: name one",
            ))
        }
    };
    let st = state.clone();
    let pair = state
        .tx(move |c| {
            let ws = ws_of(&user)?;
            repo::touch_login(c, ws, &user.id, now())?;
            issue_pair(&st, c, ws, &user, None)
        })
        .await?;
    Ok(web::Json(pair))
}

/// Whole seconds from `t` to `until`, at least 1.
fn seconds_until(t: chrono::NaiveDateTime, until: chrono::NaiveDateTime) -> u64 {
    let ms = (until - t).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// Counts a failed sign-in against each account whose password did not match, and locks
/// those that reach the limit.
async fn count_failures(state: &web::Data<AppState>, failed: Vec<UserRow>) -> ApiResult<()> {
    let policy = state.config.sign_in_lockout;
    if failed.is_empty() || policy.max_failures == 0 {
        return Ok(());
    }
    state
        .tx(move |c| {
            for u in &failed {
                let ws = ws_of(u)?;
                let failures = repo::count_failed_sign_in(c, ws, &u.id)?;
                if let Some(secs) = policy.lock_after(failures.max(0) as u32) {
                    let until = now() + chrono::Duration::seconds(secs as i64);
                    repo::lock_sign_in(c, ws, &u.id, until)?;
                    tracing::warn!(
                        workspace_id = %u.workspace_id,
                        user_id = %u.id,
                        failures,
                        lock_secs = secs,
                        "password sign-in locked after failed sign-ins in a row"
                    );
                }
            }
            Ok(())
        })
        .await
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// As `/auth/login` or `/auth/refresh` returned it (far shorter than 200 characters).
    #[validate(length(min = 1, max = 200))]
    #[schema(max_length = 200, min_length = 1)]
    pub refresh_token: String,
}

/// Exchange a refresh token for a new pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh", security(()), request_body = RefreshRequest,
    responses((status = 200, description = "A new token pair", body = TokenPair), WriteErrors))]
#[post("/auth/refresh")]
pub async fn refresh(state: web::Data<AppState>, body: RawJson) -> ApiResult<web::Json<TokenPair>> {
    let input: RefreshRequest = parse_json(&body.0)?;
    fail_if(validate_input(&input))?;
    let invalid = || ApiError::Unauthorized("the refresh token is not valid".into());
    let ws = auth::refresh_token_workspace(&input.refresh_token).ok_or_else(invalid)?;
    let hash = auth::sha256_hex(input.refresh_token.as_bytes());
    let st = state.clone();
    // Reuse must revoke the family even though the request fails, so the revocation is
    // committed in its own step.
    let outcome = state
        .tx(move |c| {
            let Some(row) = repo::find_refresh_token(c, ws, &hash)? else {
                return Ok(Err("the refresh token is not valid"));
            };
            let t = now();
            if row.revoked_at.is_some() || row.expires_at <= t {
                return Ok(Err("the refresh token has expired or been revoked"));
            }
            if !repo::use_refresh_token(c, ws, &row.id, t)? {
                repo::revoke_family(c, ws, &row.family_id, t)?;
                return Ok(Err(
                    "the refresh token was already used; its whole chain is now revoked",
                ));
            }
            let user = match repo::get_user(c, ws, &row.user_id) {
                Ok(u) if u.active => u,
                _ => return Ok(Err("the user has been deactivated")),
            };
            Ok(Ok(issue_pair(&st, c, ws, &user, Some(row.family_id))?))
        })
        .await?;
    outcome
        .map(web::Json)
        .map_err(|m| ApiError::Unauthorized(m.into()))
}

/// Revoke a refresh token and every token refreshed from the same sign-in.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout", security(()), request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"), WriteErrors))]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, body: RawJson) -> ApiResult<HttpResponse> {
    let input: RefreshRequest = parse_json(&body.0)?;
    fail_if(validate_input(&input))?;
    if let Some(ws) = auth::refresh_token_workspace(&input.refresh_token) {
        let hash = auth::sha256_hex(input.refresh_token.as_bytes());
        state
            .tx(move |c| {
                if let Some(row) = repo::find_refresh_token(c, ws, &hash)? {
                    repo::revoke_family(c, ws, &row.family_id, now())?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The caller: a user or an API key, with its workspace and permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: String,
    pub workspace: Workspace,
    /// Set for users.
    pub user: Option<User>,
    /// Set for users.
    #[schema(value_type = Option<String>)]
    pub role: Option<String>,
    /// Set for API keys.
    pub api_key_id: Option<String>,
    /// Everything the caller may do.
    pub permissions: Vec<String>,
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", operation_id = "me",
    responses((status = 200, description = "The caller", body = Me), ReadErrors), security(("bearer" = [])))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, Auth(p): Auth) -> ApiResult<web::Json<Me>> {
    let permissions = Permission::ALL
        .iter()
        .filter(|x| p.can(**x))
        .map(|x| x.as_str().to_string())
        .collect();
    let p2 = p.clone();
    let (ws, user) = state
        .db(move |c| {
            let ws = repo::get_workspace(c, p2.workspace)?;
            let user = match p2.user_id() {
                Some(id) => Some(repo::get_user(c, p2.workspace, id)?),
                None => None,
            };
            Ok((ws, user))
        })
        .await?;
    Ok(web::Json(match &p.actor {
        Actor::User { role, .. } => Me {
            kind: "user".into(),
            workspace: ws.into(),
            user: user.map(User::from),
            role: Some(role.as_str().into()),
            api_key_id: None,
            permissions,
        },
        Actor::ApiKey { id, .. } => Me {
            kind: "api_key".into(),
            workspace: ws.into(),
            user: None,
            role: None,
            api_key_id: Some(id.clone()),
            permissions,
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(max_length = 254)]
    pub email: String,
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    /// admin, manager, sales, support or viewer.
    #[schema(example = "sales", max_length = 20)]
    pub role: String,
    #[validate(length(min = 8, max = 256))]
    #[schema(max_length = 256, min_length = 8)]
    pub password: String,
}

/// Changes to a user (merge-patch). Deactivate with `active: false` or `DELETE`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: Option<String>,
    #[schema(max_length = 20)]
    pub role: Option<String>,
    #[validate(length(min = 8, max = 256))]
    #[schema(max_length = 256, min_length = 8)]
    pub password: Option<String>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::dto::common::double_option")]
    #[schema(schema_with = unlock_only)]
    pub locked_until: Option<Option<serde_json::Value>>,
}

/// The schema of `locked_until` in a change: only `null`.
fn unlock_only() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .description(Some(
            "Only `null`: unlocks password sign-in at once and clears `failed_sign_ins`.",
        ))
        .build()
}

/// The filters of a users list, and the paging parameters left.
fn user_filter(q: QueryPairs) -> ApiResult<(repo::UserFilter, QueryPairs)> {
    let mut filter = repo::UserFilter::default();
    let mut page = Vec::new();
    let mut errors = Vec::new();
    let flag = |k: &str, v: &str, errors: &mut Vec<FieldError>| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.push(FieldError::new(k, "invalid_value", "must be true or false"));
            None
        }
    };
    for (k, v) in q.0 {
        match k.as_str() {
            "role" => {
                filter.role = parse_role(&v, &mut errors).map(|r| r.as_str().to_string());
            }
            "active" => filter.active = flag(&k, &v, &mut errors),
            "locked" => filter.locked = flag(&k, &v, &mut errors).map(|l| (l, now())),
            "email" => filter.email = Some(checked_email(&v, "email", &mut errors)),
            "q" if v.chars().count() > 100 => {
                errors.push(FieldError::new("q", "too_long", "at most 100 characters"))
            }
            "q" => filter.text = Some(v.trim().to_string()).filter(|t| !t.is_empty()),
            _ => page.push((k, v)),
        }
    }
    fail_if(errors)?;
    Ok((filter, QueryPairs(page)))
}

fn parse_role(raw: &str, errors: &mut Vec<FieldError>) -> Option<Role> {
    let r = Role::parse(raw);
    if r.is_none() {
        errors.push(FieldError::new(
            "role",
            "invalid_value",
            "must be one of admin, manager, sales, support, viewer",
        ));
    }
    r
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub data: Vec<User>,
    pub next_cursor: Option<String>,
}

/// List the workspace's users, by id; the filters given must all hold.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "list_users",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("role" = Option<String>, Query, description = "admin, manager, sales, support or viewer"),
        ("active" = Option<bool>, Query, description = "`false` lists deactivated users"),
        ("email" = Option<String>, Query, description = "The user with this e-mail (any case)"),
        ("q" = Option<String>, Query, description = "Part of the name or e-mail, any case (at most 100 characters)"),
        ("locked" = Option<bool>, Query, description = "`true` lists users whose password sign-in is locked now")),
    responses((status = 200, description = "Users", body = UserPage), ReadErrors), security(("bearer" = [])))]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<UserPage>> {
    p.require(Permission::UsersRead)?;
    let (filter, page) = user_filter(q)?;
    let (limit, cursor) = id_page_params(&page)?;
    let rows = state
        .db(move |c| {
            Ok(repo::list_users(
                c,
                p.workspace,
                &filter,
                cursor.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    let (rows, next_cursor) = id_page(rows, limit, |u| &u.id);
    Ok(web::Json(UserPage {
        data: rows.into_iter().map(User::from).collect(),
        next_cursor,
    }))
}

/// Add a user (admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "create_user", request_body = CreateUser,
    responses((status = 201, description = "Created", body = User), WriteErrors), security(("bearer" = [])))]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::UsersWrite)?;
    let input: CreateUser = parse_json(&body.0)?;
    let ws = p.workspace;
    // Hashing the password is slow on purpose: off the async workers, before the
    // transaction.
    let row = web::block(move || new_user(ws, &input, None)).await??;
    let user = state.tx(move |c| create_user_in(c, &p, row)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .insert_header(crate::extract::etag(user.version))
        .json(User::from(user)))
}

/// A new user's row, its input checked; `hash` is the password's, when already worked out.
fn new_user(ws: WorkspaceId, input: &CreateUser, hash: Option<String>) -> ApiResult<UserRow> {
    let mut errors = validate_input(input);
    let email = checked_email(&input.email, "email", &mut errors);
    let role = parse_role(&input.role, &mut errors);
    fail_if(errors)?;
    let hash = match hash {
        Some(h) => h,
        None => auth::hash_password(&input.password)?,
    };
    let t = now();
    Ok(UserRow {
        workspace_id: ws.as_string(),
        id: new_id().to_string(),
        email,
        name: input.name.trim().to_string(),
        role: role.map(|r| r.as_str()).unwrap_or("viewer").to_string(),
        password_hash: hash,
        active: true,
        last_login_at: None,
        created_at: t,
        updated_at: t,
        version: 1,
        failed_sign_ins: 0,
        locked_until: None,
    })
}

/// Adds a user in the caller's transaction.
fn create_user_in(
    c: &mut crm_db::DbConnection,
    p: &auth::Principal,
    row: UserRow,
) -> ApiResult<UserRow> {
    let user = repo::insert_user(c, &row)?;
    let shown = User::from(user.clone());
    record_shown(c, p, USER_EVENT, "created", &user.id, None, Some(&shown))?;
    Ok(user)
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "get_user", params(("id" = String, Path)),
    responses((status = 200, description = "The user", body = User), ReadErrors), security(("bearer" = [])))]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::UsersRead)?;
    let id = id.into_inner();
    let user = state
        .db(move |c| Ok(repo::get_user(c, p.workspace, &id)?))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::extract::etag(user.version))
        .json(User::from(user)))
}

/// A change to a user, its input checked and its new password hashed, ready for the
/// transaction.
struct UserChange {
    input: UpdateUser,
    email: Option<String>,
    role: Option<Role>,
    hash: Option<String>,
}

/// Checks a user's change; `hash` is the new password's, when already worked out.
fn checked_change(input: UpdateUser, hash: Option<String>) -> ApiResult<UserChange> {
    let mut errors = validate_input(&input);
    if matches!(input.locked_until, Some(Some(_))) {
        errors.push(FieldError::new(
            "locked_until",
            "invalid_value",
            "can only be set to null, which unlocks password sign-in",
        ));
    }
    let email = input
        .email
        .as_deref()
        .map(|e| checked_email(e, "email", &mut errors));
    let role = input
        .role
        .as_deref()
        .and_then(|r| parse_role(r, &mut errors));
    fail_if(errors)?;
    let hash = match (hash, &input.password) {
        (Some(h), _) => Some(h),
        (None, Some(pw)) => Some(auth::hash_password(pw)?),
        (None, None) => None,
    };
    Ok(UserChange {
        input,
        email,
        role,
        hash,
    })
}

async fn change_user(
    state: web::Data<AppState>,
    p: auth::Principal,
    id: String,
    if_match: Option<i32>,
    input: UpdateUser,
) -> ApiResult<UserRow> {
    let change = web::block(move || checked_change(input, None)).await??;
    let (ws, user_id) = (p.workspace, id.clone());
    let cache = state.auth_cache.clone();
    let changed = state
        .tx(move |c| change_user_in(c, &p, &id, if_match, change, false))
        .await;
    // After the commit, so this process's next request reads the new state.
    cache.forget_user(ws, &user_id);
    changed
}

/// Applies a checked change to a user in the caller's transaction: a workspace keeps an
/// active admin, nobody deactivates themselves, and a deactivation or a new password ends
/// the user's sessions. With `keep_if_same` (an upsert), a change that changes nothing,
/// its password the one the user has included, leaves the user as it is.
fn change_user_in(
    c: &mut crm_db::DbConnection,
    p: &auth::Principal,
    id: &str,
    if_match: Option<i32>,
    change: UserChange,
    keep_if_same: bool,
) -> ApiResult<UserRow> {
    let UserChange {
        mut input,
        email,
        role,
        hash,
    } = change;
    let cur = repo::get_user(c, p.workspace, id)?;
    crm_db::repo::records::check_version(cur.version, if_match)?;
    if keep_if_same
        && input
            .password
            .as_deref()
            .is_some_and(|pw| auth::verify_password(pw, &cur.password_hash))
    {
        // The password the user already has: not a new one (sessions stay).
        input.password = None;
    }
    let hash = hash.filter(|_| input.password.is_some());
    let active = input.active.unwrap_or(cur.active);
    let role = role
        .map(|r| r.as_str().to_string())
        .unwrap_or(cur.role.clone());
    let demotes_admin = cur.role == "admin" && cur.active && (role != "admin" || !active);
    if demotes_admin && repo::count_active_admins(c, p.workspace)? <= 1 {
        return Err(ApiError::Conflict {
            message: "a workspace keeps at least one active admin".into(),
            existing_id: None,
        });
    }
    if p.user_id() == Some(id) && !active {
        return Err(ApiError::Conflict {
            message: "you cannot deactivate yourself".into(),
            existing_id: None,
        });
    }
    let unlock = input.locked_until.is_some() || input.password.is_some();
    let changes = UserChanges {
        email: email.unwrap_or(cur.email.clone()),
        name: input
            .name
            .map(|n| n.trim().to_string())
            .unwrap_or(cur.name.clone()),
        role,
        password_hash: hash.unwrap_or(cur.password_hash.clone()),
        active,
        updated_at: now(),
        version: cur.version + 1,
        failed_sign_ins: if unlock { 0 } else { cur.failed_sign_ins },
        locked_until: if unlock { None } else { cur.locked_until },
    };
    let same = changes.email == cur.email
        && changes.name == cur.name
        && changes.role == cur.role
        && changes.active == cur.active
        && input.password.is_none()
        && changes.failed_sign_ins == cur.failed_sign_ins
        && changes.locked_until == cur.locked_until;
    if keep_if_same && same {
        return Ok(cur);
    }
    let updated = repo::update_user(c, p.workspace, id, cur.version, &changes)?;
    if !active || input.password.is_some() {
        repo::revoke_user_tokens(c, p.workspace, id, now())?;
    }
    let verb = match (cur.active, updated.active) {
        (true, false) => "deactivated",
        (false, true) => "reactivated",
        _ => "updated",
    };
    let shown = |u: UserRow| serde_json::to_value(User::from(u));
    let before = shown(cur).map_err(ApiError::internal)?;
    let after = shown(updated.clone()).map_err(ApiError::internal)?;
    // A new password is named, never shown.
    let note = input
        .password
        .is_some()
        .then(|| ("password", json!("changed")));
    let event =
        events::event_row_noting(p, USER_EVENT, verb, id, Some(&before), Some(&after), note)?;
    crate::events::append_many(c, p.workspace, vec![event])?;
    Ok(updated)
}

/// A change that only deactivates.
fn deactivation() -> UpdateUser {
    UpdateUser {
        email: None,
        name: None,
        role: None,
        password: None,
        active: Some(false),
        locked_until: None,
    }
}

/// Change a user (admins).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", operation_id = "update_user", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = UpdateUser, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The user", body = User), WriteErrors), security(("bearer" = [])))]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::UsersWrite)?;
    let input: UpdateUser = parse_json(&body.0)?;
    let user = change_user(state, p, id.into_inner(), if_match.0, input).await?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::extract::etag(user.version))
        .json(User::from(user)))
}

/// Deactivate a user (admins): their tokens stop working at once.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "deactivate_user", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deactivated"), WriteErrors), security(("bearer" = [])))]
#[delete("/users/{id}")]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::UsersWrite)?;
    change_user(state, p, id.into_inner(), if_match.0, deactivation()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Users in a batch: each operation as its own endpoint runs it (`delete` deactivates), and
/// an `upsert` matches on `email`. Passwords are hashed before the batch's transaction.
pub struct UserItems;

impl crate::batch::ItemWrites for UserItems {
    const WRITE: Permission = Permission::UsersWrite;
    const PLURAL: &'static str = "users";
    /// The hash of the operation's password, when it gives one of a valid length.
    type Scope = ();
    type Ready = Option<String>;

    fn ready(op: &crate::batch::BatchOperation) -> ApiResult<Option<String>> {
        let password = op
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .and_then(|p| p.as_str())
            .filter(|p| (8..=256).contains(&p.chars().count()));
        match (op.op, password) {
            (crate::batch::BatchOp::Delete, _) | (_, None) => Ok(None),
            (_, Some(pw)) => auth::hash_password(pw).map(Some),
        }
    }

    fn create(
        c: &mut crm_db::DbConnection,
        p: &auth::Principal,
        _: &(),
        data: &serde_json::Value,
        hash: Option<String>,
    ) -> ApiResult<serde_json::Value> {
        let row = new_user(p.workspace, &read_as::<CreateUser>(data)?, hash)?;
        shown_user(create_user_in(c, p, row)?)
    }

    fn update(
        c: &mut crm_db::DbConnection,
        p: &auth::Principal,
        _: &(),
        id: &str,
        patch: &serde_json::Value,
        hash: Option<String>,
    ) -> ApiResult<serde_json::Value> {
        changed_by(c, p, id, patch, hash, false)
    }

    fn upsert_found(
        c: &mut crm_db::DbConnection,
        p: &auth::Principal,
        _: &(),
        id: &str,
        data: &serde_json::Value,
        hash: Option<String>,
    ) -> ApiResult<serde_json::Value> {
        changed_by(c, p, id, data, hash, true)
    }

    fn delete(
        c: &mut crm_db::DbConnection,
        p: &auth::Principal,
        _: &(),
        id: &str,
    ) -> ApiResult<()> {
        let change = checked_change(deactivation(), None)?;
        change_user_in(c, p, id, None, change, false).map(drop)
    }

    fn matching(
        c: &mut crm_db::DbConnection,
        p: &auth::Principal,
        _: &(),
        match_on: Option<&str>,
        data: &serde_json::Value,
    ) -> ApiResult<Option<String>> {
        let raw = crate::batch::only_key(match_on, data, "email", Self::PLURAL)?;
        let email =
            normalize_email(raw).map_err(|m| ApiError::field("email", "invalid_email", m))?;
        Ok(repo::user_id_by_email(c, p.workspace, &email)?)
    }

    fn ended(state: &AppState, p: &auth::Principal, ids: &[String]) {
        for id in ids {
            state.auth_cache.forget_user(p.workspace, id);
        }
    }
}

/// A batch item's change to a user (`keep_if_same`: an upsert's), as the user then is.
fn changed_by(
    c: &mut crm_db::DbConnection,
    p: &auth::Principal,
    id: &str,
    data: &serde_json::Value,
    hash: Option<String>,
    keep_if_same: bool,
) -> ApiResult<serde_json::Value> {
    let change = checked_change(read_as(data)?, hash)?;
    shown_user(change_user_in(c, p, id, None, change, keep_if_same)?)
}

fn shown_user(row: UserRow) -> ApiResult<serde_json::Value> {
    serde_json::to_value(User::from(row)).map_err(ApiError::internal)
}

/// Create, update, upsert (on `email`) and deactivate up to 1000 users in one request
/// (admins).
#[utoipa::path(post, path = "/api/v1/users/batch", tag = "users", operation_id = "batch_users",
    description = USER_BATCH_DESCRIPTION, request_body = crate::batch::BatchRequest,
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/users/batch")]
pub async fn batch_users(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch_items::<UserItems>(state, p, body).await
}

/// The description of `POST /users/batch` below its summary.
const USER_BATCH_DESCRIPTION: &str =
    "Each operation runs as its own endpoint would run it (`create` as `POST /users`, `update`\n\
as a `PATCH` merge patch without `If-Match`, `delete` as `DELETE`, which deactivates), in\n\
order; each result sits at its operation's index. An `upsert` finds the user by `email`\n\
(`match_on` may only be `email`) and applies `data` as a merge patch (200), or creates the\n\
user from it (201; `name`, `role` and `password` then required). An upsert that would\n\
change nothing, its password the user's own included, leaves the user as it is (the same\n\
`version`, no event, sessions kept): a directory sync may send every user every night.\n\
Passwords are hashed before the batch's transaction. Without `atomic`, a failed operation changes nothing and\n\
the others stand; with `atomic: true`, the first failure rolls back all of them (the others\n\
then answer 424).";

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ERP sync", "scopes": ["contacts:read", "contacts:write", "companies:read", "companies:write"]}))]
pub struct CreateApiKey {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    /// Permissions the key carries, e.g. `contacts:read`, `contacts:write`.
    #[schema(value_type = Vec<crate::dto::common::items::Scope>)]
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The key's own budget of requests per minute, instead of the server's
    /// (`CRM_RATE_LIMIT`); 0: unlimited. An integration that needs more (or should get
    /// less) than people do gets a key of its own budget.
    #[validate(range(max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub rate_limit: Option<u32>,
    /// The key's own budget of batches and imports per minute, instead of the server's
    /// (`CRM_RATE_LIMIT_BULK`); 0: unlimited.
    #[validate(range(max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub bulk_rate_limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The last four characters of the secret, to tell keys apart.
    pub last_four: String,
    pub created_by: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The key's own requests per minute (null: the server's budget; 0: unlimited).
    pub rate_limit: Option<i32>,
    /// The key's own batches and imports per minute (null: the server's; 0: unlimited).
    pub bulk_rate_limit: Option<i32>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(k: ApiKeyRow) -> Self {
        ApiKey {
            scopes: serde_json::from_str(&k.scopes).unwrap_or_default(),
            id: k.id,
            name: k.name,
            last_four: k.last_four,
            created_by: k.created_by,
            last_used_at: k.last_used_at.map(utc),
            expires_at: k.expires_at.map(utc),
            created_at: utc(k.created_at),
            rate_limit: k.rate_limit,
            bulk_rate_limit: k.bulk_rate_limit,
        }
    }
}

/// A new key with its secret, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Send as `Authorization: Bearer <secret>`. It cannot be shown again.
    pub secret: String,
}

/// Create an API key (admins).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "create_api_key", request_body = CreateApiKey,
    responses((status = 201, description = "Created; the secret is shown once", body = ApiKeyCreated), WriteErrors), security(("bearer" = [])))]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ApiKeysManage)?;
    let input: CreateApiKey = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let mut scopes = Vec::new();
    for (i, s) in input.scopes.iter().enumerate() {
        match Permission::parse(s) {
            Some(perm) if p.can(perm) => scopes.push(perm.as_str().to_string()),
            Some(_) => errors.push(FieldError::new(
                format!("scopes[{i}]"),
                "not_allowed",
                format!("you cannot grant `{s}`"),
            )),
            None => {
                let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                errors.push(FieldError::new(
                    format!("scopes[{i}]"),
                    "invalid_value",
                    format!("unknown scope `{s}`; known: {}", known.join(", ")),
                ))
            }
        }
    }
    if input.scopes.is_empty() {
        errors.push(FieldError::new(
            "scopes",
            "required",
            "name at least one scope",
        ));
    }
    scopes.dedup();
    fail_if(errors)?;
    let id = new_id();
    let (secret, hash) = auth::new_api_key(p.workspace, id);
    let row = ApiKeyRow {
        workspace_id: p.workspace.as_string(),
        id: id.to_string(),
        name: input.name.trim().to_string(),
        scopes: serde_json::to_string(&scopes).map_err(ApiError::internal)?,
        secret_hash: hash,
        last_four: secret
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        created_by: p.actor_id().to_string(),
        last_used_at: None,
        expires_at: input
            .expires_at
            .map(|t| crm_domain::values_time::truncate_micros(t.naive_utc())),
        revoked_at: None,
        created_at: now(),
        rate_limit: input.rate_limit.and_then(|n| i32::try_from(n).ok()),
        bulk_rate_limit: input.bulk_rate_limit.and_then(|n| i32::try_from(n).ok()),
    };
    let r2 = row.clone();
    state
        .tx(move |c| {
            repo::insert_api_key(c, &r2)?;
            let shown = ApiKey::from(r2.clone());
            record_shown(c, &p, KEY_EVENT, "created", &r2.id, None, Some(&shown))
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/api-keys/{}", row.id)))
        .json(ApiKeyCreated {
            key: row.into(),
            secret,
        }))
}

/// A page of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyPage {
    pub data: Vec<ApiKey>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// List the workspace's active API keys (admins), by id (oldest first).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "list_api_keys",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Keys (without secrets)", body = ApiKeyPage), ReadErrors), security(("bearer" = [])))]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<ApiKeyPage>> {
    p.require(Permission::ApiKeysManage)?;
    let (limit, cursor) = crate::extract::id_page_params(&q)?;
    let rows = state
        .db(move |c| {
            Ok(repo::list_api_keys(
                c,
                p.workspace,
                cursor.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    let (rows, next_cursor) = crate::extract::id_page(rows, limit, |k| &k.id);
    Ok(web::Json(ApiKeyPage {
        data: rows.into_iter().map(ApiKey::from).collect(),
        next_cursor,
    }))
}

/// Revoke an API key (admins); it stops working at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", operation_id = "revoke_api_key", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), WriteErrors), security(("bearer" = [])))]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ApiKeysManage)?;
    let id = id.into_inner();
    let (ws, key_id) = (p.workspace, id.clone());
    let revoked = state
        .tx(move |c| {
            let before = ApiKey::from(repo::get_api_key(c, p.workspace, &id)?);
            repo::revoke_api_key(c, p.workspace, &id, now())?;
            record_shown(c, &p, KEY_EVENT, "revoked", &id, Some(&before), None)
        })
        .await;
    state.auth_cache.forget_api_key(ws, &key_id);
    revoked?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_workspace)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(me)
        .service(list_users)
        .service(batch_users)
        .service(create_user)
        .service(get_user)
        .service(update_user)
        .service(deactivate_user)
        .service(create_api_key)
        .service(list_api_keys)
        .service(revoke_api_key);
}
