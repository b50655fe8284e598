//! The one list/search mechanism every resource plugs into: a checked filter, free text,
//! sort keys and a keyset cursor become one parameterised SQL statement for the connection's
//! dialect. Field names never reach SQL unless they were resolved through the resource's
//! catalogue (or are validated custom-field identifiers).

use crate::conn::MultiBackend;
use crate::conn::{DbConnection, Dialect};
use chrono::{NaiveDate, NaiveDateTime};
use crm_domain::filter::{FieldKind, Op, Scalar, Typed};
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Date, Double, Text, Timestamp};
use diesel::{QueryableByName, RunQueryDsl};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ts(NaiveDateTime),
    Date(NaiveDate),
    /// A text or timestamp value that may be NULL.
    OptText(Option<String>),
    OptTs(Option<NaiveDateTime>),
}

/// Accumulates SQL text and its parameters, writing placeholders in the dialect's syntax.
pub struct SqlBuf {
    pub dialect: Dialect,
    pub sql: String,
    pub binds: Vec<Bind>,
    /// Where each bind's placeholder starts in `sql`, and where it ends.
    marks: Vec<(usize, usize)>,
}

impl SqlBuf {
    pub fn new(dialect: Dialect) -> Self {
        SqlBuf {
            dialect,
            sql: String::with_capacity(512),
            binds: Vec::new(),
            marks: Vec::new(),
        }
    }
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    /// Binds each value, separated by commas (the inside of an `IN (…)` or `VALUES (…)`).
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(v);
        }
        self
    }
    pub fn bind(&mut self, b: Bind) -> &mut Self {
        self.binds.push(b);
        let start = self.sql.len();
        match self.dialect {
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.len().to_string());
            }
            Dialect::Sqlite => self.sql.push('?'),
        }
        self.marks.push((start, self.sql.len()));
        self
    }

    fn query<'a>(&self) -> BoxedSqlQuery<'a, crate::conn::MultiBackend, SqlQuery> {
        let mut q = diesel::sql_query(self.sql.clone()).into_boxed::<crate::conn::MultiBackend>();
        for b in &self.binds {
            q = match b.clone() {
                Bind::Text(v) => q.bind::<Text, _>(v),
                Bind::Int(v) => q.bind::<BigInt, _>(v),
                Bind::Float(v) => q.bind::<Double, _>(v),
                Bind::Bool(v) => q.bind::<Bool, _>(v),
                Bind::Ts(v) => q.bind::<Timestamp, _>(v),
                Bind::Date(v) => q.bind::<Date, _>(v),
                Bind::OptText(v) => q.bind::<diesel::sql_types::Nullable<Text>, _>(v),
                Bind::OptTs(v) => q.bind::<diesel::sql_types::Nullable<Timestamp>, _>(v),
            };
        }
        q
    }

    pub fn load<R>(&self, conn: &mut DbConnection) -> diesel::QueryResult<Vec<R>>
    where
        R: QueryableByName<crate::conn::MultiBackend> + 'static,
    {
        self.query().load::<R>(conn)
    }

    /// [`SqlBuf::load`] for a statement of a fixed shape that runs often (a timeline page):
    /// the connection prepares it once and reuses it, which spares the database parsing
    /// and, on PostgreSQL, planning it again once a generic plan proves as good. Only for
    /// SQL whose text takes a bounded number of forms: each form stays prepared on every
    /// pooled connection.
    pub fn load_prepared<R>(&self, conn: &mut DbConnection) -> diesel::QueryResult<Vec<R>>
    where
        R: QueryableByName<crate::conn::MultiBackend> + 'static,
    {
        Prepared(self).load::<R>(conn)
    }

    pub fn execute(&self, conn: &mut DbConnection) -> diesel::QueryResult<usize> {
        self.query().execute(conn)
    }

    /// [`SqlBuf::execute`] kept prepared, as [`SqlBuf::load_prepared`] is.
    pub fn execute_prepared(&self, conn: &mut DbConnection) -> diesel::QueryResult<usize> {
        Prepared(self).execute(conn)
    }
}

/// A [`SqlBuf`] as a statement the connection may keep prepared, keyed by its text and bind
/// types. diesel's raw SQL query marks itself never safe to cache (its text may vary
/// without bound), and a wrapper that only says otherwise is not asked when diesel runs the
/// statement by reference, as `execute` does; so this fragment writes the SQL and its binds
/// itself, and never marks itself unsafe.
struct Prepared<'a>(&'a SqlBuf);

