//! `/api/v1/price-books`: price books and the prices they set for products.

use crate::auth::{Auth, Principal};
use crate::dto::products::{
    new_price_book, Price, PriceBook, PriceBookInput, PriceInput, PricePage,
};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{id_page, id_page_params, parse_json, IfMatch, QueryPairs, RawJson};
use crate::listing::{Catalogue, ListParams, Page};
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use crm_db::models::{PriceBookRow, PriceRow};
use crm_db::repo::catalogue as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct PriceBooks;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "price-books",
        resource: RES.get_or_init(repo::price_book_resource),
        relations: &[],
    })
}

impl Record for PriceBooks {
    const OBJECT: &'static str = "price-books";
    const EVENT: &'static str = "price_book";
    const MATCH_ON: &'static [&'static str] = &[];
    const TABLE: &'static str = "price_books";
    const READ: Permission = Permission::ProductsRead;
    const WRITE: Permission = Permission::ProductsWrite;
    type Row = PriceBookRow;
    type Input = PriceBookInput;
    type Dto = PriceBook;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<PriceBookRow, RepoError> {
        repo::get_price_book(conn, ws, id)
    }
    fn version(row: &PriceBookRow) -> i32 {
        row.version
    }
    fn is_archived(row: &PriceBookRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(_: &PriceBookInput) -> Option<&str> {
        None
    }
    fn custom(_: &mut PriceBookInput) -> Map<String, Value> {
        Map::new()
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: PriceBookInput,
        _: Map<String, Value>,
    ) -> ApiResult<PriceBookRow> {
        let row = new_price_book(&p.workspace.as_string(), input.into_changes()?);
        Ok(repo::insert_price_book(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &PriceBookRow,
        input: PriceBookInput,
        _: Map<String, Value>,
    ) -> ApiResult<PriceBookRow> {
        let changes = input.into_changes()?;
        Ok(repo::update_price_book(
            conn,
            p.workspace,
            current,
            &changes,
        )?)
    }
}

/// List price books.
///
/// Filters come as query parameters: `currency=EUR`, `is_default=true`, `active=true`.
/// Price books have no free text: `q` is a 422.
#[utoipa::path(get, path = "/api/v1/price-books", tag = "price-books", operation_id = "list_price_books", params(ListParams),
    responses((status = 200, description = "A page of price books", body = Page<PriceBook>), ReadErrors), security(("bearer" = [])))]
#[get("/price-books")]
pub async fn list_price_books(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<PriceBook>>> {
    records::list::<PriceBooks>(state, p, q).await
}

/// Search price books with the full filter language.
#[utoipa::path(post, path = "/api/v1/price-books/search", tag = "price-books", operation_id = "search_price_books", request_body = crate::listing::SearchRequest,
    responses((status = 200, description = "A page of price books", body = Page<PriceBook>), ReadErrors), security(("bearer" = [])))]
