//! What contacts, companies and every later record share: archive, restore, permanent
//! delete and the version check behind `If-Match`, written once over the table name.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::query::{Bind, SqlBuf};
use crm_domain::WorkspaceId;
use diesel::sql_types::{Integer, Nullable, Timestamp};
use diesel::QueryableByName;

#[derive(QueryableByName)]
struct State {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Nullable<Timestamp>)]
    archived_at: Option<chrono::NaiveDateTime>,
}

/// The current version and archive time of a record, or NotFound.
pub fn state(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    id: &str,
) -> RepoResult<(i32, Option<chrono::NaiveDateTime>)> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "SELECT version, archived_at FROM {table} WHERE workspace_id = "
    ));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id = ");
    b.bind(Bind::Text(id.to_string()));
    let rows: Vec<State> = b.load_prepared(conn)?;
    rows.into_iter()
        .next()
        .map(|s| (s.version, s.archived_at))
        .ok_or(RepoError::NotFound)
}

/// Locks a record's row until the caller's transaction ends (PostgreSQL; SQLite's write
/// transaction already holds the database), so that a read-modify-write of it is not
/// overtaken by another. A missing row locks nothing and is not an error here.
pub fn lock(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    id: &str,
) -> RepoResult<()> {
    if conn.dialect() == crate::conn::Dialect::Sqlite {
        return Ok(());
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("SELECT 1 FROM {table} WHERE workspace_id = "));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id = ");
    b.bind(Bind::Text(id.to_string()));
    b.push(" FOR UPDATE");
    b.execute_prepared(conn)?;
    Ok(())
}

/// A unique value an update sets, when it differs from the one the record holds: only a
/// changed value needs looking up (the unique indexes still refuse one another write takes
/// meanwhile).
pub fn changed<'a>(next: &'a Option<String>, held: &Option<String>) -> Option<&'a str> {
    next.as_deref().filter(|v| held.as_deref() != Some(*v))
}

/// Runs the `UPDATE … RETURNING` of one record at its `version` (kept prepared: it has one
/// form) and hands back the row it wrote; none written means another write moved the record
/// on first, and a unique value another write took meanwhile is a conflict naming it.
pub fn update_returning<'q, Q, R>(
    conn: &mut DbConnection,
    update: Q,
    table: &'static str,
    version: i32,
) -> RepoResult<R>
where
    crate::query::OneForm<Q>: diesel::query_dsl::LoadQuery<'q, DbConnection, R>,
{
    use diesel::{OptionalExtension, RunQueryDsl};
    crate::query::OneForm(update)
        .get_result(conn)
        .optional()
        .map_err(|e| on_unique_race(e, table))?
        .ok_or(RepoError::VersionMismatch {
            expected: version,
            current: version + 1,
        })
}

/// Checks `If-Match` against the current version.
pub fn check_version(current: i32, expected: Option<i32>) -> RepoResult<()> {
    match expected {
        Some(e) if e != current => Err(RepoError::VersionMismatch {
            expected: e,
            current,
        }),
        _ => Ok(()),
    }
}

/// Archives (`archive = true`) or restores a record, bumping its version. Archiving an
/// archived record, or restoring a live one, is NotFound: it is not visible in that state.
pub fn set_archived(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    id: &str,
    archive: bool,
    expected_version: Option<i32>,
) -> RepoResult<i32> {
    let (version, archived_at) = state(conn, table, ws, id)?;
    if archived_at.is_some() == archive {
        return Err(RepoError::NotFound);
    }
    check_version(version, expected_version)?;
    let now = crm_domain::values_time::now();
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("UPDATE {table} SET archived_at = "));
    if archive {
        b.bind(Bind::Ts(now));
    } else {
        b.push("NULL");
    }
    b.push(", updated_at = ");
    b.bind(Bind::Ts(now));
    b.push(", version = version + 1 WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id = ");
    b.bind(Bind::Text(id.to_string()));
    b.push(" AND version = ");
    b.bind(Bind::Int(version.into()));
    if b.execute(conn)? == 0 {
        return Err(RepoError::VersionMismatch {
            expected: version,
            current: version + 1,
        });
    }
    Ok(version + 1)
}

