//! Custom field definitions.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::CustomFieldRow;
use crate::schema::custom_field_definitions as cfd;
use crm_domain::custom_field::{CustomFieldDef, CustomFieldType};
use crm_domain::WorkspaceId;
use diesel::prelude::*;

pub fn list(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
) -> RepoResult<Vec<CustomFieldRow>> {
    Ok(cfd::table
        .filter(cfd::workspace_id.eq(ws.as_string()))
        .filter(cfd::object_type.eq(object))
        .order((cfd::created_at.asc(), cfd::id.asc()))
        .load(conn)?)
}

/// A page of an object's definitions by id (ids grow with time, so oldest first): up to
/// `limit` after `after_id`.
pub fn page(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
    after_id: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<CustomFieldRow>> {
    let q = cfd::table
        .filter(cfd::workspace_id.eq(ws.as_string()))
        .filter(cfd::object_type.eq(object.to_string()))
        .into_boxed();
    page_after_id!(conn, q, cfd, after_id, limit)
}

/// The definitions in the form validation and filtering need.
pub fn defs(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
) -> RepoResult<Vec<CustomFieldDef>> {
    Ok(list(conn, ws, object)?.iter().filter_map(to_def).collect())
}

pub fn to_def(row: &CustomFieldRow) -> Option<CustomFieldDef> {
    Some(CustomFieldDef {
        name: row.name.clone(),
        field_type: CustomFieldType::parse(&row.field_type)?,
        options: serde_json::from_str(&row.options).unwrap_or_default(),
        required: row.required,
    })
}

pub fn get(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
    name: &str,
) -> RepoResult<CustomFieldRow> {
    cfd::table
        .filter(cfd::workspace_id.eq(ws.as_string()))
        .filter(cfd::object_type.eq(object))
        .filter(cfd::name.eq(name))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

pub fn insert(conn: &mut DbConnection, row: &CustomFieldRow) -> RepoResult<CustomFieldRow> {
    let ws = WorkspaceId::from_authenticated(uuid_or_nil(&row.workspace_id));
    if let Ok(existing) = get(conn, ws, &row.object_type, &row.name) {
        return Err(RepoError::Conflict {
            field: "name".into(),
            message: format!(
                "a custom field named `{}` already exists on {}",
                row.name, row.object_type
            ),
            existing_id: Some(existing.id),
        });
    }
    diesel::insert_into(cfd::table)
        .values(row)
        .execute(conn)
        .map_err(|e| super::records::on_unique_race(e, "custom_field_definitions"))?;
    Ok(row.clone())
}

pub fn update(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &CustomFieldRow,
) -> RepoResult<CustomFieldRow> {
    let n = diesel::update(
        cfd::table
            .filter(cfd::workspace_id.eq(ws.as_string()))
            .filter(cfd::id.eq(&row.id))
            .filter(cfd::version.eq(row.version - 1)),
    )
    .set((
        cfd::label.eq(&row.label),
        cfd::options.eq(&row.options),
        cfd::required.eq(row.required),
        cfd::description.eq(&row.description),
        cfd::updated_at.eq(row.updated_at),
        cfd::version.eq(row.version),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: row.version - 1,
            current: row.version,
        });
    }
    Ok(row.clone())
}

pub fn delete(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &str,
    name: &str,
) -> RepoResult<()> {
    let n = diesel::delete(
        cfd::table
            .filter(cfd::workspace_id.eq(ws.as_string()))
            .filter(cfd::object_type.eq(object))
            .filter(cfd::name.eq(name)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}

fn uuid_or_nil(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).unwrap_or_default()
}
