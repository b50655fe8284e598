//! `/api/v1/price-books`: price books and the prices they set for products.

use crate::auth::{Auth, Principal};
use crate::dto::products::{
    new_price_book, Price, PriceBook, PriceBookInput, PriceInput, PricePage,
};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{id_page, id_page_params, parse_json, QueryPairs, RawJson};
use crate::handlers::record_handlers;
use crate::listing::Catalogue;
use crate::records::Record;
use crate::state::AppState;
use actix_web::{delete, get, put, web, HttpResponse};
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

record_handlers! {
    PriceBooks { dto: PriceBook, input: PriceBookInput, path: "/price-books", tag: "price-books",
                 plural: "price books", singular: "price_book", a: "a price_book" }
    /// List price books.
    ///
    /// Filters come as query parameters: `currency=EUR`, `is_default=true`, `active=true`.
    /// Price books have no free text: `q` is a 422.
    list list_price_books;
    /// Create, update and archive up to 1000 price books in one request (price books have
    /// no field to upsert on).
    batch batch_price_books; search search_price_books;
    /// Create a price book. A second live default for a currency is a 409 naming the
    /// current one (`existing_id`).
    create create_price_book; get get_price_book; update update_price_book;
    /// Archive a price book, or erase it with `permanent=true` (admins; its prices go with it).
    delete delete_price_book; restore restore_price_book;
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
    cfg.configure(record_routes)
        .service(list_prices)
        .service(set_price)
        .service(delete_price);
}
