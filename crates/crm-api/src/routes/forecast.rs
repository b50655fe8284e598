//! `GET /api/v1/forecast`: closed-won, weighted and best-case pipeline per month or
//! quarter, per owner or pipeline, against quotas.

use crate::auth::{Auth, Principal};
use crate::dto::quotas::{Forecast, ForecastFigures, ForecastGroupFigures, ForecastPeriod};
use crate::error::{ApiError, ApiResult, ReadErrors};
use crate::extract::QueryPairs;
use crate::state::AppState;
use actix_web::{get, web};
use chrono::{Days, NaiveDate};
use crm_db::models::QuotaRow;
use crm_db::repo::quotas::{
    forecast, quotas_in, ForecastCell, ForecastFilter, ForecastGroup, QuotaHolder,
};
use crm_db::{DbConnection, RepoError};
use crm_domain::deals::{from_scaled, StageKind};
use crm_domain::forecast::{
    attainment_percent, months_spanned, PeriodKind, Tally, MAX_FORECAST_MONTHS,
};
use crm_domain::{Permission, WorkspaceId};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The query of a forecast, checked.
struct Params {
    period: PeriodKind,
    from: NaiveDate,
    to: NaiveDate,
    currency: String,
    group: Option<ForecastGroup>,
    pipeline_id: Option<String>,
    owner_id: Option<String>,
    team_id: Option<String>,
}

fn date_param(name: &str, v: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .filter(|_| v.len() == 10)
        .ok_or_else(|| ApiError::field(name, "invalid_date", "must be a date like 2027-03-31"))
}

fn id_param(name: &str, v: String) -> ApiResult<String> {
    if v.is_empty() || v.chars().count() > 36 {
        return Err(ApiError::field(
            name,
            "invalid_value",
            "must be an id of 1 to 36 characters",
        ));
    }
    Ok(v)
}

fn required<T>(v: Option<T>, name: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::field(name, "required", format!("`{name}` is required")))
}

