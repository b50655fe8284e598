//! Streaming exports of any [`Record`] resource as CSV (RFC 4180) or NDJSON, written once
//! for all of them.
//!
//! The request is checked (format, fields, filter, sort) and the first page read before the
//! response starts, so a bad request is a 4xx and never a cut stream. After that, pages of
//! `export_page_size` rows are read by keyset (`id > last id`, or the asked-for sort plus
//! the id) on the blocking pool, each with a connection taken from the pool for that one
//! query, rendered on another blocking thread while the next page is read, and sent
//! through a bounded channel to the response body: memory stays at a few pages whatever
//! the size of the export, a slow client slows the reads down, and a client that goes away
//! stops them.
//!
//! Consistency: each page is its own query, not one snapshot. Every row that exists for the
//! whole export and keeps its sort position appears exactly once, in order. A row created
//! during the export appears when its position is still ahead of the reader; a row archived
//! or deleted before the reader reaches it is left out; with a sort on a changing field
//! (`updated_at`), a row changed mid-export may appear at its old position, its new one,
//! or (if it moved backwards past the reader) not at all. The default order, by id
//! (time-ordered UUIDv7, so creation order), never moves a row.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::bool_param;
use crate::listing::{self, SearchRequest};
use crate::records::Record;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use crm_db::query::ListQuery;
use crm_db::DbConnection;
use crm_domain::custom_field::CustomFieldDef;
use crm_domain::WorkspaceId;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::sync::Arc;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

/// Pages rendered ahead of the client.
const PAGES_AHEAD: usize = 2;

/// About the length of an exported CSV row, to size a page's buffer once.
const CSV_ROW_BYTES: usize = 512;

/// The format of an export.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[schema(as = FileFormat)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
    /// The `format` query parameter.
    pub fn parse_param(v: &str) -> ApiResult<Format> {
        match v {
            "csv" => Ok(Format::Csv),
            "ndjson" => Ok(Format::Ndjson),
            _ => Err(ApiError::field(
                "format",
                "invalid_value",
                "must be `csv` or `ndjson`",
            )),
        }
    }
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
    /// The format an `Accept` header asks for; CSV unless it names NDJSON before CSV.
    fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Csv;
        };
        for range in accept.split(',') {
            let media = range
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            match media.as_str() {
                "text/csv" => return Format::Csv,
                "application/x-ndjson" | "application/ndjson" => return Format::Ndjson,
                _ => {}
            }
        }
        Format::Csv
    }
}

/// An export request as the query string states it.
pub struct ExportRequest {
    pub format: Format,
    /// The columns (CSV) or keys (NDJSON) asked for; all of them when `None`.
    pub fields: Option<Vec<String>>,
    pub include_archived: bool,
    /// The filter, free text, sort and `archived` flag, as lists read them.
    pub search: SearchRequest,
}

impl ExportRequest {
    /// Reads the query string: `format`, `fields`, `include_archived`, `filter` (the filter
    /// language as JSON) and, as on lists, `sort`, `q`, `archived` and `field[op]=value`
    /// conditions (combined with `filter` by `and`). `accept` decides the format when the
    /// query does not.
    pub fn parse(pairs: &[(String, String)], accept: Option<&str>) -> ApiResult<ExportRequest> {
        let mut format = None;
        let mut fields = None;
        let mut include_archived = false;
        let mut filter = None;
        let mut rest = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "format" => format = Some(Format::parse_param(v)?),
                "fields" => fields = Some(parse_fields(v)?),
                "include_archived" => include_archived = bool_param("include_archived", v)?,
                "filter" => {
                    let f: Value = serde_json::from_str(v).map_err(|e| {
                        ApiError::field(
                            "filter",
                            "invalid_json",
                            format!("must be a filter as JSON: {e}"),
                        )
                    })?;
                    filter = Some(f);
                }
                "limit" | "cursor" | "count" => {
                    return Err(ApiError::field(
                        k,
                        "unsupported",
                        "an export returns every matching record in one response",
                    ))
                }
                _ => rest.push((k.clone(), v.clone())),
            }
        }
        let mut search = SearchRequest::from_query(&rest)?;
        search.filter = match (search.filter.take(), filter) {
            (Some(a), Some(b)) => Some(json!({"and": [b, a]})),
            (a, b) => b.or(a),
        };
        Ok(ExportRequest {
            format: format.unwrap_or_else(|| Format::from_accept(accept)),
            fields,
            include_archived,
            search,
        })
    }
}

