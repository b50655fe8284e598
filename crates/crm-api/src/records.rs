//! The behaviour every CRM record shares — create, read, merge-patch, archive, restore,
//! permanent delete, list and search — written once over the [`Record`] trait. Each
//! resource supplies its row type, its input/output shapes and its repository calls.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{etag, parse_json, IfMatch, QueryPairs, RawJson};
use crate::listing::{self, Catalogue, Page, SearchRequest};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use crm_db::{DbConnection, RepoError};
use crm_domain::custom_field::validate_values;
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Fields a client may read but never write.
const READ_ONLY: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "archived_at",
    "version",
    "lifecycle_stage_changed_at",
];

pub trait Record: 'static {
    /// Path segment and custom-field object name (`contacts`).
    const OBJECT: &'static str;
    /// The singular name events use (`contact` → `contact.created`).
    const EVENT: &'static str;
    /// The unique columns a batch upsert may match on.
    const MATCH_ON: &'static [&'static str];
    const TABLE: &'static str;
    const READ: Permission;
    const WRITE: Permission;
    /// The resource's own read-only fields, besides the ones every record has.
    const READ_ONLY: &'static [&'static str] = &[];
    type Row: diesel::QueryableByName<crm_db::conn::MultiBackend> + Clone + Send + Sync + 'static;
    type Input: DeserializeOwned
        + Serialize
        + ToSchema
        + Send
        + 'static
        + for<'a> From<&'a Self::Row>;
    type Dto: Serialize + ToSchema + Send + From<Self::Row> + 'static;

    fn catalogue() -> &'static Catalogue;
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<Self::Row, RepoError>;
    /// [`Record::get`] with the row locked until the transaction ends, so that concurrent
    /// writes of a record queue rather than fail the version check of the update (a 412
    /// the caller, without If-Match, did not ask for). By default a lock, then a read;
    /// resources written often do both in one statement.
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<Self::Row, RepoError> {
        crm_db::repo::records::lock(conn, Self::TABLE, ws, id)?;
        Self::get(conn, ws, id)
    }
    fn version(row: &Self::Row) -> i32;
    fn is_archived(row: &Self::Row) -> bool;
    fn owner(input: &Self::Input) -> Option<&str>;
    fn custom(input: &mut Self::Input) -> Map<String, Value>;
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: Self::Input,
        custom: Map<String, Value>,
    ) -> ApiResult<Self::Row>;
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &Self::Row,
        input: Self::Input,
        custom: Map<String, Value>,
    ) -> ApiResult<Self::Row>;
    /// How the resource writes many records at once, for the fast path of batches and
    /// imports; `None` (the default): item by item.
    fn bulk() -> Option<Bulk<Self>>
    where
        Self: Sized,
    {
        None
    }
    /// How two records of the resource merge into one (`POST /{id}/merge`); `None` (the
    /// default): they do not.
    fn merge() -> Option<crate::merge::Merge> {
        None
    }
    /// The links to other records that the input names besides the record's own fields (a
    /// deal's `contacts`), read before the record is written (whose checks include their
    /// shape); `None` (the default): it names none. A resource whose input can name links
    /// writes batch items one by one (it has no [`Record::bulk`]).
    fn links(_input: &Self::Input) -> ApiResult<Option<Value>> {
        Ok(None)
    }
    /// Sets the record's links to the ones [`Record::links`] read, once the record
    /// `id` is written, in the same transaction; the change this made, for the change
    /// feed (`None`: the links were already so).
    fn set_links(
        _c: &mut DbConnection,
        _p: &Principal,
        _id: &str,
        _links: Value,
    ) -> ApiResult<Option<Change>> {
        Ok(None)
    }
}

/// A resource's bulk writes: what lets a batch of creates and upserts run as a few
/// statements instead of a few per item.
pub struct Bulk<R: Record> {
    pub id: fn(&R::Row) -> &str,
    /// The row an item writes: a new record from its input, or `current` after it.
    pub row: NextRow<R>,
    /// Writes new rows (no current row) and changed ones together, in the caller's
    /// transaction; a failure (a unique value taken, say) writes nothing.
    pub write: WriteRows<R>,
    /// Whether the next row (of [`Bulk::row`]) leaves the current one as it is: an upsert
    /// that would write it is left undone (no new version, no event).
    pub unchanged: fn(&RowOf<R>, &RowOf<R>) -> bool,
}

