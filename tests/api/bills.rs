//! Bills straight from the clouds: AWS Data Exports in a real S3 API server (moto) and Azure Cost Management
//! exports in a real Blob storage emulator (Azurite), laid out as the clouds lay them out (manifests, several
//! chunks per billing period, overwrite and create-new delivery), synced through the API and the CLI.

use std::io::Write;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Backend, TestApp};
use crate::scale::S3Server;
use crate::uploads::focus_sample;

on_both_stores!(
    an_aws_export_syncs_each_period_from_its_manifest_and_a_refresh_replaces_it,
    a_synced_focus_export_costs_exactly_what_the_same_csv_uploaded_costs,
    a_manifest_naming_a_missing_file_leaves_the_period_as_it_was_and_says_which,
    an_azure_export_syncs_from_blob_storage_newest_run_first,
    bucket_integrations_refuse_bad_input_by_field_and_never_show_their_secrets,
);

/// The day the tests' "current month" is taken from: 2024-10 and 2024-09 are the recent periods.
pub(crate) fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 10, 15).unwrap()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The FOCUS sample's header and rows, split into `n` gzip CSV chunks (each with the header).
fn sample_chunks(sample: &[u8], n: usize) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(sample).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = body.lines().filter(|l| !l.is_empty()).collect();
    let per = rows.len().div_ceil(n);
    rows.chunks(per).map(|c| gzip(format!("{header}\n{}\n", c.join("\n")).as_bytes())).collect()
}

/// A Parquet chunk as AWS writes FOCUS: timestamps, decimal costs, a map of tags.
pub(crate) fn parquet_chunk(rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    use arrow::array::{Array, Decimal128Array, MapBuilder, StringArray, StringBuilder, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    let starts: Vec<i64> = rows
        .iter()
        .map(|r| {
            let d = chrono::NaiveDate::from_str(r.0).unwrap().and_hms_opt(0, 0, 0).unwrap();
            d.and_utc().timestamp_micros()
        })
        .collect();
    let start = TimestampMicrosecondArray::from(starts).with_timezone("UTC");
    let cost = Decimal128Array::from(
        rows.iter()
            .map(|r| {
                Decimal::from_str(r.1).unwrap().mantissa() * 10i128.pow(10 - Decimal::from_str(r.1).unwrap().scale())
            })
            .collect::<Vec<_>>(),
    )
    .with_precision_and_scale(38, 10)
    .unwrap();
    let service = StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>());
    let category = StringArray::from(vec!["Usage"; rows.len()]);
    let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        tags.keys().append_value("team");
        tags.values().append_value(r.3);
        tags.append(true).unwrap();
    }
    let tags = tags.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ChargePeriodStart", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("BilledCost", cost.data_type().clone(), false),
        Field::new("ServiceName", DataType::Utf8, false),
        Field::new("ChargeCategory", DataType::Utf8, false),
        Field::new("Tags", tags.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(start), Arc::new(cost), Arc::new(service), Arc::new(category), Arc::new(tags)],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// An AWS Data Exports manifest for `files` (keys in `bucket`).
pub(crate) fn aws_manifest(bucket: &str, execution: &str, files: &[String]) -> Vec<u8> {
    let files: Vec<String> = files.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    serde_json::to_vec(&json!({
        "version": "1.0",
        "executionId": execution,
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:123456789012:export/focus-1a2b",
        "exportName": "focus",
        "dataFiles": files,
    }))
    .unwrap()
}

impl S3Server {
    /// Writes an object as the cloud would: signed (moto refuses unsigned overwrites).
    pub(crate) async fn put_bytes(&self, bucket: &str, key: &str, body: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        store.put(&object_store::path::Path::from(key), body.into()).await.unwrap();
    }

    /// Delivers one refresh of a period the way AWS does: data files first, then the manifest.
    pub(crate) async fn deliver(&self, bucket: &str, period: &str, execution: &str, chunks: Vec<(String, Vec<u8>)>) {
        let mut keys = Vec::new();
        for (name, body) in chunks {
            let key = format!("cur/focus/data/BILLING_PERIOD={period}/{name}");
            self.put_bytes(bucket, &key, body).await;
            keys.push(key);
        }
        let manifest = format!("cur/focus/metadata/BILLING_PERIOD={period}/focus-Manifest.json");
        self.put_bytes(bucket, &manifest, aws_manifest(bucket, execution, &keys)).await;
    }
}

/// The same `app` store and backend, with the test server allowed and today fixed.
pub(crate) async fn spawn_allowing(backend: Backend, endpoint: &str) -> TestApp {
    spawn_allowing_with(backend, endpoint, |_| {}).await
}

/// [`spawn_allowing`], with the server's state changed by `configure` too.
pub(crate) async fn spawn_allowing_with(
    backend: Backend,
    endpoint: &str,
    configure: impl FnOnce(&mut costd::http::AppState),
) -> TestApp {
    let endpoint = endpoint.to_string();
    TestApp::spawn_with(backend, move |state| {
        state.allowed_endpoints = costd::model::bucket_export::AllowedEndpoints::parse(&[endpoint], false).unwrap();
        state.today = Arc::new(today);
        configure(state);
    })
    .await
    .unwrap()
}

