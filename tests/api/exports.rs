//! Cost data exports over real HTTP: queued with a 202 and a Location, polled until done, the CSV streamed
//! with the caller's token (gzip when asked), its amounts exactly `GET /v2/costs`'s, removed after the
//! retention.

use std::io::Read;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Backend, TestApp};

on_both_stores!(
    an_export_is_the_costs_query_as_csv_streamed_with_the_callers_token,
    bad_exports_are_refused_before_anything_is_queued,
    text_a_spreadsheet_would_run_is_exported_as_text,
    an_account_has_a_bounded_number_of_exports_running,
    an_export_whose_node_stopped_is_failed_and_a_running_one_is_not,
);

const A: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId
Usage,2024-07-05,100.123456789,EC2,us-east-1
Usage,2024-07-20,50,S3,us-east-1
Tax,2024-07-31,10,EC2,us-east-1
Usage,2024-08-10,200,EC2,eu-west-1
Credit,2024-08-15,-20,EC2,eu-west-1
";

/// Polls an export until it is no longer pending; answers its final body.
async fn finished(app: &TestApp, token: &str, with: &str) -> Value {
    for _ in 0..200 {
        let res = app.send(Method::GET, &format!("/v2/data_exports/{token}"), Some(with), None).await;
        match res.status {
            202 => {
                assert_eq!(res.body["status"], "pending", "{}", res.text);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            200 => return res.body,
            other => panic!("export {token}: {other} {}", res.text),
        }
    }
    panic!("export {token} never finished");
}

/// Queues an export; answers its token after checking the 202 and its Location.
async fn queue(app: &TestApp, with: &str, body: Value, query: &str) -> String {
    let res = app
        .client
        .post(format!("{}/v2/costs/data_exports{query}", app.base_url))
        .bearer_auth(with)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("dta_xprt_"), "{token}");
    assert_eq!(location, Some(format!("{}/v2/data_exports/{token}", app.base_url)));
    assert_eq!(body["manifest"]["files"], json!([]));
    token
}

async fn fetch(app: &TestApp, url: &str, with: Option<&str>, gzip: bool) -> (u16, Option<String>, Vec<u8>) {
    let mut req = app.client.get(url);
    if let Some(t) = with {
        req = req.bearer_auth(t);
    }
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let res = req.send().await.unwrap();
    let encoding = res.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), encoding, res.bytes().await.unwrap().to_vec())
}

