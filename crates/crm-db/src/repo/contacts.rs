//! Contacts, companies, the links between them and the lifecycle history.

use super::records::{changed, ensure_unique, on_unique_race, update_returning};
use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::*;
use crate::query::{ColumnSpec, Relation, Resource};
use crate::schema::{companies, contact_companies, contact_lifecycle_changes, contacts};
use crm_domain::filter::FieldKind;
use crm_domain::records::{CompanySize, LifecycleStage, PreferredChannel};
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub static CONTACT_COMPANIES: Relation = Relation {
    name: "companies",
    link_table: "contact_companies",
    link_self: "contact_id",
    link_other: "company_id",
    other_table: "companies",
};

pub static COMPANY_CONTACTS: Relation = Relation {
    name: "contacts",
    link_table: "contact_companies",
    link_self: "company_id",
    link_other: "contact_id",
    other_table: "contacts",
};

pub(crate) fn enum_kind(names: Vec<&'static str>) -> FieldKind {
    FieldKind::Enum(names.into_iter().map(String::from).collect())
}

pub(crate) fn col(
    api_name: &'static str,
    column: &'static str,
    kind: FieldKind,
    sortable: bool,
) -> ColumnSpec {
    ColumnSpec {
        api_name,
        column,
        kind,
        sortable,
    }
}

fn common_columns() -> Vec<ColumnSpec> {
    vec![
        col("id", "id", FieldKind::Id, false),
        col("owner_id", "owner_id", FieldKind::Id, true),
        col("tags", "tags", FieldKind::TextList, false),
        col("external_id", "external_id", FieldKind::Text, true),
        col("address.line1", "address_line1", FieldKind::Text, false),
        col("address.line2", "address_line2", FieldKind::Text, false),
        col("address.city", "address_city", FieldKind::Text, true),
        col("address.region", "address_region", FieldKind::Text, true),
        col(
            "address.postal_code",
            "address_postal_code",
            FieldKind::Text,
            true,
        ),
        col("address.country", "address_country", FieldKind::Text, true),
    ]
    .into_iter()
    .chain(record_columns())
    .collect()
}

/// The columns every record table has.
pub(crate) fn record_columns() -> Vec<ColumnSpec> {
    vec![
        col("created_at", "created_at", FieldKind::Timestamp, true),
        col("updated_at", "updated_at", FieldKind::Timestamp, true),
        col("archived_at", "archived_at", FieldKind::Timestamp, true),
        col("version", "version", FieldKind::Integer, true),
    ]
}

pub fn contact_resource() -> Resource {
    let mut columns = vec![
        col("first_name", "first_name", FieldKind::Text, true),
        col("last_name", "last_name", FieldKind::Text, true),
        col("email", "email", FieldKind::LowerText, true),
        col(
            "additional_emails",
            "additional_emails",
            FieldKind::TextList,
            false,
        ),
        col("phone", "phone", FieldKind::Text, true),
        col(
            "additional_phones",
            "additional_phones",
            FieldKind::TextList,
            false,
        ),
        col("job_title", "job_title", FieldKind::Text, true),
        col(
            "lifecycle_stage",
            "lifecycle_stage",
            enum_kind(LifecycleStage::names()),
            true,
        ),
        col(
            "lifecycle_stage_changed_at",
            "lifecycle_stage_changed_at",
            FieldKind::Timestamp,
            true,
        ),
        col("source", "source", FieldKind::Text, true),
        col(
            "preferred_channel",
            "preferred_channel",
            enum_kind(PreferredChannel::names()),
            true,
        ),
        col("consent.email", "consent_email", FieldKind::Bool, true),
        col("consent.sms", "consent_sms", FieldKind::Bool, true),
        col("consent.phone", "consent_phone", FieldKind::Bool, true),
        col(
            "consent.do_not_contact",
            "do_not_contact",
            FieldKind::Bool,
            true,
        ),
    ];
    columns.extend(common_columns());
    Resource {
        table: "contacts",
        columns,
        text_columns: &[
            "first_name",
            "last_name",
            "email",
            "additional_emails",
            "phone",
            "additional_phones",
        ],
        text_relations: CONTACT_TEXT_RELATIONS,
    }
}

