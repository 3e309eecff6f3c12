//! Issue 33's figures: what hostile input costs a running server, and what another tenant sees meanwhile.
//!
//! A release `costd serve` (or `COSTD_BIN`, to measure another build, such as the commit before the fix) over
//! a fresh SQLite data dir and a moto S3 bucket; the server's RSS is sampled every 10 ms from /proc, and a
//! second tenant asks `GET /v2/integrations` every 100 ms throughout, its slowest answer recorded. Cases:
//! 1. export files synced from the bucket: (a) a gzip CSV of about 1 MB whose quote never closes (1 GB of
//!    text decompressed), (b) a Parquet file of a few KB whose ServiceName repeats a 200 KB value on 20,000
//!    rows through its dictionary;
//! 5. a custom rule of 26 `INSERT … SELECT` statements, each doubling the rows, queried by its managed account;
//! 6. 1,100 connections that send nothing (half of them only HTTP/2's preface) to a server limited to 1,024
//!    open files, then a ping: how long until it is answered (60 s at most).
//!
//! Goal: peak RSS under 1 GB above idle, the other tenant answered within 1 s. Run: `cargo bench --bench
//! hostile` (needs `moto_server` from PyPI's `moto[server]`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = std::env::var("COSTD_BIN").unwrap_or_else(|_| COSTD.to_string());
    eprintln!("costd: {bin}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let inputs = support::bench_dir().join("hostile");
    std::fs::create_dir_all(&inputs).unwrap();
    let open_quote = open_quote_csv(&inputs);
    let long_values = long_values_parquet(&inputs);

    let moto_port = free_port();
    let _moto = Killed(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')"),
    );
    let endpoint = format!("http://127.0.0.1:{moto_port}");
    rt.block_on(wait_for(&endpoint));

    for (case, file, name) in [
        ("1a: gzip CSV with an open quote", &open_quote, "focus-00001.csv.gz"),
        ("1b: Parquet with long dictionary values", &long_values, "focus-00001.snappy.parquet"),
    ] {
        let server = Server::start(&bin, &["--allow-endpoint", &endpoint], false);
        let bucket = rt.block_on(put_export(&endpoint, file, name));
        let figures = server.watched(&rt, || {
            rt.block_on(async {
                let body = json!({"bucket": bucket, "prefix": "cur", "export_name": "focus", "region": "us-east-1",
                                  "endpoint": endpoint, "access_key_id": "testing", "secret_access_key": "testing"});
                let created =
                    call(&server.url, &server.attacker, reqwest::Method::POST, "/v2/integrations/aws", Some(body))
                        .await;
                let token = created["token"].as_str().unwrap_or_default().to_string();
                settle(&server.url, &server.attacker, &token).await
            })
        });
        figures.print(case);
    }

    // Case 5: 26 doubling statements over two rows.
    let statements: u32 = std::env::var("HOSTILE_STATEMENTS").ok().map_or(26, |n| n.parse().unwrap());
    let server = Server::start(&bin, &[], false);
    let (url, attacker) = (server.url.clone(), server.attacker.clone());
    let figures = server.watched(&rt, || {
        rt.block_on(async {
            let integration =
                call(&url, &attacker, reqwest::Method::POST, "/v2/integrations/custom_provider", Some(json!({"name": "x"})))
                    .await["token"]
                    .as_str()
                    .unwrap()
                    .to_string();
            let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-09-01,1,EC2\nUsage,2024-09-02,2,S3\n";
            let form = reqwest::multipart::Form::new()
                .part("csv", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("two.csv"));
            reqwest::Client::new()
                .post(format!("{url}/v2/integrations/{integration}/costs.csv"))
                .bearer_auth(&attacker)
                .multipart(form)
                .send()
                .await
                .unwrap();
            let sql = (0..statements)
                .map(|i| {
                    format!(
                        "INSERT INTO costs (amount, service, accrued_at) SELECT amount + {}, MIN(service), \
                         MIN(accrued_at) FROM costs GROUP BY amount",
                        1000u64 << i
                    )
                })
                .collect::<Vec<_>>()
                .join(";\n");
            let rule = call(&url, &attacker, reqwest::Method::POST, "/v2/billing_rules",
                Some(json!({"type": "custom", "title": "doubling", "sql_query": sql}))).await;
            let managed = call(&url, &attacker, reqwest::Method::POST, "/v2/managed_accounts",
                Some(json!({"name": "M", "contact_email": "m@x.io", "access_credential_tokens": [integration],
                            "billing_rule_tokens": [rule["token"]]}))).await;
            let token = support::read_token(&bin, server.data.path(), managed["token"].as_str().unwrap());
            let res = reqwest::Client::new()
                .get(format!("{url}/v2/costs?start_date=2024-09-01&end_date=2024-09-30"))
                .bearer_auth(&token)
                .timeout(Duration::from_secs(600))
                .send()
                .await;
            match res {
                Ok(r) => format!("HTTP {} {}", r.status().as_u16(), r.text().await.unwrap_or_default().chars().take(160).collect::<String>()),
                Err(e) => format!("no answer: {e}"),
            }
        })
    });
    figures.print(&format!("5: {statements} doubling INSERT … SELECT statements"));

    // Case 6: a server with 1,024 open files and 1,100 silent connections.
    let server = Server::start(&bin, &[], true);
    let (url, other) = (server.url.clone(), server.other.clone());
    let addr = url.trim_start_matches("http://").to_string();
    let figures = server.watched(&rt, || {
        rt.block_on(async {
            let mut silent = Vec::new();
            for i in 0..1100 {
                match tokio::net::TcpStream::connect(&addr).await {
                    Ok(mut s) => {
                        if i % 2 == 0 {
                            use tokio::io::AsyncWriteExt;
                            let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                        }
                        silent.push(s);
                    }
                    Err(_) => break,
                }
            }
            let asked = Instant::now();
            let res = reqwest::Client::new()
                .get(format!("{url}/v2/ping"))
                .bearer_auth(&other)
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            let outcome = match res {
                Ok(r) => format!(
                    "ping HTTP {} after {:.2} s with {} silent connections open",
                    r.status().as_u16(),
                    asked.elapsed().as_secs_f64(),
                    silent.len()
                ),
                Err(_) => format!(
                    "ping unanswered after {:.0} s with {} silent connections open",
                    asked.elapsed().as_secs_f64(),
                    silent.len()
                ),
            };
            drop(silent);
            outcome
        })
    });
    figures.print("6: 1,100 silent connections, ulimit -n 1024");
}

