//! Sales quotas and the forecast on the wire.

use super::common::*;
use chrono::{DateTime, NaiveDate, Utc};
use crm_db::models::{QuotaChanges, QuotaRow};
use crm_domain::deals::parse_amount;
use crm_domain::forecast::PeriodKind;
use crm_domain::values::normalize_currency;
use crm_domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// The writable fields of a quota: the body of `POST /quotas`, and the shape a `PATCH`
/// merge-patch is applied to. Exactly one of `user_id` and `team_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "0193a5b0-7c1e-7cc0-9a0e-3f4f2a1b2c3d", "period": "quarter", "period_start": "2027-01-01", "amount": "120000.00", "currency": "EUR"}))]
pub struct QuotaInput {
    /// The user whose quota this is (or `team_id`).
    #[validate(length(max = 36))]
    #[schema(max_length = 36)]
    pub user_id: Option<String>,
    /// The team whose quota this is (or `user_id`).
    #[validate(length(max = 36))]
    #[schema(max_length = 36)]
    pub team_id: Option<String>,
    /// `month` or `quarter`.
    #[schema(value_type = Option<PeriodKind>)]
    pub period: Option<String>,
    /// The first day of the month, or of the quarter (January, April, July, October 1st).
    #[schema(example = "2027-01-01", max_length = 10)]
    pub period_start: Option<String>,
    /// An exact, non-negative decimal string in `currency` (at most 6 decimals).
    #[schema(example = "120000.00", max_length = 40)]
    pub amount: Option<String>,
    /// ISO 4217 code of `amount`.
    #[schema(example = "EUR", max_length = 3, min_length = 3)]
    pub currency: Option<String>,
}

/// What a user or a team should close in a month or a quarter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quota {
    pub id: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub period: PeriodKind,
    #[schema(example = "2027-01-01")]
    pub period_start: String,
    /// The last day of the period.
    #[schema(example = "2027-03-31")]
    pub period_end: String,
    #[schema(example = "120000")]
    pub amount: String,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i32,
}

fn period_of(r: &QuotaRow) -> PeriodKind {
    PeriodKind::parse(&r.period).unwrap_or(PeriodKind::Month)
}

impl From<QuotaRow> for Quota {
    fn from(r: QuotaRow) -> Self {
        let period = period_of(&r);
        let period_end = NaiveDate::parse_from_str(&r.period_start, "%Y-%m-%d")
            .map(|d| period.end_of(d).format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        Quota {
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            archived_at: r.archived_at.map(utc),
            id: r.id,
            user_id: r.user_id,
            team_id: r.team_id,
            period,
            period_start: r.period_start,
            period_end,
            amount: r.amount,
            currency: r.currency,
            version: r.version,
        }
    }
}

impl From<&QuotaRow> for QuotaInput {
    fn from(r: &QuotaRow) -> Self {
        QuotaInput {
            user_id: r.user_id.clone(),
            team_id: r.team_id.clone(),
            period: Some(r.period.clone()),
            period_start: Some(r.period_start.clone()),
            amount: Some(r.amount.clone()),
            currency: Some(r.currency.clone()),
        }
    }
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, "required", format!("`{field}` is required"))
}

