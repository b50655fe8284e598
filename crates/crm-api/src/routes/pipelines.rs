//! `/api/v1/pipelines`: the pipelines deals move through, their ordered stages, and the
//! board (deal counts and amounts per stage).
//!
//! Stages are managed through their pipeline: `POST /pipelines/{id}/stages` adds one,
//! `PATCH /pipelines/{id}/stages/{stage_id}` renames, re-weights or archives it,
//! `PUT /pipelines/{id}/stages/order` sets the order from the full list of stage ids and
//! `DELETE /pipelines/{id}/stages/{stage_id}` removes one (its deals first move to
//! `move_to_stage_id`). Every stage change bumps the pipeline's `version` and honours
//! `If-Match` on it.

use crate::auth::{Auth, Principal};
use crate::batch::read_as;
use crate::dto::common::{text, utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{etag, id_page, id_page_params, parse_json, IfMatch, QueryPairs, RawJson};
use crate::records::{self, Change};
use crate::routes::deals::Deals;
use crate::state::AppState;
use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use crm_db::models::{DealRow, PipelineRow, StageRow};
use crm_db::repo::bulk::rows_by_id;
use crm_db::repo::deals::BoardFilter;
use crm_db::repo::pipelines as repo;
use crm_db::DbConnection;
use crm_domain::deals::{from_scaled, round_money, weighted, StageKind, DEFAULT_STAGES};
use crm_domain::values_time::now;
use crm_domain::{new_id, FieldError, Permission, WorkspaceId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;
use validator::Validate;

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 50;

/// A stage of a pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stage {
    pub id: String,
    pub name: String,
    /// 0 for the first stage; stages are listed in this order.
    pub position: i32,
    /// Win probability in percent (0–100), the weight of the stage's deals in forecasts.
    pub probability: i32,
    pub kind: StageKind,
    /// An archived stage keeps its deals but accepts no new ones.
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StageRow> for Stage {
    fn from(s: StageRow) -> Self {
        Stage {
            kind: StageKind::parse(&s.kind).unwrap_or(StageKind::Open),
            archived_at: s.archived_at.map(utc),
            created_at: utc(s.created_at),
            updated_at: utc(s.updated_at),
            id: s.id,
            name: s.name,
            position: s.position,
            probability: s.probability,
        }
    }
}

/// A pipeline with its stages in order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    /// The pipeline new deals go to when they name none; exactly one per workspace.
    pub is_default: bool,
    pub stages: Vec<Stage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    /// +1 on each change of the pipeline or of one of its stages.
    pub version: i32,
}

/// A page of pipelines, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelinePage {
    pub data: Vec<Pipeline>,
    pub next_cursor: Option<String>,
}

/// A new stage.
#[derive(Debug, Clone, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Demo", "probability": 40, "kind": "open", "position": 2}))]
pub struct StageInput {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: i32,
    #[serde(default = "open")]
    pub kind: StageKind,
    /// Where to insert it (0 = first); at the end when absent.
    #[schema(minimum = 0)]
    pub position: Option<i32>,
}

fn open() -> StageKind {
    StageKind::Open
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Enterprise", "stages": [{"name": "Discovery", "probability": 10}, {"name": "Won", "probability": 100, "kind": "won"}, {"name": "Lost", "probability": 0, "kind": "lost"}]}))]
pub struct CreatePipeline {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: String,
    /// Make this the workspace's default pipeline (the previous default stops being one).
    #[serde(default)]
    pub is_default: bool,
    /// The stages in order, at least one of them `open`; the default sales stages
    /// (Qualification … Won, Lost) when absent.
    #[validate(nested)]
    #[schema(max_items = 50)]
    pub stages: Option<Vec<StageInput>>,
}

/// Changes to a pipeline (merge-patch). `is_default: true` moves the default here; the
/// default is never unset directly.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdatePipeline {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: Option<String>,
    pub is_default: Option<bool>,
}

/// Changes to a stage (merge-patch). `archived: true` archives it: its deals stay and can
/// be read, edited and moved out, but no deal moves in; `false` restores it.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateStage {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub name: Option<String>,
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i32>,
    pub kind: Option<StageKind>,
    pub archived: Option<bool>,
}

