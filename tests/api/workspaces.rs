//! `/v2/workspaces` over real HTTP.

use serde_json::json;

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    a_workspace_can_be_created_listed_updated_and_deleted,
    bad_workspace_input_is_400_naming_the_field,
    the_last_workspace_cannot_be_deleted,
    another_accounts_workspace_answers_404,
);

async fn a_workspace_can_be_created_listed_updated_and_deleted(app: TestApp) {
    let res = app
        .post(
            "/v2/workspaces",
            json!({"name": "Ellingson Mineral Corporation", "currency": "jpy",
        "exchange_rate_date": "end_of_billing_period_rate"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let ws = res.body;
    assert!(ws["token"].as_str().unwrap().starts_with("wrkspc_"));
    assert_eq!(ws["currency"], "JPY");
    assert_eq!(ws["enable_currency_conversion"], true);
    assert_eq!(ws["exchange_rate_date"], "end_of_billing_period_rate");
    let path = format!("/v2/workspaces/{}", ws["token"].as_str().unwrap());

    let list = app.get("/v2/workspaces").await;
    assert_eq!(list.body["workspaces"].as_array().unwrap().len(), 2);
    let found = app.get("/v2/workspaces?q=ellingson").await;
    assert_eq!(found.body["workspaces"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["workspaces"][0]["token"], ws["token"]);
    let none = app.get("/v2/workspaces?q=%25").await;
    assert_eq!(none.body["workspaces"].as_array().unwrap().len(), 0, "% is matched literally");

    let updated = app.put(&path, json!({"name": "My Workspace (Edited)", "currency": "EUR"})).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["name"], "My Workspace (Edited)");
    assert_eq!(updated.body["currency"], "EUR");
    assert_eq!(updated.body["exchange_rate_date"], "end_of_billing_period_rate");
    assert_eq!(app.get(&path).await.body, updated.body);

    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.get(&path).await.status, 404);
}

async fn bad_workspace_input_is_400_naming_the_field(app: TestApp) {
    for (body, expected) in [
        (json!({}), "name is required"),
        (json!({"name": ""}), "name must not be blank"),
        (json!({"name": "x", "currency": "dollars"}), "currency must be a three-letter"),
        (json!({"name": "x", "exchange_rate_date": "weekly"}), "exchange_rate_date must be"),
        (json!({"name": "x", "enable_currency_conversion": "yes"}), "enable_currency_conversion: invalid type"),
    ] {
        let res = app.post("/v2/workspaces", body.clone()).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text);
        assert!(res.error_text().contains(expected), "{body}: expected {expected:?} in {}", res.text);
    }
}

async fn the_last_workspace_cannot_be_deleted(app: TestApp) {
    let me = app.get("/v2/me").await;
    let token = me.body["default_workspace_token"].as_str().unwrap().to_string();
    let res = app.delete(&format!("/v2/workspaces/{token}")).await;
    assert_eq!(res.status, 422);
    assert!(res.error_text().contains("at least one workspace"), "{}", res.text);
}

async fn another_accounts_workspace_answers_404(app: TestApp) {
    let (_, other) = app.other_account().await;
    let ws = app.post("/v2/workspaces", json!({"name": "Private"})).await.body;
    let path = format!("/v2/workspaces/{}", ws["token"].as_str().unwrap());
    for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let body = (method == reqwest::Method::PUT).then(|| r#"{"name":"mine now"}"#.to_string());
        assert_eq!(app.send(method.clone(), &path, Some(&other), body).await.status, 404, "{method}");
    }
    let theirs = app.send(reqwest::Method::GET, "/v2/workspaces", Some(&other), None).await;
    let names: Vec<&str> =
        theirs.body["workspaces"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Default"]);
}
