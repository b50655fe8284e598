//! Activities on the wire.

use super::common::*;
use chrono::{DateTime, NaiveDateTime, Utc};
use crm_db::models::{ActivityChanges, ActivityRow};
use crm_db::repo::activities::{
    LinkType, COMPANY_LINKS, CONTACT_LINKS, DEAL_LINKS, LEAD_LINKS, LINK_TYPES,
};
use crm_domain::activities::{ActivityPriority, ActivityStatus, ActivityType};
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// Most records one activity may link to, per kind.
pub const MAX_LINKS: usize = 100;

/// The writable fields of an activity: the body of `POST /activities`, and the shape a
/// `PATCH` merge-patch is applied to (an id array replaces the whole set of links).
///
/// Rules: `type` and `subject` are required; a meeting needs `start_at`; `end_at` needs
/// `start_at` and may not precede it; `all_day` needs `start_at` or `due_at`; `outcome` is
/// for calls only. `status` defaults to `done` for e-mails and notes and `open` otherwise;
/// `completed_at` is set by the server when the status becomes `done` and cleared when it
/// leaves it. `assignee_id` must be an active user of the workspace; linked ids must be
/// live records of the workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "call", "subject": "Discovery call", "due_at": "2026-11-26T10:00:00Z", "priority": "high", "contact_ids": ["0193a1c2-0000-7000-8000-000000000001"]}))]
pub struct ActivityInput {
    #[serde(rename = "type")]
    pub activity_type: Option<ActivityType>,
    #[validate(length(min = 1, max = 300))]
    #[schema(max_length = 300, min_length = 1)]
    pub subject: Option<String>,
    #[validate(length(max = 65535))]
    #[schema(max_length = 65535)]
    pub body: Option<String>,
    /// When a task or call is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When a meeting (or any scheduled activity) starts.
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub all_day: bool,
    pub status: Option<ActivityStatus>,
    pub priority: Option<ActivityPriority>,
    /// The user who is to do it: an active user of the workspace.
    #[schema(max_length = 36)]
    pub assignee_id: Option<String>,
    #[schema(max_length = 36)]
    pub owner_id: Option<String>,
    /// How a call ended (`connected`, `left_voicemail`, …); calls only.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub outcome: Option<String>,
    /// Where it happens or happened (`phone`, `zoom`, `linkedin`, …).
    #[validate(length(max = 50))]
    #[schema(max_length = 50)]
    pub channel: Option<String>,
    /// Contacts the activity concerns.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 100)]
    pub contact_ids: Vec<String>,
    /// Companies the activity concerns.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 100)]
    pub company_ids: Vec<String>,
    /// Deals the activity concerns.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 100)]
    pub deal_ids: Vec<String>,
    /// Leads the activity concerns.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Id>, max_items = 100)]
    pub lead_ids: Vec<String>,
    #[validate(length(min = 1, max = 255))]
    #[schema(max_length = 255, min_length = 1)]
    pub external_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
}

/// A task, call, meeting, e-mail or note, with the records it is linked to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    pub id: String,
    #[serde(rename = "type")]
    pub activity_type: ActivityType,
    pub subject: String,
    pub body: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub all_day: bool,
    pub status: ActivityStatus,
    /// Set by the server when the status became `done`.
    pub completed_at: Option<DateTime<Utc>>,
    pub priority: ActivityPriority,
    pub assignee_id: Option<String>,
    pub owner_id: Option<String>,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    pub contact_ids: Vec<String>,
    pub company_ids: Vec<String>,
    pub deal_ids: Vec<String>,
    pub lead_ids: Vec<String>,
    /// Where the activity sits on timelines: `start_at`, else `due_at`, else `created_at`.
    pub occurred_at: DateTime<Utc>,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

