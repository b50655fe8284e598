use crm_e2e::{batch_statuses as statuses, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn batches_apply_each_operation_in_order_and_report_each_outcome() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, existing) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Old", "email": "old@example.com"}),
        )
        .await;
    let old_id = existing["id"].as_str().unwrap();
    let b = app.workspace("Beta").await;
    let (_, theirs) = app
        .post(
            "/api/v1/contacts",
            &b.token,
            json!({"first_name": "Theirs"}),
        )
        .await;

    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"first_name": "Ada", "email": "ada@example.com"}},
                {"op": "create", "data": {"first_name": "Bad", "email": "nope"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-1", "first_name": "Erp"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-1", "last_name": "One"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "OLD@example.com", "job_title": "CTO"}},
                {"op": "create", "data": {"first_name": "Twin", "email": "ada@example.com"}},
                {"op": "update", "id": old_id, "data": {"last_name": "Timer"}},
                {"op": "update", "id": theirs["id"], "data": {"last_name": "Stolen"}},
                {"op": "upsert", "match_on": "phone", "data": {"phone": "+1 555 0100"}},
                {"op": "update", "data": {"last_name": "No id"}},
                {"op": "delete", "id": old_id},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        statuses(&v),
        [201, 422, 201, 200, 200, 409, 200, 404, 422, 422, 204]
    );
    let r = v["results"].as_array().unwrap();
    assert!(r.iter().enumerate().all(|(i, x)| x["index"] == i));
    assert_eq!(r[1]["error"]["errors"][0]["field"], "email");
    assert_eq!(
        r[3]["data"]["first_name"], "Erp",
        "an upsert of an existing record merges"
    );
    assert_eq!(r[3]["data"]["last_name"], "One");
    assert_eq!(r[3]["data"]["id"], r[2]["data"]["id"]);
    assert_eq!(r[4]["data"]["id"], old_id);
    assert_eq!(r[4]["data"]["job_title"], "CTO");
    assert_eq!(
        r[5]["error"]["existing_id"], r[0]["data"]["id"],
        "a duplicate within the batch"
    );
    assert_eq!(r[8]["error"]["errors"][0]["field"], "match_on");
    assert_eq!(r[9]["error"]["errors"][0]["field"], "id");

    // What stands: Ada and Erp; Old archived; Beta's contact untouched.
    let (_, list) = app.get("/api/v1/contacts?count=true", &a.token).await;
    assert_eq!(list["total"], 2);
    let (_, t) = app
        .get(
            &format!("/api/v1/contacts/{}", theirs["id"].as_str().unwrap()),
            &b.token,
        )
        .await;
    assert!(t["last_name"].is_null());
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let types: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "user.created",
            "contact.created",
            "contact.created",
            "contact.created",
            "contact.updated",
            "contact.updated",
            "contact.updated",
            "contact.archived"
        ],
        "one event per applied operation, none for failures"
    );
}