type RowOf<R> = <R as Record>::Row;
pub type NextRow<R> = fn(
    &Principal,
    Option<&RowOf<R>>,
    <R as Record>::Input,
    Map<String, Value>,
) -> ApiResult<RowOf<R>>;
pub type WriteRows<R> =
    fn(&mut DbConnection, &Principal, Vec<crm_db::repo::bulk::RowWrite<RowOf<R>>>) -> ApiResult<()>;

/// What a transaction learned about its workspace while checking references: the
/// custom-field definitions of the object and whether users (owners) are active. A batch
/// keeps one for all its items, so each is read once (the owners its items name in one
/// query, see [`Known::prefetch_owners`]); a single write starts with an empty one.
#[derive(Default)]
pub(crate) struct Known {
    defs: Option<Vec<crm_domain::custom_field::CustomFieldDef>>,
    /// User id → active; absent: not looked up yet; `None`: no such user.
    owners: std::collections::HashMap<String, Option<bool>>,
}

impl Known {
    /// Reads, in one query, whether each of these users exists and is active.
    pub(crate) fn prefetch_owners(
        &mut self,
        conn: &mut DbConnection,
        ws: WorkspaceId,
        ids: impl IntoIterator<Item = String>,
    ) -> ApiResult<()> {
        let mut ids: Vec<String> = ids
            .into_iter()
            .filter(|id| uuid::Uuid::parse_str(id).is_ok() && !self.owners.contains_key(id))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            self.owners.insert(id.clone(), None);
        }
        for (id, active) in crm_db::repo::access::users_active(conn, ws, &ids)? {
            self.owners.insert(id, Some(active));
        }
        Ok(())
    }

    fn owner(
        &mut self,
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> ApiResult<Option<bool>> {
        if let Some(known) = self.owners.get(id) {
            return Ok(*known);
        }
        let found = match crm_db::repo::access::get_user(conn, ws, id) {
            Ok(u) => Some(u.active),
            Err(RepoError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        self.owners.insert(id.to_string(), found);
        Ok(found)
    }

    fn defs(
        &mut self,
        conn: &mut DbConnection,
        ws: WorkspaceId,
        object: &str,
    ) -> ApiResult<&[crm_domain::custom_field::CustomFieldDef]> {
        if self.defs.is_none() {
            self.defs = Some(crm_db::repo::fields::defs(conn, ws, object)?);
        }
        Ok(self.defs.as_deref().unwrap_or_default())
    }
}

/// Checks the owner and custom values of an input against the workspace.
pub(crate) fn check_references<R: Record>(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    input: &mut R::Input,
    known: &mut Known,
) -> ApiResult<Map<String, Value>> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Some(owner) = R::owner(input) {
        if uuid::Uuid::parse_str(owner).is_ok() {
            match known.owner(conn, ws, owner)? {
                Some(true) => {}
                Some(false) => errors.push(FieldError::new(
                    "owner_id",
                    "inactive_user",
                    "the owner has been deactivated",
                )),
                None => errors.push(FieldError::new(
                    "owner_id",
                    "not_found",
                    "no user with this id in the workspace",
                )),
            }
        }
    }
    let raw = R::custom(input);
    let defs = known.defs(conn, ws, R::OBJECT)?;
    let custom = match validate_values(defs, &raw, "custom") {
        Ok(c) => c,
        Err(mut e) => {
            errors.append(&mut e);
            Map::new()
        }
    };
    if errors.is_empty() {
        Ok(custom)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The record as the API shows it, for events.
pub(crate) fn shown<R: Record>(row: &R::Row) -> ApiResult<Value> {
    serde_json::to_value(R::Dto::from(row.clone())).map_err(ApiError::internal)
}

/// A change made in a transaction, whose event is written when the transaction's work is
/// done (events go last: see `crm_db::repo::events::append`).
pub struct Change {
    pub(crate) verb: &'static str,
    pub(crate) id: String,
    pub(crate) before: Option<Value>,
    pub(crate) after: Option<Value>,
}

pub(crate) fn change<R: Record>(
    verb: &'static str,
    id: &str,
    before: Option<&R::Row>,
    after: Option<&R::Row>,
) -> ApiResult<Change> {
    Ok(Change {
        verb,
        id: id.to_string(),
        before: before.map(shown::<R>).transpose()?,
        after: after.map(shown::<R>).transpose()?,
    })
}

/// Writes the events of the transaction's changes, in order (all in a few statements).
pub(crate) fn flush<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    changes: Vec<Change>,
) -> ApiResult<()> {
    let rows = event_rows::<R>(p, &changes)?;
    crate::events::append_many(c, p.workspace, rows)
}

/// The event rows of `changes`, in order.
pub(crate) fn event_rows<R: Record>(
    p: &Principal,
    changes: &[Change],
) -> ApiResult<Vec<crm_db::models::EventRow>> {
    changes
        .iter()
        .map(|ch| {
            crate::events::event_row(
                p,
                R::EVENT,
                ch.verb,
                &ch.id,
                ch.before.as_ref(),
                ch.after.as_ref(),
            )
        })
        .collect()
}

pub(crate) fn id_of<R: Record>(row: &R::Row) -> ApiResult<String> {
    Ok(shown::<R>(row)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Creates a record from its input in the caller's transaction (`known`: what the
/// transaction already read of the workspace).
pub(crate) fn insert_in<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    mut input: R::Input,
    changes: &mut Vec<Change>,
    known: &mut Known,
) -> ApiResult<R::Row> {
    let links = R::links(&input)?;
    let custom = check_references::<R>(c, p.workspace, &mut input, known)?;
    let row = R::insert(c, p, input, custom)?;
    let id = id_of::<R>(&row)?;
    changes.push(change::<R>("created", &id, None, Some(&row))?);
    set_links::<R>(c, p, &id, links, changes)?;
    Ok(row)
}

/// Sets the links an input named (see [`Record::links`]), recording the change.
fn set_links<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    links: Option<Value>,
    changes: &mut Vec<Change>,
) -> ApiResult<()> {
    if let Some(links) = links {
        changes.extend(R::set_links(c, p, id, links)?);
    }
    Ok(())
}

/// Whether clients may read the field but never write it.
pub(crate) fn is_read_only<R: Record>(field: &str) -> bool {
    READ_ONLY.contains(&field) || R::READ_ONLY.contains(&field)
}

/// Refuses a merge patch that is not an object or names read-only fields.
pub(crate) fn check_patch<R: Record>(patch: &Value) -> ApiResult<()> {
    let Some(obj) = patch.as_object() else {
        return Err(ApiError::field(
            "body",
            "invalid_type",
            "a merge patch must be a JSON object",
        ));
    };
    let read_only: Vec<FieldError> = obj
        .keys()
        .filter(|k| is_read_only::<R>(k))
        .map(|k| FieldError::new(k.clone(), "read_only", format!("`{k}` cannot be changed")))
        .collect();
    if read_only.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(read_only))
    }
}

