//! Deals, their stage history, the pipeline board and their contacts.

use super::records::{changed, ensure_unique, on_unique_race, update_returning};
use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::models::{DealChanges, DealContactRow, DealRow, StageChangeRow};
use crate::query::{Bind, ColumnSpec, Relation, Resource, SqlBuf};
use crate::schema::{contacts, deal_contacts, deal_stage_changes as history, deals};
use chrono::NaiveDateTime;
use crm_domain::filter::FieldKind;
use crm_domain::WorkspaceId;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

pub static DEAL_CONTACTS: Relation = Relation {
    name: "contacts",
    link_table: "deal_contacts",
    link_self: "deal_id",
    link_other: "contact_id",
    other_table: "contacts",
};

fn col(api_name: &'static str, kind: FieldKind, sortable: bool) -> ColumnSpec {
    ColumnSpec {
        api_name,
        column: api_name,
        kind,
        sortable,
    }
}

pub fn deal_resource() -> Resource {
    Resource {
        table: "deals",
        columns: vec![
            col("id", FieldKind::Id, false),
            col("name", FieldKind::Text, true),
            col("amount", FieldKind::Decimal, true),
            col("currency", FieldKind::Text, true),
            col("pipeline_id", FieldKind::Id, true),
            col("stage_id", FieldKind::Id, true),
            col("stage_changed_at", FieldKind::Timestamp, true),
            col("expected_close_date", FieldKind::Date, true),
            col("owner_id", FieldKind::Id, true),
            col("company_id", FieldKind::Id, true),
            col("lost_reason", FieldKind::Text, true),
            col("closed_at", FieldKind::Timestamp, true),
            col("external_id", FieldKind::Text, true),
            col("created_at", FieldKind::Timestamp, true),
            col("updated_at", FieldKind::Timestamp, true),
            col("archived_at", FieldKind::Timestamp, true),
            col("version", FieldKind::Integer, true),
        ],
        text_columns: &["name"],
        text_relations: &[],
    }
}

record_by_id!(get_deal, get_deal_locked, deals, DealRow);

pub fn insert_deal(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    row: &DealRow,
    actor: Option<&str>,
) -> RepoResult<DealRow> {
    ensure_unique(
        conn,
        "deals",
        ws,
        &row.id,
        &[("external_id", row.external_id.as_deref())],
    )?;
    diesel::insert_into(deals::table)
        .values(row)
        .execute(conn)
        .map_err(|e| on_unique_race(e, "deals"))?;
    record_stage(
        conn,
        ws,
        &row.id,
        None,
        &row.stage_id,
        row.created_at,
        actor,
    )?;
    Ok(row.clone())
}

/// Writes the merged state of a deal whose version is still `current.version`; a new stage
/// is recorded in the stage history with the time spent in the one it leaves.
pub fn update_deal(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &DealRow,
    changes: &DealChanges,
    closed_at: Option<NaiveDateTime>,
    actor: Option<&str>,
) -> RepoResult<DealRow> {
    ensure_unique(
        conn,
        "deals",
        ws,
        &current.id,
        &[(
            "external_id",
            changed(&changes.external_id, &current.external_id),
        )],
    )?;
    let now = crm_domain::values_time::now();
    let moved = changes.stage_id != current.stage_id;
    let update = diesel::update(
        deals::table
            .filter(deals::workspace_id.eq(ws.as_string()))
            .filter(deals::id.eq(&current.id))
            .filter(deals::version.eq(current.version)),
    )
    .set((
        changes,
        deals::closed_at.eq(closed_at),
        deals::stage_changed_at.eq(if moved { now } else { current.stage_changed_at }),
        deals::updated_at.eq(now),
        deals::version.eq(current.version + 1),
    ))
    .returning(deals::all_columns);
    let updated: DealRow = update_returning(conn, update, "deals", current.version)?;
    if moved {
        record_stage(
            conn,
            ws,
            &current.id,
            Some((&current.stage_id, current.stage_changed_at)),
            &changes.stage_id,
            now,
            actor,
        )?;
    }
    Ok(updated)
}

