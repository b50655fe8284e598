//! Sales quotas and the forecast's aggregate over deals.

use super::contacts::{col, record_columns};
use super::records::{on_unique_race, update_returning};
use crate::conn::{DbConnection, Dialect};
use crate::error::{RepoError, RepoResult};
use crate::models::{QuotaChanges, QuotaRow};
use crate::query::{Bind, Resource, SqlBuf};
use crate::schema::quotas;
use chrono::{NaiveDate, NaiveDateTime};
use crm_domain::filter::FieldKind;
use crm_domain::WorkspaceId;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

pub fn quota_resource() -> Resource {
    let mut columns = vec![
        col("id", "id", FieldKind::Id, false),
        col("user_id", "user_id", FieldKind::Id, true),
        col("team_id", "team_id", FieldKind::Id, true),
        col(
            "period",
            "period",
            FieldKind::Enum(vec!["month".into(), "quarter".into()]),
            true,
        ),
        col("period_start", "period_start", FieldKind::Date, true),
        col("amount", "amount", FieldKind::Decimal, true),
        col("currency", "currency", FieldKind::Text, true),
    ];
    columns.extend(record_columns());
    Resource {
        table: "quotas",
        columns,
        text_columns: &[],
        text_relations: &[],
    }
}

record_by_id!(get_quota, get_quota_locked, quotas, QuotaRow);

/// Fails with Conflict when another quota (live or archived) sets the same user or team,
/// period, start and currency.
fn ensure_unique_target(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    self_id: &str,
    c: &QuotaChanges,
) -> RepoResult<()> {
    let mut q = quotas::table
        .filter(quotas::workspace_id.eq(ws.as_string()))
        .filter(quotas::period.eq(&c.period))
        .filter(quotas::period_start.eq(&c.period_start))
        .filter(quotas::currency.eq(&c.currency))
        .filter(quotas::id.ne(self_id))
        .select(quotas::id)
        .into_boxed();
    q = match &c.user_id {
        Some(u) => q.filter(quotas::user_id.eq(u.clone())),
        None => q.filter(quotas::user_id.is_null()),
    };
    q = match &c.team_id {
        Some(t) => q.filter(quotas::team_id.eq(t.clone())),
        None => q.filter(quotas::team_id.is_null()),
    };
    match q.first::<String>(conn).optional()? {
        Some(existing) => Err(RepoError::Conflict {
            field: if c.user_id.is_some() {
                "user_id"
            } else {
                "team_id"
            }
            .into(),
            message: format!(
                "quota {existing} already sets the {} {} from {} in {}",
                c.period,
                if c.user_id.is_some() {
                    "user's"
                } else {
                    "team's"
                },
                c.period_start,
                c.currency
            ),
            existing_id: Some(existing),
        }),
        None => Ok(()),
    }
}

pub fn insert_quota(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &QuotaRow,
) -> RepoResult<QuotaRow> {
    let c = QuotaChanges {
        user_id: row.user_id.clone(),
        team_id: row.team_id.clone(),
        period: row.period.clone(),
        period_start: row.period_start.clone(),
        amount: row.amount.clone(),
        currency: row.currency.clone(),
    };
    ensure_unique_target(conn, ws, &row.id, &c)?;
    diesel::insert_into(quotas::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "quotas"))?;
    Ok(row.clone())
}

pub fn update_quota(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &QuotaRow,
    changes: &QuotaChanges,
) -> RepoResult<QuotaRow> {
    ensure_unique_target(conn, ws, &current.id, changes)?;
    let now = crm_domain::values_time::now();
    let update = diesel::update(
        quotas::table
            .filter(quotas::workspace_id.eq(ws.as_string()))
            .filter(quotas::id.eq(&current.id))
            .filter(quotas::version.eq(current.version)),
    )
    .set((
        changes,
        quotas::updated_at.eq(now),
        quotas::version.eq(current.version + 1),
    ))
    .returning(quotas::all_columns);
    update_returning(conn, update, "quotas", current.version)
}

/// Which quotas the forecast compares against: those of users, or of one team.
#[derive(Debug, Clone)]
pub enum QuotaHolder {
    Users,
    Team(String),
}

