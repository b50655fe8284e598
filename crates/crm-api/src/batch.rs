//! `POST /api/v1/{resource}/batch`: up to 1000 creates, updates, upserts and deletes in
//! one request, for every [`Record`] resource. Items run in input order in one
//! transaction, each in its own savepoint: without `atomic`, a failed item is rolled back
//! alone and the rest stand; with `atomic`, the first failure rolls back everything.
//! What the items need to read (custom-field definitions, owners, the records upserts
//! match) is read once for the whole batch, before the first item.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, RawJson};
use crate::records::{
    archive_in, check_patch, check_references, event_rows, flush, insert_in, merged, patch_in,
    patch_locked, shown, Change, Known, Record,
};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use crm_db::DbConnection;
use crm_domain::{FieldError, Permission};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// Most operations in one batch.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchOp {
    Create,
    Update,
    Upsert,
    Delete,
}

/// One operation. `update` and `delete` name the record by `id`; `upsert` finds it by the
/// value of `match_on` in `data` and updates it, or creates it when there is none. An
/// upsert whose `data` would change nothing in the record it finds leaves the record as it
/// is: 200 with the record, its `version` and `updated_at` kept, and no event (a nightly
/// sync that sends every record again writes only what changed). Contacts and companies
/// compare values as stored, after normalisation (`ADA@example.com` changes nothing in
/// `ada@example.com`); other records compare them as entered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchOperation {
    pub op: BatchOp,
    #[schema(max_length = 36)]
    pub id: Option<String>,
    /// `external_id` (the default), or `email` for contacts; `sku` for products (their default).
    #[schema(max_length = 20, example = "external_id")]
    pub match_on: Option<String>,
    /// The record (create, upsert) or a merge patch (update, and upsert of an existing one).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

impl BatchOperation {
    /// The operation's `data`, or the item's 422 when it has none.
    fn data(&self) -> ApiResult<&Value> {
        self.data
            .as_ref()
            .ok_or_else(|| invalid("data", "required", "this operation needs `data`"))
    }

