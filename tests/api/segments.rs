//! Segments over real HTTP (`/v2/segments`, docs/segments.md): the tree saved whole or refused naming the
//! field, each segment's generated report holding exactly the costs assigned to it (siblings in priority
//! order, children within their parent, the unallocated rest tracked), money conserved to the last place.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    a_segment_is_created_read_listed_changed_and_deleted,
    a_bad_segment_is_refused_naming_the_field_and_nothing_is_saved,
    costs_go_to_the_first_segment_by_priority_and_children_add_up_to_their_parent,
    a_segments_report_inherits_its_top_level_settings_and_changes_only_through_it,
    a_segment_whose_report_a_budget_follows_is_not_deleted,
);

/// July 2024: a NULL region on the Network row, a credit, a tagged Compute row.
const CSV: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId,Tags\n\
    Usage,2024-07-01,100.000000001,Compute,us-east-1,\"{\"\"team\"\": \"\"web\"\"}\"\n\
    Usage,2024-07-02,20.25,Compute,eu-west-1,\n\
    Usage,2024-07-03,7.50,Storage,us-east-1,\n\
    Usage,2024-07-04,3.00,Storage,eu-west-1,\n\
    Usage,2024-07-05,2.125,Network,,\n\
    Credit,2024-07-06,-10.00,Compute,us-east-1,\n";

