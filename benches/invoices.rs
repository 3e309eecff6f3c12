//! Issue 10's figures: invoicing a managed account whose month holds a third of 2,000,000 cost rows (the
//! costs bench's data: 90 days, 5 rules), on a freshly started server:
//! - `POST /v2/invoices` for September (the costs query uncached, the lines, the numbered insert);
//! - `POST …/regenerate` (the costs result now cached);
//! - the PDF and the CSV fetched through their signed links (rendered per request);
//! - numbering throughput: 200 invoices created by 16 concurrent clients for 200 managed accounts.
//!
//! Also checks the money: the invoice subtotal equals the exact sum of what `GET /v2/costs` shows the
//! managed account for the month.
//!
//! Run: `cargo bench --bench invoices`. Inputs are generated into `bench-data/` (shared with the others).

mod support;

use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::{bench_dir, generate_focus_csv};

const COSTD: &str = env!("CARGO_BIN_EXE_costd");
const ROWS: u64 = 2_000_000;
const ACCOUNTS: usize = 200;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let csv = bench_dir().join(format!("focus_{ROWS}.csv"));
    generate_focus_csv(&csv, ROWS, 90).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::Builder::new().prefix("invoices-").tempdir_in(bench_dir()).unwrap();
    let (_, integration, token) = support::msp_with_rows(COSTD, dir.path(), &csv);

    let (mut child, url) = support::serve(COSTD, dir.path());
    let client = reqwest::Client::new();
    let ok = |(status, body): (u16, Value)| {
        assert!(status < 300, "{status} {body}");
        body
    };
    let (managed, rules, profile) = rt.block_on(async {
        let mut rules = Vec::new();
        for body in support::bench_rules() {
            rules.push(ok(post(&client, &url, &token, "/v2/billing_rules".into(), body).await)["token"].clone());
        }
        let profile = ok(post(
            &client,
            &url,
            &token,
            "/v2/billing_profiles".into(),
            json!({"nickname": "EU", "billing_information_attributes": {"company_name": "MSP GmbH"},
                "invoice_adjustment_attributes": {"adjustment_items": [
                    {"name": "VAT", "calculation_type": "percentage", "amount": 19},
                    {"name": "Discount", "adjustment_type": "discount", "calculation_type": "percentage", "amount": 2}]}}),
        )
        .await)["token"]
            .clone();
        let managed = ok(post(
            &client,
            &url,
            &token,
            "/v2/managed_accounts".into(),
            json!({"name": "Customer", "contact_email": "ops@customer.example", "access_credential_tokens": [integration],
                "billing_rule_tokens": rules, "msp_billing_profile_token": profile}),
        )
        .await)["token"]
            .as_str()
            .unwrap()
            .to_string();
        (managed, rules, profile)
    });
    let _ = rules;
    // A fresh server: the invoice's costs query finds nothing cached.
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, url) = support::serve(COSTD, dir.path());
    let call = |path: String, body: Value| post(&client, &url, &token, path, body);
    let timed = |f: std::pin::Pin<Box<dyn std::future::Future<Output = (u16, Value)> + '_>>| {
        rt.block_on(async move {
            let started = Instant::now();
            let (status, body) = f.await;
            assert!(status < 300, "{status} {body}");
            (started.elapsed(), body)
        })
    };
    rt.block_on(async { client.get(format!("{url}/v2/ping")).bearer_auth(&token).send().await.unwrap() });
    let body =
        json!({"account_token": managed, "billing_period_start": "2024-09-01", "billing_period_end": "2024-09-30"});
    let (create, invoice) = timed(Box::pin(call("/v2/invoices".into(), body)));
    let invoice_token = invoice["token"].as_str().unwrap().to_string();
    let (regenerate, _) = timed(Box::pin(call(format!("/v2/invoices/{invoice_token}/regenerate"), json!({}))));

    let fetch = |file_type: &str| {
        let (_, link) =
            timed(Box::pin(call(format!("/v2/invoices/{invoice_token}/download"), json!({"file_type": file_type}))));
        let link = link["download_url"].as_str().unwrap().to_string();
        rt.block_on(async {
            let started = Instant::now();
            let bytes = client.get(&link).send().await.unwrap().bytes().await.unwrap();
            (started.elapsed(), bytes.to_vec())
        })
    };
    let (pdf_time, pdf) = fetch("pdf");
    let (csv_time, csv_bytes) = fetch("csv");
    let csv_text = String::from_utf8(csv_bytes).unwrap();
    let subtotal = csv_text.lines().find(|l| l.contains(",subtotal,")).unwrap().split(',').nth(6).unwrap().to_string();

    // The money: the subtotal against what GET /v2/costs shows the managed account.
    let managed_token = String::from_utf8(
        Command::new(COSTD)
            .args(["token", "create", "--account", &managed, "--scope", "read", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let costs: Value = rt.block_on(async {
        let q = "/v2/costs?start_date=2024-09-01&end_date=2024-09-30&groupings=service&date_bin=month&limit=5000\
                 &settings[include_credits]=true&settings[include_refunds]=true";
        client.get(format!("{url}{q}")).bearer_auth(&managed_token).send().await.unwrap().json().await.unwrap()
    });
    let sum: Decimal = costs["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Decimal::from_str(r["amount"].as_str().unwrap()).unwrap())
        .sum();
    let money = if sum == Decimal::from_str(&subtotal).unwrap() { "EQUAL" } else { "DIFFERENT" };

    // Numbering throughput: managed accounts without data, 16 clients at a time.
    let accounts: Vec<String> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..ACCOUNTS {
            let (_, m) = call(
                "/v2/managed_accounts".into(),
                json!({"name": format!("C{i}"), "contact_email": "c@c.example", "msp_billing_profile_token": profile}),
            )
            .await;
            out.push(m["token"].as_str().unwrap().to_string());
        }
        out
    });
    let started = Instant::now();
    let numbers: Vec<String> = rt.block_on(async {
        use futures::StreamExt;
        futures::stream::iter(accounts.iter().map(|a| {
            let body =
                json!({"account_token": a, "billing_period_start": "2024-09-01", "billing_period_end": "2024-09-30"});
            call("/v2/invoices".into(), body)
        }))
        .buffer_unordered(16)
        .map(|(status, body)| {
            assert_eq!(status, 201, "{body}");
            body["invoice_number"].as_str().unwrap().to_string()
        })
        .collect()
        .await
    });
    let creates = started.elapsed();
    let mut sorted = numbers.clone();
    sorted.sort();
    sorted.dedup();
    let gapless =
        sorted.len() == ACCOUNTS && sorted.last().map(String::as_str) == Some(&format!("INV-{:06}", ACCOUNTS + 1)[..]);
    let _ = child.kill();
    let _ = child.wait();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "invoice of a month (about {} of the rows; {} lines): create {:.0} ms (fresh server), regenerate {:.0} ms, total {} {}",
        ROWS / 3,
        csv_text.lines().filter(|l| l.contains(",cost,")).count(),
        ms(create),
        ms(regenerate),
        invoice["total"].as_str().unwrap(),
        invoice["currency"].as_str().unwrap()
    );
    println!(
        "PDF {} bytes in {:.1} ms, CSV {} bytes in {:.1} ms",
        pdf.len(),
        ms(pdf_time),
        csv_text.len(),
        ms(csv_time)
    );
    println!("subtotal {subtotal} vs exact sum of GET /v2/costs {sum}: {money}");
    println!(
        "{ACCOUNTS} concurrent creates (16 at a time): {:.0} invoices/s; numbers unique and gapless: {gapless}",
        ACCOUNTS as f64 / creates.as_secs_f64()
    );
}

/// POSTs `body` as JSON with the API token: the status and the JSON answer.
async fn post(client: &reqwest::Client, url: &str, token: &str, path: String, body: Value) -> (u16, Value) {
    let res = client.post(format!("{url}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
