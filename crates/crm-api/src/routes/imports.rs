//! `/api/v1/imports`: bulk imports of CSV or NDJSON files into every record resource (see
//! [`crate::imports`] for how they are stored, run and resumed).

use crate::auth::{Actor, Auth, Principal};
use crate::error::{ApiError, ApiResult, Problem, ReadErrors, WriteErrors};
use crate::exports::Format;
use crate::extract::{bool_param, QueryPairs};
use crate::imports::{plan_columns, Importer, Mode, RowCounter, CHUNK_BYTES};
use crate::routes::{activities, companies, contacts, deals, leads, price_books, products, quotas};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::ImportRow;
use crm_db::repo::imports as repo;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The importable resources: every [`crate::records::Record`] but quotes (whose lines and
/// numbering go through their own endpoints). A new record resource is imported by
/// naming it here.
pub static IMPORTERS: &[Importer] = &[
    Importer::of::<contacts::Contacts>(),
    Importer::of::<companies::Companies>(),
    Importer::of::<leads::Leads>(),
    Importer::of::<deals::Deals>(),
    Importer::of::<activities::Activities>(),
    Importer::of::<products::Products>(),
    Importer::of::<price_books::PriceBooks>(),
    Importer::of::<quotas::Quotas>(),
];

/// The objects `POST /imports` accepts.
pub fn objects() -> Vec<&'static str> {
    IMPORTERS.iter().map(|i| i.object).collect()
}

