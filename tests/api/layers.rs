//! The layering ARCHITECTURE.md draws, checked on the source until crates make it a compile error: the
//! model imports no other layer and no I/O or engine library, the engine imports no store, service or HTTP,
//! the store no engine, service, HTTP or command line, and HTTP reaches the engine only through the services. Test modules (from `#[cfg(test)]` on) are
//! exempt: a test may compare against anything.

use std::path::{Path, PathBuf};

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

/// Each `(file, line)` under `src/<layer>` (tests left out) that names one of `forbidden` as a path.
fn offences(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let pattern = regex::Regex::new(&format!(r"\b(?:{})::", forbidden.join("|"))).unwrap();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        for (n, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if pattern.is_match(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, trimmed));
            }
        }
    }
    found
}

#[test]
fn the_model_imports_no_other_layer_and_no_io_or_engine_library() {
    let found = offences(
        "model",
        &[
            r"crate::engine",
            r"crate::store",
            r"crate::service",
            r"crate::http",
            r"crate::app",
            r"crate::cli",
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
    assert!(found.is_empty(), "the model reaches outside itself:\n{}", found.join("\n"));
}

#[test]
fn the_engine_imports_no_store_service_or_http() {
    let found =
        offences("engine", &[r"crate::store", r"crate::service", r"crate::http", r"crate::app", "sqlx", "axum"]);
    assert!(found.is_empty(), "the engine reaches a layer above it:\n{}", found.join("\n"));
}

#[test]
fn the_store_imports_no_engine_service_http_or_command_line() {
    let found = offences(
        "store",
        &[
            r"crate::engine",
            r"crate::service",
            r"crate::http",
            r"crate::app",
            r"crate::cli",
            "datafusion",
            "axum",
            "clap",
        ],
    );
    assert!(found.is_empty(), "the store reaches a layer beside or above it:\n{}", found.join("\n"));
}

#[test]
fn http_reaches_the_engine_only_through_the_services() {
    let found = offences("http", &[r"crate::engine", "datafusion", "parquet"]);
    assert!(found.is_empty(), "a handler reaches the engine:\n{}", found.join("\n"));
}
