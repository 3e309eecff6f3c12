//! Custom-provider integrations and cost uploads over real HTTP.

use std::path::PathBuf;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Resp, TestApp};

on_both_stores!(
    a_custom_provider_integration_is_created_listed_updated_and_deleted,
    the_focus_sample_uploads_as_it_is_with_its_exact_amount,
    a_bad_csv_is_422_with_row_numbers_and_stores_nothing,
    uploads_need_multipart_a_csv_field_and_an_own_integration,
    the_same_filename_replaces_the_earlier_upload,
    a_deleted_upload_vanishes_from_scans_and_disk,
    deleting_an_integration_removes_its_uploads,
    concurrent_uploads_lose_and_double_nothing,
    hostile_bytes_are_422_with_the_row_never_a_panic,
    a_truncated_file_is_refused_whole,
    uploads_arrive_as_vantage_clients_send_them,
    a_delete_racing_a_replace_of_the_same_upload_never_fails,
    an_upload_file_written_before_the_kept_focus_columns_is_still_read,
    the_kept_focus_columns_are_stored_from_the_sample,
);

pub const HEADER: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId";

/// A small clean CSV whose BilledCost sums to `rows` × 1.25.
pub fn csv(rows: usize) -> String {
    let mut s = format!("{HEADER}\n");
    for i in 0..rows {
        s.push_str(&format!("Usage,2024-09-{:02},1.25,Service {},us-east-1\n", i % 28 + 1, i % 3));
    }
    s
}

/// An upload row of one 1.0 USD row on 2024-09-01, as a commit records it (for tests that go to the store
/// directly).
pub fn upload_row(
    app: &TestApp,
    integration: &costd::model::token::IntegrationToken,
    token: costd::model::token::UploadToken,
    filename: &str,
) -> costd::store::Upload {
    let day = chrono::NaiveDate::from_ymd_opt(2024, 9, 1).unwrap();
    costd::store::Upload {
        token,
        integration_token: integration.clone(),
        filename: filename.into(),
        amount: costd::model::amount::Amount::parse("amount", "1.0").unwrap(),
        currency: "USD".into(),
        rows: 1,
        start_date: day,
        end_date: day,
        import_status: "complete".into(),
        created_by_token: app.account.owner_user_token.clone(),
        created_at: chrono::Utc::now(),
        rollup_decimals: None,
    }
}

pub fn focus_sample() -> Option<Vec<u8>> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/focus/focus_sample_1000_multicloud_focus1.0.csv");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(_) if std::env::var("CI").is_err() => {
            eprintln!("SKIPPED: no FOCUS sample at {}", path.display());
            None
        }
        Err(e) => panic!("CI must have the FOCUS sample at {}: {e}", path.display()),
    }
}

