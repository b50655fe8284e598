//! The housekeeping worker: every [`Retention::every`], workspace by workspace, removes
//! idempotency keys past their 24 hours, finished webhook deliveries past
//! [`Retention::deliveries`] and, when [`Retention::events`] is set, events past it that no
//! webhook still needs (see `crm_db::repo::housekeeping`). Rate-limit counters are pruned
//! as requests count them. Each process sweeps; the deletes are idempotent, so two
//! processes sweeping at once do the same work twice at worst.

use crm_db::repo::housekeeping as repo;
use crm_db::Pool;
use crm_domain::WorkspaceId;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub every: Duration,
    /// How long finished deliveries are kept; None: for ever.
    pub deliveries: Option<Duration>,
    /// How long events are kept; None: for ever (they are the audit log).
    pub events: Option<Duration>,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: usize,
    pub deliveries: usize,
    pub events: usize,
}

fn ago(d: Duration) -> chrono::NaiveDateTime {
    crm_domain::values_time::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// One pass over every workspace.
pub fn sweep(pool: &Pool, r: &Retention) -> crm_api::error::ApiResult<Swept> {
    let mut c = pool.get()?;
    let mut swept = Swept::default();
    let keys_before = ago(Duration::from_secs(
        crm_db::repo::idempotency::RETENTION_HOURS as u64 * 3600,
    ));
    for id in repo::workspaces(&mut c)? {
        // Ids read from the workspaces table itself.
        let Ok(ws) = id
            .parse::<uuid::Uuid>()
            .map(WorkspaceId::from_authenticated)
        else {
            continue;
        };
        swept.idempotency_keys += repo::prune_idempotency_keys(&mut c, ws, keys_before)?;
        if let Some(d) = r.deliveries {
            swept.deliveries += repo::prune_deliveries(&mut c, ws, ago(d))?;
        }
        if let Some(d) = r.events {
            swept.events += repo::prune_events(&mut c, ws, ago(d))?;
        }
    }
    Ok(swept)
}

/// The running worker; stops when dropped or shut down (a sweep in progress finishes its
/// statement).
pub struct Worker {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Runs `round` on a blocking thread, again and again, pausing between two rounds for as
/// long as the round asks, until the worker is shut down or dropped.
pub fn repeat(round: impl Fn() -> Duration + Send + Sync + 'static) -> Worker {
    let (stop, mut stopped) = watch::channel(false);
    let round = std::sync::Arc::new(round);
    let task = tokio::spawn(async move {
        loop {
            let r = round.clone();
            let pause = match tokio::task::spawn_blocking(move || r()).await {
                Ok(pause) => pause,
                Err(e) => {
                    tracing::error!(error = %e, "a background round panicked");
                    AFTER_FAILURE
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => break,
            }
        }
    });
    Worker {
        stop,
        task: Some(task),
    }
}

/// The pause after a round that failed or panicked, at least: a failure that repeats
/// (the database is down) is logged once a minute, not once a round.
pub const AFTER_FAILURE: Duration = Duration::from_secs(60);

pub fn spawn(pool: Pool, r: Retention) -> Worker {
    repeat(move || {
        match sweep(&pool, &r) {
            Ok(s) if s == Swept::default() => {}
            Ok(s) => tracing::info!(
                idempotency_keys = s.idempotency_keys,
                deliveries = s.deliveries,
                events = s.events,
                "housekeeping removed expired rows"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping sweep failed; retrying later"),
        }
        r.every
    })
}