fn importer(object: &str) -> Option<&'static Importer> {
    IMPORTERS.iter().find(|i| i.object == object)
}

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub struct Import {
    pub id: String,
    /// What the rows become: `contacts`, `companies`, …
    pub object: String,
    pub format: Format,
    pub mode: Mode,
    /// The field an upsert matches existing records on.
    pub match_on: Option<String>,
    /// Rows are validated and counted, never written.
    pub dry_run: bool,
    /// `queued` (waiting for a worker), `running`, `completed` (every row was processed;
    /// `failed` counts those refused), `failed` (the job stopped; `error` says why; the
    /// counts are exact up to where it stopped) or `cancelled`.
    #[schema(example = "running")]
    pub status: String,
    /// The file's size in bytes.
    pub bytes_total: i64,
    /// Data rows in the file (a CSV header is not one; blank lines are skipped).
    pub rows_total: i64,
    /// Rows done so far: `created` + `updated` + `failed`.
    pub rows_processed: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    /// Why the job failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

impl From<ImportRow> for Import {
    fn from(r: ImportRow) -> Self {
        Import {
            format: if r.format == "ndjson" {
                Format::Ndjson
            } else {
                Format::Csv
            },
            mode: if r.mode == "upsert" {
                Mode::Upsert
            } else {
                Mode::Create
            },
            id: r.id,
            object: r.object,
            match_on: r.match_on,
            dry_run: r.dry_run,
            status: r.status,
            bytes_total: r.bytes_total,
            rows_total: r.rows_total,
            rows_processed: r.rows_processed,
            created: r.created,
            updated: r.updated,
            failed: r.failed,
            error: r.error,
            created_at: utc(r.created_at),
            started_at: r.started_at.map(utc),
            finished_at: r.finished_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportPage {
    pub data: Vec<Import>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A row that was not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRowError {
    /// The line of the file the row starts on (1 is a CSV file's header).
    pub line: i64,
    /// What the single-record endpoint would have answered.
    pub error: Problem,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorPage {
    pub data: Vec<ImportRowError>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The body of `POST /imports`: the file's bytes, of any size (up to
/// `CRM_IMPORT_MAX_BYTES`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImportFile(pub Vec<u8>);

/// What `POST /imports` was asked to do.
struct Options {
    importer: &'static Importer,
    format: Format,
    mode: Mode,
    match_on: Option<String>,
    dry_run: bool,
    mapping: Option<Map<String, Value>>,
}

/// The format a `Content-Type` names: `Some(None)` for a neutral type that leaves it to
/// `format`, `None` for a type an import cannot be.
fn format_of_content_type(ct: Option<&str>) -> Option<Option<Format>> {
    let Some(ct) = ct else { return Some(None) };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "text/csv" => Some(Some(Format::Csv)),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Some(Some(Format::Ndjson))
        }
        "" | "text/plain" | "application/octet-stream" => Some(None),
        _ => None,
    }
}

fn parse_options(pairs: &[(String, String)], content_type: Option<&str>) -> ApiResult<Options> {
    let (mut object, mut format, mut mode, mut match_on, mut dry_run, mut mapping) =
        (None, None, None, None, false, None);
    for (k, v) in pairs {
        match k.as_str() {
            "object" => object = Some(v.clone()),
            "format" => format = Some(Format::parse_param(v)?),
            "mode" => {
                mode = Some(match v.as_str() {
                    "create" => Mode::Create,
                    "upsert" => Mode::Upsert,
                    _ => {
                        return Err(ApiError::field(
                            "mode",
                            "invalid_value",
                            "must be `create` or `upsert`",
                        ))
                    }
                })
            }
            "match_on" => match_on = Some(v.clone()),
            "dry_run" => dry_run = bool_param("dry_run", v)?,
            "mapping" => {
                let m: Map<String, Value> = serde_json::from_str(v).map_err(|e| {
                    ApiError::field(
                        "mapping",
                        "invalid_json",
                        format!("must be a JSON object of column → field name (or null): {e}"),
                    )
                })?;
                mapping = Some(m);
            }
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    "known: object, format, mode, match_on, dry_run, mapping",
                ))
            }
        }
    }
    let Some(object) = object else {
        return Err(ApiError::field(
            "object",
            "required",
            format!("name what the rows become: one of {}", objects().join(", ")),
        ));
    };
    let Some(importer) = importer(&object) else {
        return Err(ApiError::field(
            "object",
            "invalid_value",
            format!("must be one of {}", objects().join(", ")),
        ));
    };
    let Some(by_type) = format_of_content_type(content_type) else {
        return Err(ApiError::UnsupportedMediaType(
            "an import's body is the file itself: text/csv or application/x-ndjson".into(),
        ));
    };
    let format = match (format, by_type) {
        (Some(f), Some(t)) if f != t => {
            return Err(ApiError::field(
                "format",
                "conflict",
                "`format` and the Content-Type name different formats",
            ))
        }
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => return Err(ApiError::field(
            "format",
            "required",
            "give `format` (csv or ndjson) or a Content-Type of text/csv or application/x-ndjson",
        )),
    };
    let mode = mode.unwrap_or(if match_on.is_some() {
        Mode::Upsert
    } else {
        Mode::Create
    });
    let match_on = match (mode, match_on) {
        (Mode::Create, Some(_)) => {
            return Err(ApiError::field(
                "match_on",
                "invalid_value",
                "only an upsert matches records",
            ))
        }
        (Mode::Create, None) => None,
        (Mode::Upsert, m) => {
            let m = m.or_else(|| importer.match_on.first().map(|s| s.to_string()));
            match m {
                Some(m) if importer.match_on.contains(&m.as_str()) => Some(m),
                _ => {
                    return Err(ApiError::field(
                        "match_on",
                        "invalid_value",
                        format!("must be one of: {}", importer.match_on.join(", ")),
                    ))
                }
            }
        }
    };
    if let Some(m) = &mapping {
        if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string() && !v.is_null()) {
            return Err(ApiError::field(
                &format!("mapping.{k}"),
                "invalid_type",
                "must be a field name, or null to skip the column",
            ));
        }
    }
    Ok(Options {
        importer,
        format,
        mode,
        match_on,
        dry_run,
        mapping,
    })
}

/// Start an import.
///
/// The body is the file itself, CSV (RFC 4180, with a header row) or NDJSON (one JSON
/// object per line), of any size: it is streamed into storage, its rows counted on the way,
/// and the job queued (202). A worker then writes its rows in batches, each validated as
/// the single-record endpoint would validate it; follow it with `GET /imports/{id}` and
/// read refused rows, with their line numbers, at `GET /imports/{id}/errors`.
///
/// CSV columns are named by the header: a field of the record, `custom.<name>` for a
/// custom field, or another name that `mapping` maps to one (or to null, to skip it). An
/// unknown column is a 422 naming it, before anything is stored. An empty cell leaves
/// its field out (an upsert leaves it unchanged); text fields take a cell as it is, other
/// fields read it as JSON (`42`, `true`, `["vip"]`, `{"email": true}`). NDJSON lines are
/// records as `POST /{object}` takes them; `mapping` renames (or, with null, drops) keys.
///
/// `mode=upsert` updates the record whose `match_on` field holds a row's value, or
/// creates one; a value repeated in the file updates the record its first row made. A row
/// that would change nothing in its record leaves the record as it is (no new version, no
/// event) and counts as `updated`.
/// `dry_run=true` validates and counts without writing anything.
///
/// A job survives a crash or restart of the server: it resumes after the last batch it
/// committed, and no row is written twice. Imports draw on the bulk rate-limit budget.
/// With `Idempotency-Key`, a repeat of the same upload (same query and bytes) within 24 h
/// answers with the first response (`Idempotent-Replayed: true`) and queues nothing; the
/// body is fingerprinted as it is stored, never buffered.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", operation_id = "create_import",
    params(
        ("object" = String, Query, description = "What the rows become: `contacts`, `companies`, …"),
        ("format" = Option<Format>, Query, description = "`csv` or `ndjson` (default: from `Content-Type`)"),
        ("mode" = Option<Mode>, Query, description = "`create` (the default) or `upsert` (the default when `match_on` is given)"),
        ("match_on" = Option<String>, Query, description = "For upserts: `external_id`, or `email` for contacts; `sku` for products (default: the object's first)"),
        ("dry_run" = Option<bool>, Query, description = "Validate and count only; nothing is written"),
        ("mapping" = Option<String>, Query, description = "A JSON object of column (CSV) or key (NDJSON) → field name, or null to skip it", example = r#"{"E-mail":"email","Segment":"custom.segment","Notes":null}"#),
    ),
    request_body(description = "The file", content(
        (inline(ImportFile) = "text/csv", example = "email,first_name,custom.segment\r\nada@example.com,Ada,smb\r\n"),
        (inline(ImportFile) = "application/x-ndjson", example = "{\"email\":\"ada@example.com\",\"first_name\":\"Ada\"}\n")
    )),
    responses(
        (status = 202, description = "Stored and queued", body = Import, headers(("Location" = String, description = "`/api/v1/imports/{id}`"))),
        WriteErrors
    ),
    security(("bearer" = [])))]
