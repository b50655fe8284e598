//! `/api/v1/assignment-rules`: who owns a new record. When a lead is created without an
//! owner, the first active rule of its object (by `position`) whose filter matches the lead
//! picks one: always the same user (`fixed`), or each active user of a list or a team in
//! turn (`round_robin`). Every write of a rule records its event
//! (`assignment_rule.created`, `.updated`, `.deleted`), so the audit log shows who changed
//! how records are routed.

use crate::auth::{Auth, Principal};
use crate::batch::read_as;
use crate::dto::common::{json_list, parse_list, text, utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{etag, parse_json, IfMatch, QueryPairs, RawJson};
use crate::listing::{check_filter, Catalogue};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::{AssignmentRuleChanges, AssignmentRuleRow};
use crm_db::repo::assignment_rules as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::records::{AssignmentObject, AssignmentStrategy};
use crm_domain::{new_id, FieldError, Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

/// Most rules per object.
pub const MAX_RULES: i64 = 100;
/// Most users a round-robin list may hold.
pub const MAX_USERS: usize = 1000;

/// The writable fields of a rule: the body of `POST /assignment-rules`, and the shape a
/// `PATCH` merge-patch is applied to. `fixed` needs `user_id`; `round_robin` needs
/// `user_ids` or `team_id` (its members, by id). Every named user must be active.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Web leads to inside sales", "position": 10, "object": "leads", "filter": {"field": "source", "op": "eq", "value": "web_form"}, "strategy": "round_robin", "user_ids": ["01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01", "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02"]}))]
pub struct AssignmentRuleInput {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: Option<String>,
    /// Rules are tried in ascending position (then by id); default 0.
    #[serde(default)]
    pub position: i32,
    /// Inactive rules are skipped; default true.
    #[serde(default = "yes")]
    pub active: bool,
    /// The records the rule assigns; default `leads`.
    pub object: Option<AssignmentObject>,
    /// The records the rule applies to, in the filter language of the object's search;
    /// absent or null: every record.
    #[schema(value_type = Option<crate::listing::Filter>)]
    pub filter: Option<Value>,
    pub strategy: Option<AssignmentStrategy>,
    /// With `fixed`: the user who gets every matching record.
    #[schema(max_length = 36)]
    pub user_id: Option<String>,
    /// With `round_robin`: the users who take turns, in this order.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 1000)]
    pub user_ids: Vec<String>,
    /// With `round_robin`, instead of `user_ids`: the team whose members take turns.
    #[schema(max_length = 36)]
    pub team_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// An assignment rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentRule {
    pub id: String,
    pub name: String,
    pub position: i32,
    pub active: bool,
    pub object: AssignmentObject,
    #[schema(value_type = Option<crate::listing::Filter>)]
    pub filter: Option<Value>,
    pub strategy: AssignmentStrategy,
    pub user_id: Option<String>,
    pub user_ids: Vec<String>,
    pub team_id: Option<String>,
    /// How many records the rule has assigned in turn (round robin).
    pub assigned_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// The rules of an object, in the order they are tried.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentRuleList {
    pub data: Vec<AssignmentRule>,
}

fn object_of(r: &AssignmentRuleRow) -> AssignmentObject {
    AssignmentObject::parse(&r.object).unwrap_or(AssignmentObject::Leads)
}

fn strategy_of(r: &AssignmentRuleRow) -> AssignmentStrategy {
    AssignmentStrategy::parse(&r.strategy).unwrap_or(AssignmentStrategy::Fixed)
}

fn filter_of(r: &AssignmentRuleRow) -> Option<Value> {
    r.filter
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
}

impl From<AssignmentRuleRow> for AssignmentRule {
    fn from(r: AssignmentRuleRow) -> Self {
        AssignmentRule {
            object: object_of(&r),
            strategy: strategy_of(&r),
            filter: filter_of(&r),
            user_ids: parse_list(&r.user_ids),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            id: r.id,
            name: r.name,
            position: r.position,
            active: r.active,
            user_id: r.user_id,
            team_id: r.team_id,
            assigned_count: r.assigned_count,
            version: r.version,
        }
    }
}

impl From<&AssignmentRuleRow> for AssignmentRuleInput {
    fn from(r: &AssignmentRuleRow) -> Self {
        AssignmentRuleInput {
            name: Some(r.name.clone()),
            position: r.position,
            active: r.active,
            object: Some(object_of(r)),
            filter: filter_of(r),
            strategy: Some(strategy_of(r)),
            user_id: r.user_id.clone(),
            user_ids: parse_list(&r.user_ids),
            team_id: r.team_id.clone(),
        }
    }
}

/// The catalogue an object's rules filter against.
fn catalogue_of(o: AssignmentObject) -> &'static Catalogue {
    match o {
        AssignmentObject::Leads => super::leads::catalogue(),
    }
}

fn user_error(
    field: String,
    user: &Result<crm_db::models::UserRow, RepoError>,
) -> Option<FieldError> {
    match user {
        Ok(u) if u.active => None,
        Ok(_) => Some(FieldError::new(
            field,
            "inactive_user",
            "the user has been deactivated",
        )),
        Err(_) => Some(FieldError::new(
            field,
            "not_found",
            "no user with this id in the workspace",
        )),
    }
}

/// Validates a rule against the workspace (users, team, filter) into its columns.
fn checked(
    c: &mut DbConnection,
    ws: WorkspaceId,
    input: AssignmentRuleInput,
) -> ApiResult<AssignmentRuleChanges> {
    let mut errors = validate_input(&input);
    let name = text(input.name);
    if name.is_none() && !errors.iter().any(|e| e.field == "name") {
        errors.push(FieldError::new("name", "required", "a rule needs a name"));
    }
    let object = input.object.unwrap_or(AssignmentObject::Leads);
    let user_id = input.user_id.filter(|u| !u.is_empty());
    let team_id = input.team_id.filter(|t| !t.is_empty());
    let mut user_ids: Vec<String> = Vec::new();
    for u in input.user_ids {
        if !user_ids.contains(&u) {
            user_ids.push(u);
        }
    }
    let refuse = |field: &str, message: &str| FieldError::new(field, "invalid_value", message);
    match input.strategy {
        None => errors.push(FieldError::new(
            "strategy",
            "required",
            "`fixed` or `round_robin`",
        )),
        Some(AssignmentStrategy::Fixed) => {
            if user_id.is_none() {
                errors.push(FieldError::new(
                    "user_id",
                    "required",
                    "a fixed rule names its user",
                ));
            }
            if !user_ids.is_empty() {
                errors.push(refuse(
                    "user_ids",
                    "a fixed rule takes `user_id`, not `user_ids`",
                ));
            }
            if team_id.is_some() {
                errors.push(refuse(
                    "team_id",
                    "a fixed rule takes `user_id`, not `team_id`",
                ));
            }
        }
        Some(AssignmentStrategy::RoundRobin) => {
            if user_id.is_some() {
                errors.push(refuse(
                    "user_id",
                    "a round-robin rule takes `user_ids` or `team_id`",
                ));
            }
            match (user_ids.is_empty(), team_id.is_some()) {
                (true, false) => errors.push(FieldError::new(
                    "user_ids",
                    "required",
                    "a round-robin rule needs `user_ids` or `team_id`",
                )),
                (false, true) => {
                    errors.push(refuse("team_id", "give `user_ids` or `team_id`, not both"))
                }
                _ => {}
            }
            if user_ids.len() > MAX_USERS {
                errors.push(refuse("user_ids", "at most 1000 users"));
            }
        }
    }
    if let Some(u) = &user_id {
        let found = crm_db::repo::access::get_user(c, ws, u);
        errors.extend(user_error("user_id".into(), &found));
    }
    for (i, u) in user_ids.iter().enumerate().take(MAX_USERS) {
        let found = crm_db::repo::access::get_user(c, ws, u);
        errors.extend(user_error(format!("user_ids[{i}]"), &found));
    }
    if let Some(t) = &team_id {
        if let Err(RepoError::NotFound) = crm_db::repo::teams::get(c, ws, t) {
            errors.push(FieldError::new(
                "team_id",
                "not_found",
                "no team with this id in the workspace",
            ));
        }
    }
    let filter = match input.filter {
        None | Some(Value::Null) => None,
        Some(f) => match check_filter(c, catalogue_of(object), ws, &f) {
            Ok(_) => Some(f.to_string()),
            Err(ApiError::Validation(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(e) => return Err(e),
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(AssignmentRuleChanges {
        name: name.unwrap_or_default(),
        object: object.as_str().to_string(),
        position: input.position,
        active: input.active,
        filter,
        strategy: input
            .strategy
            .unwrap_or(AssignmentStrategy::Fixed)
            .as_str()
            .to_string(),
        user_id,
        user_ids: json_list(&user_ids),
        team_id,
    })
}

/// The owner the rules give a new record of `object` shown as `record` (the API's JSON of
/// it), taking a round-robin turn where one applies; None when no rule matches or a
/// matching rule has no active user (the next rule is then tried). Runs in the record's
/// insert transaction.
pub fn assign(
    c: &mut DbConnection,
    ws: WorkspaceId,
    object: AssignmentObject,
    record: &Value,
) -> ApiResult<Option<String>> {
    for rule in repo::list(c, ws, object.as_str(), true)? {
        if let Some(f) = filter_of(&rule) {
            // Stored filters were checked when saved; one that no longer parses matches nothing.
            match crm_domain::filter::parse(&f, "filter") {
                Ok(node) if crm_domain::filter::matches(&node, record) => {}
                _ => continue,
            }
        }
        let candidates: Vec<String> = match (&rule.team_id, &rule.user_id) {
            (Some(team), _) => crm_db::repo::teams::member_ids(c, ws, std::slice::from_ref(team))?
                .into_iter()
                .map(|(_, u)| u)
                .collect(),
            (None, Some(u)) => vec![u.clone()],
            (None, None) => parse_list(&rule.user_ids),
        };
        let eligible = repo::active_users(c, ws, &candidates)?;
        if eligible.is_empty() {
            continue;
        }
        let pick = match strategy_of(&rule) {
            AssignmentStrategy::Fixed => 0,
            AssignmentStrategy::RoundRobin => {
                let turn = repo::take_turn(c, ws, &rule.id)?;
                (turn.rem_euclid(eligible.len() as i64)) as usize
            }
        };
        return Ok(eligible.get(pick).cloned());
    }
    Ok(None)
}

fn respond(status: actix_web::http::StatusCode, row: AssignmentRuleRow) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(etag(row.version))
        .json(AssignmentRule::from(row))
}

/// List the assignment rules of an object in the order they are tried.
#[utoipa::path(get, path = "/api/v1/assignment-rules", tag = "assignment-rules", operation_id = "list_assignment_rules",
    params(("object" = Option<AssignmentObject>, Query, description = "Default `leads`")),
    responses((status = 200, description = "The rules, by position (at most 100 per object)", body = AssignmentRuleList), ReadErrors), security(("bearer" = [])))]
#[get("/assignment-rules")]
pub async fn list_assignment_rules(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<AssignmentRuleList>> {
    p.require(Permission::LeadsRead)?;
    let mut object = AssignmentObject::Leads;
    for (k, v) in &q.0 {
        match (k.as_str(), AssignmentObject::parse(v)) {
            ("object", Some(o)) => object = o,
            ("object", None) => {
                return Err(ApiError::field(
                    "object",
                    "invalid_value",
                    "must be `leads`",
                ))
            }
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    let rows = state
        .db(move |c| Ok(repo::list(c, p.workspace, object.as_str(), false)?))
        .await?;
    Ok(web::Json(AssignmentRuleList {
        data: rows.into_iter().map(AssignmentRule::from).collect(),
    }))
}

/// Create an assignment rule (admins and managers).
#[utoipa::path(post, path = "/api/v1/assignment-rules", tag = "assignment-rules", operation_id = "create_assignment_rule", request_body = AssignmentRuleInput,
    responses((status = 201, description = "Created", body = AssignmentRule, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/assignment-rules")]
pub async fn create_assignment_rule(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::AssignmentRulesWrite)?;
    let input: AssignmentRuleInput = parse_json(&body.0)?;
    let row = state.tx(move |c| create_in(c, &p, input)).await?;
    let location = format!("/api/v1/assignment-rules/{}", row.id);
    let mut res = respond(actix_web::http::StatusCode::CREATED, row);
    res.headers_mut().insert(
        actix_web::http::header::LOCATION,
        actix_web::http::header::HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// Get an assignment rule.
#[utoipa::path(get, path = "/api/v1/assignment-rules/{id}", tag = "assignment-rules", operation_id = "get_assignment_rule", params(("id" = String, Path)),
    responses((status = 200, description = "The rule", body = AssignmentRule, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/assignment-rules/{id}")]
pub async fn get_assignment_rule(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::LeadsRead)?;
    let id = id.into_inner();
    let row = state
        .db(move |c| Ok(repo::get(c, p.workspace, &id)?))
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, row))
}

/// Update an assignment rule with a JSON Merge Patch (admins and managers).
#[utoipa::path(patch, path = "/api/v1/assignment-rules/{id}", tag = "assignment-rules", operation_id = "update_assignment_rule",
    request_body(content = AssignmentRuleInput, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the rule changed since")),
    responses((status = 200, description = "The rule", body = AssignmentRule, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/assignment-rules/{id}")]
pub async fn update_assignment_rule(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::AssignmentRulesWrite)?;
    let patch: Value = parse_json(&body.0)?;
    if !patch.is_object() {
        return Err(ApiError::field(
            "body",
            "invalid_type",
            "a merge patch must be a JSON object",
        ));
    }
    let id = id.into_inner();
    let row = state
        .tx(move |c| update_in(c, &p, &id, if_match.0, &patch))
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, row))
}

/// Delete an assignment rule (admins and managers).
#[utoipa::path(delete, path = "/api/v1/assignment-rules/{id}", tag = "assignment-rules", operation_id = "delete_assignment_rule",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the rule changed since")),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
#[delete("/assignment-rules/{id}")]
pub async fn delete_assignment_rule(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::AssignmentRulesWrite)?;
    let id = id.into_inner();
    state.tx(move |c| delete_in(c, &p, &id, if_match.0)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The type of a rule's events: `assignment_rule.created`, `.updated`, `.deleted`.
const EVENT: &str = "assignment_rule";

/// Creates a rule in the caller's transaction.
fn create_in(
    c: &mut DbConnection,
    p: &Principal,
    input: AssignmentRuleInput,
) -> ApiResult<AssignmentRuleRow> {
    let ws = p.workspace;
    let ch = checked(c, ws, input)?;
    if repo::count(c, ws, &ch.object)? >= MAX_RULES {
        return Err(ApiError::field(
            "object",
            "too_many",
            format!("at most {MAX_RULES} rules per object"),
        ));
    }
    let now = crm_domain::values_time::now();
    let row = AssignmentRuleRow {
        workspace_id: ws.as_string(),
        id: new_id().to_string(),
        name: ch.name,
        object: ch.object,
        position: ch.position,
        active: ch.active,
        filter: ch.filter,
        strategy: ch.strategy,
        user_id: ch.user_id,
        user_ids: ch.user_ids,
        team_id: ch.team_id,
        assigned_count: 0,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    repo::insert(c, &row)?;
    let after = shown(row.clone())?;
    crate::events::record(c, p, EVENT, "created", &row.id, None, Some(&after))?;
    Ok(row)
}

/// Applies a rule's merge patch in the caller's transaction.
fn update_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    patch: &Value,
) -> ApiResult<AssignmentRuleRow> {
    let ws = p.workspace;
    let cur = repo::get(c, ws, id)?;
    crm_db::repo::records::check_version(cur.version, if_match)?;
    let mut doc =
        serde_json::to_value(AssignmentRuleInput::from(&cur)).map_err(ApiError::internal)?;
    json_patch::merge(&mut doc, patch);
    let ch = checked(c, ws, read_as(&doc)?)?;
    let row = repo::update(c, ws, &cur, &ch)?;
    let (before, after) = (shown(cur)?, shown(row.clone())?);
    crate::events::record(c, p, EVENT, "updated", id, Some(&before), Some(&after))?;
    Ok(row)
}

/// Deletes a rule in the caller's transaction.
fn delete_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
) -> ApiResult<()> {
    let cur = repo::get(c, p.workspace, id)?;
    crm_db::repo::records::check_version(cur.version, if_match)?;
    repo::delete(c, p.workspace, id)?;
    let before = shown(cur)?;
    crate::events::record(c, p, EVENT, "deleted", id, Some(&before), None)
}

/// Assignment rules in a batch: each operation as its own endpoint runs it.
pub struct AssignmentRuleItems;

impl crate::batch::PlainItems for AssignmentRuleItems {
    const WRITE: Permission = Permission::AssignmentRulesWrite;
    const PLURAL: &'static str = "assignment rules";

    fn create(c: &mut DbConnection, p: &Principal, data: &Value) -> ApiResult<Value> {
        shown(create_in(c, p, read_as(data)?)?)
    }

    fn update(c: &mut DbConnection, p: &Principal, id: &str, patch: &Value) -> ApiResult<Value> {
        shown(update_in(c, p, id, None, patch)?)
    }

    fn delete(c: &mut DbConnection, p: &Principal, id: &str) -> ApiResult<()> {
        delete_in(c, p, id, None)
    }
}

fn shown(row: AssignmentRuleRow) -> ApiResult<Value> {
    serde_json::to_value(AssignmentRule::from(row)).map_err(ApiError::internal)
}

/// Create, update and delete up to 1000 assignment rules in one request (admins and
/// managers).
#[utoipa::path(post, path = "/api/v1/assignment-rules/batch", tag = "assignment-rules", operation_id = "batch_assignment_rules",
    description = crate::handlers::ITEM_BATCH_DESCRIPTION, request_body = crate::batch::BatchRequest,
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/assignment-rules/batch")]
pub async fn batch_assignment_rules(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch_items::<AssignmentRuleItems>(state, p, body).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_assignment_rules)
        .service(create_assignment_rule)
        .service(batch_assignment_rules)
        .service(get_assignment_rule)
        .service(update_assignment_rule)
        .service(delete_assignment_rule);
}
