//! The layer rule, checked on the source: the transports (`grpc`, `oauth`)
//! talk only to the use cases (`service`), never to the store; the domain
//! knows neither transports nor storage nor anything else of the crate.
//! Text, not a compiler pass: comments and string literals are blanked out
//! first, then every path that names a forbidden layer fails, however it
//! is written (`crate::store::X`, `super::store`, `crate::{store::X}`,
//! `use crate::store as db`, `service.store()`).

use std::path::{Path, PathBuf};

use regex::Regex;

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

/// The code of a source file with comments and string literals blanked
/// out, line breaks kept (so offsets still give line numbers).
fn code_only(text: &str) -> String {
    let noise = Regex::new(r#"(?s)//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*""#).unwrap();
    noise
        .replace_all(text, |found: &regex::Captures<'_>| {
            found[0]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' })
                .collect::<String>()
        })
        .into_owned()
}

/// What under `src/<dir>` matches a pattern of `forbidden`, as
/// `path:line: text`, except matches `allowed` accepts.
fn offending(dir: &str, forbidden: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let patterns: Vec<Regex> = forbidden.iter().map(|p| Regex::new(p).unwrap()).collect();
    let mut found = Vec::new();
    for path in sources(dir) {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let code = code_only(&text);
        for pattern in &patterns {
            for hit in pattern.find_iter(&code) {
                if allowed(hit.as_str()) {
                    continue;
                }
                let line = code[..hit.start()].matches('\n').count();
                let source = text.lines().nth(line).unwrap_or_default().trim();
                found.push(format!("{}:{}: {source}", path.display(), line + 1));
            }
        }
    }
    found
}

/// Paths into the store, however written.
const STORE: &[&str] = &[
    r"\bsea_orm\b",
    r"(?:^|[^\w])store\s*::",
    r"::\s*store\b",
    r"\.\s*store\s*\(",
    r"crate\s*::\s*\{[^}]*\bstore\b",
];

#[test]
fn the_transports_never_reach_the_store() {
    for transport in ["grpc", "oauth"] {
        let found = offending(transport, STORE, |_| false);
        assert!(
            found.is_empty(),
            "{transport}/ must go through service/: {found:#?}"
        );
    }
}

#[test]
fn the_domain_knows_neither_transports_nor_storage() {
    let found = offending(
        "domain",
        &[
            r"\b(?:tonic|sea_orm|axum|hyper|tower)\b",
            // Anything of the crate outside the domain.
            r"\bcrate\s*::\s*(?:\{|\w+)",
            r"\bsuper\s*::\s*super\s*::\s*(?:store|service|grpc|oauth)\b",
        ],
        |hit| hit.ends_with("domain"),
    );
    assert!(found.is_empty(), "domain/ must stay pure: {found:#?}");
}

#[test]
fn the_rule_reads_through_every_spelling_and_past_comments() {
    let code = code_only(
        "use crate::{service::X, store::Y};\nuse crate::store as db;\nlet s = service.store();\nno_store(); // store::x \"crate::store\"\nlet t = \"store::z\";\nlet m = monotonic;\n",
    );
    let hits = |pattern: &str| Regex::new(pattern).unwrap().find_iter(&code).count();
    let store: usize = STORE.iter().map(|p| hits(p)).sum();
    // The grouped import is found twice (the group and `store::`), the
    // alias once, the method call once; the comment, the strings,
    // `no_store` and `monotonic` never.
    assert_eq!(store, 4, "{code}");
    assert_eq!(hits(r"\b(?:tonic|sea_orm|axum|hyper|tower)\b"), 0);
}