/// The new order of a pipeline's stages: every stage id of the pipeline, archived ones
/// included, each once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageOrder {
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 50)]
    pub stage_ids: Vec<String>,
}

fn fail_if(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Loads the pipelines' stages and renders them.
fn render(
    c: &mut DbConnection,
    ws: WorkspaceId,
    rows: Vec<PipelineRow>,
) -> ApiResult<Vec<Pipeline>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut stages = repo::stages_of(c, ws, &ids)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (mine, rest): (Vec<StageRow>, Vec<StageRow>) = std::mem::take(&mut stages)
                .into_iter()
                .partition(|s| s.pipeline_id == r.id);
            stages = rest;
            let mine: Vec<Stage> = mine.into_iter().map(Stage::from).collect();
            Pipeline {
                stages: mine,
                created_at: utc(r.created_at),
                updated_at: utc(r.updated_at),
                archived_at: r.archived_at.map(utc),
                id: r.id,
                name: r.name,
                is_default: r.is_default,
                version: r.version,
            }
        })
        .collect())
}

fn load(c: &mut DbConnection, ws: WorkspaceId, id: &str) -> ApiResult<Pipeline> {
    let row = repo::get(c, ws, id)?;
    render(c, ws, vec![row])?.pop().ok_or(ApiError::NotFound)
}

fn shown(p: &Pipeline) -> ApiResult<Value> {
    serde_json::to_value(p).map_err(ApiError::internal)
}

fn respond(status: actix_web::http::StatusCode, p: Pipeline) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(etag(p.version))
        .json(p)
}

/// Runs `change` on a live pipeline in one transaction after the `If-Match` check, bumps
/// the pipeline's version and records `pipeline.<verb>` with the pipeline before and after.
///
/// `change` returns the changes it made to deals, whose events are written first.
async fn change_pipeline(
    state: &AppState,
    p: Principal,
    id: String,
    if_match: IfMatch,
    verb: &'static str,
    change: impl FnOnce(&mut DbConnection, &Principal, &PipelineRow) -> ApiResult<Vec<Change>>
        + Send
        + 'static,
) -> ApiResult<Pipeline> {
    change_pipeline_in(state, p, id, if_match, verb, false, change).await
}

/// [`change_pipeline`] of a live pipeline, or (`archived`) of an archived one; 404 for the
/// other.
async fn change_pipeline_in(
    state: &AppState,
    p: Principal,
    id: String,
    if_match: IfMatch,
    verb: &'static str,
    archived: bool,
    change: impl FnOnce(&mut DbConnection, &Principal, &PipelineRow) -> ApiResult<Vec<Change>>
        + Send
        + 'static,
) -> ApiResult<Pipeline> {
    p.require(Permission::PipelinesWrite)?;
    state
        .tx(move |c| change_in(c, &p, &id, if_match.0, verb, archived, change))
        .await
}

/// The work of [`change_pipeline_in`], in the caller's transaction.
fn change_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    verb: &'static str,
    archived: bool,
    change: impl FnOnce(&mut DbConnection, &Principal, &PipelineRow) -> ApiResult<Vec<Change>>,
) -> ApiResult<Pipeline> {
    let current = repo::get(c, p.workspace, id)?;
    if current.archived_at.is_some() != archived {
        return Err(ApiError::NotFound);
    }
    crm_db::repo::records::check_version(current.version, if_match)?;
    let before = load(c, p.workspace, id)?;
    let deal_changes = change(c, p, &current)?;
    // The change may have written the pipeline row itself (name, default).
    let now_row = repo::get(c, p.workspace, id)?;
    if now_row.version == current.version {
        repo::update(
            c,
            p.workspace,
            &now_row,
            &now_row.name,
            now_row.is_default,
            now_row.archived_at,
        )?;
    }
    let after = load(c, p.workspace, id)?;
    records::flush::<Deals>(c, p, deal_changes)?;
    crate::events::record(
        c,
        p,
        "pipeline",
        verb,
        id,
        Some(&shown(&before)?),
        Some(&shown(&after)?),
    )?;
    Ok(after)
}

