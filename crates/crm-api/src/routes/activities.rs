//! `/api/v1/activities`: tasks, calls, meetings, e-mails and notes linked to records; a
//! user's or team's calendar; and the timelines of contacts, companies, deals and leads.

use crate::auth::{Actor, Auth, Principal};
use crate::dto::activities::{
    self as dto, Activity, ActivityInput, CalendarPage, CheckedActivity, TimelineData,
    TimelineItem, TimelinePage,
};
use crate::error::{ApiError, ApiResult, ReadErrors};
use crate::extract::QueryPairs;
use crate::handlers::record_handlers;
use crate::listing::{Catalogue, ListParams, Page, RelatedCatalogue};
use crate::records::{self, Record};
use crate::state::AppState;
use actix_web::{get, web};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use crm_db::models::{ActivityRow, LeadStatusChangeRow, LifecycleChangeRow, StageChangeRow};
use crm_db::repo::activities::{
    self as repo, COMPANY_LINKS, CONTACT_LINKS, DEAL_LINKS, LEAD_LINKS,
};
use crm_db::repo::timeline::{self, TimelineKey, TimelineRow};
use crm_db::{DbConnection, RepoError};
use crm_domain::activities::{parse_time_zone, DueWindow, MAX_CALENDAR_DAYS};
use crm_domain::{FieldError, Permission, WorkspaceId};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub struct Activities;

static RELATIONS: &[(&crm_db::query::Relation, RelatedCatalogue)] = &[
    (&CONTACT_LINKS.relation, super::contacts::catalogue),
    (&COMPANY_LINKS.relation, super::companies::catalogue),
    (&DEAL_LINKS.relation, super::deals::catalogue),
    (&LEAD_LINKS.relation, super::leads::catalogue),
];

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "activities",
        resource: RES.get_or_init(repo::activity_resource),
        relations: RELATIONS,
    })
}

