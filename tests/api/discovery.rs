//! Discovery over real HTTP: `/v2/cost_providers`, `/v2/cost_services`, `/v2/tags`, `/v2/tags/{key}/values`,
//! each for the caller's view (tenant, managed account, workspace), as uploads come and go.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    services_providers_and_tags_list_what_the_uploads_hold,
    discovery_follows_the_callers_view_and_the_live_uploads,
    uploads_from_before_discovery_are_caught_up,
    a_managed_account_sees_the_services_its_rules_leave_it,
    tag_keys_are_hidden_and_preferred_and_me_takes_no_dashboard,
);

const A: &str = r#"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags
Usage,2024-07-01,1,EC2,"{""Team"": ""web"", ""kubernetes.io/cluster"": ""prod""}"
Usage,2024-07-02,1,EC2,"{""Team"": ""web"", ""kubernetes.io/cluster"": ""staging""}"
Usage,2024-07-02,1,S3,"{""Team"": ""Data"", ""Cost Center"": 42}"
Usage,2024-07-03,1,RDS,
"#;
const B: &str = r#"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags
Usage,2024-07-01,1,Lambda,"{""Team"": ""ml"", ""env"": ""prod""}"
"#;

async fn integration(app: &TestApp, name: &str, csv: &str) -> String {
    let token = app.create_integration(name).await["token"].as_str().unwrap().to_string();
    let res = app.upload(&token, "c.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    token
}

fn names(body: &Value, list: &str, field: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

async fn services_providers_and_tags_list_what_the_uploads_hold(app: TestApp) {
    assert_eq!(app.get("/v2/cost_providers").await.body["cost_providers"], json!([]), "no costs, no providers");
    let a = integration(&app, "A", A).await;
    let b = integration(&app, "B", B).await;
    let res = app.get("/v2/cost_providers").await;
    assert_eq!(
        res.body["cost_providers"],
        json!([{"name": "Custom Provider", "key": "custom_provider"}]),
        "{}",
        res.text
    );
    let res = app.get("/v2/cost_services").await;
    assert_eq!(names(&res.body, "cost_services", "name"), ["EC2", "Lambda", "RDS", "S3"]);
    assert_eq!(res.body["cost_services"][0]["provider"], "custom_provider");

    let res = app.get("/v2/tags").await;
    assert_eq!(
        names(&res.body, "tags", "tag_key"),
        ["Cost Center", "Team", "env", "kubernetes.io/cluster"],
        "{}",
        res.text
    );
    let team = &res.body["tags"][1];
    let mut both = vec![format!("custom_provider:{a}"), format!("custom_provider:{b}")];
    both.sort();
    assert_eq!(team["providers"], json!(both), "providers sorted");
    assert_eq!((team["hidden"].clone(), team["preferred"].clone()), (json!(false), json!(false)));
    // Search is case-insensitive; sort either way; pages with links.
    assert_eq!(names(&app.get("/v2/tags?search_query=TEAM").await.body, "tags", "tag_key"), ["Team"]);
    assert_eq!(
        names(&app.get("/v2/tags?sort_direction=desc&limit=2").await.body, "tags", "tag_key"),
        ["kubernetes.io/cluster", "env"]
    );
    let page2 = app.get("/v2/tags?limit=3&page=2").await;
    assert_eq!(names(&page2.body, "tags", "tag_key"), ["kubernetes.io/cluster"]);
    assert!(page2.body["links"]["prev"].is_string() && page2.body["links"]["next"].is_null(), "{}", page2.text);
    // Scoped to one integration's provider key.
    let only_b = app.get(&format!("/v2/tags?providers[]=custom_provider:{b}")).await;
    assert_eq!(names(&only_b.body, "tags", "tag_key"), ["Team", "env"], "{}", only_b.text);

    // Values of any key: a slash, a space, upper case, a number.
    let values = |key: &str| format!("/v2/tags/{}/values", key.replace('/', "%2F").replace(' ', "%20"));
    let res = app.get(&values("kubernetes.io/cluster")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(names(&res.body, "tag_values", "tag_value"), ["prod", "staging"]);
    assert_eq!(res.body["tag_values"][0]["providers"], json!([format!("custom_provider:{a}")]));
    assert_eq!(names(&app.get(&values("Cost Center")).await.body, "tag_values", "tag_value"), ["42"]);
    assert_eq!(names(&app.get(&values("Team")).await.body, "tag_values", "tag_value"), ["Data", "ml", "web"]);
    let res = app.get(&format!("{}?search_query=W&sort_direction=desc", values("Team"))).await;
    assert_eq!(names(&res.body, "tag_values", "tag_value"), ["web"], "{}", res.text);
    assert_eq!(app.get(&values("team")).await.status, 404, "keys are case-sensitive, as in the costs");
    assert_eq!(app.get(&values("nope")).await.status, 404);

    for bad in
        ["/v2/tags?sort_direction=up", "/v2/tags?limit=0", "/v2/tags?providers=aws", "/v2/cost_services?colour=red"]
    {
        let res = app.get(bad).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
    }
}

async fn discovery_follows_the_callers_view_and_the_live_uploads(app: TestApp) {
    let a = integration(&app, "A", A).await;
    let b = integration(&app, "B", B).await;
    // A managed account sees its integrations' tags only.
    let managed = app
        .create_managed_account(json!({"name": "M", "contact_email": "ops@m.io", "access_credential_tokens": [b]}))
        .await;
    let mine = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let res = app.send(Method::GET, "/v2/tags", Some(&mine), None).await;
    assert_eq!(names(&res.body, "tags", "tag_key"), ["Team", "env"], "{}", res.text);
    let res = app.send(Method::GET, "/v2/cost_services", Some(&mine), None).await;
    assert_eq!(names(&res.body, "cost_services", "name"), ["Lambda"]);
    let res = app.send(Method::GET, "/v2/tags/kubernetes.io%2Fcluster/values", Some(&mine), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    // Another tenant sees nothing.
    let (_, other) = app.other_account().await;
    let res = app.send(Method::GET, "/v2/tags", Some(&other), None).await;
    assert_eq!(res.body["tags"], json!([]));
    assert_eq!(app.send(Method::GET, "/v2/cost_services", Some(&other), None).await.body["cost_services"], json!([]));
    // A workspace sees its integrations (and those in none).
    let ws = app.post("/v2/workspaces", json!({"name": "Only A"})).await.body["token"].as_str().unwrap().to_string();
    let res = app
        .put(
            &format!("/v2/integrations/{b}"),
            json!({"workspace_tokens": [app.get("/v2/workspaces").await.body["workspaces"][0]["token"]]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.get(&format!("/v2/cost_services?workspace_token={ws}")).await;
    assert_eq!(names(&res.body, "cost_services", "name"), ["EC2", "RDS", "S3"], "{}", res.text);
    assert_eq!(app.get("/v2/cost_services?workspace_token=wrkspc_0000000000000000").await.status, 404);

    // Replacing A's upload replaces its dimensions; deleting it removes them.
    let res = app
        .upload(
            &a,
            "c.csv",
            b"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-01,1,Glue\n".to_vec(),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(names(&app.get("/v2/cost_services").await.body, "cost_services", "name"), ["Glue", "Lambda"]);
    assert_eq!(names(&app.get("/v2/tags").await.body, "tags", "tag_key"), ["Team", "env"]);
    let upload = app.get(&format!("/v2/integrations/{a}/costs")).await.body["user_costs_uploads"][0]["token"].clone();
    assert_eq!(app.delete(&format!("/v2/integrations/{a}/costs/{}", upload.as_str().unwrap())).await.status, 204);
    assert_eq!(names(&app.get("/v2/cost_services").await.body, "cost_services", "name"), ["Lambda"]);
}

async fn uploads_from_before_discovery_are_caught_up(app: TestApp) {
    let a = integration(&app, "A", A).await;
    let upload = app.get(&format!("/v2/integrations/{a}/costs")).await.body["user_costs_uploads"][0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // As an upload committed before discovery existed: nothing recorded.
    let token = costd::model::token::UploadToken::from(upload);
    app.store.add_upload_dimensions(&token, &Default::default()).await.unwrap();
    assert_eq!(app.get("/v2/cost_services").await.body["cost_services"], json!([]));
    assert_eq!(app.store.uploads_without_dimensions().await.unwrap(), vec![token.clone()]);
    // Start-up's catch-up reads it back from its file.
    assert_eq!(costd::service::discovery::backfill(app.store.as_ref(), &app.files).await.unwrap(), 1);
    assert_eq!(names(&app.get("/v2/cost_services").await.body, "cost_services", "name"), ["EC2", "RDS", "S3"]);
    assert_eq!(names(&app.get("/v2/tags").await.body, "tags", "tag_key").len(), 3);
    assert!(app.store.uploads_without_dimensions().await.unwrap().is_empty());
}

async fn a_managed_account_sees_the_services_its_rules_leave_it(app: TestApp) {
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n\
               Usage,2024-07-01,10,Internal Markup Engine\n\
               Usage,2024-07-02,5,EC2\n\
               Tax,2024-07-03,1,Sales Tax Service\n";
    let token = integration(&app, "AWS", csv).await;
    let rename = app
        .create_rule(json!({"type": "custom", "title": "rename",
            "sql_query": "UPDATE costs SET service = 'Platform' WHERE service = 'Internal Markup Engine'"}))
        .await;
    let hide = app.create_rule(json!({"type": "exclusion", "title": "no tax", "charge_type": "Tax"})).await;
    let managed = app
        .create_managed_account(json!({"name": "Customer", "contact_email": "c@example.com",
            "access_credential_tokens": [token], "billing_rule_tokens": [rename["token"], hide["token"]]}))
        .await;
    let theirs = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let res = app.send(Method::GET, "/v2/cost_services", Some(&theirs), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(names(&res.body, "cost_services", "name"), ["EC2", "Platform"], "{}", res.text);
    // The MSP itself sees the costs as uploaded.
    let res = app.get("/v2/cost_services").await;
    assert_eq!(names(&res.body, "cost_services", "name"), ["EC2", "Internal Markup Engine", "Sales Tax Service"]);
}

async fn tag_keys_are_hidden_and_preferred_and_me_takes_no_dashboard(app: TestApp) {
    integration(&app, "A", A).await;
    let res =
        app.post("/v2/virtual_tag_configs", json!({"key": "owner", "values": [{"filter": "", "name": "x"}]})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let vtag = res.body["token"].as_str().unwrap().to_string();

    // One key, then several (a provider key and a virtual tag's); only what is sent changes.
    let res = app.put("/v2/tags", json!({"tag_key": "Team", "hidden": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["tags"].as_array().unwrap().len(), 1, "{}", res.text);
    assert_eq!(
        (&res.body["tags"][0]["tag_key"], &res.body["tags"][0]["hidden"], &res.body["tags"][0]["preferred"]),
        (&json!("Team"), &json!(true), &json!(false))
    );
    let res = app.put("/v2/tags", json!({"tag_keys": ["Team", "owner"], "preferred": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let flags = |body: &Value| -> Vec<(String, bool, bool)> {
        body["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["tag_key"].as_str().unwrap().to_string(),
                    t["hidden"].as_bool().unwrap(),
                    t["preferred"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(flags(&res.body), vec![("Team".to_string(), true, true), ("owner".to_string(), false, true)]);
    let listed = flags(&app.get("/v2/tags").await.body);
    assert!(
        listed.contains(&("Team".to_string(), true, true))
            && listed.contains(&("Cost Center".to_string(), false, false)),
        "{listed:?}"
    );
    // A virtual tag's flags live in its definition.
    assert_eq!(app.get(&format!("/v2/virtual_tag_configs/{vtag}")).await.body["preferred"], true);

    // Unknown keys and empty changes are refused; nothing changes; a read-only token cannot.
    let res = app.put("/v2/tags", json!({"tag_keys": ["Team", "nope"], "hidden": false})).await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert!(flags(&app.get("/v2/tags").await.body).contains(&("Team".to_string(), true, true)));
    assert_eq!(app.put("/v2/tags", json!({"tag_key": "Team"})).await.status, 400);
    assert_eq!(app.put("/v2/tags", json!({"hidden": true})).await.status, 400);
    let reader = app.mint_for(app.account.token.as_ref(), "read").await;
    let body = json!({"tag_key": "Team", "hidden": false}).to_string();
    assert_eq!(app.send(Method::PUT, "/v2/tags", Some(&reader), Some(body)).await.status, 403);
    // Another account's settings are its own.
    let (_, other) = app.other_account().await;
    let res = app
        .send(Method::PUT, "/v2/tags", Some(&other), Some(json!({"tag_key": "Team", "hidden": true}).to_string()))
        .await;
    assert_eq!(res.status, 404, "it has no costs tagged Team: {}", res.text);

    // PUT /v2/me: no dashboards in costd, so null is the only default.
    let res = app.put("/v2/me", json!({"default_dashboard_token": null})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(
        res.body["default_workspace_token"].is_string() && res.body["default_dashboard_token"].is_null(),
        "{}",
        res.text
    );
    let res = app.put("/v2/me", json!({"default_dashboard_token": "dshbrd_1"})).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("no dashboards"), "{}", res.text);
}
