//! A record's timeline: every source of dated items about it (activities, lifecycle
//! changes, deal stage changes, later tickets and campaign touches) merged newest first and
//! paged by a keyset on (at, kind, id), in one `UNION ALL` query per page.
//!
//! A new kind of item is one more [`TimelineSource`] in [`SOURCES`]; a new record type
//! (deals, leads) gets a timeline by naming it in the sources that concern it.

use crate::conn::{DbConnection, Dialect};
use crate::error::RepoResult;
use crate::query::{Bind, SqlBuf};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::sql_types::{Text, Timestamp};
use diesel::QueryableByName;

/// One source of timeline items, described as SQL fragments over its own aliases.
pub struct TimelineSource {
    /// The item kind (`activity`); also the tie-breaker between sources at the same time.
    pub kind: &'static str,
    /// The record types whose timeline holds this source; empty: every record type.
    pub record_types: &'static [&'static str],
    /// `FROM …` of the source, joins included.
    pub from: &'static str,
    /// The workspace, record type (if the source stores one) and record id columns the
    /// timeline filters on; with the time and id columns they should make one index.
    pub workspace_column: &'static str,
    pub record_type_column: Option<&'static str>,
    pub record_id_column: &'static str,
    /// The item's time and id.
    pub at: &'static str,
    pub id: &'static str,
    /// Further conditions (`AND …`), e.g. hiding archived records.
    pub condition: &'static str,
    /// The payload's fields: (name, column).
    pub payload: &'static [(&'static str, &'static str)],
}

pub static ACTIVITIES: TimelineSource = TimelineSource {
    kind: "activity",
    record_types: &[],
    from: "FROM activity_links l JOIN activities a ON a.workspace_id = l.workspace_id AND a.id = l.activity_id",
    workspace_column: "l.workspace_id",
    record_type_column: Some("l.record_type"),
    record_id_column: "l.record_id",
    at: "l.occurred_at",
    id: "l.activity_id",
    condition: " AND a.archived_at IS NULL",
    payload: &[
        ("workspace_id", "a.workspace_id"),
        ("id", "a.id"),
        ("activity_type", "a.activity_type"),
        ("subject", "a.subject"),
        ("body", "a.body"),
        ("due_at", "a.due_at"),
        ("start_at", "a.start_at"),
        ("end_at", "a.end_at"),
        ("all_day", "a.all_day"),
        ("status", "a.status"),
        ("completed_at", "a.completed_at"),
        ("priority", "a.priority"),
        ("assignee_id", "a.assignee_id"),
        ("owner_id", "a.owner_id"),
        ("outcome", "a.outcome"),
        ("channel", "a.channel"),
        ("occurred_at", "a.occurred_at"),
        ("links", "a.links"),
        ("external_id", "a.external_id"),
        ("custom", "a.custom"),
        ("created_at", "a.created_at"),
        ("updated_at", "a.updated_at"),
        ("archived_at", "a.archived_at"),
        ("version", "a.version"),
    ],
};

pub static LIFECYCLE_CHANGES: TimelineSource = TimelineSource {
    kind: "lifecycle_change",
    record_types: &["contact"],
    from: "FROM contact_lifecycle_changes c",
    workspace_column: "c.workspace_id",
    record_type_column: None,
    record_id_column: "c.contact_id",
    at: "c.changed_at",
    id: "c.id",
    condition: "",
    payload: &[
        ("contact_id", "c.contact_id"),
        ("from_stage", "c.from_stage"),
        ("to_stage", "c.to_stage"),
        ("changed_by", "c.changed_by"),
    ],
};

/// A deal's moves between stages (`deal_stage_changes_timeline` serves it).
pub static STAGE_CHANGES: TimelineSource = TimelineSource {
    kind: "stage_change",
    record_types: &["deal"],
    from: "FROM deal_stage_changes h",
    workspace_column: "h.workspace_id",
    record_type_column: None,
    record_id_column: "h.deal_id",
    at: "h.changed_at",
    id: "h.id",
    condition: "",
    payload: &[
        ("deal_id", "h.deal_id"),
        ("from_stage_id", "h.from_stage_id"),
        ("to_stage_id", "h.to_stage_id"),
        ("changed_by", "h.changed_by"),
        ("time_in_stage_seconds", "h.time_in_stage_seconds"),
    ],
};

/// A lead's status changes (`lead_status_changes_timeline` serves it).
pub static LEAD_STATUS_CHANGES: TimelineSource = TimelineSource {
    kind: "status_change",
    record_types: &["lead"],
    from: "FROM lead_status_changes s",
    workspace_column: "s.workspace_id",
    record_type_column: None,
    record_id_column: "s.lead_id",
    at: "s.changed_at",
    id: "s.id",
    condition: "",
    payload: &[
        ("lead_id", "s.lead_id"),
        ("from_status", "s.from_status"),
        ("to_status", "s.to_status"),
        ("changed_by", "s.changed_by"),
    ],
};

/// The stage changes of a company's live deals (`deals_company` finds the deals,
/// `deal_stage_changes_timeline` their changes).
pub static COMPANY_DEAL_STAGE_CHANGES: TimelineSource = TimelineSource {
    record_types: &["company"],
    from: "FROM deals d JOIN deal_stage_changes h ON h.workspace_id = d.workspace_id AND h.deal_id = d.id",
    workspace_column: "d.workspace_id",
    record_id_column: "d.company_id",
    condition: " AND d.archived_at IS NULL",
    ..STAGE_CHANGES
};

