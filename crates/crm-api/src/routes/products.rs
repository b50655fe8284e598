//! `/api/v1/products`: the product catalogue.

use crate::auth::{Auth, Principal};
use crate::dto::products::{new_product, Product, ProductInput};
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{IfMatch, QueryPairs, RawJson};
use crate::listing::{Catalogue, ListParams, Page};
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use crm_db::models::ProductRow;
use crm_db::repo::catalogue as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Products;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "products",
        resource: RES.get_or_init(repo::product_resource),
        relations: &[],
    })
}

impl Record for Products {
    const OBJECT: &'static str = "products";
    const EVENT: &'static str = "product";
    const MATCH_ON: &'static [&'static str] = &["sku"];
    const TABLE: &'static str = "products";
    const READ: Permission = Permission::ProductsRead;
    const WRITE: Permission = Permission::ProductsWrite;
    type Row = ProductRow;
    type Input = ProductInput;
    type Dto = Product;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<ProductRow, RepoError> {
        repo::get_product(conn, ws, id)
    }
    fn version(row: &ProductRow) -> i32 {
        row.version
    }
    fn is_archived(row: &ProductRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(_: &ProductInput) -> Option<&str> {
        None
    }
    fn custom(input: &mut ProductInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: ProductInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ProductRow> {
        let row = new_product(&p.workspace.as_string(), input.into_changes(custom)?);
        Ok(repo::insert_product(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &ProductRow,
        input: ProductInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ProductRow> {
        let changes = input.into_changes(custom)?;
        Ok(repo::update_product(conn, p.workspace, current, &changes)?)
    }
}

/// List products.
///
/// Filters come as query parameters: `active=true`, `currency=EUR`,
/// `unit_price[lte]=100`, `sku[starts_with]=SUP-`; `q` matches sku and name.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", operation_id = "list_products", params(ListParams),
    responses((status = 200, description = "A page of products", body = Page<Product>), ReadErrors), security(("bearer" = [])))]
#[get("/products")]
pub async fn list_products(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<Product>>> {
    records::list::<Products>(state, p, q).await
}

/// Create, update, upsert (`match_on: "sku"`) and archive up to 1000 products in one request.
#[utoipa::path(post, path = "/api/v1/products/batch", tag = "products", operation_id = "batch_products", request_body = crate::batch::BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/products/batch")]
pub async fn batch_products(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    crate::batch::batch::<Products>(state, p, body).await
}

/// Search products with the full filter language.
#[utoipa::path(post, path = "/api/v1/products/search", tag = "products", operation_id = "search_products", request_body = crate::listing::SearchRequest,
    responses((status = 200, description = "A page of products", body = Page<Product>), ReadErrors), security(("bearer" = [])))]
#[post("/products/search")]
pub async fn search_products(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<web::Json<Page<Product>>> {
    records::search::<Products>(state, p, body).await
}

/// Create a product. A `sku` already used in the workspace is a 409 naming the product
/// that holds it (`existing_id`).
#[utoipa::path(post, path = "/api/v1/products", tag = "products", operation_id = "create_product", request_body = ProductInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 201, description = "Created", body = Product, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::create::<Products>(state, p, body).await
}

/// Get a product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", operation_id = "get_product",
    params(("id" = String, Path), ("archived" = Option<bool>, Query, description = "Also return an archived product")),
    responses((status = 200, description = "The product", body = Product, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/products/{id}")]
pub async fn get_product(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::get::<Products>(state, p, id.into_inner(), q).await
}

/// Update a product with a JSON Merge Patch (RFC 7396).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", operation_id = "update_product",
    request_body(content = ProductInput, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The updated product", body = Product, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/products/{id}")]
pub async fn update_product(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::patch::<Products>(state, p, id.into_inner(), if_match, body).await
}

/// Archive a product, or erase it with `permanent=true` (admins; its prices go with it).
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products", operation_id = "delete_product",
    params(("id" = String, Path), ("permanent" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Archived or erased"), WriteErrors), security(("bearer" = [])))]
#[delete("/products/{id}")]
pub async fn delete_product(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::delete::<Products>(state, p, id.into_inner(), if_match, q).await
}

/// Restore an archived product.
#[utoipa::path(post, path = "/api/v1/products/{id}/restore", tag = "products", operation_id = "restore_product", params(("id" = String, Path)),
    responses((status = 200, description = "The restored product", body = Product), WriteErrors), security(("bearer" = [])))]
#[post("/products/{id}/restore")]
pub async fn restore_product(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    records::restore::<Products>(state, p, id.into_inner()).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_products)
        .service(batch_products)
        .service(search_products)
        .service(create_product)
        .service(get_product)
        .service(update_product)
        .service(delete_product)
        .service(restore_product);
}
