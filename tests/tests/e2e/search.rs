use crm_e2e::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn search(app: &TestApp, token: &str, resource: &str, body: Value) -> Vec<String> {
    let (s, v) = app
        .post(&format!("/api/v1/{resource}/search"), token, body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn q(app: &TestApp, token: &str, resource: &str, text: &str) -> Vec<String> {
    search(app, token, resource, json!({ "q": text })).await
}

async fn create(app: &TestApp, token: &str, resource: &str, body: Value) -> String {
    let (s, v) = app.post(&format!("/api/v1/{resource}"), token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Every record of a list, page after page by its cursor; no page holds more than `limit`.
async fn every_page(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}&limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = app.get(&url, token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = v["data"].as_array().unwrap();
        assert!(page.len() <= limit, "{v}");
        out.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn free_text_matches_every_word_as_a_substring() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let ada = create(
        &app,
        &a.token,
        "contacts",
        json!({"first_name": "Ada", "last_name": "Lovelace",
        "email": "ada.lovelace@analytical.example", "phone": "+44 20 7946 0018"}),
    )
    .await;
    let grace = create(
        &app,
        &a.token,
        "contacts",
        json!({"first_name": "Grace", "last_name": "Hopper",
        "email": "grace@navy.example"}),
    )
    .await;
    let odd = create(
        &app,
        &a.token,
        "contacts",
        json!({"first_name": "Say \"hi\" OR NEAR(x", "last_name": "semi-colon:ok*"}),
    )
    .await;

    // Multi-word, case-insensitive, substrings anywhere (the middle of an e-mail, a phone).
    assert_eq!(
        q(&app, &a.token, "contacts", "ada LOVE").await,
        vec![ada.clone()]
    );
    assert_eq!(
        q(&app, &a.token, "contacts", "lyTICal").await,
        vec![ada.clone()]
    );
    assert_eq!(
        q(&app, &a.token, "contacts", "7946").await,
        vec![ada.clone()]
    );
    assert!(q(&app, &a.token, "contacts", "ada hopper").await.is_empty());
    // Short words scan; they still combine with long ones.
    let mut both = vec![ada.clone(), grace.clone()];
    both.sort();
    assert_eq!(q(&app, &a.token, "contacts", "a").await.len(), 3);
    assert_eq!(
        q(&app, &a.token, "contacts", "gr").await,
        vec![grace.clone()]
    );
    assert_eq!(
        q(&app, &a.token, "contacts", "ex ada").await,
        vec![ada.clone()]
    );
    assert_eq!(q(&app, &a.token, "contacts", ".example").await, both);

    // FTS5 and LIKE syntax is plain text.
    for word in [
        "\"hi\"",
        "OR",
        "NEAR(x",
        "semi-colon:ok*",
        "\"",
        "*",
        "-",
        ":",
        "ok*",
        "NEAR(",
    ] {
        assert_eq!(
            q(&app, &a.token, "contacts", word).await,
            vec![odd.clone()],
            "{word}"
        );
    }
    assert!(q(&app, &a.token, "contacts", "ada*").await.is_empty());
    assert!(q(&app, &a.token, "contacts", "ada OR grace")
        .await
        .is_empty());
    assert!(q(&app, &a.token, "contacts", "%ov%").await.is_empty());

    // Updates re-index: the old text stops matching, the new one matches.
    let (s, v) = app
        .patch(
            &format!("/api/v1/contacts/{grace}"),
            &a.token,
            json!({"last_name": "Brewster"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(q(&app, &a.token, "contacts", "hopper").await.is_empty());
    assert_eq!(
        q(&app, &a.token, "contacts", "brews").await,
        vec![grace.clone()]
    );

    // Archived records are searched only when asked for.
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{ada}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    assert!(q(&app, &a.token, "contacts", "lovelace").await.is_empty());
    assert_eq!(
        search(
            &app,
            &a.token,
            "contacts",
            json!({"q": "lovelace", "archived": true})
        )
        .await,
        vec![ada.clone()]
    );

    // Workspace B never sees A's rows, and A never sees B's.
    let b = app.workspace("Beta").await;
    assert!(q(&app, &b.token, "contacts", "brewster").await.is_empty());
    assert!(q(&app, &b.token, "contacts", "gr").await.is_empty());
    let twin = create(
        &app,
        &b.token,
        "contacts",
        json!({"first_name": "Grace", "last_name": "Brewster"}),
    )
    .await;
    assert_eq!(q(&app, &b.token, "contacts", "brewster").await, vec![twin]);
    assert_eq!(q(&app, &a.token, "contacts", "brewster").await, vec![grace]);
}

#[tokio::test]
async fn free_text_finds_contacts_by_company_name_and_companies_by_domain() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let co = create(
        &app,
        &a.token,
        "companies",
        json!({"name": "Initech Systems", "domain": "initrode.example"}),
    )
    .await;
    let buyer = create(
        &app,
        &a.token,
        "contacts",
        json!({"first_name": "Peter", "last_name": "Gibbons"}),
    )
    .await;
    create(&app, &a.token, "contacts", json!({"first_name": "Milton"})).await;
    let (s, v) = app
        .post(
            &format!("/api/v1/contacts/{buyer}/companies"),
            &a.token,
            json!({"company_id": co}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    assert_eq!(
        q(&app, &a.token, "contacts", "INITECH peter").await,
        vec![buyer.clone()]
    );
    assert_eq!(
        q(&app, &a.token, "contacts", "in").await,
        vec![buyer.clone()]
    );
    // Only the company's name counts for its contacts, not its domain.
    assert!(q(&app, &a.token, "contacts", "initrode").await.is_empty());
    assert_eq!(
        q(&app, &a.token, "companies", "initrode").await,
        vec![co.clone()]
    );
    assert_eq!(
        q(&app, &a.token, "companies", "TECH sys").await,
        vec![co.clone()]
    );

    // Renaming the company re-indexes it.
    let (s, v) = app
        .patch(
            &format!("/api/v1/companies/{co}"),
            &a.token,
            json!({"name": "Penetrode"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(q(&app, &a.token, "contacts", "initech").await.is_empty());
    assert_eq!(q(&app, &a.token, "contacts", "netro").await, vec![buyer]);

    let b = app.workspace("Beta").await;
    assert!(q(&app, &b.token, "contacts", "netro").await.is_empty());
    assert!(q(&app, &b.token, "companies", "netro").await.is_empty());
}

#[tokio::test]
async fn free_text_pages_in_sort_order_across_own_and_company_matches() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let co = create(&app, &a.token, "companies", json!({"name": "Zedcorp"})).await;
    // Matches by own name, by company, by both, and not at all, interleaved in creation.
    let mut expected = Vec::new();
    for i in 0..9 {
        let name = if i % 3 == 0 { "Zedson" } else { "Smith" };
        let id = create(
            &app,
            &a.token,
            "contacts",
            json!({"first_name": format!("P{i}"), "last_name": name}),
        )
        .await;
        if i % 2 == 0 {
            let (s, v) = app
                .post(
                    &format!("/api/v1/contacts/{id}/companies"),
                    &a.token,
                    json!({"company_id": co}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        if i % 3 == 0 || i % 2 == 0 {
            expected.push(id);
        }
    }
    for (sort, ordered) in [
        ("created_at", expected.clone()),
        ("-created_at", {
            let mut r = expected.clone();
            r.reverse();
            r
        }),
    ] {
        let path = format!("/api/v1/contacts?q=zed&sort={sort}");
        let seen: Vec<String> = every_page(&app, &a.token, &path, 2)
            .await
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(seen, ordered, "sorted by {sort}");
    }
    let (s, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"q": "zed p6", "count": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["total"], 1, "{v}");
}

#[tokio::test]
async fn free_text_held_by_thousands_pages_in_order_completely() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    // Enough holders of one word that SQLite walks the creation order rather than sorting
    // every match; every third contact does not hold it.
    for round in 0..3 {
        let ops: Vec<Value> = (0..1000)
            .map(|i| {
                let last = if i % 3 == 2 { "Other" } else { "Walkerson" };
                json!({"op": "create", "data": {"first_name": format!("R{round}-{i}"), "last_name": last}})
            })
            .collect();
        let (s, v) = app
            .post(
                "/api/v1/contacts/batch",
                &a.token,
                json!({"operations": ops}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    for sort in ["created_at", "-created_at"] {
        let path = format!("/api/v1/contacts?q=walker&sort={sort}");
        let mut seen: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = Vec::new();
        for c in every_page(&app, &a.token, &path, 200).await {
            assert_eq!(c["last_name"], "Walkerson", "{c}");
            let key = (
                chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).unwrap(),
                c["id"].as_str().unwrap().to_string(),
            );
            if let Some(last) = seen.last() {
                if sort == "created_at" {
                    assert!(*last < key, "{last:?} then {key:?}");
                } else {
                    assert!(*last > key, "{last:?} then {key:?}");
                }
            }
            seen.push(key);
        }
        assert_eq!(seen.len(), 2001, "sorted by {sort}");
    }
}

/// On PostgreSQL, the trigram indexes that free text uses keep a 1000-entry histogram of
/// their text, so that a term thousands of records share is estimated as such and its page
/// is read in list order rather than by sorting every match.
#[tokio::test]
async fn postgres_keeps_a_wide_histogram_of_the_searched_text() {
    let app = TestApp::spawn().await;
    let applied = app.sql_count(
        "SELECT count(*) AS n FROM __diesel_schema_migrations WHERE version = '20261207050000'",
    );
    assert_eq!(applied, 1, "the migration is listed on both databases");
    if crm_e2e::backend() != "postgres" {
        // SQLite keeps no per-expression histogram; the migration is a no-op there.
        return;
    }
    let wide = app.sql_count(
        "SELECT count(*) AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         WHERE c.relkind = 'i' AND c.relname LIKE '%\\_trgm' AND pg_table_is_visible(c.oid) \
         AND a.attnum = 1 AND a.attstattarget = 1000",
    );
    let all = app.sql_count(
        "SELECT count(*) AS n FROM pg_class c WHERE c.relkind = 'i' \
         AND c.relname LIKE '%\\_trgm' AND pg_table_is_visible(c.oid)",
    );
    assert_eq!((wide, all), (7, 7));
}

/// Keeps autovacuum off the test's contacts (PostgreSQL): an autoanalyze also empties a
/// text index's pending list, and would race the flush the test is about.
fn quiet_autovacuum(app: &TestApp, postgres: bool) {
    if postgres {
        app.sql("ALTER TABLE contacts SET (autovacuum_enabled = false)");
    }
}

/// Pages in the pending list of the contacts' free-text index (PostgreSQL).
fn pending_pages(app: &TestApp) -> i64 {
    app.sql_count(
        "SELECT CAST(pending_pages AS BIGINT) AS n FROM public.pgstatginindex('contacts_text_trgm')",
    )
}

async fn create_named(app: &TestApp, token: &str, prefix: &str) {
    let ops: Vec<Value> = (0..500)
        .map(|i| json!({"op": "create", "data": {"first_name": format!("{prefix}{i}"), "last_name": "Pendleton", "email": format!("{prefix}.{i}@example.com")}}))
        .collect();
    let (s, v) = app
        .post("/api/v1/contacts/batch", token, json!({"operations": ops}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// On PostgreSQL the server moves new entries of the free-text indexes out of their pending
/// lists in the background (`CRM_TEXT_INDEX_FLUSH_MS`), so no write pays for the merge.
/// With the flush off, a batch's entries stay pending until something flushes them; with
/// it on, the list empties by itself and `/metrics` counts the pages. Search finds the
/// records in both states.
#[tokio::test]
async fn the_server_flushes_pending_text_index_entries_in_the_background() {
    let postgres = crm_e2e::backend() == "postgres";
    if postgres {
        TestApp::spawn().await.sql(
            "BEGIN; SELECT pg_advisory_xact_lock(7220119); \
             CREATE EXTENSION IF NOT EXISTS pgstattuple SCHEMA public; COMMIT;",
        );
    }

    // Flush off: the entries wait in the pending list; a flush moves them.
    let app = TestApp::spawn_with(|s| s.text_index_flush_ms = 0).await;
    quiet_autovacuum(&app, postgres);
    let a = app.workspace("Acme").await;
    create_named(&app, &a.token, "Quillon").await;
    assert_eq!(q(&app, &a.token, "contacts", "quillon417").await.len(), 1);
    let pool = crm_server::open_database(&TestApp::settings(&app.database_url)).unwrap();
    if postgres {
        let before = pending_pages(&app);
        assert!(before > 0, "a batch's entries are pending");
        assert!(crm_server::text_indexes::flush(&pool).unwrap() >= before);
        assert_eq!(pending_pages(&app), 0);
    }
    assert_eq!(
        crm_server::text_indexes::flush(&pool).unwrap(),
        0,
        "nothing left"
    );
    assert_eq!(q(&app, &a.token, "contacts", "quillon417").await.len(), 1);

    // Flush on: the list empties by itself.
    let app = TestApp::spawn_with(|s| s.text_index_flush_ms = 50).await;
    quiet_autovacuum(&app, postgres);
    let a = app.workspace("Acme").await;
    create_named(&app, &a.token, "Marrow").await;
    if postgres {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while pending_pages(&app) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the pending list stays"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The list can read empty a moment before the flushing task counts what it moved.
        loop {
            let metrics = app.metrics().await;
            let flushed: f64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix("crm_text_index_pages_flushed_total "))
                .expect("the counter is exposed")
                .parse()
                .unwrap();
            if flushed > 0.0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no flushed pages counted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(q(&app, &a.token, "contacts", "marrow123").await.len(), 1);
    assert_eq!(q(&app, &a.token, "contacts", "pendleton").await.len(), 50);
}
