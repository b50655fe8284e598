use crm_e2e::TestApp;
use diesel::Connection;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_a_different_body() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let send = |path: &'static str, token: &str, body: serde_json::Value, key: &'static str| {
        let req = app
            .client
            .post(format!("{}/api/v1/{path}", app.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let first = send("contacts", &a.token, json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let loc = first.headers().get("location").unwrap().clone();
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send("contacts", &a.token, json!({"first_name": "Once"}), "k-1").await;
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
    let other = send("contacts", &a.token, json!({"first_name": "Twice"}), "k-1").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Keys belong to a workspace.
    let b = app.workspace("Beta").await;
    let r = send("contacts", &b.token, json!({"first_name": "Twice"}), "k-1").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // And to a caller: another user, or an API key, of the same workspace sending the
    // same key and body runs a request of its own, never sees the first caller's answer.
    let rep = app.user(&a, "sales").await;
    let theirs = send("contacts", &rep.token, json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(theirs.headers().get("idempotent-replayed").is_none());
    let theirs: serde_json::Value = theirs.json().await.unwrap();
    assert_ne!(theirs["id"], first["id"]);
    let key = app.api_key(&a, &["contacts:write", "contacts:read"]).await;
    let by_key = send("contacts", &key, json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(by_key.status(), StatusCode::CREATED);
    assert!(by_key.headers().get("idempotent-replayed").is_none());
    // Each caller's own repeat is replayed from its own first answer.
    let again = send("contacts", &rep.token, json!({"first_name": "Once"}), "k-1").await;
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["id"],
        theirs["id"]
    );
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        3
    );

    // An admin's new API key, secret and all, is never handed to another caller who
    // repeats the request: that caller is checked as any request is (403).
    let body = json!({"name": "ERP", "scopes": ["contacts:read"]});
    let issued = send("api-keys", &a.token, body.clone(), "key-1").await;
    assert_eq!(issued.status(), StatusCode::CREATED);
    let manager = app.user(&a, "manager").await;
    let refused = send("api-keys", &manager.token, body.clone(), "key-1").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert!(refused.get("secret").is_none(), "{refused}");
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

/// A statement kept prepared binds its values in order, in each dialect's placeholder
/// syntax, whether it is loaded or executed; and on PostgreSQL it really stays prepared on
/// the connection (a raw statement executed by reference once lost that).
#[test]
fn prepared_raw_statements_bind_in_order_and_stay_prepared() {
    use crm_db::query::{Bind, SqlBuf};
    use diesel::connection::SimpleConnection;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let (url, schema, _dir) = crm_e2e::fresh_database();
    let url = crm_db::DatabaseUrl::parse(&url).unwrap();
    let mut conn = crm_db::conn::Manager::new(url).establish().unwrap();
    conn.batch_execute(
        "CREATE TABLE prep_probe (name TEXT NOT NULL, n BIGINT NOT NULL, note TEXT)",
    )
    .unwrap();
    let dialect = conn.dialect();
    let insert = |name: &str, n: i64, note: Option<&str>| {
        let mut b = SqlBuf::new(dialect);
        b.push("INSERT INTO prep_probe (name, n, note) VALUES (");
        b.bind_list([
            Bind::Text(name.into()),
            Bind::Int(n),
            Bind::OptText(note.map(String::from)),
        ]);
        b.push(")");
        b
    };
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let note = (i == 1).then_some("$1 ? is text, not a placeholder");
        assert_eq!(
            insert(name, i as i64 * 10, note)
                .execute_prepared(&mut conn)
                .unwrap(),
            1
        );
    }
    let mut q = SqlBuf::new(dialect);
    q.push("SELECT name, n FROM prep_probe WHERE n >= ");
    q.bind(Bind::Int(10));
    q.push(" AND name <> ");
    q.bind(Bind::Text("z".into()));
    q.push(" ORDER BY n");
    let rows: Vec<Row> = q.load_prepared(&mut conn).unwrap();
    let got: Vec<(String, i64)> = rows.into_iter().map(|r| (r.name, r.n)).collect();
    assert_eq!(got, [("b".to_string(), 10), ("c".to_string(), 20)]);
    let mut note = SqlBuf::new(dialect);
    note.push("SELECT name, n FROM prep_probe WHERE note = ");
    note.bind(Bind::Text("$1 ? is text, not a placeholder".into()));
    let rows: Vec<Row> = note.load_prepared(&mut conn).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "b");
    if let Some((admin, schema)) = schema {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count: Vec<Count> = diesel::RunQueryDsl::load(
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_prepared_statements \
                 WHERE statement LIKE 'INSERT INTO prep_probe%' OR statement LIKE 'SELECT name, n FROM prep_probe%'",
            ),
            &mut conn,
        )
        .unwrap();
        // One insert, executed three times, and two queries: three statements in all.
        assert_eq!(count[0].n, 3);
        drop(conn);
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}

/// Both dialects have the same migrations, and no two share a version: diesel keys applied
/// migrations by the digits of the directory name, so a repeated version is silently skipped.
#[test]
fn migrations_match_across_dialects_and_have_unique_versions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let names = |dialect: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dialect))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let pg = names("postgres");
    assert_eq!(pg, names("sqlite"), "the same migrations on both databases");
    let mut versions: Vec<String> = pg
        .iter()
        .map(|n| {
            let (version, _) = n.split_once('_').expect("<version>_<name>");
            version.chars().filter(char::is_ascii_digit).collect()
        })
        .collect();
    versions.dedup();
    assert_eq!(versions.len(), pg.len(), "repeated versions in {pg:?}");
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

