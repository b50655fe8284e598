//! `/api/v1/teams`: named groups of users, for assignment and reporting. Every write
//! records its event (`team.created`, `team.updated`, `team.deleted`).

use crate::auth::{Auth, Principal};
use crate::batch::read_as;
use crate::dto::common::{utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::events::record_shown;
use crate::extract::{etag, id_page, id_page_params, parse_json, IfMatch, QueryPairs, RawJson};
use crate::routes::access::User;
use crate::state::AppState;
use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::TeamRow;
use crm_db::repo::teams as repo;
use crm_db::DbConnection;
use crm_domain::values_time::now;
use crm_domain::{new_id, FieldError, Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

/// The type of a team's events: `team.created`, `team.updated` (membership included),
/// `team.deleted`.
const EVENT: &str = "team";

/// Most members a team may have.
pub const MAX_MEMBERS: usize = 1000;

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "EMEA inside sales", "member_ids": ["01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"]}))]
pub struct CreateTeam {
    /// Unique in the workspace; 1 to 100 characters.
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    /// Users to put in the team (ids of this workspace's users), at most 1000.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>)]
    pub member_ids: Vec<String>,
}

/// Changes to a team (merge-patch). `member_ids`, when given, replaces the membership.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: Option<String>,
    #[schema(value_type = Option<Vec<crate::dto::common::items::Id>>)]
    pub member_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// The members' user ids, sorted.
    pub member_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// +1 on each change, membership included.
    pub version: i32,
}

impl Team {
    fn new(row: TeamRow, member_ids: Vec<String>) -> Self {
        Team {
            id: row.id,
            name: row.name,
            member_ids,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

/// A page of teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamPage {
    pub data: Vec<Team>,
    pub next_cursor: Option<String>,
}

/// Trims the name and checks the member list (distinct, at most [`MAX_MEMBERS`]); the
/// members' existence is checked against the database in the write transaction.
fn clean_members(ids: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    if out.len() > MAX_MEMBERS {
        errors.push(FieldError::new(
            "member_ids",
            "too_many",
            format!("a team has at most {MAX_MEMBERS} members"),
        ));
    }
    out.sort();
    out
}

fn clean_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    let n = name.trim().to_string();
    if n.is_empty() {
        errors.push(FieldError::new("name", "required", "must not be blank"));
    }
    n
}

/// Replaces the membership of a team with `wanted`; every id must be a user of the workspace.
fn set_members(
    c: &mut DbConnection,
    ws: WorkspaceId,
    team_id: &str,
    wanted: &[String],
) -> ApiResult<()> {
    let unknown = repo::unknown_users(c, ws, wanted)?;
    if !unknown.is_empty() {
        return Err(ApiError::Validation(
            unknown
                .iter()
                .map(|u| {
                    let i = wanted.iter().position(|w| w == u).unwrap_or(0);
                    FieldError::new(
                        format!("member_ids[{i}]"),
                        "not_found",
                        format!("no user `{u}` in this workspace"),
                    )
                })
                .collect(),
        ));
    }
    let current = member_ids_of(c, ws, team_id)?;
    let t = now();
    for old in current.iter().filter(|m| !wanted.contains(m)) {
        repo::remove_member(c, ws, team_id, old)?;
    }
    for new in wanted.iter().filter(|m| !current.contains(m)) {
        repo::add_member(c, ws, team_id, new, t)?;
    }
    Ok(())
}

fn member_ids_of(c: &mut DbConnection, ws: WorkspaceId, team_id: &str) -> ApiResult<Vec<String>> {
    Ok(repo::member_ids(c, ws, &[team_id.to_string()])?
        .into_iter()
        .map(|(_, u)| u)
        .collect())
}

fn load_team(c: &mut DbConnection, ws: WorkspaceId, id: &str) -> ApiResult<Team> {
    let row = repo::get(c, ws, id)?;
    let members = member_ids_of(c, ws, id)?;
    Ok(Team::new(row, members))
}

fn team_response(status: actix_web::http::StatusCode, team: Team) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(etag(team.version))
        .json(team)
}