impl TestApp {
    pub async fn create_integration(&self, name: &str) -> Value {
        let res = self.post("/v2/integrations/custom_provider", json!({"name": name, "description": "test"})).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    pub async fn upload(&self, integration: &str, filename: &str, body: Vec<u8>) -> Resp {
        self.upload_as(&self.token, integration, filename, body).await
    }

    pub async fn upload_as(&self, token: &str, integration: &str, filename: &str, body: Vec<u8>) -> Resp {
        let form =
            Form::new().text("auto_transform", "false").part("csv", Part::bytes(body).file_name(filename.to_string()));
        self.post_form(&format!("/v2/integrations/{integration}/costs.csv"), token, form).await
    }

    /// Files in the uploads directory (committed and temporary).
    pub fn upload_files(&self) -> Vec<String> {
        match std::fs::read_dir(self.data_dir().join("uploads")) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Sum of the amounts the engine scans for these integrations, as an exact decimal string.
    pub async fn scanned_total(&self, integrations: &[&str]) -> (usize, String) {
        use arrow::array::AsArray;
        use arrow::datatypes::Decimal128Type;
        let tokens: Vec<costd::model::token::IntegrationToken> = integrations.iter().map(|s| (*s).into()).collect();
        let scanned =
            costd::service::uploads::scan_live_uploads(self.store.as_ref(), &self.files, &self.account.token, &tokens)
                .await
                .unwrap();
        let (mut rows, mut sum) = (0usize, 0i128);
        for (_, batches) in scanned {
            for b in batches {
                rows += b.num_rows();
                sum += b.column(1).as_primitive::<Decimal128Type>().iter().map(|v| v.unwrap()).sum::<i128>();
            }
        }
        (rows, costd::engine::ingest::parse::format_amount(sum))
    }
}

async fn a_custom_provider_integration_is_created_listed_updated_and_deleted(app: TestApp) {
    let created = app.create_integration("Datadog").await;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("accss_crdntl_"));
    assert_eq!(created["provider"], "custom_provider");
    assert_eq!(created["account_identifier"], "Datadog");
    assert_eq!(created["status"], "imported");
    assert_eq!(created["workspace_tokens"], json!([]));
    assert_eq!(created["managed_account_tokens"], json!([]));
    assert_eq!(created["last_updated"], Value::Null);

    let list = app.get("/v2/integrations?provider=custom_provider").await;
    assert_eq!(list.body["integrations"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/v2/integrations?provider=aws").await.body["integrations"], json!([]));
    assert_eq!(app.get(&format!("/v2/integrations/{token}")).await.body, created);

    let ws = app.get("/v2/me").await.body["default_workspace_token"].clone();
    let updated = app.put(&format!("/v2/integrations/{token}"), json!({"workspace_tokens": [ws]})).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["workspace_tokens"], json!([ws]));
    let bad =
        app.put(&format!("/v2/integrations/{token}"), json!({"workspace_tokens": ["wrkspc_0000000000000000"]})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.error_text().contains("no workspace wrkspc_0000000000000000"), "{}", bad.text);

    assert_eq!(app.post("/v2/integrations/custom_provider", json!({"description": "no name"})).await.status, 400);
    assert_eq!(app.delete(&format!("/v2/integrations/{token}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/integrations/{token}")).await.status, 404);
}

async fn the_focus_sample_uploads_as_it_is_with_its_exact_amount(app: TestApp) {
    let Some(sample) = focus_sample() else { return };
    let integration = app.create_integration("FOCUS").await["token"].as_str().unwrap().to_string();
    let res = app.upload(&integration, "focus_sample.csv", sample).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.body["token"].as_str().unwrap().starts_with("usr_csts_upld_"));
    assert_eq!(res.body["filename"], "focus_sample.csv");
    assert_eq!(res.body["amount"], "20.52022672899");
    assert_eq!(res.body["import_status"], "complete");
    assert_eq!(res.body["created_by_token"], app.account.owner_user_token.as_str());
    assert!(res.body["start_date"].as_str().unwrap().starts_with("2024-"));

    let list = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(list.body["user_costs_uploads"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["user_costs_uploads"][0], res.body);
    assert_eq!(app.scanned_total(&[&integration]).await, (1000, "20.52022672899".to_string()));
    assert!(app.get(&format!("/v2/integrations/{integration}")).await.body["last_updated"].is_string());
}

async fn a_bad_csv_is_422_with_row_numbers_and_stores_nothing(app: TestApp) {
    let integration = app.create_integration("Bad").await["token"].as_str().unwrap().to_string();
    let body = format!("{HEADER}\nUsage,2024-09-01,1,EC2,x\nNope,2024-09-01,1,EC2,x\nUsage,someday,1,EC2,x\n");
    let res = app.upload(&integration, "bad.csv", body.into_bytes()).await;
    assert_eq!(res.status, 422, "{}", res.text);
    let errors = res.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("Row 2: ChargeCategory \"Nope\""), "{errors:?}");
    assert!(errors[1].starts_with("Row 3: ChargePeriodStart \"someday\""), "{errors:?}");
    for (body, expected) in [("", "The file is empty"), ("Foo,Bar\n1,2\n", "missing required column(s)")] {
        let res = app.upload(&integration, "bad.csv", body.as_bytes().to_vec()).await;
        assert_eq!(res.status, 422);
        assert!(res.error_text().contains(expected), "{}", res.text);
    }
    assert_eq!(app.get(&format!("/v2/integrations/{integration}/costs")).await.body["user_costs_uploads"], json!([]));
    assert_eq!(app.upload_files(), Vec::<String>::new(), "a rejected upload leaves no file");
}

async fn uploads_need_multipart_a_csv_field_and_an_own_integration(app: TestApp) {
    let integration = app.create_integration("Mine").await["token"].as_str().unwrap().to_string();
    let path = format!("/v2/integrations/{integration}/costs.csv");
    let not_multipart = app.post(&path, json!({"csv": "ChargeCategory"})).await;
    assert_eq!(not_multipart.status, 400);
    assert!(not_multipart.error_text().contains("multipart/form-data"), "{}", not_multipart.text);

    let form = Form::new().text("auto_transform", "true");
    let res = app
        .client
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(&app.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("csv"));

    let (_, other) = app.other_account().await;
    let res = app.upload_as(&other, &integration, "x.csv", csv(1).into_bytes()).await;
    assert_eq!(res.status, 404);
    let res =
        app.send(reqwest::Method::GET, &format!("/v2/integrations/{integration}/costs"), Some(&other), None).await;
    assert_eq!(res.status, 404);
    assert_eq!(app.upload("accss_crdntl_0000000000000000", "x.csv", csv(1).into_bytes()).await.status, 404);
    let read_only = app.mint(&app.account, "read").await;
    assert_eq!(app.upload_as(&read_only, &integration, "x.csv", csv(1).into_bytes()).await.status, 403);
}

async fn the_same_filename_replaces_the_earlier_upload(app: TestApp) {
    let integration = app.create_integration("Replace").await["token"].as_str().unwrap().to_string();
    let first = app.upload(&integration, "costs.csv", csv(4).into_bytes()).await;
    assert_eq!(first.body["amount"], "5.0");
    let other = app.upload(&integration, "other.csv", csv(1).into_bytes()).await;
    assert_eq!(other.status, 201);
    let second = app.upload(&integration, "costs.csv", csv(2).into_bytes()).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["amount"], "2.5");

