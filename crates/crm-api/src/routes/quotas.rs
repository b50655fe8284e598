//! `/api/v1/quotas`: what users and teams should close per month or quarter, which the
//! forecast measures attainment against.

use crate::auth::{Auth, Principal};
use crate::dto::quotas::{new_quota, Quota, QuotaInput};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{IfMatch, QueryPairs, RawJson};
use crate::listing::{Catalogue, ListParams, Page};
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use crm_db::models::{QuotaChanges, QuotaRow};
use crm_db::repo::quotas as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Quotas;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "quotas",
        resource: RES.get_or_init(repo::quota_resource),
        relations: &[],
    })
}

/// Checks that the quota's user or team exists in the workspace (422 naming the field).
fn check_holder(conn: &mut DbConnection, ws: WorkspaceId, c: &QuotaChanges) -> ApiResult<()> {
    let missing = |field: &str, what: &str| {
        ApiError::Validation(vec![FieldError::new(
            field,
            "not_found",
            format!("no {what} with this id in the workspace"),
        )])
    };
    if let Some(user) = &c.user_id {
        match crm_db::repo::access::get_user(conn, ws, user) {
            Ok(_) => {}
            Err(RepoError::NotFound) => return Err(missing("user_id", "user")),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(team) = &c.team_id {
        match crm_db::repo::teams::get(conn, ws, team) {
            Ok(_) => {}
            Err(RepoError::NotFound) => return Err(missing("team_id", "team")),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Record for Quotas {
    const OBJECT: &'static str = "quotas";
    const EVENT: &'static str = "quota";
    const MATCH_ON: &'static [&'static str] = &[];
    const TABLE: &'static str = "quotas";
    const READ: Permission = Permission::QuotasRead;
    const WRITE: Permission = Permission::QuotasWrite;
    type Row = QuotaRow;
    type Input = QuotaInput;
    type Dto = Quota;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<QuotaRow, RepoError> {
        repo::get_quota(conn, ws, id)
    }
    fn version(row: &QuotaRow) -> i32 {
        row.version
    }
    fn is_archived(row: &QuotaRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(_: &QuotaInput) -> Option<&str> {
        None
    }
    fn custom(_: &mut QuotaInput) -> Map<String, Value> {
        Map::new()
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: QuotaInput,
        _custom: Map<String, Value>,
    ) -> ApiResult<QuotaRow> {
        let changes = input.into_changes()?;
        check_holder(conn, p.workspace, &changes)?;
        let row = new_quota(&p.workspace.as_string(), changes);
        Ok(repo::insert_quota(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &QuotaRow,
        input: QuotaInput,
        _custom: Map<String, Value>,
    ) -> ApiResult<QuotaRow> {
        let changes = input.into_changes()?;
        check_holder(conn, p.workspace, &changes)?;
        Ok(repo::update_quota(conn, p.workspace, current, &changes)?)
    }
}

/// List quotas.
///
/// Filters come as query parameters: `user_id=…`, `team_id=…`, `period=quarter`,
/// `period_start[gte]=2027-01-01`, `currency=EUR`; sort by `period_start`, `amount`, ….
#[utoipa::path(get, path = "/api/v1/quotas", tag = "quotas", operation_id = "list_quotas", params(ListParams),
    responses((status = 200, description = "A page of quotas", body = Page<Quota>), ReadErrors), security(("bearer" = [])))]
#[get("/quotas")]
pub async fn list_quotas(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<Quota>>> {
    records::list::<Quotas>(state, p, q).await
}

/// Create, update and archive up to 1000 quotas in one request.
#[utoipa::path(post, path = "/api/v1/quotas/batch", tag = "quotas", operation_id = "batch_quotas", request_body = crate::batch::BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/quotas/batch")]
pub async fn batch_quotas(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch::<Quotas>(state, p, body).await
}

/// Search quotas with the full filter language.
#[utoipa::path(post, path = "/api/v1/quotas/search", tag = "quotas", operation_id = "search_quotas", request_body = crate::listing::SearchRequest,
    responses((status = 200, description = "A page of quotas", body = Page<Quota>), ReadErrors), security(("bearer" = [])))]
#[post("/quotas/search")]
pub async fn search_quotas(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<web::Json<Page<Quota>>> {
    records::search::<Quotas>(state, p, body).await
}

/// Create a quota for a user or a team. A second quota for the same user or team, period,
/// `period_start` and currency is a 409 naming the one that exists (`existing_id`).
#[utoipa::path(post, path = "/api/v1/quotas", tag = "quotas", operation_id = "create_quota", request_body = QuotaInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 201, description = "Created", body = Quota, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/quotas")]
pub async fn create_quota(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::create::<Quotas>(state, p, body).await
}

/// Get a quota.
#[utoipa::path(get, path = "/api/v1/quotas/{id}", tag = "quotas", operation_id = "get_quota",
    params(("id" = String, Path), ("archived" = Option<bool>, Query, description = "Also return an archived quota")),
    responses((status = 200, description = "The quota", body = Quota, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/quotas/{id}")]
pub async fn get_quota(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::get::<Quotas>(state, p, id.into_inner(), q).await
}

/// Update a quota with a JSON Merge Patch (RFC 7396).
#[utoipa::path(patch, path = "/api/v1/quotas/{id}", tag = "quotas", operation_id = "update_quota",
    request_body(content = QuotaInput, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The updated quota", body = Quota, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/quotas/{id}")]
pub async fn update_quota(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::patch::<Quotas>(state, p, id.into_inner(), if_match, body).await
}

/// Archive a quota, or erase it with `permanent=true` (admins).
#[utoipa::path(delete, path = "/api/v1/quotas/{id}", tag = "quotas", operation_id = "delete_quota",
    params(("id" = String, Path), ("permanent" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Archived or erased"), WriteErrors), security(("bearer" = [])))]
#[delete("/quotas/{id}")]
pub async fn delete_quota(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::delete::<Quotas>(state, p, id.into_inner(), if_match, q).await
}

/// Restore an archived quota.
#[utoipa::path(post, path = "/api/v1/quotas/{id}/restore", tag = "quotas", operation_id = "restore_quota", params(("id" = String, Path)),
    responses((status = 200, description = "The restored quota", body = Quota), WriteErrors), security(("bearer" = [])))]
#[post("/quotas/{id}/restore")]
pub async fn restore_quota(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    records::restore::<Quotas>(state, p, id.into_inner()).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_quotas)
        .service(batch_quotas)
        .service(search_quotas)
        .service(create_quota)
        .service(get_quota)
        .service(update_quota)
        .service(delete_quota)
        .service(restore_quota);
}