#[post("/imports")]
pub async fn create_import(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let opts = parse_options(&q.0, content_type)?;
    p.require(opts.importer.write)?;
    let now = crm_domain::values_time::now();
    let (actor_kind, actor_id) = match &p.actor {
        Actor::User { id, .. } => ("user", id.clone()),
        Actor::ApiKey { id, .. } => ("api_key", id.clone()),
    };
    let row = ImportRow {
        workspace_id: p.workspace.as_string(),
        id: crm_domain::new_id().to_string(),
        object: opts.importer.object.to_string(),
        format: match opts.format {
            Format::Csv => "csv".into(),
            Format::Ndjson => "ndjson".into(),
        },
        mode: opts.mode.as_str().to_string(),
        match_on: opts.match_on.clone(),
        dry_run: opts.dry_run,
        mapping: opts
            .mapping
            .as_ref()
            .map(|m| Value::Object(m.clone()).to_string()),
        column_targets: None,
        status: "uploading".into(),
        bytes_total: 0,
        rows_total: 0,
        rows_processed: 0,
        created: 0,
        updated: 0,
        failed: 0,
        next_offset: 0,
        next_line: 1,
        error: None,
        actor_kind: actor_kind.into(),
        actor_id,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        attempts: 0,
    };
    let id = row.id.clone();
    // Checked before anything is stored.
    let key = crate::idempotency::key_of(req.headers())?;
    let fingerprint = key.map(|key| {
        let head =
            crate::idempotency::fingerprint_head(req.method(), req.path(), req.query_string());
        (
            crate::idempotency::caller_key(&p, key),
            Sha256::new_with_prefix(head),
        )
    });
    state.db(move |c| Ok(repo::insert(c, &row)?)).await?;
    match upload(&state, &p, &id, &opts, body, fingerprint).await {
        Ok(Uploaded::Queued(location, body)) => Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, location))
            .content_type("application/json")
            .body(body)),
        Ok(Uploaded::Repeat(first, hash)) => crate::idempotency::replay(first, &hash),
        Err(e) => {
            let ws = p.workspace;
            if let Err(cleanup) = state.db(move |c| Ok(repo::delete(c, ws, &id)?)).await {
                tracing::warn!(error = %cleanup, "an import whose upload failed was not removed");
            }
            Err(e)
        }
    }
}