    /// The `id` of the record the operation names, or the item's 422 when it names none.
    fn id(&self) -> ApiResult<&str> {
        self.id
            .as_deref()
            .ok_or_else(|| invalid("id", "required", "this operation needs `id`"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"operations": [{"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-1001", "first_name": "Ada"}}, {"op": "delete", "id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}], "atomic": false}))]
pub struct BatchRequest {
    /// 1 to 1000 operations, run in order.
    #[schema(min_items = 1, max_items = 1000)]
    pub operations: Vec<BatchOperation>,
    /// All or nothing: the first failure rolls back every operation.
    #[serde(default)]
    pub atomic: bool,
}

/// The outcome of one operation, at its input position.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub index: usize,
    /// What the single-record endpoint would have answered: 201 created, 200 updated,
    /// 204 deleted, a 4xx for a failure; 424 for an operation of a failed atomic batch.
    pub status: u16,
    /// The record, after a create or update.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

fn invalid(field: &str, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(field, code, message)
}

/// The answer to an upsert of records that have no field to match on.
fn nothing_to_match(plural: &str) -> ApiError {
    invalid(
        "op",
        "invalid_value",
        format!("{plural} have no field to upsert on: use create or update"),
    )
}

/// The column and (normalised) value an upsert matches on.
fn match_key<R: Record>(match_on: &str, data: &Value) -> ApiResult<(&'static str, String)> {
    if R::MATCH_ON.is_empty() {
        return Err(nothing_to_match(&R::OBJECT.replace('-', " ")));
    }
    let Some(column) = R::MATCH_ON.iter().copied().find(|m| *m == match_on) else {
        return Err(invalid(
            "match_on",
            "invalid_value",
            format!("must be one of: {}", R::MATCH_ON.join(", ")),
        ));
    };
    let Some(raw) = data.get(match_on).and_then(Value::as_str) else {
        return Err(invalid(
            match_on,
            "required",
            format!("an upsert matching on `{match_on}` needs it in `data`"),
        ));
    };
    let value = if match_on == "email" {
        crm_domain::values::normalize_email(raw)
            .map_err(|m| invalid("email", "invalid_email", m))?
    } else {
        raw.trim().to_string()
    };
    Ok((column, value))
}

/// The column an upsert matches on: the one it names, else the resource's first.
fn upsert_match_on<R: Record>(op: &BatchOperation) -> &str {
    op.match_on
        .as_deref()
        .or(R::MATCH_ON.first().copied())
        .unwrap_or("external_id")
}

/// The record holding a matched value: its id and whether it is archived.
type Holder = Option<(String, bool)>;

/// What a batch reads before its first item, so that its items do not each read it:
/// the custom-field definitions and owners ([`Known`]), and the records its upserts
/// match (one query per `match_on` column). Kept current as items succeed.
struct Ahead {
    known: Known,
    matches: HashMap<(&'static str, String), Holder>,
    /// The matched values no record holds but a record merged away did: their holder is
    /// the survivor, whose own value an upsert keeps.
    aliased: HashSet<(&'static str, String)>,
}

/// The holders of `values` in `column`: the records holding them, else (for a resource
/// that merges) the survivors of merged-away records that held them; (value, id, archived,
/// whether through a merge).
fn holders<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    column: &'static str,
    values: &[String],
) -> ApiResult<Vec<(String, String, bool, bool)>> {
    let found = crm_db::repo::records::find_many_by(c, R::TABLE, column, p.workspace, values)?;
    let mut out: Vec<_> = found
        .into_iter()
        .map(|(v, id, a)| (v, id, a, false))
        .collect();
    if R::merge().is_some() && out.len() < values.len() {
        let held: HashSet<&str> = out.iter().map(|(v, ..)| v.as_str()).collect();
        let missing: Vec<String> = values
            .iter()
            .filter(|v| !held.contains(v.as_str()))
            .cloned()
            .collect();
        let merged =
            crm_db::repo::merges::aliases(c, R::TABLE, R::OBJECT, column, p.workspace, &missing)?;
        out.extend(merged.into_iter().map(|(v, id, a)| (v, id, a, true)));
    }
    Ok(out)
}

impl Ahead {
    fn read<R: Record>(
        c: &mut DbConnection,
        p: &Principal,
        req: &BatchRequest,
    ) -> ApiResult<Ahead> {
        let mut wanted: HashMap<&'static str, Vec<String>> = HashMap::new();
        let mut owners = Vec::new();
        for op in &req.operations {
            let Some(data) = &op.data else { continue };
            if let Some(owner) = data.get("owner_id").and_then(Value::as_str) {
                owners.push(owner.to_string());
            }
            if op.op == BatchOp::Upsert {
                // An item whose key is not valid fails on its own turn.
                if let Ok((column, value)) = match_key::<R>(upsert_match_on::<R>(op), data) {
                    wanted.entry(column).or_default().push(value);
                }
            }
        }
        let mut matches = HashMap::new();
        let mut aliased = HashSet::new();
        for (column, mut values) in wanted {
            values.sort();
            values.dedup();
            let found = holders::<R>(c, p, column, &values)?;
            for v in values {
                matches.insert((column, v), None);
            }
            for (value, id, archived, merged) in found {
                if merged {
                    aliased.insert((column, value.clone()));
                }
                matches.insert((column, value), Some((id, archived)));
            }
        }
        let mut known = Known::default();
        known.prefetch_owners(c, p.workspace, owners)?;
        Ok(Ahead {
            known,
            matches,
            aliased,
        })
    }

    /// The record holding `value` in `column`, from what was read ahead (or, for a value
    /// not read ahead, from the database).
    fn holder<R: Record>(
        &mut self,
        c: &mut DbConnection,
        p: &Principal,
        column: &'static str,
        value: String,
    ) -> ApiResult<Holder> {
        let key = (column, value);
        if let Some(h) = self.matches.get(&key) {
            return Ok(h.clone());
        }
        let found = holders::<R>(c, p, column, std::slice::from_ref(&key.1))?
            .into_iter()
            .next();
        if found.as_ref().is_some_and(|(.., merged)| *merged) {
            self.aliased.insert(key.clone());
        }
        let found = found.map(|(_, id, archived, _)| (id, archived));
        self.matches.insert(key, found.clone());
        Ok(found)
    }

    /// Whether the upsert key in `data` leads to its record through a merge.
    fn is_alias<R: Record>(&self, match_on: &str, data: &Value) -> bool {
        !self.aliased.is_empty()
            && match_key::<R>(match_on, data).is_ok_and(|key| self.aliased.contains(&key))
    }

    /// After an item succeeded: record `id` now holds the match values of `row`, or was
    /// archived (`row` None).
    fn note<R: Record>(&mut self, id: &str, row: Option<&Value>) {
        for column in R::MATCH_ON.iter().copied() {
            let now = row.and_then(|r| r.get(column)).and_then(Value::as_str);
            for ((c, v), held) in self.matches.iter_mut() {
                if *c != column || held.as_ref().is_none_or(|(i, _)| i != id) {
                    continue;
                }
                if self.aliased.contains(&(column, v.clone())) {
                    // Held through a merge, whatever the survivor's own value.
                    if row.is_none() {
                        if let Some((_, archived)) = held {
                            *archived = true;
                        }
                    }
                    continue;
                }
                match row {
                    None => {
                        if let Some((_, archived)) = held {
                            *archived = true;
                        }
                    }
                    Some(_) if Some(v.as_str()) != now => *held = None,
                    Some(_) => {}
                }
            }
            if let (Some(_), Some(v)) = (row, now) {
                self.aliased.remove(&(column, v.to_string()));
                self.matches
                    .insert((column, v.to_string()), Some((id.to_string(), false)));
            }
        }
    }
}

/// The id of the live record whose `match_on` column holds the value given in `data`.
fn find_match<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    match_on: &str,
    data: &Value,
    ahead: &mut Ahead,
) -> ApiResult<Option<String>> {
    let (column, value) = match_key::<R>(match_on, data)?;
    match ahead.holder::<R>(c, p, column, value)? {
        None => Ok(None),
        Some((id, true)) => Err(ApiError::Conflict {
            message: format!("the record holding this {match_on} is archived; restore it first"),
            existing_id: Some(id),
        }),
        Some((id, false)) => Ok(Some(id)),
    }
}

/// What an upsert found in the record it matched.
enum Matched<Row> {
    /// The upsert's data would change nothing: the record as shown, left alone (no new
    /// version, no event).
    Unchanged(Value),
    /// The record, live, locked and read by this transaction: the upsert writes it.
    Changes(Row),
    /// Archived since it was matched: the write answers for it.
    Archived,
}

/// Locks and reads the record an upsert matched and tells whether its data would change
/// anything in it.
///
/// A resource that writes in bulk compares the row the write would store with the stored
/// one, after normalisation (`ADA@example.com` changes nothing in `ada@example.com`). Any
/// other compares the record's writable fields with the upsert's data merged into them, as
/// entered: a value that only normalisation would equate still writes.
fn matched<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    data: &Value,
    known: &mut Known,
) -> ApiResult<Matched<R::Row>> {
    let current = R::get_locked(c, p.workspace, id)?;
    if R::is_archived(&current) {
        return Ok(Matched::Archived);
    }
    let mut input = merged::<R>(&current, data)?;
    let same = match R::bulk() {
        Some(bulk) => {
            let custom = check_references::<R>(c, p.workspace, &mut input, known)?;
            let next = (bulk.row)(p, Some(&current), input, custom)?;
            (bulk.unchanged)(&current, &next)
        }
        None => {
            let as_stored = R::Input::from(&current);
            serde_json::to_value(&input).map_err(ApiError::internal)?
                == serde_json::to_value(&as_stored).map_err(ApiError::internal)?
        }
    };
    if same {
        Ok(Matched::Unchanged(shown::<R>(&current)?))
    } else {
        Ok(Matched::Changes(current))
    }
}

/// Runs one operation; returns its status and record.
fn run_one<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    op: &BatchOperation,
    changes: &mut Vec<Change>,
    ahead: &mut Ahead,
) -> ApiResult<(StatusCode, Option<Value>)> {
    let data = || op.data().cloned();
    let id = || op.id().map(String::from);
    let created = |c: &mut DbConnection,
                   changes: &mut Vec<Change>,
                   known: &mut Known,
                   data: Value|
     -> ApiResult<_> {
        let bytes = serde_json::to_vec(&data).map_err(ApiError::internal)?;
        let row = insert_in::<R>(c, p, parse_json(&bytes)?, changes, known)?;
        Ok((StatusCode::CREATED, Some(shown::<R>(&row)?)))
    };
    let updated = |c: &mut DbConnection,
                   changes: &mut Vec<Change>,
                   known: &mut Known,
                   id: &str,
                   patch: Value|
     -> ApiResult<_> {
        check_patch::<R>(&patch)?;
        let row = patch_in::<R>(c, p, id, None, &patch, changes, known)?;
        Ok((StatusCode::OK, Some(shown::<R>(&row)?)))
    };
    match op.op {
        BatchOp::Create => created(c, changes, &mut ahead.known, data()?),
        BatchOp::Update => updated(c, changes, &mut ahead.known, &id()?, data()?),
        BatchOp::Delete => {
            archive_in::<R>(c, p, &id()?, None, changes)?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        BatchOp::Upsert => {
            let mut data = data()?;
            let match_on = upsert_match_on::<R>(op);
            match find_match::<R>(c, p, match_on, &data, ahead)? {
                Some(id) => {
                    if ahead.is_alias::<R>(match_on, &data) {
                        // The survivor of a merge keeps its own value.
                        if let Some(fields) = data.as_object_mut() {
                            fields.remove(match_on);
                        }
                    }
                    check_patch::<R>(&data)?;
                    match matched::<R>(c, p, &id, &data, &mut ahead.known)? {
                        Matched::Unchanged(record) => Ok((StatusCode::OK, Some(record))),
                        Matched::Changes(current) => {
                            let known = &mut ahead.known;
                            let row =
                                patch_locked::<R>(c, p, &id, &current, &data, changes, known)?;
                            Ok((StatusCode::OK, Some(shown::<R>(&row)?)))
                        }
                        Matched::Archived => updated(c, changes, &mut ahead.known, &id, data),
                    }
                }
                None => created(c, changes, &mut ahead.known, data),
            }
        }
    }
}

fn failure(index: usize, e: &ApiError) -> BatchResult {
    BatchResult {
        index,
        status: e.status_code().as_u16(),
        data: None,
        error: Some(e.problem()),
    }
}

/// The handler behind every `POST /{resource}/batch`.
pub async fn batch<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let req = parse_request(&body)?;
    let atomic = req.atomic;
    answer(state, move |c| run_all::<R>(c, &p, &req, atomic, true)).await
}

/// The request body, its size and shape checked.
fn parse_request(body: &RawJson) -> ApiResult<BatchRequest> {
    let req: BatchRequest = parse_json(&body.0)?;
    if req.operations.is_empty() || req.operations.len() > MAX_OPERATIONS {
        return Err(ApiError::Validation(vec![FieldError::new(
            "operations",
            "invalid_length",
            format!("must hold 1 to {MAX_OPERATIONS} operations"),
        )]));
    }
    check_shape(&req)?;
    Ok(req)
}

/// Runs a batch in one write transaction and answers with its results (those of a rolled
/// back atomic batch too).
async fn answer(
    state: web::Data<AppState>,
    run: impl FnOnce(&mut DbConnection) -> Result<Vec<BatchResult>, Abort> + Send + 'static,
) -> ApiResult<HttpResponse> {
    let outcome = results(&state, run).await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results: outcome }))
}

