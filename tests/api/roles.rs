//! Roles over real HTTP (docs/access.md): a token owned by a directory user (`costd token create --user`)
//! may do what the user's role allows and no more, on every operation of the API and in the console.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{on_both_stores, TestApp};
use costd::model::token::Scopes;
use costd::model::user::{NewUser, Role};

on_both_stores!(
    a_viewers_token_can_make_no_write_on_any_route_of_the_api,
    an_editor_cannot_manage_users_or_integrations_and_an_admin_can,
    an_integration_owner_manages_integrations_and_their_costs,
);

/// A read/write token owned by a new directory user with `role`.
async fn token_of(app: &TestApp, role: Role, email: &str) -> String {
    let user = app
        .store
        .create_user(&app.account.token, &NewUser { email: email.into(), name: Some(format!("{role:?}")), role })
        .await
        .unwrap();
    costd::bootstrap::mint_token_of(app.store.as_ref(), &app.account, &user.token, Scopes::READ_WRITE, "a user's")
        .await
        .unwrap()
        .secret
}

async fn a_viewers_token_can_make_no_write_on_any_route_of_the_api(app: TestApp) {
    let viewer = token_of(&app, Role::Viewer, "viewer@example.com").await;
    let rule = app.post("/v2/billing_rules", json!({"type": "adjustment", "title": "A", "percentage": 50})).await;
    let rule = rule.body["token"].as_str().unwrap().to_string();
    let doc = app.send(Method::GET, "/v2/openapi.json", None, None).await.body;
    let param = regex::Regex::new(r"\{[^}]+\}").unwrap();
    // Reads Vantage sends by POST stay reads (the read scope answers them).
    let reads = ["/v2/costs/data_exports", "/v2/unit_costs/data_exports", "/v2/virtual_tag_configs/preview"];
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !["post", "put", "patch", "delete"].contains(&method.as_str())
                || reads.contains(&path.as_str())
                || path.ends_with("/download")
            {
                continue;
            }
            // The real rule where a path names one, so a wrong token is not what refuses the write.
            let concrete = param.replace_all(path, rule.as_str()).to_string();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.send(method.clone(), &concrete, Some(&viewer), Some("{}".into())).await;
            assert_eq!(res.status, 403, "{method} {concrete}: {}", res.text);
            assert!(res.error_text().contains("Viewer"), "{method} {concrete}: {}", res.text);
            walked += 1;
        }
    }
    assert!(walked >= 60, "only {walked} writes walked");
    // The rule is untouched, and the viewer reads what the account has.
    let res = app.send(Method::GET, &format!("/v2/billing_rules/{rule}"), Some(&viewer), None).await;
    assert_eq!((res.status, res.body["title"].as_str()), (200, Some("A")), "{}", res.text);
    assert_eq!(app.send(Method::GET, "/v2/costs", Some(&viewer), None).await.status, 200);
    // The console shows a viewer no forms: its session is read-only.
    let (_, session) = crate::console::sign_in(&app, &viewer).await;
    assert_eq!(session["scope"], json!(["read"]), "{session}");
}

async fn an_editor_cannot_manage_users_or_integrations_and_an_admin_can(app: TestApp) {
    let editor = token_of(&app, Role::Editor, "editor@example.com").await;
    let admin = token_of(&app, Role::Admin, "admin@example.com").await;
    let rule = json!({"type": "adjustment", "title": "Editor's", "percentage": 90}).to_string();
    let res = app.send(Method::POST, "/v2/billing_rules", Some(&editor), Some(rule)).await;
    assert_eq!(res.status, 201, "an editor edits costs' shaping: {}", res.text);
    let integration = json!({"name": "Bills"}).to_string();
    let res =
        app.send(Method::POST, "/v2/integrations/custom_provider", Some(&editor), Some(integration.clone())).await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert!(res.error_text().contains("Editor"), "{}", res.text);
    let res = app.send(Method::POST, "/v2/integrations/custom_provider", Some(&admin), Some(integration)).await;
    assert!(res.status < 300, "an admin manages integrations: {} {}", res.status, res.text);
    let made = res.body["token"].as_str().unwrap().to_string();
    let res = app.send(Method::DELETE, &format!("/v2/integrations/{made}"), Some(&editor), None).await;
    assert_eq!(res.status, 403, "{}", res.text);
    // An account's own token (no user) is bounded by its scopes alone, as before.
    assert_eq!(app.delete(&format!("/v2/integrations/{made}")).await.status, 204);
}

async fn an_integration_owner_manages_integrations_and_their_costs(app: TestApp) {
    let owner = token_of(&app, Role::IntegrationOwner, "integrations@example.com").await;
    let body = json!({"name": "Bills"}).to_string();
    let res = app.send(Method::POST, "/v2/integrations/custom_provider", Some(&owner), Some(body)).await;
    assert!(res.status < 300, "{} {}", res.status, res.text);
    let made = res.body["token"].as_str().unwrap().to_string();
    let rule = json!({"type": "adjustment", "title": "Theirs", "percentage": 90}).to_string();
    assert_eq!(app.send(Method::POST, "/v2/billing_rules", Some(&owner), Some(rule)).await.status, 201);
    let res = app.send(Method::DELETE, &format!("/v2/integrations/{made}"), Some(&owner), None).await;
    assert_eq!(res.status, 204, "{}", res.text);
}
