//! Issue 13's figures: costd beside DuckDB 2.0 (amounts DECIMAL(18,6)) on the same generated rows, at
//! 2,000,000 and 10,000,000 rows (`COSTD_SCALE_ROWS=2500000,…` picks others):
//! - ingest: `costd import` of the CSV against DuckDB's `CREATE TABLE … AS SELECT … FROM read_csv(…)` of the
//!   same 16 columns costd keeps, typed (dates, DECIMAL(18,6) amounts), checkpointed to its database file;
//!   and against DuckDB loading every column (`SELECT *`, as the ingest bench and issue 13's table did);
//! - the managed account's costs with the 5 bench rules, month × service, the first query of a freshly
//!   started server (median of 3 servers) against DuckDB's best of 3 for the same single SQL statement;
//! - the same account's costs by day × service × region × account, as the second query of each server;
//! - the same account's costs by month × tag `team`, which no rollup answers (tags are not rolled up): the
//!   plan over every row, as a partition of a distributed run would execute it (docs/scale-out.md), against
//!   DuckDB's `json_extract_string` over the same JSON text;
//! - the same account's costs by month × a 5-value virtual tag the MSP saved (three values named by service
//!   filters, Lambda's cost split by each team's EC2 cost that month, a catch-all splitting the rest
//!   50/30/20: issue 35), against the same query by the real tag `team` (goal ≤ 1.5×) and DuckDB computing
//!   the same allocation in SQL (a CASE on the filters, a join for the split; goal ≤ 1.0×), its total
//!   checked against the untagged one; and how long saving the tag took;
//! - a segment's report (issue 35): month × service of a child segment two levels down (its parent takes
//!   what a higher-priority sibling left, it keeps the US regions), cold, against the whole account's same
//!   query; the segments' totals checked to add up to the whole;
//! - the server's RSS after these queries (their results stay in its cache).
//!
//! Each line ends with costd/DuckDB and the issue's goal. Run: `cargo bench --bench scale` (inputs are
//! generated into `bench-data/`, ~270 bytes a row; the 10M-row CSV is 2.7 GB). With `COSTD_BENCH_KEEP=1`
//! the data dir and the managed account are kept and printed, so a query can be profiled afterwards
//! (`costd query --account … --data-dir … --groupings tag:owner` under `perf`).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{bench_dir, ensure_duckdb, generate_focus_csv};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");
const RUNS: usize = 3;
const RANGE: &str = "start_date=2024-07-01&end_date=2024-09-30";

fn month_by_service() -> String {
    format!("/v2/costs?groupings=service&date_bin=month&{RANGE}")
}

fn day_by_service_region_account() -> String {
    format!("/v2/costs?groupings=service,region,account_id&date_bin=day&{RANGE}&limit=5000")
}

fn month_by_tag() -> String {
    format!("/v2/costs?groupings=tag:team&date_bin=month&{RANGE}")
}

fn month_by_virtual_tag() -> String {
    format!("/v2/costs?groupings=tag:owner&date_bin=month&{RANGE}")
}

/// The virtual tag of issue 35's figure: five values, one a percentage split, one a cost-based split.
fn owner_tag() -> serde_json::Value {
    serde_json::json!({"key": "owner", "overridable": true, "values": [
        {"filter": "costs.service = 'Amazon Elastic Compute Cloud'", "name": "compute-team"},
        {"filter": "costs.service = 'Amazon Simple Storage Service'", "name": "storage-team"},
        {"filter": "costs.service IN ('Amazon Relational Database Service', 'Amazon DynamoDB')", "name": "data-team"},
        {"filter": "costs.service = 'AWS Lambda'", "display_name": "Lambda",
         "cost_metric": {"filter": "costs.service = 'Amazon Elastic Compute Cloud'", "aggregation": {"tag": "team"}}},
        {"filter": "", "percentages": [{"value": "web", "pct": 50}, {"value": "data", "pct": 30}, {"value": "ml", "pct": 20}]}
    ]})
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ensure_duckdb();
    let sizes = std::env::var("COSTD_SCALE_ROWS").unwrap_or_else(|_| "2000000,10000000".into());
    for rows in sizes.split(',').map(|n| n.trim().parse::<u64>().expect("COSTD_SCALE_ROWS: numbers")) {
        run(rows);
    }
}