fn record_stage(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    deal_id: &str,
    from: Option<(&str, NaiveDateTime)>,
    to: &str,
    at: NaiveDateTime,
    actor: Option<&str>,
) -> RepoResult<()> {
    diesel::insert_into(history::table)
        .values(StageChangeRow {
            workspace_id: ws.as_string(),
            id: crm_domain::new_id().to_string(),
            deal_id: deal_id.to_string(),
            from_stage_id: from.map(|f| f.0.to_string()),
            to_stage_id: to.to_string(),
            changed_at: at,
            changed_by: actor.map(String::from),
            time_in_stage_seconds: from.map(|f| (at - f.1).num_seconds().max(0)),
        })
        .execute(conn)?;
    Ok(())
}

/// A page of a deal's stage changes, oldest first, after the change `after`; `limit + 1`
/// rows at most.
pub fn stage_history(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    deal_id: &str,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<StageChangeRow>> {
    let mut q = history::table
        .filter(history::workspace_id.eq(ws.as_string()))
        .filter(history::deal_id.eq(deal_id))
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(history::id.gt(a.to_string()));
    }
    Ok(q.order(history::id.asc()).limit(limit + 1).load(conn)?)
}

/// The ids of the deals, live or archived, in a stage.
pub fn ids_in_stage(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    stage_id: &str,
) -> RepoResult<Vec<(String, bool)>> {
    let rows: Vec<(String, Option<NaiveDateTime>)> = deals::table
        .filter(deals::workspace_id.eq(ws.as_string()))
        .filter(deals::stage_id.eq(stage_id))
        .select((deals::id, deals::archived_at))
        .order(deals::id.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, a)| (id, a.is_some())).collect())
}

/// After stage `stage_id` turned closed (won or lost) or open again: its deals' `closed_at`
/// becomes the time each entered the stage, or none. Returns the ids of the deals changed,
/// in id order.
pub fn reclose_stage(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    stage_id: &str,
    closed: bool,
) -> RepoResult<Vec<String>> {
    let changed: Vec<String> = deals::table
        .filter(deals::workspace_id.eq(ws.as_string()))
        .filter(deals::stage_id.eq(stage_id))
        .filter(deals::closed_at.is_null().eq(closed))
        .select(deals::id)
        .order(deals::id.asc())
        .load(conn)?;
    if changed.is_empty() {
        return Ok(changed);
    }
    let now = crm_domain::values_time::now();
    let target = diesel::update(
        deals::table
            .filter(deals::workspace_id.eq(ws.as_string()))
            .filter(deals::stage_id.eq(stage_id))
            .filter(deals::closed_at.is_null().eq(closed)),
    );
    if closed {
        target
            .set((
                deals::closed_at.eq(deals::stage_changed_at.nullable()),
                deals::updated_at.eq(now),
                deals::version.eq(deals::version + 1),
            ))
            .execute(conn)?;
    } else {
        target
            .set((
                deals::closed_at.eq(None::<NaiveDateTime>),
                deals::updated_at.eq(now),
                deals::version.eq(deals::version + 1),
            ))
            .execute(conn)?;
    }
    Ok(changed)
}

/// Moves an archived deal to another stage of its pipeline, recording the change; live
/// deals move through the record update so they also emit their events.
pub fn move_archived(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    deal: &DealRow,
    to_stage: &str,
    closed_at: Option<NaiveDateTime>,
    actor: Option<&str>,
) -> RepoResult<()> {
    let now = crm_domain::values_time::now();
    diesel::update(
        deals::table
            .filter(deals::workspace_id.eq(ws.as_string()))
            .filter(deals::id.eq(&deal.id)),
    )
    .set((
        deals::stage_id.eq(to_stage),
        deals::stage_changed_at.eq(now),
        deals::closed_at.eq(closed_at),
        deals::updated_at.eq(now),
        deals::version.eq(deal.version + 1),
    ))
    .execute(conn)?;
    record_stage(
        conn,
        ws,
        &deal.id,
        Some((&deal.stage_id, deal.stage_changed_at)),
        to_stage,
        now,
        actor,
    )
}

