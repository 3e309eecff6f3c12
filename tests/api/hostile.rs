//! Hostile input anywhere stays the sender's problem (issue 33): export files past every upload limit, a
//! reader that dies half-way, syncs without a bound, custom rules that multiply rows, connections that say
//! nothing, errors a client could not read, a back door into bucket integrations, and the layouts clouds
//! really write (several Azure exports under one root, replicated AWS exports). Each ends in a clear error
//! (or the right total), with nothing half-written.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bills::{
    aws_body, aws_manifest, azure_manifest, gzip, parquet_chunk, recorded_integration, spawn_allowing,
    spawn_allowing_with, Azurite, AZURE_HEADER, AZURITE_ACCOUNT, AZURITE_KEY,
};
use crate::helpers::{on_both_stores, Backend, TestApp};
use crate::scale::S3Server;
use crate::uploads::csv;

on_both_stores!(
    hostile_export_files_fail_their_period_naming_the_file_and_keep_its_last_data,
    a_period_past_the_upload_limit_is_refused_and_keeps_its_last_data,
    syncs_are_claimed_once_per_integration_and_bounded_per_account,
    custom_rules_that_multiply_rows_stop_with_a_clear_422,
    an_error_answered_before_the_body_is_read_reaches_the_client,
    several_azure_exports_under_one_root_make_one_month_and_other_datasets_are_skipped,
    a_replicated_aws_export_and_its_partition_manifest_are_read,
);

const KEY: &str = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00001.snappy.parquet";
const MANIFEST: &str = "cur/focus/metadata/BILLING_PERIOD=2024-10/focus-Manifest.json";

/// An AWS integration over an October already loaded (12.34): (app, s3, bucket, integration).
async fn loaded_october(
    backend: Backend,
    configure: impl FnOnce(&mut costd::http::AppState),
) -> Option<(TestApp, S3Server, String, String)> {
    let s3 = S3Server::start().await?;
    let app = spawn_allowing_with(backend, &s3.endpoint, configure).await;
    let bucket = s3.bucket().await;
    s3.deliver(
        &bucket,
        "2024-10",
        "exec-1",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-10-01", "12.34", "AmazonEC2", "web")]))],
    )
    .await;
    let res = app.post("/v2/integrations/aws", aws_body(&s3, &bucket)).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.settled(&token).await["status"], "imported");
    Some((app, s3, bucket, token))
}

