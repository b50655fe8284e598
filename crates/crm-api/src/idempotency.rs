//! `Idempotency-Key` for every authenticated `POST`: the first response (status, body and
//! its `Location`/`ETag`) is stored for 24 h and replayed for a repeat with the same body;
//! the same key with another body is a 422, and a repeat while the first is still running a 409.
//! Keys belong to the caller (user or API key) that sent them: another caller's request
//! under the same key is its own request, never answered with the first caller's response.

use crate::auth::{sha256_hex, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use crm_db::repo::idempotency::Key;
use futures_util::StreamExt;

pub const HEADER: &str = "Idempotency-Key";
const KEPT_HEADERS: [header::HeaderName; 3] =
    [header::LOCATION, header::ETAG, header::CONTENT_TYPE];

/// What to do with a request, decided before it reaches its handler.
enum Plan {
    /// Not an idempotent request: hand it on untouched.
    PassThrough,
    /// A repeat of a finished request: answer with the stored response.
    Replay(HttpResponse),
    /// A first request under this key: run it and store its response.
    Run {
        state: web::Data<AppState>,
        key: Key,
    },
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Errors are answered here, so outer middleware sees a response, never an error.
    let (state, key) = match plan(&mut req).await {
        Ok(Plan::PassThrough) => return next.call(req).await.map(|r| r.map_into_boxed_body()),
        Ok(Plan::Replay(res)) => return Ok(req.into_response(res)),
        Ok(Plan::Run { state, key }) => (state, key),
        Err(e) => return Ok(req.into_response(e.error_response())),
    };
    let res = match next.call(req).await {
        Ok(r) => r,
        Err(e) => {
            state
                .db(move |c| Ok(crm_db::repo::idempotency::release(c, &key)?))
                .await?;
            return Err(e);
        }
    };
    let (http_req, http_res) = res.into_parts();
    match store(&state, key, http_res).await {
        Ok(res) => Ok(ServiceResponse::new(http_req, res)),
        Err(e) => Ok(ServiceResponse::new(http_req, e.error_response())),
    }
}

async fn plan(req: &mut ServiceRequest) -> Result<Plan, ApiError> {
    let key = key_of(req.headers());
    let principal = req.extensions().get::<Principal>().cloned();
    // An import's body is a file of any size, never buffered to be fingerprinted: the
    // import fingerprints it as it stores it (see `routes::imports`).
    let streamed = req.path() == "/api/v1/imports";
    let (Some(p), true, false) = (principal, req.method() == Method::POST, streamed) else {
        return Ok(Plan::PassThrough);
    };
    let Some(key) = key? else {
        return Ok(Plan::PassThrough);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal("application state missing"));
    };
    // Read the body to fingerprint the request, then hand it on unchanged.
    let limit = state.config.max_body_bytes;
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let mut fingerprint = fingerprint_head(req.method(), req.path(), req.query_string());
    fingerprint.extend_from_slice(&body);
    req.set_payload(actix_web::dev::Payload::from(body));
    let hash = sha256_hex(&fingerprint);
    let key = caller_key(&p, key);
    let (k2, h2) = (key.clone(), hash.clone());
    let existing = state
        .db(move |c| Ok(crm_db::repo::idempotency::claim(c, &k2, &h2)?))
        .await?;
    let Some(row) = existing else {
        return Ok(Plan::Run { state, key });
    };
    Ok(Plan::Replay(replay(row, &hash)?))
}

/// The request's `Idempotency-Key`, if it carries a usable one.
pub(crate) fn key_of(headers: &header::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(HEADER).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= 255 => Ok(Some(k.to_string())),
        Some(_) => Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// `key` as the caller `p`'s own.
pub(crate) fn caller_key(p: &Principal, key: String) -> Key {
    Key {
        workspace: p.workspace,
        caller: p.subject(),
        key,
    }
}

/// The answer to a repeat of the request stored under a key: its stored response, or 422
/// when the key came with another request (`hash`), 409 while the first still runs.
pub(crate) fn replay(
    row: crm_db::models::IdempotencyRow,
    hash: &str,
) -> Result<HttpResponse, ApiError> {
    if row.request_hash != hash {
        return Err(ApiError::field(
            HEADER,
            "key_reused",
            "this Idempotency-Key was used with a different request",
        ));
    }
    let Some(status) = row.response_status else {
        return Err(ApiError::Conflict {
            message: "a request with this Idempotency-Key is still in progress".into(),
            existing_id: None,
        });
    };
    let mut res =
        HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK));
    let headers: Vec<(String, String)> = row
        .response_headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    for (k, v) in headers {
        res.insert_header((k, v));
    }
    res.insert_header(("Idempotent-Replayed", "true"));
    Ok(res.body(row.response_body.unwrap_or_default()))
}

/// What a request is fingerprinted by: its method, path and query, then its body.
pub(crate) fn fingerprint_head(method: &Method, path: &str, query: &str) -> Vec<u8> {
    format!("{method} {path}?{query}\n").into_bytes()
}

/// Stores the first response under the key (or frees the key after a server error, so a
/// retry runs again) and gives the response back.
async fn store(
    state: &web::Data<AppState>,
    key: Key,
    http_res: HttpResponse<impl MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let status = http_res.status();
    let headers: Vec<(String, String)> = KEPT_HEADERS
        .iter()
        .filter_map(|h| {
            http_res
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_string(), v.to_string()))
        })
        .collect();
    let (head, body) = http_res.into_parts();
    let bytes = to_bytes(body)
        .await
        .map_err(|_| ApiError::internal("response body could not be read"))?;
    if status.is_server_error() {
        state
            .db(move |c| Ok(crm_db::repo::idempotency::release(c, &key)?))
            .await?;
    } else {
        let text = String::from_utf8_lossy(&bytes).to_string();
        let headers = serde_json::to_string(&headers).map_err(ApiError::internal)?;
        state
            .db(move |c| {
                Ok(crm_db::repo::idempotency::complete(
                    c,
                    &key,
                    i32::from(status.as_u16()),
                    &headers,
                    &text,
                )?)
            })
            .await?;
    }
    Ok(head.set_body(BoxBody::new(bytes)))
}
