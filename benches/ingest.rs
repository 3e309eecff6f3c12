//! Issue 3's figures: `costd import` of a generated 2,000,000-row FOCUS CSV against DuckDB's
//! `CREATE TABLE … AS SELECT * FROM read_csv(…)` of the same file (time ratio, goal ≤ 1.0), peak RSS of
//! the import at 1 M and 4 M rows (goal < 300 MB and flat), and the p50 of a 10,000-row HTTP upload.
//!
//! Run: `cargo bench --bench ingest` (add `-- --rows N` for another main size, `-- --skip-scaling` to
//! skip the 1 M / 4 M runs). Generated files are kept in `bench-data/`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use costd::store::StoreSettings;
use support::{bench_dir, ensure_duckdb, generate_focus_csv, measure};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// A fresh store with one integration; returns its data dir and the integration token.
fn fresh_store(rt: &tokio::runtime::Runtime, name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new().prefix(name).tempdir_in(bench_dir()).unwrap();
    let settings = StoreSettings { data_dir: dir.path().to_path_buf(), database_url: None, db_max_connections: 2 };
    let integration = rt.block_on(async {
        let store = costd::store::connect(&settings).await.unwrap();
        let account = store.create_account("bench", None).await.unwrap();
        let token = store.create_integration(&account.token, "bench", None).await.unwrap().token.to_string();
        store.close().await;
        token
    });
    (dir, integration)
}

fn import(rt: &tokio::runtime::Runtime, csv: &Path) -> support::Measured {
    let (dir, integration) = fresh_store(rt, "import-");
    let m = measure(
        Command::new(COSTD)
            .args(["import", "--quiet", "--integration", &integration])
            .arg(csv)
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn"),
    );
    m
}

fn duckdb(csv: &Path) -> support::Measured {
    let db = tempfile::Builder::new().prefix("duck-").tempdir_in(bench_dir()).unwrap();
    let script = format!(
        "import duckdb; con = duckdb.connect('{}'); con.execute('SET threads = 2'); \
         con.execute(\"CREATE TABLE costs AS SELECT * FROM read_csv('{}')\"); \
         print(con.execute('SELECT count(*) FROM costs').fetchone()[0])",
        db.path().join("costs.duckdb").display(),
        csv.display()
    );
    measure(Command::new("python3").args(["-c", &script]))
}

fn main() {
    if flag("--list") {
        return; // `cargo bench -- --list` enumerates benchmarks; this file is one.
    }
    let rows: u64 = arg("--rows").map(|r| r.parse().expect("--rows takes a number")).unwrap_or(2_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("costd ingest benchmark: {} cores", std::thread::available_parallelism().map_or(1, |n| n.get()));

    let main_csv = bench_dir().join(format!("focus_{rows}.csv"));
    generate_focus_csv(&main_csv, rows, 90).unwrap();
    let size_mb = std::fs::metadata(&main_csv).unwrap().len() as f64 / 1e6;
    ensure_duckdb();

    let ours = import(&rt, &main_csv);
    let theirs = duckdb(&main_csv);
    print!("{}", ours.stdout);
    println!(
        "{rows} rows, {size_mb:.0} MB: costd import {:.2} s (peak RSS {:.0} MiB) | DuckDB CTAS read_csv {:.2} s (peak RSS {:.0} MiB) | ratio costd/DuckDB = {:.2} (goal <= 1.0)",
        ours.wall.as_secs_f64(),
        ours.peak_rss_mib,
        theirs.wall.as_secs_f64(),
        theirs.peak_rss_mib,
        ours.wall.as_secs_f64() / theirs.wall.as_secs_f64()
    );

    if !flag("--skip-scaling") {
        for n in [1_000_000u64, 4_000_000] {
            let csv = bench_dir().join(format!("focus_{n}.csv"));
            generate_focus_csv(&csv, n, 90).unwrap();
            let m = import(&rt, &csv);
            println!(
                "peak RSS at {n} rows: {:.0} MiB ({:.2} s, {:.0} MB/s)",
                m.peak_rss_mib,
                m.wall.as_secs_f64(),
                std::fs::metadata(&csv).unwrap().len() as f64 / 1e6 / m.wall.as_secs_f64()
            );
        }
    }

    http_upload_p50(&rt);
}

/// p50 of uploading a 10,000-row file over HTTP to a release `costd serve` (20 uploads, one at a time).
fn http_upload_p50(rt: &tokio::runtime::Runtime) {
    let csv = bench_dir().join("focus_10000.csv");
    generate_focus_csv(&csv, 10_000, 30).unwrap();
    let body = std::fs::read(&csv).unwrap();
    let dir = tempfile::Builder::new().prefix("serve-").tempdir_in(bench_dir()).unwrap();
    let (mut child, url) = support::serve(COSTD, dir.path());
    let token = std::fs::read_to_string(dir.path().join("bootstrap-token")).unwrap().trim().to_string();
    let times = rt.block_on(async {
        let client = reqwest::Client::new();
        let res: serde_json::Value = client
            .post(format!("{url}/v2/integrations/custom_provider"))
            .bearer_auth(&token)
            .body(r#"{"name":"bench"}"#)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let integration = res["token"].as_str().unwrap().to_string();
        let mut times = Vec::new();
        for i in 0..21 {
            let form = reqwest::multipart::Form::new()
                .part("csv", reqwest::multipart::Part::bytes(body.clone()).file_name(format!("f{}.csv", i % 3)));
            let started = Instant::now();
            let res = client
                .post(format!("{url}/v2/integrations/{integration}/costs.csv"))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
            if i > 0 {
                times.push(started.elapsed()); // the first upload warms the caches
            }
        }
        times
    });
    let _ = child.kill();
    let mut sorted: Vec<Duration> = times;
    sorted.sort();
    println!(
        "HTTP upload of 10,000 rows ({:.1} MB): p50 {:.0} ms, max {:.0} ms over {} uploads (goal p50 < 150 ms)",
        body.len() as f64 / 1e6,
        sorted[sorted.len() / 2].as_secs_f64() * 1e3,
        sorted.last().unwrap().as_secs_f64() * 1e3,
        sorted.len()
    );
}
