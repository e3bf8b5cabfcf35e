//! SDKs generated from `proto/` in other languages, against a live server.

use std::process::Command;

use extapps_server::domain::caller::Role;

use crate::harness::{Backend, TestServer, tool, workspace_root};

/// The Python with grpcio-tools and grpcio-status (`tests/run.sh` installs
/// them into `.venv`).
fn python() -> std::path::PathBuf {
    tool("EXTAPPS_TEST_PYTHON", ".venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_the_administrator_cycle() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let generated = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let protos: Vec<String> = std::fs::read_dir(root.join("proto/extapps/v1"))
        .unwrap()
        .map(|entry| {
            format!(
                "extapps/v1/{}",
                entry.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    let out = format!("{}", generated.path().display());
    let generate = Command::new(python())
        .current_dir(&root)
        .args(["-m", "grpc_tools.protoc", "-I", "proto"])
        .args([
            format!("--python_out={out}"),
            format!("--pyi_out={out}"),
            format!("--grpc_python_out={out}"),
        ])
        .args(&protos)
        .output()
        .unwrap();
    assert!(
        generate.status.success(),
        "{}",
        String::from_utf8_lossy(&generate.stderr)
    );

    let target = server.url.trim_start_matches("http://").to_owned();
    let smoke = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .env("PYTHONPATH", &out)
            .arg(root.join("tests/sdk/python/smoke.py"))
            .args([&target, &key, "acme"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        smoke.status.success(),
        "{}{}",
        String::from_utf8_lossy(&smoke.stdout),
        String::from_utf8_lossy(&smoke.stderr)
    );
    assert!(String::from_utf8_lossy(&smoke.stdout).contains("python sdk: ok"));
}
