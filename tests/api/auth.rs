//! Authentication, scopes, error shapes for unknown paths, and a broken store.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    a_request_without_a_token_is_401,
    an_unknown_or_malformed_token_is_401,
    a_revoked_token_is_401,
    a_read_only_token_reads_but_cannot_write,
    a_write_only_token_cannot_read,
    ping_and_me_describe_the_token,
    unknown_paths_and_methods_answer_in_vantage_shape,
    a_broken_store_answers_500_without_details,
);

async fn a_request_without_a_token_is_401(app: TestApp) {
    let res = app.send(Method::GET, "/v2/billing_rules", None, None).await;
    assert_eq!(res.status, 401);
    assert!(res.error_text().contains("Bearer"), "{}", res.text);
    let res = app.send(Method::POST, "/v2/billing_rules", None, Some("{}".into())).await;
    assert_eq!(res.status, 401);
}

async fn an_unknown_or_malformed_token_is_401(app: TestApp) {
    let res = app.send(Method::GET, "/v2/ping", Some("cstd_00000000000000000000000000000000"), None).await;
    assert_eq!(res.status, 401);
    assert!(res.error_text().contains("invalid or has been revoked"), "{}", res.text);
    let res = app
        .client
        .get(format!("{}/v2/ping", app.base_url))
        .header("authorization", format!("Basic {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

async fn a_revoked_token_is_401(app: TestApp) {
    let token = app.mint(&app.account, "read,write").await;
    assert_eq!(app.send(Method::GET, "/v2/ping", Some(&token), None).await.status, 200);
    let hash = costd::model::token::secret_hash(&token);
    assert!(app.store.revoke_api_token(&hash).await.unwrap().is_some());
    // A running server trusts a token it just checked for at most the auth cache's TTL.
    tokio::time::sleep(costd::http::DEFAULT_AUTH_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert_eq!(app.send(Method::GET, "/v2/ping", Some(&token), None).await.status, 401);
    // The account's other tokens still work.
    assert_eq!(app.get("/v2/ping").await.status, 200);
}

async fn a_read_only_token_reads_but_cannot_write(app: TestApp) {
    let rule = app.create_rule(json!({"type": "exclusion", "title": "x", "charge_type": "Tax"})).await;
    let path = format!("/v2/billing_rules/{}", rule["token"].as_str().unwrap());
    let read_only = app.mint(&app.account, "read").await;

    assert_eq!(app.send(Method::GET, &path, Some(&read_only), None).await.status, 200);
    assert_eq!(app.send(Method::GET, "/v2/billing_rules", Some(&read_only), None).await.status, 200);
    let body = Some(json!({"type": "exclusion", "title": "y", "charge_type": "Tax"}).to_string());
    for (method, target) in
        [(Method::POST, "/v2/billing_rules"), (Method::PUT, path.as_str()), (Method::DELETE, path.as_str())]
    {
        let res = app.send(method.clone(), target, Some(&read_only), body.clone()).await;
        assert_eq!(res.status, 403, "{method} {target}: {}", res.text);
        assert!(res.error_text().contains("write scope"), "{}", res.text);
    }
    assert_eq!(app.get(&path).await.body, rule, "nothing changed");
}

async fn a_write_only_token_cannot_read(app: TestApp) {
    let write_only = app.mint(&app.account, "write").await;
    let res = app.send(Method::GET, "/v2/billing_rules", Some(&write_only), None).await;
    assert_eq!(res.status, 403);
    let body = Some(json!({"type": "exclusion", "title": "y", "charge_type": "Tax"}).to_string());
    assert_eq!(app.send(Method::POST, "/v2/billing_rules", Some(&write_only), body).await.status, 201);
}

async fn ping_and_me_describe_the_token(app: TestApp) {
    let ping = app.get("/v2/ping").await;
    assert_eq!(ping.status, 200);
    let me = app.get("/v2/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["bearer_token"]["scope"], json!(["read", "write"]));
    assert_eq!(me.body["bearer_token"]["description"], "test token");
    let workspaces = me.body["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1);
    assert_eq!(workspaces[0]["name"], "Default");
    assert_eq!(me.body["default_workspace_token"], workspaces[0]["token"]);
}

async fn unknown_paths_and_methods_answer_in_vantage_shape(app: TestApp) {
    let res = app.get("/v2/nothing_here").await;
    assert_eq!(res.status, 404);
    res.errors();
    let res = app.send(Method::PATCH, "/v2/billing_rules", Some(&app.token), Some("{}".into())).await;
    assert_eq!(res.status, 405);
    res.errors();
}

async fn a_broken_store_answers_500_without_details(app: TestApp) {
    app.store.close().await;
    let res = app.get("/v2/billing_rules").await;
    assert_eq!(res.status, 500);
    assert_eq!(res.errors(), vec!["internal error"]);
}
