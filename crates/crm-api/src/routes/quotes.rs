//! `/api/v1/quotes`: quotes (proposals) with line items, discounts and taxes computed
//! exactly, numbered per workspace without gaps.

use crate::auth::{Auth, Principal};
use crate::dto::common::{norm, text};
use crate::dto::quotes::{AcceptQuote, DealAmount, Quote, QuoteInput, QuoteLineInput};
use crate::error::{ApiError, ApiResult, WriteErrors};
use crate::extract::{parse_json, IfMatch, RawJson};
use crate::handlers::record_handlers;
use crate::listing::Catalogue;
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{post, web, HttpResponse};
use crm_db::models::{PriceBookRow, ProductRow, QuoteChanges, QuoteLineRow, QuoteRow};
use crm_db::repo::catalogue;
use crm_db::repo::quotes::{self as repo, QuoteRecord};
use crm_db::{DbConnection, RepoError};
use crm_domain::money::{self, normalize_percent, normalize_price, LineInput};
use crm_domain::quotes::{QuoteStatus, MAX_LINES};
use crm_domain::values::normalize_currency;
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

pub struct Quotes;

pub fn catalogue_of_quotes() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "quotes",
        resource: RES.get_or_init(repo::quote_resource),
        relations: &[],
    })
}

fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// A quote's writable state, checked and priced: the quote's columns and its lines.
struct Priced {
    deal_id: Option<String>,
    status: QuoteStatus,
    currency: String,
    price_book_id: Option<String>,
    valid_until: Option<String>,
    totals: money::QuoteTotals,
    lines: Vec<(QuoteLineInput, LineInput)>,
}

