use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use crm_e2e::{create_deal, stage_id, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The first day of the quarter holding `d`.
fn quarter_start(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month0() / 3 * 3 + 1, 1).unwrap()
}

fn error_fields(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {v}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

async fn quota(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/quotas", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn quotas_are_records_unique_per_holder_period_and_currency() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let boss = app.user(&a, "manager").await;
    let (s, team) = app
        .post(
            "/api/v1/teams",
            &a.token,
            json!({"name": "EMEA", "member_ids": [rep.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_str().unwrap().to_string();

    // Managers set quotas; the amount is an exact decimal, the period ends where it should.
    let (s, q, h) = app
        .call(
            Method::POST,
            "/api/v1/quotas",
            Some(&boss.token),
            Some(json!({"user_id": rep.user_id, "period": "quarter", "period_start": "2027-04-01", "amount": "120000.50", "currency": "eur"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q}");
    let id = q["id"].as_str().unwrap().to_string();
    assert_eq!(h["etag"], "\"1\"");
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("/api/v1/quotas/{id}")
    );
    assert_eq!(q["amount"], "120000.5");
    assert_eq!(q["currency"], "EUR");
    assert_eq!(q["period_end"], "2027-06-30");
    assert_eq!(q["team_id"], Value::Null);
    let team_q = quota(
        &app,
        &a,
        json!({"team_id": team_id, "period": "month", "period_start": "2027-02-01", "amount": "50000", "currency": "EUR"}),
    )
    .await;
    assert_eq!(team_q["period_end"], "2027-02-28");

    // The same user, period, start and currency again: 409 naming the quota; another
    // currency or period start is a quota of its own.
    let (s, v) = app
        .post(
            "/api/v1/quotas",
            &a.token,
            json!({"user_id": rep.user_id, "period": "quarter", "period_start": "2027-04-01", "amount": "1", "currency": "EUR"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["existing_id"], id.as_str());
    let usd = quota(
        &app,
        &a,
        json!({"user_id": rep.user_id, "period": "quarter", "period_start": "2027-04-01", "amount": "1", "currency": "USD"}),
    )
    .await;
    let usd_path = format!("/api/v1/quotas/{}", usd["id"].as_str().unwrap());
    let (s, v) = app
        .patch(&usd_path, &a.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["existing_id"], id.as_str());

    // Validation names each field.
    let nobody = "01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01";
    for (body, fields) in [
        (
            json!({"user_id": rep.user_id, "team_id": team_id, "period": "month", "period_start": "2027-01-01", "amount": "1", "currency": "EUR"}),
            vec!["team_id"],
        ),
        (
            json!({"period": "month", "period_start": "2027-01-01", "amount": "1", "currency": "EUR"}),
            vec!["user_id"],
        ),
        (
            json!({"user_id": rep.user_id, "period": "quarter", "period_start": "2027-02-01", "amount": "1", "currency": "EUR"}),
            vec!["period_start"],
        ),
        (
            json!({"user_id": rep.user_id, "period": "month", "period_start": "2027-02-02", "amount": "1", "currency": "EUR"}),
            vec!["period_start"],
        ),
        (
            json!({"user_id": rep.user_id, "period": "week", "period_start": "2027-02-30", "amount": "-1", "currency": "EURO"}),
            vec!["amount", "currency", "period", "period_start"],
        ),
        (
            json!({"user_id": nobody, "period": "month", "period_start": "2027-01-01", "amount": "1", "currency": "EUR"}),
            vec!["user_id"],
        ),
        (
            json!({"team_id": nobody, "period": "month", "period_start": "2027-01-01", "amount": "1", "currency": "EUR"}),
            vec!["team_id"],
        ),
    ] {
        let (s, v) = app.post("/api/v1/quotas", &a.token, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        let mut got = error_fields(&v);
        got.sort();
        assert_eq!(got, fields, "{body} → {v}");
    }

    // Merge patch with If-Match; a stale version is 412.
    let path = format!("/api/v1/quotas/{id}");
    let (s, v, h) = app
        .call(
            Method::PATCH,
            &path,
            Some(&a.token),
            Some(json!({"amount": "130000"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["amount"].as_str(), v["version"].as_i64()),
        (Some("130000"), Some(2))
    );
    assert_eq!(h["etag"], "\"2\"");
    let stale = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"amount": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let (s, v) = app
        .patch(&path, &a.token, json!({"period_start": "2027-05-01"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_fields(&v), ["period_start"]);

    // Everyone reads quotas; only admins and managers write them.
    let (s, v) = app
        .get(
            &format!("/api/v1/quotas?period=quarter&user_id={}", rep.user_id),
            &rep.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let listed: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["currency"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/quotas",
            &rep.token,
            json!({"user_id": rep.user_id, "period": "month", "period_start": "2027-01-01", "amount": "1", "currency": "EUR"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("quotas:write"),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/quotas/search",
            &rep.token,
            json!({"filter": {"field": "team_id", "op": "eq", "value": team_id}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"][0]["id"], team_q["id"]);

    // Another workspace sees none of it.
    let b = app.workspace("Other").await;
    let (s, _) = app.get(&path, &b.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = app.get("/api/v1/quotas", &b.token).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);

    // Delete archives (and the change feed has it all).
    assert_eq!(
        app.delete(&usd_path, &a.token).await,
        StatusCode::NO_CONTENT
    );
    let (s, _) = app.get(&usd_path, &a.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, feed) = app.get("/api/v1/events?limit=500", &a.token).await;
    let types: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| t.starts_with("quota."))
        .collect();
    assert_eq!(
        types,
        [
            "quota.created",
            "quota.created",
            "quota.created",
            "quota.updated",
            "quota.archived"
        ]
    );
}

/// The figures of a forecast period or group that the assertions compare.
fn figures(v: &Value) -> Value {
    json!([
        v["closed_won"],
        v["weighted_open"],
        v["best_case"],
        v["commit"],
        v["won_count"],
        v["lost_count"],
        v["open_count"],
        v["quota"],
        v["attainment"]
    ])
}

fn group<'a>(period: &'a Value, key: &str, id: Option<&str>) -> &'a Value {
    period["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g[key].as_str() == id)
        .unwrap_or_else(|| panic!("no group {key}={id:?} in {period}"))
}

#[tokio::test]
async fn the_forecast_sums_exactly_per_period_and_group_against_quotas() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let viewer = app.user(&a, "viewer").await;
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let sales = pipelines["data"][0].clone();
    let (s, partners) = app
        .post(
            "/api/v1/pipelines",
            &a.token,
            json!({"name": "Partners", "stages": [{"name": "Intro", "probability": 20}, {"name": "Signed", "probability": 100, "kind": "won"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{partners}");
    let (s, team) = app
        .post(
            "/api/v1/teams",
            &a.token,
            json!({"name": "Field", "member_ids": [rep.user_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_str().unwrap();

    // Closed deals count when they close (now); open ones when they are expected to.
    let today = Utc::now().date_naive();
    let q0 = quarter_start(today);
    let q1 = q0.checked_add_months(Months::new(3)).unwrap();
    let to = q1
        .checked_add_months(Months::new(3))
        .unwrap()
        .pred_opt()
        .unwrap();
    let (a_id, r_id) = (a.user_id.as_str(), rep.user_id.as_str());
    let in_q1 = day(q1.checked_add_days(Days::new(10)).unwrap());
    let proposal = stage_id(&sales, "Proposal");
    for body in [
        json!({"name": "Won", "amount": "1000", "currency": "EUR", "owner_id": a_id, "stage_id": stage_id(&sales, "Won")}),
        // Three cents at 50 %: weighted 0.015, rounded once with the rest of the period.
        json!({"name": "C1", "amount": "0.01", "currency": "EUR", "owner_id": a_id, "stage_id": proposal, "expected_close_date": day(q0)}),
        json!({"name": "C2", "amount": "0.01", "currency": "EUR", "owner_id": a_id, "stage_id": proposal, "expected_close_date": day(q0)}),
        json!({"name": "C3", "amount": "0.01", "currency": "EUR", "owner_id": a_id, "stage_id": proposal, "expected_close_date": day(q0)}),
        json!({"name": "Big", "amount": "2000", "currency": "EUR", "owner_id": r_id, "stage_id": stage_id(&sales, "Negotiation"), "expected_close_date": in_q1}),
        json!({"name": "Gone", "amount": "500", "currency": "EUR", "owner_id": r_id, "stage_id": stage_id(&sales, "Lost"), "lost_reason": "price"}),
        json!({"name": "Dollars", "amount": "300", "currency": "USD", "owner_id": r_id, "stage_id": proposal, "expected_close_date": day(q0)}),
        json!({"name": "Too early", "amount": "100", "currency": "EUR", "owner_id": a_id, "expected_close_date": day(q0.pred_opt().unwrap())}),
        json!({"name": "Unowned", "amount": "40", "currency": "EUR", "expected_close_date": day(q0)}),
        json!({"name": "Partner", "amount": "700", "currency": "EUR", "owner_id": a_id, "pipeline_id": partners["id"], "stage_id": stage_id(&partners, "Intro"), "expected_close_date": in_q1}),
        json!({"name": "Undated", "amount": "900", "currency": "EUR", "owner_id": a_id, "stage_id": proposal}),
    ] {
        create_deal(&app, &a, body).await;
    }
    let archived = create_deal(
        &app,
        &a,
        json!({"name": "Archived", "amount": "999", "currency": "EUR", "owner_id": a_id, "stage_id": proposal, "expected_close_date": day(q0)}),
    )
    .await;
    let path = format!("/api/v1/deals/{}", archived["id"].as_str().unwrap());
    assert_eq!(app.delete(&path, &a.token).await, StatusCode::NO_CONTENT);

    // Quotas: the admin's this quarter, the rep's next quarter, the team's next quarter;
    // a monthly one and a dollar one that a quarterly euro forecast does not use.
    for body in [
        json!({"user_id": a_id, "period": "quarter", "period_start": day(q0), "amount": "4000", "currency": "EUR"}),
        json!({"user_id": a_id, "period": "quarter", "period_start": day(q0), "amount": "10", "currency": "USD"}),
        json!({"user_id": a_id, "period": "month", "period_start": day(today.with_day(1).unwrap()), "amount": "3000", "currency": "EUR"}),
        json!({"user_id": r_id, "period": "quarter", "period_start": day(q1), "amount": "3000", "currency": "EUR"}),
        json!({"team_id": team_id, "period": "quarter", "period_start": day(q1), "amount": "2500", "currency": "EUR"}),
        // The rep's and the team's monthly quotas in the current quarter, which has no
        // quarterly quota for either: they add up to its quota.
        json!({"user_id": r_id, "period": "month", "period_start": day(q0), "amount": "1000.50", "currency": "EUR"}),
        json!({"user_id": r_id, "period": "month", "period_start": day(q0.checked_add_months(Months::new(2)).unwrap()), "amount": "499.50", "currency": "EUR"}),
        json!({"team_id": team_id, "period": "month", "period_start": day(q0.checked_add_months(Months::new(1)).unwrap()), "amount": "700", "currency": "EUR"}),
        // A monthly quota of the next quarter does not count where it has its own.
        json!({"user_id": r_id, "period": "month", "period_start": day(q1), "amount": "5", "currency": "EUR"}),
    ] {
        quota(&app, &a, body).await;
    }

    let get = |q: String, token: String| {
        let app = &app;
        async move {
            let (s, v) = app.get(&format!("/api/v1/forecast?{q}"), &token).await;
            assert_eq!(s, StatusCode::OK, "{q} → {v}");
            v
        }
    };
    let base = format!(
        "period=quarter&from={}&to={}&currency=EUR",
        day(q0),
        day(to)
    );

    // Totals per quarter (a viewer may read the forecast).
    let f = get(base.clone(), viewer.token.clone()).await;
    assert_eq!(f["periods"].as_array().unwrap().len(), 2, "{f}");
    assert_eq!(f["periods"][0]["start"], day(q0));
    assert_eq!(f["periods"][1]["end"], day(to));
    assert_eq!(f["group_by"], Value::Null);
    assert_eq!(f["periods"][0]["groups"], json!([]));
    // Q0: won 1000; open 0.03 at 50 % and 40 at 10 %: 0.015 + 4 = 4.015 → 4.02.
    assert_eq!(
        figures(&f["periods"][0]["totals"]),
        json!(["1000.00", "4.02", "1040.03", "1000.00", 1, 1, 4, null, null])
    );
    // Q1: 2000 at 75 % and 700 at 20 %: 1500 + 140.
    assert_eq!(
        figures(&f["periods"][1]["totals"]),
        json!(["0.00", "1640.00", "2700.00", "2000.00", 0, 0, 2, null, null])
    );

    // Per owner, with each owner's quota and attainment.
    let f = get(format!("{base}&group_by=owner"), a.token.clone()).await;
    let p0 = &f["periods"][0];
    assert_eq!(p0["groups"].as_array().unwrap().len(), 3, "{p0}");
    assert_eq!(
        figures(group(p0, "owner_id", Some(a_id))),
        json!(["1000.00", "0.02", "1000.03", "1000.00", 1, 0, 3, "4000", "25.00"])
    );
    assert_eq!(
        figures(group(p0, "owner_id", Some(r_id))),
        json!(["0.00", "0.00", "0.00", "0.00", 0, 1, 0, "1500", "0.00"])
    );
    assert_eq!(
        figures(group(p0, "owner_id", None)),
        json!(["0.00", "4.00", "40.00", "0.00", 0, 0, 1, null, null])
    );
    let p1 = &f["periods"][1];
    assert_eq!(
        figures(group(p1, "owner_id", Some(r_id))),
        json!(["0.00", "1500.00", "2000.00", "2000.00", 0, 0, 1, "3000", "0.00"])
    );
    assert_eq!(
        figures(group(p1, "owner_id", Some(a_id))),
        json!(["0.00", "140.00", "700.00", "0.00", 0, 0, 1, null, null])
    );

    // Per pipeline, and for one pipeline.
    let f = get(format!("{base}&group_by=pipeline"), a.token.clone()).await;
    let p1 = &f["periods"][1];
    let sales_id = sales["id"].as_str();
    let partners_id = partners["id"].as_str();
    assert_eq!(
        group(p1, "pipeline_id", sales_id)["weighted_open"],
        "1500.00"
    );
    assert_eq!(
        group(p1, "pipeline_id", partners_id)["weighted_open"],
        "140.00"
    );
    assert_eq!(
        group(p1, "pipeline_id", partners_id)["owner_id"],
        Value::Null
    );
    let f = get(
        format!("{base}&pipeline_id={}", partners_id.unwrap()),
        a.token.clone(),
    )
    .await;
    assert_eq!(f["periods"][0]["totals"]["open_count"], 0);
    assert_eq!(f["periods"][1]["totals"]["best_case"], "700.00");

    // One team (its members' deals, against the team's quota) and one owner.
    let f = get(
        format!("{base}&team_id={team_id}&group_by=owner"),
        a.token.clone(),
    )
    .await;
    assert_eq!(
        figures(&f["periods"][0]["totals"]),
        json!(["0.00", "0.00", "0.00", "0.00", 0, 1, 0, "700", "0.00"])
    );
    assert_eq!(
        figures(&f["periods"][1]["totals"]),
        json!(["0.00", "1500.00", "2000.00", "2000.00", 0, 0, 1, "2500", "0.00"])
    );
    assert_eq!(f["periods"][1]["groups"].as_array().unwrap().len(), 1);
    let f = get(format!("{base}&owner_id={a_id}"), a.token.clone()).await;
    assert_eq!(f["periods"][0]["totals"]["quota"], "4000");
    assert_eq!(f["periods"][0]["totals"]["attainment"], "25.00");
    assert_eq!(f["periods"][0]["totals"]["open_count"], 3);

    // This month, against the monthly quota: 1000 of 3000.
    let m0 = today.with_day(1).unwrap();
    let f = get(
        format!(
            "period=month&from={}&to={}&currency=EUR&group_by=owner",
            day(m0),
            day(today)
        ),
        a.token.clone(),
    )
    .await;
    assert_eq!(f["periods"].as_array().unwrap().len(), 1, "{f}");
    let mine = group(&f["periods"][0], "owner_id", Some(a_id));
    assert_eq!(
        (&mine["closed_won"], &mine["quota"], &mine["attainment"]),
        (&json!("1000.00"), &json!("3000"), &json!("33.33"))
    );

    // In yen, nothing: other currencies are never added.
    let f = get(
        format!(
            "period=quarter&from={}&to={}&currency=JPY",
            day(q0),
            day(to)
        ),
        a.token.clone(),
    )
    .await;
    assert_eq!(figures(&f["periods"][0]["totals"])[0], "0");

    // Bad queries are 422 naming the parameter.
    let far = day(q0.checked_add_months(Months::new(24)).unwrap());
    for (q, field) in [
        (
            format!(
                "period=quarter&from={}&to={}&currency=EUR",
                day(to),
                day(q0)
            ),
            "to",
        ),
        (
            format!("period=month&from={}&to={far}&currency=EUR", day(q0)),
            "to",
        ),
        (
            format!("period=week&from={}&to={}&currency=EUR", day(q0), day(to)),
            "period",
        ),
        (
            format!("period=month&from={}&to={}", day(q0), day(to)),
            "currency",
        ),
        (format!("period=month&to={}&currency=EUR", day(to)), "from"),
        (
            format!("period=month&from=2027-02-30&to={}&currency=EUR", day(to)),
            "from",
        ),
        (format!("{base}&group_by=team"), "group_by"),
        (
            format!("{base}&team_id=01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"),
            "team_id",
        ),
        (
            format!("{base}&pipeline_id=01938f4e-8a6b-7cc1-9d55-2f1f6a0c1e01"),
            "pipeline_id",
        ),
        (format!("{base}&stage=won"), "stage"),
    ] {
        let (s, v) = app.get(&format!("/api/v1/forecast?{q}"), &a.token).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q} → {v}");
        assert_eq!(error_fields(&v), [field], "{q} → {v}");
    }
    // 24 calendar months are fine.
    let last = q0
        .checked_add_months(Months::new(24))
        .unwrap()
        .pred_opt()
        .unwrap();
    let f = get(
        format!(
            "period=month&from={}&to={}&currency=EUR",
            day(q0),
            day(last)
        ),
        a.token.clone(),
    )
    .await;
    assert_eq!(f["periods"].as_array().unwrap().len(), 24);
}

/// The figures of every period of a forecast, and of each of its groups by owner.
fn all_figures(f: &Value) -> Vec<(Value, Vec<(Value, Value)>)> {
    f["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut groups: Vec<(Value, Value)> = p["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (g["owner_id"].clone(), figures(g)))
                .collect();
            groups.sort_by_key(|(owner, _)| owner.to_string());
            (figures(&p["totals"]), groups)
        })
        .collect()
}

#[tokio::test]
async fn the_forecasts_running_totals_follow_every_kind_of_deal_write() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let rep = app.user(&a, "sales").await;
    let (_, pipelines) = app.get("/api/v1/pipelines", &a.token).await;
    let sales = pipelines["data"][0].clone();
    let stages = ["Proposal", "Negotiation", "Won", "Lost"].map(|s| stage_id(&sales, s));
    let owners = [a.user_id.clone(), rep.user_id.clone()];

    // Nine whole months around today; every deal expected mid-month, closed ones closed now.
    let q0 = quarter_start(Utc::now().date_naive());
    let start = q0.checked_sub_months(Months::new(3)).unwrap();
    let end = q0
        .checked_add_months(Months::new(6))
        .unwrap()
        .pred_opt()
        .unwrap();
    let mid = |m: usize| {
        day(start
            .checked_add_months(Months::new(m as u32))
            .unwrap()
            .checked_add_days(Days::new(14))
            .unwrap())
    };
    let deltas =
        || app.sql_count("SELECT COUNT(*) AS n FROM deal_forecast_deltas WHERE currency = 'EUR'");
    let mut ids = Vec::new();
    for round in 0..3 {
        let ops: Vec<Value> = (0..550)
            .map(|i| {
                let stage = i % 4;
                let mut data = json!({
                    "name": format!("D{round}-{i}"),
                    "amount": format!("{}.{:02}", i % 97, i % 100),
                    "currency": if i % 5 == 0 { "USD" } else { "EUR" },
                    "owner_id": owners[i % 2],
                    "stage_id": stages[stage],
                    "expected_close_date": mid(i % 9),
                });
                if stage == 3 {
                    data["lost_reason"] = json!("price");
                }
                json!({"op": "create", "data": data})
            })
            .collect();
        let (s, v) = app
            .post("/api/v1/deals/batch", &a.token, json!({"operations": ops}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        ids.extend(
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["data"]["id"].as_str().unwrap().to_string()),
        );
    }
    // One delta per euro deal: more than a read leaves unfolded.
    assert_eq!(deltas(), 1320);

    // Whole months come from the running totals; a range a day shorter at each end reads
    // its first and last months from the deals themselves. Both agree, and count every
    // live euro deal.
    let same = |live: i64| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let read = |from: NaiveDate, to: NaiveDate| {
                let token = token.clone();
                async move {
                    let q = format!(
                        "period=month&from={}&to={}&currency=EUR&group_by=owner",
                        day(from),
                        day(to)
                    );
                    let (s, v) = app.get(&format!("/api/v1/forecast?{q}"), &token).await;
                    assert_eq!(s, StatusCode::OK, "{q} → {v}");
                    v
                }
            };
            let whole = read(start, end).await;
            let edges = read(start.succ_opt().unwrap(), end.pred_opt().unwrap()).await;
            assert_eq!(all_figures(&whole), all_figures(&edges));
            let counted: i64 = whole["periods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    ["won_count", "lost_count", "open_count"]
                        .iter()
                        .map(|k| p["totals"][k].as_i64().unwrap())
                        .sum::<i64>()
                })
                .sum();
            assert_eq!(counted, live);
            all_figures(&whole)
        }
    };
    let before = same(1320).await;
    assert!(deltas() <= 2 * 4 * 9, "folded: {}", deltas());
    assert_eq!(before, same(1320).await);

    // Changes of every figure the totals hold, one by one and in a batch; a change of none.
    let deal = |i: usize| format!("/api/v1/deals/{}", ids[i]);
    for (i, body) in [
        (1, json!({"amount": "1000.01"})),
        (0, json!({"currency": "EUR"})),
        (2, json!({"owner_id": owners[1]})),
        (3, json!({"expected_close_date": mid(8)})),
        (4, json!({"stage_id": stages[2]})),
        (6, json!({"stage_id": stages[0], "lost_reason": null})),
        (7, json!({"amount": null})),
        (8, json!({"name": "Renamed"})),
    ] {
        let (s, v) = app.patch(&deal(i), &a.token, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{body} → {v}");
    }
    assert_eq!(app.delete(&deal(9), &a.token).await, StatusCode::NO_CONTENT);
    let ops: Vec<Value> = (11..20)
        .map(|i| json!({"op": "update", "id": ids[i], "data": {"amount": "3.5", "expected_close_date": mid(0)}}))
        .collect();
    let (s, v) = app
        .post("/api/v1/deals/batch", &a.token, json!({"operations": ops}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Deal 0 came over from dollars; deal 9 was archived.
    let after = same(1320).await;
    assert_ne!(before, after);
}
