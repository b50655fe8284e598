//! Sales quotas and the forecast's aggregate over deals.

use super::contacts::{col, record_columns};
use super::records::on_unique_race;
use crate::conn::{DbConnection, Dialect};
use crate::error::{RepoError, RepoResult};
use crate::models::{QuotaChanges, QuotaRow};
use crate::query::{Bind, Resource, SqlBuf};
use crate::schema::quotas;
use chrono::NaiveDateTime;
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

pub fn get_quota(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<QuotaRow> {
    quotas::table
        .filter(quotas::workspace_id.eq(ws.as_string()))
        .filter(quotas::id.eq(id))
        .first::<QuotaRow>(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

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
    let n = diesel::update(
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
    .execute(conn)
    .map_err(|e| on_unique_race(e, "quotas"))?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    get_quota(conn, ws, &current.id)
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

/// The forecast's figures in one aggregate query over the live deals (months are cut
/// from the date text, so the same SQL serves both dialects).
pub fn forecast(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    f: &ForecastFilter,
) -> RepoResult<Vec<ForecastCell>> {
    let group = match f.group {
        ForecastGroup::Owner => "d.owner_id",
        ForecastGroup::Pipeline => "d.pipeline_id",
    };
    // Byte-wise grouping keys: PostgreSQL then hashes the groups rather than sorting every
    // deal by the database's collation (the same groups: equal means byte-equal either way).
    let bytes = match conn.dialect() {
        Dialect::Postgres => " COLLATE \"C\"",
        Dialect::Sqlite => "",
    };
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
    b.push(" AND ((s.kind = 'open' AND d.expected_close_date >= ");
    b.bind(Bind::Text(f.from.clone()));
    b.push(" AND d.expected_close_date <= ");
    b.bind(Bind::Text(f.to.clone()));
    b.push(") OR (s.kind <> 'open' AND d.closed_at >= ");
    b.bind(Bind::Ts(f.closed_from));
    b.push(" AND d.closed_at < ");
    b.bind(Bind::Ts(f.closed_before));
    b.push("))");
    for (sql, value) in [
        (" AND d.pipeline_id = ", &f.pipeline_id),
        (" AND d.owner_id = ", &f.owner_id),
    ] {
        if let Some(v) = value {
            b.push(sql);
            b.bind(Bind::Text(v.clone()));
        }
    }
    if let Some(team) = &f.team_id {
        b.push(" AND d.owner_id IN (SELECT m.user_id FROM team_members m WHERE m.workspace_id = ");
        b.bind(Bind::Text(ws.as_string()));
        b.push(" AND m.team_id = ");
        b.bind(Bind::Text(team.clone()));
        b.push(")");
    }
    b.push(" GROUP BY 1, 2, 3, 4");
    Ok(b.load(conn)?)
}
