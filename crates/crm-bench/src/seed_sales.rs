//! Sales data at scale for the sales scenarios: deals across the default pipeline and
//! activities linked to contacts, a few contacts with very many. Written through the
//! repository's bulk path like the contacts.

use anyhow::{anyhow, Result};
use chrono::{Days, NaiveDateTime, TimeDelta};
use crm_db::models::{
    ActivityLinkRow, ActivityRow, DealRow, QuoteLineRow, QuoteRow, StageChangeRow, StageRow,
};
use crm_db::repo::{bulk, pipelines};
use crm_db::DbConnection;
use crm_domain::deals::StageKind;
use crm_domain::WorkspaceId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

/// Rows generated and written per transaction.
const BATCH: usize = 10_000;
/// Contacts that carry a large share of the activities (the timeline scenario's records).
const HOT_CONTACTS: usize = 20;
/// The share of activities that go to the hot contacts.
const HOT_SHARE: f64 = 0.05;
/// How many deal ids the quote scenario draws from.
const SAMPLE_DEALS: usize = 1000;
/// One deal in this many has a quote already, of 1 to [`MAX_SEEDED_LINES`] lines: the
/// quotes table is not empty when the quote scenario starts, as in a workspace in use.
const DEALS_PER_QUOTE: usize = 4;
const MAX_SEEDED_LINES: usize = 10;

const TYPES: &[&str] = &["task", "call", "meeting", "email", "note"];
const SUBJECTS: &[&str] = &[
    "Intro call",
    "Demo",
    "Follow-up",
    "Pricing questions",
    "Contract review",
    "Kick-off",
    "Check-in",
];

/// What the sales seed wrote, and what the scenarios draw from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SalesSeeded {
    pub deals: usize,
    /// Rows of the deals' stage history.
    pub stage_changes: usize,
    pub quotes: usize,
    pub quote_lines: usize,
    pub activities: usize,
    pub activity_links: usize,
    pub hot_contact_activities: usize,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub pipeline_id: String,
    #[serde(skip)]
    pub deal_ids: Vec<String>,
    /// Contacts with [`HOT_SHARE`] of all activities between them.
    #[serde(skip)]
    pub hot_contact_ids: Vec<String>,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn deal(
    rng: &mut StdRng,
    ws: &str,
    owner: &str,
    stage: &StageRow,
    first_stage: bool,
    i: usize,
    now: NaiveDateTime,
) -> DealRow {
    let created = now - TimeDelta::minutes(rng.gen_range(60..2 * 365 * 24 * 60));
    let cents: i64 = rng.gen_range(10_000..50_000_000);
    let kind = StageKind::parse(&stage.kind).unwrap_or(StageKind::Open);
    // A deal reached its stage (and a closed one closed) some time between its creation
    // and now, unless its stage is the first, where it was created; it is expected within
    // a year either side of today.
    let staged = if first_stage {
        created
    } else {
        created + TimeDelta::minutes(rng.gen_range(0..=(now - created).num_minutes()))
    };
    let closed_at = kind.is_closed().then_some(staged);
    let expected = now
        .date()
        .checked_sub_days(Days::new(365))
        .and_then(|d| d.checked_add_days(Days::new(rng.gen_range(0..730))))
        .map(|d| d.format("%Y-%m-%d").to_string());
    DealRow {
        workspace_id: ws.into(),
        id: crm_domain::new_id().to_string(),
        name: format!("Deal {i}"),
        amount: Some(format!("{}.{:02}", cents / 100, cents % 100)),
        amount_micros: Some(cents * 10_000),
        currency: Some(if rng.gen_bool(0.9) { "EUR" } else { "USD" }.into()),
        pipeline_id: stage.pipeline_id.clone(),
        stage_id: stage.id.clone(),
        stage_changed_at: staged,
        expected_close_date: expected,
        owner_id: rng.gen_bool(0.95).then(|| owner.to_string()),
        company_id: None,
        lost_reason: (kind == StageKind::Lost).then(|| "price".to_string()),
        closed_at,
        external_id: None,
        custom: "{}".into(),
        created_at: created,
        updated_at: staged,
        archived_at: None,
        version: 1,
    }
}

