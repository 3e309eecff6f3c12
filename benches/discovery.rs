//! Issue 11's figures at 10,000,000 cost rows (the costs bench's generator, 90 days, over one integration):
//! - what recording discovery costs at commit: `costd import` wall time and peak RSS (the catalog is read
//!   back from the new file before the commit), and the catalog read alone;
//! - discovery requests on a fresh server: `GET /v2/cost_services`, `/v2/tags`, `/v2/tags/team/values`
//!   (median of 20);
//! - data exports: month × service (small result) and day × resource_id (450,000 rows), from the POST to
//!   the completed file, with the server's peak RSS (VmHWM) before and after; the exported total is checked
//!   against `GET /v2/costs`.
//!
//! Run: `cargo bench --bench discovery` (ROWS=2000000 for a quicker run). Inputs are generated into
//! `bench-data/` (shared with the other benches).

mod support;

use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::{bench_dir, generate_focus_csv};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(10_000_000);
    let csv = bench_dir().join(format!("focus_{rows}.csv"));
    generate_focus_csv(&csv, rows, 90).unwrap();
    let dir = tempfile::Builder::new().prefix("discovery-").tempdir_in(bench_dir()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // An account and integration, then the import, measured as a child process.
    let settings =
        costd::store::StoreSettings { data_dir: dir.path().to_path_buf(), database_url: None, db_max_connections: 2 };
    let (account, integration) = rt.block_on(async {
        let store = costd::store::connect(&settings).await.unwrap();
        let account = store.create_account("Bench", None).await.unwrap();
        let integration = store.create_integration(&account.token, "AWS", None).await.unwrap().token.to_string();
        store.close().await;
        (account.token.to_string(), integration)
    });
    let import = support::timed_import(COSTD, dir.path(), &integration, &csv);
    let upload = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("the upload file");
    let started = Instant::now();
    let catalog = costd::engine::discovery::catalog(&upload).unwrap();
    let catalog_time = started.elapsed();
    let token = String::from_utf8(
        Command::new(COSTD)
            .args(["token", "create", "--account", &account, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .find(|l| l.starts_with("cstd_"))
    .expect("a token")
    .to_string();

    let (mut child, url) = support::serve(COSTD, dir.path());
    let pid = child.id();
    let client = reqwest::Client::new();
    let get = |path: String| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let res = client.get(format!("{url}{path}")).bearer_auth(&token).send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert!(status < 300, "{path}: {status} {body}");
            (status, body)
        }
    };
    let median = |path: &'static str| {
        let get = &get;
        async move {
            let mut times = Vec::new();
            let mut body = Value::Null;
            for _ in 0..20 {
                let t = Instant::now();
                body = get(path.to_string()).await.1;
                times.push(t.elapsed());
            }
            times.sort();
            (times[times.len() / 2], body)
        }
    };
    let (services, tags, values) = rt.block_on(async {
        (median("/v2/cost_services").await, median("/v2/tags").await, median("/v2/tags/team/values").await)
    });
    assert_eq!(services.1["cost_services"].as_array().unwrap().len(), catalog.services.len());
    assert_eq!(tags.1["tags"].as_array().unwrap().len(), catalog.tags.len());
    let rss_before = vm_hwm(pid);

    let export = |body: Value| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let started = Instant::now();
            let res = client
                .post(format!("{url}/v2/costs/data_exports"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 202);
            let location = res.headers()["location"].to_str().unwrap().to_string();
            let done = loop {
                let res = client.get(&location).bearer_auth(&token).send().await.unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                if status == 200 {
                    break body;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let elapsed = started.elapsed();
            assert_eq!(done["status"], "completed", "{done}");
            let file = client
                .get(done["manifest"]["files"][0].as_str().unwrap())
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            (elapsed, done["row_count"].as_u64().unwrap(), file)
        }
    };
    let range = json!({"start_date": "2024-07-01", "end_date": "2024-09-28"});
    let (small, large, costs_total) = rt.block_on(async {
        let mut small = range.clone();
        small["groupings"] = json!(["service"]);
        small["date_bin"] = json!("month");
        let mut large = range.clone();
        large["groupings"] = json!(["resource_id"]);
        large["date_bin"] = json!("day");
        let small = export(small).await;
        let large = export(large).await;
        let costs =
            get("/v2/costs?start_date=2024-07-01&end_date=2024-09-28&groupings=service&date_bin=month&limit=1".into())
                .await
                .1;
        (small, large, costs["total_cost"]["amount"].as_str().unwrap().to_string())
    });
    let rss_after = vm_hwm(pid);

    // The forecast's error on a held-out month: September forecast from August's last four weeks, against
    // September's actual costs, per day and in total.
    let (forecast, actual) = rt.block_on(async {
        let report = client
            .post(format!("{url}/v2/cost_reports"))
            .bearer_auth(&token)
            .json(&json!({"title": "All"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let r = report["token"].as_str().unwrap().to_string();
        let forecast = get(format!(
            "/v2/cost_reports/{r}/forecasted_costs?start_date=2024-09-01&end_date=2024-09-28&provider=all&service=all&limit=1000"
        ))
        .await
        .1;
        let actual = get("/v2/costs?start_date=2024-09-01&end_date=2024-09-28&groupings=provider&order=asc&limit=5000".into()).await.1;
        (forecast, actual)
    });
    let amount = |v: &Value| Decimal::from_str(v["amount"].as_str().unwrap()).unwrap();
    let predicted: Vec<Decimal> = forecast["forecasted_costs"].as_array().unwrap().iter().map(amount).collect();
    let observed: Vec<Decimal> = actual["costs"].as_array().unwrap().iter().map(amount).collect();
    assert_eq!(predicted.len(), observed.len(), "a forecast per day of September");
    let total_error =
        (predicted.iter().sum::<Decimal>() - observed.iter().sum::<Decimal>()).abs() / observed.iter().sum::<Decimal>();
    let mape = predicted.iter().zip(&observed).map(|(p, o)| ((p - o) / o).abs()).sum::<Decimal>()
        / Decimal::from(observed.len());
    let _ = child.kill();

    // The exported amounts sum (exactly) to what GET /v2/costs totals.
    let sum = |file: &str| -> Decimal {
        file.lines().skip(1).map(|l| Decimal::from_str(l.split(',').rev().nth(1).unwrap()).unwrap()).sum()
    };
    let exported = sum(&small.2).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(exported, Decimal::from_str(&costs_total).unwrap(), "the export's total is the costs total");
    assert_eq!(sum(&small.2), sum(&large.2), "both exports hold the same money");

    println!("discovery and data exports over {rows} cost rows (release, this machine):");
    println!(
        "  import (with the discovery catalog): {:.1} s, peak RSS {:.0} MiB; the catalog read alone: {:.2} s",
        import.wall.as_secs_f64(),
        import.peak_rss_mib,
        catalog_time.as_secs_f64()
    );
    println!(
        "  catalog: {} services, {} tag keys, {} tag values",
        catalog.services.len(),
        catalog.tags.len(),
        catalog.tags.values().map(|v| v.len()).sum::<usize>()
    );
    for (name, (time, _)) in
        [("GET /v2/cost_services", &services), ("GET /v2/tags", &tags), ("GET /v2/tags/team/values", &values)]
    {
        println!("  {name}: median {:.1} ms", time.as_secs_f64() * 1000.0);
    }
    println!("  export month x service: {} rows in {:.2} s", small.1, small.0.as_secs_f64());
    println!(
        "  export day x resource_id: {} rows in {:.2} s ({} bytes)",
        large.1,
        large.0.as_secs_f64(),
        large.2.len()
    );
    println!("  server peak RSS: {rss_before:.0} MiB before the exports, {rss_after:.0} MiB after");
    println!("  exported total {exported} = GET /v2/costs total {costs_total}");
    println!(
        "  forecast of held-out September (28 days, from August's last four weeks): month total off by {:.2} %, daily MAPE {:.2} %",
        total_error * Decimal::from(100),
        mape * Decimal::from(100)
    );
}

/// A process's peak resident set (VmHWM), MiB.
fn vm_hwm(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