/// List pipelines, oldest first, with their stages.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines", operation_id = "list_pipelines",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 36),
        ("archived" = Option<bool>, Query, description = "List archived pipelines instead")),
    responses((status = 200, description = "A page of pipelines", body = PipelinePage), ReadErrors), security(("bearer" = [])))]
#[get("/pipelines")]
pub async fn list_pipelines(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<PipelinePage>> {
    p.require(Permission::DealsRead)?;
    let archived = match q.0.iter().find(|(k, _)| k == "archived") {
        Some((_, v)) => crate::extract::bool_param("archived", v)?,
        None => false,
    };
    let rest = QueryPairs(q.0.into_iter().filter(|(k, _)| k != "archived").collect());
    let (limit, cursor) = id_page_params(&rest)?;
    let page = state
        .db(move |c| {
            let rows = repo::list(c, p.workspace, archived, cursor.as_deref(), limit)?;
            let (rows, next) = id_page(rows, limit, |r| &r.id);
            Ok(PipelinePage {
                data: render(c, p.workspace, rows)?,
                next_cursor: next,
            })
        })
        .await?;
    Ok(web::Json(page))
}

/// Create a pipeline (admins and managers).
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines", operation_id = "create_pipeline", request_body = CreatePipeline,
    responses((status = 201, description = "Created", body = Pipeline, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/pipelines")]
pub async fn create_pipeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::PipelinesWrite)?;
    let input: CreatePipeline = parse_json(&body.0)?;
    let pipeline = state.tx(move |c| create_in(c, &p, input)).await?;
    let location = format!("/api/v1/pipelines/{}", pipeline.id);
    let mut res = respond(actix_web::http::StatusCode::CREATED, pipeline);
    res.headers_mut().insert(
        actix_web::http::header::LOCATION,
        actix_web::http::header::HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// Creates a pipeline in the caller's transaction.
fn create_in(c: &mut DbConnection, p: &Principal, input: CreatePipeline) -> ApiResult<Pipeline> {
    let mut errors = validate_input(&input);
    let name = input.name.trim().to_string();
    if name.is_empty() {
        errors.push(FieldError::new("name", "required", "must not be blank"));
    }
    let stages: Vec<(String, i32, StageKind)> = match &input.stages {
        Some(s) => s
            .iter()
            .map(|s| (s.name.trim().to_string(), s.probability, s.kind))
            .collect(),
        None => DEFAULT_STAGES
            .iter()
            .map(|(n, pr, k)| (n.to_string(), *pr, *k))
            .collect(),
    };
    if stages.len() > MAX_STAGES {
        errors.push(FieldError::new(
            "stages",
            "too_many",
            format!("a pipeline has at most {MAX_STAGES} stages"),
        ));
    }
    if !stages.iter().any(|s| s.2 == StageKind::Open) {
        errors.push(FieldError::new(
            "stages",
            "no_open_stage",
            "a pipeline needs at least one open stage",
        ));
    }
    for (i, s) in stages.iter().enumerate() {
        if s.0.is_empty() {
            errors.push(FieldError::new(
                format!("stages[{i}].name"),
                "required",
                "must not be blank",
            ));
        }
    }
    fail_if(errors)?;
    let ws = p.workspace.as_string();
    let t = now();
    let row = PipelineRow {
        workspace_id: ws.clone(),
        id: new_id().to_string(),
        name,
        is_default: false,
        created_at: t,
        updated_at: t,
        archived_at: None,
        version: 1,
    };
    let stage_rows: Vec<StageRow> = stages
        .iter()
        .enumerate()
        .map(|(i, (n, pr, k))| repo::new_stage(&ws, &row.id, n, i as i32, *pr, k.as_str(), t))
        .collect();
    repo::insert(c, &row, &stage_rows)?;
    if input.is_default {
        repo::update(c, p.workspace, &row, &row.name, true, None)?;
    }
    let out = load(c, p.workspace, &row.id)?;
    crate::events::record(
        c,
        p,
        "pipeline",
        "created",
        &row.id,
        None,
        Some(&shown(&out)?),
    )?;
    Ok(out)
}

/// Get a pipeline with its stages.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "pipelines", operation_id = "get_pipeline", params(("id" = String, Path)),
    responses((status = 200, description = "The pipeline", body = Pipeline, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/pipelines/{id}")]
pub async fn get_pipeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::DealsRead)?;
    let id = id.into_inner();
    let pipeline = state.db(move |c| load(c, p.workspace, &id)).await?;
    Ok(respond(actix_web::http::StatusCode::OK, pipeline))
}

/// Rename a pipeline or make it the default (merge-patch).
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}", tag = "pipelines", operation_id = "update_pipeline",
    request_body(content = UpdatePipeline, content_type = "application/merge-patch+json"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the pipeline changed since")),
    responses((status = 200, description = "The pipeline", body = Pipeline, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/pipelines/{id}")]
pub async fn update_pipeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::PipelinesWrite)?;
    let input: UpdatePipeline = parse_json(&body.0)?;
    let id = id.into_inner();
    let pipeline = state
        .tx(move |c| update_in(c, &p, &id, if_match.0, input))
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, pipeline))
}

/// Applies a pipeline's merge patch in the caller's transaction.
fn update_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    input: UpdatePipeline,
) -> ApiResult<Pipeline> {
    let mut errors = validate_input(&input);
    let name = text(input.name.clone());
    if input.name.is_some() && name.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "required", "must not be blank"));
    }
    if input.is_default == Some(false) {
        errors.push(FieldError::new(
            "is_default",
            "invalid_value",
            "a workspace always has a default pipeline: make another pipeline the default instead",
        ));
    }
    fail_if(errors)?;
    change_in(c, p, id, if_match, "updated", false, move |c, p, cur| {
        let name = name.unwrap_or_else(|| cur.name.clone());
        let is_default = input.is_default.unwrap_or(cur.is_default);
        repo::update(c, p.workspace, cur, &name, is_default, None)?;
        Ok(Vec::new())
    })
}

