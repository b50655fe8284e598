use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use crm_e2e::{Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the receiver saw it: headers, body, and the status it answered.
type Received = (http::HeaderMap, Vec<u8>, u16);

/// What a receiver got: headers and body of each request, in arrival order.
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first (usize::MAX: always).
    fail_first: Arc<AtomicUsize>,
}

impl Inbox {
    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
    fn ok_bodies(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(_, _, s)| *s == 200)
            .map(|(_, b, _)| serde_json::from_slice(&b).unwrap())
            .collect()
    }
    async fn wait_for(&self, n_ok: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.ok_bodies();
            if got.len() >= n_ok {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} deliveries arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    for (k, v) in req.headers() {
        headers.insert(
            http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let failing = inbox
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            usize::MAX => Some(usize::MAX),
            n => Some(n - 1),
        })
        .is_ok();
    let status = if failing { 500 } else { 200 };
    inbox
        .got
        .lock()
        .unwrap()
        .push((headers, body.to_vec(), status));
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

/// A receiver on a loopback port: its URL and inbox.
fn receiver(fail_first: usize) -> (String, Inbox) {
    let inbox = Inbox::default();
    inbox.fail_first.store(fail_first, Ordering::SeqCst);
    let data = web::Data::new(inbox.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/hooks"), inbox)
}

async fn subscribe(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/webhooks", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn deliveries_are_signed_retried_in_order_per_record_logged_and_replayable() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    // An event before the subscription is not sent.
    app.post(
        "/api/v1/contacts",
        &a.token,
        json!({"first_name": "Before"}),
    )
    .await;
    let (url, inbox) = receiver(2);
    let hook = subscribe(&app, &a, json!({"url": url, "events": ["contact.*"]})).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook["id"].as_str().unwrap().to_string();

    let (_, c) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    for name in ["Ada B", "Ada C"] {
        app.patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"first_name": name}),
        )
        .await;
    }
    app.post(
        "/api/v1/companies",
        &a.token,
        json!({"name": "Not subscribed"}),
    )
    .await;

    let got = inbox.wait_for(3).await;
    // The first delivery failed twice; the record's later changes waited behind it.
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["contact.created", "contact.updated", "contact.updated"]
    );
    assert_eq!(got[2]["data"]["first_name"], "Ada C");
    assert!(got.iter().all(|e| e["record_id"] == id.as_str()));
    let all = inbox.all();
    assert_eq!(
        all.iter().map(|r| r.2).collect::<Vec<_>>(),
        [500, 500, 200, 200, 200]
    );
    assert_eq!(
        all[0].0["webhook-id"], all[2].0["webhook-id"],
        "a retry keeps its id"
    );
    // Every request verifies with an off-the-shelf Standard Webhooks verifier.
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for (headers, body, _) in &all {
        verifier.verify(body, headers).unwrap();
        let mut tampered = body.clone();
        tampered[0] = b' ';
        assert!(verifier.verify(&tampered, headers).is_err());
    }

    let (s, log) = app
        .get(&format!("/api/v1/webhooks/{hook_id}/deliveries"), &a.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let log = log["data"].as_array().unwrap().clone();
    assert_eq!(log.len(), 3, "newest first, one per matching event");
    let first = &log[2];
    assert_eq!(
        (first["status"].as_str(), first["attempts"].as_i64()),
        (Some("succeeded"), Some(3))
    );
    let codes: Vec<i64> = first["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(first["id"], all[0].0["webhook-id"].to_str().unwrap());

    // Replay sends the event again; rotation changes the key at once.
    let (s, v, _) = app
        .call(
            Method::POST,
            &format!(
                "/api/v1/webhooks/{hook_id}/deliveries/{}/replay",
                first["id"].as_str().unwrap()
            ),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending"))
    );
    let again = inbox.wait_for(4).await;
    assert_eq!(again[3]["id"], got[0]["id"], "the same event");
    let (s, rotated, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{hook_id}/rotate-secret"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    // For a day, deliveries carry both signatures: receivers on either secret accept them.
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{id}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    inbox.wait_for(5).await;
    let (headers, body, _) = inbox.all().pop().unwrap();
    let signatures = headers["webhook-signature"].to_str().unwrap().to_string();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    standardwebhooks::Webhook::new(&new_secret)
        .unwrap()
        .verify(&body, &headers)
        .unwrap();
    verifier.verify(&body, &headers).unwrap();

    let path = format!("/api/v1/webhooks/{hook_id}/rotate-secret");
    let (s, v) = app
        .post(&path, &a.token, json!({"expire_previous_after": 700000}))
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expire_previous_after")
        )
    );
    // Retired at once: only the newest secret signs.
    let (s, newest) = app
        .post(&path, &a.token, json!({"expire_previous_after": 0}))
        .await;
    assert_eq!(s, StatusCode::OK, "{newest}");
    assert_eq!(newest["previous_secret_expires_at"], Value::Null);
    let (s, _) = app
        .post(
            &format!("/api/v1/contacts/{id}/restore"),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    inbox.wait_for(6).await;
    let (headers, body, _) = inbox.all().pop().unwrap();
    assert_eq!(
        headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    standardwebhooks::Webhook::new(newest["secret"].as_str().unwrap())
        .unwrap()
        .verify(&body, &headers)
        .unwrap();
    assert!(standardwebhooks::Webhook::new(&new_secret)
        .unwrap()
        .verify(&body, &headers)
        .is_err());
    assert!(verifier.verify(&body, &headers).is_err());
}

#[tokio::test]
async fn subscriptions_validate_filter_pause_and_give_up() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let bad = |body: Value| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let (s, v) = app.post("/api/v1/webhooks", &token, body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            v["errors"][0]["field"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(
        bad(json!({"url": "ftp://example.com/x", "events": ["*"]})).await,
        "url"
    );
    assert_eq!(
        bad(json!({"url": "https://example.com", "events": []})).await,
        "events"
    );
    assert_eq!(
        bad(json!({"url": "https://example.com", "events": ["Contact.Created"]})).await,
        "events[0]"
    );
    assert_eq!(
        bad(json!({"url": "https://example.com", "events": ["*"], "secret": "plain"})).await,
        "secret"
    );
    assert_eq!(
        bad(json!({"url": "https://example.com", "events": ["*"], "filter": {"field": "x", "op": "like", "value": 1}})).await,
        "filter.op"
    );
    let boss = app.user(&a, "manager").await;
    let (s, v) = app.get("/api/v1/webhooks", &boss.token).await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("webhooks:manage"))
    );

    // Only matching records are delivered; a paused subscription catches up when resumed.
    let (url, inbox) = receiver(0);
    let hook = subscribe(
        &app,
        &a,
        json!({"url": url, "events": ["contact.created"], "filter": {"field": "lifecycle_stage", "op": "eq", "value": "mature"}}),
    )
    .await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let (s, v) = app.patch(&path, &a.token, json!({"active": false})).await;
    assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)));
    for (n, stage) in [("P", "prospect"), ("M", "mature")] {
        app.post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": n, "lifecycle_stage": stage}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(inbox.all().is_empty(), "paused");
    app.patch(&path, &a.token, json!({"active": true})).await;
    let got = inbox.wait_for(1).await;
    assert_eq!(got[0]["data"]["first_name"], "M");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox.all().len(), 1, "the prospect did not match");

    // A receiver that always fails: the delivery fails for good after the schedule,
    // and other records' deliveries are not held up by it.
    let (url, dead) = receiver(usize::MAX);
    let hook = subscribe(&app, &a, json!({"url": url, "events": ["company.*"]})).await;
    app.post("/api/v1/companies", &a.token, json!({"name": "Gone"}))
        .await;
    let log_path = format!(
        "/api/v1/webhooks/{}/deliveries",
        hook["id"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivery = loop {
        let (_, v) = app.get(&log_path, &a.token).await;
        if v["data"][0]["status"] == "failed" {
            break v["data"][0].clone();
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["attempts"], 3, "one try and two retries");
    assert_eq!(delivery["last_status_code"], 500);
    assert_eq!(dead.all().len(), 3);
    let metrics = app.metrics().await;
    for outcome in ["succeeded", "retrying", "failed"] {
        assert!(
            metrics.contains(&format!(
                "crm_webhook_attempts_total{{outcome=\"{outcome}\"}}"
            )),
            "{metrics}"
        );
    }
    assert!(metrics.contains("crm_webhook_worker_round_seconds_count"));

    // Another workspace sees none of it.
    let b = app.workspace("Beta").await;
    assert_eq!(app.get(&path, &b.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&log_path, &b.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/webhooks", &b.token).await.1,
        json!({"data": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let app = TestApp::spawn_with(|s| s.webhook_allow_private = false).await;
    let a = app.workspace("Acme").await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://[::1]/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest",
    ] {
        let (s, v) = app
            .post(
                "/api/v1/webhooks",
                &a.token,
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(v["errors"][0]["code"], "not_allowed", "{url}");
    }
}

/// Polls a count until it answers `want` (housekeeping runs in the background).
async fn eventually(app: &TestApp, what: &str, want: i64, count: String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = app.sql_count(&count);
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {n}, expected {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn housekeeping_removes_expired_keys_old_deliveries_and_events_no_webhook_needs() {
    let app = TestApp::spawn_with(|s| {
        s.housekeeping_secs = 1;
        s.event_retention_days = 30;
    })
    .await;
    let a = app.workspace("Acme").await;
    let (url, inbox) = receiver(0);
    subscribe(&app, &a, json!({"url": url, "events": ["contact.*"]})).await;
    for i in 0..3 {
        let res = app
            .client
            .post(format!("{}/api/v1/contacts", app.base))
            .bearer_auth(&a.token)
            .header("Idempotency-Key", format!("create-{i}"))
            .json(&json!({"first_name": "Old", "email": format!("old{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    inbox.wait_for(3).await;
    let ws = &a.workspace_id;
    eventually(
        &app,
        "deliveries finished",
        3,
        format!("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE workspace_id = '{ws}' AND status = 'succeeded'"),
    )
    .await;
    let last = app.sql_count(&format!(
        "SELECT MAX(event_seq) AS n FROM webhook_deliveries WHERE workspace_id = '{ws}'"
    ));

    // Everything becomes two months old, and the last delivery is to be sent again (later).
    app.sql(&format!(
        "UPDATE events SET occurred_at = '2020-01-01 00:00:00' WHERE workspace_id = '{ws}';
         UPDATE webhook_deliveries SET updated_at = '2020-01-01 00:00:00' WHERE workspace_id = '{ws}';
         UPDATE idempotency_keys SET created_at = '2020-01-01 00:00:00' WHERE workspace_id = '{ws}';
         UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = '2999-01-01 00:00:00'
           WHERE workspace_id = '{ws}' AND event_seq = {last};"
    ));
    eventually(
        &app,
        "idempotency keys",
        0,
        format!("SELECT COUNT(*) AS n FROM idempotency_keys WHERE workspace_id = '{ws}'"),
    )
    .await;
    eventually(
        &app,
        "finished deliveries",
        0,
        format!("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE workspace_id = '{ws}' AND status <> 'pending'"),
    )
    .await;
    eventually(
        &app,
        "events before the one a delivery still needs",
        0,
        format!("SELECT COUNT(*) AS n FROM events WHERE workspace_id = '{ws}' AND seq < {last}"),
    )
    .await;
    let kept = |sql: &str| app.sql_count(&format!("{sql} WHERE workspace_id = '{ws}'"));
    assert_eq!(kept("SELECT COUNT(*) AS n FROM webhook_deliveries"), 1);
    assert_eq!(
        kept("SELECT COUNT(*) AS n FROM webhook_attempts"),
        1,
        "the pending delivery keeps its attempt"
    );
    assert_eq!(
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM events WHERE workspace_id = '{ws}' AND seq = {last}"
        )),
        1,
        "the event a delivery still needs stays"
    );

    // Once it is done, it goes, and then its event; a new event stays, numbered on.
    app.sql(&format!(
        "UPDATE webhook_deliveries SET status = 'succeeded', next_attempt_at = NULL WHERE workspace_id = '{ws}'"
    ));
    eventually(
        &app,
        "old events",
        0,
        format!("SELECT COUNT(*) AS n FROM events WHERE workspace_id = '{ws}'"),
    )
    .await;
    assert_eq!(kept("SELECT COUNT(*) AS n FROM webhook_attempts"), 0);
    let (st, v) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "New"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, feed) = app.get("/api/v1/events", &a.token).await;
    let seqs: Vec<i64> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![last + 1], "{feed}");
}