/// Replaces October with `files` (key, bytes) under a new execution, syncs, and answers `last_error`.
async fn deliver_and_fail(
    app: &TestApp,
    s3: &S3Server,
    bucket: &str,
    token: &str,
    exec: &str,
    files: Vec<(String, Vec<u8>)>,
) -> String {
    let mut keys = Vec::new();
    for (key, body) in files {
        s3.put_bytes(bucket, &key, body).await;
        keys.push(key);
    }
    s3.put_bytes(bucket, MANIFEST, aws_manifest(bucket, exec, &keys)).await;
    let synced = app.sync(token, "").await;
    assert_eq!(synced["status"], "error", "{synced}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("12.34").unwrap(), "last good data kept");
    synced["last_error"].as_str().unwrap().to_string()
}

/// A FOCUS Parquet chunk of `rows` rows of 1.00 whose text is written through the dictionary, with
/// `start(i)` as each row's ChargePeriodStart (milliseconds) and `service` as every row's ServiceName.
fn focus_parquet(rows: usize, service: &str, start: impl Fn(usize) -> i64) -> Vec<u8> {
    use arrow::array::{Array, Decimal128Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    let starts = TimestampMillisecondArray::from((0..rows).map(&start).collect::<Vec<_>>()).with_timezone("UTC");
    let cost = Decimal128Array::from(vec![100i128; rows]).with_precision_and_scale(38, 2).unwrap();
    // One distinct value, referenced by every row (a plain array of 20,000 long values would not fit).
    let service = arrow::array::DictionaryArray::new(
        arrow::array::Int32Array::from(vec![0; rows]),
        Arc::new(StringArray::from(vec![service])),
    );
    let category = StringArray::from(vec!["Usage"; rows]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("ChargePeriodStart", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("BilledCost", cost.data_type().clone(), false),
        Field::new("ServiceName", service.data_type().clone(), false),
        Field::new("ChargeCategory", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(starts), Arc::new(cost), Arc::new(service), Arc::new(category)],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    // As a writer other than Arrow's leaves it: no Arrow schema saying the column is a dictionary.
    let options =
        parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new_with_options(&mut out, schema, options).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

const OCT_1: i64 = 1_727_740_800_000;

async fn hostile_export_files_fail_their_period_naming_the_file_and_keep_its_last_data(app: TestApp) {
    let Some((app, s3, bucket, token)) = loaded_october(app.backend, |_| {}).await else { return };
    let other = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00002.csv.gz".to_string();

    // A gzip CSV whose quote never closes: a few KB that would decompress into one endless row.
    let mut open_quote = format!("{AZURE_HEADER}\n1,USD,Usage,2024-10-02T00:00:00Z,\"EC2").into_bytes();
    open_quote.extend(std::iter::repeat_n(b'x', 6 << 20));
    let packed = gzip(&open_quote);
    assert!(packed.len() < 64 << 10, "{} bytes", packed.len());
    let error = deliver_and_fail(&app, &s3, &bucket, &token, "exec-2", vec![(other.clone(), packed)]).await;
    assert!(error.contains(&format!("{other}: Row 1: the row is longer than")), "{error}");

    // A Parquet chunk whose ServiceName repeats a 200 KB value on 20,000 rows through its dictionary.
    let long = "s".repeat(200_000);
    let chunk = focus_parquet(20_000, &long, |_| OCT_1);
    assert!(chunk.len() < 64 << 10, "{} bytes", chunk.len());
    let error = deliver_and_fail(&app, &s3, &bucket, &token, "exec-3", vec![(KEY.into(), chunk)]).await;
    assert!(error.contains(&format!("{KEY}, row 1: a field is longer than 65536 bytes (ServiceName)")), "{error}");

    // One '-infinity' timestamp on row 15,000 of 20,000: the period fails naming file and row, never
    // commits the rows before it as the whole period.
    let chunk = focus_parquet(20_000, "AmazonEC2", |i| if i == 14_999 { i64::MIN } else { OCT_1 });
    let error = deliver_and_fail(&app, &s3, &bucket, &token, "exec-4", vec![(KEY.into(), chunk)]).await;
    assert!(error.contains(&format!("{KEY}, row 15000: ChargePeriodStart")), "{error}");

    // A header of 3,000 columns, and a manifest listing one file twice.
    let wide: Vec<String> = (0..3000).map(|i| format!("x_{i}")).collect();
    let wide = gzip(format!("{AZURE_HEADER},{}\n", wide.join(",")).as_bytes());
    let started = Instant::now();
    let error = deliver_and_fail(&app, &s3, &bucket, &token, "exec-5", vec![(other.clone(), wide)]).await;
    assert!(error.contains(&format!("{other}: has 3007 columns, more than the 2000")), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let good = parquet_chunk(&[("2024-10-03", "1", "AmazonS3", "data")]);
    s3.put_bytes(&bucket, KEY, good).await;
    s3.put_bytes(&bucket, MANIFEST, aws_manifest(&bucket, "exec-6", &[KEY.into(), KEY.into()])).await;
    let synced = app.sync(&token, "").await;
    assert!(synced["last_error"].as_str().unwrap().contains(&format!("lists {KEY} more than once")), "{synced}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("12.34").unwrap());

    // Through all of it, the server answers another tenant at once.
    let (_, other_token) = app.other_account().await;
    let asked = Instant::now();
    let res = app.send(reqwest::Method::GET, "/v2/integrations", Some(&other_token), None).await;
    assert_eq!(res.status, 200);
    assert!(asked.elapsed() < Duration::from_secs(5));
}

async fn a_period_past_the_upload_limit_is_refused_and_keeps_its_last_data(app: TestApp) {
    let configure = |state: &mut costd::http::AppState| state.max_upload_bytes = Some(4096);
    let Some((app, s3, bucket, token)) = loaded_october(app.backend, configure).await else { return };
    let rows: Vec<String> =
        (0..200).map(|i| format!("1,USD,Usage,2024-10-02T00:00:00Z,Service {i},Microsoft,")).collect();
    let big = gzip(format!("{AZURE_HEADER}\n{}\n", rows.join("\n")).as_bytes());
    let key = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00002.csv.gz".to_string();
    let error = deliver_and_fail(&app, &s3, &bucket, &token, "exec-2", vec![(key.clone(), big)]).await;
    assert!(error.contains(&format!("{key}: the period's files hold more than 4096 bytes")), "{error}");
}

/// A TCP server that closes every connection at once, or (once `hang` is set) holds each one open and never
/// answers: an S3 endpoint a sync waits on for as long as its time-outs allow.
async fn tarpit() -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let hang = Arc::new(AtomicBool::new(false));
    let holding = hang.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            if holding.load(Ordering::SeqCst) {
                held.push(stream);
            }
        }
    });
    (endpoint, hang)
}

async fn syncs_are_claimed_once_per_integration_and_bounded_per_account(app: TestApp) {
    let (endpoint, hang) = tarpit().await;
    let slots = Arc::new(costd::service::sync::SyncSlots::new(1, 8));
    let allowed = endpoint.clone();
    let Some(app) = TestApp::spawn_with(app.backend, |state| {
        state.allowed_endpoints = costd::model::bucket_export::AllowedEndpoints::parse(&[allowed], false).unwrap();
        state.sync_slots = slots.clone();
    })
    .await
    else {
        return;
    };
    let body = json!({"bucket": "bills", "prefix": "cur", "export_name": "focus", "region": "us-east-1",
                      "endpoint": endpoint, "access_key_id": "a", "secret_access_key": "b"});
    let res = app.post("/v2/integrations/aws", body.clone()).await;
    let first = res.body["token"].as_str().unwrap().to_string();
    // Its first sync fails fast (the endpoint closes every connection).
    assert_eq!(app.settled(&first).await["status"], "error");
    // Another node (or `costd sync` on the same data dir) holds the integration's lock: refused here.
    let elsewhere = app.store.try_lock(&format!("costd-sync:{first}")).await.unwrap().expect("free");
    let busy = app.post(&format!("/v2/integrations/{first}/sync"), json!({})).await;
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert!(busy.error_text().contains("already running on another node"), "{}", busy.text);
    elsewhere.release().await;

    // From now on the endpoint never answers. A waiting "Sync now" whose client gives up leaves its sync
    // running, still claimed: the next "Sync now" is refused, not started beside it.
    hang.store(true, Ordering::SeqCst);
    let gave_up = app
        .client
        .post(format!("{}/v2/integrations/{first}/sync?wait=true", app.base_url))
        .bearer_auth(&app.token)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(gave_up.is_err(), "the sync cannot finish: the endpoint never answers");
    let again = app.post(&format!("/v2/integrations/{first}/sync"), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.error_text().contains("already running"), "{}", again.text);

    // The account has one sync slot: a second integration's sync is refused while the first runs.
    let res = app.post("/v2/integrations/aws", body.clone()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let second = res.body["token"].as_str().unwrap().to_string();
    let refused = app.post(&format!("/v2/integrations/{second}/sync"), json!({})).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.error_text().contains("syncs running"), "{}", refused.text);

    // Another tenant syncs meanwhile.
    let (_, other_token) = app.other_account().await;
    let theirs =
        app.send(reqwest::Method::POST, "/v2/integrations/aws", Some(&other_token), Some(body.to_string())).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    let theirs = theirs.body["token"].as_str().unwrap().to_string();
    let started = app
        .send(reqwest::Method::POST, &format!("/v2/integrations/{theirs}/sync"), Some(&other_token), Some("{}".into()))
        .await;
    assert_eq!(started.status, 409, "its own first sync holds its claim: {}", started.text);
    assert_eq!(slots.overall.available_permits(), 6, "two syncs hold the node's slots, one per tenant");
}

/// `n` `INSERT … SELECT` statements, each adding a copy of every row with its amount moved by its own
/// power of two (so no two rows ever share an amount, and each statement doubles the rows).
fn doubling(n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "INSERT INTO costs (amount, service, accrued_at) SELECT amount + {}, MIN(service), MIN(accrued_at) \
                 FROM costs GROUP BY amount",
                1000u64 << i
            )
        })
        .collect::<Vec<_>>()
        .join(";\n")
}

