//! `GET /v2/costs` over real HTTP: raw costs for the parent, rules applied in order for a managed
//! account, every expected total worked out by hand in the comments.

use serde_json::{json, Value};

use crate::helpers::{on_both_stores, TestApp};

on_both_stores!(
    the_parent_sees_raw_costs_grouped_and_binned,
    a_managed_account_sees_its_costs_with_its_rules_applied_in_order,
    bad_costs_parameters_are_400_saying_what_is_wrong,
    costs_page_with_links,
    tags_group_and_filter_costs,
    managed_accounts_never_see_each_others_costs,
    a_rule_that_pushes_an_amount_past_38_digits_is_422_not_a_wrapped_number,
    a_rule_that_sets_a_currency_shows_it_per_row,
    uploads_interleaved_across_integrations_count_once,
    tag_keys_as_real_exports_write_them_group_and_filter,
    every_kind_of_accepted_custom_rule_runs_and_gives_exact_amounts,
    a_stored_rule_that_no_longer_passes_the_checks_is_named_in_a_422,
);

const A: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId,SubAccountId
Usage,2024-07-05,100,EC2,us-east-1,111
Usage,2024-07-20,50,S3,us-east-1,111
Tax,2024-07-31,10,EC2,us-east-1,111
Usage,2024-08-10,200,EC2,eu-west-1,222
Credit,2024-08-15,-20,EC2,eu-west-1,222
";
const B: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName
Usage,2024-07-05,1000,RDS
";
const RANGE: &str = "start_date=2024-07-01&end_date=2024-08-31";

/// Integrations A and B of the app's account, with their costs uploaded.
pub(crate) async fn arrange(app: &TestApp) -> (String, String) {
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    let b = app.create_integration("B").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&a, "a.csv", A.as_bytes().to_vec()).await.status, 201);
    assert_eq!(app.upload(&b, "b.csv", B.as_bytes().to_vec()).await.status, 201);
    (a, b)
}

