//! The webhook worker: queues deliveries from the events outbox and sends them.
//!
//! Each round, for every workspace with an active subscription, it (1) reads the events past
//! each subscription's cursor and queues one delivery per matching event, moving the cursor
//! in the same transaction, and (2) sends the deliveries that are due, one at a time per
//! (subscription, record) so each record's changes arrive in commit order. A delivery is
//! claimed for a minute before it is sent, so several servers never send it twice at once;
//! one interrupted mid-send is retried when its claim lapses (at least once, never lost).

use crm_api::error::ApiError;
use crm_api::events::Event;
use crm_api::webhooks::{check_destination, signature};
use crm_db::models::{AttemptRow, DeliveryRow, EventRow, WebhookRow};
use crm_db::repo::{events, webhooks as repo};
use crm_db::{DbConnection, Pool};
use crm_domain::values_time::now;
use crm_domain::webhook::{matches, type_matches};
use crm_domain::WorkspaceId;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Events read per subscription per transaction, and deliveries sent per workspace per round.
const BATCH: i64 = 200;
/// Longest wait for a receiver's answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a sender holds a delivery it is attempting.
const CLAIM: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub allow_private: bool,
    /// Seconds before each retry; a delivery fails for good after the last.
    pub retry_schedule: Vec<f64>,
    pub poll: Duration,
}

/// The running worker; `shutdown` lets the current round finish. Dropping it stops the
/// worker after its current round too.
pub struct Workers {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

type WorkResult<T> = Result<T, ApiError>;

async fn blocking<T: Send + 'static>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConnection) -> WorkResult<T> + Send + 'static,
) -> WorkResult<T> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pool.get()?;
        f(&mut c)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Resolves receivers' host names for the delivery client, keeping only public addresses
/// (unless the server allows private ones). `check_destination` names the problem before
/// an attempt; this makes the connection itself safe: a name that resolved to a public
/// address for the check and to a private one a moment later (DNS rebinding) is never
/// connected to.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || !crm_domain::webhook::is_private(a.ip()))
                .collect();
            if usable.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("`{host}` resolves to no public address").into();
                return Err(refused);
            }
            let addrs: reqwest::dns::Addrs = Box::new(usable.into_iter());
            Ok(addrs)
        })
    }
}

/// The client deliveries are sent with: no redirects, a time limit, and host names
/// resolved to public addresses only (see [`PublicOnly`]).
fn delivery_client(allow_private: bool) -> WorkResult<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("crm-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(std::sync::Arc::new(PublicOnly { allow_private }))
        .build()
        .map_err(ApiError::internal)
}

pub fn spawn(pool: Pool, settings: WorkerSettings) -> WorkResult<Workers> {
    let client = delivery_client(settings.allow_private)?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let started = Instant::now();
            if let Err(e) = round(&pool, &client, &settings).await {
                tracing::warn!(error = %e, "webhook round failed; retrying next round");
            }
            crm_api::observe::worker_round(started.elapsed());
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(settings.poll) => {}
            }
        }
        tracing::debug!("webhook worker stopped");
    });
    Ok(Workers { stop, task })
}

async fn round(pool: &Pool, client: &reqwest::Client, s: &WorkerSettings) -> WorkResult<()> {
    let workspaces = blocking(pool, dispatch_all).await?;
    for ws in workspaces {
        send_due(pool, client, s, ws).await?;
    }
    Ok(())
}

fn ws_of(id: &str) -> WorkResult<WorkspaceId> {
    uuid_of(id).map(WorkspaceId::from_authenticated)
}

fn uuid_of(id: &str) -> WorkResult<uuid::Uuid> {
    id.parse().map_err(ApiError::internal)
}