#[post("/price-books/search")]
pub async fn search_price_books(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<web::Json<Page<PriceBook>>> {
    records::search::<PriceBooks>(state, p, body).await
}

/// Create a price book. A second live default for a currency is a 409 naming the
/// current one (`existing_id`).
#[utoipa::path(post, path = "/api/v1/price-books", tag = "price-books", operation_id = "create_price_book", request_body = PriceBookInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat within 24 h")),
    responses((status = 201, description = "Created", body = PriceBook, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/price-books")]
pub async fn create_price_book(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::create::<PriceBooks>(state, p, body).await
}

/// Get a price_book.
#[utoipa::path(get, path = "/api/v1/price-books/{id}", tag = "price-books", operation_id = "get_price_book",
    params(("id" = String, Path), ("archived" = Option<bool>, Query, description = "Also return an archived price_book")),
    responses((status = 200, description = "The price_book", body = PriceBook, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/price-books/{id}")]
pub async fn get_price_book(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::get::<PriceBooks>(state, p, id.into_inner(), q).await
}

/// Update a price_book with a JSON Merge Patch (RFC 7396).
#[utoipa::path(patch, path = "/api/v1/price-books/{id}", tag = "price-books", operation_id = "update_price_book",
    request_body(content = PriceBookInput, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The updated price_book", body = PriceBook, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/price-books/{id}")]
pub async fn update_price_book(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    records::patch::<PriceBooks>(state, p, id.into_inner(), if_match, body).await
}

/// Archive a price book, or erase it with `permanent=true` (admins; its prices go with it).
#[utoipa::path(delete, path = "/api/v1/price-books/{id}", tag = "price-books", operation_id = "delete_price_book",
    params(("id" = String, Path), ("permanent" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Archived or erased"), WriteErrors), security(("bearer" = [])))]
#[delete("/price-books/{id}")]
pub async fn delete_price_book(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    records::delete::<PriceBooks>(state, p, id.into_inner(), if_match, q).await
}

/// Restore an archived price_book.
#[utoipa::path(post, path = "/api/v1/price-books/{id}/restore", tag = "price-books", operation_id = "restore_price_book", params(("id" = String, Path)),
    responses((status = 200, description = "The restored price_book", body = PriceBook), WriteErrors), security(("bearer" = [])))]
#[post("/price-books/{id}/restore")]
pub async fn restore_price_book(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    records::restore::<PriceBooks>(state, p, id.into_inner()).await
}

/// The live price book `id`, or 404.
fn live_book(c: &mut DbConnection, ws: WorkspaceId, id: &str) -> ApiResult<PriceBookRow> {
    let book = repo::get_price_book(c, ws, id)?;
    if book.archived_at.is_some() {
        return Err(ApiError::NotFound);
    }
    Ok(book)
}

/// The prices a price book sets, by product id.
#[utoipa::path(get, path = "/api/v1/price-books/{id}/prices", tag = "price-books", operation_id = "list_prices",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of prices", body = PricePage), ReadErrors), security(("bearer" = [])))]
#[get("/price-books/{id}/prices")]
pub async fn list_prices(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<PricePage>> {
    p.require(Permission::ProductsRead)?;
    let (limit, cursor) = id_page_params(&q)?;
    let id = id.into_inner();
    let (book, rows) = state
        .db(move |c| {
            let book = live_book(c, p.workspace, &id)?;
            let rows = repo::list_prices(c, p.workspace, &id, cursor.as_deref(), limit + 1)?;
            Ok((book, rows))
        })
        .await?;
    let (rows, next_cursor) = id_page(rows, limit, |r| &r.product_id);
    let data = rows
        .into_iter()
        .map(|r| Price::new(r, &book.currency))
        .collect();
    Ok(web::Json(PricePage { data, next_cursor }))
}

/// Set a product's price in a price book (in the book's currency).
///
/// Creates the price (201) or replaces it (200); repeating the same price changes
/// nothing. Emits `price_book.price_set` when the price changes.
#[utoipa::path(put, path = "/api/v1/price-books/{id}/prices/{product_id}", tag = "price-books", operation_id = "set_price",
    request_body = PriceInput,
    params(("id" = String, Path), ("product_id" = String, Path)),
    responses((status = 200, description = "The price, replaced", body = Price), (status = 201, description = "The price, created", body = Price), WriteErrors), security(("bearer" = [])))]
#[put("/price-books/{id}/prices/{product_id}")]
pub async fn set_price(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ProductsWrite)?;
    let input: PriceInput = parse_json(&body.0)?;
    let unit_price = crm_domain::money::normalize_price(&input.unit_price)
        .map_err(|m| ApiError::field("unit_price", "invalid_value", m))?;
    let (id, product_id) = path.into_inner();
    let (created, price) = state
        .tx(move |c| {
            let book = live_book(c, p.workspace, &id)?;
            let product = repo::get_product(c, p.workspace, &product_id)?;
            if product.archived_at.is_some() {
                return Err(ApiError::NotFound);
            }
            let now = crm_domain::values_time::now();
            let row = PriceRow {
                workspace_id: p.workspace.as_string(),
                price_book_id: id.clone(),
                product_id,
                unit_price,
                created_at: now,
                updated_at: now,
            };
            let before = repo::set_price(c, p.workspace, &row)?;
            let after = match &before {
                Some(b) if b.unit_price == row.unit_price => b.clone(),
                Some(b) => PriceRow {
                    created_at: b.created_at,
                    ..row
                },
                None => row,
            };
            let shown = |r: &PriceRow| serde_json::to_value(Price::new(r.clone(), &book.currency));
            let (old, new) = (
                before
                    .as_ref()
                    .map(shown)
                    .transpose()
                    .map_err(ApiError::internal)?,
                shown(&after).map_err(ApiError::internal)?,
            );
            if old.as_ref() != Some(&new) {
                crate::events::record(
                    c,
                    &p,
                    "price_book",
                    "price_set",
                    &id,
                    old.as_ref(),
                    Some(&new),
                )?;
            }
            Ok((before.is_none(), Price::new(after, &book.currency)))
        })
        .await?;
    Ok(if created {
        HttpResponse::Created().json(price)
    } else {
        HttpResponse::Ok().json(price)
    })
}

/// Remove a product's price from a price book. Emits `price_book.price_removed`.
#[utoipa::path(delete, path = "/api/v1/price-books/{id}/prices/{product_id}", tag = "price-books", operation_id = "delete_price",
    params(("id" = String, Path), ("product_id" = String, Path)),
    responses((status = 204, description = "Removed"), WriteErrors), security(("bearer" = [])))]
#[delete("/price-books/{id}/prices/{product_id}")]
pub async fn delete_price(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ProductsWrite)?;
    let (id, product_id) = path.into_inner();
    state
        .tx(move |c| {
            let book = live_book(c, p.workspace, &id)?;
            let before = repo::delete_price(c, p.workspace, &id, &product_id)?;
            let old = serde_json::to_value(Price::new(before, &book.currency))
                .map_err(ApiError::internal)?;
            crate::events::record(c, &p, "price_book", "price_removed", &id, Some(&old), None)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_price_books)
        .service(search_price_books)
        .service(create_price_book)
        .service(get_price_book)
        .service(update_price_book)
        .service(delete_price_book)
        .service(restore_price_book)
        .service(list_prices)
        .service(set_price)
        .service(delete_price);
}