/// The results of a batch run in one write transaction (those of a rolled back atomic
/// batch too).
async fn results(
    state: &AppState,
    run: impl FnOnce(&mut DbConnection) -> Result<Vec<BatchResult>, Abort> + Send + 'static,
) -> ApiResult<Vec<BatchResult>> {
    state
        .db(move |c| match crm_db::write_tx(c, run) {
            Ok(results) | Err(Abort::Rolled(results)) => Ok(results),
            Err(Abort::Api(e)) => Err(e),
        })
        .await
}

/// A resource whose batch runs each operation through the resource's own single-record
/// writes, one after another: configuration such as pipelines (with their stages) and
/// assignment rules, and the workspace's people (users, teams), written rarely and a few
/// at a time. By default its records have nothing to match an upsert on, so an upsert is
/// that item's 422.
pub trait ItemWrites {
    /// What a batch needs, as the single-record writes do.
    const WRITE: Permission;
    /// The resource's name in messages (`pipelines`).
    const PLURAL: &'static str;
    /// What the batch's path names besides the resource (the object of custom fields);
    /// `()` for most.
    type Scope: Send + Sync + 'static;
    /// What an operation needs worked out before the batch's transaction, so that slow
    /// work (hashing a password) does not hold the write lock; `()` for most.
    type Ready: Default + Send + 'static;
    /// Works out an operation's [`Self::Ready`], off the async workers and before the
    /// transaction; an error is that item's failure.
    fn ready(_op: &BatchOperation) -> ApiResult<Self::Ready> {
        Ok(Self::Ready::default())
    }
    /// Creates from `data`, read as the create endpoint reads its body: the record as
    /// that endpoint answers it.
    fn create(
        c: &mut DbConnection,
        p: &Principal,
        scope: &Self::Scope,
        data: &Value,
        ready: Self::Ready,
    ) -> ApiResult<Value>;
    /// Applies `patch` as the update endpoint applies its merge patch.
    fn update(
        c: &mut DbConnection,
        p: &Principal,
        scope: &Self::Scope,
        id: &str,
        patch: &Value,
        ready: Self::Ready,
    ) -> ApiResult<Value>;
    /// Does what the delete endpoint does.
    fn delete(c: &mut DbConnection, p: &Principal, scope: &Self::Scope, id: &str) -> ApiResult<()>;
    /// Applies an upsert's `data` to the record it matched: as an update, except that data
    /// that would change nothing leaves the record as it is (no new version, no event), as
    /// [`BatchOperation`] says; a resource with upserts says how.
    fn upsert_found(
        c: &mut DbConnection,
        p: &Principal,
        scope: &Self::Scope,
        id: &str,
        data: &Value,
        ready: Self::Ready,
    ) -> ApiResult<Value> {
        Self::update(c, p, scope, id, data, ready)
    }
    /// The id of the record an upsert's `data` matches on `match_on`, if there is one.
    fn matching(
        _c: &mut DbConnection,
        _p: &Principal,
        _scope: &Self::Scope,
        _match_on: Option<&str>,
        _data: &Value,
    ) -> ApiResult<Option<String>> {
        Err(nothing_to_match(Self::PLURAL))
    }
    /// Runs after the batch's transaction ended, with the ids of the records its
    /// operations named or wrote (to drop what this process caches of them).
    fn ended(_state: &AppState, _p: &Principal, _ids: &[String]) {}
}