/// Applies a merge patch to a live record in the caller's transaction (`known`: what the
/// transaction already read of the workspace).
pub(crate) fn patch_in<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    patch: &Value,
    changes: &mut Vec<Change>,
    known: &mut Known,
) -> ApiResult<R::Row> {
    let current = R::get_locked(c, p.workspace, id)?;
    if R::is_archived(&current) {
        return Err(ApiError::NotFound);
    }
    crm_db::repo::records::check_version(R::version(&current), if_match)?;
    patch_locked::<R>(c, p, id, &current, patch, changes, known)
}

/// [`patch_in`] of a live record the caller's transaction has already locked and read.
pub(crate) fn patch_locked<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    current: &R::Row,
    patch: &Value,
    changes: &mut Vec<Change>,
    known: &mut Known,
) -> ApiResult<R::Row> {
    let mut input = merged::<R>(current, patch)?;
    let links = R::links(&input)?;
    let custom = check_references::<R>(c, p.workspace, &mut input, known)?;
    let row = R::update(c, p, current, input, custom)?;
    changes.push(change::<R>("updated", id, Some(current), Some(&row))?);
    set_links::<R>(c, p, id, links, changes)?;
    Ok(row)
}

/// The input a merge patch makes of a record's writable fields, parsed as a create's body.
pub(crate) fn merged<R: Record>(current: &R::Row, patch: &Value) -> ApiResult<R::Input> {
    let mut doc = serde_json::to_value(R::Input::from(current)).map_err(ApiError::internal)?;
    // A key the record does not have is refused even with `null`, which the merge alone
    // would drop without a word.
    let unknown: Vec<FieldError> = patch
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| doc.get(k.as_str()).is_none())
        .map(|k| FieldError::new(k.clone(), "unknown_field", format!("unknown field `{k}`")))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    json_patch::merge(&mut doc, patch);
    // The same parser as a create, so errors name the offending field by its path.
    let merged = serde_json::to_vec(&doc).map_err(ApiError::internal)?;
    parse_json(&merged)
}