impl TestApp {
    /// Waits until the integration's sync in the background has finished (status neither pending nor importing).
    pub async fn settled(&self, token: &str) -> Value {
        for _ in 0..600 {
            let res = self.get(&format!("/v2/integrations/{token}")).await;
            assert_eq!(res.status, 200, "{}", res.text);
            let status = res.body["status"].as_str().unwrap().to_string();
            if status != "pending" && status != "importing" {
                return res.body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the sync of {token} did not finish within 60 s");
    }

    /// Syncs now and waits for it.
    pub async fn sync(&self, token: &str, query: &str) -> Value {
        let res = self.post(&format!("/v2/integrations/{token}/sync?wait=true{query}"), json!({})).await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
    }

    /// The account's total cost over a range, exact: the sum of its unrounded rows (`total_cost` is rounded to
    /// cents, which it is checked against too).
    pub async fn total(&self, start: &str, end: &str) -> Decimal {
        let res = self
            .get(&format!(
                "/v2/costs?start_date={start}&end_date={end}&date_bin=month&groupings=charge_type&limit=1000"
            ))
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        let sum: Decimal = res.body["costs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Decimal::from_str(c["amount"].as_str().unwrap()).unwrap())
            .sum();
        let rounded =
            res.body["total_cost"]["amount"].as_str().map_or(Decimal::ZERO, |a| Decimal::from_str(a).unwrap());
        assert_eq!(
            sum.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            rounded,
            "{}",
            res.text
        );
        sum
    }

    pub(crate) async fn uploads_of(&self, integration: &str) -> Vec<Value> {
        let res = self.get(&format!("/v2/integrations/{integration}/costs")).await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body["user_costs_uploads"].as_array().cloned().unwrap_or_default()
    }
}

pub(crate) fn aws_body(s3: &S3Server, bucket: &str) -> Value {
    json!({
        "bucket": bucket, "prefix": "cur", "export_name": "focus", "region": "us-east-1",
        "endpoint": s3.endpoint, "access_key_id": "testing", "secret_access_key": "moto-secret-key",
    })
}

async fn an_aws_export_syncs_each_period_from_its_manifest_and_a_refresh_replaces_it(app: TestApp) {
    let Some(s3) = S3Server::start().await else { return };
    let app = spawn_allowing(app.backend, &s3.endpoint).await;
    let bucket = s3.bucket().await;
    // September in two Parquet chunks; a stale chunk of an earlier refresh stays behind in the folder
    // (overwrite delivery) and must not be read.
    let sept =
        [("2024-09-01", "0.1234567891", "AmazonEC2", "web"), ("2024-09-02", "100.0000000001", "AmazonS3", "data")];
    let sept2 = [("2024-09-30", "2.5", "AmazonEC2", "web")];
    s3.put_bytes(
        &bucket,
        "cur/focus/data/BILLING_PERIOD=2024-09/focus-00009.snappy.parquet",
        parquet_chunk(&[("2024-09-03", "1000000", "Stale", "x")]),
    )
    .await;
    s3.deliver(
        &bucket,
        "2024-09",
        "exec-1",
        vec![
            ("focus-00001.snappy.parquet".into(), parquet_chunk(&sept)),
            ("focus-00002.snappy.parquet".into(), parquet_chunk(&sept2)),
        ],
    )
    .await;
    s3.deliver(
        &bucket,
        "2024-10",
        "exec-1",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-10-01", "7", "AmazonRDS", "db")]))],
    )
    .await;

    let res = app.post("/v2/integrations/aws", aws_body(&s3, &bucket)).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["provider"], "aws");
    assert_eq!(res.body["account_identifier"], format!("{bucket}/cur/focus"));
    let token = res.body["token"].as_str().unwrap().to_string();
    let synced = app.settled(&token).await;
    assert_eq!(synced["status"], "imported", "{synced}");
    assert!(synced.get("last_error").is_none(), "{synced}");
    assert!(synced["last_synced_at"].is_string());
    let listed = app.get("/v2/integrations?provider=aws").await;
    assert_eq!(listed.body["integrations"][0]["token"], token.as_str());

    // Exactly the listed files, to the last decimal place.
    assert_eq!(app.total("2024-09-01", "2024-09-30").await, Decimal::from_str("102.6234567892").unwrap());
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("7").unwrap());
    let uploads = app.uploads_of(&token).await;
    assert_eq!(uploads.len(), 2, "one upload per billing period: {uploads:?}");
    // Tags from the Parquet map are groupable.
    let res = app.get("/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=tag:team").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.text.contains("\"web\""), "{}", res.text);

