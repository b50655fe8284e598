use crm_e2e::TestApp;
use diesel::Connection;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_a_different_body() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let send = |body: serde_json::Value, key: &'static str| {
        let req = app
            .client
            .post(format!("{}/api/v1/contacts", app.base))
            .bearer_auth(&a.token)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let first = send(json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let loc = first.headers().get("location").unwrap().clone();
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.headers().get("location").unwrap(), &loc);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        1,
        "acted once"
    );
    let other = send(json!({"first_name": "Twice"}), "k-1").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Keys belong to a workspace.
    let b = app.workspace("Beta").await;
    let r = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(&b.token)
        .header("Idempotency-Key", "k-1")
        .json(&json!({"first_name": "Twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn health_docs_and_spec() {
    let app = TestApp::spawn().await;
    let (s, v, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (s, spec, _) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let r = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("swagger"));
    let (s, v, _) = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(
        (s, v["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
}

#[test]
fn the_checked_in_spec_matches_the_code() {
    let checked_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../api-spec/openapi.json"
    ))
    .expect("api-spec/openapi.json");
    assert_eq!(
        checked_in.trim_end(),
        crm_api::openapi::json().trim_end(),
        "run `make openapi` and commit api-spec/openapi.json"
    );
}

#[test]
fn migrations_go_up_down_and_up_again() {
    let (url, schema, _dir) = crm_e2e::fresh_database();
    let url = crm_db::DatabaseUrl::parse(&url).unwrap();
    let mut conn = crm_db::conn::Manager::new(url).establish().unwrap();
    assert!(!crm_db::run_migrations(&mut conn).unwrap().is_empty());
    assert!(crm_db::conn::revert_all_migrations(&mut conn).unwrap() > 0);
    assert!(!crm_db::run_migrations(&mut conn).unwrap().is_empty());
    if let Some((admin, schema)) = schema {
        use diesel::connection::SimpleConnection;
        drop(conn);
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}

#[test]
fn a_mistyped_database_url_fails_loudly() {
    assert!(crm_db::DatabaseUrl::parse("postgress://x").is_err());
    assert!(crm_db::DatabaseUrl::parse("crm.db").is_err());
}

#[tokio::test]
async fn request_ids_and_metrics() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    // Kept when given, made when absent or unusable, and on errors too.
    let send = |path: &str, id: Option<&str>, token: Option<&str>| {
        let mut r = app.client.get(format!("{}{path}", app.base));
        if let Some(id) = id {
            r = r.header("X-Request-Id", id);
        }
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = send("/api/v1/me", Some("abc-123"), Some(&a.token))
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = send("/api/v1/me", Some("abc-123"), Some("garbage"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let long = "x".repeat(200);
    let r = send("/api/v1/nowhere", Some(&long), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let made = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let r = send("/healthz", None, None).await.unwrap();
    let other = r.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(other).is_ok() && other != made);

    let (s, c) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "M"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), &a.token).await.0,
        StatusCode::OK
    );
    let r = send("/metrics", None, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    // Routes are labelled by pattern (never by id), with method and status.
    assert!(
        text.contains(r#"crm_http_request_duration_seconds_count{method="GET",route="/api/v1/contacts/{id}",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/me",status="401""#),
        "{text}"
    );
    assert!(!text.contains(id), "no record ids in labels");
    assert!(text.contains("crm_db_pool_max_connections 4"), "{text}");
    assert!(text.contains("crm_db_pool_connections"));
}
