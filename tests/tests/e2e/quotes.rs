use crm_e2e::{batch_statuses as statuses, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn product(app: &TestApp, s: &Session, sku: &str, price: &str, tax: &str) -> String {
    let (st, v) = app
        .post(
            "/api/v1/products",
            &s.token,
            json!({"sku": sku, "name": format!("Product {sku}"), "unit_price": price, "currency": "EUR", "tax_rate": tax}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn quote_totals_are_exact_sums_of_rounded_lines_with_catalogue_defaults() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let support = product(&app, &a, "SUP", "49.90", "19").await;
    let training = product(&app, &a, "TRN", "950", "7.7").await;
    let (_, book) = app
        .post(
            "/api/v1/price-books",
            &a.token,
            json!({"name": "Standard", "currency": "EUR", "is_default": true}),
        )
        .await;
    let bid = book["id"].as_str().unwrap();
    let (s, _, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/price-books/{bid}/prices/{support}"),
            Some(&a.token),
            Some(json!({"unit_price": "44.90"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let fee =
        json!({"description": "Fee", "quantity": "1", "unit_price": "0.05", "tax_rate": "10"});
    let (s, q, h) = app
        .call(
            Method::POST,
            "/api/v1/quotes",
            Some(&a.token),
            Some(json!({"currency": "EUR", "valid_until": "2026-12-31", "lines": [
                {"product_id": support, "quantity": "2"},
                {"product_id": training, "quantity": "1", "discount_percent": "10"},
                fee, fee, fee,
                {"description": "Widget", "quantity": "3", "unit_price": "19.99", "discount_percent": "10", "tax_rate": "19"},
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q}");
    assert_eq!(h["etag"], "\"1\"");
    assert_eq!(q["number"], 1);
    assert_eq!(q["status"], "draft");
    assert_eq!(q["price_book_id"], bid, "the currency's default price book");
    let lines = q["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 6);
    // The price book's price, the product's tax rate and name.
    assert_eq!(lines[0]["unit_price"], "44.9");
    assert_eq!(lines[0]["tax_rate"], "19");
    assert_eq!(lines[0]["description"], "Product SUP");
    assert_eq!(lines[0]["subtotal"], "89.80");
    assert_eq!(lines[0]["tax"], "17.06");
    assert_eq!(lines[0]["total"], "106.86");
    // Not in the book: the product's own price; 855 × 7.7 % = 65.835 → 65.84.
    assert_eq!(lines[1]["unit_price"], "950");
    assert_eq!(lines[1]["discount"], "95.00");
    assert_eq!(lines[1]["net"], "855.00");
    assert_eq!(lines[1]["tax"], "65.84");
    // Each fee's tax is 0.005 → 0.01: 0.03 in all, where rounding the sum gives 0.02.
    assert_eq!(lines[2]["tax"], "0.01");
    assert_eq!(lines[5]["discount"], "6.00");
    assert_eq!(lines[5]["tax"], "10.25");
    assert_eq!(lines[5]["total"], "64.22");
    assert_eq!(q["subtotal"], "1099.92");
    assert_eq!(q["discount_total"], "101.00");
    assert_eq!(q["tax_total"], "93.18");
    assert_eq!(q["total"], "1092.10");

    // Read back: the lines in order; lists leave them out.
    let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
    let (s, got) = app.get(&path, &a.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["lines"], q["lines"]);
    assert_eq!(got["total"], "1092.10");
    let (_, list) = app
        .get("/api/v1/quotes?total[gte]=1000&sort=-number", &a.token)
        .await;
    assert_eq!(list["data"][0]["id"], q["id"]);
    assert!(list["data"][0].get("lines").is_none());

    // A draft's lines can be replaced; the amounts follow.
    let (s, v) = app
        .patch(
            &path,
            &a.token,
            json!({"lines": [{"description": "Widget", "quantity": "2.5", "unit_price": "333", "tax_rate": "8"}], "currency": "JPY", "price_book_id": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["currency"], "JPY");
    assert_eq!(v["lines"][0]["subtotal"], "833");
    assert_eq!(v["total"], "900");
    assert_eq!(v["number"], 1, "the number stays");
}

#[tokio::test]
async fn invalid_quotes_name_the_offending_line_field() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let mine = product(&app, &a, "SUP", "10", "0").await;
    let theirs = product(&app, &b, "SUP", "10", "0").await;
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [
                {"product_id": mine, "quantity": "1"},
                {"product_id": theirs, "quantity": "1"},
                {"quantity": "1", "unit_price": "5"},
                {"description": "Zero", "quantity": "0", "unit_price": "5"},
                {"description": "Odd", "quantity": "1", "unit_price": "5", "discount_percent": "120", "tax_rate": "abc"},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let mut named = fields(&v);
    named.sort();
    assert_eq!(
        named,
        [
            "lines[1].product_id",
            "lines[2].description",
            "lines[3].quantity",
            "lines[4].discount_percent",
            "lines[4].tax_rate",
        ]
    );
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [{"description": "x", "quantity": 3}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&v),
        ["lines[0].quantity"],
        "a number is not a decimal string"
    );
    let many: Vec<Value> = (0..201)
        .map(|_| json!({"description": "x", "quantity": "1", "unit_price": "1"}))
        .collect();
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": many}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&v), ["lines"]);
    let (s, v) = app
        .post("/api/v1/quotes", &a.token, json!({"lines": []}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&v), ["currency"]);
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "status": "sent"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&v), ["status"]);
    // None of the refused quotes took a number.
    let (s, v) = app
        .post("/api/v1/quotes", &a.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["number"], 1);
    assert_eq!(v["total"], "0.00");
}

#[tokio::test]
async fn concurrent_creates_get_numbers_without_gaps() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/quotes", app.base);
        let token = a.token.clone();
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"currency": "EUR", "lines": [{"description": format!("Item {i}"), "quantity": "1", "unit_price": "1"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()["number"].as_i64().unwrap()
        });
    }
    let mut numbers = tasks.join_all().await;
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
    // Each workspace counts on its own.
    let (_, v) = app
        .post("/api/v1/quotes", &b.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(v["number"], 1);
}

#[tokio::test]
async fn only_drafts_are_edited_and_status_moves_forward() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, q) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [{"description": "Work", "quantity": "1", "unit_price": "100"}]}),
        )
        .await;
    let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
    let (s, v) = app
        .post(&format!("{path}/accept"), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a draft is not accepted: {v}");
    let (s, v) = app.patch(&path, &a.token, json!({"status": "sent"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "sent");
    assert_eq!(v["total"], "100.00");
    for change in [
        json!({"lines": [{"description": "More", "quantity": "2", "unit_price": "100"}]}),
        json!({"currency": "USD"}),
        json!({"valid_until": "2027-01-31"}),
        json!({"status": "draft"}),
    ] {
        let (s, v) = app.patch(&path, &a.token, change.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT, "{change}: {v}");
    }
    let (s, v, h) = app
        .call(
            Method::POST,
            &format!("{path}/accept"),
            Some(&a.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "accepted");
    assert_eq!(h["etag"], "\"3\"");
    let (s, _) = app
        .patch(&path, &a.token, json!({"status": "rejected"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a decision is final");

    let (_, feed) = app
        .get("/api/v1/events?types=quote.created,quote.updated", &a.token)
        .await;
    let changes: Vec<&Value> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["changes"]["status"])
        .collect();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[1], &json!({"old": "draft", "new": "sent"}));
    assert_eq!(changes[2], &json!({"old": "sent", "new": "accepted"}));
    assert_eq!(feed["data"][0]["data"]["lines"][0]["total"], "100.00");
}

#[tokio::test]
async fn quotes_are_private_to_their_workspace_and_written_by_sellers() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let sales = app.user(&a, "sales").await;
    let viewer = app.user(&a, "viewer").await;
    let (s, q) = app
        .post("/api/v1/quotes", &sales.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q}");
    let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
    let (s, _) = app.get(&path, &viewer.token).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post("/api/v1/quotes", &viewer.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["missing_permission"], "quotes:write");
    let (s, _) = app
        .patch(&path, &viewer.token, json!({"status": "sent"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get(&path, &b.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.patch(&path, &b.token, json!({"status": "sent"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(&format!("{path}/accept"), &b.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v1/quotes", &b.token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    // Another workspace's price book is not found either.
    let (_, book) = app
        .post(
            "/api/v1/price-books",
            &b.token,
            json!({"name": "B", "currency": "EUR"}),
        )
        .await;
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"price_book_id": book["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields(&v).contains(&"price_book_id".to_string()), "{v}");
}

#[tokio::test]
async fn accepting_a_quote_can_set_its_deals_amount() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Globex").await;
    let (s, deal) = app
        .post(
            "/api/v1/deals",
            &a.token,
            json!({"name": "Renewal", "amount": "1000", "currency": "USD"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_str().unwrap();

    // A deal of another workspace, or no deal at all, is refused by name.
    for bad in [json!("0193a000-0000-7000-8000-000000000000"), json!("nope")] {
        let (s, v) = app
            .post(
                "/api/v1/quotes",
                &b.token,
                json!({"deal_id": bad, "currency": "EUR", "lines": [{"description": "x", "quantity": "1", "unit_price": "1"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(fields(&v), ["deal_id"]);
    }
    let (s, v) = app
        .post(
            "/api/v1/quotes",
            &b.token,
            json!({"deal_id": deal_id, "currency": "EUR", "lines": [{"description": "x", "quantity": "1", "unit_price": "1"}]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another workspace's deal: {v}"
    );

    // A sent quote for the deal: 3 × 19.99, 10 % off, 19 % tax.
    let sent_quote = || {
        let (app, token) = (&app, a.token.clone());
        async move {
            let (s, q) = app
                .post(
                    "/api/v1/quotes",
                    &token,
                    json!({"deal_id": deal_id, "currency": "EUR", "lines": [
                        {"description": "Licences", "quantity": "3", "unit_price": "19.99", "discount_percent": "10", "tax_rate": "19"}
                    ]}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{q}");
            let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
            let (s, _) = app.patch(&path, &token, json!({"status": "sent"})).await;
            assert_eq!(s, StatusCode::OK);
            (q, path)
        }
    };
    let (q, path) = sent_quote().await;
    assert_eq!(q["total"], "64.22");
    let (s, v) = app
        .post(
            &format!("{path}/accept"),
            &a.token,
            json!({"update_deal_amount": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "accepted");

    let (_, d) = app.get(&format!("/api/v1/deals/{deal_id}"), &a.token).await;
    assert_eq!(
        (&d["amount"], &d["currency"]),
        (&json!("64.22"), &json!("EUR"))
    );
    let (_, feed) = app.get("/api/v1/events?types=deal.updated", &a.token).await;
    let last = feed["data"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["changes"]["amount"],
        json!({"old": "1000", "new": "64.22"}),
        "{last}"
    );

    // The deal can take the amount before tax instead; `deal_amount` alone is refused.
    let (q, path) = sent_quote().await;
    assert_eq!(
        (&q["subtotal"], &q["discount_total"], &q["tax_total"]),
        (&json!("59.97"), &json!("6.00"), &json!("10.25"))
    );
    let accept = format!("{path}/accept");
    let (s, v) = app
        .post(&accept, &a.token, json!({"deal_amount": "net"}))
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("deal_amount")),
        "{v}"
    );
    let (s, v) = app
        .post(
            &accept,
            &a.token,
            json!({"update_deal_amount": true, "deal_amount": "net"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, d) = app.get(&format!("/api/v1/deals/{deal_id}"), &a.token).await;
    assert_eq!(d["amount"], "53.97");
}

#[tokio::test]
async fn a_quote_past_its_last_day_is_not_accepted_but_can_expire() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let sent = |valid_until: String| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let (s, q) = app
                .post(
                    "/api/v1/quotes",
                    &token,
                    json!({"currency": "EUR", "valid_until": valid_until, "lines": [{"description": "Work", "quantity": "1", "unit_price": "100"}]}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{q}");
            let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
            let (s, v) = app.patch(&path, &token, json!({"status": "sent"})).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            path
        }
    };
    let today = chrono::Utc::now().date_naive();
    // Two days ago has ended everywhere: accepting (either way) is a 409, nothing changes.
    let lapsed = sent((today - chrono::Duration::days(2)).to_string()).await;
    let (s, v) = app
        .post(&format!("{lapsed}/accept"), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("valid until"), "{v}");
    let (s, _) = app
        .patch(&lapsed, &a.token, json!({"status": "accepted"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, q) = app.get(&lapsed, &a.token).await;
    assert_eq!((&q["status"], &q["version"]), (&json!("sent"), &json!(2)));
    let (s, q) = app
        .patch(&lapsed, &a.token, json!({"status": "expired"}))
        .await;
    assert_eq!((s, &q["status"]), (StatusCode::OK, &json!("expired")));
    // A quote whose last day is today, or later, is accepted.
    for days in [0, 30] {
        let good = sent((today + chrono::Duration::days(days)).to_string()).await;
        let (s, v) = app
            .post(&format!("{good}/accept"), &a.token, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

#[tokio::test]
async fn withdrawn_products_are_refused_on_new_lines_but_kept_on_drafts() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let kept = product(&app, &a, "KEPT", "10.00", "0").await;
    let paused = product(&app, &a, "PAUSED", "20.00", "0").await;
    let gone = product(&app, &a, "GONE", "30.00", "0").await;
    let line = |id: &str| json!({"product_id": id, "quantity": "1"});
    let (st, q) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [line(&kept)]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{q}");
    let path = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());

    let deactivate = |id: String| {
        let (app, token) = (&app, a.token.clone());
        async move {
            let (st, v) = app
                .patch(
                    &format!("/api/v1/products/{id}"),
                    &token,
                    json!({"active": false}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
    };
    deactivate(paused.clone()).await;
    assert_eq!(
        app.delete(&format!("/api/v1/products/{gone}"), &a.token)
            .await,
        StatusCode::NO_CONTENT
    );
    for id in [&paused, &gone] {
        let (st, v) = app
            .post(
                "/api/v1/quotes",
                &a.token,
                json!({"currency": "EUR", "lines": [line(&kept), line(id)]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(fields(&v), vec!["lines[1].product_id"]);
        assert_eq!(v["errors"][0]["code"], "inactive_product");
        let (st, v) = app
            .patch(&path, &a.token, json!({"lines": [line(&kept), line(id)]}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(fields(&v), vec!["lines[1].product_id"]);
    }

    // A product withdrawn after it was put on the draft stays on it, and the draft stays
    // editable.
    deactivate(kept.clone()).await;
    let (st, v) = app
        .patch(&path, &a.token, json!({"valid_until": "2027-03-31"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["lines"][0]["product_id"], json!(kept));
    assert_eq!(v["total"], "10.00");
}

/// Quotes and price books take batches like every other resource: quotes are priced and
/// numbered in input order, a refused item draws no number, a sent quote's lines stay as
/// they are, and an upsert (neither has a field to match on) is refused by name.
#[tokio::test]
async fn quotes_and_price_books_are_written_in_batches() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let support = product(&app, &a, "SUP", "49.90", "19").await;
    let (s, sent) = app
        .post(
            "/api/v1/quotes",
            &a.token,
            json!({"currency": "EUR", "lines": [{"description": "Work", "quantity": "1", "unit_price": "100"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sent}");
    let sent_id = sent["id"].as_str().unwrap();
    let (s, _) = app
        .patch(
            &format!("/api/v1/quotes/{sent_id}"),
            &a.token,
            json!({"status": "sent"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = app
        .post(
            "/api/v1/quotes/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"currency": "EUR", "lines": [{"product_id": support, "quantity": "3"}]}},
                {"op": "create", "data": {"currency": "EUR", "lines": [{"product_id": support, "quantity": "-1"}]}},
                {"op": "create", "data": {"currency": "EUR", "lines": [{"description": "Setup", "quantity": "1", "unit_price": "250", "discount_percent": "10"}]}},
                {"op": "update", "id": sent_id, "data": {"lines": []}},
                {"op": "upsert", "data": {"currency": "EUR"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 422, 201, 409, 422], "{v}");
    let first = &v["results"][0]["data"];
    assert_eq!(first["number"], 2, "{v}");
    assert_eq!(first["subtotal"], "149.70");
    assert_eq!(first["tax_total"], "28.44");
    assert_eq!(first["total"], "178.14");
    assert_eq!(
        v["results"][2]["data"]["number"], 3,
        "no number drawn for the refused item"
    );
    assert_eq!(v["results"][2]["data"]["total"], "225.00");
    assert_eq!(
        fields(&v["results"][1]["error"]),
        ["lines[0].quantity"],
        "{v}"
    );
    assert_eq!(fields(&v["results"][4]["error"]), ["op"], "{v}");
    let (_, stored) = app
        .get(&format!("/api/v1/quotes/{sent_id}"), &a.token)
        .await;
    assert_eq!(stored["lines"].as_array().unwrap().len(), 1, "{stored}");
    assert_eq!(stored["version"], sent["version"].as_i64().unwrap() + 1);

    // An atomic batch that fails leaves no quote and draws no number.
    let (s, v) = app
        .post(
            "/api/v1/quotes/batch",
            &a.token,
            json!({"atomic": true, "operations": [
                {"op": "create", "data": {"currency": "EUR"}},
                {"op": "create", "data": {"currency": "EURO"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, page) = app.get("/api/v1/quotes?count=true", &a.token).await;
    assert_eq!(page["total"], 3, "{page}");
    let (_, next) = app
        .post("/api/v1/quotes", &a.token, json!({"currency": "EUR"}))
        .await;
    assert_eq!(next["number"], 4, "{next}");

    let (s, v) = app
        .post(
            "/api/v1/price-books/batch",
            &a.token,
            json!({"operations": [
                {"op": "create", "data": {"name": "Standard", "currency": "EUR", "is_default": true}},
                {"op": "create", "data": {"name": "Second default", "currency": "EUR", "is_default": true}},
                {"op": "create", "data": {"name": "Partners", "currency": "EUR"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(statuses(&v), [201, 409, 201], "{v}");
    let b = app.workspace("Beta").await;
    let (_, page) = app.get("/api/v1/price-books?count=true", &b.token).await;
    assert_eq!(page["total"], 0, "another workspace sees none");
    let viewer = app.user(&a, "viewer").await;
    let (s, _) = app
        .post(
            "/api/v1/price-books/batch",
            &viewer.token,
            json!({"operations": [{"op": "create", "data": {"name": "X", "currency": "EUR"}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