#[tokio::test]
async fn atomic_batches_are_all_or_nothing_and_limits_hold() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "create", "data": {"name": "One"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "c-2", "name": "Two"}},
                {"op": "create", "data": {"name": "Three", "currency": "euros"}},
                {"op": "create", "data": {"name": "Four"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [424, 424, 422, 424]);
    assert_eq!(v["results"][2]["error"]["errors"][0]["field"], "currency");
    assert_eq!(
        app.get("/api/v1/companies?count=true", &a.token).await.1["total"],
        0
    );
    // Nothing but the workspace's first admin.
    assert_eq!(
        crm_e2e::event_types(&app.get("/api/v1/events", &a.token).await.1),
        ["user.created"]
    );

    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "create", "data": {"name": "One"}},
                {"op": "upsert", "match_on": "email", "data": {"name": "Two"}},
            ]}),
        )
        .await;
    assert_eq!(
        (s, statuses(&v)),
        (StatusCode::OK, vec![424, 422]),
        "companies match on external_id only"
    );

    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "create", "data": {"name": format!("C{i}")}}))
        .collect();
    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &a.token,
            json!({"operations": ops}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(statuses(&v).iter().all(|s| *s == 201));
    assert_eq!(
        app.get("/api/v1/companies?count=true", &a.token).await.1["total"],
        1000
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "create", "data": {"name": "X"}}))
        .collect();
    for body in [json!({"operations": too_many}), json!({"operations": []})] {
        let (s, v) = app.post("/api/v1/companies/batch", &a.token, body).await;
        assert_eq!(
            (s, v["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("operations"))
        );
    }
    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &a.token,
            json!({"operations": [{"op": "merge"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let viewer = app.user(&a, "viewer").await;
    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &viewer.token,
            json!({"operations": [{"op": "create", "data": {"name": "V"}}]}),
        )
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("companies:write"))
    );
}

#[tokio::test]
async fn upserts_see_the_changes_of_earlier_operations_in_the_same_batch() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let sales = app.user(&a, "sales").await;
    let gone = app.user(&a, "sales").await;
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", gone.user_id), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (_, kept) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Kept", "email": "kept@example.com"}),
        )
        .await;
    let kept_id = kept["id"].as_str().unwrap();
    let (_, archived) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Gone", "email": "gone@example.com"}),
        )
        .await;
    let archived_id = archived["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{archived_id}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                // 0: the e-mail moves from kept@ to moved@ …
                {"op": "update", "id": kept_id, "data": {"email": "moved@example.com"}},
                // 1: … so kept@ is free: a new contact.
                {"op": "upsert", "match_on": "email", "data": {"email": "kept@example.com", "first_name": "New"}},
                // 2: and moved@ finds the contact it moved to.
                {"op": "upsert", "match_on": "email", "data": {"email": "Moved@example.com", "job_title": "CTO", "owner_id": sales.user_id}},
                // 3: a failed item (deactivated owner) changes nothing …
                {"op": "upsert", "match_on": "email", "data": {"email": "fresh@example.com", "owner_id": gone.user_id}},
                // 4: … so fresh@ is still new here.
                {"op": "upsert", "match_on": "email", "data": {"email": "fresh@example.com", "first_name": "Fresh"}},
                // 5: an archived holder is a conflict naming it.
                {"op": "upsert", "match_on": "email", "data": {"email": "gone@example.com"}},
                // 6, 7: archiving in the batch makes the next upsert of its e-mail a conflict.
                {"op": "delete", "id": kept_id},
                {"op": "upsert", "match_on": "email", "data": {"email": "moved@example.com"}},
                // 8: an owner that does not exist.
                {"op": "create", "data": {"first_name": "X", "owner_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 201, 200, 422, 201, 409, 204, 409, 422]);
    let r = v["results"].as_array().unwrap();
    assert_ne!(r[1]["data"]["id"], kept_id);
    assert_eq!(r[2]["data"]["id"], kept_id);
    assert_eq!(r[2]["data"]["job_title"], "CTO");
    assert_eq!(r[2]["data"]["owner_id"], sales.user_id.as_str());
    assert_eq!(r[3]["error"]["errors"][0]["field"], "owner_id");
    assert_eq!(r[3]["error"]["errors"][0]["code"], "inactive_user");
    assert_eq!(r[5]["error"]["existing_id"], archived_id);
    assert_eq!(r[7]["error"]["existing_id"], kept_id);
    assert_eq!(r[8]["error"]["errors"][0]["code"], "not_found");
    // What stands: the new kept@ and fresh@ (moved@ was archived in the batch).
    let (_, list) = app.get("/api/v1/contacts?count=true", &a.token).await;
    assert_eq!(list["total"], 2, "{list}");
}

/// The batch operations counted so far for `object`: (bulk, itemwise), from `/metrics`.
async fn batch_items(app: &TestApp, object: &str) -> (u64, u64) {
    let metrics = app.metrics().await;
    let count = |path: &str| {
        let series = format!("crm_batch_items_total{{object=\"{object}\",path=\"{path}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |n| n.parse().unwrap())
    };
    (count("bulk"), count("itemwise"))
}

async fn contact(app: &TestApp, token: &str, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/contacts", token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// A workspace whose contacts have a `score` number field.
async fn workspace_with_score(app: &TestApp) -> crm_e2e::Session {
    let a = app.workspace("Acme").await;
    let field = json!({"name": "score", "label": "Score", "type": "number"});
    let (s, v) = app.post("/api/v1/fields/contacts", &a.token, field).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    a
}

fn event_types(feed: &Value) -> Vec<(String, String)> {
    feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["record_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A batch of creates, updates and upserts that name distinct records is written in bulk:
/// each item answers exactly as the single-record endpoint would, what it answers is what
/// was stored, and each applied item has its event and (contacts) its lifecycle history.
#[tokio::test]
async fn bulk_written_batches_answer_and_store_as_single_writes_would() {
    let app = TestApp::spawn().await;
    let a = workspace_with_score(&app).await;
    let old = contact(
        &app,
        &a.token,
        json!({"first_name": "Old", "email": "old@example.com", "lifecycle_stage": "prospect"}),
    )
    .await;
    let other = contact(
        &app,
        &a.token,
        json!({"first_name": "Other", "external_id": "erp-7"}),
    )
    .await;
    contact(
        &app,
        &a.token,
        json!({"first_name": "Third", "external_id": "erp-6"}),
    )
    .await;
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let last = feed["data"].as_array().unwrap().last().unwrap();
    let after = last["id"].as_str().unwrap().to_string();

    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"first_name": "Ada", "email": "Ada@Example.com", "custom": {"score": 3}}},
                {"op": "upsert", "match_on": "email", "data": {"email": "OLD@example.com", "job_title": "CTO", "lifecycle_stage": "growing"}},
                {"op": "create", "data": {"first_name": "Bad", "email": "nope"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-8", "first_name": "Erp"}},
                {"op": "update", "id": other["id"], "data": {"last_name": "Timer", "custom": {"score": 9}}},
                {"op": "create", "data": {"first_name": "Typo", "custom": {"score": "high"}}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-6", "version": 5}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 200, 422, 201, 200, 422, 422]);
    assert_eq!(
        batch_items(&app, "contacts").await,
        (7, 0),
        "written in bulk"
    );
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[2]["error"]["errors"][0]["field"], "email");
    assert_eq!(r[5]["error"]["errors"][0]["field"], "custom.score");
    assert_eq!(r[6]["error"]["errors"][0]["code"], "read_only");
    assert_eq!(r[0]["data"]["email"], "ada@example.com");
    assert_eq!(r[1]["data"]["id"], old["id"]);
    assert_eq!(r[1]["data"]["first_name"], "Old", "an upsert merges");
    assert_eq!(r[1]["data"]["version"], 2);
    assert_eq!(r[4]["data"]["custom"]["score"], 9);
    // What each item answered is what was stored, to the microsecond.
    for i in [0, 1, 3, 4] {
        let id = r[i]["data"]["id"].as_str().unwrap();
        let (s, stored) = app.get(&format!("/api/v1/contacts/{id}"), &a.token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(stored, r[i]["data"], "item {i}");
    }
    assert_ne!(
        r[1]["data"]["lifecycle_stage_changed_at"],
        old["lifecycle_stage_changed_at"]
    );
    assert_eq!(
        r[4]["data"]["lifecycle_stage_changed_at"], other["lifecycle_stage_changed_at"],
        "no change of stage, no new stage time"
    );
    let old_id = old["id"].as_str().unwrap();
    let (_, history) = app
        .get(
            &format!("/api/v1/contacts/{old_id}/lifecycle-history"),
            &a.token,
        )
        .await;
    let stages: Vec<(Value, Value)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from_stage"].clone(), h["to_stage"].clone()))
        .collect();
    assert_eq!(
        stages,
        [
            (json!(null), json!("prospect")),
            (json!("prospect"), json!("growing"))
        ]
    );
    assert_eq!(history[1]["changed_by"], a.user_id.as_str());
    let new_id = r[0]["data"]["id"].as_str().unwrap();
    let (_, history) = app
        .get(
            &format!("/api/v1/contacts/{new_id}/lifecycle-history"),
            &a.token,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);

    let (_, feed) = app
        .get(&format!("/api/v1/events?after={after}&limit=500"), &a.token)
        .await;
    let id = |i: usize| r[i]["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        event_types(&feed),
        [
            ("contact.created".to_string(), id(0)),
            ("contact.updated".to_string(), id(1)),
            ("contact.lifecycle_changed".to_string(), id(1)),
            ("contact.created".to_string(), id(3)),
            ("contact.updated".to_string(), id(4)),
        ],
        "one event per applied item, in input order (and the lifecycle move's own)"
    );
    let updated = &feed["data"][1];
    assert_eq!(
        updated["changes"]["job_title"],
        json!({"old": null, "new": "CTO"})
    );
    assert_eq!(
        updated["changes"]["lifecycle_stage"],
        json!({"old": "prospect", "new": "growing"})
    );
    assert_eq!(updated["data"], r[1]["data"]);
}

/// When the bulk write cannot stand (a unique value taken by a record outside the batch or
/// by another item), the batch runs item by item and names the item that conflicts; an
/// atomic batch with one bad item writes nothing and names it.
#[tokio::test]
async fn bulk_written_batches_name_the_item_that_conflicts() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let held = contact(&app, &a.token, json!({"email": "held@example.com"})).await;

    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"first_name": "One", "email": "one@example.com"}},
                {"op": "create", "data": {"first_name": "Taken", "email": "held@example.com"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "e-1", "email": "one@example.com"}},
                {"op": "create", "data": {"first_name": "Two", "email": "two@example.com"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 409, 409, 201]);
    assert_eq!(
        batch_items(&app, "contacts").await,
        (0, 4),
        "declined by the bulk write, run item by item"
    );
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[1]["error"]["existing_id"], held["id"]);
    assert_eq!(r[2]["error"]["existing_id"], r[0]["data"]["id"]);
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        3
    );

    for (ops, failing, status) in [
        (
            json!([
                {"op": "create", "data": {"email": "three@example.com"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "two@example.com", "first_name": "Changed"}},
                {"op": "create", "data": {"email": "held@example.com"}},
            ]),
            2,
            409,
        ),
        (
            json!([
                {"op": "create", "data": {"email": "three@example.com"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "two@example.com", "first_name": "Changed"}},
                {"op": "create", "data": {"email": "four@example.com", "lifecycle_stage": "sideways"}},
            ]),
            2,
            422,
        ),
    ] {
        let (s, v) = app
            .post(
                "/api/v1/contacts/batch",
                &a.token,
                json!({"atomic": true, "operations": ops}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut expected = vec![424; 3];
        expected[failing] = status;
        assert_eq!(statuses(&v), expected, "{v}");
        assert_eq!(
            app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
            3,
            "an atomic batch that failed writes nothing"
        );
        let two = r[3]["data"]["id"].as_str().unwrap();
        let (_, stored) = app.get(&format!("/api/v1/contacts/{two}"), &a.token).await;
        assert_eq!(stored["first_name"], "Two");
    }
}

/// Companies write in bulk too: upserts on external_id update in place, creates insert,
/// and each has its event.
#[tokio::test]
async fn company_batches_write_in_bulk() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, existing) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"name": "Acme", "external_id": "c-1", "industry": "Retail"}),
        )
        .await;
    let ops: Vec<Value> = (0..500)
        .map(|i| {
            json!({"op": "upsert", "match_on": "external_id",
                   "data": {"external_id": format!("c-{i}"), "name": format!("Company {i}")}})
        })
        .collect();
    let (s, v) = app
        .post(
            "/api/v1/companies/batch",
            &a.token,
            json!({"operations": ops}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(batch_items(&app, "companies").await, (500, 0));
    let st = statuses(&v);
    assert_eq!(st[1], 200);
    assert!(st
        .iter()
        .enumerate()
        .all(|(i, s)| *s == if i == 1 { 200 } else { 201 }));
    let one = &v["results"][1]["data"];
    assert_eq!(one["id"], existing["id"]);
    assert_eq!(one["industry"], "Retail");
    assert_eq!(one["name"], "Company 1");
    let id = existing["id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/api/v1/companies/{id}"), &a.token).await;
    assert_eq!(&stored, one);
    assert_eq!(
        app.get("/api/v1/companies?count=true", &a.token).await.1["total"],
        500
    );
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let types = event_types(&feed);
    assert_eq!(types.len(), 500);
    // The first admin, the company created before, then the batch's items.
    assert_eq!(types[0].0, "user.created");
    assert_eq!(types[3], ("company.updated".to_string(), id.to_string()));
    let last = feed["data"][499]["id"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/api/v1/events?after={last}&limit=500"), &a.token)
        .await;
    assert_eq!(event_types(&rest).len(), 2, "one event per item");
}

/// Batches racing to create the same e-mails: each e-mail is created once, and every other
/// claim on it is a 409 for its item, never a failed request.
#[tokio::test]
async fn concurrent_bulk_batches_claiming_the_same_values_conflict_per_item() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let ops: Vec<Value> = (0..50)
        .map(|i| json!({"op": "create", "data": {"email": format!("race{i}@example.com")}}))
        .collect();
    let body = json!({"operations": ops});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/contacts/batch", app.base);
        let (token, body) = (a.token.clone(), body.clone());
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        });
    }
    let mut created = 0;
    for (s, v) in tasks.join_all().await {
        assert_eq!(s, StatusCode::OK, "{v}");
        for status in statuses(&v) {
            assert!(status == 201 || status == 409, "{v}");
            created += usize::from(status == 201);
        }
    }
    assert_eq!(created, 50);
    assert_eq!(
        app.get("/api/v1/contacts?count=true", &a.token).await.1["total"],
        50
    );
}

