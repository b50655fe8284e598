//! Connections, the pool and embedded migrations for both databases.

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// One connection to either database; the repository layer is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which SQL dialect a connection speaks, for the few places that write SQL by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl DbConnection {
    pub fn dialect(&self) -> Dialect {
        match self {
            DbConnection::Pg(_) => Dialect::Postgres,
            DbConnection::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL must start with sqlite:// or postgres:// (got `{0}`)")]
    UnknownScheme(String),
}

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    /// A file path for SQLite.
    Sqlite(String),
}

impl DatabaseUrl {
    /// `sqlite://crm.db`, `sqlite:crm.db`, `sqlite:///abs/path.db`, `postgres://…`, `postgresql://…`.
    /// Anything else is refused: a mistyped URL must never silently create a SQLite file.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_string()))
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(ConfigError::UnknownScheme(url.to_string()));
            }
            Ok(DatabaseUrl::Sqlite(path.to_string()))
        } else {
            Err(ConfigError::UnknownScheme(redact(url)))
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            DatabaseUrl::Postgres(_) => Dialect::Postgres,
            DatabaseUrl::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// Hides a password in a URL so it can be logged.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Page cache of each SQLite connection, in KiB, unless configured otherwise.
pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 2048;

/// Opens connections of the configured kind; SQLite connections get the pragmas that make
/// a file database safe under concurrent requests.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    sqlite_cache_kib: u32,
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Manager {
            url,
            sqlite_cache_kib: DEFAULT_SQLITE_CACHE_KIB,
        }
    }

    /// The page cache each SQLite connection keeps. Every pooled connection has its own,
    /// so the pool can hold up to pool size × this; the operating system's file cache
    /// serves what falls out of it.
    pub fn sqlite_cache_kib(mut self, kib: u32) -> Self {
        self.sqlite_cache_kib = kib;
        self
    }

    pub fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(u) => PgConnection::establish(u).map(DbConnection::Pg),
            DatabaseUrl::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path)?;
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{};",
                    self.sqlite_cache_kib
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(c))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Builds the pool of `size` connections that `manager` opens. SQLite writes are serialised
/// by the file lock, so a few connections suffice; PostgreSQL gets `size` (default: enough
/// for the actix workers and blocking pool).
pub fn build_pool(manager: Manager, size: u32) -> Result<Pool, r2d2::PoolError> {
    r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(false)
        .build(manager)
}

/// Applies pending migrations; returns the names applied.
pub fn run_migrations(
    conn: &mut DbConnection,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS)?,
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS)?,
    };
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// Reverts every migration (used to check that each `down.sql` works).
pub fn revert_all_migrations(
    conn: &mut DbConnection,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let reverted = match conn {
        DbConnection::Pg(c) => c.revert_all_migrations(PG_MIGRATIONS)?,
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS)?,
    };
    Ok(reverted.len())
}

/// Runs `f` in a write transaction. On SQLite it begins `IMMEDIATE`, taking the write lock
/// up front so concurrent writers wait (busy_timeout) instead of failing on lock upgrade.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConnection::Pg(_) => conn.transaction(f),
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            let result = f(conn);
            let DbConnection::Sqlite(c) = conn else {
                unreachable!("the connection's variant does not change")
            };
            match result {
                Ok(v) => {
                    AnsiTransactionManager::commit_transaction(c)?;
                    Ok(v)
                }
                Err(e) => {
                    AnsiTransactionManager::rollback_transaction(c)?;
                    Err(e)
                }
            }
        }
    }
}

/// `SELECT 1`: is the database answering?
pub fn ping(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cache_size: i64,
    }

    fn cache_size(manager: &Manager) -> i64 {
        let mut conn = manager.establish().unwrap();
        let rows: Vec<CacheSize> = diesel::sql_query("PRAGMA cache_size")
            .load(&mut conn)
            .unwrap();
        rows[0].cache_size
    }

    #[test]
    fn sqlite_connections_keep_the_configured_page_cache() {
        let url = DatabaseUrl::parse("sqlite://:memory:").unwrap();
        let manager = Manager::new(url);
        // A negative cache_size is in KiB.
        assert_eq!(cache_size(&manager), -i64::from(DEFAULT_SQLITE_CACHE_KIB));
        assert_eq!(cache_size(&manager.sqlite_cache_kib(512)), -512);
    }
}