impl QueryFragment<MultiBackend> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, MultiBackend>) -> diesel::QueryResult<()> {
        use diesel::sql_types::Nullable;
        let buf = self.0;
        let mut from = 0;
        for (b, &(start, end)) in buf.binds.iter().zip(&buf.marks) {
            pass.push_sql(&buf.sql[from..start]);
            // The query builder writes the placeholder in the connection's own syntax.
            match b {
                Bind::Text(v) => pass.push_bind_param::<Text, _>(v)?,
                Bind::Int(v) => pass.push_bind_param::<BigInt, _>(v)?,
                Bind::Float(v) => pass.push_bind_param::<Double, _>(v)?,
                Bind::Bool(v) => pass.push_bind_param::<Bool, _>(v)?,
                Bind::Ts(v) => pass.push_bind_param::<Timestamp, _>(v)?,
                Bind::Date(v) => pass.push_bind_param::<Date, _>(v)?,
                Bind::OptText(v) => pass.push_bind_param::<Nullable<Text>, _>(v)?,
                Bind::OptTs(v) => pass.push_bind_param::<Nullable<Timestamp>, _>(v)?,
            }
            from = end;
        }
        pass.push_sql(&buf.sql[from..]);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<C> RunQueryDsl<C> for Prepared<'_> {}

/// A statement diesel builds (an `UPDATE … RETURNING` of a fixed changeset, say) that
/// takes one form only, kept prepared when it is loaded: diesel marks every `UPDATE` never
/// safe to cache, since its column list may vary. Only for loading (`get_result`,
/// `load`), where diesel asks this wrapper; `execute` would ask the statement itself.
pub struct OneForm<Q>(pub Q);

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for OneForm<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }
    fn is_safe_to_cache_prepared(&self, _: &MultiBackend) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for OneForm<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for OneForm<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> RunQueryDsl<C> for OneForm<Q> {}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What a filterable/sortable thing of a resource is in SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    /// A column of the record's own table; `sortable` columns may be used in `sort`.
    Column {
        column: &'static str,
        kind: FieldKind,
    },
    /// A value of the `custom` JSON column.
    Custom { name: String, kind: FieldKind },
    /// A field of a related record, matched with any-of semantics.
    Related {
        relation: &'static Relation,
        inner: Box<FieldRef>,
    },
}

/// A many-to-many relation reached through a link table, e.g. contact → companies.
#[derive(Debug, PartialEq)]
pub struct Relation {
    pub name: &'static str,
    pub link_table: &'static str,
    pub link_self: &'static str,
    pub link_other: &'static str,
    pub other_table: &'static str,
}

/// A column as the API names it.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub api_name: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
    pub sortable: bool,
}

/// A resource's catalogue of columns plus how free text searches it.
pub struct Resource {
    pub table: &'static str,
    pub columns: Vec<ColumnSpec>,
    /// Columns matched by `q` (case-insensitive substring).
    pub text_columns: &'static [&'static str],
    /// Related tables' columns matched by `q`.
    pub text_relations: &'static [(&'static Relation, &'static [&'static str])],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub column: &'static str,
    pub api_name: &'static str,
    pub kind: FieldKind,
    pub direction: Direction,
}

/// Columns every record table declares `NOT NULL`. Sorting on them needs no `NULLS LAST`
/// and their keyset no `IS NULL` branch, so the `(workspace_id, column, id)` index serves
/// both directions (PostgreSQL scans it backwards for `DESC`, which puts nulls first).
const NOT_NULL_COLUMNS: &[&str] = &["created_at", "updated_at", "version"];

impl SortKey {
    fn nullable(&self) -> bool {
        !NOT_NULL_COLUMNS.contains(&self.column)
    }
}

/// The position after which the next page starts: the last row's sort values and id.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset {
    pub values: Vec<Option<Bind>>,
    pub id: String,
}

/// Everything a list or search asks for.
pub struct ListQuery {
    pub filter: Option<Typed<FieldRef>>,
    pub q: Option<String>,
    pub sort: Vec<SortKey>,
    pub after: Option<Keyset>,
    pub limit: i64,
    /// Archived records instead of live ones.
    pub archived: bool,
    /// Live and archived records alike (overrides `archived`).
    pub include_archived: bool,
}

/// A record's text columns as one string, words never spanning two columns: the expression
/// PostgreSQL's trigram indexes are built on (keep it identical to the migration's).
fn text_document(alias: &str, columns: &[&str]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce({alias}.{c}, '')"))
        .collect();
    format!("({})", parts.join(" || ' ' || "))
}

/// A word as one FTS5 string, so that its characters are never read as query syntax.
fn fts_phrase(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\"\""))
}