async fn custom_rules_that_multiply_rows_stop_with_a_clear_422(app: TestApp) {
    let integration = app.create_integration("Doubled").await["token"].as_str().unwrap().to_string();
    let body =
        format!("{}\nUsage,2024-09-01,1,EC2,us-east-1\nUsage,2024-09-02,2,S3,us-east-1\n", crate::uploads::HEADER);
    let res = app.upload(&integration, "two.csv", body.into_bytes()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let view = |rule: &serde_json::Value, name: &str| {
        json!({"name": name, "contact_email": "m@x.io", "access_credential_tokens": [integration],
               "billing_rule_tokens": [rule["token"]]})
    };
    // 26 statements, under 4 KB of SQL: 2^26 times two rows.
    let sql = doubling(26);
    assert!(sql.len() < 4096, "{}", sql.len());
    let rule = app.create_rule(json!({"type": "custom", "title": "doubling", "sql_query": sql})).await;
    let managed = app.create_managed_account(view(&rule, "M")).await;
    let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let asked = Instant::now();
    let res =
        app.send(reqwest::Method::GET, "/v2/costs?start_date=2024-09-01&end_date=2024-09-30", Some(&token), None).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("the billing rules make too many rows"), "{}", res.text);
    assert!(res.error_text().contains(rule["token"].as_str().unwrap()), "{}", res.text);
    assert!(asked.elapsed() < Duration::from_secs(60), "{:?}", asked.elapsed());

    // Ten doublings stay within the bound, to the cent of the reference.
    let ten = app.create_rule(json!({"type": "custom", "title": "ten", "sql_query": doubling(10)})).await;
    let managed = app.create_managed_account(view(&ten, "N")).await;
    let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let mut amounts = vec![Decimal::ONE, Decimal::TWO];
    for i in 0..10 {
        let moved: Vec<Decimal> = amounts.iter().map(|a| a + Decimal::from(1000u64 << i)).collect();
        amounts.extend(moved);
    }
    let expected: Decimal = amounts.iter().sum();
    let res =
        app.send(reqwest::Method::GET, "/v2/costs?start_date=2024-09-01&end_date=2024-09-30", Some(&token), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let total = Decimal::from_str(res.body["total_cost"]["amount"].as_str().unwrap()).unwrap();
    assert_eq!(total, expected, "{}", res.text);
}

async fn an_error_answered_before_the_body_is_read_reaches_the_client(app: TestApp) {
    // 20 MB to an integration of another account: a 404 the client reads, not a broken pipe.
    let (_, other_token) = app.other_account().await;
    let theirs = app
        .send(
            reqwest::Method::POST,
            "/v2/integrations/custom_provider",
            Some(&other_token),
            Some(json!({"name": "Theirs"}).to_string()),
        )
        .await;
    let theirs = theirs.body["token"].as_str().unwrap().to_string();
    let mut body = csv(10).into_bytes();
    body.resize(20 << 20, b'\n');
    for (token, status) in [(app.token.as_str(), 404u16), ("no-such-token", 401)] {
        let res = app.upload_as(token, &theirs, "big.csv", body.clone()).await;
        assert_eq!(res.status, status, "{}", res.text);
    }
    // Past the drain's bound, the connection may close instead; the server stays up.
    let res = app.get("/v2/ping").await;
    assert_eq!(res.status, 200);
}

/// Costs of two subscriptions' FocusCost exports under one root, and a price sheet beside them.
async fn several_azure_exports_under_one_root_make_one_month_and_other_datasets_are_skipped(app: TestApp) {
    let Some(azurite) = Azurite::start().await else { return };
    let origin = azurite.endpoint.trim_end_matches(&format!("/{AZURITE_ACCOUNT}")).to_string();
    let app = spawn_allowing(app.backend, &origin).await;
    let export = |folder: &str, run: &str, kind: &str, csv: String| {
        let base = format!("costs/{folder}/20241001-20241031/{run}");
        let part = format!("{base}/part_0_0001.csv.gz");
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&azure_manifest(run, std::slice::from_ref(&part))).unwrap();
        manifest["exportConfig"]["type"] = json!(kind);
        manifest["exportConfig"]["exportName"] = json!(folder);
        vec![
            (part, Some(gzip(csv.as_bytes()))),
            (format!("{base}/manifest.json"), Some(serde_json::to_vec(&manifest).unwrap())),
        ]
    };
    let a = format!("{AZURE_HEADER}\n3.25,USD,Usage,2024-10-01T00:00:00Z,Virtual Machines,Microsoft,\n");
    let b = format!("{AZURE_HEADER}\n0.75,USD,Usage,2024-10-02T00:00:00Z,Storage,Microsoft,\n");
    let prices = "MeterId,UnitPrice,Currency\nabc,0.1,USD\n".to_string();
    azurite.put("exports", export("sub-a", "r1", "FocusCost", a)).await;
    azurite.put("exports", export("sub-b", "r7", "FocusCost", b)).await;
    azurite.put("exports", export("prices", "r3", "PriceSheet", prices)).await;

    let res = app
        .post(
            "/v2/integrations/azure",
            json!({"storage_account": AZURITE_ACCOUNT, "container": "exports", "root_folder_path": "costs",
                   "endpoint": azurite.endpoint, "account_key": AZURITE_KEY}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_string();
    let done = app.settled(&token).await;
    assert_eq!(done["status"], "imported", "{done}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("4.00").unwrap(), "both subscriptions");
    assert_eq!(app.uploads_of(&token).await.len(), 1, "one month, one upload");

    // A newer run of one subscription replaces its part of the month; the other's stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b2 = format!("{AZURE_HEADER}\n1.75,USD,Usage,2024-10-02T00:00:00Z,Storage,Microsoft,\n");
    azurite.put("exports", export("sub-b", "r8", "FocusCost", b2)).await;
    assert_eq!(app.sync(&token, "").await["status"], "imported");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("5.00").unwrap());
    // Nothing changed: nothing is read again.
    let before = app.uploads_of(&token).await;
    app.sync(&token, "").await;
    assert_eq!(app.uploads_of(&token).await[0]["token"], before[0]["token"]);
}

async fn a_replicated_aws_export_and_its_partition_manifest_are_read(app: TestApp) {
    let Some(s3) = S3Server::start().await else { return };
    let app = spawn_allowing(app.backend, &s3.endpoint).await;
    let bucket = s3.bucket().await;
    // Replicated from `source-bills`: the manifest still names the source bucket.
    let key = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00001.snappy.parquet";
    s3.put_bytes(&bucket, key, parquet_chunk(&[("2024-10-01", "2.5", "AmazonEC2", "web")])).await;
    s3.put_bytes(&bucket, MANIFEST, aws_manifest("source-bills", "exec-1", &[key.into()])).await;
    // Create-new delivery: a partition-level `Manifest.json` in its execution's folder.
    let sept = "cur/focus/data/BILLING_PERIOD=2024-09/20240930T000000Z/focus-00001.snappy.parquet";
    s3.put_bytes(&bucket, sept, parquet_chunk(&[("2024-09-03", "0.5", "AmazonS3", "data")])).await;
    let partition = "cur/focus/metadata/BILLING_PERIOD=2024-09/20240930T000000Z/Manifest.json";
    s3.put_bytes(&bucket, partition, aws_manifest(&bucket, "exec-9", &[sept.into()])).await;

    let res = app.post("/v2/integrations/aws", aws_body(&s3, &bucket)).await;
    let token = res.body["token"].as_str().unwrap().to_string();
    let done = app.settled(&token).await;
    assert_eq!(done["status"], "imported", "{done}");
    assert_eq!(app.total("2024-09-01", "2024-10-31").await, Decimal::from_str("3.0").unwrap());
    // A replica's manifest naming keys outside the export is still refused.
    s3.put_bytes(&bucket, MANIFEST, aws_manifest("source-bills", "exec-2", &["elsewhere/x.parquet".into()])).await;
    let failed = app.sync(&token, "").await;
    assert!(failed["last_error"].as_str().unwrap().contains("outside the bucket"), "{failed}");
}

/// `costd import` obeys the same rule as the API: a bucket integration's costs come from its export only.
#[tokio::test]
async fn costd_import_into_a_bucket_integration_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let (_, integration) = recorded_integration(data.path(), "http://127.0.0.1:9", |allowed| {
        let fields = serde_json::from_value(json!({"bucket": "bills", "export_name": "focus",
            "endpoint": "http://127.0.0.1:9", "access_key_id": "a", "secret_access_key": "b"}))
        .unwrap();
        costd::model::bucket_export::NewBucketIntegration::aws(fields, allowed).unwrap()
    })
    .await;
    let file = data.path().join("costs.csv");
    std::fs::write(&file, csv(3)).unwrap();
    let out = crate::cli::costd(&["import", "--integration", &integration, file.to_str().unwrap()], data.path()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("come from its export, synced from the bucket"), "{stderr}");
}

/// Connections that send nothing, or only HTTP/2's preface, are closed after the header time-out, and past
/// the node's bound new ones wait: the API stays up for everyone with a request to make.
#[tokio::test]
async fn silent_connections_are_closed_and_bounded() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" })).route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "slow"
        }),
    );
    let limits = costd::http::ConnectionLimits { header_read_timeout: Duration::from_millis(700), max_connections: 40 };
    tokio::spawn(costd::http::serve_with(listener, app, std::future::pending(), limits));

    // A request slower than the header time-out is not cut: it is in flight.
    let slow = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    let mut silent = Vec::new();
    for i in 0..120 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        }
        silent.push(s);
    }
    // Three times the bound of silent connections, and a real request still gets through.
    let asked = Instant::now();
    let ok = tokio::time::timeout(Duration::from_secs(20), reqwest::get(format!("http://{addr}/"))).await;
    assert_eq!(ok.expect("answered in time").unwrap().status(), 200);
    assert!(asked.elapsed() < Duration::from_secs(10), "{:?}", asked.elapsed());
    assert_eq!(slow.await.unwrap().unwrap().text().await.unwrap(), "slow");
    // Each silent one is closed by the server.
    for mut s in silent.into_iter().take(40) {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a silent connection stayed open");
    }
}

/// Out of connection slots, the node closes connections that have sat without a request for a second, so a
/// client with a request gets in within seconds, not after the silent ones' 30 s time-out.
#[tokio::test]
async fn out_of_slots_the_node_sheds_silent_connections_for_ones_with_a_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let limits = costd::http::ConnectionLimits { header_read_timeout: Duration::from_secs(30), max_connections: 20 };
    tokio::spawn(costd::http::serve_with(listener, app, std::future::pending(), limits));
    let mut silent = Vec::new();
    for _ in 0..60 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let asked = Instant::now();
    let ok = tokio::time::timeout(Duration::from_secs(20), reqwest::get(format!("http://{addr}/"))).await;
    assert_eq!(ok.expect("answered well before the header time-out").unwrap().status(), 200);
    assert!(asked.elapsed() < Duration::from_secs(10), "{:?}", asked.elapsed());
}
