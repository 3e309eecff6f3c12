//! Shared by the benchmarks: a deterministic FOCUS 1.0 CSV generator and child-process measurement.

#![allow(dead_code)]

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The FOCUS 1.0 header of the sample in `tests/data/focus` (44 columns, with its extra `Id`).
pub const FOCUS_HEADER: &str = "AvailabilityZone,BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,\
BillingPeriodEnd,BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,ChargePeriodEnd,\
ChargePeriodStart,CommitmentDiscountCategory,CommitmentDiscountId,CommitmentDiscountName,CommitmentDiscountStatus,\
CommitmentDiscountType,ConsumedQuantity,ConsumedUnit,ContractedCost,ContractedUnitPrice,EffectiveCost,\
InvoiceIssuerName,ListCost,ListUnitPrice,PricingCategory,PricingQuantity,PricingUnit,ProviderName,PublisherName,\
RegionId,RegionName,ResourceId,ResourceName,ResourceType,ServiceCategory,Id,ServiceName,SkuId,SkuPriceId,\
SubAccountId,SubAccountName,Tags";

/// SplitMix64: a tiny, fixed PRNG, so the same seed gives the same file on every machine and version.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERVICES: [(&str, &str, &str); 8] = [
    ("Amazon Elastic Compute Cloud", "Compute", "Hrs"),
    ("Amazon Simple Storage Service", "Storage", "GB-Mo"),
    ("Amazon Relational Database Service", "Databases", "Hrs"),
    ("AWS Lambda", "Compute", "Requests"),
    ("Amazon CloudFront", "Networking", "GB"),
    ("Amazon DynamoDB", "Databases", "ReadRequestUnits"),
    ("AWS Key Management Service", "Security", "Requests"),
    ("Amazon Elastic Kubernetes Service", "Compute", "Hrs"),
];
const REGIONS: [(&str, &str); 6] = [
    ("us-east-1", "US East (N. Virginia)"),
    ("us-west-2", "US West (Oregon)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
];

/// Writes `rows` FOCUS rows over `days` days from 2024-07-01 to `path`, unless the file is already there.
/// About 270 bytes a row (most optional FOCUS columns NULL): 2,000,000 rows ≈ 540 MB. ChargeCategory is mostly Usage, with Tax, Credit and Fee.
pub fn generate_focus_csv(path: &Path, rows: u64, days: u32) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let started = Instant::now();
    let tmp = path.with_extension("csv.partial");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    writeln!(out, "{FOCUS_HEADER}")?;
    let mut rng = SplitMix::new(0x00C0_57D0);
    let start = chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
    for _ in 0..rows {
        let day = start + chrono::Duration::days((rng.below(u64::from(days))) as i64);
        let hour = rng.below(24);
        let (service, category, unit) = SERVICES[rng.below(SERVICES.len() as u64) as usize];
        let (region, _region_name) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        let charge = match rng.below(100) {
            0..=91 => "Usage",
            92..=95 => "Tax",
            96..=97 => "Credit",
            _ => "Fee",
        };
        let sign = if charge == "Credit" { "-" } else { "" };
        let cost_micro = rng.below(50_000_000_000); // up to 50.0 with 11 decimal places
        let cost = format!("{sign}{}.{:011}", cost_micro / 1_000_000_000, (cost_micro % 1_000_000_000) * 100);
        let qty = rng.below(1_000_000);
        let account = 100_000_000_000 + rng.below(60);
        let resource = rng.below(5_000);
        let team = ["web", "data", "ml", "platform"][rng.below(4) as usize];
        let env = ["prod", "staging", "dev"][rng.below(3) as usize];
        let month_start = day.format("%Y-%m-01 00:00:00");
        writeln!(
            out,
            "{region}a,{cost},987654321098,Example Corp,USD,{month_start},{month_start},{charge},NULL,NULL,Usage-Based,\
             {day} {h1:02}:00:00,{day} {hour:02}:00:00,NULL,NULL,NULL,NULL,NULL,{qty}.{frac:03},{unit},NULL,NULL,{cost},AWS,\
             NULL,NULL,Standard,{qty},{unit},AWS,AWS,{region},NULL,i-{resource:06},NULL,Instance,{category},NULL,{service},\
             NULL,NULL,{account},NULL,\"{{\"\"team\"\": \"\"{team}\"\", \"\"env\"\": \"\"{env}\"\"}}\"",
            h1 = (hour + 1) % 24,
            frac = qty % 1000,
        )?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    eprintln!("generated {} ({rows} rows) in {:.1} s", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Wall time and peak RSS (MiB) of a child process run to completion.
pub struct Measured {
    pub wall: Duration,
    pub peak_rss_mib: f64,
    pub stdout: String,
}

/// Runs `cmd` and measures it with wait4(2), which reports the child's own peak RSS.
#[allow(clippy::zombie_processes)] // wait4 below reaps the child
#[allow(unsafe_code)] // wait4(2) through libc: the only way to read a child's own peak RSS
pub fn measure(cmd: &mut Command) -> Measured {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("the command starts");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child; status and usage are valid out-pointers.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let wall = started.elapsed();
    let exit = std::process::ExitStatus::from_raw(status);
    let stdout = reader.join().unwrap_or_default();
    assert!(exit.success(), "{cmd:?} failed: {exit}\n{stdout}");
    Measured { wall, peak_rss_mib: usage.ru_maxrss as f64 / 1024.0, stdout }
}

/// `bench-data/` at the repository root: generated inputs, kept between runs (git-ignored).
pub fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-data");
    std::fs::create_dir_all(&dir).expect("bench-data is writable");
    dir
}

/// Makes sure `python3 -c 'import duckdb'` works, installing DuckDB from PyPI if needed.
pub fn ensure_duckdb() {
    let ok = Command::new("python3").args(["-c", "import duckdb"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        eprintln!("installing duckdb from PyPI for the comparison");
        let status = Command::new("python3").args(["-m", "pip", "install", "--quiet", "duckdb"]).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "pip install duckdb failed");
    }
}

/// `costd serve` (release) on a free port over `data_dir`; returns the child and its base URL.
pub fn serve(costd: &str, data_dir: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(costd)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("costd serve starts");
    let url = listening_url(&mut child);
    (child, url)
}

/// The base URL a `costd serve` child (its stdout piped) prints once it listens; its stdout is drained
/// afterwards, so the child never blocks on a full pipe.
pub fn listening_url(child: &mut std::process::Child) -> String {
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("piped stdout")));
    let url = loop {
        let line = lines.next().expect("serve prints where it listens").expect("readable stdout");
        if let Some(u) = line.strip_prefix("listening on ") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    url
}

/// An MSP account over a fresh SQLite store in `data_dir`, an integration holding `csv` (imported by the
/// `costd` binary) and a read/write API token: (account token, integration token, API token).
pub fn msp_with_rows(costd: &str, data_dir: &Path, csv: &Path) -> (String, String, String) {
    let (parent, integration) = msp_account(data_dir);
    let status = Command::new(costd)
        .args(["import", "--quiet", "--integration", &integration])
        .arg(csv)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "costd import failed");
    let out = Command::new(costd)
        .args(["token", "create", "--account", &parent, "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (parent, integration, token)
}

/// An MSP account and its integration, straight in the SQLite store of `data_dir`.
pub fn msp_account(data_dir: &Path) -> (String, String) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let settings =
        costd::store::StoreSettings { data_dir: data_dir.to_path_buf(), database_url: None, db_max_connections: 2 };
    rt.block_on(async {
        let store = costd::store::connect(&settings).await.unwrap();
        let parent = store.create_account("MSP", None).await.unwrap();
        let integration = store.create_integration(&parent.token, "AWS", None).await.unwrap().token.to_string();
        store.close().await;
        (parent.token.to_string(), integration)
    })
}

/// The 5 bench rules: exclusion, adjustment, custom UPDATE with a WHERE, credit, charge.
pub fn bench_rules() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!({"type": "exclusion", "title": "no tax", "charge_type": "Tax"}),
        json!({"type": "adjustment", "title": "90%", "percentage": 90}),
        json!({"type": "custom", "title": "us-east markup", "sql_query": "UPDATE costs SET amount = amount * 1.1 WHERE region = 'us-east-1'"}),
        json!({"type": "credit", "title": "credit", "service": "Support", "category": "Credit", "sub_category": "Monthly", "amount": 100, "start_date": "2024-07-01"}),
        json!({"type": "charge", "title": "fee", "service": "MSP Fee", "category": "Fee", "sub_category": "Monthly", "amount": 250, "start_date": "2024-07-01"}),
    ]
}