impl QuotaInput {
    pub fn into_changes(self) -> Result<QuotaChanges, Vec<FieldError>> {
        let mut errors = validate_input(&self);
        let user_id = text(self.user_id);
        let team_id = text(self.team_id);
        match (&user_id, &team_id) {
            (Some(_), Some(_)) => errors.push(FieldError::new(
                "team_id",
                "conflicting_fields",
                "a quota is a user's or a team's: give `user_id` or `team_id`, not both",
            )),
            (None, None) => errors.push(FieldError::new(
                "user_id",
                "required",
                "give the `user_id` or the `team_id` the quota is for",
            )),
            _ => {}
        }
        let period = match text(self.period) {
            Some(p) => match PeriodKind::parse(&p) {
                Some(k) => Some(k),
                None => {
                    errors.push(FieldError::new(
                        "period",
                        "invalid_value",
                        "must be `month` or `quarter`",
                    ));
                    None
                }
            },
            None => {
                errors.push(required("period"));
                None
            }
        };
        let start = match text(self.period_start) {
            Some(s) => match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                Ok(d) if s.len() == 10 => Some(d),
                _ => {
                    errors.push(FieldError::new(
                        "period_start",
                        "invalid_date",
                        "must be a date like 2027-01-01",
                    ));
                    None
                }
            },
            None => {
                errors.push(required("period_start"));
                None
            }
        };
        if let (Some(k), Some(d)) = (period, start) {
            if !k.is_start(d) {
                errors.push(FieldError::new(
                    "period_start",
                    "not_period_start",
                    format!(
                        "must be the first day of a {}: {}",
                        k.as_str(),
                        k.start_of(d).format("%Y-%m-%d")
                    ),
                ));
            }
        }
        let amount = match self.amount {
            Some(a) => match parse_amount(&a) {
                Ok((canonical, _)) => Some(canonical),
                Err(m) => {
                    errors.push(FieldError::new("amount", "invalid_value", m));
                    None
                }
            },
            None => {
                errors.push(required("amount"));
                None
            }
        };
        let currency = norm(self.currency, "currency", normalize_currency, &mut errors);
        if currency.is_none() && !errors.iter().any(|e| e.field == "currency") {
            errors.push(required("currency"));
        }
        match (period, start, amount, currency) {
            (Some(period), Some(start), Some(amount), Some(currency)) if errors.is_empty() => {
                Ok(QuotaChanges {
                    user_id,
                    team_id,
                    period: period.as_str().to_string(),
                    period_start: start.format("%Y-%m-%d").to_string(),
                    amount,
                    currency,
                })
            }
            _ => Err(errors),
        }
    }
}

pub fn new_quota(ws: &str, c: QuotaChanges) -> QuotaRow {
    let now = crm_domain::values_time::now();
    QuotaRow {
        workspace_id: ws.to_string(),
        id: crm_domain::new_id().to_string(),
        user_id: c.user_id,
        team_id: c.team_id,
        period: c.period,
        period_start: c.period_start,
        amount: c.amount,
        currency: c.currency,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    }
}

/// The figures of a forecast period, for all its deals or for one group. Amounts are
/// decimal strings in the forecast's currency, at its minor unit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastFigures {
    /// Σ amounts of the deals won in the period (by `closed_at`).
    #[schema(example = "25000.00")]
    pub closed_won: String,
    /// Σ amount × probability / 100 of the open deals expected to close in the period
    /// (by `expected_close_date`), rounded once to the minor unit.
    #[schema(example = "12500.00")]
    pub weighted_open: String,
    /// `closed_won` + Σ amounts of the open deals.
    #[schema(example = "60000.00")]
    pub best_case: String,
    /// `closed_won` + Σ amounts of the open deals in stages of probability 75 or more.
    #[schema(example = "40000.00")]
    pub commit: String,
    pub won_count: i64,
    /// Deals lost in the period (by `closed_at`); their amounts count nowhere.
    pub lost_count: i64,
    pub open_count: i64,
    /// The quota for the period, when one is set (see the operation for whose).
    #[schema(example = "40000")]
    pub quota: Option<String>,
    /// `closed_won` as a percentage of `quota`, a decimal string with two decimals
    /// (`"62.50"` means 62.5 %); null without a quota or when it is zero.
    #[schema(example = "62.50")]
    pub attainment: Option<String>,
}

/// One group of a forecast period: an owner's or a pipeline's deals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastGroupFigures {
    /// With `group_by=owner`: the owner (null: deals without an owner).
    pub owner_id: Option<String>,
    /// With `group_by=pipeline`: the pipeline.
    pub pipeline_id: Option<String>,
    #[serde(flatten)]
    pub figures: ForecastFigures,
}

/// One month or quarter of a forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastPeriod {
    #[schema(example = "2027-01-01")]
    pub start: String,
    #[schema(example = "2027-03-31")]
    pub end: String,
    /// Every deal the forecast counts in this period.
    pub totals: ForecastFigures,
    /// Per owner or pipeline (empty without `group_by`), by id.
    pub groups: Vec<ForecastGroupFigures>,
}

/// A sales forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    pub period: PeriodKind,
    #[schema(example = "2027-01-01")]
    pub from: String,
    #[schema(example = "2027-06-30")]
    pub to: String,
    pub currency: String,
    /// `owner`, `pipeline`, or null.
    pub group_by: Option<String>,
    pub periods: Vec<ForecastPeriod>,
}