/// An [`ItemWrites`] resource that needs nothing more than its single-record writes: no
/// scope, nothing worked out before the transaction, nothing to match an upsert on.
pub trait PlainItems {
    const WRITE: Permission;
    const PLURAL: &'static str;
    fn create(c: &mut DbConnection, p: &Principal, data: &Value) -> ApiResult<Value>;
    fn update(c: &mut DbConnection, p: &Principal, id: &str, patch: &Value) -> ApiResult<Value>;
    fn delete(c: &mut DbConnection, p: &Principal, id: &str) -> ApiResult<()>;
}

impl<T: PlainItems> ItemWrites for T {
    const WRITE: Permission = T::WRITE;
    const PLURAL: &'static str = T::PLURAL;
    type Scope = ();
    type Ready = ();

    fn create(
        c: &mut DbConnection,
        p: &Principal,
        _: &(),
        data: &Value,
        _: (),
    ) -> ApiResult<Value> {
        <T as PlainItems>::create(c, p, data)
    }

    fn update(
        c: &mut DbConnection,
        p: &Principal,
        _: &(),
        id: &str,
        patch: &Value,
        _: (),
    ) -> ApiResult<Value> {
        <T as PlainItems>::update(c, p, id, patch)
    }

    fn delete(c: &mut DbConnection, p: &Principal, _: &(), id: &str) -> ApiResult<()> {
        <T as PlainItems>::delete(c, p, id)
    }
}

