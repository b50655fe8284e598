//! Rate limits: a budget per user and per API key, a separate one for bulk requests, the
//! `RateLimit-*` headers, 429 with `Retry-After`, and one budget shared by every server
//! process on the database.

use crm_e2e::{fresh_database, TestApp};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Waits for a new one-minute window when the current one ends within 20 s, so that a test
/// counts within one window.
async fn room_in_the_window() {
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if second >= 40 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .unwrap_or_else(|| panic!("header {name} missing: {h:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

fn number(h: &HeaderMap, name: &str) -> i64 {
    header(h, name).parse().unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value, HeaderMap) {
    app.call(Method::GET, path, Some(token), None).await
}

#[tokio::test]
async fn each_caller_has_a_budget_per_minute_and_bulk_requests_have_their_own() {
    room_in_the_window().await;
    let app = TestApp::spawn_with(|s| {
        s.rate_limit = 5;
        s.rate_limit_bulk = 2;
    })
    .await;
    // The admin's requests: GET /me (at sign-in), POST /users, POST /api-keys.
    let admin = app.workspace("Acme").await;
    let peer = app.user(&admin, "sales").await;
    let secret = app.api_key(&admin, &["contacts:read"]).await;

    for remaining in [1, 0] {
        let (s, _, h) = get(&app, "/api/v1/contacts", &admin.token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(number(&h, "ratelimit-limit"), 5);
        assert_eq!(number(&h, "ratelimit-remaining"), remaining);
        assert!((1..=60).contains(&number(&h, "ratelimit-reset")), "{h:?}");
        assert_eq!(header(&h, "ratelimit-policy"), "5;w=60");
    }
    let (s, problem, h) = get(&app, "/api/v1/contacts", &admin.token).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    assert_eq!(problem["type"], "/problems/rate-limited");
    assert_eq!(problem["status"], 429);
    assert!((1..=60).contains(&number(&h, "retry-after")), "{h:?}");
    assert_eq!(number(&h, "ratelimit-remaining"), 0);
    // Refused requests do not count, and nothing was done: still refused, still 0.
    let (s, _, h) = get(&app, "/api/v1/me", &admin.token).await;
    assert_eq!(
        (s, number(&h, "ratelimit-remaining")),
        (StatusCode::TOO_MANY_REQUESTS, 0)
    );

    // Another user and an API key of the same workspace have budgets of their own.
    let (s, _, h) = get(&app, "/api/v1/contacts", &peer.token).await;
    assert_eq!((s, number(&h, "ratelimit-remaining")), (StatusCode::OK, 3));
    let (s, _, h) = get(&app, "/api/v1/contacts", &secret).await;
    assert_eq!((s, number(&h, "ratelimit-remaining")), (StatusCode::OK, 4));

    // Batches draw on the bulk budget, apart from the rest.
    let batch = json!({"operations": [{"op": "create", "data": {"first_name": "Ada"}}]});
    for (status, remaining) in [
        (StatusCode::OK, 1),
        (StatusCode::OK, 0),
        (StatusCode::TOO_MANY_REQUESTS, 0),
    ] {
        let (s, v, h) = app
            .call(
                Method::POST,
                "/api/v1/contacts/batch",
                Some(&peer.token),
                Some(batch.clone()),
            )
            .await;
        assert_eq!(s, status, "{v}");
        let limit = number(&h, "ratelimit-limit");
        assert_eq!((limit, number(&h, "ratelimit-remaining")), (2, remaining));
        assert_eq!(
            h.contains_key("retry-after"),
            s == StatusCode::TOO_MANY_REQUESTS
        );
    }
    let (s, list, h) = get(&app, "/api/v1/contacts", &peer.token).await;
    assert_eq!((s, number(&h, "ratelimit-remaining")), (StatusCode::OK, 2));
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");

    // Operations endpoints are outside the budget.
    let (s, _, h) = get(&app, "/healthz", &admin.token).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn server_processes_on_one_database_share_each_callers_budget() {
    room_in_the_window().await;
    let db = fresh_database();
    let url = db.0.clone();
    let limits = |s: &mut crm_server::Settings| {
        s.rate_limit = 6;
        s.rate_limit_bulk = 6;
    };
    let first = TestApp::spawn_on(db, limits).await;
    let second = TestApp::spawn_on((url, None, None), limits).await;
    // One request on the first process (GET /me at sign-in), which starts a flush.
    let admin = first.workspace("Acme").await;
    for _ in 0..2 {
        assert_eq!(
            get(&first, "/api/v1/contacts", &admin.token).await.0,
            StatusCode::OK
        );
    }
    // A second later the next request flushes all four counted by the first process.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _, h) = get(&first, "/api/v1/contacts", &admin.token).await;
    assert_eq!((s, number(&h, "ratelimit-remaining")), (StatusCode::OK, 2));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The second process has counted nothing yet: its first request passes and reads the
    // database's total (4 + 1), after which one request is left.
    assert_eq!(
        get(&second, "/api/v1/contacts", &admin.token).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, _, h) = get(&second, "/api/v1/contacts", &admin.token).await;
    assert_eq!((s, number(&h, "ratelimit-remaining")), (StatusCode::OK, 0));
    let (s, _, _) = get(&second, "/api/v1/contacts", &admin.token).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_api_key_can_carry_budgets_of_its_own() {
    room_in_the_window().await;
    let app = TestApp::spawn_with(|s| {
        s.rate_limit = 5;
        s.rate_limit_bulk = 2;
    })
    .await;
    let admin = app.workspace("Acme").await;
    let create = |body: Value| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            app.call(Method::POST, "/api/v1/api-keys", Some(&token), Some(body))
                .await
        }
    };
    // An ERP sync key gets more than people do, and an unlimited bulk budget.
    let (s, erp, _) = create(
        json!({"name": "ERP", "scopes": ["contacts:read", "contacts:write"], "rate_limit": 8, "bulk_rate_limit": 0}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{erp}");
    assert_eq!(
        (&erp["rate_limit"], &erp["bulk_rate_limit"]),
        (&json!(8), &json!(0))
    );
    let secret = erp["secret"].as_str().unwrap().to_string();
    // Out of range is a 422 naming the field.
    let (s, v, _) =
        create(json!({"name": "X", "scopes": ["contacts:read"], "rate_limit": 2_000_000})).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate_limit")),
        "{v}"
    );

    for remaining in (0..8).rev() {
        let (s, _, h) = get(&app, "/api/v1/contacts", &secret).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(number(&h, "ratelimit-limit"), 8);
        assert_eq!(header(&h, "ratelimit-policy"), "8;w=60");
        assert_eq!(number(&h, "ratelimit-remaining"), remaining);
    }
    let (s, _, h) = get(&app, "/api/v1/contacts", &secret).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key("retry-after"));
    // Its batches are not counted at all (0: unlimited), well past the server's 2.
    let batch = json!({"operations": [{"op": "create", "data": {"first_name": "Ada"}}]});
    for _ in 0..4 {
        let (s, v, h) = app
            .call(
                Method::POST,
                "/api/v1/contacts/batch",
                Some(&secret),
                Some(batch.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(!h.contains_key("ratelimit-limit"), "{h:?}");
    }
    // The key's budgets show where keys are listed; a key without them has the server's.
    let (_, keys, _) = get(&app, "/api/v1/api-keys", &admin.token).await;
    assert_eq!(keys["data"][0]["rate_limit"], 8, "{keys}");
    let plain = app.api_key(&admin, &["contacts:read"]).await;
    let (s, _, h) = get(&app, "/api/v1/contacts", &plain).await;
    assert_eq!((s, number(&h, "ratelimit-limit")), (StatusCode::OK, 5));
}
