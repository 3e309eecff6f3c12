//! Issue 22's figures: syncing an AWS FOCUS export from a real S3 API server (moto), beside DuckDB.
//!
//! The generated FOCUS rows (`COSTD_SYNC_ROWS`, default 10,000,000) are written by DuckDB into snappy Parquet
//! chunks of about 64 MB (amounts DECIMAL(38,11), times TIMESTAMP), put in a moto bucket with an AWS Data Exports
//! manifest, and then:
//! - `costd sync` (release binary, its own process: wall time and peak RSS by wait4) reads the manifest,
//!   downloads the chunks and replaces the billing period's upload; against DuckDB 2.x loading the same Parquet
//!   files from local disk into a table of its own database file (`CREATE TABLE … AS SELECT * FROM
//!   read_parquet(…)`, checkpointed; best of 3). Goal: ratio ≤ 1.0, peak RSS < 500 MB;
//! - the costs query's exact total (every charge category, billed amounts) against DuckDB's `SUM(BilledCost)`
//!   over the same files: equal to the last decimal place;
//! - a sync whose manifest is unchanged (`POST /v2/integrations/{t}/sync?wait=true` on a running server,
//!   median of 5): goal < 100 ms.
//!
//! Run: `cargo bench --bench sync` (needs `moto_server`, and DuckDB from PyPI, installed if missing).

mod support;