/// A `costd serve` of its own data dir, with the attacking tenant's (bootstrap) token and a bystander's.
struct Server {
    child: Killed,
    url: String,
    attacker: String,
    other: String,
    idle_kib: u64,
    data: tempfile::TempDir,
}

impl Server {
    fn start(bin: &str, flags: &[&str], few_files: bool) -> Server {
        let data = tempfile::tempdir().unwrap();
        let (child, url) = serve(bin, data.path(), flags, few_files);
        let attacker = std::fs::read_to_string(data.path().join("bootstrap-token")).unwrap().trim().to_string();
        let other = tenant(bin, data.path(), "Bystander");
        std::thread::sleep(Duration::from_secs(1));
        let idle_kib = rss_kib(child.id()).unwrap_or(0);
        Server { child: Killed(child), url, attacker, other, idle_kib, data }
    }

    fn watched(&self, rt: &tokio::runtime::Runtime, attack: impl FnOnce() -> String) -> Figures {
        let mut figures = watched(rt, self.child.0.id(), &self.url, &self.other, self.idle_kib, attack);
        let alive = std::fs::metadata(format!("/proc/{}/status", self.child.0.id())).is_ok()
            && rss_kib(self.child.0.id()).is_some();
        if !alive {
            figures.outcome.push_str(" [the server died]");
        }
        figures
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_for(url: &str) {
    for _ in 0..300 {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

/// `costd serve` on a free port (with `ulimit -n 1024` when `few_files`), its loops off. The child is the
/// server itself (`exec` replaces the shell).
fn serve(bin: &str, data: &Path, flags: &[&str], few_files: bool) -> (Child, String) {
    let mut args: Vec<String> = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--sync-interval-secs",
        "0",
        "--alert-interval-secs",
        "0",
        "--data-dir",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(data.display().to_string());
    args.extend(flags.iter().map(|f| f.to_string()));
    // HOSTILE_MEMORY_LIMIT_MB caps the server's address space (for a build that would take all of the
    // machine's memory: it then dies instead of the machine swapping).
    let mut limits = String::new();
    if few_files {
        limits.push_str("ulimit -n 1024 && ");
    }
    if let Ok(mb) = std::env::var("HOSTILE_MEMORY_LIMIT_MB") {
        limits.push_str(&format!("ulimit -v {} && ", mb.parse::<u64>().expect("HOSTILE_MEMORY_LIMIT_MB") * 1024));
    }
    let mut command = Command::new("bash");
    command.arg("-c").arg(format!("{limits}exec \"$0\" \"$@\"")).arg(bin).args(&args);
    let mut child = command.env("RUST_LOG", "error").stdout(Stdio::piped()).spawn().expect("costd serve starts");
    let url = support::listening_url(&mut child);
    (child, url)
}

/// A second top-level account and a read/write token for it, by the command line.
fn tenant(bin: &str, data: &Path, name: &str) -> String {
    let out = Command::new(bin).args(["account", "create", "--name", name, "--data-dir"]).arg(data).output().unwrap();
    let account = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = Command::new(bin)
        .args(["token", "create", "--account", &account, "--scope", "read,write", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn call(url: &str, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().request(method, format!("{url}{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().json().await.unwrap_or(Value::Null)
}

/// Waits for the integration's sync to end (10 minutes at most): its status and last error.
async fn settle(url: &str, token: &str, integration: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(600) {
        let got = call(url, token, reqwest::Method::GET, &format!("/v2/integrations/{integration}"), None).await;
        let status = got["status"].as_str().unwrap_or("gone");
        if status != "pending" && status != "importing" {
            let error: String = got["last_error"].as_str().unwrap_or("").chars().take(160).collect();
            return format!("{status} after {:.1} s: {error}", started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    "still importing after 600 s".into()
}

/// A bucket holding one AWS FOCUS export of October: `file` as its one data file, and its manifest.
async fn put_export(endpoint: &str, file: &Path, name: &str) -> String {
    use object_store::ObjectStoreExt;
    let bucket = format!("hostile-{}-{}", std::process::id(), free_port());
    reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let key = format!("cur/focus/data/BILLING_PERIOD=2024-10/{name}");
    store.put(&object_store::path::Path::from(key.as_str()), std::fs::read(file).unwrap().into()).await.unwrap();
    let manifest = json!({"executionId": "e1", "dataFiles": [format!("s3://{bucket}/{key}")]});
    store
        .put(
            &object_store::path::Path::from("cur/focus/metadata/BILLING_PERIOD=2024-10/focus-Manifest.json"),
            serde_json::to_vec(&manifest).unwrap().into(),
        )
        .await
        .unwrap();
    bucket
}

/// What one case cost.
struct Figures {
    outcome: String,
    took: Duration,
    peak_above_idle_mib: u64,
    slowest_other: Duration,
    other_failed: u64,
}

impl Figures {
    fn print(&self, case: &str) {
        println!(
            "case {case}: {} ({:.1} s) | peak RSS {} MiB above idle | other tenant: slowest {:.3} s, {} failed",
            self.outcome,
            self.took.as_secs_f64(),
            self.peak_above_idle_mib,
            self.slowest_other.as_secs_f64(),
            self.other_failed
        );
    }
}

/// Runs `attack` while sampling the server's RSS and timing another tenant's requests.
fn watched(
    rt: &tokio::runtime::Runtime,
    pid: u32,
    url: &str,
    other: &str,
    idle_kib: u64,
    attack: impl FnOnce() -> String,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let prober = {
        let (stop, url, other) = (stop.clone(), url.to_string(), other.to_string());
        rt.spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let (mut slowest, mut failed) = (Duration::ZERO, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let ok = client
                    .get(format!("{url}/v2/integrations"))
                    .bearer_auth(&other)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                slowest = slowest.max(asked.elapsed());
                failed += u64::from(!ok);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (slowest, failed)
        })
    };
    let started = Instant::now();
    let outcome = attack();
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (slowest_other, other_failed) = rt.block_on(prober).unwrap();
    Figures {
        outcome,
        took,
        peak_above_idle_mib: peak.load(Ordering::Relaxed).saturating_sub(idle_kib) / 1024,
        slowest_other,
        other_failed,
    }
}

/// About 1 MB of gzip: a FOCUS header, then a row whose quote opens and runs for 1 GB.
fn open_quote_csv(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("open-quote.csv.gz");
    if !path.exists() {
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::best());
        gz.write_all(b"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-10-01,1,\"EC2").unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..1024 {
            gz.write_all(&block).unwrap();
        }
        gz.finish().unwrap();
    }
    eprintln!("{}: {} KB", path.display(), path.metadata().unwrap().len() / 1024);
    path
}

/// A FOCUS Parquet file of a few KB: 20,000 rows whose ServiceName is one 200 KB value (a dictionary of one).
fn long_values_parquet(dir: &Path) -> PathBuf {
    use arrow::array::{Decimal128Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let path = dir.join("long-values.parquet");
    let rows = 20_000;
    let value = "s".repeat(200_000);
    let start = TimestampMillisecondArray::from(vec![1_727_740_800_000i64; rows]).with_timezone("UTC");
    let cost = Decimal128Array::from(vec![100i128; rows]).with_precision_and_scale(38, 2).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ChargePeriodStart", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("BilledCost", DataType::Decimal128(38, 2), false),
        Field::new("ServiceName", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
        Field::new("ChargeCategory", DataType::Utf8, false),
    ]));
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(start),
            Arc::new(cost),
            // One distinct value referenced by every row.
            Arc::new(arrow::array::DictionaryArray::new(
                arrow::array::Int32Array::from(vec![0; rows]),
                Arc::new(StringArray::from(vec![value.as_str()])),
            )),
            Arc::new(StringArray::from(vec!["Usage"; rows])),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    // As a writer other than Arrow's leaves it: no Arrow schema saying the column is a dictionary.
    let options =
        parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let mut w =
        parquet::arrow::ArrowWriter::try_new_with_options(std::fs::File::create(&path).unwrap(), schema, options)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    eprintln!("{}: {} KB", path.display(), path.metadata().unwrap().len() / 1024);
    path
}