/// List the workspace's teams, with their members' ids.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", operation_id = "list_teams",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Teams, by id", body = TeamPage), ReadErrors), security(("bearer" = [])))]
#[get("/teams")]
pub async fn list_teams(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<TeamPage>> {
    p.require(Permission::TeamsRead)?;
    let (limit, cursor) = id_page_params(&q)?;
    let (rows, members) = state
        .db(move |c| {
            let rows = repo::list(c, p.workspace, cursor.as_deref(), limit + 1)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            // One query for the members of the whole page.
            let members = repo::member_ids(c, p.workspace, &ids)?;
            Ok((rows, members))
        })
        .await?;
    let (rows, next_cursor) = id_page(rows, limit, |t| &t.id);
    let data = rows
        .into_iter()
        .map(|r| {
            let m = members
                .iter()
                .filter(|(t, _)| *t == r.id)
                .map(|(_, u)| u.clone())
                .collect();
            Team::new(r, m)
        })
        .collect();
    Ok(web::Json(TeamPage { data, next_cursor }))
}

/// Create a team (admins and managers).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", operation_id = "create_team", request_body = CreateTeam,
    responses((status = 201, description = "Created", body = Team, headers(("Location" = String), ("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/teams")]
pub async fn create_team(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::TeamsWrite)?;
    let input: CreateTeam = parse_json(&body.0)?;
    let team = state.tx(move |c| create_in(c, &p, input)).await?;
    let location = format!("/api/v1/teams/{}", team.id);
    let mut res = team_response(actix_web::http::StatusCode::CREATED, team);
    res.headers_mut().insert(
        actix_web::http::header::LOCATION,
        actix_web::http::header::HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// Get a team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "get_team", params(("id" = String, Path)),
    responses((status = 200, description = "The team", body = Team, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/teams/{id}")]
pub async fn get_team(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::TeamsRead)?;
    let id = id.into_inner();
    let team = state.db(move |c| load_team(c, p.workspace, &id)).await?;
    Ok(team_response(actix_web::http::StatusCode::OK, team))
}

/// Rename a team or replace its members (merge-patch; admins and managers).
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "update_team",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the team changed since")),
    request_body(content = UpdateTeam, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The team", body = Team, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/teams/{id}")]
pub async fn update_team(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::TeamsWrite)?;
    let input: UpdateTeam = parse_json(&body.0)?;
    let id = id.into_inner();
    let team = state
        .tx(move |c| update_in(c, &p, &id, if_match.0, input))
        .await?;
    Ok(team_response(actix_web::http::StatusCode::OK, team))
}

/// Delete a team (admins and managers). Its users stay; only the grouping goes.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "delete_team",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the team changed since")),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
#[delete("/teams/{id}")]
pub async fn delete_team(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::TeamsWrite)?;
    let id = id.into_inner();
    crate::records::delete_versioned(&state, p, id, if_match, EVENT, versioned, repo::delete).await
}

/// A team's version and API form.
fn versioned(c: &mut DbConnection, ws: WorkspaceId, id: &str) -> ApiResult<(i32, Team)> {
    let team = load_team(c, ws, id)?;
    Ok((team.version, team))
}

/// Creates a team in the caller's transaction.
fn create_in(c: &mut DbConnection, p: &Principal, input: CreateTeam) -> ApiResult<Team> {
    let mut errors = validate_input(&input);
    let name = clean_name(&input.name, &mut errors);
    let members = clean_members(&input.member_ids, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let t = now();
    let row = TeamRow {
        workspace_id: p.workspace.as_string(),
        id: new_id().to_string(),
        name,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    repo::insert(c, p.workspace, &row)?;
    set_members(c, p.workspace, &row.id, &members)?;
    let team = load_team(c, p.workspace, &row.id)?;
    record_shown(c, p, EVENT, "created", &team.id, None, Some(&team))?;
    Ok(team)
}

/// Applies a team's merge patch in the caller's transaction.
fn update_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    input: UpdateTeam,
) -> ApiResult<Team> {
    let mut errors = validate_input(&input);
    let name = input.name.as_deref().map(|n| clean_name(n, &mut errors));
    let members = input
        .member_ids
        .as_deref()
        .map(|m| clean_members(m, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let before = load_team(c, p.workspace, id)?;
    crm_db::repo::records::check_version(before.version, if_match)?;
    let name = name.unwrap_or(before.name.clone());
    repo::update(c, p.workspace, id, before.version, &name, now())?;
    if let Some(m) = members {
        set_members(c, p.workspace, id, &m)?;
    }
    let after = load_team(c, p.workspace, id)?;
    record_shown(c, p, EVENT, "updated", id, Some(&before), Some(&after))?;
    Ok(after)
}

/// Teams in a batch: each operation as its own endpoint runs it.
pub struct TeamItems;

impl crate::batch::PlainItems for TeamItems {
    const WRITE: Permission = Permission::TeamsWrite;
    const PLURAL: &'static str = "teams";

    fn create(c: &mut DbConnection, p: &Principal, data: &Value) -> ApiResult<Value> {
        shown(create_in(c, p, read_as(data)?)?)
    }

    fn update(c: &mut DbConnection, p: &Principal, id: &str, patch: &Value) -> ApiResult<Value> {
        shown(update_in(c, p, id, None, read_as(patch)?)?)
    }

    fn delete(c: &mut DbConnection, p: &Principal, id: &str) -> ApiResult<()> {
        crate::records::delete_versioned_in(c, p, id, None, EVENT, versioned, repo::delete)
    }
}

fn shown(team: Team) -> ApiResult<Value> {
    serde_json::to_value(team).map_err(ApiError::internal)
}

/// Create, update and delete up to 1000 teams in one request (admins and managers).
#[utoipa::path(post, path = "/api/v1/teams/batch", tag = "teams", operation_id = "batch_teams",
    description = crate::handlers::ITEM_BATCH_DESCRIPTION, request_body = crate::batch::BatchRequest,
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/teams/batch")]
pub async fn batch_teams(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch_items::<TeamItems>(state, p, body).await
}

/// The members of a team, by name.
#[utoipa::path(get, path = "/api/v1/teams/{id}/members", tag = "teams", operation_id = "list_team_members", params(("id" = String, Path)),
    responses((status = 200, description = "The team's users", body = Vec<User>), ReadErrors), security(("bearer" = [])))]
#[get("/teams/{id}/members")]
pub async fn list_team_members(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<User>>> {
    p.require(Permission::TeamsRead)?;
    let id = id.into_inner();
    let users = state
        .db(move |c| {
            repo::get(c, p.workspace, &id)?;
            Ok(repo::members(c, p.workspace, &id)?)
        })
        .await?;
    Ok(web::Json(users.into_iter().map(User::from).collect()))
}

/// Adds (`true`) or removes a member, bumping the team's version when membership changed.
async fn change_member(
    state: web::Data<AppState>,
    p: Principal,
    path: (String, String),
    add: bool,
) -> ApiResult<Team> {
    p.require(Permission::TeamsWrite)?;
    let (team_id, user_id) = path;
    state
        .tx(move |c| {
            let before = load_team(c, p.workspace, &team_id)?;
            let changed = if add {
                crm_db::repo::access::get_user(c, p.workspace, &user_id)?;
                repo::add_member(c, p.workspace, &team_id, &user_id, now())?
            } else {
                repo::remove_member(c, p.workspace, &team_id, &user_id)?
            };
            if !changed {
                return Ok(before);
            }
            repo::touch(c, p.workspace, &team_id, now())?;
            let after = load_team(c, p.workspace, &team_id)?;
            record_shown(
                c,
                &p,
                EVENT,
                "updated",
                &team_id,
                Some(&before),
                Some(&after),
            )?;
            Ok(after)
        })
        .await
}

/// Put a user in a team (idempotent; admins and managers).
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "add_team_member",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "The team, with the user among its members", body = Team, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[put("/teams/{id}/members/{user_id}")]
pub async fn add_team_member(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let team = change_member(state, p, path.into_inner(), true).await?;
    Ok(team_response(actix_web::http::StatusCode::OK, team))
}

/// Take a user out of a team (idempotent; admins and managers).
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "remove_team_member",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "The team, without the user", body = Team, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[delete("/teams/{id}/members/{user_id}")]
pub async fn remove_team_member(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let team = change_member(state, p, path.into_inner(), false).await?;
    Ok(team_response(actix_web::http::StatusCode::OK, team))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_teams)
        .service(create_team)
        .service(batch_teams)
        .service(get_team)
        .service(update_team)
        .service(delete_team)
        .service(list_team_members)
        .service(add_team_member)
        .service(remove_team_member);
}