/// (accrued_at, service, amount) of each row.
fn rows(body: &Value) -> Vec<(String, String, String)> {
    body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["accrued_at"].as_str().unwrap().to_string(),
                r["service"].as_str().unwrap_or("").to_string(),
                r["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(d: &str, s: &str, a: &str) -> (String, String, String) {
    (d.to_string(), s.to_string(), a.to_string())
}

async fn the_parent_sees_raw_costs_grouped_and_binned(app: TestApp) {
    let (_a, b) = arrange(&app).await;
    let res = app.get(&format!("/v2/costs?{RANGE}&groupings=service&date_bin=month&order=asc")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // July: EC2 100 + Tax 10 = 110, S3 50, RDS 1000; August: EC2 200 (the -20 credit is hidden by default).
    assert_eq!(
        rows(&res.body),
        vec![
            row("2024-07-01", "EC2", "110.0"),
            row("2024-07-01", "RDS", "1000.0"),
            row("2024-07-01", "S3", "50.0"),
            row("2024-08-01", "EC2", "200.0")
        ]
    );
    assert_eq!(res.body["total_cost"], json!({"amount": "1360.0", "currency": "USD"}));
    assert_eq!(res.body["costs"][0]["currency"], "USD");
    assert!(res.body["costs"][0].get("provider").is_none(), "only the grouped dimensions are returned");

    // Credits shown, tax hidden: 1360 − 20 − 10 = 1330.
    let res = app.get(&format!("/v2/costs?{RANGE}&settings[include_credits]=true&settings[include_tax]=false")).await;
    assert_eq!(res.body["total_cost"]["amount"], "1330.0", "{}", res.text);
    // Default groupings are provider, service, account_id; default bin is day, newest first.
    assert_eq!(res.body["costs"][0]["provider"], "custom_provider");
    assert_eq!(res.body["costs"][0]["accrued_at"], "2024-08-15");

    let res = app
        .get(&format!(
            "/v2/costs?{RANGE}&filter=costs.service%20%3D%20%27EC2%27%20AND%20costs.region%20%3D%20%27us-east-1%27"
        ))
        .await;
    assert_eq!(res.body["total_cost"]["amount"], "110.0", "{}", res.text);

    // One integration by name: custom_provider:<token> (B holds only the RDS 1000).
    let filter: String =
        form_urlencoded::byte_serialize(format!("costs.provider = 'custom_provider:{b}'").as_bytes()).collect();
    let res = app.get(&format!("/v2/costs?{RANGE}&filter={filter}")).await;
    assert_eq!(res.body["total_cost"]["amount"], "1000.0", "{}", res.text);
}

async fn a_managed_account_sees_its_costs_with_its_rules_applied_in_order(app: TestApp) {
    let (a, _b) = arrange(&app).await;
    let mut rules = Vec::new();
    for body in [
        json!({"type": "exclusion", "title": "no tax", "charge_type": "tax"}),
        json!({"type": "adjustment", "title": "75%", "percentage": 75}),
        json!({"type": "custom", "title": "double EU", "sql_query": "UPDATE costs SET amount = amount * 2 WHERE region = 'eu-west-1'"}),
        json!({"type": "credit", "title": "credit", "service": "Support", "category": "Credit", "sub_category": "Monthly",
               "amount": 10, "start_date": "2024-07-01"}),
        json!({"type": "charge", "title": "fee", "service": "MSP Fee", "category": "Fee", "sub_category": "Monthly",
               "amount": 5, "start_date": "2024-07-01", "end_date": "2024-12-31"}),
    ] {
        rules.push(app.create_rule(body).await["token"].as_str().unwrap().to_string());
    }
    let managed = app
        .post(
            "/v2/managed_accounts",
            json!({"name": "Acme", "contact_email": "ops@acme.com",
            "access_credential_tokens": [a], "billing_rule_tokens": rules}),
        )
        .await;
    assert_eq!(managed.status, 201, "{}", managed.text);
    let token = app.mint_for(managed.body["token"].as_str().unwrap(), "read").await;
    let get = |q: String| {
        let (app, token) = (&app, token.clone());
        async move { app.send(reqwest::Method::GET, &q, Some(&token), None).await }
    };

    // A's rows: EC2 100, S3 50, Tax 10 (July); EC2 200 eu-west-1, Credit −20 eu-west-1 (August).
    // Exclusion drops the Tax row; 75% gives 75, 37.5, 150, −15; the UPDATE doubles eu-west-1: 300, −30;
    // the credit adds −10 in July and August, the charge +5 in July and August. Credits are hidden by default.
    let res = get(format!("/v2/costs?{RANGE}&groupings=service&date_bin=month&order=asc")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        rows(&res.body),
        vec![
            row("2024-07-01", "EC2", "75.0"),
            row("2024-07-01", "MSP Fee", "5.0"),
            row("2024-07-01", "S3", "37.5"),
            row("2024-08-01", "EC2", "300.0"),
            row("2024-08-01", "MSP Fee", "5.0")
        ]
    );
    // 75 + 37.5 + 300 + 5 + 5 = 422.5; never B's RDS 1000.
    assert_eq!(res.body["total_cost"]["amount"], "422.5");

    // With credits: 422.5 − 30 − 10 − 10 = 372.5.
    let res =
        get(format!("/v2/costs?{RANGE}&groupings=service,charge_type&date_bin=month&settings[include_credits]=true"))
            .await;
    assert_eq!(res.body["total_cost"]["amount"], "372.5", "{}", res.text);
    let support: Vec<&Value> =
        res.body["costs"].as_array().unwrap().iter().filter(|r| r["service"] == "Support").collect();
    assert_eq!(support.len(), 2);
    assert!(support.iter().all(|r| r["amount"] == "-10.0" && r["charge_type"] == "Credit"));

    // A VQL filter applies to what the customer sees: EC2 75 + 300.
    let res = get(format!("/v2/costs?{RANGE}&filter=costs.service%20%3D%20%27EC2%27")).await;
    assert_eq!(res.body["total_cost"]["amount"], "375.0", "{}", res.text);

    // The parent still sees raw costs.
    let raw = app.get(&format!("/v2/costs?{RANGE}")).await;
    assert_eq!(raw.body["total_cost"]["amount"], "1360.0");
}

async fn bad_costs_parameters_are_400_saying_what_is_wrong(app: TestApp) {
    for (q, expected) in [
        ("groupings=owner", "unknown grouping"),
        ("date_bin=year", "date_bin must be"),
        ("limit=5001", "limit must be between 1 and 5000"),
        ("page=0", "page must be"),
        ("start_date=2024-08-01&end_date=2024-07-01", "must not be before"),
        ("start_date=someday", "start_date must be a date"),
        ("order=sideways", "order must be asc or desc"),
        ("filter=costs.service%20%3D%20%22EC2%22", "double quotes"),
        ("filter=costs.owner%20%3D%20%27x%27", "unknown field"),
        ("filter=(costs.service%20%3D%20%27x%27", "could not be parsed"),
        ("settings[include_tax]=maybe", "must be true or false"),
    ] {
        let res = app.get(&format!("/v2/costs?{q}")).await;
        assert_eq!(res.status, 400, "{q}: {}", res.text);
        assert!(res.error_text().contains(expected), "{q}: expected {expected:?} in {}", res.text);
    }
    assert_eq!(app.get("/v2/costs?workspace_token=wrkspc_0000000000000000").await.status, 404);
}

async fn costs_page_with_links(app: TestApp) {
    arrange(&app).await;
    let res = app.get(&format!("/v2/costs?{RANGE}&groupings=service&date_bin=month&order=asc&limit=3&page=2")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(rows(&res.body), vec![row("2024-08-01", "EC2", "200.0")]);
    assert_eq!(res.body["total_cost"]["amount"], "1360.0", "the total covers every page");
    assert_eq!(res.body["links"]["next"], Value::Null);
    assert!(res.body["links"]["prev"].as_str().unwrap().contains("page=1"));
}

async fn tags_group_and_filter_costs(app: TestApp) {
    let integration = app.create_integration("Tagged").await["token"].as_str().unwrap().to_string();
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n\
               Usage,2024-07-05,10,EC2,\"{\"\"env\"\": \"\"prod\"\"}\"\n\
               Usage,2024-07-06,5,EC2,\"{\"\"env\"\": \"\"dev\"\", \"\"team\"\": \"\"web\"\"}\"\n\
               Usage,2024-07-07,1,EC2,NULL\n";
    assert_eq!(app.upload(&integration, "t.csv", csv.as_bytes().to_vec()).await.status, 201);
    let q = "start_date=2024-07-01&end_date=2024-07-31&date_bin=month";

    let res = app.get(&format!("/v2/costs?{q}&groupings=tag:env")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut by_env: Vec<(String, String)> = res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tag:env"].as_str().unwrap_or("(none)").to_string(), r["amount"].as_str().unwrap().to_string()))
        .collect();
    by_env.sort();
    assert_eq!(
        by_env,
        vec![("(none)".into(), "1.0".into()), ("dev".into(), "5.0".into()), ("prod".into(), "10.0".into())]
    );

    // Two tags at once (read from one parse of each row's tags), with a column grouping between them.
    let res = app.get(&format!("/v2/costs?{q}&groupings=tag:env,service,tag:team")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut both: Vec<String> = res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            format!("{}/{}/{}={}", text("tag:env"), text("service"), text("tag:team"), text("amount"))
        })
        .collect();
    both.sort();
    assert_eq!(both, ["-/EC2/-=1.0", "dev/EC2/web=5.0", "prod/EC2/-=10.0"], "{}", res.text);

    let res = app.get(&format!("/v2/costs?{q}&groupings=tagged&order=asc")).await;
    let tagged: Vec<(String, String)> = res.body["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tagged"].as_str().unwrap().to_string(), r["amount"].as_str().unwrap().to_string()))
        .collect();
    assert!(
        tagged.contains(&("true".into(), "15.0".into())) && tagged.contains(&("false".into(), "1.0".into())),
        "{tagged:?}"
    );

    for (filter, total) in [
        ("tags.name = 'env' AND tags.value = 'prod'", "10.0"),
        ("(tags.name, tags.value) IN (('env', 'prod'), ('team', 'web'))", "15.0"),
        ("tags.name = NULL", "1.0"),
        ("tags.name = 'team'", "5.0"),
    ] {
        let encoded: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let res = app.get(&format!("/v2/costs?{q}&filter={encoded}")).await;
        assert_eq!(res.body["total_cost"]["amount"], total, "{filter}: {}", res.text);
    }
}

async fn managed_accounts_never_see_each_others_costs(app: TestApp) {
    let (a, b) = arrange(&app).await;
    let mut tokens = Vec::new();
    for (name, integration) in [("A", &a), ("B", &b)] {
        let m = app
            .create_managed_account(
                json!({"name": name, "contact_email": "ops@x.io", "access_credential_tokens": [integration]}),
            )
            .await;
        tokens.push(app.mint_for(m["token"].as_str().unwrap(), "read").await);
    }
    let total = |token: String| {
        let app = &app;
        async move {
            app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}"), Some(&token), None).await.body["total_cost"]
                ["amount"]
                .clone()
        }
    };
    // A: 100 + 50 + 10 + 200 = 360 (its credit hidden); B: 1000.
    assert_eq!(total(tokens[0].clone()).await, "360.0");
    assert_eq!(total(tokens[1].clone()).await, "1000.0");
}

