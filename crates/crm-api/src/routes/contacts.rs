//! `/api/v1/contacts`: contacts, their companies and their lifecycle history.

use super::companies::Companies;
use crate::auth::{Auth, Principal};
use crate::dto::companies::Company;
use crate::dto::contacts::{new_row, Contact, ContactInput, LifecycleChange};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::extract::RawJson;
use crate::handlers::record_handlers;
use crate::links::{link, link_body, live_reference, respond, LinkKind};
use crate::listing::Catalogue;
use crate::records::{Bulk, Record};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::ContactRow;
use crm_db::repo::contacts as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::OnceLock;
use utoipa::ToSchema;
use validator::Validate;

pub struct Contacts;

type RelatedCatalogue = fn() -> &'static Catalogue;
static RELATIONS: &[(&crm_db::query::Relation, RelatedCatalogue)] =
    &[(&repo::CONTACT_COMPANIES, super::companies::catalogue)];

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "contacts",
        resource: RES.get_or_init(repo::contact_resource),
        relations: RELATIONS,
    })
}

impl Record for Contacts {
    const OBJECT: &'static str = "contacts";
    const MATCH_ON: &'static [&'static str] = &["external_id", "email"];
    const EVENT: &'static str = "contact";
    const TABLE: &'static str = "contacts";
    const READ: Permission = Permission::ContactsRead;
    const WRITE: Permission = Permission::ContactsWrite;
    type Row = ContactRow;
    type Input = ContactInput;
    type Dto = Contact;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<ContactRow, RepoError> {
        repo::get_contact(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<ContactRow, RepoError> {
        repo::get_contact_locked(conn, ws, id)
    }
    fn version(row: &ContactRow) -> i32 {
        row.version
    }
    fn is_archived(row: &ContactRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &ContactInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut ContactInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: ContactInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ContactRow> {
        let changes = input.into_changes(custom)?;
        let row = new_row(&p.workspace.as_string(), changes);
        Ok(repo::insert_contact(
            conn,
            p.workspace,
            &row,
            Some(p.actor_id()),
        )?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &ContactRow,
        input: ContactInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ContactRow> {
        let changes = input.into_changes(custom)?;
        Ok(repo::update_contact(
            conn,
            p.workspace,
            current,
            &changes,
            Some(p.actor_id()),
        )?)
    }
    fn bulk() -> Option<Bulk<Self>> {
        Some(Bulk {
            id: |row| &row.id,
            row: |p, current, input, custom| {
                let changes = input.into_changes(custom)?;
                Ok(match current {
                    None => new_row(&p.workspace.as_string(), changes),
                    Some(current) => {
                        let now = crm_domain::values_time::now();
                        let mut next = current.changed(changes, now);
                        if next.lifecycle_stage != current.lifecycle_stage {
                            next.lifecycle_stage_changed_at = now;
                        }
                        next
                    }
                })
            },
            write: |c, p, rows| {
                let actor = Some(p.actor_id());
                Ok(crm_db::repo::bulk::write_contacts(c, rows, actor)?)
            },
            unchanged: |current, next| current.same_values(next),
        })
    }
    fn merge() -> Option<crate::merge::Merge> {
        Some(crate::merge::Merge {
            absorb: absorb_contact,
            relink: relink_contact,
            find: crate::duplicates::contact_candidates,
        })
    }
}

/// What a merged contact keeps of both: the e-mail address and phone number not kept as
/// the main one join the additional ones, and either's `do_not_contact` stands.
fn absorb_contact(merged: &mut Map<String, Value>, a: &Map<String, Value>, b: &Map<String, Value>) {
    keep_both(merged, "email", "additional_emails", a, b, |e| {
        e.to_lowercase()
    });
    keep_both(
        merged,
        "phone",
        "additional_phones",
        a,
        b,
        crm_domain::values::phone_digits,
    );
    let dnc = |m: &Map<String, Value>| m["consent"]["do_not_contact"].as_bool() == Some(true);
    if dnc(a) || dnc(b) {
        if let Some(Value::Object(consent)) = merged.get_mut("consent") {
            consent.insert("do_not_contact".into(), Value::Bool(true));
        }
    }
}

/// Adds the `main` values of `a` and `b` that the merged record does not keep as its main
/// one to its `more` list, unless there already (compared by `key`).
fn keep_both(
    merged: &mut Map<String, Value>,
    main: &str,
    more: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    key: fn(&str) -> String,
) {
    let kept = merged.get(main).and_then(Value::as_str).map(key);
    let mut list: Vec<Value> = match merged.get(more) {
        Some(Value::Array(l)) => l.clone(),
        _ => Vec::new(),
    };
    let known = |list: &[Value], k: &str| {
        kept.as_deref() == Some(k)
            || list
                .iter()
                .any(|v| v.as_str().map(key).as_deref() == Some(k))
    };
    list.retain(|v| v.as_str().map(key) != kept);
    for side in [a, b] {
        if let Some(v) = side.get(main).and_then(Value::as_str) {
            if !known(&list, &key(v)) {
                list.push(Value::String(v.to_string()));
            }
        }
    }
    merged.insert(more.to_string(), Value::Array(list));
}

/// Repoints what names contact `from` at `to`: its companies, deals, activities, the
/// leads converted into it and its lifecycle history.
fn relink_contact(
    c: &mut DbConnection,
    p: &Principal,
    from: &str,
    to: &str,
    events: &mut Vec<crm_db::models::EventRow>,
) -> ApiResult<()> {
    use crate::merge::{move_links, relink_activities, repoint};
    move_links(c, p, &COMPANY_LINKS, "contact_id", from, to, events)?;
    move_links(
        c,
        p,
        &super::deals::CONTACT_LINKS,
        "contact_id",
        from,
        to,
        events,
    )?;
    relink_activities::<super::activities::Activities>(c, p, "contacts", from, to, events)?;
    repoint::<super::leads::Leads>(c, p, "converted_contact_id", from, to, events)?;
    crm_db::repo::merges::repoint(
        c,
        p.workspace,
        "contact_lifecycle_changes",
        "contact_id",
        from,
        to,
    )?;
    Ok(())
}

record_handlers! {
    Contacts { dto: Contact, input: ContactInput, path: "/contacts", tag: "contacts",
               plural: "contacts", singular: "contact", a: "a contact" }
    duplicates contact_duplicates;
    /// List contacts.
    ///
    /// Filters come as query parameters: `lifecycle_stage=mature`, `created_at[gte]=2026-01-01`,
    /// `tags[contains]=vip`, `companies.industry=Retail`, `custom.score[gt]=3`.
    list list_contacts; batch batch_contacts; search search_contacts; create create_contact;
    get get_contact { merged };
    update update_contact { if_match: "The ETag last read; 412 if the contact changed since" };
    delete delete_contact; restore restore_contact; merge merge_contacts;
}

/// Every lifecycle stage the contact has been in, oldest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/lifecycle-history", tag = "contacts", operation_id = "contact_lifecycle_history", params(("id" = String, Path)),
    responses((status = 200, description = "Stage changes", body = Vec<LifecycleChange>), ReadErrors), security(("bearer" = [])))]
#[get("/contacts/{id}/lifecycle-history")]
pub async fn lifecycle_history(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<LifecycleChange>>> {
    p.require(Permission::ContactsRead)?;
    let id = id.into_inner();
    let rows = state
        .db(move |c| {
            live_contact(c, p.workspace, &id)?;
            Ok(repo::lifecycle_history(c, p.workspace, &id)?)
        })
        .await?;
    Ok(web::Json(
        rows.into_iter().map(LifecycleChange::from).collect(),
    ))
}

/// A link between a contact and a company.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyLink {
    pub company: Company,
    /// The contact's role at the company, e.g. `Buyer`.
    pub role: Option<String>,
    pub is_primary: bool,
    pub linked_at: DateTime<Utc>,
}

/// A link between a company and a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactLink {
    pub contact: Contact,
    pub role: Option<String>,
    pub is_primary: bool,
    pub linked_at: DateTime<Utc>,
}

/// Links a contact to a company (or changes the link).
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct LinkCompany {
    #[schema(max_length = 36)]
    pub company_id: String,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub role: Option<String>,
    /// The contact's main company; at most one link is primary.
    #[serde(default)]
    pub is_primary: bool,
}

/// Changes a link's role or primary flag.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateLink {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub role: Option<String>,
    pub is_primary: Option<bool>,
}