/// Archives the live records of `table` among `ids` (in one statement per 500 ids) as
/// [`set_archived`] does one; the caller has locked their rows. Returns how many it archived.
pub fn archive_many(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    ids: &[String],
) -> RepoResult<usize> {
    let now = crm_domain::values_time::now();
    let mut archived = 0;
    for chunk in ids.chunks(IN_CHUNK) {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(&format!("UPDATE {table} SET archived_at = "));
        b.bind(Bind::Ts(now));
        b.push(", updated_at = ");
        b.bind(Bind::Ts(now));
        b.push(", version = version + 1 WHERE workspace_id = ");
        b.bind(Bind::Text(ws.as_string()));
        b.push(" AND archived_at IS NULL AND id IN (");
        b.bind_list(chunk.iter().map(|id| Bind::Text(id.clone())));
        b.push(")");
        archived += b.execute(conn)?;
    }
    Ok(archived)
}

/// Erases a record for good (its links and history go with it through the foreign keys;
/// activities, which link to records without one, drop their links to it).
pub fn purge(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    id: &str,
    expected_version: Option<i32>,
) -> RepoResult<()> {
    let (version, _) = state(conn, table, ws, id)?;
    check_version(version, expected_version)?;
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("DELETE FROM {table} WHERE workspace_id = "));
    b.bind(Bind::Text(ws.as_string()));
    b.push(" AND id = ");
    b.bind(Bind::Text(id.to_string()));
    b.execute(conn)?;
    super::activities::unlink_record(conn, ws, table, id)
}

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Advances the workspace's row of a counter table (`workspace_id` primary key, a BIGINT
/// `column`) and returns the new value, 1 for the first. The row stays locked until the
/// caller's transaction ends (SQLite: the write transaction holds the database), so
/// values are handed out in commit order, and a rolled-back transaction uses none.
pub fn next_in_counter(
    conn: &mut DbConnection,
    table: &'static str,
    column: &'static str,
    ws: WorkspaceId,
) -> RepoResult<i64> {
    reserve_in_counter(conn, table, column, ws, 1)
}

/// Moves a per-workspace counter on by `n` (at least 1) and returns its new value: the
/// numbers `value - n + 1 ..= value` are the caller's.
pub fn reserve_in_counter(
    conn: &mut DbConnection,
    table: &'static str,
    column: &'static str,
    ws: WorkspaceId,
    n: i64,
) -> RepoResult<i64> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "INSERT INTO {table} (workspace_id, {column}) VALUES ("
    ));
    b.bind(Bind::Text(ws.as_string()));
    b.push(", ");
    b.bind(Bind::Int(n));
    b.push(&format!(
        ") ON CONFLICT (workspace_id) DO UPDATE SET {column} = {table}.{column} + "
    ));
    b.bind(Bind::Int(n));
    b.push(&format!(" RETURNING {column} AS n"));
    let rows: Vec<Counter> = b.load_prepared(conn)?;
    rows.into_iter()
        .next()
        .map(|r| r.n)
        .ok_or_else(|| diesel::result::Error::NotFound.into())
}

/// The id of the record in `table` whose `column` equals `value`, if any.
pub fn find_by(
    conn: &mut DbConnection,
    table: &'static str,
    column: &'static str,
    ws: WorkspaceId,
    value: &str,
) -> RepoResult<Option<String>> {
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("SELECT id FROM {table} WHERE workspace_id = "));
    b.bind(Bind::Text(ws.as_string()));
    b.push(&format!(" AND {column} = "));
    b.bind(Bind::Text(value.to_string()));
    let rows: Vec<IdRow> = b.load_prepared(conn)?;
    Ok(rows.into_iter().next().map(|r| r.id))
}

/// Most values bound in one `IN (…)` list (SQLite's limit on bound values is far above).
const IN_CHUNK: usize = 500;