async fn a_rule_that_pushes_an_amount_past_38_digits_is_422_not_a_wrapped_number(app: TestApp) {
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    // The largest amount an upload takes: 20 digits before the point, 18 after.
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-05,99999999999999999999.5,EC2\n";
    assert_eq!(app.upload(&a, "big.csv", csv.as_bytes().to_vec()).await.status, 201);
    let triple = app.create_rule(json!({"type": "adjustment", "title": "x1000", "percentage": 1000})).await;
    let managed = app
        .create_managed_account(json!({"name": "Big", "contact_email": "ops@big.com",
            "access_credential_tokens": [a], "billing_rule_tokens": [triple["token"]]}))
        .await;
    let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    // 99999999999999999999.5 × 10 has 21 digits before the point: beyond Decimal128(38, 18).
    let res = app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}&groupings=service"), Some(&token), None).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.text.contains("does not fit an amount"), "{}", res.text);
}

async fn a_rule_that_sets_a_currency_shows_it_per_row(app: TestApp) {
    let (a, _b) = arrange(&app).await;
    let eur = app
        .create_rule(json!({"type": "custom", "title": "S3 in EUR",
            "sql_query": "UPDATE costs SET currency = 'EUR' WHERE service = 'S3'"}))
        .await;
    let managed = app
        .create_managed_account(json!({"name": "Euro", "contact_email": "ops@euro.com",
            "access_credential_tokens": [a], "billing_rule_tokens": [eur["token"]]}))
        .await;
    let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let query =
        format!("/v2/costs?{RANGE}&groupings=service&date_bin=month&order=asc&filter=costs.service%20%3D%20%27S3%27");
    let res = app.send(reqwest::Method::GET, &query, Some(&token), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["costs"][0]["currency"], "EUR", "{}", res.text);
    assert_eq!(res.body["total_cost"]["currency"], "EUR", "{}", res.text);
    // Without the filter the rows are in two currencies, which one total cannot sum.
    let res = app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}"), Some(&token), None).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.text.contains("several currencies"), "{}", res.text);
}