/// A batch of deletes archives its records together: each live record's item is a 204 with
/// its `archived` event, an id of no live record is its own 404 (naming the survivor of a
/// merge), and an atomic batch with such an id archives nothing.
#[tokio::test]
async fn batches_of_deletes_archive_in_bulk_and_answer_each_item() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let c = contact(
            &app,
            &a.token,
            json!({"email": format!("d{i}@example.com")}),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    let theirs = contact(&app, &b.token, json!({"email": "theirs@example.com"})).await;
    let s = app
        .delete(&format!("/api/v1/contacts/{}", ids[1]), &a.token)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app
        .post(
            &format!("/api/v1/contacts/{}/merge", ids[3]),
            &a.token,
            json!({"other_id": ids[2]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Atomic, with an archived record among them: nothing is archived.
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "delete", "id": ids[0]},
                {"op": "delete", "id": ids[1]},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [424, 404]);
    let (s, _) = app
        .get(&format!("/api/v1/contacts/{}", ids[0]), &a.token)
        .await;
    assert_eq!(s, StatusCode::OK);

    let before = batch_items(&app, "contacts").await;
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "delete", "id": ids[0]},
                {"op": "delete", "id": ids[1]},
                {"op": "delete", "id": ids[2]},
                {"op": "delete", "id": theirs["id"]},
                {"op": "delete", "id": ids[3]},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [204, 404, 404, 404, 204]);
    assert_eq!(
        v["results"][2]["error"]["merged_into"],
        ids[3].as_str(),
        "{v}"
    );
    assert!(v["results"][3]["error"].get("merged_into").is_none(), "{v}");
    let after = batch_items(&app, "contacts").await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (5, 0),
        "written in bulk"
    );
    for id in [&ids[0], &ids[3]] {
        let (s, _) = app.get(&format!("/api/v1/contacts/{id}"), &a.token).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, _) = app
        .get(
            &format!("/api/v1/contacts/{}", theirs["id"].as_str().unwrap()),
            &b.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "another workspace's record stands");
    let (_, feed) = app
        .get("/api/v1/events?types=contact.archived&limit=100", &a.token)
        .await;
    let archived: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        archived,
        [ids[1].as_str(), ids[0].as_str(), ids[3].as_str()]
    );
    let (_, restored) = app
        .post(
            &format!("/api/v1/contacts/{}/restore", ids[0]),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(restored["id"], ids[0].as_str(), "{restored}");
    assert!(restored["archived_at"].is_null(), "{restored}");
}

