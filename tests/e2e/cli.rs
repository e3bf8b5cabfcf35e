//! The `extapps` command line against a live server: the administrator's
//! cycle register -> secret shown once -> scopes set -> secret generate ->
//! delete, a token introspected, readable errors with the field at fault,
//! and exit codes by kind.

use std::process::Command;

use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::harness::{Backend, TestServer, workspace_bin};
use crate::support::oauth_http::post_form;
use crate::support::signing::{Alg, SigningKey};

crate::on_both_backends!(an_administrator_runs_the_whole_cycle_with_the_cli);

/// Runs `extapps ARGS`: (exit code, stdout, stderr).
fn extapps(server: &TestServer, key: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(workspace_bin("extapps"));
    command
        .env("EXTAPPS_URL", &server.url)
        .env_remove("EXTAPPS_KEY");
    if let Some(key) = key {
        command.env("EXTAPPS_KEY", key);
    }
    let output = command.args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn an_administrator_runs_the_whole_cycle_with_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let key = Some(key.as_str());
    let run = |args: &[&str]| extapps(&server, key, args);

    // Register: the secret is printed once, with a warning to store it.
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "register",
        "--organization",
        "acme",
        "--name",
        "CLI app",
        "--type",
        "confidential",
        "--app-scope",
        "OR:OR.Jobs.Read",
        "--app-scope",
        "OR:OR.Queues",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("shown only this once"), "{err}");
    let registered: Value = serde_json::from_str(&out).unwrap();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("extapps_cs_"));
    let name = registered["application"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    // Inspect: never the secret again.
    let (code, out, _) = run(&["apps", "get", &name]);
    assert_eq!(code, 0);
    assert!(
        out.contains("confidential") && out.contains("OR.Jobs.Read OR.Queues"),
        "{out}"
    );
    assert!(!out.contains(&secret));
    let (code, out, _) = run(&["apps", "list", "--organization", "acme"]);
    assert_eq!(code, 0);
    assert!(out.contains("CLI app"));

    // Update: a new name and a redirect URL; nothing to change is bad input.
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "update",
        &name,
        "--display-name",
        "CLI app (renamed)",
        "--redirect-url",
        "https://cli.example.com/cb",
    ]);
    assert_eq!(code, 0, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(app["display_name"], "CLI app (renamed)");
    assert_eq!(app["redirect_urls"][0], "https://cli.example.com/cb");
    let (code, _, err) = run(&["apps", "update", &name]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to change"), "{err}");
    let (code, _, err) = run(&[
        "apps",
        "update",
        &name,
        "--display-name",
        "x",
        "--etag",
        "\"1\"",
    ]);
    assert_eq!(code, 5, "a stale etag is a conflict: {err}");

    // Scopes: replaced as a whole.
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "scopes",
        "set",
        &name,
        "--app-scope",
        "PM:PM.Users.Read",
    ]);
    assert_eq!(code, 0, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(app["grants"][0]["resource"], "PM");
    assert_eq!(app["grants"].as_array().unwrap().len(), 1);

    // Rotate with a grace period: a new secret, once; two live secrets.
    let (code, out, err) = run(&[
        "-o", "json", "apps", "secret", "generate", &name, "--grace", "1h",
    ]);
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("extapps_cs_") && new_secret != secret);
    assert_eq!(
        rotated["application"]["secrets"].as_array().unwrap().len(),
        2
    );

    // A third secret beside them, described and expiring; then deleted
    // by its ID, with its tokens.
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "secrets",
        "add",
        &name,
        "--description",
        "CI pipeline",
        "--expires-in",
        "90d",
    ]);
    assert_eq!(code, 0, "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert!(
        added["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("extapps_cs_")
    );
    let secrets = added["application"]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 3);
    let third = secrets
        .iter()
        .find(|s| s["description"] == "CI pipeline")
        .unwrap();
    assert!(third["expire_time"].is_string(), "{third}");
    let third_id = third["secret_id"].as_str().unwrap();
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "secrets",
        "delete",
        &name,
        third_id,
        "--revoke-tokens",
    ]);
    assert_eq!(code, 0, "{err}");
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(after["secrets"].as_array().unwrap().len(), 2, "{after}");
    assert!(!out.contains(third_id), "the deleted secret is gone");
    let (code, out, err) = run(&["-o", "json", "audit", "list", "--organization", "acme"]);
    assert_eq!(code, 0, "{err}");
    let events: Value = serde_json::from_str(&out).unwrap();
    let deleted = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "application_secret_deleted")
        .unwrap_or_else(|| panic!("no secret deletion in {events}"));
    assert_eq!(deleted["details"]["secret_id"], third_id, "{deleted}");
    assert_eq!(deleted["details"]["revoke_tokens"], "true", "{deleted}");
    let (code, _, err) = run(&["apps", "secrets", "delete", &name, third_id]);
    assert_ne!(code, 0);
    assert!(err.contains("(reason: SECRET_NOT_FOUND)"), "{err}");

    // A public key from a file, listed with its algorithm; then deleted.
    let key = SigningKey::generate(Alg::Es256);
    let dir = tempfile::tempdir().unwrap();
    let jwk_file = dir.path().join("key.jwk");
    std::fs::write(&jwk_file, key.public_jwk().to_string()).unwrap();
    let jwk_path = jwk_file.to_str().unwrap();
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "keys",
        "add",
        &name,
        "--jwk-file",
        jwk_path,
        "--description",
        "deploy bot",
    ]);
    assert_eq!(code, 0, "{err}");
    let with_key: Value = serde_json::from_str(&out).unwrap();
    let listed = &with_key["keys"][0];
    assert_eq!(listed["algorithm"], "ES256", "{with_key}");
    assert_eq!(listed["description"], "deploy bot");
    let key_id = listed["key_id"].as_str().unwrap();
    let (code, out, err) = run(&["apps", "get", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("KEY ID") && out.contains(key_id), "{out}");
    let mut private = key.public_jwk();
    private["d"] = serde_json::json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
    std::fs::write(&jwk_file, private.to_string()).unwrap();
    let (code, _, err) = run(&["apps", "keys", "add", &name, "--jwk-file", jwk_path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("jwk: holds private key material"), "{err}");
    // A file far too large for a key is refused whole, not cut and sent.
    std::fs::write(&jwk_file, " ".repeat(64 * 1024 + 1)).unwrap();
    let (code, _, err) = run(&["apps", "keys", "add", &name, "--jwk-file", jwk_path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is larger than 64 KiB"), "{err}");
    // Cut inside a character, still too large; and text that is not UTF-8.
    std::fs::write(&jwk_file, "é".repeat(32 * 1024 + 1)).unwrap();
    let (code, _, err) = run(&["apps", "keys", "add", &name, "--jwk-file", jwk_path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is larger than 64 KiB"), "{err}");
    std::fs::write(&jwk_file, [0xff, 0xfe, b'{', b'}']).unwrap();
    let (code, _, err) = run(&["apps", "keys", "add", &name, "--jwk-file", jwk_path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not UTF-8 text"), "{err}");
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "keys",
        "delete",
        &name,
        key_id,
        "--revoke-tokens",
    ]);
    assert_eq!(code, 0, "{err}");
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(after["keys"], serde_json::json!([]), "{after}");
    let (code, _, err) = run(&["apps", "keys", "delete", &name, key_id]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("(reason: APPLICATION_KEY_NOT_FOUND)"), "{err}");

    // A resource server reads the application's token from the command line.
    let client_id = rotated["application"]["client_id"].as_str().unwrap();
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        Some((client_id, new_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let introspect = |token: &str| {
        extapps(
            &server,
            Some(&introspect_key),
            &["-o", "json", "tokens", "introspect", token],
        )
    };
    let (code, out, err) = introspect(token);
    assert_eq!(code, 0, "{err}");
    let claims: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["scope"], "PM.Users.Read");
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64(), "{claims}");
    let (code, out, _) = introspect("extapps_at_forged");
    assert_eq!(
        (code, out.trim()),
        (
            0,
            r#"{
  "active": false
}"#
        )
    );

    // The audit log shows the cycle.
    let (code, out, _) = run(&["audit", "list", "--organization", "acme"]);
    assert_eq!(code, 0);
    for action in [
        "application_secret_generated",
        "application_scopes_updated",
        "application_registered",
    ] {
        assert!(out.contains(action), "{out}");
    }

    // Bad input names the field and exits 2; nothing is registered.
    let (code, _, err) = run(&[
        "apps",
        "register",
        "--organization",
        "acme",
        "--name",
        "Bad",
        "--type",
        "non-confidential",
        "--app-scope",
        "OR:OR.Jobs",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("application.grants[0].application_scopes"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    let (code, _, err) = run(&[
        "apps",
        "register",
        "--organization",
        "acme",
        "--name",
        "Bad",
        "--type",
        "confidential",
        "--app-scope",
        "no-colon",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("RESOURCE:SCOPE"), "{err}");

    // Delete, then it is gone: exit 3.
    let (code, out, _) = run(&["apps", "delete", &name]);
    assert_eq!((code, out.trim()), (0, format!("deleted {name}").as_str()));
    let (code, _, err) = run(&["apps", "get", &name]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not found"));

    // Keys: none -> 2 with a hint, a wrong one -> 4.
    let (code, _, err) = extapps(&server, None, &["resources", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("EXTAPPS_KEY"), "{err}");
    let (code, _, _) = extapps(&server, Some("extapps_key_wrong"), &["resources", "list"]);
    assert_eq!(code, 4);
}
