//! Shared application state and the helper that runs database work off the async workers.

use crate::auth::AuthCache;
use crate::error::ApiResult;
use crm_db::{DbConnection, Pool};
use std::sync::Arc;

/// Settings the API itself needs (the binary builds them from its configuration).
#[derive(Clone)]
pub struct ApiConfig {
    /// HMAC key for access tokens (HS256). Never logged.
    pub jwt_secret: Vec<u8>,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub open_signup: bool,
    pub max_body_bytes: usize,
    /// Accept webhook URLs on loopback and private networks.
    pub webhook_allow_private: bool,
    /// How long this process trusts what it last read about a user's active flag and
    /// role or an API key's validity (0: read the database on every request). Changes
    /// made through this process apply at once; through another one, within this time.
    pub auth_cache_ttl: std::time::Duration,
    /// Requests per caller and minute (see [`crate::ratelimit`]).
    pub rate_limits: crate::ratelimit::Limits,
    /// Rows an export reads per query (each page takes a pooled connection only while it
    /// is read, so a long export never holds one for its whole length).
    pub export_page_size: i64,
    /// Largest file an import accepts, in bytes.
    pub import_max_bytes: u64,
    /// When too many failed sign-ins lock an account's password sign-in.
    pub sign_in_lockout: crm_domain::sign_in::LockoutPolicy,
    /// The bearer token `GET /metrics` requires, if any. Never logged.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("jwt_secret", &"<redacted>")
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("open_signup", &self.open_signup)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .field("rate_limits", &self.rate_limits)
            .field("export_page_size", &self.export_page_size)
            .field("import_max_bytes", &self.import_max_bytes)
            .field("sign_in_lockout", &self.sign_in_lockout)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<ApiConfig>,
    pub auth_cache: Arc<AuthCache>,
    pub rate_limiter: Arc<crate::ratelimit::RateLimiter>,
}

impl AppState {
    pub fn new(pool: Pool, config: Arc<ApiConfig>) -> AppState {
        let auth_cache = Arc::new(AuthCache::new(config.auth_cache_ttl));
        let rate_limiter = Arc::new(crate::ratelimit::RateLimiter::new(config.rate_limits));
        AppState {
            pool,
            config,
            auth_cache,
            rate_limiter,
        }
    }

    /// Runs `f` on a pooled connection in the blocking thread pool.
    pub async fn db<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }

    /// Runs `f` in one write transaction (see `crm_db::write_tx`).
    pub async fn tx<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.db(move |conn| crm_db::write_tx(conn, f)).await
    }
}