/// An upsert whose data would change nothing in the record it finds leaves the record as
/// it is (its version and `updated_at` kept, no event), on the bulk path and item by item
/// alike; an upsert that changes something, and an explicit update, write as before.
#[tokio::test]
async fn upserts_that_change_nothing_leave_the_record_as_it_is() {
    let app = TestApp::spawn().await;
    let a = workspace_with_score(&app).await;
    let ada = contact(
        &app,
        &a.token,
        json!({"first_name": "Ada", "email": "ada@example.com", "external_id": "erp-1",
               "tags": ["vip"], "custom": {"score": 3}}),
    )
    .await;
    let ada_id = ada["id"].as_str().unwrap();
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let last = feed["data"].as_array().unwrap().last().unwrap();
    assert_eq!(last["type"], "contact.created");
    let after = last["id"].as_str().unwrap().to_string();

    // In bulk: the same name under the same address, written differently.
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "match_on": "email", "data": {"email": "ADA@example.com", "first_name": "Ada"}},
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-2", "first_name": "New"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 201]);
    assert_eq!(
        batch_items(&app, "contacts").await,
        (2, 0),
        "written in bulk"
    );
    assert_eq!(
        v["results"][0]["data"], ada,
        "answered with the record as it is"
    );
    let new_id = v["results"][1]["data"]["id"].as_str().unwrap().to_string();

    // Item by item (a delete in the batch): the same custom field and tags.
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-1", "tags": ["vip"], "custom": {"score": 3}}},
                {"op": "delete", "id": new_id},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 204]);
    assert_eq!(batch_items(&app, "contacts").await, (2, 2), "item by item");
    assert_eq!(v["results"][0]["data"], ada);
    let (_, stored) = app
        .get(&format!("/api/v1/contacts/{ada_id}"), &a.token)
        .await;
    assert_eq!(stored, ada, "version and updated_at kept");

    // A change is written, on either path; so is an explicit update.
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "match_on": "email", "data": {"email": "ada@example.com", "job_title": "CTO"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"]["version"], 2, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [{"op": "update", "id": ada_id, "data": {"first_name": "Ada"}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"]["version"], 3, "{v}");

    let (_, feed) = app
        .get(&format!("/api/v1/events?after={after}&limit=500"), &a.token)
        .await;
    assert_eq!(
        event_types(&feed),
        [
            ("contact.created".to_string(), new_id.clone()),
            ("contact.archived".to_string(), new_id),
            ("contact.updated".to_string(), ada_id.to_string()),
            ("contact.updated".to_string(), ada_id.to_string()),
        ],
        "no event for the upserts that changed nothing"
    );
}

