//! `/v2/billing_rules` over real HTTP: every rule type, updates, bad input, pagination and tenancy.

use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    each_rule_type_is_created_with_vantage_fields,
    a_rule_can_be_read_updated_and_deleted,
    the_type_of_a_rule_cannot_change,
    an_update_that_would_break_the_rule_is_refused_and_changes_nothing,
    missing_fields_for_the_type_are_named,
    malformed_and_mistyped_bodies_answer_400_in_vantage_shape,
    custom_sql_outside_the_grammar_is_refused_when_created_or_updated,
    custom_sql_of_the_wrong_types_is_refused_when_saved_naming_column_and_value,
    lists_page_with_links_and_past_the_end_is_empty,
    another_accounts_rules_answer_404_and_never_list,
    concurrent_creates_lose_no_writes,
);

fn exclusion() -> Value {
    json!({"type": "exclusion", "title": "Exclude RI fees", "charge_type": "Reserved Instance Fees"})
}

async fn each_rule_type_is_created_with_vantage_fields(app: TestApp) {
    let ex = app.create_rule(exclusion()).await;
    assert!(ex["token"].as_str().unwrap().starts_with("bllng_rule_"));
    assert_eq!(ex["type"], "Exclusion");
    assert_eq!(ex["charge_type"], "Reserved Instance Fees");
    assert_eq!(ex["apply_to_all"], false);
    assert_eq!(ex["created_by_token"], app.account.owner_user_token.as_str());
    let created_at = ex["created_at"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(created_at, "%Y-%m-%dT%H:%M:%SZ").is_ok(), "{created_at}");
    for absent in ["amount", "percentage", "service", "sql_query", "start_date", "end_date"] {
        assert!(ex.get(absent).is_none(), "null field {absent} must be omitted: {ex}");
    }

    let adj = app.create_rule(json!({"type": "ADJUSTMENT", "title": "Show 75%", "percentage": 75})).await;
    assert_eq!(adj["type"], "Adjustment");
    assert_eq!(adj["percentage"], "75.0");

    let credit = app
        .create_rule(json!({"type": "credit", "title": "Credit for Data Transfer", "service": "Amazon S3",
            "category": "Data Transfer", "sub_category": "Outbound", "start_period": "2024-05-01", "amount": 300}))
        .await;
    assert_eq!(credit["type"], "Credit");
    assert_eq!(credit["amount"], "300.0");
    assert_eq!(credit["start_period"], "2024-05-01");
    assert_eq!(credit["start_date"], "2024-05-01");

    let charge = app
        .create_rule(json!({"type": "Charge", "title": "MSP fee", "service": "MSP", "category": "Fee",
            "sub_category": "Monthly", "start_date": "2024-06-01T00:00:00Z", "end_date": "2024-12-31",
            "amount": "5000.25", "apply_to_all": true}))
        .await;
    assert_eq!(charge["amount"], "5000.25");
    assert_eq!(charge["start_date"], "2024-06-01");
    assert_eq!(charge["end_date"], "2024-12-31");
    assert_eq!(charge["apply_to_all"], true);

    let sql = "UPDATE costs SET costs.amount = costs.amount * 0.95";
    let custom = app.create_rule(json!({"type": "custom", "title": "5% off", "sql_query": sql})).await;
    assert_eq!(custom["type"], "Custom");
    assert_eq!(custom["sql_query"], sql);

    // Exact decimals: a JSON number with many places keeps every digit.
    let precise = app
        .send(
            reqwest::Method::POST,
            "/v2/billing_rules",
            Some(&app.token),
            Some(
                r#"{"type":"credit","title":"t","service":"s","category":"c","sub_category":"d",
                "start_date":"2024-01-01","amount":0.123456789012345678}"#
                    .into(),
            ),
        )
        .await;
    assert_eq!(precise.status, 201, "{}", precise.text);
    assert_eq!(precise.body["amount"], "0.123456789012345678");
}

