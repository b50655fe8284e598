//! Contacts on the wire.

use super::common::*;
use chrono::{DateTime, Utc};
use crm_db::models::{ContactChanges, ContactRow};
use crm_domain::records::{LifecycleStage, PreferredChannel};
use crm_domain::values::{normalize_email, normalize_phone};
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// Per-channel consent. `do_not_contact` overrides every channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub sms: bool,
    #[serde(default)]
    pub phone: bool,
    #[serde(default)]
    pub do_not_contact: bool,
}

/// The writable fields of a contact: the body of `POST /contacts`, and the shape a
/// `PATCH` merge-patch (RFC 7396) is applied to. At least one of `first_name`,
/// `last_name` and `email` is required.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0018", "lifecycle_stage": "prospect", "tags": ["vip"], "consent": {"email": true}, "custom": {}}))]
pub struct ContactInput {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub first_name: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub last_name: Option<String>,
    /// Unique per workspace (case-insensitive).
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// Further addresses, at most 10.
    #[serde(default)]
    #[validate(length(max = 10))]
    #[schema(max_items = 10, value_type = Vec<crate::dto::common::items::EmailAddress>)]
    pub additional_emails: Vec<String>,
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    #[serde(default)]
    #[validate(length(max = 10))]
    #[schema(max_items = 10, value_type = Vec<crate::dto::common::items::PhoneNumber>)]
    pub additional_phones: Vec<String>,
    #[validate(length(max = 150))]
    #[schema(max_length = 150)]
    pub job_title: Option<String>,
    /// Defaults to `prospect`; each change is kept in the lifecycle history.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// A user of the workspace.
    #[schema(max_length = 36)]
    pub owner_id: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub source: Option<String>,
    /// At most 50 tags of 1–64 characters.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Tag>, max_items = 50)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[validate(nested)]
    pub address: Address,
    pub preferred_channel: Option<PreferredChannel>,
    #[serde(default)]
    pub consent: Consent,
    /// The integrating system's id; unique per workspace.
    #[validate(length(min = 1, max = 255))]
    #[schema(max_length = 255, min_length = 1)]
    pub external_id: Option<String>,
    /// Values of the contact custom fields defined under `/fields/contacts`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
}

/// A contact.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub additional_emails: Vec<String>,
    pub phone: Option<String>,
    pub additional_phones: Vec<String>,
    pub job_title: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub lifecycle_stage_changed_at: DateTime<Utc>,
    pub owner_id: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub address: Address,
    pub preferred_channel: Option<PreferredChannel>,
    pub consent: Consent,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while the contact is archived.
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

fn address_of(r: &mut ContactRow) -> Address {
    Address {
        line1: r.address_line1.take(),
        line2: r.address_line2.take(),
        city: r.address_city.take(),
        region: r.address_region.take(),
        postal_code: r.address_postal_code.take(),
        country: r.address_country.take(),
    }
}

impl From<ContactRow> for Contact {
    fn from(mut r: ContactRow) -> Self {
        let id = std::mem::take(&mut r.id);
        let (lifecycle_stage_changed_at, created_at, updated_at, archived_at, version) = (
            r.lifecycle_stage_changed_at,
            r.created_at,
            r.updated_at,
            r.archived_at,
            r.version,
        );
        // The writable fields are read exactly as a merge-patch sees them.
        let w = ContactInput::from(r);
        Contact {
            id,
            first_name: w.first_name,
            last_name: w.last_name,
            email: w.email,
            additional_emails: w.additional_emails,
            phone: w.phone,
            additional_phones: w.additional_phones,
            job_title: w.job_title,
            lifecycle_stage: w.lifecycle_stage.unwrap_or(LifecycleStage::Prospect),
            lifecycle_stage_changed_at: utc(lifecycle_stage_changed_at),
            owner_id: w.owner_id,
            source: w.source,
            tags: w.tags,
            address: w.address,
            preferred_channel: w.preferred_channel,
            consent: w.consent,
            external_id: w.external_id,
            custom: w.custom,
            created_at: utc(created_at),
            updated_at: utc(updated_at),
            archived_at: archived_at.map(utc),
            version,
        }
    }
}

impl From<&ContactRow> for ContactInput {
    fn from(r: &ContactRow) -> Self {
        ContactInput::from(r.clone())
    }
}

