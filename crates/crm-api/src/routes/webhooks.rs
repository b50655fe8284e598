//! `/api/v1/webhooks`: subscriptions to the change feed, delivered by the server's worker
//! at least once, signed per Standard Webhooks, retried with exponential backoff. Every
//! write records its event (`webhook.created`, `webhook.updated`, `webhook.secret_rotated`,
//! `webhook.deleted`), without the secret.

use crate::auth::{Auth, Principal};
use crate::dto::common::{utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::events::record_shown;
use crate::extract::{etag, parse_json, IfMatch, OptionalJson, QueryPairs, RawJson};
use crate::state::AppState;
use crate::webhooks::{check_destination, new_secret, valid_secret};
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::{AttemptRow, DeliveryRow, WebhookRow};
use crm_db::repo::webhooks as repo;
use crm_db::DbConnection;
use crm_domain::values_time::now;
use crm_domain::{new_id, FieldError, Permission};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

/// The type of a subscription's events.
const EVENT: &str = "webhook";

/// Most event type patterns one subscription lists.
const MAX_EVENT_TYPES: usize = 100;

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/crm", "events": ["contact.*", "company.created"], "filter": {"field": "lifecycle_stage", "op": "eq", "value": "mature"}, "description": "ERP sync"}))]
pub struct CreateWebhook {
    /// `http` or `https`; loopback and private addresses are refused unless the server
    /// runs with `CRM_WEBHOOK_ALLOW_PRIVATE=true`. At most 2048 characters.
    #[schema(max_length = 2048)]
    pub url: String,
    /// Event types to receive: `*`, `<record>.*` or an exact type such as `contact.created`.
    #[schema(value_type = Vec<crate::dto::common::items::EventPattern>, min_items = 1, max_items = 100)]
    pub events: Vec<String>,
    /// Only events whose record (as `data` shows it) matches this filter (the filter
    /// language of `POST /{resource}/search`; text compares without regard to case).
    #[schema(value_type = Option<crate::listing::Filter>)]
    pub filter: Option<Value>,
    /// `whsec_` and the base64 of a 24- to 64-byte key; one is made when absent.
    #[schema(max_length = 100)]
    pub secret: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Default true. A paused subscription delivers nothing until it is resumed, then
    /// catches up.
    pub active: Option<bool>,
}

/// Changes to a subscription (merge-patch). A paused subscription (`active: false`)
/// delivers nothing; resumed, it catches up from where it stopped.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<crate::dto::common::items::EventPattern>>)]
    pub events: Option<Vec<String>>,
    /// `null` removes the filter.
    #[serde(default, deserialize_with = "crate::dto::common::double_option")]
    #[schema(value_type = Option<crate::listing::Filter>)]
    pub filter: Option<Option<Value>>,
    /// `null` removes the description.
    #[serde(default, deserialize_with = "crate::dto::common::double_option")]
    #[validate(length(max = 500))]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    #[schema(value_type = Option<crate::listing::Filter>)]
    pub filter: Option<Value>,
    pub active: bool,
    /// Until then, deliveries also carry a signature made with the secret the last rotation
    /// replaced (null: signed with the current secret alone).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Webhook {
            events: serde_json::from_str(&r.event_types).unwrap_or_default(),
            filter: r
                .filter
                .as_deref()
                .and_then(|f| serde_json::from_str(f).ok()),
            id: r.id,
            url: r.url,
            description: r.description,
            active: r.active,
            previous_secret_expires_at: r
                .previous_secret_expires_at
                .filter(|t| *t > now())
                .map(utc),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// A subscription with its signing secret (on create and on rotation only).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Verify each delivery's `webhook-signature` with it (any Standard Webhooks library).
    pub secret: String,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One event queued for one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` header: the same on every retry, so receivers can de-duplicate.
    pub id: String,
    pub event_id: String,
    pub event_sequence: i64,
    pub record_id: String,
    /// `pending`, `succeeded`, or `failed` once every retry is spent.
    #[schema(example = "succeeded")]
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempt_log: Vec<DeliveryAttempt>,
}

fn delivery(d: DeliveryRow, attempts: &[AttemptRow]) -> Delivery {
    Delivery {
        attempt_log: attempts
            .iter()
            .filter(|a| a.delivery_id == d.id)
            .map(|a| DeliveryAttempt {
                attempt: a.attempt,
                attempted_at: utc(a.attempted_at),
                status_code: a.status_code,
                error: a.error.clone(),
                duration_ms: a.duration_ms,
            })
            .collect(),
        id: d.id,
        event_id: d.event_id,
        event_sequence: d.event_seq,
        record_id: d.record_id,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at.map(utc),
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        created_at: utc(d.created_at),
        updated_at: utc(d.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

/// Checks a URL (format, then where it points).
async fn checked_url(state: &AppState, raw: &str, errors: &mut Vec<FieldError>) -> String {
    match crm_domain::webhook::parse_url(raw) {
        Ok(u) => {
            if let Err(m) = check_destination(&u, state.config.webhook_allow_private).await {
                errors.push(FieldError::new("url", "not_allowed", m));
            }
            u.to_string()
        }
        Err(m) => {
            errors.push(FieldError::new("url", "invalid_url", m));
            String::new()
        }
    }
}

fn checked_events(events: &[String], errors: &mut Vec<FieldError>) -> String {
    let pattern = |s: &str| {
        let word =
            |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        s == "*"
            || s.split_once('.')
                .is_some_and(|(r, v)| word(r) && (v == "*" || word(v)))
    };
    if events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "required",
            "name at least one event type, or `*`",
        ));
    }
    if events.len() > MAX_EVENT_TYPES {
        errors.push(FieldError::new(
            "events",
            "too_many",
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.len() > 100 || !pattern(e) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                "invalid_value",
                "must be `*`, `<record>.*` or `<record>.<verb>`, e.g. `contact.created`",
            ));
        } else if !out.contains(e) {
            out.push(e.clone());
        }
    }
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
}

fn checked_filter(filter: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    let f = filter?;
    match crm_domain::filter::parse(f, "filter") {
        Ok(_) => Some(f.to_string()),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    }
}

fn with_secret(status: StatusCode, row: WebhookRow) -> HttpResponse {
    let secret = row.secret.clone();
    let mut res = HttpResponse::build(status);
    res.insert_header(etag(row.version));
    if status == StatusCode::CREATED {
        res.insert_header(("Location", format!("/api/v1/webhooks/{}", row.id)));
    }
    res.json(WebhookWithSecret {
        webhook: row.into(),
        secret,
    })
}

/// Subscribe to changes.
///
/// Deliveries start with the next change: events that happened before are not sent (read
/// them from `GET /events`).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook", request_body = CreateWebhook,
    responses((status = 201, description = "Created; the secret is shown now and on rotation only", body = WebhookWithSecret, headers(("Location" = String), ("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let input: CreateWebhook = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let url = checked_url(&state, &input.url, &mut errors).await;
    let events = checked_events(&input.events, &mut errors);
    let filter = checked_filter(input.filter.as_ref(), &mut errors);
    if input.secret.as_deref().is_some_and(|s| !valid_secret(s)) {
        errors.push(FieldError::new(
            "secret",
            "invalid_value",
            "must be `whsec_` and the base64 of a 24- to 64-byte key",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let t = now();
    let mut row = WebhookRow {
        workspace_id: p.workspace.as_string(),
        id: new_id().to_string(),
        url,
        description: crate::dto::common::text(input.description),
        event_types: events,
        filter,
        secret: input.secret.unwrap_or_else(new_secret),
        active: input.active.unwrap_or(true),
        cursor_seq: 0,
        created_at: t,
        updated_at: t,
        version: 1,
        previous_secret: None,
        previous_secret_expires_at: None,
    };
    let row = state
        .tx(move |c| {
            row.cursor_seq = crm_db::repo::events::last_seq(c, p.workspace)?;
            repo::insert(c, &row)?;
            let shown = Webhook::from(row.clone());
            record_shown(c, &p, EVENT, "created", &row.id, None, Some(&shown))?;
            Ok(row)
        })
        .await?;
    Ok(with_secret(StatusCode::CREATED, row))
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub data: Vec<Webhook>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The workspace's subscriptions, by id (oldest first).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Subscriptions (without secrets)", body = WebhookPage), ReadErrors), security(("bearer" = [])))]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    Auth(p): Auth,
    q: crate::extract::QueryPairs,
) -> ApiResult<web::Json<WebhookPage>> {
    p.require(Permission::WebhooksManage)?;
    let (limit, cursor) = crate::extract::id_page_params(&q)?;
    let rows = state
        .db(move |c| Ok(repo::page(c, p.workspace, cursor.as_deref(), limit + 1)?))
        .await?;
    let (rows, next_cursor) = crate::extract::id_page(rows, limit, |w| &w.id);
    Ok(web::Json(WebhookPage {
        data: rows.into_iter().map(Webhook::from).collect(),
        next_cursor,
    }))
}

/// Get a subscription.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook", params(("id" = String, Path)),
    responses((status = 200, description = "The subscription", body = Webhook, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let id = id.into_inner();
    let row = state
        .db(move |c| Ok(repo::get(c, p.workspace, &id)?))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(row.version))
        .json(Webhook::from(row)))
}

/// Applies a change to a subscription under `If-Match` and records it as the event
/// `webhook.<verb>`.
async fn change(
    state: &web::Data<AppState>,
    p: Principal,
    (id, verb): (String, &'static str),
    if_match: Option<i32>,
    f: impl FnOnce(WebhookRow) -> WebhookRow + Send + 'static,
) -> ApiResult<WebhookRow> {
    state
        .tx(move |c| {
            let cur = repo::get(c, p.workspace, &id)?;
            crm_db::repo::records::check_version(cur.version, if_match)?;
            let before = Webhook::from(cur.clone());
            let version = cur.version + 1;
            let next = WebhookRow {
                updated_at: now(),
                version,
                ..f(cur)
            };
            repo::update(c, p.workspace, &next)?;
            let after = Webhook::from(next.clone());
            record_shown(c, &p, EVENT, verb, &id, Some(&before), Some(&after))?;
            Ok(next)
        })
        .await
}

/// Change a subscription (merge-patch).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "update_webhook",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the subscription changed since")),
    request_body(content = UpdateWebhook, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The subscription", body = Webhook, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let input: UpdateWebhook = parse_json(&body.0)?;
    let mut errors = validate_input(&input);
    let url = match &input.url {
        Some(u) => Some(checked_url(&state, u, &mut errors).await),
        None => None,
    };
    let events = input
        .events
        .as_deref()
        .map(|e| checked_events(e, &mut errors));
    let filter = input
        .filter
        .as_ref()
        .map(|f| checked_filter(f.as_ref(), &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let target = (id.into_inner(), "updated");
    let row = change(&state, p, target, if_match.0, move |cur| WebhookRow {
        url: url.unwrap_or(cur.url.clone()),
        event_types: events.unwrap_or(cur.event_types.clone()),
        filter: filter.unwrap_or(cur.filter.clone()),
        description: match input.description {
            Some(d) => crate::dto::common::text(d),
            None => cur.description.clone(),
        },
        active: input.active.unwrap_or(cur.active),
        ..cur
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(row.version))
        .json(Webhook::from(row)))
}

/// Replace the signing secret.
///
/// The replaced secret goes on signing deliveries next to the new one for
/// `expire_previous_after` seconds (default a day), so a receiver can switch to the new
/// secret without refusing a delivery; rotating again retires it at once.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret", params(("id" = String, Path)),
    request_body(content = Option<RotateSecret>, description = "Optional; without a body the replaced secret signs for 24 more hours"),
    responses((status = 200, description = "The subscription with its new secret", body = WebhookWithSecret, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    body: OptionalJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let input: RotateSecret = match &body.0 {
        // `null`, as the document allows, says no more than no body.
        Some(b) if b.trim_ascii() != b"null" => parse_json(b)?,
        _ => RotateSecret::default(),
    };
    let overlap = input.expire_previous_after.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::field(
            "expire_previous_after",
            "out_of_range",
            format!("must be between 0 and {MAX_OVERLAP_SECS} seconds (7 days)"),
        ));
    }
    let secret = new_secret();
    let target = (id.into_inner(), "secret_rotated");
    let row = change(&state, p, target, None, move |cur| {
        let expires = now() + chrono::Duration::seconds(overlap as i64);
        WebhookRow {
            previous_secret: (overlap > 0).then(|| cur.secret.clone()),
            previous_secret_expires_at: (overlap > 0).then_some(expires),
            secret,
            ..cur
        }
    })
    .await?;
    Ok(with_secret(StatusCode::OK, row))
}

/// How long a replaced secret keeps signing by default: a day.
const DEFAULT_OVERLAP_SECS: u32 = 86_400;
/// And at most: a week.
const MAX_OVERLAP_SECS: u32 = 7 * 86_400;

/// How a rotation treats the secret it replaces.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Seconds the replaced secret goes on signing deliveries next to the new one (each
    /// delivery then carries both signatures in `webhook-signature`, which Standard
    /// Webhooks verifiers accept), so receivers can switch without refusing one. 0 retires
    /// it at once; default 86400 (a day), at most 604800 (a week).
    #[schema(minimum = 0, maximum = 604800)]
    pub expire_previous_after: Option<u32>,
}

/// Delete a subscription and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let current = |c: &mut DbConnection, ws, id: &str| {
        let row = repo::get(c, ws, id)?;
        Ok((row.version, Webhook::from(row)))
    };
    let id = id.into_inner();
    crate::records::delete_versioned(&state, p, id, if_match, EVENT, current, repo::delete).await
}

/// A subscription's deliveries with every attempt, newest event first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Deliveries", body = DeliveryPage), ReadErrors), security(("bearer" = [])))]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<String>,
    q: QueryPairs,
) -> ApiResult<web::Json<DeliveryPage>> {
    p.require(Permission::WebhooksManage)?;
    let (limit, cursor) = crate::extract::id_page_params(&q)?;
    let id = id.into_inner();
    let (rows, attempts) = state
        .db(move |c| {
            repo::get(c, p.workspace, &id)?;
            let before = match &cursor {
                Some(d) => {
                    let d = repo::get_delivery(c, p.workspace, &id, d).map_err(|_| {
                        ApiError::field("cursor", "invalid_cursor", "the cursor is not valid")
                    })?;
                    Some((d.event_seq, d.id))
                }
                None => None,
            };
            let rows = repo::deliveries(c, p.workspace, &id, before, limit + 1)?;
            let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
            let attempts = repo::attempts(c, p.workspace, &ids)?;
            Ok((rows, attempts))
        })
        .await?;
    let (rows, next_cursor) = crate::extract::id_page(rows, limit, |d| &d.id);
    Ok(web::Json(DeliveryPage {
        data: rows.into_iter().map(|d| delivery(d, &attempts)).collect(),
        next_cursor,
    }))
}

/// Send an event again: queues a new delivery of the same event, due now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/replay", tag = "webhooks", operation_id = "replay_webhook_delivery",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, description = "The new delivery, queued", body = Delivery), WriteErrors), security(("bearer" = [])))]
#[post("/webhooks/{id}/deliveries/{delivery_id}/replay")]
pub async fn replay_delivery(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::WebhooksManage)?;
    let (id, delivery_id) = path.into_inner();
    let row = state
        .tx(move |c| {
            let old = repo::get_delivery(c, p.workspace, &id, &delivery_id)?;
            let row = DeliveryRow::pending(
                old.workspace_id,
                old.webhook_id,
                old.event_id,
                old.event_seq,
                old.record_id,
                now(),
            );
            repo::queue(c, std::slice::from_ref(&row))?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Accepted().json(delivery(row, &[])))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_secret)
        .service(list_deliveries)
        .service(replay_delivery);
}