async fn an_export_is_the_costs_query_as_csv_streamed_with_the_callers_token(app: TestApp) {
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&a, "a.csv", A.as_bytes().to_vec()).await.status, 201);
    // A read-only token may export (Vantage gives the read scope); groupings as its Python client sends them.
    let read = app.mint(&app.account, "read").await;
    let body = json!({"start_date": "2024-07-01", "end_date": "2024-08-31", "date_bin": "month",
                      "settings": {"include_credits": true}});
    let token = queue(&app, &read, body, "?groupings=service&groupings=region").await;
    let done = finished(&app, &token, &read).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["export_type"], "cost_report");
    assert_eq!(done["row_count"], 3);
    assert_eq!(done["attributes"]["groupings"], json!(["service", "region"]));
    assert!(done["manifest"]["completed_at"].is_string() && done["manifest"]["valid_until"].is_string(), "{done}");
    let url = done["manifest"]["files"][0].as_str().unwrap().to_string();

    let (status, encoding, bytes) = fetch(&app, &url, Some(&read), false).await;
    assert_eq!((status, encoding), (200, None));
    let csv = String::from_utf8(bytes).unwrap();
    // Months ascending in the file? The costs order: newest first, as GET /v2/costs answers.
    let costs = app
        .get("/v2/costs?start_date=2024-07-01&end_date=2024-08-31&date_bin=month&groupings=service,region&settings[include_credits]=true&limit=5000")
        .await;
    let mut expected = String::from("accrued_at,service,region,amount,currency\n");
    for c in costs.body["costs"].as_array().unwrap() {
        expected += &format!(
            "{},{},{},{},{}\n",
            c["accrued_at"].as_str().unwrap(),
            c["service"].as_str().unwrap(),
            c["region"].as_str().unwrap(),
            c["amount"].as_str().unwrap(),
            c["currency"].as_str().unwrap()
        );
    }
    assert_eq!(csv, expected);
    assert!(csv.contains("2024-07-01,EC2,us-east-1,110.123456789,USD"), "{csv}");
    assert!(csv.contains("2024-08-01,EC2,eu-west-1,180.0,USD"), "{csv}");

    // Gzip when asked, the same bytes inside.
    let (status, encoding, gz) = fetch(&app, &url, Some(&read), true).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut unzipped).unwrap();
    assert_eq!(unzipped, expected);

    // Only with a token of the account.
    assert_eq!(fetch(&app, &url, None, false).await.0, 401);
    let (_, other) = app.other_account().await;
    assert_eq!(fetch(&app, &url, Some(&other), false).await.0, 404);
    let res = app.send(Method::GET, &format!("/v2/data_exports/{token}"), Some(&other), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert_eq!(fetch(&app, &url.replace("costs.csv", "other.csv"), Some(&read), false).await.0, 404);

    // A report's export runs the report's query.
    let report = app
        .post(
            "/v2/cost_reports",
            json!({"title": "S3", "filter": "costs.service = 'S3'",
            "start_date": "2024-07-01", "end_date": "2024-07-31", "groupings": "service"}),
        )
        .await;
    assert_eq!(report.status, 201, "{}", report.text);
    let token = queue(&app, &app.token, json!({"cost_report_token": report.body["token"]}), "").await;
    let done = finished(&app, &token, &app.token).await;
    let (_, _, bytes) = fetch(&app, done["manifest"]["files"][0].as_str().unwrap(), Some(&app.token), false).await;
    assert_eq!(String::from_utf8(bytes).unwrap(), "accrued_at,service,amount,currency\n2024-07-20,S3,50.0,USD\n");
}

async fn bad_exports_are_refused_before_anything_is_queued(app: TestApp) {
    for (body, status, needle) in [
        (json!({"schema": "focus"}), 400, "schema"),
        (json!({"filter": "costs.colour = 'red'"}), 400, "colour"),
        (json!({"date_bin": "hour"}), 400, "date_bin"),
        (json!({"groupings": ["service", "flavour"]}), 400, "flavour"),
        (json!({"settings": {"unallocated": true}}), 400, "settings[unallocated]"),
        (json!({"start_date": "2024-08-01", "end_date": "2024-07-01"}), 400, "must not be before"),
        (json!({"cost_report_token": "rprt_0000000000000000"}), 404, "cost report not found"),
        (json!({"workspace_token": "wrkspc_0000000000000000"}), 404, "workspace"),
    ] {
        let res = app.post("/v2/costs/data_exports", body.clone()).await;
        assert_eq!(res.status, status, "{body}: {}", res.text);
        assert!(res.error_text().contains(needle), "{body}: {}", res.text);
    }
    let res = app.get("/v2/data_exports/dta_xprt_0000000000000000").await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert_eq!(app.get("/v2/data_exports/..%2F..%2Fetc").await.status, 404);
}

/// Past the retention an export and its file are gone.
#[tokio::test]
async fn an_export_is_removed_after_its_retention() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.exports =
            costd::service::exports::ExportFiles::new(s.files.spool().parent().unwrap(), Duration::from_millis(200));
    })
    .await
    .unwrap();
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&a, "a.csv", A.as_bytes().to_vec()).await.status, 201);
    let token = queue(&app, &app.token, json!({"start_date": "2024-07-01", "end_date": "2024-08-31"}), "").await;
    let done = finished(&app, &token, &app.token).await;
    let url = done["manifest"]["files"][0].as_str().unwrap().to_string();
    assert_eq!(fetch(&app, &url, Some(&app.token), false).await.0, 200);
    let file = app.files.spool().parent().unwrap().join("exports").join(format!("{token}.csv"));
    assert!(file.exists());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let exports =
        costd::service::exports::ExportFiles::new(app.files.spool().parent().unwrap(), Duration::from_millis(200));
    assert_eq!(costd::service::exports::sweep(app.store.as_ref(), &exports).await.unwrap(), 1);
    assert!(!file.exists());
    assert_eq!(app.get(&format!("/v2/data_exports/{token}")).await.status, 404);
    assert_eq!(fetch(&app, &url, Some(&app.token), false).await.0, 404);
}