/// A draft quote for a deal with its priced lines, as the API computes them (its number is
/// drawn when it is written).
fn quote(rng: &mut StdRng, deal: &DealRow) -> (QuoteRow, Vec<QuoteLineRow>) {
    use crm_domain::money;
    let currency = deal.currency.clone().unwrap_or_else(|| "EUR".into());
    let id = crm_domain::new_id().to_string();
    let entered: Vec<[String; 4]> = (0..rng.gen_range(1..=MAX_SEEDED_LINES))
        .map(|_| {
            [
                rng.gen_range(1..20).to_string(),
                format!("{}.{:02}", rng.gen_range(1..5000), rng.gen_range(0..100)),
                pick(rng, &["0", "5", "12.5"]).to_string(),
                pick(rng, &["0", "7", "19"]).to_string(),
            ]
        })
        .collect();
    let parse = |s: &str| money::parse(s).unwrap_or_default();
    let inputs: Vec<money::LineInput> = entered
        .iter()
        .map(|[q, p, d, t]| money::LineInput {
            quantity: parse(q),
            unit_price: parse(p),
            discount_percent: parse(d),
            tax_rate: parse(t),
        })
        .collect();
    let totals = money::quote_totals(&inputs, &currency).unwrap_or_else(|e| {
        unreachable!("seeded lines are valid: {e:?}");
    });
    let f = |d| money::format(d, &currency);
    let lines = entered
        .into_iter()
        .zip(&totals.lines)
        .enumerate()
        .map(
            |(i, ([quantity, unit_price, discount_percent, tax_rate], t))| QuoteLineRow {
                workspace_id: deal.workspace_id.clone(),
                quote_id: id.clone(),
                position: i as i32,
                product_id: None,
                description: Some(format!("Line {i}")),
                quantity,
                unit_price,
                discount_percent,
                tax_rate,
                gross: f(t.gross),
                discount: f(t.discount),
                net: f(t.net),
                tax: f(t.tax),
                total: f(t.total),
            },
        )
        .collect();
    let row = QuoteRow {
        workspace_id: deal.workspace_id.clone(),
        id,
        number: 0,
        deal_id: Some(deal.id.clone()),
        status: "draft".into(),
        currency: currency.clone(),
        price_book_id: None,
        valid_until: None,
        subtotal: f(totals.subtotal),
        discount_total: f(totals.discount_total),
        tax_total: f(totals.tax_total),
        total: f(totals.total),
        created_at: deal.created_at,
        updated_at: deal.created_at,
        archived_at: None,
        version: 1,
    };
    (row, lines)
}

/// The stage changes that brought a deal to its stage, as the API records them: into the
/// pipeline's first stage when it was created, then through every open stage before its
/// own, at even steps, the last at its `stage_changed_at`.
fn stage_history(deal: &DealRow, stages: &[StageRow]) -> Vec<StageChangeRow> {
    let Some(at) = stages.iter().position(|s| s.id == deal.stage_id) else {
        return Vec::new();
    };
    let path: Vec<&StageRow> = stages[..at]
        .iter()
        .filter(|s| s.kind == "open")
        .chain(std::iter::once(&stages[at]))
        .collect();
    let moves = path.len() as i32 - 1;
    let step = match moves {
        0 => TimeDelta::zero(),
        n => (deal.stage_changed_at - deal.created_at) / n,
    };
    let mut previous: Option<(&StageRow, NaiveDateTime)> = None;
    path.iter()
        .enumerate()
        .map(|(k, stage)| {
            let changed_at = if k as i32 == moves {
                deal.stage_changed_at
            } else {
                deal.created_at + step * k as i32
            };
            let row = StageChangeRow {
                workspace_id: deal.workspace_id.clone(),
                id: crm_domain::new_id().to_string(),
                deal_id: deal.id.clone(),
                from_stage_id: previous.map(|(s, _)| s.id.clone()),
                to_stage_id: stage.id.clone(),
                changed_at,
                changed_by: deal.owner_id.clone(),
                time_in_stage_seconds: previous
                    .map(|(_, since)| (changed_at - since).num_seconds()),
            };
            previous = Some((stage, changed_at));
            row
        })
        .collect()
}

