//! Issue 12's figures: how fast the web console's costs page paints in Debian's Chromium over a
//! 2,000,000-row account (the costs bench's generator, 90 days from 2024-07-01, one integration).
//! - a page load of a month by day × service, cold (the server has not answered that query yet) and
//!   warm (its result cache holds it);
//! - changing a control to a query not yet asked (date bin → month, group by region), and back to one the
//!   page has already fetched (cached).
//!
//! Times are the page's own: from the navigation's start (or the control's change) to the frame after the
//! chart is drawn, read from the chart's `data-paint-ms` by `tests/browser/paint.mjs` (playwright-core).
//!
//! Run: `cargo bench --bench console` (ROWS=… for another size; needs node, npm and `apt-get install
//! chromium`). Inputs are generated into `bench-data/` (shared with the other benches).

mod support;

use std::process::Command;

use serde_json::Value;
use support::{bench_dir, generate_focus_csv, msp_with_rows};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(2_000_000);
    let csv = bench_dir().join(format!("focus_{rows}.csv"));
    generate_focus_csv(&csv, rows, 90).unwrap();
    let dir = tempfile::Builder::new().prefix("console-").tempdir_in(bench_dir()).unwrap();
    let (_account, _integration, token) = msp_with_rows(COSTD, dir.path(), &csv);

    // playwright-core from the browser tests' lockfile.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kit = root.join("target/console-browser");
    std::fs::create_dir_all(&kit).unwrap();
    for file in ["package.json", "package-lock.json", "paint.mjs"] {
        std::fs::copy(root.join("tests/browser").join(file), kit.join(file)).unwrap();
    }
    let npm =
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&kit).status();
    assert!(npm.is_ok_and(|s| s.success()), "npm ci failed");

    let (mut server, url) = support::serve(COSTD, dir.path());
    let run = |start: &str, end: &str| -> Value {
        let out = Command::new("node")
            .arg(kit.join("paint.mjs"))
            .env("COSTD_URL", &url)
            .env("COSTD_TOKEN", &token)
            .env("START", start)
            .env("END", end)
            .output()
            .expect("node runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "paint.mjs failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let month = run("2024-07-01", "2024-07-31");
    let quarter = run("2024-07-01", "2024-09-30");
    let _ = server.kill();

    println!("\nconsole costs page, {rows} rows (release costd, headless Chromium, this machine)");
    println!("| what | July, day × service | Jul–Sep, day × service |");
    println!("|---|---|---|");
    for (key, label) in [
        ("page_load_cold_ms", "page load, query new to the server (ms)"),
        ("page_load_warm_ms", "page load, server cache warm (ms)"),
        ("change_bin_month_uncached_ms", "date bin → month, new query (ms)"),
        ("change_bin_day_cached_ms", "date bin → day, cached (ms)"),
        ("change_group_region_uncached_ms", "group by region, new query (ms)"),
        ("change_group_service_cached_ms", "group by service, cached (ms)"),
        ("rows", "rows drawn (day × service)"),
        ("total", "total"),
    ] {
        println!("| {label} | {} | {} |", month[key], quarter[key]);
    }
    let goal = |v: &Value, limit: f64| v.as_f64().is_some_and(|ms| ms < limit);
    let met = goal(&month["page_load_cold_ms"], 1000.0)
        && goal(&quarter["page_load_cold_ms"], 1000.0)
        && goal(&month["change_bin_day_cached_ms"], 300.0)
        && goal(&quarter["change_group_service_cached_ms"], 300.0);
    println!("goals (paint < 1 s, cached change < 300 ms): {}", if met { "met" } else { "MISSED" });
}