async fn text_a_spreadsheet_would_run_is_exported_as_text(app: TestApp) {
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId\n\
               Usage,2024-07-05,10,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",@SUM(A1)\n\
               Credit,2024-07-06,-2.5,+cmd,-1+1\n";
    let up = app.upload(&a, "a.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let body = json!({"start_date": "2024-07-01", "end_date": "2024-07-31", "groupings": "service,region",
        "date_bin": "month", "settings": {"include_credits": true}});
    let token = queue(&app, &app.token, body, "").await;
    let done = finished(&app, &token, &app.token).await;
    let url = done["manifest"]["files"][0].as_str().unwrap().to_string();
    let (status, _, bytes) = fetch(&app, &url, Some(&app.token), false).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    let mut rows: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            vec!["2024-07-01", "'+cmd", "'-1+1", "-2.5", "USD"],
            vec!["2024-07-01", "'=HYPERLINK(\"http://evil.example\",\"x\")", "'@SUM(A1)", "10.0", "USD"],
        ],
        "{text}"
    );
}

async fn an_account_has_a_bounded_number_of_exports_running(app: TestApp) {
    let max = costd::service::exports::MAX_PENDING_PER_ACCOUNT;
    let account = &app.account.token;
    let token = |i: i64| format!("dta_xprt_{i:016x}");
    for i in 0..max {
        assert!(app.store.create_data_export(account, &token(i), "{}", max).await.unwrap().is_some());
    }
    assert!(app.store.create_data_export(account, &token(max), "{}", max).await.unwrap().is_none());
    // Another account is not held up; through the API the caller hears 429 with Vantage's error body.
    let (other, other_token) = app.other_account().await;
    assert!(app.store.create_data_export(&other.token, &token(100), "{}", max).await.unwrap().is_some());
    let res = app.post("/v2/costs/data_exports", json!({"start_date": "2024-07-01", "end_date": "2024-07-31"})).await;
    assert_eq!(res.status, 429, "{}", res.text);
    assert!(res.error_text().contains("data exports running"), "{}", res.text);
    let res = app
        .send(
            Method::POST,
            "/v2/costs/data_exports",
            Some(&other_token),
            Some(json!({"start_date": "2024-07-01"}).to_string()),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text);
    // One finishes: there is room again.
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    app.store.finish_data_export(&token(0), Ok(1), until).await.unwrap();
    assert!(app.store.create_data_export(account, &token(max + 1), "{}", max).await.unwrap().is_some());
}

async fn an_export_whose_node_stopped_is_failed_and_a_running_one_is_not(app: TestApp) {
    use costd::store::FileIntent;
    let now = costd::service::files::now_ms();
    let account = &app.account.token;
    // Two exports started a while ago: one on a node that still renews its lease, one on a node that died.
    for (token, lease_until_ms) in [("dta_xprt_00000000000000aa", now + 60_000), ("dta_xprt_00000000000000bb", now - 1)]
    {
        let intent =
            FileIntent { token: token.into(), kind: FileIntent::EXPORT.into(), node: "n".into(), lease_until_ms };
        app.store.begin_file_intent(&intent).await.unwrap();
        app.store.create_data_export(account, token, "{}", 10).await.unwrap().unwrap();
    }
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    let valid_until = later + chrono::Duration::hours(1);
    assert_eq!(app.store.fail_stale_data_exports(later, now, valid_until).await.unwrap(), 1);
    for (token, status) in [("dta_xprt_00000000000000aa", "pending"), ("dta_xprt_00000000000000bb", "failed")] {
        assert_eq!(app.store.get_data_export(account, token).await.unwrap().unwrap().status, status, "{token}");
    }
    // The dead node's intent went with it; the live one stays.
    let left: Vec<String> = app.store.file_intents().await.unwrap().into_iter().map(|i| i.token).collect();
    assert_eq!(left, ["dta_xprt_00000000000000aa"]);
}