    let list = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    let tokens: Vec<&str> =
        list.body["user_costs_uploads"].as_array().unwrap().iter().map(|u| u["token"].as_str().unwrap()).collect();
    assert_eq!(tokens, vec![other.body["token"].as_str().unwrap(), second.body["token"].as_str().unwrap()]);
    assert_eq!(app.scanned_total(&[&integration]).await, (3, "3.75".to_string()));
    assert_eq!(app.upload_files().len(), 3, "the replaced file stays until the janitor's pass");
    assert_eq!(app.collect_files().await.retired, 1);
    assert_eq!(app.upload_files().len(), 2, "the replaced file is gone: {:?}", app.upload_files());
}

async fn a_deleted_upload_vanishes_from_scans_and_disk(app: TestApp) {
    let integration = app.create_integration("Delete").await["token"].as_str().unwrap().to_string();
    let up = app.upload(&integration, "a.csv", csv(3).into_bytes()).await;
    let upload = up.body["token"].as_str().unwrap();
    assert_eq!(app.scanned_total(&[&integration]).await.0, 3);
    let path = format!("/v2/integrations/{integration}/costs/{upload}");
    assert_eq!(app.delete(&path).await.status, 204);
    assert_eq!(app.scanned_total(&[&integration]).await, (0, "0.0".to_string()));
    assert_eq!(app.collect_files().await.retired, 1);
    assert!(app.upload_files().is_empty());
    assert_eq!(app.delete(&path).await.status, 404);
}

async fn deleting_an_integration_removes_its_uploads(app: TestApp) {
    let gone = app.create_integration("Gone").await["token"].as_str().unwrap().to_string();
    let kept = app.create_integration("Kept").await["token"].as_str().unwrap().to_string();
    app.upload(&gone, "a.csv", csv(2).into_bytes()).await;
    app.upload(&gone, "b.csv", csv(2).into_bytes()).await;
    app.upload(&kept, "a.csv", csv(1).into_bytes()).await;
    assert_eq!(app.delete(&format!("/v2/integrations/{gone}")).await.status, 204);
    assert_eq!(app.collect_files().await.retired, 2);
    assert_eq!(app.upload_files().len(), 1);
    assert_eq!(app.scanned_total(&[&gone, &kept]).await, (1, "1.25".to_string()));
}

