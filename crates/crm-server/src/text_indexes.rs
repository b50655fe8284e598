//! The text-index worker (PostgreSQL only): every [`Settings::text_index_flush_ms`], moves
//! the entries writes left in the pending lists of the free-text (trigram GIN) indexes into
//! the indexes proper (`crm_db::repo::housekeeping::flush_text_indexes`). PostgreSQL would
//! otherwise merge a list inside whichever write fills it, which then stalls for hundreds of
//! milliseconds (a 1000-row batch now and then, an import's batch every few seconds), and
//! every search reads the whole list until then. Each process flushes; a second flush at
//! the same moment waits for the first and finds little left.
//!
//! [`Settings::text_index_flush_ms`]: crate::Settings::text_index_flush_ms

use crate::housekeeping::{repeat, Worker, AFTER_FAILURE};
use crm_db::repo::housekeeping::flush_text_indexes;
use crm_db::Pool;
use std::time::Duration;

/// One flush: the pages it emptied.
pub fn flush(pool: &Pool) -> crm_api::error::ApiResult<i64> {
    let mut c = pool.get()?;
    Ok(flush_text_indexes(&mut c)?)
}

/// Starts the worker, flushing every `every`.
pub fn spawn(pool: Pool, every: Duration) -> Worker {
    repeat(move || match flush(&pool) {
        Ok(pages) => {
            crm_api::observe::text_index_pages_flushed(pages);
            every
        }
        Err(e) => {
            tracing::warn!(error = %e, "flushing the text indexes' pending entries failed; retrying later");
            every.max(AFTER_FAILURE)
        }
    })
}
