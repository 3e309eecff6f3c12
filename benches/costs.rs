//! Issue 4's figures: `GET /v2/costs?groupings=service&date_bin=month` over 2,000,000 cost rows (90 days)
//! for a managed account with 5 rules (exclusion, adjustment, custom UPDATE with a WHERE, credit, charge),
//! against DuckDB running the equivalent single SQL statement over the same rows in its own database
//! file. Prints both times, their ratio (goal ≤ 1.0), a repeated query's time, and costd's peak RSS. costd's
//! time is the first query of a freshly started server (nothing cached), the median over three servers.
//!
//! Run: `cargo bench --bench costs`. Inputs are generated into `bench-data/` (shared with the ingest bench).
//! With `COSTD_BENCH_KEEP=1` the data dir and the managed account's token are kept and printed, so the
//! same query can be profiled afterwards (`costd query --account … --data-dir …` under `perf`).

mod support;

use std::time::{Duration, Instant};

use support::{bench_dir, ensure_duckdb, generate_focus_csv};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");
const ROWS: u64 = 2_000_000;
const QUERY: &str = "/v2/costs?groupings=service&date_bin=month&start_date=2024-07-01&end_date=2024-09-30";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let csv = bench_dir().join(format!("focus_{ROWS}.csv"));
    generate_focus_csv(&csv, ROWS, 90).unwrap();
    ensure_duckdb();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::Builder::new().prefix("costs-").tempdir_in(bench_dir()).unwrap();

    // Arrange: an MSP account, its integration with the rows, and a managed account with 5 rules.
    let (_, integration, parent_token) = support::msp_with_rows(COSTD, dir.path(), &csv);

    // Set up the rules and the managed account through the API, then stop that server.
    let (mut child, url) = support::serve(COSTD, dir.path());
    let managed_token = rt.block_on(support::managed_account_with_bench_rules(&url, &parent_token, &integration));
    if std::env::var_os("COSTD_BENCH_KEEP").is_some() {
        println!("kept: --data-dir {} --account {managed_token}", dir.path().display());
    }
    let token = support::read_token(COSTD, dir.path(), &managed_token);
    let _ = child.kill();
    let _ = child.wait();

    // Each run is a new server, so its first query finds nothing cached; the median of the runs is reported.
    let mut runs: Vec<ColdRun> = (0..RUNS).map(|_| cold_run(&rt, dir.path(), &token)).collect();
    runs.sort_by_key(|r| r.first);
    let median = &runs[RUNS / 2];
    let (first, repeated, total) = (median.first, median.repeated, median.total.clone());
    let peak_rss_mib = runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
    let firsts: Vec<String> = runs.iter().map(|r| format!("{:.3}", r.first.as_secs_f64())).collect();
    if std::env::var_os("COSTD_BENCH_KEEP").is_some() {
        let _ = dir.keep();
    }

    let (duck, duck_float, duck_total) = duckdb(&csv);
    println!(
        "costd GET {QUERY}: first query {:.3} s (median of {RUNS} fresh servers: {}), repeated (median of 5) {:.4} s, total_cost {total}",
        first.as_secs_f64(),
        firsts.join(", "),
        repeated.as_secs_f64()
    );
    println!(
        "DuckDB equivalent SQL with DECIMAL(38,18) amounts: {:.3} s (best of 3), total {duck_total}; with DOUBLE amounts: {:.3} s",
        duck.as_secs_f64(),
        duck_float.as_secs_f64()
    );
    println!(
        "ratio costd/DuckDB = {:.2} against exact decimals, {:.2} against doubles (goal <= 1.0); costd peak RSS {peak_rss_mib:.0} MiB (goal < 1024)",
        first.as_secs_f64() / duck.as_secs_f64(),
        first.as_secs_f64() / duck_float.as_secs_f64()
    );
}

/// Fresh servers the first query is timed on.
const RUNS: usize = 3;

/// One server's first (uncached) query, its repeated query, and its peak RSS.
struct ColdRun {
    first: Duration,
    repeated: Duration,
    total: String,
    peak_rss_mib: f64,
}