/// The price book a quote takes its prices from: the one named (live, in this workspace),
/// else the default of the quote's currency.
fn price_book(
    c: &mut DbConnection,
    ws: WorkspaceId,
    input: &QuoteInput,
    currency: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> ApiResult<Option<PriceBookRow>> {
    match text(input.price_book_id.clone()) {
        Some(id) => {
            let found = if is_id(&id) {
                match catalogue::get_price_book(c, ws, &id) {
                    Ok(b) if b.archived_at.is_none() => Some(b),
                    Ok(_) | Err(RepoError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            if found.is_none() {
                errors.push(FieldError::new(
                    "price_book_id",
                    "not_found",
                    "no price book with this id in the workspace",
                ));
            }
            Ok(found)
        }
        None => match currency {
            Some(cur) => Ok(catalogue::default_price_book(c, ws, cur)?),
            None => Ok(None),
        },
    }
}

/// Checks a quote's input against the workspace and prices its lines: unit prices
/// default to the price book's, else the product's own; tax rates to the product's.
/// An archived or inactive product cannot be put on a quote, unless it is already on it
/// (`kept`: the products of the quote's current lines), so a draft stays editable after
/// one of its products is withdrawn.
fn price(
    c: &mut DbConnection,
    ws: WorkspaceId,
    input: QuoteInput,
    kept: &[&str],
) -> ApiResult<Priced> {
    let mut errors = Vec::new();
    if input.lines.len() > MAX_LINES {
        return Err(ApiError::field(
            "lines",
            "too_many",
            format!("a quote has at most {MAX_LINES} lines"),
        ));
    }
    let deal_id = text(input.deal_id.clone());
    if let Some(d) = deal_id.as_deref() {
        let live = is_id(d)
            && match crm_db::repo::deals::get_deal(c, ws, d) {
                Ok(deal) => deal.archived_at.is_none(),
                Err(crm_db::RepoError::NotFound) => false,
                Err(e) => return Err(e.into()),
            };
        if !live {
            errors.push(FieldError::new(
                "deal_id",
                "not_found",
                "must be the id of a live deal in this workspace",
            ));
        }
    }
    let valid_until = text(input.valid_until.clone());
    if let Some(v) = &valid_until {
        if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
            errors.push(FieldError::new(
                "valid_until",
                "invalid_value",
                "must be a date like 2026-12-31",
            ));
        }
    }
    let given_currency = norm(
        input.currency.clone(),
        "currency",
        normalize_currency,
        &mut errors,
    );
    let book = price_book(c, ws, &input, given_currency.as_deref(), &mut errors)?;
    let currency = match (&given_currency, &book) {
        (Some(cur), Some(b)) if *cur != b.currency => {
            errors.push(FieldError::new(
                "price_book_id",
                "currency_mismatch",
                format!("the price book is in {}, the quote in {cur}", b.currency),
            ));
            cur.clone()
        }
        (Some(cur), _) => cur.clone(),
        (None, Some(b)) => b.currency.clone(),
        (None, None) => {
            if !errors.iter().any(|e| e.field == "currency") {
                errors.push(FieldError::new(
                    "currency",
                    "required",
                    "a quote needs a currency, or a price book to take it from",
                ));
            }
            String::new()
        }
    };

    // The lines' products and their prices, each read once.
    let mut ids: Vec<String> = Vec::new();
    for (i, l) in input.lines.iter().enumerate() {
        if let Some(pid) = l.product_id.as_deref() {
            if !is_id(pid) {
                errors.push(FieldError::new(
                    format!("lines[{i}].product_id"),
                    "invalid_value",
                    "must be the id of a product",
                ));
            } else if !ids.iter().any(|x| x == pid) {
                ids.push(pid.to_string());
            }
        }
    }
    let products: HashMap<String, ProductRow> = catalogue::products_by_ids(c, ws, &ids)?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let book_prices: HashMap<String, String> = match &book {
        Some(b) => catalogue::prices_for(c, ws, &b.id, &ids)?
            .into_iter()
            .map(|p| (p.product_id, p.unit_price))
            .collect(),
        None => HashMap::new(),
    };

    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.into_iter().enumerate() {
        let at = |f: &str| format!("lines[{i}].{f}");
        let product = match l.product_id.as_deref().filter(|p| is_id(p)) {
            Some(pid) => match products.get(pid) {
                Some(p) if (p.active && p.archived_at.is_none()) || kept.contains(&pid) => Some(p),
                Some(_) => {
                    errors.push(FieldError::new(
                        at("product_id"),
                        "inactive_product",
                        "the product is archived or inactive and cannot be put on a quote",
                    ));
                    continue;
                }
                None => {
                    errors.push(FieldError::new(
                        at("product_id"),
                        "not_found",
                        "no product with this id in the workspace",
                    ));
                    continue;
                }
            },
            None => None,
        };
        let mut field =
            |name: &str, raw: Option<String>, f: fn(&str) -> Result<String, &'static str>| {
                norm(raw, &at(name), f, &mut errors)
            };
        let quantity = field("quantity", Some(l.quantity.clone()), normalize_price);
        let discount = field(
            "discount_percent",
            l.discount_percent.clone(),
            normalize_percent,
        )
        .unwrap_or_else(|| "0".into());
        let given_tax = field("tax_rate", l.tax_rate.clone(), normalize_percent);
        let given_price = field("unit_price", l.unit_price.clone(), normalize_price);
        let unit_price = match (given_price, product) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => match book_prices.get(&p.id) {
                Some(bp) => Some(bp.clone()),
                None if p.currency == currency => Some(p.unit_price.clone()),
                None => {
                    errors.push(FieldError::new(
                        at("unit_price"),
                        "currency_mismatch",
                        format!(
                            "the product is priced in {} and the price book has no price for it; give unit_price in {currency}",
                            p.currency
                        ),
                    ));
                    None
                }
            },
            (None, None) if l.unit_price.is_none() => {
                errors.push(FieldError::new(
                    at("unit_price"),
                    "required",
                    "a line without a product needs unit_price",
                ));
                None
            }
            (None, None) => None,
        };
        let description = text(l.description.clone()).or_else(|| product.map(|p| p.name.clone()));
        match &description {
            None => errors.push(FieldError::new(
                at("description"),
                "required",
                "a line needs product_id or description",
            )),
            Some(d) if d.chars().count() > 1000 => errors.push(FieldError::new(
                at("description"),
                "invalid_length",
                "must be at most 1000 characters",
            )),
            Some(_) => {}
        }
        let tax = given_tax
            .or_else(|| product.map(|p| p.tax_rate.clone()))
            .unwrap_or_else(|| "0".into());
        let (Some(quantity), Some(unit_price)) = (quantity, unit_price) else {
            continue;
        };
        let parse = |s: &str| money::parse(s).unwrap_or_default();
        let domain = LineInput {
            quantity: parse(&quantity),
            unit_price: parse(&unit_price),
            discount_percent: parse(&discount),
            tax_rate: parse(&tax),
        };
        errors.extend(money::check_line(&format!("lines[{i}]"), &domain));
        let entered = QuoteLineInput {
            product_id: product.map(|p| p.id.clone()),
            description,
            quantity,
            unit_price: Some(unit_price),
            discount_percent: Some(discount),
            tax_rate: Some(tax),
        };
        lines.push((entered, domain));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let domain: Vec<LineInput> = lines.iter().map(|(_, d)| d.clone()).collect();
    let totals =
        money::quote_totals(&domain, &currency).map_err(|e| ApiError::Validation(vec![e]))?;
    Ok(Priced {
        deal_id,
        status: input.status.unwrap_or(QuoteStatus::Draft),
        currency,
        price_book_id: book.map(|b| b.id),
        valid_until,
        totals,
        lines,
    })
}

impl Priced {
    fn changes(&self) -> QuoteChanges {
        let f = |d| money::format(d, &self.currency);
        QuoteChanges {
            deal_id: self.deal_id.clone(),
            status: self.status.as_str().to_string(),
            currency: self.currency.clone(),
            price_book_id: self.price_book_id.clone(),
            valid_until: self.valid_until.clone(),
            subtotal: f(self.totals.subtotal),
            discount_total: f(self.totals.discount_total),
            tax_total: f(self.totals.tax_total),
            total: f(self.totals.total),
        }
    }

    fn line_rows(&self, ws: WorkspaceId, quote_id: &str) -> Vec<QuoteLineRow> {
        let f = |d| money::format(d, &self.currency);
        self.lines
            .iter()
            .zip(&self.totals.lines)
            .enumerate()
            .map(|(i, ((entered, _), t))| QuoteLineRow {
                workspace_id: ws.as_string(),
                quote_id: quote_id.to_string(),
                position: i as i32,
                product_id: entered.product_id.clone(),
                description: entered.description.clone(),
                quantity: entered.quantity.clone(),
                unit_price: entered.unit_price.clone().unwrap_or_default(),
                discount_percent: entered.discount_percent.clone().unwrap_or_default(),
                tax_rate: entered.tax_rate.clone().unwrap_or_default(),
                gross: f(t.gross),
                discount: f(t.discount),
                net: f(t.net),
                tax: f(t.tax),
                total: f(t.total),
            })
            .collect()
    }
}

fn status_of(q: &QuoteRow) -> QuoteStatus {
    QuoteStatus::parse(&q.status).unwrap_or(QuoteStatus::Draft)
}

impl Record for Quotes {
    const OBJECT: &'static str = "quotes";
    const EVENT: &'static str = "quote";
    const MATCH_ON: &'static [&'static str] = &[];
    const TABLE: &'static str = "quotes";
    const READ: Permission = Permission::QuotesRead;
    const WRITE: Permission = Permission::QuotesWrite;
    type Row = QuoteRecord;
    type Input = QuoteInput;
    type Dto = Quote;

    fn catalogue() -> &'static Catalogue {
        catalogue_of_quotes()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<QuoteRecord, RepoError> {
        repo::get_quote(conn, ws, id)
    }
    fn version(row: &QuoteRecord) -> i32 {
        row.quote.version
    }
    fn is_archived(row: &QuoteRecord) -> bool {
        row.quote.archived_at.is_some()
    }
    fn owner(_: &QuoteInput) -> Option<&str> {
        None
    }
    fn custom(_: &mut QuoteInput) -> Map<String, Value> {
        Map::new()
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: QuoteInput,
        _: Map<String, Value>,
    ) -> ApiResult<QuoteRecord> {
        if input.status.is_some_and(|s| s != QuoteStatus::Draft) {
            return Err(ApiError::field(
                "status",
                "invalid_value",
                "a quote is created as a draft",
            ));
        }
        let priced = price(conn, p.workspace, input, &[])?;
        let c = priced.changes();
        let now = crm_domain::values_time::now();
        let new_id = crm_domain::new_id();
        let id = new_id.to_string();
        // The quote is written under a placeholder number, unique to it, and numbered once
        // its lines are written: the counter row stays locked from the draw until commit,
        // so the draw comes as late as it can.
        let placeholder = -1 - (new_id.as_u128() & 0x3fff_ffff_ffff_ffff) as i64;
        let mut record = QuoteRecord {
            lines: Some(priced.line_rows(p.workspace, &id)),
            quote: QuoteRow {
                workspace_id: p.workspace.as_string(),
                id,
                number: placeholder,
                deal_id: c.deal_id,
                status: c.status,
                currency: c.currency,
                price_book_id: c.price_book_id,
                valid_until: c.valid_until,
                subtotal: c.subtotal,
                discount_total: c.discount_total,
                tax_total: c.tax_total,
                total: c.total,
                created_at: now,
                updated_at: now,
                archived_at: None,
                version: 1,
            },
        };
        repo::insert_quote(conn, &record)?;
        record.quote.number = repo::number_quote(conn, p.workspace, &record.quote.id)?;
        Ok(record)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &QuoteRecord,
        input: QuoteInput,
        _: Map<String, Value>,
    ) -> ApiResult<QuoteRecord> {
        let from = status_of(&current.quote);
        let to = input.status.unwrap_or(from);
        if !from.can_become(to) {
            return Err(ApiError::Conflict {
                message: format!(
                    "a {} quote cannot become {}: draft → sent → accepted, rejected or expired",
                    from.as_str(),
                    to.as_str()
                ),
                existing_id: None,
            });
        }
        if from == QuoteStatus::Sent && to == QuoteStatus::Accepted {
            let valid_until = current.quote.valid_until.as_deref();
            let date = valid_until.and_then(|d| d.parse::<chrono::NaiveDate>().ok());
            if let Some(date) = date.filter(|d| crm_domain::quotes::lapsed(*d, chrono::Utc::now()))
            {
                return Err(ApiError::Conflict {
                    message: format!(
                        "the quote was valid until {date}: it can no longer be accepted, only \
                         rejected or marked expired"
                    ),
                    existing_id: None,
                });
            }
        }
        let mut unchanged = QuoteInput::from(current);
        unchanged.status = input.status;
        if unchanged == input {
            // Only the status moves: the lines and amounts stand as they are.
            let q = &current.quote;
            let changes = QuoteChanges {
                deal_id: q.deal_id.clone(),
                status: to.as_str().to_string(),
                currency: q.currency.clone(),
                price_book_id: q.price_book_id.clone(),
                valid_until: q.valid_until.clone(),
                subtotal: q.subtotal.clone(),
                discount_total: q.discount_total.clone(),
                tax_total: q.tax_total.clone(),
                total: q.total.clone(),
            };
            return Ok(repo::update_quote(conn, p.workspace, q, &changes, None)?);
        }
        if from != QuoteStatus::Draft {
            return Err(ApiError::Conflict {
                message: format!(
                    "only draft quotes can be edited; this one is {}",
                    from.as_str()
                ),
                existing_id: None,
            });
        }
        let kept: Vec<&str> = current
            .lines
            .iter()
            .flatten()
            .filter_map(|l| l.product_id.as_deref())
            .collect();
        let priced = price(conn, p.workspace, input, &kept)?;
        let lines = priced.line_rows(p.workspace, &current.quote.id);
        Ok(repo::update_quote(
            conn,
            p.workspace,
            &current.quote,
            &priced.changes(),
            Some(&lines),
        )?)
    }
}

record_handlers! {
    Quotes { dto: Quote, input: QuoteInput, path: "/quotes", tag: "quotes",
             plural: "quotes", singular: "quote", a: "a quote" }
    /// List quotes (without their lines).
    ///
    /// Filters come as query parameters: `status=sent`, `deal_id=…`, `total[gte]=1000`,
    /// `valid_until[lt]=2027-01-01`; sort by `number`, `total`, `valid_until`, ….
    /// Quotes have no free text: `q` is a 422.
    list list_quotes;
    /// Create, update and archive up to 1000 quotes in one request.
    ///
    /// Each operation's `data` is what `POST /quotes` or `PATCH /quotes/{id}` takes: lines
    /// included, amounts computed, numbers drawn in input order (a refused create draws
    /// none). Quotes have no field to upsert on. Editing a quote that is no longer a draft
    /// is that item's 409.
    batch batch_quotes; search search_quotes;
    /// Create a quote (a draft with the workspace's next number).
    ///
    /// Each line names a product or describes what is sold. Prices default to the price
    /// book's (the one named, else the currency's default), else the product's own; tax
    /// rates to the product's. A product of another workspace, or an archived or inactive
    /// one, is a 422 naming `lines[i].product_id`. A draft's lines may keep a product that
    /// was withdrawn after it was put on the quote.
    create create_quote;
    /// Get a quote with its lines.
    get get_quote;
    /// Update a quote with a JSON Merge Patch (RFC 7396).
    ///
    /// Only drafts can be edited (`lines` replace all lines, and amounts are computed
    /// again); of a sent or decided quote only `status` may change. `status` moves
    /// draft → sent → accepted | rejected | expired. Editing a non-draft and any other status
    /// change are 409 conflicts.
    update update_quote;
    /// Archive a quote, or erase it with `permanent=true` (admins). Its number is not reused.
    delete delete_quote; restore restore_quote;
}

/// Accept a sent quote.
///
/// With `update_deal_amount: true`, the quote's deal takes the quote's total (or, with
/// `deal_amount: "net"`, its amount after discounts and before tax) as its amount and
/// currency through the deal's own update, in the same transaction. A quote that is not
/// `sent` is a 409, and so is one whose `valid_until` day has ended everywhere (at noon UTC
/// the day after): it can then only be rejected or marked expired.
#[utoipa::path(post, path = "/api/v1/quotes/{id}/accept", tag = "quotes", operation_id = "accept_quote",
    request_body = AcceptQuote, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The accepted quote", body = Quote, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/quotes/{id}/accept")]
