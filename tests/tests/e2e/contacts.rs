use crm_e2e::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn contact_lifecycle_create_read_patch_archive_restore() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, c, h) = app
        .call(
            Method::POST,
            "/api/v1/contacts",
            Some(&a.token),
            Some(json!({"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com", "phone": "+44 20 7946 0018",
                        "address": {"city": "London", "country": "gb"}, "consent": {"email": true}, "tags": ["vip", "vip"], "owner_id": a.user_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        h.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/contacts/{id}")
    );
    assert_eq!(h.get("etag").unwrap(), "\"1\"");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["address"]["country"], "GB");
    assert_eq!(c["tags"], json!(["vip"]));
    assert_eq!(c["lifecycle_stage"], "prospect");

    // Merge patch: nested objects merge, null removes.
    let (s, p) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"consent": {"sms": true}, "phone": null, "lifecycle_stage": "new"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p["consent"],
        json!({"email": true, "sms": true, "phone": false, "do_not_contact": false})
    );
    assert_eq!(p["phone"], json!(null));
    assert_eq!(p["first_name"], "Ada");
    assert_eq!(p["version"], 2);
    let (_, hist) = app
        .get(
            &format!("/api/v1/contacts/{id}/lifecycle-history"),
            &a.token,
        )
        .await;
    let stages: Vec<_> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stages, vec!["prospect", "new"]);
    assert_eq!(hist[1]["from_stage"], "prospect");

    // If-Match with a stale version → 412; current → 200.
    let (s, _, _) = app
        .client
        .patch(format!("{}/api/v1/contacts/{id}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"job_title": "Engineer"}))
        .send()
        .await
        .map(|r| (r.status(), (), ()))
        .unwrap();
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let r = app
        .client
        .patch(format!("{}/api/v1/contacts/{id}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"2\"")
        .json(&json!({"job_title": "Engineer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("etag").unwrap(), "\"3\"");

    // Read-only and unknown fields are refused by name.
    let (s, v) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"id": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("read_only"))
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"favourite_colour": "blue"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["code"], "unknown_field", "{v}");
    let (s, v) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &a.token,
            json!({"consent": {"sms": "yes"}}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("consent.sms")),
        "{v}"
    );

    // Archive hides; archived=true shows; restore revives.
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{id}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), &a.token).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        0
    );
    let (_, archived) = app.get("/api/v1/contacts?archived=true", &a.token).await;
    assert_eq!(archived["data"][0]["id"], id);
    let (s, r) = app
        .post(
            &format!("/api/v1/contacts/{id}/restore"),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(r["archived_at"].is_null());
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), &a.token).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unique_email_and_external_id_conflict_naming_the_holder() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, first) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"email": "dup@example.com", "external_id": "erp-1"}),
        )
        .await;
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"email": "DUP@example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["existing_id"], first["id"]);
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"email": "other@example.com", "external_id": "erp-1"}),
        )
        .await;
    assert_eq!((s, &v["existing_id"]), (StatusCode::CONFLICT, &first["id"]));
    // Another workspace may use the same values.
    let b = app.workspace("Beta").await;
    assert_eq!(
        app.post(
            "/api/v1/contacts",
            &b.token,
            json!({"email": "dup@example.com", "external_id": "erp-1"})
        )
        .await
        .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn bad_input_gets_precise_problems() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, v) = app.post("/api/v1/contacts", &a.token, json!({"email": "not-an-email", "first_name": "x".repeat(101), "lifecycle_stage": "mature"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fields.contains(&"email".to_string()) && fields.contains(&"first_name".to_string()),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"lifecycle_stage": "zombie", "first_name": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lifecycle_stage"))
    );
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "x", "owner_id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("owner_id"))
    );
    let r = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{\"first_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(&a.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = json!({"first_name": "x", "job_title": "y".repeat(2 * 1024 * 1024)});
    let (s, _) = app.post("/api/v1/contacts", &a.token, big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.get("/api/v1/contacts/not-a-uuid", &a.token).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sql_metacharacters_are_plain_data() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let nasty = "Robert'); DROP TABLE contacts;-- %_\\ \"x\"";
    let (s, c) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": nasty, "source": nasty, "tags": [nasty]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["first_name"], nasty);
    let (s, v) = app
        .post("/api/v1/contacts/search", &a.token, json!({"q": nasty}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (_, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "source", "op": "contains", "value": "%_"}}),
        )
        .await;
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        1,
        "% and _ match literally"
    );
    let (_, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "tags", "op": "contains", "value": nasty}}),
        )
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (s, _) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "first_name; DROP TABLE x", "op": "eq", "value": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        1
    );
}

