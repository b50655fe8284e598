//! Merging one record into another: what points at the merged-away record is repointed at
//! the survivor (plain reference columns, role links, activity links), and the merged-away
//! id is remembered (`record_merges`) so that reads of it can name the survivor. The
//! duplicate scans read the few columns duplicates are found by, a page at a time.

use crate::conn::DbConnection;
use crate::error::RepoResult;
use crate::query::{Bind, SqlBuf};
use crate::repo::links::RoleLinks;
use crm_domain::WorkspaceId;
use diesel::sql_types::{Nullable, Text};
use diesel::QueryableByName;

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

fn where_ws(b: &mut SqlBuf, ws: WorkspaceId) {
    b.push(" WHERE workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
}

fn eq(b: &mut SqlBuf, column: &str, value: &str) {
    b.push(&format!(" AND {column} = "));
    b.bind(Bind::Text(value.to_string()));
}

/// The `id`s of the rows of `table` whose `column` is `value`, in id order.
pub fn referencing(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    table: &'static str,
    column: &'static str,
    value: &str,
) -> RepoResult<Vec<String>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("SELECT id FROM {table}"));
    where_ws(&mut b, ws);
    eq(&mut b, column, value);
    b.push(" ORDER BY id");
    Ok(b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}

/// Repoints `table.column` from `from` to `to`.
pub fn repoint(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    table: &'static str,
    column: &'static str,
    from: &str,
    to: &str,
) -> RepoResult<()> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("UPDATE {table} SET {column} = "));
    b.bind(Bind::Text(to.to_string()));
    where_ws(&mut b, ws);
    eq(&mut b, column, from);
    b.execute(conn)?;
    Ok(())
}

/// The records on the far side of `from`'s links in a role-link table (`side` is the
/// column naming `from`: the table's owner or its other column).
pub fn linked_to(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    t: &RoleLinks,
    side: &'static str,
    id: &str,
) -> RepoResult<Vec<String>> {
    let far = if side == t.owner { t.other } else { t.owner };
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("SELECT {far} AS id FROM {}", t.table));
    where_ws(&mut b, ws);
    eq(&mut b, side, id);
    b.push(&format!(" ORDER BY {far}"));
    Ok(b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}

/// Moves `from`'s links in a role-link table to `to`, where `side` is the column naming
/// them. A link `to` already has is kept and `from`'s copy dropped (its primary flag, if
/// set, passing to `to`'s copy); the others are repointed. When `side` is the owner,
/// `to` keeps its own primary link if it has one, so it still has at most one.
pub fn move_links(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    t: &RoleLinks,
    side: &'static str,
    from: &str,
    to: &str,
) -> RepoResult<()> {
    let far = if side == t.owner { t.other } else { t.owner };
    let table = t.table;
    if side == t.owner {
        // The survivor's primary link stands; the merged-away one's stops being primary.
        let mut b = SqlBuf::new(conn.dialect());
        b.push(&format!("UPDATE {table} SET is_primary = "));
        b.bind(Bind::Bool(false));
        where_ws(&mut b, ws);
        eq(&mut b, side, from);
        b.push(&format!(
            " AND EXISTS (SELECT 1 FROM {table} x WHERE x.workspace_id = {table}.workspace_id AND x.{side} = "
        ));
        b.bind(Bind::Text(to.to_string()));
        b.push(" AND x.is_primary = ");
        b.bind(Bind::Bool(true));
        b.push(")");
        b.execute(conn)?;
    }
    // Where both are linked, a primary link of the merged-away record passes to the survivor's.
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("UPDATE {table} SET is_primary = "));
    b.bind(Bind::Bool(true));
    where_ws(&mut b, ws);
    eq(&mut b, side, to);
    b.push(&format!(" AND {far} IN (SELECT {far} FROM {table}"));
    where_ws(&mut b, ws);
    eq(&mut b, side, from);
    b.push(" AND is_primary = ");
    b.bind(Bind::Bool(true));
    b.push(")");
    b.execute(conn)?;
    // The links only the merged-away record has move over.
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("UPDATE {table} SET {side} = "));
    b.bind(Bind::Text(to.to_string()));
    where_ws(&mut b, ws);
    eq(&mut b, side, from);
    b.push(&format!(
        " AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.workspace_id = {table}.workspace_id AND x.{far} = {table}.{far} AND x.{side} = "
    ));
    b.bind(Bind::Text(to.to_string()));
    b.push(")");
    b.execute(conn)?;
    // What is left duplicates a link the survivor has.
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("DELETE FROM {table}"));
    where_ws(&mut b, ws);
    eq(&mut b, side, from);
    b.execute(conn)?;
    Ok(())
}

