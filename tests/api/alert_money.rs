//! The alerts wing's money against a reference: random daily costs of three services, random budget
//! periods and a random "today", through the API; every budget period's actual and every cost-alert
//! window's amounts (per service, a grouped report) must equal what a small evaluator written here with
//! `rust_decimal` sums from the rows, to the last decimal place, and the services that fire must be the ones
//! whose cost rose by the threshold. A sum past Decimal128(38, 18) in the report series is an error, never a
//! wrapped amount (a property test on `Series` itself).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use costd::model::amount::Amount;
use costd::service::series::{Point, Series};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

const SERVICES: [&str; 3] = ["EC2", "S3", "RDS"];

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()
}

/// One cost row: a day (0..61 from March 1st), a service, an amount with up to 6 decimals.
#[derive(Debug, Clone)]
struct Row {
    day: i64,
    service: usize,
    amount: Decimal,
}

fn row() -> impl Strategy<Value = Row> {
    (0i64..61, 0..SERVICES.len(), -2_000_000i64..50_000_000_000, 0u32..=6).prop_map(|(day, service, n, scale)| Row {
        day,
        service,
        amount: Decimal::new(n, scale),
    })
}

/// Budget periods: consecutive spans from March 1st (lengths in days), each with an amount.
fn periods() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((1i64..25, 1i64..100_000), 1..4)
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("an amount string, got {v}"))).unwrap()
}

async fn check(
    app: &TestApp,
    ctx: &costd::service::alerts::AlertContext,
    rows: &[Row],
    spans: &[(i64, i64)],
    today: NaiveDate,
) -> Result<(), TestCaseError> {
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
    for r in rows {
        csv.push_str(&format!(
            "Usage,{},{},{}\n",
            first_day() + chrono::Duration::days(r.day),
            r.amount,
            SERVICES[r.service]
        ));
    }
    let integration = app.create_integration("cloud").await["token"].as_str().unwrap().to_string();
    let res = app.upload(&integration, "costs.csv", csv.into_bytes()).await;
    prop_assert_eq!(res.status, 201, "{}", res.text);
    let report = app.post("/v2/cost_reports", json!({"title": "By service", "groupings": "service"})).await;
    let report = report.body["token"].as_str().unwrap().to_string();

    // Budget periods: each actual is its rows' days up to today.
    let mut start = first_day();
    let mut body_periods = Vec::new();
    let mut expected = Vec::new();
    for (len, amount) in spans {
        let end = start + chrono::Duration::days(len - 1);
        body_periods.push(json!({"start_at": start.to_string(), "end_at": end.to_string(), "amount": amount}));
        let sum: Decimal = rows
            .iter()
            .filter(|r| {
                let d = first_day() + chrono::Duration::days(r.day);
                d >= start && d <= end && d <= today
            })
            .map(|r| r.amount)
            .sum();
        expected.push(sum);
        start = end + chrono::Duration::days(1);
    }
    let budget =
        app.post("/v2/budgets", json!({"name": "B", "cost_report_token": report, "periods": body_periods})).await;
    prop_assert_eq!(budget.status, 201, "{}", budget.text);
    let token = budget.body["token"].as_str().unwrap();
    let shown = app.get(&format!("/v2/budgets/{token}?include_performance=true")).await;
    let performance = shown.body["performance"].as_array().unwrap().clone();
    prop_assert_eq!(performance.len(), expected.len());
    for (p, want) in performance.iter().zip(&expected) {
        prop_assert_eq!(dec(&p["actual"]), *want, "period {}", p["date"]);
    }

    // A daily cost alert on the grouped report: yesterday against the day before, per service.
    let threshold = Decimal::new(1, 2);
    let alert = app
        .post(
            "/v2/cost_alerts",
            json!({"title": "Daily", "interval": "day", "threshold": "0.01", "unit_type": "currency", "report_tokens": [report]}),
        )
        .await;
    prop_assert_eq!(alert.status, 201, "{}", alert.text);
    costd::service::alerts::run_pass(ctx, &mut Default::default()).await.unwrap();
    let alert = alert.body["token"].as_str().unwrap();
    let events = app.get(&format!("/v2/cost_alerts/{alert}/events?limit=100")).await.body["cost_alert_events"].clone();
    let yesterday = today.pred_opt().unwrap();
    let day_sum = |service: usize, day: NaiveDate| -> Decimal {
        rows.iter()
            .filter(|r| r.service == service && first_day() + chrono::Duration::days(r.day) == day)
            .map(|r| r.amount)
            .sum()
    };
    let mut fired: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for e in events.as_array().unwrap() {
        let service = e["metadata"]["group"]["service"].as_str().unwrap().to_string();
        fired.insert(service, (dec(&e["metadata"]["previous_amount"]), dec(&e["metadata"]["current_amount"])));
    }
    let mut want: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for (i, s) in SERVICES.iter().enumerate() {
        // Only the services with costs in the report's window appear as groups.
        let in_window = rows.iter().any(|r| {
            r.service == i && {
                let d = first_day() + chrono::Duration::days(r.day);
                d == yesterday || d == yesterday.pred_opt().unwrap()
            }
        });
        let (before, now) = (day_sum(i, yesterday.pred_opt().unwrap()), day_sum(i, yesterday));
        if in_window && now - before >= threshold {
            want.insert(s.to_string(), (before, now));
        }
    }
    prop_assert_eq!(fired, want);
    Ok(())
}

