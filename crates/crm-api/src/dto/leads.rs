//! Leads on the wire.

use super::common::*;
use chrono::{DateTime, Utc};
use crm_db::models::{LeadChanges, LeadRow};
use crm_domain::records::LeadStatus;
use crm_domain::values::{normalize_email, normalize_phone};
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// The writable fields of a lead: the body of `POST /leads`, and the shape a `PATCH`
/// merge-patch is applied to. At least one of `first_name`, `last_name`, `email` and
/// `company_name` is required. `status` cannot be set to `converted` (only
/// `POST /leads/{id}/convert` does that), and a converted lead stays converted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example", "company_name": "US Navy", "title": "Rear Admiral", "source": "web_form", "status": "new", "score": 80}))]
pub struct LeadInput {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub first_name: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub last_name: Option<String>,
    /// Unique among the workspace's leads (case-insensitive).
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    /// The lead's organisation; conversion can turn it into a company.
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub company_name: Option<String>,
    /// Job title.
    #[validate(length(max = 150))]
    #[schema(max_length = 150)]
    pub title: Option<String>,
    /// Where the lead came from (`web_form`, `import`, `trade_show`, …).
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub source: Option<String>,
    /// The campaign the lead answered.
    #[schema(max_length = 36)]
    pub campaign_id: Option<String>,
    /// Defaults to `new`.
    pub status: Option<LeadStatus>,
    /// Why the lead was disqualified; required while `status` is `disqualified`.
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub disqualified_reason: Option<String>,
    /// 0 to 100.
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<i32>,
    /// A user of the workspace. When a new lead has none, the first active assignment rule
    /// whose filter matches it picks one.
    #[schema(max_length = 36)]
    pub owner_id: Option<String>,
    /// At most 50 tags of 1–64 characters.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Tag>, max_items = 50)]
    pub tags: Vec<String>,
    /// The integrating system's id; unique per workspace.
    #[validate(length(min = 1, max = 255))]
    #[schema(max_length = 255, min_length = 1)]
    pub external_id: Option<String>,
    /// Values of the lead custom fields defined under `/fields/leads`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
}

/// A lead.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lead {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub campaign_id: Option<String>,
    pub status: LeadStatus,
    pub disqualified_reason: Option<String>,
    pub score: Option<i32>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    /// When the lead was converted.
    pub converted_at: Option<DateTime<Utc>>,
    /// The contact the lead became.
    pub converted_contact_id: Option<String>,
    /// The company the lead's organisation became or was linked to.
    pub converted_company_id: Option<String>,
    /// The deal opened on conversion.
    pub converted_deal_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while the lead is archived.
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<LeadRow> for Lead {
    fn from(r: LeadRow) -> Self {
        let w = LeadInput::from(&r);
        Lead {
            id: r.id,
            first_name: w.first_name,
            last_name: w.last_name,
            email: w.email,
            phone: w.phone,
            company_name: w.company_name,
            title: w.title,
            source: w.source,
            campaign_id: w.campaign_id,
            status: w.status.unwrap_or(LeadStatus::New),
            disqualified_reason: w.disqualified_reason,
            score: w.score,
            owner_id: w.owner_id,
            tags: w.tags,
            external_id: w.external_id,
            custom: w.custom,
            converted_at: r.converted_at.map(utc),
            converted_contact_id: r.converted_contact_id,
            converted_company_id: r.converted_company_id,
            converted_deal_id: r.converted_deal_id,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            version: r.version,
        }
    }
}

impl From<&LeadRow> for LeadInput {
    fn from(r: &LeadRow) -> Self {
        LeadInput {
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
            email: r.email.clone(),
            phone: r.phone.clone(),
            company_name: r.company_name.clone(),
            title: r.title.clone(),
            source: r.source.clone(),
            campaign_id: r.campaign_id.clone(),
            status: LeadStatus::parse(&r.status),
            disqualified_reason: r.disqualified_reason.clone(),
            score: r.score,
            owner_id: r.owner_id.clone(),
            tags: parse_list(&r.tags),
            external_id: r.external_id.clone(),
            custom: parse_object(&r.custom),
        }
    }
}

