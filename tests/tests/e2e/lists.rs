use crm_e2e::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

async fn page_through(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_string(),
        };
        let (s, v) = app.get(&url, token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        ids.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn cursor_pages_never_skip_or_repeat_under_concurrent_inserts() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let names = ["Zed", "Ann", "Bob", "ann", "Cy", "Dee"];
    let mut created = Vec::new();
    for i in 0..30 {
        let last = if i % 7 == 0 {
            Value::Null
        } else {
            json!(names[i % names.len()])
        };
        let (_, c) = app
            .post(
                "/api/v1/contacts",
                &a.token,
                json!({"first_name": format!("P{i}"), "last_name": last}),
            )
            .await;
        created.push(c["id"].as_str().unwrap().to_string());
    }
    for sort in [
        "",
        "sort=-created_at",
        "sort=last_name",
        "sort=-last_name,first_name",
    ] {
        // Walk the pages while another task keeps inserting.
        let writer = {
            let (base, token) = (app.base.clone(), a.token.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..10 {
                    client
                        .post(format!("{base}/api/v1/contacts"))
                        .bearer_auth(&token)
                        .json(&json!({"first_name": format!("New{i}"), "last_name": "Mid"}))
                        .send()
                        .await
                        .unwrap();
                }
            })
        };
        let path = if sort.is_empty() {
            "/api/v1/contacts?limit=7".to_string()
        } else {
            format!("/api/v1/contacts?limit=7&{sort}")
        };
        let seen = page_through(&app, &a.token, &path).await;
        writer.await.unwrap();
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no row repeats ({sort})");
        for id in &created {
            assert!(unique.contains(id), "row {id} was skipped ({sort})");
        }
    }
    // Sorted order is right, nulls last.
    let (_, v) = app
        .get("/api/v1/contacts?limit=500&sort=last_name", &a.token)
        .await;
    let lasts: Vec<Option<String>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["last_name"].as_str().map(String::from))
        .collect();
    let first_null = lasts.iter().position(Option::is_none).unwrap();
    assert!(
        lasts[first_null..].iter().all(Option::is_none),
        "nulls last"
    );
    let non_null: Vec<&String> = lasts[..first_null].iter().flatten().collect();
    assert!(non_null.windows(2).all(|w| w[0] <= w[1]), "{non_null:?}");
    // A cursor for one sort is refused for another.
    let (_, p1) = app
        .get("/api/v1/contacts?limit=2&sort=last_name", &a.token)
        .await;
    let c = p1["next_cursor"].as_str().unwrap();
    let (s, v) = app
        .get(
            &format!("/api/v1/contacts?limit=2&sort=first_name&cursor={c}"),
            &a.token,
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
    let (s, _) = app
        .get("/api/v1/contacts?limit=2&cursor=garbage", &a.token)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app.get("/api/v1/contacts?limit=501", &a.token).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = app.get("/api/v1/contacts?sort=tags", &a.token).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn the_filter_language() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    for (first, stage, tags, dnc) in [
        ("Ann", "mature", vec!["vip"], false),
        ("Bob", "new", vec![], true),
        ("Cy", "churned", vec!["vip", "eu"], false),
        ("Dee", "mature", vec!["eu"], false),
    ] {
        let (s, _) = app.post("/api/v1/contacts", &a.token, json!({"first_name": first, "lifecycle_stage": stage, "tags": tags, "consent": {"do_not_contact": dnc}, "email": format!("{first}@x.example")})).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["first_name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let search = |filter: Value| {
        let app = &app;
        let token = a.token.clone();
        async move {
            app.post(
                "/api/v1/contacts/search",
                &token,
                json!({"filter": filter, "count": true}),
            )
            .await
        }
    };
    let (_, v) = search(json!({"and": [{"field": "lifecycle_stage", "op": "eq", "value": "mature"}, {"field": "tags", "op": "contains", "value": "eu"}]})).await;
    assert_eq!(names(&v), vec!["Dee"]);
    assert_eq!(v["total"], 1);
    let (_, v) = search(json!({"or": [{"field": "first_name", "op": "starts_with", "value": "a"}, {"field": "consent.do_not_contact", "op": "eq", "value": true}]})).await;
    assert_eq!(names(&v), vec!["Ann", "Bob"]);
    let (_, v) = search(
        json!({"not": {"field": "lifecycle_stage", "op": "in", "value": ["mature", "new"]}}),
    )
    .await;
    assert_eq!(names(&v), vec!["Cy"]);
    let (_, v) = search(json!({"field": "tags", "op": "is_null", "value": true})).await;
    assert_eq!(names(&v), vec!["Bob"]);
    let (_, v) = search(json!({"field": "email", "op": "eq", "value": "ANN@x.example"})).await;
    assert_eq!(names(&v), vec!["Ann"]);
    let (_, v) =
        search(json!({"field": "created_at", "op": "gte", "value": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(v["total"], 4);
    let (_, v) = app
        .get(
            "/api/v1/contacts?lifecycle_stage[in]=new,churned&count=true",
            &a.token,
        )
        .await;
    assert_eq!(v["total"], 2);
    // Unknown fields, ops and bad values are 422s naming them.
    let (s, v) = search(json!({"field": "shoe_size", "op": "eq", "value": 1})).await;
    assert_eq!(
        (
            s,
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("shoe_size")
        ),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    let (s, v) = search(json!({"field": "first_name", "op": "like", "value": "a"})).await;
    assert_eq!(
        (s, v["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_operator"))
    );
    let (s, _) = search(json!({"field": "lifecycle_stage", "op": "eq", "value": "zombie"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = search(json!({"field": "created_at", "op": "gt", "value": "yesterday"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .post("/api/v1/contacts/search", &a.token, json!({"filters": {}}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn custom_fields_are_typed_validated_and_filterable() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, f) = app.post("/api/v1/fields/contacts", &a.token, json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let (s, _) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "score", "label": "Score", "type": "number"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .post(
            "/api/v1/fields/companies",
            &a.token,
            json!({"name": "budget", "label": "Budget", "type": "decimal"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "segment", "label": "Again", "type": "text"}),
        )
        .await;
    assert_eq!((s, &v["existing_id"]), (StatusCode::CONFLICT, &f["id"]));
    let (s, _) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "Bad Name", "label": "x", "type": "text"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .post(
            "/api/v1/fields/widgets",
            &a.token,
            json!({"name": "x", "label": "x", "type": "text"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "X", "custom": {"segment": "mega"}}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("custom.segment"))
    );
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "X", "custom": {"nope": 1}}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("custom.nope"))
    );
    let (_, big) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Big", "custom": {"segment": "enterprise", "score": 9.5}}),
        )
        .await;
    let (_, small) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Small", "custom": {"segment": "smb", "score": 2}}),
        )
        .await;
    assert_eq!(big["custom"]["score"], 9.5);
    let (_, co) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"name": "Rich", "custom": {"budget": "100000.00"}}),
        )
        .await;
    assert_eq!(co["custom"]["budget"], "100000");
    app.post(
        &format!(
            "/api/v1/contacts/{}/companies",
            small["id"].as_str().unwrap()
        ),
        &a.token,
        json!({"company_id": co["id"]}),
    )
    .await;

    let (_, v) = app
        .get("/api/v1/contacts?custom.segment=enterprise", &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], big["id"]);
    let (_, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "custom.score", "op": "gt", "value": 3}}),
        )
        .await;
    assert_eq!(v["data"][0]["id"], big["id"]);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (_, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "companies.custom.budget", "op": "gte", "value": "50000"}}),
        )
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], small["id"]);
    // Patching one custom value keeps the others.
    let (s, p) = app
        .patch(
            &format!("/api/v1/contacts/{}", big["id"].as_str().unwrap()),
            &a.token,
            json!({"custom": {"score": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["custom"], json!({"segment": "enterprise", "score": 1}));
    let (_, fields) = app.get("/api/v1/fields/contacts", &a.token).await;
    assert_eq!(fields["data"].as_array().unwrap().len(), 2, "{fields}");
    let (_, first) = app.get("/api/v1/fields/contacts?limit=1", &a.token).await;
    assert_eq!(first["data"][0], fields["data"][0]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/fields/contacts?limit=1&cursor={cursor}"),
            &a.token,
        )
        .await;
    assert_eq!(
        (&second["data"][0], &second["next_cursor"]),
        (&fields["data"][1], &json!(null))
    );
    // A definition carries its version as an ETag, and a delete can be conditional on it.
    let (s, _, h) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/fields/contacts/score",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!((s, h["etag"].to_str().unwrap()), (StatusCode::OK, "\"1\""));
    let delete = |version: &'static str| {
        app.client
            .delete(format!("{}/api/v1/fields/contacts/score", app.base))
            .bearer_auth(&a.token)
            .header("If-Match", version)
            .send()
    };
    assert_eq!(
        delete("\"7\"").await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        delete("\"1\"").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (s, _) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "custom.score", "op": "gt", "value": 3}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}