pub async fn accept_quote(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::QuotesWrite)?;
    let accept: AcceptQuote = if body.0.iter().all(u8::is_ascii_whitespace) {
        AcceptQuote::default()
    } else {
        parse_json(&body.0)?
    };
    if accept.deal_amount.is_some() && !accept.update_deal_amount {
        return Err(ApiError::field(
            "deal_amount",
            "requires",
            "`deal_amount` is used only with `update_deal_amount: true`",
        ));
    }
    let id = id.into_inner();
    let row = state
        .tx(move |c| {
            let mut changes = Vec::new();
            let row = records::patch_in::<Quotes>(
                c,
                &p,
                &id,
                if_match.0,
                &json!({"status": "accepted"}),
                &mut changes,
                &mut records::Known::default(),
            )?;
            let deal_changes = if accept.update_deal_amount {
                update_deal_amount(c, &p, &row, accept.deal_amount.unwrap_or_default())?
            } else {
                Vec::new()
            };
            records::flush::<Quotes>(c, &p, changes)?;
            records::flush::<super::deals::Deals>(c, &p, deal_changes)?;
            Ok(row)
        })
        .await?;
    let version = row.quote.version;
    Ok(HttpResponse::Ok()
        .insert_header(crate::extract::etag(version))
        .json(Quote::from(row)))
}