fn like_pattern(s: &str, prefix_only: bool) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    if prefix_only {
        format!("{escaped}%")
    } else {
        format!("%{escaped}%")
    }
}

fn scalar_bind(s: &Scalar) -> Bind {
    match s {
        Scalar::Text(t) | Scalar::Decimal(t) => Bind::Text(t.clone()),
        Scalar::Int(i) => Bind::Int(*i),
        Scalar::Float(f) => Bind::Float(*f),
        Scalar::Bool(b) => Bind::Bool(*b),
        Scalar::Timestamp(t) => Bind::Ts(*t),
        Scalar::Date(d) => Bind::Text(d.format("%Y-%m-%d").to_string()),
    }
}

impl SqlBuf {
    fn like_op(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => " ILIKE ",
            Dialect::Sqlite => " LIKE ",
        }
    }

    /// Writes a bound value, cast where the column's storage needs it.
    fn bind_value(&mut self, kind: &FieldKind, b: Bind) {
        if *kind == FieldKind::Decimal {
            self.push("CAST(").bind(b).push(" AS NUMERIC)");
        } else {
            self.bind(b);
        }
    }

    /// The SQL expression of a scalar field on the table aliased `alias`.
    fn scalar_expr(&self, alias: &str, f: &FieldRef) -> String {
        match f {
            FieldRef::Column { column, kind } => {
                if *kind == FieldKind::Decimal {
                    format!("CAST({alias}.{column} AS NUMERIC)")
                } else {
                    format!("{alias}.{column}")
                }
            }
            FieldRef::Custom { name, kind } => match self.dialect {
                Dialect::Postgres => {
                    let base = format!("(CAST({alias}.custom AS jsonb) ->> '{name}')");
                    match kind {
                        FieldKind::Float => format!("CAST({base} AS double precision)"),
                        FieldKind::Decimal => format!("CAST({base} AS NUMERIC)"),
                        FieldKind::Bool => format!("CAST({base} AS boolean)"),
                        _ => base,
                    }
                }
                Dialect::Sqlite => {
                    let base = format!("json_extract({alias}.custom, '$.{name}')");
                    if *kind == FieldKind::Decimal {
                        format!("CAST({base} AS NUMERIC)")
                    } else {
                        base
                    }
                }
            },
            FieldRef::Related { .. } => String::new(),
        }
    }

    /// `EXISTS`-style element test over a JSON array (a list column or a multi-select).
    fn list_elements(&self, alias: &str, f: &FieldRef) -> String {
        match (self.dialect, f) {
            (Dialect::Postgres, FieldRef::Column { column, .. }) => {
                format!("SELECT 1 FROM jsonb_array_elements_text(CAST({alias}.{column} AS jsonb)) AS e(v) WHERE e.v")
            }
            (Dialect::Postgres, FieldRef::Custom { name, .. }) => format!(
                "SELECT 1 FROM jsonb_array_elements_text(COALESCE(CAST({alias}.custom AS jsonb) -> '{name}', '[]'::jsonb)) AS e(v) WHERE e.v"
            ),
            (Dialect::Sqlite, FieldRef::Column { column, .. }) => format!("SELECT 1 FROM json_each({alias}.{column}) AS e WHERE e.value"),
            (Dialect::Sqlite, FieldRef::Custom { name, .. }) => {
                format!("SELECT 1 FROM json_each({alias}.custom, '$.{name}') AS e WHERE e.value")
            }
            (_, FieldRef::Related { .. }) => String::new(),
        }
    }

    fn list_is_empty(&self, alias: &str, f: &FieldRef) -> String {
        match (self.dialect, f) {
            (Dialect::Postgres, FieldRef::Column { column, .. }) => {
                format!("COALESCE(jsonb_array_length(CAST({alias}.{column} AS jsonb)), 0) = 0")
            }
            (Dialect::Postgres, FieldRef::Custom { name, .. }) => {
                format!("COALESCE(jsonb_array_length(CAST({alias}.custom AS jsonb) -> '{name}'), 0) = 0")
            }
            (Dialect::Sqlite, FieldRef::Column { column, .. }) => {
                format!("COALESCE(json_array_length({alias}.{column}), 0) = 0")
            }
            (Dialect::Sqlite, FieldRef::Custom { name, .. }) => {
                format!("COALESCE(json_array_length({alias}.custom, '$.{name}'), 0) = 0")
            }
            (_, FieldRef::Related { .. }) => "1 = 0".to_string(),
        }
    }

    fn values_list(&mut self, kind: &FieldKind, values: &[Scalar]) {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_value(kind, scalar_bind(v));
        }
        self.push(")");
    }

    /// Writes a checked filter as a boolean SQL expression over the table aliased `alias`.
    pub fn filter(&mut self, alias: &str, node: &Typed<FieldRef>) {
        match node {
            Typed::And(items) | Typed::Or(items) => {
                if items.is_empty() {
                    self.push(if matches!(node, Typed::And(_)) {
                        "1 = 1"
                    } else {
                        "1 = 0"
                    });
                    return;
                }
                let joiner = if matches!(node, Typed::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.push("(");
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(joiner);
                    }
                    self.filter(alias, it);
                }
                self.push(")");
            }
            Typed::Not(inner) => {
                self.push("NOT (");
                self.filter(alias, inner);
                self.push(")");
            }
            Typed::IsNull {
                field: FieldRef::Related { relation, inner },
                kind,
                null,
            } => {
                self.related(
                    alias,
                    relation,
                    &Typed::IsNull {
                        field: (**inner).clone(),
                        kind: kind.clone(),
                        null: *null,
                    },
                );
            }
            Typed::Cond {
                field: FieldRef::Related { relation, inner },
                kind,
                op,
                values,
            } => {
                self.related(
                    alias,
                    relation,
                    &Typed::Cond {
                        field: (**inner).clone(),
                        kind: kind.clone(),
                        op: *op,
                        values: values.clone(),
                    },
                );
            }
            Typed::IsNull { field, kind, null } => {
                if *kind == FieldKind::TextList {
                    let e = self.list_is_empty(alias, field);
                    if *null {
                        self.push(&e);
                    } else {
                        self.push("NOT (").push(&e).push(")");
                    }
                } else {
                    let e = self.scalar_expr(alias, field);
                    self.push(&e)
                        .push(if *null { " IS NULL" } else { " IS NOT NULL" });
                }
            }
            Typed::Cond {
                field,
                kind,
                op,
                values,
            } => self.condition(alias, field, kind, *op, values),
        }
    }

    fn related(&mut self, alias: &str, rel: &Relation, inner: &Typed<FieldRef>) {
        let r = format!("{alias}_{}", rel.name);
        let l = format!("{r}_l");
        self.push(&format!(
            "EXISTS (SELECT 1 FROM {lt} {l} JOIN {ot} {r} ON {r}.workspace_id = {l}.workspace_id AND {r}.id = {l}.{lo} \
             WHERE {l}.workspace_id = {alias}.workspace_id AND {l}.{ls} = {alias}.id AND {r}.archived_at IS NULL AND ",
            lt = rel.link_table,
            ot = rel.other_table,
            lo = rel.link_other,
            ls = rel.link_self,
        ));
        self.filter(&r, inner);
        self.push(")");
    }

    fn condition(
        &mut self,
        alias: &str,
        field: &FieldRef,
        kind: &FieldKind,
        op: Op,
        values: &[Scalar],
    ) {
        if *kind == FieldKind::TextList {
            let elems = self.list_elements(alias, field);
            match op {
                Op::Contains => {
                    self.push("EXISTS (").push(&elems).push(" = ");
                    self.bind(scalar_bind(&values[0]));
                    self.push(")");
                }
                Op::In | Op::NotIn => {
                    if op == Op::NotIn {
                        self.push("NOT ");
                    }
                    self.push("EXISTS (").push(&elems).push(" IN ");
                    self.values_list(&FieldKind::Text, values);
                    self.push(")");
                }
                _ => {
                    self.push("1 = 0");
                }
            }
            return;
        }
        let e = self.scalar_expr(alias, field);
        let cmp = |s: &mut SqlBuf, sym: &str| {
            s.push(&e).push(sym);
            s.bind_value(kind, scalar_bind(&values[0]));
        };
        match op {
            Op::Eq => cmp(self, " = "),
            Op::Lt => cmp(self, " < "),
            Op::Lte => cmp(self, " <= "),
            Op::Gt => cmp(self, " > "),
            Op::Gte => cmp(self, " >= "),
            Op::Neq => {
                self.push("(").push(&e).push(" IS NULL OR ");
                cmp(self, " <> ");
                self.push(")");
            }
            Op::In => {
                self.push(&e).push(" IN ");
                self.values_list(kind, values);
            }
            Op::NotIn => {
                self.push("(")
                    .push(&e)
                    .push(" IS NULL OR ")
                    .push(&e)
                    .push(" NOT IN ");
                self.values_list(kind, values);
                self.push(")");
            }
            Op::Contains | Op::StartsWith => {
                let text = match &values[0] {
                    Scalar::Text(t) => t.clone(),
                    other => format!("{other:?}"),
                };
                let like = self.like_op();
                self.push(&e).push(like);
                self.bind(Bind::Text(like_pattern(&text, op == Op::StartsWith)));
                self.push(" ESCAPE '\\'");
            }
            // `is_null` is checked into `Typed::IsNull` and never reaches here.
            Op::IsNull => {
                self.push("1 = 0");
            }
        }
    }

    /// Free text: every word must match one of the resource's text columns or related names
    /// (`arm` says which of the matching rows this condition takes).
    fn free_text(&mut self, alias: &str, res: &Resource, workspace: &str, q: &str, arm: TextArm) {
        let words: Vec<&str> = q.split_whitespace().take(10).collect();
        match arm {
            TextArm::Any | TextArm::Walk => {}
            TextArm::Own => {
                self.own_text(alias, res, &words);
                return;
            }
            TextArm::Related => {
                // Driven by the ids some word's related records give; the rest filters them.
                self.push(&format!("{alias}.id IN ("));
                for (wi, word) in words.iter().enumerate() {
                    if wi > 0 {
                        self.push(" UNION ALL ");
                    }
                    self.related_ids(res, workspace, &like_pattern(word, false));
                }
                self.push(") AND NOT (");
                self.own_text(alias, res, &words);
                self.push(")");
                if words.len() > 1 {
                    for word in &words {
                        self.push(" AND (");
                        self.own_text(alias, res, &[word]);
                        self.push(&format!(" OR {alias}.id IN ("));
                        self.related_ids(res, workspace, &like_pattern(word, false));
                        self.push("))");
                    }
                }
                return;
            }
        }
        for (wi, word) in words.iter().enumerate() {
            if wi > 0 {
                self.push(" AND ");
            }
            let pattern = like_pattern(word, false);
            match self.dialect {
                Dialect::Postgres => self.free_text_word_pg(alias, res, workspace, &pattern),
                // The trigram tokenizer cannot find words shorter than a trigram.
                Dialect::Sqlite if word.chars().count() >= 3 => {
                    if arm == TextArm::Walk {
                        self.push("+");
                    }
                    self.free_text_word_fts(alias, res, workspace, word)
                }
                Dialect::Sqlite => self.free_text_word_scan(alias, res, &pattern),
            }
        }
    }

    /// PostgreSQL: every word in the row's own text document, tested on the row itself, so
    /// that the planner may walk the sort order's index and stop at the page's end (a word
    /// that many rows hold) or start from the trigram index (a rare one), as it estimates.
    fn own_text(&mut self, alias: &str, res: &Resource, words: &[&str]) {
        for (wi, word) in words.iter().enumerate() {
            if wi > 0 {
                self.push(" AND ");
            }
            self.push(&text_document(alias, res.text_columns))
                .push(" ILIKE ");
            self.bind(Bind::Text(like_pattern(word, false)));
            self.push(" ESCAPE '\\'");
        }
    }

    /// One word on PostgreSQL: the ids whose text document, or whose related records'
    /// document, contains it. Each document is the expression a trigram index covers
    /// (migration `free_text_index`), so a rare word costs a few index probes, not a scan.
    fn free_text_word_pg(&mut self, alias: &str, res: &Resource, workspace: &str, pattern: &str) {
        self.push(&format!(
            "{alias}.id IN (SELECT s.id FROM {} s WHERE s.workspace_id = ",
            res.table
        ));
        self.bind(Bind::Text(workspace.to_string()));
        self.push(" AND ")
            .push(&text_document("s", res.text_columns))
            .push(" ILIKE ");
        self.bind(Bind::Text(pattern.to_string()));
        self.push(" ESCAPE '\\'");
        if !res.text_relations.is_empty() {
            self.push(" UNION ALL ");
            self.related_ids(res, workspace, pattern);
        }
        self.push(")");
    }

    /// PostgreSQL: the ids of the rows whose related records' names contain the pattern.
    fn related_ids(&mut self, res: &Resource, workspace: &str, pattern: &str) {
        for (i, (rel, cols)) in res.text_relations.iter().enumerate() {
            if i > 0 {
                self.push(" UNION ALL ");
            }
            self.push(&format!(
                "SELECT l.{ls} FROM {lt} l JOIN {ot} r ON r.workspace_id = l.workspace_id AND r.id = l.{lo} \
                 WHERE l.workspace_id = ",
                lt = rel.link_table,
                ot = rel.other_table,
                lo = rel.link_other,
                ls = rel.link_self,
            ));
            self.bind(Bind::Text(workspace.to_string()));
            self.push(" AND ")
                .push(&text_document("r", cols))
                .push(" ILIKE ");
            self.bind(Bind::Text(pattern.to_string()));
            self.push(" ESCAPE '\\'");
        }
    }

    /// One word of 3+ characters on SQLite: the rows whose FTS5 trigram table (migration
    /// `sqlite_free_text`), or whose related records' table, contains it. The word is bound
    /// as one FTS5 string, so its characters are never read as query syntax. One `rowid IN`
    /// over a UNION, so the plan starts from the FTS matches and looks rows up by rowid (an
    /// OR of two IN lists walked the whole workspace, testing each row).
    fn free_text_word_fts(&mut self, alias: &str, res: &Resource, workspace: &str, word: &str) {
        let phrase = fts_phrase(word);
        self.push(&format!(
            "{alias}.rowid IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH ",
            t = res.table
        ));
        self.bind(Bind::Text(phrase.clone()));
        for (rel, cols) in res.text_relations {
            self.push(&format!(
                " UNION SELECT s.rowid FROM {ot}_fts f JOIN {ot} r ON r.rowid = f.rowid \
                 JOIN {lt} l ON l.workspace_id = r.workspace_id AND l.{lo} = r.id \
                 JOIN {t} s ON s.workspace_id = l.workspace_id AND s.id = l.{ls} \
                 WHERE {ot}_fts MATCH ",
                t = res.table,
                lt = rel.link_table,
                ot = rel.other_table,
                lo = rel.link_other,
                ls = rel.link_self,
            ));
            // FTS5's column filter keeps the match to the related columns.
            self.bind(Bind::Text(format!("{{{}}} : {phrase}", cols.join(" "))));
            self.push(" AND r.workspace_id = ");
            self.bind(Bind::Text(workspace.to_string()));
        }
        self.push(")");
    }

    /// One word on SQLite: a substring test of each column, row by row.
    fn free_text_word_scan(&mut self, alias: &str, res: &Resource, pattern: &str) {
        let like = self.like_op();
        self.push("(");
        for (i, col) in res.text_columns.iter().enumerate() {
            if i > 0 {
                self.push(" OR ");
            }
            self.push(&format!("{alias}.{col}")).push(like);
            self.bind(Bind::Text(pattern.to_string()));
            self.push(" ESCAPE '\\'");
        }
        for (rel, cols) in res.text_relations {
            let r = format!("{alias}_q{}", rel.name);
            let l = format!("{r}_l");
            self.push(&format!(
                " OR EXISTS (SELECT 1 FROM {lt} {l} JOIN {ot} {r} ON {r}.workspace_id = {l}.workspace_id AND {r}.id = {l}.{lo} \
                 WHERE {l}.workspace_id = {alias}.workspace_id AND {l}.{ls} = {alias}.id AND (",
                lt = rel.link_table,
                ot = rel.other_table,
                lo = rel.link_other,
                ls = rel.link_self,
            ));
            for (i, col) in cols.iter().enumerate() {
                if i > 0 {
                    self.push(" OR ");
                }
                self.push(&format!("{r}.{col}")).push(like);
                self.bind(Bind::Text(pattern.to_string()));
                self.push(" ESCAPE '\\'");
            }
            self.push("))");
        }
        self.push(")");
    }

    fn sort_expr(&self, alias: &str, key: &SortKey) -> String {
        self.scalar_expr(
            alias,
            &FieldRef::Column {
                column: key.column,
                kind: key.kind.clone(),
            },
        )
    }

    /// Rows strictly after `after` in the order of `sort` (nulls last in both directions, id as
    /// the final tie-breaker in the first key's direction).
    fn keyset(&mut self, alias: &str, sort: &[SortKey], after: &Keyset) {
        let id_dir = sort.first().map(|k| k.direction).unwrap_or(Direction::Asc);
        let null_safe_eq = match self.dialect {
            Dialect::Postgres => " IS NOT DISTINCT FROM ",
            Dialect::Sqlite => " IS ",
        };
        self.push("(");
        for i in 0..=sort.len() {
            if i > 0 {
                self.push(" OR ");
            }
            self.push("(");
            for (j, key) in sort.iter().enumerate().take(i) {
                let e = self.sort_expr(alias, key);
                match &after.values[j] {
                    Some(v) => {
                        self.push(&e).push(null_safe_eq);
                        self.bind_value(&key.kind, v.clone());
                    }
                    None => {
                        self.push(&e).push(" IS NULL");
                    }
                }
                self.push(" AND ");
            }
            if i == sort.len() {
                self.push(&format!("{alias}.id"))
                    .push(if id_dir == Direction::Asc {
                        " > "
                    } else {
                        " < "
                    });
                self.bind(Bind::Text(after.id.clone()));
            } else {
                let key = &sort[i];
                let e = self.sort_expr(alias, key);
                match &after.values[i] {
                    // Nothing sorts after NULL on this key: nulls are last.
                    None => {
                        self.push("1 = 0");
                    }
                    Some(v) => {
                        self.push("(")
                            .push(&e)
                            .push(if key.direction == Direction::Asc {
                                " > "
                            } else {
                                " < "
                            });
                        self.bind_value(&key.kind, v.clone());
                        if key.nullable() {
                            self.push(" OR ").push(&e).push(" IS NULL");
                        }
                        self.push(")");
                    }
                }
            }
            self.push(")");
        }
        self.push(")");
    }

    fn where_clause(
        &mut self,
        alias: &str,
        res: &Resource,
        workspace: &str,
        lq: &ListQuery,
        arm: TextArm,
    ) {
        self.push(" WHERE ")
            .push(&format!("{alias}.workspace_id = "));
        self.bind(Bind::Text(workspace.to_string()));
        if !lq.include_archived {
            self.push(&format!(
                " AND {alias}.archived_at IS {}NULL",
                if lq.archived { "NOT " } else { "" }
            ));
        }
        if let Some(f) = &lq.filter {
            self.push(" AND ");
            self.filter(alias, f);
        }
        if let Some(q) = lq.q.as_deref().filter(|q| !q.trim().is_empty()) {
            self.push(" AND ");
            self.free_text(alias, res, workspace, q, arm);
        }
    }

    /// `ORDER BY` the list's sort keys, then the id in the first key's direction.
    fn order_by(&mut self, alias: &str, sort: &[SortKey]) {
        self.push(" ORDER BY ");
        for key in sort {
            let e = self.sort_expr(alias, key);
            self.push(&e).push(match (key.direction, key.nullable()) {
                (Direction::Asc, true) => " ASC NULLS LAST, ",
                (Direction::Desc, true) => " DESC NULLS LAST, ",
                (Direction::Asc, false) => " ASC, ",
                (Direction::Desc, false) => " DESC, ",
            });
        }
        let id_dir = sort.first().map(|k| k.direction).unwrap_or(Direction::Asc);
        self.push(&format!(
            "{alias}.id {}",
            if id_dir == Direction::Asc {
                "ASC"
            } else {
                "DESC"
            }
        ));
    }

    /// One page of the rows that `arm` takes: selected, after the cursor, sorted, limited.
    fn page(&mut self, res: &Resource, workspace: &str, lq: &ListQuery, arm: TextArm) {
        self.push(&format!("SELECT t.* FROM {} t", res.table));
        self.where_clause("t", res, workspace, lq, arm);
        if let Some(after) = &lq.after {
            self.push(" AND ");
            self.keyset("t", &lq.sort, after);
        }
        self.order_by("t", &lq.sort);
        self.push(" LIMIT ");
        self.bind(Bind::Int(lq.limit));
    }
}

