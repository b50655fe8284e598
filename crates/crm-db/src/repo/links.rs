//! Links with a role between two kinds of records (a contact's companies, a deal's
//! contacts): one table per pair, keyed by (workspace_id, owner, other), with `role`,
//! `is_primary` (at most one per owner) and times. Written once over the table's names.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::query::{Bind, SqlBuf};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;

/// A link table: `owner` is the record whose links are listed and changed (the contact of
/// a contact's companies), `other` the linked record.
pub struct RoleLinks {
    pub table: &'static str,
    pub owner: &'static str,
    pub other: &'static str,
}

pub static CONTACT_COMPANIES: RoleLinks = RoleLinks {
    table: "contact_companies",
    owner: "contact_id",
    other: "company_id",
};

pub static DEAL_CONTACTS: RoleLinks = RoleLinks {
    table: "deal_contacts",
    owner: "deal_id",
    other: "contact_id",
};

/// One link as written.
#[derive(Debug, Clone)]
pub struct RoleLink {
    pub owner_id: String,
    pub other_id: String,
    pub role: Option<String>,
    pub is_primary: bool,
    pub at: NaiveDateTime,
}

fn key(b: &mut SqlBuf, t: &RoleLinks, ws: WorkspaceId, owner_id: &str) {
    b.push(" WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(&format!(" AND {} = ", t.owner));
    b.bind(Bind::Text(owner_id.to_string()));
}

/// Links `owner_id` to `other_id`, or updates the link's role and primary flag; a primary
/// link makes the owner's other links not primary. True when the link is new.
pub fn upsert(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    t: &RoleLinks,
    link: &RoleLink,
) -> RepoResult<bool> {
    if link.is_primary {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(&format!("UPDATE {} SET is_primary = ", t.table));
        b.bind(Bind::Bool(false));
        key(&mut b, t, ws, &link.owner_id);
        b.push(&format!(" AND {} <> ", t.other));
        b.bind(Bind::Text(link.other_id.clone()));
        b.execute(conn)?;
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("UPDATE {} SET role = ", t.table));
    match &link.role {
        Some(r) => b.bind(Bind::Text(r.clone())),
        None => b.push("NULL"),
    };
    b.push(", is_primary = ");
    b.bind(Bind::Bool(link.is_primary));
    b.push(", updated_at = ");
    b.bind(Bind::Ts(link.at));
    key(&mut b, t, ws, &link.owner_id);
    b.push(&format!(" AND {} = ", t.other));
    b.bind(Bind::Text(link.other_id.clone()));
    if b.execute(conn)? > 0 {
        return Ok(false);
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "INSERT INTO {} (workspace_id, {}, {}, role, is_primary, created_at, updated_at) VALUES (",
        t.table, t.owner, t.other
    ));
    b.bind(Bind::Text(ws.as_string()));
    for v in [&link.owner_id, &link.other_id] {
        b.push(", ");
        b.bind(Bind::Text(v.clone()));
    }
    b.push(", ");
    match &link.role {
        Some(r) => b.bind(Bind::Text(r.clone())),
        None => b.push("NULL"),
    };
    b.push(", ");
    b.bind(Bind::Bool(link.is_primary));
    for _ in 0..2 {
        b.push(", ");
        b.bind(Bind::Ts(link.at));
    }
    b.push(")");
    b.execute(conn)?;
    Ok(true)
}

/// Removes the link between `owner_id` and `other_id`; NotFound when there is none.
pub fn delete(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    t: &RoleLinks,
    owner_id: &str,
    other_id: &str,
) -> RepoResult<()> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("DELETE FROM {}", t.table));
    key(&mut b, t, ws, owner_id);
    b.push(&format!(" AND {} = ", t.other));
    b.bind(Bind::Text(other_id.to_string()));
    if b.execute(conn)? == 0 {
        Err(RepoError::NotFound)
    } else {
        Ok(())
    }
}
