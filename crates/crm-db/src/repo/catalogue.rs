//! The product catalogue: products, price books and the prices a book sets for products.

use super::contacts::{col, record_columns};
use super::records::{ensure_unique, on_unique_race, update_returning};
use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{PriceBookChanges, PriceBookRow, PriceRow, ProductChanges, ProductRow};
use crate::query::{Bind, Resource, SqlBuf};
use crate::schema::{price_book_prices, price_books, products};
use crm_domain::filter::FieldKind;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub fn product_resource() -> Resource {
    let mut columns = vec![
        col("id", "id", FieldKind::Id, false),
        col("sku", "sku", FieldKind::Text, true),
        col("name", "name", FieldKind::Text, true),
        col("description", "description", FieldKind::Text, false),
        col("unit_price", "unit_price", FieldKind::Decimal, true),
        col("currency", "currency", FieldKind::Text, true),
        col("tax_rate", "tax_rate", FieldKind::Decimal, true),
        col("active", "active", FieldKind::Bool, true),
    ];
    columns.extend(record_columns());
    Resource {
        table: "products",
        columns,
        // Kept in step with the free-text indexes of migration `products`.
        text_columns: &["sku", "name"],
        text_relations: &[],
    }
}

pub fn price_book_resource() -> Resource {
    let mut columns = vec![
        col("id", "id", FieldKind::Id, false),
        col("name", "name", FieldKind::Text, true),
        col("currency", "currency", FieldKind::Text, true),
        col("active", "active", FieldKind::Bool, true),
        col("is_default", "is_default", FieldKind::Bool, true),
    ];
    columns.extend(record_columns());
    Resource {
        table: "price_books",
        columns,
        text_columns: &[],
        text_relations: &[],
    }
}

// ---- products ----

record_by_id!(get_product, get_product_locked, products, ProductRow);

/// The products of the workspace among `ids` (archived ones included), in no order.
pub fn products_by_ids(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<Vec<ProductRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT * FROM products WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id IN (");
    b.bind_list(ids.iter().map(|id| Bind::Text(id.clone())));
    b.push(")");
    Ok(b.load(conn)?)
}

pub fn insert_product(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &ProductRow,
) -> RepoResult<ProductRow> {
    ensure_unique(conn, "products", ws, &row.id, &[("sku", Some(&row.sku))])?;
    diesel::insert_into(products::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "products"))?;
    Ok(row.clone())
}

pub fn update_product(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &ProductRow,
    changes: &ProductChanges,
) -> RepoResult<ProductRow> {
    let sku = (changes.sku != current.sku).then_some(changes.sku.as_str());
    ensure_unique(conn, "products", ws, &current.id, &[("sku", sku)])?;
    let now = crm_domain::values_time::now();
    let update = diesel::update(
        products::table
            .filter(products::workspace_id.eq(ws.as_string()))
            .filter(products::id.eq(&current.id))
            .filter(products::version.eq(current.version)),
    )
    .set((
        changes,
        products::updated_at.eq(now),
        products::version.eq(current.version + 1),
    ))
    .returning(products::all_columns);
    update_returning(conn, update, "products", current.version)
}

// ---- price books ----

