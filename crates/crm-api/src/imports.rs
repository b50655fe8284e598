//! Bulk imports of CSV and NDJSON files into any [`Record`] resource, written once for all
//! of them.
//!
//! **Upload.** `POST /imports` reads the body as a stream and stores it in the database in
//! pieces of [`CHUNK_BYTES`], counting its rows as they pass (so memory stays flat whatever
//! the file's size). A CSV file's header is checked against the resource's fields before
//! anything else is stored: an unknown column is a 422 naming it. The job is then queued.
//!
//! **Run.** A worker of any server process claims the job with a lease and feeds its rows,
//! [`JobSettings::batch_rows`] at a time, through the batch path (`batch::run_rows`): the
//! same validation, upsert matching, assignment rules and events as the API. Each batch
//! commits in one transaction with the job's counters, its checkpoint (the byte offset and
//! line where the next row starts) and the batch's row errors, on condition that the worker
//! still holds the lease and the job was not cancelled. A crash therefore loses at most the
//! batch in flight, which is rolled back whole; whoever takes the job over resumes at the
//! checkpoint, and no row is ever written twice.

use crate::auth::{principal_of_actor, Principal};
use crate::batch::{BatchOp, BatchOperation, BatchRequest, BatchResult};
use crate::error::{ApiError, ApiResult};
use crate::records::Record;
use crm_db::models::{ImportErrorRow, ImportRow};
use crm_db::repo::imports as repo;
use crm_db::{DbConnection, Pool};
use crm_domain::custom_field::{CustomFieldDef, CustomFieldType};
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Read};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// The size of the pieces an upload is stored in.
pub const CHUNK_BYTES: usize = 1 << 20;

/// What an import does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ImportMode)]
pub enum Mode {
    /// Every row is a new record.
    Create,
    /// A row updates the record whose `match_on` field holds its value, or creates one.
    Upsert,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Create => "create",
            Mode::Upsert => "upsert",
        }
    }
}

/// A field of a resource's input, as an import column may fill it.
#[derive(Debug, Clone)]
pub struct InputField {
    pub name: String,
    /// A text field: a cell is taken as it is. Other cells are read as JSON (numbers,
    /// booleans, lists, objects) and otherwise given as text, for validation to judge.
    pub text: bool,
}

/// One importable resource: what an upload checks and how a worker writes its rows.
pub struct Importer {
    pub object: &'static str,
    pub write: Permission,
    pub match_on: &'static [&'static str],
    pub fields: fn() -> Vec<InputField>,
    pub run: fn(&mut DbConnection, &Principal, &BatchRequest) -> ApiResult<Vec<BatchResult>>,
}

impl Importer {
    pub const fn of<R: Record>() -> Importer {
        Importer {
            object: R::OBJECT,
            write: R::WRITE,
            match_on: R::MATCH_ON,
            fields: input_fields::<R>,
            run: crate::batch::run_rows::<R>,
        }
    }
}

/// The writable fields of a resource's input, in its schema's order.
fn input_fields<R: Record>() -> Vec<InputField> {
    let RefOr::T(Schema::Object(o)) = <R::Input as utoipa::PartialSchema>::schema() else {
        return Vec::new();
    };
    o.properties
        .iter()
        .filter(|(name, _)| name.as_str() != "custom" && !crate::records::is_read_only::<R>(name))
        .map(|(name, schema)| InputField {
            name: name.clone(),
            text: match schema {
                RefOr::T(Schema::Object(o)) => match &o.schema_type {
                    SchemaType::Type(t) => *t == Type::String,
                    SchemaType::Array(ts) => ts.contains(&Type::String),
                    SchemaType::AnyValue => false,
                },
                _ => false,
            },
        })
        .collect()
}

/// Where one CSV column goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// A field of the record; `text` as in [`InputField`].
    Field {
        name: String,
        text: bool,
    },
    /// A custom field, with whether its cells are JSON (numbers, booleans, lists).
    Custom {
        name: String,
        json: bool,
    },
    Skip,
}