/// Checks what only the database knows: the assignee is an active user, and every linked
/// id is a live record of the workspace (named by its path, `contact_ids[1]`).
fn check_in_workspace(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    checked: &CheckedActivity,
) -> ApiResult<()> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Some(a) = &checked.changes.assignee_id {
        match crm_db::repo::access::get_user(conn, ws, a) {
            Ok(u) if u.active => {}
            Ok(_) => errors.push(FieldError::new(
                "assignee_id",
                "inactive_user",
                "the assignee has been deactivated",
            )),
            Err(RepoError::NotFound) => errors.push(FieldError::new(
                "assignee_id",
                "not_found",
                "no user with this id in the workspace",
            )),
            Err(e) => return Err(e.into()),
        }
    }
    for (record_type, ids) in &checked.links {
        let Some(link) = repo::link_type(record_type) else {
            continue;
        };
        for missing in repo::missing_records(conn, ws, link, ids)? {
            let i = ids.iter().position(|x| *x == missing).unwrap_or(0);
            errors.push(FieldError::new(
                format!("{}[{i}]", link.field),
                "not_found",
                format!("no live {} with this id in the workspace", link.record_type),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

impl Record for Activities {
    const OBJECT: &'static str = "activities";
    const MATCH_ON: &'static [&'static str] = &["external_id"];
    const EVENT: &'static str = "activity";
    const TABLE: &'static str = "activities";
    const READ: Permission = Permission::ActivitiesRead;
    const WRITE: Permission = Permission::ActivitiesWrite;
    type Row = ActivityRow;
    type Input = ActivityInput;
    type Dto = Activity;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<ActivityRow, RepoError> {
        repo::get_activity(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<ActivityRow, RepoError> {
        repo::get_activity_locked(conn, ws, id)
    }
    fn version(row: &ActivityRow) -> i32 {
        row.version
    }
    fn is_archived(row: &ActivityRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(input: &ActivityInput) -> Option<&str> {
        input.owner_id.as_deref()
    }
    fn custom(input: &mut ActivityInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: ActivityInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ActivityRow> {
        let checked = input.check(custom)?;
        check_in_workspace(conn, p.workspace, &checked)?;
        let row = dto::new_row(&p.workspace.as_string(), &checked);
        Ok(repo::insert_activity(
            conn,
            p.workspace,
            &row,
            &checked.links,
        )?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &ActivityRow,
        input: ActivityInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ActivityRow> {
        let checked = input.check(custom)?;
        check_in_workspace(conn, p.workspace, &checked)?;
        let derived = repo::Derived {
            completed_at: dto::completed_at(&checked.changes, Some(current)),
            occurred_at: dto::occurred_at(&checked.changes, current.created_at),
            links: dto::links_json(&checked.links),
        };
        Ok(repo::update_activity(
            conn,
            p.workspace,
            current,
            &checked.changes,
            &derived,
            &checked.links,
        )?)
    }
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Turns `due=overdue|today|this_week` (with `tz`, an IANA zone, default UTC) into the
/// filters it stands for: open tasks and calls due in the window, soonest first.
fn action_list_filters(pairs: &mut Vec<(String, String)>) -> ApiResult<()> {
    let take = |pairs: &mut Vec<(String, String)>, name: &str| {
        let v = pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        pairs.retain(|(k, _)| k != name);
        v
    };
    let due = take(pairs, "due");
    let tz = take(pairs, "tz");
    let Some(due) = due else {
        if tz.is_some() {
            return Err(ApiError::field(
                "tz",
                "invalid_value",
                "tz applies to the due parameter",
            ));
        }
        return Ok(());
    };
    let window = DueWindow::parse(&due).ok_or_else(|| {
        ApiError::field("due", "invalid_value", "one of overdue, today, this_week")
    })?;
    let tz = parse_time_zone(tz.as_deref().unwrap_or("UTC")).ok_or_else(|| {
        ApiError::field(
            "tz",
            "invalid_value",
            "an IANA time zone such as Europe/Berlin",
        )
    })?;
    let (from, to) = window.range(Utc::now(), tz);
    pairs.push(("status".into(), "open".into()));
    pairs.push(("type[in]".into(), "task,call".into()));
    if let Some(from) = from {
        pairs.push(("due_at[gte]".into(), rfc3339(from)));
    }
    pairs.push(("due_at[lt]".into(), rfc3339(to)));
    if !pairs.iter().any(|(k, _)| k == "sort") {
        pairs.push(("sort".into(), "due_at".into()));
    }
    Ok(())
}

/// List activities.
///
/// Filters come as query parameters: `type=call`, `status[in]=open,done`, `assignee_id=…`,
/// `due_at[lt]=2026-12-01T00:00:00Z`. Activities linked to a record: `contacts.id=<id>` or
/// `companies.id=<id>` (any field of the linked record works: `contacts.lifecycle_stage=mature`).
/// A rep's action list: `due=overdue` (open tasks and calls due before now), `due=today` or
/// `due=this_week` (the ISO week, Monday to Monday), computed in the time zone `tz` (an
/// IANA name, default `UTC`), sorted by `due_at` unless `sort` says otherwise.
#[utoipa::path(get, path = "/api/v1/activities", tag = "activities", operation_id = "list_activities",
    params(ListParams,
        ("due" = Option<String>, Query, description = "`overdue`, `today` or `this_week`: open tasks and calls due in that window", max_length = 9),
        ("tz" = Option<String>, Query, description = "IANA time zone of `due` (default UTC)", example = "Europe/Berlin", max_length = 64)),
    responses((status = 200, description = "A page of activities", body = Page<Activity>), ReadErrors), security(("bearer" = [])))]
#[get("/activities")]
pub async fn list_activities(
    state: web::Data<AppState>,
    Auth(p): Auth,
    mut q: QueryPairs,
) -> ApiResult<web::Json<Page<Activity>>> {
    action_list_filters(&mut q.0)?;
    records::list::<Activities>(state, p, q).await
}

record_handlers! {
    Activities { dto: Activity, input: ActivityInput, path: "/activities", tag: "activities",
                 plural: "activities", singular: "activity", a: "an activity" }
    /// Create, update, upsert and archive up to 1000 activities in one request.
    batch batch_activities;
    /// Search activities with the full filter language (`contacts.id` for linked records).
    search search_activities; create create_activity; get get_activity;
    /// Update an activity with a JSON Merge Patch (RFC 7396); an id array (`contact_ids`)
    /// replaces that set of links.
    update update_activity; delete delete_activity; restore restore_activity;
}

/// Most activities a calendar answer holds.
const CALENDAR_MAX: i64 = 2000;

fn time_param(name: &str, v: Option<&String>) -> ApiResult<NaiveDateTime> {
    let v = v.ok_or_else(|| ApiError::field(name, "required", "an RFC 3339 time"))?;
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.naive_utc())
        .map_err(|_| ApiError::field(name, "invalid_value", "an RFC 3339 time"))
}

/// A user's or a team's calendar.
///
/// Meetings assigned to the user (or to the team's members) that overlap `[from, to)` and
/// tasks and calls due in it, by time; cancelled and archived activities are left out. The
/// range spans at most 92 days. Without `user_id` or `team_id`, the caller's calendar.
/// A page holds `limit` activities (at most 2000); `next_cursor` gives the next.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "activities", operation_id = "get_calendar",
    params(
        ("from" = String, Query, description = "Start of the range (RFC 3339)", max_length = 64),
        ("to" = String, Query, description = "End of the range, exclusive (RFC 3339), at most 92 days after `from`", max_length = 64),
        ("user_id" = Option<String>, Query, description = "Whose calendar (default: the caller)", max_length = 36),
        ("team_id" = Option<String>, Query, description = "A team: its members' calendars together", max_length = 36),
        ("limit" = Option<i64>, Query, description = "Activities per page (default and most: 2000)", minimum = 1, maximum = 2000),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the page before", max_length = 4096)),
    responses((status = 200, description = "The calendar", body = CalendarPage), ReadErrors), security(("bearer" = [])))]
#[get("/calendar")]
pub async fn get_calendar(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<CalendarPage>> {
    p.require(Permission::ActivitiesRead)?;
    let mut params: Map<String, Value> = Map::new();
    let mut limit = CALENDAR_MAX;
    let mut after = None;
    for (k, v) in &q.0 {
        match k.as_str() {
            "from" | "to" | "user_id" | "team_id" => {
                params.insert(k.clone(), Value::from(v.clone()));
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=CALENDAR_MAX).contains(l))
                    .ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            "out_of_range",
                            format!("must be between 1 and {CALENDAR_MAX}"),
                        )
                    })?
            }
            "cursor" => {
                let (at, key) = cursor_key(v)?;
                let id = string(&key, "id").ok_or_else(bad_cursor)?;
                after = Some((at, id));
            }
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    let get = |k: &str| params.get(k).and_then(Value::as_str).map(String::from);
    let from = time_param("from", get("from").as_ref())?;
    let to = time_param("to", get("to").as_ref())?;
    if to <= from {
        return Err(ApiError::field(
            "to",
            "invalid_range",
            "to must be after from",
        ));
    }
    if to - from > Duration::days(MAX_CALENDAR_DAYS) {
        return Err(ApiError::field(
            "to",
            "range_too_long",
            format!("a calendar spans at most {MAX_CALENDAR_DAYS} days"),
        ));
    }
    let (user_id, team_id) = (get("user_id"), get("team_id"));
    if team_id.is_some() {
        p.require(Permission::TeamsRead)?;
    }
    let mut rows = state
        .db(move |c| {
            let users = match (user_id, team_id) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::field(
                        "team_id",
                        "invalid_value",
                        "give user_id or team_id, not both",
                    ))
                }
                (None, Some(team)) => {
                    match crm_db::repo::teams::get(c, p.workspace, &team) {
                        Ok(_) => {}
                        Err(RepoError::NotFound) => {
                            return Err(ApiError::field(
                                "team_id",
                                "not_found",
                                "no team with this id in the workspace",
                            ))
                        }
                        Err(e) => return Err(e.into()),
                    }
                    crm_db::repo::teams::member_ids(c, p.workspace, &[team])?
                        .into_iter()
                        .map(|(_, u)| u)
                        .collect()
                }
                (Some(user), None) => match crm_db::repo::access::get_user(c, p.workspace, &user) {
                    Ok(_) => vec![user],
                    Err(RepoError::NotFound) => {
                        return Err(ApiError::field(
                            "user_id",
                            "not_found",
                            "no user with this id in the workspace",
                        ))
                    }
                    Err(e) => return Err(e.into()),
                },
                (None, None) => match &p.actor {
                    Actor::User { id, .. } => vec![id.clone()],
                    Actor::ApiKey { .. } => {
                        return Err(ApiError::field(
                            "user_id",
                            "required",
                            "an API key names the user or team",
                        ))
                    }
                },
            };
            Ok(repo::calendar(
                c,
                p.workspace,
                &users,
                (from, to),
                after,
                limit + 1,
            )?)
        })
        .await?;
    let truncated = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().filter(|_| truncated).map(|r| {
        let at = r.start_at.or(r.due_at).unwrap_or(from);
        URL_SAFE_NO_PAD.encode(json!({"at": rfc3339(at), "id": r.id}).to_string())
    });
    Ok(web::Json(CalendarPage {
        from: crate::dto::common::utc(from),
        to: crate::dto::common::utc(to),
        data: rows.into_iter().map(Activity::from).collect(),
        truncated,
        next_cursor,
    }))
}

/// A record type with a timeline: its table and the permission that reads it.
struct TimelineOwner {
    record_type: &'static str,
    table: &'static str,
    read: Permission,
}

const CONTACT_TIMELINE: TimelineOwner = TimelineOwner {
    record_type: "contact",
    table: "contacts",
    read: Permission::ContactsRead,
};
const COMPANY_TIMELINE: TimelineOwner = TimelineOwner {
    record_type: "company",
    table: "companies",
    read: Permission::CompaniesRead,
};
const DEAL_TIMELINE: TimelineOwner = TimelineOwner {
    record_type: "deal",
    table: "deals",
    read: Permission::DealsRead,
};
const LEAD_TIMELINE: TimelineOwner = TimelineOwner {
    record_type: "lead",
    table: "leads",
    read: Permission::LeadsRead,
};

fn timestamp(v: &Value, key: &str) -> Option<NaiveDateTime> {
    let s = v.get(key)?.as_str()?.replace('T', " ");
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f").ok()
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// An activity from its timeline payload (PostgreSQL renders booleans as JSON booleans,
/// SQLite as 0/1; timestamps with `T` or a space).
fn activity_payload(v: &Value) -> Option<ActivityRow> {
    Some(ActivityRow {
        workspace_id: string(v, "workspace_id")?,
        id: string(v, "id")?,
        activity_type: string(v, "activity_type")?,
        subject: string(v, "subject")?,
        body: string(v, "body"),
        due_at: timestamp(v, "due_at"),
        start_at: timestamp(v, "start_at"),
        end_at: timestamp(v, "end_at"),
        all_day: matches!(v.get("all_day"), Some(Value::Bool(true)))
            || v.get("all_day").and_then(Value::as_i64) == Some(1),
        status: string(v, "status")?,
        completed_at: timestamp(v, "completed_at"),
        priority: string(v, "priority")?,
        assignee_id: string(v, "assignee_id"),
        owner_id: string(v, "owner_id"),
        outcome: string(v, "outcome"),
        channel: string(v, "channel"),
        occurred_at: timestamp(v, "occurred_at")?,
        links: string(v, "links")?,
        external_id: string(v, "external_id"),
        custom: string(v, "custom")?,
        created_at: timestamp(v, "created_at")?,
        updated_at: timestamp(v, "updated_at")?,
        archived_at: timestamp(v, "archived_at"),
        version: i32::try_from(v.get("version")?.as_i64()?).ok()?,
    })
}

fn timeline_item(r: TimelineRow) -> ApiResult<TimelineItem> {
    let v: Value = serde_json::from_str(&r.payload).map_err(ApiError::internal)?;
    let bad = || ApiError::internal(format!("unreadable {} payload {}", r.kind, r.id));
    let data = match r.kind.as_str() {
        "activity" => {
            TimelineData::Activity(Box::new(activity_payload(&v).ok_or_else(bad)?.into()))
        }
        "lifecycle_change" => TimelineData::LifecycleChange(
            LifecycleChangeRow {
                workspace_id: String::new(),
                id: r.id.clone(),
                contact_id: string(&v, "contact_id").ok_or_else(bad)?,
                from_stage: string(&v, "from_stage"),
                to_stage: string(&v, "to_stage").ok_or_else(bad)?,
                changed_at: r.at,
                changed_by: string(&v, "changed_by"),
            }
            .into(),
        ),
        "stage_change" => TimelineData::StageChange(
            StageChangeRow {
                workspace_id: String::new(),
                id: r.id.clone(),
                deal_id: string(&v, "deal_id").ok_or_else(bad)?,
                from_stage_id: string(&v, "from_stage_id"),
                to_stage_id: string(&v, "to_stage_id").ok_or_else(bad)?,
                changed_at: r.at,
                changed_by: string(&v, "changed_by"),
                time_in_stage_seconds: v.get("time_in_stage_seconds").and_then(Value::as_i64),
            }
            .into(),
        ),
        "status_change" => TimelineData::StatusChange(
            LeadStatusChangeRow {
                workspace_id: String::new(),
                id: r.id.clone(),
                lead_id: string(&v, "lead_id").ok_or_else(bad)?,
                from_status: string(&v, "from_status"),
                to_status: string(&v, "to_status").ok_or_else(bad)?,
                changed_at: r.at,
                changed_by: string(&v, "changed_by"),
            }
            .into(),
        ),
        _ => return Err(bad()),
    };
    Ok(TimelineItem {
        kind: r.kind,
        at: crate::dto::common::utc(r.at),
        id: r.id,
        data,
    })
}

fn encode_cursor(r: &TimelineRow) -> String {
    URL_SAFE_NO_PAD.encode(json!({"at": rfc3339(r.at), "k": r.kind, "id": r.id}).to_string())
}

fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "invalid_cursor", "the cursor is not valid")
}

