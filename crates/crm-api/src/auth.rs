//! Who is calling: JWT access tokens for people, API keys for integrations, resolved once
//! per request by the `authenticate` middleware and read by the [`Auth`] extractor.

use crate::error::{ApiError, ApiResult};
use crate::state::{ApiConfig, AppState};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_domain::{Permission, Role, WorkspaceId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const API_KEY_PREFIX: &str = "crm_";
pub const REFRESH_PREFIX: &str = "rt_";

#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    User {
        id: String,
        role: Role,
    },
    ApiKey {
        id: String,
        scopes: Vec<Permission>,
        /// The key's own rate limits, where it has them.
        limits: crate::ratelimit::KeyLimits,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub workspace: WorkspaceId,
    pub actor: Actor,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        match &self.actor {
            Actor::User { role, .. } => role.permits(p),
            Actor::ApiKey { scopes, .. } => scopes.contains(&p),
        }
    }

    /// 403 naming the missing permission.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(p.as_str().to_string()))
        }
    }

    pub fn actor_id(&self) -> &str {
        match &self.actor {
            Actor::User { id, .. } | Actor::ApiKey { id, .. } => id,
        }
    }

    /// Who the caller is, as one string that tells users and API keys apart
    /// (`user:<id>`, `key:<id>`): what rate limits and idempotency keys are kept by.
    pub fn subject(&self) -> String {
        match &self.actor {
            Actor::User { id, .. } => format!("user:{id}"),
            Actor::ApiKey { id, .. } => format!("key:{id}"),
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::User { id, .. } => Some(id),
            Actor::ApiKey { .. } => None,
        }
    }
}

/// Extracts the caller; 401 when the request carried no credentials.
pub struct Auth(pub Principal);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Auth)
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "send `Authorization: Bearer <access token or API key>`".into(),
                    )
                }),
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub ws: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

pub fn issue_access_token(
    cfg: &ApiConfig,
    ws: WorkspaceId,
    user_id: &str,
    role: Role,
) -> ApiResult<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_string(),
        ws: ws.as_string(),
        role: role.as_str().to_string(),
        iat: now,
        exp: now + cfg.access_token_ttl_secs,
        typ: "access".into(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&cfg.jwt_secret),
    )
    .map_err(ApiError::internal)
}

fn decode_access_token(cfg: &ApiConfig, token: &str) -> Result<Claims, String> {
    // Only HS256 is accepted: `alg: none` and every other algorithm fail here.
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&cfg.jwt_secret), &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the access token has expired; refresh it".to_string()
                }
                _ => "the access token is not valid".to_string(),
            })?;
    if data.claims.typ != "access" {
        return Err("the access token is not valid".into());
    }
    Ok(data.claims)
}

pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a random password, made once: checked in place of an account's own when there
/// is none, so that an unknown e-mail costs a sign-in as much time as a wrong password.
pub fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let random = hex(&random_bytes::<16>());
        hash_password(&random).unwrap_or_default()
    })
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Bytes as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// A new refresh token; it carries its workspace so lookups stay inside one tenant.
pub fn new_refresh_token(ws: WorkspaceId) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(ws.uuid().as_bytes());
    raw.extend_from_slice(&random_bytes::<32>());
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// The workspace a refresh token belongs to, if it is well-formed.
pub fn refresh_token_workspace(token: &str) -> Option<WorkspaceId> {
    let raw = URL_SAFE_NO_PAD
        .decode(token.strip_prefix(REFRESH_PREFIX)?)
        .ok()?;
    if raw.len() != 48 {
        return None;
    }
    Uuid::from_slice(&raw[..16])
        .ok()
        .map(WorkspaceId::from_authenticated)
}

/// A new API key secret: `crm_` + base64url(workspace id, key id, 32 random bytes).
/// Returns (secret, hash of the random part).
pub fn new_api_key(ws: WorkspaceId, key_id: Uuid) -> (String, String) {
    let secret = random_bytes::<32>();
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(ws.uuid().as_bytes());
    raw.extend_from_slice(key_id.as_bytes());
    raw.extend_from_slice(&secret);
    (
        format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)),
        sha256_hex(&secret),
    )
}

fn parse_api_key(token: &str) -> Option<(WorkspaceId, Uuid, String)> {
    let raw = URL_SAFE_NO_PAD
        .decode(token.strip_prefix(API_KEY_PREFIX)?)
        .ok()?;
    if raw.len() != 64 {
        return None;
    }
    let ws = Uuid::from_slice(&raw[..16]).ok()?;
    let id = Uuid::from_slice(&raw[16..32]).ok()?;
    Some((
        WorkspaceId::from_authenticated(ws),
        id,
        sha256_hex(&raw[32..]),
    ))
}