/// Numbers every pending event (see `crm_db::repo::events::settle`), then queues deliveries
/// for every active subscription; returns the workspaces that have one.
fn dispatch_all(c: &mut DbConnection) -> WorkResult<Vec<WorkspaceId>> {
    for ws in events::pending_workspaces(c)? {
        events::settle(c, ws_of(&ws)?)?;
    }
    let mut out = Vec::new();
    for ws in repo::workspaces_with_active(c)? {
        let ws = ws_of(&ws)?;
        for hook in repo::active(c, ws)? {
            while dispatch(c, ws, &hook.id)? {}
        }
        out.push(ws);
    }
    Ok(out)
}

/// What a subscription asks for, parsed once per batch of events.
struct Interest {
    types: Vec<String>,
    /// `None`: every event of those types; `Some(None)`: a stored filter that no longer
    /// parses, which matches nothing.
    filter: Option<Option<crm_domain::filter::Node>>,
}

impl Interest {
    fn of(hook: &WebhookRow) -> Interest {
        Interest {
            types: serde_json::from_str(&hook.event_types).unwrap_or_default(),
            filter: hook.filter.as_deref().map(|f| {
                serde_json::from_str(f)
                    .ok()
                    .and_then(|f| crm_domain::filter::parse(&f, "filter").ok())
            }),
        }
    }

    fn wants(&self, e: &EventRow) -> bool {
        if !type_matches(&self.types, &e.event_type) {
            return false;
        }
        match &self.filter {
            None => true,
            Some(None) => false,
            Some(Some(filter)) => {
                let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
                matches(filter, &data)
            }
        }
    }
}

/// One batch for one subscription, in one transaction; true when there may be more.
fn dispatch(c: &mut DbConnection, ws: WorkspaceId, hook_id: &str) -> WorkResult<bool> {
    crm_db::write_tx(c, |c| {
        let hook = repo::get(c, ws, hook_id)?;
        if !hook.active {
            return Ok(false);
        }
        let batch = events::feed(c, ws, hook.cursor_seq, &[], &[], BATCH)?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let t = now();
        let interest = Interest::of(&hook);
        let rows: Vec<DeliveryRow> = batch
            .iter()
            .filter(|e| interest.wants(e))
            .map(|e| {
                DeliveryRow::pending(
                    ws.as_string(),
                    hook.id.clone(),
                    e.id.clone(),
                    e.seq,
                    e.record_id.clone(),
                    t,
                )
            })
            .collect();
        repo::queue(c, &rows)?;
        if !repo::advance_cursor(c, ws, &hook.id, hook.cursor_seq, last)? {
            return Err(ApiError::Conflict {
                message: "another worker dispatched this batch".into(),
                existing_id: None,
            });
        }
        Ok(batch.len() as i64 == BATCH)
    })
}

struct Job {
    delivery: DeliveryRow,
    url: String,
    /// The current secret, then the replaced one while it still signs.
    secrets: Vec<String>,
    body: Vec<u8>,
}

