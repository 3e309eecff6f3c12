//! Soak: a costd server on 127.0.0.1 under writers (uploads that replace earlier ones, deletes), readers
//! (costs queries for the parent and for a managed account with rules, upload lists) and the janitor, with
//! the server killed (SIGKILL) and restarted halfway through. Bounded in time. Prints every answer by status
//! class, and whether the final costs total equals the exact sum of the uploads the API lists.
//!
//! A third run, `s3`, is a deployment: two `costd serve` nodes on one PostgreSQL schema and one bucket of a
//! real S3 server (moto, from PyPI's `moto[server]`), the writers and readers spread over both, one node
//! SIGKILLed and restarted halfway, a short grace period and a short intent lease. It also reports the
//! objects in the bucket: *missing* (a listed upload without its file: an acknowledged upload lost) and
//! *stray* (an upload file no live upload names, once the grace period and the lease have passed).
//!
//! Run: `cargo bench --bench soak` (`sqlite`, `postgres` and `s3`; PostgreSQL at 127.0.0.1:5432, database
//! `test`, and moto are skipped when missing). `COSTD_SOAK_SECS` sets the run's length (default 60 s, the
//! kill at half of it), `COSTD_SOAK_BACKENDS=sqlite` one store. The exit code is non-zero on any 5xx, a
//! wrong total, or a missing or stray file.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::SplitMix;

const COSTD: &str = env!("CARGO_BIN_EXE_costd");
const WRITERS: usize = 6;
const READERS: usize = 4;
/// Filenames each writer cycles through (a re-upload of a name replaces the earlier upload).
const FILES: u64 = 6;
const ROWS_PER_FILE: u64 = 300;
const RANGE: &str = "start_date=2024-07-01&end_date=2024-09-30";

/// Answers by status class, plus requests that got no answer (the server was down).
#[derive(Default)]
struct Tally {
    classes: Mutex<BTreeMap<String, usize>>,
    /// Non-2xx answers by request and status (e.g. `delete upload 404`: a delete that lost a race).
    others: Mutex<BTreeMap<String, usize>>,
    five_hundreds: Mutex<Vec<String>>,
}

impl Tally {
    fn count(&self, what: &str, status: Option<u16>, body: &str) {
        let class = match status {
            Some(s) => format!("{}xx", s / 100),
            None => "no answer".to_string(),
        };
        *self.classes.lock().unwrap().entry(class).or_default() += 1;
        if let Some(s) = status.filter(|s| !(200..300).contains(s)) {
            *self.others.lock().unwrap().entry(format!("{what} {s}")).or_default() += 1;
        }
        if status.is_some_and(|s| s >= 500) {
            let mut seen = self.five_hundreds.lock().unwrap();
            if seen.len() < 10 {
                seen.push(format!("{what}: {} {body}", status.unwrap()));
            }
        }
    }
}

struct Server {
    child: Child,
    url: String,
}

/// A bucket of a moto S3 server that the nodes share.
struct Bucket {
    endpoint: String,
    name: String,
    _moto: Child,
}

