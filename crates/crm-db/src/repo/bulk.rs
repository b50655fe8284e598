//! Bulk writes for large loads (seeding, migrations from another system): many rows per
//! statement, each call in one write transaction. A contact gets its first lifecycle-history
//! row exactly as [`super::contacts::insert_contact`] writes it. The seeding inserts leave
//! uniqueness to the unique indexes (a duplicate e-mail or external id fails the whole
//! call); so do the batch writes ([`write_contacts`], [`write_companies`]), which check
//! only that no two of their own rows share a value and answer a violation with Conflict.

use crate::conn::{write_tx, DbConnection, Dialect};
use crate::error::RepoResult;
use crate::models::{
    ActivityLinkRow, ActivityRow, CompanyChanges, CompanyRow, ContactChanges, ContactCompanyRow,
    ContactRow, DealRow, LifecycleChangeRow, QuoteLineRow, QuoteRow, StageChangeRow,
};
use crate::query::{Bind, SqlBuf};
use crate::schema::{
    activities, activity_links, companies, contact_companies, contact_lifecycle_changes, contacts,
    deal_stage_changes, deals, quote_lines, quotes,
};
use chrono::NaiveDateTime;
use crm_domain::WorkspaceId;
use diesel::prelude::*;

/// Rows per `INSERT`: the widest table (contacts, 31 columns) stays under SQLite's limit of
/// 32 766 bound parameters and PostgreSQL's 65 535.
pub const ROWS_PER_STATEMENT: usize = 1000;

/// One multi-row `INSERT` per chunk, on the connection's own backend (diesel batches
/// inserts per backend, not through the multi-backend connection).
macro_rules! insert_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {{
        use $crate::conn::DbConnection as Conn;
        let mut written = 0usize;
        for chunk in $rows.chunks($crate::repo::bulk::ROWS_PER_STATEMENT) {
            written += match &mut *$conn {
                Conn::Pg(c) => diesel::insert_into($table).values(chunk).execute(c)?,
                Conn::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c)?,
            };
        }
        written
    }};
}
pub(crate) use insert_chunks;

pub fn insert_companies(conn: &mut DbConnection, rows: &[CompanyRow]) -> RepoResult<usize> {
    write_tx(conn, |c| Ok(insert_chunks!(c, companies::table, rows)))
}

/// Inserts contacts and, for each, the lifecycle-history row of its initial stage.
pub fn insert_contacts(
    conn: &mut DbConnection,
    rows: &[ContactRow],
    actor: Option<&str>,
) -> RepoResult<usize> {
    let history: Vec<LifecycleChangeRow> = rows
        .iter()
        .map(|r| LifecycleChangeRow {
            workspace_id: r.workspace_id.clone(),
            id: crm_domain::new_id().to_string(),
            contact_id: r.id.clone(),
            from_stage: None,
            to_stage: r.lifecycle_stage.clone(),
            changed_at: r.lifecycle_stage_changed_at,
            changed_by: actor.map(String::from),
        })
        .collect();
    write_tx(conn, |c| {
        let n = insert_chunks!(c, contacts::table, rows);
        insert_chunks!(c, contact_lifecycle_changes::table, &history);
        Ok(n)
    })
}

/// Inserts contact–company links; the caller keeps at most one primary link per contact.
pub fn insert_links(conn: &mut DbConnection, rows: &[ContactCompanyRow]) -> RepoResult<usize> {
    write_tx(conn, |c| {
        Ok(insert_chunks!(c, contact_companies::table, rows))
    })
}

/// Inserts deals as they are (their stage consequences, such as `closed_at`, already set)
/// with the stage changes that brought them there.
pub fn insert_deals(
    conn: &mut DbConnection,
    rows: &[DealRow],
    history: &[StageChangeRow],
) -> RepoResult<usize> {
    write_tx(conn, |c| {
        let n = insert_chunks!(c, deals::table, rows);
        insert_chunks!(c, deal_stage_changes::table, history);
        Ok(n)
    })
}

/// Inserts activities and their links to records; `links` must match each activity's
/// `links` column, as [`super::activities`] keeps them.
pub fn insert_activities(
    conn: &mut DbConnection,
    rows: &[ActivityRow],
    links: &[ActivityLinkRow],
) -> RepoResult<usize> {
    write_tx(conn, |c| {
        let n = insert_chunks!(c, activities::table, rows);
        insert_chunks!(c, activity_links::table, links);
        Ok(n)
    })
}

/// Inserts quotes of one workspace with their lines, numbered in the given order from the
/// workspace's quote counter, which moves on by their count (their `number` is set here).
pub fn insert_quotes(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    rows: &mut [QuoteRow],
    lines: &[QuoteLineRow],
) -> RepoResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    write_tx(conn, |c| {
        let n = rows.len() as i64;
        let last = super::records::reserve_in_counter(c, "quote_counters", "last_number", ws, n)?;
        for (number, row) in (last - n + 1..).zip(rows.iter_mut()) {
            row.number = number;
        }
        let written = insert_chunks!(c, quotes::table, &*rows);
        insert_chunks!(c, quote_lines::table, lines);
        Ok(written)
    })
}