/// Resources that write item by item (products, deals) leave a record alone too when an
/// upsert's data, merged into its fields as entered, changes none of them; a value written
/// differently from how it is stored (`49.90` for `49.9`) writes.
#[tokio::test]
async fn upserts_of_other_records_that_change_nothing_write_nothing() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, product) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "SUP-100", "name": "Support plan", "unit_price": "49.90", "currency": "EUR", "custom": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{product}");
    let (s, deal) = app
        .post(
            "/api/v1/deals",
            &a.token,
            json!({"name": "Renewal", "amount": "1200", "currency": "EUR", "external_id": "erp-d1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{deal}");
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let after = feed["data"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, v) = app
        .post(
            "/api/v1/products/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"sku": "SUP-100", "name": "Support plan", "unit_price": "49.9"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200]);
    assert_eq!(v["results"][0]["data"], product, "the record as it is");
    let (s, v) = app
        .post(
            "/api/v1/deals/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"external_id": "erp-d1", "name": "Renewal", "stage_id": deal["stage_id"]}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"], deal, "the record as it is");
    let deal_id = deal["id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/api/v1/deals/{deal_id}"), &a.token).await;
    assert_eq!(stored, deal, "version and updated_at kept");

    // Written differently, or changed: written.
    let (s, v) = app
        .post(
            "/api/v1/products/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"sku": "SUP-100", "unit_price": "49.90"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"]["version"], 2, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/deals/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"external_id": "erp-d1", "name": "Renewal 2027"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"]["version"], 2, "{v}");

    let (_, feed) = app
        .get(&format!("/api/v1/events?after={after}&limit=500"), &a.token)
        .await;
    assert_eq!(
        event_types(&feed),
        [
            (
                "product.updated".to_string(),
                product["id"].as_str().unwrap().to_string()
            ),
            ("deal.updated".to_string(), deal_id.to_string()),
        ],
        "events only for the upserts that wrote"
    );
}

