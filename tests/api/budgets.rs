//! Budgets, budget alerts and their delivery over real HTTP: a budget's performance worked out by hand from
//! the costs below, hierarchical budgets summed, bad bodies answered by field, and an alert that fires
//! once, waits in the outbox while its webhook receiver is down, is sent again when the receiver (a
//! separate process) crashes before answering, reaches it (signed) after a restart, reaches a real SMTP
//! server, and is never written twice; a webhook into the operator's network refused.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Backend, TestApp};
use crate::invoices::smtp_server;

on_both_stores!(
    budgets_follow_their_reports_costs_exactly,
    bad_budget_and_alert_bodies_are_400_naming_each_field,
    a_read_only_token_sees_no_webhook_secret,
    one_tenants_silent_webhooks_do_not_hold_back_anothers_alert,
    a_grouped_cost_alert_firing_for_many_groups_sends_one_digest_per_recipient,
    an_account_sends_at_most_its_hourly_messages_and_the_rest_wait,
    a_spike_in_a_late_bill_is_found_once_and_not_again_when_the_bill_is_restated,
    a_budget_over_costs_in_two_currencies_refuses_and_adds_no_euros_to_dollars,
    a_late_bill_is_judged_again_for_the_cost_alert_windows_and_budget_periods_it_restates
);

/// EC2 in February 50; in March EC2 100.10 + 400, S3 0.2, tax 10.
const COSTS: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n\
    Usage,2024-02-10,50,EC2\n\
    Usage,2024-03-01,100.10,EC2\n\
    Usage,2024-03-02,0.2,S3\n\
    Tax,2024-03-05,10,Tax\n\
    Usage,2024-03-10,400,EC2\n";

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path, body).await;
    assert_eq!(res.status, 201, "{path}: {}", res.text);
    res.body
}

fn token(v: &Value) -> String {
    v["token"].as_str().unwrap().to_string()
}

/// Two reports (EC2 only; everything) and a budget on each, February and March.
async fn arrange(app: &TestApp) -> (String, String) {
    let integration = token(&app.create_integration("cloud").await);
    assert_eq!(app.upload(&integration, "costs.csv", COSTS.as_bytes().to_vec()).await.status, 201);
    let ec2_report = created(app, "/v2/cost_reports", json!({"title": "EC2", "filter": "costs.service = 'EC2'"})).await;
    let all_report = created(app, "/v2/cost_reports", json!({"title": "All"})).await;
    let ec2 = created(
        app,
        "/v2/budgets",
        json!({"name": "EC2", "cost_report_token": token(&ec2_report),
               "periods": [{"start_at": "2024-03-01", "amount": 1000}, {"start_at": "2024-02-01", "end_at": "2024-02-29", "amount": "100"}]}),
    )
    .await;
    let all = created(
        app,
        "/v2/budgets",
        json!({"name": "All", "cost_report_token": token(&all_report),
               "periods": [{"start_at": "2024-02-01", "amount": 200}, {"start_at": "2024-03-01", "amount": 2000.5}]}),
    )
    .await;
    (token(&ec2), token(&all))
}

fn performance(body: &Value) -> Vec<(String, String, String)> {
    body["performance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["date"].as_str().unwrap().into(),
                p["actual"].as_str().unwrap().into(),
                p["amount"].as_str().unwrap().into(),
            )
        })
        .collect()
}

async fn budgets_follow_their_reports_costs_exactly(app: TestApp) {
    let (ec2, all) = arrange(&app).await;
    let shown = app.get(&format!("/v2/budgets/{ec2}?include_performance=true")).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    let b = &shown.body;
    assert!(ec2.starts_with("bdgt_"), "{ec2}");
    assert_eq!(b["name"], "EC2");
    assert_eq!(
        b["periods"],
        json!([{"start_at": "2024-02-01T00:00:00Z", "end_at": "2024-02-29T00:00:00Z", "amount": "100.0"},
               {"start_at": "2024-03-01T00:00:00Z", "end_at": "2024-03-31T00:00:00Z", "amount": "1000.0"}])
    );
    assert_eq!(
        performance(b),
        [
            ("2024-02-01T00:00:00Z".into(), "50.0".into(), "100.0".into()),
            ("2024-03-01T00:00:00Z".into(), "500.1".into(), "1000.0".into())
        ]
    );
    assert!(app.get(&format!("/v2/budgets/{ec2}")).await.body.get("performance").is_none(), "only when asked");
    // Each period's actual is what the costs API answers for the report over the period's days.
    let report = b["cost_report_token"].as_str().unwrap();
    for (period, (_, actual, _)) in b["periods"].as_array().unwrap().iter().zip(performance(b)) {
        let (start, end) = (&period["start_at"].as_str().unwrap()[..10], &period["end_at"].as_str().unwrap()[..10]);
        let costs = app.get(&format!("/v2/costs?cost_report_token={report}&start_date={start}&end_date={end}")).await;
        assert_eq!(
            costs.body["total_cost"]["amount"].as_str(),
            Some(actual.as_str()),
            "{start}..{end}: {}",
            costs.text
        );
    }
    let everything = app.get(&format!("/v2/budgets/{all}?include_performance=true")).await.body;
    assert_eq!(performance(&everything)[1].1, "510.3", "100.10 + 0.2 + 10 + 400");

    // A hierarchical budget: its children's periods and actuals, summed period by period.
    let total = created(&app, "/v2/budgets", json!({"name": "Total", "child_budget_tokens": [ec2, all]})).await;
    assert_eq!(total["cost_report_token"], Value::Null);
    assert_eq!(total["child_budget_tokens"], json!([ec2, all]));
    let t = token(&total);
    let summed = app.get(&format!("/v2/budgets/{t}?include_performance=true")).await.body;
    assert_eq!(
        performance(&summed),
        [
            ("2024-02-01T00:00:00Z".into(), "100.0".into(), "300.0".into()),
            ("2024-03-01T00:00:00Z".into(), "1010.4".into(), "3000.5".into())
        ]
    );
    // One level: a child cannot get children, a parent cannot be a child.
    let res = app.put(&format!("/v2/budgets/{ec2}"), json!({"child_budget_tokens": [all]})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("is a child of"), "{}", res.text);
    let res = app.post("/v2/budgets", json!({"name": "Deeper", "child_budget_tokens": [t]})).await;
    assert!(res.status == 400 && res.text.contains("has children of its own"), "{}", res.text);

    // Lists, updates, alerts on the budget, and what may be deleted.
    let listed = app.get("/v2/budgets?limit=2").await;
    assert_eq!(listed.body["budgets"].as_array().unwrap().len(), 2);
    assert!(listed.body["links"]["next"].as_str().unwrap().contains("page=2"), "{}", listed.text);
    let renamed = app.put(&format!("/v2/budgets/{ec2}"), json!({"name": "Compute"})).await;
    assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("Compute")), "{}", renamed.text);
    assert_eq!(renamed.body["periods"].as_array().unwrap().len(), 2, "periods kept");
    let alert = created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [ec2], "threshold": 80, "duration_in_days": "", "user_tokens": [],
               "recipient_channels": ["finops@example.com"]}),
    )
    .await;
    let a = token(&alert);
    assert!(a.starts_with("bdgt_alrt_"), "{a}");
    assert_eq!(
        (alert["threshold"].clone(), alert["duration_in_days"].clone(), alert["period_to_track"].clone()),
        (json!(80), Value::Null, json!("start_of_the_month"))
    );
    assert_eq!(app.get(&format!("/v2/budgets/{ec2}")).await.body["budget_alert_tokens"], json!([a]));
    let watching = app.get(&format!("/v2/budget_alerts?budget_token={all}")).await.body;
    assert_eq!(watching["budget_alerts"], json!([]));
    let watching = app.get(&format!("/v2/budget_alerts?budget_token={ec2}")).await.body;
    assert_eq!(watching["budget_alerts"][0]["token"], a.as_str());
    let moved = app.put(&format!("/v2/budget_alerts/{a}"), json!({"threshold": 95, "duration_in_days": 7})).await;
    assert_eq!((moved.body["threshold"].clone(), moved.body["duration_in_days"].clone()), (json!(95), json!(7)));
    assert_eq!(moved.body["recipient_channels"], json!(["finops@example.com"]), "kept");

    let res = app.delete(&format!("/v2/budgets/{ec2}")).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.text.contains(&t) && res.text.contains(&a), "names the users: {}", res.text);
    let report = app.get(&format!("/v2/budgets/{all}")).await.body["cost_report_token"].as_str().unwrap().to_string();
    let res = app.delete(&format!("/v2/cost_reports/{report}")).await;
    assert!(res.status == 409 && res.text.contains(&all), "a report a budget follows stays: {}", res.text);
    assert_eq!(app.delete(&format!("/v2/budget_alerts/{a}")).await.status, 204);
    assert_eq!(app.delete(&format!("/v2/budgets/{t}")).await.status, 204);
    assert_eq!(app.delete(&format!("/v2/budgets/{ec2}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/budgets/{ec2}")).await.status, 404);
    assert_eq!(app.get(&format!("/v2/budget_alerts/{a}")).await.status, 404);

    // Another tenant sees none of it.
    let (_, other) = app.other_account().await;
    let res = app.send(reqwest::Method::GET, &format!("/v2/budgets/{all}"), Some(&other), None).await;
    assert_eq!(res.status, 404);
}