async fn uploads_interleaved_across_integrations_count_once(app: TestApp) {
    let a = app.create_integration("A").await["token"].as_str().unwrap().to_string();
    let b = app.create_integration("B").await["token"].as_str().unwrap().to_string();
    let one = |amount: &str| {
        format!("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-05,{amount},EC2\n")
    };
    // A, then B, then A again: A's two files are not adjacent in the store's order.
    assert_eq!(app.upload(&a, "a1.csv", one("1").into_bytes()).await.status, 201);
    assert_eq!(app.upload(&b, "b.csv", one("10").into_bytes()).await.status, 201);
    assert_eq!(app.upload(&a, "a2.csv", one("100").into_bytes()).await.status, 201);
    let res = app.get(&format!("/v2/costs?{RANGE}&groupings=service")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["total_cost"]["amount"], "111.0", "{}", res.text);
    // The same through a managed account that sees both integrations.
    let m = app
        .create_managed_account(
            json!({"name": "Both", "contact_email": "ops@x.io", "access_credential_tokens": [b, a]}),
        )
        .await;
    let token = app.mint_for(m["token"].as_str().unwrap(), "read").await;
    let res = app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}"), Some(&token), None).await;
    assert_eq!(res.body["total_cost"]["amount"], "111.0", "{}", res.text);
    // Each integration by name sees only its own.
    for (integration, total) in [(&a, "101.0"), (&b, "10.0")] {
        let filter: String =
            form_urlencoded::byte_serialize(format!("costs.provider = 'custom_provider:{integration}'").as_bytes())
                .collect();
        let res = app.get(&format!("/v2/costs?{RANGE}&filter={filter}")).await;
        assert_eq!(res.body["total_cost"]["amount"], total, "{}", res.text);
    }
}