/// The records of `table` whose `column` holds one of `values`: (value, id, archived), in
/// one query per 500 values.
pub fn find_many_by(
    conn: &mut DbConnection,
    table: &'static str,
    column: &'static str,
    ws: WorkspaceId,
    values: &[String],
) -> RepoResult<Vec<(String, String, bool)>> {
    holders(conn, values, column, &|b| {
        b.push(&format!(
            "SELECT {column} AS value, id, archived_at FROM {table} WHERE workspace_id = "
        ));
        b.bind(Bind::Text(ws.as_string()));
    })
}

/// (value, id, archived) for each of `values` that `head`'s query (a `SELECT value, id,
/// archived_at … WHERE …`) finds with `column IN (…)`, in one query per 500 values.
pub(crate) fn holders(
    conn: &mut DbConnection,
    values: &[String],
    column: &str,
    head: &dyn Fn(&mut SqlBuf),
) -> RepoResult<Vec<(String, String, bool)>> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = Nullable<Timestamp>)]
        archived_at: Option<chrono::NaiveDateTime>,
    }
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(IN_CHUNK) {
        let mut b = SqlBuf::new(conn.dialect());
        head(&mut b);
        b.push(&format!(" AND {column} IN ("));
        b.bind_list(chunk.iter().map(|v| Bind::Text(v.clone())));
        b.push(")");
        let rows: Vec<Found> = b.load(conn)?;
        out.extend(
            rows.into_iter()
                .map(|r| (r.value, r.id, r.archived_at.is_some())),
        );
    }
    Ok(out)
}

/// Fails with Conflict when one of `unique` (column, value) pairs is held by another record.
pub fn ensure_unique(
    conn: &mut DbConnection,
    table: &'static str,
    ws: WorkspaceId,
    self_id: &str,
    unique: &[(&'static str, Option<&str>)],
) -> RepoResult<()> {
    for (column, value) in unique {
        let Some(value) = value else { continue };
        if let Some(existing) = find_by(conn, table, column, ws, value)? {
            if existing != self_id {
                return Err(RepoError::Conflict {
                    field: column.to_string(),
                    message: format!("another record ({existing}) already has {column} `{value}`"),
                    existing_id: Some(existing),
                });
            }
        }
    }
    Ok(())
}

/// Fails with Conflict when two of `claims` (record id, column, value) give one value of a
/// unique column to different records. What the stored records hold is left to the unique
/// indexes, which the write itself meets ([`on_unique_race`] names the field): a batch
/// write answers a conflict by declining, and its items then run one by one.
pub fn ensure_distinct(claims: &[(&str, &'static str, &str)]) -> RepoResult<()> {
    let mut columns: Vec<(&'static str, std::collections::HashMap<&str, &str>)> = Vec::new();
    for &(id, column, value) in claims {
        let at = match columns.iter().position(|(c, _)| *c == column) {
            Some(at) => at,
            None => {
                columns.push((column, Default::default()));
                columns.len() - 1
            }
        };
        if let Some(other) = columns[at].1.insert(value, id).filter(|other| *other != id) {
            return Err(RepoError::Conflict {
                field: column.to_string(),
                message: format!(
                    "two records of this write ({other} and {id}) have {column} `{value}`"
                ),
                existing_id: None,
            });
        }
    }
    Ok(())
}

/// Maps a unique violation that slipped past `ensure_unique` (a concurrent write of the same
/// value) to Conflict, naming the field from the index name (`<table>_<field>`).
pub fn on_unique_race(e: diesel::result::Error, table: &'static str) -> RepoError {
    if let diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::UniqueViolation,
        info,
    ) = &e
    {
        let field = info
            .constraint_name()
            .and_then(|c| c.strip_prefix(table))
            .map(|f| f.trim_start_matches('_').to_string())
            .unwrap_or_else(|| "id".to_string());
        return RepoError::Conflict {
            message: format!("`{field}` is already taken"),
            field,
            existing_id: None,
        };
    }
    RepoError::Db(e)
}
