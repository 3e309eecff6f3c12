//! `/v2/managed_accounts` over real HTTP.

use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    a_managed_account_is_created_listed_updated_and_deleted,
    rules_out_of_group_order_are_400_naming_the_token,
    apply_to_all_rules_join_every_managed_account_at_their_group_end,
    deleting_a_rule_detaches_it_everywhere,
    unknown_and_foreign_tokens_are_refused,
    a_managed_account_cannot_manage_accounts,
);

fn tokens(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

async fn rule(app: &TestApp, body: Value) -> String {
    app.create_rule(body).await["token"].as_str().unwrap().to_string()
}

async fn exclusion(app: &TestApp) -> String {
    rule(app, json!({"type": "exclusion", "title": "no tax", "charge_type": "Tax"})).await
}

async fn credit(app: &TestApp) -> String {
    rule(
        app,
        json!({"type": "credit", "title": "credit", "service": "Support", "category": "Credit",
        "sub_category": "Monthly", "amount": 10, "start_date": "2024-07-01"}),
    )
    .await
}

async fn a_managed_account_is_created_listed_updated_and_deleted(app: TestApp) {
    let integration = app.create_integration("AWS").await["token"].as_str().unwrap().to_string();
    let (ex, cr) = (exclusion(&app).await, credit(&app).await);
    let res = app
        .post(
            "/v2/managed_accounts",
            json!({"name": "Acme", "contact_email": "ops@acme.com",
            "access_credential_tokens": [integration], "billing_rule_tokens": [ex, cr]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let m = res.body;
    let token = m["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("acct_"));
    assert_eq!(m["parent_account_token"], app.account.token.as_str());
    assert_eq!(m["contact_email"], "ops@acme.com");
    assert_eq!(tokens(&m["access_credential_tokens"]), vec![integration.clone()]);
    assert_eq!(tokens(&m["billing_rule_tokens"]), vec![ex.clone(), cr.clone()]);

    let list = app.get("/v2/managed_accounts").await;
    assert_eq!(list.body["managed_accounts"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/v2/managed_accounts/{token}")).await.body, m);

    let updated = app
        .put(&format!("/v2/managed_accounts/{token}"), json!({"name": "Acme Inc", "billing_rule_tokens": [cr]}))
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["name"], "Acme Inc");
    assert_eq!(tokens(&updated.body["billing_rule_tokens"]), vec![cr.clone()]);
    assert_eq!(tokens(&updated.body["access_credential_tokens"]), vec![integration], "unchanged when not sent");

    assert_eq!(app.delete(&format!("/v2/managed_accounts/{token}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/managed_accounts/{token}")).await.status, 404);
}

async fn rules_out_of_group_order_are_400_naming_the_token(app: TestApp) {
    let (ex, cr) = (exclusion(&app).await, credit(&app).await);
    let res = app
        .post(
            "/v2/managed_accounts",
            json!({"name": "Acme", "contact_email": "ops@acme.com", "billing_rule_tokens": [cr, ex]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains(&format!("{ex} is a transform")), "{}", res.text);
}

async fn apply_to_all_rules_join_every_managed_account_at_their_group_end(app: TestApp) {
    let (ex, cr) = (exclusion(&app).await, credit(&app).await);
    let m = app
        .create_managed_account(
            json!({"name": "Acme", "contact_email": "ops@acme.com", "billing_rule_tokens": [ex, cr]}),
        )
        .await;
    let everywhere =
        rule(&app, json!({"type": "adjustment", "title": "markup", "percentage": 110, "apply_to_all": true})).await;
    let got = app.get(&format!("/v2/managed_accounts/{}", m["token"].as_str().unwrap())).await;
    assert_eq!(tokens(&got.body["billing_rule_tokens"]), vec![ex.clone(), everywhere.clone(), cr.clone()]);
    let later = app.post("/v2/managed_accounts", json!({"name": "Later", "contact_email": "a@later.io"})).await;
    assert_eq!(tokens(&later.body["billing_rule_tokens"]), vec![everywhere]);
}

async fn deleting_a_rule_detaches_it_everywhere(app: TestApp) {
    let (ex, cr) = (exclusion(&app).await, credit(&app).await);
    let m = app
        .create_managed_account(
            json!({"name": "Acme", "contact_email": "ops@acme.com", "billing_rule_tokens": [ex, cr]}),
        )
        .await;
    assert_eq!(app.delete(&format!("/v2/billing_rules/{ex}")).await.status, 204);
    let got = app.get(&format!("/v2/managed_accounts/{}", m["token"].as_str().unwrap())).await;
    assert_eq!(tokens(&got.body["billing_rule_tokens"]), vec![cr]);
}

async fn unknown_and_foreign_tokens_are_refused(app: TestApp) {
    let (other_account, other) = app.other_account().await;
    let _ = other_account;
    let theirs = app
        .send(
            reqwest::Method::POST,
            "/v2/billing_rules",
            Some(&other),
            Some(json!({"type": "exclusion", "title": "x", "charge_type": "Tax"}).to_string()),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .post(
            "/v2/managed_accounts",
            json!({"name": "Acme", "contact_email": "ops@acme.com", "billing_rule_tokens": [theirs]}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("no billing rule"), "{}", res.text);
    let res = app
        .post("/v2/managed_accounts", json!({"name": "Acme", "contact_email": "ops@acme.com", "access_credential_tokens": ["accss_crdntl_0000000000000000"]}))
        .await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("no integration"), "{}", res.text);
    assert_eq!(app.post("/v2/managed_accounts", json!({"name": "Acme", "contact_email": "nope"})).await.status, 400);

    let mine = app.post("/v2/managed_accounts", json!({"name": "Mine", "contact_email": "a@b.co"})).await.body;
    let path = format!("/v2/managed_accounts/{}", mine["token"].as_str().unwrap());
    assert_eq!(app.send(reqwest::Method::GET, &path, Some(&other), None).await.status, 404);
    assert_eq!(app.send(reqwest::Method::DELETE, &path, Some(&other), None).await.status, 404);
}

async fn a_managed_account_cannot_manage_accounts(app: TestApp) {
    let m = app.create_managed_account(json!({"name": "Acme", "contact_email": "ops@acme.com"})).await;
    let token = app.mint_for(m["token"].as_str().unwrap(), "read,write").await;
    let res = app
        .send(
            reqwest::Method::POST,
            "/v2/managed_accounts",
            Some(&token),
            Some(json!({"name": "Sub", "contact_email": "a@b.co"}).to_string()),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.text);
}