/// A webhook URL's path is its secret, and the signing secret forges costd's alerts: a token that cannot
/// write sees neither.
async fn a_read_only_token_sees_no_webhook_secret(app: TestApp) {
    let (ec2, _) = arrange(&app).await;
    let hook = "https://hooks.slack.com/services/T000/B000/secret-part";
    let alert = created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [ec2], "threshold": 50, "recipient_channels": [hook, "ops@example.com"]}),
    )
    .await;
    assert_eq!(alert["recipient_channels"][0], hook, "the writer sees what it wrote");
    let reader = app.mint(&app.account, "read").await;
    for path in [format!("/v2/budget_alerts/{}", token(&alert)), "/v2/budget_alerts".to_string()] {
        let res = app.send(reqwest::Method::GET, &path, Some(&reader), None).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert!(!res.text.contains("secret-part"), "{}", res.text);
        assert!(res.text.contains("https://hooks.slack.com/…") && res.text.contains("ops@example.com"), "{}", res.text);
    }
    let res = app.send(reqwest::Method::GET, "/v2/webhook_signing_secret", Some(&reader), None).await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert_eq!(app.get("/v2/webhook_signing_secret").await.status, 200);
}

/// An alert message as the outbox keeps it, for tests that write the outbox themselves.
fn plain_message() -> String {
    let message = costd::service::alerts::Message {
        event: "budget_alert".into(),
        subject: "s".into(),
        text: "t".into(),
        link: None,
        data: Default::default(),
    };
    serde_json::to_string(&message).unwrap()
}

/// 12 webhooks of one tenant that accept the connection and never answer, written before another tenant's
/// one alert: the other's is delivered within its own time-out, not after the 12 others'.
async fn one_tenants_silent_webhooks_do_not_hold_back_anothers_alert(app: TestApp) {
    use costd::service::alerts::AlertContext;
    // Never answers: holds every connection it accepts.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    // Answers at once, and says when.
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = receiver.local_addr().unwrap().port();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let tx = arrived_tx.clone();
            async move {
                let _ = tx.send(std::time::Instant::now());
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, hook).await.unwrap() });

    let timeout = std::time::Duration::from_secs(3);
    let context: Arc<Mutex<Option<AlertContext>>> = Default::default();
    let slot = context.clone();
    let Some(app) = TestApp::spawn_with(app.backend, move |s| {
        s.webhooks = costd::service::webhooks::WebhookClient::new(vec!["127.0.0.1".into()], timeout);
        *slot.lock().unwrap() = Some(s.alert_context());
    })
    .await
    else {
        return;
    };
    let ctx = context.lock().unwrap().clone().unwrap();
    let (other, _) = app.other_account().await;
    let message = plain_message();
    let new = |account: &costd::model::token::AccountToken, i: usize, url: String| costd::store::NewNotification {
        account: account.clone(),
        source_token: format!("bdgt_alrt_{i}"),
        event_key: format!("k{i}"),
        recipient: url,
        message: message.clone(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let noisy: Vec<_> =
        (0..12).map(|i| new(&app.account.token, i, format!("http://127.0.0.1:{silent_port}/hook{i}"))).collect();
    app.store.enqueue_notifications(&noisy, now).await.unwrap();
    let quiet = [new(&other.token, 99, format!("http://127.0.0.1:{receiver_port}/hook"))];
    app.store.enqueue_notifications(&quiet, now).await.unwrap();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = std::time::Instant::now();
    let worker = tokio::spawn(costd::service::alerts::run(ctx.clone(), std::time::Duration::from_secs(3600), async {
        let _ = stop_rx.await;
    }));
    ctx.deliver.notify_one();
    let at = tokio::time::timeout(std::time::Duration::from_secs(60), arrived.recv())
        .await
        .expect("the other tenant's alert arrives")
        .unwrap();
    assert!(at - started < timeout, "delivered after {:?}, behind the silent webhooks", at - started);
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), worker).await;
}

/// 25 services each rise tenfold from one week to the next: 25 events, and one message per recipient.
async fn a_grouped_cost_alert_firing_for_many_groups_sends_one_digest_per_recipient(app: TestApp) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(app.backend, chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap()).await
    else {
        return;
    };
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
    for day in 4..=17 {
        for s in 0..25 {
            csv.push_str(&format!("Usage,2024-03-{day:02},{},Service {s:02}\n", if day <= 10 { 1 } else { 10 + s }));
        }
    }
    let integration = token(&app.create_integration("cloud").await);
    assert_eq!(app.upload(&integration, "costs.csv", csv.into_bytes()).await.status, 201);
    let by_service =
        token(&created(&app, "/v2/cost_reports", json!({"title": "By service", "groupings": "service"})).await);
    let alert = token(
        &created(
            &app,
            "/v2/cost_alerts",
            json!({"title": "Weekly jump", "interval": "week", "threshold": 50, "unit_type": "percentage",
                   "report_tokens": [by_service], "email_recipients": ["ops@example.com", "cfo@example.com"]}),
        )
        .await,
    );
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(2), "one digest per recipient");
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "written once");
    let sent = deliveries(&app).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|d| d["subject"] == "Weekly jump: 25 groups of By service rose"), "{sent:?}");
    let events = app.get(&format!("/v2/cost_alerts/{alert}/events?limit=100")).await;
    assert_eq!(events.body["cost_alert_events"].as_array().unwrap().len(), 25, "{}", events.text);
}

