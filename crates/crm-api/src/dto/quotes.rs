//! Quotes on the wire.

use super::common::utc;
use chrono::{DateTime, Utc};
use crm_db::models::QuoteLineRow;
use crm_db::repo::quotes::QuoteRecord;
use crm_domain::quotes::QuoteStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One line of a quote as entered. It names a product, or describes what is sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01", "quantity": "3", "discount_percent": "10"}))]
pub struct QuoteLineInput {
    /// A product of the workspace; its price (from the quote's price book, else its own)
    /// and tax rate are the defaults of this line.
    #[schema(max_length = 36)]
    pub product_id: Option<String>,
    /// Required without `product_id`; defaults to the product's name.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// An exact decimal string greater than 0.
    #[schema(example = "3", max_length = 40)]
    pub quantity: String,
    /// An exact, non-negative decimal string in the quote's currency.
    #[schema(example = "19.99", max_length = 40)]
    pub unit_price: Option<String>,
    /// Percent off the line, "0" to "100" (default "0").
    #[schema(example = "10", max_length = 40)]
    pub discount_percent: Option<String>,
    /// Percent of tax on the discounted line, "0" to "100" (default: the product's, else "0").
    #[schema(example = "19", max_length = 40)]
    pub tax_rate: Option<String>,
}

/// The writable fields of a quote: the body of `POST /quotes`, and the shape a `PATCH`
/// merge-patch is applied to (`lines`, when given, replace all lines).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"deal_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02", "currency": "EUR", "valid_until": "2026-12-31", "lines": [{"description": "Onboarding", "quantity": "1", "unit_price": "950.00", "tax_rate": "19"}]}))]
pub struct QuoteInput {
    /// The deal the quote is for.
    #[schema(max_length = 36)]
    pub deal_id: Option<String>,
    /// A quote is created as a `draft`. Then draft → sent → accepted | rejected | expired;
    /// any other change is a 409.
    pub status: Option<QuoteStatus>,
    /// ISO 4217; defaults to the price book's.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
    /// Where line prices come from; defaults to the currency's default price book.
    #[schema(max_length = 36)]
    pub price_book_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(example = "2026-12-31", max_length = 10, format = Date)]
    pub valid_until: Option<String>,
    /// Up to 200 lines, in order.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub lines: Vec<QuoteLineInput>,
}

/// A line of a quote with its amounts, each rounded to the currency's minor unit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuoteLine {
    pub product_id: Option<String>,
    pub description: Option<String>,
    pub quantity: String,
    pub unit_price: String,
    pub discount_percent: String,
    pub tax_rate: String,
    /// quantity × unit price.
    #[schema(example = "59.97")]
    pub subtotal: String,
    /// subtotal × discount percent.
    #[schema(example = "6.00")]
    pub discount: String,
    /// subtotal − discount.
    #[schema(example = "53.97")]
    pub net: String,
    /// net × tax rate.
    #[schema(example = "10.25")]
    pub tax: String,
    /// net + tax.
    #[schema(example = "64.22")]
    pub total: String,
}

/// A quote. Its amounts are computed by the server: each line is rounded to the
/// currency's minor unit (half away from zero), and the totals are the sums of the lines.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quote {
    pub id: String,
    /// 1, 2, 3… in each workspace, without gaps.
    pub number: i64,
    pub deal_id: Option<String>,
    pub status: QuoteStatus,
    pub currency: String,
    pub price_book_id: Option<String>,
    pub valid_until: Option<String>,
    /// The lines, in order; lists leave them out (read the quote for them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<QuoteLine>>,
    /// Σ line subtotals, before discounts.
    #[schema(example = "59.97")]
    pub subtotal: String,
    #[schema(example = "6.00")]
    pub discount_total: String,
    #[schema(example = "10.25")]
    pub tax_total: String,
    /// subtotal − discount_total + tax_total.
    #[schema(example = "64.22")]
    pub total: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<QuoteLineRow> for QuoteLine {
    fn from(l: QuoteLineRow) -> Self {
        QuoteLine {
            product_id: l.product_id,
            description: l.description,
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount_percent: l.discount_percent,
            tax_rate: l.tax_rate,
            subtotal: l.gross,
            discount: l.discount,
            net: l.net,
            tax: l.tax,
            total: l.total,
        }
    }
}

impl From<QuoteRecord> for Quote {
    fn from(r: QuoteRecord) -> Self {
        let q = r.quote;
        Quote {
            status: QuoteStatus::parse(&q.status).unwrap_or(QuoteStatus::Draft),
            lines: r
                .lines
                .map(|ls| ls.into_iter().map(QuoteLine::from).collect()),
            created_at: utc(q.created_at),
            updated_at: utc(q.updated_at),
            archived_at: q.archived_at.map(utc),
            id: q.id,
            number: q.number,
            deal_id: q.deal_id,
            currency: q.currency,
            price_book_id: q.price_book_id,
            valid_until: q.valid_until,
            subtotal: q.subtotal,
            discount_total: q.discount_total,
            tax_total: q.tax_total,
            total: q.total,
            version: q.version,
        }
    }
}

impl From<&QuoteRecord> for QuoteInput {
    fn from(r: &QuoteRecord) -> Self {
        let q = &r.quote;
        QuoteInput {
            deal_id: q.deal_id.clone(),
            status: QuoteStatus::parse(&q.status),
            currency: Some(q.currency.clone()),
            price_book_id: q.price_book_id.clone(),
            valid_until: q.valid_until.clone(),
            lines: r
                .lines
                .iter()
                .flatten()
                .map(|l| QuoteLineInput {
                    product_id: l.product_id.clone(),
                    description: l.description.clone(),
                    quantity: l.quantity.clone(),
                    unit_price: Some(l.unit_price.clone()),
                    discount_percent: Some(l.discount_percent.clone()),
                    tax_rate: Some(l.tax_rate.clone()),
                })
                .collect(),
        }
    }
}

/// The body of `POST /quotes/{id}/accept`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptQuote {
    /// Also set the deal's amount and currency from the quote, through the deal's own
    /// update (its event and history apply), in the same transaction.
    #[serde(default)]
    pub update_deal_amount: bool,
    /// Which of the quote's amounts the deal takes with `update_deal_amount`: `total`
    /// (the default: after discounts, with tax) or `net` (after discounts, before tax:
    /// `subtotal` − `discount_total`, what most pipelines count). Only with
    /// `update_deal_amount: true`.
    #[serde(default)]
    pub deal_amount: Option<DealAmount>,
}

/// Which amount of an accepted quote its deal takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealAmount {
    /// After discounts, with tax.
    #[default]
    Total,
    /// After discounts, before tax.
    Net,
}