fn parse_fields(v: &str) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in v.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(ApiError::field(
                "fields",
                "invalid_value",
                "a comma-separated list of field names, none of them empty",
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// One column of the export: a field of the record as the API shows it, or one of its
/// custom fields.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Field(String),
    Custom(String),
}

impl Column {
    fn header(&self) -> Cow<'_, str> {
        match self {
            Column::Field(f) => Cow::Borrowed(f),
            Column::Custom(c) => Cow::Owned(format!("custom.{c}")),
        }
    }
    fn value<'a>(&self, shown: &'a Value) -> &'a Value {
        match self {
            Column::Field(f) => shown.get(f),
            Column::Custom(c) => shown.get("custom").and_then(|m| m.get(c)),
        }
        .unwrap_or(&Value::Null)
    }
}

/// The fields a record shows, in the order of its documented schema.
fn shown_fields<R: Record>() -> Vec<String> {
    match <R::Dto as utoipa::PartialSchema>::schema() {
        RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// What an export writes: the format and, for CSV or when `fields` names some, its columns.
struct Plan {
    format: Format,
    /// `None`: NDJSON of the whole record, exactly as `GET` shows it.
    columns: Option<Vec<Column>>,
}

impl Plan {
    /// Decides the columns. CSV without `fields`: every field of the record, its `custom`
    /// object spread into one `custom.<name>` column per defined custom field.
    fn new<R: Record>(
        format: Format,
        fields: Option<&[String]>,
        defs: &[CustomFieldDef],
    ) -> ApiResult<Plan> {
        let shown = shown_fields::<R>();
        let columns = match fields {
            Some(names) => {
                let mut cols = Vec::new();
                for name in names {
                    if shown.iter().any(|f| f == name) {
                        cols.push(Column::Field(name.clone()));
                    } else if let Some(c) = name
                        .strip_prefix("custom.")
                        .filter(|c| defs.iter().any(|d| d.name == *c))
                    {
                        cols.push(Column::Custom(c.to_string()));
                    } else {
                        return Err(ApiError::field(
                            "fields",
                            "unknown_field",
                            format!(
                                "{} have no field `{name}`; fields: {}, custom.<name> of a defined custom field",
                                R::OBJECT,
                                shown.join(", ")
                            ),
                        ));
                    }
                }
                Some(cols)
            }
            None if format == Format::Csv => Some(
                shown
                    .iter()
                    .flat_map(|f| {
                        if f == "custom" {
                            defs.iter()
                                .map(|d| Column::Custom(d.name.clone()))
                                .collect()
                        } else {
                            vec![Column::Field(f.clone())]
                        }
                    })
                    .collect(),
            ),
            None => None,
        };
        Ok(Plan { format, columns })
    }

    /// Whether the custom-field definitions are needed to decide the columns.
    fn needs_defs(format: Format, fields: Option<&[String]>) -> bool {
        match fields {
            Some(names) => names.iter().any(|n| n.starts_with("custom.")),
            None => format == Format::Csv,
        }
    }

    fn csv_writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
        csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::CRLF)
            .from_writer(out)
    }

    /// The CSV header row (nothing for NDJSON).
    fn header(&self, out: &mut Vec<u8>) -> ApiResult<()> {
        if let (Format::Csv, Some(cols)) = (self.format, &self.columns) {
            let mut w = Self::csv_writer(out);
            w.write_record(cols.iter().map(|c| c.header().into_owned()))
                .map_err(ApiError::internal)?;
            w.flush().map_err(ApiError::internal)?;
        }
        Ok(())
    }

    /// Writes the rows.
    fn write<R: Record>(&self, rows: Vec<R::Row>, out: &mut Vec<u8>) -> ApiResult<()> {
        match (self.format, &self.columns) {
            (Format::Ndjson, None) => {
                for row in rows {
                    serde_json::to_writer(&mut *out, &R::Dto::from(row))
                        .map_err(ApiError::internal)?;
                    out.push(b'\n');
                }
            }
            (Format::Ndjson, Some(cols)) => {
                for row in rows {
                    let shown =
                        serde_json::to_value(R::Dto::from(row)).map_err(ApiError::internal)?;
                    let mut obj = Map::new();
                    for col in cols {
                        let v = col.value(&shown).clone();
                        match col {
                            Column::Field(f) => {
                                obj.insert(f.clone(), v);
                            }
                            Column::Custom(c) => {
                                if let Some(custom) = obj
                                    .entry("custom")
                                    .or_insert_with(|| Value::Object(Map::new()))
                                    .as_object_mut()
                                {
                                    custom.insert(c.clone(), v);
                                }
                            }
                        }
                    }
                    serde_json::to_writer(&mut *out, &obj).map_err(ApiError::internal)?;
                    out.push(b'\n');
                }
            }
            (Format::Csv, cols) => {
                let cols = cols.as_deref().unwrap_or_default();
                let mut layout = crate::cells::Layout::new(
                    cols.iter().enumerate().filter_map(|(i, c)| match c {
                        Column::Field(f) => Some((f.clone(), i)),
                        Column::Custom(_) => None,
                    }),
                    cols.iter().enumerate().filter_map(|(i, c)| match c {
                        Column::Custom(f) => Some((f.clone(), i)),
                        Column::Field(_) => None,
                    }),
                );
                let mut cells = vec![String::new(); cols.len()];
                out.reserve(rows.len() * CSV_ROW_BYTES);
                let mut w = Self::csv_writer(out);
                let mut record = csv::ByteRecord::new();
                for row in rows {
                    let dto = R::Dto::from(row);
                    cells.iter_mut().for_each(String::clear);
                    crate::cells::fill(&dto, &mut layout, &mut cells)
                        .map_err(ApiError::internal)?;
                    record.clear();
                    for cell_text in &cells {
                        record.push_field(cell_text.as_bytes());
                    }
                    w.write_byte_record(&record).map_err(ApiError::internal)?;
                }
                w.flush().map_err(ApiError::internal)?;
            }
        }
        Ok(())
    }
}