fn the_wings_money_matches_a_reference(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let case = (prop::collection::vec(row(), 1..80), periods(), 2i64..62);
    let result = runner.run(&case, |(rows, spans, today)| {
        runtime.block_on(async {
            let today = first_day() + chrono::Duration::days(today);
            let context: std::sync::Arc<std::sync::Mutex<Option<costd::service::alerts::AlertContext>>> =
                Default::default();
            let slot = context.clone();
            let Some(app) = TestApp::spawn_with(backend, move |s| {
                s.today = std::sync::Arc::new(move || today);
                *slot.lock().unwrap() = Some(s.alert_context());
            })
            .await
            else {
                return Ok(());
            };
            let ctx = context.lock().unwrap().clone().unwrap();
            check(&app, &ctx, &rows, &spans, today).await
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn budget_actuals_and_cost_alert_windows_equal_a_reference_on_sqlite() {
    the_wings_money_matches_a_reference(Backend::Sqlite);
}

#[test]
fn budget_actuals_and_cost_alert_windows_equal_a_reference_on_postgres() {
    the_wings_money_matches_a_reference(Backend::Postgres);
}

proptest! {
    #[test]
    fn a_series_sums_exactly_by_any_key_and_refuses_past_the_decimal_range(
        points in prop::collection::vec((0i64..20, 0usize..3, -100_000_000i64..100_000_000, 0u32..=18), 0..200),
        huge in 0usize..4,
    ) {
        let day0 = first_day();
        let mut series = Series {
            currency: "USD".into(),
            points: points
                .iter()
                .map(|(d, s, n, scale)| Point {
                    day: day0 + chrono::Duration::days(*d),
                    group: vec![("service".into(), SERVICES[*s].into())],
                    amount: Amount::parse("a", &Decimal::new(*n, *scale).to_string()).unwrap(),
                })
                .collect(),
        };
        let by_service = series.sum_by("x", |p| Some(p.group[0].1.clone())).unwrap();
        for (i, s) in SERVICES.iter().enumerate() {
            let want: Decimal = points.iter().filter(|p| p.1 == i).map(|(_, _, n, scale)| Decimal::new(*n, *scale)).sum();
            let got = by_service.get(*s).map_or(Decimal::ZERO, |a| Decimal::from_str(&a.to_string()).unwrap());
            prop_assert_eq!(got, want);
        }
        let daily = series.daily("x", |p| Some(p.group[0].1.clone())).unwrap();
        let cells: usize = daily.values().map(BTreeMap::len).sum();
        let distinct: std::collections::BTreeSet<_> = points.iter().map(|(d, s, _, _)| (*d, *s)).collect();
        prop_assert_eq!(cells, distinct.len());
        // Past the range: `huge` amounts of 6 × 10^19 each; two or more do not fit, and say so.
        for _ in 0..huge {
            series.points.push(Point { day: day0, group: vec![("service".into(), "EC2".into())], amount: Amount::parse("a", "60000000000000000000").unwrap() });
        }
        let whole = series.sum_by("a report's total", |_| Some(()));
        prop_assert_eq!(whole.is_err(), huge >= 2, "{:?}", whole);
    }
}
