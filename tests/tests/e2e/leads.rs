use crm_e2e::{Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/leads", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

/// The types of a page of events, in order.
fn types(events: &Value) -> Vec<&str> {
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn field_of(v: &Value) -> &str {
    v["errors"][0]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn leads_create_read_patch_archive_restore_with_status_rules() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, l, h) = app
        .call(
            Method::POST,
            "/api/v1/leads",
            Some(&a.token),
            Some(json!({"first_name": "Grace", "last_name": "Hopper", "email": " Grace@Navy.Example ",
                        "company_name": "US Navy", "title": "Admiral", "source": "web_form", "score": 70,
                        "phone": "+1 202 555 0100", "owner_id": a.user_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let id = l["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/leads/{id}")
    );
    assert_eq!(l["email"], "grace@navy.example");
    assert_eq!(l["status"], "new");
    assert_eq!(l["converted_at"], Value::Null);
    let path = format!("/api/v1/leads/{id}");

    // The same e-mail (any case) on another lead → 409 naming the holder.
    let (s, v) = app
        .post(
            "/api/v1/leads",
            &a.token,
            json!({"email": "GRACE@navy.example"}),
        )
        .await;
    assert_eq!(
        (s, v["existing_id"].as_str()),
        (StatusCode::CONFLICT, Some(id.as_str()))
    );

    // Validation names the field: score range, nothing to name the lead, converted status.
    for (body, field) in [
        (json!({"first_name": "X", "score": 101}), "score"),
        (json!({"source": "web"}), "first_name"),
        (json!({"first_name": "X", "status": "converted"}), "status"),
        (
            json!({"first_name": "X", "status": "disqualified"}),
            "disqualified_reason",
        ),
        (json!({"first_name": "X", "email": "not-an-email"}), "email"),
    ] {
        let (s, v) = app.post("/api/v1/leads", &a.token, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(field_of(&v), field, "{body} → {v}");
    }

    // Disqualifying needs the reason; converted is not settable; converted_* are read-only.
    let (s, v) = app
        .patch(&path, &a.token, json!({"status": "disqualified"}))
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "disqualified_reason"),
        "{v}"
    );
    let (s, v) = app
        .patch(&path, &a.token, json!({"status": "converted"}))
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "status")
    );
    let (s, v) = app
        .patch(&path, &a.token, json!({"converted_contact_id": null}))
        .await;
    assert_eq!(
        (s, field_of(&v), v["errors"][0]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "converted_contact_id",
            Some("read_only")
        )
    );
    let (s, v) = app
        .patch(
            &path,
            &a.token,
            json!({"status": "disqualified", "disqualified_reason": "No budget", "score": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["disqualified_reason"].as_str(),
            v["version"].as_i64()
        ),
        (Some("disqualified"), Some("No budget"), Some(2))
    );
    assert_eq!(v["score"], Value::Null);

    // If-Match: stale → 412.
    let r = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"status": "working"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // Archive hides it; restore revives it; events name every change.
    assert_eq!(app.delete(&path, &a.token).await, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &a.token).await.0, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post(&format!("{path}/restore"), &a.token, json!({}))
        .await;
    assert_eq!((s, v["archived_at"].clone()), (StatusCode::OK, Value::Null));
    let (_, ev) = app
        .get(
            "/api/v1/events?types=lead.created,lead.updated,lead.archived,lead.restored",
            &a.token,
        )
        .await;
    assert_eq!(
        types(&ev),
        vec![
            "lead.created",
            "lead.updated",
            "lead.archived",
            "lead.restored"
        ]
    );
}

#[tokio::test]
async fn leads_filter_sort_search_and_free_text() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, f) = app
        .post(
            "/api/v1/fields/leads",
            &a.token,
            json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let grace = create(&app, &a, json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example", "company_name": "Navy Yard", "score": 90, "source": "web_form", "custom": {"segment": "enterprise"}})).await;
    let alan = create(&app, &a, json!({"first_name": "Alan", "last_name": "Turing", "email": "alan@bletchley.example", "company_name": "Bletchley Park", "score": 40, "source": "import", "status": "working"})).await;
    let ada = create(&app, &a, json!({"first_name": "Ada", "email": "ada@engines.example", "company_name": "Analytical Engines", "score": 65, "source": "web_form", "custom": {"segment": "smb"}})).await;
    let (s, v) = app
        .post(
            "/api/v1/leads",
            &a.token,
            json!({"first_name": "X", "custom": {"segment": "huge"}}),
        )
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "custom.segment")
    );

    let id = |l: &Value| l["id"].as_str().unwrap().to_string();
    let (s, page) = app
        .get("/api/v1/leads?source=web_form&sort=-score", &a.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id(&grace), id(&ada)]);
    let (_, page) = app
        .get(
            "/api/v1/leads?score[gte]=50&status=new&count=true",
            &a.token,
        )
        .await;
    assert_eq!(page["total"], 2);
    let (_, page) = app.get("/api/v1/leads?custom.segment=smb", &a.token).await;
    assert_eq!(ids(&page), vec![id(&ada)]);

    // The filter language, and a 422 naming an unknown field.
    let (s, page) = app
        .post(
            "/api/v1/leads/search",
            &a.token,
            json!({"filter": {"or": [{"field": "status", "op": "eq", "value": "working"}, {"field": "score", "op": "gt", "value": 80}]}, "sort": [{"field": "last_name", "direction": "asc"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id(&grace), id(&alan)]);
    let (s, v) = app
        .post(
            "/api/v1/leads/search",
            &a.token,
            json!({"filter": {"field": "lifecycle_stage", "op": "eq", "value": "new"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Free text over names, e-mail and company name: long words (index) and short ones.
    for (q, want) in [
        ("bletchley", vec![id(&alan)]),
        ("park", vec![id(&alan)]),
        ("ENGINES", vec![id(&ada)]),
        ("hopper navy", vec![id(&grace)]),
        ("Ad", vec![id(&ada)]),
        ("nobody-here", vec![]),
    ] {
        let (s, page) = app
            .post("/api/v1/leads/search", &a.token, json!({"q": q}))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(ids(&page), want, "q={q}");
    }
    // Renaming keeps the free-text index in step.
    let (s, _) = app
        .patch(
            &format!("/api/v1/leads/{}", id(&alan)),
            &a.token,
            json!({"company_name": "GCHQ"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, page) = app.get("/api/v1/leads?q=park", &a.token).await;
    assert_eq!(ids(&page), Vec::<String>::new());
    let (_, page) = app.get("/api/v1/leads?q=gchq", &a.token).await;
    assert_eq!(ids(&page), vec![id(&alan)]);
}

#[tokio::test]
async fn leads_are_isolated_by_workspace_and_role() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    let viewer = app.user(&a, "viewer").await;
    let support = app.user(&a, "support").await;
    let rep = app.user(&a, "sales").await;
    let lead = create(&app, &rep, json!({"first_name": "Grace"})).await;
    let path = format!("/api/v1/leads/{}", lead["id"].as_str().unwrap());

    // Another workspace sees nothing of it.
    assert_eq!(app.get(&path, &b.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.patch(&path, &b.token, json!({"score": 1})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.delete(&path, &b.token).await, StatusCode::NOT_FOUND);
    let (_, page) = app.get("/api/v1/leads", &b.token).await;
    assert_eq!(ids(&page), Vec::<String>::new());

    // Viewers and support read; they cannot write (403 names the permission).
    for s in [&viewer, &support] {
        assert_eq!(app.get(&path, &s.token).await.0, StatusCode::OK);
        let (st, v) = app
            .post("/api/v1/leads", &s.token, json!({"first_name": "X"}))
            .await;
        assert_eq!(
            (st, v["missing_permission"].as_str()),
            (StatusCode::FORBIDDEN, Some("leads:write"))
        );
        assert_eq!(
            app.patch(&path, &s.token, json!({"score": 1})).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // An API key with only leads:read reads but does not write.
    let (st, key) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "reader", "scopes": ["leads:read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap();
    assert_eq!(app.get(&path, secret).await.0, StatusCode::OK);
    assert_eq!(
        app.post("/api/v1/leads", secret, json!({"first_name": "Y"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn rule(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/assignment-rules", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

fn owners(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["owner_id"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[tokio::test]
async fn assignment_rules_assign_new_leads_by_the_first_matching_rule() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let boss = app.user(&a, "manager").await;
    let rep = app.user(&a, "sales").await;
    let (r1, r2, r3) = (
        app.user(&a, "sales").await,
        app.user(&a, "sales").await,
        app.user(&a, "sales").await,
    );

    // Sales cannot manage rules; viewers cannot either, but both read them.
    let (s, v) = app
        .post(
            "/api/v1/assignment-rules",
            &rep.token,
            json!({"name": "Mine", "strategy": "fixed", "user_id": rep.user_id}),
        )
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("assignment_rules:write"))
    );
    // Validation: unknown filter field (checked like search), missing users, strategy shape.
    for (body, field) in [
        (
            json!({"name": "x", "strategy": "fixed", "user_id": rep.user_id, "filter": {"field": "lifecycle_stage", "op": "eq", "value": "new"}}),
            "filter.field",
        ),
        (
            json!({"name": "x", "strategy": "fixed", "user_id": rep.user_id, "filter": {"field": "score", "op": "gt", "value": "lots"}}),
            "filter.value",
        ),
        (json!({"name": "x", "strategy": "fixed"}), "user_id"),
        (
            json!({"name": "x", "strategy": "round_robin", "user_ids": [rep.user_id, "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"]}),
            "user_ids[1]",
        ),
        (json!({"name": "x", "strategy": "round_robin"}), "user_ids"),
        (
            json!({"name": "x", "strategy": "round_robin", "team_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}),
            "team_id",
        ),
        (json!({"strategy": "fixed", "user_id": rep.user_id}), "name"),
    ] {
        let (s, v) = app
            .post("/api/v1/assignment-rules", &boss.token, body.clone())
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"].as_str().unwrap().starts_with(field)),
            "{body} → {v}"
        );
    }

    // Web leads with a high score go to `rep`; other web leads rotate over r1..r3; the rest
    // stay unassigned. Position decides, not creation order.
    let rr = rule(&app, &boss, json!({"name": "Web round robin", "position": 20, "strategy": "round_robin",
        "user_ids": [r1.user_id, r2.user_id, r3.user_id], "filter": {"field": "source", "op": "eq", "value": "web_form"}})).await;
    let hot = rule(&app, &boss, json!({"name": "Hot web leads", "position": 10, "strategy": "fixed", "user_id": rep.user_id,
        "filter": {"and": [{"field": "source", "op": "eq", "value": "web_form"}, {"field": "score", "op": "gte", "value": 80}]}})).await;
    let (s, list) = app.get("/api/v1/assignment-rules", &rep.token).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Hot web leads", "Web round robin"]);

    let hot_lead = create(
        &app,
        &a,
        json!({"first_name": "Hot", "source": "web_form", "score": 95}),
    )
    .await;
    assert_eq!(hot_lead["owner_id"].as_str(), Some(rep.user_id.as_str()));
    let mut got = Vec::new();
    for i in 0..6 {
        let l = create(
            &app,
            &a,
            json!({"first_name": format!("W{i}"), "source": "web_form", "score": 10}),
        )
        .await;
        got.push(l["owner_id"].as_str().unwrap().to_string());
    }
    let (u1, u2, u3) = (r1.user_id.clone(), r2.user_id.clone(), r3.user_id.clone());
    assert_eq!(
        got,
        vec![
            u1.clone(),
            u2.clone(),
            u3.clone(),
            u1.clone(),
            u2.clone(),
            u3.clone()
        ]
    );
    let other = create(
        &app,
        &a,
        json!({"first_name": "Trade", "source": "trade_show"}),
    )
    .await;
    assert_eq!(other["owner_id"], Value::Null);
    // An explicit owner is kept.
    let mine = create(
        &app,
        &a,
        json!({"first_name": "Mine", "source": "web_form", "owner_id": a.user_id}),
    )
    .await;
    assert_eq!(mine["owner_id"].as_str(), Some(a.user_id.as_str()));

    // The assignment shows in the lead.created event.
    let (_, ev) = app.get("/api/v1/events?types=lead.created", &a.token).await;
    let first = &ev["data"][0];
    assert_eq!(first["record_id"], hot_lead["id"]);
    assert_eq!(
        first["data"]["owner_id"].as_str(),
        Some(rep.user_id.as_str())
    );
    assert_eq!(
        first["changes"]["owner_id"]["new"].as_str(),
        Some(rep.user_id.as_str())
    );

    // A deactivated user is skipped; a deactivated rule too.
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", r2.user_id), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let mut got = Vec::new();
    for i in 0..4 {
        let l = create(
            &app,
            &a,
            json!({"first_name": format!("V{i}"), "source": "web_form"}),
        )
        .await;
        got.push(l["owner_id"].as_str().unwrap().to_string());
    }
    assert!(!got.contains(&u2), "{got:?}");
    assert_eq!(got.iter().filter(|o| **o == u1).count(), 2, "{got:?}");
    // Patch with If-Match: switch the hot rule off; a stale ETag is 412.
    let hot_path = format!("/api/v1/assignment-rules/{}", hot["id"].as_str().unwrap());
    let send = |etag: &'static str| {
        app.client
            .patch(format!("{}{hot_path}", app.base))
            .bearer_auth(&boss.token)
            .header("If-Match", etag)
            .header("Content-Type", "application/merge-patch+json")
            .body(json!({"active": false}).to_string())
            .send()
    };
    assert_eq!(
        send("\"7\"").await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    let r = send("\"1\"").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (patched["active"].as_bool(), patched["version"].as_i64()),
        (Some(false), Some(2))
    );
    let l = create(
        &app,
        &a,
        json!({"first_name": "Hot2", "source": "web_form", "score": 99}),
    )
    .await;
    assert_ne!(l["owner_id"].as_str(), Some(rep.user_id.as_str()));

    // Batch creates and upsert-inserts are assigned too.
    let (s, v) = app
        .post(
            "/api/v1/leads/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"first_name": "B1", "source": "web_form"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "b2@example.com", "source": "web_form"}},
                {"op": "create", "data": {"first_name": "B3", "source": "fax"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let res = v["results"].as_array().unwrap();
    assert!(
        res[..2].iter().all(|r| r["status"] == 201
            && [&u1, &u3].contains(&&r["data"]["owner_id"].as_str().unwrap().to_string())),
        "{v}"
    );
    assert_eq!(res[2]["data"]["owner_id"], Value::Null);

    // Other workspaces do not see the rules; a rule can be deleted.
    let b = app.workspace("Other").await;
    let rr_path = format!("/api/v1/assignment-rules/{}", rr["id"].as_str().unwrap());
    assert_eq!(app.get(&rr_path, &b.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&rr_path, &b.token).await, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v1/assignment-rules", &b.token).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(
        app.delete(&rr_path, &boss.token).await,
        StatusCode::NO_CONTENT
    );
    let l = create(
        &app,
        &a,
        json!({"first_name": "After", "source": "web_form"}),
    )
    .await;
    assert_eq!(l["owner_id"], Value::Null);
}

#[tokio::test]
async fn round_robin_is_fair_under_concurrent_creates() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let reps = [
        app.user(&a, "sales").await,
        app.user(&a, "sales").await,
        app.user(&a, "sales").await,
    ];
    // Over a team's members this time.
    let (s, team) = app
        .post(
            "/api/v1/teams",
            &a.token,
            json!({"name": "Inside sales", "member_ids": reps.iter().map(|r| r.user_id.clone()).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    rule(
        &app,
        &a,
        json!({"name": "Everyone", "strategy": "round_robin", "team_id": team["id"]}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/api/v1/leads", app.base),
            a.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"first_name": format!("Lead {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let v: Value = r.json().await.unwrap();
            v["owner_id"].as_str().unwrap().to_string()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    for r in &reps {
        assert_eq!(
            got.iter().filter(|o| **o == r.user_id).count(),
            10,
            "{got:?}"
        );
    }
    let (_, page) = app.get("/api/v1/leads?limit=100", &a.token).await;
    assert_eq!(owners(&page).len(), 30);
}

#[tokio::test]
async fn convert_creates_contact_and_company_linked_with_events() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let viewer = app.user(&a, "viewer").await;
    let lead = create(&app, &rep, json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example",
        "phone": "+1 202 555 0100", "company_name": "US Navy", "title": "Admiral", "source": "web_form", "status": "qualified", "owner_id": rep.user_id})).await;
    let id = lead["id"].as_str().unwrap();
    let path = format!("/api/v1/leads/{id}/convert");

    assert_eq!(
        app.post(&path, &viewer.token, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = app
        .post(
            &path,
            &rep.token,
            json!({"create_company": true, "company_id": id}),
        )
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "create_company")
    );

    let (s, out) = app
        .post(&path, &rep.token, json!({"create_company": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(
        (
            out["contact_created"].as_bool(),
            out["company_created"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let contact = &out["contact"];
    let company = &out["company"];
    assert_eq!(
        (
            contact["first_name"].as_str(),
            contact["email"].as_str(),
            contact["job_title"].as_str(),
            contact["owner_id"].as_str()
        ),
        (
            Some("Grace"),
            Some("grace@navy.example"),
            Some("Admiral"),
            Some(rep.user_id.as_str())
        )
    );
    assert_eq!(company["name"], "US Navy");
    let l = &out["lead"];
    assert_eq!(l["status"], "converted");
    assert_eq!(l["converted_contact_id"], contact["id"]);
    assert_eq!(l["converted_company_id"], company["id"]);
    assert!(l["converted_at"].is_string());
    assert_eq!(l["converted_deal_id"], Value::Null);

    // The contact and company are real, and linked.
    let (s, links) = app
        .get(
            &format!(
                "/api/v1/contacts/{}/companies",
                contact["id"].as_str().unwrap()
            ),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{links}");
    assert_eq!(links[0]["company"]["id"], company["id"]);
    let (_, got) = app.get(&format!("/api/v1/leads/{id}"), &a.token).await;
    assert_eq!(got["status"], "converted");

    // Events for everything, in the order the records came to be (after the admin and the
    // two users).
    let (_, ev) = app.get("/api/v1/events", &a.token).await;
    assert_eq!(
        types(&ev),
        vec![
            "user.created",
            "user.created",
            "user.created",
            "lead.created",
            "contact.created",
            "company.created",
            "contact.links_changed",
            "lead.converted",
            "lead.status_changed"
        ]
    );
    let events = ev["data"].as_array().unwrap();
    let conv = &events[events.len() - 2];
    assert_eq!(
        conv["changes"]["status"],
        json!({"old": "qualified", "new": "converted"})
    );
    // The status move has its own event, naming only the status.
    assert_eq!(
        events[events.len() - 1]["changes"],
        json!({"status": {"old": "qualified", "new": "converted"}})
    );

    // A second conversion → 409 naming the contact; a converted lead stays converted.
    let (s, v) = app.post(&path, &rep.token, json!({})).await;
    assert_eq!(
        (s, v["existing_id"].clone()),
        (StatusCode::CONFLICT, contact["id"].clone())
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/leads/{id}"),
            &rep.token,
            json!({"status": "working"}),
        )
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "status")
    );
    let (s, _) = app
        .patch(
            &format!("/api/v1/leads/{id}"),
            &rep.token,
            json!({"score": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Another workspace's lead is not found.
    let b = app.workspace("Other").await;
    assert_eq!(
        app.post(&path, &b.token, json!({})).await.0,
        StatusCode::NOT_FOUND
    );

    // Conversions of one lead racing each other: one converts, the others find it
    // converted (409), never a version clash.
    for round in 0..3 {
        let lead = create(
            &app,
            &rep,
            json!({"first_name": format!("Race {round}"), "company_name": "Racers"}),
        )
        .await;
        let path = format!("/api/v1/leads/{}/convert", lead["id"].as_str().unwrap());
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let req = app
                    .client
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(&rep.token)
                    .json(&json!({}));
                tokio::spawn(async move { req.send().await.unwrap().status() })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort();
        assert_eq!(
            statuses,
            [
                StatusCode::OK,
                StatusCode::CONFLICT,
                StatusCode::CONFLICT,
                StatusCode::CONFLICT
            ]
        );
    }
}

#[tokio::test]
async fn convert_links_an_existing_contact_and_company() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, ct) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Ada", "email": "ada@engines.example"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ct}");
    let (s, co) = app
        .post(
            "/api/v1/companies",
            &a.token,
            json!({"name": "Analytical Engines"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{co}");
    let lead = create(
        &app,
        &a,
        json!({"first_name": "Ada", "email": "ada@engines.example", "company_name": "Engines"}),
    )
    .await;
    let path = format!("/api/v1/leads/{}/convert", lead["id"].as_str().unwrap());

    // The e-mail belongs to a contact: 409 naming it, and nothing is written.
    let (s, v) = app
        .post(&path, &a.token, json!({"create_company": true}))
        .await;
    assert_eq!(
        (s, v["existing_id"].clone()),
        (StatusCode::CONFLICT, ct["id"].clone()),
        "{v}"
    );
    let (_, companies) = app.get("/api/v1/companies", &a.token).await;
    assert_eq!(companies["data"].as_array().unwrap().len(), 1);

    // Unknown ids are 422 naming the field.
    let (s, v) = app
        .post(
            &path,
            &a.token,
            json!({"contact_id": "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"}),
        )
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "contact_id")
    );

    let (s, out) = app
        .post(
            &path,
            &a.token,
            json!({"contact_id": ct["id"], "company_id": co["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(
        (
            out["contact_created"].as_bool(),
            out["company_created"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert_eq!(out["lead"]["converted_contact_id"], ct["id"]);
    assert_eq!(out["lead"]["converted_company_id"], co["id"]);
    let (_, links) = app
        .get(
            &format!("/api/v1/contacts/{}/companies", ct["id"].as_str().unwrap()),
            &a.token,
        )
        .await;
    assert_eq!(links[0]["company"]["id"], co["id"]);
    let (_, ev) = app
        .get(
            "/api/v1/events?types=contact.created,company.created",
            &a.token,
        )
        .await;
    assert_eq!(
        ev["data"].as_array().unwrap().len(),
        2,
        "only the ones made directly"
    );

    // An archived lead is not converted.
    let other = create(&app, &a, json!({"first_name": "Old"})).await;
    let oid = other["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/leads/{oid}"), &a.token).await,
        StatusCode::NO_CONTENT
    );
    let (s, _) = app
        .post(&format!("/api/v1/leads/{oid}/convert"), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn convert_with_create_deal_creates_the_deal_linked_to_contact_and_company() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let lead = create(
        &app,
        &rep,
        json!({"first_name": "Ada", "email": "ada@example.com",
        "company_name": "Analytical Engines", "status": "qualified", "owner_id": rep.user_id}),
    )
    .await;
    let id = lead["id"].as_str().unwrap();
    let path = format!("/api/v1/leads/{id}/convert");

    // An invalid deal field is a 422 naming deal.<field>, and nothing is written.
    for (deal, field) in [
        (json!({"amount": "-5", "currency": "EUR"}), "deal.amount"),
        (json!({"amount": "5"}), "deal.currency"),
        (
            json!({"stage_id": "0193a1c2-0000-7000-8000-000000000001"}),
            "deal.stage_id",
        ),
        (
            json!({"owner_id": "0193a1c2-0000-7000-8000-000000000001"}),
            "deal.owner_id",
        ),
        (
            json!({"expected_close_date": "soon"}),
            "deal.expected_close_date",
        ),
    ] {
        let (s, v) = app
            .post(
                &path,
                &rep.token,
                json!({"create_company": true, "create_deal": true, "deal": deal}),
            )
            .await;
        assert_eq!(
            (s, field_of(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, field),
            "{v}"
        );
    }
    let (s, v) = app
        .post(&path, &rep.token, json!({"deal": {"name": "x"}}))
        .await;
    assert_eq!(
        (s, field_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "create_deal"),
        "{v}"
    );
    for what in ["contacts", "companies", "deals"] {
        let (_, v) = app.get(&format!("/api/v1/{what}"), &a.token).await;
        assert_eq!(v["data"], json!([]), "{what}: {v}");
    }
    let (_, got) = app.get(&format!("/api/v1/leads/{id}"), &a.token).await;
    assert_eq!(got["status"], "qualified");

    let (s, out) = app
        .post(
            &path,
            &rep.token,
            json!({"create_company": true, "create_deal": true,
                "deal": {"amount": "12000.75", "currency": "eur", "expected_close_date": "2027-03-31"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let deal = &out["deal"];
    assert_eq!(deal["name"], "Analytical Engines");
    assert_eq!(deal["amount"], "12000.75");
    assert_eq!(deal["currency"], "EUR");
    assert_eq!(deal["company_id"], out["company"]["id"]);
    assert_eq!(deal["owner_id"], json!(rep.user_id));
    assert_eq!(out["lead"]["converted_deal_id"], deal["id"]);
    let did = deal["id"].as_str().unwrap();
    let (s, got) = app.get(&format!("/api/v1/deals/{did}"), &a.token).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    let (_, history) = app
        .get(&format!("/api/v1/deals/{did}/stage-history"), &a.token)
        .await;
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
    let (_, dc) = app
        .get(&format!("/api/v1/deals/{did}/contacts"), &a.token)
        .await;
    assert_eq!(dc[0]["contact"]["id"], out["contact"]["id"]);
    assert_eq!(dc[0]["is_primary"], true);

    let (_, ev) = app.get("/api/v1/events", &a.token).await;
    assert_eq!(
        types(&ev),
        vec![
            "user.created",
            "user.created",
            "lead.created",
            "contact.created",
            "company.created",
            "deal.created",
            "contact.links_changed",
            "deal.links_changed",
            "lead.converted",
            "lead.status_changed"
        ]
    );
}

#[tokio::test]
async fn convert_with_create_deal_needs_deals_write_and_uses_the_given_name_and_stage() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let support = app.user(&a, "support").await;
    let lead = create(
        &app,
        &a,
        json!({"first_name": "Ada", "last_name": "L", "status": "qualified"}),
    )
    .await;
    let path = format!("/api/v1/leads/{}/convert", lead["id"].as_str().unwrap());
    let (s, _) = app
        .post(&path, &support.token, json!({"create_deal": true}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, pipes) = app.get("/api/v1/pipelines", &a.token).await;
    let stage = pipes["data"][0]["stages"][2]["id"].clone();
    let (s, out) = app
        .post(
            &path,
            &a.token,
            json!({"create_deal": true, "deal": {"stage_id": stage}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    // Without a company the deal is named after the person.
    assert_eq!(out["deal"]["name"], "Ada L");
    assert_eq!(out["deal"]["stage_id"], stage);
    assert_eq!(out["deal"]["company_id"], Value::Null);
}

#[tokio::test]
async fn a_lead_timeline_holds_its_activities_and_status_changes() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let lead = create(&app, &a, json!({"first_name": "Ada"})).await;
    let lid = lead["id"].as_str().unwrap();
    let (s, act) = app
        .post(
            "/api/v1/activities",
            &a.token,
            json!({"type": "call", "subject": "Intro", "lead_ids": [lid], "due_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{act}");
    assert_eq!(act["lead_ids"], json!([lid]));
    // A patch that leaves the status alone records nothing; a new status is recorded.
    for body in [json!({"score": 5}), json!({"status": "working"})] {
        let (s, v) = app
            .patch(&format!("/api/v1/leads/{lid}"), &a.token, body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = app
        .post(&format!("/api/v1/leads/{lid}/convert"), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .get(&format!("/api/v1/leads/{lid}/timeline"), &a.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items: Vec<(String, Value, Value)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["data"]["from_status"].clone(),
                i["data"]["to_status"].clone(),
            )
        })
        .collect();
    let status = |f: Value, t: &str| ("status_change".to_string(), f, json!(t));
    assert_eq!(
        items,
        vec![
            ("activity".to_string(), Value::Null, Value::Null),
            status(json!("working"), "converted"),
            status(json!("new"), "working"),
            status(Value::Null, "new"),
        ],
        "{v}"
    );
    assert_eq!(v["data"][0]["data"]["id"], act["id"]);
    assert_eq!(v["data"][1]["data"]["changed_by"], json!(a.user_id));
    assert_eq!(v["next_cursor"], Value::Null);
    let b = app.workspace("Other").await;
    assert_eq!(
        app.get(&format!("/api/v1/leads/{lid}/timeline"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_converted_contact_and_its_company_show_the_lead_and_deal_history() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let lead = create(
        &app,
        &a,
        json!({"first_name": "Ada", "company_name": "Engines", "status": "working"}),
    )
    .await;
    let lid = lead["id"].as_str().unwrap();
    let (s, out) = app
        .post(
            &format!("/api/v1/leads/{lid}/convert"),
            &a.token,
            json!({"create_company": true, "create_deal": true, "deal": {"name": "Engines deal"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let (cid, coid, did) = (
        out["contact"]["id"].as_str().unwrap().to_string(),
        out["company"]["id"].as_str().unwrap().to_string(),
        out["deal"]["id"].as_str().unwrap().to_string(),
    );
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let proposal = crm_e2e::stage_id(&pipelines["data"][0], "Proposal");
    let (s, _) = app
        .patch(
            &format!("/api/v1/deals/{did}"),
            &a.token,
            json!({"stage_id": proposal}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let kinds = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    let timeline = |path: String, token: String| {
        let app = &app;
        async move {
            let (s, v) = app.get(&path, &token).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    // The contact: its own lifecycle, its lead's statuses, its deal's stage moves.
    let contact_path = format!("/api/v1/contacts/{cid}/timeline");
    let v = timeline(contact_path.clone(), a.token.clone()).await;
    assert_eq!(
        kinds(&v),
        [
            "lifecycle_change",
            "stage_change",
            "stage_change",
            "status_change",
            "status_change"
        ],
        "{v}"
    );
    for item in v["data"].as_array().unwrap() {
        match item["kind"].as_str().unwrap() {
            "stage_change" => assert_eq!(item["data"]["deal_id"], did.as_str()),
            "status_change" => assert_eq!(item["data"]["lead_id"], lid),
            _ => assert_eq!(item["data"]["to_stage"], "prospect"),
        }
    }
    // Newest first, across sources: the last move is the deal's.
    assert_eq!(v["data"][0]["data"]["to_stage_id"], proposal.as_str());
    // Paged one item at a time, the same items in the same order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{contact_path}?limit=1&cursor={c}"),
            None => format!("{contact_path}?limit=1"),
        };
        let page = timeline(path, a.token.clone()).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all: Vec<Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(seen, all);

    // The company: its deal's stage moves.
    let company_path = format!("/api/v1/companies/{coid}/timeline");
    let v = timeline(company_path.clone(), a.token.clone()).await;
    assert_eq!(kinds(&v), ["stage_change", "stage_change"], "{v}");

    // A key that may read contacts and activities but not deals or leads sees neither.
    let key = app
        .api_key(&a, &["contacts:read", "companies:read", "activities:read"])
        .await;
    let v = timeline(contact_path.clone(), key.clone()).await;
    assert_eq!(kinds(&v), ["lifecycle_change"], "{v}");
    let v = timeline(company_path.clone(), key).await;
    assert_eq!(kinds(&v), Vec::<String>::new(), "{v}");

    // An archived deal's history leaves the company's and the contact's timelines.
    assert_eq!(
        app.delete(&format!("/api/v1/deals/{did}"), &a.token).await,
        StatusCode::NO_CONTENT
    );
    let v = timeline(company_path, a.token.clone()).await;
    assert_eq!(kinds(&v), Vec::<String>::new(), "{v}");
    let v = timeline(contact_path, a.token.clone()).await;
    assert!(!kinds(&v).contains(&"stage_change".to_string()), "{v}");
}
