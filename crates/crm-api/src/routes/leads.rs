//! `/api/v1/leads`: leads, their distribution to reps and their conversion.

use super::assignment_rules::assign;
use super::companies::Companies;
use super::contacts::{Contacts, COMPANY_LINKS};
use super::deals::{Deals, CONTACT_LINKS as DEAL_CONTACT_LINKS};
use crate::auth::{Auth, Principal};
use crate::dto::companies::{Company, CompanyInput};
use crate::dto::contacts::{Contact, ContactInput};
use crate::dto::deals::{Deal, DealInput};
use crate::dto::leads::{new_row, Lead, LeadInput};
use crate::error::{ApiError, ApiResult, WriteErrors};
use crate::extract::{etag, parse_json, RawJson};
use crate::handlers::record_handlers;
use crate::links::{link, live_reference};
use crate::listing::Catalogue;
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{post, web, HttpResponse};
use crm_db::models::LeadRow;
use crm_db::repo::leads as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::records::{AssignmentObject, LeadStatus};
use crm_domain::{Permission, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::OnceLock;
use utoipa::ToSchema;

pub struct Leads;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "leads",
        resource: RES.get_or_init(repo::lead_resource),
        relations: &[],
    })
}

impl Record for Leads {
    const OBJECT: &'static str = "leads";
    const EVENT: &'static str = "lead";
    const MATCH_ON: &'static [&'static str] = &["external_id", "email"];
    const TABLE: &'static str = "leads";
    const READ: Permission = Permission::LeadsRead;
    const WRITE: Permission = Permission::LeadsWrite;
    const READ_ONLY: &'static [&'static str] = &[
        "converted_at",
        "converted_contact_id",
        "converted_company_id",
        "converted_deal_id",
    ];
    type Row = LeadRow;
    type Input = LeadInput;
    type Dto = Lead;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<LeadRow, RepoError> {
        repo::get(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<LeadRow, RepoError> {
        repo::get_locked(conn, ws, id)
    }
    fn version(row: &LeadRow) -> i32 {
        row.version
    }
    fn is_archived(row: &LeadRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &LeadInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut LeadInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: LeadInput,
        custom: Map<String, Value>,
    ) -> ApiResult<LeadRow> {
        let mut row = new_row(&p.workspace.as_string(), input.into_changes(custom, None)?);
        if row.owner_id.is_none() {
            let shown =
                serde_json::to_value(Lead::from(row.clone())).map_err(ApiError::internal)?;
            row.owner_id = assign(conn, p.workspace, AssignmentObject::Leads, &shown)?;
        }
        Ok(repo::insert(conn, p.workspace, &row, Some(p.actor_id()))?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &LeadRow,
        input: LeadInput,
        custom: Map<String, Value>,
    ) -> ApiResult<LeadRow> {
        let changes = input.into_changes(custom, LeadStatus::parse(&current.status))?;
        Ok(repo::update(
            conn,
            p.workspace,
            current,
            &changes,
            Some(p.actor_id()),
        )?)
    }
}

record_handlers! {
    Leads { dto: Lead, input: LeadInput, path: "/leads", tag: "leads",
            plural: "leads", singular: "lead", a: "a lead" }
    /// List leads.
    ///
    /// Filters come as query parameters: `status=working`, `score[gte]=50`, `source=web_form`,
    /// `owner_id=…`, `custom.segment=smb`; `q` searches names, e-mail and company name.
    list list_leads;
    /// Create, update, upsert and archive up to 1000 leads in one request.
    ///
    /// Operations run in order; each result sits at its operation's index. Without `atomic`,
    /// a failed operation changes nothing and the others stand; with `atomic: true`, the first
    /// failure rolls back all of them (the others then answer 424). New leads without an owner
    /// are assigned by the assignment rules, as with `POST /leads`.
    batch batch_leads; search search_leads;
    /// Create a lead.
    ///
    /// Without `owner_id`, the first active assignment rule (by `position`) whose filter
    /// matches the lead picks its owner; the `lead.created` event shows it.
    create create_lead; get get_lead;
    /// Update a lead with a JSON Merge Patch (RFC 7396).
    ///
    /// `status: disqualified` needs `disqualified_reason`; `converted` is set only by
    /// conversion, and the `converted_*` fields are read-only.
    update update_lead; delete delete_lead; restore restore_lead;
}

/// How to convert a lead. The contact is created from the lead (names, e-mail, phone,
/// title, source, owner) unless `contact_id` names an existing one; the company is linked
/// (`company_id`) or created from `company_name` (`create_company`), or left out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"create_company": true, "create_deal": true, "deal": {"name": "Acme pilot", "amount": "12000.00", "currency": "EUR", "expected_close_date": "2027-03-31"}}))]
pub struct ConvertLead {
    /// Link this existing contact instead of creating one. Needed when the lead's e-mail
    /// already belongs to a contact (otherwise 409 with `existing_id`).
    #[schema(max_length = 36)]
    pub contact_id: Option<String>,
    /// Link this existing company.
    #[schema(max_length = 36)]
    pub company_id: Option<String>,
    /// Create a company named after the lead's `company_name` (default false).
    #[serde(default)]
    pub create_company: bool,
    /// Create a deal from `deal` (default false), linked to the contact (as its primary
    /// contact) and to the company.
    #[serde(default)]
    pub create_deal: bool,
    /// The deal to create, with the fields of `POST /deals`. `name` defaults to the lead's
    /// `company_name` (else its name), `company_id` to the converted company and `owner_id`
    /// to the lead's owner; without a pipeline or stage it starts in the default
    /// pipeline's first stage. An invalid field is a 422 naming `deal.<field>`.
    pub deal: Option<DealInput>,
}

/// A converted lead and what it became.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadConversion {
    pub lead: Lead,
    pub contact: Contact,
    /// False when an existing contact was linked.
    pub contact_created: bool,
    pub company: Option<Company>,
    pub company_created: bool,
    /// The deal created with `create_deal`.
    pub deal: Option<Deal>,
}

fn not_found(field: &str, what: &str) -> ApiError {
    ApiError::field(
        field,
        "not_found",
        format!("no such {what} in this workspace"),
    )
}

/// The deal a conversion creates: `deal` with the lead's defaults filled in.
fn deal_input(lead: &LeadRow, deal: Option<DealInput>, company_id: Option<&String>) -> DealInput {
    let mut d = deal.unwrap_or_default();
    if d.name.is_none() {
        let person = [&lead.first_name, &lead.last_name]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        d.name = lead
            .company_name
            .clone()
            .or_else(|| (!person.is_empty()).then_some(person))
            .or_else(|| lead.email.clone());
    }
    if d.company_id.is_none() {
        d.company_id = company_id.cloned();
    }
    if d.owner_id.is_none() {
        d.owner_id = lead.owner_id.clone();
    }
    d
}

/// Convert a qualified lead into a contact, and optionally a company and a deal.
///
/// All in one transaction: creates (or links) the contact and the company, links them, creates the deal (as
/// `POST /deals` would) with the contact as its primary contact, and marks the lead
/// `converted` with `converted_*` and `converted_at`; events `contact.created`,
/// `company.created`, `deal.created`, `contact.links_changed`, `deal.links_changed` and
/// `lead.converted` are written with it, in that order. Any invalid deal field is a 422
/// naming `deal.<field>`, and nothing is written.
/// A converted lead → 409 (`existing_id`: its contact); an archived lead → 409 (restore it
/// first); a lead whose e-mail a contact already has → 409 with that contact as
/// `existing_id` (convert again with `contact_id`).
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "leads", operation_id = "convert_lead", params(("id" = String, Path)),
    request_body = ConvertLead,
    responses((status = 200, description = "The converted lead and the records it became", body = LeadConversion), WriteErrors), security(("bearer" = [])))]
