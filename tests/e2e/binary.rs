//! The `extapps-server` binary as an operator runs it, and the real `grpcurl`
//! as an administrator uses it: keys printed once, reflection, registering
//! and reading an application, a broken catalog, graceful shutdown.

use std::path::Path;

use serde_json::Value;

use crate::support::processes::{Serving, run_with};

/// The first column of line `n` of a command's table output.
fn first_column(table: &str, n: usize) -> String {
    table
        .lines()
        .nth(n)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Runs `extapps-server ARGS` to completion: (success, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    run_with(dir, &[], args)
}

#[test]
fn an_administrator_registers_with_grpcurl_and_sees_the_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    // The key is printed alone on stdout; the notice goes to stderr.
    let (ok, key, notice) = run(
        dir.path(),
        &[
            "keys",
            "create",
            "--organization",
            "acme",
            "--role",
            "admin",
        ],
    );
    assert!(ok, "{notice}");
    let key = key.trim_end().to_owned();
    assert!(key.starts_with("extapps_key_") && !key.contains(char::is_whitespace));
    assert!(notice.contains("shown once"));
    assert!(
        dir.path().join("extapps.db").exists(),
        "the default database is a file in the working directory"
    );

    let serving = Serving::start(dir.path());
    let (ok, services, err) = serving.grpcurl(None, &[], &["list"]);
    assert!(ok, "{err}");
    for service in ["extapps.v1.ExternalApplications", "grpc.health.v1.Health"] {
        assert!(services.lines().any(|l| l == service), "{services}");
    }
    // Reflection carries the proto comments: the API reference.
    let (ok, described, _) = serving.grpcurl(
        None,
        &[],
        &["describe", "extapps.v1.RegisterApplicationRequest"],
    );
    assert!(ok && described.contains("idempotency key"), "{described}");
    let (ok, health, _) = serving.grpcurl(None, &[], &["grpc.health.v1.Health/Check"]);
    assert!(ok && health.contains("SERVING"), "{health}");

    let body = r#"{"parent":"organizations/acme","application":{"display_name":"Billing sync","type":"APPLICATION_TYPE_CONFIDENTIAL","grants":[{"resource":"OR","application_scopes":["OR.Jobs.Read"]}]}}"#;
    let (ok, out, err) = serving.grpcurl(
        Some(&key),
        &["-d", body],
        &["extapps.v1.ExternalApplications/RegisterApplication"],
    );
    assert!(ok, "{err}");
    let registered: Value = serde_json::from_str(&out).unwrap();
    let secret = registered["clientSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("extapps_cs_"));
    let name = registered["application"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, out, err) = serving.grpcurl(
        Some(&key),
        &["-d", &format!(r#"{{"name":"{name}"}}"#)],
        &["extapps.v1.ExternalApplications/GetApplication"],
    );
    assert!(ok, "{err}");
    let fetched: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fetched["application"]["displayName"], "Billing sync");
    assert_eq!(
        fetched["application"]["secrets"].as_array().unwrap().len(),
        1
    );
    assert!(!out.contains(&secret), "the secret is never shown again");

    // Bad input: grpcurl shows the code and the field violation.
    let (ok, _, err) = serving.grpcurl(
        Some(&key),
        &["-d", r#"{"parent":"organizations/acme","application":{"type":"APPLICATION_TYPE_CONFIDENTIAL"}}"#],
        &["extapps.v1.ExternalApplications/RegisterApplication"],
    );
    assert!(!ok);
    assert!(
        err.contains("InvalidArgument") && err.contains("application.display_name"),
        "{err}"
    );

    // A key revoked by the command, another process, stops working as soon
    // as the server's next poll of the file sees it (every 20 ms).
    let (ok, listed, _) = run(dir.path(), &["keys", "list"]);
    assert!(ok);
    let id = first_column(&listed, 1);
    assert!(listed.contains("admin") && listed.contains("acme") && !listed.contains(&key));
    let seen = serving.count_logs("invalidation received");
    assert!(run(dir.path(), &["keys", "revoke", &id]).0);
    serving.wait_for_logs("invalidation received", seen + 1);
    let (ok, _, err) = serving.grpcurl(
        Some(&key),
        &["-d", "{}"],
        &["extapps.v1.ExternalApplications/ListResources"],
    );
    assert!(!ok && err.contains("Unauthenticated"), "{err}");

    let (status, logs) = serving.terminate();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    assert!(logs.contains("extapps stopped"), "{logs}");
    assert!(
        !logs.contains(&secret[11..40]) && !logs.contains(&key[12..40]),
        "no secret in the logs"
    );
}

#[test]
fn keys_need_the_right_organization_and_role() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["keys", "create", "--role", "admin"],
            "needs --organization",
        ),
        (
            vec![
                "keys",
                "create",
                "--role",
                "operator",
                "--organization",
                "acme",
            ],
            "omit --organization",
        ),
        (
            vec![
                "keys",
                "create",
                "--role",
                "admin",
                "--organization",
                "Bad_Org",
            ],
            "--organization",
        ),
        (
            vec![
                "keys",
                "create",
                "--role",
                "introspect",
                "--organization",
                "acme",
                "--resource",
                "NOPE",
            ],
            "not in the resource catalog",
        ),
        (
            vec![
                "keys",
                "create",
                "--role",
                "admin",
                "--organization",
                "acme",
                "--resource",
                "OR",
            ],
            "only `introspect`",
        ),
        (vec!["keys", "revoke", "no-such-key"], "no caller key"),
        (
            vec!["keys", "create", "--role", "introspect"],
            "--platform-wide",
        ),
        (
            vec!["keys", "create", "--role", "admin", "--platform-wide"],
            "not `admin`",
        ),
        (
            vec![
                "keys",
                "create",
                "--role",
                "signin",
                "--platform-wide",
                "--organization",
                "acme",
            ],
            "cannot be used with",
        ),
    ] {
        let (ok, stdout, stderr) = run(dir.path(), &args);
        assert!(!ok, "{args:?}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let (ok, key, _) = run(
        dir.path(),
        &[
            "keys",
            "create",
            "--role",
            "introspect",
            "--organization",
            "acme",
            "--resource",
            "OR",
        ],
    );
    assert!(ok && key.starts_with("extapps_key_"));
    let (ok, key, _) = run(
        dir.path(),
        &["keys", "create", "--role", "introspect", "--platform-wide"],
    );
    assert!(ok && key.starts_with("extapps_key_"));
    let (_, listed, _) = run(dir.path(), &["keys", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains(" introspect ") && l.contains(" * ")),
        "a platform-wide key is listed for every organization (*): {listed}"
    );
}

#[test]
fn a_broken_catalog_stops_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[resources.OR]\ndisplay_name = \"Orchestrator\"\ndescription = \"\"\nuser_scopes = { \"OR Jobs\" = \"\" }\n",
    )
    .unwrap();
    let (ok, _, stderr) = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            catalog.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("catalog") && stderr.contains("`OR Jobs`"),
        "{stderr}"
    );

    let (ok, _, stderr) = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            "/no/such/file.toml",
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("cannot read catalog /no/such/file.toml"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_token_lifetime_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    for ttl in ["0s", "2days"] {
        let (ok, _, stderr) = run(
            dir.path(),
            &["serve", "--listen", "127.0.0.1:0", "--token-ttl", ttl],
        );
        assert!(!ok);
        assert!(
            stderr.contains("--token-ttl must be between 1s and 24h"),
            "{stderr}"
        );
    }
}