/// What the database said about a credential, kept for a short time (see [`AuthCache`]).
#[derive(Debug, Clone)]
enum Standing {
    /// An active user's role; `None` once the user is deactivated or gone.
    User(Option<Role>),
    /// An existing API key. Only keys found in the database are kept, so credentials
    /// made up by a caller never fill the cache.
    ApiKey(Arc<KeyStanding>),
}

#[derive(Debug)]
struct KeyStanding {
    secret_hash: String,
    scopes: Vec<Permission>,
    limits: crate::ratelimit::KeyLimits,
    revoked: bool,
    expires_at: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    User(WorkspaceId, String),
    ApiKey(WorkspaceId, Uuid),
}

/// Most entries the cache holds; past it, expired entries are dropped, then all of them.
const AUTH_CACHE_MAX_ENTRIES: usize = 10_000;

/// Per-process cache of whether users are active (and their role) and of API keys'
/// secrets, scopes, expiry and revocation, so that authenticating a request needs no
/// database query while its entry is fresh.
///
/// Staleness: a change made through this process (deactivation, role change, key
/// revocation) takes effect at once — the entry is dropped when the change commits, and
/// a lookup that read the database before the commit is not stored (the cache's epoch
/// moved on). A change made through another server process takes effect here within
/// the TTL (`CRM_AUTH_CACHE_TTL`, seconds; 0 disables the cache).
#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    /// Moves on at every invalidation; a lookup stores its result only if the epoch
    /// it saw before reading the database is still current.
    epoch: AtomicU64,
    entries: RwLock<HashMap<CacheKey, (Instant, Standing)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> AuthCache {
        AuthCache {
            ttl,
            epoch: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, key: &CacheKey) -> Option<Standing> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn put(&self, key: CacheKey, standing: Standing, epoch_seen: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Compared under the lock that invalidation takes: a result read before a change
        // committed is never stored after that change's invalidation.
        if self.epoch.load(Ordering::Acquire) != epoch_seen {
            return;
        }
        if entries.len() >= AUTH_CACHE_MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= AUTH_CACHE_MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), standing));
    }

    fn forget(&self, key: &CacheKey) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// Call after a change to a user (active flag, role) has committed.
    pub fn forget_user(&self, ws: WorkspaceId, user_id: &str) {
        self.forget(&CacheKey::User(ws, user_id.to_string()));
    }

    /// Call after an API key's revocation has committed.
    pub fn forget_api_key(&self, ws: WorkspaceId, key_id: &str) {
        if let Ok(id) = Uuid::parse_str(key_id) {
            self.forget(&CacheKey::ApiKey(ws, id));
        }
    }
}

/// Resolves a bearer credential to a principal. Whether the user is still active (or the
/// key still valid) comes from the database, through [`AuthCache`].
async fn resolve(state: &AppState, token: String) -> ApiResult<Principal> {
    if token.starts_with(API_KEY_PREFIX) {
        let (ws, key_id, hash) = parse_api_key(&token)
            .ok_or_else(|| ApiError::Unauthorized("the API key is not valid".into()))?;
        let cache_key = CacheKey::ApiKey(ws, key_id);
        let key = match state.auth_cache.get(&cache_key) {
            Some(Standing::ApiKey(k)) => Some(k),
            _ => {
                let epoch = state.auth_cache.epoch();
                let row = state
                    .db(move |c| {
                        match crm_db::repo::access::get_api_key(c, ws, &key_id.to_string()) {
                            Ok(r) => Ok(Some(r)),
                            Err(crm_db::RepoError::NotFound) => Ok(None),
                            Err(e) => Err(e.into()),
                        }
                    })
                    .await?;
                row.map(|r| {
                    let scopes: Vec<String> = serde_json::from_str(&r.scopes).unwrap_or_default();
                    let k = Arc::new(KeyStanding {
                        secret_hash: r.secret_hash,
                        scopes: scopes.iter().filter_map(|s| Permission::parse(s)).collect(),
                        limits: crate::ratelimit::KeyLimits::of(r.rate_limit, r.bulk_rate_limit),
                        revoked: r.revoked_at.is_some(),
                        expires_at: r.expires_at,
                    });
                    state
                        .auth_cache
                        .put(cache_key, Standing::ApiKey(k.clone()), epoch);
                    k
                })
            }
        };
        let now = crm_domain::values_time::now();
        match key {
            Some(k)
                if k.secret_hash == hash && !k.revoked && k.expires_at.is_none_or(|e| e > now) =>
            {
                Ok(Principal {
                    workspace: ws,
                    actor: Actor::ApiKey {
                        limits: k.limits,
                        id: key_id.to_string(),
                        scopes: k.scopes.clone(),
                    },
                })
            }
            _ => Err(ApiError::Unauthorized(
                "the API key is not valid or has been revoked".into(),
            )),
        }
    } else {
        let claims = decode_access_token(&state.config, &token).map_err(ApiError::Unauthorized)?;
        let ws = Uuid::parse_str(&claims.ws)
            .map_err(|_| ApiError::Unauthorized("the access token is not valid".into()))?;
        let ws = WorkspaceId::from_authenticated(ws);
        let cache_key = CacheKey::User(ws, claims.sub.clone());
        let role = match state.auth_cache.get(&cache_key) {
            Some(Standing::User(role)) => role,
            _ => {
                let epoch = state.auth_cache.epoch();
                let user_id = claims.sub.clone();
                let role = state
                    .db(move |c| Ok(crm_db::repo::access::active_role(c, ws, &user_id)?))
                    .await?
                    .as_deref()
                    .and_then(Role::parse);
                state.auth_cache.put(cache_key, Standing::User(role), epoch);
                role
            }
        };
        match role {
            Some(role) => Ok(Principal {
                workspace: ws,
                actor: Actor::User {
                    id: claims.sub,
                    role,
                },
            }),
            None => Err(ApiError::Unauthorized(
                "the user has been deactivated".into(),
            )),
        }
    }
}