async fn concurrent_uploads_lose_and_double_nothing(app: TestApp) {
    let integration = app.create_integration("Busy").await["token"].as_str().unwrap().to_string();
    // Four distinct files and three racing uploads of one filename.
    let names = ["a.csv", "b.csv", "c.csv", "d.csv", "same.csv", "same.csv", "same.csv"];
    let results =
        futures::future::join_all(names.iter().map(|n| app.upload(&integration, n, csv(100).into_bytes()))).await;
    assert!(results.iter().all(|r| r.status == 201), "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    let list = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(list.body["user_costs_uploads"].as_array().unwrap().len(), 5);
    assert_eq!(app.scanned_total(&[&integration]).await, (500, "625.0".to_string()));
    app.collect_files().await;
    assert_eq!(app.upload_files().len(), 5, "{:?}", app.upload_files());

    // A delete racing an upload: afterwards nothing of the integration remains, whichever won.
    let integration_path = format!("/v2/integrations/{integration}");
    let (up, del) =
        tokio::join!(app.upload(&integration, "late.csv", csv(20_000).into_bytes()), app.delete(&integration_path));
    assert_eq!(del.status, 204);
    assert!(up.status == 201 || up.status == 404, "{}", up.text);
    assert_eq!(app.scanned_total(&[&integration]).await.0, 0);
    // A late winner's file is retired with the integration, or removed by the upload noticing it is gone.
    app.collect_files().await;
    assert!(app.upload_files().is_empty(), "{:?}", app.upload_files());
}

/// Uploads `body` and returns the response, asserting nothing was kept.
async fn refused(app: &TestApp, integration: &str, body: Vec<u8>) -> Resp {
    let res = app.upload(integration, "hostile.csv", body).await;
    let listed = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(listed.body["user_costs_uploads"], json!([]), "nothing is kept after {}", res.text);
    res
}

async fn hostile_bytes_are_422_with_the_row_never_a_panic(app: TestApp) {
    let integration = app.create_integration("Hostile").await["token"].as_str().unwrap().to_string();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    // A non-ASCII letter inside a date.
    cases.push((format!("{HEADER}\nUsage,2024-09-0\u{e9},1,EC2,x\n").into_bytes(), "Row 1: ChargePeriodStart"));
    cases.push((
        format!("{HEADER}\nUsage,2024-09-01T10:0\u{e9}:00Z,1,EC2,x\n").into_bytes(),
        "Row 1: ChargePeriodStart",
    ));
    // One two-byte character split across two fields: the row's bytes are valid UTF-8, each field is not.
    let mut split = format!("{HEADER}\nUsage,2024-09-01,1,EC").into_bytes();
    split.extend_from_slice(&[0xc3, b',', 0xa9]);
    split.extend_from_slice(b"x\n");
    cases.push((split, "Row 1: ServiceName is not valid UTF-8"));
    // The gzip signature followed by something that is not gzip.
    let mut not_gzip = vec![0x1f, 0x8b];
    not_gzip.extend_from_slice(b"this is not a gzip stream at all");
    cases.push((not_gzip, "gzip"));
    // A gzip stream cut short.
    let mut gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(csv(2000).as_bytes()).unwrap();
        e.finish().unwrap()
    };
    gz.truncate(gz.len() / 2);
    cases.push((gz, "gzip"));
    // A field far past the documented limit.
    let long = "x".repeat(costd::engine::ingest::MAX_FIELD_BYTES + 1);
    cases.push((
        format!("{HEADER}\nUsage,2024-09-01,1,EC2,x\nUsage,2024-09-01,1,{long},x\n").into_bytes(),
        "Row 2: a field is longer than",
    ));
    for (body, expected) in cases {
        let res = refused(&app, &integration, body).await;
        assert_eq!(res.status, 422, "{expected}: {}", res.text);
        assert!(res.error_text().contains(expected), "expected {expected:?} in {}", res.text);
    }
    assert_eq!(app.upload_files(), Vec::<String>::new(), "a refused upload leaves no file");
}

