use crm_e2e::{create_deal, stage_id, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn default_pipeline(app: &TestApp, s: &Session) -> Value {
    let (st, v) = app.get("/api/v1/pipelines", &s.token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let defaults: Vec<&Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{v}");
    defaults[0].clone()
}

async fn history(app: &TestApp, s: &Session, id: &str) -> Vec<Value> {
    let (st, v) = app
        .get(&format!("/api/v1/deals/{id}/stage-history"), &s.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_new_workspace_has_a_default_pipeline_and_deals_start_in_its_first_stage() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p = default_pipeline(&app, &a).await;
    let names: Vec<&str> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Qualification",
            "Needs analysis",
            "Proposal",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );
    assert_eq!(p["stages"][2]["probability"], 50);
    assert_eq!(p["stages"][4]["kind"], "won");
    assert_eq!(p["stages"][5]["kind"], "lost");

    let d = create_deal(
        &app,
        &a,
        json!({"name": "Renewal", "amount": "1200.50", "currency": "eur", "expected_close_date": "2027-03-31"}),
    )
    .await;
    assert_eq!(d["pipeline_id"], p["id"]);
    assert_eq!(d["stage_id"], stage_id(&p, "Qualification"));
    assert_eq!(
        (d["amount"].as_str(), d["currency"].as_str()),
        (Some("1200.5"), Some("EUR"))
    );
    assert_eq!(d["closed_at"], Value::Null);
    let id = d["id"].as_str().unwrap();
    let (s, got) = app.get(&format!("/api/v1/deals/{id}"), &a.token).await;
    assert_eq!((s, &got["name"]), (StatusCode::OK, &json!("Renewal")));

    // A stage of another pipeline, an unknown company, owner or stage: 422 naming the field.
    let (s, other) = app
        .post(
            "/api/v1/pipelines",
            &a.token,
            json!({"name": "Partners", "stages": [{"name": "Intro", "probability": 20}, {"name": "Signed", "probability": 100, "kind": "won"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    let foreign = stage_id(&other, "Intro");
    let nobody = "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01";
    for (body, field) in [
        (
            json!({"name": "X", "pipeline_id": p["id"], "stage_id": foreign}),
            "stage_id",
        ),
        (json!({"name": "X", "stage_id": nobody}), "stage_id"),
        (json!({"name": "X", "company_id": nobody}), "company_id"),
        (json!({"name": "X", "owner_id": nobody}), "owner_id"),
        (json!({"name": "X", "amount": "10"}), "currency"),
        (
            json!({"name": "X", "amount": "-1", "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"name": "X", "expected_close_date": "2027-02-30"}),
            "expected_close_date",
        ),
        (
            json!({"name": "X", "stage_id": stage_id(&p, "Lost")}),
            "lost_reason",
        ),
    ] {
        let (s, v) = app.post("/api/v1/deals", &a.token, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(v["errors"][0]["field"], field, "{body} → {v}");
    }
    // Only a stage: the deal goes to that stage's pipeline.
    let d2 = create_deal(
        &app,
        &a,
        json!({"name": "Partner deal", "stage_id": foreign}),
    )
    .await;
    assert_eq!(d2["pipeline_id"], other["id"]);
    // Only a pipeline: its first open stage.
    let d3 = create_deal(&app, &a, json!({"name": "P", "pipeline_id": other["id"]})).await;
    assert_eq!(d3["stage_id"], json!(foreign));

    // Moving the default to another pipeline leaves exactly one default.
    let (s, v) = app
        .patch(
            &format!("/api/v1/pipelines/{}", other["id"].as_str().unwrap()),
            &a.token,
            json!({"is_default": true}),
        )
        .await;
    assert_eq!((s, &v["is_default"]), (StatusCode::OK, &json!(true)), "{v}");
    assert_eq!(default_pipeline(&app, &a).await["id"], other["id"]);
    let d4 = create_deal(&app, &a, json!({"name": "Now partners"})).await;
    assert_eq!(d4["pipeline_id"], other["id"]);
    let (s, v) = app
        .patch(
            &format!("/api/v1/pipelines/{}", other["id"].as_str().unwrap()),
            &a.token,
            json!({"is_default": false}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("is_default"))
    );
    // The default cannot be archived; another one can, and takes no new deals.
    assert_eq!(
        app.delete(
            &format!("/api/v1/pipelines/{}", other["id"].as_str().unwrap()),
            &a.token
        )
        .await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/pipelines/{}", p["id"].as_str().unwrap()),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (s, v) = app
        .post(
            "/api/v1/deals",
            &a.token,
            json!({"name": "Late", "pipeline_id": p["id"]}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("pipeline_id")),
        "{v}"
    );
    let (s, _) = app.get(&format!("/api/v1/deals/{id}"), &a.token).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "deals of an archived pipeline stay readable"
    );

    // Restored, it takes deals again; it is not live twice, nor restored from another
    // workspace.
    let restore = format!("/api/v1/pipelines/{}/restore", p["id"].as_str().unwrap());
    let b = app.workspace("Other").await;
    let (s, _) = app.post(&restore, &b.token, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app.post(&restore, &a.token, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["archived_at"].is_null(), "{v}");
    assert_eq!(v["is_default"], false, "{v}");
    let late = create_deal(&app, &a, json!({"name": "Late", "pipeline_id": p["id"]})).await;
    assert_eq!(late["pipeline_id"], p["id"]);
    let (s, _) = app.post(&restore, &a.token, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, feed) = app
        .get("/api/v1/events?types=pipeline.restored", &a.token)
        .await;
    assert_eq!(feed["data"][0]["record_id"], p["id"], "{feed}");
}

#[tokio::test]
async fn stage_moves_are_recorded_with_time_in_stage_through_patch_and_batch() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p = default_pipeline(&app, &a).await;
    let d = create_deal(
        &app,
        &a,
        json!({"name": "Big one", "amount": "5000", "currency": "USD"}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/deals/{id}");
    // Time in a stage is whole seconds: let one pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (s, v) = app
        .patch(
            &path,
            &a.token,
            json!({"stage_id": stage_id(&p, "Proposal")}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A batch move is recorded too.
    let (s, v) = app
        .post(
            "/api/v1/deals/batch",
            &a.token,
            json!({"operations": [{"op": "update", "id": id, "data": {"stage_id": stage_id(&p, "Won")}}]}),
        )
        .await;
    assert_eq!(
        (s, &v["results"][0]["status"]),
        (StatusCode::OK, &json!(200)),
        "{v}"
    );
    let won = &v["results"][0]["data"];
    assert!(won["closed_at"].is_string(), "{won}");

    let h = history(&app, &a, &id).await;
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(
        (h[0]["from_stage_id"].clone(), h[0]["to_stage_id"].clone()),
        (Value::Null, json!(stage_id(&p, "Qualification")))
    );
    assert_eq!(h[1]["from_stage_id"], json!(stage_id(&p, "Qualification")));
    assert_eq!(h[1]["to_stage_id"], json!(stage_id(&p, "Proposal")));
    assert!(
        h[1]["time_in_stage_seconds"].as_i64().unwrap() >= 1,
        "{h:?}"
    );
    assert_eq!(h[1]["changed_by"], json!(a.user_id));
    assert_eq!(h[2]["to_stage_id"], json!(stage_id(&p, "Won")));
    assert!(h[2]["time_in_stage_seconds"].as_i64().unwrap() >= 0);

    // A change that is not a move records nothing; paging with a cursor.
    let (s, _) = app
        .patch(&path, &a.token, json!({"name": "Bigger one"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, page) = app
        .get(&format!("{path}/stage-history?limit=2"), &a.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(
            &format!("{path}/stage-history?limit=2&cursor={cursor}"),
            &a.token,
        )
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], Value::Null);

    // Lost needs a reason; back to an open stage clears closed_at.
    let (s, v) = app
        .patch(&path, &a.token, json!({"stage_id": stage_id(&p, "Lost")}))
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lost_reason"))
    );
    let (s, v) = app
        .patch(
            &path,
            &a.token,
            json!({"stage_id": stage_id(&p, "Lost"), "lost_reason": "Price"}),
        )
        .await;
    assert_eq!(
        (s, v["lost_reason"].as_str()),
        (StatusCode::OK, Some("Price")),
        "{v}"
    );
    let (s, v) = app
        .patch(
            &path,
            &a.token,
            json!({"stage_id": stage_id(&p, "Negotiation")}),
        )
        .await;
    assert_eq!((s, &v["closed_at"]), (StatusCode::OK, &Value::Null), "{v}");
    assert_eq!(history(&app, &a, &id).await.len(), 5);

    // Stale If-Match → 412.
    let (s, _, _) = app
        .client
        .request(Method::PATCH, format!("{}{path}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .map(|r| (r.status(), (), ()))
        .unwrap();
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);

    // Lists filter and sort on the scalar fields; free text on the name.
    create_deal(&app, &a, json!({"name": "Small one", "amount": "10", "currency": "USD", "stage_id": stage_id(&p, "Proposal")})).await;
    let (s, v) = app
        .get("/api/v1/deals?amount[gte]=100&sort=-amount", &a.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["name"], "Bigger one");
    let (_, v) = app
        .get(
            &format!("/api/v1/deals?stage_id={}", stage_id(&p, "Proposal")),
            &a.token,
        )
        .await;
    assert_eq!(v["data"][0]["name"], "Small one");
    let (_, v) = app.get("/api/v1/deals?q=bigger", &a.token).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");

    // deal.created and deal.updated are in the change feed.
    let (s, v) = app
        .get("/api/v1/events?types=deal.created,deal.updated", &a.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let types: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"deal.created"));
    assert!(types.contains(&"deal.updated"), "{types:?}");
    let stage_change = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "deal.updated" && e["changes"]["stage_id"].is_object())
        .unwrap();
    assert_eq!(
        stage_change["changes"]["stage_id"]["new"],
        json!(stage_id(&p, "Proposal"))
    );
}

#[tokio::test]
async fn the_board_counts_and_weighs_exactly_per_stage_with_filters() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let p = default_pipeline(&app, &a).await;
    let pid = p["id"].as_str().unwrap();
    let proposal = stage_id(&p, "Proposal");
    for (amount, owner, close) in [
        ("100.005", &a.user_id, "2027-01-15"),
        ("100.005", &a.user_id, "2027-02-15"),
        ("100.005", &rep.user_id, "2027-03-15"),
    ] {
        create_deal(
            &app,
            &a,
            json!({"name": "D", "amount": amount, "currency": "EUR", "stage_id": proposal, "owner_id": owner, "expected_close_date": close}),
        )
        .await;
    }
    create_deal(
        &app,
        &a,
        json!({"name": "Yen", "amount": "1001", "currency": "JPY", "stage_id": proposal}),
    )
    .await;
    create_deal(&app, &a, json!({"name": "No amount"})).await;
    let archived = create_deal(
        &app,
        &a,
        json!({"name": "Gone", "amount": "7", "currency": "EUR", "stage_id": proposal}),
    )
    .await;
    assert_eq!(
        app.delete(
            &format!("/api/v1/deals/{}", archived["id"].as_str().unwrap()),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );

    let board = |q: String| {
        let app = &app;
        let token = rep.token.clone();
        async move {
            let (s, v) = app
                .get(&format!("/api/v1/pipelines/{pid}/board{q}"), &token)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    let col = |b: &Value, name: &str| -> Value {
        b["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let b = board(String::new()).await;
    assert_eq!(b["stages"].as_array().unwrap().len(), 6);
    let c = col(&b, "Proposal");
    assert_eq!(c["deal_count"], 4);
    assert_eq!(c["probability"], 50);
    assert_eq!(c["total_amount"], Value::Null);
    // Totals per currency: 300.015 × 50 % = 150.0075 → 150.01 (rounded once, not per deal).
    assert_eq!(
        c["totals"],
        json!([
            {"currency": "EUR", "deal_count": 3, "total_amount": "300.015", "weighted_amount": "150.01"},
            {"currency": "JPY", "deal_count": 1, "total_amount": "1001", "weighted_amount": "501"},
        ])
    );
    assert_eq!(col(&b, "Qualification")["deal_count"], 1);
    assert_eq!(col(&b, "Won")["deal_count"], 0);

    let b = board("?currency=EUR".into()).await;
    let c = col(&b, "Proposal");
    assert_eq!(
        (
            c["deal_count"].clone(),
            c["total_amount"].clone(),
            c["weighted_amount"].clone()
        ),
        (json!(3), json!("300.015"), json!("150.01"))
    );
    assert_eq!(col(&b, "Won")["weighted_amount"], "0.00");

    let b = board(format!("?currency=EUR&owner_id={}", a.user_id)).await;
    assert_eq!(col(&b, "Proposal")["total_amount"], "200.01");
    assert_eq!(col(&b, "Proposal")["weighted_amount"], "100.01");
    let b = board("?currency=EUR&close_from=2027-02-01&close_to=2027-03-31".into()).await;
    assert_eq!(col(&b, "Proposal")["deal_count"], 2);
    let (s, v) = app
        .get(
            &format!("/api/v1/pipelines/{pid}/board?close_from=soon"),
            &a.token,
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("close_from"))
    );
}

#[tokio::test]
async fn stages_are_reordered_renamed_archived_and_deleted_without_orphaning_deals() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p = default_pipeline(&app, &a).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let base = format!("/api/v1/pipelines/{pid}");
    let needs = stage_id(&p, "Needs analysis");
    let qual = stage_id(&p, "Qualification");
    let d = create_deal(&app, &a, json!({"name": "In needs", "stage_id": needs})).await;
    let did = d["id"].as_str().unwrap().to_string();

    // Add a stage at position 1; rename one.
    let (s, v) = app
        .post(
            &format!("{base}/stages"),
            &a.token,
            json!({"name": "Demo", "probability": 20, "position": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["stages"][1]["name"], "Demo");
    assert_eq!(v["stages"][2]["position"], 2);
    let demo = stage_id(&v, "Demo");
    let (s, v) = app
        .patch(
            &format!("{base}/stages/{needs}"),
            &a.token,
            json!({"name": "Discovery"}),
        )
        .await;
    assert_eq!(
        (s, v["stages"][2]["name"].as_str()),
        (StatusCode::OK, Some("Discovery")),
        "{v}"
    );
    let version = v["version"].as_i64().unwrap();

    // Reorder with the full list; an incomplete list is refused; a stale If-Match is 412.
    let mut ids: Vec<String> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.swap(0, 1);
    let put = |body: Value, etag: String| {
        app.client
            .put(format!("{}{base}/stages/order", app.base))
            .bearer_auth(&a.token)
            .header("If-Match", etag)
            .json(&body)
            .send()
    };
    let r = put(json!({"stage_ids": ids}), "\"1\"".into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = put(json!({"stage_ids": ids[1..]}), format!("\"{version}\""))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = put(json!({"stage_ids": ids}), format!("\"{version}\""))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stages"][0]["name"], "Demo");
    assert_eq!(v["stages"][1]["name"], "Qualification");

    // Archive the deal's stage: the deal stays readable and editable, nothing moves in.
    let (s, v) = app
        .patch(
            &format!("{base}/stages/{needs}"),
            &a.token,
            json!({"archived": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, got) = app.get(&format!("/api/v1/deals/{did}"), &a.token).await;
    assert_eq!(
        (s, got["stage_id"].as_str()),
        (StatusCode::OK, Some(needs.as_str()))
    );
    let (s, _) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &a.token,
            json!({"name": "Still here"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            "/api/v1/deals",
            &a.token,
            json!({"name": "New", "stage_id": needs}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stage_id"))
    );
    let other = create_deal(&app, &a, json!({"name": "Other", "stage_id": qual})).await;
    let (s, _) = app
        .patch(
            &format!("/api/v1/deals/{}", other["id"].as_str().unwrap()),
            &a.token,
            json!({"stage_id": needs}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Deleting a stage with deals: 409, or move them with move_to_stage_id.
    assert_eq!(
        app.delete(&format!("{base}/stages/{needs}"), &a.token)
            .await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.delete(
            &format!("{base}/stages/{needs}?move_to_stage_id={needs}"),
            &a.token
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.delete(
            &format!("{base}/stages/{needs}?move_to_stage_id={demo}"),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (_, got) = app.get(&format!("/api/v1/deals/{did}"), &a.token).await;
    assert_eq!(got["stage_id"], json!(demo));
    let h = history(&app, &a, &did).await;
    assert_eq!(h.last().unwrap()["from_stage_id"], json!(needs));
    assert_eq!(h.last().unwrap()["to_stage_id"], json!(demo));
    let (_, v) = app.get(&base, &a.token).await;
    let positions: Vec<i64> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    // An empty stage deletes at once.
    let (_, v) = app
        .post(
            &format!("{base}/stages"),
            &a.token,
            json!({"name": "Spare", "probability": 5}),
        )
        .await;
    let spare = stage_id(&v, "Spare");
    // A malformed move_to_stage_id is refused even when the stage holds no deal to move.
    let long = "x".repeat(80);
    let (s, problem, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{base}/stages/{spare}?move_to_stage_id={long}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "move_to_stage_id");
    assert_eq!(
        app.delete(&format!("{base}/stages/{spare}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn deals_and_pipelines_are_isolated_per_workspace_and_checked_by_role() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Globex").await;
    let viewer = app.user(&a, "viewer").await;
    let sales = app.user(&a, "sales").await;
    let manager = app.user(&a, "manager").await;
    let p = default_pipeline(&app, &a).await;
    let pid = p["id"].as_str().unwrap();
    let d = create_deal(
        &app,
        &sales,
        json!({"name": "Mine", "owner_id": sales.user_id}),
    )
    .await;
    let did = d["id"].as_str().unwrap();

    // Another workspace sees neither the deal nor the pipeline, nor can use its stages.
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}"), &b.token).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/pipelines/{pid}"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/pipelines/{pid}/board"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}/stage-history"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/deals/{did}"),
            &b.token,
            json!({"name": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = app
        .post(
            "/api/v1/deals",
            &b.token,
            json!({"name": "x", "stage_id": p["stages"][0]["id"]}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stage_id"))
    );
    let (_, list) = app.get("/api/v1/deals", &b.token).await;
    assert_eq!(list["data"], json!([]));
    assert_ne!(default_pipeline(&app, &b).await["id"], p["id"]);

    // Viewers read deals and pipelines but write neither; sales write deals, not pipelines.
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}"), &viewer.token)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/pipelines/{pid}"), &viewer.token)
            .await
            .0,
        StatusCode::OK
    );
    let (s, v) = app
        .post("/api/v1/deals", &viewer.token, json!({"name": "No"}))
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("deals:write"))
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/pipelines/{pid}"),
            &sales.token,
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("pipelines:write"))
    );
    let (s, _) = app
        .post("/api/v1/pipelines", &sales.token, json!({"name": "Mine"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post(
            &format!("/api/v1/pipelines/{pid}/stages"),
            &sales.token,
            json!({"name": "X", "probability": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .post(
            "/api/v1/pipelines",
            &manager.token,
            json!({"name": "Renewals"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["stages"].as_array().unwrap().len(), 6);

    // API keys carry the scopes.
    let (s, key) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "erp", "scopes": ["deals:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}"), secret).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/pipelines/{pid}/board"), secret)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/api/v1/deals", secret, json!({"name": "No"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn contact(app: &TestApp, s: &Session, email: &str) -> String {
    let (st, v) = app
        .post(
            "/api/v1/contacts",
            &s.token,
            json!({"first_name": "C", "email": email}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn put(app: &TestApp, s: &Session, path: &str, body: Value) -> (StatusCode, Value) {
    let (st, v, _) = app
        .call(Method::PUT, path, Some(&s.token), Some(body))
        .await;
    (st, v)
}

fn contact_ids(links: &Value) -> Vec<(String, bool, Value)> {
    links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["contact"]["id"].as_str().unwrap().to_string(),
                l["is_primary"].as_bool().unwrap(),
                l["role"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deal_contacts_are_linked_with_a_role_and_one_primary() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let viewer = app.user(&a, "viewer").await;
    let deal = create_deal(&app, &rep, json!({"name": "Pilot"})).await;
    let did = deal["id"].as_str().unwrap();
    let (c1, c2) = (
        contact(&app, &rep, "one@example.com").await,
        contact(&app, &rep, "two@example.com").await,
    );
    let path = |c: &str| format!("/api/v1/deals/{did}/contacts/{c}");

    // Adding is 201, repeating the same PUT is 200 and changes nothing else.
    let body = json!({"role": "Decision maker", "is_primary": true});
    let (st, v) = put(&app, &rep, &path(&c1), body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        contact_ids(&v),
        vec![(c1.clone(), true, json!("Decision maker"))]
    );
    let (st, v) = put(&app, &rep, &path(&c1), body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(contact_ids(&v).len(), 1);

    // A second primary takes the flag from the first; primary is listed first.
    let (st, v) = put(
        &app,
        &rep,
        &path(&c2),
        json!({"role": "Champion", "is_primary": true}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        contact_ids(&v),
        vec![
            (c2.clone(), true, json!("Champion")),
            (c1.clone(), false, json!("Decision maker"))
        ]
    );
    // PUT sets the whole link: no role given clears it.
    let (st, v) = put(&app, &rep, &path(&c1), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = app
        .get(&format!("/api/v1/deals/{did}/contacts"), &viewer.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        contact_ids(&v),
        vec![
            (c2.clone(), true, json!("Champion")),
            (c1.clone(), false, Value::Null)
        ]
    );

    // The contact's deals.
    let (st, v) = app
        .get(&format!("/api/v1/contacts/{c2}/deals"), &viewer.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v[0]["deal"]["id"], deal["id"]);
    assert_eq!(
        (v[0]["role"].as_str(), v[0]["is_primary"].as_bool()),
        (Some("Champion"), Some(true))
    );

    // Unknown, malformed or another workspace's contact: 422 naming contact_id.
    let b = app.workspace("Other").await;
    let foreign = contact(&app, &b, "x@example.com").await;
    for c in [
        foreign.as_str(),
        "0193a1c2-0000-7000-8000-000000000001",
        "nope",
    ] {
        let (st, v) = put(&app, &rep, &path(c), json!({})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"][0]["field"], "contact_id", "{v}");
    }
    let (st, v) = put(&app, &rep, &path(&c1), json!({"role": "x".repeat(101)})).await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("role"))
    );
    // Another workspace sees no such deal; a viewer cannot change links.
    let (st, _) = put(&app, &b, &path(&foreign), json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}/contacts"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, _) = put(&app, &viewer, &path(&c1), json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Removing: 204, then 404.
    assert_eq!(
        app.delete(&path(&c1), &rep.token).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&path(&c1), &rep.token).await,
        StatusCode::NOT_FOUND
    );
    let (_, v) = app
        .get(&format!("/api/v1/deals/{did}/contacts"), &rep.token)
        .await;
    assert_eq!(contact_ids(&v), vec![(c2.clone(), true, json!("Champion"))]);

    // Every change is a deal.links_changed event with the contacts before and after.
    let (_, ev) = app
        .get("/api/v1/events?types=deal.links_changed", &a.token)
        .await;
    let ev = ev["data"].as_array().unwrap();
    assert_eq!(ev.len(), 5, "{ev:?}");
    let last = ev.last().unwrap();
    assert_eq!(last["record_id"], deal["id"]);
    assert_eq!(last["data"]["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(
        last["changes"]["contacts"]["old"].as_array().unwrap().len(),
        2
    );

    // An archived contact drops out of the deal's contacts.
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{c2}"), &rep.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (_, v) = app
        .get(&format!("/api/v1/deals/{did}/contacts"), &rep.token)
        .await;
    assert_eq!(v, json!([]));
}

#[tokio::test]
async fn a_deals_contacts_are_set_with_it_and_replaced_by_a_patch_or_a_batch() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let (c1, c2, c3) = (
        contact(&app, &rep, "one@example.com").await,
        contact(&app, &rep, "two@example.com").await,
        contact(&app, &rep, "three@example.com").await,
    );
    let contacts_of = |id: String| {
        let app = &app;
        let token = rep.token.clone();
        async move {
            let (st, v) = app
                .get(&format!("/api/v1/deals/{id}/contacts"), &token)
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            contact_ids(&v)
        }
    };

    // Created with two contacts, one primary: the deal and its links in one write.
    let deal = create_deal(
        &app,
        &rep,
        json!({"name": "Pilot", "contacts": [
            {"contact_id": c1, "role": "Champion"},
            {"contact_id": c2, "role": "Decision maker", "is_primary": true}
        ]}),
    )
    .await;
    let did = deal["id"].as_str().unwrap().to_string();
    assert!(deal.get("contacts").is_none(), "{deal}");
    assert_eq!(
        contacts_of(did.clone()).await,
        vec![
            (c2.clone(), true, json!("Decision maker")),
            (c1.clone(), false, json!("Champion"))
        ]
    );

    // A patch without `contacts` (or with null) leaves them; with them, replaces the set.
    for body in [json!({"name": "Pilot 2"}), json!({"contacts": null})] {
        let (st, v) = app
            .patch(&format!("/api/v1/deals/{did}"), &rep.token, body)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    assert_eq!(contacts_of(did.clone()).await.len(), 2);
    let (st, v) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &rep.token,
            json!({"contacts": [{"contact_id": c3, "is_primary": true}, {"contact_id": c1}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        contacts_of(did.clone()).await,
        vec![
            (c3.clone(), true, Value::Null),
            (c1.clone(), false, Value::Null)
        ]
    );
    // The same set again, in another order: no change to the links.
    let (st, v) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &rep.token,
            json!({"contacts": [{"contact_id": c1}, {"contact_id": c3, "is_primary": true}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Bad contacts: each named by its place; nothing is written, not even the deal.
    let b = app.workspace("Other").await;
    let foreign = contact(&app, &b, "x@example.com").await;
    let deals_before = app.get("/api/v1/deals?count=true", &rep.token).await.1["total"].clone();
    let (st, v) = app
        .post(
            "/api/v1/deals",
            &rep.token,
            json!({"name": "Bad", "contacts": [
                {"contact_id": c1, "is_primary": true},
                {"contact_id": foreign},
                {"contact_id": c1},
                {"contact_id": "nope", "is_primary": true}
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields = crm_e2e::error_fields(&v);
    assert_eq!(
        fields,
        [
            "contacts",
            "contacts[1].contact_id",
            "contacts[2].contact_id",
            "contacts[3].contact_id"
        ],
        "{v}"
    );
    let (st, v) = app
        .post(
            "/api/v1/deals",
            &rep.token,
            json!({"name": "Bad", "contacts": [{"contact_id": c1, "rank": 1}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let too_many: Vec<Value> = (0..101).map(|_| json!({"contact_id": c1})).collect();
    for (contacts, field) in [
        (
            json!([{"contact_id": c1, "role": "x".repeat(101)}]),
            "contacts[0].role",
        ),
        (json!(too_many), "contacts"),
    ] {
        let (st, v) = app
            .post(
                "/api/v1/deals",
                &rep.token,
                json!({"name": "Bad", "contacts": contacts}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    assert_eq!(
        app.get("/api/v1/deals?count=true", &rep.token).await.1["total"],
        deals_before
    );
    // A failed patch leaves the contacts as they were.
    let (st, v) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &rep.token,
            json!({"name": "Renamed", "contacts": [{"contact_id": foreign}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "contacts[0].contact_id", "{v}");
    assert_eq!(contacts_of(did.clone()).await.len(), 2);

    // A batch creates and updates deals with their contacts the same way.
    let (st, v) = app
        .post(
            "/api/v1/deals/batch",
            &rep.token,
            json!({"operations": [
                {"op": "create", "data": {"name": "B1", "contacts": [{"contact_id": c2}]}},
                {"op": "update", "id": did, "data": {"contacts": []}},
                {"op": "create", "data": {"name": "B2", "contacts": [{"contact_id": foreign}]}}
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 201, "{v}");
    assert_eq!(results[1]["status"], 200, "{v}");
    assert_eq!(results[2]["status"], 422, "{v}");
    let b1 = results[0]["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        contacts_of(b1.clone()).await,
        vec![(c2.clone(), false, Value::Null)]
    );
    assert_eq!(contacts_of(did.clone()).await, vec![]);

    // The change feed: each deal's links_changed follows its created or updated event,
    // and a patch that leaves the set as it was records none.
    let (_, ev) = app
        .get(
            "/api/v1/events?types=deal.created,deal.updated,deal.links_changed&limit=100",
            &a.token,
        )
        .await;
    let of_deal: Vec<&str> = ev["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record_id"] == json!(did))
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        of_deal,
        [
            "deal.created",
            "deal.links_changed",
            "deal.updated",
            "deal.updated",
            "deal.updated",
            "deal.links_changed",
            "deal.updated",
            "deal.updated",
            "deal.links_changed"
        ]
    );
}

#[tokio::test]
async fn a_deal_timeline_holds_its_activities_and_stage_changes_newest_first() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p = default_pipeline(&app, &a).await;
    let deal = create_deal(&app, &a, json!({"name": "Pilot"})).await;
    let did = deal["id"].as_str().unwrap();
    let (st, v) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &a.token,
            json!({"stage_id": stage_id(&p, "Proposal")}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut acts = Vec::new();
    for (i, at) in ["2020-01-01T10:00:00Z", "2099-01-01T10:00:00Z"]
        .iter()
        .enumerate()
    {
        let (st, v) = app
            .post(
                "/api/v1/activities",
                &a.token,
                json!({"type": "task", "subject": format!("t{i}"), "due_at": at, "deal_ids": [did]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v["deal_ids"], json!([did]));
        acts.push(v["id"].as_str().unwrap().to_string());
    }
    // An activity of another deal stays out.
    let other = create_deal(&app, &a, json!({"name": "Other"})).await;
    app.post(
        "/api/v1/activities",
        &a.token,
        json!({"type": "note", "subject": "x", "deal_ids": [other["id"]]}),
    )
    .await;

    // Page through two at a time.
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/deals/{did}/timeline?limit=2&cursor={c}"),
            None => format!("/api/v1/deals/{did}/timeline?limit=2"),
        };
        let (st, v) = app.get(&path, &a.token).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        items.extend(v["data"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let kinds: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["id"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 4, "{items:?}");
    assert_eq!(kinds[0], ("activity", acts[1].as_str()));
    assert_eq!((kinds[1].0, kinds[2].0), ("stage_change", "stage_change"));
    assert_eq!(kinds[3], ("activity", acts[0].as_str()));
    assert_eq!(
        items[1]["data"]["to_stage_id"],
        json!(stage_id(&p, "Proposal"))
    );
    assert_eq!(items[1]["data"]["from_stage_id"], deal["stage_id"]);
    assert_eq!(items[2]["data"]["from_stage_id"], Value::Null);
    assert!(
        items[1]["data"]["time_in_stage_seconds"].is_i64(),
        "{}",
        items[1]
    );

    // A bad limit is a 422; another workspace and an archived deal have no timeline.
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}/timeline?limit=0"), &a.token)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let b = app.workspace("Other").await;
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}/timeline"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v1/deals/{did}"), &a.token).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/deals/{did}/timeline"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

/// A stage that turns won or lost closes the deals in it as of when each entered it, and
/// opens them again when it turns open; deals in other stages are left alone.
#[tokio::test]
async fn changing_a_stages_kind_closes_or_reopens_its_deals() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, pl) = app
        .post(
            "/api/v1/pipelines",
            &a.token,
            json!({"name": "Renewals", "stages": [{"name": "Intro", "probability": 10}, {"name": "Review", "probability": 60}, {"name": "Signed", "probability": 100, "kind": "won"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pl}");
    let pid = pl["id"].as_str().unwrap().to_string();
    let review = stage_id(&pl, "Review");
    let intro = stage_id(&pl, "Intro");
    let inside = create_deal(&app, &a, json!({"name": "In review", "stage_id": review})).await;
    let outside = create_deal(&app, &a, json!({"name": "Early", "stage_id": intro})).await;
    let stage = format!("/api/v1/pipelines/{pid}/stages/{review}");
    let deal = |d: &Value| format!("/api/v1/deals/{}", d["id"].as_str().unwrap());

    let (s, v) = app.patch(&stage, &a.token, json!({"kind": "won"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, got) = app.get(&deal(&inside), &a.token).await;
    assert_eq!(got["closed_at"], got["stage_changed_at"], "{got}");
    assert!(got["closed_at"].is_string(), "{got}");
    let (_, early) = app.get(&deal(&outside), &a.token).await;
    assert_eq!(early, outside, "a deal of another stage is left alone");
    let (_, feed) = app.get("/api/v1/events?types=deal.updated", &a.token).await;
    let ev = &feed["data"][0];
    assert_eq!(ev["record_id"], inside["id"], "{feed}");
    assert!(ev["changes"]["closed_at"]["old"].is_null(), "{ev}");
    assert_eq!(ev["changes"]["closed_at"]["new"], got["closed_at"], "{ev}");

    // Won to lost: still closed, as of the same time.
    let (s, v) = app.patch(&stage, &a.token, json!({"kind": "lost"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, lost) = app.get(&deal(&inside), &a.token).await;
    assert_eq!(lost, got, "unchanged");

    let (s, v) = app.patch(&stage, &a.token, json!({"kind": "open"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, open) = app.get(&deal(&inside), &a.token).await;
    assert!(open["closed_at"].is_null(), "{open}");
}

/// The unfiltered board is read from running totals kept by the database on every deal
/// write; it must always equal the board aggregated from the live deals (a filter that
/// keeps every deal takes that path), before and after the totals are folded.
#[tokio::test]
async fn the_boards_running_totals_follow_every_kind_of_deal_write() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p = default_pipeline(&app, &a).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (lead, proposal) = (stage_id(&p, "Qualification"), stage_id(&p, "Proposal"));
    let (s, other) = app
        .post(
            "/api/v1/pipelines",
            &a.token,
            json!({"name": "Partners", "stages": [{"name": "Intro", "probability": 20}, {"name": "Pitch", "probability": 40}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    let (other_id, intro, pitch) = (
        other["id"].as_str().unwrap().to_string(),
        stage_id(&other, "Intro"),
        stage_id(&other, "Pitch"),
    );
    let same = |pipeline: String| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let read = |q: &'static str| {
                let (token, pipeline) = (token.clone(), pipeline.clone());
                async move {
                    let (s, v) = app
                        .get(&format!("/api/v1/pipelines/{pipeline}/board{q}"), &token)
                        .await;
                    assert_eq!(s, StatusCode::OK, "{v}");
                    v["stages"].clone()
                }
            };
            let totals = read("").await;
            assert_eq!(totals, read("?close_from=2000-01-01").await);
            totals
        }
    };
    let deltas = |pipeline: &str| {
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM deal_board_deltas WHERE pipeline_id = '{pipeline}'"
        ))
    };

    // Created one by one and in batches: enough deltas that the next read folds them.
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = json!({"name": format!("D{i}"), "amount": format!("{i}0.25"), "currency": if i % 2 == 0 { "EUR" } else { "USD" }, "stage_id": proposal, "expected_close_date": "2027-01-31"});
        ids.push(
            create_deal(&app, &a, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for round in 0..3 {
        let ops: Vec<Value> = (0..100)
            .map(|i| json!({"op": "create", "data": {"name": format!("B{round}-{i}"), "amount": "1.000001", "currency": "EUR", "stage_id": if i % 3 == 0 { &lead } else { &proposal }, "expected_close_date": "2027-02-28"}}))
            .collect();
        let (s, v) = app
            .post("/api/v1/deals/batch", &a.token, json!({"operations": ops}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert!(deltas(&pid) > 300);
    let before = same(pid.clone()).await;
    assert!(deltas(&pid) <= 12, "folded: {}", deltas(&pid));
    assert_eq!(before, same(pid.clone()).await);

    // Amount, currency and stage changes; a change that touches none of them.
    let deal = |i: usize| format!("/api/v1/deals/{}", ids[i]);
    for (i, body) in [
        (0, json!({"amount": "99.99"})),
        (1, json!({"currency": "EUR", "amount": "5"})),
        (2, json!({"stage_id": lead})),
        (3, json!({"name": "Renamed"})),
        (4, json!({"amount": null, "currency": null})),
    ] {
        let (s, v) = app.patch(&deal(i), &a.token, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    same(pid.clone()).await;
    // Archived, restored, archived for good, erased; moved to another pipeline.
    assert_eq!(app.delete(&deal(0), &a.token).await, StatusCode::NO_CONTENT);
    same(pid.clone()).await;
    let (s, _) = app
        .post(&format!("{}/restore", deal(0)), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.delete(&deal(1), &a.token).await, StatusCode::NO_CONTENT);
    assert_eq!(
        app.delete(&format!("{}?permanent=true", deal(2)), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (s, v) = app
        .patch(
            &deal(5),
            &a.token,
            json!({"pipeline_id": other_id, "stage_id": intro}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    same(pid.clone()).await;
    // A stage removed with its deals moved on.
    assert_eq!(
        app.delete(
            &format!("/api/v1/pipelines/{other_id}/stages/{intro}?move_to_stage_id={pitch}"),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let moved = same(other_id.clone()).await;
    let pitch_col = moved
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == pitch.as_str())
        .unwrap()
        .clone();
    assert_eq!(pitch_col["deal_count"], 1);
    assert_eq!(pitch_col["totals"][0]["total_amount"], "50.25");
    let end = same(pid.clone()).await;
    let proposal_col = end
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == proposal.as_str())
        .unwrap()
        .clone();
    // 198 batch deals (two of every three), D0 (restored), D3 and D4 (without amount now);
    // D1 archived, D2 erased, D5 moved away.
    assert_eq!(proposal_col["deal_count"], 198 + 3);
}

/// A board read that folds a pipeline's running totals leaves the folded rows dead; on
/// PostgreSQL the server vacuums the table within seconds, so later reads do not wade
/// through them. The board is right before, during and after.
#[tokio::test]
async fn folded_running_totals_are_vacuumed_and_the_board_stays_right() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    for n in [1000, 200] {
        let ops: Vec<Value> = (0..n)
            .map(|i| json!({"op": "create", "data": {"name": format!("Deal {i}"), "amount": "10.5", "currency": "EUR"}}))
            .collect();
        let (s, v) = app
            .post("/api/v1/deals/batch", &a.token, json!({"operations": ops}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let pid = default_pipeline(&app, &a).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first_stage = |b: &Value| b["stages"][0].clone();
    let path = format!("/api/v1/pipelines/{pid}/board?currency=EUR");
    let (s, b) = app.get(&path, &a.token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(first_stage(&b)["deal_count"], 1200, "{b}");
    assert_eq!(first_stage(&b)["total_amount"], "12600", "{b}");

    if crm_e2e::backend() == "postgres" {
        let vacuums = || {
            app.sql_count(
                "SELECT CAST(vacuum_count AS BIGINT) AS n FROM pg_stat_user_tables \
                 WHERE schemaname = current_schema() AND relname = 'deal_board_deltas'",
            )
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while vacuums() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the folded board totals were not vacuumed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let dead = app.sql_count(
            "SELECT n_dead_tup AS n FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = 'deal_board_deltas'",
        );
        assert!(dead < 1000, "{dead} dead rows left");
    }
    let (_, b) = app.get(&path, &a.token).await;
    assert_eq!(first_stage(&b)["deal_count"], 1200, "{b}");
    assert_eq!(first_stage(&b)["total_amount"], "12600", "{b}");
}