/// The caller a background job (an import) acts as, read afresh from the database: the
/// user (`kind` `user`) with their current role, or the API key (`api_key`) with its scopes. `None` when the user has
/// been deactivated or the key revoked or expired since.
pub fn principal_of_actor(
    conn: &mut crm_db::DbConnection,
    ws: WorkspaceId,
    kind: &str,
    id: &str,
) -> ApiResult<Option<Principal>> {
    let now = crm_domain::values_time::now();
    let actor = match kind {
        "user" => crm_db::repo::access::active_role(conn, ws, id)?
            .as_deref()
            .and_then(Role::parse)
            .map(|role| Actor::User {
                id: id.to_string(),
                role,
            }),
        _ => match crm_db::repo::access::get_api_key(conn, ws, id) {
            Ok(k) if k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now) => {
                let scopes: Vec<String> = serde_json::from_str(&k.scopes).unwrap_or_default();
                Some(Actor::ApiKey {
                    limits: crate::ratelimit::KeyLimits::of(k.rate_limit, k.bulk_rate_limit),
                    id: id.to_string(),
                    scopes: scopes.iter().filter_map(|s| Permission::parse(s)).collect(),
                })
            }
            Ok(_) | Err(crm_db::RepoError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
    };
    Ok(actor.map(|actor| Principal {
        workspace: ws,
        actor,
    }))
}

/// Middleware: authenticates a request that carries `Authorization`, or lets it through
/// anonymous (handlers that need a caller use [`Auth`]). A bad credential is answered here.
pub async fn authenticate<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let verdict = match principal_of(&req).await {
        Ok(Some((p, state))) => {
            let verdict = crate::ratelimit::count(
                &state,
                &p,
                req.method() == actix_web::http::Method::POST,
                req.path(),
            );
            if let Some(v) = verdict.filter(|v| !v.allowed) {
                let mut res = crate::ratelimit::refusal(&v).error_response();
                crate::ratelimit::add_headers(res.headers_mut(), &v);
                return Ok(req.into_response(res).map_into_right_body());
            }
            req.extensions_mut().insert(p);
            verdict
        }
        Ok(None) => None,
        Err(e) => return Ok(req.into_response(e.error_response()).map_into_right_body()),
    };
    let mut res = next.call(req).await?.map_into_left_body();
    if let Some(v) = &verdict {
        crate::ratelimit::add_headers(res.headers_mut(), v);
    }
    Ok(res)
}

async fn principal_of(req: &ServiceRequest) -> ApiResult<Option<(Principal, web::Data<AppState>)>> {
    let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let h = h.to_str().unwrap_or("");
    let token = match h.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            t.trim().to_string()
        }
        _ => {
            return Err(ApiError::Unauthorized(
                "use `Authorization: Bearer <token>`".into(),
            ))
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal("application state missing"));
    };
    let p = resolve(&state, token).await?;
    Ok(Some((p, state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_round_trip() {
        let ws = WorkspaceId::from_authenticated(Uuid::now_v7());
        let id = Uuid::now_v7();
        let (secret, hash) = new_api_key(ws, id);
        let (ws2, id2, hash2) = parse_api_key(&secret).expect("parses");
        assert_eq!((ws2, id2, hash2), (ws, id, hash));
        assert!(parse_api_key("crm_short").is_none());
    }

    #[test]
    fn refresh_tokens_carry_workspace() {
        let ws = WorkspaceId::from_authenticated(Uuid::now_v7());
        let t = new_refresh_token(ws);
        assert_eq!(refresh_token_workspace(&t), Some(ws));
        assert_eq!(refresh_token_workspace("rt_x"), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
    }
}