    // A refresh of September that shrinks it: the period is replaced whole, never added to.
    s3.deliver(
        &bucket,
        "2024-09",
        "exec-2",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-09-05", "40.05", "AmazonEC2", "web")]))],
    )
    .await;
    let synced = app.sync(&token, "").await;
    assert_eq!(synced["status"], "imported", "{synced}");
    assert_eq!(app.total("2024-09-01", "2024-09-30").await, Decimal::from_str("40.05").unwrap());
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("7").unwrap());
    let after = app.uploads_of(&token).await;
    assert_eq!(after.len(), 2, "{after:?}");

    // Unchanged manifests: nothing is loaded again (the uploads keep their tokens).
    app.sync(&token, "").await;
    let again = app.uploads_of(&token).await;
    let tokens = |u: &[Value]| {
        let mut t: Vec<String> = u.iter().map(|u| u["token"].as_str().unwrap().to_string()).collect();
        t.sort();
        t
    };
    assert_eq!(tokens(&again), tokens(&after));
    // A backfill loads every period again, with the same totals.
    app.sync(&token, "&backfill=true").await;
    assert_ne!(tokens(&app.uploads_of(&token).await), tokens(&after));
    assert_eq!(app.total("2024-09-01", "2024-10-31").await, Decimal::from_str("47.05").unwrap());
}

async fn a_synced_focus_export_costs_exactly_what_the_same_csv_uploaded_costs(app: TestApp) {
    let Some(sample) = focus_sample() else { return };
    let Some(s3) = S3Server::start().await else { return };
    let synced = spawn_allowing(app.backend, &s3.endpoint).await;
    let bucket = s3.bucket().await;
    let chunks = sample_chunks(&sample, 3);
    let named = chunks.into_iter().enumerate().map(|(i, c)| (format!("focus-0000{}.csv.gz", i + 1), c)).collect();
    s3.deliver(&bucket, "2024-09", "exec-1", named).await;
    let res = synced.post("/v2/integrations/aws", aws_body(&s3, &bucket)).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_string();
    let done = synced.settled(&token).await;
    assert_eq!(done["status"], "imported", "{done}");

    // The reference: the same rows uploaded by hand into a custom provider of another server.
    let integration = app.create_integration("sample").await;
    let res = app.upload(integration["token"].as_str().unwrap(), "sample.csv", sample.clone()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    for query in [
        "start_date=2024-09-01&end_date=2024-10-31",
        "start_date=2024-09-01&end_date=2024-10-31&groupings=account_id,service,region&date_bin=day&limit=1000",
        "start_date=2024-09-01&end_date=2024-10-31&settings[include_credits]=true&settings[amortize]=false",
    ] {
        let a = app.get(&format!("/v2/costs?{query}")).await;
        let b = synced.get(&format!("/v2/costs?{query}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["total_cost"], b.body["total_cost"], "{query}");
        assert_eq!(a.body["costs"], b.body["costs"], "{query}");
    }
    assert_ne!(app.total("2024-09-01", "2024-10-31").await, Decimal::ZERO);
}

async fn a_manifest_naming_a_missing_file_leaves_the_period_as_it_was_and_says_which(app: TestApp) {
    let Some(s3) = S3Server::start().await else { return };
    let app = spawn_allowing(app.backend, &s3.endpoint).await;
    let bucket = s3.bucket().await;
    s3.deliver(
        &bucket,
        "2024-10",
        "exec-1",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-10-01", "12.34", "AmazonEC2", "web")]))],
    )
    .await;
    let res = app.post("/v2/integrations/aws", aws_body(&s3, &bucket)).await;
    let token = res.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.settled(&token).await["status"], "imported");

    // A manifest whose second chunk never arrived.
    let key = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00001.snappy.parquet".to_string();
    s3.put_bytes(&bucket, &key, parquet_chunk(&[("2024-10-02", "999", "AmazonEC2", "web")])).await;
    let missing = "cur/focus/data/BILLING_PERIOD=2024-10/focus-00002.snappy.parquet".to_string();
    let manifest = "cur/focus/metadata/BILLING_PERIOD=2024-10/focus-Manifest.json";
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-2", &[key.clone(), missing.clone()])).await;
    let failed = app.sync(&token, "").await;
    assert_eq!(failed["status"], "error", "{failed}");
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains(&missing) && error.contains("missing"), "{error}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("12.34").unwrap(), "last good data kept");

    // A corrupt chunk is named too, and changes nothing.
    s3.put_bytes(&bucket, &missing, b"PAR1 not really".to_vec()).await;
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-2", &[key.clone(), missing.clone()])).await;
    let failed = app.sync(&token, "").await;
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains(&missing) && error.contains("not a readable Parquet file"), "{error}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("12.34").unwrap());

    // The file arrives, then its manifest: the next sync completes the period and clears the error.
    s3.put_bytes(&bucket, &missing, parquet_chunk(&[("2024-10-03", "0.01", "AmazonS3", "data")])).await;
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-3", &[key.clone(), missing.clone()])).await;
    let fixed = app.sync(&token, "").await;
    assert_eq!(fixed["status"], "imported", "{fixed}");
    assert!(fixed.get("last_error").is_none(), "{fixed}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("999.01").unwrap());

    // Overwrite delivery: a newer refresh writing over the listed files after their manifest is not read
    // half old, half new; the period waits for that refresh's manifest.
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-4", &[key.clone(), missing.clone()])).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3 keeps modification times to the second
    s3.put_bytes(&bucket, &key, parquet_chunk(&[("2024-10-02", "5", "AmazonEC2", "web")])).await;
    let waiting = app.sync(&token, "").await;
    assert!(waiting["last_error"].as_str().unwrap().contains("a refresh is being delivered"), "{waiting}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("999.01").unwrap());
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-5", &[key.clone(), missing.clone()])).await;
    assert_eq!(app.sync(&token, "").await["status"], "imported");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("5.01").unwrap());

    // A legacy CUR (1.0) file is an unknown schema, named.
    let legacy = "cur/focus/data/BILLING_PERIOD=2024-10/legacy.csv.gz".to_string();
    s3.put_bytes(
        &bucket,
        &legacy,
        gzip(b"identity/LineItemId,lineItem/UsageStartDate,lineItem/UnblendedCost\nx,2024-10-01T00:00:00Z,1\n"),
    )
    .await;
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-6", std::slice::from_ref(&legacy))).await;
    let failed = app.sync(&token, "").await;
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains(&format!("{legacy}: its columns are not FOCUS")), "{error}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("5.01").unwrap());

    // A malformed manifest and a missing bucket are errors with their cause.
    s3.put_bytes(&bucket, manifest, b"{\"executionId\": 5".to_vec()).await;
    let failed = app.sync(&token, "").await;
    assert!(failed["last_error"].as_str().unwrap().contains("not valid JSON"), "{failed}");
    let mut gone = aws_body(&s3, &bucket);
    gone["bucket"] = json!("no-such-bucket-here");
    let res = app.post("/v2/integrations/aws", gone).await;
    let other = app.settled(res.body["token"].as_str().unwrap()).await;
    assert_eq!(other["status"], "error", "{other}");
    assert!(other["last_error"].as_str().unwrap().contains("could not list"), "{other}");
}

/// Azurite (npm) on a free port, stopped when dropped; Azure's own Blob client writes the export.
pub(crate) struct Azurite {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    pub(crate) endpoint: String,
    tools: std::path::PathBuf,
}

pub(crate) const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, in Microsoft's documentation).
pub(crate) const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static AZURITE_INSTALL: tokio::sync::OnceCell<Option<std::path::PathBuf>> = tokio::sync::OnceCell::const_new();

impl Azurite {
    pub(crate) async fn start() -> Option<Azurite> {
        let tools = AZURITE_INSTALL
            .get_or_init(|| async {
                let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                let dir = root.join("target/azurite-node");
                std::fs::create_dir_all(&dir).unwrap();
                for f in ["package.json", "package-lock.json", "seed.mjs"] {
                    std::fs::copy(root.join("tests/azurite").join(f), dir.join(f)).unwrap();
                }
                if dir.join("node_modules/.bin/azurite-blob").exists() {
                    return Some(dir);
                }
                let ok = tokio::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .stdout(Stdio::null())
                    .status()
                    .await
                    .is_ok_and(|s| s.success());
                if !ok {
                    assert!(
                        std::env::var("CI").is_err(),
                        "CI must run the Azure tests: npm ci of tests/azurite failed"
                    );
                    eprintln!("SKIPPED: could not install Azurite with npm");
                    return None;
                }
                Some(dir)
            })
            .await
            .clone()?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new(tools.join("node_modules/.bin/azurite-blob"))
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ])
            .arg("--location")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("azurite starts");
        let endpoint = format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Azurite { _child: child, _dir: dir, endpoint, tools });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("azurite did not listen on {port} within 30 s");
    }

    /// Writes (or, with no bytes, deletes) blobs of `container` through Azure's own client.
    pub(crate) async fn put(&self, container: &str, blobs: Vec<(String, Option<Vec<u8>>)>) {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            format!(
                "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
                self.endpoint
            ),
            container.to_string(),
        ];
        for (i, (name, body)) in blobs.into_iter().enumerate() {
            match body {
                Some(body) => {
                    let path = dir.path().join(format!("{i}"));
                    std::fs::write(&path, body).unwrap();
                    args.push(format!("{}={name}", path.display()));
                }
                None => args.push(format!("={name}")),
            }
        }
        let out =
            tokio::process::Command::new("node").arg(self.tools.join("seed.mjs")).args(&args).output().await.unwrap();
        assert!(out.status.success(), "seed.mjs: {}", String::from_utf8_lossy(&out.stderr));
    }
}

