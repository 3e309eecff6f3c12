//! Money under concurrent change: readers querying costs while writers replace and delete uploads and the
//! janitor removes files, and random sequences of uploads, replaces and deletes checked against the exact
//! sum of the live uploads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

/// Runs `f` on a multi-threaded runtime once per backend, so readers, writers and the janitor truly overlap.
macro_rules! on_both_stores_threaded {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_sqlite() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
                    super::$name(std::sync::Arc::new(app)).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_postgres() {
                    if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await {
                        super::$name(std::sync::Arc::new(app)).await;
                    }
                }
            }
        )*
    };
}

on_both_stores_threaded!(readers_never_see_a_failed_short_or_doubled_total_while_uploads_change);

const RANGE: &str = "start_date=2024-07-01&end_date=2024-07-31";

/// A file whose rows sum to `amount`.
fn file_of(amount: u64) -> Vec<u8> {
    let half = Decimal::from(amount) / Decimal::from(2);
    format!(
        "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-07-03,{half},EC2\nUsage,2024-07-09,{half},S3\n"
    )
    .into_bytes()
}

/// File `i` holds k × 10^i with k in {1, 2, 4}: in a total, decimal digit i is 0 (file absent), 1, 2 or 4
/// when exactly one version of file i was counted, and 3, 5, 6 or 8 when two versions were.
const VERSIONS: [u64; 3] = [1, 2, 4];
/// Files 0–3 are only ever replaced (so their digit is never 0 once written); files 4–5 are also deleted.
const STABLE: usize = 4;
const FILES: usize = 6;

fn check_total(total: &str) -> Result<(), String> {
    let whole = total.strip_suffix(".0").ok_or_else(|| format!("{total} is not a whole number"))?;
    let mut n: u64 = whole.parse().map_err(|_| format!("{total} is not a number"))?;
    for i in 0..FILES {
        let digit = n % 10;
        n /= 10;
        let ok = if i < STABLE { [1, 2, 4].contains(&digit) } else { [0, 1, 2, 4].contains(&digit) };
        if !ok {
            return Err(format!("{total}: digit {i} is {digit}, so file {i} was counted wrongly"));
        }
    }
    if n != 0 {
        return Err(format!("{total} is beyond every file"));
    }
    Ok(())
}