/// How an upload ended: queued (the 202 to answer with), or found to repeat an upload made
/// under the same `Idempotency-Key` (the first one's stored answer, and this one's
/// fingerprint), in which case this one's job was removed.
enum Uploaded {
    /// Its `Location` and body.
    Queued(String, String),
    Repeat(crm_db::models::IdempotencyRow, String),
}

/// Stores the body in chunks while counting its rows (and, under an `Idempotency-Key`,
/// fingerprinting it), and queues the job.
async fn upload(
    state: &web::Data<AppState>,
    p: &Principal,
    id: &str,
    opts: &Options,
    mut body: web::Payload,
    mut fingerprint: Option<(crm_db::repo::idempotency::Key, Sha256)>,
) -> ApiResult<Uploaded> {
    let limit = state.config.import_max_bytes;
    let mut counter = RowCounter::new(opts.format);
    let mut buf = web::BytesMut::with_capacity(CHUNK_BYTES);
    let (mut seq, mut stored, mut total) = (0i32, 0i64, 0u64);
    let mut start: Option<(String, i64, i64)> = match opts.format {
        Format::Csv => None,
        Format::Ndjson => Some((String::new(), 0, 1)),
    };
    let store = |seq: i32, offset: i64, data: web::Bytes| {
        let (ws, id) = (p.workspace, id.to_string());
        state.db(move |c| Ok(repo::add_chunk(c, ws, &id, seq, offset, &data)?))
    };
    loop {
        let chunk = body.next().await;
        let at_end = chunk.is_none();
        let bytes = match chunk {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return Err(ApiError::BadRequest(format!(
                    "the body could not be read: {e}"
                )))
            }
            None => web::Bytes::new(),
        };
        total += bytes.len() as u64;
        if total > limit {
            return Err(ApiError::PayloadTooLarge(limit as usize));
        }
        counter.feed(&bytes)?;
        if let Some((_, hasher)) = &mut fingerprint {
            hasher.update(&bytes);
        }
        if start.is_none() {
            if let Some((header, offset, line)) = counter.header().cloned() {
                let ws = p.workspace;
                let object = opts.importer.object;
                let defs = state
                    .db(move |c| Ok(crm_db::repo::fields::defs(c, ws, object)?))
                    .await?;
                let targets = plan_columns(opts.importer, &header, opts.mapping.as_ref(), &defs)?;
                start = Some((
                    serde_json::to_string(&targets).map_err(ApiError::internal)?,
                    offset,
                    line,
                ));
            }
        }
        buf.extend_from_slice(&bytes);
        while buf.len() >= CHUNK_BYTES || (at_end && !buf.is_empty()) {
            let piece = buf.split_to(buf.len().min(CHUNK_BYTES)).freeze();
            let len = piece.len() as i64;
            store(seq, stored, piece).await?;
            seq += 1;
            stored += len;
        }
        if at_end {
            break;
        }
    }
    let Some((targets, offset, line)) = start else {
        return Err(ApiError::field(
            "body",
            "required",
            "a CSV import needs a header row naming its columns",
        ));
    };
    let rows = counter.rows();
    let (ws, id) = (p.workspace, id.to_string());
    let targets = (opts.format == Format::Csv).then_some(targets);
    let fingerprint = fingerprint.map(|(key, hasher)| (key, crate::auth::hex(&hasher.finalize())));
    // One transaction, so the job is answered as queued even if a worker claims it at once,
    // and its key names it from the moment it is queued.
    state
        .tx(move |c| {
            if let Some((key, hash)) = &fingerprint {
                if let Some(first) = crm_db::repo::idempotency::claim(c, key, hash)? {
                    repo::delete(c, ws, &id)?;
                    return Ok(Uploaded::Repeat(first, hash.clone()));
                }
            }
            let now = crm_domain::values_time::now();
            let row = repo::queue(
                c,
                ws,
                &id,
                repo::Queued {
                    bytes_total: stored,
                    rows_total: rows,
                    column_targets: targets,
                    next_offset: offset,
                    next_line: line,
                },
                now,
            )?;
            let location = format!("/api/v1/imports/{}", row.id);
            let body = serde_json::to_string(&Import::from(row)).map_err(ApiError::internal)?;
            if let Some((key, _)) = &fingerprint {
                let headers = serde_json::json!([
                    [header::LOCATION.as_str(), &location],
                    [header::CONTENT_TYPE.as_str(), "application/json"]
                ]);
                crm_db::repo::idempotency::complete(c, key, 202, &headers.to_string(), &body)?;
            }
            Ok(Uploaded::Queued(location, body))
        })
        .await
}