/// Archives a live record in the caller's transaction.
pub(crate) fn archive_in<R: Record>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    changes: &mut Vec<Change>,
) -> ApiResult<()> {
    let before = R::get(c, p.workspace, id)?;
    crm_db::repo::records::set_archived(c, R::TABLE, p.workspace, id, true, if_match)?;
    let after = R::get(c, p.workspace, id)?;
    changes.push(change::<R>("archived", id, Some(&before), Some(&after))?);
    Ok(())
}

pub(crate) fn respond<R: Record>(
    status: actix_web::http::StatusCode,
    row: R::Row,
    location: bool,
) -> HttpResponse {
    let version = R::version(&row);
    let dto = R::Dto::from(row);
    let mut res = HttpResponse::build(status);
    res.insert_header(etag(version));
    if location {
        if let Ok(v) = serde_json::to_value(&dto) {
            if let Some(id) = v.get("id").and_then(Value::as_str) {
                res.insert_header((header::LOCATION, format!("/api/v1/{}/{id}", R::OBJECT)));
            }
        }
    }
    res.json(dto)
}

pub async fn create<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let input: R::Input = parse_json(&body.0)?;
    let row = state
        .tx(move |c| {
            let mut changes = Vec::new();
            let row = insert_in::<R>(c, &p, input, &mut changes, &mut Known::default())?;
            flush::<R>(c, &p, changes)?;
            Ok(row)
        })
        .await?;
    Ok(respond::<R>(
        actix_web::http::StatusCode::CREATED,
        row,
        true,
    ))
}

/// A boolean query flag such as `archived` or `permanent` (absent: false).
fn flag(q: &QueryPairs, name: &str) -> ApiResult<bool> {
    match q.0.iter().find(|(k, _)| k == name) {
        Some((_, v)) => crate::extract::bool_param(name, v),
        None => Ok(false),
    }
}

pub async fn get<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    id: String,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    p.require(R::READ)?;
    let id_copy = id.clone();
    let archived = flag(&q, "archived")?;
    let ws = p.workspace;
    let found = state.db(move |c| Ok(R::get(c, ws, &id)?)).await;
    let row = crate::merge::or_merged::<R, _>(&state, ws, &id_copy, true, found).await?;
    if R::is_archived(&row) && !archived {
        return Err(ApiError::NotFound);
    }
    Ok(respond::<R>(actix_web::http::StatusCode::OK, row, false))
}

/// JSON Merge Patch (RFC 7396): the patch is applied to the record's writable fields and
/// the result validated as a whole, so nested objects (`address`, `consent`, `custom`)
/// merge key by key and `null` removes a value.
pub async fn patch<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    id: String,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let patch: Value = parse_json(&body.0)?;
    check_patch::<R>(&patch)?;
    let (ws, expected, row_id) = (p.workspace, if_match.0, id.clone());
    let result = state
        .tx(move |c| {
            let mut changes = Vec::new();
            let row = patch_in::<R>(
                c,
                &p,
                &row_id,
                expected,
                &patch,
                &mut changes,
                &mut Known::default(),
            )?;
            flush::<R>(c, &p, changes)?;
            Ok(row)
        })
        .await;
    let row = crate::merge::or_merged::<R, _>(&state, ws, &id, false, result).await?;
    Ok(respond::<R>(actix_web::http::StatusCode::OK, row, false))
}