/// One fresh server's two queries and what it holds afterwards.
struct ColdRun {
    month: Duration,
    day: Duration,
    tag: Duration,
    virtual_tag: Duration,
    month_total: String,
    rss_mib: f64,
    peak_rss_mib: f64,
}

fn run(rows: u64) {
    let csv = bench_dir().join(format!("focus_{rows}.csv"));
    generate_focus_csv(&csv, rows, 90).unwrap();
    let dir = tempfile::Builder::new().prefix("scale-").tempdir_in(bench_dir()).unwrap();

    // Ingest, timed as a user runs it, after the page cache has written back what earlier steps left dirty
    // (DuckDB's database files), so neither side waits on the other's writes.
    let (parent, integration) = support::msp_account(dir.path());
    let _ = Command::new("sync").status();
    let imported = support::timed_import(COSTD, dir.path(), &integration, &csv);
    let parent_token = {
        let out = Command::new(COSTD)
            .args(["token", "create", "--account", &parent, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut child, url) = support::serve(COSTD, dir.path());
    let managed = rt.block_on(support::managed_account_with_bench_rules(&url, &parent_token, &integration));
    let saved = rt.block_on(async {
        let started = Instant::now();
        let res = reqwest::Client::new()
            .post(format!("{url}/v2/virtual_tag_configs"))
            .bearer_auth(&parent_token)
            .json(&owner_tag())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
        started.elapsed()
    });
    let _ = child.kill();
    let _ = child.wait();
    let token = support::read_token(COSTD, dir.path(), &managed);
    if std::env::var_os("COSTD_BENCH_KEEP").is_some() {
        println!("kept: --data-dir {} --account {managed}", dir.path().display());
    }

    let mut runs: Vec<ColdRun> = (0..RUNS).map(|_| cold_run(&rt, dir.path(), &token)).collect();
    runs.sort_by_key(|r| r.month);
    let month = runs[RUNS / 2].month;
    let month_total = runs[RUNS / 2].month_total.clone();
    let mut days: Vec<Duration> = runs.iter().map(|r| r.day).collect();
    days.sort();
    let day = days[RUNS / 2];
    let mut tags: Vec<Duration> = runs.iter().map(|r| r.tag).collect();
    tags.sort();
    let tag = tags[RUNS / 2];
    let mut virtual_tags: Vec<Duration> = runs.iter().map(|r| r.virtual_tag).collect();
    virtual_tags.sort();
    let virtual_tag = virtual_tags[RUNS / 2];
    let segment = segmented(&rt, dir.path(), &managed);
    let (by_multiplying, by_dividing) = converted(&rt, dir.path(), &parent_token, &managed);
    let rss = runs.iter().map(|r| r.rss_mib).fold(0.0, f64::max);
    let peak = runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);

    let duck = duckdb(&csv, rows);
    let ratio = |ours: Duration, theirs: Duration| ours.as_secs_f64() / theirs.as_secs_f64();
    println!(
        "{rows} rows: ingest: costd import {:.2} s (peak RSS {:.0} MiB); DuckDB {:.2} s loading costd's 16 columns, \
         costd/DuckDB {:.2}; DuckDB {:.2} s loading every column, costd/DuckDB {:.2} (goal <= 0.5)",
        imported.wall.as_secs_f64(),
        imported.peak_rss_mib,
        duck.load.as_secs_f64(),
        ratio(imported.wall, duck.load),
        duck.load_all.as_secs_f64(),
        ratio(imported.wall, duck.load_all)
    );
    println!(
        "{rows} rows: managed account, 5 rules, month x service, cold: costd {:.3} s (median of {RUNS} fresh servers), \
         DuckDB {:.3} s (best of 3); costd/DuckDB {:.2} (goal <= 0.7); totals {month_total} / {}",
        month.as_secs_f64(),
        duck.month.as_secs_f64(),
        ratio(month, duck.month),
        duck.month_total
    );
    println!(
        "{rows} rows: managed account, 5 rules, day x service x region x account: costd {:.3} s, DuckDB {:.3} s; \
         costd/DuckDB {:.2} (goal <= 1.0)",
        day.as_secs_f64(),
        duck.day.as_secs_f64(),
        ratio(day, duck.day)
    );
    println!(
        "{rows} rows: managed account, 5 rules, month x tag:team (every row, no rollup): costd {:.3} s, DuckDB \
         {:.3} s (json_extract_string); costd/DuckDB {:.2} (goal <= 1.0)",
        tag.as_secs_f64(),
        duck.tag.as_secs_f64(),
        ratio(tag, duck.tag)
    );
    println!(
        "{rows} rows: managed account, 5 rules, month x a 5-value virtual tag (a 50/30/20 split, a split by each \
         team's EC2 cost): costd {:.3} s, by the real tag:team {:.3} s; virtual/real {:.2} (goal <= 1.5); DuckDB \
         {:.3} s (the allocation in SQL), costd/DuckDB {:.2} (goal <= 1.0); saving the tag {:.3} s (goal < 1)",
        virtual_tag.as_secs_f64(),
        tag.as_secs_f64(),
        ratio(virtual_tag, tag),
        duck.allocation.as_secs_f64(),
        ratio(virtual_tag, duck.allocation),
        saved.as_secs_f64()
    );
    println!(
        "{rows} rows: managed account, 5 rules, month x service in a workspace converting every row to EUR: by a \
         multiplying rate {:.3} s (rollup still answers), by a dividing rate {:.3} s (every row); unconverted {:.3} s",
        by_multiplying.as_secs_f64(),
        by_dividing.as_secs_f64(),
        month.as_secs_f64()
    );
    println!(
        "{rows} rows: managed account, 5 rules, month x service of a segment two levels down, cold: {:.3} s \
         (median of {RUNS} fresh servers); the whole account {:.3} s; segment/whole {:.2}",
        segment.as_secs_f64(),
        month.as_secs_f64(),
        ratio(segment, month)
    );
    println!("{rows} rows: server RSS after these queries {rss:.0} MiB, peak {peak:.0} MiB (goal < 500)");
    if std::env::var_os("COSTD_BENCH_KEEP").is_some() {
        let _ = dir.keep();
    }
}

/// `GET {url}{path}` with `token`, timed to its decoded body; the answer must be a 200.
async fn timed_get(url: &str, path: &str, token: &str) -> (Duration, serde_json::Value) {
    // The client is made before the clock starts: building one loads its TLS roots.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let res = client.get(format!("{url}{path}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    (started.elapsed(), body)
}

/// A new read/write token of `account`.
fn writer_token(data_dir: &std::path::Path, account: &str) -> String {
    let out = Command::new(COSTD)
        .args(["token", "create", "--account", account, "--scope", "read,write", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The managed account's segments: Compute first, then the rest (tracking its unallocated costs) with a
/// child keeping the US regions. Answers the child's report's month × service, cold (median of fresh
/// servers), after checking that the top-level segments' totals add up to the whole.
fn segmented(rt: &tokio::runtime::Runtime, data_dir: &std::path::Path, managed: &str) -> Duration {
    let writer = writer_token(data_dir, managed);
    let (mut child, url) = support::serve(COSTD, data_dir);
    let reports: Vec<String> = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut made: Vec<serde_json::Value> = Vec::new();
        for body in [
            serde_json::json!({"title": "Compute", "priority": 1, "filter": "costs.service IN ('Amazon Elastic Compute \
                Cloud', 'AWS Lambda', 'Amazon Elastic Kubernetes Service')"}),
            serde_json::json!({"title": "Rest", "priority": 2, "track_unallocated": true}),
        ] {
            let res = client.post(format!("{url}/v2/segments")).bearer_auth(&writer).json(&body).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 201);
            made.push(res.json().await.unwrap());
        }
        let body = serde_json::json!({"title": "US", "parent_segment_token": made[1]["token"],
            "filter": "costs.region IN ('us-east-1', 'us-west-2')"});
        let res = client.post(format!("{url}/v2/segments")).bearer_auth(&writer).json(&body).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 201);
        made.push(res.json().await.unwrap());
        made.iter().map(|s| s["report_token"].as_str().unwrap().to_string()).collect()
    });
    let _ = child.kill();
    let _ = child.wait();
    let month_of = |url: &str, report: Option<&str>| {
        let report = report.map(|r| format!("&cost_report_token={r}")).unwrap_or_default();
        let (url, writer) = (url.to_string(), writer.clone());
        async move {
            let (took, body) = timed_get(&url, &format!("{}{report}", month_by_service()), &writer).await;
            let exact: rust_decimal::Decimal = body["costs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
                .sum();
            (took, exact)
        }
    };
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let (mut child, url) = support::serve(COSTD, data_dir);
            let (took, _) = rt.block_on(month_of(&url, Some(&reports[2])));
            let _ = child.kill();
            let _ = child.wait();
            took
        })
        .collect();
    times.sort();
    let (mut child, url) = support::serve(COSTD, data_dir);
    rt.block_on(async {
        let (_, whole) = month_of(&url, None).await;
        let (_, compute) = month_of(&url, Some(&reports[0])).await;
        let (_, rest) = month_of(&url, Some(&reports[1])).await;
        assert_eq!(compute + rest, whole, "the top-level segments add up to the whole");
    });
    let _ = child.kill();
    let _ = child.wait();
    times[RUNS / 2]
}