async fn readers_never_see_a_failed_short_or_doubled_total_while_uploads_change(app: Arc<TestApp>) {
    let integration = app.create_integration("Busy").await["token"].as_str().unwrap().to_string();
    for i in 0..STABLE {
        let res = app.upload(&integration, &format!("f{i}.csv"), file_of(10u64.pow(i as u32))).await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    // A managed account over the same integration, with a rule, reads through the rules path too.
    let rule = app.create_rule(json!({"type": "adjustment", "title": "all", "percentage": 100})).await;
    let managed = app
        .create_managed_account(json!({"name": "M", "contact_email": "m@x.io",
            "access_credential_tokens": [integration], "billing_rule_tokens": [rule["token"]]}))
        .await;
    let managed_token = app.mint_for(managed["token"].as_str().unwrap(), "read").await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (app, integration, stop) = (app.clone(), integration.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                let i = n % FILES;
                let k = VERSIONS[(n / FILES) % 3];
                n += 7;
                if i >= STABLE && n % 3 == 0 {
                    let list = app.get(&format!("/v2/integrations/{integration}/costs")).await;
                    let found = list.body["user_costs_uploads"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|u| u["filename"] == format!("f{i}.csv"))
                        .map(|u| u["token"].as_str().unwrap().to_string());
                    if let Some(upload) = found {
                        let res = app.delete(&format!("/v2/integrations/{integration}/costs/{upload}")).await;
                        assert!(res.status == 204 || res.status == 404, "{}", res.text);
                    }
                } else {
                    let res = app.upload(&integration, &format!("f{i}.csv"), file_of(k * 10u64.pow(i as u32))).await;
                    assert_eq!(res.status, 201, "{}", res.text);
                }
            }
        }));
    }
    let janitor = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut removed = 0;
            while !stop.load(Ordering::Relaxed) {
                removed += app.collect_files().await.retired;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            removed
        })
    };
    let answers = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for r in 0..3usize {
        let (app, stop, answers, token) = (app.clone(), stop.clone(), answers.clone(), managed_token.clone());
        readers.push(tokio::spawn(async move {
            let mut problems = Vec::new();
            let mut q = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // Different groupings keep most answers out of the result cache.
                let groupings = ["service", "provider", "charge_type", "service,provider"][q % 4];
                let path = format!("/v2/costs?{RANGE}&groupings={groupings}&date_bin=day");
                let res = if (q + r).is_multiple_of(2) {
                    app.get(&path).await
                } else {
                    app.send(reqwest::Method::GET, &path, Some(&token), None).await
                };
                q += 1;
                answers.fetch_add(1, Ordering::Relaxed);
                if res.status != 200 {
                    problems.push(format!("{} {}", res.status, res.text));
                    continue;
                }
                if let Err(e) = check_total(res.body["total_cost"]["amount"].as_str().unwrap()) {
                    problems.push(e);
                }
            }
            problems
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let removed = janitor.await.unwrap();
    let mut problems = Vec::new();
    for r in readers {
        problems.extend(r.await.unwrap());
    }
    let answered = answers.load(Ordering::Relaxed);
    assert!(
        problems.is_empty(),
        "{} of {answered} answers were wrong: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(answered >= 20, "only {answered} answers in 4 s");
    assert!(removed > 0, "the janitor removed files while readers ran");
    // Once quiet, every retired file goes and exactly the live ones stay.
    app.collect_files().await;
    let live = app.get(&format!("/v2/integrations/{integration}/costs")).await.body["user_costs_uploads"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(app.upload_files().len(), live, "{:?}", app.upload_files());
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    /// Upload `file` (a filename index) to integration `integration` with these cents per row.
    Upload { integration: usize, file: usize, cents: Vec<i64> },
    /// Delete the live upload of `file` in `integration`, if any.
    Delete { integration: usize, file: usize },
    /// Run the janitor.
    Collect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, prop::collection::vec(-100_000i64..1_000_000, 1..4))
            .prop_map(|(integration, file, cents)| Op::Upload { integration, file, cents }),
        1 => (0..3usize, 0..3usize).prop_map(|(integration, file)| Op::Delete { integration, file }),
        1 => Just(Op::Collect),
    ]
}

/// The exact sum of the live files, as the costs total shows it (2 places).
fn expected_total(live: &std::collections::HashMap<(usize, usize), Vec<i64>>) -> String {
    let cents: i64 = live.values().flatten().sum();
    let d = Decimal::new(cents, 2);
    // The API shows at least one decimal place and no trailing zeros beyond it.
    let s = d.normalize().to_string();
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

async fn replay(app: &TestApp, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut integrations = Vec::new();
    for i in 0..3 {
        integrations.push(app.create_integration(&format!("I{i}")).await["token"].as_str().unwrap().to_string());
    }
    let mut live: std::collections::HashMap<(usize, usize), Vec<i64>> = Default::default();
    for op in ops {
        match op {
            Op::Upload { integration, file, cents } => {
                let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
                for (n, c) in cents.iter().enumerate() {
                    csv.push_str(&format!("Usage,2024-07-{:02},{},S{n}\n", n + 1, Decimal::new(*c, 2)));
                }
                let res = app.upload(&integrations[*integration], &format!("f{file}.csv"), csv.into_bytes()).await;
                prop_assert_eq!(res.status, 201, "{}", res.text);
                live.insert((*integration, *file), cents.clone());
            }
            Op::Delete { integration, file } => {
                let list = app.get(&format!("/v2/integrations/{}/costs", integrations[*integration])).await;
                let found = list.body["user_costs_uploads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|u| u["filename"] == format!("f{file}.csv"))
                    .map(|u| u["token"].as_str().unwrap().to_string());
                prop_assert_eq!(found.is_some(), live.contains_key(&(*integration, *file)));
                if let Some(upload) = found {
                    let path = format!("/v2/integrations/{}/costs/{upload}", integrations[*integration]);
                    prop_assert_eq!(app.delete(&path).await.status, 204);
                    live.remove(&(*integration, *file));
                }
            }
            Op::Collect => {
                app.collect_files().await;
            }
        }
        // After every step the parent's total is the exact sum of what is live; credits (negative
        // amounts here are Usage rows) are included as they are.
        let res = app.get(&format!("/v2/costs?{RANGE}&groupings=service")).await;
        prop_assert_eq!(res.status, 200, "{}", res.text);
        prop_assert_eq!(res.body["total_cost"]["amount"].as_str().unwrap(), expected_total(&live), "after {:?}", op);
    }
    // Per integration, through the VQL name of each.
    for (i, token) in integrations.iter().enumerate() {
        let filter: String =
            form_urlencoded::byte_serialize(format!("costs.provider = 'custom_provider:{token}'").as_bytes()).collect();
        let res = app.get(&format!("/v2/costs?{RANGE}&filter={filter}")).await;
        let own: std::collections::HashMap<_, _> =
            live.iter().filter(|((int, _), _)| *int == i).map(|(k, v)| (*k, v.clone())).collect();
        prop_assert_eq!(res.body["total_cost"]["amount"].as_str().unwrap(), expected_total(&own));
    }
    Ok(())
}

fn random_histories_keep_the_total_equal_to_the_live_uploads(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..14), |ops| {
        runtime.block_on(async {
            let Some(app) = TestApp::spawn(backend).await else { return Ok(()) };
            replay(&app, &ops).await
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_histories_keep_the_total_equal_to_the_live_uploads_on_sqlite() {
    random_histories_keep_the_total_equal_to_the_live_uploads(Backend::Sqlite);
}

#[test]
fn random_histories_keep_the_total_equal_to_the_live_uploads_on_postgres() {
    random_histories_keep_the_total_equal_to_the_live_uploads(Backend::Postgres);
}
