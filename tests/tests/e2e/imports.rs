use crm_e2e::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// POSTs a file to `/imports?<query>`.
async fn upload(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/api/v1/imports?{query}", app.base))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let v: Value = res.json().await.expect("json body");
    if status == StatusCode::ACCEPTED {
        assert_eq!(
            location.as_deref(),
            Some(format!("/api/v1/imports/{}", v["id"].as_str().unwrap()).as_str())
        );
    }
    (status, v)
}

/// Waits (bounded) until the import has ended, and returns it.
async fn ended(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = app.get(&format!("/api/v1/imports/{id}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if ["completed", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        assert!(Instant::now() < deadline, "the import did not end: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads and waits for the end.
async fn import(app: &TestApp, s: &Session, query: &str, ct: &str, body: &str) -> Value {
    let (st, v) = upload(app, &s.token, query, ct, body.to_string()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "queued", "{v}");
    ended(app, &s.token, v["id"].as_str().unwrap()).await
}

async fn errors(app: &TestApp, s: &Session, id: &str) -> Vec<Value> {
    let (st, v) = app
        .get(&format!("/api/v1/imports/{id}/errors?limit=500"), &s.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

async fn contacts(app: &TestApp, s: &Session) -> Vec<Value> {
    let (st, v) = app
        .get("/api/v1/contacts?limit=500&sort=email", &s.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

async fn define_score(app: &TestApp, s: &Session) {
    let (st, v) = app
        .post(
            "/api/v1/fields/contacts",
            &s.token,
            json!({"name": "score", "label": "Score", "type": "number"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn a_csv_file_becomes_records_and_refused_rows_are_reported_by_line() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    define_score(&app, &a).await;
    // Line 3 holds a quoted line break, so the row after it starts on line 5; line 6 is
    // blank; line 7 has a bad e-mail; line 8 a bad custom value; line 9 a missing cell.
    let file = "E-mail,first_name,tags,custom.score,Ignored\r\n\
        ada@example.com,Ada,\"[\"\"vip\"\"]\",4.5,x\r\n\
        bob@example.com,\"Bob\nSmith\",,,x\r\n\
        cy@example.com,007,,12,x\r\n\
        \r\n\
        not-an-email,Dan,,,x\r\n\
        eve@example.com,Eve,,lots,x\r\n\
        fay@example.com,Fay\r\n";
    let mapping = r#"{"E-mail":"email","Ignored":null}"#;
    let query = format!(
        "object=contacts&mapping={}",
        url::form_urlencoded::byte_serialize(mapping.as_bytes()).collect::<String>()
    );
    let job = import(&app, &a, &query, "text/csv", file).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["object"], "contacts");
    assert_eq!(job["format"], "csv");
    assert_eq!(job["mode"], "create");
    assert_eq!(job["rows_total"], 6, "{job}");
    assert_eq!(job["rows_processed"], 6, "{job}");
    assert_eq!(job["created"], 3, "{job}");
    assert_eq!(job["updated"], 0, "{job}");
    assert_eq!(job["failed"], 3, "{job}");
    assert_eq!(job["bytes_total"], file.len());
    assert!(job["finished_at"].is_string());

    let rows = contacts(&app, &a).await;
    let emails: Vec<&str> = rows.iter().map(|c| c["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com", "cy@example.com"]
    );
    assert_eq!(rows[0]["tags"], json!(["vip"]));
    assert_eq!(rows[0]["custom"]["score"], 4.5);
    assert_eq!(rows[1]["first_name"], "Bob\nSmith");
    // A text field takes the cell as it is.
    assert_eq!(rows[2]["first_name"], "007");
    assert_eq!(rows[2]["custom"]["score"], 12.0);

    let errs = errors(&app, &a, job["id"].as_str().unwrap()).await;
    let lines: Vec<i64> = errs.iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [7, 8, 9], "{errs:?}");
    assert_eq!(errs[0]["error"]["status"], 422);
    assert_eq!(errs[0]["error"]["errors"][0]["field"], "email");
    assert_eq!(errs[1]["error"]["errors"][0]["field"], "custom.score");
    assert_eq!(errs[2]["error"]["errors"][0]["code"], "wrong_column_count");

    // Each imported record went through the change feed like any other write.
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let created = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "contact.created")
        .count();
    assert_eq!(created, 3);

    // Another workspace sees none of it.
    let b = app.workspace("Other").await;
    let id = job["id"].as_str().unwrap();
    let (st, _) = app.get(&format!("/api/v1/imports/{id}"), &b.token).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = app
        .get(&format!("/api/v1/imports/{id}/errors"), &b.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v1/imports", &b.token).await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = app.get("/api/v1/imports", &a.token).await;
    assert_eq!(list["data"][0]["id"], id);
}

#[tokio::test]
async fn upserts_match_existing_records_and_repeated_keys_in_the_file() {
    let app = TestApp::spawn_with(|s| s.import_batch_rows = 2).await;
    let a = app.workspace("Acme").await;
    let (st, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"email": "ada@example.com", "first_name": "Ada", "job_title": "Engineer"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ada = v["id"].as_str().unwrap().to_string();
    // Rows 2 and 3 fall in one batch, row 4 in the next: a key repeated in either
    // updates the record its first row made.
    let file = "email,first_name\n\
        ADA@example.com,Ada Lovelace\n\
        new@example.com,First\n\
        new@example.com,Second\n\
        ,Nobody\n";
    let job = import(&app, &a, "object=contacts&match_on=email", "text/csv", file).await;
    assert_eq!(job["mode"], "upsert");
    assert_eq!(job["match_on"], "email");
    assert_eq!(
        (&job["created"], &job["updated"], &job["failed"]),
        (&json!(1), &json!(2), &json!(1)),
        "{job}"
    );
    let rows = contacts(&app, &a).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], ada.as_str());
    assert_eq!(rows[0]["first_name"], "Ada Lovelace");
    // An empty or absent cell leaves the field unchanged.
    assert_eq!(rows[0]["job_title"], "Engineer");
    assert_eq!(rows[1]["first_name"], "Second");
    let errs = errors(&app, &a, job["id"].as_str().unwrap()).await;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["line"], 5);
    assert_eq!(errs[0]["error"]["errors"][0]["field"], "email");

    // A NUL character, which the database cannot store, is refused per row, on the update
    // path of an upsert as on the create path.
    let file = "email,job_title\nada@example.com,Chief\u{0}Engineer\nnul@example.com,\u{0}\n";
    let job = import(&app, &a, "object=contacts&match_on=email", "text/csv", file).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (&job["created"], &job["updated"], &job["failed"]),
        (&json!(0), &json!(0), &json!(2)),
        "{job}"
    );
    let errs = errors(&app, &a, job["id"].as_str().unwrap()).await;
    assert_eq!(
        errs[0]["error"]["errors"][0]["field"], "job_title",
        "{errs:?}"
    );
    assert_eq!(errs[1]["line"], 3);

    // In create mode a repeated unique value is refused on its second row.
    let file = "email\nsame@example.com\nsame@example.com\n";
    let job = import(&app, &a, "object=contacts", "text/csv", file).await;
    assert_eq!((&job["created"], &job["failed"]), (&json!(1), &json!(1)));
    let errs = errors(&app, &a, job["id"].as_str().unwrap()).await;
    assert_eq!(errs[0]["line"], 3);
    assert_eq!(errs[0]["error"]["status"], 409);
}

#[tokio::test]
async fn ndjson_files_import_and_dry_runs_write_nothing() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let file = "{\"name\":\"Acme Ltd\",\"external_id\":\"erp-1\"}\n\
        \n\
        {\"name\":\"Globex\",\"external_id\":\"erp-2\",\"colour\":\"red\"}\n\
        not json\n\
        [1,2]\n\
        {\"Title\":\"Initech\",\"external_id\":\"erp-3\"}";
    let query = format!(
        "object=companies&mapping={}",
        url::form_urlencoded::byte_serialize(br#"{"Title":"name"}"#).collect::<String>()
    );
    let dry = import(
        &app,
        &a,
        &format!("{query}&dry_run=true"),
        "application/x-ndjson",
        file,
    )
    .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["status"], "completed", "{dry}");
    assert_eq!(
        (&dry["rows_total"], &dry["created"], &dry["failed"]),
        (&json!(5), &json!(2), &json!(3)),
        "{dry}"
    );
    let (_, list) = app.get("/api/v1/companies", &a.token).await;
    assert_eq!(list["data"], json!([]), "a dry run writes nothing");
    let (_, feed) = app.get("/api/v1/events", &a.token).await;
    assert_eq!(
        crm_e2e::event_types(&feed),
        ["user.created"],
        "a dry run emits no events (the first admin's is the only one)"
    );

    let job = import(&app, &a, &query, "application/x-ndjson", file).await;
    assert_eq!(
        (&job["created"], &job["failed"]),
        (&json!(2), &json!(3)),
        "{job}"
    );
    let errs = errors(&app, &a, job["id"].as_str().unwrap()).await;
    let lines: Vec<i64> = errs.iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 5]);
    assert_eq!(errs[1]["error"]["errors"][0]["code"], "invalid_json");
    assert_eq!(errs[2]["error"]["errors"][0]["code"], "invalid_type");
    let (_, list) = app.get("/api/v1/companies?sort=name", &a.token).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme Ltd", "Initech"]);
}

#[tokio::test]
async fn bad_uploads_are_refused_before_anything_is_stored() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let cases = [
        (
            "object=contacts",
            "text/csv",
            "email,shoe_size\nx@y.io,9\n",
            "shoe_size",
            "unknown_column",
        ),
        (
            "object=contacts",
            "text/csv",
            "email,id\nx@y.io,1\n",
            "id",
            "unknown_column",
        ),
        (
            "object=contacts",
            "text/csv",
            "email,Email\n",
            "Email",
            "unknown_column",
        ),
        ("object=contacts", "text/csv", "", "body", "required"),
        (
            "object=planets",
            "text/csv",
            "name\n",
            "object",
            "invalid_value",
        ),
        ("format=csv", "text/csv", "email\n", "object", "required"),
        (
            "object=contacts",
            "text/plain",
            "email\n",
            "format",
            "required",
        ),
        (
            "object=contacts&format=ndjson",
            "text/csv",
            "email\n",
            "format",
            "conflict",
        ),
        (
            "object=contacts&match_on=phone",
            "text/csv",
            "email\n",
            "match_on",
            "invalid_value",
        ),
        (
            "object=contacts&mode=create&match_on=email",
            "text/csv",
            "email\n",
            "match_on",
            "invalid_value",
        ),
        (
            "object=contacts&mapping=%7B%22Nope%22%3A%22email%22%7D",
            "text/csv",
            "email\n",
            "mapping.Nope",
            "unknown_column",
        ),
        (
            "object=contacts&mapping=%5B%5D",
            "text/csv",
            "email\n",
            "mapping",
            "invalid_json",
        ),
        (
            "object=contacts&dry_run=maybe",
            "text/csv",
            "email\n",
            "dry_run",
            "invalid_value",
        ),
        (
            "object=contacts&colour=red",
            "text/csv",
            "email\n",
            "colour",
            "unknown_parameter",
        ),
    ];
    for (query, ct, body, field, code) in cases {
        let (st, v) = upload(&app, &a.token, query, ct, body.to_string()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {v}");
        let hit = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == field && e["code"] == code);
        assert!(hit, "{query}: expected {field}/{code} in {v}");
    }
    let (st, v) = upload(&app, &a.token, "object=contacts", "application/json", "{}").await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    // Nothing of the refused uploads remains.
    let (_, list) = app.get("/api/v1/imports", &a.token).await;
    assert_eq!(list["data"], json!([]));

    // Importing needs the object's write permission; a viewer may not.
    let viewer = app.user(&a, "viewer").await;
    let (st, v) = upload(
        &app,
        &viewer.token,
        "object=contacts",
        "text/csv",
        "email\n",
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _) = upload(
        &app,
        "not-a-token",
        "object=contacts",
        "text/csv",
        "email\n",
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_api_key_imports_and_a_cancelled_import_stops_between_batches() {
    let app = TestApp::spawn_with(|s| s.import_batch_rows = 1).await;
    let a = app.workspace("Acme").await;
    let key = app.api_key(&a, &["contacts:read", "contacts:write"]).await;
    let mut file = String::from("email\n");
    for i in 0..2000 {
        file.push_str(&format!("c{i}@example.com\n"));
    }
    let (st, job) = upload(&app, &key, "object=contacts", "text/csv", file).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap();
    let (st, v) = app
        .post(&format!("/api/v1/imports/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    let job = ended(&app, &key, id).await;
    assert_eq!(job["status"], "cancelled");
    // What was committed before the cancel is counted exactly, and nothing after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, now) = app.get(&format!("/api/v1/imports/{id}"), &key).await;
    assert_eq!(now["created"], job["created"]);
    let (_, list) = app.get("/api/v1/contacts?limit=1&count=true", &key).await;
    assert_eq!(list["total"], job["created"], "{job}");
    assert!(job["created"].as_i64().unwrap() < 2000, "{job}");
    // An import that has ended cannot be cancelled.
    let (st, v) = app
        .post(&format!("/api/v1/imports/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

/// POSTs a CSV file under an `Idempotency-Key`; returns the status, whether the answer was
/// a replay, and the body.
async fn keyed_upload(
    app: &TestApp,
    token: &str,
    key: &str,
    query: &str,
    body: &str,
) -> (StatusCode, bool, Value) {
    let res = app
        .client
        .post(format!("{}/api/v1/imports?{query}", app.base))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .header("Idempotency-Key", key)
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = res.status();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (status, replayed, res.json().await.expect("json body"))
}

#[tokio::test]
async fn a_repeated_upload_under_one_idempotency_key_is_one_import() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let file = "email,first_name\nada@example.com,Ada\n";
    let (s, replayed, first) = keyed_upload(&app, &a.token, "imp-1", "object=contacts", file).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{first}");
    assert_eq!(first["status"], "queued");
    let (s, replayed, again) = keyed_upload(&app, &a.token, "imp-1", "object=contacts", file).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, true), "{again}");
    assert_eq!(again, first, "the first answer, as it was given");

    for (query, body) in [
        ("object=contacts", "email,first_name\nbob@example.com,Bob\n"),
        ("object=contacts&match_on=email", file),
    ] {
        let (s, _, v) = keyed_upload(&app, &a.token, "imp-1", query, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"][0]["field"], "Idempotency-Key");
        assert_eq!(v["errors"][0]["code"], "key_reused");
    }
    let (s, _, v) = keyed_upload(&app, &a.token, &"k".repeat(300), "object=contacts", file).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Another key, or another workspace under the same key, is another import.
    let cy = "email,first_name\ncy@example.com,Cy\n";
    let (s, replayed, other) = keyed_upload(&app, &a.token, "imp-2", "object=contacts", cy).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{other}");
    let b = app.workspace("Beta").await;
    let (s, replayed, theirs) =
        keyed_upload(&app, &b.token, "imp-1", "object=contacts", file).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{theirs}");

    let first_id = first["id"].as_str().unwrap();
    let job = ended(&app, &a.token, first_id).await;
    assert_eq!(job["created"], 1, "{job}");
    let job = ended(&app, &a.token, other["id"].as_str().unwrap()).await;
    assert_eq!(job["created"], 1, "{job}");
    let (_, list) = app.get("/api/v1/imports", &a.token).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "the repeats and refused uploads left no job: {list}"
    );
    assert!(ids.contains(&first_id));
    assert_eq!(contacts(&app, &a).await.len(), 2);
}

/// A job that fails at the same place turn after turn (here, its stored plan of columns is
/// damaged) is retried after growing pauses, then ends `failed` saying where and why; an
/// upload that stopped arriving (the server stopped while receiving it) is removed with
/// the chunks it stored.
#[tokio::test]
async fn a_job_that_keeps_failing_ends_failed_and_abandoned_uploads_are_removed() {
    // This server's worker looks for jobs once, at start, and then not for an hour.
    let idle = TestApp::spawn_with(|s| s.import_poll_ms = 3_600_000).await;
    let a = idle.workspace("Acme").await;
    let file = "email\nada@example.com\n";
    let (st, damaged) = upload(&idle, &a.token, "object=contacts", "text/csv", file).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{damaged}");
    let damaged = damaged["id"].as_str().unwrap().to_string();
    idle.sql(&format!(
        "UPDATE imports SET column_targets = 'damaged' WHERE id = '{damaged}'"
    ));
    let (st, cut) = upload(&idle, &a.token, "object=contacts", "text/csv", file).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{cut}");
    let cut = cut["id"].as_str().unwrap().to_string();
    idle.sql(&format!(
        "UPDATE imports SET status = 'uploading', updated_at = '2026-01-01 00:00:00' WHERE id = '{cut}'"
    ));
    let chunks = |app: &TestApp, id: &str| {
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM import_chunks WHERE import_id = '{id}'"
        ))
    };
    assert_eq!(chunks(&idle, &cut), 1);

    let worker = TestApp::spawn_on((idle.database_url.clone(), None, None), |s| {
        s.import_lease_secs = 1;
        s.import_max_attempts = 2;
        s.import_abandon_secs = 60;
    })
    .await;
    let job = ended(&worker, &a.token, &damaged).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["error"],
        "stopped after 2 attempts in a row failed at line 2: an unexpected error occurred; it has been logged",
        "{job}"
    );
    assert_eq!(
        (&job["rows_processed"], &job["created"]),
        (&json!(0), &json!(0))
    );
    assert!(contacts(&worker, &a).await.is_empty());

    let (st, _) = worker
        .get(&format!("/api/v1/imports/{cut}"), &a.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        worker.sql_count(&format!(
            "SELECT count(*) AS n FROM imports WHERE id = '{cut}'"
        )),
        0
    );
    assert_eq!(chunks(&worker, &cut), 0);
    assert_eq!(
        chunks(&worker, &damaged),
        0,
        "a failed job frees its upload"
    );
}

/// Importing the same file again (a nightly sync that sends every record) writes nothing:
/// the rows count as updated, the records keep their version, and no event is recorded.
#[tokio::test]
async fn an_import_of_unchanged_rows_writes_nothing() {
    let app = TestApp::spawn_with(|s| s.import_batch_rows = 2).await;
    let a = app.workspace("Acme").await;
    let file = "email,first_name,tags\n\
        ada@example.com,Ada,\"[\"\"vip\"\"]\"\n\
        bob@example.com,Bob,\n\
        cy@example.com,Cy,\n";
    let job = import(&app, &a, "object=contacts&match_on=email", "text/csv", file).await;
    assert_eq!(
        (&job["created"], &job["failed"]),
        (&json!(3), &json!(0)),
        "{job}"
    );
    let before = contacts(&app, &a).await;
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let events = feed["data"].as_array().unwrap().len();

    let job = import(&app, &a, "object=contacts&match_on=email", "text/csv", file).await;
    assert_eq!(
        (&job["created"], &job["updated"], &job["failed"]),
        (&json!(0), &json!(3), &json!(0)),
        "{job}"
    );
    assert_eq!(contacts(&app, &a).await, before, "versions and times kept");
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    assert_eq!(feed["data"].as_array().unwrap().len(), events, "no event");

    // One changed row in the file: that one record is written.
    let changed = file.replace("Bob", "Robert");
    let job = import(
        &app,
        &a,
        "object=contacts&match_on=email",
        "text/csv",
        &changed,
    )
    .await;
    assert_eq!(job["updated"], 3, "{job}");
    let after = contacts(&app, &a).await;
    let versions: Vec<&Value> = after.iter().map(|c| &c["version"]).collect();
    assert_eq!(versions, [&json!(1), &json!(2), &json!(1)]);
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    assert_eq!(feed["data"].as_array().unwrap().len(), events + 1);
}

/// The value of one sample line of the metrics (`name{labels} value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn import_and_webhook_backlogs_show_in_the_metrics() {
    // Deliveries to a closed port wait a minute between attempts, so they stay pending.
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule = "60".into();
        s.metrics_token = Some("scrape-me".into());
    })
    .await;
    let a = app.workspace("Acme").await;
    let (s, hook) = app
        .post(
            "/api/v1/webhooks",
            &a.token,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let file = "email,first_name\nada@example.com,Ada\nbob@example.com,Bob\nnot-an-email,Cy\n";
    let job = import(&app, &a, "object=contacts", "text/csv", file).await;
    assert_eq!(
        (&job["status"], &job["created"], &job["failed"]),
        (&json!("completed"), &json!(2), &json!(1)),
        "{job}"
    );

    // The list filters by status and object.
    let listed = |query: &'static str| {
        let (app, token) = (&app, a.token.clone());
        async move {
            let (s, v) = app.get(&format!("/api/v1/imports?{query}"), &token).await;
            (s, v)
        }
    };
    for (query, expected) in [
        ("status=completed", 1),
        ("status=queued,running", 0),
        ("status=failed,completed&object=contacts", 1),
        ("object=companies", 0),
    ] {
        let (s, v) = listed(query).await;
        assert_eq!(s, StatusCode::OK, "{query}: {v}");
        assert_eq!(
            v["data"].as_array().unwrap().len(),
            expected,
            "{query}: {v}"
        );
    }
    for (query, field) in [("status=done", "status"), ("object=planets", "object")] {
        let (s, v) = listed(query).await;
        assert_eq!(
            (s, v["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{v}"
        );
    }

    // Without the token, or with another one, the metrics are refused.
    let scrape = |token: Option<&'static str>| {
        let mut r = app.client.get(format!("{}/metrics", app.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap() }
    };
    assert_eq!(scrape(None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(Some("nope")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The worker queues the deliveries within a few rounds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let r = scrape(Some("scrape-me")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        if sample(&text, "crm_webhook_deliveries_pending") == Some(2.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(&text, r#"crm_import_rows_total{outcome="created"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"crm_import_rows_total{outcome="failed"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"crm_import_jobs{status="queued"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"crm_import_jobs{status="running"}"#),
        Some(0.0)
    );
    let age = sample(&text, "crm_webhook_oldest_pending_delivery_seconds").unwrap();
    assert!((0.0..30.0).contains(&age), "{age}");
}
