//! `/api/v1/deals`: deals (opportunities), their stage history and their contacts.

use super::contacts::Contacts;
use crate::auth::{Auth, Principal};
use crate::dto::common::utc;
use crate::dto::contacts::Contact;
use crate::dto::deals::{CheckedDeal, Deal, DealContactInput, DealInput};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::{id_page, id_page_params, QueryPairs, RawJson};
use crate::handlers::record_handlers;
use crate::links::{link, link_body, live_record, live_reference, respond, LinkKind};
use crate::listing::Catalogue;
use crate::records::{self, Change, Record};
use crate::state::AppState;
use actix_web::{delete, get, put, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use crm_db::models::{DealChanges, DealRow, StageChangeRow, StageRow};
use crm_db::repo::deals as repo;
use crm_db::repo::pipelines;
use crm_db::{DbConnection, RepoError};
use crm_domain::deals::StageKind;
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use utoipa::ToSchema;
use validator::Validate;

pub struct Deals;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "deals",
        resource: RES.get_or_init(repo::deal_resource),
        relations: &[],
    })
}

/// Where a deal lands: its stage, and what entering it means.
struct Placement {
    stage: StageRow,
    kind: StageKind,
    /// The deal enters this stage now (a new deal, or a move).
    entering: bool,
}

fn not_found(field: &str, what: &str) -> FieldError {
    FieldError::new(
        field,
        "not_found",
        format!("no {what} with this id in the workspace"),
    )
}