/// Starts `costd serve` over `data_dir`, times the query once and then five times more, and stops it.
fn cold_run(rt: &tokio::runtime::Runtime, data_dir: &std::path::Path, token: &str) -> ColdRun {
    let (mut child, url) = support::serve(COSTD, data_dir);
    let pid = child.id();
    let (first, repeated, total) = rt.block_on(async {
        let client = reqwest::Client::new();
        // Connect and authenticate first, so the timed request is the query alone.
        let ping = client.get(format!("{url}/v2/ping")).bearer_auth(token).send().await.unwrap();
        assert_eq!(ping.status().as_u16(), 200);
        let timed = || async {
            let started = Instant::now();
            let res = client.get(format!("{url}{QUERY}")).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            let body: serde_json::Value = res.json().await.unwrap();
            (started.elapsed(), body)
        };
        let (first, body) = timed().await;
        let mut repeats = Vec::new();
        for _ in 0..5 {
            repeats.push(timed().await.0);
        }
        repeats.sort();
        (first, repeats[2], body["total_cost"]["amount"].as_str().unwrap().to_string())
    });
    let peak_rss_mib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    ColdRun { first, repeated, total, peak_rss_mib }
}

/// Loads the CSV into a DuckDB database file (untimed), then times the same query as one statement.
fn duckdb(csv: &std::path::Path) -> (Duration, Duration, String) {
    let db = bench_dir().join("costs_2000000.duckdb");
    let script = format!(
        r#"
import duckdb, os, time
db = '{db}'
con = duckdb.connect(db)
con.execute('SET threads = 2')
con.execute('SET enable_progress_bar = false')
if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'costs'").fetchone()[0]:
    con.execute("CREATE TABLE costs AS SELECT CAST(ChargePeriodStart AS DATE) AS accrued_at, CAST(BilledCost AS DECIMAL(38,18)) AS amount, ChargeCategory AS charge_type, ServiceName AS service, RegionId AS region FROM read_csv('{csv}')")
q = '''
WITH base AS (SELECT * FROM costs WHERE accrued_at BETWEEN DATE '2024-07-01' AND DATE '2024-09-30'),
excl AS (SELECT * FROM base WHERE lower(charge_type) <> 'tax'),
adj AS (SELECT accrued_at, CAST(amount * 0.90 AS DECIMAL(38,18)) AS amount, charge_type, service, region FROM excl),
upd AS (SELECT accrued_at, CASE WHEN region = 'us-east-1' THEN CAST(amount * 1.1 AS DECIMAL(38,18)) ELSE amount END AS amount, charge_type, service, region FROM adj),
months AS (SELECT CAST(m AS DATE) AS accrued_at FROM generate_series(DATE '2024-07-01', DATE '2024-09-01', INTERVAL 1 MONTH) t(m)),
alls AS (
  SELECT * FROM upd
  UNION ALL SELECT accrued_at, CAST(-100 AS DECIMAL(38,18)), 'Credit', 'Support', NULL FROM months
  UNION ALL SELECT accrued_at, CAST(250 AS DECIMAL(38,18)), 'Fee', 'MSP Fee', NULL FROM months)
SELECT date_trunc('month', accrued_at) AS month, service, sum(amount) AS amount
FROM alls WHERE charge_type NOT IN ('Credit', 'Refund')
GROUP BY 1, 2 ORDER BY 1 DESC, 2
'''
{best_of_3}
# The same statement over DOUBLE amounts (DuckDB's own type for the column): faster, but inexact.
if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'costs_f'").fetchone()[0]:
    con.execute("CREATE TABLE costs_f AS SELECT accrued_at, CAST(amount AS DOUBLE) AS amount, charge_type, service, region FROM costs")
qf = q.replace('FROM costs WHERE', 'FROM costs_f WHERE').replace('DECIMAL(38,18)', 'DOUBLE')
fbest, _ = best_of_3(qf)
best, rows = best_of_3(q)
print(fbest)
print(best)
print(sum(r[2] for r in rows))
"#,
        db = db.display(),
        csv = csv.display(),
        best_of_3 = support::DUCKDB_BEST_OF_3,
    );
    let lines = support::python_lines(&script);
    let [.., float_secs, secs, total] = lines.as_slice() else { panic!("unexpected DuckDB output: {lines:?}") };
    let parse = |s: &str| s.trim().parse::<f64>().unwrap_or_else(|_| panic!("unexpected DuckDB output: {lines:?}"));
    (Duration::from_secs_f64(parse(secs)), Duration::from_secs_f64(parse(float_secs)), total.to_string())
}