/// A cursor's time (`at`) and the rest of its key.
fn cursor_key(s: &str) -> ApiResult<(NaiveDateTime, Value)> {
    if s.len() > crate::listing::MAX_CURSOR_CHARS {
        return Err(bad_cursor());
    }
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_cursor())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
    let at = v
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(bad_cursor)?;
    Ok((at.naive_utc(), v))
}

fn decode_cursor(s: &str) -> ApiResult<TimelineKey> {
    let (at, v) = cursor_key(s)?;
    Ok(TimelineKey {
        at,
        kind: string(&v, "k").ok_or_else(bad_cursor)?,
        id: string(&v, "id").ok_or_else(bad_cursor)?,
    })
}

async fn timeline(
    state: web::Data<AppState>,
    p: Principal,
    owner: TimelineOwner,
    id: String,
    q: QueryPairs,
) -> ApiResult<web::Json<TimelinePage>> {
    p.require(owner.read)?;
    p.require(Permission::ActivitiesRead)?;
    let mut limit = crate::listing::DEFAULT_LIMIT;
    let mut after = None;
    for (k, v) in &q.0 {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=crate::listing::MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::field("limit", "out_of_range", "must be between 1 and 500")
                    })?
            }
            "cursor" => after = Some(decode_cursor(v)?),
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    // Items that come from other records show only to callers who may read those.
    let hidden: Vec<&'static str> = [
        ("stage_change", Permission::DealsRead),
        ("status_change", Permission::LeadsRead),
    ]
    .into_iter()
    .filter(|(_, perm)| !p.can(*perm))
    .map(|(kind, _)| kind)
    .collect();
    let mut rows = state
        .db(move |c| {
            let (_, archived_at) = crm_db::repo::records::state(c, owner.table, p.workspace, &id)?;
            if archived_at.is_some() {
                return Err(ApiError::NotFound);
            }
            Ok(timeline::page(
                c,
                p.workspace,
                owner.record_type,
                &id,
                after.as_ref(),
                limit + 1,
                &hidden,
            )?)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(encode_cursor)
    } else {
        None
    };
    Ok(web::Json(TimelinePage {
        data: rows
            .into_iter()
            .map(timeline_item)
            .collect::<ApiResult<_>>()?,
        next_cursor,
    }))
}

