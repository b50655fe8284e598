use crm_e2e::{TestApp, JWT_SECRET, PASSWORD};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn signup_is_closed_after_the_first_workspace_unless_open() {
    let app = TestApp::spawn_with(|s| s.open_signup = false).await;
    app.workspace("First").await;
    let (s, v, _) = app
        .call(Method::POST, "/api/v1/workspaces", None, Some(json!({"name": "Second", "admin_email": "b@example.com", "admin_password": PASSWORD, "admin_name": "B"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["status"], 403);
}

#[tokio::test]
async fn login_me_and_wrong_password() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let (s, me) = app.get("/api/v1/me", &admin.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["kind"], "user");
    assert_eq!(me["role"], "admin");
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "users:write"));
    let email = me["user"]["email"].as_str().unwrap();
    let (s, v, h) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "nope-nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
    assert_eq!(v["status"], 401);
    let (s, _, _) = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

fn claims(sub: &str, ws: &str, exp: i64) -> serde_json::Value {
    json!({"sub": sub, "ws": ws, "role": "admin", "iat": exp - 900, "exp": exp, "typ": "access"})
}

#[tokio::test]
async fn tokens_that_are_expired_tampered_wrongly_signed_or_unsigned_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let now = chrono::Utc::now().timestamp();
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let good = encode(
        &Header::default(),
        &claims(&admin.user_id, &admin.workspace_id, now + 600),
        &key,
    )
    .unwrap();
    assert_eq!(
        app.get("/api/v1/me", &good).await.0,
        StatusCode::OK,
        "a correctly signed token works"
    );
    let expired = encode(
        &Header::default(),
        &claims(&admin.user_id, &admin.workspace_id, now - 120),
        &key,
    )
    .unwrap();
    let (s, v) = app.get("/api/v1/me", &expired).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("expired"));
    let wrong_key = encode(
        &Header::default(),
        &claims(&admin.user_id, &admin.workspace_id, now + 600),
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    assert_eq!(
        app.get("/api/v1/me", &wrong_key).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Tamper: swap the payload for one naming another role, keep the signature.
    let parts: Vec<&str> = admin.token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("viewer");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(
        app.get("/api/v1/me", &tampered).await.0,
        StatusCode::UNAUTHORIZED
    );
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims(&admin.user_id, &admin.workspace_id, now + 600).to_string())
    );
    assert_eq!(
        app.get("/api/v1/me", &none).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/me", "garbage").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let refresh = |t: &str| json!({"refresh_token": t});
    let (s, first, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(refresh(&admin.refresh_token)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let rotated = first["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, admin.refresh_token);
    assert_eq!(
        app.get("/api/v1/me", first["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    // Reusing the old token fails and revokes the rotated one too.
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(refresh(&admin.refresh_token)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(refresh(&rotated)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the family is revoked");
    // Logout revokes.
    let again = app
        .login(
            app.get("/api/v1/me", &admin.token).await.1["user"]["email"]
                .as_str()
                .unwrap(),
            PASSWORD,
        )
        .await;
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(refresh(&again.refresh_token)),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(refresh(&again.refresh_token)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_are_enforced_and_a_403_names_the_permission() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let viewer = app.user(&admin, "viewer").await;
    let sales = app.user(&admin, "sales").await;
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &viewer.token,
            json!({"first_name": "X"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["missing_permission"], "contacts:write");
    assert_eq!(
        app.get("/api/v1/contacts", &viewer.token).await.0,
        StatusCode::OK
    );
    let (s, _) = app
        .post("/api/v1/contacts", &sales.token, json!({"first_name": "X"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = app
        .post(
            "/api/v1/users",
            &sales.token,
            json!({"email": "x@example.com", "name": "X", "role": "admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["missing_permission"], "users:write");
    let (s, v) = app
        .post(
            "/api/v1/fields/contacts",
            &sales.token,
            json!({"name": "x", "label": "X", "type": "text"}),
        )
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("fields:write"))
    );
    // Only admins erase for good.
    let (_, c) = app
        .post("/api/v1/contacts", &sales.token, json!({"first_name": "Y"}))
        .await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        app.delete(
            &format!("/api/v1/contacts/{id}?permanent=true"),
            &sales.token
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/contacts/{id}?permanent=true"),
            &admin.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/contacts/{id}?archived=true"),
            &admin.token
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_deactivated_users_tokens_stop_working_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let sales = app.user(&admin, "sales").await;
    assert_eq!(app.get("/api/v1/me", &sales.token).await.0, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", sales.user_id), &admin.token)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/me", &sales.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": sales.refresh_token})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The last admin cannot be demoted.
    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            &admin.token,
            json!({"role": "sales"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, users) = app.get("/api/v1/users", &admin.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(users["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn api_keys_carry_their_scopes_and_stop_when_revoked() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let (s, key) = app
        .post(
            "/api/v1/api-keys",
            &admin.token,
            json!({"name": "ERP", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap();
    let (s, me) = app.get("/api/v1/me", secret).await;
    assert_eq!((s, me["kind"].as_str()), (StatusCode::OK, Some("api_key")));
    assert_eq!(app.get("/api/v1/contacts", secret).await.0, StatusCode::OK);
    // A wrong secret under the same key id is refused while the key is known.
    let forged = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = engine.decode(secret.strip_prefix("crm_").unwrap()).unwrap();
        raw[63] ^= 1;
        format!("crm_{}", engine.encode(raw))
    };
    assert_eq!(
        app.get("/api/v1/contacts", &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = app
        .post("/api/v1/contacts", secret, json!({"first_name": "X"}))
        .await;
    assert_eq!(
        (s, v["missing_permission"].as_str()),
        (StatusCode::FORBIDDEN, Some("contacts:write"))
    );
    let (_, list) = app.get("/api/v1/api-keys", &admin.token).await;
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    assert!(
        listed[0].get("secret").is_none(),
        "secrets are never listed"
    );
    assert!(listed[0]["last_four"].is_string(), "{list}");
    // Listed a page at a time, as every list is.
    let second = app.api_key(&admin, &["contacts:read"]).await;
    let (s, page) = app.get("/api/v1/api-keys?limit=1", &admin.token).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], listed[0]["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            &format!("/api/v1/api-keys?limit=1&cursor={cursor}"),
            &admin.token,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "{rest}");
    assert!(second.ends_with(rest["data"][0]["last_four"].as_str().unwrap()));
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (s, v) = app.get("/api/v1/api-keys?cursor=nope", &admin.token).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
    let (s, v) = app
        .post(
            "/api/v1/api-keys",
            &admin.token,
            json!({"name": "Bad", "scopes": ["everything"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["field"], "scopes[0]");
    assert_eq!(
        app.delete(
            &format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()),
            &admin.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/contacts", secret).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_tokens_out_of_bounds_are_422_on_refresh_and_logout() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
        for token in [String::new(), "r".repeat(201)] {
            let (s, v, _) = app
                .call(
                    reqwest::Method::POST,
                    path,
                    None,
                    Some(serde_json::json!({"refresh_token": token})),
                )
                .await;
            assert_eq!(s, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
            assert_eq!(v["errors"][0]["field"], "refresh_token");
        }
    }
}

#[tokio::test]
async fn deactivation_and_role_changes_apply_to_the_very_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let manager = app.user(&admin, "manager").await;
    let sales = app.user(&admin, "sales").await;
    // Several requests, so what the server knows of each caller is warm.
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/users", &manager.token).await.0,
            StatusCode::OK
        );
        assert_eq!(app.get("/api/v1/me", &sales.token).await.0, StatusCode::OK);
    }
    // A role change through PATCH applies at once.
    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{}", manager.user_id),
            &admin.token,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, me) = app.get("/api/v1/me", &manager.token).await;
    assert_eq!((s, me["role"].as_str()), (StatusCode::OK, Some("viewer")));
    let (s, v) = app
        .post(
            "/api/v1/contacts",
            &manager.token,
            json!({"first_name": "X"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Deactivation through PATCH `active: false` also applies at once.
    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{}", sales.user_id),
            &admin.token,
            json!({"active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/me", &sales.token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn another_server_on_the_same_database_sees_changes_within_its_auth_cache_ttl() {
    let app = TestApp::spawn().await;
    let admin = app.workspace("Acme").await;
    let sales = app.user(&admin, "sales").await;
    let other = |ttl: u64| {
        TestApp::spawn_on((app.database_url.clone(), None, None), move |s| {
            s.auth_cache_ttl = ttl
        })
    };
    // One server that reads the database on every request, one that trusts its cache.
    let uncached = other(0).await;
    let cached = other(3600).await;
    assert_eq!(
        uncached.get("/api/v1/me", &sales.token).await.0,
        StatusCode::OK
    );
    assert_eq!(
        cached.get("/api/v1/me", &sales.token).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", sales.user_id), &admin.token)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/me", &sales.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        uncached.get("/api/v1/me", &sales.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The other process learns of the change only when its entry expires (the
    // documented bound, CRM_AUTH_CACHE_TTL).
    assert_eq!(
        cached.get("/api/v1/me", &sales.token).await.0,
        StatusCode::OK
    );
}

/// Signs in with `password`: status, body and the `Retry-After` header, if any.
async fn sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
) -> (StatusCode, serde_json::Value, Option<u64>) {
    let (s, v, h) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await;
    let retry = h
        .get("retry-after")
        .map(|r| r.to_str().unwrap().parse::<u64>().unwrap());
    (s, v, retry)
}

#[tokio::test]
async fn failed_sign_ins_in_a_row_lock_password_sign_in_until_the_lock_ends_or_an_admin_unlocks() {
    let app = TestApp::spawn_with(|s| {
        s.sign_in_max_failures = 3;
        s.sign_in_lock_secs = 2;
    })
    .await;
    let admin = app.workspace("Acme").await;
    let email = format!("rep-{}@example.com", uuid::Uuid::new_v4().simple());
    let (s, rep) = app
        .post(
            "/api/v1/users",
            &admin.token,
            json!({"email": email, "name": "Rep", "role": "sales", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rep}");
    assert_eq!(rep["failed_sign_ins"], 0);
    assert!(rep["locked_until"].is_null());
    let session = app.login(&email, PASSWORD).await;
    let user_path = format!("/api/v1/users/{}", rep["id"].as_str().unwrap());

    // A success clears the count: two failures, a success, two failures do not lock.
    for _ in 0..2 {
        assert_eq!(
            sign_in(&app, &email, "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (_, shown) = app.get(&user_path, &admin.token).await;
    assert_eq!(shown["failed_sign_ins"], 2, "{shown}");
    assert_eq!(sign_in(&app, &email, PASSWORD).await.0, StatusCode::OK);
    let (_, shown) = app.get(&user_path, &admin.token).await;
    assert_eq!(shown["failed_sign_ins"], 0, "{shown}");
    for _ in 0..2 {
        assert_eq!(
            sign_in(&app, &email, "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The third in a row locks: even the right password is refused, with Retry-After.
    let (s, v, _) = sign_in(&app, &email, "wrong password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, problem, retry) = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["type"], "/problems/sign-in-locked");
    assert_eq!(problem["status"], 429);
    assert!(matches!(retry, Some(1..=2)), "{retry:?}");
    let (_, shown) = app.get(&user_path, &admin.token).await;
    assert_eq!(shown["failed_sign_ins"], 3, "{shown}");
    assert!(shown["locked_until"].is_string(), "{shown}");
    // Tokens issued before the lock keep working.
    let (s, _) = app.get("/api/v1/me", &session.token).await;
    assert_eq!(s, StatusCode::OK);
    // An unknown e-mail is never locked: a wrong password answers alike.
    let stranger = "nobody-here@example.com";
    for _ in 0..4 {
        let (s, v, _) = sign_in(&app, stranger, "wrong password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }

    // An admin unlocks at once; only null is accepted.
    let (s, problem) = app
        .patch(
            &user_path,
            &admin.token,
            json!({"locked_until": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "locked_until");
    let (s, unlocked) = app
        .patch(&user_path, &admin.token, json!({"locked_until": null}))
        .await;
    assert_eq!(s, StatusCode::OK, "{unlocked}");
    assert!(unlocked["locked_until"].is_null());
    assert_eq!(unlocked["failed_sign_ins"], 0);
    let (s, log) = app
        .get(
            &format!(
                "/api/v1/audit-log?record_type=user&record_id={}",
                rep["id"].as_str().unwrap()
            ),
            &admin.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let unlock = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["changes"]["failed_sign_ins"]["old"] == 3)
        .unwrap_or_else(|| panic!("no event of the unlock: {log}"));
    assert_eq!(unlock["type"], "user.updated");
    assert_eq!(unlock["changes"]["failed_sign_ins"]["new"], 0);
    assert_eq!(sign_in(&app, &email, PASSWORD).await.0, StatusCode::OK);

    // Locked again, the lock ends by itself; each failure past the limit doubles it.
    for _ in 0..3 {
        assert_eq!(
            sign_in(&app, &email, "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, _, retry) = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_secs(retry.unwrap())).await;
    let (s, v, _) = sign_in(&app, &email, "wrong password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _, retry) = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        matches!(retry, Some(3..=4)),
        "the fourth failure locks for 4 s: {retry:?}"
    );
    // A new password set by an admin also unlocks.
    let (s, v) = app
        .patch(
            &user_path,
            &admin.token,
            json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["locked_until"].is_null());
    assert_eq!(
        sign_in(&app, &email, "a brand new password").await.0,
        StatusCode::OK
    );
}

/// The ids of the users a `GET /users` query lists (all pages).
async fn listed(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = app
            .get(&format!("/api/v1/users?limit=2{query}{cursor}"), token)
            .await;
        assert_eq!(s, StatusCode::OK, "{query}: {page}");
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn the_users_list_filters_by_role_state_email_text_and_lock() {
    let app = TestApp::spawn_with(|s| s.sign_in_max_failures = 1).await;
    let admin = app.workspace("Acme").await;
    let other = app.workspace("Beta").await;
    let mut ids = std::collections::HashMap::new();
    for (email, name, role) in [
        ("ann.lee@example.com", "Ann Lee", "sales"),
        ("bob@example.com", "Bob 100%_Sure", "sales"),
        ("carol@acme.example", "Carol", "support"),
        ("dan@example.com", "Dan", "viewer"),
    ] {
        let (s, u) = app
            .post(
                "/api/v1/users",
                &admin.token,
                json!({"email": email, "name": name, "role": role, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        ids.insert(
            name.split(' ').next().unwrap().to_string(),
            u["id"].as_str().unwrap().to_string(),
        );
    }
    let id = |n: &str| ids[n].clone();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        listed(&app, &admin.token, "&role=sales").await,
        sorted(vec![id("Ann"), id("Bob")])
    );
    assert_eq!(
        listed(&app, &admin.token, "&email=CAROL@acme.example").await,
        [id("Carol")]
    );
    assert_eq!(listed(&app, &admin.token, "&q=LEE").await, [id("Ann")]);
    assert_eq!(
        listed(&app, &admin.token, "&q=acme.example").await,
        [id("Carol")]
    );
    // `%` and `_` are matched as themselves, not as wildcards.
    assert_eq!(listed(&app, &admin.token, "&q=0%25_s").await, [id("Bob")]);
    assert_eq!(
        listed(&app, &admin.token, "&q=n_l").await,
        Vec::<String>::new()
    );
    let status = app
        .delete(&format!("/api/v1/users/{}", id("Dan")), &admin.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        listed(&app, &admin.token, "&active=false").await,
        [id("Dan")]
    );
    assert_eq!(
        listed(&app, &admin.token, "&active=true&role=viewer").await,
        Vec::<String>::new()
    );
    // One failed sign-in locks Bob (the limit is 1 here).
    let (s, _, _) = sign_in(&app, "bob@example.com", "wrong password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        listed(&app, &admin.token, "&locked=true").await,
        [id("Bob")]
    );
    assert_eq!(listed(&app, &admin.token, "&locked=false").await.len(), 4);
    // Another workspace sees none of them.
    assert_eq!(
        listed(&app, &other.token, "&role=sales").await,
        Vec::<String>::new()
    );
    for (query, field) in [
        ("role=chief", "role"),
        ("active=yes", "active"),
        ("email=nope", "email"),
        ("colour=red", "colour"),
    ] {
        let (s, problem) = app
            .get(&format!("/api/v1/users?{query}"), &admin.token)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}