pub(crate) fn azure_manifest(run: &str, blobs: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "manifestVersion": "2024-04-01",
        "dataFormat": "Csv",
        "blobCount": blobs.len(),
        "exportConfig": {"exportName": "daily", "dataVersion": "1.0r2", "type": "FocusCost", "timeFrame": "MonthToDate"},
        "deliveryConfig": {"partitionData": true, "dataOverwriteBehavior": "CreateNewReport", "fileFormat": "Csv", "compressionMode": "gzip"},
        "runInfo": {"executionType": "Scheduled", "submittedTime": "2024-10-15T03:00:00Z", "runId": run, "startDate": "2024-10-01T00:00:00", "endDate": "2024-10-31T00:00:00"},
        "blobs": blobs.iter().map(|b| json!({"blobName": b, "byteCount": 100, "dataRowCount": 1})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

pub(crate) const AZURE_HEADER: &str =
    "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ServiceName,ProviderName,Tags";

async fn an_azure_export_syncs_from_blob_storage_newest_run_first(app: TestApp) {
    let Some(azurite) = Azurite::start().await else { return };
    let origin = azurite.endpoint.trim_end_matches(&format!("/{AZURITE_ACCOUNT}")).to_string();
    let app = spawn_allowing(app.backend, &origin).await;
    // Create-new delivery: each run writes its own folder; the newest manifest is the period's truth.
    let run = |id: &str, rows: &[&str]| {
        let base = format!("costs/daily/20241001-20241031/{id}");
        let part = format!("{base}/part_0_0001.csv.gz");
        let csv = format!("{AZURE_HEADER}\n{}\n", rows.join("\n"));
        (
            vec![(part.clone(), Some(gzip(csv.as_bytes())))],
            (format!("{base}/manifest.json"), azure_manifest(id, &[part])),
        )
    };
    let (files, (manifest, body)) = run(
        "run-1",
        &["3.25,USD,Usage,2024-10-01T00:00:00Z,Virtual Machines,Microsoft,\"{\"\"team\"\":\"\"web\"\"}\""],
    );
    azurite.put("exports", files).await;
    azurite.put("exports", vec![(manifest, Some(body))]).await;

    let res = app
        .post(
            "/v2/integrations/azure",
            json!({"storage_account": AZURITE_ACCOUNT, "container": "exports", "root_folder_path": "costs",
                   "endpoint": azurite.endpoint, "account_key": AZURITE_KEY}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["provider"], "azure");
    let token = res.body["token"].as_str().unwrap().to_string();
    let done = app.settled(&token).await;
    assert_eq!(done["status"], "imported", "{done}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("3.25").unwrap());

    tokio::time::sleep(Duration::from_millis(1100)).await; // a later Last-Modified, to the second
    let (files, (manifest, body)) = run(
        "run-2",
        &[
            "3.25,USD,Usage,2024-10-01T00:00:00Z,Virtual Machines,Microsoft,",
            "0.75,USD,Usage,2024-10-02T00:00:00Z,Storage,Microsoft,",
        ],
    );
    azurite.put("exports", files).await;
    azurite.put("exports", vec![(manifest, Some(body))]).await;
    let synced = app.sync(&token, "").await;
    assert_eq!(synced["status"], "imported", "{synced}");
    assert_eq!(app.total("2024-10-01", "2024-10-31").await, Decimal::from_str("4.00").unwrap());
    assert_eq!(app.uploads_of(&token).await.len(), 1);

    // Wrong credentials: an error that says so, and the data stays.
    let res = app
        .post(
            "/v2/integrations/azure",
            json!({"storage_account": AZURITE_ACCOUNT, "container": "exports", "root_folder_path": "costs",
                   "endpoint": azurite.endpoint, "account_key": "d3Jvbmcga2V5"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let rotated = res.body["token"].as_str().unwrap().to_string();
    let wrong = app.settled(&rotated).await;
    assert_eq!(wrong["status"], "error", "{wrong}");
    assert!(!wrong["last_error"].as_str().unwrap().contains("d3Jvbmcga2V5"), "{wrong}");

    // Keys are rotated in place (an AWS key pair would be refused here), and a sync follows.
    let res =
        app.put(&format!("/v2/integrations/{rotated}"), json!({"access_key_id": "A", "secret_access_key": "B"})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("access_key_id is not a credential of an azure integration"), "{}", res.text);
    let res = app.put(&format!("/v2/integrations/{rotated}"), json!({"account_key": AZURITE_KEY})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(!res.text.contains(AZURITE_KEY));
    let fixed = app.settled(&rotated).await;
    assert_eq!(fixed["status"], "imported", "{fixed}");
    assert_eq!(app.uploads_of(&rotated).await.len(), 1);
    // A custom provider has no credentials to rotate.
    let custom = app.create_integration("manual").await;
    let res =
        app.put(&format!("/v2/integrations/{}", custom["token"].as_str().unwrap()), json!({"account_key": "k"})).await;
    assert_eq!(res.status, 400, "{}", res.text);
}

async fn bucket_integrations_refuse_bad_input_by_field_and_never_show_their_secrets(app: TestApp) {
    let app = spawn_allowing(app.backend, "http://127.0.0.1:9").await;
    let body = json!({"bucket": "bills", "export_name": "focus", "access_key_id": "AKIA", "secret_access_key": "top-secret-value",
                      "endpoint": "http://169.254.169.254"});
    let res = app.post("/v2/integrations/aws", body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("endpoint http://169.254.169.254 is not allowed"), "{}", res.text);
    let res = app.post("/v2/integrations/aws", json!({"bucket": "Bad_Bucket"})).await;
    assert_eq!(res.status, 400);
    let errors = res.errors();
    assert!(errors.iter().any(|e| e.starts_with("bucket")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("export_name is required")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("access_key_id and secret_access_key are required")), "{errors:?}");
    let res = app.post("/v2/integrations/azure", json!({"tenant": "t", "app_id": "a"})).await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("password is required"), "{}", res.text);
    let res = app
        .post("/v2/integrations/gcp", json!({"billing_account_id": "x", "project_id": "p", "dataset_name": "d"}))
        .await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("BigQuery"), "{}", res.text);

    // Created (its sync fails: nothing listens there); the secret is in no read.
    let body = json!({"bucket": "bills", "export_name": "focus", "access_key_id": "AKIA", "secret_access_key": "top-secret-value",
                      "endpoint": "http://127.0.0.1:9"});
    let res = app.post("/v2/integrations/aws", body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_string();
    let shown = app.settled(&token).await;
    assert_eq!(shown["status"], "error");
    assert_eq!(shown["export"]["bucket"], "bills");
    for text in
        [res.text, app.get(&format!("/v2/integrations/{token}")).await.text, app.get("/v2/integrations").await.text]
    {
        assert!(!text.contains("top-secret-value") && !text.contains("AKIA"), "{text}");
    }
    // Its costs come from the bucket, not from uploads; a custom provider has no sync.
    let res = app.upload(&token, "x.csv", b"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n".to_vec()).await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("synced from the bucket"), "{}", res.text);
    let custom = app.create_integration("manual").await;
    let res = app.post(&format!("/v2/integrations/{}/sync", custom["token"].as_str().unwrap()), json!({})).await;
    assert_eq!(res.status, 400);
}

/// A `costd serve` process's answer to a request with its bootstrap token, as JSON.
async fn served_json(served: &crate::cli::Served, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", served.url))
        .bearer_auth(served.bootstrap_token.as_deref().unwrap());
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// An account and a bucket integration recorded in the SQLite store of `data` as the API records them (its
/// credentials sealed with the data dir's key), for the command line to sync: (account, integration).
pub(crate) async fn recorded_integration(
    data: &std::path::Path,
    allowed: &str,
    new: impl FnOnce(&costd::model::bucket_export::AllowedEndpoints) -> costd::model::bucket_export::NewBucketIntegration,
) -> (String, String) {
    let settings =
        costd::store::StoreSettings { data_dir: data.to_path_buf(), database_url: None, db_max_connections: 2 };
    let store = costd::store::connect(&settings).await.unwrap();
    let account = store.create_account("Command line", None).await.unwrap();
    let allowed = costd::model::bucket_export::AllowedEndpoints::parse(&[allowed], false).unwrap();
    let secrets = costd::service::secrets::SecretBox::open_or_create(None, data).unwrap();
    let created = costd::service::sync::create(store.as_ref(), &secrets, &account.token, new(&allowed)).await.unwrap();
    store.close().await;
    (account.token.to_string(), created.token.to_string())
}

/// `costd sync` syncs what `costd serve` created, with the same data dir (and so the same sealing key).
#[tokio::test]
async fn costd_sync_on_the_command_line_loads_a_new_period_and_reports_each() {
    let Some(s3) = S3Server::start().await else { return };
    let bucket = s3.bucket().await;
    s3.deliver(
        &bucket,
        "2024-09",
        "exec-1",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-09-01", "5.5", "AmazonEC2", "web")]))],
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let flags = ["--allow-endpoint", s3.endpoint.as_str(), "--sync-interval-secs", "0"];
    let served = crate::cli::serve_with(data.path(), &flags).await;
    let res = served_json(&served, reqwest::Method::POST, "/v2/integrations/aws", Some(&aws_body(&s3, &bucket))).await;
    let integration = res["token"].as_str().unwrap().to_string();
    // The first sync, started by the create.
    for _ in 0..600 {
        let got = served_json(&served, reqwest::Method::GET, &format!("/v2/integrations/{integration}"), None).await;
        if got["status"] == "imported" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // October arrives; the command line syncs it.
    s3.deliver(
        &bucket,
        "2024-10",
        "exec-1",
        vec![("focus-00001.snappy.parquet".into(), parquet_chunk(&[("2024-10-01", "1.25", "AmazonEC2", "web")]))],
    )
    .await;
    let out = crate::cli::costd(
        &["sync", "--integration", &integration, "--backfill", "--allow-endpoint", &s3.endpoint, "--quiet"],
        data.path(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 period(s) replaced"), "{stdout}");
    assert!(stdout.contains("2024-10: replaced with 1 rows from 1 file(s)"), "{stdout}");
    let costs =
        served_json(&served, reqwest::Method::GET, "/v2/costs?start_date=2024-09-01&end_date=2024-10-31", None).await;
    assert_eq!(
        Decimal::from_str(costs["total_cost"]["amount"].as_str().unwrap()).unwrap(),
        Decimal::from_str("6.75").unwrap()
    );
    // A sync that fails exits non-zero and names the file.
    let manifest = "cur/focus/metadata/BILLING_PERIOD=2024-10/focus-Manifest.json";
    s3.put_bytes(&bucket, manifest, aws_manifest(&bucket, "exec-2", &["cur/focus/data/nothing.csv.gz".into()])).await;
    let out =
        crate::cli::costd(&["sync", "--backfill", "--allow-endpoint", &s3.endpoint, "--quiet"], data.path()).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cur/focus/data/nothing.csv.gz"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// This month (`YYYY-MM`): the command line syncs the current and previous month by the real clock.
fn this_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

/// `n` FOCUS rows of 0.01 each over this month's first 28 days, in one Parquet chunk.
fn many_rows(n: usize) -> Vec<u8> {
    let days: Vec<String> = (1..=28).map(|d| format!("{}-{d:02}", this_month())).collect();
    let rows: Vec<(&str, &str, &str, &str)> =
        (0..n).map(|i| (days[i % 28].as_str(), "0.01", ["AmazonEC2", "AmazonS3", "AmazonRDS"][i % 3], "web")).collect();
    parquet_chunk(&rows)
}

/// The account's exact total for this month's first 28 days, as `costd query` prints it.
async fn cli_total(data: &std::path::Path, account: &str) -> String {
    let (start, end) = (format!("{}-01", this_month()), format!("{}-28", this_month()));
    let out = crate::cli::costd(
        &["query", "--account", account, "--start-date", &start, "--end-date", &end, "--format", "json"],
        data,
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["total_cost"]["amount"].as_str().unwrap_or("0.0").to_string()
}

/// A sync killed (SIGKILL) at any point leaves the period's last good data, and the next sync completes it.
#[tokio::test]
async fn a_sync_killed_at_any_point_leaves_the_last_good_data_and_the_next_completes_it() {
    let Some(s3) = S3Server::start().await else { return };
    let bucket = s3.bucket().await;
    let month = this_month();
    let first = format!("{month}-01");
    let one = parquet_chunk(&[(first.as_str(), "12.5", "AmazonEC2", "web")]);
    s3.deliver(&bucket, &month, "exec-1", vec![("focus-00001.snappy.parquet".into(), one)]).await;
    let data = tempfile::tempdir().unwrap();
    // The integration, recorded as the API records it, with the data dir's sealing key.
    let (account, integration) = recorded_integration(data.path(), &s3.endpoint, |allowed| {
        let fields = serde_json::from_value(aws_body(&s3, &bucket)).unwrap();
        costd::model::bucket_export::NewBucketIntegration::aws(fields, allowed).unwrap()
    })
    .await;
    let sync_args =
        ["sync", "--quiet", "--integration", integration.as_str(), "--allow-endpoint", s3.endpoint.as_str()];
    let out = crate::cli::costd(&sync_args, data.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cli_total(data.path(), &account).await, "12.5");

    // The refresh: four chunks of 60,000 rows (2,400.00 in all), killed at several points of its sync.
    let chunks = (1..=4).map(|i| (format!("focus-0000{i}.snappy.parquet"), many_rows(60_000))).collect();
    s3.deliver(&bucket, &month, "exec-2", chunks).await;
    let mut seen = std::collections::BTreeSet::new();
    for delay_ms in [30, 120, 300, 600, 1200, 2500] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_costd"))
            .args(sync_args)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("COSTD_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.start_kill(); // SIGKILL
        let _ = child.wait().await;
        let total = cli_total(data.path(), &account).await;
        assert!(total == "12.5" || total == "2400.0", "killed after {delay_ms} ms: the period reads {total}");
        seen.insert(total);
    }
    let out = crate::cli::costd(&sync_args, data.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cli_total(data.path(), &account).await, "2400.0", "the next sync completes the refresh");
    eprintln!("totals seen between kills: {seen:?}");
}

/// `costd serve` syncs on its own: a delivery made after the integration was created is loaded by the loop.
#[tokio::test]
async fn the_servers_sync_loop_loads_a_new_delivery_without_being_asked() {
    let Some(s3) = S3Server::start().await else { return };
    let bucket = s3.bucket().await;
    let data = tempfile::tempdir().unwrap();
    let flags = ["--allow-endpoint", s3.endpoint.as_str(), "--sync-interval-secs", "1"];
    let served = crate::cli::serve_with(data.path(), &flags).await;
    let created =
        served_json(&served, reqwest::Method::POST, "/v2/integrations/aws", Some(&aws_body(&s3, &bucket))).await;
    let integration = created["token"].as_str().unwrap().to_string();
    let month = this_month();
    let day = format!("{month}-02");
    let chunk = parquet_chunk(&[(day.as_str(), "3.75", "AmazonEC2", "web")]);
    s3.deliver(&bucket, &month, "exec-1", vec![("focus-00001.snappy.parquet".into(), chunk)]).await;
    let costs_path = format!("/v2/costs?start_date={month}-01&end_date={month}-28");
    for _ in 0..300 {
        let costs = served_json(&served, reqwest::Method::GET, &costs_path, None).await;
        if costs["total_cost"]["amount"] == "3.75" {
            let got =
                served_json(&served, reqwest::Method::GET, &format!("/v2/integrations/{integration}"), None).await;
            assert_eq!(got["status"], "imported", "{got}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sync loop did not load the delivery within 30 s");
}

/// `costd sync` reads an Azure export from Azurite, on a store and data dir `costd serve` would use.
#[tokio::test]
async fn costd_sync_reads_an_azure_export_from_blob_storage() {
    let Some(azurite) = Azurite::start().await else { return };
    let month = this_month();
    let (start, end) = (month.replace('-', "") + "01", month.replace('-', "") + "28");
    let base = format!("costs/daily/{start}-{end}/run-1");
    let part = format!("{base}/part_0_0001.csv.gz");
    let csv = format!("{AZURE_HEADER}\n1.5,USD,Usage,{month}-03T00:00:00Z,Storage,Microsoft,\n");
    azurite.put("exports", vec![(part.clone(), Some(gzip(csv.as_bytes())))]).await;
    azurite.put("exports", vec![(format!("{base}/manifest.json"), Some(azure_manifest("run-1", &[part])))]).await;
    let origin = azurite.endpoint.trim_end_matches(&format!("/{AZURITE_ACCOUNT}")).to_string();

    let data = tempfile::tempdir().unwrap();
    let (account, _) = recorded_integration(data.path(), &origin, |allowed| {
        let fields = serde_json::from_value(json!({
            "storage_account": AZURITE_ACCOUNT, "container": "exports", "root_folder_path": "costs",
            "endpoint": azurite.endpoint, "account_key": AZURITE_KEY}))
        .unwrap();
        costd::model::bucket_export::NewBucketIntegration::azure(fields, allowed).unwrap()
    })
    .await;
    // Without the operator's leave for the endpoint, the sync refuses it and says why.
    let out = crate::cli::costd(&["sync", "--quiet"], data.path()).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not allowed on this server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::cli::costd(&["sync", "--quiet", "--allow-endpoint", &origin], data.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{month}: replaced with 1 rows from 1 file(s)")), "{stdout}");
    assert_eq!(cli_total(data.path(), &account).await, "1.5");
}

on_both_stores!(the_sync_records_keep_to_their_integration_and_account);

/// The store's side of syncs, without HTTP: periods upsert, a sync's record keeps its last completion, secrets
/// stay in their account, and the loop sees every account's bucket integrations (and no custom provider).
async fn the_sync_records_keep_to_their_integration_and_account(app: TestApp) {
    use costd::store::{NewBucketIntegrationRow, SyncedPeriod};
    let (other, _) = app.other_account().await;
    let row = |account: &costd::store::Account, name: &str| NewBucketIntegrationRow {
        token: costd::model::token::IntegrationToken::generate(),
        account: account.token.clone(),
        provider: "aws".into(),
        name: name.into(),
        location:
            r#"{"provider":"aws","bucket":"b","prefix":"","export_name":"e","region":"us-east-1","endpoint":null}"#
                .into(),
        secret: format!("v1:{name}"),
    };
    let mine = app.store.create_bucket_integration(&row(&app.account, "mine")).await.unwrap();
    let theirs = app.store.create_bucket_integration(&row(&other, "theirs")).await.unwrap();
    app.create_integration("custom").await;
    assert_eq!(mine.status, "pending");

    let listed = app.store.bucket_integrations().await.unwrap();
    let tokens: Vec<_> = listed.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(tokens, vec![mine.token.clone(), theirs.token.clone()], "bucket integrations only, oldest first");
    assert_eq!(listed[1].0, other.token);

    // Another account cannot rotate this one's secret; its own rotation lands.
    assert!(!app.store.set_integration_secret(&other.token, &mine.token, "v1:stolen").await.unwrap());
    assert_eq!(app.store.integration_secret(&mine.token).await.unwrap().as_deref(), Some("v1:mine"));
    assert!(app.store.set_integration_secret(&app.account.token, &mine.token, "v1:rotated").await.unwrap());
    assert_eq!(app.store.integration_secret(&mine.token).await.unwrap().as_deref(), Some("v1:rotated"));

    // A failed sync keeps the time of the last one that completed.
    let t0 = chrono::DateTime::parse_from_rfc3339("2024-10-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    app.store.record_sync(&mine.token, "imported", Some(t0), None).await.unwrap();
    app.store.record_sync(&mine.token, "error", None, Some("x: missing")).await.unwrap();
    let got = app.store.get_integration(&app.account.token, &mine.token).await.unwrap().unwrap();
    assert_eq!(
        (got.status.as_str(), got.last_synced_at, got.last_error.as_deref()),
        ("error", Some(t0), Some("x: missing"))
    );

    // A period's record is replaced by its next load, and belongs to its integration alone.
    let period = |id: &str| SyncedPeriod {
        period: "2024-09".into(),
        manifest_key: "k".into(),
        manifest_etag: Some("e".into()),
        manifest_id: id.into(),
        upload_token: format!("usr_csts_upld_{id}"),
        rows: 3,
        synced_at: t0,
    };
    app.store.set_synced_period(&mine.token, &period("one")).await.unwrap();
    app.store.set_synced_period(&mine.token, &period("two")).await.unwrap();
    assert_eq!(app.store.synced_periods(&mine.token).await.unwrap(), vec![period("two")]);
    assert!(app.store.synced_periods(&theirs.token).await.unwrap().is_empty());

    // Deleting the integration takes its records with it.
    app.store.delete_integration(&app.account.token, &mine.token).await.unwrap().unwrap();
    assert!(app.store.synced_periods(&mine.token).await.unwrap().is_empty());
    assert_eq!(app.store.integration_secret(&mine.token).await.unwrap(), None);
}
