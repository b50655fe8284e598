//! Rate limits per caller: each user and each API key has a budget of requests per
//! one-minute window (`CRM_RATE_LIMIT`), and a separate, smaller one for bulk requests —
//! batches and imports (`CRM_RATE_LIMIT_BULK`). Every authenticated response under
//! `/api/v1` says where the caller stands (`RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset`, `RateLimit-Policy`); past the budget the answer is 429 with
//! `Retry-After`.
//!
//! The counts live in the database (`rate_limit_counters`), so that every server process
//! shares one budget per caller. A process decides from memory — what the database said at
//! its last flush plus what it has counted since — and adds its counts to the database at
//! most once a second, off the request path. Across several processes a caller can
//! therefore exceed the budget by what the other processes served in that second; within
//! one process the limit is exact.

use crate::auth::{Actor, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crm_db::repo::rate_limits::{self, Hits};
use crm_db::{DbConnection, RepoError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The window, in seconds; windows start at multiples of it (Unix time).
pub const WINDOW_SECS: i64 = 60;
/// How often a process adds its counts to the database, at most.
const FLUSH_EVERY_MS: i64 = 1000;

/// An API key's own budgets, each overriding the server's when set (0: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub per_window: Option<u32>,
    pub bulk_per_window: Option<u32>,
}

impl KeyLimits {
    pub fn of(rate_limit: Option<i32>, bulk_rate_limit: Option<i32>) -> KeyLimits {
        let budget = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok());
        KeyLimits {
            per_window: budget(rate_limit),
            bulk_per_window: budget(bulk_rate_limit),
        }
    }
}

/// Requests per window; 0 switches a budget off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_window: u32,
    pub bulk_per_window: u32,
}

/// Which budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Api,
    /// Batches (`POST …/batch`) and imports (`POST /api/v1/imports`).
    Bulk,
}

impl Bucket {
    pub fn of_request(post: bool, path: &str) -> Bucket {
        if post && (path.ends_with("/batch") || path == "/api/v1/imports") {
            Bucket::Bulk
        } else {
            Bucket::Api
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Api => "api",
            Bucket::Bulk => "bulk",
        }
    }

    fn parse(s: &str) -> Option<Bucket> {
        match s {
            "api" => Some(Bucket::Api),
            "bulk" => Some(Bucket::Bulk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    workspace: String,
    /// `user:<id>` or `key:<id>`.
    subject: String,
    bucket: Bucket,
}

#[derive(Debug, Default)]
struct Counter {
    window: i64,
    /// The total of all processes at the last flush (this process's flushed counts included).
    synced: u64,
    /// Counted here and being added to the database now.
    inflight: u64,
    /// Counted here since.
    pending: u64,
}

impl Counter {
    fn used(&self) -> u64 {
        self.synced + self.inflight + self.pending
    }
}

/// Where a caller stands after a request was counted (or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends.
    pub reset: u64,
}

impl Verdict {
    /// The `RateLimit-*` response headers.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset.to_string()),
            (
                "ratelimit-policy",
                format!("{};w={WINDOW_SECS}", self.limit),
            ),
        ]
    }
}

/// Held while a flush runs (see [`RateLimiter::flush_ticket`]).
pub struct FlushTicket(Arc<RateLimiter>);

impl Drop for FlushTicket {
    fn drop(&mut self) {
        self.0.flushing.store(false, Ordering::Release);
    }
}