/// The live quotas of a period kind and currency whose period starts in `[from, to]`.
pub fn quotas_in(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    period: &str,
    currency: &str,
    from: &str,
    to: &str,
    holder: &QuotaHolder,
) -> RepoResult<Vec<QuotaRow>> {
    let q = quotas::table
        .filter(quotas::workspace_id.eq(ws.as_string()))
        .filter(quotas::archived_at.is_null())
        .filter(quotas::period.eq(period))
        .filter(quotas::currency.eq(currency))
        .filter(quotas::period_start.ge(from))
        .filter(quotas::period_start.le(to))
        .into_boxed();
    let q = match holder {
        QuotaHolder::Users => q.filter(quotas::user_id.is_not_null()),
        QuotaHolder::Team(t) => q.filter(quotas::team_id.eq(t.clone())),
    };
    Ok(q.order(quotas::period_start.asc()).load(conn)?)
}

/// How the forecast groups deals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForecastGroup {
    Owner,
    Pipeline,
}

/// What the forecast counts: deals in `currency` that are open with an expected close
/// date in `[from, to]`, or were won or lost (closed_at) in `[closed_from, closed_before)`.
#[derive(Debug, Clone)]
pub struct ForecastFilter {
    pub currency: String,
    pub from: String,
    pub to: String,
    pub closed_from: NaiveDateTime,
    pub closed_before: NaiveDateTime,
    pub group: ForecastGroup,
    pub pipeline_id: Option<String>,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
}

/// One cell of the forecast: the deals of a month, group, stage kind and probability.
#[derive(Debug, QueryableByName)]
pub struct ForecastCell {
    /// `YYYY-MM`: of `closed_at` for closed deals, of `expected_close_date` for open ones.
    #[diesel(sql_type = Text)]
    pub month: String,
    /// The owner or pipeline id (`None`: deals without an owner).
    #[diesel(sql_type = Nullable<Text>)]
    pub group_key: Option<String>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Integer)]
    pub probability: i32,
    #[diesel(sql_type = BigInt)]
    pub deal_count: i64,
    /// The sum of the amounts in millionths, as exact decimal text.
    #[diesel(sql_type = Nullable<Text>)]
    pub total_micros: Option<String>,
}

/// The forecast's figures. The whole months of `[from, to]` come from the running totals
/// (`deal_forecast_deltas`), folded first when they have piled up; the days before the first
/// whole month and after the last, if any, from one aggregate query over the live deals.
/// A month here is the same on both sides: cut from the text of the expected close date or
/// of `closed_at`, so the two answers add up to what one query over every deal would give.
pub fn forecast(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    f: &ForecastFilter,
) -> RepoResult<Vec<ForecastCell>> {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN);
    let Some(Whole {
        from,
        first,
        last,
        to,
    }) = whole_months(f)
    else {
        let open = [(f.from.clone(), f.to.clone())];
        return deals_aggregate(conn, ws, f, &open, &[(f.closed_from, f.closed_before)]);
    };
    let mut cells = totals_aggregate(conn, ws, f, &day(first)[..7], &day(last)[..7])?;
    let after_last = last.succ_opt().unwrap_or(last);
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    if from < first {
        open.push((day(from), day(first.pred_opt().unwrap_or(first))));
    }
    if to > last {
        open.push((day(after_last), day(to)));
    }
    if f.closed_from < midnight(first) {
        closed.push((f.closed_from, midnight(first)));
    }
    if f.closed_before > midnight(after_last) {
        closed.push((midnight(after_last), f.closed_before));
    }
    if !open.is_empty() || !closed.is_empty() {
        cells.extend(deals_aggregate(conn, ws, f, &open, &closed)?);
    }
    Ok(cells)
}

/// A forecast's range, and the first day of its first whole month and the last day of its
/// last one.
struct Whole {
    from: NaiveDate,
    first: NaiveDate,
    last: NaiveDate,
    to: NaiveDate,
}

/// The first day of the first month and the last day of the last month that lie wholly in
/// the forecast's range, for both its open deals (expected close dates in `[from, to]`) and
/// its closed ones (`closed_at` in `[closed_from, closed_before)`); None when there are none.
fn whole_months(f: &ForecastFilter) -> Option<Whole> {
    use chrono::{Datelike, Months};
    let from = NaiveDate::parse_from_str(&f.from, "%Y-%m-%d").ok()?;
    let to = NaiveDate::parse_from_str(&f.to, "%Y-%m-%d").ok()?;
    let first = match from.day() {
        1 => from,
        _ => from.with_day(1)?.checked_add_months(Months::new(1))?,
    };
    let after = to.succ_opt()?;
    let last = match after.day() {
        1 => to,
        _ => to.with_day(1)?.pred_opt()?,
    };
    let closed_covers = f.closed_from <= first.and_time(chrono::NaiveTime::MIN)
        && f.closed_before >= last.succ_opt()?.and_time(chrono::NaiveTime::MIN);
    (first <= last && closed_covers).then_some(Whole {
        from,
        first,
        last,
        to,
    })
}