async fn a_rule_can_be_read_updated_and_deleted(app: TestApp) {
    let rule = app.create_rule(json!({"type": "adjustment", "title": "Markup", "percentage": "110"})).await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());

    let got = app.get(&path).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, rule);

    let updated = app.put(&path, json!({"title": "Markup (edited)", "percentage": 112.5})).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["title"], "Markup (edited)");
    assert_eq!(updated.body["percentage"], "112.5");
    assert_eq!(updated.body["created_at"], rule["created_at"]);
    assert_eq!(app.get(&path).await.body, updated.body);

    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty(), "a 204 has no body: {:?}", deleted.text);
    assert_eq!(app.get(&path).await.status, 404);
    assert_eq!(app.delete(&path).await.status, 404);
    assert_eq!(app.get("/v2/billing_rules/bllng_rule_0000000000000000").await.status, 404);
}

async fn the_type_of_a_rule_cannot_change(app: TestApp) {
    let rule = app.create_rule(json!({"type": "adjustment", "title": "x", "percentage": 50})).await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());
    let res = app.put(&path, json!({"type": "credit"})).await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("type cannot be changed"), "{}", res.text);
    let same = app.put(&path, json!({"type": "Adjustment", "title": "y"})).await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body["type"], "Adjustment");
}

async fn an_update_that_would_break_the_rule_is_refused_and_changes_nothing(app: TestApp) {
    let rule = app.create_rule(json!({"type": "adjustment", "title": "x", "percentage": 50})).await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());
    let res = app.put(&path, json!({"percentage": -10, "title": "changed"})).await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("percentage must not be negative"), "{}", res.text);
    assert_eq!(app.get(&path).await.body, rule);
}

async fn missing_fields_for_the_type_are_named(app: TestApp) {
    let cases = [
        (json!({"title": "x"}), "type is required"),
        (json!({"type": "exclusion"}), "title is required"),
        (json!({"type": "exclusion", "title": "x"}), "charge_type is required"),
        (json!({"type": "adjustment", "title": "x"}), "percentage is required"),
        (
            json!({"type": "credit", "title": "x", "service": "s", "category": "c", "sub_category": "d",
            "amount": 1}),
            "start_date (or start_period) is required",
        ),
        (json!({"type": "charge", "title": "x", "start_date": "2024-01-01"}), "amount is required"),
        (json!({"type": "custom", "title": "x"}), "sql_query is required"),
        (json!({"type": "rebate", "title": "x"}), "type must be one of"),
    ];
    for (body, expected) in cases {
        let res = app.post("/v2/billing_rules", body.clone()).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text);
        assert!(res.error_text().contains(expected), "{body}: expected {expected:?} in {}", res.text);
    }
    let list = app.get("/v2/billing_rules").await;
    assert_eq!(list.body["billing_rules"].as_array().unwrap().len(), 0, "nothing was stored");
}