/// Archive a pipeline: it and its deals stay readable, but no deal moves in. The default
/// pipeline cannot be archived (409): make another one the default first.
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}", tag = "pipelines", operation_id = "delete_pipeline",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Archived"), WriteErrors), security(("bearer" = [])))]
#[delete("/pipelines/{id}")]
pub async fn delete_pipeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::PipelinesWrite)?;
    let id = id.into_inner();
    state
        .tx(move |c| archive_in(c, &p, &id, if_match.0))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Archives a pipeline in the caller's transaction.
fn archive_in(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
) -> ApiResult<Pipeline> {
    change_in(c, p, id, if_match, "archived", false, |c, p, cur| {
        if cur.is_default {
            return Err(ApiError::Conflict {
                message: "the default pipeline cannot be archived; make another pipeline the default first".into(),
                existing_id: None,
            });
        }
        repo::update(c, p.workspace, cur, &cur.name, false, Some(now()))?;
        Ok(Vec::new())
    })
}

/// Pipelines in a batch: each operation as its own endpoint runs it (a delete archives).
pub struct PipelineItems;

impl crate::batch::PlainItems for PipelineItems {
    const WRITE: Permission = Permission::PipelinesWrite;
    const PLURAL: &'static str = "pipelines";

    fn create(c: &mut DbConnection, p: &Principal, data: &Value) -> ApiResult<Value> {
        shown(&create_in(c, p, read_as(data)?)?)
    }

    fn update(c: &mut DbConnection, p: &Principal, id: &str, patch: &Value) -> ApiResult<Value> {
        shown(&update_in(c, p, id, None, read_as(patch)?)?)
    }

    fn delete(c: &mut DbConnection, p: &Principal, id: &str) -> ApiResult<()> {
        archive_in(c, p, id, None).map(drop)
    }
}

/// Create, update and archive up to 1000 pipelines in one request.
#[utoipa::path(post, path = "/api/v1/pipelines/batch", tag = "pipelines", operation_id = "batch_pipelines",
    description = crate::handlers::ITEM_BATCH_DESCRIPTION, request_body = crate::batch::BatchRequest,
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/pipelines/batch")]
pub async fn batch_pipelines(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch_items::<PipelineItems>(state, p, body).await
}

