//! Bulk writes for large loads (seeding, migrations from another system): many rows per
//! statement, each call in one write transaction. A contact gets its first lifecycle-history
//! row exactly as [`super::contacts::insert_contact`] writes it. Uniqueness is left to the
//! unique indexes: a duplicate e-mail or external id fails the whole call.

use crate::conn::{write_tx, DbConnection};
use crate::error::RepoResult;
use crate::models::{
    ActivityLinkRow, ActivityRow, CompanyRow, ContactCompanyRow, ContactRow, DealRow,
    LifecycleChangeRow,
};
use crate::schema::{
    activities, activity_links, companies, contact_companies, contact_lifecycle_changes, contacts,
    deals,
};
use diesel::prelude::*;

/// Rows per `INSERT`: the widest table (contacts, 31 columns) stays under SQLite's limit of
/// 32 766 bound parameters and PostgreSQL's 65 535.
pub const ROWS_PER_STATEMENT: usize = 1000;

/// One multi-row `INSERT` per chunk, on the connection's own backend (diesel batches
/// inserts per backend, not through the multi-backend connection).
macro_rules! insert_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut written = 0usize;
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            written += match &mut *$conn {
                DbConnection::Pg(c) => diesel::insert_into($table).values(chunk).execute(c)?,
                DbConnection::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c)?,
            };
        }
        written
    }};
}

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

/// Inserts deals as they are (their stage consequences, such as `closed_at`, already set).
pub fn insert_deals(conn: &mut DbConnection, rows: &[DealRow]) -> RepoResult<usize> {
    write_tx(conn, |c| Ok(insert_chunks!(c, deals::table, rows)))
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
