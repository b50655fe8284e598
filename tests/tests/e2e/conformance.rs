//! Responses agree with the OpenAPI document: each case here is a failure the API fuzzer
//! (`make fuzz-api`) once found.

use crm_e2e::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn problem_json(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

async fn served_spec(app: &TestApp) -> Value {
    let (s, spec, _) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    spec
}

fn spec_enum(spec: &Value, schema: &str) -> Vec<String> {
    spec["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} is an enum in the spec"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The spec listed the Rust variant names (`Prospect`, `S1To10`) while the API sends and
/// takes the wire values (`prospect`, `1-10`).
#[tokio::test]
async fn spec_enums_list_the_values_on_the_wire() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let spec = served_spec(&app).await;
    let stages = spec_enum(&spec, "LifecycleStage");
    assert!(stages.contains(&"prospect".to_string()), "{stages:?}");
    assert!(spec_enum(&spec, "CompanySize").contains(&"1-10".to_string()));
    assert!(spec_enum(&spec, "PreferredChannel").contains(&"in_person".to_string()));

    let (s, contact) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{contact}");
    let stage = contact["lifecycle_stage"].as_str().unwrap().to_string();
    assert!(stages.contains(&stage), "{stage} is not in {stages:?}");
    let (s, company) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"name": "Acme", "size": "1-10"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{company}");
    assert_eq!(company["size"], "1-10");
}

/// Search takes a JSON body, so it answers 415 for another content type; the spec said it
/// could not.
#[tokio::test]
async fn search_declares_and_answers_415_without_json() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let spec = served_spec(&app).await;
    for path in ["/api/v1/contacts/search", "/api/v1/companies/search"] {
        let responses = &spec["paths"][path]["post"]["responses"];
        assert!(responses["415"].is_object(), "{path}: {responses}");
        assert!(responses["413"].is_object(), "{path}: {responses}");
        let r = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        assert!(problem_json(r.headers()), "{path}");
    }
}

/// A method the path does not have is 405 with `Allow`, as problem+json; it was a 404.
#[tokio::test]
async fn an_undeclared_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let cases = [
        (Method::TRACE, "/api/v1/contacts", "GET, POST"),
        (Method::PUT, "/api/v1/contacts/0", "GET, PATCH, DELETE"),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::DELETE, "/healthz", "GET"),
    ];
    for (method, path, allow) in cases {
        let (s, v, headers) = app.call(method.clone(), path, Some(&a.token), None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {v}");
        assert_eq!(headers.get("allow").unwrap(), allow, "{method} {path}");
        assert!(problem_json(&headers), "{method} {path}");
        assert_eq!(v["status"], 405);
    }
    let (s, _, headers) = app
        .call(Method::GET, "/api/v1/nothing-here/0", Some(&a.token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(problem_json(&headers));
}

/// Restoring a record that is not archived answered 404 for a record that exists; it now
/// answers 200 with the record, unchanged.
#[tokio::test]
async fn restoring_a_live_record_returns_it_unchanged() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    for (object, body) in [
        ("contacts", json!({"first_name": "Ada"})),
        ("companies", json!({"name": "Acme"})),
    ] {
        let (s, created) = app.post(&format!("/api/v1/{object}"), &a.token, body).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap();
        let (app, token) = (&app, &a.token);
        let restore = move |id: &str| {
            let path = format!("/api/v1/{object}/{id}/restore");
            async move { app.post(&path, token, json!({})).await }
        };
        let (s, restored) = restore(id).await;
        assert_eq!(s, StatusCode::OK, "{object}: {restored}");
        assert_eq!(restored["version"], created["version"], "{object}");
        let (s, _) = restore("01900000-0000-7000-8000-000000000000").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{object}");
    }
}

/// A JSON array was read as a struct's fields in order (`[null, null]` changed a link);
/// every request body is a JSON object, and anything else is a 422 naming `body`.
#[tokio::test]
async fn a_request_body_must_be_a_json_object() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, contact) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    let (_, company) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Acme"}))
        .await;
    let (cid, coid) = (
        contact["id"].as_str().unwrap(),
        company["id"].as_str().unwrap(),
    );
    let (s, _) = app
        .post(
            &format!("/api/v1/contacts/{cid}/companies"),
            &a.token,
            json!({"company_id": coid, "role": "Buyer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let cases = [
        (
            Method::PATCH,
            format!("/api/v1/contacts/{cid}/companies/{coid}"),
            json!([null, null]),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_string(),
            json!(["Ada", "Lovelace"]),
        ),
        (
            Method::PATCH,
            format!("/api/v1/contacts/{cid}"),
            json!("Ada"),
        ),
        (
            Method::POST,
            "/api/v1/auth/login".to_string(),
            json!(["a@b.example", "pw"]),
        ),
    ];
    for (method, path, body) in cases {
        let (s, v, headers) = app
            .call(method.clone(), &path, Some(&a.token), Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {v}");
        assert_eq!(v["errors"][0]["field"], "body", "{method} {path}: {v}");
        assert!(problem_json(&headers));
    }
    let (_, links) = app
        .get(&format!("/api/v1/contacts/{cid}/companies"), &a.token)
        .await;
    assert_eq!(links[0]["role"], "Buyer", "the link is unchanged: {links}");
}

/// An archived contact is hidden: its lifecycle history answered 200 after the archive.
#[tokio::test]
async fn the_history_of_an_archived_contact_is_404() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, contact) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    let id = contact["id"].as_str().unwrap();
    let history = format!("/api/v1/contacts/{id}/lifecycle-history");
    assert_eq!(app.get(&history, &a.token).await.0, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{id}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&history, &a.token).await.0, StatusCode::NOT_FOUND);
}