/// The types of a page of events, in order.
fn types_of(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn pipelines_and_assignment_rules_are_written_in_batches_item_by_item() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let manager = app.user(&a, "manager").await;
    let sales = app.user(&a, "sales").await;
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let default_id = pipelines["data"][0]["id"].as_str().unwrap().to_string();
    let (_, theirs) = app.get("/api/v1/pipelines", &b.token).await;
    let their_id = theirs["data"][0]["id"].as_str().unwrap().to_string();

    let (s, v) = app
        .post(
            "/api/v1/pipelines/batch",
            &manager.token,
            json!({"operations": [
                {"op": "create", "data": {"name": "Renewals", "stages": [
                    {"name": "Due", "probability": 50},
                    {"name": "Renewed", "probability": 100, "kind": "won"}]}},
                {"op": "create", "data": {"name": "Closed only", "stages": [
                    {"name": "Won", "probability": 100, "kind": "won"}]}},
                {"op": "create", "data": {"name": "Partners"}},
                {"op": "upsert", "data": {"name": "Renewals"}},
                {"op": "delete", "id": default_id},
                {"op": "update", "id": their_id, "data": {"name": "Mine now"}},
                {"op": "update", "data": {"name": "No id"}},
                {"op": "create", "data": {"name": "Odd", "colour": "red"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        statuses(&v),
        [201, 422, 201, 422, 409, 404, 422, 422],
        "{v}"
    );
    let results = v["results"].as_array().unwrap();
    let renewals = &results[0]["data"];
    assert_eq!(renewals["name"], "Renewals");
    assert_eq!(renewals["stages"][1]["kind"], "won");
    assert_eq!(results[1]["error"]["errors"][0]["field"], "stages");
    assert_eq!(results[2]["data"]["stages"].as_array().unwrap().len(), 6);
    assert_eq!(results[3]["error"]["errors"][0]["field"], "op");
    assert_eq!(results[6]["error"]["errors"][0]["field"], "id");
    assert_eq!(results[7]["error"]["errors"][0]["field"], "colour");
    // The other workspace's pipeline is untouched.
    let (_, still) = app
        .get(&format!("/api/v1/pipelines/{their_id}"), &b.token)
        .await;
    assert_ne!(still["name"], "Mine now");

    // Updates are merge patches; deletes archive; each writes its event as the endpoint does.
    let renewals_id = renewals["id"].as_str().unwrap();
    let partners_id = results[2]["data"]["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/pipelines/batch",
            &a.token,
            json!({"operations": [
                {"op": "update", "id": renewals_id, "data": {"name": "Renewals 2027", "is_default": true}},
                {"op": "delete", "id": partners_id}
            ]}),
        )
        .await;
    assert_eq!((s, statuses(&v)), (StatusCode::OK, vec![200, 204]), "{v}");
    assert_eq!(v["results"][0]["data"]["name"], "Renewals 2027");
    assert_eq!(v["results"][0]["data"]["is_default"], true);
    assert_eq!(v["results"][0]["data"]["version"], 2);
    let (_, live) = app.get("/api/v1/pipelines", &a.token).await;
    let names: Vec<&str> = live["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{live}");
    assert!(names.contains(&"Renewals 2027") && !names.contains(&"Partners"));
    let (_, events) = app
        .get(
            "/api/v1/events?types=pipeline.created,pipeline.updated,pipeline.archived",
            &a.token,
        )
        .await;
    assert_eq!(
        types_of(&events),
        [
            "pipeline.created",
            "pipeline.created",
            "pipeline.updated",
            "pipeline.archived"
        ],
        "{events}"
    );

    // An atomic batch with a failure writes nothing.
    let (s, v) = app
        .post(
            "/api/v1/pipelines/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "create", "data": {"name": "Never"}},
                {"op": "create", "data": {"name": " "}}
            ]}),
        )
        .await;
    assert_eq!((s, statuses(&v)), (StatusCode::OK, vec![424, 422]), "{v}");
    let (_, live) = app.get("/api/v1/pipelines", &a.token).await;
    assert_eq!(live["data"].as_array().unwrap().len(), 2);

    // Sales people write neither pipelines nor rules, in a batch or not.
    let one = json!({"operations": [{"op": "create", "data": {"name": "X"}}]});
    for path in ["/api/v1/pipelines/batch", "/api/v1/assignment-rules/batch"] {
        let (s, v) = app.post(path, &sales.token, one.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }

    // Assignment rules: created, patched and deleted as their endpoints do.
    let (s, v) = app
        .post(
            "/api/v1/assignment-rules/batch",
            &manager.token,
            json!({"operations": [
                {"op": "create", "data": {"name": "Everyone to the manager", "strategy": "fixed", "user_id": manager.user_id}},
                {"op": "create", "data": {"name": "Turns", "strategy": "round_robin", "user_ids": [manager.user_id, sales.user_id], "position": 5}},
                {"op": "create", "data": {"name": "No strategy"}},
                {"op": "create", "data": {"name": "Stranger", "strategy": "fixed", "user_id": b.user_id}},
                {"op": "upsert", "data": {"name": "Turns"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 201, 422, 422, 422], "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[2]["error"]["errors"][0]["field"], "strategy");
    assert_eq!(results[3]["error"]["errors"][0]["field"], "user_id");
    assert_eq!(results[4]["error"]["errors"][0]["field"], "op");
    let fixed_id = results[0]["data"]["id"].as_str().unwrap();
    let turns_id = results[1]["data"]["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/assignment-rules/batch",
            &a.token,
            json!({"operations": [
                {"op": "update", "id": turns_id, "data": {"position": 0, "user_ids": [sales.user_id]}},
                {"op": "delete", "id": fixed_id},
                {"op": "delete", "id": fixed_id}
            ]}),
        )
        .await;
    assert_eq!(
        (s, statuses(&v)),
        (StatusCode::OK, vec![200, 204, 404]),
        "{v}"
    );
    assert_eq!(v["results"][0]["data"]["user_ids"], json!([sales.user_id]));
    let (_, rules) = app.get("/api/v1/assignment-rules", &a.token).await;
    assert_eq!(rules["data"].as_array().unwrap().len(), 1, "{rules}");
    assert_eq!(rules["data"][0]["position"], 0);
    // The rule now assigns new leads to the one user it names.
    let (s, lead) = app
        .post("/api/v1/leads", &a.token, json!({"last_name": "Inbound"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{lead}");
    assert_eq!(lead["owner_id"], json!(sales.user_id));
    let (_, none) = app.get("/api/v1/assignment-rules", &b.token).await;
    assert_eq!(none["data"], json!([]));
    // Each rule write is in the audit log, with what changed.
    let (s, log) = app
        .get(
            &format!("/api/v1/audit-log?record_type=assignment_rule&record_id={turns_id}"),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(
        types_of(&log),
        ["assignment_rule.updated", "assignment_rule.created"],
        "{log}"
    );
    assert_eq!(log["data"][0]["changes"]["position"]["old"], 5, "{log}");
    assert_eq!(log["data"][0]["changes"]["position"]["new"], 0, "{log}");
    assert_eq!(log["data"][1]["actor"]["id"], json!(manager.user_id));
    let (_, deleted) = app
        .get("/api/v1/events?types=assignment_rule.deleted", &a.token)
        .await;
    assert_eq!(deleted["data"][0]["record_id"], fixed_id, "{deleted}");
    assert_eq!(deleted["data"].as_array().unwrap().len(), 1, "{deleted}");
}

#[tokio::test]
async fn users_and_teams_are_written_in_batches_and_users_upsert_on_email() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let manager = app.user(&a, "manager").await;
    let (_, me) = app.get("/api/v1/me", &a.token).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_string();
    let (_, their_me) = app.get("/api/v1/me", &b.token).await;
    let their_admin = their_me["user"]["id"].as_str().unwrap().to_string();

    // Users are for admins only.
    let (s, v) = app
        .post(
            "/api/v1/users/batch",
            &manager.token,
            json!({"operations": [{"op": "create", "data": {"email": "x@example.com", "name": "X", "role": "sales", "password": "long enough"}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    let (s, v) = app
        .post(
            "/api/v1/users/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"email": "Ann@Example.com", "name": "Ann", "role": "sales", "password": "ann's password"}},
                {"op": "upsert", "data": {"email": "bob@example.com", "name": "Bob", "role": "support", "password": "bob's password"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "ANN@example.com", "role": "manager"}},
                {"op": "create", "data": {"email": "short@example.com", "name": "Short", "role": "sales", "password": "short"}},
                {"op": "create", "data": {"email": "ann@example.com", "name": "Ann again", "role": "sales", "password": "ann's password"}},
                {"op": "upsert", "match_on": "external_id", "data": {"email": "bob@example.com"}},
                {"op": "upsert", "data": {"name": "Nobody"}},
                {"op": "delete", "id": admin_id},
                {"op": "update", "id": their_admin, "data": {"name": "Mine now"}},
                {"op": "update", "id": admin_id, "data": {"locked_until": "2030-01-01T00:00:00Z"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        statuses(&v),
        [201, 201, 200, 422, 409, 422, 422, 409, 404, 422],
        "{v}"
    );
    let results = v["results"].as_array().unwrap();
    let ann = &results[0]["data"];
    assert_eq!(ann["email"], "ann@example.com");
    assert!(ann.get("password").is_none() && ann.get("password_hash").is_none());
    assert_eq!(results[2]["data"]["id"], ann["id"]);
    assert_eq!(results[2]["data"]["role"], "manager");
    assert_eq!(results[2]["data"]["version"], 2);
    assert_eq!(results[3]["error"]["errors"][0]["field"], "password");
    assert_eq!(results[5]["error"]["errors"][0]["field"], "match_on");
    assert_eq!(results[6]["error"]["errors"][0]["field"], "email");
    assert_eq!(results[9]["error"]["errors"][0]["field"], "locked_until");
    // The other workspace's admin is untouched.
    let (_, theirs) = app
        .get(&format!("/api/v1/users/{their_admin}"), &b.token)
        .await;
    assert_ne!(theirs["name"], "Mine now");

    // The passwords work; a deactivation in a batch ends the user's sessions at once.
    let bob = app.login("bob@example.com", "bob's password").await;
    let ann_session = app.login("ann@example.com", "ann's password").await;
    let (s, _) = app.get("/api/v1/me", &bob.token).await;
    assert_eq!(s, StatusCode::OK);
    let bob_id = results[1]["data"]["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/users/batch",
            &a.token,
            json!({"operations": [
                {"op": "delete", "id": bob_id},
                {"op": "update", "id": ann["id"], "data": {"password": "a new password"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [204, 200], "{v}");
    let (s, _) = app.get("/api/v1/me", &bob.token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": ann_session.refresh_token})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a new password ends the sessions"
    );
    app.login("ann@example.com", "a new password").await;
    // An upsert finds a deactivated user too, and can reactivate them.
    let (s, v) = app
        .post(
            "/api/v1/users/batch",
            &a.token,
            json!({"operations": [{"op": "upsert", "data": {"email": "bob@example.com", "active": true}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200], "{v}");
    assert_eq!(v["results"][0]["data"]["active"], true);
    // An upsert that changes nothing, its password the user's own included, writes nothing
    // and keeps the user's sessions.
    let ann_now = app.login("ann@example.com", "a new password").await;
    let (_, before) = app
        .get(
            &format!("/api/v1/users/{}", ann["id"].as_str().unwrap()),
            &a.token,
        )
        .await;
    let (s, v) = app
        .post(
            "/api/v1/users/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"email": "ann@example.com", "name": "Ann", "role": "manager", "password": "a new password"}},
                {"op": "upsert", "data": {"email": "bob@example.com", "name": "Bob", "role": "support", "active": true}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 200], "{v}");
    assert_eq!(v["results"][0]["data"]["version"], before["version"], "{v}");
    assert_eq!(
        v["results"][0]["data"]["updated_at"], before["updated_at"],
        "{v}"
    );
    let (s, _, _) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": ann_now.refresh_token})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the same password is not a new one: sessions stay"
    );
    assert_eq!(
        audited(&app, &a.token, "user", bob_id).await,
        ["user.reactivated", "user.deactivated", "user.created"]
    );

    // Teams: created with members, patched, deleted, item by item; an atomic batch rolls back.
    let ann_id = ann["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/teams/batch",
            &manager.token,
            json!({"operations": [
                {"op": "create", "data": {"name": "Inside sales", "member_ids": [ann_id]}},
                {"op": "create", "data": {"name": "Inside sales"}},
                {"op": "create", "data": {"name": "Theirs", "member_ids": [their_admin]}},
                {"op": "upsert", "data": {"name": "Support"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 409, 422, 422], "{v}");
    let team = &v["results"][0]["data"];
    assert_eq!(team["member_ids"], json!([ann_id]));
    assert_eq!(
        v["results"][2]["error"]["errors"][0]["field"],
        "member_ids[0]"
    );
    assert_eq!(v["results"][3]["error"]["errors"][0]["field"], "op");
    let team_id = team["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/teams/batch",
            &manager.token,
            json!({"atomic": true, "operations": [
                {"op": "update", "id": team_id, "data": {"name": "Renamed", "member_ids": [ann_id, bob_id]}},
                {"op": "delete", "id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [424, 404], "{v}");
    let (_, kept) = app.get(&format!("/api/v1/teams/{team_id}"), &a.token).await;
    assert_eq!(kept["name"], "Inside sales");
    assert_eq!(kept["version"], 1);
    let (s, v) = app
        .post(
            "/api/v1/teams/batch",
            &manager.token,
            json!({"operations": [
                {"op": "update", "id": team_id, "data": {"name": "Renamed", "member_ids": [ann_id, bob_id]}},
                {"op": "delete", "id": team_id}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 204], "{v}");
    assert_eq!(
        v["results"][0]["data"]["member_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (s, _) = app.get(&format!("/api/v1/teams/{team_id}"), &a.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        audited(&app, &a.token, "team", team_id).await,
        ["team.deleted", "team.updated", "team.created"]
    );
}

/// The types of a record's events in the audit log, newest first.
async fn audited(app: &TestApp, token: &str, record_type: &str, id: &str) -> Vec<String> {
    let (s, log) = app
        .get(
            &format!("/api/v1/audit-log?record_type={record_type}&record_id={id}"),
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    crm_e2e::event_types(&log)
}

#[tokio::test]
async fn custom_fields_are_written_in_batches_and_upsert_on_name() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let manager = app.user(&a, "manager").await;
    let fields = json!({"operations": [
        {"op": "upsert", "data": {"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]}},
        {"op": "upsert", "match_on": "name", "data": {"name": "score", "label": "Score", "type": "number"}},
        {"op": "create", "data": {"name": "Bad Name", "label": "Bad", "type": "text"}},
        {"op": "upsert", "match_on": "email", "data": {"name": "x", "label": "X", "type": "text"}},
        {"op": "upsert", "data": {"label": "No name", "type": "text"}}
    ]});
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts/batch",
            &manager.token,
            fields.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app
        .post("/api/v1/fields/planets/batch", &a.token, fields.clone())
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app
        .post("/api/v1/fields/contacts/batch", &a.token, fields.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 201, 422, 422, 422], "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[0]["data"]["options"], json!(["smb", "enterprise"]));
    assert_eq!(results[2]["error"]["errors"][0]["field"], "name");
    assert_eq!(results[3]["error"]["errors"][0]["field"], "match_on");
    assert_eq!(results[4]["error"]["errors"][0]["field"], "name");
    let segment_id = results[0]["data"]["id"].as_str().unwrap().to_string();
    let score_id = results[1]["data"]["id"].as_str().unwrap().to_string();

    // Sent again, the same definitions write nothing; a changed one is brought in line;
    // a type never changes; update and delete name a definition by id.
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]}},
                {"op": "upsert", "data": {"name": "score", "label": "Lead score", "type": "number", "required": true}},
                {"op": "upsert", "data": {"name": "segment", "label": "Segment", "type": "text"}},
                {"op": "update", "id": segment_id, "data": {"options": ["smb", "mid", "enterprise"]}},
                {"op": "update", "id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01", "data": {"label": "Nobody"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [200, 200, 422, 200, 404], "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(
        results[0]["data"]["version"], 1,
        "an upsert that changes nothing"
    );
    assert_eq!(results[1]["data"]["label"], "Lead score");
    assert_eq!(results[1]["data"]["required"], true);
    assert_eq!(results[1]["data"]["version"], 2);
    assert_eq!(results[2]["error"]["errors"][0]["field"], "type");
    assert_eq!(
        results[3]["data"]["options"],
        json!(["smb", "mid", "enterprise"])
    );
    assert_eq!(
        audited(&app, &a.token, "custom_field", &segment_id).await,
        ["custom_field.updated", "custom_field.created"]
    );

    // The definitions apply to records at once; an atomic batch rolls back; delete by id.
    let (s, c) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Ada", "custom": {"segment": "mid", "score": 7}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "delete", "id": score_id},
                {"op": "create", "data": {"name": "segment", "label": "Again", "type": "text"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [424, 409], "{v}");
    let (s, _) = app.get("/api/v1/fields/contacts/score", &a.token).await;
    assert_eq!(s, StatusCode::OK, "rolled back");
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts/batch",
            &a.token,
            json!({"operations": [{"op": "delete", "id": score_id}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [204], "{v}");
    let (s, _) = app.get("/api/v1/fields/contacts/score", &a.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another object's definitions are apart.
    let (_, companies) = app.get("/api/v1/fields/companies", &a.token).await;
    assert_eq!(companies, json!({"data": [], "next_cursor": null}));
}
