use chrono::{Datelike, Duration, SecondsFormat, Utc};
use crm_e2e::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn iso(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn create(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/activities", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn contact(app: &TestApp, s: &Session, name: &str) -> String {
    let (st, v) = app
        .post("/api/v1/contacts", &s.token, json!({"first_name": name}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn activities_link_records_validate_and_complete() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let ada = contact(&app, &a, "Ada").await;
    let bob = contact(&app, &a, "Bob").await;
    let (_, co) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Acme"}))
        .await;
    let co = co["id"].as_str().unwrap().to_string();

    // Create with links; duplicates fold; a task starts open with no completed_at.
    let task = create(
        &app,
        &a,
        json!({"type": "task", "subject": "Send the proposal", "due_at": "2026-12-01T09:00:00Z",
               "assignee_id": a.user_id, "contact_ids": [ada, ada, bob], "company_ids": [co]}),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(task["status"], "open");
    assert_eq!(task["priority"], "normal");
    assert_eq!(task["contact_ids"], json!([ada, bob]));
    assert_eq!(task["company_ids"], json!([co]));
    assert!(task["completed_at"].is_null());
    assert_eq!(task["occurred_at"], "2026-12-01T09:00:00Z");
    let (s, got) = app.get(&format!("/api/v1/activities/{id}"), &a.token).await;
    assert_eq!(
        (s, &got["contact_ids"]),
        (StatusCode::OK, &json!([ada, bob]))
    );

    // Notes start done.
    let note = create(
        &app,
        &a,
        json!({"type": "note", "subject": "Met at the fair"}),
    )
    .await;
    assert_eq!(note["status"], "done");
    assert!(note["completed_at"].is_string());

    // Unknown or malformed linked ids are named by their path.
    let ghost = uuid::Uuid::now_v7().to_string();
    let (s, v) = app
        .post(
            "/api/v1/activities",
            &a.token,
            json!({"type": "call", "subject": "x", "contact_ids": [ada, ghost]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "contact_ids[1]");
    let (s, v) = app
        .post(
            "/api/v1/activities",
            &a.token,
            json!({"type": "call", "subject": "x", "company_ids": ["nope"]}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("company_ids[0]"))
    );

    // Type rules: a meeting needs its start; the end may not precede it; outcome is for calls.
    for (body, field) in [
        (json!({"type": "meeting", "subject": "Demo"}), "start_at"),
        (
            json!({"type": "meeting", "subject": "Demo", "start_at": "2026-12-01T10:00:00Z", "end_at": "2026-12-01T09:00:00Z"}),
            "end_at",
        ),
        (
            json!({"type": "task", "subject": "x", "outcome": "connected"}),
            "outcome",
        ),
        (json!({"subject": "x"}), "type"),
        (json!({"type": "sms", "subject": "x"}), "type"),
        (
            json!({"type": "task", "subject": "x", "assignee_id": ghost}),
            "assignee_id",
        ),
    ] {
        let (s, v) = app.post("/api/v1/activities", &a.token, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }

    // A deactivated assignee is refused.
    let gone = app.user(&a, "sales").await;
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", gone.user_id), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    let (s, v) = app
        .post(
            "/api/v1/activities",
            &a.token,
            json!({"type": "task", "subject": "x", "assignee_id": gone.user_id}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("inactive_user"))
    );

    // A patch array replaces the links; done sets completed_at, reopening clears it.
    let (s, v) = app
        .patch(
            &format!("/api/v1/activities/{id}"),
            &a.token,
            json!({"contact_ids": [bob], "status": "done"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["contact_ids"], json!([bob]));
    assert_eq!(v["company_ids"], json!([co]));
    assert_eq!(v["version"], 2);
    let done_at = v["completed_at"].as_str().unwrap().to_string();
    let (_, v) = app
        .patch(
            &format!("/api/v1/activities/{id}"),
            &a.token,
            json!({"priority": "high"}),
        )
        .await;
    assert_eq!(v["completed_at"], done_at.as_str(), "stays while done");
    let (_, v) = app
        .patch(
            &format!("/api/v1/activities/{id}"),
            &a.token,
            json!({"status": "open", "company_ids": null}),
        )
        .await;
    assert!(v["completed_at"].is_null());
    assert_eq!(v["company_ids"], json!([]));

    // Filters: by link, type and status.
    let (s, page) = app
        .get(&format!("/api/v1/activities?contacts.id={bob}"), &a.token)
        .await;
    assert_eq!((s, ids(&page)), (StatusCode::OK, vec![id.clone()]));
    let (_, page) = app
        .get(&format!("/api/v1/activities?contacts.id={ada}"), &a.token)
        .await;
    assert!(ids(&page).is_empty(), "ada was unlinked");
    let (_, page) = app.get("/api/v1/activities?type=note", &a.token).await;
    assert_eq!(ids(&page), vec![note["id"].as_str().unwrap().to_string()]);
    let (_, page) = app
        .post(
            "/api/v1/activities/search",
            &a.token,
            json!({"filter": {"field": "companies.id", "op": "eq", "value": co}}),
        )
        .await;
    assert!(ids(&page).is_empty());

    // The change feed carries activity.created.
    let (_, feed) = app
        .get("/api/v1/events?types=activity.created", &a.token)
        .await;
    assert!(feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "activity.created" && e["record_id"] == id.as_str()));
}

#[tokio::test]
async fn action_list_windows_follow_the_time_zone() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let now = Utc::now();
    let task = |subject: &str, due: chrono::DateTime<Utc>| json!({"type": "task", "subject": subject, "due_at": iso(due)});
    let overdue = create(&app, &a, task("late", now - Duration::hours(30))).await;
    let soon = create(&app, &a, task("soon", now + Duration::minutes(1))).await;
    let far = create(&app, &a, task("far", now + Duration::days(30))).await;
    // Done tasks and meetings are not on the action list.
    create(
        &app,
        &a,
        json!({"type": "task", "subject": "done", "status": "done", "due_at": iso(now - Duration::hours(2))}),
    )
    .await;
    create(
        &app,
        &a,
        json!({"type": "meeting", "subject": "m", "start_at": iso(now - Duration::hours(2)), "due_at": iso(now - Duration::hours(2))}),
    )
    .await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();

    let (s, page) = app.get("/api/v1/activities?due=overdue", &a.token).await;
    assert_eq!((s, ids(&page)), (StatusCode::OK, vec![id(&overdue)]));

    // "Today" in a zone 14 hours ahead and one 12 hours behind: `soon` (a minute from now)
    // is today in both; `late` (30 hours ago) in neither.
    for tz in ["Pacific/Kiritimati", "Etc/GMT%2B12", "UTC"] {
        let (s, page) = app
            .get(&format!("/api/v1/activities?due=today&tz={tz}"), &a.token)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(ids(&page), vec![id(&soon)], "{tz}");
    }
    let (_, page) = app
        .get("/api/v1/activities?due=this_week&tz=UTC", &a.token)
        .await;
    let week = ids(&page);
    assert!(week.contains(&id(&soon)) && !week.contains(&id(&far)));
    // `late` is this week unless the week began in the last 30 hours.
    let monday = now.date_naive() - Duration::days(now.weekday().num_days_from_monday().into());
    let week_start = monday.and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(
        week.contains(&id(&overdue)),
        now - Duration::hours(30) >= week_start
    );

    for (q, field) in [
        ("due=yesterday", "due"),
        ("due=today&tz=Mars/Olympus", "tz"),
        ("tz=UTC", "tz"),
    ] {
        let (s, v) = app.get(&format!("/api/v1/activities?{q}"), &a.token).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(v["errors"][0]["field"], field);
    }
}

#[tokio::test]
async fn calendar_for_a_user_and_a_team() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let other = app.user(&a, "sales").await;
    let meeting = create(
        &app,
        &a,
        json!({"type": "meeting", "subject": "Demo", "assignee_id": rep.user_id,
               "start_at": "2026-12-01T23:00:00Z", "end_at": "2026-12-02T01:00:00Z"}),
    )
    .await;
    let call = create(
        &app,
        &a,
        json!({"type": "call", "subject": "Call", "assignee_id": rep.user_id, "due_at": "2026-12-02T09:00:00Z"}),
    )
    .await;
    let theirs = create(
        &app,
        &a,
        json!({"type": "task", "subject": "Theirs", "assignee_id": other.user_id, "due_at": "2026-12-02T08:00:00Z"}),
    )
    .await;
    // Outside the range, cancelled, or not a dated kind: left out.
    create(&app, &a, json!({"type": "call", "subject": "Later", "assignee_id": rep.user_id, "due_at": "2026-12-03T09:00:00Z"})).await;
    create(&app, &a, json!({"type": "call", "subject": "Off", "status": "cancelled", "assignee_id": rep.user_id, "due_at": "2026-12-02T10:00:00Z"})).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let range = "from=2026-12-02T00:00:00Z&to=2026-12-03T00:00:00Z";

    // The caller's own calendar: the meeting overlapping midnight, then the call.
    let (s, cal) = app
        .get(&format!("/api/v1/calendar?{range}"), &rep.token)
        .await;
    assert_eq!(s, StatusCode::OK, "{cal}");
    assert_eq!(ids(&cal), vec![id(&meeting), id(&call)]);
    let (_, cal) = app
        .get(
            &format!("/api/v1/calendar?{range}&user_id={}", other.user_id),
            &rep.token,
        )
        .await;
    assert_eq!(ids(&cal), vec![id(&theirs)]);

    // A team's calendar merges its members', by time.
    let (s, team) = app
        .post(
            "/api/v1/teams",
            &a.token,
            json!({"name": "EMEA", "member_ids": [rep.user_id, other.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    let (_, cal) = app
        .get(
            &format!(
                "/api/v1/calendar?{range}&team_id={}",
                team["id"].as_str().unwrap()
            ),
            &a.token,
        )
        .await;
    assert_eq!(ids(&cal), vec![id(&meeting), id(&theirs), id(&call)]);
    assert_eq!(cal["truncated"], false);
    assert!(cal.get("next_cursor").is_none(), "{cal}");

    // Page by page, the same activities in the same order.
    let team_q = format!("{range}&team_id={}", team["id"].as_str().unwrap());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..4 {
        let q = match &cursor {
            Some(c) => format!("{team_q}&limit=2&cursor={c}"),
            None => format!("{team_q}&limit=2"),
        };
        let (s, page) = app.get(&format!("/api/v1/calendar?{q}"), &a.token).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(String::from);
        assert_eq!(page["truncated"], cursor.is_some(), "{page}");
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, vec![id(&meeting), id(&theirs), id(&call)]);

    // Range checks.
    for (q, field) in [
        ("from=2026-12-02T00:00:00Z", "to"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
        ("from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
        ("from=yesterday&to=2026-06-01T00:00:00Z", "from"),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-03T00:00:00Z&user_id=nobody",
            "user_id",
        ),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-03T00:00:00Z&week=1",
            "week",
        ),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-03T00:00:00Z&limit=0",
            "limit",
        ),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-03T00:00:00Z&cursor=nonsense",
            "cursor",
        ),
    ] {
        let (s, v) = app.get(&format!("/api/v1/calendar?{q}"), &a.token).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{q}");
    }
}

#[tokio::test]
async fn timeline_mixes_activities_and_lifecycle_changes_newest_first() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let ada = contact(&app, &a, "Ada").await;
    let note = create(
        &app,
        &a,
        json!({"type": "note", "subject": "Hello", "contact_ids": [ada]}),
    )
    .await;
    let old = create(
        &app,
        &a,
        json!({"type": "task", "subject": "Old", "due_at": "2026-01-01T00:00:00Z", "contact_ids": [ada]}),
    )
    .await;
    let future = create(
        &app,
        &a,
        json!({"type": "meeting", "subject": "Future", "start_at": "2030-01-01T00:00:00Z", "contact_ids": [ada]}),
    )
    .await;
    let hidden = create(
        &app,
        &a,
        json!({"type": "task", "subject": "Hidden", "due_at": "2029-01-01T00:00:00Z", "contact_ids": [ada]}),
    )
    .await;
    assert_eq!(
        app.delete(
            &format!("/api/v1/activities/{}", hidden["id"].as_str().unwrap()),
            &a.token
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/contacts/{ada}"),
            &a.token,
            json!({"lifecycle_stage": "new"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Five tasks due at the same instant: ties break on kind, then id.
    let mut same = Vec::new();
    for i in 0..5 {
        let t = create(
            &app,
            &a,
            json!({"type": "task", "subject": format!("Same {i}"), "due_at": "2027-06-01T12:00:00Z", "contact_ids": [ada]}),
        )
        .await;
        same.push(t["id"].as_str().unwrap().to_string());
    }
    same.sort();
    same.reverse();

    // Page through three at a time.
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts/{ada}/timeline?limit=3&cursor={c}"),
            None => format!("/api/v1/contacts/{ada}/timeline?limit=3"),
        };
        let (s, page) = app.get(&path, &a.token).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let got: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let act = |v: &Value| {
        (
            "activity".to_string(),
            v["id"].as_str().unwrap().to_string(),
        )
    };
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    let mut want = vec![act(&future)];
    want.extend(same.iter().map(|id| ("activity".to_string(), id.clone())));
    assert_eq!(
        got[..6],
        want[..],
        "future meeting, then the tied tasks by id"
    );
    assert_eq!(
        kinds[6..],
        [
            "lifecycle_change",
            "activity",
            "lifecycle_change",
            "activity"
        ]
    );
    assert_eq!(got[7], act(&note));
    assert_eq!(got[9], act(&old));
    assert_eq!(items[6]["data"]["to_stage"], "new");
    assert_eq!(items[8]["data"]["to_stage"], "prospect");
    assert_eq!(items[0]["data"]["subject"], "Future");
    assert_eq!(items[0]["data"]["contact_ids"], json!([ada]));
    assert!(
        !got.contains(&act(&hidden)),
        "archived activities are left out"
    );

    // A company's timeline holds its activities.
    let (_, co) = app
        .post("/api/v1/companies", &a.token, json!({"name": "Acme"}))
        .await;
    let co = co["id"].as_str().unwrap().to_string();
    let linked = create(
        &app,
        &a,
        json!({"type": "email", "subject": "Quote", "company_ids": [co]}),
    )
    .await;
    let (s, page) = app
        .get(&format!("/api/v1/companies/{co}/timeline"), &a.token)
        .await;
    assert_eq!(
        (s, ids(&page)),
        (
            StatusCode::OK,
            vec![linked["id"].as_str().unwrap().to_string()]
        )
    );
    let (s, v) = app
        .get(
            &format!("/api/v1/contacts/{ada}/timeline?cursor=xyz"),
            &a.token,
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
}

#[tokio::test]
async fn activities_are_isolated_by_workspace_and_role() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    let theirs = contact(&app, &b, "Eve").await;
    let act = create(
        &app,
        &b,
        json!({"type": "task", "subject": "Secret", "contact_ids": [theirs]}),
    )
    .await;
    let id = act["id"].as_str().unwrap();

    // Another workspace's activity is not found; its contact cannot be linked.
    assert_eq!(
        app.get(&format!("/api/v1/activities/{id}"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/activities/{id}"),
            &a.token,
            json!({"subject": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v1/activities/{id}"), &a.token)
            .await,
        StatusCode::NOT_FOUND
    );
    let (s, v) = app
        .post(
            "/api/v1/activities",
            &a.token,
            json!({"type": "task", "subject": "x", "contact_ids": [theirs]}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contact_ids[0]"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{theirs}/timeline"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, page) = app.get("/api/v1/activities", &a.token).await;
    assert!(ids(&page).is_empty());

    // Viewers read but cannot write; sales and support write.
    let viewer = app.user(&a, "viewer").await;
    let mine = create(&app, &a, json!({"type": "task", "subject": "Mine"})).await;
    let mine = mine["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/activities",
            &viewer.token,
            json!({"type": "task", "subject": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        app.patch(
            &format!("/api/v1/activities/{mine}"),
            &viewer.token,
            json!({"subject": "y"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/api/v1/activities/{mine}"), &viewer.token)
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("/api/v1/activities/{mine}"), &viewer.token)
            .await
            .0,
        StatusCode::OK
    );
    for role in ["sales", "support"] {
        let u = app.user(&a, role).await;
        create(&app, &u, json!({"type": "call", "subject": role})).await;
    }
}

async fn record(app: &TestApp, s: &Session, object: &str, body: Value) -> String {
    let (st, v) = app.post(&format!("/api/v1/{object}"), &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn activities_link_deals_and_leads_validated_like_contacts() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Other").await;
    let deal = record(&app, &a, "deals", json!({"name": "Pilot"})).await;
    let lead = record(&app, &a, "leads", json!({"first_name": "Ada"})).await;
    let foreign_deal = record(&app, &b, "deals", json!({"name": "Theirs"})).await;
    let foreign_lead = record(&app, &b, "leads", json!({"first_name": "Bob"})).await;

    let act = create(
        &app,
        &a,
        json!({"type": "meeting", "subject": "Kick-off", "start_at": "2026-12-01T10:00:00Z",
            "deal_ids": [deal, deal], "lead_ids": [lead]}),
    )
    .await;
    assert_eq!(act["deal_ids"], json!([deal]));
    assert_eq!(act["lead_ids"], json!([lead]));
    assert_eq!(act["contact_ids"], json!([]));

    // Unknown, malformed or another workspace's ids: 422 naming the element.
    for (body, field) in [
        (json!({"deal_ids": [deal, foreign_deal]}), "deal_ids[1]"),
        (json!({"lead_ids": [foreign_lead]}), "lead_ids[0]"),
        (json!({"deal_ids": ["nope"]}), "deal_ids[0]"),
        (json!({"lead_ids": [deal]}), "lead_ids[0]"),
    ] {
        let mut full = json!({"type": "note", "subject": "x"});
        full.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let (st, v) = app.post("/api/v1/activities", &a.token, full).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }

    // Filters reach the linked records; a patch replaces a set of links.
    let (st, v) = app
        .get(&format!("/api/v1/activities?deals.id={deal}"), &a.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![act["id"].as_str().unwrap().to_string()]);
    let (_, v) = app
        .get("/api/v1/activities?leads.first_name=Ada", &a.token)
        .await;
    assert_eq!(ids(&v).len(), 1, "{v}");
    let aid = act["id"].as_str().unwrap();
    let (st, v) = app
        .patch(
            &format!("/api/v1/activities/{aid}"),
            &a.token,
            json!({"deal_ids": []}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["deal_ids"].clone(), v["lead_ids"].clone()),
        (json!([]), json!([lead]))
    );
    let (_, v) = app
        .get(&format!("/api/v1/deals/{deal}/timeline"), &a.token)
        .await;
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "activity"),
        "{v}"
    );
}

#[tokio::test]
async fn erasing_a_record_removes_its_activity_links() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let contact_id = contact(&app, &a, "Ada").await;
    let company = record(&app, &a, "companies", json!({"name": "Engines"})).await;
    let deal = record(&app, &a, "deals", json!({"name": "Pilot"})).await;
    let lead = record(&app, &a, "leads", json!({"first_name": "Ada"})).await;
    let keep = contact(&app, &a, "Grace").await;
    let act = create(
        &app,
        &a,
        json!({"type": "note", "subject": "All of them", "contact_ids": [contact_id, keep],
            "company_ids": [company], "deal_ids": [deal], "lead_ids": [lead]}),
    )
    .await;
    let aid = act["id"].as_str().unwrap();
    for (object, id, field) in [
        ("contacts", &contact_id, "contact_ids"),
        ("companies", &company, "company_ids"),
        ("deals", &deal, "deal_ids"),
        ("leads", &lead, "lead_ids"),
    ] {
        let (_, before) = app
            .get(&format!("/api/v1/activities/{aid}"), &a.token)
            .await;
        assert_eq!(
            app.delete(&format!("/api/v1/{object}/{id}?permanent=true"), &a.token)
                .await,
            StatusCode::NO_CONTENT
        );
        let (_, after) = app
            .get(&format!("/api/v1/activities/{aid}"), &a.token)
            .await;
        assert!(
            !after[field].as_array().unwrap().contains(&json!(id)),
            "{field}: {after}"
        );
        assert!(after["version"].as_i64() > before["version"].as_i64());
        // No link row is left: a filter through the relation finds nothing.
        let (st, v) = app
            .get(&format!("/api/v1/activities?{object}.id={id}"), &a.token)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(ids(&v), Vec::<String>::new(), "{object}");
    }
    let (_, after) = app
        .get(&format!("/api/v1/activities/{aid}"), &a.token)
        .await;
    assert_eq!(after["contact_ids"], json!([keep]));
    // The remaining link still holds: the kept contact's timeline shows the activity.
    let (_, v) = app
        .get(&format!("/api/v1/contacts/{keep}/timeline"), &a.token)
        .await;
    assert_eq!(v["data"][0]["id"], act["id"]);
}