/// Remembers that `merged_id` was merged into `survivor_id`, and the match values (column,
/// value) it held that the survivor does not; ids and values merged into `merged_id` before
/// now point at `survivor_id` too.
pub fn remember(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &'static str,
    merged_id: &str,
    survivor_id: &str,
    by: &str,
    keys: &[(&str, &str)],
) -> RepoResult<()> {
    for table in ["record_merges", "record_merge_keys"] {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(&format!("UPDATE {table} SET survivor_id = "));
        b.bind(Bind::Text(survivor_id.to_string()));
        where_ws(&mut b, ws);
        eq(&mut b, "object_type", object);
        eq(&mut b, "survivor_id", merged_id);
        b.execute(conn)?;
    }
    for (column, value) in keys {
        let mut b = SqlBuf::new(conn.dialect());
        b.push("INSERT INTO record_merge_keys (workspace_id, object_type, match_column, value, survivor_id) VALUES (");
        b.bind_list(
            [&ws.as_string(), object, column, value, survivor_id]
                .into_iter()
                .map(|v| Bind::Text(v.to_string())),
        );
        b.push(") ON CONFLICT (workspace_id, object_type, match_column, value) DO UPDATE SET survivor_id = excluded.survivor_id");
        b.execute(conn)?;
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push("INSERT INTO record_merges (workspace_id, object_type, merged_id, survivor_id, merged_at, merged_by) VALUES (");
    b.bind_list(
        [&ws.as_string(), object, merged_id, survivor_id]
            .into_iter()
            .map(|v| Bind::Text(v.to_string())),
    );
    b.push(", ");
    b.bind(Bind::Ts(crm_domain::values_time::now()));
    b.push(", ");
    b.bind(Bind::Text(by.to_string()));
    b.push(")");
    b.execute(conn)?;
    Ok(())
}

/// The live or archived records of `table` that absorbed records holding one of `values` in
/// `column` (see [`remember`]): (value, survivor id, archived), like
/// [`super::records::find_many_by`].
pub fn aliases(
    conn: &mut DbConnection,
    table: &'static str,
    object: &'static str,
    column: &'static str,
    ws: WorkspaceId,
    values: &[String],
) -> RepoResult<Vec<(String, String, bool)>> {
    super::records::holders(conn, values, "k.value", &|b| {
        b.push(&format!(
            "SELECT k.value AS value, t.id AS id, t.archived_at AS archived_at \
             FROM record_merge_keys k JOIN {table} t \
             ON t.workspace_id = k.workspace_id AND t.id = k.survivor_id \
             WHERE k.workspace_id = "
        ));
        b.bind(Bind::Text(ws.as_string()));
        b.push(" AND k.object_type = ");
        b.bind(Bind::Text(object.to_string()));
        b.push(" AND k.match_column = ");
        b.bind(Bind::Text(column.to_string()));
    })
}

/// The records of `objects` merged into `survivor`, directly or through records merged
/// into it later (`record_merges_survivor` answers).
pub fn merged_into(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    objects: &[&str],
    survivor: &str,
) -> RepoResult<Vec<String>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT merged_id AS id FROM record_merges");
    where_ws(&mut b, ws);
    b.push(" AND object_type IN (");
    b.bind_list(objects.iter().map(|o| Bind::Text(o.to_string())));
    b.push(")");
    eq(&mut b, "survivor_id", survivor);
    Ok(b.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}

/// The record `id` was merged into, if it was.
pub fn survivor(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    object: &'static str,
    id: &str,
) -> RepoResult<Option<String>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT survivor_id AS id FROM record_merges");
    where_ws(&mut b, ws);
    eq(&mut b, "object_type", object);
    eq(&mut b, "merged_id", id);
    Ok(b.load::<IdRow>(conn)?.into_iter().next().map(|r| r.id))
}

/// What contact duplicates are found by.
#[derive(Debug, QueryableByName)]
pub struct ContactSignals {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    /// A JSON array.
    #[diesel(sql_type = Text)]
    pub additional_emails: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    /// A JSON array.
    #[diesel(sql_type = Text)]
    pub additional_phones: String,
    /// The company the contact's primary link names.
    #[diesel(sql_type = Nullable<Text>)]
    pub company_id: Option<String>,
}

/// What company duplicates are found by.
#[derive(Debug, QueryableByName)]
pub struct CompanySignals {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub domain: Option<String>,
}

fn page_after(b: &mut SqlBuf, alias: &str, after: Option<&str>, limit: i64) {
    b.push(&format!(" AND {alias}.archived_at IS NULL"));
    if let Some(after) = after {
        b.push(&format!(" AND {alias}.id > "));
        b.bind(Bind::Text(after.to_string()));
    }
    b.push(&format!(" ORDER BY {alias}.id LIMIT "));
    b.bind(Bind::Int(limit));
}

#[derive(QueryableByName)]
struct PrimaryLink {
    #[diesel(sql_type = Text)]
    contact_id: String,
    #[diesel(sql_type = Text)]
    company_id: String,
}

/// Live contacts after `after` in id order, at most `limit`, with their primary company
/// (read by a second range query over the same ids: cheaper than a lookup per contact).
pub fn contact_signals(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<ContactSignals>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(
        "SELECT c.id, c.first_name, c.last_name, c.email, c.additional_emails, c.phone, \
         c.additional_phones, NULL AS company_id FROM contacts c WHERE c.workspace_id = ",
    );
    b.bind(Bind::Text(ws.as_string()));
    page_after(&mut b, "c", after, limit);
    let mut rows: Vec<ContactSignals> = b.load(conn)?;
    let Some(last) = rows.last().map(|r| r.id.clone()) else {
        return Ok(rows);
    };
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT contact_id, company_id FROM contact_companies");
    where_ws(&mut b, ws);
    if let Some(after) = after {
        b.push(" AND contact_id > ");
        b.bind(Bind::Text(after.to_string()));
    }
    b.push(" AND contact_id <= ");
    b.bind(Bind::Text(last));
    b.push(" AND is_primary = ");
    b.bind(Bind::Bool(true));
    b.push(" ORDER BY contact_id, company_id");
    let links: Vec<PrimaryLink> = b.load(conn)?;
    let mut links = links.into_iter().peekable();
    for r in &mut rows {
        while links.next_if(|l| l.contact_id < r.id).is_some() {}
        if let Some(l) = links.next_if(|l| l.contact_id == r.id) {
            r.company_id = Some(l.company_id);
        }
    }
    Ok(rows)
}

/// Live companies after `after` in id order, at most `limit`.
pub fn company_signals(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<CompanySignals>> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push("SELECT c.id, c.name, c.domain FROM companies c WHERE c.workspace_id = ");
    b.bind(Bind::Text(ws.as_string()));
    page_after(&mut b, "c", after, limit);
    Ok(b.load(conn)?)
}