/// Claims the due deliveries of a workspace, sends them concurrently, records each attempt.
async fn send_due(
    pool: &Pool,
    client: &reqwest::Client,
    s: &WorkerSettings,
    ws: WorkspaceId,
) -> WorkResult<()> {
    let jobs = blocking(pool, move |c| {
        let t = now();
        let due = repo::due(c, ws, t, BATCH)?;
        let mut claimed = Vec::new();
        for d in due {
            if repo::claim(c, ws, &d.id, t, t + CLAIM)? {
                claimed.push(d);
            }
        }
        let ids: Vec<String> = claimed.iter().map(|d| d.event_id.clone()).collect();
        let evs = events::by_ids(c, ws, &ids)?;
        let hooks = repo::all(c, ws)?;
        let mut jobs = Vec::new();
        for d in claimed {
            let (Some(e), Some(h)) = (
                evs.iter().find(|e| e.id == d.event_id),
                hooks.iter().find(|h| h.id == d.webhook_id),
            ) else {
                continue;
            };
            let body = serde_json::to_vec(&Event::from(e.clone())).map_err(ApiError::internal)?;
            let previous = h
                .previous_secret
                .clone()
                .filter(|_| h.previous_secret_expires_at.is_some_and(|at| at > t));
            jobs.push(Job {
                url: h.url.clone(),
                secrets: std::iter::once(h.secret.clone()).chain(previous).collect(),
                body,
                delivery: d,
            });
        }
        Ok(jobs)
    })
    .await?;
    let results =
        futures_util::future::join_all(jobs.into_iter().map(|j| attempt(client, s, j))).await;
    let schedule = s.retry_schedule.clone();
    blocking(pool, move |c| {
        for (d, outcome) in results {
            let n = d.attempts + 1;
            let ok = outcome.status_code.is_some_and(|s| (200..300).contains(&s));
            let (status, next, counted) = if ok {
                ("succeeded", None, "succeeded")
            } else if let Some(wait) = schedule.get((n - 1) as usize) {
                let wait = chrono::Duration::milliseconds((wait * 1000.0) as i64);
                ("pending", Some(outcome.at + wait), "retrying")
            } else {
                ("failed", None, "failed")
            };
            crm_api::observe::webhook_attempt(counted);
            let row = AttemptRow {
                workspace_id: ws.as_string(),
                delivery_id: d.id.clone(),
                attempt: n,
                attempted_at: outcome.at,
                status_code: outcome.status_code,
                error: outcome.error,
                duration_ms: outcome.duration_ms,
            };
            repo::finish_attempt(c, ws, &row, status, next)?;
        }
        Ok(())
    })
    .await
}

struct Outcome {
    at: chrono::NaiveDateTime,
    status_code: Option<i32>,
    error: Option<String>,
    duration_ms: i32,
}

async fn attempt(client: &reqwest::Client, s: &WorkerSettings, j: Job) -> (DeliveryRow, Outcome) {
    let at = now();
    let started = Instant::now();
    let (status_code, error) = match send(client, s, &j).await {
        Ok(code) if (200..300).contains(&code) => (Some(code), None),
        Ok(code) => (Some(code), Some(format!("the receiver answered {code}"))),
        Err(e) => (None, Some(e)),
    };
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    (
        j.delivery,
        Outcome {
            at,
            status_code,
            error,
            duration_ms,
        },
    )
}

async fn send(client: &reqwest::Client, s: &WorkerSettings, j: &Job) -> Result<i32, String> {
    let url = url::Url::parse(&j.url).map_err(|e| e.to_string())?;
    check_destination(&url, s.allow_private).await?;
    let ts = chrono::Utc::now().timestamp();
    // Standard Webhooks: space-separated signatures, any of which a verifier accepts.
    let sig = j
        .secrets
        .iter()
        .map(|secret| signature(secret, &j.delivery.id, ts, &j.body))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let res = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &j.delivery.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(j.body.clone())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the receiver did not answer in time".to_string()
            } else if e.is_connect() {
                "the receiver could not be reached".to_string()
            } else {
                format!("the request failed: {e}")
            }
        })?;
    Ok(i32::from(res.status().as_u16()))
}

#[cfg(test)]
mod tests {
    use super::delivery_client;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver on loopback that answers every request with 204, for `n` requests.
    async fn receiver(n: usize) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..n {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        port
    }

    /// The delivery client never connects to a name that resolves to a private address,
    /// whatever a check before the attempt saw (DNS rebinding): here `localhost`.
    #[tokio::test]
    async fn the_delivery_client_connects_to_public_addresses_only() {
        let port = receiver(1).await;
        let url = format!("http://localhost:{port}/hook");
        let refused = delivery_client(false)
            .unwrap()
            .post(&url)
            .send()
            .await
            .unwrap_err();
        let chain = {
            let mut out = refused.to_string();
            let mut src = std::error::Error::source(&refused);
            while let Some(e) = src {
                out.push_str(&format!(": {e}"));
                src = e.source();
            }
            out
        };
        assert!(chain.contains("resolves to no public address"), "{chain}");
        // Allowed (as tests and private deployments need), the same receiver answers.
        let res = delivery_client(true)
            .unwrap()
            .post(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
    }
}
