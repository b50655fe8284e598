//! `/api/v1/companies`: companies (accounts) and their contacts.

use super::contacts::ContactLink;
use crate::auth::{Auth, Principal};
use crate::dto::companies::{new_row, Company, CompanyInput};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{IfMatch, QueryPairs, RawJson};
use crate::listing::{Catalogue, ListParams, Page, SearchRequest};
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use crm_db::models::CompanyRow;
use crm_db::repo::contacts as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Companies;

type RelatedCatalogue = fn() -> &'static Catalogue;
static RELATIONS: &[(&crm_db::query::Relation, RelatedCatalogue)] =
    &[(&repo::COMPANY_CONTACTS, super::contacts::catalogue)];

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "companies",
        resource: RES.get_or_init(repo::company_resource),
        relations: RELATIONS,
    })
}

impl Record for Companies {
    const OBJECT: &'static str = "companies";
    const EVENT: &'static str = "company";
    const TABLE: &'static str = "companies";
    const READ: Permission = Permission::CompaniesRead;
    const WRITE: Permission = Permission::CompaniesWrite;
    type Row = CompanyRow;
    type Input = CompanyInput;
    type Dto = Company;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<CompanyRow, RepoError> {
        repo::get_company(conn, ws, id)
    }
    fn version(row: &CompanyRow) -> i32 {
        row.version
    }
    fn is_archived(row: &CompanyRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &CompanyInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut CompanyInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: CompanyInput,
        custom: Map<String, Value>,
    ) -> ApiResult<CompanyRow> {
        let row = new_row(&p.workspace.as_string(), input.into_changes(custom)?);
        Ok(repo::insert_company(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &CompanyRow,
        input: CompanyInput,
        custom: Map<String, Value>,
    ) -> ApiResult<CompanyRow> {
        let changes = input.into_changes(custom)?;
        Ok(repo::update_company(conn, p.workspace, current, &changes)?)
    }
}

/// List companies.
///
/// Filters come as query parameters: `industry=Retail`, `annual_revenue[gte]=1000000`,
/// `contacts.lifecycle_stage=mature`, `custom.segment=enterprise`.
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", operation_id = "list_companies", params(ListParams),
    responses((status = 200, description = "A page of companies", body = Page<Company>), ReadErrors), security(("bearer" = [])))]
#[get("/companies")]
pub async fn list_companies(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<Company>>> {
    records::list::<Companies>(state, p, q).await
}

/// Search companies with the full filter language.
#[utoipa::path(post, path = "/api/v1/companies/search", tag = "companies", operation_id = "search_companies", request_body = SearchRequest,
    responses((status = 200, description = "A page of companies", body = Page<Company>), ReadErrors), security(("bearer" = [])))]
#[post("/companies/search")]
pub async fn search_companies(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<web::Json<Page<Company>>> {
    records::search::<Companies>(state, p, body).await
}

/// Create a company.
#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", operation_id = "create_company", request_body = CompanyInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 201, description = "Created", body = Company, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/companies")]
pub async fn create_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::create::<Companies>(state, p, body).await
}

/// Get a company.
#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "companies", operation_id = "get_company",
    params(("id" = String, Path), ("archived" = Option<bool>, Query, description = "Also return an archived company")),
    responses((status = 200, description = "The company", body = Company, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/companies/{id}")]
pub async fn get_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::get::<Companies>(state, p, id.into_inner(), q).await
}

/// Update a company with a JSON Merge Patch (RFC 7396).
#[utoipa::path(patch, path = "/api/v1/companies/{id}", tag = "companies", operation_id = "update_company",
    request_body(content = CompanyInput, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The updated company", body = Company, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/companies/{id}")]
pub async fn update_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::patch::<Companies>(state, p, id.into_inner(), if_match, body).await
}

/// Archive a company, or erase it with `permanent=true` (admins).
#[utoipa::path(delete, path = "/api/v1/companies/{id}", tag = "companies", operation_id = "delete_company",
    params(("id" = String, Path), ("permanent" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Archived or erased"), WriteErrors), security(("bearer" = [])))]
#[delete("/companies/{id}")]
pub async fn delete_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::delete::<Companies>(state, p, id.into_inner(), if_match, q).await
}

/// Restore an archived company.
#[utoipa::path(post, path = "/api/v1/companies/{id}/restore", tag = "companies", operation_id = "restore_company", params(("id" = String, Path)),
    responses((status = 200, description = "The restored company", body = Company), WriteErrors), security(("bearer" = [])))]
#[post("/companies/{id}/restore")]
pub async fn restore_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    records::restore::<Companies>(state, p, id.into_inner()).await
}

/// The contacts linked to a company.
#[utoipa::path(get, path = "/api/v1/companies/{id}/contacts", tag = "companies", operation_id = "list_company_contacts", params(("id" = String, Path)),
    responses((status = 200, description = "Linked contacts", body = Vec<ContactLink>), ReadErrors), security(("bearer" = [])))]
#[get("/companies/{id}/contacts")]
pub async fn list_company_contacts(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<ContactLink>>> {
    p.require(Permission::CompaniesRead)?;
    p.require(Permission::ContactsRead)?;
    let id = id.into_inner();
    let links = state
        .db(move |c| {
            let co = repo::get_company(c, p.workspace, &id)?;
            if co.archived_at.is_some() {
                return Err(ApiError::NotFound);
            }
            Ok(repo::links_of_company(c, p.workspace, &id)?)
        })
        .await?;
    Ok(web::Json(
        links
            .into_iter()
            .map(|(l, ct)| ContactLink {
                contact: ct.into(),
                role: l.role,
                is_primary: l.is_primary,
                linked_at: crate::dto::common::utc(l.created_at),
            })
            .collect(),
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_companies)
        .service(search_companies)
        .service(create_company)
        .service(get_company)
        .service(update_company)
        .service(delete_company)
        .service(restore_company)
        .service(list_company_contacts);
}
