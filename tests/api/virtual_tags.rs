//! Virtual tags over real HTTP (`/v2/virtual_tag_configs`): saved whole or refused naming the field, and
//! applied wherever a tag is read: groupings, VQL, discovery, managed accounts, with every split exact.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    a_virtual_tag_is_created_read_listed_changed_and_deleted,
    a_bad_virtual_tag_is_refused_naming_the_field_and_nothing_is_saved,
    costs_group_by_a_virtual_tag_and_a_shared_cost_is_split_to_the_last_place,
    a_managed_account_sees_its_msps_virtual_tags_and_its_own_win,
    a_shared_cost_is_split_by_another_cost_and_by_a_metric_month_by_month,
    an_unsaved_or_edited_tag_is_previewed_without_writing_anything,
);

const CSV: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n\
    Usage,2024-07-01,100.00,Support,\n\
    Usage,2024-07-02,0.01,Support,\n\
    Usage,2024-07-03,7.00,Compute,\"{\"\"team\"\": \"\"web\"\"}\"\n\
    Usage,2024-07-20,5.00,Compute,\n\
    Usage,2024-07-04,3.00,Storage,\"{\"\"Team\"\": \"\"ops\"\"}\"\n\
    Usage,2024-07-05,2.00,Network,\n";

fn team_tag() -> Value {
    json!({"key": "team", "overridable": false, "collapsed_tag_keys": [{"key": "Team"}],
    "values": [
        {"filter": "costs.service = 'Support'", "display_name": "Shared support",
         "percentages": [{"value": "web", "pct": 33.333333}, {"value": "data", "pct": 33.333333},
                         {"value": "ops", "pct": 33.333334}]},
        {"filter": "costs.service = 'Compute'", "name": "platform",
         "date_ranges": [{"start_date": "2024-07-10", "end_date": null}]}
    ]})
}

async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v2/virtual_tag_configs", body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