fn live_contact(c: &mut DbConnection, ws: WorkspaceId, id: &str) -> ApiResult<ContactRow> {
    crate::links::live_record::<Contacts>(c, ws, id)
}

fn company_links(
    c: &mut DbConnection,
    ws: WorkspaceId,
    contact_ids: &[String],
) -> ApiResult<Vec<(String, CompanyLink)>> {
    Ok(repo::links_of_contacts(c, ws, contact_ids)?
        .into_iter()
        .map(|(l, co)| {
            let link = CompanyLink {
                company: co.into(),
                role: l.role,
                is_primary: l.is_primary,
                linked_at: crate::dto::common::utc(l.created_at),
            };
            (l.contact_id, link)
        })
        .collect())
}

/// The companies a contact belongs to, primary first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/companies", tag = "contacts", operation_id = "list_contact_companies", params(("id" = String, Path)),
    responses((status = 200, description = "Linked companies", body = Vec<CompanyLink>), ReadErrors), security(("bearer" = [])))]
#[get("/contacts/{id}/companies")]
pub async fn list_contact_companies(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<CompanyLink>>> {
    p.require(Permission::ContactsRead)?;
    p.require(Permission::CompaniesRead)?;
    let id = id.into_inner();
    let links = state
        .db(move |c| {
            live_contact(c, p.workspace, &id)?;
            COMPANY_LINKS.list(c, p.workspace, &id)
        })
        .await?;
    Ok(web::Json(links))
}

/// The companies of a contact as links see them.
pub(crate) static COMPANY_LINKS: LinkKind<CompanyLink> = LinkKind {
    event: "contact",
    key: "companies",
    table: &crm_db::repo::links::CONTACT_COMPANIES,
    list_many: company_links,
};

/// Link a contact to a company; linking again updates the role.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/companies", tag = "contacts", operation_id = "link_contact_company", params(("id" = String, Path)),
    request_body = LinkCompany,
    responses((status = 201, description = "Linked; the contact's companies", body = Vec<CompanyLink>), (status = 200, description = "The link existed and was updated", body = Vec<CompanyLink>), WriteErrors), security(("bearer" = [])))]