pub fn get_price_book(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
) -> RepoResult<PriceBookRow> {
    price_books::table
        .filter(price_books::workspace_id.eq(ws.as_string()))
        .filter(price_books::id.eq(id))
        .first::<PriceBookRow>(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// Fails with Conflict when another live price book is the default for `currency`.
fn check_default(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    currency: &str,
    is_default: bool,
) -> RepoResult<()> {
    if !is_default {
        return Ok(());
    }
    let other: Option<String> = price_books::table
        .filter(price_books::workspace_id.eq(ws.as_string()))
        .filter(price_books::currency.eq(currency))
        .filter(price_books::is_default.eq(true))
        .filter(price_books::archived_at.is_null())
        .filter(price_books::id.ne(id))
        .select(price_books::id)
        .first(conn)
        .optional()?;
    match other {
        Some(existing) => Err(RepoError::Conflict {
            field: "is_default".into(),
            message: format!(
                "price book {existing} is already the default for {currency}; unset it first"
            ),
            existing_id: Some(existing),
        }),
        None => Ok(()),
    }
}

pub fn insert_price_book(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &PriceBookRow,
) -> RepoResult<PriceBookRow> {
    check_default(conn, ws, &row.id, &row.currency, row.is_default)?;
    diesel::insert_into(price_books::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "price_books"))?;
    Ok(row.clone())
}

pub fn update_price_book(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &PriceBookRow,
    changes: &PriceBookChanges,
) -> RepoResult<PriceBookRow> {
    check_default(conn, ws, &current.id, &changes.currency, changes.is_default)?;
    let now = crm_domain::values_time::now();
    let n = diesel::update(
        price_books::table
            .filter(price_books::workspace_id.eq(ws.as_string()))
            .filter(price_books::id.eq(&current.id))
            .filter(price_books::version.eq(current.version)),
    )
    .set((
        changes,
        price_books::updated_at.eq(now),
        price_books::version.eq(current.version + 1),
    ))
    .execute(conn)
    .map_err(|e| on_unique_race(e, "price_books"))?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    get_price_book(conn, ws, &current.id)
}

/// The live default price book of a currency, if any.
pub fn default_price_book(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    currency: &str,
) -> RepoResult<Option<PriceBookRow>> {
    Ok(price_books::table
        .filter(price_books::workspace_id.eq(ws.as_string()))
        .filter(price_books::currency.eq(currency))
        .filter(price_books::is_default.eq(true))
        .filter(price_books::archived_at.is_null())
        .first::<PriceBookRow>(conn)
        .optional()?)
}

// ---- prices ----

fn prices_of(
    ws: WorkspaceId,
    book: &str,
) -> price_book_prices::BoxedQuery<'static, crate::conn::MultiBackend> {
    price_book_prices::table
        .filter(price_book_prices::workspace_id.eq(ws.as_string()))
        .filter(price_book_prices::price_book_id.eq(book.to_string()))
        .into_boxed()
}

/// A page of a book's prices, by product id, after `after_product`.
pub fn list_prices(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    book: &str,
    after_product: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<PriceRow>> {
    let mut q = prices_of(ws, book);
    if let Some(a) = after_product {
        q = q.filter(price_book_prices::product_id.gt(a.to_string()));
    }
    Ok(q.order(price_book_prices::product_id.asc())
        .limit(limit)
        .load(conn)?)
}

/// The book's prices of the given products.
pub fn prices_for(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    book: &str,
    product_ids: &[String],
) -> RepoResult<Vec<PriceRow>> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(prices_of(ws, book)
        .filter(price_book_prices::product_id.eq_any(product_ids.to_vec()))
        .load(conn)?)
}

/// Sets a product's price in a book; returns the price before, if there was one.
pub fn set_price(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &PriceRow,
) -> RepoResult<Option<PriceRow>> {
    let before: Option<PriceRow> = prices_of(ws, &row.price_book_id)
        .filter(price_book_prices::product_id.eq(row.product_id.clone()))
        .first(conn)
        .optional()?;
    match &before {
        Some(b) if b.unit_price == row.unit_price => {}
        Some(_) => {
            diesel::update(
                price_book_prices::table
                    .filter(price_book_prices::workspace_id.eq(ws.as_string()))
                    .filter(price_book_prices::price_book_id.eq(&row.price_book_id))
                    .filter(price_book_prices::product_id.eq(&row.product_id)),
            )
            .set((
                price_book_prices::unit_price.eq(&row.unit_price),
                price_book_prices::updated_at.eq(row.updated_at),
            ))
            .execute(conn)?;
        }
        None => {
            diesel::insert_into(price_book_prices::table)
                .values(row)
                .execute(conn)?;
        }
    }
    Ok(before)
}

/// Removes a product's price from a book; returns it, or NotFound.
pub fn delete_price(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    book: &str,
    product: &str,
) -> RepoResult<PriceRow> {
    let before: PriceRow = prices_of(ws, book)
        .filter(price_book_prices::product_id.eq(product.to_string()))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)?;
    diesel::delete(
        price_book_prices::table
            .filter(price_book_prices::workspace_id.eq(ws.as_string()))
            .filter(price_book_prices::price_book_id.eq(book))
            .filter(price_book_prices::product_id.eq(product)),
    )
    .execute(conn)?;
    Ok(before)
}