/// Past its messages for the hour an account's alerts wait (pending, not lost), and nobody else's do.
async fn an_account_sends_at_most_its_hourly_messages_and_the_rest_wait(app: TestApp) {
    use costd::service::alerts::{deliver_due, AlertContext};
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let hook = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(receiver, hook).await.unwrap() });
    let context: Arc<Mutex<Option<AlertContext>>> = Default::default();
    let slot = context.clone();
    let Some(app) = TestApp::spawn_with(app.backend, move |s| {
        s.webhooks =
            costd::service::webhooks::WebhookClient::new(vec!["127.0.0.1".into()], std::time::Duration::from_secs(5));
        s.alert_messages_per_hour = 3;
        *slot.lock().unwrap() = Some(s.alert_context());
    })
    .await
    else {
        return;
    };
    let ctx = context.lock().unwrap().clone().unwrap();
    let (other, other_token) = app.other_account().await;
    let message = plain_message();
    let new = |account: &costd::model::token::AccountToken, i: usize| costd::store::NewNotification {
        account: account.clone(),
        source_token: format!("bdgt_alrt_{i}"),
        event_key: format!("k{i}"),
        recipient: format!("http://127.0.0.1:{port}/hook"),
        message: message.clone(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let mine: Vec<_> = (0..5).map(|i| new(&app.account.token, i)).collect();
    app.store.enqueue_notifications(&mine, now).await.unwrap();
    app.store.enqueue_notifications(&[new(&other.token, 9)], now).await.unwrap();
    assert_eq!(deliver_due(&ctx).await.unwrap(), 4, "three of mine, and the other account's");
    let statuses = |list: Vec<Value>| {
        let mut s: Vec<String> = list.iter().map(|d| d["status"].as_str().unwrap().to_string()).collect();
        s.sort();
        s
    };
    assert_eq!(statuses(deliveries(&app).await), ["delivered", "delivered", "delivered", "pending", "pending"]);
    let theirs = app.send(reqwest::Method::GET, "/v2/alert_deliveries", Some(&other_token), None).await;
    assert_eq!(statuses(theirs.body["alert_deliveries"].as_array().unwrap().clone()), ["delivered"]);
    assert_eq!(deliver_due(&ctx).await.unwrap(), 0, "the hour is full");
}

/// Bills arrive late: a spike three days back in a bill uploaded today is found today, once; the bill
/// restated (the same file again, the spike revised) finds it nowhere again.
async fn a_spike_in_a_late_bill_is_found_once_and_not_again_when_the_bill_is_restated(app: TestApp) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(app.backend, chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()).await
    else {
        return;
    };
    let bill = |spike: &str| {
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
        let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        for i in 0..59 {
            let day = first + chrono::Duration::days(i);
            let ec2 = if day == chrono::NaiveDate::from_ymd_opt(2024, 2, 26).unwrap() { spike } else { "100" };
            csv.push_str(&format!("Usage,{day},{ec2},EC2\n"));
        }
        csv.into_bytes()
    };
    let integration = token(&app.create_integration("cloud").await);
    let report = token(&created(&app, "/v2/cost_reports", json!({"title": "All"})).await);
    created(
        &app,
        "/v2/anomaly_notifications",
        json!({"cost_report_token": report, "threshold": 50, "recipient_channels": ["oncall@example.com"]}),
    )
    .await;
    assert_eq!(app.upload(&integration, "bill.csv", bill("1000")).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1), "found on the day it arrived");
    let found = app.get("/v2/anomaly_alerts").await.body["anomaly_alerts"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["day"].as_str(), found[0]["amount"].as_str()), (Some("2024-02-26"), Some("1000.0")));
    // The provider restates the bill: the day is found already, by any node, on any pass.
    assert_eq!(app.upload(&integration, "bill.csv", bill("900")).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "found once");
    assert_eq!(app.get("/v2/anomaly_alerts").await.body["anomaly_alerts"].as_array().unwrap().len(), 1);
}

/// Bills arrive late: a cost alert judges again each window that ended within 14 days (and after it was
/// made), and a budget alert the period that just ended, once each, however often the bill is restated.
/// The test's "today" is ahead of the real clock, so the alerts exist before the windows end.
async fn a_late_bill_is_judged_again_for_the_cost_alert_windows_and_budget_periods_it_restates(app: TestApp) {
    use chrono::Datelike;
    use costd::service::alerts::{run_pass, PassState};
    let made = chrono::Utc::now().date_naive();
    // A month that starts after the alerts are made; today is the 3rd of the month after.
    let first = (made + chrono::Duration::days(32)).with_day(1).unwrap();
    let next = (first + chrono::Duration::days(32)).with_day(1).unwrap();
    let today = next + chrono::Duration::days(2);
    let Some((app, ctx)) = spawn_alerting(app.backend, today).await else { return };
    // Every day of the month at 10; `late` adds a day of 500 five days before the month's end.
    let spike_day = next - chrono::Duration::days(5);
    let bill = |late: bool| {
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
        for day in first.iter_days().take_while(|d| *d < next) {
            let cost = if late && day == spike_day { "500" } else { "10" };
            csv.push_str(&format!("Usage,{day},{cost},EC2\n"));
        }
        csv.into_bytes()
    };
    let integration = token(&app.create_integration("cloud").await);
    let report = token(&created(&app, "/v2/cost_reports", json!({"title": "All"})).await);
    let alert = token(
        &created(
            &app,
            "/v2/cost_alerts",
            json!({"title": "Daily jump", "interval": "day", "threshold": 100, "unit_type": "currency",
                   "report_tokens": [report], "email_recipients": ["ops@example.com"]}),
        )
        .await,
    );
    let budget = token(
        &created(
            &app,
            "/v2/budgets",
            json!({"name": "Month", "cost_report_token": report, "periods": [{"start_at": first.to_string(), "amount": 400}]}),
        )
        .await,
    );
    created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [budget], "threshold": 100, "recipient_channels": ["finance@example.com"]}),
    )
    .await;
    assert_eq!(app.upload(&integration, "bill.csv", bill(false)).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "10 a day: at most 310 of 400");
    // The restated bill: a spike eight days before today, in a window that ended a week ago, and the
    // month (which ended two days ago) now over its budget.
    assert_eq!(app.upload(&integration, "bill.csv", bill(true)).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(2), "one email each");
    let events = app.get(&format!("/v2/cost_alerts/{alert}/events")).await.body["cost_alert_events"].clone();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["metadata"]["current_start"].as_str(), Some(spike_day.to_string().as_str()));
    // Judged again on every pass, and restated again: never a second firing.
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0));
    assert_eq!(app.upload(&integration, "bill.csv", bill(true)).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "once per window and period");
}

