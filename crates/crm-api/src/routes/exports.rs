//! `/api/v1/exports/{object}`: every record resource as a CSV or NDJSON stream (see
//! [`crate::exports`]).

use crate::auth::{Auth, Principal};
use crate::error::{ApiError, ApiResult, ReadErrors};
use crate::exports::export;
use crate::extract::QueryPairs;
use crate::records::Record;
use crate::routes::{
    activities, companies, contacts, deals, leads, price_books, products, quotas, quotes,
};
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

type Exporter = fn(
    web::Data<AppState>,
    Principal,
    Vec<(String, String)>,
    Option<String>,
) -> LocalBoxFuture<'static, ApiResult<HttpResponse>>;

/// The exportable resources: every [`Record`]. A new record resource is exported by
/// naming it here.
macro_rules! exporters {
    ($($record:ty),* $(,)?) => {
        &[$((
            <$record as Record>::OBJECT,
            (|s, p, q, a| Box::pin(export::<$record>(s, p, q, a))) as Exporter,
        )),*]
    };
}

static EXPORTERS: &[(&str, Exporter)] = exporters![
    contacts::Contacts,
    companies::Companies,
    leads::Leads,
    deals::Deals,
    activities::Activities,
    products::Products,
    price_books::PriceBooks,
    quotes::Quotes,
    quotas::Quotas,
];

/// The objects `GET /exports/{object}` serves.
pub fn objects() -> Vec<&'static str> {
    EXPORTERS.iter().map(|(o, _)| *o).collect()
}

/// Export records as CSV or NDJSON.
///
/// Streams every record of `object` that matches the filter, of any number, in one
/// response. The format is `format`, else the `Accept` header (`text/csv` or
/// `application/x-ndjson`), else CSV. The filter is `filter` (the filter language of
/// `POST /{object}/search` as JSON) and/or list-style conditions (`field=value`,
/// `field[op]=value`), combined with `and`.
///
/// CSV (RFC 4180, CRLF line ends) starts with a header row naming the columns: the
/// record's fields as `GET` shows them, its custom fields as one `custom.<name>` column
/// each; null is an empty cell, arrays and objects are JSON. NDJSON is one record per line,
/// exactly as `GET` shows it. `fields` picks and orders the columns (NDJSON: keys).
///
/// Rows come by id (creation order) unless `sort` says otherwise, read page by page rather
/// than in one snapshot: a record that exists throughout and keeps its sort position appears
/// exactly once; one created, changed or archived during the export may or may not.
#[utoipa::path(get, path = "/api/v1/exports/{object}", tag = "exports", operation_id = "export_records",
    params(
        ("object" = String, Path, description = "The records to export: `contacts`, `companies`, …"),
        ("format" = Option<crate::exports::Format>, Query, description = "`csv` or `ndjson` (default: from `Accept`, else `csv`)"),
        ("filter" = Option<String>, Query, description = "A filter of the filter language, as JSON", example = r#"{"field":"lifecycle_stage","op":"eq","value":"mature"}"#),
        ("fields" = Option<String>, Query, description = "Comma-separated fields to write, e.g. `id,email,custom.segment` (default: all)"),
        ("include_archived" = Option<bool>, Query, description = "Archived records too (default: live ones only)"),
        ("archived" = Option<bool>, Query, description = "Archived records only"),
        ("sort" = Option<String>, Query, description = "A sortable field, `-` for descending; several comma-separated (default: id)"),
        ("q" = Option<String>, Query, description = "Free text, as on lists"),
        ("Accept" = Option<String>, Header, description = "`text/csv` or `application/x-ndjson`, when `format` is absent"),
    ),
    responses(
        (status = 200, description = "The records, streamed", content(
            (String = "text/csv", example = "id,email,custom.segment\r\n0193a1b2-0000-7000-8000-000000000001,ada@example.com,smb\r\n"),
            (String = "application/x-ndjson", example = "{\"id\":\"0193a1b2-0000-7000-8000-000000000001\",\"email\":\"ada@example.com\"}\n")
        ), headers(("Content-Disposition" = String, description = "`attachment; filename=\"<object>-<time>.<csv|ndjson>\"`"))),
        ReadErrors
    ),
    security(("bearer" = [])))]
#[get("/exports/{object}")]
pub async fn export_records(
    state: web::Data<AppState>,
    Auth(p): Auth,
    object: web::Path<String>,
    q: QueryPairs,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match EXPORTERS.iter().find(|(o, _)| *o == object.as_str()) {
        Some((_, exporter)) => exporter(state, p, q.0, accept).await,
        None => Err(ApiError::NotFound),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(export_records);
}