/// The grouping key of a forecast's query, and the byte-wise collation its keys are
/// grouped by: PostgreSQL then hashes the groups rather than sorting them by the
/// database's collation (the same groups: equal means byte-equal either way).
fn grouping(conn: &DbConnection, f: &ForecastFilter, alias: &str) -> (String, &'static str) {
    let column = match f.group {
        ForecastGroup::Owner => "owner_id",
        ForecastGroup::Pipeline => "pipeline_id",
    };
    let bytes = match conn.dialect() {
        Dialect::Postgres => " COLLATE \"C\"",
        Dialect::Sqlite => "",
    };
    (format!("{alias}.{column}"), bytes)
}

/// The pipeline, owner and team conditions of a forecast, on the rows of `alias`.
fn narrow(b: &mut SqlBuf, ws: WorkspaceId, f: &ForecastFilter, alias: &str) {
    for (column, value) in [("pipeline_id", &f.pipeline_id), ("owner_id", &f.owner_id)] {
        if let Some(v) = value {
            b.push(&format!(" AND {alias}.{column} = "));
            b.bind(Bind::Text(v.clone()));
        }
    }
    if let Some(team) = &f.team_id {
        b.push(&format!(
            " AND {alias}.owner_id IN (SELECT m.user_id FROM team_members m WHERE m.workspace_id = "
        ));
        b.bind(Bind::Text(ws.as_string()));
        b.push(" AND m.team_id = ");
        b.bind(Bind::Text(team.clone()));
        b.push(")");
    }
}

/// One aggregate query over the live deals: the open ones with an expected close date in
/// one of `open`'s inclusive day ranges, the closed ones with `closed_at` in one of
/// `closed`'s half-open ranges.
fn deals_aggregate(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    f: &ForecastFilter,
    open: &[(String, String)],
    closed: &[(NaiveDateTime, NaiveDateTime)],
) -> RepoResult<Vec<ForecastCell>> {
    let (group, bytes) = grouping(conn, f, "d");
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "SELECT SUBSTR(CASE WHEN s.kind = 'open' THEN d.expected_close_date \
         ELSE CAST(d.closed_at AS TEXT) END, 1, 7){bytes} AS month, {group}{bytes} AS group_key, \
         s.kind AS kind, s.probability AS probability, COUNT(*) AS deal_count, \
         CAST(SUM(d.amount_micros) AS TEXT) AS total_micros \
         FROM deals d JOIN pipeline_stages s ON s.workspace_id = d.workspace_id \
         AND s.id = d.stage_id WHERE d.workspace_id = "
    ));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND d.archived_at IS NULL AND d.currency = ");
    b.bind(Bind::Text(f.currency.clone()));
    b.push(" AND (1 = 0");
    for (from, to) in open {
        b.push(" OR (s.kind = 'open' AND d.expected_close_date >= ");
        b.bind(Bind::Text(from.clone()));
        b.push(" AND d.expected_close_date <= ");
        b.bind(Bind::Text(to.clone()));
        b.push(")");
    }
    for (from, before) in closed {
        b.push(" OR (s.kind <> 'open' AND d.closed_at >= ");
        b.bind(Bind::Ts(*from));
        b.push(" AND d.closed_at < ");
        b.bind(Bind::Ts(*before));
        b.push(")");
    }
    b.push(")");
    narrow(&mut b, ws, f, "d");
    b.push(" GROUP BY 1, 2, 3, 4");
    // A bounded number of forms (ranges before and after the whole months, three
    // optional conditions): kept prepared.
    Ok(b.load_prepared(conn)?)
}

/// A workspace's forecast totals in a currency hold at most as many fresh delta rows as
/// folded ones (plus a margin) before a read folds them.
const FRESH_MARGIN: i64 = 1024;

/// A cell of the forecast from the running totals, with how many of its rows are fresh
/// (appended since the last fold) and how many folded.
#[derive(QueryableByName)]
struct TotalsCell {
    #[diesel(embed)]
    cell: ForecastCell,
    #[diesel(sql_type = BigInt)]
    fresh: i64,
    #[diesel(sql_type = BigInt)]
    folded: i64,
}

