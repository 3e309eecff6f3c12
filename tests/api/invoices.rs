//! `/v2/billing_profiles` and `/v2/invoices` over real HTTP: the money against `GET /v2/costs`, numbering
//! under concurrency, signed downloads, the PDF read back by poppler's `pdftotext`, and sending through a
//! real SMTP server (Python's aiosmtpd, installed from PyPI into `target/smtp-venv`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Backend, TestApp};

on_both_stores!(
    billing_profiles_are_created_read_updated_and_deleted_in_vantages_shape,
    an_invoice_bills_the_costs_with_rules_plus_adjustments_rounded_once,
    invoice_numbers_have_no_gaps_or_duplicates_under_concurrent_creates,
    invoicing_refuses_bad_periods_other_tenants_read_only_tokens_and_managed_accounts,
    managed_accounts_carry_their_invoicing_settings,
    an_invoice_in_the_customers_currency_prints_the_rates_it_was_converted_by,
    an_msp_invoices_a_customers_costs_by_a_virtual_tag,
);

const SEPTEMBER: &str = "start_date=2024-09-01&end_date=2024-09-30";

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("{v} is not a string"))).unwrap()
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// An integration with September costs (and costs either side), a managed account seeing it with an
/// adjustment and a charge rule, and a billing profile with VAT, a fee and a discount. Returns
/// (managed account token, profile token).
async fn msp_setup(app: &TestApp, adjustments: Value) -> (String, String) {
    let integration = app.create_integration("AWS").await["token"].as_str().unwrap().to_string();
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId\n\
               Usage,2024-08-31,1000,EC2,us-east-1\n\
               Usage,2024-09-03,100.005,EC2,us-east-1\n\
               Usage,2024-09-10,0.0049,S3,us-east-1\n\
               Tax,2024-09-15,7.5,EC2,us-east-1\n\
               Usage,2024-10-01,1000,EC2,us-east-1\n";
    assert_eq!(app.upload(&integration, "sept.csv", csv.as_bytes().to_vec()).await.status, 201);
    let adjust = app.create_rule(json!({"type": "adjustment", "title": "90%", "percentage": 90})).await;
    let fee = app
        .create_rule(json!({"type": "charge", "title": "Support", "service": "Support", "category": "Fee",
            "sub_category": "Monthly", "amount": "25", "start_date": "2024-09-01", "end_date": "2024-09-30"}))
        .await;
    let profile = app
        .post(
            "/v2/billing_profiles",
            json!({"nickname": "EU", "billing_information_attributes": {"company_name": "Cloud MSP GmbH",
                "address_line_1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country_code": "DE",
                "billing_email": ["billing@msp.example"]},
                "banking_information_attributes": {"bank_name": "Bank", "beneficiary_name": "Cloud MSP GmbH",
                "secure_data": {"iban": "DE89 3704 0044 0532 0130 00", "swift_bic": "COBADEFFXXX"}},
                "invoice_adjustment_attributes": {"adjustment_items": adjustments}}),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let profile = profile.body["token"].as_str().unwrap().to_string();
    let m = app
        .create_managed_account(json!({"name": "Acme", "contact_email": "ops@acme.example",
            "access_credential_tokens": [integration],
            "billing_rule_tokens": [adjust["token"], fee["token"]]}))
        .await;
    let token = m["token"].as_str().unwrap().to_string();
    let res = app
        .put(
            &format!("/v2/managed_accounts/{token}"),
            json!({"msp_billing_profile_token": profile, "payment_terms_days": 30,
            "billing_information_attributes": {"company_name": "Acme Corp", "billing_email": ["ap@acme.example"]}}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    (token, profile)
}

async fn create_invoice(app: &TestApp, account: &str, start: &str, end: &str) -> crate::helpers::Resp {
    app.post(
        "/v2/invoices",
        json!({"account_token": account, "billing_period_start": start, "billing_period_end": end}),
    )
    .await
}

/// The exact (unrounded) costs total the managed account sees for September, every kind of cost included.
async fn exact_costs(app: &TestApp, account: &str) -> (Decimal, Value) {
    let token = app.mint_for(account, "read").await;
    let path = format!(
        "/v2/costs?{SEPTEMBER}&groupings=service&date_bin=month&settings[include_credits]=true&settings[include_refunds]=true"
    );
    let res = app.send(Method::GET, &path, Some(&token), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let sum = res.body["costs"].as_array().unwrap().iter().map(|r| dec(&r["amount"])).sum();
    (sum, res.body["total_cost"]["amount"].clone())
}

async fn billing_profiles_are_created_read_updated_and_deleted_in_vantages_shape(app: TestApp) {
    let res = app
        .post(
            "/v2/billing_profiles",
            json!({"nickname": "US", "billing_information_attributes": {"token": "ignored", "company_name": "MSP Inc",
                "country_code": "us", "billing_email": ["a@msp.example"]},
                "business_information_attributes": {"metadata": {"custom_fields": [{"name": "EIN", "value": "12-3456789"}]}},
                "banking_information_attributes": {"bank_name": "First", "secure_data": {"account_number": "000123456789",
                "routing_number": "110000000"}},
                "invoice_adjustment_attributes": {"adjustment_items": [
                    {"name": "Sales tax", "calculation_type": "percentage", "amount": 8.25},
                    {"name": "Fee", "adjustment_type": "charge", "calculation_type": "fixed", "amount": "10"}]}}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let p = res.body;
    let token = p["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("bllng_prfl_"), "{p}");
    let billing = &p["billing_information_attributes"];
    assert_eq!(billing["company_name"], "MSP Inc");
    assert_eq!(billing["country_code"], "US");
    assert!(billing["token"].as_str().unwrap().starts_with("bllng_inf_"));
    for key in ["address_line_1", "address_line_2", "city", "state", "postal_code"] {
        assert!(billing.get(key).is_some_and(Value::is_null), "{key} is sent as null: {billing}");
    }
    assert_eq!(p["business_information_attributes"]["metadata"]["custom_fields"][0]["value"], "12-3456789");
    assert_eq!(p["banking_information_attributes"]["secure_data"]["account_number"], "********6789", "masked: {p}");
    let items = &p["invoice_adjustment_attributes"]["adjustment_items"];
    assert_eq!(items[0]["amount"], "8.25");
    assert_eq!(items[0]["adjustment_type"], "charge", "the default type");
    assert_eq!(items[1]["amount"], "10.0");
    assert_eq!(p["managed_accounts_count"], "0");

    let list = app.get("/v2/billing_profiles").await;
    assert_eq!(list.body["billing_profiles"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/v2/billing_profiles/{token}")).await.body, p);

    let updated = app.put(&format!("/v2/billing_profiles/{token}"), json!({"nickname": "US 2"})).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["nickname"], "US 2");
    assert_eq!(updated.body["invoice_adjustment_attributes"], p["invoice_adjustment_attributes"], "kept");
    let bad = app
        .put(
            &format!("/v2/billing_profiles/{token}"),
            json!({"invoice_adjustment_attributes": {"adjustment_items": [{"name": "x", "calculation_type": "percent", "amount": 1}]}}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.error_text().contains("calculation_type must be fixed or percentage"), "{}", bad.text);

    // In use: linked to a managed account, it cannot be deleted.
    let m = app.create_managed_account(json!({"name": "A", "contact_email": "a@a.example"})).await;
    let m = m["token"].as_str().unwrap();
    let linked = app.put(&format!("/v2/managed_accounts/{m}"), json!({"msp_billing_profile_token": token})).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    assert_eq!(app.get(&format!("/v2/billing_profiles/{token}")).await.body["managed_accounts_count"], "1");
    let refused = app.delete(&format!("/v2/billing_profiles/{token}")).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let unlinked = app.put(&format!("/v2/managed_accounts/{m}"), json!({"msp_billing_profile_token": ""})).await;
    assert!(unlinked.body.get("msp_billing_profile_token").is_none_or(Value::is_null), "{}", unlinked.text);

    // Another tenant sees nothing; a read-only token cannot write.
    let (_, other) = app.other_account().await;
    let foreign = app.send(Method::GET, &format!("/v2/billing_profiles/{token}"), Some(&other), None).await;
    assert_eq!(foreign.status, 404);
    let read_only = app.mint(&app.account, "read").await;
    let res = app
        .send(Method::POST, "/v2/billing_profiles", Some(&read_only), Some(json!({"nickname": "x"}).to_string()))
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(app.post("/v2/billing_profiles", json!({})).await.errors(), vec!["nickname is required"]);

    assert_eq!(app.delete(&format!("/v2/billing_profiles/{token}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/billing_profiles/{token}")).await.status, 404);
}

async fn an_invoice_bills_the_costs_with_rules_plus_adjustments_rounded_once(app: TestApp) {
    let (account, _) = msp_setup(
        &app,
        json!([{"name": "VAT", "adjustment_type": "charge", "calculation_type": "percentage", "amount": 19},
               {"name": "Setup", "adjustment_type": "charge", "calculation_type": "fixed", "amount": "5"},
               {"name": "Loyalty", "adjustment_type": "discount", "calculation_type": "percentage", "amount": "2"}]),
    )
    .await;
    let res = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await;
    assert_eq!(res.status, 201, "{}", res.text);
    let invoice = res.body;
    assert_eq!(invoice["invoice_number"], "INV-000001");
    assert_eq!(invoice["status"], "draft");
    assert_eq!(invoice["account_name"], "Acme");
    assert_eq!(invoice["msp_account_token"], app.account.token.as_str());
    assert_eq!(invoice["billing_period_end"], "2024-09-30");
    let today = chrono::Utc::now().date_naive();
    assert_eq!(invoice["due_date"], (today + chrono::Duration::days(30)).to_string(), "30 days' terms");

    // (100.005 + 0.0049 + 7.5) × 90 % + 25 = 121.75891, exactly what GET /v2/costs sums for the account.
    let (subtotal, costs_total) = exact_costs(&app, &account).await;
    assert_eq!(subtotal, Decimal::from_str("121.75891").unwrap());
    assert_eq!(dec(&costs_total), round2(subtotal));
    let expected = round2(subtotal * Decimal::from_str("1.17").unwrap() + Decimal::from(5));
    assert_eq!(expected, Decimal::from_str("147.46").unwrap());
    assert_eq!(dec(&invoice["total"]), expected, "{invoice}");
    assert_eq!(invoice["total"], "147.46");

    // The CSV: one line per provider/service/charge type, summing to the subtotal; the adjustments; the total.
    let token = invoice["token"].as_str().unwrap();
    let csv = download(&app, token, "csv").await;
    let text = String::from_utf8(csv).unwrap();
    let rows: Vec<Vec<String>> = text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
    let costs: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "cost").collect();
    assert_eq!(costs.len(), 4, "EC2 usage, EC2 tax, S3 usage, Support fee: {text}");
    // The provider as the customer knows it: the integration's name, not `custom_provider`; a billing rule's
    // charge says so.
    let providers: Vec<(&str, &str)> = costs.iter().map(|r| (r[2].as_str(), r[3].as_str())).collect();
    assert_eq!(providers, [("AWS", "EC2"), ("AWS", "EC2"), ("AWS", "S3"), ("billing_rule", "Support")], "{text}");
    // Each line as printed (cents) and exact; the exact lines sum to the subtotal.
    let exact_sum: Decimal = costs.iter().map(|r| Decimal::from_str(&r[8]).unwrap()).sum();
    assert_eq!(exact_sum, subtotal, "{text}");
    for r in &costs {
        assert_eq!(Decimal::from_str(&r[6]).unwrap(), round2(Decimal::from_str(&r[8]).unwrap()), "{text}");
        assert_eq!(r[6].split_once('.').map(|(_, f)| f.len()), Some(2), "cents: {text}");
    }
    let adjustments: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "adjustment").collect();
    assert_eq!(adjustments.len(), 3, "{text}");
    // The description is quoted (it has commas): the printed and exact amounts are the fields around currency.
    assert_eq!(adjustments[2][adjustments[2].len() - 3], "-2.44", "{text}");
    assert_eq!(adjustments[2][adjustments[2].len() - 1], "-2.4351782", "{text}");
    // What is printed (lines, adjustments and the rounding line when there is one) adds up to the total.
    let printed: Decimal = rows
        .iter()
        .filter(|r| ["cost", "adjustment", "rounding"].contains(&r[1].as_str()))
        .map(|r| Decimal::from_str(&r[r.len() - 3]).unwrap())
        .sum();
    assert_eq!(printed, expected, "{text}");
    assert!(text.trim_end().ends_with("147.46,USD,147.46"), "{text}");

    // The PDF, read back by an independent parser.
    let pdf = download(&app, token, "pdf").await;
    assert!(pdf.starts_with(b"%PDF-"));
    if let Some(text) = pdf_text(&pdf) {
        for needle in [
            "INV-000001",
            "USD 147.46",
            "Cloud MSP GmbH",
            "Acme Corp",
            "2024-09-01 to 2024-09-30",
            "VAT",
            "DE89370400440532013000",
        ] {
            assert!(text.contains(needle), "the PDF shows {needle:?}:\n{text}");
        }
    }

    // With no adjustments the invoice total is the costs total, to the cent.
    let plain = app.post("/v2/billing_profiles", json!({"nickname": "plain"})).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.put(&format!("/v2/managed_accounts/{account}"), json!({"msp_billing_profile_token": plain})).await;
    let res = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await;
    assert_eq!(res.status, 409, "the period is invoiced already: {}", res.text);
    let regenerated = app.post(&format!("/v2/invoices/{token}/regenerate"), json!({})).await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    assert_eq!(regenerated.body["invoice_number"], "INV-000001", "the number stays");
    assert_eq!(dec(&regenerated.body["total"]), dec(&costs_total));
}

/// Fetches an invoice's file through its signed link, without an API token.
async fn download(app: &TestApp, invoice: &str, file_type: &str) -> Vec<u8> {
    let res = app.post(&format!("/v2/invoices/{invoice}/download"), json!({"file_type": file_type})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let url = res.body["download_url"].as_str().unwrap();
    assert!(url.starts_with(&app.base_url), "{url}");
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status(), 200, "{url}");
    got.bytes().await.unwrap().to_vec()
}

/// The PDF's text by poppler's `pdftotext` (`None` outside CI when it is not installed).
fn pdf_text(pdf: &[u8]) -> Option<String> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(pdf).unwrap();
    match std::process::Command::new("pdftotext").args(["-layout"]).arg(file.path()).arg("-").output() {
        Ok(out) => {
            assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(_) if std::env::var("CI").is_err() => {
            eprintln!("SKIPPED the PDF text check: pdftotext (poppler-utils) is not installed");
            None
        }
        Err(e) => panic!("CI must have pdftotext (poppler-utils; .ci/run installs it): {e}"),
    }
}

async fn invoice_numbers_have_no_gaps_or_duplicates_under_concurrent_creates(app: TestApp) {
    let profile = app.post("/v2/billing_profiles", json!({"nickname": "p"})).await.body["token"].clone();
    let mut accounts = Vec::new();
    for i in 0..4 {
        let m = app
            .create_managed_account(
                json!({"name": format!("C{i}"), "contact_email": "c@c.example", "msp_billing_profile_token": profile}),
            )
            .await;
        let m = m["token"].as_str().unwrap().to_string();
        app.put(&format!("/v2/managed_accounts/{m}"), json!({"msp_billing_profile_token": profile})).await;
        accounts.push(m);
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        for month in 1..=4u32 {
            // Each (account, month) twice: one of the pair must be refused as overlapping, using no number.
            for _ in 0..2 {
                let (app, account) = (app.clone(), account.clone());
                let start = format!("2024-{month:02}-01");
                let end = format!("2024-{month:02}-{}", if month == 2 { 29 } else { 30 });
                tasks.push(tokio::spawn(async move {
                    let res = create_invoice(&app, &account, &start, &end).await;
                    (i, res.status, res.body["invoice_number"].as_str().map(str::to_string))
                }));
            }
        }
    }
    let mut numbers = Vec::new();
    for t in tasks {
        let (_, status, number) = t.await.unwrap();
        match status {
            201 => numbers.push(number.unwrap()),
            409 => {}
            other => panic!("a create answered {other}"),
        }
    }
    numbers.sort();
    let expected: Vec<String> = (1..=16).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected, "16 invoices numbered 1..16, once each");
    let list = app.get("/v2/invoices?limit=5").await;
    assert_eq!(list.body["invoices"][0]["invoice_number"], "INV-000016", "newest first");
    assert!(list.body["links"]["next"].is_string());
    let one = app.get(&format!("/v2/invoices?managed_account_token={}", accounts[0])).await;
    assert_eq!(one.body["invoices"].as_array().unwrap().len(), 4, "{}", one.text);
    let next = create_invoice(&app, &accounts[1], "2025-01-01", "2025-01-31").await;
    assert_eq!(next.body["invoice_number"], "INV-000017", "refused creates used no number");
}

async fn invoicing_refuses_bad_periods_other_tenants_read_only_tokens_and_managed_accounts(app: TestApp) {
    let (account, _) = msp_setup(&app, json!([])).await;
    for (start, end, says) in [
        ("2024-09-30", "2024-09-01", "must not be before"),
        ("2024-09-01", "2024/09/30", "must be a date"),
        ("2024-01-01", "2025-06-30", "longer than a year"),
        ("", "2024-09-30", "billing_period_start is required"),
    ] {
        let res = create_invoice(&app, &account, start, end).await;
        assert_eq!(res.status, 400, "{start}..{end}: {}", res.text);
        assert!(res.error_text().contains(says), "{start}..{end}: {}", res.text);
    }
    let res = create_invoice(&app, "acct_0000000000000000", "2024-09-01", "2024-09-30").await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("no managed account acct_0000000000000000"), "{}", res.text);
    let bare = app.create_managed_account(json!({"name": "B", "contact_email": "b@b.example"})).await;
    let res = create_invoice(&app, bare["token"].as_str().unwrap(), "2024-09-01", "2024-09-30").await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("has no billing profile"), "{}", res.text);

    let invoice = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await.body;
    let token = invoice["token"].as_str().unwrap();
    // Another tenant: not found, and its list is empty.
    let (_, other) = app.other_account().await;
    for path in [format!("/v2/invoices/{token}"), format!("/v2/invoices/{token}/cost_report")] {
        assert_eq!(app.send(Method::GET, &path, Some(&other), None).await.status, 404, "{path}");
    }
    let res = app.send(Method::POST, &format!("/v2/invoices/{token}/regenerate"), Some(&other), None).await;
    assert_eq!(res.status, 404);
    let list = app.send(Method::GET, "/v2/invoices", Some(&other), None).await;
    assert_eq!(list.body["invoices"], json!([]));
    // Read-only: may read and download (Vantage gives download the read scope), not create or send.
    let read_only = app.mint(&app.account, "read").await;
    let body =
        json!({"account_token": account, "billing_period_start": "2024-10-01", "billing_period_end": "2024-10-31"});
    let res = app.send(Method::POST, "/v2/invoices", Some(&read_only), Some(body.to_string())).await;
    assert_eq!(res.status, 403);
    let res = app.send(Method::POST, &format!("/v2/invoices/{token}/send"), Some(&read_only), None).await;
    assert_eq!(res.status, 403);
    let res = app
        .send(
            Method::POST,
            &format!("/v2/invoices/{token}/download"),
            Some(&read_only),
            Some(json!({"file_type": "pdf"}).to_string()),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.post(&format!("/v2/invoices/{token}/download"), json!({"file_type": "docx"})).await;
    assert_eq!(res.status, 400);
    // A managed account does not invoice.
    let managed = app.mint_for(&account, "read,write").await;
    assert_eq!(app.send(Method::GET, "/v2/invoices", Some(&managed), None).await.status, 403);
    assert_eq!(app.send(Method::GET, "/v2/billing_profiles", Some(&managed), None).await.status, 403);
    // No SMTP configured: sending is a clear 400 and changes nothing.
    let res = app.post(&format!("/v2/invoices/{token}/send"), json!({})).await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("--smtp-url"), "{}", res.text);
    assert_eq!(app.get(&format!("/v2/invoices/{token}")).await.body["status"], "draft");

    // Links: altered, for another file, or expired, they are refused.
    let url = app.post(&format!("/v2/invoices/{token}/download"), json!({"file_type": "pdf"})).await.body
        ["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let altered = url.replace("invoice.pdf", "invoice.csv");
    assert_eq!(reqwest::get(&altered).await.unwrap().status(), 403);
    let (head, sig) = url.rsplit_once("signature=").unwrap();
    let flipped = format!("{head}signature={}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    assert_eq!(reqwest::get(&flipped).await.unwrap().status(), 403);
    let expires: i64 = url.split("expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    let later = url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3600));
    assert_eq!(reqwest::get(&later).await.unwrap().status(), 403, "a longer life is not the link's");
    let report = app.get(&format!("/v2/invoices/{token}/cost_report")).await;
    let report = reqwest::get(report.body["cost_report_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(report.status(), 200);
    let text = report.text().await.unwrap();
    assert!(text.starts_with("date,provider,service,charge_type,amount,currency\n2024-09-01,"), "{text}");
}

async fn managed_accounts_carry_their_invoicing_settings(app: TestApp) {
    let m = app.create_managed_account(json!({"name": "A", "contact_email": "a@a.example"})).await;
    assert_eq!(m["payment_terms_days"], 10, "Vantage's default: {m}");
    assert_eq!(m["include_managed_account_integrations"], false);
    let token = m["token"].as_str().unwrap();
    let res = app
        .put(
            &format!("/v2/managed_accounts/{token}"),
            json!({"msp_billing_profile_token": "bllng_prfl_0000000000000000"}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.error_text().contains("no billing profile bllng_prfl_0000000000000000"), "{}", res.text);
    let res =
        app.put(&format!("/v2/managed_accounts/{token}"), json!({"include_managed_account_integrations": true})).await;
    assert_eq!(res.status, 400, "never accepted and ignored: {}", res.text);
    let res = app.put(&format!("/v2/managed_accounts/{token}"), json!({"payment_terms_days": -1})).await;
    assert_eq!(res.status, 400);
    let res = app
        .put(
            &format!("/v2/managed_accounts/{token}"),
            json!({"payment_terms_days": 45, "billing_information_attributes": {"company_name": "A GmbH", "city": "Köln"},
                "business_information_attributes": {"metadata": {"custom_fields": [{"name": "PO", "value": "4711"}]}}}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["payment_terms_days"], 45);
    assert_eq!(res.body["billing_information_attributes"]["city"], "Köln");
    assert_eq!(res.body["business_information_attributes"]["metadata"]["custom_fields"][0]["value"], "4711");
    assert_eq!(res.body["name"], "A", "untouched fields stay");
}

/// A real SMTP server: Python's aiosmtpd writing every message into a Maildir.
pub(crate) struct Smtp {
    child: tokio::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
    python: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

/// `target/smtp-venv` with aiosmtpd, made once (pip install from PyPI).
async fn smtp_python() -> PathBuf {
    VENV.get_or_init(|| async {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/smtp-venv");
        let python = venv.join("bin/python");
        let ready = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ready {
            let made =
                std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 runs");
            assert!(made.success(), "python3 -m venv {}", venv.display());
            let pip = std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "aiosmtpd==1.4.6"])
                .status()
                .expect("pip runs");
            assert!(pip.success(), "pip install aiosmtpd");
        }
        python
    })
    .await
    .clone()
}

pub(crate) async fn smtp_server() -> Smtp {
    let python = smtp_python().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let maildir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .kill_on_drop(true)
        .spawn()
        .expect("aiosmtpd starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Smtp { child, port, maildir, python };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("aiosmtpd did not listen on {port}");
}

impl Smtp {
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Each message received: recipients, subject, and its attachments saved as files (name, path).
    pub(crate) fn messages(&self) -> Vec<Value> {
        let script = r#"
import email, json, mailbox, os, sys
out = []
box = mailbox.Maildir(sys.argv[1], create=False)
for key, msg in sorted(box.items()):
    atts = []
    for part in msg.walk():
        name = part.get_filename()
        if name:
            path = os.path.join(sys.argv[2], key + "-" + name)
            open(path, "wb").write(part.get_payload(decode=True))
            atts.append({"name": name, "type": part.get_content_type(), "path": path})
    out.append({"to": msg["To"], "subject": msg["Subject"], "reply_to": msg["Reply-To"], "attachments": atts})
print(json.dumps(out))
"#;
        let out = std::process::Command::new(&self.python)
            .args(["-c", script])
            .arg(self.maildir.path().join("mail"))
            .arg(self.maildir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[tokio::test]
async fn a_sent_invoice_is_emailed_and_frozen_on_sqlite() {
    sending_freezes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_sent_invoice_is_emailed_and_frozen_on_postgres() {
    sending_freezes(Backend::Postgres).await;
}

async fn sending_freezes(backend: Backend) {
    let smtp = smtp_server().await;
    let mailer = costd::mail::Mailer::new(&smtp.url(), "MSP Billing <invoices@msp.example>").unwrap();
    let Some(app) = TestApp::spawn_with(backend, |s| s.mailer = Some(std::sync::Arc::new(mailer))).await else {
        return;
    };
    let (account, profile) =
        msp_setup(&app, json!([{"name": "VAT", "calculation_type": "percentage", "amount": 10}])).await;
    let invoice = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await.body;
    let token = invoice["token"].as_str().unwrap().to_string();
    assert_eq!(invoice["total"], "133.93", "121.75891 × 1.1 = 133.934801");

    // A draft follows the data: another upload, then regenerate.
    let integration = app.get("/v2/integrations").await.body["integrations"][0]["token"].as_str().unwrap().to_string();
    let more = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-09-20,10,EC2\n";
    assert_eq!(app.upload(&integration, "more.csv", more.as_bytes().to_vec()).await.status, 201);
    let regenerated = app.post(&format!("/v2/invoices/{token}/regenerate"), json!({})).await;
    assert_eq!(regenerated.body["total"], "143.83", "(121.75891 + 9) × 1.1: {}", regenerated.text);

    let sent = app.post(&format!("/v2/invoices/{token}/send"), json!({})).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(sent.body["recipients"], json!(["ap@acme.example"]));
    assert_eq!(sent.body["invoice"]["status"], "sent");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["to"], "ap@acme.example");
    assert_eq!(mail[0]["reply_to"], "billing@msp.example");
    assert!(mail[0]["subject"].as_str().unwrap().contains("INV-000001"), "{mail:?}");
    let atts = mail[0]["attachments"].as_array().unwrap();
    assert_eq!(atts[0]["name"], "INV-000001.pdf");
    assert_eq!(atts[0]["type"], "application/pdf");
    assert_eq!(atts[1]["name"], "INV-000001.csv");
    let pdf = std::fs::read(atts[0]["path"].as_str().unwrap()).unwrap();
    if let Some(text) = pdf_text(&pdf) {
        assert!(text.contains("USD 143.83") && text.contains("Sent"), "{text}");
    }

    // Frozen: new costs, a changed rule and profile do not touch it; regenerate is refused.
    assert_eq!(app.upload(&integration, "late.csv", more.replace("10,", "1000,").into_bytes()).await.status, 201);
    let rules = app.get("/v2/billing_rules").await.body["billing_rules"].clone();
    let adjust = rules.as_array().unwrap().iter().find(|r| r["type"] == "Adjustment").unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.put(&format!("/v2/billing_rules/{adjust}"), json!({"percentage": 50})).await.status, 200);
    app.put(
        &format!("/v2/billing_profiles/{profile}"),
        json!({"invoice_adjustment_attributes": {"adjustment_items": []}}),
    )
    .await;
    let refused = app.post(&format!("/v2/invoices/{token}/regenerate"), json!({})).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(app.get(&format!("/v2/invoices/{token}")).await.body["total"], "143.83");
    let csv = String::from_utf8(download(&app, &token, "csv").await).unwrap();
    assert!(csv.trim_end().ends_with("143.83,USD,143.83"), "{csv}");

    let approved = app.post(&format!("/v2/invoices/{token}/send_and_approve"), json!({})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["invoice"]["status"], "approved");
    assert_eq!(smtp.messages().len(), 2);
    let resent = app.post(&format!("/v2/invoices/{token}/send"), json!({})).await;
    assert_eq!(resent.body["invoice"]["status"], "approved", "a re-send keeps it approved");

    // The SMTP server gone: 502, and the draft stays a draft.
    let draft = create_invoice(&app, &account, "2024-10-01", "2024-10-31").await.body;
    drop(smtp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failed = app.post(&format!("/v2/invoices/{}/send", draft["token"].as_str().unwrap()), json!({})).await;
    assert_eq!(failed.status, 502, "{}", failed.text);
    let after = app.get(&format!("/v2/invoices/{}", draft["token"].as_str().unwrap())).await;
    assert_eq!(after.body["status"], "draft", "nothing recorded as sent");
}

#[tokio::test]
async fn a_download_link_stops_working_when_it_expires() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.download_ttl = Duration::from_secs(1)).await.unwrap();
    let (account, _) = msp_setup(&app, json!([])).await;
    let invoice = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await.body;
    let res = app
        .post(&format!("/v2/invoices/{}/download", invoice["token"].as_str().unwrap()), json!({"file_type": "pdf"}))
        .await;
    let url = res.body["download_url"].as_str().unwrap().to_string();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = reqwest::get(&url).await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn revoked_download_links_stop_working_and_new_ones_work() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (account, _) = msp_setup(&app, json!([])).await;
    let invoice = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await.body;
    let path = format!("/v2/invoices/{}/download", invoice["token"].as_str().unwrap());
    let link = || async {
        app.post(&path, json!({"file_type": "csv"})).await.body["download_url"].as_str().unwrap().to_string()
    };
    let old = link().await;
    assert_eq!(reqwest::get(&old).await.unwrap().status(), 200);
    // `costd links revoke` against the same store, as an operator runs it beside the server.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_costd"))
        .args(["links", "revoke", "--data-dir"])
        .arg(app.data_dir())
        .env_remove("COSTD_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    let refused = reqwest::get(&old).await.unwrap();
    assert_eq!(refused.status(), 403, "a revoked link works no more, without a restart");
    let new = link().await;
    assert_ne!(new, old);
    assert_eq!(reqwest::get(&new).await.unwrap().status(), 200);
}

async fn an_invoice_in_the_customers_currency_prints_the_rates_it_was_converted_by(app: TestApp) {
    let (account, _) = msp_setup(&app, json!([])).await;
    // The MSP's rates: 0.5 all year, 0.8 from mid-September; the customer's workspace shows euros.
    let form = reqwest::multipart::Form::new().part(
        "csv",
        reqwest::multipart::Part::bytes(b"USD,EUR,0.5,2024-01-01\nUSD,EUR,0.8,2024-09-15\n".to_vec())
            .file_name("r.csv"),
    );
    assert_eq!(app.post_form("/v2/exchange_rates/csv", &app.token, form).await.status, 201);
    let writer = app.mint_for(&account, "read,write").await;
    let workspace = app.send(Method::GET, "/v2/workspaces", Some(&writer), None).await.body["workspaces"][0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    for (date, rates) in [("daily_rate", vec!["0.5", "0.8"]), ("end_of_billing_period_rate", vec!["0.8"])] {
        let body = json!({"currency": "EUR", "enable_currency_conversion": true, "exchange_rate_date": date});
        let res =
            app.send(Method::PUT, &format!("/v2/workspaces/{workspace}"), Some(&writer), Some(body.to_string())).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let res = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await;
        let invoice = match res.status {
            201 => res.body,
            // The second pass regenerates the first's draft under the new setting.
            409 => {
                let listed = app.get("/v2/invoices").await.body["invoices"][0]["token"].as_str().unwrap().to_string();
                app.post(&format!("/v2/invoices/{listed}/regenerate"), json!({})).await.body
            }
            _ => panic!("{}", res.text),
        };
        // The invoice is the customer's costs in euros, to the cent.
        let (exact, _) = exact_costs(&app, &account).await;
        assert_eq!(dec(&invoice["total"]), round2(exact), "{invoice}");
        let token = invoice["token"].as_str().unwrap();
        let csv = String::from_utf8(download(&app, token, "csv").await).unwrap();
        let printed: Vec<&str> =
            csv.lines().filter(|l| l.contains(",exchange_rate,")).map(|l| l.rsplit(',').next().unwrap()).collect();
        assert_eq!(printed, rates, "{date}: {csv}");
        assert!(csv.contains(",EUR,"), "{csv}");
        let pdf = download(&app, token, "pdf").await;
        if let Some(text) = pdf_text(&pdf) {
            assert!(text.contains("1 USD = 0.8 EUR, in effect from 2024-09-15"), "{date}: {text}");
            assert!(text.contains("EUR"), "{text}");
            let daily = text.contains("1 USD = 0.5 EUR, in effect from 2024-01-01");
            assert_eq!(daily, date == "daily_rate", "{date}: {text}");
        }
    }
}

async fn an_msp_invoices_a_customers_costs_by_a_virtual_tag(app: TestApp) {
    let (account, _) = msp_setup(&app, json!([])).await;
    // The MSP's virtual tag: EC2 is the platform team's, S3 is shared half and half by web and data.
    let res = app
        .post(
            "/v2/virtual_tag_configs",
            json!({"key": "team", "values": [
                {"filter": "costs.service = 'EC2'", "name": "platform"},
                {"filter": "costs.service = 'S3'", "percentages": [{"value": "web", "pct": 50}, {"value": "data", "pct": 50}]}]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = app.put(&format!("/v2/managed_accounts/{account}"), json!({"invoice_tag_key": "team"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["invoice_tag_key"], "team");
    let res = create_invoice(&app, &account, "2024-09-01", "2024-09-30").await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (exact, _) = exact_costs(&app, &account).await;
    assert_eq!(dec(&res.body["total"]), round2(exact), "{}", res.text);
    let token = res.body["token"].as_str().unwrap().to_string();
    let csv = String::from_utf8(download(&app, &token, "csv").await).unwrap();
    assert!(csv.starts_with("invoice_number,line_type,tag:team,service,"), "{csv}");
    // Each team's lines add up to what GET /v2/costs shows the customer for the team, to the last place.
    let mut by_team: std::collections::BTreeMap<String, Decimal> = Default::default();
    for row in csv.lines().filter(|l| l.contains(",cost,")) {
        let f: Vec<&str> = row.split(',').collect();
        *by_team.entry(f[2].to_string()).or_default() += Decimal::from_str(f[8]).unwrap();
    }
    let reader = app.mint_for(&account, "read").await;
    let path = format!(
        "/v2/costs?{SEPTEMBER}&groupings=tag:team&date_bin=month&settings[include_credits]=true&settings[include_refunds]=true"
    );
    let res = app.send(Method::GET, &path, Some(&reader), None).await;
    let mut expected: std::collections::BTreeMap<String, Decimal> = Default::default();
    for c in res.body["costs"].as_array().unwrap() {
        *expected.entry(c["tag:team"].as_str().unwrap_or("").to_string()).or_default() += dec(&c["amount"]);
    }
    assert_eq!(by_team, expected, "{csv}");
    assert_eq!(by_team.keys().cloned().collect::<Vec<_>>(), ["", "data", "platform", "web"], "{csv}");
    assert_eq!(by_team["web"], by_team["data"], "S3 split half and half: {csv}");
    if let Some(text) = pdf_text(&download(&app, &token, "pdf").await) {
        assert!(text.contains("team") && text.contains("platform") && text.contains("(none)"), "{text}");
    }
    // "" goes back to lines by provider.
    let res = app.put(&format!("/v2/managed_accounts/{account}"), json!({"invoice_tag_key": ""})).await;
    assert_eq!(res.body["invoice_tag_key"], Value::Null, "{}", res.text);
    let res = app.post(&format!("/v2/invoices/{token}/regenerate"), json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let csv = String::from_utf8(download(&app, &token, "csv").await).unwrap();
    assert!(csv.starts_with("invoice_number,line_type,provider,"), "{csv}");
}