/// Resolves the pipeline and stage of a deal (see [`DealInput`]) and checks that a deal
/// may enter it.
fn place(
    c: &mut DbConnection,
    ws: WorkspaceId,
    d: &CheckedDeal,
    current: Option<&DealRow>,
    errors: &mut Vec<FieldError>,
) -> ApiResult<Option<Placement>> {
    let stage = match (&d.pipeline_id, &d.stage_id) {
        (_, Some(sid)) => match pipelines::get_stage(c, ws, sid) {
            Ok(s) => {
                if d.pipeline_id
                    .as_ref()
                    .is_some_and(|pid| *pid != s.pipeline_id)
                {
                    errors.push(FieldError::new(
                        "stage_id",
                        "not_in_pipeline",
                        "the stage does not belong to pipeline_id",
                    ));
                    return Ok(None);
                }
                s
            }
            Err(RepoError::NotFound) => {
                errors.push(not_found("stage_id", "stage"));
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        },
        (pid, None) => {
            let pipeline = match pid {
                Some(pid) => pipelines::get(c, ws, pid),
                None => pipelines::get_default(c, ws),
            };
            let pipeline = match pipeline {
                Ok(p) => p,
                Err(RepoError::NotFound) => {
                    errors.push(not_found("pipeline_id", "pipeline"));
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            let first_open = pipelines::stages_of(c, ws, &[pipeline.id])?
                .into_iter()
                .find(|s| s.archived_at.is_none() && s.kind == StageKind::Open.as_str());
            match first_open {
                Some(s) => s,
                None => {
                    errors.push(FieldError::new(
                        "stage_id",
                        "required",
                        "the pipeline has no live open stage: name a stage",
                    ));
                    return Ok(None);
                }
            }
        }
    };
    let entering = current.is_none_or(|cur| cur.stage_id != stage.id);
    if entering {
        if stage.archived_at.is_some() {
            errors.push(FieldError::new(
                "stage_id",
                "archived",
                "the stage is archived: deals cannot move into it",
            ));
        }
        let moved_pipeline = current.is_none_or(|cur| cur.pipeline_id != stage.pipeline_id);
        if moved_pipeline
            && pipelines::get(c, ws, &stage.pipeline_id)?
                .archived_at
                .is_some()
        {
            errors.push(FieldError::new(
                "pipeline_id",
                "archived",
                "the pipeline is archived: deals cannot move into it",
            ));
        }
    }
    let kind = StageKind::parse(&stage.kind).unwrap_or(StageKind::Open);
    if entering && kind == StageKind::Lost && d.lost_reason.is_none() {
        errors.push(FieldError::new(
            "lost_reason",
            "required",
            "a deal moves into a lost stage only with a lost_reason",
        ));
    }
    Ok(Some(Placement {
        stage,
        kind,
        entering,
    }))
}

/// Checks the references of a deal against the workspace and builds its columns and
/// `closed_at`.
fn resolve(
    c: &mut DbConnection,
    ws: WorkspaceId,
    input: DealInput,
    custom: Map<String, Value>,
    current: Option<&DealRow>,
) -> ApiResult<(DealChanges, Option<NaiveDateTime>)> {
    let d = input.check()?;
    let mut errors = Vec::new();
    let placed = place(c, ws, &d, current, &mut errors)?;
    let company_changed = current.is_none_or(|cur| cur.company_id != d.company_id);
    if let (Some(company), true) = (&d.company_id, company_changed) {
        match crm_db::repo::contacts::get_company(c, ws, company) {
            Ok(co) if co.archived_at.is_none() => {}
            Ok(_) | Err(RepoError::NotFound) => errors.push(not_found("company_id", "company")),
            Err(e) => return Err(e.into()),
        }
    }
    let Some(placed) = placed.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let closed_at = match (placed.kind.is_closed(), placed.entering) {
        (false, _) => None,
        (true, true) => Some(crm_domain::values_time::now()),
        (true, false) => current.and_then(|cur| cur.closed_at),
    };
    let (amount, amount_micros) = d.amount.map_or((None, None), |(a, m)| (Some(a), Some(m)));
    Ok((
        DealChanges {
            name: d.name,
            amount,
            amount_micros,
            currency: d.currency,
            pipeline_id: placed.stage.pipeline_id,
            stage_id: placed.stage.id,
            expected_close_date: d.expected_close_date,
            owner_id: d.owner_id,
            company_id: d.company_id,
            lost_reason: d.lost_reason,
            external_id: d.external_id,
            custom: Value::Object(custom).to_string(),
        },
        closed_at,
    ))
}

impl Record for Deals {
    const OBJECT: &'static str = "deals";
    const MATCH_ON: &'static [&'static str] = &["external_id"];
    const EVENT: &'static str = "deal";
    const TABLE: &'static str = "deals";
    const READ: Permission = Permission::DealsRead;
    const WRITE: Permission = Permission::DealsWrite;
    type Row = DealRow;
    type Input = DealInput;
    type Dto = Deal;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<DealRow, RepoError> {
        repo::get_deal(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<DealRow, RepoError> {
        repo::get_deal_locked(conn, ws, id)
    }
    fn version(row: &DealRow) -> i32 {
        row.version
    }
    fn is_archived(row: &DealRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &DealInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut DealInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: DealInput,
        custom: Map<String, Value>,
    ) -> ApiResult<DealRow> {
        let (d, closed_at) = resolve(conn, p.workspace, input, custom, None)?;
        let now = crm_domain::values_time::now();
        let row = DealRow {
            workspace_id: p.workspace.as_string(),
            id: crm_domain::new_id().to_string(),
            name: d.name,
            amount: d.amount,
            amount_micros: d.amount_micros,
            currency: d.currency,
            pipeline_id: d.pipeline_id,
            stage_id: d.stage_id,
            stage_changed_at: now,
            expected_close_date: d.expected_close_date,
            owner_id: d.owner_id,
            company_id: d.company_id,
            lost_reason: d.lost_reason,
            closed_at,
            external_id: d.external_id,
            custom: d.custom,
            created_at: now,
            updated_at: now,
            archived_at: None,
            version: 1,
        };
        Ok(repo::insert_deal(
            conn,
            p.workspace,
            &row,
            Some(p.actor_id()),
        )?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &DealRow,
        input: DealInput,
        custom: Map<String, Value>,
    ) -> ApiResult<DealRow> {
        let (d, closed_at) = resolve(conn, p.workspace, input, custom, Some(current))?;
        Ok(repo::update_deal(
            conn,
            p.workspace,
            current,
            &d,
            closed_at,
            Some(p.actor_id()),
        )?)
    }
    fn links(input: &DealInput) -> ApiResult<Option<Value>> {
        input
            .contacts
            .as_ref()
            .map(|contacts| serde_json::to_value(contacts).map_err(ApiError::internal))
            .transpose()
    }
    fn set_links(
        c: &mut DbConnection,
        p: &Principal,
        id: &str,
        links: Value,
    ) -> ApiResult<Option<Change>> {
        let wanted: Vec<DealContactInput> =
            serde_json::from_value(links).map_err(ApiError::internal)?;
        set_contacts(c, p, id, wanted)
    }
}

/// Makes `wanted` the deal's whole set of contacts, in the caller's transaction: checks
/// that each is a live contact of the workspace named once and that at most one is
/// primary (a 422 naming `contacts[i].contact_id` or `contacts` otherwise), takes the
/// others off the deal and adds or updates these; the `links_changed` change when the set
/// is not what it was.
fn set_contacts(
    c: &mut DbConnection,
    p: &Principal,
    id: &str,
    mut wanted: Vec<DealContactInput>,
) -> ApiResult<Option<Change>> {
    p.require(Permission::ContactsRead)?;
    let ws = p.workspace;
    let mut errors = Vec::new();
    if wanted.iter().filter(|w| w.is_primary).count() > 1 {
        errors.push(FieldError::new(
            "contacts",
            "invalid_value",
            "at most one of a deal's contacts is primary",
        ));
    }
    let named: Vec<String> = wanted.iter().map(|w| w.contact_id.clone()).collect();
    let live = crm_db::repo::contacts::live_ids(c, ws, &named)?;
    for (i, w) in wanted.iter().enumerate() {
        let field = format!("contacts[{i}].contact_id");
        if wanted[..i].iter().any(|o| o.contact_id == w.contact_id) {
            errors.push(FieldError::new(
                field,
                "duplicate",
                "each contact is named once",
            ));
        } else if !live.contains(&w.contact_id) {
            errors.push(FieldError::new(
                field,
                "not_found",
                "no such contact in this workspace",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let before = CONTACT_LINKS.list(c, ws, id)?;
    let table = &crm_db::repo::links::DEAL_CONTACTS;
    for gone in before
        .iter()
        .filter(|b| !wanted.iter().any(|w| w.contact_id == b.contact.id))
    {
        crm_db::repo::links::delete(c, ws, table, id, &gone.contact.id)?;
    }
    // The primary last, so that no later write takes its flag away.
    wanted.sort_by_key(|w| w.is_primary);
    for w in wanted {
        let l = link(id.to_string(), w.contact_id, w.role, w.is_primary);
        crm_db::repo::links::upsert(c, ws, table, &l)?;
    }
    let after = CONTACT_LINKS.list(c, ws, id)?;
    let (before, after) = (
        json!({ CONTACT_LINKS.key: before }),
        json!({ CONTACT_LINKS.key: after }),
    );
    Ok((before != after).then(|| Change {
        verb: "links_changed",
        id: id.to_string(),
        before: Some(before),
        after: Some(after),
    }))
}

/// Moves deals (`(id, archived)`) to another stage of their pipeline, recording each move.
/// Live deals move through the record update and produce `deal.updated` changes.
pub(crate) fn move_all(
    c: &mut DbConnection,
    p: &Principal,
    deals: &[(String, bool)],
    to: &StageRow,
) -> ApiResult<Vec<Change>> {
    let mut changes = Vec::new();
    let mut known = records::Known::default();
    let closed = StageKind::parse(&to.kind).is_some_and(|k| k.is_closed());
    for (id, archived) in deals {
        if *archived {
            let row = repo::get_deal(c, p.workspace, id)?;
            let closed_at = closed.then(crm_domain::values_time::now);
            repo::move_archived(c, p.workspace, &row, &to.id, closed_at, Some(p.actor_id()))?;
        } else {
            let patch = json!({"stage_id": to.id});
            records::patch_in::<Deals>(c, p, id, None, &patch, &mut changes, &mut known)?;
        }
    }
    Ok(changes)
}

record_handlers! {
    Deals { dto: Deal, input: DealInput, path: "/deals", tag: "deals",
            plural: "deals", singular: "deal", a: "a deal" }
    /// List deals.
    ///
    /// Filters come as query parameters: `stage_id=…`, `owner_id=…`, `amount[gte]=10000`,
    /// `expected_close_date[lte]=2027-03-31`, `custom.segment=enterprise`; free text `q`
    /// matches the name.
    list list_deals;
    /// Create, update, upsert and archive up to 1000 deals in one request.
    ///
    /// Operations run in order; each result sits at its operation's index. Without `atomic`,
    /// a failed operation changes nothing and the others stand; with `atomic: true`, the first
    /// failure rolls back all of them (the others then answer 424). Stage moves are recorded
    /// in the stage history as for a `PATCH`.
    batch batch_deals; search search_deals; create create_deal; get get_deal;
    /// Update a deal with a JSON Merge Patch (RFC 7396); moving it to another stage is a patch
    /// of `stage_id`.
    update update_deal { if_match: "The ETag last read; 412 if the deal changed since" };
    delete delete_deal; restore restore_deal;
}

/// A deal's move from one stage to another.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageChange {
    pub id: String,
    /// The deal that moved (in a company's or contact's timeline, one of its deals).
    pub deal_id: String,
    /// Null for the stage the deal was created in.
    pub from_stage_id: Option<String>,
    pub to_stage_id: String,
    pub changed_at: DateTime<Utc>,
    /// The user or API key that moved it.
    pub changed_by: Option<String>,
    /// How long the deal stayed in `from_stage_id`; null for the creation.
    pub time_in_stage_seconds: Option<i64>,
}

impl From<StageChangeRow> for StageChange {
    fn from(r: StageChangeRow) -> Self {
        StageChange {
            id: r.id,
            deal_id: r.deal_id,
            from_stage_id: r.from_stage_id,
            to_stage_id: r.to_stage_id,
            changed_at: utc(r.changed_at),
            changed_by: r.changed_by,
            time_in_stage_seconds: r.time_in_stage_seconds,
        }
    }
}

/// A page of stage changes, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageChangePage {
    pub data: Vec<StageChange>,
    pub next_cursor: Option<String>,
}

/// Every stage the deal has been in, oldest first, with the time spent in each; moves by
/// `PATCH`, batch and stage deletion alike.
#[utoipa::path(get, path = "/api/v1/deals/{id}/stage-history", tag = "deals", operation_id = "deal_stage_history",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 36)),
    responses((status = 200, description = "Stage changes", body = StageChangePage), ReadErrors), security(("bearer" = [])))]
#[get("/deals/{id}/stage-history")]
pub async fn stage_history(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<StageChangePage>> {
    p.require(Permission::DealsRead)?;
    let (limit, cursor) = id_page_params(&q)?;
    let id = id.into_inner();
    let page = state
        .db(move |c| {
            live_record::<Deals>(c, p.workspace, &id)?;
            let rows = repo::stage_history(c, p.workspace, &id, cursor.as_deref(), limit)?;
            let (rows, next) = id_page(rows, limit, |r| &r.id);
            Ok(StageChangePage {
                data: rows.into_iter().map(StageChange::from).collect(),
                next_cursor: next,
            })
        })
        .await?;
    Ok(web::Json(page))
}

/// A contact of a deal, with its role in the deal.
#[derive(Debug, Serialize, ToSchema)]
pub struct DealContact {
    pub contact: Contact,
    /// The contact's role in the deal, e.g. `Decision maker`.
    pub role: Option<String>,
    /// The deal's main contact; at most one per deal.
    pub is_primary: bool,
    pub linked_at: DateTime<Utc>,
}

/// A deal of a contact, with the contact's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactDeal {
    pub deal: Deal,
    pub role: Option<String>,
    pub is_primary: bool,
    pub linked_at: DateTime<Utc>,
}

/// Adds a contact to a deal or changes its role: the link as a whole (an absent `role`
/// clears it, an absent `is_primary` is false).
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "Decision maker", "is_primary": true}))]
pub struct PutDealContact {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub role: Option<String>,
    /// Make this the deal's primary contact (the others stop being primary).
    #[serde(default)]
    pub is_primary: bool,
}

fn deal_contacts(
    c: &mut DbConnection,
    ws: WorkspaceId,
    deal_ids: &[String],
) -> ApiResult<Vec<(String, DealContact)>> {
    Ok(repo::contacts_of_deals(c, ws, deal_ids)?
        .into_iter()
        .map(|(l, ct)| {
            let link = DealContact {
                contact: ct.into(),
                role: l.role,
                is_primary: l.is_primary,
                linked_at: utc(l.created_at),
            };
            (l.deal_id, link)
        })
        .collect())
}

/// The contacts of a deal as links see them.
pub(crate) static CONTACT_LINKS: LinkKind<DealContact> = LinkKind {
    event: "deal",
    key: "contacts",
    table: &crm_db::repo::links::DEAL_CONTACTS,
    list_many: deal_contacts,
};

/// The contacts of a deal, primary first, with their roles.
#[utoipa::path(get, path = "/api/v1/deals/{id}/contacts", tag = "deals", operation_id = "list_deal_contacts", params(("id" = String, Path)),
    responses((status = 200, description = "The deal's contacts", body = Vec<DealContact>), ReadErrors), security(("bearer" = [])))]
