use crm_e2e::{event_types as types, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn feed(app: &TestApp, token: &str, query: &str) -> Value {
    let (s, v) = app.get(&format!("/api/v1/events{query}"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn every_change_is_an_event_in_commit_order_with_its_field_changes() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, co) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Initech"}))
        .await;
    let (s, ct) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Ad", "email": "ada@example.com", "address": {"city": "Paris"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = ct["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/contacts/{id}");
    // A refused write leaves no event.
    let (s, _) = app
        .patch(&path, &a.token, json!({"email": "not-an-email"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .patch(
            &path,
            &a.token,
            json!({"first_name": "Ada", "address": {"city": "Lyon"}, "lifecycle_stage": "new"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .post(
            &format!("{path}/companies"),
            &a.token,
            json!({"company_id": co["id"], "role": "CTO"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(app.delete(&path, &a.token).await, StatusCode::NO_CONTENT);
    let (s, _, _) = app
        .call(
            Method::POST,
            &format!("{path}/restore"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("{path}?permanent=true"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );

    let page = feed(&app, &a.token, "").await;
    assert_eq!(
        types(&page),
        [
            "user.created",
            "company.created",
            "contact.created",
            "contact.updated",
            "contact.lifecycle_changed",
            "contact.links_changed",
            "contact.archived",
            "contact.restored",
            "contact.deleted"
        ]
    );
    let events = page["data"].as_array().unwrap();
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>(), "gap-free, in order");
    assert!(!page["has_more"].as_bool().unwrap());
    // After the first admin's own event, the records'.
    let events = &events[1..];
    let created = &events[1];
    assert_eq!(created["record_id"], id.as_str());
    assert_eq!(created["actor"], json!({"type": "user", "id": a.user_id}));
    assert_eq!(created["data"]["email"], "ada@example.com");
    assert_eq!(
        created["changes"]["first_name"],
        json!({"old": null, "new": "Ad"})
    );
    let updated = &events[2];
    assert_eq!(
        updated["changes"],
        json!({
            "address.city": {"old": "Paris", "new": "Lyon"},
            "first_name": {"old": "Ad", "new": "Ada"},
            "lifecycle_stage": {"old": "prospect", "new": "new"},
            "lifecycle_stage_changed_at": updated["changes"]["lifecycle_stage_changed_at"],
        })
    );
    assert_eq!(updated["data"]["first_name"], "Ada");
    // The lifecycle move has its own event, naming only the lifecycle.
    let moved = &events[3];
    assert_eq!(moved["record_id"], id.as_str());
    assert_eq!(moved["data"], updated["data"]);
    assert_eq!(
        moved["changes"],
        json!({
            "lifecycle_stage": {"old": "prospect", "new": "new"},
            "lifecycle_stage_changed_at": updated["changes"]["lifecycle_stage_changed_at"],
        })
    );
    let events = [&events[..3], &events[4..]].concat();
    let linked = &events[3];
    assert_eq!(linked["changes"]["companies"]["old"], json!([]));
    assert_eq!(linked["changes"]["companies"]["new"][0]["role"], "CTO");
    assert!(events[4]["changes"]["archived_at"]["new"].is_string());
    assert!(events[5]["changes"]["archived_at"]["new"].is_null());
    assert_eq!(
        events[6]["data"]["first_name"], "Ada",
        "a deletion keeps the last state"
    );
    assert_eq!(
        events[6]["changes"]["first_name"],
        json!({"old": "Ada", "new": null})
    );

    // Paging with `after` neither skips nor repeats; the cursor holds when caught up.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            "?limit=3".to_string()
        } else {
            format!("?limit=3&after={after}")
        };
        let p = feed(&app, &a.token, &q).await;
        seen.extend(types(&p));
        after = p["next_cursor"].as_str().unwrap().to_string();
        if !p["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, types(&page));
    let p = feed(&app, &a.token, &format!("?after={after}")).await;
    assert_eq!(
        (
            p["data"].as_array().unwrap().len(),
            p["next_cursor"].as_str()
        ),
        (0, Some(after.as_str()))
    );
    let p = feed(&app, &a.token, "?types=contact.archived,contact.restored").await;
    assert_eq!(types(&p), ["contact.archived", "contact.restored"]);
    let (s, v) = app.get("/api/v1/events?after=nope", &a.token).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("after"))
    );
    let (s, v) = app.get("/api/v1/events?sort=x", &a.token).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sort"))
    );

    // The audit log: newest first, by record, by actor, paged.
    let (s, log) = app
        .get(
            &format!("/api/v1/audit-log?record_type=contact&record_id={id}&limit=4"),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(
        types(&log),
        [
            "contact.deleted",
            "contact.restored",
            "contact.archived",
            "contact.links_changed"
        ]
    );
    let cursor = log["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            &format!("/api/v1/audit-log?record_type=contact&record_id={id}&cursor={cursor}"),
            &a.token,
        )
        .await;
    assert_eq!(types(&rest), ["contact.updated", "contact.created"]);
    assert!(rest["next_cursor"].is_null());

    // Another workspace sees none of it and cannot use its ids.
    let b = app.workspace("Beta").await;
    let theirs = feed(&app, &b.token, "").await;
    assert_eq!(types(&theirs), ["user.created"], "only its own first admin");
    assert_eq!(theirs["data"][0]["record_id"], b.user_id.as_str());
    let (s, _) = app
        .get(&format!("/api/v1/events?after={after}"), &b.token)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = app
        .get(&format!("/api/v1/audit-log?record_id={id}"), &b.token)
        .await;
    assert_eq!(v["data"], json!([]));
}

#[tokio::test]
async fn concurrent_writes_get_gap_free_sequences_and_api_keys_are_actors() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, key) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "sync", "scopes": ["contacts:write", "contacts:read", "events:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, base) = (app.client.clone(), app.base.clone());
        let token = if i % 2 == 0 {
            secret.clone()
        } else {
            a.token.clone()
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/contacts"))
                .bearer_auth(token)
                .json(&json!({"first_name": format!("C{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let page = feed(&app, &secret, "?limit=500").await;
    let seqs: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    // Event 1 is the first admin's `user.created`; event 2 the key's own
    // `api_key.created`, which only `api_keys:manage` reads.
    assert_eq!(seqs[0], 1);
    assert_eq!(seqs[1..], (3..=26).collect::<Vec<_>>());
    let by_key = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["type"] == "api_key")
        .count();
    assert_eq!(by_key, 12);
    let key_id = key["id"].as_str().unwrap();
    let (_, log) = app
        .get(
            &format!("/api/v1/audit-log?actor_id={key_id}&limit=500"),
            &a.token,
        )
        .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 12);

    // Only admins and managers (or keys with the scope) read the feed and the log.
    let (s, v) = app.get("/api/v1/audit-log", &secret).await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("audit:read"))
    );
    for role in ["sales", "support", "viewer"] {
        let u = app.user(&a, role).await;
        let (s, v) = app.get("/api/v1/events", &u.token).await;
        assert_eq!(
            (s, v["missing_permission"].as_str()),
            (StatusCode::FORBIDDEN, Some("events:read"))
        );
    }
    let m = app.user(&a, "manager").await;
    assert_eq!(
        app.get("/api/v1/audit-log", &m.token).await.0,
        StatusCode::OK
    );
}

/// Single writes and large batches change one contact concurrently while a reader follows
/// the feed: the reader sees every event exactly once, numbered without gaps, and the
/// contact's changes in the order they were made (each `old` is the previous `new`).
#[tokio::test]
async fn a_follower_of_the_feed_sees_concurrent_changes_once_and_in_order() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let a = app.workspace("Acme").await;
    let (s, shared) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "Shared", "job_title": "start"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shared}");
    let shared = shared["id"].as_str().unwrap().to_string();
    let mut others = Vec::new();
    for i in 0..80 {
        let (s, c) = app
            .post(
                "/api/v1/contacts",
                &a.token,
                json!({"first_name": format!("O{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        others.push(c["id"].as_str().unwrap().to_string());
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (app, token, id) = (app.clone(), a.token.clone(), shared.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..8 {
                let (s, v) = app
                    .patch(
                        &format!("/api/v1/contacts/{id}"),
                        &token,
                        json!({"job_title": format!("w{w}-{i}")}),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        }));
    }
    // Batches above the pending size: numbered from the counter while patches go pending.
    let (app_b, token_b, id_b, others_b) = (app.clone(), a.token.clone(), shared.clone(), others);
    writers.push(tokio::spawn(async move {
        for round in 0..4 {
            let mut ops = vec![json!({"op": "update", "id": id_b, "data": {"job_title": format!("batch-{round}")}})];
            ops.extend(others_b.iter().map(
                |o| json!({"op": "update", "id": o, "data": {"job_title": format!("b{round}")}}),
            ));
            let (s, v) = app_b
                .post("/api/v1/contacts/batch", &token_b, json!({"operations": ops}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }));
    let reader = {
        let (app, token, done) = (app.clone(), a.token.clone(), done.clone());
        tokio::spawn(async move {
            let (mut seen, mut after) = (Vec::<Value>::new(), String::new());
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = feed(&app, &token, &format!("?limit=37{after}")).await;
                seen.extend(page["data"].as_array().unwrap().iter().cloned());
                if let Some(c) = page["next_cursor"].as_str() {
                    after = format!("&after={c}");
                }
                if finished && page["has_more"] == false {
                    return seen;
                }
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    // The first admin, 81 creations, 24 patches, 4 batches of 81 updates.
    let total = 1 + 81 + 24 + 4 * 81;
    let seqs: Vec<i64> = seen
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    let titles: Vec<(&str, &str)> = seen
        .iter()
        .filter(|e| e["record_id"] == shared.as_str() && e["type"] == "contact.updated")
        .map(|e| {
            let ch = &e["changes"]["job_title"];
            (ch["old"].as_str().unwrap(), ch["new"].as_str().unwrap())
        })
        .collect();
    assert_eq!(titles.len(), 28);
    assert_eq!(titles[0].0, "start");
    for pair in titles.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "changes out of order: {titles:?}");
    }
    let (_, last) = app
        .get(&format!("/api/v1/contacts/{shared}"), &a.token)
        .await;
    assert_eq!(last["job_title"], titles[27].1);
}

/// The audit log of one record type, as `token` sees it, newest first.
async fn audit_of(app: &TestApp, token: &str, record_type: &str) -> Vec<Value> {
    let path = format!("/api/v1/audit-log?record_type={record_type}&limit=100");
    let (s, v) = app.get(&path, token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn administration_is_audited_and_keys_and_webhooks_are_shown_to_admins_only() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let manager = app.user(&a, "manager").await;

    // A workspace's first admin is its first event, made by themselves.
    let first = feed(&app, &a.token, "?types=user.created").await;
    let created = &first["data"][0];
    assert_eq!(created["record_id"], a.user_id.as_str(), "{first}");
    assert_eq!(created["sequence"], 1, "{first}");
    assert_eq!(created["actor"], json!({"type": "user", "id": a.user_id}));
    assert_eq!(created["data"]["role"], "admin");
    assert!(created["data"].get("password_hash").is_none());

    // Teams: create, a member added, a rename, delete; a refused write leaves no event.
    let (s, bad) = app
        .post(
            "/api/v1/teams",
            &manager.token,
            json!({"name": "Ghosts", "member_ids": [b.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (s, team) = app
        .post("/api/v1/teams", &manager.token, json!({"name": "EMEA"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_str().unwrap();
    let member = format!("/api/v1/teams/{team_id}/members/{}", manager.user_id);
    let (s, _, _) = app
        .call(Method::PUT, &member, Some(&manager.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Adding the same member again changes nothing and records nothing.
    app.call(Method::PUT, &member, Some(&manager.token), None)
        .await;
    let team_path = format!("/api/v1/teams/{team_id}");
    let (s, _) = app
        .patch(&team_path, &manager.token, json!({"name": "EMEA North"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.delete(&team_path, &manager.token).await,
        StatusCode::NO_CONTENT
    );
    let teams = audit_of(&app, &a.token, "team").await;
    assert_eq!(
        types(&json!({ "data": teams })),
        [
            "team.deleted",
            "team.updated",
            "team.updated",
            "team.created"
        ]
    );
    assert!(teams.iter().all(|e| e["record_id"] == team_id));
    assert!(teams
        .iter()
        .all(|e| e["actor"]["id"] == manager.user_id.as_str()));
    assert_eq!(
        teams[2]["changes"]["member_ids"],
        json!({"old": [], "new": [manager.user_id]})
    );
    assert_eq!(
        teams[1]["changes"]["name"],
        json!({"old": "EMEA", "new": "EMEA North"})
    );
    assert_eq!(teams[0]["data"]["name"], "EMEA North");

    // Users: a role and password change, deactivation, reactivation; no hash anywhere.
    let rep = app.user(&a, "sales").await;
    let rep_path = format!("/api/v1/users/{}", rep.user_id);
    let (s, v) = app
        .patch(
            &rep_path,
            &a.token,
            json!({"role": "support", "password": "a brand new password"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.delete(&rep_path, &a.token).await,
        StatusCode::NO_CONTENT
    );
    let (s, _) = app
        .patch(&rep_path, &a.token, json!({"active": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let users = audit_of(&app, &a.token, "user").await;
    let rep_events: Vec<&Value> = users
        .iter()
        .filter(|e| e["record_id"] == rep.user_id.as_str())
        .collect();
    assert_eq!(
        types(&json!({ "data": rep_events })),
        [
            "user.reactivated",
            "user.deactivated",
            "user.updated",
            "user.created"
        ]
    );
    let changed = &rep_events[2]["changes"];
    assert_eq!(changed["role"], json!({"old": "sales", "new": "support"}));
    assert_eq!(changed["password"], json!({"old": null, "new": "changed"}));
    assert_eq!(
        rep_events[1]["changes"]["active"],
        json!({"old": true, "new": false})
    );
    assert!(users
        .iter()
        .any(|e| e["type"] == "user.created" && e["record_id"] == manager.user_id.as_str()));
    let all = serde_json::to_string(&users).unwrap();
    assert!(
        !all.contains("password_hash") && !all.contains("argon2"),
        "{all}"
    );

    // Custom field definitions.
    let (s, _) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let field = "/api/v1/fields/contacts/segment";
    let (s, _) = app
        .patch(field, &a.token, json!({"options": ["smb", "mid"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.delete(field, &a.token).await, StatusCode::NO_CONTENT);
    let fields = audit_of(&app, &a.token, "custom_field").await;
    assert_eq!(
        types(&json!({ "data": fields })),
        [
            "custom_field.deleted",
            "custom_field.updated",
            "custom_field.created"
        ]
    );
    assert_eq!(
        fields[1]["changes"]["options"],
        json!({"old": ["smb"], "new": ["smb", "mid"]})
    );

    // API keys and webhooks: their events never hold a secret.
    let (s, key) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "ERP", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let key_id = key["id"].as_str().unwrap();
    let key_path = format!("/api/v1/api-keys/{key_id}");
    assert_eq!(
        app.delete(&key_path, &a.token).await,
        StatusCode::NO_CONTENT
    );
    // Revoking twice is a 404 and records nothing more.
    assert_eq!(app.delete(&key_path, &a.token).await, StatusCode::NOT_FOUND);
    let keys = audit_of(&app, &a.token, "api_key").await;
    assert_eq!(
        types(&json!({ "data": keys })),
        ["api_key.revoked", "api_key.created"]
    );
    assert_eq!(keys[1]["data"]["scopes"], json!(["contacts:read"]));
    let secret = key["secret"].as_str().unwrap();
    assert!(!serde_json::to_string(&keys).unwrap().contains(secret));

    let (s, hook) = app
        .post(
            "/api/v1/webhooks",
            &a.token,
            json!({"url": "http://127.0.0.1:9/hook?token=receiver-token", "events": ["contact.*"], "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let hook_path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let (s, _) = app
        .patch(
            &hook_path,
            &a.token,
            json!({"events": ["contact.*", "deal.*"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, rotated) = app
        .post(&format!("{hook_path}/rotate-secret"), &a.token, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    assert_eq!(
        app.delete(&hook_path, &a.token).await,
        StatusCode::NO_CONTENT
    );
    let hooks = audit_of(&app, &a.token, "webhook").await;
    assert_eq!(
        types(&json!({ "data": hooks })),
        [
            "webhook.deleted",
            "webhook.secret_rotated",
            "webhook.updated",
            "webhook.created"
        ]
    );
    let text = serde_json::to_string(&hooks).unwrap();
    for s in [&hook["secret"], &rotated["secret"]] {
        assert!(!text.contains(s.as_str().unwrap()), "a secret is in {text}");
    }
    assert_eq!(
        hooks[2]["changes"]["events"],
        json!({"old": ["contact.*"], "new": ["contact.*", "deal.*"]})
    );

    // A manager reads team, user and field changes, but not keys' or webhooks'.
    assert!(audit_of(&app, &manager.token, "api_key").await.is_empty());
    assert!(audit_of(&app, &manager.token, "webhook").await.is_empty());
    assert_eq!(audit_of(&app, &manager.token, "team").await.len(), 4);
    let seen = feed(&app, &manager.token, "?limit=500").await;
    let seen = types(&seen);
    assert!(seen.contains(&"team.created".to_string()), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|t| t.starts_with("api_key.") || t.starts_with("webhook.")),
        "{seen:?}"
    );
    let admin_feed = feed(&app, &a.token, "?types=api_key.created,webhook.created").await;
    assert_eq!(types(&admin_feed), ["api_key.created", "webhook.created"]);
    // The other workspace sees none of it: only its own first admin.
    assert!(audit_of(&app, &b.token, "team").await.is_empty());
    let theirs = audit_of(&app, &b.token, "user").await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["record_id"], b.user_id.as_str());
}

#[tokio::test]
async fn stage_lifecycle_and_status_moves_have_events_of_their_own() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let p = pipelines["data"][0].clone();
    let deal = crm_e2e::create_deal(
        &app,
        &a,
        json!({"name": "Big", "amount": "100", "currency": "EUR"}),
    )
    .await;
    let deal_id = deal["id"].as_str().unwrap();
    let deal_path = format!("/api/v1/deals/{deal_id}");
    // An update that leaves the stage alone makes no milestone.
    let (s, _) = app
        .patch(&deal_path, &a.token, json!({"amount": "120"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let proposal = crm_e2e::stage_id(&p, "Proposal");
    let (s, _) = app
        .patch(
            &deal_path,
            &a.token,
            json!({"stage_id": proposal, "amount": "150"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A batch update moves it too.
    let won = crm_e2e::stage_id(&p, "Won");
    let (s, v) = app
        .post(
            "/api/v1/deals/batch",
            &a.token,
            json!({"operations": [{"op": "update", "id": deal_id, "data": {"stage_id": won}}]}),
        )
        .await;
    assert_eq!(
        (s, crm_e2e::batch_statuses(&v)),
        (StatusCode::OK, vec![200]),
        "{v}"
    );

    // Contacts through the bulk batch path, and a lead's status.
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"first_name": "Ada", "email": "ada@example.com"}},
                {"op": "create", "data": {"first_name": "Bob", "email": "bob@example.com"}}
            ]}),
        )
        .await;
    assert_eq!(
        (s, crm_e2e::batch_statuses(&v)),
        (StatusCode::OK, vec![201, 201]),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "match_on": "email", "data": {"email": "ada@example.com", "lifecycle_stage": "growing"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "bob@example.com", "first_name": "Robert"}}
            ]}),
        )
        .await;
    assert_eq!(
        (s, crm_e2e::batch_statuses(&v)),
        (StatusCode::OK, vec![200, 200]),
        "{v}"
    );
    let (_, lead) = app
        .post(
            "/api/v1/leads",
            &a.token,
            json!({"first_name": "Lee", "company_name": "L"}),
        )
        .await;
    let (s, _) = app
        .patch(
            &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
            &a.token,
            json!({"status": "disqualified", "disqualified_reason": "no budget"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (_, quote) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [{"description": "Work", "quantity": "1", "unit_price": "100"}]}),
        )
        .await;
    let (s, _) = app
        .patch(
            &format!("/api/v1/quotes/{}", quote["id"].as_str().unwrap()),
            &a.token,
            json!({"status": "sent"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let page = feed(
        &app,
        &a.token,
        "?types=deal.stage_changed,contact.lifecycle_changed,lead.status_changed,quote.status_changed&limit=100",
    )
    .await;
    assert_eq!(
        types(&page),
        [
            "deal.stage_changed",
            "deal.stage_changed",
            "contact.lifecycle_changed",
            "lead.status_changed",
            "quote.status_changed"
        ]
    );
    let events = page["data"].as_array().unwrap();
    assert_eq!(
        events[4]["changes"],
        json!({"status": {"old": "draft", "new": "sent"}})
    );
    let first_stage = crm_e2e::stage_id(&p, "Qualification");
    assert_eq!(events[0]["record_id"], deal_id);
    assert_eq!(
        events[0]["changes"],
        json!({"stage_id": {"old": first_stage, "new": proposal}}),
        "only the stage, not the amount"
    );
    assert_eq!(events[0]["data"]["amount"], "150");
    assert_eq!(
        events[1]["changes"],
        json!({"stage_id": {"old": proposal, "new": won}})
    );
    assert_eq!(events[2]["data"]["email"], "ada@example.com");
    assert_eq!(
        events[2]["changes"]["lifecycle_stage"],
        json!({"old": "prospect", "new": "growing"})
    );
    assert_eq!(
        events[3]["changes"],
        json!({
            "status": {"old": "new", "new": "disqualified"},
            "disqualified_reason": {"old": null, "new": "no budget"}
        })
    );
    // Each milestone directly follows the update that made it, in the same commit.
    let all = feed(&app, &a.token, "?limit=100").await;
    let all = all["data"].as_array().unwrap();
    for m in events {
        let at = all.iter().position(|e| e["id"] == m["id"]).unwrap();
        let before = &all[at - 1];
        assert_eq!(before["record_id"], m["record_id"]);
        assert!(
            before["type"].as_str().unwrap().ends_with(".updated"),
            "{before}"
        );
        assert_eq!(
            before["sequence"].as_i64().unwrap() + 1,
            m["sequence"].as_i64().unwrap()
        );
    }

    // The audit log lists each change once: the updates, not their milestones.
    let (s, log) = app
        .get(
            &format!("/api/v1/audit-log?record_type=deal&record_id={deal_id}"),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(
        types(&log),
        [
            "deal.updated",
            "deal.updated",
            "deal.updated",
            "deal.created"
        ]
    );
}