/// A report over USD and EUR costs: its budget's performance is refused in `/v2/costs`'s words, its alerts
/// are not judged (never euros added to dollars), and the account's other alerts still are.
async fn a_budget_over_costs_in_two_currencies_refuses_and_adds_no_euros_to_dollars(app: TestApp) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(app.backend, chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap()).await
    else {
        return;
    };
    let dollars =
        "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,BillingCurrency\nUsage,2024-03-05,600,EC2,USD\n";
    let euros =
        "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,BillingCurrency\nUsage,2024-03-06,500,VM,EUR\n";
    let aws = token(&app.create_integration("aws").await);
    let azure = token(&app.create_integration("azure").await);
    assert_eq!(app.upload(&aws, "usd.csv", dollars.as_bytes().to_vec()).await.status, 201);
    assert_eq!(app.upload(&azure, "eur.csv", euros.as_bytes().to_vec()).await.status, 201);
    let all = token(&created(&app, "/v2/cost_reports", json!({"title": "All"})).await);
    let ec2 =
        token(&created(&app, "/v2/cost_reports", json!({"title": "EC2", "filter": "costs.service = 'EC2'"})).await);
    let budget = |report: &str, name: &str| json!({"name": name, "cost_report_token": report, "periods": [{"start_at": "2024-03-01", "amount": 1000}]});
    let mixed = token(&created(&app, "/v2/budgets", budget(&all, "Mixed")).await);
    let usd = token(&created(&app, "/v2/budgets", budget(&ec2, "Dollars")).await);
    for b in [&mixed, &usd] {
        created(
            &app,
            "/v2/budget_alerts",
            json!({"budget_tokens": [b], "threshold": 50, "recipient_channels": [format!("{b}@example.com")]}),
        )
        .await;
    }
    let res = app.get(&format!("/v2/budgets/{mixed}?include_performance=true")).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.text.contains("the costs are in several currencies (") && res.text.contains("EUR"), "{}", res.text);
    let costs = app.get("/v2/costs?start_date=2024-03-01&end_date=2024-03-31").await;
    assert_eq!(costs.status, 422);
    assert_eq!(costs.body, res.body, "the same words as /v2/costs");
    // 600 USD of 1000 fires the dollars' alert; the mixed budget (600 USD + 500 EUR) is not judged.
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1));
    let sent = deliveries(&app).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["recipient"], format!("{usd}@example.com"));
}