/// Every string a client can send has a documented maximum length (enums and formatted
/// values such as dates excepted), down to the items of lists.
#[tokio::test]
async fn every_request_string_documents_its_maximum_length() {
    let spec: serde_json::Value = serde_json::from_str(crm_api::openapi::json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    fn walk(
        s: &serde_json::Value,
        schemas: &serde_json::Value,
        path: &str,
        seen: &mut Vec<String>,
        bad: &mut Vec<String>,
    ) {
        if let Some(r) = s["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap().to_string();
            if !seen.contains(&name) {
                seen.push(name.clone());
                walk(&schemas[&name], schemas, &name, seen, bad);
            }
            return;
        }
        for k in ["oneOf", "anyOf", "allOf"] {
            for x in s[k].as_array().into_iter().flatten() {
                walk(x, schemas, path, seen, bad);
            }
        }
        let is_string = s["type"] == "string"
            || s["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("string")));
        if is_string
            && s.get("maxLength").is_none()
            && s.get("enum").is_none()
            && s.get("format").is_none()
        {
            bad.push(path.to_string());
        }
        for (k, v) in s["properties"].as_object().into_iter().flatten() {
            walk(v, schemas, &format!("{path}.{k}"), seen, bad);
        }
        if let Some(items) = s.get("items") {
            walk(items, schemas, &format!("{path}[]"), seen, bad);
        }
    }
    let mut bad = Vec::new();
    let mut seen = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (_, media) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                walk(
                    &media["schema"],
                    schemas,
                    &format!("{method} {path}"),
                    &mut seen,
                    &mut bad,
                );
            }
        }
    }
    assert!(bad.is_empty(), "strings without maxLength: {bad:?}");
}

/// A record read to be changed holds its row until the transaction ends: on PostgreSQL
/// another transaction cannot lock it meanwhile; on SQLite the write transaction holds the
/// whole database.
#[tokio::test]
async fn a_record_read_for_a_change_stays_locked_until_the_transaction_ends() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, c) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let ws = crm_domain::WorkspaceId::from_authenticated(
        uuid::Uuid::parse_str(&a.workspace_id).unwrap(),
    );
    let connect = || {
        let url = crm_db::DatabaseUrl::parse(&app.database_url).unwrap();
        crm_db::conn::Manager::new(url).establish().unwrap()
    };
    let (mut first, mut second) = (connect(), connect());
    let probe = format!("SELECT 1 FROM contacts WHERE id = '{id}' FOR UPDATE NOWAIT");
    crm_db::write_tx(&mut first, |c| {
        let row = crm_db::repo::contacts::get_contact_locked(c, ws, &id)?;
        assert_eq!(row.first_name.as_deref(), Some("Ada"));
        match &mut second {
            crm_db::DbConnection::Pg(other) => {
                let refused = other.batch_execute(&probe).unwrap_err().to_string();
                assert!(refused.contains("could not obtain lock"), "{refused}");
            }
            crm_db::DbConnection::Sqlite(other) => {
                other.batch_execute("PRAGMA busy_timeout = 0").unwrap();
                let refused = other
                    .batch_execute("BEGIN IMMEDIATE")
                    .unwrap_err()
                    .to_string();
                assert!(refused.contains("locked"), "{refused}");
            }
        }
        Ok::<_, crm_db::RepoError>(())
    })
    .unwrap();
    // Once it ends, the row is free again.
    match &mut second {
        crm_db::DbConnection::Pg(other) => other.batch_execute(&probe).unwrap(),
        crm_db::DbConnection::Sqlite(other) => {
            other.batch_execute("BEGIN IMMEDIATE; ROLLBACK").unwrap()
        }
    }
    let unknown = crm_db::repo::contacts::get_contact_locked(
        &mut first,
        ws,
        "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01",
    );
    assert!(
        matches!(unknown, Err(crm_db::RepoError::NotFound)),
        "{unknown:?}"
    );
}
