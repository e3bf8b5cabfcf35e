//! The README's code excerpts are part of code the tests run (or, for the
//! Rust crate's documentation, compile as doctests): each excerpt follows a
//! `<!-- from PATH -->` line and must appear in PATH, line for line.

use crate::support::harness::workspace_root;

/// A line as compared: trimmed, and out of a `//!` doc comment; `None` for
/// blank lines and rustdoc's hidden `# ` lines.
fn comparable(line: &str) -> Option<&str> {
    let line = line.trim();
    let line = line.strip_prefix("//!").map_or(line, str::trim);
    (!line.is_empty() && !line.starts_with("# ")).then_some(line)
}

#[test]
fn every_readme_excerpt_is_code_the_tests_run() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut checked = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(source) = line
            .strip_prefix("<!-- from ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(lines[at + 1].starts_with("```"), "no code after {line}");
        let excerpt: Vec<&str> = lines[at + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .filter_map(|l| comparable(l))
            .collect();
        let code = std::fs::read_to_string(root.join(source)).unwrap();
        let code: Vec<&str> = code.lines().filter_map(comparable).collect();
        assert!(
            !excerpt.is_empty() && code.windows(excerpt.len()).any(|w| w == excerpt),
            "the README's excerpt is not in {source}:\n{}",
            excerpt.join("\n")
        );
        checked.push(source);
    }
    assert_eq!(
        checked,
        [
            "crates/extapps-client/src/lib.rs",
            "tests/sdk/python/smoke.py",
            "tests/sdk/typescript/smoke.ts",
            "tests/sdk/go/smoke.go",
            "tests/walkthroughs/key_pair.sh",
            "tests/walkthroughs/ci_job.sh",
        ]
    );
}