fn id_field(value: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.filter(|o| !o.is_empty())?;
    if uuid::Uuid::parse_str(&v).is_err() {
        errors.push(FieldError::new(field, "invalid_value", "must be an id"));
    }
    Some(v)
}

impl LeadInput {
    /// Validates and normalises into the columns to write; `custom` must already be checked.
    /// `current` is the stored status of the lead being updated (none for a new lead).
    pub fn into_changes(
        self,
        custom: Map<String, Value>,
        current: Option<LeadStatus>,
    ) -> Result<LeadChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let email = norm(self.email, "email", normalize_email, &mut errors);
        let phone = norm(self.phone, "phone", normalize_phone, &mut errors);
        let tags = tags(&self.tags, &mut errors);
        let first_name = text(self.first_name);
        let last_name = text(self.last_name);
        let company_name = text(self.company_name);
        if first_name.is_none()
            && last_name.is_none()
            && email.is_none()
            && company_name.is_none()
            && !errors.iter().any(|e| e.field == "email")
        {
            errors.push(FieldError::new(
                "first_name",
                "required",
                "a lead needs at least one of first_name, last_name, email or company_name",
            ));
        }
        let status = self.status.unwrap_or(LeadStatus::New);
        let converted = current == Some(LeadStatus::Converted);
        if status == LeadStatus::Converted && !converted {
            errors.push(FieldError::new(
                "status",
                "invalid_transition",
                "a lead becomes `converted` only through POST /leads/{id}/convert",
            ));
        } else if converted && status != LeadStatus::Converted {
            errors.push(FieldError::new(
                "status",
                "invalid_transition",
                "a converted lead stays converted",
            ));
        }
        let disqualified_reason = text(self.disqualified_reason);
        if status == LeadStatus::Disqualified && disqualified_reason.is_none() {
            errors.push(FieldError::new(
                "disqualified_reason",
                "required",
                "a disqualified lead needs the reason",
            ));
        }
        let owner_id = self.owner_id.filter(|o| !o.is_empty());
        if owner_id
            .as_deref()
            .is_some_and(|o| uuid::Uuid::parse_str(o).is_err())
        {
            errors.push(FieldError::new(
                "owner_id",
                "invalid_value",
                "must be the id of a user in this workspace",
            ));
        }
        let campaign_id = id_field(self.campaign_id, "campaign_id", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(LeadChanges {
            first_name,
            last_name,
            email,
            phone,
            company_name,
            title: text(self.title),
            source: text(self.source),
            campaign_id,
            status: status.as_str().to_string(),
            disqualified_reason,
            score: self.score,
            owner_id,
            tags: json_list(&tags),
            external_id: text(self.external_id),
            custom: Value::Object(custom).to_string(),
        })
    }
}

/// A new lead row from validated columns.
pub fn new_row(ws: &str, c: LeadChanges) -> LeadRow {
    let now = crm_domain::values_time::now();
    LeadRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        phone: c.phone,
        company_name: c.company_name,
        title: c.title,
        source: c.source,
        campaign_id: c.campaign_id,
        status: c.status,
        disqualified_reason: c.disqualified_reason,
        score: c.score,
        owner_id: c.owner_id,
        tags: c.tags,
        external_id: c.external_id,
        custom: c.custom,
        converted_at: None,
        converted_contact_id: None,
        converted_company_id: None,
        converted_deal_id: None,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// A lead's move from one status to another.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadStatusChange {
    pub id: String,
    pub lead_id: String,
    /// Null for the status the lead was created with.
    pub from_status: Option<String>,
    pub to_status: String,
    pub changed_at: DateTime<Utc>,
    /// The user or API key that changed it.
    pub changed_by: Option<String>,
}

impl From<crm_db::models::LeadStatusChangeRow> for LeadStatusChange {
    fn from(r: crm_db::models::LeadStatusChangeRow) -> Self {
        LeadStatusChange {
            changed_at: utc(r.changed_at),
            id: r.id,
            lead_id: r.lead_id,
            from_status: r.from_status,
            to_status: r.to_status,
            changed_by: r.changed_by,
        }
    }
}