/// `DELETE`: archives, or with `?permanent=true` erases (needs `records:purge`).
pub async fn delete<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    id: String,
    if_match: IfMatch,
    q: QueryPairs,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let permanent = flag(&q, "permanent")?;
    if permanent {
        p.require(Permission::RecordsPurge)?;
    }
    let (ws, path_id) = (p.workspace, id.clone());
    let result = state
        .tx(move |c| {
            let mut changes = Vec::new();
            if permanent {
                let before = R::get(c, p.workspace, &id)?;
                crm_db::repo::records::purge(c, R::TABLE, p.workspace, &id, if_match.0)?;
                changes.push(change::<R>("deleted", &id, Some(&before), None)?);
            } else {
                archive_in::<R>(c, &p, &id, if_match.0, &mut changes)?;
            }
            flush::<R>(c, &p, changes)
        })
        .await;
    crate::merge::or_merged::<R, _>(&state, ws, &path_id, false, result).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn restore<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    id: String,
) -> ApiResult<HttpResponse> {
    p.require(R::WRITE)?;
    let (ws, path_id) = (p.workspace, id.clone());
    let result = state
        .tx(move |c| {
            let before = R::get(c, p.workspace, &id)?;
            // Restoring a record that is not archived changes nothing and answers with it,
            // so a retried restore succeeds.
            if !R::is_archived(&before) {
                return Ok(before);
            }
            crm_db::repo::records::set_archived(c, R::TABLE, p.workspace, &id, false, None)?;
            let after = R::get(c, p.workspace, &id)?;
            let changes = vec![change::<R>("restored", &id, Some(&before), Some(&after))?];
            flush::<R>(c, &p, changes)?;
            Ok(after)
        })
        .await;
    let row = crate::merge::or_merged::<R, _>(&state, ws, &path_id, false, result).await?;
    Ok(respond::<R>(actix_web::http::StatusCode::OK, row, false))
}

pub async fn list<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<R::Dto>>> {
    p.require(R::READ)?;
    let req = SearchRequest::from_query(&q.0)?;
    search_with::<R>(state, p, req).await
}

pub async fn search<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    body: RawJson,
) -> ApiResult<web::Json<Page<R::Dto>>> {
    p.require(R::READ)?;
    let req: SearchRequest = parse_json(&body.0)?;
    search_with::<R>(state, p, req).await
}

async fn search_with<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    req: SearchRequest,
) -> ApiResult<web::Json<Page<R::Dto>>> {
    let page = state
        .db(move |c| {
            listing::run::<R::Row, R::Dto>(c, R::catalogue(), p.workspace, &req, R::Dto::from)
        })
        .await?;
    Ok(web::Json(page))
}

/// `DELETE` of a configuration object (team, webhook) that is erased, not archived: reads
/// its `version` and API form with `current`, checks `If-Match`, deletes, and records the
/// `<record_type>.deleted` event in one transaction; 204.
pub async fn delete_versioned<T: Serialize + Send + 'static>(
    state: &AppState,
    p: Principal,
    id: String,
    if_match: IfMatch,
    record_type: &'static str,
    current: fn(&mut DbConnection, WorkspaceId, &str) -> ApiResult<(i32, T)>,
    delete: fn(&mut DbConnection, WorkspaceId, &str) -> Result<(), RepoError>,
) -> ApiResult<HttpResponse> {
    state
        .tx(move |c| delete_versioned_in(c, &p, &id, if_match.0, record_type, current, delete))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// [`delete_versioned`] in the caller's transaction (a batch's item).
pub fn delete_versioned_in<T: Serialize>(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    if_match: Option<i32>,
    record_type: &'static str,
    current: fn(&mut DbConnection, WorkspaceId, &str) -> ApiResult<(i32, T)>,
    delete: fn(&mut DbConnection, WorkspaceId, &str) -> Result<(), RepoError>,
) -> ApiResult<()> {
    let (version, before) = current(c, p.workspace, id)?;
    crm_db::repo::records::check_version(version, if_match)?;
    delete(c, p.workspace, id)?;
    crate::events::record_shown(c, p, record_type, "deleted", id, Some(&before), None)
}
