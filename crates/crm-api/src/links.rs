//! Role links between records as the API changes them (a contact's companies, a deal's
//! contacts): each change reads the owner's links before and after and records
//! `<owner>.links_changed` with both, so the change feed shows what the link did.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_json;
use crate::records::Record;
use actix_web::HttpResponse;
use crm_db::models::EventRow;
use crm_db::repo::links::{self, RoleLink, RoleLinks};
use crm_db::{DbConnection, RepoError};
use crm_domain::WorkspaceId;
use serde::de::DeserializeOwned;
use serde::Serialize;
use validator::Validate;

/// Lists the live links of each of these owners, with the owner's id, grouped by owner.
pub(crate) type ListMany<T> =
    fn(&mut DbConnection, WorkspaceId, &[String]) -> ApiResult<Vec<(String, T)>>;

/// One kind of link seen from its owner.
pub(crate) struct LinkKind<T> {
    /// The owner's event name (`contact` → `contact.links_changed`).
    pub event: &'static str,
    /// The key the links sit under in the event (`companies`).
    pub key: &'static str,
    pub table: &'static RoleLinks,
    /// The owners' live links as the API shows them.
    pub list_many: ListMany<T>,
}

/// What a change did to an owner's links.
pub(crate) struct Changed<T> {
    pub owner_id: String,
    /// The link did not exist before.
    pub created: bool,
    pub before: Vec<T>,
    pub after: Vec<T>,
}

impl<T: Serialize> LinkKind<T> {
    /// The owner's live links as the API shows them.
    pub fn list(&self, c: &mut DbConnection, ws: WorkspaceId, owner_id: &str) -> ApiResult<Vec<T>> {
        let links = (self.list_many)(c, ws, &[owner_id.to_string()])?;
        Ok(links.into_iter().map(|(_, l)| l).collect())
    }

    /// The live links of each owner, in the owners' order.
    pub fn list_each(
        &self,
        c: &mut DbConnection,
        ws: WorkspaceId,
        owners: &[String],
    ) -> ApiResult<Vec<Vec<T>>> {
        let mut by_owner: std::collections::HashMap<String, Vec<T>> = Default::default();
        for (owner, l) in (self.list_many)(c, ws, owners)? {
            by_owner.entry(owner).or_default().push(l);
        }
        Ok(owners
            .iter()
            .map(|o| by_owner.remove(o).unwrap_or_default())
            .collect())
    }

    fn around(
        &self,
        c: &mut DbConnection,
        ws: WorkspaceId,
        owner_id: &str,
        change: impl FnOnce(&mut DbConnection) -> ApiResult<bool>,
    ) -> ApiResult<Changed<T>> {
        let before = self.list(c, ws, owner_id)?;
        let created = change(c)?;
        let after = self.list(c, ws, owner_id)?;
        Ok(Changed {
            owner_id: owner_id.to_string(),
            created,
            before,
            after,
        })
    }

    /// Adds a link or changes its role and primary flag, in the caller's transaction.
    pub fn upsert_in(
        &self,
        c: &mut DbConnection,
        ws: WorkspaceId,
        link: &RoleLink,
    ) -> ApiResult<Changed<T>> {
        self.around(c, ws, &link.owner_id, |c| {
            Ok(links::upsert(c, ws, self.table, link)?)
        })
    }

    /// Removes a link (404 when there is none), in the caller's transaction.
    pub fn delete_in(
        &self,
        c: &mut DbConnection,
        ws: WorkspaceId,
        owner_id: &str,
        other_id: &str,
    ) -> ApiResult<Changed<T>> {
        self.around(c, ws, owner_id, |c| {
            links::delete(c, ws, self.table, owner_id, other_id)?;
            Ok(false)
        })
    }

    /// Adds or changes a link and records the event, in the caller's transaction.
    pub fn upsert(
        &self,
        c: &mut DbConnection,
        p: &Principal,
        link: &RoleLink,
    ) -> ApiResult<Changed<T>> {
        let ch = self.upsert_in(c, p.workspace, link)?;
        self.record(c, p, &ch)?;
        Ok(ch)
    }

    /// Removes a link and records the event, in the caller's transaction.
    pub fn delete(
        &self,
        c: &mut DbConnection,
        p: &Principal,
        owner_id: &str,
        other_id: &str,
    ) -> ApiResult<()> {
        let ch = self.delete_in(c, p.workspace, owner_id, other_id)?;
        self.record(c, p, &ch)
    }

    /// Records the `<owner>.links_changed` event of a change.
    pub fn record(&self, c: &mut DbConnection, p: &Principal, ch: &Changed<T>) -> ApiResult<()> {
        let row = self.event_row(p, ch)?;
        crate::events::append_many(c, p.workspace, vec![row])?;
        Ok(())
    }

    /// The `<owner>.links_changed` event of a change, not yet written.
    pub fn event_row(&self, p: &Principal, ch: &Changed<T>) -> ApiResult<EventRow> {
        let before = serde_json::json!({ self.key: ch.before });
        let after = serde_json::json!({ self.key: ch.after });
        crate::events::event_row(
            p,
            self.event,
            "links_changed",
            &ch.owner_id,
            Some(&before),
            Some(&after),
        )
    }
}

/// A link written now, its role trimmed (blank: none).
pub(crate) fn link(
    owner_id: String,
    other_id: String,
    role: Option<String>,
    is_primary: bool,
) -> RoleLink {
    RoleLink {
        owner_id,
        other_id,
        role: crate::dto::common::text(role),
        is_primary,
        at: crm_domain::values_time::now(),
    }
}

/// The body of a link request, parsed and validated.
pub(crate) fn link_body<B: DeserializeOwned + Validate>(body: &[u8]) -> ApiResult<B> {
    let input: B = parse_json(body)?;
    let errs = crate::dto::common::validate_input(&input);
    if errs.is_empty() {
        Ok(input)
    } else {
        Err(ApiError::Validation(errs))
    }
}

/// 201 with the owner's links when the link is new, else 200.
pub(crate) fn respond<T: Serialize>(ch: Changed<T>) -> HttpResponse {
    if ch.created {
        HttpResponse::Created().json(ch.after)
    } else {
        HttpResponse::Ok().json(ch.after)
    }
}

/// Checks that `id` names a live record of `R` in the workspace; a 422 naming `field`
/// when it does not.
pub(crate) fn live_reference<R: Record>(
    c: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
    field: &str,
) -> ApiResult<R::Row> {
    match R::get(c, ws, id) {
        Ok(r) if !R::is_archived(&r) => Ok(r),
        Ok(_) | Err(RepoError::NotFound) => Err(ApiError::field(
            field,
            "not_found",
            format!("no such {} in this workspace", R::EVENT),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The live record `id` of `R`: 404 when it is missing or archived.
pub(crate) fn live_record<R: Record>(
    c: &mut DbConnection,
    ws: WorkspaceId,
    id: &str,
) -> ApiResult<R::Row> {
    let row = R::get(c, ws, id)?;
    if R::is_archived(&row) {
        return Err(ApiError::NotFound);
    }
    Ok(row)
}