/// Which rows matching the free text a query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextArm {
    /// Every row whose own text or related records' names hold every word.
    Any,
    /// PostgreSQL: the rows whose own text holds every word.
    Own,
    /// PostgreSQL: the other rows that [`TextArm::Any`] takes.
    Related,
    /// SQLite: the rows [`TextArm::Any`] takes, tested against the matches' ids as a filter
    /// (`+rowid IN …`), so that the plan walks the sort order's index instead of fetching
    /// every match to sort it.
    Walk,
}

/// One page of a resource's rows, in `sort` order, after the cursor. On PostgreSQL, free
/// text is matched on the rows' own text directly and, for a resource whose related
/// records' names count too, the page is the first rows of two pages: those whose own text
/// matches, and the others matched through their related records. Each page is planned on
/// its own, so a common word walks the sort order and stops early instead of fetching every
/// match to sort it.
pub fn list<R>(
    conn: &mut DbConnection,
    res: &Resource,
    workspace: &str,
    lq: &ListQuery,
) -> diesel::QueryResult<Vec<R>>
where
    R: QueryableByName<crate::conn::MultiBackend> + 'static,
{
    let mut b = SqlBuf::new(conn.dialect());
    let text = lq.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    match (conn.dialect(), text, res.text_relations.is_empty()) {
        (Dialect::Postgres, true, true) => b.page(res, workspace, lq, TextArm::Own),
        (Dialect::Postgres, true, false) => {
            b.push("SELECT t.* FROM ((");
            b.page(res, workspace, lq, TextArm::Own);
            b.push(") UNION ALL (");
            b.page(res, workspace, lq, TextArm::Related);
            b.push(")) t");
            b.order_by("t", &lq.sort);
            b.push(" LIMIT ");
            b.bind(Bind::Int(lq.limit));
        }
        (Dialect::Sqlite, true, _) if walks_sort_order(conn, res, lq)? => {
            b.page(res, workspace, lq, TextArm::Walk)
        }
        _ => b.page(res, workspace, lq, TextArm::Any),
    }
    b.load::<R>(conn)
}