/// The value an [`ItemWrites`] upsert matches on, for a resource matched on one field
/// only (`key`): a `match_on` naming another field, or `data` without `key`, is the
/// item's 422.
pub fn only_key<'a>(
    match_on: Option<&str>,
    data: &'a Value,
    key: &str,
    plural: &str,
) -> ApiResult<&'a str> {
    if match_on.is_some_and(|m| m != key) {
        return Err(invalid(
            "match_on",
            "invalid_value",
            format!("{plural} are matched on `{key}`"),
        ));
    }
    data.get(key).and_then(|v| v.as_str()).ok_or_else(|| {
        invalid(
            key,
            "required",
            format!("an upsert of {plural} matches on `{key}`"),
        )
    })
}

/// The handler behind `POST /{resource}/batch` of an [`ItemWrites`] resource.
pub async fn batch_items<T: ItemWrites<Scope = ()>>(
    state: web::Data<AppState>,
    p: Principal,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    batch_items_in::<T>(state, p, (), body).await
}

/// [`batch_items`] of a resource whose path names a `scope`.
pub async fn batch_items_in<T: ItemWrites>(
    state: web::Data<AppState>,
    p: Principal,
    scope: T::Scope,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(T::WRITE)?;
    let req = parse_request(&body)?;
    let (req, ready) = web::block(move || {
        let ready: Vec<ApiResult<T::Ready>> = req.operations.iter().map(T::ready).collect();
        (req, ready)
    })
    .await?;
    let named: Vec<String> = req.operations.iter().filter_map(|o| o.id.clone()).collect();
    let runner = p.clone();
    let outcome = results(&state, move |c| {
        run_items::<T>(c, &runner, &scope, &req, ready)
    })
    .await;
    let mut ids = named;
    if let Ok(results) = &outcome {
        ids.extend(
            results
                .iter()
                .filter_map(|r| r.data.as_ref()?.get("id")?.as_str().map(String::from)),
        );
    }
    T::ended(&state, &p, &ids);
    Ok(HttpResponse::Ok().json(BatchResponse { results: outcome? }))
}

/// A JSON value read as an endpoint reads its body, so that errors name fields alike.
pub(crate) fn read_as<T: serde::de::DeserializeOwned>(data: &Value) -> ApiResult<T> {
    parse_json(&serde_json::to_vec(data).map_err(ApiError::internal)?)
}

fn run_items<T: ItemWrites>(
    c: &mut DbConnection,
    p: &Principal,
    scope: &T::Scope,
    req: &BatchRequest,
    ready: Vec<ApiResult<T::Ready>>,
) -> Result<Vec<BatchResult>, Abort> {
    let mut results = Vec::with_capacity(req.operations.len());
    for (i, (op, ready)) in req.operations.iter().zip(ready).enumerate() {
        let outcome = c.transaction(|c| {
            let ready = ready?;
            match op.op {
                BatchOp::Create => Ok((
                    StatusCode::CREATED,
                    Some(T::create(c, p, scope, op.data()?, ready)?),
                )),
                BatchOp::Update => Ok((
                    StatusCode::OK,
                    Some(T::update(c, p, scope, op.id()?, op.data()?, ready)?),
                )),
                BatchOp::Delete => {
                    T::delete(c, p, scope, op.id()?).map(|()| (StatusCode::NO_CONTENT, None))
                }
                BatchOp::Upsert => {
                    let data = op.data()?;
                    match T::matching(c, p, scope, op.match_on.as_deref(), data)? {
                        Some(id) => Ok((
                            StatusCode::OK,
                            Some(T::upsert_found(c, p, scope, &id, data, ready)?),
                        )),
                        None => Ok((
                            StatusCode::CREATED,
                            Some(T::create(c, p, scope, data, ready)?),
                        )),
                    }
                }
            }
        });
        results.push(settled(i, outcome, req)?);
    }
    Ok(results)
}

