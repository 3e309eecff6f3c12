//! The `costd` binary as a user runs it: `serve` on a fresh data dir, then `token create` / `revoke`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

/// A `costd serve` child on a free port, with what it printed at start-up.
pub(crate) struct Served {
    pub child: Child,
    pub url: String,
    pub bootstrap_token: Option<String>,
    pub account: Option<String>,
}

async fn serve(data_dir: &std::path::Path) -> Served {
    serve_with(data_dir, &[]).await
}

pub(crate) async fn serve_with(data_dir: &std::path::Path, flags: &[&str]) -> Served {
    let mut child = Command::new(COSTD)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .env_remove("COSTD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("costd starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut bootstrap_token, mut account) = (None, None);
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.to_string();
            }
            if line.starts_with("cstd_") {
                bootstrap_token = Some(line.clone());
            }
            if let Some(rest) = line.strip_prefix("created account ") {
                account = rest.split_whitespace().next().map(str::to_string);
            }
        }
        panic!("costd serve exited before listening");
    })
    .await
    .expect("costd serve prints where it listens within 60 s");
    Served { child, url, bootstrap_token, account }
}

pub(crate) async fn costd(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(COSTD)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("COSTD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("costd runs")
}

async fn status_of(client: &reqwest::Client, method: reqwest::Method, url: String, token: &str) -> u16 {
    let body = r#"{"type":"exclusion","title":"x","charge_type":"Tax"}"#;
    client.request(method, url).bearer_auth(token).body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn serve_on_a_fresh_data_dir_bootstraps_an_account_and_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let token = served.bootstrap_token.clone().expect("the bootstrap token is printed");
    assert!(served.account.as_deref().unwrap_or("").starts_with("acct_"));

    let file = dir.path().join("bootstrap-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let client = reqwest::Client::new();
    assert_eq!(status_of(&client, reqwest::Method::GET, format!("{}/v2/ping", served.url), &token).await, 200);

    // A second start on the same store creates nothing new and prints no token.
    served.child.kill().await.unwrap();
    let mut again = serve(dir.path()).await;
    assert!(again.bootstrap_token.is_none());
    assert_eq!(status_of(&client, reqwest::Method::GET, format!("{}/v2/ping", again.url), &token).await, 200);
    again.child.kill().await.unwrap();
}

#[tokio::test]
async fn tokens_created_and_revoked_from_the_cli_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let account = served.account.clone().unwrap();
    let client = reqwest::Client::new();
    let rules = format!("{}/v2/billing_rules", served.url);

    let out = costd(&["token", "create", "--account", &account, "--scope", "read"], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read_only = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(status_of(&client, reqwest::Method::GET, rules.clone(), &read_only).await, 200);
    assert_eq!(status_of(&client, reqwest::Method::POST, rules.clone(), &read_only).await, 403);

    let out = costd(&["token", "revoke", &read_only], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The running server's auth cache trusts a checked token for up to 1 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_of(&client, reqwest::Method::GET, rules.clone(), &read_only).await, 401);

    let out = costd(&["token", "revoke", &read_only], dir.path()).await;
    assert!(!out.status.success(), "revoking twice is an error");
    let out = costd(&["token", "create", "--account", "acct_0000000000000000"], dir.path()).await;
    assert!(!out.status.success(), "no such account");
    let out = costd(&["token", "create", "--account", &account, "--scope", "admin"], dir.path()).await;
    assert!(!out.status.success(), "unknown scope");

    let out = costd(&["account", "create", "--name", "Second"], dir.path()).await;
    let second = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(second.starts_with("acct_"), "{second}");
    // The token made from the command line is in the account's audit log, by its id, never its secret.
    let log = audit_log(&client, &served.url, served.bootstrap_token.as_ref().unwrap(), "?source=cli").await;
    let entries = log["audit_logs"].as_array().unwrap();
    let events: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["object_type"].as_str().unwrap(), e["event"].as_str().unwrap())).collect();
    assert_eq!(events, [("ApiToken", "record_destroyed"), ("ApiToken", "record_created")], "{log}");
    assert!(entries[1]["object_token"].as_str().unwrap().starts_with("tkn_"), "{log}");
    assert_eq!(entries[0]["object_token"], entries[1]["object_token"], "the revoke names the token it ended");
    assert!(!log.to_string().contains(&read_only), "the secret is nowhere in the log");
    served.child.kill().await.unwrap();
}

#[tokio::test]
async fn users_added_from_the_cli_are_listed_by_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let account = served.account.clone().unwrap();
    let token = served.bootstrap_token.clone().unwrap();
    let add = |email: &'static str, extra: &'static [&'static str]| {
        let (account, dir) = (account.clone(), dir.path().to_path_buf());
        async move {
            let mut args = vec!["user", "add", "--account", account.as_str(), "--email", email];
            args.extend_from_slice(extra);
            costd(&args, &dir).await
        }
    };
    let out = add("Ana@Example.com", &["--name", "Ana", "--role", "viewer"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(user.starts_with("usr_"), "{user}");
    let again = add("ana@example.com", &[]).await;
    assert!(!again.status.success(), "one address once per account");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already a user"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bad = add("not-an-address", &["--role", "boss"]).await;
    let said = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(!bad.status.success() && said.contains("email must be") && said.contains("role must be"), "{said}");

    let client = reqwest::Client::new();
    let listed: serde_json::Value =
        client.get(format!("{}/v2/users", served.url)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["users"].as_array().unwrap().len(), 1, "{listed}");
    let u = &listed["users"][0];
    assert_eq!(
        (u["token"].as_str(), u["email"].as_str(), u["name"].as_str(), u["role"].as_str()),
        (Some(user.as_str()), Some("ana@example.com"), Some("Ana"), Some("Viewer"))
    );
    assert!(listed["links"]["self"].is_string(), "{listed}");
    let shown = client.get(format!("{}/v2/users/{user}", served.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let missing = client.get(format!("{}/v2/users/usr_0000000000000000", served.url)).bearer_auth(&token).send().await;
    assert_eq!(missing.unwrap().status(), 404);
    let out = costd(&["user", "list", "--account", &account], dir.path()).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("ana@example.com\tViewer\tAna"), "{out:?}");
    // A token Ana owns is a Viewer's: it reads, and every write is refused naming her role.
    let out = costd(&["token", "create", "--account", &account, "--user", &user], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let anas = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let rules = format!("{}/v2/billing_rules", served.url);
    assert_eq!(status_of(&client, reqwest::Method::GET, rules.clone(), &anas).await, 200);
    assert_eq!(status_of(&client, reqwest::Method::POST, rules, &anas).await, 403);
    let out = costd(&["token", "create", "--account", &account, "--user", "usr_0000000000000000"], dir.path()).await;
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no user"), "{out:?}");
    // The one user added is in the audit log, by the operator; the refused adds are not.
    let log = audit_log(&client, &served.url, &token, "?object_type=user").await;
    let log = log["audit_logs"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!((log[0]["object_token"].as_str(), log[0]["source"].as_str()), (Some(user.as_str()), Some("cli")));
    assert_eq!(log[0]["object_title"], "Ana");
    served.child.kill().await.unwrap();
}

/// `GET /v2/audit_logs<query>` of the account whose token is `token`.
async fn audit_log(client: &reqwest::Client, url: &str, token: &str, query: &str) -> serde_json::Value {
    let res = client.get(format!("{url}/v2/audit_logs{query}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn create_integration(client: &reqwest::Client, url: &str, token: &str) -> String {
    let res = client
        .post(format!("{url}/v2/integrations/custom_provider"))
        .bearer_auth(token)
        .body(r#"{"name":"CLI"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn uploads_of(client: &reqwest::Client, url: &str, token: &str, integration: &str) -> Vec<serde_json::Value> {
    let res = client.get(format!("{url}/v2/integrations/{integration}/costs")).bearer_auth(token).send().await.unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["user_costs_uploads"].as_array().unwrap().clone()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("uploads"))
        .map(|e| e.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn import_loads_plain_gzipped_and_piped_files_and_rejects_bad_ones() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let token = served.bootstrap_token.clone().unwrap();
    let client = reqwest::Client::new();
    let integration = create_integration(&client, &served.url, &token).await;

    let csv = crate::uploads::csv(10);
    let plain = dir.path().join("september.csv");
    std::fs::write(&plain, &csv).unwrap();
    let out = costd(&["import", "--integration", &integration, plain.to_str().unwrap()], dir.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("imported 10 rows"), "{stdout}");
    assert!(stdout.contains("12.5 USD, 2024-09-01 to 2024-09-10"), "{stdout}");

    let gz_path = dir.path().join("october.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&gz_path).unwrap(), flate2::Compression::fast());
    gz.write_all(crate::uploads::csv(4).as_bytes()).unwrap();
    gz.finish().unwrap();
    let out = costd(&["import", "--integration", &integration, gz_path.to_str().unwrap()], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut piped = Command::new(COSTD)
        .args(["import", "--integration", &integration, "-", "--filename", "piped.csv", "--data-dir"])
        .arg(dir.path())
        .env_remove("COSTD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = piped.stdin.take().unwrap();
        stdin.write_all(crate::uploads::csv(2).as_bytes()).await.unwrap();
    }
    assert!(piped.wait_with_output().await.unwrap().status.success());

    let uploads = uploads_of(&client, &served.url, &token, &integration).await;
    let names: Vec<&str> = uploads.iter().map(|u| u["filename"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["september.csv", "october.csv.gz", "piped.csv"]);
    assert_eq!(uploads[0]["amount"], "12.5");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{}\nUsage,2024-09-01,abc,EC2,x\n", crate::uploads::HEADER)).unwrap();
    let out = costd(&["import", "--integration", &integration, bad.to_str().unwrap()], dir.path()).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Row 1: BilledCost \"abc\" is not a number"));
    assert_eq!(uploads_of(&client, &served.url, &token, &integration).await.len(), 3, "nothing was imported");
    assert_eq!(files_in(dir.path()).len(), 3, "{:?}", files_in(dir.path()));

    let out =
        costd(&["import", "--integration", "accss_crdntl_0000000000000000", plain.to_str().unwrap()], dir.path()).await;
    assert!(!out.status.success());
    // The operator's imports are in the audit log (three that landed; the refused one is not).
    let log = audit_log(&client, &served.url, &token, "?source=cli").await;
    let log = log["audit_logs"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(log.iter().all(|e| e["user"] == "operator" && e["object_token"] == integration.as_str()), "{log:#?}");
    assert_eq!(log[2]["changed_values"]["imported_rows"], serde_json::json!([null, 10]));
    served.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_server_killed_mid_upload_leaves_no_trace_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let token = served.bootstrap_token.clone().unwrap();
    let client = reqwest::Client::new();
    let integration = create_integration(&client, &served.url, &token).await;

    // An upload that trickles in for far longer than the test waits.
    let header = futures::stream::once(async { Ok::<_, std::io::Error>(format!("{}\n", crate::uploads::HEADER)) });
    let rows = futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let chunk: String = (0..500).map(|i| format!("Usage,2024-09-01,1.{i},EC2,us-east-1\n")).collect();
        Some((Ok(chunk), n + 1))
    });
    let body = reqwest::Body::wrap_stream(futures::StreamExt::chain(header, rows));
    let form = reqwest::multipart::Form::new().part("csv", reqwest::multipart::Part::stream(body).file_name("big.csv"));
    let upload = tokio::spawn(
        client
            .post(format!("{}/v2/integrations/{integration}/costs.csv", served.url))
            .bearer_auth(&token)
            .multipart(form)
            .send(),
    );

    // Wait until the ingest has written part of its temporary file, then kill -9.
    let tmp_seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let tmp = files_in(dir.path()).into_iter().find(|f| f.ends_with(".tmp"));
            if let Some(tmp) = tmp {
                return tmp;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the upload started writing");
    tokio::time::sleep(Duration::from_millis(500)).await;
    served.child.kill().await.unwrap(); // SIGKILL
    let _ = upload.await;
    assert!(files_in(dir.path()).contains(&tmp_seen), "the killed server left its partial file behind");

    // A short grace period, so the janitor may take the orphan once it is 2 s old (in production the grace
    // period covers queries of other processes sharing the data).
    let mut again = serve_with(dir.path(), &["--query-timeout-secs", "1", "--file-grace-secs", "2"]).await;
    assert!(uploads_of(&client, &again.url, &token, &integration).await.is_empty(), "no partial upload is visible");
    let cleaned = tokio::time::timeout(Duration::from_secs(20), async {
        while !files_in(dir.path()).is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(cleaned.is_ok(), "the janitor removed the orphan: {:?}", files_in(dir.path()));
    again.child.kill().await.unwrap();
}

#[tokio::test]
async fn query_prints_the_costs_as_a_table_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let token = served.bootstrap_token.clone().unwrap();
    let account = served.account.clone().unwrap();
    let client = reqwest::Client::new();
    let integration = create_integration(&client, &served.url, &token).await;
    let file = dir.path().join("costs.csv");
    std::fs::write(&file, crate::uploads::csv(10)).unwrap(); // 10 rows × 1.25 in September, services 0–2
    let out = costd(&["import", "--integration", &integration, file.to_str().unwrap()], dir.path()).await;
    assert!(out.status.success());
    served.child.kill().await.unwrap();

    let args = [
        "query",
        "--account",
        &account,
        "--groupings",
        "service",
        "--date-bin",
        "month",
        "--start-date",
        "2024-09-01",
        "--end-date",
        "2024-09-30",
    ];
    let run = |format: &'static str| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--format", format]);
        let a: Vec<String> = a.into_iter().map(String::from).collect();
        let dir = dir.path().to_path_buf();
        async move {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            let out = costd(&refs, &dir).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let csv = run("csv").await;
    // Services 0, 1, 2 take rows 0,3,6,9 / 1,4,7 / 2,5,8: 4, 3 and 3 rows of 1.25.
    assert_eq!(
        csv,
        "accrued_at,service,amount,currency\n2024-09-01,Service 0,5.0,USD\n2024-09-01,Service 1,3.75,USD\n2024-09-01,Service 2,3.75,USD\n"
    );
    let table = run("table").await;
    assert!(table.lines().last().unwrap() == "total: 12.5 USD", "{table}");
    let json: serde_json::Value = serde_json::from_str(&run("json").await).unwrap();
    assert_eq!(json["total_cost"]["amount"], "12.5");
    assert_eq!(json["costs"].as_array().unwrap().len(), 3);

    let out = costd(&["query", "--account", &account, "--date-bin", "fortnight"], dir.path()).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("date_bin must be"));
}

async fn post_json(client: &reqwest::Client, url: String, token: &str, body: serde_json::Value) -> serde_json::Value {
    let res = client.post(url).bearer_auth(token).body(body.to_string()).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

#[tokio::test]
async fn invoices_are_created_listed_and_downloaded_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let (url, token) = (served.url.clone(), served.bootstrap_token.clone().unwrap());
    let msp = served.account.clone().unwrap();
    let client = reqwest::Client::new();
    let integration = create_integration(&client, &url, &token).await;
    let csv = dir.path().join("sept.csv");
    std::fs::write(&csv, "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-09-02,12.345,EC2\n")
        .unwrap();
    let out = costd(&["import", "--integration", &integration, csv.to_str().unwrap(), "--quiet"], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let profile =
        post_json(&client, format!("{url}/v2/billing_profiles"), &token, serde_json::json!({"nickname": "P"})).await;
    let managed = post_json(
        &client,
        format!("{url}/v2/managed_accounts"),
        &token,
        serde_json::json!({"name": "Acme", "contact_email": "a@acme.example", "access_credential_tokens": [integration],
            "msp_billing_profile_token": profile["token"]}),
    )
    .await;
    let managed = managed["token"].as_str().unwrap();

    let args = [
        "invoice",
        "create",
        "--account",
        &msp,
        "--managed-account",
        managed,
        "--start",
        "2024-09-01",
        "--end",
        "2024-09-30",
    ];
    let out = costd(&args, dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("INV-000001 invc_") && line.contains("USD 12.35"), "{line}");
    let invoice = line.split_whitespace().nth(1).unwrap().to_string();
    let again = costd(&args, dir.path()).await;
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already covers"));

    let out = costd(&["invoice", "list", "--account", &msp], dir.path()).await;
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("INV-000001\t{invoice}\t{managed}\t2024-09-01..2024-09-30\tdraft")),
        "{listed}"
    );

    let pdf = dir.path().join("out.pdf");
    let out = costd(
        &["invoice", "download", "--account", &msp, "--invoice", &invoice, "--output", pdf.to_str().unwrap()],
        dir.path(),
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let out = costd(
        &["invoice", "download", "--account", &msp, "--invoice", &invoice, "--format", "csv", "--output", "-"],
        dir.path(),
    )
    .await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("INV-000001,cost,CLI,EC2,Usage,,12.35,USD,12.345"), "the integration by name: {text}");
    // The invoice made at the command line is in the MSP's audit log (the refused second one is not).
    let log = audit_log(&client, &url, &token, "?object_type=invoice").await;
    let log = log["audit_logs"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(
        (log[0]["object_token"].as_str(), log[0]["object_title"].as_str()),
        (Some(invoice.as_str()), Some("INV-000001"))
    );
    // The invoice's total, at the currency's precision.
    assert_eq!(log[0]["changed_values"]["total"], serde_json::json!([null, "12.35"]));
    served.child.kill().await.unwrap();
}

#[tokio::test]
async fn the_data_dir_and_the_database_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    // One made by costd, one an operator made world-readable beforehand.
    let made = root.path().join("new").join("costd-data");
    let existing = root.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [made, existing] {
        let mut served = serve(&dir).await;
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for name in ["costd.sqlite3", "costd.sqlite3-wal", "costd.sqlite3-shm", "bootstrap-token"] {
            let file = dir.join(name);
            assert!(file.exists(), "{}", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        served.child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn help_never_prints_the_secrets_the_environment_holds() {
    let out = Command::new(COSTD)
        .args(["serve", "--help"])
        .env("COSTD_DATABASE_URL", "postgres://costd:db-secret-pw@db/costd")
        .env("COSTD_SMTP_URL", "smtps://mailer:smtp-secret-pw@mail:465")
        .env("COSTD_S3_SECRET_ACCESS_KEY", "s3-secret-key")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database-url") && help.contains("--smtp-url"), "{help}");
    for secret in ["db-secret-pw", "smtp-secret-pw", "s3-secret-key"] {
        assert!(!help.contains(secret), "--help shows {secret}: {help}");
    }
}
