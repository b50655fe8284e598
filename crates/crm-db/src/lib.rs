//! The repository layer: diesel over SQLite and PostgreSQL through one connection type.
//!
//! Every function takes the [`WorkspaceId`](crm_domain::WorkspaceId) it works in; no query
//! reads or writes outside it.

pub mod conn;
pub mod error;
pub mod models;
pub mod query;
pub mod repo;
pub mod schema;

pub use conn::{
    build_pool, run_migrations, write_tx, DatabaseUrl, DbConnection, Dialect, Pool, PooledConn,
};
pub use error::RepoError;