use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use support::{bench_dir, ensure_duckdb, generate_focus_csv, measure, python_lines};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");
const PERIOD: &str = "2024-08";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ensure_duckdb();
    let rows: u64 = std::env::var("COSTD_SYNC_ROWS").ok().map_or(10_000_000, |n| n.parse().expect("COSTD_SYNC_ROWS"));
    let csv = bench_dir().join(format!("focus_{rows}.csv"));
    generate_focus_csv(&csv, rows, 90).unwrap();
    let chunks_dir = bench_dir().join(format!("sync_{rows}_parquet"));
    if !chunks_dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&chunks_dir);
        let started = Instant::now();
        python_lines(&format!(
            r#"
import duckdb
con = duckdb.connect()
con.execute("SET preserve_insertion_order = false")
types = {{c: 'DECIMAL(38,11)' for c in ['BilledCost', 'EffectiveCost', 'ListCost', 'ContractedCost']}}
con.execute("""COPY (SELECT * FROM read_csv('{csv}', nullstr='NULL', types=$types))
    TO '{dir}' (FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES '64MB', FILENAME_PATTERN 'focus-{{i}}')""",
    {{'types': types}})
"#,
            csv = csv.display(),
            dir = chunks_dir.display()
        ));
        std::fs::write(chunks_dir.join("done"), b"").unwrap();
        eprintln!("wrote the Parquet chunks in {:.1} s", started.elapsed().as_secs_f64());
    }
    let mut chunks: Vec<std::path::PathBuf> = std::fs::read_dir(&chunks_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    chunks.sort();
    let chunk_bytes: u64 = chunks.iter().map(|p| p.metadata().unwrap().len()).sum();
    eprintln!("{} Parquet chunks, {:.0} MB", chunks.len(), chunk_bytes as f64 / 1e6);

    // DuckDB: the same files into a table of its own database (best of 3), and their exact sum.
    let glob = chunks_dir.join("*.parquet");
    let duck = python_lines(&format!(
        r#"
import duckdb, os, time
best = None
for i in range(3):
    path = '{db}'
    if os.path.exists(path): os.remove(path)
    con = duckdb.connect(path)
    t = time.perf_counter()
    con.execute("CREATE TABLE costs AS SELECT * FROM read_parquet('{glob}')")
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t
    best = took if best is None else min(best, took)
    con.close()
os.remove(path)
print("LOAD", best)
print("SUM", duckdb.connect().execute("SELECT SUM(BilledCost)::VARCHAR FROM read_parquet('{glob}')").fetchone()[0])
"#,
        db = bench_dir().join("sync_bench.duckdb").display(),
        glob = glob.display()
    ));
    let field = |key: &str| {
        let line = duck.iter().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {duck:?}"));
        line.trim().to_string()
    };
    let duck_load = Duration::from_secs_f64(field("LOAD ").parse().unwrap());
    let duck_sum = Decimal::from_str(&field("SUM ")).unwrap();

    // moto, with the export in the layout AWS writes.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut moto = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]')");
    let endpoint = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let (integration, token) = rt.block_on(async {
        for _ in 0..300 {
            if reqwest::get(&endpoint).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reqwest::Client::new().put(format!("{endpoint}/bills")).send().await.unwrap();
        let bucket = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("bills")
            .with_region("us-east-1")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        let mut keys = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let key = format!("cur/focus/data/BILLING_PERIOD={PERIOD}/focus-{:05}.snappy.parquet", i + 1);
            let body = std::fs::read(chunk).unwrap();
            object_store::ObjectStoreExt::put(&bucket, &object_store::path::Path::from(key.as_str()), body.into())
                .await
                .unwrap();
            keys.push(format!("s3://bills/{key}"));
        }
        let manifest = serde_json::json!({"executionId": "bench-1", "exportName": "focus", "dataFiles": keys});
        let key = format!("cur/focus/metadata/BILLING_PERIOD={PERIOD}/focus-Manifest.json");
        object_store::ObjectStoreExt::put(
            &bucket,
            &object_store::path::Path::from(key.as_str()),
            serde_json::to_vec(&manifest).unwrap().into(),
        )
        .await
        .unwrap();

        // The integration, recorded as the API would (credentials sealed with the data dir's key).
        let settings = costd::store::StoreSettings {
            data_dir: data_dir.path().to_path_buf(),
            database_url: None,
            db_max_connections: 2,
        };
        let store = costd::store::connect(&settings).await.unwrap();
        let account = store.create_account("Bench", None).await.unwrap();
        let allowed = costd::model::bucket_export::AllowedEndpoints::parse(&[endpoint.as_str()], false).unwrap();
        let fields = costd::model::bucket_export::AwsIntegrationFields {
            bucket: Some("bills".into()),
            prefix: Some("cur".into()),
            export_name: Some("focus".into()),
            endpoint: Some(endpoint.clone()),
            credentials: costd::model::bucket_export::CredentialFields {
                access_key_id: Some("testing".into()),
                secret_access_key: Some("testing".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let new = costd::model::bucket_export::NewBucketIntegration::aws(fields, &allowed).unwrap();
        let secrets = costd::service::secrets::SecretBox::open_or_create(None, data_dir.path()).unwrap();
        let created = costd::service::sync::create(store.as_ref(), &secrets, &account.token, new).await.unwrap();
        let token =
            costd::bootstrap::mint_token(store.as_ref(), &account, costd::model::token::Scopes::READ_WRITE, "bench")
                .await
                .unwrap()
                .secret;
        store.close().await;
        (created.token.to_string(), token)
    });

    // costd sync, in its own process.
    let synced = measure(
        Command::new(COSTD)
            .args(["sync", "--quiet", "--integration", &integration, "--allow-endpoint", &endpoint, "--data-dir"])
            .arg(data_dir.path())
            .env("RUST_LOG", "costd::service::sync=info,warn"),
    );
    eprint!("{}", synced.stdout);

    // The total, and an unchanged sync, on a running server.
    let mut server = Command::new(COSTD)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sync-interval-secs",
            "0",
            "--allow-endpoint",
            &endpoint,
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(server.stdout.take().unwrap()));
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            break u.to_string();
        }
    };
    let (total, unchanged) = rt.block_on(async {
        let client = reqwest::Client::new();
        let all = "settings[include_credits]=true&settings[include_refunds]=true&settings[include_discounts]=true\
                   &settings[include_tax]=true&settings[amortize]=false";
        let costs: serde_json::Value = client
            .get(format!("{url}/v2/costs?start_date=2024-07-01&end_date=2024-12-31&date_bin=month&groupings=charge_type&limit=1000&{all}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let total: Decimal = costs["costs"]
            .as_array()
            .unwrap_or_else(|| panic!("{costs}"))
            .iter()
            .map(|c| Decimal::from_str(c["amount"].as_str().unwrap()).unwrap())
            .sum();
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let res = client
                .post(format!("{url}/v2/integrations/{integration}/sync?wait=true"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            times.push(started.elapsed());
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["status"], "imported", "{body}");
        }
        times.sort();
        (total, times[2])
    });
    let _ = server.kill();
    let _ = moto.kill();
    let _ = server.wait();
    let _ = moto.wait();

    println!(
        "sync of {rows} FOCUS rows ({} Parquet chunks, {:.0} MB) from the S3 server:",
        chunks.len(),
        chunk_bytes as f64 / 1e6
    );
    println!(
        "  costd sync {:.1} s, peak RSS {:.0} MiB (goal < 500); DuckDB loading the same files from local disk {:.1} s; \
         ratio costd/DuckDB = {:.1} (goal <= 1.0)",
        synced.wall.as_secs_f64(),
        synced.peak_rss_mib,
        duck_load.as_secs_f64(),
        synced.wall.as_secs_f64() / duck_load.as_secs_f64()
    );
    println!(
        "  costs query total {total} vs DuckDB SUM(BilledCost) {duck_sum}: {}",
        if total == duck_sum { "equal, exactly" } else { "DIFFERENT" }
    );
    println!("  unchanged manifest: sync {:.1} ms (median of 5; goal < 100)", unchanged.as_secs_f64() * 1e3);
    assert_eq!(total, duck_sum, "the synced total must equal the export's exact sum");
}