/// The linked ids of a row, for one kind of link.
fn linked(r: &ActivityRow, link: &LinkType) -> Vec<String> {
    let all: Map<String, Value> = parse_object(&r.links);
    all.get(link.record_type)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

impl From<ActivityRow> for Activity {
    fn from(r: ActivityRow) -> Self {
        Activity {
            activity_type: ActivityType::parse(&r.activity_type).unwrap_or(ActivityType::Task),
            status: ActivityStatus::parse(&r.status).unwrap_or(ActivityStatus::Open),
            priority: ActivityPriority::parse(&r.priority).unwrap_or(ActivityPriority::Normal),
            contact_ids: linked(&r, &CONTACT_LINKS),
            company_ids: linked(&r, &COMPANY_LINKS),
            deal_ids: linked(&r, &DEAL_LINKS),
            lead_ids: linked(&r, &LEAD_LINKS),
            due_at: r.due_at.map(utc),
            start_at: r.start_at.map(utc),
            end_at: r.end_at.map(utc),
            completed_at: r.completed_at.map(utc),
            occurred_at: utc(r.occurred_at),
            custom: parse_object(&r.custom),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            subject: r.subject,
            body: r.body,
            all_day: r.all_day,
            assignee_id: r.assignee_id,
            owner_id: r.owner_id,
            outcome: r.outcome,
            channel: r.channel,
            external_id: r.external_id,
            version: r.version,
        }
    }
}

impl From<&ActivityRow> for ActivityInput {
    fn from(r: &ActivityRow) -> Self {
        ActivityInput {
            activity_type: ActivityType::parse(&r.activity_type),
            subject: Some(r.subject.clone()),
            body: r.body.clone(),
            due_at: r.due_at.map(utc),
            start_at: r.start_at.map(utc),
            end_at: r.end_at.map(utc),
            all_day: r.all_day,
            status: ActivityStatus::parse(&r.status),
            priority: ActivityPriority::parse(&r.priority),
            assignee_id: r.assignee_id.clone(),
            owner_id: r.owner_id.clone(),
            outcome: r.outcome.clone(),
            channel: r.channel.clone(),
            contact_ids: linked(r, &CONTACT_LINKS),
            company_ids: linked(r, &COMPANY_LINKS),
            deal_ids: linked(r, &DEAL_LINKS),
            lead_ids: linked(r, &LEAD_LINKS),
            external_id: r.external_id.clone(),
            custom: parse_object(&r.custom),
        }
    }
}

/// An activity's links by kind: (record type, ids), in [`LINK_TYPES`] order.
pub type LinkSets = Vec<(&'static str, Vec<String>)>;

/// The checked state of an input, ready for the repository.
pub struct CheckedActivity {
    pub changes: ActivityChanges,
    pub links: LinkSets,
}

fn check_id(field: &str, id: &str, errors: &mut Vec<FieldError>) {
    if uuid::Uuid::parse_str(id).is_err() {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            "must be the id of a record of this workspace",
        ));
    }
}

impl ActivityInput {
    fn link_ids(&self, link: &LinkType) -> &[String] {
        match link.field {
            "contact_ids" => &self.contact_ids,
            "company_ids" => &self.company_ids,
            "deal_ids" => &self.deal_ids,
            "lead_ids" => &self.lead_ids,
            _ => &[],
        }
    }