/// The forecast's cells of the months `[first, last]` (`YYYY-MM`) from the running totals.
fn totals_aggregate(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    f: &ForecastFilter,
    first: &str,
    last: &str,
) -> RepoResult<Vec<ForecastCell>> {
    let (group, bytes) = grouping(conn, f, "x");
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "SELECT CASE WHEN s.kind = 'open' THEN x.open_month ELSE x.closed_month END{bytes} \
         AS month, {group}{bytes} AS group_key, s.kind AS kind, s.probability AS probability, \
         CAST(SUM(x.deal_count) AS BIGINT) AS deal_count, \
         CAST(SUM(x.total_micros) AS TEXT) AS total_micros, \
         CAST(SUM(CASE WHEN x.folded THEN 0 ELSE 1 END) AS BIGINT) AS fresh, \
         CAST(SUM(CASE WHEN x.folded THEN 1 ELSE 0 END) AS BIGINT) AS folded \
         FROM deal_forecast_deltas x JOIN pipeline_stages s ON s.workspace_id = x.workspace_id \
         AND s.id = x.stage_id WHERE x.workspace_id = "
    ));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND x.currency = ");
    b.bind(Bind::Text(f.currency.clone()));
    b.push(" AND ((s.kind = 'open' AND x.open_month >= ");
    b.bind(Bind::Text(first.to_string()));
    b.push(" AND x.open_month <= ");
    b.bind(Bind::Text(last.to_string()));
    b.push(") OR (s.kind <> 'open' AND x.closed_month >= ");
    b.bind(Bind::Text(first.to_string()));
    b.push(" AND x.closed_month <= ");
    b.bind(Bind::Text(last.to_string()));
    b.push("))");
    narrow(&mut b, ws, f, "x");
    b.push(" GROUP BY 1, 2, 3, 4");
    let rows: Vec<TotalsCell> = b.load_prepared(conn)?;
    let fresh: i64 = rows.iter().map(|r| r.fresh).sum();
    let folded: i64 = rows.iter().map(|r| r.folded).sum();
    if fresh > folded + FRESH_MARGIN {
        crate::conn::write_tx(conn, |c| fold_forecast(c, ws, &f.currency))?;
    }
    Ok(rows
        .into_iter()
        .map(|r| r.cell)
        .filter(|c| c.deal_count != 0)
        .collect())
}

/// One row of the forecast's totals, as a fold deletes it.
#[derive(QueryableByName)]
struct ForecastDelta {
    #[diesel(sql_type = Nullable<Text>)]
    owner_id: Option<String>,
    #[diesel(sql_type = Text)]
    pipeline_id: String,
    #[diesel(sql_type = Text)]
    stage_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    open_month: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    closed_month: Option<String>,
    #[diesel(sql_type = BigInt)]
    deal_count: i64,
    #[diesel(sql_type = Text)]
    total_micros: String,
}

/// Folds a workspace's forecast totals in a currency into one row per cell, in the caller's
/// transaction. The rows folded are the ones this statement deletes, so rows appended
/// meanwhile, or folded by a concurrent call, are neither lost nor counted twice.
fn fold_forecast(conn: &mut DbConnection, ws: WorkspaceId, currency: &str) -> RepoResult<()> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("DELETE FROM deal_forecast_deltas WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND currency = ");
    b.bind(Bind::Text(currency.to_string()));
    b.push(
        " RETURNING owner_id, pipeline_id, stage_id, open_month, closed_month, \
         CAST(deal_count AS BIGINT) AS deal_count, CAST(total_micros AS TEXT) AS total_micros",
    );
    let deleted = b.load::<ForecastDelta>(conn)?;
    let cells = super::deltas::fold(deleted.into_iter().map(|d| {
        let key = (
            d.owner_id,
            d.pipeline_id,
            d.stage_id,
            d.open_month,
            d.closed_month,
        );
        (key, d.deal_count, d.total_micros)
    }))?;
    super::deltas::insert(
        conn,
        "INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id, \
         stage_id, open_month, closed_month, deal_count, total_micros, folded) VALUES ",
        &cells,
        |(owner, pipeline, stage, open, closed), n| {
            vec![
                Bind::Text(ws.as_string()),
                Bind::Text(currency.to_string()),
                Bind::OptText(owner.clone()),
                Bind::Text(pipeline.clone()),
                Bind::Text(stage.clone()),
                Bind::OptText(open.clone()),
                Bind::OptText(closed.clone()),
                Bind::Int(n),
            ]
        },
        &[Bind::Bool(true)],
    )?;
    Ok(())
}