/// Decides where each column of a CSV header goes: `mapping` names a column's field (or
/// null to skip it), else the header names it. An unknown or read-only field, a field
/// given by two columns, or a mapping for a column the header lacks is a 422.
pub fn plan_columns(
    importer: &Importer,
    header: &[String],
    mapping: Option<&Map<String, Value>>,
    defs: &[CustomFieldDef],
) -> ApiResult<Vec<Target>> {
    let fields = (importer.fields)();
    // Whether its records carry custom fields (`custom.<name>` columns).
    let custom = crm_domain::custom_field::CustomObject::parse(importer.object).is_some();
    let mut errors = Vec::new();
    let mut targets = Vec::with_capacity(header.len());
    for column in header {
        let name = match mapping.and_then(|m| m.get(column)) {
            Some(Value::Null) => {
                targets.push(Target::Skip);
                continue;
            }
            Some(Value::String(to)) => to.as_str(),
            Some(_) => {
                errors.push(FieldError::new(
                    format!("mapping.{column}"),
                    "invalid_type",
                    "must be a field name, or null to skip the column",
                ));
                continue;
            }
            None => column.trim(),
        };
        let target = if let Some(f) = fields.iter().find(|f| f.name == name) {
            Target::Field {
                name: f.name.clone(),
                text: f.text,
            }
        } else if let Some(def) = name
            .strip_prefix("custom.")
            .filter(|_| custom)
            .and_then(|c| defs.iter().find(|d| d.name == c))
        {
            Target::Custom {
                name: def.name.clone(),
                json: matches!(
                    def.field_type,
                    CustomFieldType::Number
                        | CustomFieldType::Boolean
                        | CustomFieldType::MultiSelect
                ),
            }
        } else {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            errors.push(FieldError::new(
                column,
                "unknown_column",
                format!(
                    "{} have no writable field `{name}`; map the column to one of {}{} with `mapping`, or to null to skip it",
                    importer.object,
                    known.join(", "),
                    if custom { ", custom.<name> of a defined custom field" } else { "" },
                ),
            ));
            continue;
        };
        if targets.contains(&target) {
            errors.push(FieldError::new(
                column,
                "duplicate_column",
                format!("another column already fills `{name}`"),
            ));
        }
        targets.push(target);
    }
    if let Some(m) = mapping {
        for key in m.keys().filter(|k| !header.contains(k)) {
            errors.push(FieldError::new(
                format!("mapping.{key}"),
                "unknown_column",
                "the file's header has no such column",
            ));
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The record a CSV row describes. An empty cell leaves its field out (on an upsert of an
/// existing record: unchanged).
fn csv_row(targets: &[Target], record: &[Vec<u8>]) -> ApiResult<Value> {
    if record.len() != targets.len() {
        return Err(ApiError::field(
            "row",
            "wrong_column_count",
            format!(
                "the header has {} columns, this row {}",
                targets.len(),
                record.len()
            ),
        ));
    }
    let mut obj = Map::new();
    let mut custom = Map::new();
    for (target, cell) in targets.iter().zip(record) {
        if cell.is_empty() || *target == Target::Skip {
            continue;
        }
        let name = match target {
            Target::Field { name, .. } | Target::Custom { name, .. } => name,
            Target::Skip => continue,
        };
        let text = std::str::from_utf8(cell).map_err(|_| {
            ApiError::field(name, "invalid_encoding", "the cell is not valid UTF-8")
        })?;
        let value = match target {
            Target::Field { text: true, .. } | Target::Custom { json: false, .. } => {
                Value::String(text.to_string())
            }
            _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())),
        };
        match target {
            Target::Custom { .. } => custom.insert(name.clone(), value),
            _ => obj.insert(name.clone(), value),
        };
    }
    if !custom.is_empty() {
        obj.insert("custom".into(), Value::Object(custom));
    }
    Ok(Value::Object(obj))
}

/// The record an NDJSON line describes, its keys renamed (or dropped) by `mapping`.
fn ndjson_row(line: &[u8], mapping: Option<&Map<String, Value>>) -> ApiResult<Value> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| ApiError::field("row", "invalid_json", format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::field(
            "row",
            "invalid_type",
            "each line must be a JSON object",
        ));
    };
    let Some(mapping) = mapping else {
        return Ok(Value::Object(obj));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        match mapping.get(&k) {
            Some(Value::Null) => {}
            Some(Value::String(to)) => {
                out.insert(to.clone(), v);
            }
            _ => {
                out.insert(k, v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// A CSV record as [`CsvScanner`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// Its fields (empty when the scanner was asked not to keep them).
    pub fields: Vec<Vec<u8>>,
    /// The line it starts on.
    pub line: i64,
    /// Where what follows it starts: byte offset and line (a position to resume from).
    pub next_offset: i64,
    pub next_line: i64,
}

/// Reads CSV (RFC 4180; `\n` or `\r\n` line ends; blank lines skipped) from bytes
/// fed in pieces of any size, keeping count of byte offsets and lines so that a record's
/// line and the position after it are exact wherever the pieces were cut. The upload
/// counts rows with it and the worker reads them with it, so both see the same rows.
pub struct CsvScanner {
    // Boxed: the reader holds its state machine inline (about a kilobyte).
    core: Box<csv_core::Reader>,
    /// Keep the fields of records (else only the first record's, the header).
    keep: bool,
    fields: Vec<Vec<u8>>,
    field: Vec<u8>,
    /// Bytes consumed and the current line, counting from where scanning began.
    offset: i64,
    line: i64,
    /// The line the record being read started on; `None` between records.
    started: Option<i64>,
    records: i64,
}

impl CsvScanner {
    /// Starts at byte `offset`, on line `line`, of a file.
    pub fn new(keep: bool, offset: i64, line: i64) -> CsvScanner {
        CsvScanner {
            core: Box::new(csv_core::Reader::new()),
            keep,
            fields: Vec::new(),
            field: Vec::new(),
            offset,
            line,
            started: None,
            records: 0,
        }
    }

    /// Lines are counted by `\n`, so a position can be resumed from anywhere.
    fn count_lines(&mut self, bytes: &[u8]) {
        self.line += bytes.iter().filter(|b| **b == b'\n').count() as i64;
        self.offset += bytes.len() as i64;
    }

    /// Reads the next piece of the file (`at_end`: the last one, possibly empty), calling
    /// `found` for each record it completes.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        at_end: bool,
        found: &mut dyn FnMut(CsvRecord) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let mut out = [0u8; 8192];
        loop {
            if self.started.is_none() {
                // Between records: line ends (and the blank lines they make) are skipped.
                let skip = input
                    .iter()
                    .take_while(|b| **b == b'\n' || **b == b'\r')
                    .count();
                self.count_lines(&input[..skip]);
                input = &input[skip..];
                if input.is_empty() {
                    if at_end {
                        // Ends the file for the reader, which then has nothing pending.
                        self.core.read_field(&[], &mut out);
                    }
                    return Ok(());
                }
                self.started = Some(self.line);
            }
            // An empty input tells csv_core the file has ended: only give it one at the end.
            let (res, nin, nout) = self.core.read_field(input, &mut out);
            let keep = self.keep || self.records == 0;
            if keep {
                self.field.extend_from_slice(&out[..nout]);
            }
            self.count_lines(&input[..nin]);
            input = &input[nin..];
            match res {
                csv_core::ReadFieldResult::InputEmpty | csv_core::ReadFieldResult::OutputFull => {}
                csv_core::ReadFieldResult::Field { record_end } => {
                    if keep {
                        self.fields.push(std::mem::take(&mut self.field));
                    }
                    if record_end {
                        let line = self.started.take().unwrap_or(self.line);
                        self.records += 1;
                        found(CsvRecord {
                            fields: std::mem::take(&mut self.fields),
                            line,
                            next_offset: self.offset,
                            next_line: self.line,
                        })?;
                    }
                }
                csv_core::ReadFieldResult::End => return Ok(()),
            }
            if input.is_empty() && !at_end {
                return Ok(());
            }
        }
    }
}

/// Counts the rows of an upload as its bytes pass, and finds a CSV file's header.
pub enum RowCounter {
    Csv {
        scanner: CsvScanner,
        /// Once read: the header row's names, and where the first data row starts
        /// (byte offset, line).
        header: Option<(Vec<String>, i64, i64)>,
        rows: i64,
    },
    Ndjson {
        rows: i64,
        line_has_content: bool,
    },
}

impl RowCounter {
    pub fn new(format: crate::exports::Format) -> RowCounter {
        match format {
            crate::exports::Format::Csv => RowCounter::Csv {
                scanner: CsvScanner::new(false, 0, 1),
                header: None,
                rows: 0,
            },
            crate::exports::Format::Ndjson => RowCounter::Ndjson {
                rows: 0,
                line_has_content: false,
            },
        }
    }

    /// Reads the next bytes of the file (an empty slice at its end).
    pub fn feed(&mut self, input: &[u8]) -> ApiResult<()> {
        match self {
            RowCounter::Ndjson {
                rows,
                line_has_content,
            } => {
                for b in input {
                    match b {
                        b'\n' => {
                            *rows += i64::from(*line_has_content);
                            *line_has_content = false;
                        }
                        b' ' | b'\t' | b'\r' => {}
                        _ => *line_has_content = true,
                    }
                }
                if input.is_empty() && *line_has_content {
                    *rows += 1;
                    *line_has_content = false;
                }
                Ok(())
            }
            RowCounter::Csv {
                scanner,
                header,
                rows,
            } => scanner.feed(input, input.is_empty(), &mut |r| {
                if header.is_some() {
                    *rows += 1;
                    return Ok(());
                }
                let names = r
                    .fields
                    .into_iter()
                    .map(|f| {
                        String::from_utf8(f).map_err(|_| {
                            ApiError::field(
                                "header",
                                "invalid_encoding",
                                "the header row is not valid UTF-8",
                            )
                        })
                    })
                    .collect::<ApiResult<Vec<String>>>()?;
                *header = Some((names, r.next_offset, r.next_line));
                Ok(())
            }),
        }
    }

    /// The CSV header, once it has been read.
    pub fn header(&self) -> Option<&(Vec<String>, i64, i64)> {
        match self {
            RowCounter::Csv { header, .. } => header.as_ref(),
            RowCounter::Ndjson { .. } => None,
        }
    }

    /// Data rows seen so far (the header is not one).
    pub fn rows(&self) -> i64 {
        match self {
            RowCounter::Csv { rows, .. } | RowCounter::Ndjson { rows, .. } => *rows,
        }
    }
}

/// The stored upload of a job as one byte stream, from a given offset, reading one chunk
/// at a time (each with a connection taken from the pool for that one query).
struct ChunkReader {
    pool: Pool,
    ws: WorkspaceId,
    id: String,
    seq: i32,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    fn open(pool: Pool, ws: WorkspaceId, id: &str, offset: i64) -> ApiResult<ChunkReader> {
        let mut c = pool.get()?;
        let (seq, buf, pos, done) = match repo::chunk_at(&mut c, ws, id, offset)? {
            Some((seq, start, data)) => {
                let pos = usize::try_from(offset - start)
                    .map_err(ApiError::internal)?
                    .min(data.len());
                (seq, data, pos, false)
            }
            None => (-1, Vec::new(), 0, true),
        };
        Ok(ChunkReader {
            pool: pool.clone(),
            ws,
            id: id.to_string(),
            seq,
            buf,
            pos,
            done,
        })
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() && !self.done {
            let mut c = self.pool.get().map_err(std::io::Error::other)?;
            match repo::chunk_after(&mut c, self.ws, &self.id, self.seq)
                .map_err(|e| std::io::Error::other(e.to_string()))?
            {
                Some((seq, _, data)) => {
                    self.seq = seq;
                    self.buf = data;
                    self.pos = 0;
                }
                None => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The rows of a job's file from its checkpoint on.
enum Rows {
    Csv {
        reader: ChunkReader,
        scanner: CsvScanner,
        targets: Vec<Target>,
        /// Records read ahead of the batch being gathered.
        ready: std::collections::VecDeque<CsvRecord>,
        at_end: bool,
        /// Where what follows the last row handed out starts.
        next: (i64, i64),
    },
    Ndjson {
        reader: std::io::BufReader<ChunkReader>,
        mapping: Option<Map<String, Value>>,
        line: Vec<u8>,
        /// Where the next line starts: byte offset and line.
        next: (i64, i64),
    },
}

/// One row read: its line and the record it describes (or why it describes none).
type RowItem = (i64, ApiResult<Value>);

impl Rows {
    /// Reads the next row; `None` at the end of the file.
    fn next(&mut self) -> ApiResult<Option<RowItem>> {
        match self {
            Rows::Csv {
                reader,
                scanner,
                targets,
                ready,
                at_end,
                next,
            } => loop {
                if let Some(r) = ready.pop_front() {
                    *next = (r.next_offset, r.next_line);
                    return Ok(Some((r.line, csv_row(targets, &r.fields))));
                }
                if *at_end {
                    return Ok(None);
                }
                let mut block = vec![0u8; 64 * 1024];
                let n = reader.read(&mut block).map_err(ApiError::internal)?;
                *at_end = n == 0;
                scanner.feed(&block[..n], *at_end, &mut |r| {
                    ready.push_back(r);
                    Ok(())
                })?;
            },
            Rows::Ndjson {
                reader,
                mapping,
                line,
                next,
            } => loop {
                line.clear();
                let n = reader.read_until(b'\n', line).map_err(ApiError::internal)?;
                if n == 0 {
                    return Ok(None);
                }
                let at = next.1;
                next.0 += n as i64;
                if line.last() == Some(&b'\n') {
                    next.1 += 1;
                }
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                return Ok(Some((at, ndjson_row(line, mapping.as_ref()))));
            },
        }
    }

    /// Where what follows the rows read so far starts: (byte offset, line).
    fn position(&self) -> (i64, i64) {
        match self {
            Rows::Csv { next, .. } | Rows::Ndjson { next, .. } => *next,
        }
    }
}

/// How a worker runs jobs.
#[derive(Debug, Clone, Copy)]
pub struct JobSettings {
    /// Rows per batch (and per transaction).
    pub batch_rows: usize,
    /// How long a claim lasts without progress before another worker may take the job.
    pub lease: std::time::Duration,
    /// Turns in a row that may end in an error at the same checkpoint before the job ends
    /// `failed`.
    pub max_attempts: u32,
}

/// How a worker's turn at a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// Completed, failed or found cancelled.
    Finished(String),
    /// The worker was asked to stop; the job was given back at its last checkpoint.
    Released,
    /// Another worker holds the job now (this one stalled past its lease).
    Lost,
}

fn lease_end(s: &JobSettings) -> chrono::NaiveDateTime {
    crm_domain::values_time::now()
        + chrono::Duration::from_std(s.lease).unwrap_or(chrono::Duration::seconds(60))
}

/// Takes the oldest job no live worker holds.
pub fn claim(pool: &Pool, owner: &str, s: &JobSettings) -> ApiResult<Option<ImportRow>> {
    let mut c = pool.get()?;
    Ok(repo::claim(
        &mut c,
        owner,
        crm_domain::values_time::now(),
        lease_end(s),
    )?)
}

/// Why a batch's transaction was rolled back.
enum Rollback {
    Api(ApiError),
    /// A dry run: the batch's outcome, its writes undone.
    DryRun(ApiResult<Vec<BatchResult>>),
    Lost,
}

impl From<diesel::result::Error> for Rollback {
    fn from(e: diesel::result::Error) -> Self {
        Rollback::Api(e.into())
    }
}

impl From<crm_db::RepoError> for Rollback {
    fn from(e: crm_db::RepoError) -> Self {
        Rollback::Api(e.into())
    }
}

impl From<ApiError> for Rollback {
    fn from(e: ApiError) -> Self {
        Rollback::Api(e)
    }
}

/// After a worker's turn at a job ended in an error (the database went away, say): the job
/// keeps its checkpoint, notes the error, and is taken again after a pause that doubles
/// with each turn in a row that failed (at most a lease), until [`run`] gives up on it.
pub fn interrupted(pool: &Pool, owner: &str, job: &ImportRow, s: &JobSettings, e: &ApiError) {
    let pause = s.lease.min(std::time::Duration::from_millis(
        250 << job.attempts.clamp(0, 16),
    ));
    let retry_at = crm_domain::values_time::now()
        + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::seconds(60));
    let noted = uuid::Uuid::parse_str(&job.workspace_id)
        .map_err(ApiError::internal)
        .and_then(|ws| {
            let ws = WorkspaceId::from_authenticated(ws);
            let mut c = pool.get()?;
            Ok(repo::interrupted(
                &mut c,
                ws,
                &job.id,
                owner,
                &e.problem().detail,
                retry_at,
            )?)
        });
    if let Err(note) = noted {
        tracing::warn!(import = %job.id, error = %note, "the interruption of an import was not recorded");
    }
}

/// Runs a claimed job, batch by batch, until it ends, the worker loses it, or `stop` says
/// to stop. An error (the database went away) leaves the job at its last checkpoint (see
/// [`interrupted`]); a job whose turns failed `max_attempts` times in a row ends `failed`.
pub fn run(
    pool: &Pool,
    owner: &str,
    job: &ImportRow,
    importers: &[Importer],
    s: &JobSettings,
    stop: &dyn Fn() -> bool,
) -> ApiResult<JobEnd> {
    let ws = WorkspaceId::from_authenticated(
        uuid::Uuid::parse_str(&job.workspace_id).map_err(ApiError::internal)?,
    );
    let fail = |reason: &str| -> ApiResult<JobEnd> {
        let mut c = pool.get()?;
        let now = crm_domain::values_time::now();
        if repo::finish(&mut c, ws, &job.id, owner, "failed", Some(reason), now)? {
            Ok(JobEnd::Finished("failed".into()))
        } else {
            Ok(JobEnd::Lost)
        }
    };
    if job.attempts > s.max_attempts as i32 {
        return fail(&format!(
            "stopped after {} attempts in a row failed at line {}: {}",
            job.attempts - 1,
            job.next_line,
            job.error.as_deref().unwrap_or("an error")
        ));
    }
    let Some(importer) = importers.iter().find(|i| i.object == job.object) else {
        return fail("the object can no longer be imported");
    };
    let principal = {
        let mut c = pool.get()?;
        principal_of_actor(&mut c, ws, &job.actor_kind, &job.actor_id)?
    };
    let Some(p) = principal else {
        return fail(
            "the user who started the import has been deactivated, or its API key revoked",
        );
    };
    if !p.can(importer.write) {
        return fail(&format!(
            "the user or API key that started the import no longer has {}",
            importer.write.as_str()
        ));
    }
    let mode = if job.mode == "upsert" {
        Mode::Upsert
    } else {
        Mode::Create
    };
    let mapping: Option<Map<String, Value>> = job
        .mapping
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(ApiError::internal)?;
    let (base_offset, base_line) = (job.next_offset, job.next_line);
    let reader = ChunkReader::open(pool.clone(), ws, &job.id, base_offset)?;
    let mut rows = match job.format.as_str() {
        "csv" => Rows::Csv {
            reader,
            scanner: CsvScanner::new(true, base_offset, base_line),
            targets: serde_json::from_str(job.column_targets.as_deref().unwrap_or("[]"))
                .map_err(ApiError::internal)?,
            ready: Default::default(),
            at_end: false,
            next: (base_offset, base_line),
        },
        _ => Rows::Ndjson {
            reader: std::io::BufReader::with_capacity(64 * 1024, reader),
            mapping,
            line: Vec::new(),
            next: (base_offset, base_line),
        },
    };
    loop {
        if stop() {
            let mut c = pool.get()?;
            repo::release(&mut c, ws, &job.id, owner)?;
            return Ok(JobEnd::Released);
        }
        let mut items = Vec::with_capacity(s.batch_rows);
        while items.len() < s.batch_rows {
            match rows.next()? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        let (next_offset, next_line) = rows.position();
        let mut c = pool.get()?;
        if items.is_empty() {
            let now = crm_domain::values_time::now();
            return Ok(
                if repo::finish(&mut c, ws, &job.id, owner, "completed", None, now)? {
                    JobEnd::Finished("completed".into())
                } else {
                    JobEnd::Lost
                },
            );
        }
        let outcome = crm_db::write_tx(&mut c, |c| {
            let (progress, errors) =
                write_batch(c, importer, &p, job, mode, items, (next_offset, next_line))?;
            let now = crm_domain::values_time::now();
            if !repo::advance(c, ws, &job.id, owner, progress, now, lease_end(s))? {
                return Err(Rollback::Lost);
            }
            repo::add_errors(c, &errors)?;
            Ok(progress)
        });
        match outcome {
            Ok(progress) => {
                crate::observe::import_rows(progress.created, progress.updated, progress.failed)
            }
            Err(Rollback::Lost) => {
                // Cancelled meanwhile, or taken over by another worker.
                let now_status = repo::get(&mut c, ws, &job.id)?.status;
                return Ok(if now_status == "cancelled" {
                    JobEnd::Finished(now_status)
                } else {
                    JobEnd::Lost
                });
            }
            Err(Rollback::Api(e)) => return Err(e),
            Err(Rollback::DryRun(_)) => {
                return Err(ApiError::internal("a dry run escaped its savepoint"))
            }
        }
    }
}

/// Writes one batch of rows (in a dry run: writes and undoes them) and says what it did.
fn write_batch(
    c: &mut DbConnection,
    importer: &Importer,
    p: &Principal,
    job: &ImportRow,
    mode: Mode,
    items: Vec<RowItem>,
    (next_offset, next_line): (i64, i64),
) -> Result<(repo::Progress, Vec<ImportErrorRow>), Rollback> {
    let mut lines = Vec::with_capacity(items.len());
    let mut operations = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let problem_row = |line: i64, e: &ApiError| -> Result<ImportErrorRow, Rollback> {
        Ok(ImportErrorRow {
            workspace_id: job.workspace_id.clone(),
            import_id: job.id.clone(),
            line,
            problem: serde_json::to_string(&e.problem()).map_err(ApiError::internal)?,
        })
    };
    for (line, item) in items {
        // What the database cannot store is refused here, as in a request body.
        let item = item.and_then(|data| crate::extract::refuse_nul(&data).map(|()| data));
        match item {
            Ok(data) => {
                lines.push(line);
                operations.push(BatchOperation {
                    op: match mode {
                        Mode::Create => BatchOp::Create,
                        Mode::Upsert => BatchOp::Upsert,
                    },
                    id: None,
                    match_on: job.match_on.clone(),
                    data: Some(data),
                });
            }
            Err(e) => errors.push(problem_row(line, &e)?),
        }
    }
    let mut progress = repo::Progress {
        processed: (lines.len() + errors.len()) as i64,
        failed: errors.len() as i64,
        next_offset,
        next_line,
        ..Default::default()
    };
    if operations.is_empty() {
        return Ok((progress, errors));
    }
    let req = BatchRequest {
        operations,
        atomic: false,
    };
    let results = if job.dry_run {
        use diesel::Connection;
        match c.transaction(|c| Err::<(), _>(Rollback::DryRun((importer.run)(c, p, &req)))) {
            Err(Rollback::DryRun(r)) => r?,
            Err(other) => return Err(other),
            Ok(()) => Vec::new(),
        }
    } else {
        (importer.run)(c, p, &req)?
    };
    for r in results {
        match (r.status, r.error) {
            (201, _) => progress.created += 1,
            (200, _) => progress.updated += 1,
            (_, error) => {
                progress.failed += 1;
                errors.push(ImportErrorRow {
                    workspace_id: job.workspace_id.clone(),
                    import_id: job.id.clone(),
                    line: lines[r.index],
                    problem: serde_json::to_string(&error).map_err(ApiError::internal)?,
                });
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok((progress, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(format: crate::exports::Format, data: &[u8], piece: usize) -> RowCounter {
        let mut c = RowCounter::new(format);
        for p in data.chunks(piece) {
            c.feed(p).unwrap();
        }
        c.feed(&[]).unwrap();
        c
    }

    fn scan(data: &[u8], piece: usize, offset: i64, line: i64) -> Vec<CsvRecord> {
        let mut out = Vec::new();
        let mut s = CsvScanner::new(true, offset, line);
        let mut push = |r| {
            out.push(r);
            Ok(())
        };
        for p in data[offset as usize..].chunks(piece) {
            s.feed(p, false, &mut push).unwrap();
        }
        s.feed(&[], true, &mut push).unwrap();
        out
    }

    const CSV: &[u8] = b"email,note\r\na@x.io,\"two\nlines\"\r\n\r\nb@x.io,plain\nc@x.io,\"q \"\"x\"\"\"\nd@x.io,last";

    #[test]
    fn csv_rows_are_counted_as_the_csv_reader_reads_them() {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(CSV);
        let all: Vec<Vec<Vec<u8>>> = reader
            .byte_records()
            .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect();
        for piece in [1, 2, 3, 7, 1000] {
            let c = count(crate::exports::Format::Csv, CSV, piece);
            assert_eq!(c.rows(), all.len() as i64 - 1, "piece {piece}");
            let (header, offset, line) = c.header().unwrap().clone();
            assert_eq!(header, vec!["email", "note"]);
            // Reading from where the header ends starts with the first data row, on line 2.
            assert_eq!(scan(CSV, piece, offset, line)[0].line, 2);
            let found = scan(CSV, piece, 0, 1);
            let fields: Vec<_> = found.iter().map(|r| r.fields.clone()).collect();
            assert_eq!(fields, all, "piece {piece}");
            let lines: Vec<i64> = found.iter().map(|r| r.line).collect();
            assert_eq!(lines, [1, 2, 5, 6, 7], "piece {piece}");
        }
    }

    #[test]
    fn csv_scanning_resumes_exactly_from_a_records_end() {
        let whole = scan(CSV, 1000, 0, 1);
        for (i, r) in whole.iter().enumerate() {
            for piece in [1, 5, 1000] {
                let rest = scan(CSV, piece, r.next_offset, r.next_line);
                assert_eq!(rest, whole[i + 1..], "after record {i}, piece {piece}");
            }
        }
    }

    #[test]
    fn ndjson_rows_skip_blank_lines_and_count_a_last_line_without_newline() {
        let data = b"{\"a\":1}\n\n  \r\n{\"a\":2}\r\n{\"a\":3}";
        for piece in [1, 4, 100] {
            assert_eq!(count(crate::exports::Format::Ndjson, data, piece).rows(), 3);
        }
    }

    #[test]
    fn cells_become_typed_values_and_empty_cells_are_left_out() {
        let targets = vec![
            Target::Field {
                name: "first_name".into(),
                text: true,
            },
            Target::Field {
                name: "tags".into(),
                text: false,
            },
            Target::Custom {
                name: "score".into(),
                json: true,
            },
            Target::Custom {
                name: "note".into(),
                json: false,
            },
            Target::Skip,
        ];
        let cells = |c: &[&str]| c.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let record = cells(&["007", "[\"vip\"]", "4.5", "12", "ignored"]);
        let v = csv_row(&targets, &record).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"first_name": "007", "tags": ["vip"], "custom": {"score": 4.5, "note": "12"}})
        );
        let record = cells(&["", "", "", "", ""]);
        assert_eq!(csv_row(&targets, &record).unwrap(), serde_json::json!({}));
        let short = cells(&["a"]);
        assert!(csv_row(&targets, &short).is_err());
    }
}