#[tokio::test]
async fn workspaces_never_see_each_others_records() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let (_, c) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Secret", "email": "secret@a.example"}),
        )
        .await;
    let (_, co) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Secret Co"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let co_id = co["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), &b.token).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/contacts/{id}"),
            &b.token,
            json!({"first_name": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{id}"), &b.token)
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/companies/{co_id}"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app.get("/api/v1/contacts?count=true", &b.token).await;
    assert_eq!(
        (list["data"].as_array().unwrap().len(), &list["total"]),
        (0, &json!(0))
    );
    let (_, found) = app
        .post(
            "/api/v1/contacts/search",
            &b.token,
            json!({"q": "Secret", "count": true}),
        )
        .await;
    assert_eq!(found["total"], 0);
    // B cannot link its contact to A's company, nor own records with A's users.
    let (_, bc) = app
        .post("/api/v1/contacts", &b.token, json!({"first_name": "B"}))
        .await;
    let (s, _) = app
        .post(
            &format!("/api/v1/contacts/{}/companies", bc["id"].as_str().unwrap()),
            &b.token,
            json!({"company_id": co_id}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .post(
            "/api/v1/contacts",
            &b.token,
            json!({"first_name": "B2", "owner_id": a.user_id}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", a.user_id), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn companies_and_links() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, co) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Acme GmbH", "domain": "https://www.Acme.example/about", "annual_revenue": "1250000.50", "currency": "eur", "size": "51-200", "industry": "Retail"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{co}");
    assert_eq!(
        (
            co["domain"].as_str(),
            co["currency"].as_str(),
            co["annual_revenue"].as_str()
        ),
        (Some("acme.example"), Some("EUR"), Some("1250000.5"))
    );
    let (s, v) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"name": "X", "annual_revenue": "12.3.4"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"domain": "x.example"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "name is required");
    let co_id = co["id"].as_str().unwrap();
    let (_, c) = app
        .post("/api/v1/contacts", &a.token, json!({"first_name": "Buyer"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let (s, links) = app
        .post(
            &format!("/api/v1/contacts/{cid}/companies"),
            &a.token,
            json!({"company_id": co_id, "role": "Buyer", "is_primary": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{links}");
    assert_eq!(links[0]["company"]["name"], "Acme GmbH");
    let (s, links) = app
        .patch(
            &format!("/api/v1/contacts/{cid}/companies/{co_id}"),
            &a.token,
            json!({"role": "Champion"}),
        )
        .await;
    assert_eq!(
        (s, links[0]["role"].as_str()),
        (StatusCode::OK, Some("Champion"))
    );
    let (_, people) = app
        .get(&format!("/api/v1/companies/{co_id}/contacts"), &a.token)
        .await;
    assert_eq!(people[0]["contact"]["id"], cid);
    // Contacts filter through their companies; free text finds company names.
    let (_, v) = app
        .post(
            "/api/v1/contacts/search",
            &a.token,
            json!({"filter": {"field": "companies.industry", "op": "eq", "value": "Retail"}}),
        )
        .await;
    assert_eq!(v["data"][0]["id"], cid);
    let (_, v) = app
        .post("/api/v1/contacts/search", &a.token, json!({"q": "acme"}))
        .await;
    assert_eq!(v["data"][0]["id"], cid);
    let (_, v) = app
        .get("/api/v1/companies?annual_revenue[gte]=1000000", &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (_, v) = app
        .get("/api/v1/companies?annual_revenue[gt]=9999999", &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.delete(
            &format!("/api/v1/contacts/{cid}/companies/{co_id}"),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{cid}/companies"), &a.token)
            .await
            .1,
        json!([])
    );
}

/// Patches without `If-Match` of one record at once queue on its row: each applies to the
/// version the one before it wrote, and none fails a version check it did not ask for.
#[tokio::test]
async fn concurrent_patches_of_one_record_queue_and_all_apply() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let a = app.workspace("Acme").await;
    for (path, body) in [
        (
            "/api/v1/contacts",
            json!({"first_name": "Ada", "email": "ada@example.com"}),
        ),
        (
            "/api/v1/deals",
            json!({"name": "Big deal", "amount": "10.00", "currency": "EUR"}),
        ),
    ] {
        let (s, created) = app.post(path, &a.token, body).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let record = format!("{path}/{}", created["id"].as_str().unwrap());
        let field = if path.ends_with("contacts") {
            "last_name"
        } else {
            "name"
        };
        let patches = (0..40).map(|i| {
            let (app, token, record) = (app.clone(), a.token.clone(), record.clone());
            tokio::spawn(async move {
                app.patch(&record, &token, json!({ field: format!("Patch {i}") }))
                    .await
            })
        });
        let mut versions = Vec::new();
        for p in patches {
            let (s, v) = p.await.unwrap();
            assert_eq!(s, StatusCode::OK, "{v}");
            versions.push(v["version"].as_i64().unwrap());
        }
        versions.sort();
        assert_eq!(versions, (2..=41).collect::<Vec<i64>>(), "{record}");
        let (_, last) = app.get(&record, &a.token).await;
        assert_eq!(last["version"], 41);
    }
}