/// What the board filters on besides the pipeline.
#[derive(Debug, Default, Clone)]
pub struct BoardFilter {
    pub owner_id: Option<String>,
    pub close_from: Option<String>,
    pub close_to: Option<String>,
    pub currency: Option<String>,
}

/// One cell of the board: a stage's live deals in one currency (`None`: without amount).
#[derive(Debug, QueryableByName)]
pub struct BoardCell {
    #[diesel(sql_type = Text)]
    pub stage_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub currency: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub deal_count: i64,
    /// The sum of the amounts in millionths, as exact decimal text.
    #[diesel(sql_type = Nullable<Text>)]
    pub total_micros: Option<String>,
}

/// The board of a pipeline: from its running totals (`deal_board_deltas`) when filtered by
/// currency at most, else in one aggregate query over its live deals.
pub fn board(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    pipeline_id: &str,
    f: &BoardFilter,
) -> RepoResult<Vec<BoardCell>> {
    if f.owner_id.is_none() && f.close_from.is_none() && f.close_to.is_none() {
        return board_totals(conn, ws, pipeline_id, f.currency.as_deref());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "SELECT d.stage_id AS stage_id, d.currency AS currency, COUNT(*) AS deal_count, \
         CAST(SUM(d.amount_micros) AS TEXT) AS total_micros FROM deals d WHERE d.workspace_id = ",
    );
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND d.pipeline_id = ");
    b.bind(Bind::Text(pipeline_id.to_string()));
    b.push(" AND d.archived_at IS NULL");
    let conditions = [
        (" AND d.owner_id = ", &f.owner_id),
        (" AND d.expected_close_date >= ", &f.close_from),
        (" AND d.expected_close_date <= ", &f.close_to),
        (" AND d.currency = ", &f.currency),
    ];
    for (sql, value) in conditions {
        if let Some(v) = value {
            b.push(sql);
            b.bind(Bind::Text(v.clone()));
        }
    }
    b.push(" GROUP BY d.stage_id, d.currency");
    // Sixteen forms at most (which filters are given): kept prepared.
    Ok(b.load_prepared(conn)?)
}

/// A pipeline's running totals hold at most this many delta rows per cell (plus a
/// margin) before a read folds them.
const DELTAS_PER_CELL: i64 = 4;
const DELTAS_MARGIN: i64 = 256;

/// A cell's deltas: summed (`deltas`: how many rows), or one row as deleted (`deltas` = 1).
#[derive(QueryableByName)]
struct Delta {
    #[diesel(sql_type = Text)]
    stage_id: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    deal_count: i64,
    #[diesel(sql_type = Text)]
    total_micros: String,
    #[diesel(sql_type = BigInt)]
    deltas: i64,
}

fn pipeline_deltas(b: &mut SqlBuf, ws: WorkspaceId, pipeline_id: &str) {
    b.push(" FROM deal_board_deltas WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND pipeline_id = ");
    b.bind(Bind::Text(pipeline_id.to_string()));
}

/// The board's cells from the running totals, folding them first when they have piled up.
fn board_totals(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    pipeline_id: &str,
    currency: Option<&str>,
) -> RepoResult<Vec<BoardCell>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "SELECT stage_id, currency, CAST(SUM(deal_count) AS BIGINT) AS deal_count, \
         CAST(SUM(total_micros) AS TEXT) AS total_micros, COUNT(*) AS deltas",
    );
    pipeline_deltas(&mut b, ws, pipeline_id);
    if let Some(cur) = currency {
        b.push(" AND currency = ");
        b.bind(Bind::Text(cur.to_string()));
    }
    b.push(" GROUP BY stage_id, currency");
    let sums: Vec<Delta> = b.load_prepared(conn)?;
    let deltas: i64 = sums.iter().map(|s| s.deltas).sum();
    if deltas > DELTAS_PER_CELL * sums.len() as i64 + DELTAS_MARGIN {
        crate::conn::write_tx(conn, |c| compact_board(c, ws, pipeline_id))?;
    }
    Ok(sums
        .into_iter()
        .filter(|s| s.deal_count != 0)
        .map(|s| {
            let currency = Some(s.currency).filter(|c| !c.is_empty());
            BoardCell {
                stage_id: s.stage_id,
                total_micros: currency.as_ref().map(|_| s.total_micros),
                currency,
                deal_count: s.deal_count,
            }
        })
        .collect())
}