static CONTACT_TEXT_RELATIONS: &[(&Relation, &[&str])] = &[(&CONTACT_COMPANIES, &["name"])];

pub fn company_resource() -> Resource {
    let mut columns = vec![
        col("name", "name", FieldKind::Text, true),
        col("domain", "domain", FieldKind::LowerText, true),
        col("industry", "industry", FieldKind::Text, true),
        col("size", "size", enum_kind(CompanySize::names()), true),
        col("annual_revenue", "annual_revenue", FieldKind::Decimal, true),
        col("currency", "currency", FieldKind::Text, true),
        col("tier", "tier", FieldKind::Text, true),
        col("region", "region", FieldKind::Text, true),
    ];
    columns.extend(common_columns());
    Resource {
        table: "companies",
        columns,
        text_columns: &["name", "domain"],
        text_relations: &[],
    }
}

// ---- contacts ----

fn contact_unique(
    row_email: Option<&str>,
    row_external: Option<&str>,
) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("email", row_email.map(String::from)),
        ("external_id", row_external.map(String::from)),
    ]
}

fn check_contact_unique(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    email: Option<&str>,
    external: Option<&str>,
) -> RepoResult<()> {
    let pairs = contact_unique(email, external);
    let refs: Vec<(&'static str, Option<&str>)> =
        pairs.iter().map(|(c, v)| (*c, v.as_deref())).collect();
    ensure_unique(conn, "contacts", ws, id, &refs)
}

record_by_id!(get_contact, get_contact_locked, contacts, ContactRow);

pub fn insert_contact(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &ContactRow,
    actor: Option<&str>,
) -> RepoResult<ContactRow> {
    check_contact_unique(
        conn,
        ws,
        &row.id,
        row.email.as_deref(),
        row.external_id.as_deref(),
    )?;
    diesel::insert_into(contacts::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "contacts"))?;
    record_lifecycle(
        conn,
        ws,
        &row.id,
        None,
        &row.lifecycle_stage,
        row.lifecycle_stage_changed_at,
        actor,
    )?;
    Ok(row.clone())
}

/// Writes the merged state of a live contact whose version is still `version`.
pub fn update_contact(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &ContactRow,
    changes: &ContactChanges,
    actor: Option<&str>,
) -> RepoResult<ContactRow> {
    check_contact_unique(
        conn,
        ws,
        &current.id,
        changed(&changes.email, &current.email),
        changed(&changes.external_id, &current.external_id),
    )?;
    let now = crm_domain::values_time::now();
    let stage_changed = changes.lifecycle_stage != current.lifecycle_stage;
    let stage_at = if stage_changed {
        now
    } else {
        current.lifecycle_stage_changed_at
    };
    let update = diesel::update(
        contacts::table
            .filter(contacts::workspace_id.eq(ws.as_string()))
            .filter(contacts::id.eq(&current.id))
            .filter(contacts::version.eq(current.version)),
    )
    .set((
        changes,
        contacts::updated_at.eq(now),
        contacts::version.eq(current.version + 1),
        contacts::lifecycle_stage_changed_at.eq(stage_at),
    ))
    .returning(contacts::all_columns);
    let updated: ContactRow = update_returning(conn, update, "contacts", current.version)?;
    if stage_changed {
        record_lifecycle(
            conn,
            ws,
            &current.id,
            Some(&current.lifecycle_stage),
            &changes.lifecycle_stage,
            now,
            actor,
        )?;
    }
    Ok(updated)
}

fn record_lifecycle(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    contact_id: &str,
    from: Option<&str>,
    to: &str,
    at: chrono::NaiveDateTime,
    actor: Option<&str>,
) -> RepoResult<()> {
    diesel::insert_into(contact_lifecycle_changes::table)
        .values(LifecycleChangeRow {
            workspace_id: ws.as_string(),
            id: crm_domain::new_id().to_string(),
            contact_id: contact_id.to_string(),
            from_stage: from.map(String::from),
            to_stage: to.to_string(),
            changed_at: at,
            changed_by: actor.map(String::from),
        })
        .execute(conn)?;
    Ok(())
}