/// Sets the quote's deal's amount and currency to the quote's total (or its net amount),
/// through the deal's own update (its validation, stage rules and history apply); returns
/// the deal's change for the caller to flush.
fn update_deal_amount(
    c: &mut DbConnection,
    p: &Principal,
    q: &QuoteRecord,
    which: DealAmount,
) -> ApiResult<Vec<records::Change>> {
    p.require(Permission::DealsWrite)?;
    let Some(deal) = q.quote.deal_id.as_deref() else {
        return Err(ApiError::field(
            "update_deal_amount",
            "no_deal",
            "the quote has no deal",
        ));
    };
    let amount = match which {
        DealAmount::Total => q.quote.total.clone(),
        DealAmount::Net => {
            let parse = |v: &str| crm_domain::money::parse(v).map_err(ApiError::internal);
            let net = parse(&q.quote.subtotal)? - parse(&q.quote.discount_total)?;
            crm_domain::money::format(net, &q.quote.currency)
        }
    };
    let mut changes = Vec::new();
    records::patch_in::<super::deals::Deals>(
        c,
        p,
        deal,
        None,
        &json!({"amount": amount, "currency": q.quote.currency}),
        &mut changes,
        &mut records::Known::default(),
    )?;
    Ok(changes)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes).service(accept_quote);
}