async fn a_truncated_file_is_refused_whole(app: TestApp) {
    let integration = app.create_integration("Cut").await["token"].as_str().unwrap().to_string();
    // The file ends inside a quoted field: the cut could have dropped any number of rows.
    let body = format!("{HEADER}\nUsage,2024-09-01,1,EC2,x\nUsage,2024-09-02,2,\"EC2 with a\nnewline");
    let res = refused(&app, &integration, body.into_bytes()).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("ends inside a quoted field"), "{}", res.text);
    // Closed quotes are fine, with or without a final newline.
    let body = format!("{HEADER}\nUsage,2024-09-01,1,EC2,x\nUsage,2024-09-02,2,\"EC2 with a\nnewline\",x");
    assert_eq!(app.upload(&integration, "ok.csv", body.into_bytes()).await.status, 201);
}

async fn uploads_arrive_as_vantage_clients_send_them(app: TestApp) {
    let integration = app.create_integration("Clients").await["token"].as_str().unwrap().to_string();
    let url = format!("{}/v2/integrations/{integration}/costs.csv", app.base_url);
    // vantage-python: httpx `data={"csv": …}`, a form-urlencoded body (a form Vantage's spec lists).
    let path = format!("/v2/integrations/{integration}/costs.csv");
    let fields = [("auto_transform", "false"), ("csv", &csv(3))];
    let res = app.send_urlencoded(reqwest::Method::POST, &path, &app.token, &fields).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let first: Value = res.body;
    assert_eq!(first["amount"], "3.75");
    assert_eq!(first["filename"], format!("{}.csv", first["token"].as_str().unwrap()), "named after its token");

    // @vantage-sh/vantage-client: FormData sent with its own `Content-Type: multipart/form-data` header, which
    // has no boundary; the boundary is the body's first line.
    let boundary = "----formdata-undici-0123456789";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"blob\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(csv(2).as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = app
        .client
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "multipart/form-data")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["amount"], "2.5");
    assert_eq!(
        second["filename"],
        format!("{}.csv", second["token"].as_str().unwrap()),
        "FormData's `blob` is no name"
    );

    // Unnamed uploads never replace each other: both count.
    assert_eq!(app.scanned_total(&[&integration]).await, (5, "6.25".to_string()));

    // Broken bodies are 400s that say what is wrong, and leave nothing.
    for (content_type, body, expected) in [
        ("application/x-www-form-urlencoded", "auto_transform=true".to_string(), "field csv"),
        ("application/x-www-form-urlencoded", "csv=abc%2".to_string(), "%-escape"),
        (
            "multipart/form-data",
            "no boundary here at all, just text that goes on and on past eighty bytes....".to_string(),
            "boundary",
        ),
        ("text/csv", csv(1), "multipart/form-data or application/x-www-form-urlencoded"),
    ] {
        let res = app
            .client
            .post(&url)
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "{content_type}");
        let text = res.text().await.unwrap();
        assert!(text.contains(expected), "{content_type}: expected {expected:?} in {text}");
    }
    assert_eq!(
        app.get(&format!("/v2/integrations/{integration}/costs")).await.body["user_costs_uploads"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_413_and_leaves_nothing() {
    for backend in [crate::helpers::Backend::Sqlite, crate::helpers::Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, |s| s.max_upload_bytes = Some(1000)).await else { continue };
        let integration = app.create_integration("Limited").await["token"].as_str().unwrap().to_string();
        assert_eq!(app.upload(&integration, "small.csv", csv(10).into_bytes()).await.status, 201);
        let res = app.upload(&integration, "big.csv", csv(100).into_bytes()).await;
        assert_eq!(res.status, 413, "{}", res.text);
        assert!(res.error_text().contains("larger than the upload limit of 1000 bytes"), "{}", res.text);
        // The limit counts the CSV, so a small gzip of a large file is refused too.
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(csv(100).as_bytes()).unwrap();
            e.finish().unwrap()
        };
        assert!(gz.len() < 1000);
        assert_eq!(app.upload(&integration, "big.csv.gz", gz).await.status, 413);
        let listed = app.get(&format!("/v2/integrations/{integration}/costs")).await;
        assert_eq!(listed.body["user_costs_uploads"].as_array().unwrap().len(), 1);
        assert_eq!(app.upload_files().len(), 1, "{:?}", app.upload_files());
    }
}