async fn bad_budget_and_alert_bodies_are_400_naming_each_field(app: TestApp) {
    let (ec2, _) = arrange(&app).await;
    let res = app
        .post(
            "/v2/budgets",
            json!({"cost_report_token": "rprt_0000000000000000",
                   "periods": [{"start_at": "March", "amount": 1}, {"start_at": "2024-01-01", "amount": -1}]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    for needle in ["name is required", "periods[0].start_at", "periods[1].amount must not be negative"] {
        assert!(res.text.contains(needle), "{needle}: {}", res.text);
    }
    let res = app
        .post(
            "/v2/budgets",
            json!({"name": "x", "cost_report_token": "rprt_0000000000000000",
                                    "periods": [{"start_at": "2024-01-01", "amount": 1}]}),
        )
        .await;
    assert!(res.status == 400 && res.text.contains("no cost report rprt_0000000000000000"), "{}", res.text);
    let res = app
        .post(
            "/v2/budget_alerts",
            json!({"budget_tokens": [ec2, "bdgt_0000000000000000"], "threshold": 1001, "duration_in_days": "x",
                   "recipient_channels": ["#finance"]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    for needle in ["threshold must be", "duration_in_days", "recipient_channels[0]"] {
        assert!(res.text.contains(needle), "{needle}: {}", res.text);
    }
    let res = app.post("/v2/budget_alerts", json!({"budget_tokens": ["bdgt_0000000000000000"], "threshold": 50})).await;
    assert!(res.status == 400 && res.text.contains("no budget bdgt_0000000000000000"), "{}", res.text);
    // An alert is no mailing list: 21 recipients is one too many.
    let many: Vec<String> = (0..21).map(|i| format!("ops{i}@example.com")).collect();
    let res = app
        .post("/v2/budget_alerts", json!({"budget_tokens": [ec2], "threshold": 50, "recipient_channels": many}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("at most 20 recipients"), "{}", res.text);
    assert_eq!(app.get("/v2/budget_alerts").await.body["budget_alerts"], json!([]), "nothing stored");
}

/// A webhook receiver in its own process (`tests/receiver/webhook_receiver.py`): it checks each call's
/// signature, drops a repeated delivery, logs every call to a file that outlives it, and can crash on a call
/// after it has recorded it and before it answers.
struct Receiver {
    child: tokio::process::Child,
}

/// What the receiver logged: (outcome, delivery id, body).
fn received(log: &std::path::Path) -> Vec<(String, String, Value)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["outcome"].as_str().unwrap().into(), v["delivery"].as_str().unwrap().into(), v["body"].clone())
        })
        .collect()
}

impl Receiver {
    async fn start(port: u16, secret: &str, log: &std::path::Path, die_on: Option<u32>) -> Receiver {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receiver/webhook_receiver.py");
        let mut command = tokio::process::Command::new("python3");
        command.arg(script).args(["--port", &port.to_string(), "--secret", secret]).arg("--log").arg(log);
        if let Some(n) = die_on {
            command.args(["--die-on", &n.to_string()]);
        }
        let mut child = command.kill_on_drop(true).spawn().expect("python3 runs the webhook receiver");
        for _ in 0..200 {
            // Something answering while the receiver has ended is another socket on the port, not the receiver.
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the webhook receiver ended at start ({status}): port {port} was taken");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Receiver { child };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the webhook receiver did not listen on {port}");
    }

    /// Whether it has ended by itself (crashed).
    fn has_died(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test]
async fn a_budget_alert_is_delivered_once_through_a_receiver_outage_on_sqlite() {
    delivered_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_budget_alert_is_delivered_once_through_a_receiver_outage_on_postgres() {
    delivered_once(Backend::Postgres).await;
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let res = app.get("/v2/alert_deliveries").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["alert_deliveries"].as_array().unwrap().clone()
}

async fn delivered_once(backend: Backend) {
    use costd::service::alerts::{deliver_due, run_pass, AlertContext, PassState};
    let smtp = smtp_server().await;
    let mailer = costd::mail::Mailer::new(&smtp.url(), "costd <alerts@costd.example>").unwrap();
    // The receiver's port, held (bound, not listening: a call to it is refused, as to a receiver that is down)
    // until the receiver starts, so no other test's socket takes it meanwhile.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let context: Arc<Mutex<Option<AlertContext>>> = Default::default();
    let slot = context.clone();
    let Some(app) = TestApp::spawn_with(backend, move |s| {
        s.today = Arc::new(|| chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap());
        s.mailer = Some(Arc::new(mailer));
        s.public_url = Some("https://costd.example".into());
        s.webhooks = costd::service::webhooks::WebhookClient::new(
            vec![format!("127.0.0.1:{port}")],
            std::time::Duration::from_secs(2),
        );
        s.alert_retry_base = std::time::Duration::from_millis(1);
        *slot.lock().unwrap() = Some(s.alert_context());
    })
    .await
    else {
        return;
    };
    let ctx = context.lock().unwrap().clone().unwrap();
    let (ec2, all) = arrange(&app).await;
    let hook = format!("http://127.0.0.1:{port}/hook");
    created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [ec2], "threshold": 50, "duration_in_days": "",
               "recipient_channels": [hook, "ops@example.com"]}),
    )
    .await;
    // Not reached: 510.3 of 2000.5 is 25.5%.
    created(&app, "/v2/budget_alerts", json!({"budget_tokens": [all], "threshold": 60, "recipient_channels": [hook]}))
        .await;

    // EC2 spent 500.1 of 1000 in March: past 50%. One message per recipient, written once however often
    // the alerts are evaluated (a new process's full pass included).
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(2));
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0));

    // The receiver is down: the email goes, the webhook waits with its error.
    assert_eq!(deliver_due(&ctx).await.unwrap(), 2);
    let listed = deliveries(&app).await;
    let webhook = listed.iter().find(|d| d["recipient"].as_str().unwrap().starts_with("http")).unwrap();
    assert_eq!((webhook["status"].as_str(), webhook["attempts"].as_i64()), (Some("pending"), Some(1)), "{webhook}");
    assert_eq!(webhook["recipient"], "http://127.0.0.1/…", "a webhook's path is not shown");
    assert!(webhook["last_error"].as_str().unwrap().contains("127.0.0.1"), "{webhook}");
    let email = listed.iter().find(|d| d["recipient"] == "ops@example.com").unwrap();
    assert_eq!(email["status"], "delivered", "{email}");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["to"], "ops@example.com");
    assert!(mail[0]["subject"].as_str().unwrap().contains("Budget EC2 reached 50.0%"), "{mail:?}");

    // It comes back, receives the message (signed, with the numbers that fired it), records it and crashes
    // before answering: costd cannot know it arrived, so the attempt counts as failed.
    let secret = app.get("/v2/webhook_signing_secret").await.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received.jsonl");
    drop(reserved);
    let mut receiver = Receiver::start(port, &secret, &log, Some(1)).await;
    assert_eq!(deliver_due(&ctx).await.unwrap(), 1);
    for _ in 0..100 {
        if receiver.has_died() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(receiver.has_died(), "the receiver crashed on its first call");
    let webhook =
        deliveries(&app).await.into_iter().find(|d| d["recipient"].as_str().unwrap().starts_with("http")).unwrap();
    assert_eq!((webhook["status"].as_str(), webhook["attempts"].as_i64()), (Some("pending"), Some(2)), "{webhook}");
    let got = received(&log);
    assert_eq!(got.len(), 1, "{got:?}");
    let (outcome, delivery, body) = got[0].clone();
    assert_eq!(outcome, "accepted", "signed with the account's secret");
    assert_eq!(body["id"].as_str(), Some(delivery.as_str()));
    assert_eq!(body["event"], "budget_alert");
    assert_eq!(
        (body["data"]["actual"].as_str(), body["data"]["amount"].as_str(), body["data"]["period_start"].as_str()),
        (Some("500.1"), Some("1000.0"), Some("2024-03-01"))
    );
    assert_eq!(body["link"], format!("https://costd.example/#/budgets?budget={ec2}"));

    // Restarted, it gets the message again and recognises it by its delivery id: at least once on the wire,
    // once for the receiver.
    let receiver = Receiver::start(port, &secret, &log, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(deliver_due(&ctx).await.unwrap(), 1);
    let got = received(&log);
    assert_eq!(
        got.iter().map(|(o, d, _)| (o.as_str(), d.as_str())).collect::<Vec<_>>(),
        vec![("accepted", delivery.as_str()), ("duplicate", delivery.as_str())]
    );
    let webhook = deliveries(&app).await.into_iter().find(|d| d["token"] == delivery.as_str()).unwrap();
    assert_eq!((webhook["status"].as_str(), webhook["attempts"].as_i64()), (Some("delivered"), Some(3)), "{webhook}");
    assert_eq!(webhook["last_error"], Value::Null);

    // Nothing is sent again: evaluated and delivered again, the receiver has had no new call.
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0));
    assert_eq!(deliver_due(&ctx).await.unwrap(), 0);
    receiver.stop().await;
    assert_eq!(received(&log).len(), 2);

    // A pass after the first looks only at accounts whose costs changed since: nothing new, nothing
    // evaluated; an upload that takes EC2 to 900.1 fires a 90% alert on the next pass.
    let mut pass = PassState::default();
    assert_eq!(run_pass(&ctx, &mut pass).await.unwrap(), Some(0));
    created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [ec2], "threshold": 90, "recipient_channels": ["ops@example.com"]}),
    )
    .await;
    assert_eq!(run_pass(&ctx, &mut pass).await.unwrap(), Some(0), "no costs changed since the last pass");
    let integration = app.get("/v2/integrations").await.body["integrations"][0]["token"].as_str().unwrap().to_string();
    let more = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-03-15,400,EC2\n";
    assert_eq!(app.upload(&integration, "more.csv", more.as_bytes().to_vec()).await.status, 201);
    assert_eq!(run_pass(&ctx, &mut pass).await.unwrap(), Some(1));
    assert_eq!(deliver_due(&ctx).await.unwrap(), 1);
    let mail = smtp.messages();
    assert!(mail.iter().any(|m| m["subject"].as_str().unwrap().contains("90.0%")), "{mail:?}");

    // A managed account's budget on the MSP's integration: the MSP's upload changes its costs too.
    let managed = app
        .create_managed_account(json!({"name": "Customer", "contact_email": "ops@customer.example",
                                       "access_credential_tokens": [integration]}))
        .await;
    let customer = app.mint_for(managed["token"].as_str().unwrap(), "read,write").await;
    let as_customer = |path: &str, body: Value| {
        let (app, customer, path) = (&app, customer.clone(), path.to_string());
        async move {
            let res = app.send(reqwest::Method::POST, &path, Some(&customer), Some(body.to_string())).await;
            assert_eq!(res.status, 201, "{path}: {}", res.text);
            token(&res.body)
        }
    };
    let report = as_customer("/v2/cost_reports", json!({"title": "Everything"})).await;
    let budget = as_customer(
        "/v2/budgets",
        json!({"name": "Customer March", "cost_report_token": report, "periods": [{"start_at": "2024-03-01", "amount": 1500}]}),
    )
    .await;
    as_customer(
        "/v2/budget_alerts",
        json!({"budget_tokens": [budget], "threshold": 100, "recipient_channels": ["cfo@customer.example"]}),
    )
    .await;
    assert_eq!(run_pass(&ctx, &mut pass).await.unwrap(), Some(0), "910.3 of 1500: not yet");
    let more = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-03-16,600,S3\n";
    assert_eq!(app.upload(&integration, "even-more.csv", more.as_bytes().to_vec()).await.status, 201);
    // The customer's 1510.3 of 1500, seen through the MSP's upload; and the MSP's own "All" at 75.5%, past 60%.
    assert_eq!(run_pass(&ctx, &mut pass).await.unwrap(), Some(2));

    // A webhook into the operator's network is refused at once, without retries.
    created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [all], "threshold": 10, "recipient_channels": ["http://127.0.0.1:1/inside"]}),
    )
    .await;
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1));
    assert_eq!(deliver_due(&ctx).await.unwrap(), 3, "the refused one, the customer's email, the MSP's webhook");
    let mail = smtp.messages();
    assert!(mail.iter().any(|m| m["to"] == "cfo@customer.example"), "{mail:?}");
    let refused = deliveries(&app).await.into_iter().find(|d| d["status"] == "failed").unwrap();
    assert_eq!(refused["attempts"], 1);
    assert!(refused["last_error"].as_str().unwrap().contains("--allow-webhook-host"), "{refused}");
}

