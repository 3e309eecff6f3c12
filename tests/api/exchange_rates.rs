//! Exchange rates over real HTTP (`/v2/exchange_rates`): a CSV stored whole or refused naming its lines,
//! and a workspace with currency conversion showing every cost in its currency, exactly, by the rate of the
//! cost's day (or of its month's end), with a missing rate a clear 422.

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    rates_are_uploaded_listed_and_a_bad_file_stores_nothing,
    a_converting_workspace_shows_every_cost_in_its_currency_by_the_rate_of_its_day,
    a_managed_account_converts_with_its_msps_rates,
);

impl TestApp {
    /// `POST /v2/exchange_rates/csv` with `csv` as a multipart file (the TypeScript client's form).
    async fn upload_rates_as(&self, token: &str, csv: &str) -> crate::helpers::Resp {
        let form = Form::new().part("csv", Part::bytes(csv.as_bytes().to_vec()).file_name("rates.csv"));
        self.post_form("/v2/exchange_rates/csv", token, form).await
    }

    async fn upload_rates(&self, csv: &str) -> crate::helpers::Resp {
        self.upload_rates_as(&self.token, csv).await
    }

    /// The account's first (default) workspace's token.
    async fn default_workspace_as(&self, token: &str) -> String {
        let res = self.send(Method::GET, "/v2/workspaces", Some(token), None).await;
        res.body["workspaces"][0]["token"].as_str().unwrap().to_string()
    }
}

const EUR: &str = "ChargeCategory,ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n\
    Usage,2024-07-01,10.00,EUR,Compute\n\
    Usage,2024-07-20,3.333,EUR,Storage\n";
const USD: &str = "ChargeCategory,ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n\
    Usage,2024-07-02,5.00,USD,Compute\n";

/// `/v2/costs` for July 2024 by service: the rows (service, amount, currency) and the total.
async fn july(app: &TestApp, token: &str) -> crate::helpers::Resp {
    let path = "/v2/costs?start_date=2024-07-01&end_date=2024-07-31&date_bin=month&groupings=service";
    app.send(Method::GET, path, Some(token), None).await
}

fn rows(res: &crate::helpers::Resp) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_string(),
                r["amount"].as_str().unwrap().to_string(),
                r["currency"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

async fn rates_are_uploaded_listed_and_a_bad_file_stores_nothing(app: TestApp) {
    let res = app.upload_rates("base_currency_code,currency_code,rate,date\nEUR,USD,1.0800,2024-07-01\n").await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["exchange_rates_count"], 1);
    // The Python client's form: form-urlencoded, no header row.
    let csv = [("csv", "EUR,USD,1.09,2024-07-15\nUSD,JPY,161.5,2024-07-01\n")];
    let res = app.send_urlencoded(Method::POST, "/v2/exchange_rates/csv", &app.token, &csv).await;
    assert_eq!(res.status, 201, "{}", res.text);

    let res = app.get("/v2/exchange_rates?limit=2").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let rates = res.body["exchange_rates"].as_array().unwrap();
    assert_eq!(rates.len(), 2);
    assert_eq!(rates[0]["base_currency_code"], "EUR");
    assert_eq!(rates[0]["currency_code"], "USD");
    assert_eq!(rates[0]["rate"], "1.09", "newest day first, exact text");
    assert_eq!(rates[0]["effective_date"], "2024-07-15");
    assert!(rates[0]["updated_at"].as_str().unwrap().ends_with('Z'), "{}", rates[0]);
    assert!(res.body["links"]["next"].as_str().unwrap().contains("page=2"), "{}", res.text);

    // One bad row refuses the file: every bad line is named, and nothing of it is stored.
    let res = app.upload_rates("EUR,USD,1.2,2024-08-01\nEUR,USD,-1,2024-08-02\nEURO,USD,1,2024-08-03\n").await;
    assert_eq!(res.status, 400, "{}", res.text);
    let text = res.error_text();
    assert!(text.contains("line 2: rate must be above 0"), "{text}");
    assert!(text.contains("line 3: base_currency_code must be a three-letter currency code"), "{text}");
    let res = app.get("/v2/exchange_rates").await;
    assert_eq!(res.body["exchange_rates"].as_array().unwrap().len(), 3, "{}", res.text);

    // A day uploaded again replaces its rate.
    assert_eq!(app.upload_rates("EUR,USD,1.1,2024-07-15\n").await.status, 201);
    let res = app.get("/v2/exchange_rates").await;
    assert_eq!(res.body["exchange_rates"][0]["rate"], "1.1", "{}", res.text);
    assert_eq!(res.body["exchange_rates"].as_array().unwrap().len(), 3);

    // A read-only token may list, not upload; another account sees none of them.
    let reader = app.mint_for(app.account.token.as_ref(), "read").await;
    assert_eq!(app.upload_rates_as(&reader, "EUR,USD,1,2024-09-01\n").await.status, 403);
    let (_, other) = app.other_account().await;
    let res = app.send(Method::GET, "/v2/exchange_rates", Some(&other), None).await;
    assert_eq!(res.body["exchange_rates"], json!([]), "{}", res.text);
}