impl From<ContactRow> for ContactInput {
    fn from(mut r: ContactRow) -> Self {
        ContactInput {
            address: address_of(&mut r),
            additional_emails: parse_list(&r.additional_emails),
            additional_phones: parse_list(&r.additional_phones),
            lifecycle_stage: LifecycleStage::parse(&r.lifecycle_stage),
            tags: parse_list(&r.tags),
            preferred_channel: r
                .preferred_channel
                .as_deref()
                .and_then(PreferredChannel::parse),
            custom: parse_object(&r.custom),
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            phone: r.phone,
            job_title: r.job_title,
            owner_id: r.owner_id,
            source: r.source,
            consent: Consent {
                email: r.consent_email,
                sms: r.consent_sms,
                phone: r.consent_phone,
                do_not_contact: r.do_not_contact,
            },
            external_id: r.external_id,
        }
    }
}

impl ContactInput {
    /// Validates and normalises into the columns to write; `custom` must already be checked.
    pub fn into_changes(
        self,
        custom: Map<String, Value>,
    ) -> Result<ContactChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let email = norm(self.email, "email", normalize_email, &mut errors);
        let phone = norm(self.phone, "phone", normalize_phone, &mut errors);
        let mut list = |items: Vec<String>,
                        field: &str,
                        f: fn(&str) -> Result<String, &'static str>|
         -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                if let Some(v) = norm(Some(v), &format!("{field}[{i}]"), f, &mut errors) {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            out
        };
        let additional_emails = list(self.additional_emails, "additional_emails", normalize_email);
        let additional_phones = list(self.additional_phones, "additional_phones", normalize_phone);
        let tags = tags(&self.tags, &mut errors);
        let [line1, line2, city, region, postal_code, country] =
            address_columns(self.address, &mut errors);
        let first_name = text(self.first_name);
        let last_name = text(self.last_name);
        if first_name.is_none()
            && last_name.is_none()
            && email.is_none()
            && !errors.iter().any(|e| e.field == "email")
        {
            errors.push(FieldError::new(
                "first_name",
                "required",
                "a contact needs at least one of first_name, last_name or email",
            ));
        }
        let owner_id = self.owner_id.filter(|o| !o.is_empty());
        if let Some(o) = &owner_id {
            if uuid::Uuid::parse_str(o).is_err() {
                errors.push(FieldError::new(
                    "owner_id",
                    "invalid_value",
                    "must be the id of a user in this workspace",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ContactChanges {
            first_name,
            last_name,
            email,
            additional_emails: json_list(&additional_emails),
            phone,
            additional_phones: json_list(&additional_phones),
            job_title: text(self.job_title),
            lifecycle_stage: self
                .lifecycle_stage
                .unwrap_or(LifecycleStage::Prospect)
                .as_str()
                .to_string(),
            owner_id,
            source: text(self.source),
            tags: json_list(&tags),
            address_line1: line1,
            address_line2: line2,
            address_city: city,
            address_region: region,
            address_postal_code: postal_code,
            address_country: country,
            preferred_channel: self.preferred_channel.map(|c| c.as_str().to_string()),
            consent_email: self.consent.email,
            consent_sms: self.consent.sms,
            consent_phone: self.consent.phone,
            do_not_contact: self.consent.do_not_contact,
            external_id: text(self.external_id),
            custom: Value::Object(custom).to_string(),
        })
    }
}

/// A new contact row from validated columns.
pub fn new_row(ws: &str, c: ContactChanges) -> ContactRow {
    let now = crm_domain::values_time::now();
    ContactRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        additional_emails: c.additional_emails,
        phone: c.phone,
        additional_phones: c.additional_phones,
        job_title: c.job_title,
        lifecycle_stage: c.lifecycle_stage,
        lifecycle_stage_changed_at: now,
        owner_id: c.owner_id,
        source: c.source,
        tags: c.tags,
        address_line1: c.address_line1,
        address_line2: c.address_line2,
        address_city: c.address_city,
        address_region: c.address_region,
        address_postal_code: c.address_postal_code,
        address_country: c.address_country,
        preferred_channel: c.preferred_channel,
        consent_email: c.consent_email,
        consent_sms: c.consent_sms,
        consent_phone: c.consent_phone,
        do_not_contact: c.do_not_contact,
        external_id: c.external_id,
        custom: c.custom,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// One change of a contact's lifecycle stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleChange {
    pub id: String,
    pub from_stage: Option<LifecycleStage>,
    pub to_stage: LifecycleStage,
    pub changed_at: DateTime<Utc>,
    /// The user or API key that made the change.
    pub changed_by: Option<String>,
}

impl From<crm_db::models::LifecycleChangeRow> for LifecycleChange {
    fn from(r: crm_db::models::LifecycleChangeRow) -> Self {
        LifecycleChange {
            id: r.id,
            from_stage: r.from_stage.as_deref().and_then(LifecycleStage::parse),
            to_stage: LifecycleStage::parse(&r.to_stage).unwrap_or(LifecycleStage::Prospect),
            changed_at: utc(r.changed_at),
            changed_by: r.changed_by,
        }
    }
}
