//! `GET /v2/openapi.json` lists exactly what costd serves. The routes are made from the handlers'
//! `#[utoipa::path]` annotations (utoipa-axum's `routes!`), so this checks what that leaves open: every
//! annotated handler is routed and documented, no HTTP module adds a route beside the annotations, and every
//! documented operation reaches a handler (never the router's "no such path" 404 or its 405).

use std::collections::BTreeSet;

use reqwest::Method;

use crate::helpers::{Backend, TestApp};

/// The `src/http/*.rs` modules (the web console, `src/http/console/`, serves pages outside `/v2`).
fn http_modules() -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            modules.push((path, text));
        }
    }
    modules
}

/// (METHOD, /v2 path) of every `#[utoipa::path]` in `src/http/*.rs`.
fn annotated_operations() -> BTreeSet<(String, String)> {
    let annotation =
        regex::Regex::new(r#"#\[utoipa::path\(\s*(get|post|put|delete)\s*,\s*path\s*=\s*"([^"]+)""#).unwrap();
    let mut found = BTreeSet::new();
    for (_, text) in http_modules() {
        for m in annotation.captures_iter(&text) {
            found.insert((m[1].to_uppercase(), format!("/v2{}", &m[2])));
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
    // Response bodies are described field by field, as Vantage's own document does.
    let schema = &list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(schema, "#/components/schemas/WorkspacesBody", "{list}");
    let schemas = &doc["components"]["schemas"];
    let workspace = &schemas["WorkspaceBody"]["properties"];
    for field in ["token", "name", "created_at", "currency"] {
        assert!(workspace[field].is_object(), "WorkspaceBody lacks {field}: {}", schemas["WorkspaceBody"]);
    }
    assert!(schemas["WorkspacesBody"]["properties"]["links"].is_object(), "{}", schemas["WorkspacesBody"]);
    let described = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|op| {
            op["responses"].as_object().unwrap().values().any(|r| r["content"]["application/json"].is_object())
        })
        .count();
    assert!(described >= 80, "only {described} operations describe their body");
    let annotated = annotated_operations();
    assert!(annotated.len() > 60, "{annotated:?}");
    assert_eq!(documented, annotated, "documented vs annotated operations (an annotated handler left out of routes!)");
    // A route added beside the annotations would be served but not documented.
    for (path, text) in http_modules() {
        for call in [".route(", ".route_service(", ".nest_service("] {
            assert!(!text.contains(call), "{} adds a route outside routes!(): {call}", path.display());
        }
    }

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
