//! The web console: its session (an API token traded for an HttpOnly cookie, CSRF-checked writes, a
//! managed-account view) over HTTP, and a person's path through every page in Debian's Chromium
//! (`tests/browser/console.mjs`, driven by playwright-core installed from npm at a pinned version).

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    the_console_trades_a_token_for_an_httponly_session_cookie,
    console_writes_need_the_csrf_header_and_views_are_read_only,
    a_real_browser_signs_in_uploads_sets_rules_and_sees_a_managed_accounts_costs,
);

/// Signs in; answers the cookie pair (`costd_session=…`) and the session body.
pub(crate) async fn sign_in(app: &TestApp, token: &str) -> (String, Value) {
    let res = app
        .client
        .post(format!("{}/console/session", app.base_url))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let set = res.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    (set.split(';').next().unwrap().to_string(), body)
}

/// A request with the session cookie (and the CSRF header when `csrf` is given).
async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base_url)).header(COOKIE, cookie);
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `PUT /console/session/view` by cookie: look at `account` (`null` for the account itself).
async fn set_view(app: &TestApp, cookie: &str, csrf: Option<&str>, account: Value) -> (u16, Value) {
    with_cookie(app, Method::PUT, "/console/session/view", cookie, csrf, Some(json!({ "account_token": account })))
        .await
}