/// (value of `grouping`, amount) per row of `/v2/costs` for July 2024.
async fn costs_by(
    app: &TestApp,
    token: Option<&str>,
    grouping: &str,
    filter: Option<&str>,
) -> (Vec<(String, String)>, String) {
    let mut path = format!("/v2/costs?start_date=2024-07-01&end_date=2024-07-31&date_bin=month&groupings={grouping}");
    if let Some(f) = filter {
        path.push_str(&format!("&filter={}", urlencoding(f)));
    }
    let res = app.send(Method::GET, &path, Some(token.unwrap_or(&app.token)), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut rows: Vec<(String, String)> = res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[grouping].as_str().unwrap_or("(none)").to_string(), r["amount"].as_str().unwrap().to_string()))
        .collect();
    rows.sort();
    (rows, res.body["total_cost"]["amount"].as_str().unwrap().to_string())
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn a_virtual_tag_is_created_read_listed_changed_and_deleted(app: TestApp) {
    let tag = create(&app, team_tag()).await;
    let token = tag["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("vtag_"), "{tag}");
    assert_eq!(tag["key"], "team");
    assert_eq!(tag["overridable"], false);
    assert_eq!(tag["hidden"], false);
    assert_eq!(tag["created_by_token"].as_str().map(|t| !t.is_empty()), Some(true), "{tag}");
    assert_eq!(tag["collapsed_tag_keys"], json!([{"key": "Team", "providers": [], "filter": null}]));
    let split = &tag["values"][0];
    assert!(split["token"].as_str().unwrap().starts_with("vtag_val_"), "{split}");
    assert_eq!(split["name"], Value::Null);
    assert_eq!(split["display_name"], "Shared support");
    // Percentages are exact JSON numbers, digit for digit.
    assert!(
        serde_json::to_string(&split["percentages"]).unwrap().contains(r#""pct":33.333334"#),
        "{}",
        split["percentages"]
    );
    assert_eq!(tag["values"][1]["date_ranges"], json!([{"start_date": "2024-07-10", "end_date": null}]));
    assert_eq!(tag["values"][1]["label_transforms"], json!([]));

    let other = create(&app, json!({"key": "Cost Center", "values": [{"filter": "", "name": "cc-1"}]})).await;
    let res = app.get("/v2/virtual_tag_configs").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let keys: Vec<&str> =
        res.body["virtual_tag_configs"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["team", "Cost Center"], "oldest first");
    let res = app.get("/v2/virtual_tag_configs?q=COST").await;
    assert_eq!(res.body["virtual_tag_configs"].as_array().unwrap().len(), 1, "{}", res.text);
    assert_eq!(app.get(&format!("/v2/virtual_tag_configs/{token}")).await.body, tag);
    let status = app.get(&format!("/v2/virtual_tag_configs/{token}/status")).await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.body["processing"], false);

    // A second tag of the same key conflicts, on create and on rename.
    let res = app.post("/v2/virtual_tag_configs", json!({"key": "team", "values": []})).await;
    assert_eq!(res.status, 409, "{}", res.text);
    let res =
        app.put(&format!("/v2/virtual_tag_configs/{}", other["token"].as_str().unwrap()), json!({"key": "team"})).await;
    assert_eq!(res.status, 409, "{}", res.text);

    // PUT changes what it names and keeps the rest (values keep their tokens).
    let res = app.put(&format!("/v2/virtual_tag_configs/{token}"), json!({"overridable": true, "hidden": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["overridable"], true);
    assert_eq!(res.body["values"], tag["values"]);

    // Vantage's asynchronous update: 202 with a request id whose status is 200 once applied (at once here;
    // Vantage's clients read 200 as done and 404 as not yet), with the tag as it now is.
    let res = app.put(&format!("/v2/virtual_tag_configs/{token}/async"), json!({"hidden": false})).await;
    assert_eq!(res.status, 202, "{}", res.text);
    let request = res.body["request_id"].as_str().unwrap().to_string();
    assert_eq!(res.body["status_url"], format!("/v2/virtual_tag_configs/async/{request}"));
    let res = app.get(&format!("/v2/virtual_tag_configs/async/{request}")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (res.body["status"].as_str(), res.body["virtual_tag_config"]["hidden"].as_bool()),
        (Some("completed"), Some(false))
    );
    let res = app
        .put(&format!("/v2/virtual_tag_configs/{token}/async"), json!({"values": [{"filter": "costs.nope = 1"}]}))
        .await;
    assert_eq!(res.status, 400, "a bad update is refused at once, as PUT refuses it: {}", res.text);
    let (_, stranger) = app.other_account().await;
    let res = app.send(Method::GET, &format!("/v2/virtual_tag_configs/async/{request}"), Some(&stranger), None).await;
    assert_eq!(res.status, 404, "another account's request id: {}", res.text);
    for made_up in ["nothing", "vtag_0000000000000000-1", &format!("{token}-999")] {
        assert_eq!(app.get(&format!("/v2/virtual_tag_configs/async/{made_up}")).await.status, 404, "{made_up}");
    }

    // Values: added last, read, patched in place, deleted.
    let path = format!("/v2/virtual_tag_configs/{token}/values");
    let res = app.post(&path, json!({"filter": "costs.service = 'Network'", "name": "netops"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let value = res.body["token"].as_str().unwrap().to_string();
    let res = app.get(&format!("{path}/{value}")).await;
    assert_eq!(res.body["name"], "netops", "{}", res.text);
    let res = app
        .send(Method::PATCH, &format!("{path}/{value}"), Some(&app.token), Some(r#"{"name": "network"}"#.into()))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (res.body["name"].as_str(), res.body["filter"].as_str()),
        (Some("network"), Some("costs.service = 'Network'"))
    );
    let res = app.get(&format!("/v2/virtual_tag_configs/{token}")).await;
    assert_eq!(res.body["values"].as_array().unwrap().len(), 3);
    assert_eq!(res.body["values"][2]["token"], value.as_str());
    assert_eq!(app.delete(&format!("{path}/{value}")).await.status, 204);
    assert_eq!(app.get(&format!("{path}/{value}")).await.status, 404);
    assert_eq!(app.delete(&format!("{path}/{value}")).await.status, 404);

    // Another account sees none of it.
    let (_, theirs) = app.other_account().await;
    let res = app.send(Method::GET, &format!("/v2/virtual_tag_configs/{token}"), Some(&theirs), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    let res = app.send(Method::GET, "/v2/virtual_tag_configs", Some(&theirs), None).await;
    assert_eq!(res.body["virtual_tag_configs"], json!([]));

    assert_eq!(app.delete(&format!("/v2/virtual_tag_configs/{token}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/virtual_tag_configs/{token}")).await.status, 404);
    assert_eq!(app.get("/v2/virtual_tag_configs/vtag_nope").await.status, 404);
}

async fn a_bad_virtual_tag_is_refused_naming_the_field_and_nothing_is_saved(app: TestApp) {
    let cases = [
        (json!({"values": []}), "key"),
        (json!({"key": "t", "values": [{"filter": "costs.nope = 1", "name": "x"}]}), "values[0].filter"),
        (
            json!({"key": "t", "values": [{"filter": "", "percentages": [{"value": "a", "pct": 60}, {"value": "b", "pct": 30}]}]}),
            "100",
        ),
        (
            json!({"key": "t", "values": [{"filter": "", "percentages": [{"value": "a", "pct": 150}, {"value": "b", "pct": -50}]}]}),
            "values[0].percentages[0].pct",
        ),
        (
            json!({"key": "t", "values": [{"filter": "", "name": "a"}, {"filter": "", "business_metric_token": "bsnss_mtrc_1"}]}),
            "values[1].business_metric_token",
        ),
        (
            json!({"key": "t", "values": [{"filter": "", "name": "a", "date_ranges": [{"start_date": "2024-13-01", "end_date": null}]}]}),
            "values[0].date_ranges[0].start_date",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/v2/virtual_tag_configs", body.clone()).await;
        assert!(res.status == 400 || res.status == 422, "{body}: {} {}", res.status, res.text);
        assert!(res.error_text().contains(field), "{body}: {} should name {field}", res.error_text());
    }
    assert_eq!(app.get("/v2/virtual_tag_configs").await.body["virtual_tag_configs"], json!([]), "nothing saved");

    // A bad value added or patched leaves the tag as it was.
    let tag = create(&app, team_tag()).await;
    let token = tag["token"].as_str().unwrap();
    let res = app
        .post(&format!("/v2/virtual_tag_configs/{token}/values"), json!({"filter": "costs.service = ", "name": "x"}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let value = tag["values"][0]["token"].as_str().unwrap();
    let body = r#"{"percentages": [{"value": "a", "pct": 99.9999999}]}"#;
    let path = format!("/v2/virtual_tag_configs/{token}/values/{value}");
    let res = app.send(Method::PATCH, &path, Some(&app.token), Some(body.into())).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res =
        app.put(&format!("/v2/virtual_tag_configs/{token}"), json!({"values": [{"filter": "", "name": ""}]})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(app.get(&format!("/v2/virtual_tag_configs/{token}")).await.body, tag);

    // At most 50 tags of 100 values each.
    let many: Vec<Value> = (0..101).map(|i| json!({"filter": "", "name": format!("v{i}")})).collect();
    let res = app.post("/v2/virtual_tag_configs", json!({"key": "many", "values": many})).await;
    assert!(res.status == 400 || res.status == 422, "{}", res.text);
    for i in 1..50 {
        create(&app, json!({"key": format!("k{i}"), "values": []})).await;
    }
    let res = app.post("/v2/virtual_tag_configs", json!({"key": "k50", "values": []})).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("50"), "{}", res.text);
}

async fn costs_group_by_a_virtual_tag_and_a_shared_cost_is_split_to_the_last_place(app: TestApp) {
    let integration = app.create_integration("Bills").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "c.csv", CSV.as_bytes().to_vec()).await.status, 201);
    let (_, total) = costs_by(&app, None, "service", None).await;
    assert_eq!(total, "117.01");
    let tag = create(&app, team_tag()).await;

    let (rows, by_team_total) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(by_team_total, total, "allocation neither makes nor loses money");
    assert_eq!(
        rows,
        vec![
            ("(none)".to_string(), "2.0".to_string()),
            ("data".into(), "33.3366663333".into()),
            ("ops".into(), "36.3366673334".into()),
            ("platform".into(), "5.0".into()),
            ("web".into(), "40.3366663333".into()),
        ],
        "Support split three ways (ops, the last share, takes what rounding leaves), Compute named from the \
         10th, web's own tag and Team collapsed kept (not overridable), Network untagged"
    );
    // VQL sees the virtual tag like a provider tag.
    let (rows, _) = costs_by(&app, None, "service", Some("tags.name = 'team' AND tags.value = 'web'")).await;
    assert_eq!(rows, vec![("Compute".to_string(), "7.0".to_string()), ("Support".into(), "33.3366663333".into())]);
    let (rows, _) = costs_by(&app, None, "service", Some("tags.name = NULL")).await;
    assert_eq!(rows, vec![("Network".to_string(), "2.0".to_string())]);

    // Discovery lists the key and its values.
    let res = app.get("/v2/tags").await;
    let keys: Vec<&str> = res.body["tags"].as_array().unwrap().iter().map(|t| t["tag_key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"team") && keys.contains(&"Team"), "{}", res.text);
    let res = app.get("/v2/tags/team/values").await;
    let values: Vec<&str> = res.body["tag_values"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", res.text))
        .iter()
        .map(|t| t["tag_value"].as_str().unwrap())
        .collect();
    for v in ["data", "ops", "platform", "web"] {
        assert!(values.contains(&v), "{v} in {}", res.text);
    }

    // A change is in the very next query (no stale cached answer): overriding, Compute's web is platform's.
    let token = tag["token"].as_str().unwrap();
    let mut values = tag["values"].clone();
    values[1]["date_ranges"] = json!([]);
    let res =
        app.put(&format!("/v2/virtual_tag_configs/{token}"), json!({"overridable": true, "values": values})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let (rows, after) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(after, total);
    assert!(rows.contains(&("web".to_string(), "33.3366663333".to_string())), "{rows:?}");
    assert!(rows.contains(&("platform".to_string(), "12.0".to_string())), "{rows:?}");
    // Deleted, the provider's tags are back.
    assert_eq!(app.delete(&format!("/v2/virtual_tag_configs/{token}")).await.status, 204);
    let (rows, _) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(rows, vec![("(none)".to_string(), "110.01".to_string()), ("web".into(), "7.0".into())]);
}

async fn a_managed_account_sees_its_msps_virtual_tags_and_its_own_win(app: TestApp) {
    let integration = app.create_integration("Bills").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "c.csv", CSV.as_bytes().to_vec()).await.status, 201);
    create(&app, team_tag()).await;
    create(&app, json!({"key": "tier", "values": [{"filter": "costs.service = 'Support'", "name": "msp"}]})).await;
    let managed = app
        .create_managed_account(json!({"name": "Customer", "contact_email": "c@example.com",
            "access_credential_tokens": [integration]}))
        .await;
    let theirs = app.mint_for(managed["token"].as_str().unwrap(), "read,write").await;
    let (rows, total) = costs_by(&app, Some(&theirs), "tag:team", None).await;
    assert_eq!(total, "117.01");
    assert!(rows.contains(&("data".to_string(), "33.3366663333".to_string())), "the MSP's tag applies: {rows:?}");

    // The customer's own tag of a key replaces the MSP's for its own queries only.
    let res = app
        .send(
            Method::POST,
            "/v2/virtual_tag_configs",
            Some(&theirs),
            Some(json!({"key": "tier", "values": [{"filter": "", "name": "gold"}]}).to_string()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (rows, _) = costs_by(&app, Some(&theirs), "tag:tier", None).await;
    assert_eq!(rows, vec![("gold".to_string(), "117.01".to_string())]);
    let (rows, _) = costs_by(&app, None, "tag:tier", None).await;
    assert_eq!(rows, vec![("(none)".to_string(), "17.0".to_string()), ("msp".into(), "100.01".into())]);
}

async fn a_shared_cost_is_split_by_another_cost_and_by_a_metric_month_by_month(app: TestApp) {
    // Support is shared by Compute's cost per team; Storage by the requests each product served.
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n\
        Usage,2024-07-01,100.00,Support,\n\
        Usage,2024-07-03,6.00,Compute,\"{\"\"team\"\": \"\"web\"\"}\"\n\
        Usage,2024-07-04,2.00,Compute,\"{\"\"team\"\": \"\"data\"\"}\"\n\
        Usage,2024-07-05,1.00,Compute,\"{\"\"team\"\": \"\"data\"\"}\"\n\
        Usage,2024-07-06,10.00,Storage,\n\
        Usage,2024-08-01,50.00,Support,\n";
    let integration = app.create_integration("Bills").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "c.csv", csv.as_bytes().to_vec()).await.status, 201);
    let metric = app
        .post(
            "/v2/business_metrics",
            json!({"title": "Requests", "values": [
        {"date": "2024-07-01", "amount": "1", "label": "api"}, {"date": "2024-07-02", "amount": "2", "label": "app"},
        {"date": "2024-07-02", "amount": "9", "label": "internal"}]}),
        )
        .await;
    assert_eq!(metric.status, 201, "{}", metric.text);
    let metric = metric.body["token"].as_str().unwrap().to_string();
    let tag = create(
        &app,
        json!({"key": "owner", "overridable": true, "values": [
            {"filter": "costs.service = 'Support'", "display_name": "Support",
             "cost_metric": {"filter": "costs.service = 'Compute'", "aggregation": {"tag": "team"}}},
            {"filter": "costs.service = 'Storage'", "business_metric_token": metric, "label_key": "product",
             "label_values": ["api", "app"]}]}),
    )
    .await;
    // Read back as sent.
    assert_eq!(
        tag["values"][0]["cost_metric"],
        json!({"filter": "costs.service = 'Compute'", "aggregation": {"tag": "team"}}),
        "{tag}"
    );
    assert_eq!(
        (tag["values"][1]["business_metric_token"].as_str(), tag["values"][1]["label_values"].clone()),
        (Some(metric.as_str()), json!(["api", "app"]))
    );

    // The customer's queries apply the MSP's tag and read the MSP's metric.
    let managed = app
        .create_managed_account(json!({"name": "Customer", "contact_email": "c@example.com",
            "access_credential_tokens": [integration]}))
        .await;
    let theirs = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    for token in [None, Some(theirs.as_str())] {
        let (rows, total) = costs_by(&app, token, "tag:owner", None).await;
        let row = |v: &str, a: &str| (v.to_string(), a.to_string());
        assert_eq!(
            rows,
            vec![
                // Storage 10.00 by requests: api 1, app 2 (internal is not a label the value counts).
                row("(none)", "9.0"),
                row("api", "3.333333333333333333"),
                row("app", "6.666666666666666667"),
                // Support 100.00 by Compute: web 6, data 3.
                row("data", "33.333333333333333333"),
                row("web", "66.666666666666666667"),
            ],
            "{token:?}"
        );
        assert_eq!(total, "119.0", "allocation makes and loses nothing");
    }
    // Discovery lists the names the splits may give: the basis tag's values, the metric's labels.
    let res = app.get("/v2/tags/owner/values").await;
    let values: Vec<&str> =
        res.body["tag_values"].as_array().unwrap().iter().map(|v| v["tag_value"].as_str().unwrap()).collect();
    for name in ["Support (unallocated)", "api", "app", "data", "unallocated", "web"] {
        assert!(values.contains(&name), "{name} in {values:?}");
    }
    assert!(!values.contains(&"internal"), "a label the value does not count: {values:?}");

    // August has no Compute cost: Support stays whole and says it was not allocated.
    let res = app.get("/v2/costs?start_date=2024-08-01&end_date=2024-08-31&date_bin=month&groupings=tag:owner").await;
    assert_eq!(res.body["costs"][0]["tag:owner"], "Support (unallocated)", "{}", res.text);
    assert_eq!(res.body["costs"][0]["amount"], "50.0", "{}", res.text);

    // A new value of the metric is in the next query (the result cache's key holds the values).
    let form = reqwest::multipart::Form::new()
        .part("csv", reqwest::multipart::Part::bytes(b"2024-07-03,7,api\n".to_vec()).file_name("v.csv"));
    let res = app.send_form(Method::PUT, &format!("/v2/business_metrics/{metric}/values.csv"), &app.token, form).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let (rows, _) = costs_by(&app, None, "tag:owner", Some("costs.service = 'Storage'")).await;
    assert_eq!(rows, vec![("api".to_string(), "8.0".to_string()), ("app".to_string(), "2.0".to_string())]);

    // Label transforms name the shares: the part before the first "p" (api and app become one share, "a",
    // of 8 + 2 = 10 requests; internal has no "p" and stays whole, 9), then a template.
    let tag = create(
        &app,
        json!({"key": "surface", "values": [{"filter": "costs.service = 'Storage'", "business_metric_token": metric,
            "label_transforms": [{"type": "split", "delimiter": "p", "index": 0}, {"type": "format", "template": "svc-{label}"}]}]}),
    )
    .await;
    assert_eq!(
        tag["values"][0]["label_transforms"],
        json!([{"type": "split", "delimiter": "p", "index": 0}, {"type": "format", "template": "svc-{label}"}]),
        "read back as sent: {tag}"
    );
    let (rows, _) = costs_by(&app, None, "tag:surface", Some("costs.service = 'Storage'")).await;
    assert_eq!(
        rows,
        vec![
            // 10.00 × 10/19, rounded once; the last share the rest.
            ("svc-a".to_string(), "5.263157894736842105".to_string()),
            ("svc-internal".to_string(), "4.736842105263157895".to_string())
        ]
    );
    let res = app.get("/v2/tags/surface/values").await;
    let values: Vec<&str> =
        res.body["tag_values"].as_array().unwrap().iter().map(|v| v["tag_value"].as_str().unwrap()).collect();
    assert!(
        values.contains(&"svc-a") && values.contains(&"svc-internal"),
        "discovery lists transformed names: {values:?}"
    );

    // Another tenant's metric (or none) is refused naming the value; nothing is saved.
    let (_, other) = app.other_account().await;
    let body = json!({"key": "theirs", "values": [{"filter": "", "business_metric_token": metric}]});
    let res = app.send(Method::POST, "/v2/virtual_tag_configs", Some(&other), Some(body.to_string())).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("values[0].business_metric_token"), "{}", res.text);
    let res = app.send(Method::GET, "/v2/virtual_tag_configs", Some(&other), None).await;
    assert_eq!(res.body["virtual_tag_configs"], json!([]));
}

async fn an_unsaved_or_edited_tag_is_previewed_without_writing_anything(app: TestApp) {
    let integration = app.create_integration("Bills").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "c.csv", CSV.as_bytes().to_vec()).await.status, 201);
    let window = "start_date=2024-07-01&end_date=2024-07-31&date_bin=month";
    let rows_of = |body: &Value| -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = body["costs"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| {
                (r["tag:team"].as_str().unwrap_or("(none)").to_string(), r["amount"].as_str().unwrap().to_string())
            })
            .collect();
        rows.sort();
        rows
    };

    // A draft gives what a saved tag would, read by a read-only token, and nothing is saved.
    let reader = app.mint(&app.account, "read").await;
    let path = format!("/v2/virtual_tag_configs/preview?{window}");
    let res = app.send(Method::POST, &path, Some(&reader), Some(team_tag().to_string())).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["total_cost"]["amount"], "117.01", "{}", res.text);
    let previewed = rows_of(&res.body);
    assert_eq!(app.get("/v2/virtual_tag_configs").await.body["virtual_tag_configs"], json!([]), "nothing saved");
    let (untagged, _) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(untagged, vec![("(none)".to_string(), "110.01".to_string()), ("web".into(), "7.0".into())]);
    let tag = create(&app, team_tag()).await;
    let (saved, _) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(previewed, saved);

    // An edit is previewed in place of the saved tag; the saved tag's costs stay as they were.
    let mut edited = team_tag();
    edited["values"][0]["percentages"] = json!([{"value": "web", "pct": 50}, {"value": "data", "pct": 50}]);
    let res = app.send(Method::POST, &path, Some(&reader), Some(edited.to_string())).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let rows = rows_of(&res.body);
    assert!(rows.contains(&("data".to_string(), "50.005".to_string())), "{rows:?}");
    assert!(rows.contains(&("ops".to_string(), "3.0".to_string())), "{rows:?}");
    let (after, _) = costs_by(&app, None, "tag:team", None).await;
    assert_eq!(after, saved, "the preview shadows nothing");
    assert_eq!(app.get(&format!("/v2/virtual_tag_configs/{}", tag["token"].as_str().unwrap())).await.body, tag);

    // A bad draft is refused as a create is, naming the value; the window as /v2/costs refuses it.
    let mut bad = team_tag();
    bad["values"][0]["percentages"][0]["pct"] = json!(3);
    let res = app.post(&path, bad).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("values[0].percentages"), "{}", res.text);
    let res = app.post("/v2/virtual_tag_configs/preview?start_date=2024-07-31&end_date=2024-07-01", team_tag()).await;
    assert_eq!(res.status, 400, "{}", res.text);
}
