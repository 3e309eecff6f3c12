//! Cost reports, saved filters and folders over real HTTP, and `GET /v2/costs?cost_report_token=` running
//! a report's query: its filter ANDed with its saved filters and its folder's, every total worked out by
//! hand from the costs below.

use reqwest::Method;
use serde_json::{json, Value};

use crate::costs::arrange;
use crate::helpers::{on_both_stores, Backend, TestApp};

on_both_stores!(
    a_report_runs_its_filter_saved_filters_and_folder_filters_through_costs,
    folders_and_saved_filters_keep_their_references_straight,
    bad_report_bodies_are_400_naming_each_field,
    reports_folders_and_filters_are_the_callers_alone,
    costs_settings_are_honoured_or_refused_by_name,
);

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path, body).await;
    assert_eq!(res.status, 201, "{path}: {}", res.text);
    res.body
}

fn token(v: &Value) -> String {
    v["token"].as_str().unwrap().to_string()
}

async fn total(app: &TestApp, query: &str) -> String {
    let res = app.get(&format!("/v2/costs?{query}")).await;
    assert_eq!(res.status, 200, "{query}: {}", res.text);
    res.body["total_cost"]["amount"].as_str().unwrap().to_string()
}

async fn a_report_runs_its_filter_saved_filters_and_folder_filters_through_costs(app: TestApp) {
    arrange(&app).await;
    let east =
        created(&app, "/v2/saved_filters", json!({"title": "East", "filter": "costs.region = 'us-east-1'"})).await;
    assert_eq!(east["filter"], "costs.region = 'us-east-1'");
    let report = created(
        &app,
        "/v2/cost_reports",
        json!({"title": "EC2", "filter": "costs.service = 'EC2'", "saved_filter_tokens": [token(&east)],
               "start_date": "2024-07-01", "end_date": "2024-08-31", "groupings": "service,region",
               "date_bin": "month", "chart_type": "bar"}),
    )
    .await;
    let r = token(&report);
    assert!(r.starts_with("rprt_"), "{r}");
    assert_eq!(report["date_interval"], "custom");
    assert_eq!((report["start_date"].as_str(), report["end_date"].as_str()), (Some("2024-07-01"), Some("2024-08-31")));
    // Two months before: the previous period of a two-month report.
    assert_eq!(report["previous_period_start_date"], "2024-05-01");
    assert_eq!(report["previous_period_end_date"], "2024-06-30");
    assert_eq!(
        report["settings"],
        json!({"include_credits": false, "include_refunds": false,
        "include_discounts": true, "include_tax": true, "amortize": true, "unallocated": false,
        "aggregate_by": "cost", "show_previous_period": true})
    );
    assert_eq!(report["chart_settings"], json!({"x_axis_dimension": ["date"], "y_axis_dimension": "cost"}));
    assert_eq!(report["business_metric_tokens_with_metadata"], json!([]));
    let filter = app.get(&format!("/v2/saved_filters/{}", token(&east))).await;
    assert_eq!(filter.body["cost_report_tokens"], json!([r.clone()]));
    // The list reads every filter's reports at once: each filter gets its own.
    let unused = created(&app, "/v2/saved_filters", json!({"title": "Unused", "filter": "costs.region = 'x'"})).await;
    let listed = app.get("/v2/saved_filters").await.body["saved_filters"].as_array().unwrap().clone();
    let users = |t: String| listed.iter().find(|f| f["token"] == t.as_str()).unwrap()["cost_report_tokens"].clone();
    assert_eq!((users(token(&east)), users(token(&unused))), (json!([r.clone()]), json!([])));

    // EC2 in us-east-1: 100 + 10 tax.
    let res = app.get(&format!("/v2/costs?cost_report_token={r}")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["total_cost"]["amount"], "110.0");
    let costs = res.body["costs"].as_array().unwrap();
    assert_eq!(costs.len(), 1, "{costs:?}");
    assert_eq!((costs[0]["accrued_at"].as_str(), costs[0]["service"].as_str()), (Some("2024-07-01"), Some("EC2")));
    assert_eq!(costs[0]["region"], "us-east-1");
    // Parameters override the report: one grouping, August only (nothing in us-east-1), and an added filter.
    let res = app.get(&format!("/v2/costs?cost_report_token={r}&groupings=service&date_bin=day")).await;
    assert_eq!(res.body["costs"].as_array().unwrap().len(), 2, "by day: {}", res.text);
    assert!(res.body["costs"][0].get("region").is_none(), "{}", res.text);
    assert_eq!(total(&app, &format!("cost_report_token={r}&start_date=2024-08-01")).await, "0.0");
    assert_eq!(total(&app, &format!("cost_report_token={r}&filter=costs.charge_type%20%3D%20'Usage'")).await, "100.0");

    // Without the saved filter: all EC2, the credit hidden: 100 + 10 + 200.
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"saved_filter_tokens": []})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["filter"], "costs.service = 'EC2'", "an update keeps what it does not name");
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "310.0");
    // In a folder whose saved filter is account 222 (inside a folder with none): 200.
    let acct = created(&app, "/v2/saved_filters", json!({"title": "222", "filter": "costs.account_id = '222'"})).await;
    let outer = created(&app, "/v2/folders", json!({"title": "Teams"})).await;
    let folder = created(
        &app,
        "/v2/folders",
        json!({"title": "Team 222", "parent_folder_token": token(&outer), "saved_filter_tokens": [token(&acct)]}),
    )
    .await;
    assert_eq!(folder["parent_folder_token"], token(&outer).as_str());
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"folder_token": token(&folder)})).await;
    assert_eq!(res.body["folder_token"], token(&folder).as_str(), "{}", res.text);
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "200.0");
    // With credits: 200 − 20. Amortized or not, these rows have no EffectiveCost.
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"settings": {"include_credits": true}})).await;
    assert_eq!(res.body["settings"]["include_credits"], true, "{}", res.text);
    assert_eq!(res.body["settings"]["include_tax"], true, "other settings stay");
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "180.0");
    // The outer folder's filter applies too.
    let res = app.put(&format!("/v2/folders/{}", token(&outer)), json!({"saved_filter_tokens": [token(&east)]})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "0.0");
    // A saved filter's edit shows at once.
    let res =
        app.put(&format!("/v2/saved_filters/{}", token(&east)), json!({"filter": "costs.region = 'eu-west-1'"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "180.0");

    // The report's workspace is the only one a query with it may name.
    let ws = app.post("/v2/workspaces", json!({"name": "Other"})).await.body;
    let res = app.get(&format!("/v2/costs?cost_report_token={r}&workspace_token={}", token(&ws))).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("workspace_token"), "{}", res.text);
    let res = app
        .get(&format!(
            "/v2/costs?cost_report_token={r}&workspace_token={}",
            report["workspace_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // An unknown report is a 404.
    let res = app.get("/v2/costs?cost_report_token=rprt_0000000000000000").await;
    assert_eq!(res.status, 404, "{}", res.text);
    let res = app.get("/v2/costs?cost_report_token=nonsense").await;
    assert_eq!(res.status, 404, "{}", res.text);
}

async fn folders_and_saved_filters_keep_their_references_straight(app: TestApp) {
    let f1 = created(&app, "/v2/folders", json!({"title": "Finance", "type": "CostFolder"})).await;
    assert!(token(&f1).starts_with("fldr_"));
    assert_eq!(f1["type"], "CostFolder");
    assert_eq!(f1["saved_filter_tokens"], json!([]));
    assert_eq!(f1["parent_folder_token"], Value::Null);
    for key in ["created_at", "updated_at", "workspace_token", "title"] {
        assert!(f1[key].is_string(), "{key}: {f1}");
    }
    let f2 = created(&app, "/v2/folders", json!({"title": "Sub", "parent_folder_token": token(&f1)})).await;
    // A folder cannot go inside itself or its own subfolder.
    let res = app.put(&format!("/v2/folders/{}", token(&f1)), json!({"parent_folder_token": token(&f2)})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("inside itself"), "{}", res.text);
    // A folder with something in it stays; emptied, it goes.
    let res = app.delete(&format!("/v2/folders/{}", token(&f1))).await;
    assert_eq!(res.status, 409, "{}", res.text);
    let sf =
        created(&app, "/v2/saved_filters", json!({"title": "Prod", "filter": "costs.provider = 'custom_provider'"}))
            .await;
    assert!(token(&sf).starts_with("svd_fltr_"));
    assert!(sf["created_by"].as_str().is_some_and(|u| u.starts_with("usr_")), "{sf}");
    let r1 = created(
        &app,
        "/v2/cost_reports",
        json!({"title": "Monthly", "folder_token": token(&f2),
        "saved_filter_tokens": [token(&sf)], "date_interval": "last_3_months"}),
    )
    .await;
    let r2 = created(&app, "/v2/cost_reports", json!({"title": "Daily spend"})).await;
    assert_eq!(r2["date_interval"], "this_month", "Vantage's default");
    assert_eq!(
        (r2["start_date"].clone(), r2["chart_type"].clone(), r2["date_bin"].clone()),
        (Value::Null, json!("line"), json!("cumulative"))
    );
    // Lists narrow by folder and title.
    let listed = app.get(&format!("/v2/cost_reports?folder_token={}", token(&f2))).await;
    assert_eq!(listed.body["cost_reports"].as_array().unwrap().len(), 1, "{}", listed.text);
    let listed = app.get("/v2/cost_reports?q=DAILY").await;
    assert_eq!(listed.body["cost_reports"][0]["token"], token(&r2).as_str(), "{}", listed.text);
    let listed = app.get("/v2/cost_reports?limit=1").await;
    assert_eq!(listed.body["cost_reports"].as_array().unwrap().len(), 1);
    assert!(listed.body["links"]["next"].is_string(), "{}", listed.text);
    let listed = app.get(&format!("/v2/folders?workspace_token={}", f1["workspace_token"].as_str().unwrap())).await;
    assert_eq!(listed.body["folders"].as_array().unwrap().len(), 2, "{}", listed.text);
    assert_eq!(app.get("/v2/folders?type=ProviderResourceFolder").await.status, 400);
    assert_eq!(app.get("/v2/saved_filters?q=prod").await.body["saved_filters"].as_array().unwrap().len(), 1);

    // Deleting a saved filter takes it off the reports that used it.
    assert_eq!(
        app.get(&format!("/v2/saved_filters/{}", token(&sf))).await.body["cost_report_tokens"],
        json!([token(&r1)])
    );
    assert_eq!(app.delete(&format!("/v2/saved_filters/{}", token(&sf))).await.status, 204);
    assert_eq!(app.get(&format!("/v2/saved_filters/{}", token(&sf))).await.status, 404);
    assert_eq!(app.get(&format!("/v2/cost_reports/{}", token(&r1))).await.body["saved_filter_tokens"], json!([]));
    // Out of the folder (an empty token), the folders can go, innermost first.
    let res = app.put(&format!("/v2/cost_reports/{}", token(&r1)), json!({"folder_token": ""})).await;
    assert_eq!(res.body["folder_token"], Value::Null, "{}", res.text);
    assert_eq!(app.delete(&format!("/v2/folders/{}", token(&f2))).await.status, 204);
    assert_eq!(app.delete(&format!("/v2/folders/{}", token(&f1))).await.status, 204);
    assert_eq!(app.delete(&format!("/v2/cost_reports/{}", token(&r1))).await.status, 204);
    assert_eq!(app.get(&format!("/v2/cost_reports/{}", token(&r1))).await.status, 404);
    assert_eq!(app.delete(&format!("/v2/cost_reports/{}", token(&r1))).await.status, 404);

    // With two workspaces, a new object must say which; objects of one workspace do not mix with another's.
    let ws2 = app.post("/v2/workspaces", json!({"name": "Second"})).await.body;
    let res = app.post("/v2/saved_filters", json!({"title": "Where?"})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("workspace_token is required"), "{}", res.text);
    let other = created(&app, "/v2/saved_filters", json!({"title": "Elsewhere", "workspace_token": token(&ws2)})).await;
    let res = app
        .post(
            "/v2/cost_reports",
            json!({"title": "Mixed", "workspace_token": r2["workspace_token"], "saved_filter_tokens": [token(&other)]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("is in workspace"), "{}", res.text);
    // Deleting a workspace takes its reports with it.
    let in_ws2 = created(&app, "/v2/cost_reports", json!({"title": "W2", "workspace_token": token(&ws2)})).await;
    assert_eq!(app.delete(&format!("/v2/workspaces/{}", token(&ws2))).await.status, 204);
    assert_eq!(app.get(&format!("/v2/cost_reports/{}", token(&in_ws2))).await.status, 404);
}

async fn bad_report_bodies_are_400_naming_each_field(app: TestApp) {
    let res = app
        .post(
            "/v2/cost_reports",
            json!({"filter": "costs.colour = 'red'", "groupings": "service,flavour", "date_interval": "last_week",
                   "chart_type": "donut", "date_bin": "hour", "folder_token": "fldr_0000000000000000",
                   "saved_filter_tokens": ["svd_fltr_0000000000000000"], "settings": {"aggregate_by": "count"}}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let text = res.error_text();
    for needle in [
        "title is required",
        "filter:",
        "flavour",
        "date_interval",
        "chart_type",
        "date_bin",
        "folder_token",
        "saved_filter_tokens",
        "settings.aggregate_by",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let res =
        app.post("/v2/cost_reports", json!({"title": "x", "start_date": "2024-07-31", "end_date": "2024-07-01"})).await;
    assert!(res.error_text().contains("must not be before"), "{}", res.text);
    let res = app.post("/v2/cost_reports", json!({"title": "x", "settings": {"unallocated": true}})).await;
    assert!(res.error_text().contains("settings.unallocated"), "{}", res.text);
    let res = app.post("/v2/saved_filters", json!({"title": " ", "filter": "costs.service = "})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.errors().len(), 2, "{}", res.text);
    let res = app.post("/v2/folders", json!({"title": "x", "type": "ProviderResourceFolder"})).await;
    assert!(res.error_text().contains("provider resources"), "{}", res.text);
    let res = app.post("/v2/folders", json!({"title": 7})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    // Nothing bad was stored.
    for list in ["cost_reports", "saved_filters", "folders"] {
        assert_eq!(app.get(&format!("/v2/{list}")).await.body[list], json!([]), "{list}");
    }
}

async fn reports_folders_and_filters_are_the_callers_alone(app: TestApp) {
    let sf = created(&app, "/v2/saved_filters", json!({"title": "Mine", "filter": "costs.service = 'EC2'"})).await;
    let folder = created(&app, "/v2/folders", json!({"title": "Mine"})).await;
    let report = created(&app, "/v2/cost_reports", json!({"title": "Mine", "folder_token": token(&folder)})).await;
    let (_, other) = app.other_account().await;
    for (path, list) in [
        (format!("/v2/saved_filters/{}", token(&sf)), "/v2/saved_filters"),
        (format!("/v2/folders/{}", token(&folder)), "/v2/folders"),
        (format!("/v2/cost_reports/{}", token(&report)), "/v2/cost_reports"),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let res = app.send(method.clone(), &path, Some(&other), None).await;
            assert_eq!(res.status, 404, "{method} {path}: {}", res.text);
        }
        let res = app.send(Method::PUT, &path, Some(&other), Some(json!({"title": "theirs"}).to_string())).await;
        assert_eq!(res.status, 404, "PUT {path}: {}", res.text);
        let res = app.send(Method::GET, list, Some(&other), None).await;
        assert_eq!(res.body[list.trim_start_matches("/v2/")], json!([]), "{list}: {}", res.text);
    }
    // Another account cannot point at these, nor run the report.
    let res = app
        .send(
            Method::POST,
            "/v2/cost_reports",
            Some(&other),
            Some(
                json!({"title": "x", "folder_token": token(&folder), "saved_filter_tokens": [token(&sf)]}).to_string(),
            ),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res =
        app.send(Method::GET, &format!("/v2/costs?cost_report_token={}", token(&report)), Some(&other), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    // A read-only token reads and runs, and writes nothing.
    let read = app.mint(&app.account, "read").await;
    let res =
        app.send(Method::GET, &format!("/v2/costs?cost_report_token={}", token(&report)), Some(&read), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.send(Method::POST, "/v2/folders", Some(&read), Some(json!({"title": "x"}).to_string())).await;
    assert_eq!(res.status, 403, "{}", res.text);
    let res = app.send(Method::DELETE, &format!("/v2/cost_reports/{}", token(&report)), Some(&read), None).await;
    assert_eq!(res.status, 403, "{}", res.text);
}

async fn costs_settings_are_honoured_or_refused_by_name(app: TestApp) {
    // EffectiveCost is the amortized amount: an upfront fee of 300 spread as 10 a day; a row without one
    // counts its BilledCost either way.
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,EffectiveCost,ServiceName,ConsumedQuantity,ConsumedUnit
Purchase,2024-07-01,300,10,Savings Plan,,
Usage,2024-07-01,0,5.5,EC2,24,Hours
Usage,2024-07-02,7.25,,EC2,12,Hours
Usage,2024-07-02,1.5,1.5,S3,100.5,GB-Mo
";
    let i = app.create_integration("Amortized").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&i, "a.csv", csv.as_bytes().to_vec()).await.status, 201);
    let range = "start_date=2024-07-01&end_date=2024-07-31";
    // Amortized (Vantage's default): 10 + 5.5 + 7.25 + 1.5; billed: 300 + 0 + 7.25 + 1.5.
    assert_eq!(total(&app, range).await, "24.25");
    assert_eq!(total(&app, &format!("{range}&settings[amortize]=true")).await, "24.25");
    assert_eq!(total(&app, &format!("{range}&settings%5Bamortize%5D=false")).await, "308.75");

    // By usage: rows split by unit, each with its usage; total_usage per unit.
    let res =
        app.get(&format!("/v2/costs?{range}&groupings=service&date_bin=month&settings[aggregate_by]=usage")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // Rows without a unit (the purchase) have no usage.
    let mut usage: Vec<(String, String)> = res.body["total_usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["unit"].as_str().unwrap().to_string(), u["amount"].as_str().unwrap().to_string()))
        .collect();
    usage.sort();
    assert_eq!(usage, vec![("GB-Mo".into(), "100.5".into()), ("Hours".into(), "36.0".into())], "{}", res.text);
    let plan: Vec<&Value> =
        res.body["costs"].as_array().unwrap().iter().filter(|c| c["service"] == "Savings Plan").collect();
    assert!(plan[0].get("usage").is_none(), "{}", res.text);
    let ec2: Vec<&Value> = res.body["costs"].as_array().unwrap().iter().filter(|c| c["service"] == "EC2").collect();
    assert_eq!(ec2.len(), 1, "{}", res.text);
    assert_eq!(ec2[0]["usage"], json!({"amount": "36.0", "unit": "Hours"}));
    assert_eq!(ec2[0]["amount"], "12.75");
    assert!(app.get(&format!("/v2/costs?{range}")).await.body.get("total_usage").is_none());

    for (query, needle) in [
        ("settings[unallocated]=true", "settings[unallocated]"),
        ("settings[aggregate_by]=count", "settings[aggregate_by]: count"),
        ("settings[aggregate_by]=bytes", "settings[aggregate_by]"),
        ("settings[show_previous_period]=true", "settings[show_previous_period]"),
        ("settings[amortize]=maybe", "settings[amortize] must be true or false"),
        ("settings[colour]=red", "settings[colour]: no such setting"),
        ("total_usage=true", "total_usage: unknown parameter"),
    ] {
        let res = app.get(&format!("/v2/costs?{range}&{query}")).await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
        assert!(res.error_text().contains(needle), "{query}: {}", res.text);
    }
    // What is refused on the query string is accepted as the value costd gives.
    for query in ["settings[unallocated]=false", "settings[show_previous_period]=false", "settings[aggregate_by]=cost"]
    {
        assert_eq!(app.get(&format!("/v2/costs?{range}&{query}")).await.status, 200, "{query}");
    }
}

/// Named intervals resolve against the server's today (here fixed at 2024-08-20).
#[tokio::test]
async fn date_intervals_resolve_against_the_servers_today() {
    let today = chrono::NaiveDate::from_ymd_opt(2024, 8, 20).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.today = std::sync::Arc::new(move || today)).await.unwrap();
    arrange(&app).await;
    let report = created(
        &app,
        "/v2/cost_reports",
        json!({"title": "Last month", "date_interval": "last_month",
        "filter": "costs.service = 'EC2'"}),
    )
    .await;
    assert_eq!(
        (report["previous_period_start_date"].as_str(), report["previous_period_end_date"].as_str()),
        (Some("2024-06-01"), Some("2024-06-30"))
    );
    let r = token(&report);
    // July's EC2: 100 + 10.
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "110.0");
    // This month (August): 200 (the credit hidden); without a report, /v2/costs defaults to this month too.
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"date_interval": "this_month"})).await;
    assert_eq!(res.body["date_interval"], "this_month", "{}", res.text);
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "200.0");
    assert_eq!(total(&app, "filter=costs.service%20%3D%20'EC2'").await, "200.0");
    // The 30 days before today: 2024-07-21 .. 2024-08-19, so the July tax and August's usage.
    app.put(&format!("/v2/cost_reports/{r}"), json!({"date_interval": "last_30_days"})).await;
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "210.0");
    // Year to date, and fixed dates that replace the interval; an interval then replaces them again.
    app.put(&format!("/v2/cost_reports/{r}"), json!({"date_interval": "year_to_date"})).await;
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "310.0");
    let res =
        app.put(&format!("/v2/cost_reports/{r}"), json!({"start_date": "2024-08-01", "end_date": "2024-08-05"})).await;
    assert_eq!(res.body["date_interval"], "custom");
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "0.0");
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"date_interval": "last_3_months"})).await;
    assert_eq!(
        (res.body["date_interval"].as_str(), res.body["start_date"].clone()),
        (Some("last_3_months"), Value::Null)
    );
    // May .. July: 110.
    assert_eq!(total(&app, &format!("cost_report_token={r}")).await, "110.0");
    // Without the previous period shown, none is given.
    let res = app.put(&format!("/v2/cost_reports/{r}"), json!({"settings": {"show_previous_period": false}})).await;
    assert_eq!(res.body["previous_period_start_date"], Value::Null, "{}", res.text);
}

