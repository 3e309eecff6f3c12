//! The security review's findings, each as a client would meet it: stalled bodies and half-sent requests
//! are cut off, uploads per tenant are bounded, groupings are capped, a custom rule cannot blow up a plan.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{on_both_stores, Backend, TestApp};
use crate::uploads::{csv, HEADER};

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_head_is_closed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let limits =
        costd::http::ConnectionLimits { header_read_timeout: Duration::from_millis(500), ..Default::default() };
    tokio::spawn(costd::http::serve_with(listener, app, std::future::pending(), limits));

    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: costd\r\nX-Half: ").await.unwrap();
    // A whole request on another connection is answered meanwhile.
    let ok = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the half-sent request still holds its connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A multipart upload whose body sends its first lines and then nothing, for ever.
fn stalled_upload(app: &TestApp, integration: &str) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let first = format!("{HEADER}\nUsage,2024-09-01,1.25,EC2,us-east-1\n");
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(futures::stream::pending());
    let form = reqwest::multipart::Form::new()
        .part("csv", reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body)).file_name("stalled.csv"));
    let req = app
        .client
        .post(format!("{}/v2/integrations/{integration}/costs.csv", app.base_url))
        .bearer_auth(&app.token)
        .multipart(form)
        .send();
    tokio::spawn(req)
}

use futures::StreamExt;

on_both_stores!(stalled_uploads_are_cut_off_and_hold_only_their_own_tenants_slots);

async fn stalled_uploads_are_cut_off_and_hold_only_their_own_tenants_slots(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let slots = std::sync::Arc::new(costd::service::slots::UploadSlots::new(1, 8));
    let Some(app) = TestApp::spawn_with(backend, |state| {
        state.body_idle_timeout = Duration::from_secs(2);
        state.upload_slots = slots.clone();
    })
    .await
    else {
        return;
    };
    let integration = app.create_integration("Stalled").await["token"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let stalled = stalled_upload(&app, &integration);
    // Until the stalled upload holds its slot.
    while slots.overall.available_permits() == 8 {
        assert!(started.elapsed() < Duration::from_secs(30), "the stalled upload never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The tenant's one slot is taken: its next upload hears so at once.
    let second = app.upload(&integration, "second.csv", csv(2).into_bytes()).await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert!(second.error_text().contains("uploads in progress"), "{}", second.text);
    // Another tenant uploads as if nothing happened.
    let (other, other_token) = app.other_account().await;
    let _ = other;
    let res = app
        .client
        .post(format!("{}/v2/integrations/custom_provider", app.base_url))
        .bearer_auth(&other_token)
        .json(&json!({"name": "Other"}))
        .send()
        .await
        .unwrap();
    let other_integration = res.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let res = app.upload_as(&other_token, &other_integration, "theirs.csv", csv(3).into_bytes()).await;
    assert_eq!(res.status, 201, "{}", res.text);

    // The stalled body is cut off after its idle time, with a client error; nothing of it is recorded.
    let stalled = tokio::time::timeout(Duration::from_secs(30), stalled).await.expect("the stalled upload ends");
    if let Ok(Ok(res)) = stalled {
        assert_eq!(res.status(), 400, "{}", res.text().await.unwrap_or_default());
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let listed = app.get(&format!("/v2/integrations/{integration}/costs")).await;
    assert_eq!(listed.body["user_costs_uploads"].as_array().unwrap().len(), 0, "{}", listed.text);
    assert!(app.store.file_intents().await.unwrap().is_empty());
    // Its slot is free again.
    let again = app.upload(&integration, "again.csv", csv(2).into_bytes()).await;
    assert_eq!(again.status, 201, "{}", again.text);
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_a_tls_proxy_without_a_public_url() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let sign_in = |proto: Option<&'static str>| {
        let mut req = app.client.post(format!("{}/console/session", app.base_url)).json(&json!({"token": app.token}));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 201);
            res.headers()["set-cookie"].to_str().unwrap().to_string()
        }
    };
    assert!(sign_in(Some("https")).await.contains("; Secure"));
    assert!(!sign_in(None).await.contains("Secure"), "plain HTTP on localhost keeps working");
}