/// A word held by at least this many rows (of any workspace) makes a SQLite text search
/// sorted by creation walk the `(workspace_id, created_at, id)` index: about
/// `rows / matches × limit` index entries read, instead of every match fetched and sorted.
const WALK_MATCHES: i64 = 2000;

/// Whether a SQLite list should walk its sort order (see [`TextArm::Walk`]): one word of
/// three characters or more, without digits or `@`, which at least [`WALK_MATCHES`] rows
/// hold (counted up to there in the trigram index), in a list sorted by creation only.
fn walks_sort_order(
    conn: &mut DbConnection,
    res: &Resource,
    lq: &ListQuery,
) -> diesel::QueryResult<bool> {
    let words: Vec<&str> = lq.q.as_deref().unwrap_or("").split_whitespace().collect();
    let [word] = words.as_slice() else {
        return Ok(false);
    };
    let by_creation = matches!(lq.sort.as_slice(), [key] if key.column == "created_at");
    // A word with a digit or an `@` (a phone number, an address, a code) names a record or
    // a few: taken as rare without asking the index, which costs as much as the search.
    let identifier = word.chars().any(|c| c.is_ascii_digit() || c == '@');
    if !by_creation || identifier || word.chars().count() < 3 {
        return Ok(false);
    }
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM {t}_fts WHERE {t}_fts MATCH ",
        t = res.table
    ));
    b.bind(Bind::Text(fts_phrase(word)));
    b.push(" LIMIT ");
    b.bind(Bind::Int(WALK_MATCHES));
    b.push(")");
    Ok(b.load::<CountRow>(conn)?
        .first()
        .is_some_and(|r| r.n >= WALK_MATCHES))
}