/// An operation's result; a failure of an atomic batch (or a server-side failure) ends
/// the batch instead.
fn settled(
    i: usize,
    outcome: ApiResult<(StatusCode, Option<Value>)>,
    req: &BatchRequest,
) -> Result<BatchResult, Abort> {
    match outcome {
        Ok((status, data)) => Ok(BatchResult {
            index: i,
            status: status.as_u16(),
            data,
            error: None,
        }),
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => Err(Abort::Api(e)),
        Err(e) if req.atomic => Err(Abort::Rolled(atomic_failure(i, &e, req))),
        Err(e) => Ok(failure(i, &e)),
    }
}

/// The results of an atomic batch whose operation `i` failed with `e`: that one's error,
/// 424 for every other.
fn atomic_failure(i: usize, e: &ApiError, req: &BatchRequest) -> Vec<BatchResult> {
    let skipped = ApiError::FailedDependency(format!(
        "not applied: operation {i} of this atomic batch failed"
    ));
    let mut out: Vec<BatchResult> = (0..req.operations.len())
        .map(|j| failure(j, &skipped))
        .collect();
    out[i] = failure(i, e);
    out
}

/// The request's own shape, as its schema states it, is checked before any operation runs:
/// a malformed operation fails the whole request (422 naming `operations[i].<field>`),
/// while what an operation asks for is judged per operation.
fn check_shape(req: &BatchRequest) -> ApiResult<()> {
    let mut errors = Vec::new();
    for (i, op) in req.operations.iter().enumerate() {
        let too_long = |field: &str, value: &Option<String>, max: usize| {
            value.as_ref().filter(|v| v.chars().count() > max).map(|_| {
                FieldError::new(
                    format!("operations[{i}].{field}"),
                    "too_long",
                    format!("at most {max} characters"),
                )
            })
        };
        errors.extend(too_long("id", &op.id, 36));
        errors.extend(too_long("match_on", &op.match_on, 20));
        if op
            .data
            .as_ref()
            .is_some_and(|d| !d.is_object() && !d.is_null())
        {
            errors.push(FieldError::new(
                format!("operations[{i}].data"),
                "invalid_type",
                "must be an object",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Why a batch's transaction was rolled back: an error to answer with, or a failed atomic
/// batch whose results are still the answer.
enum Abort {
    Api(ApiError),
    Rolled(Vec<BatchResult>),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Api(e.into())
    }
}

/// Runs the operations of a non-atomic batch in the caller's transaction (imports feed
/// their rows through here, so they write exactly as batches do). The results carry no
/// records: an import reports counts and errors only.
pub(crate) fn run_rows<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    req: &BatchRequest,
) -> ApiResult<Vec<BatchResult>> {
    match run_all::<R>(c, p, req, false, false) {
        Ok(results) | Err(Abort::Rolled(results)) => Ok(results),
        Err(Abort::Api(e)) => Err(e),
    }
}

fn run_all<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    req: &BatchRequest,
    atomic: bool,
    with_data: bool,
) -> Result<Vec<BatchResult>, Abort> {
    if let Some(results) = run_deletes::<R>(c, p, req, atomic)? {
        crate::observe::batch_items(R::OBJECT, true, results.len());
        return Ok(results);
    }
    let mut ahead = Ahead::read::<R>(c, p, req).map_err(Abort::Api)?;
    if let Some(results) = run_fast::<R>(c, p, req, atomic, with_data, &mut ahead)? {
        crate::observe::batch_items(R::OBJECT, true, results.len());
        return Ok(results);
    }
    crate::observe::batch_items(R::OBJECT, false, req.operations.len());
    let mut results = Vec::with_capacity(req.operations.len());
    let mut changes = Vec::new();
    for (i, op) in req.operations.iter().enumerate() {
        let mut mine = Vec::new();
        // A savepoint per item: a failed item leaves no trace.
        match c.transaction(|c| run_one::<R>(c, p, op, &mut mine, &mut ahead)) {
            Ok((status, data)) => {
                changes.append(&mut mine);
                match (&data, op.op, &op.id) {
                    (Some(row), _, _) => {
                        if let Some(id) = row.get("id").and_then(Value::as_str) {
                            ahead.note::<R>(id, Some(row));
                        }
                    }
                    (None, BatchOp::Delete, Some(id)) => ahead.note::<R>(id, None),
                    _ => {}
                }
                results.push(BatchResult {
                    index: i,
                    status: status.as_u16(),
                    data: data.filter(|_| with_data),
                    error: None,
                });
            }
            Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => {
                return Err(Abort::Api(e))
            }
            Err(e) if atomic => return Err(Abort::Rolled(atomic_failure(i, &e, req))),
            Err(e) => {
                // An update or delete of a merged-away id points at the survivor, as the
                // record's own endpoints do.
                let e = match (&e, &op.id) {
                    (ApiError::NotFound, Some(id)) => {
                        crate::merge::pointer::<R>(c, p.workspace, id, false).map_err(Abort::Api)?
                    }
                    _ => e,
                };
                results.push(failure(i, &e))
            }
        }
    }
    flush::<R>(c, p, changes).map_err(Abort::Api)?;
    Ok(results)
}

/// An item ready to be written: its record's current row (none for a new one), then the
/// next.
type Prepared<R> = (Option<<R as Record>::Row>, <R as Record>::Row);

/// The fast path of a batch (and of an import's rows): when the resource writes in bulk,
/// every operation is a create, an update or an upsert, and no two of them name the same
/// record or match key, the items are checked one by one but written together: their
/// current rows read in one query, the new and changed rows in a few multi-row statements,
/// their events in one. `None` declines, having written nothing: the batch then runs item
/// by item, which is what answers a conflict (a unique value taken) item by item, and what
/// an atomic batch with a failing item falls back to, so that it names the item.
fn run_fast<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    req: &BatchRequest,
    atomic: bool,
    with_data: bool,
    ahead: &mut Ahead,
) -> Result<Option<Vec<BatchResult>>, Abort> {
    let Some(bulk) = R::bulk() else {
        return Ok(None);
    };
    // Which record each operation writes: None for a new one.
    let mut targets: Vec<Option<String>> = Vec::with_capacity(req.operations.len());
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for op in &req.operations {
        let Some(data) = &op.data else {
            return Ok(None);
        };
        let target = match op.op {
            BatchOp::Delete => return Ok(None),
            BatchOp::Create => None,
            BatchOp::Update => match &op.id {
                Some(id) => Some(id.clone()),
                None => return Ok(None),
            },
            BatchOp::Upsert => {
                let Ok((column, value)) = match_key::<R>(upsert_match_on::<R>(op), data) else {
                    return Ok(None);
                };
                if !keys.insert((column, value.clone()))
                    || ahead.aliased.contains(&(column, value.clone()))
                {
                    return Ok(None);
                }
                match ahead.holder::<R>(c, p, column, value).map_err(Abort::Api)? {
                    None => None,
                    Some((_, true)) => return Ok(None),
                    Some((id, false)) => Some(id),
                }
            }
        };
        if let Some(id) = &target {
            if !ids.insert(id.clone()) {
                return Ok(None);
            }
        }
        targets.push(target);
    }
    let wanted: Vec<String> = ids.into_iter().collect();
    let mut current: HashMap<String, R::Row> =
        crm_db::repo::bulk::lock_rows::<R::Row>(c, R::TABLE, p.workspace, &wanted)
            .map_err(|e| Abort::Api(e.into()))?
            .into_iter()
            .map(|row| ((bulk.id)(&row).to_string(), row))
            .collect();
    if current.len() != wanted.len() || current.values().any(R::is_archived) {
        return Ok(None);
    }
    // Each item checked as its own request would be; a failure is its own answer.
    let mut prepared: Vec<ApiResult<Prepared<R>>> = Vec::new();
    for (op, target) in req.operations.iter().zip(&targets) {
        let before = target.as_ref().and_then(|id| current.remove(id));
        let data = op.data.as_ref().unwrap_or(&Value::Null);
        let item = (|| {
            let mut input = match &before {
                Some(row) => {
                    check_patch::<R>(data)?;
                    merged::<R>(row, data)?
                }
                None => parse_json(&serde_json::to_vec(data).map_err(ApiError::internal)?)?,
            };
            let custom = check_references::<R>(c, p.workspace, &mut input, &mut ahead.known)?;
            (bulk.row)(p, before.as_ref(), input, custom)
        })();
        match item {
            Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => {
                return Err(Abort::Api(e))
            }
            Err(_) if atomic => return Ok(None),
            Err(e) => prepared.push(Err(e)),
            Ok(next) => prepared.push(Ok((before, next))),
        }
    }
    // The write takes copies of the rows while a second thread makes the records as the
    // API shows them, and from those the answers and the events, from the rows in memory:
    // the database and the processor work at once. The write is in a savepoint, so that a
    // declined one leaves nothing behind.
    let mut results = Vec::with_capacity(prepared.len());
    let mut pairs = Vec::with_capacity(prepared.len());
    for (index, item) in prepared.into_iter().enumerate() {
        match item {
            Ok((Some(current), next))
                if req.operations[index].op == BatchOp::Upsert
                    && (bulk.unchanged)(&current, &next) =>
            {
                results.push(BatchResult {
                    index,
                    status: StatusCode::OK.as_u16(),
                    data: with_data
                        .then(|| shown::<R>(&current))
                        .transpose()
                        .map_err(Abort::Api)?,
                    error: None,
                });
            }
            Ok((before, next)) => {
                let status = match before {
                    Some(_) => StatusCode::OK,
                    None => StatusCode::CREATED,
                };
                results.push(BatchResult {
                    index,
                    status: status.as_u16(),
                    data: None,
                    error: None,
                });
                pairs.push((index, before, next));
            }
            Err(e) => results.push(failure(index, &e)),
        }
    }
    let writes: Vec<_> = pairs
        .iter()
        .map(|(_, before, next)| (before.clone(), next.clone()))
        .collect();
    let (written, shown_rows) = std::thread::scope(|s| {
        let made = s.spawn(|| -> ApiResult<_> {
            let mut changes = Vec::with_capacity(pairs.len());
            let mut answers = Vec::new();
            for (index, before, next) in &pairs {
                let after = shown::<R>(next)?;
                if with_data {
                    answers.push((*index, after.clone()));
                }
                changes.push(Change {
                    verb: if before.is_some() {
                        "updated"
                    } else {
                        "created"
                    },
                    id: (bulk.id)(next).to_string(),
                    before: before.as_ref().map(shown::<R>).transpose()?,
                    after: Some(after),
                });
            }
            Ok((event_rows::<R>(p, &changes)?, answers))
        });
        let written = c.transaction(|c| (bulk.write)(c, p, writes));
        (written, made.join())
    });
    match written {
        Ok(()) => {}
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => return Err(Abort::Api(e)),
        Err(_) => return Ok(None),
    }
    let (events, answers) = shown_rows
        .map_err(|_| Abort::Api(ApiError::internal("making a batch's events failed")))?
        .map_err(Abort::Api)?;
    for (index, data) in answers {
        results[index].data = Some(data);
    }
    crate::events::append_many(c, p.workspace, events).map_err(Abort::Api)?;
    Ok(Some(results))
}

/// The fast path of a batch of deletes only, each naming a different record: the rows
/// locked in one query, the live ones archived in one statement and read back in one, their
/// events written together. An id of no live record is that item's 404 (naming the
/// survivor of a merge); an atomic batch with one declines, to run item by item.
fn run_deletes<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    req: &BatchRequest,
    atomic: bool,
) -> Result<Option<Vec<BatchResult>>, Abort> {
    let mut ids = Vec::with_capacity(req.operations.len());
    let mut seen = HashSet::new();
    for op in &req.operations {
        match (&op.op, &op.id) {
            (BatchOp::Delete, Some(id)) if seen.insert(id.as_str()) => ids.push(id.clone()),
            _ => return Ok(None),
        }
    }
    let db = |e: crm_db::RepoError| Abort::Api(e.into());
    // Each record as the API shows it, by id, with whether it is archived.
    let shown_by_id = |rows: Vec<R::Row>| -> Result<HashMap<String, (bool, Value)>, Abort> {
        rows.iter()
            .map(|row| {
                let v = shown::<R>(row)?;
                let id = v["id"].as_str().unwrap_or_default().to_string();
                Ok((id, (R::is_archived(row), v)))
            })
            .collect::<ApiResult<_>>()
            .map_err(Abort::Api)
    };
    let mut before = shown_by_id(
        crm_db::repo::bulk::lock_rows::<R::Row>(c, R::TABLE, p.workspace, &ids).map_err(db)?,
    )?;
    before.retain(|_, (archived, _)| !*archived);
    if atomic && before.len() != ids.len() {
        return Ok(None);
    }
    let live: Vec<String> = ids
        .iter()
        .filter(|id| before.contains_key(*id))
        .cloned()
        .collect();
    if crm_db::repo::records::archive_many(c, R::TABLE, p.workspace, &live).map_err(db)?
        != live.len()
    {
        return Ok(None);
    }
    let mut after = shown_by_id(
        crm_db::repo::bulk::rows_by_id::<R::Row>(c, R::TABLE, p.workspace, &live).map_err(db)?,
    )?;
    let mut results = Vec::with_capacity(ids.len());
    let mut changes = Vec::with_capacity(live.len());
    for (index, id) in ids.iter().enumerate() {
        match (before.remove(id), after.remove(id)) {
            (Some((_, b)), Some((_, a))) => {
                changes.push(Change {
                    verb: "archived",
                    id: id.clone(),
                    before: Some(b),
                    after: Some(a),
                });
                results.push(BatchResult {
                    index,
                    status: StatusCode::NO_CONTENT.as_u16(),
                    data: None,
                    error: None,
                });
            }
            _ => {
                let e =
                    crate::merge::pointer::<R>(c, p.workspace, id, false).map_err(Abort::Api)?;
                results.push(failure(index, &e));
            }
        }
    }
    flush::<R>(c, p, changes).map_err(Abort::Api)?;
    Ok(Some(results))
}