/// Restore an archived pipeline: deals can move into it again. It comes back as it was
/// archived, not the default (404 for a live pipeline).
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/restore", tag = "pipelines", operation_id = "restore_pipeline",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The restored pipeline", body = Pipeline, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/pipelines/{id}/restore")]
pub async fn restore_pipeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let pipeline = change_pipeline_in(
        &state,
        p,
        id.into_inner(),
        if_match,
        "restored",
        true,
        |c, p, cur| {
            repo::update(c, p.workspace, cur, &cur.name, cur.is_default, None)?;
            Ok(Vec::new())
        },
    )
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, pipeline))
}

/// Renumbers stages 0..n in the given order.
fn renumber(c: &mut DbConnection, ws: WorkspaceId, mut stages: Vec<StageRow>) -> ApiResult<()> {
    let t = now();
    for (i, s) in stages.iter_mut().enumerate() {
        if s.position != i as i32 {
            s.position = i as i32;
            s.updated_at = t;
            repo::update_stage(c, ws, s)?;
        }
    }
    Ok(())
}

fn stages_of(c: &mut DbConnection, ws: WorkspaceId, pipeline_id: &str) -> ApiResult<Vec<StageRow>> {
    Ok(repo::stages_of(c, ws, &[pipeline_id.to_string()])?)
}

/// The stage `stage_id` of the pipeline, or 404.
fn stage_in(
    c: &mut DbConnection,
    ws: WorkspaceId,
    pipeline_id: &str,
    stage_id: &str,
) -> ApiResult<StageRow> {
    match repo::get_stage(c, ws, stage_id) {
        Ok(s) if s.pipeline_id == pipeline_id => Ok(s),
        Ok(_) | Err(crm_db::RepoError::NotFound) => Err(ApiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Add a stage to a pipeline.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/stages", tag = "pipelines", operation_id = "create_stage",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The pipeline's ETag")), request_body = StageInput,
    responses((status = 201, description = "The pipeline with the new stage", body = Pipeline, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/pipelines/{id}/stages")]
pub async fn create_stage(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    let input: StageInput = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let name = input.name.trim().to_string();
    if name.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("name", "required", "must not be blank"));
    }
    if input.position.is_some_and(|p| p < 0) {
        errors.push(FieldError::new(
            "position",
            "out_of_range",
            "must be 0 or more",
        ));
    }
    fail_if(errors)?;
    let pipeline = change_pipeline(
        &state,
        p,
        id.into_inner(),
        if_match,
        "updated",
        move |c, p, cur| {
            let mut stages = stages_of(c, p.workspace, &cur.id)?;
            if stages.len() >= MAX_STAGES {
                return Err(ApiError::field(
                    "stages",
                    "too_many",
                    format!("a pipeline has at most {MAX_STAGES} stages"),
                ));
            }
            let at = input
                .position
                .map(|p| (p as usize).min(stages.len()))
                .unwrap_or(stages.len());
            let s = repo::new_stage(
                &p.workspace.as_string(),
                &cur.id,
                &name,
                at as i32,
                input.probability,
                input.kind.as_str(),
                now(),
            );
            // Placed after the others first, then renumbered into place.
            let mut row = s.clone();
            row.position = stages.len() as i32;
            repo::insert_stage(c, &row)?;
            stages.insert(at, row);
            renumber(c, p.workspace, stages)?;
            Ok(Vec::new())
        },
    )
    .await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, pipeline))
}