pub fn lifecycle_history(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    contact_id: &str,
) -> RepoResult<Vec<LifecycleChangeRow>> {
    Ok(contact_lifecycle_changes::table
        .filter(contact_lifecycle_changes::workspace_id.eq(ws.as_string()))
        .filter(contact_lifecycle_changes::contact_id.eq(contact_id))
        .order((
            contact_lifecycle_changes::changed_at.asc(),
            contact_lifecycle_changes::id.asc(),
        ))
        .load(conn)?)
}

// ---- companies ----

fn check_company_unique(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    external: Option<&str>,
) -> RepoResult<()> {
    ensure_unique(conn, "companies", ws, id, &[("external_id", external)])
}

record_by_id!(get_company, get_company_locked, companies, CompanyRow);

pub fn insert_company(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &CompanyRow,
) -> RepoResult<CompanyRow> {
    check_company_unique(conn, ws, &row.id, row.external_id.as_deref())?;
    diesel::insert_into(companies::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "companies"))?;
    Ok(row.clone())
}

pub fn update_company(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &CompanyRow,
    changes: &CompanyChanges,
) -> RepoResult<CompanyRow> {
    let external = changed(&changes.external_id, &current.external_id);
    check_company_unique(conn, ws, &current.id, external)?;
    let now = crm_domain::values_time::now();
    let update = diesel::update(
        companies::table
            .filter(companies::workspace_id.eq(ws.as_string()))
            .filter(companies::id.eq(&current.id))
            .filter(companies::version.eq(current.version)),
    )
    .set((
        changes,
        companies::updated_at.eq(now),
        companies::version.eq(current.version + 1),
    ))
    .returning(companies::all_columns);
    update_returning(conn, update, "companies", current.version)
}

// ---- links ----

/// A contact's companies (or a company's contacts) with the link's role.
pub fn links_of_contact(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    contact_id: &str,
) -> RepoResult<Vec<(ContactCompanyRow, CompanyRow)>> {
    links_of_contacts(conn, ws, &[contact_id.to_string()])
}

/// Which of these ids are live (not archived) contacts of the workspace, in one query per
/// [`super::bulk::ROWS_PER_STATEMENT`] ids.
pub fn live_ids(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(super::bulk::ROWS_PER_STATEMENT) {
        out.extend(
            contacts::table
                .filter(contacts::workspace_id.eq(ws.as_string()))
                .filter(contacts::id.eq_any(chunk))
                .filter(contacts::archived_at.is_null())
                .select(contacts::id)
                .load::<String>(conn)?,
        );
    }
    Ok(out)
}

/// The live company links of each of these contacts: by contact, primary first, then
/// oldest first.
pub fn links_of_contacts(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    contact_ids: &[String],
) -> RepoResult<Vec<(ContactCompanyRow, CompanyRow)>> {
    let mut out = Vec::new();
    for chunk in contact_ids.chunks(super::bulk::ROWS_PER_STATEMENT) {
        out.extend(
            contact_companies::table
                .inner_join(
                    companies::table.on(companies::workspace_id
                        .eq(contact_companies::workspace_id)
                        .and(companies::id.eq(contact_companies::company_id))),
                )
                .filter(contact_companies::workspace_id.eq(ws.as_string()))
                .filter(contact_companies::contact_id.eq_any(chunk))
                .filter(companies::archived_at.is_null())
                .order((
                    contact_companies::contact_id.asc(),
                    contact_companies::is_primary.desc(),
                    contact_companies::created_at.asc(),
                ))
                .select((ContactCompanyRow::as_select(), CompanyRow::as_select()))
                .load::<(ContactCompanyRow, CompanyRow)>(conn)?,
        );
    }
    Ok(out)
}

pub fn links_of_company(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    company_id: &str,
) -> RepoResult<Vec<(ContactCompanyRow, ContactRow)>> {
    Ok(contact_companies::table
        .inner_join(
            contacts::table.on(contacts::workspace_id
                .eq(contact_companies::workspace_id)
                .and(contacts::id.eq(contact_companies::contact_id))),
        )
        .filter(contact_companies::workspace_id.eq(ws.as_string()))
        .filter(contact_companies::company_id.eq(company_id))
        .filter(contacts::archived_at.is_null())
        .order(contact_companies::created_at.asc())
        .select((ContactCompanyRow::as_select(), ContactRow::as_select()))
        .load(conn)?)
}