async fn malformed_and_mistyped_bodies_answer_400_in_vantage_shape(app: TestApp) {
    let raw = |body: &str| {
        let body = body.to_string();
        let app = &app;
        async move { app.send(reqwest::Method::POST, "/v2/billing_rules", Some(&app.token), Some(body)).await }
    };
    let cases: Vec<(String, &str)> = vec![
        (r#"{"type": "exclusion", "title": "#.into(), "not valid JSON"),
        ("[1, 2]".into(), "must be a JSON object"),
        ("".into(), "must be a JSON object"),
        (r#"{"type": "exclusion", "title": 5, "charge_type": "Tax"}"#.into(), "title: invalid type"),
        (r#"{"type": "exclusion", "title": "x", "charge_type": "Tax", "apply_to_all": "yes"}"#.into(), "apply_to_all"),
        (r#"{"type": "adjustment", "title": "x", "percentage": "abc"}"#.into(), "percentage must be a number"),
        (r#"{"type": "adjustment", "title": "x", "percentage": true}"#.into(), "percentage must be a number"),
        (r#"{"type": "adjustment", "title": "x", "percentage": 100000}"#.into(), "percentage must be at most 1000"),
        (
            r#"{"type": "credit", "title": "x", "service": "s", "category": "c", "sub_category": "d",
            "start_date": "2024-01-01", "amount": 1e30}"#
                .into(),
            "amount",
        ),
        (format!(r#"{{"type": "exclusion", "title": "{}", "charge_type": "Tax"}}"#, "t".repeat(300)), "at most 255"),
        (
            format!(r#"{{"type": "exclusion", "title": "x", "charge_type": "{}"}}"#, "t".repeat(70_000)),
            "larger than the 64 KiB",
        ),
        (
            r#"{"type": "exclusion", "title": "x", "charge_type": "Tax", "start_date": "yesterday"}"#.into(),
            "start_date must be a date",
        ),
    ];
    for (body, expected) in cases {
        let res = raw(&body).await;
        let shown = &body[..body.len().min(80)];
        assert_eq!(res.status, 400, "{shown}: {}", res.text);
        assert!(res.error_text().contains(expected), "{shown}: expected {expected:?} in {}", res.text);
    }
}

async fn custom_sql_outside_the_grammar_is_refused_when_created_or_updated(app: TestApp) {
    let cases = [
        ("UPDATE invoices SET amount = 0", "only the table costs"),
        ("UPDATE costs SET amount = 0; DROP TABLE costs", "DROP statements are not allowed"),
        ("DELETE FROM costs", "DELETE statements are not allowed"),
        ("TRUNCATE costs", "TRUNCATE statements are not allowed"),
        ("UPDATE costs SET amount = 0 -- ; DELETE FROM costs", "comments are not allowed"),
        ("UPDATE costs SET secret = 1", "unknown column secret"),
        ("UPDATE costs SET amount = now()", "function now is not allowed"),
        ("UPDATE costs SET amount = (SELECT 1 FROM accounts)", "subqueries are not allowed"),
        ("UPDATE costs SET", "could not be parsed"),
    ];
    for (sql, expected) in cases {
        let res = app.post("/v2/billing_rules", json!({"type": "custom", "title": "x", "sql_query": sql})).await;
        assert_eq!(res.status, 400, "{sql}: {}", res.text);
        assert!(res.error_text().contains(expected), "{sql}: expected {expected:?} in {}", res.text);
    }
    let rule = app
        .create_rule(json!({"type": "custom", "title": "x", "sql_query": "UPDATE costs SET amount = amount * 2"}))
        .await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());
    let res = app.put(&path, json!({"sql_query": "DROP TABLE costs"})).await;
    assert_eq!(res.status, 400);
    assert_eq!(app.get(&path).await.body["sql_query"], "UPDATE costs SET amount = amount * 2");
}

async fn lists_page_with_links_and_past_the_end_is_empty(app: TestApp) {
    let mut tokens = Vec::new();
    for i in 0..5 {
        let rule = app.create_rule(json!({"type": "exclusion", "title": format!("r{i}"), "charge_type": "Tax"})).await;
        tokens.push(rule["token"].as_str().unwrap().to_string());
    }
    let res = app.get("/v2/billing_rules?limit=2&page=2").await;
    assert_eq!(res.status, 200);
    let listed: Vec<&str> =
        res.body["billing_rules"].as_array().unwrap().iter().map(|r| r["token"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![tokens[2].as_str(), tokens[3].as_str()], "oldest first");
    let links = &res.body["links"];
    let base = format!("{}/v2/billing_rules", app.base_url);
    assert_eq!(links["self"], format!("{base}?limit=2&page=2"));
    assert_eq!(links["first"], format!("{base}?limit=2&page=1"));
    assert_eq!(links["prev"], format!("{base}?limit=2&page=1"));
    assert_eq!(links["next"], format!("{base}?limit=2&page=3"));
    assert_eq!(links["last"], format!("{base}?limit=2&page=3"));

    let past = app.get("/v2/billing_rules?limit=2&page=9").await;
    assert_eq!(past.status, 200);
    assert_eq!(past.body["billing_rules"], json!([]));
    assert_eq!(past.body["links"]["next"], Value::Null);
    assert_eq!(past.body["links"]["prev"], format!("{base}?limit=2&page=8"));

    let all = app.get("/v2/billing_rules").await;
    assert_eq!(all.body["billing_rules"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["links"]["next"], Value::Null);
    assert_eq!(all.body["links"]["prev"], Value::Null);

    for bad in ["?page=0", "?limit=0", "?limit=1001", "?page=abc", "?limit=-1"] {
        let res = app.get(&format!("/v2/billing_rules{bad}")).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        res.errors();
    }
}

async fn another_accounts_rules_answer_404_and_never_list(app: TestApp) {
    let mine = app.create_rule(exclusion()).await;
    let path = format!("/v2/billing_rules/{}", mine["token"].as_str().unwrap());
    let (_, other) = app.other_account().await;

    let send = |m: reqwest::Method, body: Option<String>| {
        let (app, path, other) = (&app, path.clone(), other.clone());
        async move { app.send(m, &path, Some(&other), body).await }
    };
    assert_eq!(send(reqwest::Method::GET, None).await.status, 404);
    assert_eq!(send(reqwest::Method::PUT, Some(r#"{"title":"stolen"}"#.into())).await.status, 404);
    assert_eq!(send(reqwest::Method::DELETE, None).await.status, 404);
    let theirs = app.send(reqwest::Method::GET, "/v2/billing_rules", Some(&other), None).await;
    assert_eq!(theirs.body["billing_rules"], json!([]));

    // Untouched for its owner.
    assert_eq!(app.get(&path).await.body, mine);
}

async fn concurrent_creates_lose_no_writes(app: TestApp) {
    let creates = (0..64).map(|i| {
        let app = &app;
        async move {
            app.post("/v2/billing_rules", json!({"type": "exclusion", "title": format!("r{i}"), "charge_type": "Tax"}))
                .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 64);
    let list = app.get("/v2/billing_rules?limit=1000").await;
    assert_eq!(list.body["billing_rules"].as_array().unwrap().len(), created);
}

async fn custom_sql_of_the_wrong_types_is_refused_when_saved_naming_column_and_value(app: TestApp) {
    for (sql, expected) in [
        ("UPDATE costs SET accrued_at = 'not a date'", "'not a date' is not a date"),
        ("INSERT INTO costs (amount, service) VALUES ('abc', 'x')", "amount is a number, but 'abc' is text"),
        ("UPDATE costs SET amount = COALESCE(amount / 0, 0)", "divides by zero"),
        ("UPDATE costs SET amount = amount * 1e400", "too large"),
        ("UPDATE costs SET amount = amount / usage_amount", "amount can never be NULL"),
        ("UPDATE costs SET service = amount", "service is text, but amount is a number"),
        ("UPDATE costs SET amount = amount WHERE accrued_at > 'tomorrow'", "'tomorrow' is not a date"),
    ] {
        let res = app.post("/v2/billing_rules", json!({"type": "custom", "title": "x", "sql_query": sql})).await;
        assert_eq!(res.status, 400, "{sql}: {}", res.text);
        assert!(res.error_text().contains(expected), "{sql}: expected {expected:?} in {}", res.text);
        assert!(res.error_text().starts_with("sql_query: "), "{}", res.text);
    }
    // An update is checked the same way, and leaves the rule as it was.
    let rule = app
        .create_rule(json!({"type": "custom", "title": "x", "sql_query": "UPDATE costs SET amount = amount * 2"}))
        .await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());
    let res = app.put(&path, json!({"sql_query": "UPDATE costs SET accrued_at = 'soon'"})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(app.get(&path).await.body["sql_query"], "UPDATE costs SET amount = amount * 2");
}