/// Rename, re-weight, re-kind, archive or restore a stage (merge-patch).
///
/// A stage whose `kind` turns from `open` to `won` or `lost` closes its deals: each one's
/// `closed_at` becomes the time it entered the stage. Turned back to `open`, its deals' `closed_at`
/// is cleared. Each deal changed gets a `deal.updated` event.
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}/stages/{stage_id}", tag = "pipelines", operation_id = "update_stage",
    request_body(content = UpdateStage, content_type = "application/merge-patch+json"),
    params(("id" = String, Path), ("stage_id" = String, Path), ("If-Match" = Option<String>, Header, description = "The pipeline's ETag")),
    responses((status = 200, description = "The pipeline", body = Pipeline, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/pipelines/{id}/stages/{stage_id}")]
pub async fn update_stage(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    let input: UpdateStage = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let name = text(input.name.clone());
    if input.name.is_some() && name.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "required", "must not be blank"));
    }
    fail_if(errors)?;
    let (id, stage_id) = path.into_inner();
    let pipeline = change_pipeline(&state, p, id, if_match, "updated", move |c, p, cur| {
        let mut s = stage_in(c, p.workspace, &cur.id, &stage_id)?;
        let closed = |s: &StageRow| StageKind::parse(&s.kind).is_some_and(|k| k.is_closed());
        let was_closed = closed(&s);
        let t = now();
        if let Some(n) = name {
            s.name = n;
        }
        if let Some(pr) = input.probability {
            s.probability = pr;
        }
        if let Some(k) = input.kind {
            s.kind = k.as_str().to_string();
        }
        match input.archived {
            Some(true) if s.archived_at.is_none() => s.archived_at = Some(t),
            Some(false) => s.archived_at = None,
            _ => {}
        }
        s.updated_at = t;
        repo::update_stage(c, p.workspace, &s)?;
        let live_open = stages_of(c, p.workspace, &cur.id)?
            .iter()
            .any(|s| s.archived_at.is_none() && s.kind == StageKind::Open.as_str());
        if !live_open {
            return Err(ApiError::field(
                "kind",
                "no_open_stage",
                "a pipeline needs at least one live open stage",
            ));
        }
        if closed(&s) == was_closed {
            return Ok(Vec::new());
        }
        // Its deals close (as of when each entered the stage) or open again.
        let ws = p.workspace;
        let ids: Vec<String> = crm_db::repo::deals::ids_in_stage(c, ws, &s.id)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let before: HashMap<String, DealRow> = rows_by_id::<DealRow>(c, "deals", ws, &ids)?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        let changed = crm_db::repo::deals::reclose_stage(c, ws, &s.id, closed(&s))?;
        let mut changes = Vec::with_capacity(changed.len());
        for after in rows_by_id::<DealRow>(c, "deals", ws, &changed)? {
            let was = before.get(&after.id);
            changes.push(records::change::<Deals>(
                "updated",
                &after.id,
                was,
                Some(&after),
            )?);
        }
        Ok(changes)
    })
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, pipeline))
}

/// Set the order of a pipeline's stages.
#[utoipa::path(put, path = "/api/v1/pipelines/{id}/stages/order", tag = "pipelines", operation_id = "order_stages",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The pipeline's ETag")), request_body = StageOrder,
    responses((status = 200, description = "The pipeline in its new order", body = Pipeline, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[put("/pipelines/{id}/stages/order")]
pub async fn order_stages(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    let input: StageOrder = parse_json(&body.0)?;
    let pipeline = change_pipeline(
        &state,
        p,
        id.into_inner(),
        if_match,
        "updated",
        move |c, p, cur| {
            let stages = stages_of(c, p.workspace, &cur.id)?;
            let mut wanted = input.stage_ids.clone();
            wanted.sort();
            let mut have: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
            have.sort();
            if wanted != have {
                return Err(ApiError::field(
                    "stage_ids",
                    "invalid_value",
                    "must list every stage of the pipeline exactly once",
                ));
            }
            let mut ordered = Vec::with_capacity(stages.len());
            let mut stages = stages;
            for id in &input.stage_ids {
                if let Some(i) = stages.iter().position(|s| &s.id == id) {
                    ordered.push(stages.swap_remove(i));
                }
            }
            renumber(c, p.workspace, ordered)?;
            Ok(Vec::new())
        },
    )
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, pipeline))
}

/// Delete a stage. A stage that holds deals (archived ones included) is refused with 409
/// unless `move_to_stage_id` names another live stage of the pipeline: its deals then move
/// there first, each move recorded in the deal's stage history.
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}/stages/{stage_id}", tag = "pipelines", operation_id = "delete_stage",
    params(("id" = String, Path), ("stage_id" = String, Path), ("move_to_stage_id" = Option<String>, Query, max_length = 36),
        ("If-Match" = Option<String>, Header, description = "The pipeline's ETag")),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
