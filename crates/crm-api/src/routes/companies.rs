//! `/api/v1/companies`: companies (accounts) and their contacts.

use super::contacts::ContactLink;
use crate::auth::{Auth, Principal};
use crate::dto::companies::{new_row, Company, CompanyInput};
use crate::error::{ApiError, ApiResult, ReadErrors};
use crate::handlers::record_handlers;
use crate::listing::Catalogue;
use crate::records::{Bulk, Record};
use crate::state::AppState;
use actix_web::{get, web};
use crm_db::models::CompanyRow;
use crm_db::repo::contacts as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Companies;

type RelatedCatalogue = fn() -> &'static Catalogue;
static RELATIONS: &[(&crm_db::query::Relation, RelatedCatalogue)] =
    &[(&repo::COMPANY_CONTACTS, super::contacts::catalogue)];

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "companies",
        resource: RES.get_or_init(repo::company_resource),
        relations: RELATIONS,
    })
}

impl Record for Companies {
    const OBJECT: &'static str = "companies";
    const MATCH_ON: &'static [&'static str] = &["external_id"];
    const EVENT: &'static str = "company";
    const TABLE: &'static str = "companies";
    const READ: Permission = Permission::CompaniesRead;
    const WRITE: Permission = Permission::CompaniesWrite;
    type Row = CompanyRow;
    type Input = CompanyInput;
    type Dto = Company;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<CompanyRow, RepoError> {
        repo::get_company(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<CompanyRow, RepoError> {
        repo::get_company_locked(conn, ws, id)
    }
    fn version(row: &CompanyRow) -> i32 {
        row.version
    }
    fn is_archived(row: &CompanyRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &CompanyInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut CompanyInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: CompanyInput,
        custom: Map<String, Value>,
    ) -> ApiResult<CompanyRow> {
        let row = new_row(&p.workspace.as_string(), input.into_changes(custom)?);
        Ok(repo::insert_company(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &CompanyRow,
        input: CompanyInput,
        custom: Map<String, Value>,
    ) -> ApiResult<CompanyRow> {
        let changes = input.into_changes(custom)?;
        Ok(repo::update_company(conn, p.workspace, current, &changes)?)
    }
    fn bulk() -> Option<Bulk<Self>> {
        Some(Bulk {
            id: |row| &row.id,
            row: |p, current, input, custom| {
                let changes = input.into_changes(custom)?;
                Ok(match current {
                    None => new_row(&p.workspace.as_string(), changes),
                    Some(current) => current.changed(changes, crm_domain::values_time::now()),
                })
            },
            write: |c, _, rows| Ok(crm_db::repo::bulk::write_companies(c, rows)?),
            unchanged: |current, next| current.same_values(next),
        })
    }
    fn merge() -> Option<crate::merge::Merge> {
        Some(crate::merge::Merge {
            absorb: |_, _, _| {},
            relink: relink_company,
            find: crate::duplicates::company_candidates,
        })
    }
}

/// Repoints what names company `from` at `to`: its contacts, deals, activities and the
/// leads converted into it.
fn relink_company(
    c: &mut DbConnection,
    p: &Principal,
    from: &str,
    to: &str,
    events: &mut Vec<crm_db::models::EventRow>,
) -> ApiResult<()> {
    use crate::merge::{move_links, relink_activities, repoint};
    move_links(
        c,
        p,
        &super::contacts::COMPANY_LINKS,
        "company_id",
        from,
        to,
        events,
    )?;
    repoint::<super::deals::Deals>(c, p, "company_id", from, to, events)?;
    repoint::<super::leads::Leads>(c, p, "converted_company_id", from, to, events)?;
    relink_activities::<super::activities::Activities>(c, p, "companies", from, to, events)
}

record_handlers! {
    Companies { dto: Company, input: CompanyInput, path: "/companies", tag: "companies",
                plural: "companies", singular: "company", a: "a company" }
    /// List companies.
    ///
    /// Filters come as query parameters: `industry=Retail`, `annual_revenue[gte]=1000000`,
    /// `contacts.lifecycle_stage=mature`, `custom.segment=enterprise`.
    duplicates company_duplicates;
    list list_companies; batch batch_companies; search search_companies; create create_company;
    get get_company { merged }; update update_company; delete delete_company;
    restore restore_company; merge merge_companies;
}

/// The contacts linked to a company.
#[utoipa::path(get, path = "/api/v1/companies/{id}/contacts", tag = "companies", operation_id = "list_company_contacts", params(("id" = String, Path)),
    responses((status = 200, description = "Linked contacts", body = Vec<ContactLink>), ReadErrors), security(("bearer" = [])))]
#[get("/companies/{id}/contacts")]
pub async fn list_company_contacts(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<ContactLink>>> {
    p.require(Permission::CompaniesRead)?;
    p.require(Permission::ContactsRead)?;
    let id = id.into_inner();
    let links = state
        .db(move |c| {
            let co = repo::get_company(c, p.workspace, &id)?;
            if co.archived_at.is_some() {
                return Err(ApiError::NotFound);
            }
            Ok(repo::links_of_company(c, p.workspace, &id)?)
        })
        .await?;
    Ok(web::Json(
        links
            .into_iter()
            .map(|(l, ct)| ContactLink {
                contact: ct.into(),
                role: l.role,
                is_primary: l.is_primary,
                linked_at: crate::dto::common::utc(l.created_at),
            })
            .collect(),
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes).service(list_company_contacts);
}