/// The import, if the caller may see it: imports are read by those who may write their
/// object.
async fn visible(state: &web::Data<AppState>, p: &Principal, id: String) -> ApiResult<ImportRow> {
    let ws = p.workspace;
    let row = state.db(move |c| Ok(repo::get(c, ws, &id)?)).await?;
    if row.status == "uploading" {
        return Err(ApiError::NotFound);
    }
    let write = importer(&row.object)
        .map(|i| i.write)
        .ok_or(ApiError::NotFound)?;
    p.require(write)?;
    Ok(row)
}

/// An import: where it stands.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", operation_id = "get_import",
    params(("id" = String, Path)),
    responses((status = 200, description = "The import", body = Import), ReadErrors),
    security(("bearer" = [])))]
#[get("/imports/{id}")]
pub async fn get_import(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Import>> {
    Ok(web::Json(
        visible(&state, &p, id.into_inner()).await?.into(),
    ))
}

/// What `GET /imports?status=` accepts.
const LISTED_STATUSES: &[&str] = &["queued", "running", "completed", "failed", "cancelled"];

/// Imports, newest first: those of the objects the caller may write, optionally only of
/// some statuses (`status=queued,running` for the work in progress) or one object.
#[utoipa::path(get, path = "/api/v1/imports", tag = "imports", operation_id = "list_imports",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("status" = Option<String>, Query, max_length = 100, description = "Comma-separated statuses: `queued`, `running`, `completed`, `failed`, `cancelled`"),
        ("object" = Option<String>, Query, max_length = 50, description = "Only imports into this object, e.g. `contacts`")),
    responses((status = 200, description = "Imports", body = ImportPage), ReadErrors),
    security(("bearer" = [])))]