/// A report's forecast: each day the average of its weekday over the four weeks before, in total and per
/// service, through the clients' filters.
#[tokio::test]
async fn a_forecast_repeats_the_last_four_weeks_by_weekday() {
    use chrono::Datelike;
    let today = chrono::NaiveDate::from_ymd_opt(2024, 9, 2).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.today = std::sync::Arc::new(move || today)).await.unwrap();
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
    for day in chrono::NaiveDate::from_ymd_opt(2024, 8, 5).unwrap().iter_days().take(28) {
        let weekend = day.weekday().num_days_from_monday() >= 5;
        csv += &format!("Usage,{day},{},EC2\nUsage,{day},2,S3\n", if weekend { "1" } else { "10.5" });
    }
    let i = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&i, "a.csv", csv.into_bytes()).await.status, 201);
    let r = token(&created(&app, "/v2/cost_reports", json!({"title": "All"})).await);
    let res = app
        .get(&format!(
            "/v2/cost_reports/{r}/forecasted_costs?start_date=2024-09-02&end_date=2024-09-08&provider=all&service=all"
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["currency"], "USD");
    let amounts: Vec<&str> =
        res.body["forecasted_costs"].as_array().unwrap().iter().map(|f| f["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["12.5", "12.5", "12.5", "12.5", "12.5", "3.0", "3.0"], "{}", res.text);
    assert_eq!(
        res.body["forecasted_costs"][0],
        json!({"date": "2024-09-02", "amount": "12.5", "provider": "all", "service": "all"})
    );
    // One service; every series by default, the whole first each day, through the end of next month.
    let s3 = app.get(&format!("/v2/cost_reports/{r}/forecasted_costs?service=S3&end_date=2024-09-03")).await;
    assert_eq!(
        s3.body["forecasted_costs"],
        json!([
        {"date": "2024-09-02", "amount": "2.0", "provider": "custom_provider", "service": "S3"},
        {"date": "2024-09-03", "amount": "2.0", "provider": "custom_provider", "service": "S3"}]),
        "{}",
        s3.text
    );
    let all = app.get(&format!("/v2/cost_reports/{r}/forecasted_costs?limit=1000")).await;
    let rows = all.body["forecasted_costs"].as_array().unwrap();
    assert_eq!(rows.len(), 3 * 60, "Sep 2 .. Oct 31 (60 days), three series");
    assert_eq!(
        (rows[0]["service"].as_str(), rows[1]["service"].as_str(), rows[2]["service"].as_str()),
        (Some("all"), Some("EC2"), Some("S3"))
    );
    assert_eq!(rows.last().unwrap()["date"], "2024-10-31");
    // The report's filter applies.
    app.put(&format!("/v2/cost_reports/{r}"), json!({"filter": "costs.service = 'S3'"})).await;
    let res =
        app.get(&format!("/v2/cost_reports/{r}/forecasted_costs?provider=all&service=all&end_date=2024-09-02")).await;
    assert_eq!(res.body["forecasted_costs"][0]["amount"], "2.0", "{}", res.text);
    for bad in ["start_date=2024-09-10&end_date=2024-09-01", "start_date=soon", "limit=5000"] {
        assert_eq!(app.get(&format!("/v2/cost_reports/{r}/forecasted_costs?{bad}")).await.status, 400, "{bad}");
    }
    assert_eq!(app.get("/v2/cost_reports/rprt_0000000000000000/forecasted_costs").await.status, 404);
}