/// A server whose today is `today`, with its alerts' context (the tests run the passes themselves).
async fn spawn_alerting(
    backend: Backend,
    today: chrono::NaiveDate,
) -> Option<(TestApp, costd::service::alerts::AlertContext)> {
    let context: Arc<Mutex<Option<costd::service::alerts::AlertContext>>> = Default::default();
    let slot = context.clone();
    let app = TestApp::spawn_with(backend, move |s| {
        s.today = Arc::new(move || today);
        *slot.lock().unwrap() = Some(s.alert_context());
    })
    .await?;
    let ctx = context.lock().unwrap().clone().unwrap();
    Some((app, ctx))
}

#[tokio::test]
async fn a_cost_alert_fires_once_per_window_and_records_its_event_on_sqlite() {
    cost_alert_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_cost_alert_fires_once_per_window_and_records_its_event_on_postgres() {
    cost_alert_events(Backend::Postgres).await;
}

async fn cost_alert_events(backend: Backend) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(backend, chrono::NaiveDate::from_ymd_opt(2024, 4, 2).unwrap()).await else {
        return;
    };
    arrange(&app).await;
    let reports = app.get("/v2/cost_reports").await.body["cost_reports"].as_array().unwrap().clone();
    let all = reports.iter().find(|r| r["title"] == "All").map(token).unwrap();
    // March 510.3 against February 50: up 460.3, 920.6%.
    let rising = created(
        &app,
        "/v2/cost_alerts",
        json!({"title": "Monthly jump", "interval": "month", "threshold": 100, "unit_type": "percentage",
               "minimum_threshold": 100.5, "report_tokens": [all], "email_recipients": ["ops@example.com"]}),
    )
    .await;
    assert_eq!((rising["threshold"].clone(), rising["minimum_threshold"].clone()), (json!(100.0), json!(100.5)));
    assert_eq!((rising["interval"].as_str(), rising["unit_type"].as_str()), (Some("month"), Some("percentage")));
    let r = token(&rising);
    assert!(r.starts_with("cst_alrt_"), "{r}");
    let quiet = created(
        &app,
        "/v2/cost_alerts",
        json!({"title": "Big jump", "interval": "month", "threshold": 1000, "unit_type": "currency", "report_tokens": [all]}),
    )
    .await;
    let q = token(&quiet);

    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1), "one email");
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "written once");
    let events = app.get(&format!("/v2/cost_alerts/{r}/events")).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let list = events.body["cost_alert_events"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", events.text);
    let e = &list[0];
    assert_eq!(
        (e["alert_token"].as_str(), e["report_token"].as_str(), e["alert_type"].as_str()),
        (Some(r.as_str()), Some(all.as_str()), Some("cost_alert"))
    );
    assert_eq!(
        (
            e["metadata"]["current_amount"].as_str(),
            e["metadata"]["previous_amount"].as_str(),
            e["metadata"]["change"].as_str()
        ),
        (Some("510.3"), Some("50.0"), Some("460.3"))
    );
    assert_eq!(
        (e["metadata"]["current_start"].as_str(), e["metadata"]["previous_end"].as_str()),
        (Some("2024-03-01"), Some("2024-02-29"))
    );
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .contains("rose from 50.0 to 510.3 USD (+460.3, 920.6%) for the month of 2024-03-01 to 2024-03-31"),
        "{e}"
    );
    let shown = app.get(&format!("/v2/cost_alerts/{r}/events/{}", token(e))).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(app.get(&format!("/v2/cost_alerts/{q}/events/{}", token(e))).await.status, 404, "another alert's event");
    assert_eq!(app.get(&format!("/v2/cost_alerts/{q}/events")).await.body["cost_alert_events"], json!([]));
    let other_report = reports.iter().find(|x| x["title"] == "EC2").map(token).unwrap();
    let none = app.get(&format!("/v2/cost_alerts/{r}/events?report_token={other_report}")).await;
    assert_eq!(none.body["cost_alert_events"], json!([]));
    let delivered = deliveries(&app).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(
        (delivered[0]["budget_alert_token"].as_str(), delivered[0]["status"].as_str()),
        (Some(r.as_str()), Some("pending"))
    );

    // A monthly report notification: March against February, once.
    let summary = created(
        &app,
        "/v2/report_notifications",
        json!({"title": "Monthly cloud", "cost_report_token": all, "frequency": "monthly", "change": "dollars",
               "recipient_channels": ["finance@example.com"]}),
    )
    .await;
    assert_eq!((summary["frequency"].as_str(), summary["change"].as_str()), (Some("monthly"), Some("dollars")));
    assert!(token(&summary).starts_with("rprt_ntfctn_"));
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1));
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "once a month");
    let sent = deliveries(&app).await.into_iter().find(|d| d["recipient"] == "finance@example.com").unwrap();
    assert_eq!(sent["subject"], "Monthly cloud (monthly summary): +460.3 USD");
    let res = app
        .post(
            "/v2/report_notifications",
            json!({"title": "x", "cost_report_token": all, "frequency": "hourly", "change": "euros"}),
        )
        .await;
    assert!(
        res.status == 400 && res.text.contains("frequency must be") && res.text.contains("change must be"),
        "{}",
        res.text
    );
    let weekly =
        app.put(&format!("/v2/report_notifications/{}", token(&summary)), json!({"frequency": "weekly"})).await;
    assert_eq!(
        (weekly.status, weekly.body["frequency"].as_str(), weekly.body["change"].as_str()),
        (200, Some("weekly"), Some("dollars"))
    );
    assert_eq!(app.delete(&format!("/v2/report_notifications/{}", token(&summary))).await.status, 204);

    // Bad bodies, by field; updates keep what they do not name.
    let res = app
        .post(
            "/v2/cost_alerts",
            json!({"title": "x", "interval": "hour", "threshold": 0, "unit_type": "currency",
                                         "report_tokens": [all], "slack_channels": ["#finops"]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    for needle in
        ["interval must be", "threshold must be more than 0", "slack_channels[0] must be an incoming-webhook URL"]
    {
        assert!(res.text.contains(needle), "{needle}: {}", res.text);
    }
    let res = app
        .post(
            "/v2/cost_alerts",
            json!({"title": "x", "interval": "day", "threshold": 1, "unit_type": "currency",
                                                  "report_tokens": ["rprt_0000000000000000"]}),
        )
        .await;
    assert!(res.status == 400 && res.text.contains("no cost report rprt_0000000000000000"), "{}", res.text);
    let moved = app.put(&format!("/v2/cost_alerts/{q}"), json!({"threshold": 400})).await;
    assert_eq!(
        (moved.status, moved.body["threshold"].clone(), moved.body["unit_type"].as_str()),
        (200, json!(400.0), Some("currency"))
    );
    assert_eq!(
        run_pass(&ctx, &mut PassState::default()).await.unwrap(),
        Some(0),
        "no recipients: an event, no message"
    );
    assert_eq!(
        app.get(&format!("/v2/cost_alerts/{q}/events")).await.body["cost_alert_events"].as_array().unwrap().len(),
        1
    );

    // Deleting an alert takes its events along.
    assert_eq!(app.delete(&format!("/v2/cost_alerts/{r}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/cost_alerts/{r}")).await.status, 404);
    assert_eq!(app.get(&format!("/v2/cost_alerts/{r}/events/{}", token(e))).await.status, 404);
}

#[tokio::test]
async fn an_anomaly_is_found_once_and_tax_is_never_one_on_sqlite() {
    anomalies(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_anomaly_is_found_once_and_tax_is_never_one_on_postgres() {
    anomalies(Backend::Postgres).await;
}

async fn anomalies(backend: Backend) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(backend, chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()).await else {
        return;
    };
    // Eight weeks of EC2 at 100 a day (±1), S3 at 20 and tax at 10; on 28 February EC2 costs 400, S3 20.5,
    // and the tax 900 (a tax is never an anomaly: only usage is judged).
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
    let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for i in 0..59 {
        let day = first + chrono::Duration::days(i);
        let ec2 = if i == 58 { "400".to_string() } else { format!("{}", 99 + i % 3) };
        let s3 = if i == 58 { "20.5" } else { "20" };
        let tax = if i == 58 { "900" } else { "10" };
        csv.push_str(&format!("Usage,{day},{ec2},EC2\nUsage,{day},{s3},S3\nTax,{day},{tax},Tax\n"));
    }
    let integration = token(&app.create_integration("cloud").await);
    assert_eq!(app.upload(&integration, "costs.csv", csv.into_bytes()).await.status, 201);
    let report = token(&created(&app, "/v2/cost_reports", json!({"title": "All"})).await);
    let note = created(
        &app,
        "/v2/anomaly_notifications",
        json!({"cost_report_token": report, "threshold": 50, "recipient_channels": ["oncall@example.com"]}),
    )
    .await;
    assert_eq!((note["threshold"].as_u64(), note["cost_report_token"].as_str()), (Some(50), Some(report.as_str())));
    let res = app.post("/v2/anomaly_notifications", json!({"cost_report_token": "rprt_0000000000000000"})).await;
    assert!(res.status == 400 && res.text.contains("no cost report"), "{}", res.text);

    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1), "EC2 alone, to one recipient");
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "found once");
    let listed = app.get("/v2/anomaly_alerts").await.body["anomaly_alerts"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let a = &listed[0];
    assert_eq!(
        (
            a["service"].as_str(),
            a["amount"].as_str(),
            a["previous_amount"].as_str(),
            a["day"].as_str(),
            a["status"].as_str()
        ),
        (Some("EC2"), Some("400.0"), Some("100.0"), Some("2024-02-28"), Some("active"))
    );
    assert_eq!(a["cost_report_token"], report.as_str());
    // costd's own: the band's top, which the 400 went over (a flat 100 a day: the band is its 5% floor).
    assert_eq!(a["expected_upper"], "105.0");
    let t = token(a);
    let archived = app
        .put(&format!("/v2/anomaly_alerts/{t}"), json!({"status": "archived", "feedback": "a planned load test"}))
        .await;
    assert_eq!(
        (archived.status, archived.body["status"].as_str(), archived.body["feedback"].as_str()),
        (200, Some("archived"), Some("a planned load test"))
    );
    let res = app.put(&format!("/v2/anomaly_alerts/{t}"), json!({"status": "gone"})).await;
    assert!(res.status == 400 && res.text.contains("status must be"), "{}", res.text);
    let sent = deliveries(&app).await;
    assert!(sent[0]["subject"].as_str().unwrap().contains("Cost anomaly: EC2"), "{sent:?}");
    // A threshold above the rise (300) finds nothing new; the notification can be changed and deleted.
    let n = token(&note);
    let raised = app.put(&format!("/v2/anomaly_notifications/{n}"), json!({"threshold": 500})).await;
    assert_eq!(raised.body["threshold"].as_u64(), Some(500));
    assert_eq!(app.delete(&format!("/v2/anomaly_notifications/{n}")).await.status, 204);
}

#[tokio::test]
async fn a_forecast_alert_warns_early_and_a_grouped_cost_alert_judges_each_group_on_sqlite() {
    forecasts_and_groups(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_forecast_alert_warns_early_and_a_grouped_cost_alert_judges_each_group_on_postgres() {
    forecasts_and_groups(Backend::Postgres).await;
}

/// Today is Wednesday 2024-03-20. EC2 costs 10 a day since February. S3 costs 5 a day, and 100 more on
/// 2024-03-15; RDS costs 20 a day until 2024-03-10 and nothing after. So last week (03-11..03-17) against
/// the week before, S3 rose from 35 to 135 while the whole fell from 245 to 205.
async fn forecasts_and_groups(backend: Backend) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(backend, chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap()).await else {
        return;
    };
    let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
    let first = chrono::NaiveDate::from_ymd_opt(2024, 2, 1).unwrap();
    for day in first.iter_days().take_while(|d| *d <= chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap()) {
        csv.push_str(&format!("Usage,{day},10,EC2\nUsage,{day},5,S3\n"));
        if day <= chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap() {
            csv.push_str(&format!("Usage,{day},20,RDS\n"));
        }
    }
    csv.push_str("Usage,2024-03-15,100,S3\n");
    let integration = token(&app.create_integration("cloud").await);
    assert_eq!(app.upload(&integration, "costs.csv", csv.into_bytes()).await.status, 201);
    let ec2 =
        token(&created(&app, "/v2/cost_reports", json!({"title": "EC2", "filter": "costs.service = 'EC2'"})).await);
    let by_service =
        token(&created(&app, "/v2/cost_reports", json!({"title": "By service", "groupings": "service"})).await);
    let whole = token(&created(&app, "/v2/cost_reports", json!({"title": "Whole"})).await);

    // EC2 spent 200 of 400 by the 20th (50%); with the forecast's 11 × 10 for the rest of March, 310 (77.5%).
    let budget = token(
        &created(
            &app,
            "/v2/budgets",
            json!({"name": "EC2", "cost_report_token": ec2, "periods": [{"start_at": "2024-03-01", "amount": 400}]}),
        )
        .await,
    );
    let forecast = app
        .get(&format!(
            "/v2/cost_reports/{ec2}/forecasted_costs?start_date=2024-03-21&end_date=2024-03-31&provider=all&service=all"
        ))
        .await;
    let days: Vec<&str> =
        forecast.body["forecasted_costs"].as_array().unwrap().iter().map(|f| f["amount"].as_str().unwrap()).collect();
    assert_eq!(days.len(), 11, "{}", forecast.text);
    assert!(days.iter().all(|a| a.parse::<f64>() == Ok(10.0)), "{days:?}");
    let early = created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [budget], "threshold": 75, "based_on": "forecast",
               "recipient_channels": ["forecast@example.com"]}),
    )
    .await;
    assert_eq!(early["based_on"], "forecast");
    let late = created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [budget], "threshold": 75, "recipient_channels": ["actual@example.com"]}),
    )
    .await;
    assert_eq!(late["based_on"], "actual", "Vantage's body, as its clients send it");
    let res = app.put(&format!("/v2/budget_alerts/{}", token(&late)), json!({"based_on": "hope"})).await;
    assert!(res.status == 400 && res.text.contains("based_on must be actual or forecast"), "{}", res.text);

    // Weekly cost alerts: per service on the grouped report, on the total of the other.
    let grouped = token(
        &created(
            &app,
            "/v2/cost_alerts",
            json!({"title": "Weekly jump", "interval": "week", "threshold": 50, "unit_type": "percentage",
                   "minimum_threshold": 20, "report_tokens": [by_service, whole],
                   "email_recipients": ["ops@example.com"]}),
        )
        .await,
    );

    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(2), "the forecast's and S3's");
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(0), "written once");
    let sent = deliveries(&app).await;
    let warned = sent.iter().find(|d| d["recipient"] == "forecast@example.com").expect("the forecast alert fired");
    assert_eq!(warned["subject"], "Budget EC2 is forecast to reach 77.5% of its amount", "{warned}");
    assert!(sent.iter().all(|d| d["recipient"] != "actual@example.com"), "50% spent is under 75%: {sent:?}");

    let events = app.get(&format!("/v2/cost_alerts/{grouped}/events")).await.body["cost_alert_events"].clone();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "S3 alone rose; the whole fell: {events:?}");
    let e = &events[0];
    assert_eq!(e["report_token"], by_service.as_str());
    assert_eq!(e["metadata"]["group"], json!({"service": "S3"}));
    assert_eq!(
        (e["metadata"]["previous_amount"].as_str(), e["metadata"]["current_amount"].as_str()),
        (Some("35.0"), Some("135.0"))
    );
    assert!(e["description"].as_str().unwrap().starts_with("By service (service=S3) rose from 35.0 to 135.0"), "{e}");
    let mail = sent.iter().find(|d| d["recipient"] == "ops@example.com").unwrap();
    assert_eq!(mail["subject"], "Weekly jump: By service (service=S3) cost up 285.7%", "{mail}");
}

