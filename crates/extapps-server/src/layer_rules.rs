//! The layer rule, checked on the source: the transports (`grpc`, `oauth`)
//! talk only to the use cases (`service`), never to the store; the domain
//! knows neither transports nor storage. Text, not a compiler pass: a line
//! of code that names a forbidden layer fails, comments do not count.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/<dir>`.
fn sources(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("source entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir),
        &mut found,
    );
    assert!(!found.is_empty(), "no sources under src/{dir}");
    found
}

/// The lines of code (not comments) under `src/<dir>` that name any of
/// `forbidden`, as `path:line: text`.
fn offending_lines(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut offending = Vec::new();
    for path in sources(dir) {
        let text = std::fs::read_to_string(&path).expect("readable source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if forbidden.iter().any(|f| code.contains(f)) {
                offending.push(format!("{}:{}: {code}", path.display(), i + 1));
            }
        }
    }
    offending
}

#[test]
fn the_transports_never_reach_the_store() {
    for transport in ["grpc", "oauth"] {
        let offending = offending_lines(transport, &["store::", ".store()", "sea_orm"]);
        assert!(
            offending.is_empty(),
            "{transport}/ must go through service/: {offending:#?}"
        );
    }
}

#[test]
fn the_domain_knows_neither_transports_nor_storage() {
    let offending = offending_lines(
        "domain",
        &[
            "tonic",
            "sea_orm",
            "axum",
            "hyper",
            "crate::store",
            "crate::service",
            "crate::grpc",
            "crate::oauth",
        ],
    );
    assert!(
        offending.is_empty(),
        "domain/ must stay pure: {offending:#?}"
    );
}