/// The rows of `table` with these ids, in id order; on PostgreSQL locked (`FOR UPDATE`)
/// until the caller's transaction ends, so that what is read is what gets overwritten
/// (SQLite's write transaction already holds the database).
pub fn lock_rows<T>(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<Vec<T>>
where
    T: QueryableByName<crate::conn::MultiBackend> + 'static,
{
    read_rows(conn, table, ws, ids, true)
}

/// The rows of `table` with these ids, in id order, not locked.
pub fn rows_by_id<T>(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<Vec<T>>
where
    T: QueryableByName<crate::conn::MultiBackend> + 'static,
{
    read_rows(conn, table, ws, ids, false)
}

fn read_rows<T>(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    ids: &[String],
    lock: bool,
) -> RepoResult<Vec<T>>
where
    T: QueryableByName<crate::conn::MultiBackend> + 'static,
{
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(&format!("SELECT * FROM {table} WHERE workspace_id = "));
        b.bind(Bind::Text(ws.as_string()));
        b.push(" AND id IN (");
        b.bind_list(chunk.iter().map(|id| Bind::Text(id.clone())));
        b.push(") ORDER BY id");
        if lock && conn.dialect() == Dialect::Postgres {
            b.push(" FOR UPDATE");
        }
        out.extend(b.load::<T>(conn)?);
    }
    Ok(out)
}

/// A column value as a bound parameter of hand-written SQL.
trait ToBind {
    fn to_bind(&self) -> Bind;
}

impl ToBind for String {
    fn to_bind(&self) -> Bind {
        Bind::Text(self.clone())
    }
}

impl ToBind for Option<String> {
    fn to_bind(&self) -> Bind {
        Bind::OptText(self.clone())
    }
}

impl ToBind for bool {
    fn to_bind(&self) -> Bind {
        Bind::Bool(*self)
    }
}

impl ToBind for i32 {
    fn to_bind(&self) -> Bind {
        Bind::Int(i64::from(*self))
    }
}

impl ToBind for NaiveDateTime {
    fn to_bind(&self) -> Bind {
        Bind::Ts(*self)
    }
}

impl ToBind for Option<NaiveDateTime> {
    fn to_bind(&self) -> Bind {
        Bind::OptTs(*self)
    }
}

/// For a record table: `$Row::changed`, the row after a write of `$Changes` (its writable
/// columns replaced, `updated_at` and `version` moved on, the rest kept),
/// `$Row::same_values` (whether such a row would change anything), and `$update`,
/// which writes whole rows over the stored ones by (workspace_id, id) in one multi-row
/// `UPDATE … FROM` a list of values per chunk, on both backends (written by hand: diesel
/// has no multi-row update; an `INSERT … ON CONFLICT DO UPDATE` would first probe every
/// unique index for a row that is known to exist). The rows must exist (the batch has them
/// locked): one that does not fails the call.
macro_rules! record_writes {
    ($Row:ident, $Changes:ident, $table:ident, $update:ident,
     [$($col:ident),+ $(,)?], kept: [$($kept:ident),*]) => {
        impl $Row {
            pub fn changed(&self, c: $Changes, now: NaiveDateTime) -> $Row {
                $Row {
                    $($col: c.$col,)+
                    $($kept: self.$kept.clone(),)*
                    workspace_id: self.workspace_id.clone(),
                    id: self.id.clone(),
                    created_at: self.created_at,
                    updated_at: now,
                    archived_at: self.archived_at,
                    version: self.version + 1,
                }
            }

            /// Whether `next` holds this row's values in every column a write sets (its
            /// `updated_at` and `version` aside): writing it would change nothing.
            pub fn same_values(&self, next: &$Row) -> bool {
                true $(&& self.$col == next.$col)+ $(&& self.$kept == next.$kept)*
                    && self.archived_at == next.archived_at
            }
        }

        fn $update(conn: &mut DbConnection, rows: &[$Row]) -> diesel::QueryResult<()> {
            let columns = [
                "workspace_id", "id", $(stringify!($col),)+ $(stringify!($kept),)*
                "updated_at", "archived_at", "version",
            ];
            let set = columns[2..]
                .iter()
                .map(|c| format!("{c} = v.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut b = SqlBuf::new(conn.dialect());
                b.push(&format!("WITH v ({}) AS (VALUES ", columns.join(", ")));
                for (i, row) in chunk.iter().enumerate() {
                    b.push(if i == 0 { "(" } else { ", (" });
                    b.bind(row.workspace_id.to_bind());
                    b.push(", ");
                    b.bind(row.id.to_bind());
                    $(b.push(", "); b.bind(row.$col.to_bind());)+
                    $(b.push(", "); b.bind(row.$kept.to_bind());)*
                    b.push(", ");
                    b.bind(row.updated_at.to_bind());
                    b.push(", ");
                    b.bind(row.archived_at.to_bind());
                    b.push(", ");
                    b.bind(row.version.to_bind());
                    b.push(")");
                }
                b.push(&format!(
                    ") UPDATE {t} SET {set} FROM v WHERE {t}.workspace_id = v.workspace_id \
                     AND {t}.id = v.id",
                    t = stringify!($table),
                ));
                if b.execute(conn)? != chunk.len() {
                    return Err(diesel::result::Error::NotFound);
                }
            }
            Ok(())
        }
    };
}

record_writes!(ContactRow, ContactChanges, contacts, update_contacts,
    [first_name, last_name, email, additional_emails, phone, additional_phones, job_title,
     lifecycle_stage, owner_id, source, tags, address_line1, address_line2, address_city,
     address_region, address_postal_code, address_country, preferred_channel, consent_email,
     consent_sms, consent_phone, do_not_contact, external_id, custom],
    kept: [lifecycle_stage_changed_at]);

record_writes!(CompanyRow, CompanyChanges, companies, update_companies,
    [name, domain, industry, size, annual_revenue, currency, tier, region, address_line1,
     address_line2, address_city, address_region, address_postal_code, address_country,
     owner_id, tags, external_id, custom],
    kept: []);

/// A row to write: the current row (none for a new record), then the next.
pub type RowWrite<T> = (Option<T>, T);

/// Writes a batch of new and changed contacts in the caller's transaction: the unique
/// e-mails and external ids left to the unique indexes, the new rows in multi-row
/// inserts, the changed ones in multi-row updates, and a lifecycle-history row for each
/// new contact and each change of stage. A conflict fails the whole call and writes
/// nothing.
pub fn write_contacts(
    conn: &mut DbConnection,
    rows: Vec<RowWrite<ContactRow>>,
    actor: Option<&str>,
) -> RepoResult<()> {
    let claims: Vec<(&str, &'static str, &str)> = rows
        .iter()
        .flat_map(|(_, r)| {
            [("email", &r.email), ("external_id", &r.external_id)]
                .into_iter()
                .filter_map(|(column, v)| v.as_deref().map(|v| (r.id.as_str(), column, v)))
        })
        .collect();
    super::records::ensure_distinct(&claims)?;
    let history: Vec<LifecycleChangeRow> = rows
        .iter()
        .filter(|(cur, next)| {
            cur.as_ref()
                .is_none_or(|c| c.lifecycle_stage != next.lifecycle_stage)
        })
        .map(|(cur, next)| LifecycleChangeRow {
            workspace_id: next.workspace_id.clone(),
            id: crm_domain::new_id().to_string(),
            contact_id: next.id.clone(),
            from_stage: cur.as_ref().map(|c| c.lifecycle_stage.clone()),
            to_stage: next.lifecycle_stage.clone(),
            changed_at: next.lifecycle_stage_changed_at,
            changed_by: actor.map(String::from),
        })
        .collect();
    let (created, changed) = split(rows);
    let written = (|| -> diesel::QueryResult<()> {
        insert_chunks!(conn, contacts::table, &created);
        update_contacts(conn, &changed)?;
        insert_chunks!(conn, contact_lifecycle_changes::table, &history);
        Ok(())
    })();
    // A value taken by a concurrent write since the check is a conflict too.
    written.map_err(|e| super::records::on_unique_race(e, "contacts"))
}

/// Writes a batch of new and changed companies in the caller's transaction (see
/// [`write_contacts`]).
pub fn write_companies(conn: &mut DbConnection, rows: Vec<RowWrite<CompanyRow>>) -> RepoResult<()> {
    let claims: Vec<(&str, &'static str, &str)> = rows
        .iter()
        .filter_map(|(_, r)| {
            r.external_id
                .as_deref()
                .map(|v| (r.id.as_str(), "external_id", v))
        })
        .collect();
    super::records::ensure_distinct(&claims)?;
    let (created, changed) = split(rows);
    let written = (|| -> diesel::QueryResult<()> {
        insert_chunks!(conn, companies::table, &created);
        update_companies(conn, &changed)?;
        Ok(())
    })();
    written.map_err(|e| super::records::on_unique_race(e, "companies"))
}

/// The new rows and the changed ones of a write.
fn split<T>(rows: Vec<RowWrite<T>>) -> (Vec<T>, Vec<T>) {
    let (created, changed): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(cur, _)| cur.is_none());
    (
        created.into_iter().map(|(_, next)| next).collect(),
        changed.into_iter().map(|(_, next)| next).collect(),
    )
}