async fn a_converting_workspace_shows_every_cost_in_its_currency_by_the_rate_of_its_day(app: TestApp) {
    for (name, csv) in [("Azure", EUR), ("AWS", USD)] {
        let integration = app.create_integration(name).await["token"].as_str().unwrap().to_string();
        assert_eq!(app.upload(&integration, "c.csv", csv.as_bytes().to_vec()).await.status, 201);
    }
    // Without conversion, euros are never added to dollars.
    let res = july(&app, &app.token).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.text.contains("several currencies"), "{}", res.text);

    let workspace = app.default_workspace_as(&app.token).await;
    let res = app
        .put(&format!("/v2/workspaces/{workspace}"), json!({"currency": "USD", "enable_currency_conversion": true}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // No rate: a 422 naming the currencies, never a rate of 1.
    let res = july(&app, &app.token).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("no exchange rate from EUR to USD"), "{}", res.text);
    // A rate from the 15th on only: the cost of the 1st still has none.
    assert_eq!(app.upload_rates("EUR,USD,1.0837,2024-07-15\n").await.status, 201);
    let res = july(&app, &app.token).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains("in effect on or before 2024-07-01"), "{}", res.text);

    // Each cost by the rate of its day: 10 × 1.1 + 3.333 × 1.0837 + 5.
    assert_eq!(app.upload_rates("EUR,USD,1.1,2024-06-30\n").await.status, 201);
    let res = july(&app, &app.token).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        rows(&res),
        vec![("Compute".into(), "16.0".into(), "USD".into()), ("Storage".into(), "3.6119721".into(), "USD".into())]
    );
    assert_eq!(res.body["total_cost"], json!({"amount": "19.61", "currency": "USD"}), "the total at cents, as Vantage");

    // By the rate in effect at the end of the billing period: every July euro at 1.0837.
    let res = app
        .put(&format!("/v2/workspaces/{workspace}"), json!({"exchange_rate_date": "end_of_billing_period_rate"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = july(&app, &app.token).await;
    assert_eq!(
        rows(&res),
        vec![("Compute".into(), "15.837".into(), "USD".into()), ("Storage".into(), "3.6119721".into(), "USD".into())]
    );

    // In euros, the dollars divide by the EUR→USD rate of their day, rounded once at 18 places.
    let res = app
        .put(&format!("/v2/workspaces/{workspace}"), json!({"currency": "EUR", "exchange_rate_date": "daily_rate"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = july(&app, &app.token).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        rows(&res),
        vec![
            ("Compute".into(), "14.545454545454545455".into(), "EUR".into()),
            ("Storage".into(), "3.333".into(), "EUR".into())
        ]
    );
    assert_eq!(res.body["total_cost"], json!({"amount": "17.88", "currency": "EUR"}));
}

async fn a_managed_account_converts_with_its_msps_rates(app: TestApp) {
    let mut integrations = Vec::new();
    for (name, csv) in [("Azure", EUR), ("AWS", USD)] {
        let integration = app.create_integration(name).await["token"].as_str().unwrap().to_string();
        assert_eq!(app.upload(&integration, "c.csv", csv.as_bytes().to_vec()).await.status, 201);
        integrations.push(integration);
    }
    let managed = app
        .create_managed_account(json!({"name": "Customer", "contact_email": "c@example.com",
            "access_credential_tokens": integrations}))
        .await;
    let theirs = app.mint_for(managed["token"].as_str().unwrap(), "read,write").await;
    let workspace = app.default_workspace_as(&theirs).await;
    let body = json!({"currency": "USD", "enable_currency_conversion": true}).to_string();
    let res = app.send(Method::PUT, &format!("/v2/workspaces/{workspace}"), Some(&theirs), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // The MSP's rates serve its customers; the customer's own rate of a day wins over the MSP's.
    assert_eq!(app.upload_rates("EUR,USD,2,2024-06-01\n").await.status, 201);
    let res = july(&app, &theirs).await;
    assert_eq!(
        rows(&res),
        vec![("Compute".into(), "25.0".into(), "USD".into()), ("Storage".into(), "6.666".into(), "USD".into())]
    );
    assert_eq!(app.upload_rates_as(&theirs, "EUR,USD,1,2024-06-01\n").await.status, 201);
    let res = july(&app, &theirs).await;
    assert_eq!(
        rows(&res),
        vec![("Compute".into(), "15.0".into(), "USD".into()), ("Storage".into(), "3.333".into(), "USD".into())]
    );
    // The MSP's own view (its workspace does not convert) is untouched.
    assert_eq!(july(&app, &app.token).await.status, 422);
}
