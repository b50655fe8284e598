//! Request extractors shared by every resource: JSON bodies with precise errors,
//! `If-Match`, and list parameters (limit, cursor, sort, filters from the query string).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, ResponseError};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::future::{ready, Ready};
use std::pin::Pin;

/// Reads a request body (up to the configured limit) for JSON endpoints: 415 without a JSON
/// content type, 413 past the limit.
pub async fn read_json_bytes(req: &HttpRequest, payload: &mut Payload) -> ApiResult<web::Bytes> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json")))
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the body as application/json (got `{}`)",
            if ct.is_empty() { "no content type" } else { ct }
        )));
    }
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.max_body_bytes)
        .unwrap_or(1 << 20);
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON, telling a malformed body (400) from a well-formed one that does not fit the
/// schema (422, naming the field by its path).
///
/// Every request body of this API is a JSON object: another JSON value (an array, which serde
/// would otherwise read as a struct's fields in order, a string, a number) is a 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    // A NUL can only arrive escaped; the full walk runs only when the escape is there.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(field) = nul_in(&v, "") {
                return Err(nul_error(&field));
            }
        }
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::field(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                let code = if msg.starts_with("unknown field") {
                    "unknown_field"
                } else if msg.starts_with("missing field") {
                    "required"
                } else {
                    "invalid_type"
                };
                let field = if let Some(name) = msg
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                {
                    if field == "body" {
                        name.to_string()
                    } else {
                        format!("{field}.{name}")
                    }
                } else {
                    field
                };
                ApiError::field(&field, code, msg)
            }
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_json_bytes(&req, &mut payload).await?;
            parse_json::<T>(&bytes).map(JsonBody)
        })
    }
}

/// `If-Match: "<version>"` (or `*`, or absent: no check).
pub struct IfMatch(pub Option<i32>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(v) = req.headers().get(header::IF_MATCH) else {
            return ready(Ok(IfMatch(None)));
        };
        let s = v.to_str().unwrap_or("").trim();
        if s == "*" {
            return ready(Ok(IfMatch(None)));
        }
        let inner = s.trim_start_matches("W/").trim_matches('"');
        ready(inner.parse::<i32>().map(|n| IfMatch(Some(n))).map_err(|_| {
            ApiError::BadRequest(format!(
                "If-Match must be an ETag this API returned, like \"3\" (got `{s}`)"
            ))
        }))
    }
}

/// The strong ETag of a record version.
pub fn etag(version: i32) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// Raw query-string pairs, in order (repeated keys kept).
pub struct QueryPairs(pub Vec<(String, String)>);

impl FromRequest for QueryPairs {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = serde_urlencoded_pairs(req.query_string())
            .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")));
        ready(pairs.and_then(|pairs| {
            match pairs
                .iter()
                .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            {
                Some((k, _)) => Err(nul_error(&k.replace('\0', "\\u0000"))),
                None => Ok(QueryPairs(pairs)),
            }
        }))
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, String> {
    web::Query::<Vec<(String, String)>>::from_query(q)
        .map(|q| q.into_inner())
        .map_err(|e| e.to_string())
}

/// Reads a boolean query parameter (`true`/`false`).
pub fn bool_param(name: &str, v: &str) -> ApiResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::field(
            name,
            "invalid_value",
            "must be true or false",
        )),
    }
}

/// A JSON request body as bytes, after the content-type and size checks; handlers parse
/// it with [`parse_json`] into the type they need.
pub struct RawJson(pub web::Bytes);

impl FromRequest for RawJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { read_json_bytes(&req, &mut payload).await.map(RawJson) })
    }
}

/// A JSON body that may be left out: a request with neither a `Content-Type` nor a body is
/// `None`; any other is read as [`RawJson`] reads it (415 for another type, 413 past the
/// limit).
pub struct OptionalJson(pub Option<web::Bytes>);

impl FromRequest for OptionalJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let h = req.headers();
        let length = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let absent = !h.contains_key(header::CONTENT_TYPE)
            && !h.contains_key(header::TRANSFER_ENCODING)
            && length.unwrap_or(0) == 0;
        if absent {
            return Box::pin(std::future::ready(Ok(OptionalJson(None))));
        }
        let body = RawJson::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| OptionalJson(Some(b.0))) })
    }
}

/// A page size: 1 to 500.
pub fn limit_param(v: &str) -> ApiResult<i64> {
    v.parse()
        .ok()
        .filter(|l| (1..=500).contains(l))
        .ok_or_else(|| ApiError::field("limit", "out_of_range", "must be between 1 and 500"))
}

/// `limit` and `cursor` of the lists ordered by id alone (users, teams): the cursor is the
/// last id of the previous page. Any other parameter is a 422 naming it.
pub fn id_page_params(q: &QueryPairs) -> ApiResult<(i64, Option<String>)> {
    let mut limit = 50i64;
    let mut cursor = None;
    for (k, v) in &q.0 {
        match k.as_str() {
            "limit" => limit = limit_param(v)?,
            "cursor" => {
                cursor = Some(
                    uuid::Uuid::parse_str(v)
                        .map_err(|_| {
                            ApiError::field("cursor", "invalid_cursor", "the cursor is not valid")
                        })?
                        .to_string(),
                )
            }
            _ => {
                return Err(ApiError::field(
                    k,
                    "unknown_parameter",
                    format!("unknown parameter `{k}`"),
                ))
            }
        }
    }
    Ok((limit, cursor))
}

/// Cuts a page loaded with `limit + 1` rows to `limit`, and names the next cursor when
/// there are more.
pub fn id_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> &String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| id(r).clone())
    } else {
        None
    };
    (rows, next)
}

/// Text the API stores cannot hold the NUL character: PostgreSQL refuses it (SQLite would
/// keep it, and the two databases answer alike), so a body, query parameter or path that
/// carries one is a 422 naming where.
fn nul_error(field: &str) -> ApiError {
    ApiError::field(
        field,
        "invalid_value",
        "must not contain the NUL character (\\u0000)",
    )
}

/// The path (`address.city`, `tags[2]`) of the first string or key in `v` holding a NUL.
/// Refuses a value (a record read from a file, say) holding the NUL character anywhere,
/// naming where, as a request body holding one is refused.
pub fn refuse_nul(v: &serde_json::Value) -> ApiResult<()> {
    match nul_in(v, "") {
        Some(field) => Err(nul_error(&field)),
        None => Ok(()),
    }
}

fn nul_in(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "body".to_string()
        } else {
            at.to_string()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(join(&k.replace('\0', "\\u0000")))
            } else {
                nul_in(item, &join(k))
            }
        }),
        _ => None,
    }
}

/// Middleware: a path with a NUL (`%00`) is refused before routing (see [`nul_error`]).
pub async fn refuse_nul_in_path<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if req.uri().path().contains("%00") {
        let e = nul_error("path");
        return Ok(req.into_response(e.error_response()).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
