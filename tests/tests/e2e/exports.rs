use crm_e2e::{Session, TestApp};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

/// GETs an export: status, headers and the body as text.
async fn export(
    app: &TestApp,
    token: &str,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = app
        .client
        .get(format!("{}{}", app.base, path))
        .bearer_auth(token);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.expect("body"))
}

/// An export that must succeed: its headers and body.
async fn exported(
    app: &TestApp,
    token: &str,
    path: &str,
    accept: Option<&str>,
) -> (HeaderMap, String) {
    let (s, h, body) = export(app, token, path, accept).await;
    assert_eq!(s, StatusCode::OK, "{path}: {body}");
    (h, body)
}

fn csv_rows(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// Creates contacts in one batch; returns them as the API shows them.
async fn create_contacts(app: &TestApp, s: &Session, data: Vec<Value>) -> Vec<Value> {
    let ops: Vec<Value> = data
        .into_iter()
        .map(|d| json!({"op": "create", "data": d}))
        .collect();
    let (st, v) = app
        .post(
            "/api/v1/contacts/batch",
            &s.token,
            json!({"operations": ops, "atomic": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 201, "{r}");
            r["data"].clone()
        })
        .collect()
}

async fn define_fields(app: &TestApp, s: &Session) {
    for f in [
        json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]}),
        json!({"name": "score", "label": "Score", "type": "number"}),
    ] {
        let (st, v) = app.post("/api/v1/fields/contacts", &s.token, f).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
}