impl Bucket {
    /// Starts moto on a free port with a new bucket; `None` when moto is not installed.
    async fn start() -> Option<Bucket> {
        let port = free_port();
        let moto = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut bucket = Bucket { endpoint, name: "costd-soak".into(), _moto: moto };
        for _ in 0..300 {
            if reqwest::get(&bucket.endpoint).await.is_ok() {
                let made = reqwest::Client::new().put(format!("{}/{}", bucket.endpoint, bucket.name)).send().await;
                assert!(made.unwrap().status().is_success());
                return Some(bucket);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = bucket._moto.kill();
        None
    }

    /// Flags that put a node's upload files in the bucket.
    fn flags(&self) -> Vec<String> {
        [
            "--storage",
            &format!("s3://{}/soak", self.name),
            "--s3-endpoint",
            &self.endpoint,
            "--s3-access-key-id",
            "testing",
            "--s3-secret-access-key",
            "testing",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Every key under `soak/uploads/`, as file names.
    async fn upload_files(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{}?list-type=2&prefix=soak/uploads/", self.endpoint, self.name);
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={}", urlencode(t)));
            }
            let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
            names.extend(xml.split("<Key>").skip(1).map(|rest| {
                let key = rest.split("</Key>").next().unwrap();
                key.rsplit('/').next().unwrap().to_string()
            }));
            token = xml.split("<NextContinuationToken>").nth(1).map(|r| r.split('<').next().unwrap().to_string());
            if token.is_none() {
                return names;
            }
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn start(data_dir: &std::path::Path, port: u16, database_url: Option<&str>, extra: &[String]) -> Server {
    let mut cmd = Command::new(COSTD);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        // A short grace period, so the janitor removes retired files while readers run.
        .args(["--query-timeout-secs", "10", "--file-grace-secs", "12"])
        // A killed node's files in flight are cleared this long after its last renewal.
        .args(["--intent-lease-secs", "4"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    match database_url {
        Some(url) => cmd.args(["--database-url", url]),
        None => cmd.env_remove("COSTD_DATABASE_URL"),
    };
    let mut child = cmd.spawn().expect("costd serve starts");
    let url = support::listening_url(&mut child);
    Server { child, url }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn file_of(rng: &mut SplitMix) -> (String, Decimal) {
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId\n");
    let mut total = Decimal::ZERO;
    for _ in 0..ROWS_PER_FILE {
        let credit = rng.below(10) == 0;
        let cents = rng.below(1_000_000) as i64;
        let amount = Decimal::new(if credit { -cents } else { cents }, 4);
        total += amount;
        let day = 1 + rng.below(28);
        let month = 7 + rng.below(3);
        let service = ["EC2", "S3", "RDS", "Lambda"][rng.below(4) as usize];
        let region = ["us-east-1", "eu-west-1"][rng.below(2) as usize];
        let kind = if credit { "Credit" } else { "Usage" };
        csv.push_str(&format!("{kind},2024-{month:02}-{day:02},{amount},{service},{region}\n"));
    }
    (csv, total)
}

async fn soak(backend: &str, database_url: Option<String>, secs: u64, bucket: Option<&Bucket>) -> bool {
    // One node on its data dir, or (with a bucket) two nodes sharing the store and the bucket.
    let nodes = if bucket.is_some() { 2 } else { 1 };
    let extra = bucket.map(Bucket::flags).unwrap_or_default();
    let dirs: Vec<tempfile::TempDir> = (0..nodes).map(|_| tempfile::tempdir().unwrap()).collect();
    let data = &dirs[0];
    let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
    // The first node bootstraps the store; the others start on it.
    let servers: Vec<Arc<Mutex<Server>>> = (0..nodes)
        .map(|i| Arc::new(Mutex::new(start(dirs[i].path(), ports[i], database_url.as_deref(), &extra))))
        .collect();
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.lock().unwrap().url.clone()).collect());
    let url = urls[0].clone();
    let token = std::fs::read_to_string(data.path().join("bootstrap-token")).unwrap().trim().to_string();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&token).json(&body).send();

    // Two integrations, and a managed account over both with an exclusion, an adjustment and a fee.
    let mut integrations = Vec::new();
    for name in ["A", "B"] {
        let res: Value =
            post("/v2/integrations/custom_provider", json!({"name": name})).await.unwrap().json().await.unwrap();
        integrations.push(res["token"].as_str().unwrap().to_string());
    }
    let mut rules = Vec::new();
    for body in [
        json!({"type": "exclusion", "title": "no credits", "charge_type": "credit"}),
        json!({"type": "adjustment", "title": "90%", "percentage": 90}),
        json!({"type": "charge", "title": "fee", "service": "MSP", "category": "Fee", "sub_category": "M", "amount": 5, "start_date": "2024-07-01"}),
    ] {
        let res: Value = post("/v2/billing_rules", body).await.unwrap().json().await.unwrap();
        rules.push(res["token"].clone());
    }
    let managed: Value = post(
        "/v2/managed_accounts",
        json!({"name": "M", "contact_email": "m@x.io", "access_credential_tokens": integrations, "billing_rule_tokens": rules}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut mint = Command::new(COSTD);
    mint.args(["token", "create", "--scope", "read", "--account", managed["token"].as_str().unwrap(), "--data-dir"])
        .arg(data.path());
    if let Some(u) = &database_url {
        mint.args(["--database-url", u]);
    }
    let managed_token = String::from_utf8(mint.output().unwrap().stdout).unwrap().trim().to_string();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let uploads_done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (client, urls, token, integrations, tally, stop, done) = (
            client.clone(),
            urls.clone(),
            token.clone(),
            integrations.clone(),
            tally.clone(),
            stop.clone(),
            uploads_done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = SplitMix::new(0x50A4 + w as u64);
            let mut turn = w;
            while !stop.load(Ordering::Relaxed) {
                // Each request through the next node.
                let url = &urls[turn % urls.len()];
                turn += 1;
                let integration = &integrations[rng.below(2) as usize];
                let name = format!("w{w}-f{}.csv", rng.below(FILES));
                if rng.below(5) == 0 {
                    // Delete one of the integration's uploads, if there is one.
                    let list = client
                        .get(format!("{url}/v2/integrations/{integration}/costs"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    let Ok(list) = list else {
                        tally.count("list", None, "");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let status = list.status().as_u16();
                    let body: Value = list.json().await.unwrap_or(Value::Null);
                    tally.count("list uploads", Some(status), &body.to_string());
                    let victim =
                        body["user_costs_uploads"].as_array().and_then(|u| u.first()).and_then(|u| u["token"].as_str());
                    if let Some(victim) = victim {
                        let res = client
                            .delete(format!("{url}/v2/integrations/{integration}/costs/{victim}"))
                            .bearer_auth(&token)
                            .send()
                            .await;
                        match res {
                            Ok(r) => tally.count("delete upload", Some(r.status().as_u16()), ""),
                            Err(_) => tally.count("delete upload", None, ""),
                        }
                    }
                } else {
                    let (csv, _) = file_of(&mut rng);
                    let form = reqwest::multipart::Form::new()
                        .part("csv", reqwest::multipart::Part::bytes(csv.into_bytes()).file_name(name));
                    let res = client
                        .post(format!("{url}/v2/integrations/{integration}/costs.csv"))
                        .bearer_auth(&token)
                        .multipart(form)
                        .send()
                        .await;
                    match res {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            tally.count("upload", Some(status), &r.text().await.unwrap_or_default());
                            if status == 201 {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            tally.count("upload", None, "");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        }));
    }
    for r in 0..READERS {
        let (client, urls, token, managed_token, tally, stop) =
            (client.clone(), urls.clone(), token.clone(), managed_token.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut q = r;
            while !stop.load(Ordering::Relaxed) {
                let url = &urls[q % urls.len()];
                let groupings = ["service", "region", "charge_type", "service,region", "provider"][q % 5];
                let bin = ["day", "month", "week"][q % 3];
                let who = if q % 2 == 0 { &token } else { &managed_token };
                q += 1;
                let res = client
                    .get(format!(
                        "{url}/v2/costs?{RANGE}&groupings={groupings}&date_bin={bin}&settings[include_credits]=true"
                    ))
                    .bearer_auth(who)
                    .send()
                    .await;
                match res {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        tally.count("costs", Some(status), &r.text().await.unwrap_or_default());
                    }
                    Err(_) => {
                        tally.count("costs", None, "");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    // Halfway: SIGKILL of the first node, then a restart on the same port and data dir.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs / 2)).await;
    let server = &servers[0];
    {
        let mut s = server.lock().unwrap();
        s.child.kill().unwrap(); // SIGKILL
        let _ = s.child.wait();
    }
    let killed_at = started.elapsed();
    let restarted = start(data.path(), ports[0], database_url.as_deref(), &extra);
    let down_for = started.elapsed() - killed_at;
    *server.lock().unwrap() = restarted;
    tokio::time::sleep(Duration::from_secs(secs - secs / 2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Quiet now: the total must be the exact sum of the uploads the API lists.
    let get_json = |path: String| {
        let (client, url, token) = (&client, &url, &token);
        async move {
            client.get(format!("{url}{path}")).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let mut expected = Decimal::ZERO;
    let mut listed = 0;
    let mut live = std::collections::BTreeSet::new();
    for integration in &integrations {
        let list = get_json(format!("/v2/integrations/{integration}/costs?limit=1000")).await;
        for u in list["user_costs_uploads"].as_array().unwrap() {
            expected += u["amount"].as_str().unwrap().parse::<Decimal>().unwrap();
            listed += 1;
            live.insert(u["token"].as_str().unwrap().to_string());
        }
    }
    // Every listed upload's file is there right now (before any grace period).
    let missing_now = match bucket {
        Some(b) => {
            let names = b.upload_files().await;
            live.iter().filter(|t| !names.contains(&format!("{t}.parquet"))).count()
        }
        None => live.iter().filter(|t| !data.path().join("uploads").join(format!("{t}.parquet")).exists()).count(),
    };
    let costs = get_json(format!(
        "/v2/costs?{RANGE}&groupings=service&date_bin=month&limit=5000&settings[include_credits]=true\
         &settings[include_refunds]=true"
    ))
    .await;
    let exact: Decimal = costs["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    let total = costs["total_cost"]["amount"].as_str().unwrap().to_string();
    let rounded = expected.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let total_ok = exact == expected && total.parse::<Decimal>().unwrap() == rounded;

    // Files: after a janitor pass past the grace period (and the killed node's lease), exactly the live
    // uploads' files remain.
    tokio::time::sleep(Duration::from_secs(if bucket.is_some() { 20 } else { 15 })).await;
    let names: Vec<String> = match bucket {
        Some(b) => b.upload_files().await,
        None => std::fs::read_dir(data.path().join("uploads"))
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default(),
    };
    let token_of = |name: &str| name.split('.').next().unwrap_or_default().to_string();
    let files = names.iter().filter(|n| n.ends_with(".parquet") && !n.contains(".rollup")).count();
    let stray = names.iter().filter(|n| !live.contains(&token_of(n))).count();
    let missing = live.iter().filter(|t| !names.contains(&format!("{t}.parquet"))).count();
    let spools: usize = dirs
        .iter()
        .skip(usize::from(bucket.is_none()))
        .map(|d| std::fs::read_dir(d.path().join("uploads")).map(|d| d.count()).unwrap_or(0))
        .sum();

    let classes = tally.classes.lock().unwrap().clone();
    let five = classes.get("5xx").copied().unwrap_or(0);
    println!(
        "soak on {backend}: {secs} s, {nodes} node(s), {WRITERS} writers, {READERS} readers, SIGKILL of node 1 at \
         {:.1} s, back in {:.1} s",
        killed_at.as_secs_f64(),
        down_for.as_secs_f64()
    );
    for (class, n) in &classes {
        println!("  {class:>9}: {n}");
    }
    for (what, n) in tally.others.lock().unwrap().iter() {
        println!("      {what}: {n}");
    }
    println!("  uploads committed: {}", uploads_done.load(Ordering::Relaxed));
    println!(
        "  final total: {total} (exact {exact}) vs sum of {listed} listed uploads {expected}: {}",
        if total_ok { "EQUAL" } else { "DIFFERENT" }
    );
    let place = if bucket.is_some() { "objects in the bucket" } else { "files on disk" };
    println!("  missing files of listed uploads, at once: {missing_now}");
    println!(
        "  {place} after the grace period: {files} for {listed} live uploads: {missing} missing, {stray} stray{}",
        if missing == 0 && stray == 0 && files == listed { "" } else { " (MISMATCH)" }
    );
    if bucket.is_some() {
        println!("  local temporary files left on the nodes: {spools}");
    }
    for name in names.iter().filter(|n| !live.contains(&token_of(n))).take(5) {
        println!("  stray: {name}");
    }
    for e in tally.five_hundreds.lock().unwrap().iter() {
        println!("  5xx: {e}");
    }
    for s in &servers {
        let _ = s.lock().unwrap().child.kill();
    }
    five == 0 && total_ok && missing_now == 0 && missing == 0 && stray == 0 && files == listed && spools == 0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("COSTD_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60).max(4);
    let backends = std::env::var("COSTD_SOAK_BACKENDS").unwrap_or_else(|_| "sqlite postgres s3".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ok = true;
    for backend in backends.split_whitespace() {
        let database_url = match backend {
            "postgres" | "s3" => {
                let base = std::env::var("COSTD_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let schema = format!("costd_soak_{}_{backend}", std::process::id());
                let created = rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.ok()
                });
                if created.is_none() {
                    println!("soak on postgres: SKIPPED, {base} is unreachable");
                    continue;
                }
                Some(format!("{base}?options=-c%20search_path%3D{schema}"))
            }
            _ => None,
        };
        if backend == "s3" {
            let Some(bucket) = rt.block_on(Bucket::start()) else {
                println!("soak on s3: SKIPPED, moto_server is not installed (pip install 'moto[server]')");
                continue;
            };
            ok &= rt.block_on(soak("two nodes on postgres and an S3 bucket", database_url, secs, Some(&bucket)));
            continue;
        }
        ok &= rt.block_on(soak(backend, database_url, secs, None));
    }
    if !ok {
        std::process::exit(1);
    }
}
