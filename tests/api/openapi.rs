//! `GET /v2/openapi.json` lists exactly what costd serves: every documented operation reaches a handler
//! (never the router's "no such path" 404 or its 405), and every route the HTTP modules declare is
//! documented (read from their `router()` functions).

use std::collections::BTreeSet;

use reqwest::Method;

use crate::helpers::{Backend, TestApp};

/// (METHOD, /v2 path) of every route in `src/http/*.rs`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
    let method = regex::Regex::new(r"\b(get|post|put|delete)\(\w+\)").unwrap();
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // The web console (`src/http/console/`) serves pages and its session outside `/v2`: no API operations.
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let Some(start) = text.find("fn router()") else { continue };
        let body = &text[start..];
        let body = &body[..body.find("\n}\n").unwrap()];
        for chunk in body.split(".route(").skip(1) {
            let path = route.captures(&format!(".route({chunk}")).unwrap()[1].to_string();
            for m in method.captures_iter(chunk) {
                found.insert((m[1].to_uppercase(), format!("/v2{path}")));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_costd_serves() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // Public, like Vantage's own document.
    let res = app.send(Method::GET, "/v2/openapi.json", None, None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let doc = res.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "costd");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["operationId"].is_string() && op["responses"].is_object(), "{method} {path}: {op}");
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    // Authenticated operations name the errors they share; the document itself needs no token.
    let list = &doc["paths"]["/v2/workspaces"]["get"];
    assert!(list["responses"]["200"].is_object() && list["responses"]["401"].is_object(), "{list}");
    assert_eq!(doc["paths"]["/v2/openapi.json"]["get"]["security"], serde_json::json!([{}]));
    let mut declared = declared_routes();
    declared.insert(("GET".into(), "/v2/openapi.json".into()));
    assert!(declared.len() > 60, "{declared:?}");
    assert_eq!(documented, declared, "documented vs declared routes");

    // Each documented operation reaches its handler.
    let placeholder = regex::Regex::new(r"\{[^}]+\}").unwrap();
    for (method, path) in &documented {
        let concrete = placeholder.replace_all(path, "x0000000000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST || method == Method::PUT).then(|| "{}".to_string());
        let res = app.send(method.clone(), &concrete, Some(&app.token), body).await;
        assert_ne!(res.status, 405, "{method} {concrete}: {}", res.text);
        assert!(!res.text.contains("no such path"), "{method} {concrete}: {} {}", res.status, res.text);
    }
    // And a route that is not documented is not served.
    let res = app.get("/v2/virtual_tag_configs").await;
    assert!(res.status == 404 && res.text.contains("no such path"), "{}", res.text);
}