async fn tag_keys_as_real_exports_write_them_group_and_filter(app: TestApp) {
    let integration = app.create_integration("Real tags").await["token"].as_str().unwrap().to_string();
    // Keys with upper case, dots, slashes, spaces, non-ASCII letters and both kinds of quotes.
    let keys = ["Environment", "kubernetes.io/cluster", "Cost Center", "Kostenstelle/Größe", "it's \"quoted\""];
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n");
    for (i, key) in keys.iter().enumerate() {
        let tags = serde_json::to_string(&json!({ *key: format!("v{i}"), "other": "x" })).unwrap();
        csv.push_str(&format!("Usage,2024-07-0{},{},EC2,\"{}\"\n", i + 1, 10 * (i + 1), tags.replace('"', "\"\"")));
    }
    let res = app.upload(&integration, "t.csv", csv.into_bytes()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let q = "start_date=2024-07-01&end_date=2024-07-31&date_bin=month";
    for (i, key) in keys.iter().enumerate() {
        let grouping = format!("tag:{key}");
        let encoded: String = form_urlencoded::byte_serialize(grouping.as_bytes()).collect();
        let res = app.get(&format!("/v2/costs?{q}&groupings={encoded}")).await;
        assert_eq!(res.status, 200, "{key}: {}", res.text);
        let mut seen: Vec<(Option<String>, String)> = res.body["costs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[grouping.as_str()].as_str().map(str::to_string), r["amount"].as_str().unwrap().to_string()))
            .collect();
        seen.sort();
        let total: u32 = (1..=keys.len() as u32).map(|n| 10 * n).sum();
        let own = 10 * (i as u32 + 1);
        assert_eq!(
            seen,
            vec![(None, format!("{}.0", total - own)), (Some(format!("v{i}")), format!("{own}.0"))],
            "{key}"
        );
        // tags.name / tags.value with the same key; a quote in VQL is doubled inside the string.
        let vql_key = key.replace('\'', "''");
        for (filter, expected) in [
            (format!("tags.name = '{vql_key}'"), format!("{own}.0")),
            (format!("tags.name = '{vql_key}' AND tags.value = 'v{i}'"), format!("{own}.0")),
            (format!("(tags.name, tags.value) IN (('{vql_key}', 'v{i}'))"), format!("{own}.0")),
            (format!("tags.name = '{vql_key}' AND tags.value = 'nope'"), "0.0".to_string()),
        ] {
            let encoded: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
            let res = app.get(&format!("/v2/costs?{q}&groupings=service&filter={encoded}")).await;
            assert_eq!(res.status, 200, "{filter}: {}", res.text);
            assert_eq!(res.body["total_cost"]["amount"], expected.as_str(), "{filter}: {}", res.text);
        }
    }
}

async fn every_kind_of_accepted_custom_rule_runs_and_gives_exact_amounts(app: TestApp) {
    let (a, _b) = arrange(&app).await;
    // A's July rows: EC2 100 (us-east-1), S3 50, Tax 10; August: EC2 200 (eu-west-1), Credit −20.
    let cases: Vec<(&str, &str)> = vec![
        // Exact division: 100/3 = 33.333333333333333333, 50/3 = 16.666666666666666667, 10/3, 200/3.
        ("UPDATE costs SET amount = amount / 3 WHERE cost_type <> 'Credit'", "120.0"),
        // Division by a column that is NULL or zero gives NULL, which COALESCE turns into 0.
        ("UPDATE costs SET amount = COALESCE(amount / usage_amount, 0)", "0.0"),
        // 100.5 + 50.25→50.3 + 10.05→10.1 + 201.0 (half away from zero at one place).
        ("UPDATE costs SET amount = ROUND(amount * 1.005, 1)", "361.9"),
        ("UPDATE costs SET amount = CASE WHEN region = 'eu-west-1' THEN amount % 7 ELSE amount - 0.01 END", "163.97"),
        ("UPDATE costs SET amount = amount * -1 WHERE accrued_at BETWEEN '2024-07-01' AND '2024-07-31'", "40.0"),
        ("UPDATE costs SET service = UPPER(service) || '' WHERE service LIKE 'S%'", "IGNORED"),
        ("UPDATE costs SET region = NULL, service = COALESCE(region, 'none')", "360.0"),
        ("INSERT INTO costs (accrued_at, amount, service, region) VALUES ('2024-07-04', 0.5, 'Setup', NULL)", "360.5"),
        ("INSERT INTO costs (service, amount) SELECT MIN(service), COUNT(*) FROM costs WHERE region IS NOT NULL", "365.0"),
        ("INSERT INTO costs (service, amount, accrued_at) SELECT 'Max', MAX(amount), MAX(accrued_at) FROM costs GROUP BY region HAVING SUM(amount) > 100", "660.0"),
    ];
    for (sql, total) in cases {
        let res = app.post("/v2/billing_rules", json!({"type": "custom", "title": "x", "sql_query": sql})).await;
        if total == "IGNORED" {
            // `||` is not part of the grammar: refused when saved, never at query time.
            assert_eq!(res.status, 400, "{sql}: {}", res.text);
            continue;
        }
        assert_eq!(res.status, 201, "{sql}: {}", res.text);
        let managed = app
            .create_managed_account(json!({"name": "M", "contact_email": "m@x.io",
                "access_credential_tokens": [a], "billing_rule_tokens": [res.body["token"]]}))
            .await;
        let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
        let res =
            app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}&groupings=service"), Some(&token), None).await;
        assert_eq!(res.status, 200, "{sql}: {}", res.text);
        assert_eq!(res.body["total_cost"]["amount"], total, "{sql}: {}", res.text);
    }
}

async fn a_stored_rule_that_no_longer_passes_the_checks_is_named_in_a_422(app: TestApp) {
    let (a, _b) = arrange(&app).await;
    // As an older costd could have stored it, before rules were type-checked.
    let columns = costd::model::billing_rule::RuleColumns {
        title: "old".into(),
        rule_type: costd::model::billing_rule::RuleType::Custom,
        group: costd::model::billing_rule::RuleGroup::Transform,
        charge_type: None,
        percentage: None,
        service: None,
        category: None,
        sub_category: None,
        amount: None,
        start_period: None,
        start_date: None,
        end_date: None,
        apply_to_all: false,
        sql_query: Some("UPDATE costs SET accrued_at = 'not a date'".into()),
    };
    let stored =
        app.store.create_billing_rule(&app.account.token, &app.account.owner_user_token, &columns).await.unwrap();
    let managed = app
        .create_managed_account(json!({"name": "Old", "contact_email": "m@x.io",
            "access_credential_tokens": [a], "billing_rule_tokens": [stored.token]}))
        .await;
    let token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;
    let res = app.send(reqwest::Method::GET, &format!("/v2/costs?{RANGE}"), Some(&token), None).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.error_text().contains(&format!("billing rule {} is no longer valid", stored.token)), "{}", res.text);
    assert!(res.error_text().contains("'not a date' is not a date"), "{}", res.text);
}