/// The stage changes of the live deals a contact takes part in (`deal_contacts_contact`
/// finds the deals).
pub static CONTACT_DEAL_STAGE_CHANGES: TimelineSource = TimelineSource {
    record_types: &["contact"],
    from: "FROM deal_contacts dc JOIN deals d ON d.workspace_id = dc.workspace_id AND d.id = dc.deal_id \
           JOIN deal_stage_changes h ON h.workspace_id = d.workspace_id AND h.deal_id = d.id",
    workspace_column: "dc.workspace_id",
    record_id_column: "dc.contact_id",
    condition: " AND d.archived_at IS NULL",
    ..STAGE_CHANGES
};

/// The status changes of the lead a contact was converted from (`leads_converted_contact`
/// finds it), so a contact's history starts where the lead's did.
pub static CONTACT_LEAD_STATUS_CHANGES: TimelineSource = TimelineSource {
    record_types: &["contact"],
    from: "FROM leads l JOIN lead_status_changes s ON s.workspace_id = l.workspace_id AND s.lead_id = l.id",
    workspace_column: "l.workspace_id",
    record_id_column: "l.converted_contact_id",
    ..LEAD_STATUS_CHANGES
};

pub static SOURCES: &[&TimelineSource] = &[
    &ACTIVITIES,
    &LIFECYCLE_CHANGES,
    &STAGE_CHANGES,
    &LEAD_STATUS_CHANGES,
    &COMPANY_DEAL_STAGE_CHANGES,
    &CONTACT_DEAL_STAGE_CHANGES,
    &CONTACT_LEAD_STATUS_CHANGES,
];

/// The record types that have a timeline.
pub static RECORD_TYPES: &[&str] = &["contact", "company", "deal", "lead"];

/// Where a page starts: strictly after this item in (at, kind, id) descending order.
#[derive(Debug, Clone)]
pub struct TimelineKey {
    pub at: NaiveDateTime,
    pub kind: String,
    pub id: String,
}

/// One item: its payload is the source's fields as a JSON object (text).
#[derive(Debug, Clone, QueryableByName)]
pub struct TimelineRow {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Timestamp)]
    pub at: NaiveDateTime,
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub payload: String,
}

fn json_object(dialect: Dialect, fields: &[(&str, &str)]) -> String {
    let args: Vec<String> = fields.iter().map(|(n, c)| format!("'{n}', {c}")).collect();
    match dialect {
        Dialect::Postgres => format!("CAST(json_build_object({}) AS TEXT)", args.join(", ")),
        Dialect::Sqlite => format!("json_object({})", args.join(", ")),
    }
}

fn branch(
    b: &mut SqlBuf,
    s: &TimelineSource,
    ws: WorkspaceId,
    record_type: &str,
    record_id: &str,
    after: Option<&TimelineKey>,
    limit: i64,
) {
    b.push(&format!(
        "SELECT * FROM (SELECT CAST('{kind}' AS TEXT) AS kind, {at} AS at, {id} AS id, {payload} AS payload {from} WHERE {ws} = ",
        kind = s.kind,
        at = s.at,
        id = s.id,
        payload = json_object(b.dialect, s.payload),
        from = s.from,
        ws = s.workspace_column,
    ));
    b.bind(Bind::Text(ws.as_string()));
    if let Some(rt) = s.record_type_column {
        b.push(&format!(" AND {rt} = "));
        b.bind(Bind::Text(record_type.to_string()));
    }
    b.push(&format!(" AND {} = ", s.record_id_column));
    b.bind(Bind::Text(record_id.to_string()));
    b.push(s.condition);
    if let Some(k) = after {
        // Within one source the kind is fixed, so the (at, kind, id) keyset becomes a bound
        // on (at, id) that the source's index answers.
        match s.kind.cmp(k.kind.as_str()) {
            std::cmp::Ordering::Less => {
                b.push(&format!(" AND {} <= ", s.at));
                b.bind(Bind::Ts(k.at));
            }
            std::cmp::Ordering::Greater => {
                b.push(&format!(" AND {} < ", s.at));
                b.bind(Bind::Ts(k.at));
            }
            std::cmp::Ordering::Equal => {
                b.push(&format!(" AND ({}, {}) < (", s.at, s.id));
                b.bind(Bind::Ts(k.at));
                b.push(", ");
                b.bind(Bind::Text(k.id.clone()));
                b.push(")");
            }
        }
    }
    b.push(&format!(" ORDER BY {} DESC, {} DESC LIMIT ", s.at, s.id));
    b.bind(Bind::Int(limit));
    b.push(&format!(") AS src_{}", s.kind));
}

/// One page of a record's timeline, newest first: up to `limit` items after `after`,
/// leaving out the item kinds in `hidden` (those the caller may not read).
pub fn page(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    record_type: &str,
    record_id: &str,
    after: Option<&TimelineKey>,
    limit: i64,
    hidden: &[&str],
) -> RepoResult<Vec<TimelineRow>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT kind, at, id, payload FROM (");
    let sources = SOURCES
        .iter()
        .filter(|s| s.record_types.is_empty() || s.record_types.contains(&record_type))
        .filter(|s| !hidden.contains(&s.kind))
        .collect::<Vec<_>>();
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    for (i, s) in sources.into_iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        branch(&mut b, s, ws, record_type, record_id, after, limit);
    }
    b.push(") AS items ORDER BY at DESC, kind DESC, id DESC LIMIT ");
    b.bind(Bind::Int(limit));
    // A few forms only (record type × cursor kind): kept prepared.
    Ok(b.load_prepared(conn)?)
}