pub struct RateLimiter {
    limits: Limits,
    counters: Mutex<HashMap<Key, Counter>>,
    flushing: AtomicBool,
    last_flush_ms: AtomicI64,
    /// The window whose predecessors were last pruned.
    pruned_window: AtomicI64,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            counters: Mutex::new(HashMap::new()),
            flushing: AtomicBool::new(false),
            last_flush_ms: AtomicI64::new(0),
            pruned_window: AtomicI64::new(0),
        }
    }

    /// The budget of `p` for `bucket`: its API key's own, or the server's.
    fn limit(&self, p: &Principal, bucket: Bucket) -> u32 {
        let own = match &p.actor {
            Actor::ApiKey { limits, .. } => match bucket {
                Bucket::Api => limits.per_window,
                Bucket::Bulk => limits.bulk_per_window,
            },
            Actor::User { .. } => None,
        };
        own.unwrap_or(match bucket {
            Bucket::Api => self.limits.per_window,
            Bucket::Bulk => self.limits.bulk_per_window,
        })
    }

    fn counters(&self) -> MutexGuard<'_, HashMap<Key, Counter>> {
        // A panic while holding the lock leaves consistent counts: keep counting.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request of `p` at `now` (Unix seconds) against `bucket`, unless its
    /// budget for the window is spent. `None`: that budget is switched off.
    pub fn hit(&self, p: &Principal, bucket: Bucket, now: i64) -> Option<Verdict> {
        let limit = self.limit(p, bucket);
        if limit == 0 {
            return None;
        }
        let window = now - now.rem_euclid(WINDOW_SECS);
        let reset = u64::try_from(window + WINDOW_SECS - now).unwrap_or(1);
        let key = Key {
            workspace: p.workspace.as_string(),
            subject: p.subject(),
            bucket,
        };
        let mut counters = self.counters();
        let c = counters.entry(key).or_default();
        if c.window != window {
            *c = Counter {
                window,
                ..Counter::default()
            };
        }
        let used = c.used();
        let allowed = used < u64::from(limit);
        if allowed {
            c.pending += 1;
        }
        let remaining = u64::from(limit).saturating_sub(used + u64::from(allowed));
        Some(Verdict {
            allowed,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset,
        })
    }

    /// The right to flush, when none is running and the last one started at least a second
    /// ago; flushes never overlap. Dropping the ticket ends the flush.
    pub fn flush_ticket(self: &Arc<Self>, now_ms: i64) -> Option<FlushTicket> {
        if now_ms - self.last_flush_ms.load(Ordering::Relaxed) < FLUSH_EVERY_MS {
            return None;
        }
        if self
            .flushing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.last_flush_ms.store(now_ms, Ordering::Relaxed);
        Some(FlushTicket(Arc::clone(self)))
    }

    /// Adds this process's counts of the current window to the database and learns the
    /// totals of all processes; forgets counters of past windows; once per window, deletes
    /// the database's rows of past windows for the workspaces it counted.
    pub fn flush(
        &self,
        _ticket: &FlushTicket,
        conn: &mut DbConnection,
        now: i64,
    ) -> Result<(), RepoError> {
        let window = now - now.rem_euclid(WINDOW_SECS);
        let sent = self.take(window);
        if sent.is_empty() {
            return Ok(());
        }
        match rate_limits::add(conn, &sent) {
            Ok(totals) => self.settle(&totals, window),
            Err(e) => {
                self.restore(window);
                return Err(e);
            }
        }
        if self.pruned_window.swap(window, Ordering::AcqRel) != window {
            let mut workspaces: Vec<&str> = sent.iter().map(|h| h.workspace_id.as_str()).collect();
            workspaces.sort_unstable();
            workspaces.dedup();
            for ws in workspaces {
                rate_limits::prune(conn, ws, window)?;
            }
        }
        Ok(())
    }

    /// Moves each current counter's pending count in flight; a counter with none is sent
    /// with 0, which reads what the other processes counted.
    fn take(&self, window: i64) -> Vec<Hits> {
        let mut counters = self.counters();
        counters.retain(|_, c| c.window == window);
        counters
            .iter_mut()
            .map(|(k, c)| {
                c.inflight += c.pending;
                c.pending = 0;
                Hits {
                    workspace_id: k.workspace.clone(),
                    subject: k.subject.clone(),
                    bucket: k.bucket.as_str().to_string(),
                    window_start: window,
                    hits: i64::try_from(c.inflight).unwrap_or(i64::MAX),
                }
            })
            .collect()
    }

    fn settle(&self, totals: &[Hits], window: i64) {
        let mut counters = self.counters();
        for t in totals {
            let Some(bucket) = Bucket::parse(&t.bucket) else {
                continue;
            };
            let key = Key {
                workspace: t.workspace_id.clone(),
                subject: t.subject.clone(),
                bucket,
            };
            if let Some(c) = counters.get_mut(&key) {
                if c.window == window && t.window_start == window {
                    c.synced = u64::try_from(t.hits).unwrap_or(0);
                    c.inflight = 0;
                }
            }
        }
    }

    fn restore(&self, window: i64) {
        for c in self.counters().values_mut() {
            if c.window == window {
                c.pending += c.inflight;
                c.inflight = 0;
            }
        }
    }
}

