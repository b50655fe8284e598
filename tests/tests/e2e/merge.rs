use crm_e2e::{create_deal, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn make(app: &TestApp, s: &Session, object: &str, body: Value) -> String {
    let (st, v) = app.post(&format!("/api/v1/{object}"), &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn link(app: &TestApp, s: &Session, contact: &str, company: &str, role: &str, primary: bool) {
    let (st, v) = app
        .post(
            &format!("/api/v1/contacts/{contact}/companies"),
            &s.token,
            json!({"company_id": company, "role": role, "is_primary": primary}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

async fn events(app: &TestApp, s: &Session, types: &str) -> Vec<Value> {
    let (st, v) = app
        .get(&format!("/api/v1/events?types={types}&limit=100"), &s.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// A client that does not follow redirects, to see the 301 itself.
async fn get_unfollowed(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, res.json().await.unwrap_or(Value::Null), location)
}

#[tokio::test]
async fn merging_contacts_moves_every_link_and_points_the_old_id_at_the_survivor() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (st, v) = app
        .post(
            "/api/v1/fields/contacts",
            &a.token,
            json!({"name": "segment", "label": "Segment", "type": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let k1 = make(&app, &a, "companies", json!({"name": "Initech"})).await;
    let k2 = make(&app, &a, "companies", json!({"name": "Globex"})).await;
    let survivor = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "tags": ["vip"], "consent": {"email": true}, "custom": {"segment": "smb"}}),
    )
    .await;
    let other = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "last_name": "King", "email": "ada.king@example.com",
        "phone": "+44 20 7946 0018", "tags": ["donor", "vip"], "address": {"city": "London"},
        "consent": {"do_not_contact": true}, "custom": {"segment": "enterprise"}}),
    )
    .await;
    link(&app, &a, &survivor, &k1, "Owner", true).await;
    link(&app, &a, &other, &k1, "Buyer", false).await;
    link(&app, &a, &other, &k2, "Buyer", true).await;
    let deal = create_deal(
        &app,
        &a,
        json!({"name": "Engines", "amount": "100", "currency": "EUR"}),
    )
    .await;
    let deal_id = deal["id"].as_str().unwrap();
    let (st, v, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/deals/{deal_id}/contacts/{other}"),
            Some(&a.token),
            Some(json!({"role": "Champion", "is_primary": true})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let only_other = make(
        &app,
        &a,
        "activities",
        json!({"type": "call", "subject": "Intro", "contact_ids": [other]}),
    )
    .await;
    let both = make(
        &app,
        &a,
        "activities",
        json!({"type": "meeting", "subject": "Demo", "contact_ids": [survivor, other],
        "start_at": "2026-12-01T10:00:00Z", "end_at": "2026-12-01T11:00:00Z"}),
    )
    .await;

    // Refusals change nothing.
    let path = format!("/api/v1/contacts/{survivor}/merge");
    let (st, v) = app
        .post(&path, &a.token, json!({"other_id": survivor}))
        .await;
    assert_eq!(
        (st, v["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("same_record")),
        "{v}"
    );
    let (st, v) = app
        .post(
            &path,
            &a.token,
            json!({"other_id": other, "prefer": {"nope": "other", "custom.segment": "both"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, v) = app
        .post(
            &path,
            &a.token,
            json!({"other_id": other, "prefer": {"nope": "other"}}),
        )
        .await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("prefer.nope")),
        "{v}"
    );
    let viewer = app.user(&a, "viewer").await;
    let (st, _) = app
        .post(&path, &viewer.token, json!({"other_id": other}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let b = app.workspace("Other").await;
    let (st, _) = app.post(&path, &b.token, json!({"other_id": other})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = app
        .get(&format!("/api/v1/contacts/{other}"), &a.token)
        .await;
    assert_eq!(
        (st, v["id"].as_str()),
        (StatusCode::OK, Some(other.as_str()))
    );

    let (st, m) = app
        .post(
            &path,
            &a.token,
            json!({"other_id": other, "prefer": {"last_name": "other", "custom.segment": "other"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["id"], survivor.as_str());
    assert_eq!(m["last_name"], "King");
    assert_eq!(m["email"], "ada@example.com");
    assert_eq!(m["additional_emails"], json!(["ada.king@example.com"]));
    assert_eq!(m["phone"], "+44 20 7946 0018");
    assert_eq!(m["tags"], json!(["vip", "donor"]));
    assert_eq!(m["address"]["city"], "London");
    assert_eq!(m["consent"]["email"], true);
    assert_eq!(m["consent"]["do_not_contact"], true);
    assert_eq!(m["custom"]["segment"], "enterprise");
    assert_eq!(m["version"], 2);

    // The merged-away id: a read is redirected (a client following it gets the survivor),
    // anything else is a 404 naming the survivor.
    let (st, v, location) =
        get_unfollowed(&app, &format!("/api/v1/contacts/{other}"), &a.token).await;
    assert_eq!(st, StatusCode::MOVED_PERMANENTLY, "{v}");
    assert_eq!(location, format!("/api/v1/contacts/{survivor}"));
    assert_eq!(v["merged_into"], survivor.as_str());
    let (st, v) = app
        .get(&format!("/api/v1/contacts/{other}"), &a.token)
        .await;
    assert_eq!(
        (st, v["id"].as_str()),
        (StatusCode::OK, Some(survivor.as_str()))
    );
    let (st, v) = app
        .patch(
            &format!("/api/v1/contacts/{other}"),
            &a.token,
            json!({"job_title": "x"}),
        )
        .await;
    assert_eq!(
        (st, v["merged_into"].as_str()),
        (StatusCode::NOT_FOUND, Some(survivor.as_str())),
        "{v}"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{other}"), &a.token)
            .await,
        StatusCode::NOT_FOUND
    );
    let (st, v, _) = get_unfollowed(&app, &format!("/api/v1/contacts/{other}"), &b.token).await;
    assert_eq!(
        (st, v.get("merged_into")),
        (StatusCode::NOT_FOUND, None),
        "another workspace learns nothing"
    );
    let (st, v) = app.post(&path, &a.token, json!({"other_id": other})).await;
    assert_eq!(
        (
            st,
            v["errors"][0]["field"].as_str(),
            v["errors"][0]["message"].as_str()
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("other_id"),
            Some(format!("was merged into {survivor}").as_str())
        ),
        "{v}"
    );

    // Links: the survivor keeps its primary company and its own role; the other's
    // company it lacked moves over, not primary.
    let (_, links) = app
        .get(&format!("/api/v1/contacts/{survivor}/companies"), &a.token)
        .await;
    let got: Vec<(String, String, bool)> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["company"]["id"].as_str().unwrap().to_string(),
                l["role"].as_str().unwrap().to_string(),
                l["is_primary"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (k1.clone(), "Owner".to_string(), true),
            (k2.clone(), "Buyer".to_string(), false)
        ]
    );
    let (_, dc) = app
        .get(&format!("/api/v1/deals/{deal_id}/contacts"), &a.token)
        .await;
    assert_eq!(dc.as_array().unwrap().len(), 1, "{dc}");
    assert_eq!(
        (dc[0]["contact"]["id"].as_str(), dc[0]["role"].as_str()),
        (Some(survivor.as_str()), Some("Champion"))
    );
    for (act, expected) in [
        (&only_other, vec![survivor.clone()]),
        (&both, vec![survivor.clone()]),
    ] {
        let (_, v) = app
            .get(&format!("/api/v1/activities/{act}"), &a.token)
            .await;
        assert_eq!(ids(&v["contact_ids"]), expected, "{v}");
    }
    let (_, tl) = app
        .get(&format!("/api/v1/contacts/{survivor}/timeline"), &a.token)
        .await;
    let subjects: Vec<&str> = tl["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["subject"].as_str())
        .collect();
    assert!(
        subjects.contains(&"Intro") && subjects.contains(&"Demo"),
        "{tl}"
    );
    let (_, hist) = app
        .get(
            &format!("/api/v1/contacts/{survivor}/lifecycle-history"),
            &a.token,
        )
        .await;
    assert_eq!(
        hist.as_array().unwrap().len(),
        2,
        "both histories are kept: {hist}"
    );
    assert_eq!(
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM contacts WHERE id = '{other}'"
        )),
        0
    );

    // Events: the survivor's `merged`, the other's `deleted`, and the records whose links moved.
    let merged = events(&app, &a, "contact.merged").await;
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0]["record_id"], survivor.as_str());
    assert_eq!(merged[0]["changes"]["merged_from"]["new"], other.as_str());
    assert_eq!(
        merged[0]["changes"]["last_name"],
        json!({"old": "Lovelace", "new": "King"})
    );
    let deleted = events(&app, &a, "contact.deleted").await;
    assert_eq!(
        (deleted.len(), deleted[0]["record_id"].as_str()),
        (1, Some(other.as_str()))
    );
    assert_eq!(
        deleted[0]["changes"]["merged_into"]["new"],
        survivor.as_str()
    );
    let acts: Vec<String> = events(&app, &a, "activity.updated")
        .await
        .iter()
        .map(|e| e["record_id"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![only_other.clone(), both.clone()];
    expected.sort();
    assert_eq!(acts, expected);
    let deal_links = events(&app, &a, "deal.links_changed").await;
    assert_eq!(deal_links.last().unwrap()["record_id"], deal_id);
    let (_, audit) = app
        .get(
            &format!("/api/v1/audit-log?record_type=contact&record_id={other}"),
            &a.token,
        )
        .await;
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "contact.deleted"),
        "{audit}"
    );

    // Merging the survivor on: the first id follows to the last survivor.
    let last = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Augusta", "email": "augusta@example.com"}),
    )
    .await;
    let (st, v) = app
        .post(
            &format!("/api/v1/contacts/{last}/merge"),
            &a.token,
            json!({"other_id": survivor}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["additional_emails"],
        json!(["ada.king@example.com", "ada@example.com"])
    );
    let (st, v, location) =
        get_unfollowed(&app, &format!("/api/v1/contacts/{other}"), &a.token).await;
    assert_eq!(
        (st, location),
        (
            StatusCode::MOVED_PERMANENTLY,
            format!("/api/v1/contacts/{last}")
        ),
        "{v}"
    );

    // The last survivor's history holds both merged records' own, under their ids.
    for query in [
        format!("record_type=contact&record_id={last}"),
        format!("record_id={last}"),
    ] {
        let (s, audit) = app
            .get(&format!("/api/v1/audit-log?{query}&limit=500"), &a.token)
            .await;
        assert_eq!(s, StatusCode::OK, "{audit}");
        let of = |id: &str| -> Vec<String> {
            audit["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["record_id"] == id)
                .map(|e| e["type"].as_str().unwrap().to_string())
                .collect()
        };
        let ends = |types: Vec<String>| (types.first().cloned(), types.last().cloned());
        let end = |first: &str, last: &str| (Some(first.to_string()), Some(last.to_string()));
        assert_eq!(
            ends(of(&last)),
            end("contact.merged", "contact.created"),
            "{audit}"
        );
        assert_eq!(
            ends(of(&survivor)),
            end("contact.deleted", "contact.created"),
            "{audit}"
        );
        assert!(
            of(&other).contains(&"contact.created".to_string()),
            "{audit}"
        );
    }
    // Another record type of the same id finds nothing merged.
    let (_, audit) = app
        .get(
            &format!("/api/v1/audit-log?record_type=company&record_id={last}"),
            &a.token,
        )
        .await;
    assert_eq!(audit["data"], json!([]), "{audit}");
}

#[tokio::test]
async fn merged_contact_takes_the_other_email_and_converted_leads_follow() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (st, lead) = app
        .post("/api/v1/leads", &a.token, json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil", "company_name": "Navy"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{lead}");
    let lead_id = lead["id"].as_str().unwrap();
    let (st, out) = app
        .post(
            &format!("/api/v1/leads/{lead_id}/convert"),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let converted = out["contact"]["id"].as_str().unwrap().to_string();
    let survivor = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Grace", "email": "g.hopper@example.com", "external_id": "crm-1"}),
    )
    .await;
    let (st, m) = app
        .post(
            &format!("/api/v1/contacts/{survivor}/merge"),
            &a.token,
            json!({"other_id": converted, "prefer": {"email": "other"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(
        m["email"], "grace@navy.mil",
        "the other's address, now free, is the main one"
    );
    assert_eq!(m["additional_emails"], json!(["g.hopper@example.com"]));
    assert_eq!(
        (m["last_name"].as_str(), m["external_id"].as_str()),
        (Some("Hopper"), Some("crm-1"))
    );
    // A merge that would break a rule writes nothing: 11 further addresses are too many.
    let many: Vec<String> = (0..10).map(|i| format!("grace{i}@example.com")).collect();
    let full = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "G", "email": "g@example.com", "additional_emails": many}),
    )
    .await;
    let (st, v) = app
        .post(
            &format!("/api/v1/contacts/{full}/merge"),
            &a.token,
            json!({"other_id": survivor}),
        )
        .await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("additional_emails")),
        "{v}"
    );
    let (st, v) = app
        .get(&format!("/api/v1/contacts/{survivor}"), &a.token)
        .await;
    assert_eq!((st, v["version"].as_i64()), (StatusCode::OK, Some(2)));
    let (_, l) = app.get(&format!("/api/v1/leads/{lead_id}"), &a.token).await;
    assert_eq!(l["converted_contact_id"], survivor.as_str());
    let updated = events(&app, &a, "lead.updated").await;
    assert_eq!(
        updated.last().unwrap()["changes"]["converted_contact_id"]["new"],
        survivor.as_str()
    );
    // The address the survivor took can be used to find it.
    let (_, found) = app
        .get("/api/v1/contacts?email=grace@navy.mil", &a.token)
        .await;
    assert_eq!(found["data"][0]["id"], survivor.as_str(), "{found}");
}

#[tokio::test]
async fn duplicate_contacts_are_found_by_normalised_values_and_scored() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let p1 = make(&app, &a, "contacts", json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada.lovelace@gmail.com", "phone": "+44 20 7946 0018"})).await;
    let p2 = make(&app, &a, "contacts", json!({"first_name": "Ada", "last_name": "Lovelace", "email": "adalovelace+news@googlemail.com"})).await;
    let p3 = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Grace", "last_name": "Hopper", "phone": "020 7946 0018"}),
    )
    .await;
    let p4 = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "last_name": "Byron", "email": "ada@acme.io"}),
    )
    .await;
    let p5 = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "ada", "last_name": "BYRON", "email": "byron@acme.io"}),
    )
    .await;
    make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "last_name": "Byron", "email": "ada@other.io"}),
    )
    .await;
    let archived = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "last_name": "Byron", "email": "ada.b@acme.io"}),
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{archived}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let b = app.workspace("Other").await;
    make(
        &app,
        &b,
        "contacts",
        json!({"first_name": "Ada", "email": "ada.lovelace@gmail.com"}),
    )
    .await;

    let pair = |x: &Value| {
        let r = x["records"].as_array().unwrap();
        (
            r[0]["id"].as_str().unwrap().to_string(),
            r[1]["id"].as_str().unwrap().to_string(),
        )
    };
    let (st, v) = app.get("/api/v1/contacts/duplicates", &a.token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let data = v["data"].as_array().unwrap();
    let got: Vec<((String, String), f64, Vec<String>)> = data
        .iter()
        .map(|x| (pair(x), x["score"].as_f64().unwrap(), ids(&x["reasons"])))
        .collect();
    assert_eq!(
        got,
        vec![
            ((p1.clone(), p2.clone()), 0.9, vec!["email".to_string()]),
            (
                (p4.clone(), p5.clone()),
                0.7,
                vec!["name_company".to_string()]
            ),
            ((p1.clone(), p3.clone()), 0.6, vec!["phone".to_string()]),
        ]
    );
    assert_eq!(v["next_cursor"], Value::Null);

    let (_, v) = app
        .get("/api/v1/contacts/duplicates?min_score=0.65", &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (_, v) = app
        .get(
            &format!("/api/v1/contacts/duplicates?record_id={p3}"),
            &a.token,
        )
        .await;
    assert_eq!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(pair)
            .collect::<Vec<_>>(),
        vec![(p1.clone(), p3.clone())]
    );
    // Page by page, the same pairs in the same order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = app
            .get(
                &format!("/api/v1/contacts/duplicates?limit=1{cursor}"),
                &a.token,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        seen.extend(v["data"].as_array().unwrap().iter().map(pair));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, got.iter().map(|g| g.0.clone()).collect::<Vec<_>>());
    // Writes show at once: a new look-alike pairs with both, an archived contact drops out.
    let p6 = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "A.", "email": "a.da.lovelace@gmail.com"}),
    )
    .await;
    let (_, v) = app.get("/api/v1/contacts/duplicates", &a.token).await;
    let pairs: Vec<(String, String)> = v["data"].as_array().unwrap().iter().map(pair).collect();
    assert_eq!(pairs.len(), 5, "{v}");
    assert!(pairs.contains(&(p1.clone(), p6.clone())) && pairs.contains(&(p2.clone(), p6.clone())));
    assert_eq!(
        app.delete(&format!("/api/v1/contacts/{p3}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (_, v) = app.get("/api/v1/contacts/duplicates", &a.token).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 4, "{v}");
    for bad in ["limit=0", "min_score=2", "cursor=nope", "colour=red"] {
        let (st, v) = app
            .get(&format!("/api/v1/contacts/duplicates?{bad}"), &a.token)
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(v["errors"][0]["field"].is_string(), "{v}");
    }
    let (_, v) = app.get("/api/v1/contacts/duplicates", &b.token).await;
    assert_eq!(v["data"], json!([]));
    let sales = app.user(&a, "viewer").await;
    assert_eq!(
        app.get("/api/v1/contacts/duplicates", &sales.token).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn duplicate_companies_merge_with_their_deals_and_contacts() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let k1 = make(
        &app,
        &a,
        "companies",
        json!({"name": "Acme Inc.", "domain": "acme.io", "tags": ["key"]}),
    )
    .await;
    let k2 = make(
        &app,
        &a,
        "companies",
        json!({"name": "ACME", "domain": "https://www.acme.io", "industry": "Retail"}),
    )
    .await;
    let k3 = make(&app, &a, "companies", json!({"name": "acme ltd"})).await;
    make(
        &app,
        &a,
        "companies",
        json!({"name": "Globex", "domain": "globex.com"}),
    )
    .await;
    let (st, v) = app.get("/api/v1/companies/duplicates", &a.token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let got: Vec<(f64, Vec<String>, usize)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["score"].as_f64().unwrap(),
                ids(&x["reasons"]),
                x["records"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0.97, vec!["domain".to_string(), "name".to_string()], 2),
            (0.7, vec!["name".to_string()], 2),
            (0.7, vec!["name".to_string()], 2),
        ]
    );

    let ct = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Wile", "email": "wile@acme.io"}),
    )
    .await;
    link(&app, &a, &ct, &k2, "Buyer", true).await;
    // One contact of both companies, and one of the survivor only (its links do not change).
    let mut others = Vec::new();
    for (name, companies) in [("Road", vec![&k2, &k1]), ("Runner", vec![&k1])] {
        let id = make(&app, &a, "contacts", json!({"first_name": name})).await;
        for (i, k) in companies.into_iter().enumerate() {
            link(&app, &a, &id, k, "User", i == 0).await;
        }
        others.push(id);
    }
    let links_before = events(&app, &a, "contact.links_changed").await.len();
    let deal = create_deal(
        &app,
        &a,
        json!({"name": "Anvils", "amount": "10", "currency": "USD", "company_id": k2}),
    )
    .await;
    let deal_id = deal["id"].as_str().unwrap();
    let (st, m) = app
        .post(
            &format!("/api/v1/companies/{k1}/merge"),
            &a.token,
            json!({"other_id": k2}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(
        (
            m["name"].as_str(),
            m["industry"].as_str(),
            m["tags"].clone()
        ),
        (Some("Acme Inc."), Some("Retail"), json!(["key"]))
    );
    let (_, d) = app.get(&format!("/api/v1/deals/{deal_id}"), &a.token).await;
    assert_eq!(d["company_id"], k1.as_str());
    let (_, links) = app
        .get(&format!("/api/v1/contacts/{ct}/companies"), &a.token)
        .await;
    assert_eq!(
        (
            links[0]["company"]["id"].as_str(),
            links[0]["is_primary"].as_bool()
        ),
        (Some(k1.as_str()), Some(true)),
        "{links}"
    );
    let du = events(&app, &a, "deal.updated").await;
    assert_eq!(
        du.last().unwrap()["changes"]["company_id"],
        json!({"old": k2, "new": k1})
    );
    let mut moved: Vec<String> = events(&app, &a, "contact.links_changed").await[links_before..]
        .iter()
        .map(|e| e["record_id"].as_str().unwrap().to_string())
        .collect();
    moved.sort();
    let mut expected = vec![ct.clone(), others[0].clone()];
    expected.sort();
    assert_eq!(moved, expected);
    let (_, links) = app
        .get(
            &format!("/api/v1/contacts/{}/companies", others[0]),
            &a.token,
        )
        .await;
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["company"]["id"], k1.as_str());
    let (st, _, location) =
        get_unfollowed(&app, &format!("/api/v1/companies/{k2}"), &a.token).await;
    assert_eq!(
        (st, location),
        (
            StatusCode::MOVED_PERMANENTLY,
            format!("/api/v1/companies/{k1}")
        )
    );
    let (_, v) = app.get("/api/v1/companies/duplicates", &a.token).await;
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        1,
        "only Acme Inc. and acme ltd are left: {v}"
    );
    let (_, v) = app
        .get(
            &format!("/api/v1/companies/duplicates?record_id={k3}"),
            &a.token,
        )
        .await;
    assert_eq!(v["data"][0]["records"][0]["id"], k1.as_str());
}

/// After a merge, what integrations knew the merged-away record by still reaches its
/// survivor: an upsert on its external id or e-mail updates the survivor (which keeps its
/// own values), an update or delete of its id answers 404 naming the survivor; the merge
/// chains on, and a record that takes the value for itself wins over the merge.
#[tokio::test]
async fn upserts_and_batch_items_naming_a_merged_away_record_reach_the_survivor() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    let keep = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Ada", "email": "ada@example.com", "external_id": "erp-ada"}),
    )
    .await;
    let gone = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "A.", "email": "a.king@example.com", "external_id": "erp-king"}),
    )
    .await;
    let (st, v) = app
        .post(
            &format!("/api/v1/contacts/{keep}/merge"),
            &a.token,
            json!({"other_id": gone}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-king", "job_title": "Countess"}},
                {"op": "upsert", "match_on": "email", "data": {"email": "A.King@example.com", "last_name": "King"}},
                {"op": "update", "id": gone, "data": {"job_title": "Analyst"}},
                {"op": "delete", "id": gone},
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    let statuses: Vec<u64> = r.iter().map(|x| x["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 404, 404], "{v}");
    for x in &r[..2] {
        assert_eq!(x["data"]["id"], keep.as_str(), "{v}");
        assert_eq!(x["data"]["external_id"], "erp-ada", "{v}");
        assert_eq!(x["data"]["email"], "ada@example.com", "{v}");
    }
    assert_eq!(r[1]["data"]["job_title"], "Countess");
    assert_eq!(r[1]["data"]["last_name"], "King");
    for x in &r[2..] {
        assert_eq!(x["error"]["merged_into"], keep.as_str(), "{v}");
    }
    let (_, list) = app.get("/api/v1/contacts?count=true", &a.token).await;
    assert_eq!(list["total"], 1, "nothing created again: {list}");

    // Another workspace's values are its own.
    let (st, v) = app
        .post(
            "/api/v1/contacts/batch",
            &b.token,
            json!({"operations": [{"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-king", "first_name": "Other"}}]}),
        )
        .await;
    assert_eq!(
        (st, v["results"][0]["status"].as_u64()),
        (StatusCode::OK, Some(201)),
        "{v}"
    );

    // The survivor merged on: the old values follow to the last survivor.
    let last = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "Augusta", "external_id": "erp-augusta"}),
    )
    .await;
    let (st, v) = app
        .post(
            &format!("/api/v1/contacts/{last}/merge"),
            &a.token,
            json!({"other_id": keep}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for key in ["erp-king", "erp-ada"] {
        let (st, v) = app
            .post(
                "/api/v1/contacts/batch",
                &a.token,
                json!({"operations": [{"op": "upsert", "match_on": "external_id", "data": {"external_id": key, "tags": [key]}}]}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["results"][0]["status"], 200, "{v}");
        assert_eq!(v["results"][0]["data"]["id"], last.as_str(), "{v}");
        assert_eq!(v["results"][0]["data"]["external_id"], "erp-augusta", "{v}");
    }

    // A record that holds the value itself wins over the merge.
    let fresh = make(
        &app,
        &a,
        "contacts",
        json!({"first_name": "New", "external_id": "erp-king"}),
    )
    .await;
    let (st, v) = app
        .post(
            "/api/v1/contacts/batch",
            &a.token,
            json!({"operations": [{"op": "upsert", "match_on": "external_id", "data": {"external_id": "erp-king", "job_title": "Fresh"}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["data"]["id"], fresh.as_str(), "{v}");
}