/// A contact's timeline: its activities and lifecycle-stage changes, the stage changes of
/// the deals it takes part in, and the status changes of the lead it was converted from,
/// newest first.
///
/// Items are ordered by `at`, then `kind`, then `id`, all descending; archived activities
/// and the history of archived deals are left out, and so are deals' and leads' items for
/// callers without `deals:read` / `leads:read`. Page with `limit` (1–500, default 50) and
/// the `next_cursor` of the previous page.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "contacts", operation_id = "get_contact_timeline",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 4096)),
    responses((status = 200, description = "A page of the timeline", body = TimelinePage), ReadErrors), security(("bearer" = [])))]
#[get("/contacts/{id}/timeline")]
pub async fn get_contact_timeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<TimelinePage>> {
    timeline(state, p, CONTACT_TIMELINE, id.into_inner(), q).await
}

/// A company's timeline: its activities and the stage changes of its deals, newest first
/// (paged like a contact's timeline).
#[utoipa::path(get, path = "/api/v1/companies/{id}/timeline", tag = "companies", operation_id = "get_company_timeline",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 4096)),
    responses((status = 200, description = "A page of the timeline", body = TimelinePage), ReadErrors), security(("bearer" = [])))]
#[get("/companies/{id}/timeline")]
pub async fn get_company_timeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<TimelinePage>> {
    timeline(state, p, COMPANY_TIMELINE, id.into_inner(), q).await
}

