use crm_e2e::{fresh_database, TestApp, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn teams_group_users_with_versions_roles_and_isolation() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let boss = app.user(&a, "manager").await;

    // Create with members; duplicates in the list are folded.
    let (s, team) = app
        .post(
            "/api/v1/teams",
            &boss.token,
            json!({"name": "  EMEA  ", "member_ids": [rep.user_id, a.user_id, rep.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    assert_eq!(team["name"], "EMEA");
    assert_eq!(team["version"], 1);
    let mut want = vec![rep.user_id.clone(), a.user_id.clone()];
    want.sort();
    assert_eq!(team["member_ids"], json!(want));
    let id = team["id"].as_str().unwrap().to_string();

    // Same name → 409 naming the holder; unknown member → 422 naming the index.
    let (s, v) = app
        .post("/api/v1/teams", &a.token, json!({"name": "EMEA"}))
        .await;
    assert_eq!(
        (s, v["existing_id"].as_str()),
        (StatusCode::CONFLICT, Some(id.as_str()))
    );
    let (s, v) = app
        .post(
            "/api/v1/teams",
            &a.token,
            json!({"name": "APAC", "member_ids": [a.user_id, "nobody"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "member_ids[1]");
    let (s, v) = app
        .post("/api/v1/teams", &a.token, json!({"name": "   "}))
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    assert_eq!(
        app.get("/api/v1/teams?count=true", &a.token).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown parameters are named"
    );

    // Sales reads but cannot write; the 403 names the permission.
    let (s, v) = app.get(&format!("/api/v1/teams/{id}"), &rep.token).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("EMEA")));
    let (s, v) = app
        .post("/api/v1/teams", &rep.token, json!({"name": "Mine"}))
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("teams:write"))
    );

    // Rename with If-Match; a stale one is 412.
    let path = format!("/api/v1/teams/{id}");
    let patch = |body: serde_json::Value, etag: &str| {
        app.client
            .patch(format!("{}{path}", app.base))
            .bearer_auth(&a.token)
            .header("If-Match", etag.to_string())
            .header("Content-Type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
    };
    let r = patch(json!({"name": "EMEA North"}), "\"1\"").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let r = patch(json!({"name": "EMEA South"}), "\"1\"").await.unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // Replace members; then add and remove one at a time (idempotent, version follows).
    let r = patch(json!({"member_ids": [boss.user_id]}), "\"2\"")
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["member_ids"].clone(), v["version"].clone()),
        (json!([boss.user_id]), json!(3))
    );
    let member = format!("/api/v1/teams/{id}/members/{}", rep.user_id);
    for _ in 0..2 {
        let (s, v, _) = app.call(Method::PUT, &member, Some(&a.token), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["member_ids"].as_array().unwrap().len(), 2);
        assert_eq!(v["version"], 4, "a repeated PUT changes nothing");
    }
    let (s, members) = app
        .get(&format!("/api/v1/teams/{id}/members"), &rep.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["role"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["manager", "sales"]);
    let (s, v, _) = app
        .call(Method::DELETE, &member, Some(&a.token), None)
        .await;
    assert_eq!((s, v["version"].clone()), (StatusCode::OK, json!(5)));
    let (s, v, _) = app
        .call(Method::DELETE, &member, Some(&a.token), None)
        .await;
    assert_eq!((s, v["version"].clone()), (StatusCode::OK, json!(5)));
    let (s, _, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/teams/{id}/members/nobody"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Another workspace sees nothing of it and cannot borrow its users.
    let b = app.workspace("Beta").await;
    assert_eq!(app.get(&path, &b.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/teams", &b.token).await.1["data"],
        json!([])
    );
    let (s, bt) = app
        .post("/api/v1/teams", &b.token, json!({"name": "EMEA"}))
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "names are unique per workspace only"
    );
    let (s, _, _) = app
        .call(
            Method::PUT,
            &format!(
                "/api/v1/teams/{}/members/{}",
                bt["id"].as_str().unwrap(),
                rep.user_id
            ),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post(
            "/api/v1/teams",
            &b.token,
            json!({"name": "Raid", "member_ids": [a.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(app.delete(&path, &b.token).await, StatusCode::NOT_FOUND);

    // Pages by id, members included; delete keeps the users.
    for n in 0..3 {
        app.post(
            "/api/v1/teams",
            &a.token,
            json!({"name": format!("T{n}"), "member_ids": [a.user_id]}),
        )
        .await;
    }
    let (s, page) = app.get("/api/v1/teams?limit=2", &a.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/api/v1/teams?limit=2&cursor={cursor}"), &a.token)
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    assert!(rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["member_ids"] == json!([a.user_id])));
    assert_eq!(app.delete(&path, &boss.token).await, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &a.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", rep.user_id), &a.token)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_field_definitions_can_change_but_not_their_name_or_type() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, _) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "mid"], "description": "size band"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let path = "/api/v1/fields/contacts/segment";
    let (s, v) = app
        .patch(path, &a.token, json!({"label": "Market segment", "options": ["mid", "enterprise", "mid"], "description": null}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["label"], "Market segment");
    assert_eq!(v["options"], json!(["mid", "enterprise"]));
    assert!(v["description"].is_null());
    assert_eq!(v["version"], 2);
    // Values must now be among the current options.
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "X", "custom": {"segment": "smb"}}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("custom.segment"))
    );
    let (s, _) = app
        .post(
            "/api/v1/contacts",
            &a.token,
            json!({"first_name": "X", "custom": {"segment": "enterprise"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, v) = app.patch(path, &a.token, json!({"type": "text"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("type"));
    let (s, v) = app.patch(path, &a.token, json!({"options": []})).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("options"))
    );
    let (s, v) = app.patch(path, &a.token, json!({"label": ""})).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("label"))
    );
    let r = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"required": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let boss = app.user(&a, "manager").await;
    let (s, v) = app.patch(path, &boss.token, json!({"label": "Mine"})).await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("fields:write"))
    );
    let (s, _) = app
        .patch(
            "/api/v1/fields/contacts/nope",
            &a.token,
            json!({"label": "Y"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let b = app.workspace("Beta").await;
    assert_eq!(
        app.patch(path, &b.token, json!({"label": "Z"})).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = app.patch(path, &a.token, json!({"required": true})).await;
    assert_eq!(
        (s, v["required"].clone(), v["version"].clone()),
        (StatusCode::OK, json!(true), json!(3))
    );
}

#[tokio::test]
async fn crm_init_creates_a_workspace_its_admin_can_sign_in_to() {
    let db = fresh_database();
    let url = db.0.clone();
    let run = |args: &[&str]| {
        let mut argv = vec!["crm", "--database-url", url.as_str()];
        argv.extend_from_slice(args);
        let cli = <crm_server::Cli as clap::Parser>::try_parse_from(argv).unwrap();
        crm_server::run(cli)
    };
    run(&["migrate"]).unwrap();
    run(&[
        "init",
        "--workspace",
        "Scripted",
        "--admin-email",
        "Ops@Example.com",
        "--admin-password",
        PASSWORD,
    ])
    .unwrap();
    let bad = run(&[
        "init",
        "--workspace",
        "X",
        "--admin-email",
        "not-an-email",
        "--admin-password",
        PASSWORD,
    ]);
    assert!(
        bad.unwrap_err().to_string().contains("validation"),
        "bad input is refused"
    );
    let app = TestApp::spawn_on(db, |_| {}).await;
    let s = app.login("ops@example.com", PASSWORD).await;
    let (st, me) = app.get("/api/v1/me", &s.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["workspace"]["name"], "Scripted");
    assert_eq!(me["role"], "admin");
}