#[get("/deals/{id}/contacts")]
pub async fn list_deal_contacts(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<DealContact>>> {
    p.require(Permission::DealsRead)?;
    p.require(Permission::ContactsRead)?;
    let id = id.into_inner();
    let links = state
        .db(move |c| {
            live_record::<Deals>(c, p.workspace, &id)?;
            CONTACT_LINKS.list(c, p.workspace, &id)
        })
        .await?;
    Ok(web::Json(links))
}

/// Add a contact to a deal, or set its role and primary flag (idempotent).
///
/// Records `deal.links_changed` with the deal's contacts before and after. A contact that
/// is not a live contact of the workspace → 422 naming `contact_id`.
#[utoipa::path(put, path = "/api/v1/deals/{id}/contacts/{contact_id}", tag = "deals", operation_id = "put_deal_contact",
    params(("id" = String, Path), ("contact_id" = String, Path)), request_body = PutDealContact,
    responses((status = 201, description = "Added; the deal's contacts", body = Vec<DealContact>), (status = 200, description = "The link existed and now has this role; the deal's contacts", body = Vec<DealContact>), WriteErrors), security(("bearer" = [])))]
#[put("/deals/{id}/contacts/{contact_id}")]
pub async fn put_deal_contact(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::DealsWrite)?;
    p.require(Permission::ContactsRead)?;
    let input: PutDealContact = link_body(&body.0)?;
    let (id, contact_id) = path.into_inner();
    let ch = state
        .tx(move |c| {
            live_record::<Deals>(c, p.workspace, &id)?;
            live_reference::<Contacts>(c, p.workspace, &contact_id, "contact_id")?;
            let l = link(id, contact_id, input.role, input.is_primary);
            CONTACT_LINKS.upsert(c, &p, &l)
        })
        .await?;
    Ok(respond(ch))
}

