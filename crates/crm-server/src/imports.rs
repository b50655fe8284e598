//! The import worker: claims queued (or abandoned) import jobs and runs them, one at a time
//! per server process (see `crm_api::imports` for how a job is run and resumed).

use crm_api::imports::{self, JobEnd, JobSettings};
use crm_db::Pool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
pub struct ImportSettings {
    pub job: JobSettings,
    /// How often an idle worker looks for jobs.
    pub poll: Duration,
    /// How long an upload may stop arriving before it is removed.
    pub abandon: Duration,
}

/// Removes uploads abandoned midway (see [`ImportSettings::abandon`]).
fn prune(pool: &Pool, abandon: Duration) -> crm_api::error::ApiResult<usize> {
    let mut c = pool.get()?;
    let before = crm_domain::values_time::now()
        - chrono::Duration::from_std(abandon).unwrap_or(chrono::Duration::hours(1));
    Ok(crm_db::repo::imports::prune_uploads(&mut c, before)?)
}

/// The running worker; `shutdown` lets the batch in progress commit and gives the job back.
/// Dropping it does the same, without waiting.
pub struct Worker {
    stop: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub async fn shutdown(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop.send(true);
    }
}

pub fn spawn(pool: Pool, settings: ImportSettings) -> Worker {
    // Each process claims under its own name, so its leases are told apart from others'.
    let owner = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
    let (stop, mut stopped) = watch::channel(false);
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    let task = tokio::spawn(async move {
        // Abandoned uploads are looked for at start, then every half of `abandon` (at most
        // every minute).
        let prune_every = (settings.abandon / 2).min(Duration::from_secs(60));
        let mut pruned_at: Option<std::time::Instant> = None;
        loop {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            if pruned_at.is_none_or(|t| t.elapsed() >= prune_every) {
                pruned_at = Some(std::time::Instant::now());
                let (pool2, abandon) = (pool.clone(), settings.abandon);
                match tokio::task::spawn_blocking(move || prune(&pool2, abandon)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(uploads = n, "abandoned import uploads removed"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "abandoned uploads not removed"),
                    Err(e) => tracing::error!(error = %e, "pruning abandoned uploads panicked"),
                }
            }
            let (pool2, owner2, flag2) = (pool.clone(), owner.clone(), flag.clone());
            let turn = tokio::task::spawn_blocking(move || {
                let Some(job) = imports::claim(&pool2, &owner2, &settings.job)? else {
                    return Ok(None);
                };
                tracing::info!(import = %job.id, object = %job.object, from_line = job.next_line, "import claimed");
                let stop = || flag2.load(Ordering::SeqCst);
                let end = imports::run(
                    &pool2,
                    &owner2,
                    &job,
                    crm_api::routes::imports::IMPORTERS,
                    &settings.job,
                    &stop,
                );
                if let Err(e) = &end {
                    tracing::warn!(import = %job.id, error = %e, "import interrupted; it resumes from its last checkpoint");
                    imports::interrupted(&pool2, &owner2, &job, &settings.job, e);
                }
                end.map(|e| Some((job.id, e)))
            })
            .await;
            let busy = match turn {
                Ok(Ok(Some((id, end)))) => {
                    match &end {
                        JobEnd::Finished(status) => {
                            tracing::info!(import = %id, %status, "import ended")
                        }
                        JobEnd::Released => tracing::info!(import = %id, "import given back"),
                        JobEnd::Lost => {
                            tracing::warn!(import = %id, "import taken over by another worker")
                        }
                    }
                    true
                }
                Ok(Ok(None)) => false,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "import worker round failed; retrying");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "import worker panicked; retrying");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(settings.poll) => {}
                }
            }
        }
        tracing::debug!("import worker stopped");
    });
    Worker {
        stop,
        stopping,
        task: Some(task),
    }
}
