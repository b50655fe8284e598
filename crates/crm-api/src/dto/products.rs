//! Products, price books and their prices on the wire.

use super::common::*;
use chrono::{DateTime, Utc};
use crm_db::models::{PriceBookChanges, PriceBookRow, PriceRow, ProductChanges, ProductRow};
use crm_domain::money::{normalize_percent, normalize_price};
use crm_domain::values::normalize_currency;
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// The writable fields of a product: the body of `POST /products`, and the shape a
/// `PATCH` merge-patch is applied to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sku": "SUP-100", "name": "Support plan", "unit_price": "49.90", "currency": "EUR", "tax_rate": "19"}))]
pub struct ProductInput {
    /// Unique in the workspace.
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub sku: Option<String>,
    #[validate(length(min = 1, max = 200))]
    #[schema(max_length = 200, min_length = 1)]
    pub name: Option<String>,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// An exact, non-negative decimal string in `currency`.
    #[schema(example = "49.90", max_length = 40)]
    pub unit_price: Option<String>,
    /// ISO 4217 code of `unit_price`.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
    /// Tax rate in percent, a decimal string from "0" to "100" (default "0").
    #[schema(example = "19", max_length = 40)]
    pub tax_rate: Option<String>,
    /// Whether the product is on sale (default true).
    pub active: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
}

/// A product of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    #[schema(example = "49.9")]
    pub unit_price: String,
    pub currency: String,
    #[schema(example = "19")]
    pub tax_rate: String,
    pub active: bool,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<ProductRow> for Product {
    fn from(r: ProductRow) -> Self {
        Product {
            custom: parse_object(&r.custom),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            sku: r.sku,
            name: r.name,
            description: r.description,
            unit_price: r.unit_price,
            currency: r.currency,
            tax_rate: r.tax_rate,
            active: r.active,
            version: r.version,
        }
    }
}

impl From<&ProductRow> for ProductInput {
    fn from(r: &ProductRow) -> Self {
        ProductInput {
            sku: Some(r.sku.clone()),
            name: Some(r.name.clone()),
            description: r.description.clone(),
            unit_price: Some(r.unit_price.clone()),
            currency: Some(r.currency.clone()),
            tax_rate: Some(r.tax_rate.clone()),
            active: Some(r.active),
            custom: parse_object(&r.custom),
        }
    }
}

/// Records a missing required field unless the field already has an error.
fn require<T>(value: &Option<T>, field: &str, errors: &mut Vec<FieldError>) {
    if value.is_none() && !errors.iter().any(|e| e.field == field) {
        errors.push(FieldError::new(
            field,
            "required",
            format!("`{field}` is required"),
        ));
    }
}

impl ProductInput {
    pub fn into_changes(
        self,
        custom: Map<String, Value>,
    ) -> Result<ProductChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let sku = text(self.sku);
        let name = text(self.name);
        let unit_price = norm(self.unit_price, "unit_price", normalize_price, &mut errors);
        let currency = norm(self.currency, "currency", normalize_currency, &mut errors);
        let tax_rate = norm(self.tax_rate, "tax_rate", normalize_percent, &mut errors);
        require(&sku, "sku", &mut errors);
        require(&name, "name", &mut errors);
        require(&unit_price, "unit_price", &mut errors);
        require(&currency, "currency", &mut errors);
        match (sku, name, unit_price, currency) {
            (Some(sku), Some(name), Some(unit_price), Some(currency)) if errors.is_empty() => {
                Ok(ProductChanges {
                    sku,
                    name,
                    description: text(self.description),
                    unit_price,
                    currency,
                    tax_rate: tax_rate.unwrap_or_else(|| "0".into()),
                    active: self.active.unwrap_or(true),
                    custom: Value::Object(custom).to_string(),
                })
            }
            _ => Err(errors),
        }
    }
}

pub fn new_product(ws: &str, c: ProductChanges) -> ProductRow {
    let now = crm_domain::values_time::now();
    ProductRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        sku: c.sku,
        name: c.name,
        description: c.description,
        unit_price: c.unit_price,
        currency: c.currency,
        tax_rate: c.tax_rate,
        active: c.active,
        custom: c.custom,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// The writable fields of a price book.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Partners 2027", "currency": "EUR", "is_default": false}))]
pub struct PriceBookInput {
    #[validate(length(min = 1, max = 200))]
    #[schema(max_length = 200, min_length = 1)]
    pub name: Option<String>,
    /// ISO 4217 code of every price in the book.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
    /// Default true.
    pub active: Option<bool>,
    /// The book quotes in its currency use when they name none; one live default per
    /// currency (409 with `existing_id` otherwise). Default false.
    pub is_default: Option<bool>,
}

/// A price book: prices of products in one currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriceBook {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub active: bool,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<PriceBookRow> for PriceBook {
    fn from(r: PriceBookRow) -> Self {
        PriceBook {
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            name: r.name,
            currency: r.currency,
            active: r.active,
            is_default: r.is_default,
            version: r.version,
        }
    }
}

impl From<&PriceBookRow> for PriceBookInput {
    fn from(r: &PriceBookRow) -> Self {
        PriceBookInput {
            name: Some(r.name.clone()),
            currency: Some(r.currency.clone()),
            active: Some(r.active),
            is_default: Some(r.is_default),
        }
    }
}

impl PriceBookInput {
    pub fn into_changes(self) -> Result<PriceBookChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let name = text(self.name);
        let currency = norm(self.currency, "currency", normalize_currency, &mut errors);
        require(&name, "name", &mut errors);
        require(&currency, "currency", &mut errors);
        match (name, currency) {
            (Some(name), Some(currency)) if errors.is_empty() => Ok(PriceBookChanges {
                name,
                currency,
                active: self.active.unwrap_or(true),
                is_default: self.is_default.unwrap_or(false),
            }),
            _ => Err(errors),
        }
    }
}

pub fn new_price_book(ws: &str, c: PriceBookChanges) -> PriceBookRow {
    let now = crm_domain::values_time::now();
    PriceBookRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        name: c.name,
        currency: c.currency,
        active: c.active,
        is_default: c.is_default,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// The body of `PUT /price-books/{id}/prices/{product_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"unit_price": "44.90"}))]
pub struct PriceInput {
    /// An exact, non-negative decimal string in the book's currency.
    #[schema(example = "44.90", max_length = 40)]
    pub unit_price: String,
}

/// A product's price in a price book.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Price {
    pub price_book_id: String,
    pub product_id: String,
    #[schema(example = "44.9")]
    pub unit_price: String,
    /// The book's currency.
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Price {
    pub fn new(r: PriceRow, currency: &str) -> Self {
        Price {
            price_book_id: r.price_book_id,
            product_id: r.product_id,
            unit_price: r.unit_price,
            currency: currency.to_string(),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

/// A page of a price book's prices, by product id.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricePage {
    pub data: Vec<Price>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