#[get("/imports")]
pub async fn list_imports(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<ImportPage>> {
    let (mut statuses, mut object) = (None, None);
    let mut paging = Vec::new();
    for (k, v) in q.0 {
        match k.as_str() {
            "status" => {
                let listed: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = listed
                    .iter()
                    .find(|s| !LISTED_STATUSES.contains(&s.as_str()))
                {
                    return Err(ApiError::field(
                        "status",
                        "invalid_value",
                        format!(
                            "unknown status `{bad}`; one or more of {}",
                            LISTED_STATUSES.join(", ")
                        ),
                    ));
                }
                statuses = Some(listed);
            }
            "object" => {
                if !IMPORTERS.iter().any(|i| i.object == v) {
                    return Err(ApiError::field(
                        "object",
                        "invalid_value",
                        format!("`{v}` is not an object that takes imports"),
                    ));
                }
                object = Some(v);
            }
            _ => paging.push((k, v)),
        }
    }
    let (limit, cursor) = crate::extract::id_page_params(&QueryPairs(paging))?;
    let objects: Vec<&'static str> = IMPORTERS
        .iter()
        .filter(|i| p.can(i.write))
        .filter(|i| object.as_deref().is_none_or(|o| o == i.object))
        .map(|i| i.object)
        .collect();
    let ws = p.workspace;
    let rows = state
        .db(move |c| {
            Ok(repo::list(
                c,
                ws,
                &objects,
                statuses.as_deref(),
                cursor.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    let (rows, next_cursor) = crate::extract::id_page(rows, limit, |r| &r.id);
    Ok(web::Json(ImportPage {
        data: rows.into_iter().map(Import::from).collect(),
        next_cursor,
    }))
}

/// The rows of an import that were refused, by line, each with the problem the
/// single-record endpoint would have answered.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors", tag = "imports", operation_id = "list_import_errors",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Refused rows", body = ImportErrorPage), ReadErrors),
    security(("bearer" = [])))]
#[get("/imports/{id}/errors")]
pub async fn list_import_errors(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<ImportErrorPage>> {
    let mut limit = 50i64;
    let mut after = 0i64;
    for (k, v) in &q.0 {
        match k.as_str() {
            "limit" => limit = crate::extract::limit_param(v)?,
            "cursor" => {
                after = v.parse().ok().filter(|l| *l >= 0).ok_or_else(|| {
                    ApiError::field("cursor", "invalid_cursor", "the cursor is not valid")
                })?
            }
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    "known: limit, cursor",
                ))
            }
        }
    }
    let row = visible(&state, &p, id.into_inner()).await?;
    let ws = p.workspace;
    let mut rows = state
        .db(move |c| Ok(repo::errors(c, ws, &row.id, after, limit + 1)?))
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| r.line.to_string()))
        .flatten();
    let data = rows
        .into_iter()
        .map(|r| {
            Ok(ImportRowError {
                line: r.line,
                error: serde_json::from_str(&r.problem).map_err(ApiError::internal)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(web::Json(ImportErrorPage { data, next_cursor }))
}

/// Cancel an import. Rows of batches already committed stay; the batch in progress
/// finishes first (it is all or nothing), and nothing after it is written.
#[utoipa::path(post, path = "/api/v1/imports/{id}/cancel", tag = "imports", operation_id = "cancel_import",
    params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled", body = Import), WriteErrors),
    security(("bearer" = [])))]
#[post("/imports/{id}/cancel")]
pub async fn cancel_import(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Import>> {
    let row = visible(&state, &p, id.into_inner()).await?;
    let ws = p.workspace;
    let row = state
        .db(move |c| {
            crm_db::write_tx(c, |c| {
                let now = crm_domain::values_time::now();
                if !repo::cancel(c, ws, &row.id, now)? {
                    let status = repo::get(c, ws, &row.id)?.status;
                    return Err(ApiError::Conflict {
                        message: format!("the import has already ended: it is {status}"),
                        existing_id: None,
                    });
                }
                Ok(repo::get(c, ws, &row.id)?)
            })
        })
        .await?;
    Ok(web::Json(row.into()))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_import)
        .service(list_imports)
        .service(get_import)
        .service(list_import_errors)
        .service(cancel_import);
}