/// Folds a pipeline's board deltas into one row per stage and currency, in the caller's
/// transaction. The rows folded are the ones this statement deletes, so deltas appended
/// meanwhile, or folded by a concurrent call, are neither lost nor counted twice.
fn compact_board(conn: &mut DbConnection, ws: WorkspaceId, pipeline_id: &str) -> RepoResult<()> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("DELETE");
    pipeline_deltas(&mut b, ws, pipeline_id);
    b.push(
        " RETURNING stage_id, currency, CAST(deal_count AS BIGINT) AS deal_count, \
         CAST(total_micros AS TEXT) AS total_micros, CAST(1 AS BIGINT) AS deltas",
    );
    let deleted = b.load::<Delta>(conn)?;
    let cells = super::deltas::fold(
        deleted
            .into_iter()
            .map(|d| ((d.stage_id, d.currency), d.deal_count, d.total_micros)),
    )?;
    super::deltas::insert(
        conn,
        "INSERT INTO deal_board_deltas VALUES ",
        &cells,
        |(stage, cur), n| {
            vec![
                Bind::Text(ws.as_string()),
                Bind::Text(pipeline_id.to_string()),
                Bind::Text(stage.clone()),
                Bind::Text(cur.clone()),
                Bind::Int(n),
            ]
        },
        &[],
    )?;
    Ok(())
}

// ---- contacts ----

/// The live contacts of each of these deals with their links: by deal, primary first,
/// then oldest first.
pub fn contacts_of_deals(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    deal_ids: &[String],
) -> RepoResult<Vec<(DealContactRow, crate::models::ContactRow)>> {
    let mut out = Vec::new();
    for chunk in deal_ids.chunks(super::bulk::ROWS_PER_STATEMENT) {
        out.extend(
            deal_contacts::table
                .inner_join(
                    contacts::table.on(contacts::workspace_id
                        .eq(deal_contacts::workspace_id)
                        .and(contacts::id.eq(deal_contacts::contact_id))),
                )
                .filter(deal_contacts::workspace_id.eq(ws.as_string()))
                .filter(deal_contacts::deal_id.eq_any(chunk))
                .filter(contacts::archived_at.is_null())
                .order((
                    deal_contacts::deal_id.asc(),
                    deal_contacts::is_primary.desc(),
                    deal_contacts::created_at.asc(),
                ))
                .select((
                    DealContactRow::as_select(),
                    crate::models::ContactRow::as_select(),
                ))
                .load::<(DealContactRow, crate::models::ContactRow)>(conn)?,
        );
    }
    Ok(out)
}

/// A contact's live deals with the link's role, newest link first.
pub fn deals_of_contact(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    contact_id: &str,
) -> RepoResult<Vec<(DealContactRow, DealRow)>> {
    Ok(deal_contacts::table
        .inner_join(
            deals::table.on(deals::workspace_id
                .eq(deal_contacts::workspace_id)
                .and(deals::id.eq(deal_contacts::deal_id))),
        )
        .filter(deal_contacts::workspace_id.eq(ws.as_string()))
        .filter(deal_contacts::contact_id.eq(contact_id))
        .filter(deals::archived_at.is_null())
        .order((
            deal_contacts::created_at.desc(),
            deal_contacts::deal_id.asc(),
        ))
        .select((DealContactRow::as_select(), DealRow::as_select()))
        .load(conn)?)
}