/// The spec states the page-size bounds the server enforces, and the Login example signs in
/// the admin of the CreateWorkspace example.
#[tokio::test]
async fn the_spec_states_limits_and_a_working_login_example() {
    let app = TestApp::spawn().await;
    let spec = served_spec(&app).await;
    let limit = spec["paths"]["/api/v1/contacts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"]
        .clone();
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(500))
    );
    let search_limit = &spec["components"]["schemas"]["SearchRequest"]["properties"]["limit"];
    assert_eq!(search_limit["maximum"], 500);

    let schemas = &spec["components"]["schemas"];
    let signup = schemas["CreateWorkspace"]["example"].clone();
    let login = schemas["Login"]["example"].clone();
    assert_eq!(login["email"], signup["admin_email"]);
    let (s, v, _) = app
        .call(Method::POST, "/api/v1/workspaces", None, Some(signup))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(login))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = app
        .get(
            "/api/v1/contacts?limit=501",
            v["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A field change holds the field's values, of any JSON type; the spec said an object, so
/// every change of a name or an amount violated it.
#[tokio::test]
async fn event_changes_are_declared_as_any_json_value() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let spec = served_spec(&app).await;
    // No `type` admits every JSON type; a list admits the ones it names.
    let declared = |kind: &str| {
        let schema = &spec["components"]["schemas"]["FieldChange"]["properties"]["old"];
        match schema.get("type") {
            None => true,
            Some(Value::String(t)) => t == kind,
            Some(Value::Array(ts)) => ts.iter().any(|t| t == kind),
            Some(_) => false,
        }
    };
    let (_, contact) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Ada", "tags": ["vip"]}),
        )
        .await;
    let id = contact["id"].as_str().unwrap();
    let (s, _) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"first_name": "Grace", "tags": []}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, events) = app.get("/api/v1/events", &a.token).await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let mut seen = 0;
    for event in events["data"].as_array().unwrap() {
        for change in event["changes"].as_object().unwrap().values() {
            for value in [&change["old"], &change["new"]] {
                let kind = match value {
                    Value::Null => "null",
                    Value::Bool(_) => "boolean",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    Value::Array(_) => "array",
                    Value::Object(_) => "object",
                };
                assert!(declared(kind), "{kind} is not declared for field changes");
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "{events}");
}

/// PostgreSQL refuses the NUL character in text, which made a 500 of a user's name or an
/// audit-log filter holding one; it is a 422 naming where, on both databases.
#[tokio::test]
async fn a_nul_character_is_422_naming_where() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, v) = app
        .post(
            "/api/v1/users",
            &a.token,
            json!({"email": "nul@example.com", "name": "A\u{0}B", "role": "sales", "password": "long enough password"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "name");
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Ada", "tags": ["ok", "b\u{0}d"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "tags[1]");
    let (s, v) = app
        .get("/api/v1/audit-log?record_id=%C3%A2%003", &a.token)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "record_id");
    let (s, v) = app.get("/api/v1/contacts/a%00b", &a.token).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "path");
    let (s, _) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Back\\u0000slash"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "an escaped backslash is plain text");
}

/// A merge patch naming a field the record does not have is refused even with `null`; the
/// merge dropped it and answered 200.
#[tokio::test]
async fn a_patch_with_an_unknown_field_is_422_even_with_null() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, contact) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Ada"}))
        .await;
    let path = format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap());
    for patch in [json!({"": null}), json!({"nickname": null})] {
        let (s, v) = app.patch(&path, &a.token, patch.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {v}");
        assert_eq!(v["errors"][0]["code"], "unknown_field", "{v}");
    }
    let (s, v) = app.patch(&path, &a.token, json!({"last_name": null})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn documented_lengths_hold_for_board_filters_and_prices() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let pipeline = pipelines["data"][0]["id"].as_str().unwrap().to_string();
    let long_id = "0".repeat(37);
    let (s, v) = app
        .get(
            &format!("/api/v1/pipelines/{pipeline}/board?owner_id={long_id}"),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "owner_id");

    let (_, product) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "P1", "name": "P", "unit_price": "1", "currency": "EUR"}),
        )
        .await;
    let (_, book) = app
        .post(
            "/api/v1/price-books",
            &a.token,
            json!({"name": "B", "currency": "EUR"}),
        )
        .await;
    let path = format!(
        "/api/v1/price-books/{}/prices/{}",
        book["id"].as_str().unwrap(),
        product["id"].as_str().unwrap()
    );
    for price in ["0".repeat(41), "1e3".to_string()] {
        let (s, v, _) = app
            .call(
                Method::PUT,
                &path,
                Some(&a.token),
                Some(json!({ "unit_price": price })),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{price}: {v}");
        assert_eq!(v["errors"][0]["field"], "unit_price");
    }
}

#[tokio::test]
async fn a_batch_whose_operations_break_the_schema_is_refused_whole() {
    let app = TestApp::spawn().await;
    let s = app.workspace("Acme").await;
    let long = "m".repeat(21);
    let (status, v, headers) = app
        .call(
            Method::POST,
            "/api/v1/companies/batch",
            Some(&s.token),
            Some(json!({"operations": [
                {"op": "create", "data": {"name": "Fine"}},
                {"op": "update", "data": -607558, "match_on": long},
                {"op": "delete", "id": "x".repeat(37)},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(problem_json(&headers));
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "operations[1].match_on",
            "operations[1].data",
            "operations[2].id"
        ]
    );
    // Nothing ran: the valid first operation did not create its company.
    let (_, list) = app.get("/api/v1/companies", &s.token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
}
