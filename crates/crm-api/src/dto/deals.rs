//! Deals on the wire.

use super::common::*;
use chrono::{DateTime, NaiveDate, Utc};
use crm_db::models::DealRow;
use crm_domain::values::normalize_currency;
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// The writable fields of a deal: the body of `POST /deals`, and the shape a `PATCH`
/// merge-patch is applied to.
///
/// Without `pipeline_id` and `stage_id` a deal starts in the first open stage of the
/// default pipeline; with only `pipeline_id`, in that pipeline's first open stage; with
/// only `stage_id`, in that stage's pipeline. `stage_id` must belong to `pipeline_id`, and
/// a patch that changes `pipeline_id` names the new stage too (or sets `stage_id` to null
/// for the new pipeline's first open stage). A deal moves into a `lost` stage only with a
/// `lost_reason`. Moving into a `won` or `lost` stage sets `closed_at`; back to an `open`
/// stage clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme renewal 2027", "amount": "125000.00", "currency": "EUR", "expected_close_date": "2027-03-31", "company_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}))]
pub struct DealInput {
    #[validate(length(min = 1, max = 200))]
    #[schema(max_length = 200, min_length = 1)]
    pub name: Option<String>,
    /// An exact decimal string, at least 0, below 10^12, at most 6 decimal places;
    /// requires `currency`.
    #[schema(example = "125000.00", max_length = 40)]
    pub amount: Option<String>,
    /// ISO 4217 code of `amount`.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
    #[schema(max_length = 36)]
    pub pipeline_id: Option<String>,
    #[schema(max_length = 36)]
    pub stage_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(example = "2027-03-31", max_length = 10)]
    pub expected_close_date: Option<String>,
    #[schema(max_length = 36)]
    pub owner_id: Option<String>,
    #[schema(max_length = 36)]
    pub company_id: Option<String>,
    /// Why the deal was lost; required to move it into a `lost` stage.
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub lost_reason: Option<String>,
    #[validate(length(min = 1, max = 255))]
    #[schema(max_length = 255, min_length = 1)]
    pub external_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    /// The deal's contacts, each with its role, at most one of them primary. On create, the
    /// deal's first contacts; on update, when given, the deal's whole new set of contacts
    /// (a contact left out is taken off the deal; absent or `null`: unchanged). Each must
    /// be a live contact of the workspace, named once. Setting them records
    /// `deal.links_changed` after the deal's own event; read them with
    /// `GET /deals/{id}/contacts`.
    #[validate(length(max = 100), nested)]
    #[schema(max_items = 100)]
    pub contacts: Option<Vec<DealContactInput>>,
}

/// One contact of a deal, as `contacts` on a deal's create or update names it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"contact_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e02", "role": "Decision maker", "is_primary": true}))]
pub struct DealContactInput {
    #[schema(max_length = 36)]
    pub contact_id: String,
    /// The contact's role in the deal, e.g. `Decision maker`.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub role: Option<String>,
    /// The deal's main contact; at most one per deal.
    #[serde(default)]
    pub is_primary: bool,
}

/// A deal (opportunity).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deal {
    pub id: String,
    pub name: String,
    #[schema(example = "125000.00")]
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub pipeline_id: String,
    pub stage_id: String,
    /// When the deal entered its current stage.
    pub stage_changed_at: DateTime<Utc>,
    pub expected_close_date: Option<String>,
    pub owner_id: Option<String>,
    pub company_id: Option<String>,
    pub lost_reason: Option<String>,
    /// Set when the deal moved into a `won` or `lost` stage.
    pub closed_at: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<DealRow> for Deal {
    fn from(r: DealRow) -> Self {
        Deal {
            custom: parse_object(&r.custom),
            stage_changed_at: utc(r.stage_changed_at),
            closed_at: r.closed_at.map(utc),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            name: r.name,
            amount: r.amount,
            currency: r.currency,
            pipeline_id: r.pipeline_id,
            stage_id: r.stage_id,
            expected_close_date: r.expected_close_date,
            owner_id: r.owner_id,
            company_id: r.company_id,
            lost_reason: r.lost_reason,
            external_id: r.external_id,
            version: r.version,
        }
    }
}

impl From<&DealRow> for DealInput {
    fn from(r: &DealRow) -> Self {
        DealInput {
            name: Some(r.name.clone()),
            amount: r.amount.clone(),
            currency: r.currency.clone(),
            pipeline_id: Some(r.pipeline_id.clone()),
            stage_id: Some(r.stage_id.clone()),
            expected_close_date: r.expected_close_date.clone(),
            owner_id: r.owner_id.clone(),
            company_id: r.company_id.clone(),
            lost_reason: r.lost_reason.clone(),
            external_id: r.external_id.clone(),
            custom: parse_object(&r.custom),
            contacts: None,
        }
    }
}

/// A deal's fields after the checks that need no database.
pub struct CheckedDeal {
    pub name: String,
    pub amount: Option<(String, i64)>,
    pub currency: Option<String>,
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    pub expected_close_date: Option<String>,
    pub owner_id: Option<String>,
    pub company_id: Option<String>,
    pub lost_reason: Option<String>,
    pub external_id: Option<String>,
}

fn id_field(v: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = text(v)?;
    if uuid::Uuid::parse_str(&v).is_err() {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            "must be the id of a record of this workspace",
        ));
    }
    Some(v)
}

impl DealInput {
    pub fn check(self) -> Result<CheckedDeal, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let name = text(self.name);
        if name.is_none() && !errors.iter().any(|e| e.field == "name") {
            errors.push(FieldError::new("name", "required", "a deal needs a name"));
        }
        let amount = text(self.amount).and_then(|a| {
            crm_domain::deals::parse_amount(&a)
                .map_err(|m| errors.push(FieldError::new("amount", "invalid_value", m)))
                .ok()
        });
        let currency = norm(self.currency, "currency", normalize_currency, &mut errors);
        if amount.is_some() && currency.is_none() && !errors.iter().any(|e| e.field == "currency") {
            errors.push(FieldError::new(
                "currency",
                "required",
                "amount needs its currency",
            ));
        }
        let expected_close_date = text(self.expected_close_date).and_then(|d| {
            NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| {
                    errors.push(FieldError::new(
                        "expected_close_date",
                        "invalid_date",
                        "must be a date like 2027-03-31",
                    ))
                })
                .ok()
        });
        let checked = CheckedDeal {
            name: name.unwrap_or_default(),
            amount,
            currency,
            pipeline_id: id_field(self.pipeline_id, "pipeline_id", &mut errors),
            stage_id: id_field(self.stage_id, "stage_id", &mut errors),
            expected_close_date,
            owner_id: id_field(self.owner_id, "owner_id", &mut errors),
            company_id: id_field(self.company_id, "company_id", &mut errors),
            lost_reason: text(self.lost_reason),
            external_id: text(self.external_id),
        };
        if errors.is_empty() {
            Ok(checked)
        } else {
            Err(errors)
        }
    }
}