#[delete("/pipelines/{id}/stages/{stage_id}")]
pub async fn delete_stage(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    let mut move_to = None;
    for (k, v) in q.0 {
        match k.as_str() {
            // Checked before anything else, so that a malformed id is refused whether or
            // not the stage turns out to hold deals.
            "move_to_stage_id" if uuid::Uuid::parse_str(&v).is_err() => {
                return Err(ApiError::field(
                    "move_to_stage_id",
                    "invalid_value",
                    "must be the id of another stage of this pipeline",
                ))
            }
            "move_to_stage_id" => move_to = Some(v),
            _ => {
                return Err(ApiError::field(
                    &k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    let (id, stage_id) = path.into_inner();
    change_pipeline(&state, p, id, if_match, "updated", move |c, p, cur| {
        let stage = stage_in(c, p.workspace, &cur.id, &stage_id)?;
        let deals = crm_db::repo::deals::ids_in_stage(c, p.workspace, &stage.id)?;
        let mut changes = Vec::new();
        if !deals.is_empty() {
            let Some(target) = move_to else {
                return Err(ApiError::Conflict {
                    message: format!(
                        "the stage holds {} deals: give move_to_stage_id to move them first",
                        deals.len()
                    ),
                    existing_id: None,
                });
            };
            let bad = |m: &str| ApiError::field("move_to_stage_id", "invalid_value", m);
            let to = match repo::get_stage(c, p.workspace, &target) {
                Ok(t) if t.pipeline_id == cur.id && t.id != stage.id => t,
                Ok(_) | Err(crm_db::RepoError::NotFound) => {
                    return Err(bad("must be another stage of this pipeline"))
                }
                Err(e) => return Err(e.into()),
            };
            if to.archived_at.is_some() {
                return Err(bad("the stage is archived"));
            }
            changes = crate::routes::deals::move_all(c, p, &deals, &to)?;
        }
        repo::delete_stage(c, p.workspace, &stage.id)?;
        let rest = stages_of(c, p.workspace, &cur.id)?;
        if !rest
            .iter()
            .any(|s| s.archived_at.is_none() && s.kind == StageKind::Open.as_str())
        {
            return Err(ApiError::Conflict {
                message: "the last live open stage of a pipeline cannot be deleted".into(),
                existing_id: None,
            });
        }
        renumber(c, p.workspace, rest)?;
        Ok(changes)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One currency's deals in a stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    /// ISO 4217; null for deals without an amount.
    pub currency: Option<String>,
    pub deal_count: i64,
    /// The exact sum of the amounts.
    #[schema(example = "300.015")]
    pub total_amount: String,
    /// Σ amount × probability / 100, rounded once to the currency's minor unit (halves
    /// away from zero).
    #[schema(example = "150.01")]
    pub weighted_amount: String,
}

/// A column of the board.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardStage {
    pub id: String,
    pub name: String,
    pub position: i32,
    pub probability: i32,
    pub kind: StageKind,
    pub archived_at: Option<DateTime<Utc>>,
    /// The stage's live deals matching the filters, in every currency (or in `currency`).
    pub deal_count: i64,
    /// With `currency`: the sum of the amounts in it; null without.
    pub total_amount: Option<String>,
    /// With `currency`: the weighted amount in it; null without.
    pub weighted_amount: Option<String>,
    /// The same per currency, one entry per currency present.
    pub totals: Vec<CurrencyTotal>,
}

/// The board of a pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Board {
    pub pipeline_id: String,
    /// The currency asked for, if any.
    pub currency: Option<String>,
    pub stages: Vec<BoardStage>,
}

fn date_param(name: &str, v: &str) -> ApiResult<String> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| ApiError::field(name, "invalid_date", "must be a date like 2027-03-31"))
}

/// The board of a pipeline: per stage, the number of live deals and their total and
/// weighted amounts, from one aggregate query.
///
/// Amounts in different currencies are never added: each stage lists `totals` per
/// currency, and with `currency=EUR` only deals in euros count and `total_amount` and
/// `weighted_amount` give their sums directly. Filters: `owner_id`, and the expected close
/// date between `close_from` and `close_to` (inclusive; deals without a date are left out
/// when either is given).
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/board", tag = "pipelines", operation_id = "pipeline_board",
    params(("id" = String, Path), ("currency" = Option<String>, Query, max_length = 3, min_length = 3),
        ("owner_id" = Option<String>, Query, max_length = 36),
        ("close_from" = Option<String>, Query, max_length = 10, description = "YYYY-MM-DD"),
        ("close_to" = Option<String>, Query, max_length = 10, description = "YYYY-MM-DD")),
    responses((status = 200, description = "The board", body = Board), ReadErrors), security(("bearer" = [])))]
#[get("/pipelines/{id}/board")]
pub async fn pipeline_board(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<Board>> {
    p.require(Permission::DealsRead)?;
    let mut f = BoardFilter::default();
    for (k, v) in q.0 {
        match k.as_str() {
            "currency" => {
                f.currency = Some(
                    crm_domain::values::normalize_currency(&v)
                        .map_err(|m| ApiError::field("currency", "invalid_value", m))?,
                )
            }
            "owner_id" => {
                if v.chars().count() > 36 {
                    return Err(ApiError::field(
                        "owner_id",
                        "too_long",
                        "must be a user id of at most 36 characters",
                    ));
                }
                f.owner_id = Some(v)
            }
            "close_from" => f.close_from = Some(date_param("close_from", &v)?),
            "close_to" => f.close_to = Some(date_param("close_to", &v)?),
            _ => {
                return Err(ApiError::field(
                    &k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    let id = id.into_inner();
    let board = state
        .db(move |c| {
            repo::get(c, p.workspace, &id)?;
            let stages = stages_of(c, p.workspace, &id)?;
            let cells = crm_db::repo::deals::board(c, p.workspace, &id, &f)?;
            let stages = stages
                .into_iter()
                .map(|s| board_stage(s, &cells, f.currency.as_deref()))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Board {
                pipeline_id: id,
                currency: f.currency,
                stages,
            })
        })
        .await?;
    Ok(web::Json(board))
}

fn board_stage(
    s: StageRow,
    cells: &[crm_db::repo::deals::BoardCell],
    currency: Option<&str>,
) -> ApiResult<BoardStage> {
    let mut totals = Vec::new();
    for cell in cells.iter().filter(|c| c.stage_id == s.id) {
        let sum = match &cell.total_micros {
            Some(t) => from_scaled(t).ok_or_else(|| ApiError::internal("bad sum"))?,
            None => Decimal::ZERO,
        };
        let cur = cell.currency.clone().unwrap_or_default();
        totals.push(CurrencyTotal {
            deal_count: cell.deal_count,
            total_amount: sum.normalize().to_string(),
            weighted_amount: weighted(sum, s.probability, &cur).to_string(),
            currency: cell.currency.clone(),
        });
    }
    totals.sort_by(|a, b| a.currency.cmp(&b.currency));
    let deal_count = totals.iter().map(|t| t.deal_count).sum();
    let (total_amount, weighted_amount) = match currency {
        Some(cur) => {
            let mine = totals.iter().find(|t| t.currency.as_deref() == Some(cur));
            match mine {
                Some(t) => (
                    Some(t.total_amount.clone()),
                    Some(t.weighted_amount.clone()),
                ),
                None => {
                    let zero = round_money(Decimal::ZERO, cur).to_string();
                    (Some("0".to_string()), Some(zero))
                }
            }
        }
        None => (None, None),
    };
    Ok(BoardStage {
        kind: StageKind::parse(&s.kind).unwrap_or(StageKind::Open),
        archived_at: s.archived_at.map(utc),
        id: s.id,
        name: s.name,
        position: s.position,
        probability: s.probability,
        deal_count,
        total_amount,
        weighted_amount,
        totals,
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_pipelines)
        .service(create_pipeline)
        .service(batch_pipelines)
        .service(get_pipeline)
        .service(update_pipeline)
        .service(delete_pipeline)
        .service(restore_pipeline)
        .service(create_stage)
        .service(order_stages)
        .service(update_stage)
        .service(delete_stage)
        .service(pipeline_board);
}
