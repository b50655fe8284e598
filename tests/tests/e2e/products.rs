use crm_e2e::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn products_are_records_with_exact_prices_and_a_unique_sku() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, p, h) = app
        .call(
            Method::POST,
            "/api/v1/products",
            Some(&a.token),
            Some(json!({"sku": "SUP-100", "name": "Support plan", "unit_price": "49.90", "currency": "eur", "tax_rate": "7.70", "custom": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(h["etag"], "\"1\"");
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("/api/v1/products/{id}")
    );
    assert_eq!(p["unit_price"], "49.9", "exact decimal, canonical");
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["tax_rate"], "7.7");
    assert_eq!(p["active"], true, "active by default");

    // Duplicate sku: 409 naming the holder, on create and on update.
    let (s, v) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "SUP-100", "name": "Twin", "unit_price": "1", "currency": "EUR"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["existing_id"], id.as_str());
    let (_, other) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "TRN-1", "name": "Training day", "unit_price": "950", "currency": "EUR"}),
        )
        .await;
    let other_path = format!("/api/v1/products/{}", other["id"].as_str().unwrap());
    let (s, v) = app
        .patch(&other_path, &a.token, json!({"sku": "SUP-100"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["existing_id"], id.as_str());

    // Precise problems.
    let (s, v) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "X", "name": "Bad", "unit_price": "-1", "currency": "EURO", "tax_rate": "101"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields = crm_e2e::error_fields(&v);
    assert_eq!(fields, ["currency", "tax_rate", "unit_price"]);
    let (s, v) = app
        .post("/api/v1/products", &a.token, json!({"name": "No sku"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["field"] == "sku"));
    let (s, _) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "F", "name": "Float", "unit_price": 1.5, "currency": "EUR"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a float price is refused"
    );

    // Merge patch with If-Match, archive, restore.
    let path = format!("/api/v1/products/{id}");
    let (s, v, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&a.token),
            Some(json!({"unit_price": "44.50", "active": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unit_price"], "44.5");
    assert_eq!(v["name"], "Support plan", "untouched fields stay");
    let stale = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&a.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.delete(&path, &a.token).await, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&path, &a.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post(&format!("{path}/restore"), &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["archived_at"].is_null());
}

#[tokio::test]
async fn products_filter_sort_and_match_free_text_on_sku_and_name() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    for (sku, name, price, cur, active) in [
        ("SUP-100", "Support plan", "49.90", "EUR", true),
        ("SUP-200", "Premium support", "199", "EUR", true),
        ("TRN-1", "Training day", "950", "USD", false),
    ] {
        let (s, v) = app
            .post(
                "/api/v1/products",
                &a.token,
                json!({"sku": sku, "name": name, "unit_price": price, "currency": cur, "active": active}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = app
        .get(
            "/api/v1/products?unit_price[gte]=100&sort=-unit_price",
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        names(&v),
        ["TRN-1", "SUP-200"],
        "decimal order, not text order"
    );
    let (_, v) = app
        .get(
            "/api/v1/products?active=true&currency=EUR&sort=sku",
            &a.token,
        )
        .await;
    assert_eq!(names(&v), ["SUP-100", "SUP-200"]);
    // Free text: a sku fragment, a name word (3+ characters and shorter).
    let (_, v) = app.get("/api/v1/products?q=sup-2&sort=sku", &a.token).await;
    assert_eq!(names(&v), ["SUP-200"]);
    let (_, v) = app
        .get("/api/v1/products?q=support&sort=sku", &a.token)
        .await;
    assert_eq!(names(&v), ["SUP-100", "SUP-200"]);
    let (_, v) = app.get("/api/v1/products?q=da&sort=sku", &a.token).await;
    assert_eq!(names(&v), ["TRN-1"]);
    let (s, v) = app
        .post(
            "/api/v1/products/search",
            &a.token,
            json!({"filter": {"field": "sku", "op": "starts_with", "value": "SUP"}, "q": "premium"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(names(&v), ["SUP-200"]);
    let (s, v) = app.get("/api/v1/products?colour=red", &a.token).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn batch_upserts_products_by_sku_and_custom_fields_apply() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (s, v) = app
        .post(
            "/api/v1/fields/products",
            &a.token,
            json!({"name": "family", "label": "Family", "type": "select", "options": ["services", "licences"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/products/batch",
            &a.token,
            json!({"operations": [
                {"op": "upsert", "data": {"sku": "SUP-100", "name": "Support", "unit_price": "10", "currency": "EUR", "custom": {"family": "services"}}},
                {"op": "upsert", "match_on": "sku", "data": {"sku": "SUP-100", "unit_price": "12.5"}},
                {"op": "upsert", "data": {"sku": "LIC-1", "name": "Licence", "unit_price": "100", "currency": "EUR", "custom": {"family": "hardware"}}},
                {"op": "upsert", "match_on": "email", "data": {"sku": "X"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    let statuses: Vec<i64> = r.iter().map(|x| x["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [201, 200, 422, 422]);
    assert_eq!(r[1]["data"]["id"], r[0]["data"]["id"], "matched by sku");
    assert_eq!(r[1]["data"]["unit_price"], "12.5");
    assert_eq!(r[1]["data"]["name"], "Support");
    assert_eq!(r[2]["error"]["errors"][0]["field"], "custom.family");
    assert_eq!(r[3]["error"]["errors"][0]["field"], "match_on");
    let (_, v) = app
        .get("/api/v1/products?custom.family=services", &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn price_books_hold_one_default_per_currency_and_prices_per_product() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let (_, product) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "SUP-100", "name": "Support", "unit_price": "49.90", "currency": "EUR"}),
        )
        .await;
    let pid = product["id"].as_str().unwrap().to_string();
    let (s, book, h) = app
        .call(
            Method::POST,
            "/api/v1/price-books",
            Some(&a.token),
            Some(json!({"name": "Standard EUR", "currency": "EUR", "is_default": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{book}");
    assert_eq!(h["etag"], "\"1\"");
    let bid = book["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .post(
            "/api/v1/price-books",
            &a.token,
            json!({"name": "Second EUR", "currency": "EUR", "is_default": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["existing_id"], bid.as_str());
    let (s, usd) = app
        .post(
            "/api/v1/price-books",
            &a.token,
            json!({"name": "Standard USD", "currency": "USD", "is_default": true}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "another currency has its own default"
    );
    let (_, v) = app
        .get(
            "/api/v1/price-books?is_default=true&sort=currency",
            &a.token,
        )
        .await;
    assert_eq!(
        ids(&v),
        [bid.clone(), usd["id"].as_str().unwrap().to_string()]
    );
    let (s, _) = app.get("/api/v1/price-books?q=standard", &a.token).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no free text on price books"
    );

    // Prices: upsert, idempotent, list, delete.
    let price_path = format!("/api/v1/price-books/{bid}/prices/{pid}");
    let put = |body: Value| {
        let app = &app;
        let path = price_path.clone();
        let token = a.token.clone();
        async move {
            let (s, v, _) = app.call(Method::PUT, &path, Some(&token), Some(body)).await;
            (s, v)
        }
    };
    let (s, v) = put(json!({"unit_price": "44.90"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["unit_price"], "44.9");
    assert_eq!(v["currency"], "EUR");
    let (s, _) = put(json!({"unit_price": "44.9"})).await;
    assert_eq!(s, StatusCode::OK, "the same price again changes nothing");
    let (s, v) = put(json!({"unit_price": "39"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["unit_price"], "39");
    let (s, v) = put(json!({"unit_price": "-3"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["field"], "unit_price");
    let (s, v) = app
        .get(
            &format!("/api/v1/price-books/{bid}/prices?limit=1"),
            &a.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"][0]["product_id"], pid.as_str());
    assert_eq!(v["data"][0]["unit_price"], "39");
    assert!(v["next_cursor"].is_null());
    let (s, _, _) = app
        .call(Method::DELETE, &price_path, Some(&a.token), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = app
        .call(Method::DELETE, &price_path, Some(&a.token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = app
        .get(&format!("/api/v1/price-books/{bid}/prices"), &a.token)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);

    // The change feed has the catalogue's events.
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
            "product.created",
            "price_book.created",
            "price_book.created",
            "price_book.price_set",
            "price_book.price_set",
            "price_book.price_removed",
        ]
    );
}

#[tokio::test]
async fn the_catalogue_is_private_to_its_workspace_and_written_by_managers() {
    let app = TestApp::spawn().await;
    let a = app.workspace("Acme").await;
    let b = app.workspace("Beta").await;
    let (_, mine) = app
        .post(
            "/api/v1/products",
            &a.token,
            json!({"sku": "SUP-100", "name": "Support", "unit_price": "1", "currency": "EUR"}),
        )
        .await;
    let (_, theirs) = app
        .post(
            "/api/v1/products",
            &b.token,
            json!({"sku": "SUP-100", "name": "Same sku elsewhere", "unit_price": "2", "currency": "EUR"}),
        )
        .await;
    assert!(
        theirs["id"].is_string(),
        "a sku is unique per workspace only"
    );
    let (_, book) = app
        .post(
            "/api/v1/price-books",
            &a.token,
            json!({"name": "EUR", "currency": "EUR"}),
        )
        .await;
    let bid = book["id"].as_str().unwrap();
    let mine_path = format!("/api/v1/products/{}", mine["id"].as_str().unwrap());
    let (s, _) = app.get(&mine_path, &b.token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .patch(&mine_path, &b.token, json!({"name": "Stolen"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get(&format!("/api/v1/price-books/{bid}"), &b.token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get(&format!("/api/v1/price-books/{bid}/prices"), &b.token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another workspace's product in my book: 404.
    let (s, _, _) = app
        .call(
            Method::PUT,
            &format!(
                "/api/v1/price-books/{bid}/prices/{}",
                theirs["id"].as_str().unwrap()
            ),
            Some(&a.token),
            Some(json!({"unit_price": "1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v1/products", &b.token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Roles: everyone reads, admins and managers write.
    let viewer = app.user(&a, "viewer").await;
    let sales = app.user(&a, "sales").await;
    let manager = app.user(&a, "manager").await;
    let (s, _) = app.get(&mine_path, &viewer.token).await;
    assert_eq!(s, StatusCode::OK);
    for who in [&viewer, &sales] {
        let (s, v) = app
            .post(
                "/api/v1/products",
                &who.token,
                json!({"sku": "NEW", "name": "New", "unit_price": "1", "currency": "EUR"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["missing_permission"], "products:write");
        let (s, _, _) = app
            .call(
                Method::PUT,
                &format!(
                    "/api/v1/price-books/{bid}/prices/{}",
                    mine["id"].as_str().unwrap()
                ),
                Some(&who.token),
                Some(json!({"unit_price": "1"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = app
        .patch(&mine_path, &manager.token, json!({"name": "Support+"}))
        .await;
    assert_eq!(s, StatusCode::OK);
}