/// Counts a request of `p` to `path` (only `/api/v1/…` counts) and, when one is due, starts
/// a flush of the counts in the background. `None`: the request's budget is off.
pub fn count(state: &AppState, p: &Principal, post: bool, path: &str) -> Option<Verdict> {
    if !path.starts_with("/api/v1/") {
        return None;
    }
    let now = chrono::Utc::now();
    let verdict = state
        .rate_limiter
        .hit(p, Bucket::of_request(post, path), now.timestamp());
    if let Some(ticket) = state.rate_limiter.flush_ticket(now.timestamp_millis()) {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            let limiter = Arc::clone(&state.rate_limiter);
            let flushed = state
                .db(move |c| Ok(limiter.flush(&ticket, c, now.timestamp())?))
                .await;
            if let Err(e) = flushed {
                tracing::warn!(error = %e, "rate-limit counts not written; they are kept for the next flush");
            }
        });
    }
    verdict
}

/// The 429 answer for a refused request.
pub fn refusal(v: &Verdict) -> ApiError {
    ApiError::TooManyRequests {
        limit: v.limit,
        window: WINDOW_SECS as u32,
        retry_after: v.reset.max(1),
    }
}

/// Adds the `RateLimit-*` headers to a response.
pub fn add_headers(headers: &mut actix_web::http::header::HeaderMap, v: &Verdict) {
    use actix_web::http::header::{HeaderName, HeaderValue};
    for (name, value) in v.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::{Role, WorkspaceId};

    fn user(id: &str) -> Principal {
        Principal {
            workspace: WorkspaceId::from_authenticated(uuid::Uuid::nil()),
            actor: Actor::User {
                id: id.into(),
                role: Role::Admin,
            },
        }
    }

    #[test]
    fn a_budget_is_per_caller_and_window_and_resets_with_the_window() {
        let rl = RateLimiter::new(Limits {
            per_window: 2,
            bulk_per_window: 1,
        });
        let (a, b) = (user("a"), user("b"));
        let t = 120 + 50;
        let v1 = rl.hit(&a, Bucket::Api, t).expect("on");
        assert_eq!((v1.allowed, v1.remaining, v1.reset), (true, 1, 10));
        assert!(rl.hit(&a, Bucket::Api, t).expect("on").allowed);
        let refused = rl.hit(&a, Bucket::Api, t + 1).expect("on");
        assert_eq!(
            (refused.allowed, refused.remaining, refused.reset),
            (false, 0, 9)
        );
        // Another caller and the bulk budget are counted apart.
        assert!(rl.hit(&b, Bucket::Api, t).expect("on").allowed);
        assert!(rl.hit(&a, Bucket::Bulk, t).expect("on").allowed);
        assert!(!rl.hit(&a, Bucket::Bulk, t).expect("on").allowed);
        // The next window starts afresh.
        let next = rl.hit(&a, Bucket::Api, 180).expect("on");
        assert_eq!((next.allowed, next.remaining, next.reset), (true, 1, 60));
    }

    #[test]
    fn a_zero_limit_switches_the_budget_off() {
        let rl = RateLimiter::new(Limits {
            per_window: 0,
            bulk_per_window: 5,
        });
        assert_eq!(rl.hit(&user("a"), Bucket::Api, 0), None);
        assert!(rl.hit(&user("a"), Bucket::Bulk, 0).is_some());
    }

    #[test]
    fn flushed_totals_include_other_processes_and_failed_flushes_keep_counts() {
        let rl = RateLimiter::new(Limits {
            per_window: 10,
            bulk_per_window: 10,
        });
        let a = user("a");
        for _ in 0..3 {
            rl.hit(&a, Bucket::Api, 60);
        }
        let sent = rl.take(60);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].hits, 3);
        // Another process had counted 5: the database's total is 8.
        let mut total = sent[0].clone();
        total.hits = 8;
        rl.settle(&[total], 60);
        assert_eq!(rl.hit(&a, Bucket::Api, 61).expect("on").remaining, 1);
        // A failed flush puts its counts back as pending.
        let sent = rl.take(60);
        assert_eq!(sent[0].hits, 1);
        rl.restore(60);
        assert_eq!(rl.take(60)[0].hits, 1);
    }

    #[test]
    fn batches_and_imports_draw_on_the_bulk_budget() {
        assert_eq!(
            Bucket::of_request(true, "/api/v1/contacts/batch"),
            Bucket::Bulk
        );
        assert_eq!(Bucket::of_request(true, "/api/v1/imports"), Bucket::Bulk);
        assert_eq!(Bucket::of_request(true, "/api/v1/contacts"), Bucket::Api);
        // Following an import's progress is not a bulk request.
        assert_eq!(Bucket::of_request(false, "/api/v1/imports"), Bucket::Api);
        assert_eq!(Bucket::of_request(false, "/api/v1/imports/x"), Bucket::Api);
    }
}