#[tokio::test]
async fn user_tokens_reach_the_users_addresses_and_unknown_ones_are_refused_on_sqlite() {
    users_as_recipients(Backend::Sqlite).await;
}

#[tokio::test]
async fn user_tokens_reach_the_users_addresses_and_unknown_ones_are_refused_on_postgres() {
    users_as_recipients(Backend::Postgres).await;
}

/// `user_tokens` on a budget alert, a report notification and an anomaly notification name users of the
/// caller's directory; their messages go to the users' addresses.
async fn users_as_recipients(backend: Backend) {
    use costd::service::alerts::{run_pass, PassState};
    let Some((app, ctx)) = spawn_alerting(backend, chrono::NaiveDate::from_ymd_opt(2024, 4, 2).unwrap()).await else {
        return;
    };
    let (ec2, _) = arrange(&app).await;
    let user = costd::model::user::NewUser::parse("Finance@Example.com", Some("Finance"), None).unwrap();
    let finance = app.store.create_user(&app.account.token, &user).await.unwrap();
    let duplicate = app.store.create_user(&app.account.token, &user).await.unwrap_err();
    assert!(costd::store::unique_violation(&duplicate).is_some(), "{duplicate:#}");
    // Another account's user is not this account's.
    let other = app.store.create_account("Other", None).await.unwrap();
    let stranger = app
        .store
        .create_user(&other.token, &costd::model::user::NewUser::parse("x@example.com", None, None).unwrap())
        .await
        .unwrap();
    assert_eq!(app.get(&format!("/v2/users/{}", stranger.token)).await.status, 404);
    let listed = app.get("/v2/users").await.body;
    assert_eq!(listed["users"].as_array().unwrap().len(), 1, "{listed}");

    let res = app
        .post(
            "/v2/budget_alerts",
            json!({"budget_tokens": [ec2], "threshold": 10, "user_tokens": [finance.token, stranger.token]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains(&format!("user_tokens[1]: no user {} in this account", stranger.token)), "{}", res.text);
    let reports = app.get("/v2/cost_reports").await.body["cost_reports"].as_array().unwrap().clone();
    let all = reports.iter().find(|r| r["title"] == "All").map(token).unwrap();
    let res = app
        .post(
            "/v2/report_notifications",
            json!({"title": "x", "cost_report_token": all, "frequency": "monthly", "change": "dollars",
                   "user_tokens": ["usr_0000000000000000"]}),
        )
        .await;
    assert!(res.status == 400 && res.text.contains("user_tokens[0]: no user"), "{}", res.text);
    let res = app.post("/v2/anomaly_notifications", json!({"cost_report_token": all, "user_tokens": ["usr_x"]})).await;
    assert!(res.status == 400 && res.text.contains("user_tokens[0]: no user"), "{}", res.text);

    // The EC2 budget's March (500.1 of 1000) is past; April has nothing yet, so use a notification and an
    // alert on a budget with an April period.
    let april = token(
        &created(
            &app,
            "/v2/budgets",
            json!({"name": "Q2", "cost_report_token": all, "periods": [{"start_at": "2024-04-01", "amount": 0}]}),
        )
        .await,
    );
    let alert = created(
        &app,
        "/v2/budget_alerts",
        json!({"budget_tokens": [april], "threshold": 10, "user_tokens": [finance.token],
               "recipient_channels": ["finance@example.com"]}),
    )
    .await;
    assert_eq!(alert["user_tokens"], json!([finance.token]));
    created(
        &app,
        "/v2/report_notifications",
        json!({"title": "Monthly", "cost_report_token": all, "frequency": "monthly", "change": "dollars",
               "user_tokens": [finance.token]}),
    )
    .await;
    // April's budget has no spend yet: only the monthly summary goes, to the user's address, once.
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1));
    let integration = app.get("/v2/integrations").await.body["integrations"][0]["token"].as_str().unwrap().to_string();
    let more = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\nUsage,2024-04-01,5,EC2\n";
    assert_eq!(app.upload(&integration, "april.csv", more.as_bytes().to_vec()).await.status, 201);
    // The zero budget fires on any spend: one message, though the address is both a channel and the user's.
    assert_eq!(run_pass(&ctx, &mut PassState::default()).await.unwrap(), Some(1));
    let sent: Vec<(String, String)> = deliveries(&app)
        .await
        .iter()
        .map(|d| (d["recipient"].as_str().unwrap().to_string(), d["subject"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|(to, _)| to == "finance@example.com"), "{sent:?}");
    assert!(sent.iter().any(|(_, s)| s.starts_with("Monthly (monthly summary)")), "{sent:?}");
    assert!(sent.iter().any(|(_, s)| s.starts_with("Budget Q2 reached")), "{sent:?}");
}