async fn the_console_trades_a_token_for_an_httponly_session_cookie(app: TestApp) {
    // The page itself needs no token, and forbids framing and foreign scripts.
    let page = app.client.get(format!("{}/", app.base_url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(page.text().await.unwrap().contains("/console/assets/app.js"));
    let js = app.client.get(format!("{}/console/assets/pages.js", app.base_url)).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    let missing = app.client.get(format!("{}/console/assets/nope.js", app.base_url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // A bad token is a 401 in Vantage's error shape, and sets no cookie.
    let res = app
        .client
        .post(format!("{}/console/session", app.base_url))
        .json(&json!({"token": "cstd_nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("invalid or has been revoked"), "{body}");
    let res =
        app.client.post(format!("{}/console/session", app.base_url)).json(&json!({"token": " "})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // A form post (what another site could make a browser send) is not a sign-in.
    let res = app
        .client
        .post(format!("{}/console/session", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // A good token: the cookie is HttpOnly, SameSite=Strict, and holds no part of the token.
    let res = app
        .client
        .post(format!("{}/console/session", app.base_url))
        .json(&json!({"token": app.token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let set = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set.starts_with("costd_session=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(&app.token) && !set.contains(&app.token[5..]), "{set}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["account_token"], app.account.token.as_str());
    assert_eq!(body["scope"], json!(["read", "write"]));
    let cookie = set.split(';').next().unwrap().to_string();

    // The cookie opens the API for reads, and GET /console/session shows the session.
    let (status, me) = with_cookie(&app, Method::GET, "/v2/me", &cookie, None, None).await;
    assert_eq!(status, 200, "{me}");
    let (status, who) = with_cookie(&app, Method::GET, "/console/session", &cookie, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(who["csrf_token"], body["csrf_token"]);
    // A made-up cookie opens nothing.
    let (status, err) = with_cookie(&app, Method::GET, "/v2/me", "costd_session=cstd_made_up", None, None).await;
    assert_eq!(status, 401);
    assert!(err["errors"][0].as_str().unwrap().contains("sign in again"), "{err}");

    // Revoking the token ends its sessions.
    let (second, _) = sign_in(&app, &app.token).await;
    let out =
        app.client.delete(format!("{}/console/session", app.base_url)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(out.status(), 403, "signing out is a write: it needs the CSRF header");
    let out = app
        .client
        .delete(format!("{}/console/session", app.base_url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", body["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    // Past the auth cache's second, the signed-out cookie is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = with_cookie(&app, Method::GET, "/v2/me", &cookie, None, None).await;
    assert_eq!(status, 401, "a signed-out session opens nothing");
    let (status, _) = with_cookie(&app, Method::GET, "/v2/me", &second, None, None).await;
    assert_eq!(status, 200, "another session of the same token lives on");
    assert!(app.store.revoke_api_token(&costd::model::token::secret_hash(&app.token)).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = with_cookie(&app, Method::GET, "/v2/me", &second, None, None).await;
    assert_eq!(status, 401, "revoking the token ends its sessions");
}

async fn console_writes_need_the_csrf_header_and_views_are_read_only(app: TestApp) {
    let integration = app.create_integration("Acme").await["token"].as_str().unwrap().to_string();
    let csv = b"ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-09-01,100.10,Compute\n";
    let res = app.upload(&integration, "sept.csv", csv.to_vec()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let rule = app.create_rule(json!({"type": "adjustment", "title": "Half", "percentage": 50})).await;
    let managed = app
        .create_managed_account(json!({"name": "Acme Corp", "contact_email": "a@acme.example",
            "access_credential_tokens": [integration], "billing_rule_tokens": [rule["token"]]}))
        .await;
    let managed = managed["token"].as_str().unwrap().to_string();
    let (cookie, session) = sign_in(&app, &app.token).await;
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    let rule_body = json!({"type": "adjustment", "title": "x", "percentage": 10});

    // Writes by cookie: refused without the CSRF header or with another session's, allowed with it.
    let (status, err) =
        with_cookie(&app, Method::POST, "/v2/billing_rules", &cookie, None, Some(rule_body.clone())).await;
    assert_eq!(status, 403, "{err}");
    assert!(err["errors"][0].as_str().unwrap().contains("X-CSRF-Token"), "{err}");
    let (_, other) = sign_in(&app, &app.token).await;
    let (status, _) = with_cookie(
        &app,
        Method::POST,
        "/v2/billing_rules",
        &cookie,
        other["csrf_token"].as_str(),
        Some(rule_body.clone()),
    )
    .await;
    assert_eq!(status, 403, "another session's CSRF value does not fit this cookie");
    let (status, created) =
        with_cookie(&app, Method::POST, "/v2/billing_rules", &cookie, Some(&csrf), Some(rule_body.clone())).await;
    assert_eq!(status, 201, "{created}");
    // A bearer token needs no CSRF header, cookie or not.
    let res = app
        .client
        .post(format!("{}/v2/billing_rules", app.base_url))
        .bearer_auth(&app.token)
        .header(COOKIE, &cookie)
        .json(&rule_body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // The MSP's view: raw costs. The managed account's view: its rules applied, read-only.
    let costs = "/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service";
    let (_, raw) = with_cookie(&app, Method::GET, costs, &cookie, None, None).await;
    assert_eq!(raw["total_cost"]["amount"], "100.1");
    let (status, _) = set_view(&app, &cookie, None, json!(managed)).await;
    assert_eq!(status, 403, "changing the view is a write");
    let (status, viewed) = set_view(&app, &cookie, Some(&csrf), json!(managed)).await;
    assert_eq!(status, 200, "{viewed}");
    assert_eq!(viewed["view_account_token"], managed.as_str());
    assert_eq!(viewed["view_account_name"], "Acme Corp");
    let (_, seen) = with_cookie(&app, Method::GET, costs, &cookie, None, None).await;
    assert_eq!(seen["total_cost"]["amount"], "50.05", "{seen}");
    let (status, err) =
        with_cookie(&app, Method::POST, "/v2/billing_rules", &cookie, Some(&csrf), Some(rule_body.clone())).await;
    assert_eq!(status, 403, "a managed-account view is read-only: {err}");
    // Back to the account itself.
    let (status, _) = set_view(&app, &cookie, Some(&csrf), Value::Null).await;
    assert_eq!(status, 200);
    let (_, raw) = with_cookie(&app, Method::GET, costs, &cookie, None, None).await;
    assert_eq!(raw["total_cost"]["amount"], "100.1");

    // Another tenant's managed account (or any other account) cannot be viewed.
    let (_, other_token) = app.other_account().await;
    let res = app
        .client
        .post(format!("{}/v2/managed_accounts", app.base_url))
        .bearer_auth(&other_token)
        .json(&json!({"name": "Theirs", "contact_email": "t@example.com"}))
        .send()
        .await
        .unwrap();
    let theirs: Value = res.json().await.unwrap();
    for target in [theirs["token"].as_str().unwrap(), app.account.token.as_str(), "acct_nonsense", "not a token"] {
        let (status, err) = set_view(&app, &cookie, Some(&csrf), json!(target)).await;
        assert_eq!(status, 404, "{target}: {err}");
    }
    let (_, raw) = with_cookie(&app, Method::GET, costs, &cookie, None, None).await;
    assert_eq!(raw["total_cost"]["amount"], "100.1", "a refused view changes nothing");
}

/// Installs playwright-core from the lockfile once per test process; `None` (skipped outside CI) when
/// node, npm or Chromium is missing.
fn browser_kit() -> Option<std::path::PathBuf> {
    static INSTALLED: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let have =
        |tool: &str| std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = ["node", "npm", chromium.as_str()].into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        assert!(std::env::var("CI").is_err(), "CI must run the browser tests, but {missing:?} are missing");
        eprintln!("SKIPPED the console's browser test: {missing:?} not installed (apt-get install chromium)");
        return None;
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = installed.as_ref() {
        return Some(dir.clone());
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/console-browser");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["package.json", "package-lock.json", "console.mjs", "units.test.mjs"] {
        std::fs::copy(root.join("tests/browser").join(file), dir.join(file)).unwrap();
    }
    copy_assets(&dir);
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "npm ci for the browser tests failed: {}", String::from_utf8_lossy(&out.stderr));
    *installed = Some(dir.clone());
    Some(dir)
}

/// The console's embedded scripts, beside the node tests that import them (as ES modules).
fn copy_assets(dir: &std::path::Path) {
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/console/assets");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            std::fs::copy(&path, assets.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(assets.join("package.json"), r#"{"type": "module"}"#).unwrap();
}

/// The console's pure functions (sums of exact decimal texts, date bins, previous periods, presets) under
/// node's test runner: `tests/browser/units.test.mjs`.
#[test]
fn the_consoles_date_and_decimal_helpers_pass_their_node_tests() {
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node {
        assert!(std::env::var("CI").is_err(), "CI must run the console's node tests, but node is missing");
        eprintln!("SKIPPED the console's node tests: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("tests/browser/units.test.mjs"), dir.path().join("units.test.mjs")).unwrap();
    std::fs::write(dir.path().join("package.json"), r#"{"type": "module"}"#).unwrap();
    copy_assets(dir.path());
    let out =
        std::process::Command::new("node").args(["--test", "units.test.mjs"]).current_dir(dir.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("# pass 10"), "the console's node tests failed:\n{text}");
}

async fn a_real_browser_signs_in_uploads_sets_rules_and_sees_a_managed_accounts_costs(app: TestApp) {
    let Some(dir) = tokio::task::spawn_blocking(browser_kit).await.unwrap() else { return };
    // A bucket integration's endpoint must be allowed; nothing listens on this one, so its sync fails.
    let dead = "http://127.0.0.1:9";
    let context: std::sync::Arc<std::sync::Mutex<Option<costd::service::alerts::AlertContext>>> = Default::default();
    let slot = context.clone();
    let app = TestApp::spawn_with(app.backend, |s| {
        s.allowed_endpoints = costd::model::bucket_export::AllowedEndpoints::parse(&[dead], false).unwrap();
        *slot.lock().unwrap() = Some(s.alert_context());
    })
    .await
    .unwrap();
    // The alerts' passes, as the server's worker runs them (every second here), so the scenario's upload
    // finds its anomaly.
    let ctx = context.lock().unwrap().clone().unwrap();
    let passes = tokio::spawn(async move {
        let mut state = costd::service::alerts::PassState::default();
        loop {
            let _ = costd::service::alerts::run_pass(&ctx, &mut state).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    // Invoices need a billing profile; the console links it, the API makes it.
    let profile = app
        .post(
            "/v2/billing_profiles",
            json!({"nickname": "EU", "billing_information_attributes": {"company_name": "Cloud MSP GmbH",
                "address_line_1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country_code": "DE",
                "billing_email": ["billing@msp.example"]}}),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let read_only = app.mint(&app.account, "read").await;
    let backend = format!("{:?}", app.backend).to_lowercase();
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots").join(backend);
    let out = tokio::process::Command::new("node")
        .arg(dir.join("console.mjs"))
        .env("COSTD_URL", &app.base_url)
        .env("COSTD_TOKEN", &app.token)
        .env("COSTD_READ_TOKEN", &read_only)
        .env("COSTD_DEAD_ENDPOINT", dead)
        .env("COSTD_SCREENSHOTS", &shots)
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    passes.abort();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser scenario failed:\n{text}");
    assert!(text.contains("checks passed"), "{text}");
    eprintln!("{text}");
}
