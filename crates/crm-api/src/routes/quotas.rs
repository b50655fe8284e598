//! `/api/v1/quotas`: what users and teams should close per month or quarter, which the
//! forecast measures attainment against.

use crate::auth::Principal;
use crate::dto::quotas::{new_quota, Quota, QuotaInput};
use crate::error::{ApiError, ApiResult};
use crate::handlers::record_handlers;
use crate::listing::Catalogue;
use crate::records::Record;
use actix_web::web;
use crm_db::models::{QuotaChanges, QuotaRow};
use crm_db::repo::quotas as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Quotas;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "quotas",
        resource: RES.get_or_init(repo::quota_resource),
        relations: &[],
    })
}

/// Checks that the quota's user or team exists in the workspace (422 naming the field).
fn check_holder(conn: &mut DbConnection, ws: WorkspaceId, c: &QuotaChanges) -> ApiResult<()> {
    let missing = |field: &str, what: &str| {
        ApiError::Validation(vec![FieldError::new(
            field,
            "not_found",
            format!("no {what} with this id in the workspace"),
        )])
    };
    if let Some(user) = &c.user_id {
        match crm_db::repo::access::get_user(conn, ws, user) {
            Ok(_) => {}
            Err(RepoError::NotFound) => return Err(missing("user_id", "user")),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(team) = &c.team_id {
        match crm_db::repo::teams::get(conn, ws, team) {
            Ok(_) => {}
            Err(RepoError::NotFound) => return Err(missing("team_id", "team")),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Record for Quotas {
    const OBJECT: &'static str = "quotas";
    const EVENT: &'static str = "quota";
    const MATCH_ON: &'static [&'static str] = &[];
    const TABLE: &'static str = "quotas";
    const READ: Permission = Permission::QuotasRead;
    const WRITE: Permission = Permission::QuotasWrite;
    type Row = QuotaRow;
    type Input = QuotaInput;
    type Dto = Quota;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<QuotaRow, RepoError> {
        repo::get_quota(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<QuotaRow, RepoError> {
        repo::get_quota_locked(conn, ws, id)
    }
    fn version(row: &QuotaRow) -> i32 {
        row.version
    }
    fn is_archived(row: &QuotaRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(_: &QuotaInput) -> Option<&str> {
        None
    }
    fn custom(_: &mut QuotaInput) -> Map<String, Value> {
        Map::new()
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: QuotaInput,
        _custom: Map<String, Value>,
    ) -> ApiResult<QuotaRow> {
        let changes = input.into_changes()?;
        check_holder(conn, p.workspace, &changes)?;
        let row = new_quota(&p.workspace.as_string(), changes);
        Ok(repo::insert_quota(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &QuotaRow,
        input: QuotaInput,
        _custom: Map<String, Value>,
    ) -> ApiResult<QuotaRow> {
        let changes = input.into_changes()?;
        check_holder(conn, p.workspace, &changes)?;
        Ok(repo::update_quota(conn, p.workspace, current, &changes)?)
    }
}

record_handlers! {
    Quotas { dto: Quota, input: QuotaInput, path: "/quotas", tag: "quotas",
             plural: "quotas", singular: "quota", a: "a quota" }
    /// List quotas.
    ///
    /// Filters come as query parameters: `user_id=…`, `team_id=…`, `period=quarter`,
    /// `period_start[gte]=2027-01-01`, `currency=EUR`; sort by `period_start`, `amount`, ….
    list list_quotas;
    /// Create, update and archive up to 1000 quotas in one request.
    batch batch_quotas; search search_quotas;
    /// Create a quota for a user or a team. A second quota for the same user or team, period,
    /// `period_start` and currency is a 409 naming the one that exists (`existing_id`).
    create create_quota; get get_quota; update update_quota;
    /// Archive a quota, or erase it with `permanent=true` (admins).
    delete delete_quota; restore restore_quota;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes);
}