/// An export in progress: the query of its next page.
struct Cursor {
    query: ListQuery,
    ws: WorkspaceId,
}

/// A page of rows read and not yet written.
struct Page<Row> {
    rows: Vec<Row>,
    /// Whether another page may follow (this one was full).
    more: bool,
}

impl Cursor {
    /// Reads the next page and moves the cursor past it. The keyset comes from the page's
    /// last row as the API shows it, so the next read need not wait for this page to be
    /// written.
    fn read<R: Record>(&mut self, conn: &mut DbConnection) -> ApiResult<Page<R::Row>> {
        let rows: Vec<R::Row> = crm_db::query::list(
            conn,
            R::catalogue().resource,
            &self.ws.as_string(),
            &self.query,
        )?;
        let full = rows.len() as i64 >= self.query.limit;
        self.query.after = match rows.last() {
            Some(last) => {
                let shown =
                    serde_json::to_value(R::Dto::from(last.clone())).map_err(ApiError::internal)?;
                Some(listing::keyset_after(&self.query.sort, &shown)?)
            }
            None => None,
        };
        Ok(Page {
            more: full && self.query.after.is_some(),
            rows,
        })
    }
}

/// `GET /exports/{object}` for the resource `R`: checks the caller's read permission and
/// the request, then streams the matching records of the caller's workspace.
pub async fn export<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    pairs: Vec<(String, String)>,
    accept: Option<String>,
) -> ApiResult<HttpResponse> {
    p.require(R::READ)?;
    let req = ExportRequest::parse(&pairs, accept.as_deref())?;
    let format = req.format;
    let page_size = state.config.export_page_size;
    let ws = p.workspace;
    // The request is checked and the first page read before the response starts.
    let (cursor, plan, first, more) = state
        .db(move |c| {
            let mut query = listing::prepare(c, R::catalogue(), ws, &req.search, None)?;
            query.include_archived = req.include_archived;
            query.limit = page_size;
            let fields = req.fields.as_deref();
            let defs = if Plan::needs_defs(req.format, fields) {
                crm_db::repo::fields::defs(c, ws, R::OBJECT)?
            } else {
                Vec::new()
            };
            let plan = Plan::new::<R>(req.format, fields, &defs)?;
            let mut cursor = Cursor { query, ws };
            let mut out = Vec::new();
            plan.header(&mut out)?;
            let page = cursor.read::<R>(c)?;
            plan.write::<R>(page.rows, &mut out)?;
            Ok((cursor, plan, out, page.more))
        })
        .await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ApiResult<Bytes>>(PAGES_AHEAD);
    if more {
        actix_web::rt::spawn(read_pages::<R>(state.clone(), cursor, Arc::new(plan), tx));
    }
    let rest = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(std::future::ready(Ok::<_, ApiError>(Bytes::from(first)))),
        rest,
    );
    let filename = format!(
        "{}-{}.{}",
        R::OBJECT,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// Reads the pages after the first into `tx` until the last one, an error (sent on, which
/// cuts the response short) or the client leaving (the channel closes). Each page is read
/// on one blocking thread while the page before it is written on another, so the database
/// and the rendering work side by side.
async fn read_pages<R: Record>(
    state: web::Data<AppState>,
    mut cursor: Cursor,
    plan: Arc<Plan>,
    tx: tokio::sync::mpsc::Sender<ApiResult<Bytes>>,
) {
    let mut unwritten: Option<Vec<R::Row>> = None;
    loop {
        let read = state.db(move |c| {
            let page = cursor.read::<R>(c)?;
            Ok((cursor, page))
        });
        let write = write_page::<R>(plan.clone(), unwritten.take());
        let (read, written) = futures_util::future::join(read, write).await;
        if !forward::<R>(&tx, written).await {
            return;
        }
        match read {
            Ok((next, page)) if page.more => {
                cursor = next;
                unwritten = Some(page.rows);
            }
            Ok((_, page)) => {
                forward::<R>(&tx, write_page::<R>(plan, Some(page.rows)).await).await;
                return;
            }
            Err(e) => {
                forward::<R>(&tx, Err(e)).await;
                return;
            }
        }
    }
}

/// Renders a page of rows on the blocking pool (nothing when there is none).
async fn write_page<R: Record>(
    plan: Arc<Plan>,
    rows: Option<Vec<R::Row>>,
) -> ApiResult<Option<Bytes>> {
    let Some(rows) = rows else {
        return Ok(None);
    };
    web::block(move || {
        let mut out = Vec::new();
        plan.write::<R>(rows, &mut out)?;
        Ok(Some(Bytes::from(out)))
    })
    .await?
}

/// Sends a written page (or the error that ends the export) to the response body; false
/// when the export ends here: on an error, or when the client has gone.
async fn forward<R: Record>(
    tx: &tokio::sync::mpsc::Sender<ApiResult<Bytes>>,
    written: ApiResult<Option<Bytes>>,
) -> bool {
    match written {
        Ok(None) => true,
        Ok(Some(bytes)) => tx.send(Ok(bytes)).await.is_ok(),
        Err(e) => {
            tracing::error!(object = R::OBJECT, error = %e, "export stopped");
            let _ = tx.send(Err(e)).await;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_format_when_the_query_does_not() {
        assert_eq!(Format::from_accept(None), Format::Csv);
        assert_eq!(
            Format::from_accept(Some("application/x-ndjson")),
            Format::Ndjson
        );
        assert_eq!(
            Format::from_accept(Some("text/csv;q=0.9, application/x-ndjson")),
            Format::Csv
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Csv);
        let pairs = vec![("format".to_string(), "ndjson".to_string())];
        let req = ExportRequest::parse(&pairs, Some("text/csv")).expect("valid");
        assert_eq!(req.format, Format::Ndjson);
    }

    #[test]
    fn cells_follow_rfc_4180() {
        let mut out = Vec::new();
        {
            let mut w = Plan::csv_writer(&mut out);
            let mut rec = csv::ByteRecord::new();
            rec.push_field(b"a,\"b\"");
            rec.push_field(b"line\nbreak");
            rec.push_field(b"");
            w.write_byte_record(&rec).expect("written");
            w.flush().expect("flushed");
        }
        assert_eq!(out, b"\"a,\"\"b\"\"\",\"line\nbreak\",\r\n");
    }

    #[test]
    fn query_filters_and_the_filter_parameter_combine() {
        let pairs = vec![
            (
                "filter".to_string(),
                r#"{"field":"email","op":"is_null","value":false}"#.to_string(),
            ),
            ("lifecycle_stage".to_string(), "new".to_string()),
            ("fields".to_string(), "id, email,id".to_string()),
        ];
        let req = ExportRequest::parse(&pairs, None).expect("valid");
        assert_eq!(
            req.fields,
            Some(vec!["id".to_string(), "email".to_string()])
        );
        assert_eq!(
            req.search.filter,
            Some(json!({"and": [
                {"field": "email", "op": "is_null", "value": false},
                {"field": "lifecycle_stage", "op": "eq", "value": "new"}
            ]}))
        );
        for bad in [
            ("format", "xml"),
            ("limit", "5"),
            ("fields", "id,,email"),
            ("filter", "{"),
        ] {
            let pairs = vec![(bad.0.to_string(), bad.1.to_string())];
            match ExportRequest::parse(&pairs, None) {
                Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, bad.0),
                other => panic!("{bad:?}: {:?}", other.err()),
            }
        }
    }
}