#[post("/leads/{id}/convert")]
pub async fn convert_lead(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::LeadsWrite)?;
    p.require(Permission::ContactsWrite)?;
    let input: ConvertLead = parse_json(&body.0)?;
    if input.create_company {
        p.require(Permission::CompaniesWrite)?;
        if input.company_id.is_some() {
            return Err(ApiError::field(
                "create_company",
                "invalid_value",
                "give `company_id` or `create_company`, not both",
            ));
        }
    }
    if input.create_deal {
        p.require(Permission::DealsWrite)?;
    } else if input.deal.is_some() {
        return Err(ApiError::field(
            "create_deal",
            "required",
            "`deal` is used only with `create_deal: true`",
        ));
    }
    let id = id.into_inner();
    let out = state
        .tx(move |c| {
            let ws = p.workspace;
            // Locked as it is read: a concurrent conversion waits, then finds it converted.
            let lead = Leads::get_locked(c, ws, &id)?;
            if lead.archived_at.is_some() {
                return Err(ApiError::Conflict {
                    message: "the lead is archived; restore it first".into(),
                    existing_id: None,
                });
            }
            if lead.status == LeadStatus::Converted.as_str() {
                return Err(ApiError::Conflict {
                    message: "the lead is already converted".into(),
                    existing_id: lead.converted_contact_id.clone(),
                });
            }
            let (mut contact_events, mut company_events) = (Vec::new(), Vec::new());
            let (contact, contact_created) = match &input.contact_id {
                Some(cid) => match Contacts::get(c, ws, cid) {
                    Ok(ct) if ct.archived_at.is_none() => (ct, false),
                    Ok(_) | Err(RepoError::NotFound) => {
                        return Err(not_found("contact_id", "contact"))
                    }
                    Err(e) => return Err(e.into()),
                },
                None => {
                    let from = ContactInput {
                        first_name: lead.first_name.clone(),
                        last_name: lead.last_name.clone(),
                        email: lead.email.clone(),
                        phone: lead.phone.clone(),
                        job_title: lead.title.clone(),
                        source: lead.source.clone(),
                        owner_id: lead.owner_id.clone(),
                        ..ContactInput::default()
                    };
                    (
                        records::insert_in::<Contacts>(
                            c,
                            &p,
                            from,
                            &mut contact_events,
                            &mut records::Known::default(),
                        )?,
                        true,
                    )
                }
            };
            let (company, company_created) = match (&input.company_id, input.create_company) {
                (Some(co), _) => (
                    Some(live_reference::<Companies>(c, ws, co, "company_id")?),
                    false,
                ),
                (None, true) => {
                    let Some(name) = lead.company_name.clone() else {
                        return Err(ApiError::field(
                            "create_company",
                            "invalid_value",
                            "the lead has no company_name to name the company",
                        ));
                    };
                    let from = CompanyInput {
                        name: Some(name),
                        owner_id: lead.owner_id.clone(),
                        ..CompanyInput::default()
                    };
                    (
                        Some(records::insert_in::<Companies>(
                            c,
                            &p,
                            from,
                            &mut company_events,
                            &mut records::Known::default(),
                        )?),
                        true,
                    )
                }
                (None, false) => (None, false),
            };
            let mut deal_events = Vec::new();
            let deal = match input.create_deal {
                true => {
                    let from = deal_input(&lead, input.deal, company.as_ref().map(|co| &co.id));
                    let deal = records::insert_in::<Deals>(
                        c,
                        &p,
                        from,
                        &mut deal_events,
                        &mut records::Known::default(),
                    )
                    .map_err(|e| e.within("deal"))?;
                    Some(deal)
                }
                false => None,
            };
            let now = crm_domain::values_time::now();
            let company_link = match &company {
                Some(co) => Some(COMPANY_LINKS.upsert_in(
                    c,
                    ws,
                    &link(
                        contact.id.clone(),
                        co.id.clone(),
                        lead.title.clone(),
                        contact_created,
                    ),
                )?),
                None => None,
            };
            let deal_link = match &deal {
                Some(d) => Some(DEAL_CONTACT_LINKS.upsert_in(
                    c,
                    ws,
                    &link(d.id.clone(), contact.id.clone(), None, true),
                )?),
                None => None,
            };
            let converted = repo::mark_converted(
                c,
                ws,
                &lead,
                &repo::Converted {
                    contact_id: &contact.id,
                    company_id: company.as_ref().map(|co| co.id.as_str()),
                    deal_id: deal.as_ref().map(|d| d.id.as_str()),
                    at: now,
                },
                Some(p.actor_id()),
            )?;
            // Events go last, in the order the records came to be.
            records::flush::<Contacts>(c, &p, contact_events)?;
            records::flush::<Companies>(c, &p, company_events)?;
            records::flush::<Deals>(c, &p, deal_events)?;
            if let Some(ch) = company_link {
                COMPANY_LINKS.record(c, &p, &ch)?;
            }
            if let Some(ch) = deal_link {
                DEAL_CONTACT_LINKS.record(c, &p, &ch)?;
            }
            let lead_event =
                records::change::<Leads>("converted", &id, Some(&lead), Some(&converted))?;
            records::flush::<Leads>(c, &p, vec![lead_event])?;
            Ok(LeadConversion {
                lead: converted.into(),
                contact: contact.into(),
                contact_created,
                company: company.map(Company::from),
                company_created,
                deal: deal.map(Deal::from),
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(out.lead.version))
        .json(out))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes).service(convert_lead);
}
