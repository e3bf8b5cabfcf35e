//! The README's walk-throughs, run as written: a script of
//! `tests/walkthroughs/` with the workspace's `extapps` on its `PATH`.

use serde_json::Value;

use crate::support::harness::{workspace_bin, workspace_root};

/// Runs `tests/walkthroughs/{script}` with `env`; asserts it succeeded and
/// returns what it printed, as JSON (a token response).
pub(crate) async fn run(script: &str, env: &[(&str, String)]) -> Value {
    let bin = workspace_bin("extapps");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = std::process::Command::new("bash");
    command
        .arg(workspace_root().join("tests/walkthroughs").join(script))
        .env("PATH", path)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())));
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{script} printed {stdout}"))
}
