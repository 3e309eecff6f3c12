//! The `costd` binary as a user runs it: `serve` on a fresh data dir, then `token create` / `revoke`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");

/// A `costd serve` child on a free port, with what it printed at start-up.
struct Served {
    child: Child,
    url: String,
    bootstrap_token: Option<String>,
    account: Option<String>,
}

async fn serve(data_dir: &std::path::Path) -> Served {
    let mut child = Command::new(COSTD)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
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

async fn costd(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
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
    served.child.kill().await.unwrap();
}