/// A deal's timeline: its activities and stage changes, newest first (paged like a
/// contact's timeline).
#[utoipa::path(get, path = "/api/v1/deals/{id}/timeline", tag = "deals", operation_id = "get_deal_timeline",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 4096)),
    responses((status = 200, description = "A page of the timeline", body = TimelinePage), ReadErrors), security(("bearer" = [])))]
#[get("/deals/{id}/timeline")]
pub async fn get_deal_timeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<TimelinePage>> {
    timeline(state, p, DEAL_TIMELINE, id.into_inner(), q).await
}

/// A lead's timeline: its activities and status changes, newest first (paged like a
/// contact's timeline).
#[utoipa::path(get, path = "/api/v1/leads/{id}/timeline", tag = "leads", operation_id = "get_lead_timeline",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, max_length = 4096)),
    responses((status = 200, description = "A page of the timeline", body = TimelinePage), ReadErrors), security(("bearer" = [])))]
#[get("/leads/{id}/timeline")]
pub async fn get_lead_timeline(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<TimelinePage>> {
    timeline(state, p, LEAD_TIMELINE, id.into_inner(), q).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_activities)
        .configure(record_routes)
        .service(get_calendar)
        .service(get_contact_timeline)
        .service(get_company_timeline)
        .service(get_deal_timeline)
        .service(get_lead_timeline);
}