async fn a_delete_racing_a_replace_of_the_same_upload_never_fails(app: TestApp) {
    let integration = app.create_integration("Race").await["token"].as_str().unwrap().to_string();
    let mut current =
        app.upload(&integration, "same.csv", csv(5).into_bytes()).await.body["token"].as_str().unwrap().to_string();
    for _ in 0..25 {
        // The replace locks the integration and then the upload's row; the delete must take them in that order
        // too, or PostgreSQL finds a deadlock and one of them fails.
        let path = format!("/v2/integrations/{integration}/costs/{current}");
        let (replaced, deleted) =
            tokio::join!(app.upload(&integration, "same.csv", csv(5).into_bytes()), app.delete(&path));
        assert_eq!(replaced.status, 201, "{}", replaced.text);
        assert!(deleted.status == 204 || deleted.status == 404, "{} {}", deleted.status, deleted.text);
        current = replaced.body["token"].as_str().unwrap().to_string();
    }
    let listed = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(listed.body["user_costs_uploads"].as_array().unwrap().len(), 1);

    // The same race at the store, without the ingest between them, many times: no deadlock, no error.
    let integration = costd::model::token::IntegrationToken::from(integration.as_str());
    let mut current = costd::model::token::UploadToken::from(current.as_str());
    let record = |token: costd::model::token::UploadToken| upload_row(&app, &integration, token, "same.csv");
    let account = app.account.token.clone();
    let catalog = costd::engine::discovery::Catalog::default();
    for i in 0..200 {
        let next = costd::model::token::UploadToken::from(format!("usr_csts_upld_race{i:08}"));
        let upload = record(next.clone());
        let intent = costd::store::FileIntent {
            token: next.to_string(),
            kind: costd::store::FileIntent::UPLOAD.into(),
            node: "test".into(),
            lease_until_ms: i64::MAX,
        };
        app.store.begin_file_intent(&intent).await.unwrap();
        let (committed, deleted) = tokio::join!(
            app.store.commit_upload(&account, &upload, &catalog),
            app.store.delete_upload(&account, &integration, &current)
        );
        committed.unwrap();
        deleted.unwrap();
        current = next;
    }
}