#[tokio::test]
async fn csv_and_ndjson_carry_every_field_and_custom_fields() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    define_fields(&app, &a).await;
    let created = create_contacts(
        &app,
        &a,
        vec![
            json!({"first_name": "Ada", "last_name": "Lovelace, \"the first\"", "email": "ada@example.com",
                   "tags": ["vip", "math"], "custom": {"segment": "enterprise", "score": 9.5}}),
            json!({"first_name": "Line\nBreak", "custom": {"segment": "smb"}}),
            json!({"first_name": "Plain"}),
        ],
    )
    .await;
    let mut ids: Vec<&str> = created.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort();

    let (h, body) = exported(&app, &a.token, "/api/v1/exports/contacts?format=csv", None).await;
    assert_eq!(h[CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = h[CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"contacts-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(body.contains("\r\n"), "RFC 4180 line ends");
    let (header, rows) = csv_rows(&body);
    assert_eq!(header[0], "id");
    assert!(!header.contains(&"custom".to_string()), "{header:?}");
    let (seg, score) = (col(&header, "custom.segment"), col(&header, "custom.score"));
    let (id, last, first, email, tags) = (
        col(&header, "id"),
        col(&header, "last_name"),
        col(&header, "first_name"),
        col(&header, "email"),
        col(&header, "tags"),
    );
    assert_eq!(
        rows.iter().map(|r| r[id].as_str()).collect::<Vec<_>>(),
        ids,
        "in id order"
    );
    let ada = rows.iter().find(|r| r[email] == "ada@example.com").unwrap();
    assert_eq!(ada[last], "Lovelace, \"the first\"");
    assert_eq!(
        serde_json::from_str::<Value>(&ada[tags]).unwrap(),
        json!(["vip", "math"])
    );
    assert_eq!(
        (ada[seg].as_str(), ada[score].as_str()),
        ("enterprise", "9.5")
    );
    let plain = rows.iter().find(|r| r[first] == "Plain").unwrap();
    assert_eq!(
        (plain[email].as_str(), plain[seg].as_str()),
        ("", ""),
        "nulls are empty"
    );
    assert!(rows.iter().any(|r| r[first] == "Line\nBreak"));

    // NDJSON: each line is the record exactly as GET shows it; chosen by Accept too.
    let (h, body) = exported(
        &app,
        &a.token,
        "/api/v1/exports/contacts",
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(h[CONTENT_TYPE], "application/x-ndjson");
    let lines = ndjson(&body);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let id = line["id"].as_str().unwrap();
        let (s, shown) = app.get(&format!("/api/v1/contacts/{id}"), &a.token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(line, &shown);
    }

    // `fields` picks and orders the columns (NDJSON: keys, custom ones nested).
    let (_, body) = exported(
        &app,
        &a.token,
        "/api/v1/exports/contacts?fields=custom.segment,id,email",
        Some("text/csv"),
    )
    .await;
    let (header, rows) = csv_rows(&body);
    assert_eq!(header, ["custom.segment", "id", "email"]);
    assert_eq!(rows.len(), 3);
    let (_, body) = exported(
        &app,
        &a.token,
        "/api/v1/exports/contacts?format=ndjson&fields=email,custom.segment&filter=%7B%22field%22%3A%22email%22%2C%22op%22%3A%22eq%22%2C%22value%22%3A%22ada%40example.com%22%7D",
        None,
    )
    .await;
    assert_eq!(
        ndjson(&body),
        vec![json!({"email": "ada@example.com", "custom": {"segment": "enterprise"}})]
    );

    // Other record resources go through the same mechanism.
    let (s, _) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Initech"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (h, body) = exported(&app, &a.token, "/api/v1/exports/companies", None).await;
    assert_eq!(h[CONTENT_TYPE], "text/csv; charset=utf-8");
    let (header, rows) = csv_rows(&body);
    assert_eq!(rows[0][col(&header, "name")], "Initech");
    // No rows: the header alone.
    let (_, body) = exported(&app, &a.token, "/api/v1/exports/products", None).await;
    assert!(
        body.starts_with("id,sku,name,") && body.ends_with("\r\n") && body.lines().count() == 1,
        "{body}"
    );
}

#[tokio::test]
async fn filters_archived_records_tenancy_and_errors() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    define_fields(&app, &a).await;
    let mine = create_contacts(
        &app,
        &a,
        vec![
            json!({"first_name": "Ann", "lifecycle_stage": "new", "custom": {"segment": "smb"}}),
            json!({"first_name": "Bea", "lifecycle_stage": "new", "custom": {"segment": "enterprise"}}),
            json!({"first_name": "Cid", "lifecycle_stage": "mature", "custom": {"segment": "smb"}}),
            json!({"first_name": "Dot", "lifecycle_stage": "new", "custom": {"segment": "smb"}}),
        ],
    )
    .await;
    create_contacts(
        &app,
        &b,
        vec![json!({"first_name": "Foreign", "lifecycle_stage": "new"})],
    )
    .await;
    let dot = mine[3]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{dot}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let run = |q: String| names(&app, a.token.clone(), q);
    assert_eq!(
        run(String::new()).await,
        ["Ann", "Bea", "Cid"],
        "archived ones left out"
    );
    assert_eq!(
        run("&include_archived=true".into()).await,
        ["Ann", "Bea", "Cid", "Dot"]
    );
    assert_eq!(run("&archived=true".into()).await, ["Dot"]);
    assert_eq!(run("&lifecycle_stage=new".into()).await, ["Ann", "Bea"]);
    let filter = json!({"and": [
        {"field": "custom.segment", "op": "eq", "value": "smb"},
        {"field": "lifecycle_stage", "op": "in", "value": ["new", "mature"]}
    ]});
    let q = format!(
        "&include_archived=true&filter={}",
        urlencode(&filter.to_string())
    );
    assert_eq!(run(q).await, ["Ann", "Cid", "Dot"]);
    let starts_b = json!({"field": "first_name", "op": "starts_with", "value": "B"});
    let q = format!(
        "&lifecycle_stage=new&filter={}",
        urlencode(&starts_b.to_string())
    );
    assert_eq!(run(q).await, ["Bea"]);
    // The other workspace sees only its own.
    let theirs = names(&app, b.token.clone(), "&include_archived=true".into()).await;
    assert_eq!(theirs, ["Foreign"]);

    // Bad requests are refused before anything is streamed, naming the parameter.
    for (q, field) in [
        ("format=xml", "format"),
        ("fields=id,nope", "fields"),
        ("fields=custom.undefined", "fields"),
        ("filter=%7Bnot-json", "filter"),
        (
            "filter=%7B%22field%22%3A%22nope%22%2C%22op%22%3A%22eq%22%2C%22value%22%3A1%7D",
            "filter",
        ),
        ("sort=nope", "sort[0].field"),
        ("include_archived=maybe", "include_archived"),
        ("limit=10", "limit"),
    ] {
        let (s, h, body) = export(
            &app,
            &a.token,
            &format!("/api/v1/exports/contacts?{q}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert_eq!(h[CONTENT_TYPE], "application/problem+json");
        let v: Value = serde_json::from_str(&body).unwrap();
        let named = v["errors"][0]["field"].as_str().unwrap();
        assert!(named.starts_with(field), "{q}: {v}");
    }
    let (s, _, _) = export(&app, &a.token, "/api/v1/exports/widgets", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Reading needs the resource's read permission.
    let (s, key) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "BI", "scopes": ["deals:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap();
    let (s, _, body) = export(&app, secret, "/api/v1/exports/contacts", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["missing_permission"], "contacts:read");
    exported(&app, secret, "/api/v1/exports/deals", None).await;
    let viewer = app.user(&a, "viewer").await;
    assert_eq!(names(&app, viewer.token, String::new()).await.len(), 3);
}

/// The sorted first names of an NDJSON export of contacts with the query `q` appended.
async fn names(app: &TestApp, token: String, q: String) -> Vec<String> {
    let path = format!("/api/v1/exports/contacts?format=ndjson{q}");
    let (_, body) = exported(app, &token, &path, None).await;
    let mut n: Vec<String> = ndjson(&body)
        .iter()
        .map(|c| c["first_name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn many_pages_stream_in_order_without_duplicates() {
    // Pages of 7 rows: 40 contacts take 6 pages.
    let app = TestApp::spawn_with(|s| s.export_page_size = 7).await;
    let a = app.workspace("Acme").await;
    let surnames = ["Zed", "Ann", "Bob", "Cy"];
    let created = create_contacts(
        &app,
        &a,
        (0..40)
            .map(|i| json!({"first_name": format!("P{i:02}"), "last_name": surnames[i % 4]}))
            .collect(),
    )
    .await;
    let mut ids: Vec<String> = created
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();

    let (_, body) = exported(
        &app,
        &a.token,
        "/api/v1/exports/contacts?format=ndjson",
        None,
    )
    .await;
    let got: Vec<String> = ndjson(&body)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids, "every contact once, by id");

    let (_, body) = exported(&app, &a.token, "/api/v1/exports/contacts?fields=id", None).await;
    let (header, rows) = csv_rows(&body);
    assert_eq!(header, ["id"], "one header row");
    assert_eq!(
        rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        ids
    );

    // A sort pages by keyset on it, in the same order as the list.
    let (_, body) = exported(
        &app,
        &a.token,
        "/api/v1/exports/contacts?format=ndjson&sort=-last_name,first_name",
        None,
    )
    .await;
    let sorted: Vec<Value> = ndjson(&body);
    let (s, list) = app
        .get(
            "/api/v1/contacts?limit=100&sort=-last_name,first_name",
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&Value::Array(sorted.clone()), &list["data"]);
    let unique: HashSet<&str> = sorted.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 40);
}
