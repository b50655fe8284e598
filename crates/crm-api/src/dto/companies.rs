//! Companies on the wire.

use super::common::*;
use chrono::{DateTime, Utc};
use crm_db::models::{CompanyChanges, CompanyRow};
use crm_domain::records::CompanySize;
use crm_domain::values::{normalize_currency, normalize_decimal, normalize_domain};
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

/// The writable fields of a company: the body of `POST /companies`, and the shape a
/// `PATCH` merge-patch is applied to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme GmbH", "domain": "acme.example", "industry": "Manufacturing", "size": "51-200", "annual_revenue": "12500000.00", "currency": "EUR", "tags": ["key-account"]}))]
pub struct CompanyInput {
    #[validate(length(min = 1, max = 200))]
    #[schema(max_length = 200, min_length = 1)]
    pub name: Option<String>,
    /// A host name; `https://www.acme.example/x` is stored as `acme.example`.
    #[schema(max_length = 253)]
    pub domain: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub industry: Option<String>,
    pub size: Option<CompanySize>,
    /// An exact decimal string; requires `currency`.
    #[schema(example = "12500000.00", max_length = 40)]
    pub annual_revenue: Option<String>,
    /// ISO 4217 code of `annual_revenue`.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
    #[validate(length(max = 50))]
    #[schema(max_length = 50)]
    pub tier: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub region: Option<String>,
    #[serde(default)]
    #[validate(nested)]
    pub address: Address,
    #[schema(max_length = 36)]
    pub owner_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::Tag>, max_items = 50)]
    pub tags: Vec<String>,
    #[validate(length(min = 1, max = 255))]
    #[schema(max_length = 255, min_length = 1)]
    pub external_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
}

/// A company (account).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size: Option<CompanySize>,
    pub annual_revenue: Option<String>,
    pub currency: Option<String>,
    pub tier: Option<String>,
    pub region: Option<String>,
    pub address: Address,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

fn address_of(r: &CompanyRow) -> Address {
    Address {
        line1: r.address_line1.clone(),
        line2: r.address_line2.clone(),
        city: r.address_city.clone(),
        region: r.address_region.clone(),
        postal_code: r.address_postal_code.clone(),
        country: r.address_country.clone(),
    }
}

impl From<CompanyRow> for Company {
    fn from(r: CompanyRow) -> Self {
        Company {
            address: address_of(&r),
            size: r.size.as_deref().and_then(CompanySize::parse),
            tags: parse_list(&r.tags),
            custom: parse_object(&r.custom),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            name: r.name,
            domain: r.domain,
            industry: r.industry,
            annual_revenue: r.annual_revenue,
            currency: r.currency,
            tier: r.tier,
            region: r.region,
            owner_id: r.owner_id,
            external_id: r.external_id,
            version: r.version,
        }
    }
}

impl From<&CompanyRow> for CompanyInput {
    fn from(r: &CompanyRow) -> Self {
        CompanyInput {
            name: Some(r.name.clone()),
            domain: r.domain.clone(),
            industry: r.industry.clone(),
            size: r.size.as_deref().and_then(CompanySize::parse),
            annual_revenue: r.annual_revenue.clone(),
            currency: r.currency.clone(),
            tier: r.tier.clone(),
            region: r.region.clone(),
            address: address_of(r),
            owner_id: r.owner_id.clone(),
            tags: parse_list(&r.tags),
            external_id: r.external_id.clone(),
            custom: parse_object(&r.custom),
        }
    }
}

impl CompanyInput {
    pub fn into_changes(
        self,
        custom: Map<String, Value>,
    ) -> Result<CompanyChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let name = text(self.name);
        if name.is_none() && !errors.iter().any(|e| e.field == "name") {
            errors.push(FieldError::new(
                "name",
                "required",
                "a company needs a name",
            ));
        }
        let domain = norm(self.domain, "domain", normalize_domain, &mut errors);
        let annual_revenue = norm(
            self.annual_revenue,
            "annual_revenue",
            normalize_decimal,
            &mut errors,
        );
        let currency = norm(self.currency, "currency", normalize_currency, &mut errors);
        if annual_revenue.is_some()
            && currency.is_none()
            && !errors.iter().any(|e| e.field == "currency")
        {
            errors.push(FieldError::new(
                "currency",
                "required",
                "annual_revenue needs its currency",
            ));
        }
        let tags = tags(&self.tags, &mut errors);
        let [line1, line2, city, region, postal_code, country] =
            address_columns(self.address, &mut errors);
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
        Ok(CompanyChanges {
            name: name.unwrap_or_default(),
            domain,
            industry: text(self.industry),
            size: self.size.map(|s| s.as_str().to_string()),
            annual_revenue,
            currency,
            tier: text(self.tier),
            region: text(self.region),
            address_line1: line1,
            address_line2: line2,
            address_city: city,
            address_region: region,
            address_postal_code: postal_code,
            address_country: country,
            owner_id,
            tags: json_list(&tags),
            external_id: text(self.external_id),
            custom: Value::Object(custom).to_string(),
        })
    }
}

pub fn new_row(ws: &str, c: CompanyChanges) -> CompanyRow {
    let now = crm_domain::values_time::now();
    CompanyRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        name: c.name,
        domain: c.domain,
        industry: c.industry,
        size: c.size,
        annual_revenue: c.annual_revenue,
        currency: c.currency,
        tier: c.tier,
        region: c.region,
        address_line1: c.address_line1,
        address_line2: c.address_line2,
        address_city: c.address_city,
        address_region: c.address_region,
        address_postal_code: c.address_postal_code,
        address_country: c.address_country,
        owner_id: c.owner_id,
        tags: c.tags,
        external_id: c.external_id,
        custom: c.custom,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}