/// Upload files written before costd kept BillingPeriodStart, ChargeClass, ListCost and the rest (16 columns)
/// are read as they are: the new columns are null there, and every amount is what it was.
async fn an_upload_file_written_before_the_kept_focus_columns_is_still_read(app: TestApp) {
    use arrow::array::{new_null_array, ArrayRef, Date32Array, Decimal128Array, DictionaryArray};
    use arrow::datatypes::{Int32Type, Schema};
    use std::sync::Arc;
    const OLD: [&str; 16] = [
        "accrued_at",
        "amount",
        "amortized_amount",
        "currency",
        "charge_type",
        "service",
        "cost_category",
        "cost_subcategory",
        "region",
        "resource_id",
        "resource_name",
        "account_id",
        "billing_account_id",
        "usage_amount",
        "usage_unit",
        "tags",
    ];
    let schema = costd::engine::schema::cost_schema();
    let old = Arc::new(Schema::new(OLD.iter().map(|n| schema.field_with_name(n).unwrap().clone()).collect::<Vec<_>>()));
    let columns: Vec<ArrayRef> = old
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            let dict =
                |v: &str| Arc::new(vec![Some(v)].into_iter().collect::<DictionaryArray<Int32Type>>()) as ArrayRef;
            match f.name().as_str() {
                "accrued_at" => Arc::new(Date32Array::from(vec![19967])), // 2024-09-01
                "amount" => Arc::new(
                    Decimal128Array::from(vec![2_500_000_000_000_000_000i128])
                        .with_precision_and_scale(38, 18)
                        .unwrap(),
                ),
                "currency" => dict("USD"),
                "charge_type" => dict("Usage"),
                "service" => dict("Old EC2"),
                _ => new_null_array(f.data_type(), 1),
            }
        })
        .collect();
    let batch = arrow::record_batch::RecordBatch::try_new(old.clone(), columns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("old.parquet.tmp");
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&tmp).unwrap(), old, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let integration = app.create_integration("Old").await["token"].as_str().unwrap().to_string();
    let token = "usr_csts_upld_00112233445566aa";
    let intent = costd::store::FileIntent {
        token: token.into(),
        kind: costd::store::FileIntent::UPLOAD.into(),
        node: "an-older-costd:1:abc".into(),
        lease_until_ms: costd::service::files::now_ms() + 60_000,
    };
    app.store.begin_file_intent(&intent).await.unwrap();
    app.files.storage().put_file(&tmp, &format!("{token}.parquet")).await.unwrap();
    let upload = upload_row(&app, &integration.as_str().into(), token.into(), "old.csv");
    let catalog = costd::engine::discovery::Catalog::default();
    app.store.commit_upload(&app.account.token, &upload, &catalog).await.unwrap();

    let res = app.get("/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service&date_bin=month").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["costs"][0]["service"], "Old EC2", "{}", res.text);
    assert_eq!(res.body["costs"][0]["amount"], "2.5", "{}", res.text);
}

/// The sample's BillingPeriodStart, ListCost, CommitmentDiscountType … land in the upload's file, exactly.
async fn the_kept_focus_columns_are_stored_from_the_sample(app: TestApp) {
    let Some(sample) = focus_sample() else { return };
    let integration = app.create_integration("Sample").await["token"].as_str().unwrap().to_string();
    let res = app.upload(&integration, "sample.csv", sample.clone()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let upload = res.body["token"].as_str().unwrap().to_string();
    let batches = app.files.storage().read(&upload).await.unwrap();
    let mut list_cost = rust_decimal::Decimal::ZERO;
    let mut classes = Vec::new();
    let mut periods = std::collections::BTreeSet::new();
    for b in &batches {
        use arrow::array::{Array, AsArray};
        let lc = b.column_by_name("list_cost").unwrap().as_primitive::<arrow::datatypes::Decimal128Type>();
        for i in 0..lc.len() {
            if !lc.is_null(i) {
                list_cost += rust_decimal::Decimal::from_i128_with_scale(lc.value(i), 18);
            }
        }
        let bp = b.column_by_name("billing_period_start").unwrap().as_primitive::<arrow::datatypes::Date32Type>();
        periods.extend((0..bp.len()).filter(|&i| !bp.is_null(i)).map(|i| bp.value(i)));
        let cc = arrow::compute::cast(
            b.column_by_name("commitment_discount_type").unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let cc = cc.as_string::<i32>();
        classes.extend((0..cc.len()).filter(|&i| !cc.is_null(i)).map(|i| cc.value(i).to_string()));
        assert!(
            b.column_by_name("charge_class").unwrap().null_count() == b.num_rows(),
            "the sample has no ChargeClass"
        );
    }
    // The reference: the sample's own ListCost column, summed exactly.
    let text = String::from_utf8(sample).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let at = reader.headers().unwrap().iter().position(|h| h == "ListCost").unwrap();
    let expected: rust_decimal::Decimal = reader
        .records()
        .map(|r| r.unwrap()[at].to_string())
        .filter(|v| v != "NULL" && !v.is_empty())
        .map(|v| v.parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(list_cost.normalize(), expected.normalize());
    assert_eq!(periods.len(), 2, "September and the one October row: {periods:?}");
    assert_eq!(classes, vec!["Savings Plan"; 4], "the sample's CommitmentDiscountType");
}
