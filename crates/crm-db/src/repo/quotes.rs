//! Quotes and their lines.

use super::contacts::{col, enum_kind, record_columns};
use crate::conn::{DbConnection, MultiBackend};
use crate::error::{RepoError, RepoResult};
use crate::models::{QuoteChanges, QuoteLineRow, QuoteRow};
use crate::query::{Bind, Resource, SqlBuf};
use crate::schema::{quote_lines, quotes};
use crm_domain::filter::FieldKind;
use crm_domain::quotes::QuoteStatus;
use crm_domain::WorkspaceId;
use diesel::deserialize::{self, QueryableByName};
use diesel::prelude::*;
use diesel::row::NamedRow;

/// A quote with its lines. Lists read the quote alone (`lines: None`); a single quote is
/// read with its lines.
#[derive(Debug, Clone)]
pub struct QuoteRecord {
    pub quote: QuoteRow,
    pub lines: Option<Vec<QuoteLineRow>>,
}

impl QueryableByName<MultiBackend> for QuoteRecord {
    fn build<'a>(row: &impl NamedRow<'a, MultiBackend>) -> deserialize::Result<Self> {
        Ok(QuoteRecord {
            quote: <QuoteRow as QueryableByName<MultiBackend>>::build(row)?,
            lines: None,
        })
    }
}

pub fn quote_resource() -> Resource {
    let mut columns = vec![
        col("id", "id", FieldKind::Id, false),
        col("number", "number", FieldKind::Integer, true),
        col("deal_id", "deal_id", FieldKind::Id, true),
        col("status", "status", enum_kind(QuoteStatus::names()), true),
        col("currency", "currency", FieldKind::Text, true),
        col("price_book_id", "price_book_id", FieldKind::Id, true),
        col("valid_until", "valid_until", FieldKind::Date, true),
        col("subtotal", "subtotal", FieldKind::Decimal, true),
        col("discount_total", "discount_total", FieldKind::Decimal, true),
        col("tax_total", "tax_total", FieldKind::Decimal, true),
        col("total", "total", FieldKind::Decimal, true),
    ];
    columns.extend(record_columns());
    Resource {
        table: "quotes",
        columns,
        text_columns: &[],
        text_relations: &[],
    }
}

/// A quote with its lines, in order.
pub fn get_quote(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<QuoteRecord> {
    let quote = quotes::table
        .filter(quotes::workspace_id.eq(ws.as_string()))
        .filter(quotes::id.eq(id))
        .first::<QuoteRow>(conn)
        .optional()?
        .ok_or(RepoError::NotFound)?;
    let lines = quote_lines::table
        .filter(quote_lines::workspace_id.eq(ws.as_string()))
        .filter(quote_lines::quote_id.eq(id))
        .order(quote_lines::position.asc())
        .load::<QuoteLineRow>(conn)?;
    Ok(QuoteRecord {
        quote,
        lines: Some(lines),
    })
}

/// Gives the quote `id` (written under a placeholder number) the workspace's next number
/// (see `records::next_in_counter`), in the caller's transaction; the number.
pub fn number_quote(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<i64> {
    let number = super::records::next_in_counter(conn, "quote_counters", "last_number", ws)?;
    diesel::update(
        quotes::table
            .filter(quotes::workspace_id.eq(ws.as_string()))
            .filter(quotes::id.eq(id)),
    )
    .set(quotes::number.eq(number))
    .execute(conn)?;
    Ok(number)
}

/// Writes lines with one multi-row `INSERT` (diesel's batch insert is not available on
/// the two-database connection).
fn insert_lines(conn: &mut DbConnection, lines: &[QuoteLineRow]) -> RepoResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "INSERT INTO quote_lines (workspace_id, quote_id, position, product_id, description, \
         quantity, unit_price, discount_percent, tax_rate, gross, discount, net, tax, total) VALUES ",
    );
    let opt = |v: &Option<String>| v.clone().map(Bind::Text);
    for (i, l) in lines.iter().enumerate() {
        b.push(if i == 0 { "(" } else { ", (" });
        let values = [
            Some(Bind::Text(l.workspace_id.clone())),
            Some(Bind::Text(l.quote_id.clone())),
            Some(Bind::Int(l.position.into())),
            opt(&l.product_id),
            opt(&l.description),
            Some(Bind::Text(l.quantity.clone())),
            Some(Bind::Text(l.unit_price.clone())),
            Some(Bind::Text(l.discount_percent.clone())),
            Some(Bind::Text(l.tax_rate.clone())),
            Some(Bind::Text(l.gross.clone())),
            Some(Bind::Text(l.discount.clone())),
            Some(Bind::Text(l.net.clone())),
            Some(Bind::Text(l.tax.clone())),
            Some(Bind::Text(l.total.clone())),
        ];
        for (j, v) in values.into_iter().enumerate() {
            if j > 0 {
                b.push(", ");
            }
            match v {
                Some(v) => {
                    b.bind(v);
                }
                None => {
                    b.push("NULL");
                }
            }
        }
        b.push(")");
    }
    b.execute(conn)?;
    Ok(())
}

/// Inserts a quote and its lines in the caller's transaction.
pub fn insert_quote(conn: &mut DbConnection, record: &QuoteRecord) -> RepoResult<()> {
    diesel::insert_into(quotes::table)
        .values(&record.quote)
        .execute(conn)?;
    insert_lines(conn, record.lines.as_deref().unwrap_or_default())
}

/// Writes the new state of a quote whose version is still `current`'s; `lines`, when
/// given, replace the quote's lines.
pub fn update_quote(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &QuoteRow,
    changes: &QuoteChanges,
    lines: Option<&[QuoteLineRow]>,
) -> RepoResult<QuoteRecord> {
    let now = crm_domain::values_time::now();
    let n = diesel::update(
        quotes::table
            .filter(quotes::workspace_id.eq(ws.as_string()))
            .filter(quotes::id.eq(&current.id))
            .filter(quotes::version.eq(current.version)),
    )
    .set((
        changes,
        quotes::updated_at.eq(now),
        quotes::version.eq(current.version + 1),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    if let Some(lines) = lines {
        diesel::delete(
            quote_lines::table
                .filter(quote_lines::workspace_id.eq(ws.as_string()))
                .filter(quote_lines::quote_id.eq(&current.id)),
        )
        .execute(conn)?;
        insert_lines(conn, lines)?;
    }
    get_quote(conn, ws, &current.id)
}