/// The month query (median of cold servers) once the managed account's workspace shows costs in EUR: with
/// only a EUR→USD rate (each USD row divides), then with a USD→EUR one too (a direct rate multiplies).
fn converted(
    rt: &tokio::runtime::Runtime,
    data_dir: &std::path::Path,
    parent: &str,
    managed: &str,
) -> (Duration, Duration) {
    let writer = writer_token(data_dir, managed);
    let post_rates = |url: String, csv: &'static str| {
        let parent = parent.to_string();
        async move {
            let form = reqwest::multipart::Form::new()
                .part("csv", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("rates.csv"));
            let res = reqwest::Client::new()
                .post(format!("{url}/v2/exchange_rates/csv"))
                .bearer_auth(&parent)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 201);
        }
    };
    let cold_month = || {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let (mut child, url) = support::serve(COSTD, data_dir);
                let (took, body) = rt.block_on(timed_get(&url, &month_by_service(), &writer));
                assert_eq!(body["total_cost"]["currency"], "EUR", "{body}");
                let _ = child.kill();
                let _ = child.wait();
                took
            })
            .collect();
        times.sort();
        times[RUNS / 2]
    };
    let (mut child, url) = support::serve(COSTD, data_dir);
    rt.block_on(async {
        post_rates(url.clone(), "EUR,USD,1.087,2000-01-01\n").await;
        let client = reqwest::Client::new();
        let res = client.get(format!("{url}/v2/workspaces")).bearer_auth(&writer).send().await.unwrap();
        let body: serde_json::Value = res.json().await.unwrap();
        let workspace = body["workspaces"][0]["token"].as_str().unwrap().to_string();
        let res = client
            .put(format!("{url}/v2/workspaces/{workspace}"))
            .bearer_auth(&writer)
            .json(&serde_json::json!({"currency": "EUR", "enable_currency_conversion": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    });
    let _ = child.kill();
    let _ = child.wait();
    let dividing = cold_month();
    let (mut child, url) = support::serve(COSTD, data_dir);
    rt.block_on(post_rates(url, "USD,EUR,0.92,2000-01-01\n"));
    let _ = child.kill();
    let _ = child.wait();
    let multiplying = cold_month();
    (multiplying, dividing)
}

/// Starts `costd serve`, times the month query and then the day query, reads its memory, and stops it.
fn cold_run(rt: &tokio::runtime::Runtime, data_dir: &std::path::Path, token: &str) -> ColdRun {
    let (mut child, url) = support::serve(COSTD, data_dir);
    let pid = child.id();
    let (month, day, tag, virtual_tag, month_total) = rt.block_on(async {
        let client = reqwest::Client::new();
        let ping = client.get(format!("{url}/v2/ping")).bearer_auth(token).send().await.unwrap();
        assert_eq!(ping.status().as_u16(), 200);
        let (month, body) = timed_get(&url, &month_by_service(), token).await;
        let (day, _) = timed_get(&url, &day_by_service_region_account(), token).await;
        let (tag, by_tag) = timed_get(&url, &month_by_tag(), token).await;
        let (virtual_tag, by_virtual_tag) = timed_get(&url, &month_by_virtual_tag(), token).await;
        let total = body["total_cost"]["amount"].as_str().unwrap().to_string();
        assert_eq!(by_tag["total_cost"]["amount"].as_str(), Some(total.as_str()), "the rows and the rollup agree");
        assert_eq!(
            by_virtual_tag["total_cost"]["amount"].as_str(),
            Some(total.as_str()),
            "allocation keeps every cent"
        );
        (month, day, tag, virtual_tag, total)
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    let (rss_mib, peak_rss_mib) = (kib("VmRSS") / 1024.0, kib("VmHWM") / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
    ColdRun { month, day, tag, virtual_tag, month_total, rss_mib, peak_rss_mib }
}

struct Duck {
    /// The 16 columns costd keeps.
    load: Duration,
    /// Every column of the CSV.
    load_all: Duration,
    month: Duration,
    day: Duration,
    /// Month × the `team` tag (`json_extract_string` on the same JSON text costd keeps).
    tag: Duration,
    /// Month × the virtual tag's allocation written in SQL.
    allocation: Duration,
    month_total: String,
}

/// Loads the CSV into a new DuckDB database (timed), then times both queries as single statements.
fn duckdb(csv: &std::path::Path, rows: u64) -> Duck {
    let db = bench_dir().join(format!("scale_{rows}.duckdb"));
    let _ = std::fs::remove_file(&db);
    let _ = std::fs::remove_file(db.with_extension("duckdb.wal"));
    let script = format!(
        r#"
import duckdb, os, time
os.sync()
con = duckdb.connect('{db}')
con.execute('SET threads = 2')
con.execute('SET enable_progress_bar = false')
t = time.perf_counter()
con.execute("""CREATE TABLE costs AS SELECT
  CAST(CAST(ChargePeriodStart AS TIMESTAMP) AS DATE) AS accrued_at, CAST(BilledCost AS DECIMAL(18,6)) AS amount,
  CAST(EffectiveCost AS DECIMAL(18,6)) AS amortized_amount, BillingCurrency AS currency,
  ChargeCategory AS charge_type, ServiceName AS service, ServiceCategory AS cost_category,
  ResourceType AS cost_subcategory, RegionId AS region, ResourceId AS resource_id, ResourceName AS resource_name,
  CAST(SubAccountId AS VARCHAR) AS account, CAST(BillingAccountId AS VARCHAR) AS billing_account_id,
  CAST(ConsumedQuantity AS DECIMAL(18,6)) AS usage_amount, ConsumedUnit AS usage_unit, Tags AS tags
  FROM read_csv('{csv}', all_varchar = true)""")
con.execute('CHECKPOINT')
print(time.perf_counter() - t)
os.sync()
t = time.perf_counter()
con.execute("CREATE TABLE costs_all AS SELECT * FROM read_csv('{csv}', types={{'BilledCost': 'DECIMAL(18,6)', 'EffectiveCost': 'DECIMAL(18,6)'}})")
con.execute('CHECKPOINT')
print(time.perf_counter() - t)
con.execute('DROP TABLE costs_all')
rules = '''
WITH base AS (SELECT * FROM costs WHERE accrued_at BETWEEN DATE '2024-07-01' AND DATE '2024-09-30'),
excl AS (SELECT * FROM base WHERE lower(charge_type) <> 'tax'),
adj AS (SELECT accrued_at, CAST(amount * 0.90 AS DECIMAL(18,6)) AS amount, charge_type, service, region, account, tags FROM excl),
upd AS (SELECT accrued_at, CASE WHEN region = 'us-east-1' THEN CAST(amount * 1.1 AS DECIMAL(18,6)) ELSE amount END AS amount, charge_type, service, region, account, tags FROM adj),
months AS (SELECT CAST(m AS DATE) AS accrued_at FROM generate_series(DATE '2024-07-01', DATE '2024-09-01', INTERVAL 1 MONTH) t(m)),
alls AS (
  SELECT * FROM upd
  UNION ALL SELECT accrued_at, CAST(-100 AS DECIMAL(18,6)), 'Credit', 'Support', NULL, NULL, NULL FROM months
  UNION ALL SELECT accrued_at, CAST(250 AS DECIMAL(18,6)), 'Fee', 'MSP Fee', NULL, NULL, NULL FROM months)
'''
month = rules + '''SELECT date_trunc('month', accrued_at) AS month, service, sum(amount) AS amount
FROM alls WHERE charge_type NOT IN ('Credit', 'Refund') GROUP BY 1, 2 ORDER BY 1 DESC, 2'''
day = rules + '''SELECT accrued_at, service, region, account, sum(amount) AS amount
FROM alls WHERE charge_type NOT IN ('Credit', 'Refund') GROUP BY 1, 2, 3, 4 ORDER BY 1 DESC, 2, 3, 4'''
tag = rules + '''SELECT date_trunc('month', accrued_at) AS month, json_extract_string(tags, '$.team') AS team, sum(amount) AS amount
FROM alls WHERE charge_type NOT IN ('Credit', 'Refund') GROUP BY 1, 2 ORDER BY 1 DESC, 2'''
allocation = rules + ''', shown AS (SELECT *, date_trunc('month', accrued_at) AS month,
  CASE WHEN service = 'Amazon Elastic Compute Cloud' THEN 0 WHEN service = 'Amazon Simple Storage Service' THEN 1
    WHEN service IN ('Amazon Relational Database Service', 'Amazon DynamoDB') THEN 2 WHEN service = 'AWS Lambda' THEN 3
    ELSE 4 END AS v
  FROM alls WHERE charge_type NOT IN ('Credit', 'Refund')),
basis AS (SELECT month, json_extract_string(tags, '$.team') AS team, sum(amount) AS part FROM shown
  WHERE v = 0 AND json_extract_string(tags, '$.team') IS NOT NULL GROUP BY 1, 2 HAVING sum(amount) > 0),
wholes AS (SELECT month, sum(part) AS whole FROM basis GROUP BY 1),
named AS (SELECT month, CASE v WHEN 0 THEN 'compute-team' WHEN 1 THEN 'storage-team' ELSE 'data-team' END AS owner, amount
  FROM shown WHERE v IN (0, 1, 2)),
split AS (SELECT s.month, b.team AS owner, s.amount * b.part / w.whole AS amount
  FROM shown s JOIN basis b ON b.month = s.month JOIN wholes w ON w.month = s.month WHERE s.v = 3),
pct AS (SELECT month, p.owner, amount * p.f AS amount
  FROM shown, (VALUES ('web', 0.5), ('data', 0.3), ('ml', 0.2)) p(owner, f) WHERE v = 4)
SELECT month, owner, sum(amount) AS amount FROM (SELECT * FROM named UNION ALL SELECT * FROM split UNION ALL SELECT * FROM pct)
GROUP BY 1, 2 ORDER BY 1 DESC, 2'''
{best_of_3}
m, rows = best_of_3(month)
d, _ = best_of_3(day)
g, _ = best_of_3(tag)
a, _ = best_of_3(allocation)
print(m)
print(d)
print(g)
print(a)
print(sum(r[2] for r in rows))
"#,
        db = db.display(),
        csv = csv.display(),
        best_of_3 = support::DUCKDB_BEST_OF_3,
    );
    let lines = support::python_lines(&script);
    let [.., load, load_all, month, day, tag, allocation, total] = lines.as_slice() else {
        panic!("unexpected DuckDB output: {lines:?}")
    };
    let secs = |s: &str| Duration::from_secs_f64(s.trim().parse::<f64>().unwrap_or_else(|_| panic!("{lines:?}")));
    let _ = std::fs::remove_file(&db);
    Duck {
        load: secs(load),
        load_all: secs(load_all),
        month: secs(month),
        day: secs(day),
        tag: secs(tag),
        allocation: secs(allocation),
        month_total: total.to_string(),
    }
}