/// How many rows match (ignoring the cursor and limit).
pub fn count(
    conn: &mut DbConnection,
    res: &Resource,
    workspace: &str,
    lq: &ListQuery,
) -> diesel::QueryResult<i64> {
    let mut b = SqlBuf::new(conn.dialect());
    b.push(&format!("SELECT COUNT(*) AS n FROM {} t", res.table));
    b.where_clause("t", res, workspace, lq, TextArm::Any);
    Ok(b.load::<CountRow>(conn)?.first().map(|r| r.n).unwrap_or(0))
}

/// Resolves an API field name of a related resource.
pub type FieldResolver<'a> = dyn Fn(&str) -> Option<(FieldRef, FieldKind)> + 'a;

impl Resource {
    /// Resolves an API field name: a column, `custom.<name>` (through `custom_kind`), or
    /// `<relation>.<field>` through `relations`.
    pub fn resolve(
        &self,
        name: &str,
        custom_kind: &dyn Fn(&str) -> Option<FieldKind>,
        relations: &[(&'static Relation, &FieldResolver)],
    ) -> Option<(FieldRef, FieldKind)> {
        if let Some(c) = self.columns.iter().find(|c| c.api_name == name) {
            return Some((
                FieldRef::Column {
                    column: c.column,
                    kind: c.kind.clone(),
                },
                c.kind.clone(),
            ));
        }
        if let Some(custom) = name.strip_prefix("custom.") {
            if crm_domain::custom_field::valid_name(custom) {
                let kind = custom_kind(custom)?;
                return Some((
                    FieldRef::Custom {
                        name: custom.to_string(),
                        kind: kind.clone(),
                    },
                    kind,
                ));
            }
            return None;
        }
        for (rel, resolve_other) in relations {
            if let Some(rest) = name
                .strip_prefix(rel.name)
                .and_then(|r| r.strip_prefix('.'))
            {
                let (inner, kind) = resolve_other(rest)?;
                return Some((
                    FieldRef::Related {
                        relation: rel,
                        inner: Box::new(inner),
                    },
                    kind,
                ));
            }
        }
        None
    }

    pub fn sort_key(&self, api_name: &str, direction: Direction) -> Option<SortKey> {
        self.columns
            .iter()
            .find(|c| c.sortable && c.api_name == api_name)
            .map(|c| SortKey {
                column: c.column,
                api_name: c.api_name,
                kind: c.kind.clone(),
                direction,
            })
    }

    pub fn sortable_names(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|c| c.sortable)
            .map(|c| c.api_name)
            .collect()
    }
}