    pub fn check(self, custom: Map<String, Value>) -> Result<CheckedActivity, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let mut links = LinkSets::new();
        for link in LINK_TYPES {
            let ids = self.link_ids(link);
            if ids.len() > MAX_LINKS {
                errors.push(FieldError::new(
                    link.field,
                    "too_many",
                    format!("at most {MAX_LINKS} records"),
                ));
            }
            let mut set: Vec<String> = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                check_id(&format!("{}[{i}]", link.field), id, &mut errors);
                if !set.contains(id) {
                    set.push(id.clone());
                }
            }
            links.push((link.record_type, set));
        }
        let subject = text(self.subject);
        if subject.is_none() && !errors.iter().any(|e| e.field == "subject") {
            errors.push(FieldError::new(
                "subject",
                "required",
                "an activity needs a subject",
            ));
        }
        let Some(activity_type) = self.activity_type else {
            errors.push(FieldError::new(
                "type",
                "required",
                "one of task, call, meeting, email, note",
            ));
            return Err(errors);
        };
        if activity_type == ActivityType::Meeting && self.start_at.is_none() {
            errors.push(FieldError::new(
                "start_at",
                "required",
                "a meeting needs its start",
            ));
        }
        match (self.start_at, self.end_at) {
            (None, Some(_)) => errors.push(FieldError::new(
                "end_at",
                "invalid_value",
                "an end needs a start_at",
            )),
            (Some(s), Some(e)) if e < s => errors.push(FieldError::new(
                "end_at",
                "invalid_range",
                "end_at is before start_at",
            )),
            _ => {}
        }
        if self.all_day && self.start_at.is_none() && self.due_at.is_none() {
            errors.push(FieldError::new(
                "all_day",
                "invalid_value",
                "an all-day activity needs start_at or due_at",
            ));
        }
        let outcome = text(self.outcome);
        if outcome.is_some() && activity_type != ActivityType::Call {
            errors.push(FieldError::new(
                "outcome",
                "not_allowed",
                "only calls have an outcome",
            ));
        }
        let assignee_id = self.assignee_id.filter(|o| !o.is_empty());
        if let Some(a) = &assignee_id {
            check_id("assignee_id", a, &mut errors);
        }
        let owner_id = self.owner_id.filter(|o| !o.is_empty());
        if let Some(o) = &owner_id {
            check_id("owner_id", o, &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let status = self
            .status
            .unwrap_or_else(|| activity_type.default_status());
        Ok(CheckedActivity {
            changes: ActivityChanges {
                activity_type: activity_type.as_str().to_string(),
                subject: subject.unwrap_or_default(),
                body: self.body.filter(|b| !b.trim().is_empty()),
                due_at: self.due_at.map(|t| t.naive_utc()),
                start_at: self.start_at.map(|t| t.naive_utc()),
                end_at: self.end_at.map(|t| t.naive_utc()),
                all_day: self.all_day,
                status: status.as_str().to_string(),
                priority: self
                    .priority
                    .unwrap_or(ActivityPriority::Normal)
                    .as_str()
                    .to_string(),
                assignee_id,
                owner_id,
                outcome,
                channel: text(self.channel),
                external_id: text(self.external_id),
                custom: Value::Object(custom).to_string(),
            },
            links,
        })
    }
}

/// The links column: ids by record type.
pub fn links_json(links: &LinkSets) -> String {
    let map: Map<String, Value> = links
        .iter()
        .map(|(t, ids)| (t.to_string(), Value::from(ids.clone())))
        .collect();
    Value::Object(map).to_string()
}

/// Where an activity sits on timelines.
pub fn occurred_at(c: &ActivityChanges, created_at: NaiveDateTime) -> NaiveDateTime {
    c.start_at.or(c.due_at).unwrap_or(created_at)
}

/// When it was completed: kept while it stays done, now when it becomes done.
pub fn completed_at(c: &ActivityChanges, before: Option<&ActivityRow>) -> Option<NaiveDateTime> {
    if c.status != ActivityStatus::Done.as_str() {
        return None;
    }
    match before {
        Some(b) if b.status == c.status => b.completed_at,
        _ => Some(crm_domain::values_time::now()),
    }
}

pub fn new_row(ws: &str, checked: &CheckedActivity) -> ActivityRow {
    let now = crm_domain::values_time::now();
    let c = checked.changes.clone();
    ActivityRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        completed_at: completed_at(&c, None),
        occurred_at: occurred_at(&c, now),
        links: links_json(&checked.links),
        activity_type: c.activity_type,
        subject: c.subject,
        body: c.body,
        due_at: c.due_at,
        start_at: c.start_at,
        end_at: c.end_at,
        all_day: c.all_day,
        status: c.status,
        priority: c.priority,
        assignee_id: c.assignee_id,
        owner_id: c.owner_id,
        outcome: c.outcome,
        channel: c.channel,
        external_id: c.external_id,
        custom: c.custom,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// One item of a record's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    /// `activity`, `lifecycle_change` (contacts), `stage_change` (deals) or
    /// `status_change` (leads); more kinds may be added.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub id: String,
    pub data: TimelineData,
}

/// The item itself, by kind.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimelineData {
    Activity(Box<Activity>),
    LifecycleChange(crate::dto::contacts::LifecycleChange),
    StageChange(crate::routes::deals::StageChange),
    StatusChange(crate::dto::leads::LeadStatusChange),
}

/// A page of a timeline, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    pub data: Vec<TimelineItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A user's or team's activities in a time range.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarPage {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Meetings overlapping the range and tasks and calls due in it, by time.
    pub data: Vec<Activity>,
    /// True when the range holds more than this page.
    pub truncated: bool,
    /// Gives the next page as `cursor` (same range and calendar); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
