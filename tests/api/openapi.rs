//! `GET /v2/openapi.json` lists exactly what costd serves. The routes are made from the handlers'
//! `#[utoipa::path]` annotations (utoipa-axum's `routes!`), so this checks what that leaves open: every
//! annotated handler is routed and documented, no HTTP module adds a route beside the annotations, and every
//! documented operation reaches a handler (never the router's "no such path" 404 or its 405). Request bodies
//! are described too: every handler that reads a JSON body names it, and every field Vantage's own document
//! gives such a body is in costd's (checked against the field names kept in `tests/data/vantage/`).

use std::collections::{BTreeMap, BTreeSet};

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
        regex::Regex::new(r#"#\[utoipa::path\(\s*(get|post|put|patch|delete)\s*,\s*path\s*=\s*"([^"]+)""#).unwrap();
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
        let body = [Method::POST, Method::PUT, Method::PATCH].contains(&method).then(|| "{}".to_string());
        let res = app.send(method.clone(), &concrete, Some(&app.token), body).await;
        assert_ne!(res.status, 405, "{method} {concrete}: {}", res.text);
        assert!(!res.text.contains("no such path"), "{method} {concrete}: {} {}", res.status, res.text);
    }
    // And a route that is not documented is not served.
    let res = app.get("/v2/dashboards").await;
    assert!(res.status == 404 && res.text.contains("no such path"), "{}", res.text);
}

/// The field names a schema describes: its properties, through the `$ref`s, and the `allOf`/`oneOf` that a
/// flattened or untagged part makes.
fn fields_of(doc: &serde_json::Value, schema: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        return fields_of(doc, &doc["components"]["schemas"][name], out);
    }
    if let Some(properties) = schema["properties"].as_object() {
        out.extend(properties.keys().cloned());
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            fields_of(doc, part, out);
        }
    }
}

/// "METHOD /v2/path" with every path parameter written `{}` (costd and Vantage name a few differently).
fn operation_key(method: &str, path: &str) -> String {
    let placeholder = regex::Regex::new(r"\{[^}]+\}").unwrap();
    format!("{} {}", method.to_uppercase(), placeholder.replace_all(path, "{}"))
}

/// Schemas are named by their type's name alone: two body types of one name in two modules would share one
/// entry of the document, one describing the other's operations.
#[test]
fn no_two_schemas_share_a_name() {
    let schema =
        regex::Regex::new(r"utoipa::ToSchema[^\]]*\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([a-z]+\))? )?struct (\w+)")
            .unwrap();
    let mut seen: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for (path, text) in http_modules() {
        for m in schema.captures_iter(&text) {
            if let Some(first) = seen.insert(m[1].to_string(), path.clone()) {
                panic!("{} is a schema in {} and in {}", &m[1], first.display(), path.display());
            }
        }
    }
    assert!(seen.len() > 60, "only {} schemas found", seen.len());
}

#[test]
fn every_handler_that_reads_a_json_body_names_it_in_its_annotation() {
    let mut found = 0;
    for (path, text) in http_modules() {
        for chunk in text.split("#[utoipa::path(").skip(1) {
            let annotation = &chunk[..chunk.find(")]\n").unwrap()];
            let signature = &chunk[..chunk.find(" {\n").unwrap()];
            if signature.contains(": Json<") {
                found += 1;
                assert!(
                    annotation.contains("request_body"),
                    "{}: a handler reads a JSON body its annotation does not describe: {annotation}",
                    path.display()
                );
            }
        }
    }
    assert!(found >= 30, "only {found} handlers read a JSON body");
}

#[tokio::test]
async fn every_field_vantage_documents_in_a_request_body_is_described_in_costds_document() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let res = app.send(Method::GET, "/v2/openapi.json", None, None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let doc = res.body;
    let mut served = BTreeSet::new();
    let mut bodies = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let key = operation_key(method, path);
            served.insert(key.clone());
            let Some(content) = op["requestBody"]["content"].as_object() else { continue };
            let mut fields = BTreeSet::new();
            for media in content.values() {
                fields_of(&doc, &media["schema"], &mut fields);
            }
            assert!(!fields.is_empty(), "{key} describes a request body without fields: {}", op["requestBody"]);
            bodies.insert(key, fields);
        }
    }
    assert!(bodies.len() >= 33, "only {} operations describe their request body", bodies.len());
    // A costd addition is described like the rest.
    let aws = &bodies["POST /v2/integrations/aws"];
    for field in ["bucket", "prefix", "export_name", "region", "access_key_id", "secret_access_key"] {
        assert!(aws.contains(field), "POST /v2/integrations/aws lacks {field}: {aws:?}");
    }

    let vantage: BTreeMap<String, Vec<String>> =
        serde_json::from_str(include_str!("../data/vantage/request_fields.json")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (operation, fields) in &vantage {
        let (method, path) = operation.split_once(' ').unwrap();
        let key = operation_key(method, path);
        // GCP's export is BigQuery tables: costd answers its create with a 400 whatever the body holds.
        if !served.contains(&key) || key == "POST /v2/integrations/gcp" {
            continue;
        }
        checked += 1;
        match bodies.get(&key) {
            None => missing.push(format!("{operation}: no request body")),
            Some(ours) => {
                missing.extend(fields.iter().filter(|f| !ours.contains(*f)).map(|f| format!("{operation}: {f}")))
            }
        }
    }
    assert!(missing.is_empty(), "fields Vantage documents that costd's document does not: {missing:#?}");
    assert!(checked >= 30, "only {checked} of Vantage's operations with a body were compared");
}