#[post("/contacts/{id}/companies")]
pub async fn link_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ContactsWrite)?;
    let input: LinkCompany = link_body(&body.0)?;
    let id = id.into_inner();
    let ch = state
        .tx(move |c| {
            live_contact(c, p.workspace, &id)?;
            live_reference::<Companies>(c, p.workspace, &input.company_id, "company_id")?;
            let l = link(id, input.company_id, input.role, input.is_primary);
            COMPANY_LINKS.upsert(c, &p, &l)
        })
        .await?;
    Ok(respond(ch))
}

/// Change a link's role or primary flag.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}/companies/{company_id}", tag = "contacts", operation_id = "update_contact_company",
    params(("id" = String, Path), ("company_id" = String, Path)), request_body = UpdateLink,
    responses((status = 200, description = "The contact's companies", body = Vec<CompanyLink>), WriteErrors), security(("bearer" = [])))]
#[patch("/contacts/{id}/companies/{company_id}")]
pub async fn update_link(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    body: RawJson,
) -> ApiResult<web::Json<Vec<CompanyLink>>> {
    p.require(Permission::ContactsWrite)?;
    let input: UpdateLink = link_body(&body.0)?;
    let (id, company_id) = path.into_inner();
    let links = state
        .tx(move |c| {
            live_contact(c, p.workspace, &id)?;
            let existing = repo::links_of_contact(c, p.workspace, &id)?
                .into_iter()
                .find(|(l, _)| l.company_id == company_id)
                .map(|(l, _)| l)
                .ok_or(ApiError::NotFound)?;
            let l = link(
                id,
                company_id,
                input.role.or(existing.role),
                input.is_primary.unwrap_or(existing.is_primary),
            );
            Ok(COMPANY_LINKS.upsert(c, &p, &l)?.after)
        })
        .await?;
    Ok(web::Json(links))
}

/// Unlink a contact from a company.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/companies/{company_id}", tag = "contacts", operation_id = "unlink_contact_company",
    params(("id" = String, Path), ("company_id" = String, Path)),
    responses((status = 204, description = "Unlinked"), WriteErrors), security(("bearer" = [])))]
#[delete("/contacts/{id}/companies/{company_id}")]
pub async fn unlink_company(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::ContactsWrite)?;
    let (id, company_id) = path.into_inner();
    state
        .tx(move |c| {
            live_contact(c, p.workspace, &id)?;
            COMPANY_LINKS.delete(c, &p, &id, &company_id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes)
        .service(lifecycle_history)
        .service(list_contact_companies)
        .service(link_company)
        .service(update_link)
        .service(unlink_company);
}