fn activity(
    rng: &mut StdRng,
    ws: &str,
    owner: &str,
    contact: &str,
    now: NaiveDateTime,
) -> (ActivityRow, ActivityLinkRow) {
    let at = now - TimeDelta::minutes(rng.gen_range(1..3 * 365 * 24 * 60));
    let kind = pick(rng, TYPES);
    let done = matches!(kind, "email" | "note") || at < now - TimeDelta::days(7);
    let id = crm_domain::new_id().to_string();
    let row = ActivityRow {
        workspace_id: ws.into(),
        id: id.clone(),
        activity_type: kind.into(),
        subject: pick(rng, SUBJECTS).into(),
        body: None,
        due_at: (kind == "task").then_some(at),
        start_at: (kind == "meeting" || kind == "call").then_some(at),
        end_at: (kind == "meeting").then(|| at + TimeDelta::minutes(30)),
        all_day: false,
        status: if done { "done" } else { "open" }.into(),
        completed_at: done.then_some(at),
        priority: "normal".into(),
        assignee_id: Some(owner.into()),
        owner_id: Some(owner.into()),
        outcome: None,
        channel: None,
        occurred_at: at,
        links: serde_json::json!({"contact_ids": [contact]}).to_string(),
        external_id: None,
        custom: "{}".into(),
        created_at: at,
        updated_at: at,
        archived_at: None,
        version: 1,
    };
    let link = ActivityLinkRow {
        workspace_id: ws.into(),
        activity_id: id,
        record_type: "contact".into(),
        record_id: contact.into(),
        occurred_at: at,
        created_at: at,
    };
    (row, link)
}

/// Seeds `deals` deals over the stages of the workspace's default pipeline and
/// `activities` activities, each linked to one of `contacts`: [`HOT_SHARE`] of them to the
/// first [`HOT_CONTACTS`], the rest spread evenly.
pub fn seed(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    owner: &str,
    contacts: &[String],
    deals: usize,
    activities: usize,
) -> Result<SalesSeeded> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x5a1e5);
    let now = crm_domain::values_time::now();
    let ws_id = ws.as_string();
    let pipeline = pipelines::get_default(conn, ws).map_err(|e| anyhow!("pipeline: {e:?}"))?;
    let stages = pipelines::stages_of(conn, ws, std::slice::from_ref(&pipeline.id))
        .map_err(|e| anyhow!("stages: {e:?}"))?;
    if stages.is_empty() || contacts.is_empty() {
        return Err(anyhow!("the sales seed needs stages and seeded contacts"));
    }
    let stride = (deals / SAMPLE_DEALS).max(1);
    let mut deal_ids = Vec::new();
    let mut stage_changes = 0;
    let (mut quotes, mut quote_lines) = (0, 0);
    let mut start = 0;
    while start < deals {
        let end = (start + BATCH).min(deals);
        let rows: Vec<DealRow> = (start..end)
            .map(|i| {
                let stage = i % stages.len();
                deal(&mut rng, &ws_id, owner, &stages[stage], stage == 0, i, now)
            })
            .collect();
        let history: Vec<StageChangeRow> = rows
            .iter()
            .flat_map(|d| stage_history(d, &stages))
            .collect();
        stage_changes += history.len();
        bulk::insert_deals(conn, &rows, &history).map_err(|e| anyhow!("deals: {e:?}"))?;
        let (mut quote_rows, lines): (Vec<QuoteRow>, Vec<Vec<QuoteLineRow>>) = rows
            .iter()
            .step_by(DEALS_PER_QUOTE)
            .map(|d| quote(&mut rng, d))
            .unzip();
        let lines: Vec<QuoteLineRow> = lines.into_iter().flatten().collect();
        quotes += quote_rows.len();
        quote_lines += lines.len();
        bulk::insert_quotes(conn, ws, &mut quote_rows, &lines)
            .map_err(|e| anyhow!("quotes: {e:?}"))?;
        deal_ids.extend(rows.iter().step_by(stride).map(|r| r.id.clone()));
        start = end;
    }

    let hot: Vec<String> = contacts.iter().take(HOT_CONTACTS).cloned().collect();
    let mut hot_count = 0;
    let mut start = 0;
    while start < activities {
        let end = (start + BATCH).min(activities);
        let (rows, links): (Vec<ActivityRow>, Vec<ActivityLinkRow>) = (start..end)
            .map(|_| {
                let to_hot = rng.gen_bool(HOT_SHARE);
                hot_count += usize::from(to_hot);
                let pool = if to_hot { &hot } else { contacts };
                let contact = &pool[rng.gen_range(0..pool.len())];
                activity(&mut rng, &ws_id, owner, contact, now)
            })
            .collect();
        bulk::insert_activities(conn, &rows, &links).map_err(|e| anyhow!("activities: {e:?}"))?;
        start = end;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(SalesSeeded {
        deals,
        stage_changes,
        quotes,
        quote_lines,
        activities,
        activity_links: activities,
        hot_contact_activities: hot_count,
        seconds,
        rows_per_second: (deals + stage_changes + quotes + quote_lines + 2 * activities) as f64
            / seconds.max(1e-9),
        pipeline_id: pipeline.id,
        deal_ids,
        hot_contact_ids: hot,
    })
}