/// Remove a contact from a deal (404 when it is not one of the deal's contacts).
#[utoipa::path(delete, path = "/api/v1/deals/{id}/contacts/{contact_id}", tag = "deals", operation_id = "delete_deal_contact",
    params(("id" = String, Path), ("contact_id" = String, Path)),
    responses((status = 204, description = "Removed"), WriteErrors), security(("bearer" = [])))]
#[delete("/deals/{id}/contacts/{contact_id}")]
pub async fn delete_deal_contact(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::DealsWrite)?;
    let (id, contact_id) = path.into_inner();
    state
        .tx(move |c| {
            live_record::<Deals>(c, p.workspace, &id)?;
            CONTACT_LINKS.delete(c, &p, &id, &contact_id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The live deals a contact takes part in, with its role in each, newest link first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/deals", tag = "contacts", operation_id = "list_contact_deals", params(("id" = String, Path)),
    responses((status = 200, description = "The contact's deals", body = Vec<ContactDeal>), ReadErrors), security(("bearer" = [])))]
#[get("/contacts/{id}/deals")]
pub async fn list_contact_deals(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<ContactDeal>>> {
    p.require(Permission::ContactsRead)?;
    p.require(Permission::DealsRead)?;
    let id = id.into_inner();
    let rows = state
        .db(move |c| {
            live_record::<Contacts>(c, p.workspace, &id)?;
            Ok(repo::deals_of_contact(c, p.workspace, &id)?)
        })
        .await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|(l, d)| ContactDeal {
                deal: d.into(),
                role: l.role,
                is_primary: l.is_primary,
                linked_at: utc(l.created_at),
            })
            .collect(),
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes)
        .service(stage_history)
        .service(list_deal_contacts)
        .service(put_deal_contact)
        .service(delete_deal_contact)
        .service(list_contact_deals);
}