async fn created(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v2/segments", body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

fn token(v: &Value) -> String {
    v["token"].as_str().unwrap().to_string()
}

async fn upload(app: &TestApp) {
    let integration = token(&app.create_integration("cloud").await);
    let res = app.upload(&integration, "july.csv", CSV.as_bytes().to_vec()).await;
    assert_eq!(res.status, 201, "{}", res.text);
}

/// The exact total of a segment's report over July 2024 (every row's amount, as the API gives it, summed).
async fn total(app: &TestApp, segment: &Value) -> rust_decimal::Decimal {
    let report = segment["report_token"].as_str().unwrap();
    let path = format!(
        "/v2/costs?cost_report_token={report}&start_date=2024-07-01&end_date=2024-07-31&date_bin=month&groupings=service"
    );
    let res = app.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum()
}

fn dec(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

async fn a_segment_is_created_read_listed_changed_and_deleted(app: TestApp) {
    let top = created(
        &app,
        json!({"title": "Business Units", "description": "By unit", "filter": "costs.provider = 'custom_provider'"}),
    )
    .await;
    assert!(token(&top).starts_with("fltr_sgmt_"), "{top}");
    assert_eq!(top["priority"], 100, "Vantage's default priority");
    assert_eq!(top["parent_segment_token"], Value::Null);
    assert_eq!(top["track_unallocated"], false);
    assert_eq!(
        top["report_settings"],
        json!({"include_credits": false, "include_refunds": false, "include_discounts": true, "include_tax": true, "amortize": true})
    );
    assert!(top["workspace_token"].as_str().unwrap().starts_with("wrkspc_"), "{top}");
    let report = top["report_token"].as_str().unwrap().to_string();
    assert!(report.starts_with("rprt_"), "{top}");
    let res = app.get(&format!("/v2/cost_reports/{report}")).await;
    assert_eq!(res.status, 200, "the generated report is a cost report: {}", res.text);
    assert_eq!(res.body["title"], "Business Units");
    assert_eq!(res.body["filter"], "costs.provider = 'custom_provider'");

    let child = created(&app, json!({"title": "Web", "parent_segment_token": token(&top), "priority": 1, "filter": "costs.service = 'Compute'"})).await;
    assert_eq!(child["parent_segment_token"], token(&top).as_str());
    assert_eq!(child["workspace_token"], top["workspace_token"], "a child is in its parent's workspace");
    assert!(child.get("report_settings").is_none(), "a child shows no settings of its own: {child}");

    let res = app.get("/v2/segments?q=web").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["segments"].as_array().unwrap().len(), 1, "{}", res.text);
    let workspace = top["workspace_token"].as_str().unwrap();
    let res = app.get(&format!("/v2/segments?workspace_token={workspace}&limit=1")).await;
    assert_eq!(res.body["segments"].as_array().unwrap().len(), 1, "{}", res.text);
    assert!(res.body["links"]["next"].as_str().is_some(), "two segments, one a page: {}", res.text);
    let res = app.get(&format!("/v2/segments/{}", token(&child))).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["title"], "Web");

    // A change: the generated report follows its title and filter.
    let res = app
        .put(
            &format!("/v2/segments/{}", token(&child)),
            json!({"title": "Compute", "filter": "costs.service = 'Storage'", "priority": 7}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["priority"], 7);
    let child_report = child["report_token"].as_str().unwrap();
    let res = app.get(&format!("/v2/cost_reports/{child_report}")).await;
    assert_eq!(res.body["title"], "Compute", "{}", res.text);
    assert_eq!(res.body["filter"], "costs.service = 'Storage'", "{}", res.text);

    // track_unallocated keeps a child costd owns, last among its siblings, which only goes with the flag.
    let res = app.put(&format!("/v2/segments/{}", token(&top)), json!({"track_unallocated": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.get("/v2/segments").await;
    let all = res.body["segments"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "{}", res.text);
    let unallocated = all.iter().find(|s| s["title"] == "Unallocated Costs").expect("an unallocated segment").clone();
    assert_eq!(unallocated["parent_segment_token"], token(&top).as_str());
    assert_eq!(unallocated["filter"], Value::Null);
    let res = app.put(&format!("/v2/segments/{}", token(&unallocated)), json!({"title": "Mine"})).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.error_text().contains("track_unallocated"), "{}", res.text);
    let res = app.delete(&format!("/v2/segments/{}", token(&unallocated))).await;
    assert_eq!(res.status, 409, "{}", res.text);
    // Vantage's update defaults track_unallocated to false (its Python client always sends it).
    let res = app.put(&format!("/v2/segments/{}", token(&top)), json!({"description": "Units"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["track_unallocated"], false);
    assert_eq!(app.get("/v2/segments").await.body["segments"].as_array().unwrap().len(), 2);
    assert_eq!(app.get(&format!("/v2/segments/{}", token(&unallocated))).await.status, 404);
    let res = app.put(&format!("/v2/segments/{}", token(&top)), json!({"track_unallocated": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    // A parent with children stays; its children go first.
    let res = app.delete(&format!("/v2/segments/{}", token(&top))).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.error_text().contains(&token(&child)), "names the child: {}", res.text);
    let res = app.delete(&format!("/v2/segments/{}", token(&child))).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(app.get(&format!("/v2/cost_reports/{child_report}")).await.status, 404, "its report goes with it");
    let res = app.delete(&format!("/v2/segments/{}", token(&top))).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(app.get("/v2/segments").await.body["segments"], json!([]), "the unallocated child went with its parent");
    assert_eq!(app.get(&format!("/v2/cost_reports/{report}")).await.status, 404);
    assert_eq!(app.get(&format!("/v2/segments/{}", token(&top))).await.status, 404);
}

async fn a_bad_segment_is_refused_naming_the_field_and_nothing_is_saved(app: TestApp) {
    let res = app
        .post("/v2/segments", json!({"description": "no title", "filter": "costs.nope = 'x'", "priority": -1}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let text = res.error_text();
    for field in ["title", "filter", "priority"] {
        assert!(text.contains(field), "names {field}: {text}");
    }
    let res = app
        .post("/v2/segments", json!({"title": "Orphan", "parent_segment_token": "fltr_sgmt_0000000000000000"}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("parent_segment_token"), "{}", res.text);

    // Another account's segment is as unknown as a made-up one.
    let (_, other_token) = app.other_account().await;
    let theirs =
        app.send(Method::POST, "/v2/segments", Some(&other_token), Some(json!({"title": "Theirs"}).to_string())).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    let res =
        app.post("/v2/segments", json!({"title": "Into theirs", "parent_segment_token": token(&theirs.body)})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(app.get(&format!("/v2/segments/{}", token(&theirs.body))).await.status, 404);

    let a = created(&app, json!({"title": "A"})).await;
    let b = created(&app, json!({"title": "B", "parent_segment_token": token(&a)})).await;
    let res = app
        .post(
            "/v2/segments",
            json!({"title": "C", "parent_segment_token": token(&a), "report_settings": {"include_credits": true}}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("report_settings"), "{}", res.text);
    // A cycle, directly or through a child, is refused.
    for parent in [token(&a), token(&b)] {
        let res = app.put(&format!("/v2/segments/{}", token(&a)), json!({"parent_segment_token": parent})).await;
        assert_eq!(res.status, 400, "{}", res.text);
        assert!(res.error_text().contains("inside itself"), "{}", res.text);
    }
    // Eight levels at most.
    let mut parent = token(&b);
    for depth in 3..=8 {
        parent = token(&created(&app, json!({"title": format!("L{depth}"), "parent_segment_token": parent})).await);
    }
    let res = app.post("/v2/segments", json!({"title": "L9", "parent_segment_token": parent})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("8 levels"), "{}", res.text);
    // Moving a deep subtree under another leaf would nest too deep too.
    let c = created(&app, json!({"title": "C"})).await;
    let res = app.put(&format!("/v2/segments/{}", token(&c)), json!({"parent_segment_token": parent})).await;
    assert_eq!(res.status, 400, "a leaf under the eighth level would be at the ninth: {}", res.text);
    assert!(res.error_text().contains("8 levels"), "{}", res.text);
    // A segment stays in its workspace.
    let res = app.post("/v2/workspaces", json!({"name": "Other"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let other_workspace = token(&res.body);
    let elsewhere = created(&app, json!({"title": "Elsewhere", "workspace_token": other_workspace})).await;
    let res = app.put(&format!("/v2/segments/{}", token(&elsewhere)), json!({"parent_segment_token": token(&a)})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("workspace"), "{}", res.text);
    let res = app.put(&format!("/v2/segments/{}", token(&a)), json!({"workspace_token": other_workspace})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("stays in its workspace"), "{}", res.text);
    let res = app.get("/v2/segments").await;
    assert_eq!(res.body["segments"].as_array().unwrap().len(), 10, "only the valid ones saved: {}", res.text);
}

async fn costs_go_to_the_first_segment_by_priority_and_children_add_up_to_their_parent(app: TestApp) {
    upload(&app).await;
    let everything = {
        let res = app.get("/v2/costs?start_date=2024-07-01&end_date=2024-07-31&date_bin=month&groupings=service").await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body["costs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| dec(c["amount"].as_str().unwrap()))
            .sum::<rust_decimal::Decimal>()
    };
    assert_eq!(everything, dec("132.875000001"), "the credit is hidden by Vantage's default settings");
    // Compute first; then whatever is not in eu-west-1 (a NULL region is not "not eu-west-1" in SQL, so it
    // is not kept there, and must not be lost either); then the rest.
    let compute =
        created(&app, json!({"title": "Compute", "priority": 1, "filter": "costs.service = 'Compute'"})).await;
    let not_eu =
        created(&app, json!({"title": "Not EU", "priority": 2, "filter": "costs.region != 'eu-west-1'"})).await;
    let rest = created(&app, json!({"title": "Rest", "priority": 3, "track_unallocated": true})).await;
    assert_eq!(total(&app, &compute).await, dec("120.250000001"));
    assert_eq!(total(&app, &not_eu).await, dec("7.50"), "the Compute row in us-east-1 is Compute's only");
    assert_eq!(total(&app, &rest).await, dec("5.125"), "Storage in eu-west-1 and the Network row with no region");
    assert_eq!(
        total(&app, &compute).await + total(&app, &not_eu).await + total(&app, &rest).await,
        everything,
        "siblings whose last keeps everything add up to the whole"
    );

    // Children split their parent; the unallocated child holds exactly what the others did not take.
    let web = created(
        &app,
        json!({"title": "Web", "parent_segment_token": token(&rest), "filter": "costs.service = 'Storage'"}),
    )
    .await;
    let res = app.get("/v2/segments?q=Unallocated").await;
    let unallocated = res.body["segments"][0].clone();
    assert_eq!(total(&app, &web).await, dec("3.00"));
    assert_eq!(total(&app, &unallocated).await, dec("2.125"));

    // A lower number wins: Not EU before Compute takes the us-east-1 Compute row from it.
    let res = app.put(&format!("/v2/segments/{}", token(&not_eu)), json!({"priority": 0})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(total(&app, &not_eu).await, dec("107.500000001"));
    assert_eq!(total(&app, &compute).await, dec("20.25"));
    assert_eq!(total(&app, &rest).await, dec("5.125"), "the row with no region is still the rest's");

    // A segment's filter may name a virtual tag, as any filter may.
    let res = app
        .post(
            "/v2/virtual_tag_configs",
            json!({"key": "unit", "values": [{"filter": "costs.service = 'Storage'", "name": "data"}]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    // Data ties with Not EU at priority 0, and the older comes first: Not EU keeps the us-east-1 row.
    let data =
        created(&app, json!({"title": "Data", "priority": 0, "filter": "tags.name = 'unit' AND tags.value = 'data'"}))
            .await;
    assert_eq!(total(&app, &data).await, dec("3.00"));
    let res = app.put(&format!("/v2/segments/{}", token(&not_eu)), json!({"priority": 2})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(total(&app, &data).await, dec("10.50"));
}

async fn a_segments_report_inherits_its_top_level_settings_and_changes_only_through_it(app: TestApp) {
    upload(&app).await;
    let top = created(&app, json!({"title": "Compute", "filter": "costs.service = 'Compute'", "report_settings": {"include_credits": true}})).await;
    assert_eq!(top["report_settings"]["include_credits"], true);
    let child = created(
        &app,
        json!({"title": "US", "parent_segment_token": token(&top), "filter": "costs.region = 'us-east-1'"}),
    )
    .await;
    assert_eq!(total(&app, &top).await, dec("110.250000001"), "the credit counts");
    assert_eq!(total(&app, &child).await, dec("90.000000001"), "the child inherits the credits");
    let report = child["report_token"].as_str().unwrap();
    let res = app.get(&format!("/v2/cost_reports/{report}")).await;
    assert_eq!(res.body["settings"]["include_credits"], true, "{}", res.text);

    // Settings changed at the top reach the child's report.
    let res =
        app.put(&format!("/v2/segments/{}", token(&top)), json!({"report_settings": {"include_credits": false}})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(total(&app, &child).await, dec("100.000000001"));
    let res = app.get(&format!("/v2/cost_reports/{report}")).await;
    assert_eq!(res.body["settings"]["include_credits"], false, "{}", res.text);

    // The report is the segment's: changed and deleted only through it.
    let res = app.put(&format!("/v2/cost_reports/{report}"), json!({"title": "Mine now"})).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.error_text().contains("/v2/segments/"), "{}", res.text);
    let res = app.delete(&format!("/v2/cost_reports/{report}")).await;
    assert_eq!(res.status, 409, "{}", res.text);
    // It is listed with the workspace's reports.
    let res = app.get("/v2/cost_reports").await;
    assert!(res.body["cost_reports"].as_array().unwrap().iter().any(|r| r["token"] == report), "{}", res.text);
}

async fn a_segment_whose_report_a_budget_follows_is_not_deleted(app: TestApp) {
    let segment = created(&app, json!({"title": "Followed"})).await;
    let res = app
        .post(
            "/v2/budgets",
            json!({"name": "On a segment", "cost_report_token": segment["report_token"], "periods": [{"start_at": "2024-07-01", "amount": 10}]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let budget = token(&res.body);
    let res = app.delete(&format!("/v2/segments/{}", token(&segment))).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.error_text().contains(&budget), "names the budget: {}", res.text);
    assert_eq!(app.get(&format!("/v2/segments/{}", token(&segment))).await.status, 200, "nothing deleted");
    assert_eq!(app.delete(&format!("/v2/budgets/{budget}")).await.status, 204);
    assert_eq!(app.delete(&format!("/v2/segments/{}", token(&segment))).await.status, 204);
}
