//! The layering ARCHITECTURE.md draws. The model, the engine and the store are crates (`crates/`), so a wrong
//! import between them is a compile error as long as their manifests list only what their layer may use:
//! these tests hold the manifests to that. HTTP and the services share this package, so that HTTP reaches
//! the engine only through the services is checked on the source, as is that the API's handlers call no store
//! method themselves (test modules, from `#[cfg(test)]` on, are exempt: a test may compare against anything).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names in a crate's `[dependencies]` table (not its dev-dependencies: a test may use anything).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap().trim();
            names.push(name.to_string());
        }
    }
    assert!(!names.is_empty(), "crates/{krate}/Cargo.toml lists no dependencies");
    names
}

fn forbidden_in(krate: &str, forbidden: &[&str]) -> Vec<String> {
    dependencies(krate).into_iter().filter(|d| forbidden.contains(&d.as_str())).collect()
}

#[test]
fn the_model_crate_depends_on_no_other_layer_and_no_io_or_engine_library() {
    let found = forbidden_in(
        "model",
        &[
            "costd-engine",
            "costd-store",
            "arrow",
            "datafusion",
            "parquet",
            "sqlx",
            "axum",
            "clap",
            "tokio",
            "object_store",
        ],
    );
    assert!(found.is_empty(), "the model depends on {found:?}");
}

#[test]
fn the_engine_crate_depends_on_no_store_or_web_library() {
    let found = forbidden_in("engine", &["costd-store", "sqlx", "axum", "clap"]);
    assert!(found.is_empty(), "the engine depends on {found:?}");
}

#[test]
fn the_store_crate_depends_on_no_engine_or_web_library() {
    let found = forbidden_in("store", &["costd-engine", "arrow", "datafusion", "parquet", "axum", "clap"]);
    assert!(found.is_empty(), "the store depends on {found:?}");
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn http_reaches_the_engine_only_through_the_services() {
    let mut files = Vec::new();
    sources(&root().join("src/http"), &mut files);
    assert!(!files.is_empty());
    let pattern = regex::Regex::new(r"\b(?:crate::engine|costd_engine|datafusion|parquet)::").unwrap();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        for (n, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("//") && pattern.is_match(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, trimmed));
            }
        }
    }
    assert!(found.is_empty(), "a handler reaches the engine:\n{}", found.join("\n"));
}

#[test]
fn the_api_handlers_reach_the_store_only_through_the_services() {
    // `src/http/<resource>.rs` hand the store to a service (`state.store.as_ref()`) and call no store method
    // themselves, so what a request does is written once, in `src/service/`, for the API and the CLI alike.
    // (`mod.rs` builds the shared state; the console's sessions live in `src/http/console/`.)
    let call = regex::Regex::new(r"\bstore\s*\.\s*([a-z_]+)\s*\(").unwrap();
    let (checked, found) =
        lines_matching("src/http", |line| call.captures_iter(line).any(|m| !matches!(&m[1], "as_ref" | "clone")));
    assert!(checked > 15, "only {checked} HTTP modules read");
    assert!(found.is_empty(), "a handler calls the store itself:\n{}", found.join("\n"));
}

#[test]
fn the_alerts_wing_has_no_import_cycle() {
    // `service::alerts` (the evaluators, messages, delivery) uses the services of each kind (budgets, cost
    // alerts, anomalies, the report series); none of them, nor anything else under `src/service/`, uses it
    // back. The uses of it are the HTTP layer, the app that runs its loop, and the CLI.
    let uses = regex::Regex::new(r"(service::alerts\b|super::alerts\b)").unwrap();
    let (checked, found) = lines_matching("src/service", |line| uses.is_match(line));
    assert!(checked > 15, "only {checked} service modules read");
    assert!(found.is_empty(), "a service the alerts wing uses uses it back:\n{}", found.join("\n"));
}

/// The code lines (not comments, not test modules) of `dir`'s `.rs` files but `mod.rs` that `matches`, as
/// `path:line: text`, and how many files were read.
fn lines_matching(dir: &str, matches: impl Fn(&str) -> bool) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join(dir)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("mod.rs") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if !line.starts_with("//") && matches(line) {
                found.push(format!("{}:{}: {line}", path.display(), n + 1));
            }
        }
    }
    (checked, found)
}