/// `costd import` of `csv` into `integration`, measured.
pub fn timed_import(costd: &str, data_dir: &Path, integration: &str, csv: &Path) -> Measured {
    measure(
        Command::new(costd)
            .args(["import", "--quiet", "--integration", integration])
            .arg(csv)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn"),
    )
}

/// A Python function timing a DuckDB statement on the connection `con`: the best of 3 runs, with the rows.
pub const DUCKDB_BEST_OF_3: &str = "def best_of_3(sql):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        e = time.perf_counter() - t
        best = e if best is None else min(best, e)
    return best, rows";

/// Runs a Python script (DuckDB's side of a comparison) and answers its non-empty output lines.
pub fn python_lines(script: &str) -> Vec<String> {
    let out = Command::new("python3").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// The bench's managed account through the API of the server at `url`: it sees `integration` with the 5
/// bench rules (exclusion, adjustment, custom UPDATE with a WHERE, credit, charge). Answers its token.
pub async fn managed_account_with_bench_rules(url: &str, parent_token: &str, integration: &str) -> String {
    use serde_json::json;
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{url}{path}")).bearer_auth(parent_token).json(&body).send()
    };
    let mut rules = Vec::new();
    for body in bench_rules() {
        let res: serde_json::Value = post("/v2/billing_rules", body).await.unwrap().json().await.unwrap();
        rules.push(res["token"].as_str().unwrap().to_string());
    }
    let managed: serde_json::Value = post(
        "/v2/managed_accounts",
        json!({"name": "Customer", "contact_email": "ops@customer.com", "access_credential_tokens": [integration], "billing_rule_tokens": rules}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    managed["token"].as_str().unwrap().to_string()
}

/// A new read token of `account`, by `costd token create`.
pub fn read_token(costd: &str, data_dir: &Path, account: &str) -> String {
    let out = Command::new(costd)
        .args(["token", "create", "--account", account, "--scope", "read", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
