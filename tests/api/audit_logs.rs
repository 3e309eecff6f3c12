//! The audit log over real HTTP (`/v2/audit_logs`): every write through the API or the console is an entry
//! with who, through what, the object and the values it changed; reads, refused writes and reads sent by
//! POST are not; entries are the account's own, filtered as Vantage's API filters them, and never changed.

use reqwest::header::COOKIE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    every_write_is_an_entry_with_who_what_and_the_values_it_changed,
    the_log_is_filtered_the_accounts_own_and_never_changed,
    a_console_write_is_an_entry_from_the_console,
);

async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app.get(&format!("/v2/audit_logs{query}")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["audit_logs"].as_array().unwrap().clone()
}

async fn every_write_is_an_entry_with_who_what_and_the_values_it_changed(app: TestApp) {
    let res = app.post("/v2/billing_rules", json!({"type": "adjustment", "title": "Discount", "percentage": 90})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let rule = res.body["token"].as_str().unwrap().to_string();
    let res = app.put(&format!("/v2/billing_rules/{rule}"), json!({"title": "Partner discount"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // Neither a refused write, nor a read, nor a read sent by POST is an entry.
    assert_eq!(app.put(&format!("/v2/billing_rules/{rule}"), json!({"percentage": "lots"})).await.status / 100, 4);
    assert_eq!(app.get(&format!("/v2/billing_rules/{rule}")).await.status, 200);
    let export =
        app.post("/v2/costs/data_exports", json!({"start_date": "2024-07-01", "end_date": "2024-07-31"})).await;
    assert!(export.status < 300, "{}", export.text);
    assert_eq!(app.delete(&format!("/v2/billing_rules/{rule}")).await.status, 204);

    let log = entries(&app, "").await;
    let events: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["record_destroyed", "record_updated", "record_created"], "{log:#?}");
    for e in &log {
        assert_eq!(e["object_type"], "BillingRule");
        assert_eq!(e["object_token"], rule.as_str());
        assert_eq!(e["source"], "api");
        assert_eq!(e["user"], "test token", "the token's description names who");
        assert!(e["user_token"].as_str().unwrap().starts_with("tkn_"), "{e}");
        assert!(e["token"].as_str().unwrap().starts_with("adt_lg_"), "{e}");
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let (destroyed, updated, created) = (&log[0], &log[1], &log[2]);
    assert_eq!(created["object_title"], "Discount");
    assert_eq!(created["changed_values"]["title"], json!([null, "Discount"]));
    assert_eq!(updated["object_title"], "Partner discount");
    assert_eq!(updated["changed_values"]["title"], json!(["Discount", "Partner discount"]));
    assert!(updated["changed_values"].get("percentage").is_none(), "{updated}");
    assert_eq!(updated["unchanged_values"]["token"], rule.as_str());
    assert_eq!(destroyed["object_title"], "Partner discount", "a deleted object keeps its last title");
    assert_eq!(destroyed["changed_values"]["title"], json!(["Partner discount", null]));

    // A write under an object (a tag's value) is an update of that object, with its values before and after.
    let tag = app.post("/v2/virtual_tag_configs", json!({"key": "team", "values": []})).await.body;
    let token = tag["token"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v2/virtual_tag_configs/{token}/values"),
            json!({"filter": "costs.service = 'S'", "name": "web"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let log = entries(&app, &format!("?object_token={token}")).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["event"], "record_updated");
    assert_eq!(log[0]["object_type"], "VirtualTag");
    assert_eq!(log[0]["object_title"], "team");
    let values = &log[0]["changed_values"]["values"];
    assert_eq!(values[0], json!([]));
    assert_eq!(values[1][0]["name"], "web", "{values}");
}

async fn the_log_is_filtered_the_accounts_own_and_never_changed(app: TestApp) {
    let rule = app.post("/v2/billing_rules", json!({"type": "adjustment", "title": "A", "percentage": 50})).await.body;
    let rule = rule["token"].as_str().unwrap().to_string();
    assert_eq!(app.put(&format!("/v2/billing_rules/{rule}"), json!({"title": "B"})).await.status, 200);
    let res = app.post("/v2/workspaces", json!({"name": "Finance"})).await;
    assert_eq!(res.status, 201, "{}", res.text);

    assert_eq!(entries(&app, "").await.len(), 3);
    assert_eq!(entries(&app, "?action=update").await.len(), 1);
    assert_eq!(entries(&app, "?action=create&object_type=billing_rule").await.len(), 1);
    assert_eq!(entries(&app, "?object_type=Workspace").await[0]["object_title"], "Finance");
    assert_eq!(entries(&app, "?object_name=fin").await.len(), 1);
    assert_eq!(entries(&app, "?source=console").await.len(), 0);
    let today = chrono::Utc::now().date_naive();
    assert_eq!(entries(&app, &format!("?start_date={today}&end_date={today}")).await.len(), 3);
    assert_eq!(entries(&app, &format!("?start_date={}", today.succ_opt().unwrap())).await.len(), 0);
    let paged = app.get("/v2/audit_logs?limit=2").await;
    assert_eq!(paged.body["audit_logs"].as_array().unwrap().len(), 2);
    assert!(paged.body["links"]["next"].is_string(), "{}", paged.text);

    let res = app.get("/v2/audit_logs?action=rename&start_date=soon").await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("action") && res.error_text().contains("start_date"), "{}", res.text);

    // One entry by its token; another account sees none of them.
    let first = entries(&app, "").await[0].clone();
    let path = format!("/v2/audit_logs/{}", first["token"].as_str().unwrap());
    let res = app.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, first);
    let (_, other) = app.other_account().await;
    assert_eq!(app.send(Method::GET, &path, Some(&other), None).await.status, 404);
    let theirs = app.send(Method::GET, "/v2/audit_logs", Some(&other), None).await;
    assert_eq!(theirs.body["audit_logs"], json!([]), "{}", theirs.text);
    // A read-only token reads the log; nobody changes or removes an entry.
    let reader = app.mint(&app.account, "read").await;
    assert_eq!(app.send(Method::GET, "/v2/audit_logs", Some(&reader), None).await.status, 200);
    assert_eq!(app.send(Method::DELETE, &path, Some(&app.token), None).await.status, 405);
    assert_eq!(app.send(Method::PUT, &path, Some(&app.token), Some("{}".into())).await.status, 405);
    assert_eq!(entries(&app, "").await.len(), 3, "reading the log wrote nothing");
}

async fn a_console_write_is_an_entry_from_the_console(app: TestApp) {
    let (cookie, session) = crate::console::sign_in(&app, &app.token).await;
    let res = app
        .client
        .post(format!("{}/v2/billing_rules", app.base_url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", session["csrf_token"].as_str().unwrap())
        .json(&json!({"type": "adjustment", "title": "From the console", "percentage": 95}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let log = entries(&app, "?source=console").await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["object_title"], "From the console");
    assert_eq!(log[0]["user"], "test token");
}