impl Params {
    fn parse(q: QueryPairs) -> ApiResult<Params> {
        let (mut period, mut from, mut to, mut currency, mut group) =
            (None, None, None, None, None);
        let (mut pipeline_id, mut owner_id, mut team_id) = (None, None, None);
        for (k, v) in q.0 {
            match k.as_str() {
                "period" => {
                    period = Some(PeriodKind::parse(&v).ok_or_else(|| {
                        ApiError::field("period", "invalid_value", "must be `month` or `quarter`")
                    })?)
                }
                "from" => from = Some(date_param("from", &v)?),
                "to" => to = Some(date_param("to", &v)?),
                "currency" => {
                    currency = Some(
                        crm_domain::values::normalize_currency(&v)
                            .map_err(|m| ApiError::field("currency", "invalid_value", m))?,
                    )
                }
                "group_by" => {
                    group = Some(match v.as_str() {
                        "owner" => ForecastGroup::Owner,
                        "pipeline" => ForecastGroup::Pipeline,
                        _ => {
                            return Err(ApiError::field(
                                "group_by",
                                "invalid_value",
                                "must be `owner` or `pipeline`",
                            ))
                        }
                    })
                }
                "pipeline_id" => pipeline_id = Some(id_param("pipeline_id", v)?),
                "owner_id" => owner_id = Some(id_param("owner_id", v)?),
                "team_id" => team_id = Some(id_param("team_id", v)?),
                _ => {
                    return Err(ApiError::field(
                        &k,
                        "unknown_parameter",
                        format!("unknown parameter `{k}`"),
                    ))
                }
            }
        }
        let (period, from, to) = (
            required(period, "period")?,
            required(from, "from")?,
            required(to, "to")?,
        );
        let currency = required(currency, "currency")?;
        if from > to {
            return Err(ApiError::field(
                "to",
                "before_from",
                "must not be before `from`",
            ));
        }
        if months_spanned(from, to) > i64::from(MAX_FORECAST_MONTHS) {
            return Err(ApiError::field(
                "to",
                "range_too_long",
                format!("`from` to `to` may span at most {MAX_FORECAST_MONTHS} calendar months"),
            ));
        }
        Ok(Params {
            period,
            from,
            to,
            currency,
            group,
            pipeline_id,
            owner_id,
            team_id,
        })
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A query parameter naming a record that does not exist: 422 naming it.
fn check_exists(name: &str, found: Result<impl Sized, RepoError>) -> ApiResult<()> {
    match found {
        Ok(_) => Ok(()),
        Err(RepoError::NotFound) => Err(ApiError::field(
            name,
            "not_found",
            format!("no record with this `{name}` in the workspace"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Everything the forecast reads, in one transaction-free pass: the deal aggregate, the
/// quotas it compares against and, with `team_id`, the team's members.
struct Read {
    cells: Vec<ForecastCell>,
    user_quotas: Vec<crm_db::models::QuotaRow>,
    team_quotas: Vec<crm_db::models::QuotaRow>,
    members: Option<Vec<String>>,
}

fn read(c: &mut DbConnection, ws: WorkspaceId, p: &Params, quotas: bool) -> ApiResult<Read> {
    if let Some(id) = &p.pipeline_id {
        check_exists("pipeline_id", crm_db::repo::pipelines::get(c, ws, id))?;
    }
    let members = match &p.team_id {
        Some(team) => {
            check_exists("team_id", crm_db::repo::teams::get(c, ws, team))?;
            let ids = crm_db::repo::teams::member_ids(c, ws, std::slice::from_ref(team))?;
            Some(ids.into_iter().map(|(_, u)| u).collect())
        }
        None => None,
    };
    let filter = ForecastFilter {
        currency: p.currency.clone(),
        from: day(p.from),
        to: day(p.to),
        closed_from: p.from.and_time(chrono::NaiveTime::MIN),
        closed_before: p
            .to
            .checked_add_days(Days::new(1))
            .unwrap_or(p.to)
            .and_time(chrono::NaiveTime::MIN),
        group: p.group.unwrap_or(ForecastGroup::Owner),
        pipeline_id: p.pipeline_id.clone(),
        owner_id: p.owner_id.clone(),
        team_id: p.team_id.clone(),
    };
    let cells = forecast(c, ws, &filter)?;
    let (first, last) = (p.period.start_of(p.from), p.period.start_of(p.to));
    let (mut user_quotas, mut team_quotas) = (Vec::new(), Vec::new());
    if quotas {
        // A quarter also reads the monthly quotas of its months, which add up to its quota
        // where it has none of its own (see `build`).
        let mut kinds = vec![(PeriodKind::Month, first, p.period.end_of(last))];
        if p.period == PeriodKind::Quarter {
            kinds.push((PeriodKind::Quarter, first, last));
        }
        for (kind, a, b) in kinds {
            let (kind, a, b) = (kind.as_str(), day(a), day(b));
            if p.group == Some(ForecastGroup::Owner) || p.owner_id.is_some() {
                let holder = QuotaHolder::Users;
                user_quotas.extend(quotas_in(c, ws, kind, &p.currency, &a, &b, &holder)?);
            }
            if let Some(team) = &p.team_id {
                let holder = QuotaHolder::Team(team.clone());
                team_quotas.extend(quotas_in(c, ws, kind, &p.currency, &a, &b, &holder)?);
            }
        }
    }
    Ok(Read {
        cells,
        user_quotas,
        team_quotas,
        members,
    })
}

fn figures(t: &Tally, quota: Option<Decimal>, currency: &str) -> ForecastFigures {
    let closed_won = t.closed_won(currency);
    ForecastFigures {
        closed_won: closed_won.to_string(),
        weighted_open: t.weighted_open(currency).to_string(),
        best_case: t.best_case(currency).to_string(),
        commit: t.commit(currency).to_string(),
        won_count: t.won_count,
        lost_count: t.lost_count,
        open_count: t.open_count,
        quota: quota.map(|q| q.normalize().to_string()),
        attainment: quota
            .and_then(|q| attainment_percent(closed_won, q))
            .map(|a| a.to_string()),
    }
}

fn amount(raw: &str) -> ApiResult<Decimal> {
    Decimal::from_str(raw).map_err(ApiError::internal)
}

/// The sums per period start and group key.
type Tallies = BTreeMap<NaiveDate, BTreeMap<Option<String>, Tally>>;

fn tally(cells: &[ForecastCell], period: PeriodKind) -> ApiResult<Tallies> {
    let mut out = Tallies::new();
    for cell in cells {
        let month = NaiveDate::parse_from_str(&format!("{}-01", cell.month), "%Y-%m-%d")
            .map_err(ApiError::internal)?;
        let kind = StageKind::parse(&cell.kind).unwrap_or(StageKind::Open);
        let total = match &cell.total_micros {
            Some(t) => from_scaled(t).ok_or_else(|| ApiError::internal("bad sum"))?,
            None => Decimal::ZERO,
        };
        out.entry(period.start_of(month))
            .or_default()
            .entry(cell.group_key.clone())
            .or_default()
            .add(kind, cell.probability, cell.deal_count, total);
    }
    Ok(out)
}

/// (period start, holder) → quota, for periods of `period`: a period's own quota, or else
/// the sum of the monthly quotas of the months it holds (for quarters).
fn quotas_by_period<'a>(
    period: PeriodKind,
    rows: impl Iterator<Item = &'a QuotaRow>,
    holder: impl Fn(&QuotaRow) -> String,
) -> ApiResult<BTreeMap<(String, String), Decimal>> {
    let (mut own, mut rolled) = (BTreeMap::new(), BTreeMap::<_, Decimal>::new());
    for q in rows {
        let start =
            NaiveDate::parse_from_str(&q.period_start, "%Y-%m-%d").map_err(ApiError::internal)?;
        let key = (day(period.start_of(start)), holder(q));
        if q.period == period.as_str() {
            own.insert(key, amount(&q.amount)?);
        } else {
            *rolled.entry(key).or_default() += amount(&q.amount)?;
        }
    }
    rolled.extend(own);
    Ok(rolled)
}

fn build(p: &Params, r: Read) -> ApiResult<Forecast> {
    let cur = p.currency.as_str();
    let mut tallies = tally(&r.cells, p.period)?;
    // (period start, user) → quota; users outside the owner or team filter are left out.
    let wanted = |q: &QuotaRow| {
        q.user_id.as_ref().is_some_and(|user| {
            p.owner_id.as_ref().is_none_or(|o| o == user)
                && r.members.as_ref().is_none_or(|m| m.contains(user))
        })
    };
    let user_quota = quotas_by_period(p.period, r.user_quotas.iter().filter(|q| wanted(q)), |q| {
        q.user_id.clone().unwrap_or_default()
    })?;
    let team_quota: BTreeMap<String, Decimal> =
        quotas_by_period(p.period, r.team_quotas.iter(), |_| String::new())?
            .into_iter()
            .map(|((start, _), q)| (start, q))
            .collect();
    let mut periods = Vec::new();
    for start in p.period.starts(p.from, p.to) {
        let key = day(start);
        let mut groups = tallies.remove(&start).unwrap_or_default();
        let mut totals = Tally::default();
        for t in groups.values() {
            totals.merge(t);
        }
        let totals_quota = if p.team_id.is_some() {
            team_quota.get(&key).copied()
        } else if let Some(owner) = &p.owner_id {
            user_quota.get(&(key.clone(), owner.clone())).copied()
        } else {
            None
        };
        let mut rows = Vec::new();
        if let Some(group) = p.group {
            if group == ForecastGroup::Owner {
                // Owners with a quota and no deals still show, at zero attainment.
                for (s, user) in user_quota.keys() {
                    if *s == key {
                        groups.entry(Some(user.clone())).or_default();
                    }
                }
            }
            for (k, t) in &groups {
                let (owner_id, pipeline_id, quota) = match group {
                    ForecastGroup::Owner => {
                        let quota = k
                            .as_ref()
                            .and_then(|u| user_quota.get(&(key.clone(), u.clone())).copied());
                        (k.clone(), None, quota)
                    }
                    ForecastGroup::Pipeline => (None, k.clone(), None),
                };
                rows.push(ForecastGroupFigures {
                    owner_id,
                    pipeline_id,
                    figures: figures(t, quota, cur),
                });
            }
        }
        periods.push(ForecastPeriod {
            start: key,
            end: day(p.period.end_of(start)),
            totals: figures(&totals, totals_quota, cur),
            groups: rows,
        });
    }
    Ok(Forecast {
        period: p.period,
        from: day(p.from),
        to: day(p.to),
        currency: p.currency.clone(),
        group_by: p.group.map(|g| match g {
            ForecastGroup::Owner => "owner".to_string(),
            ForecastGroup::Pipeline => "pipeline".to_string(),
        }),
        periods,
    })
}

/// The sales forecast of a date range, per month or quarter.
///
/// Deals count in the period of their `expected_close_date` while open, and of their
/// `closed_at` date (UTC) once won or lost; open deals without an expected close date and
/// archived deals are left out. Only deals in `currency` count: amounts in other
/// currencies are never converted or added. All sums are exact; each figure is rounded
/// once, to the currency's minor unit.
///
/// Per period: `closed_won`, `weighted_open` (Σ amount × stage probability / 100),
/// `best_case` (closed-won + every open amount), `commit` (closed-won + open amounts in
/// stages of probability ≥ 75) and deal counts, in `totals` and, with `group_by`, per
/// owner or pipeline in `groups`. `from` and `to` are inclusive and may span at most 24
/// calendar months; the periods listed are those that overlap them.
///
/// Quotas (`/quotas`) of the same period kind and currency are matched by period start; a
/// quarter without a quarterly quota of its own takes the sum of its months' monthly
/// quotas, when there are any. With `group_by=owner` each owner's row carries its user
/// quota (owners with a quota but no deals are listed too); `totals` carries the team's
/// quota with `team_id`, or the user's with `owner_id`. `attainment` is closed-won as a percentage of the quota, a
/// decimal string with two decimals (`"62.50"`). Quotas need `quotas:read`; without it
/// they are null.
#[utoipa::path(get, path = "/api/v1/forecast", tag = "forecast", operation_id = "get_forecast",
    params(
        ("period" = PeriodKind, Query, description = "`month` or `quarter`"),
        ("from" = String, Query, max_length = 10, description = "First day counted, YYYY-MM-DD"),
        ("to" = String, Query, max_length = 10, description = "Last day counted, YYYY-MM-DD; at most 24 calendar months after `from`"),
        ("currency" = String, Query, max_length = 3, min_length = 3, description = "ISO 4217; only deals in it count"),
        ("group_by" = Option<String>, Query, description = "`owner` or `pipeline`"),
        ("pipeline_id" = Option<String>, Query, max_length = 36, description = "Only this pipeline's deals"),
        ("owner_id" = Option<String>, Query, max_length = 36, description = "Only this user's deals"),
        ("team_id" = Option<String>, Query, max_length = 36, description = "Only deals owned by this team's members"),
    ),
    responses((status = 200, description = "The forecast", body = Forecast), ReadErrors), security(("bearer" = [])))]
#[get("/forecast")]
pub async fn get_forecast(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: QueryPairs,
) -> ApiResult<web::Json<Forecast>> {
    p.require(Permission::DealsRead)?;
    let params = Params::parse(q)?;
    let with_quotas = Principal::can(&p, Permission::QuotasRead);
    let ws = p.workspace;
    let forecast = state
        .db(move |c| {
            let r = read(c, ws, &params, with_quotas)?;
            build(&params, r)
        })
        .await?;
    Ok(web::Json(forecast))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_forecast);
}
