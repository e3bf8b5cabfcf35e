//! The SDKs in other languages, generated from `proto/` by `sdk/generate` (the
//! documented command, which runs `buf generate`), each driven through the
//! administrator's cycle by a smoke program against a live server; and an
//! OAuth client library in one of them, authenticating with a key pair.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use extapps_server::domain::caller::Role;

use crate::support::harness::{Backend, TestServer, tool, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_the_administrator_cycle() {
    let (_server, arguments) = live_server().await;
    let sdk = generated().join("python");
    let mut smoke = Command::new(tool("EXTAPPS_TEST_PYTHON", ".venv/bin/python"));
    smoke
        .env("PYTHONPATH", sdk)
        .arg(workspace_root().join("tests/sdk/python/smoke.py"))
        .args(arguments);
    assert_succeeds(smoke, "python sdk: ok").await;
}

/// An application with no shared secret: the Python SDK registers its keys,
/// and authlib (an OAuth client library of its own) signs its
/// `private_key_jwt` assertions for tokens and revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_library_authenticates_with_private_key_jwt() {
    let (server, arguments) = live_server().await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let sdk = generated().join("python");
    let mut program = Command::new(tool("EXTAPPS_TEST_PYTHON", ".venv/bin/python"));
    program
        .env("PYTHONPATH", sdk)
        .arg(workspace_root().join("tests/sdk/python/private_key_jwt.py"))
        .args(arguments)
        .arg(introspect);
    assert_succeeds(program, "python private_key_jwt: ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_runs_the_administrator_cycle() {
    let (_server, arguments) = live_server().await;
    // The smoke program is compiled next to a copy of the generated SDK, as
    // a service compiles its own code next to the SDK it generated.
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-typescript");
    let tools = workspace_root().join("sdk/node_modules");
    let _ = std::fs::remove_dir_all(&work);
    let mut copy = Command::new("cp");
    copy.arg("-r")
        .arg(generated().join("typescript"))
        .arg(&work);
    assert_succeeds(copy, "").await;
    std::fs::copy(
        workspace_root().join("tests/sdk/typescript/smoke.ts"),
        work.join("smoke.ts"),
    )
    .unwrap();
    std::fs::write(work.join("package.json"), r#"{"type": "module"}"#).unwrap();
    std::os::unix::fs::symlink(&tools, work.join("node_modules")).unwrap();
    let mut compile = Command::new(tools.join(".bin/tsc"));
    compile.current_dir(&work).args([
        "--strict", "--module", "nodenext", "--target", "es2022", "--types", "node", "smoke.ts",
    ]);
    assert_succeeds(compile, "").await;

    let mut smoke = Command::new("node");
    smoke.arg(work.join("smoke.js")).args(arguments);
    assert_succeeds(smoke, "typescript sdk: ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_sdk_runs_the_administrator_cycle() {
    let (_server, arguments) = live_server().await;
    // Debian ships grpc-go and its dependencies as sources under
    // /usr/share/gocode, for GOPATH builds: no module download, no network.
    // The generated packages are imported as extapps/gen/go/..., so the
    // directory holding gen/ is mounted as GOPATH's src/extapps.
    let generated_root = generated().parent().unwrap();
    let gopath = generated_root.with_file_name("sdk-gopath");
    std::fs::create_dir_all(gopath.join("src")).unwrap();
    replace_symlink(generated_root, &gopath.join("src/extapps"));
    let mut smoke = Command::new("go");
    smoke
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .arg("run")
        .arg(workspace_root().join("tests/sdk/go/smoke.go"))
        .args(arguments);
    assert_succeeds(smoke, "go sdk: ok").await;
}

/// A server with an admin key for organization `acme`, and the smoke
/// programs' arguments: `HOST:PORT KEY ORGANIZATION`.
async fn live_server() -> (TestServer, [String; 3]) {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let target = server.url.trim_start_matches("http://").to_owned();
    (server, [target, key, "acme".to_owned()])
}

/// `gen/` as written by `sdk/generate`, once per test run.
fn generated() -> &'static Path {
    static GENERATED: OnceLock<PathBuf> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk");
        let generate = Command::new(workspace_root().join("sdk/generate"))
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            generate.status.success(),
            "sdk/generate failed:\n{}",
            String::from_utf8_lossy(&generate.stderr)
        );
        out.join("gen")
    })
}

fn replace_symlink(target: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Runs `command` off the async runtime (the server keeps serving) and
/// asserts it succeeded and printed `expected`.
async fn assert_succeeds(mut command: Command, expected: &str) {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error} (tests/run.sh installs it)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(expected),
        "{program} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
