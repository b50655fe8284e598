//! The running-totals worker (PostgreSQL only): every [`EVERY`], vacuums the tables of the
//! pipeline board's and forecast's running totals once folds have left them more dead rows
//! than live ones (`crm_db::repo::housekeeping::vacuum_running_totals`), so that a board
//! read after a fold does not wade through the rows it folded. Each process checks; a
//! second vacuum of a table at the same moment waits for the first and finds nothing left.

use crate::housekeeping::{repeat, Worker, AFTER_FAILURE};
use crm_db::repo::housekeeping::vacuum_running_totals;
use crm_db::Pool;
use std::time::Duration;

/// How often the worker looks at the tables' dead rows (one query on PostgreSQL's
/// statistics when there is nothing to do).
pub const EVERY: Duration = Duration::from_secs(1);

/// One round: the tables it vacuumed.
pub fn upkeep(pool: &Pool) -> crm_api::error::ApiResult<Vec<String>> {
    let mut c = pool.get()?;
    Ok(vacuum_running_totals(&mut c)?)
}

/// Starts the worker.
pub fn spawn(pool: Pool) -> Worker {
    repeat(move || match upkeep(&pool) {
        Ok(tables) => {
            if !tables.is_empty() {
                tracing::debug!(?tables, "vacuumed folded running totals");
            }
            EVERY
        }
        Err(e) => {
            tracing::warn!(error = %e, "vacuuming the running totals failed; retrying later");
            AFTER_FAILURE
        }
    })
}