#[test]
fn serve_without_migrations_refuses_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--no-migrate"],
    );
    assert!(!ok);
    assert!(stderr.contains("extapps-server migrate"), "{stderr}");
    let (ok, _, stderr) = run(dir.path(), &["migrate"]);
    assert!(ok, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_ring_lives_in_a_key_file_never_in_the_database() {
    use std::os::unix::fs::PermissionsExt;

    // The embedded default makes its key file beside the database, 0600.
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let key_file = dir.path().join("extapps.keys");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(serving);
    let (ok, listed, err) = run(dir.path(), &["key-ring", "list"]);
    assert!(ok, "{err}");
    assert_eq!(listed.lines().count(), 2, "a header and one key: {listed}");
    let first = first_column(&listed, 1);
    assert!(listed.contains("seals"));

    // Stage, promote, retire; the sealing key cannot be retired.
    assert!(run(dir.path(), &["key-ring", "rotate", "--staged"]).0);
    let (_, listed, _) = run(dir.path(), &["key-ring", "list"]);
    let second = first_column(&listed, 2);
    assert!(
        listed.lines().nth(2).unwrap().ends_with("staged"),
        "{listed}"
    );
    let (ok, _, err) = run(dir.path(), &["key-ring", "retire", &first]);
    assert!(!ok && err.contains("rotate first"), "{err}");
    assert!(run(dir.path(), &["key-ring", "promote", &second]).0);
    assert!(run(dir.path(), &["key-ring", "retire", &first]).0);
    let (_, listed, _) = run(dir.path(), &["key-ring", "list"]);
    assert!(
        !listed.contains(&first) && listed.contains(&format!("{second}  ")),
        "{listed}"
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a rewritten key file stays private");
    let (ok, _, err) = run(dir.path(), &["key-ring", "create"]);
    assert!(
        !ok && err.contains("cannot create key file"),
        "never overwritten: {err}"
    );

    // PostgreSQL without a key ring refuses to start, and says what to do.
    let database =
        crate::support::harness::fresh_database(crate::support::harness::Backend::Postgres, &dir)
            .await;
    let env = [("EXTAPPS_DATABASE_URL", database.as_str())];
    let (ok, _, err) = run_with(dir.path(), &env, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!ok);
    assert!(
        err.contains("key-ring create") && err.contains("EXTAPPS_KEY_FILE"),
        "{err}"
    );
    // With the key ring in the environment it starts.
    let ring = std::fs::read_to_string(&key_file).unwrap();
    let serving = Serving::start_with(
        dir.path(),
        &[
            ("EXTAPPS_DATABASE_URL", database.as_str()),
            ("EXTAPPS_KEY_RING", ring.as_str()),
        ],
    );
    assert!(serving.url().starts_with("http://127.0.0.1:"));
}
