//! The workspace's binaries as separate processes: `extapps-server`
//! commands run to completion, a `serve` process and the lines it logs, and
//! `grpcurl` against it.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use serde_json::Value;

use crate::support::harness::{tool, workspace_bin};

/// The server binary (`EXTAPPS_SERVER_BIN` overrides).
fn server_bin() -> PathBuf {
    match std::env::var_os("EXTAPPS_SERVER_BIN") {
        Some(path) => path.into(),
        None => workspace_bin("extapps-server"),
    }
}

fn grpcurl_bin() -> PathBuf {
    tool("EXTAPPS_TEST_GRPCURL", ".venv/bin/grpcurl")
}

fn server(dir: &Path) -> Command {
    let mut command = Command::new(server_bin());
    command
        .current_dir(dir)
        .env_remove("EXTAPPS_DATABASE_URL")
        .env_remove("EXTAPPS_CATALOG")
        .env_remove("EXTAPPS_KEY_FILE")
        .env_remove("EXTAPPS_KEY_RING")
        .env_remove("EXTAPPS_LISTEN");
    command
}

/// Runs `extapps-server ARGS` with extra environment variables.
pub(crate) fn run_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let output = server(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// `key-ring create --key-file DIR/keys.toml`: the file's path, for a
/// server on PostgreSQL (only the embedded default makes one itself).
pub(crate) fn key_file(dir: &Path) -> String {
    let path = dir.join("keys.toml");
    let path = path.to_str().unwrap().to_owned();
    let (created, _, err) = run_with(dir, &[], &["key-ring", "create", "--key-file", &path]);
    assert!(created, "{err}");
    path
}

/// `keys create --organization acme --role ROLE`: the key it printed.
pub(crate) fn create_key(dir: &Path, env: &[(&str, &str)], role: &str) -> String {
    let (ok, key, err) = run_with(
        dir,
        env,
        &["keys", "create", "--organization", "acme", "--role", role],
    );
    assert!(ok, "{err}");
    key.trim().to_owned()
}

/// A `serve` process on an ephemeral port, and everything it logged.
pub(crate) struct Serving {
    child: Child,
    pub(crate) addr: String,
    logs: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// A server with extra environment variables (e.g. another database).
    pub(crate) fn start_with(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = server(dir)
            .envs(env.iter().copied())
            .args([
                "--log-format",
                "json",
                "--log",
                "debug",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let logs: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        // The server logs its address once it listens: no sleeping, no polling.
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            logs.0.lock().unwrap().push(line.clone());
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = event["fields"]["addr"].as_str() {
                break addr.to_owned();
            }
        };
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.0.lock().unwrap().push(line);
                sink.1.notify_all();
            }
        });
        Self { child, addr, logs }
    }

    /// Every line the server has logged so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.0.lock().unwrap().clone()
    }

    /// How many lines containing `needle` the server has logged so far.
    pub(crate) fn count_logs(&self, needle: &str) -> usize {
        let lines = self.logs.0.lock().unwrap();
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Blocks until the server has logged `count` lines containing
    /// `needle`, woken by each new line (at most 10 s).
    pub(crate) fn wait_for_logs(&self, needle: &str, count: usize) {
        let (lines, arrived) = &*self.logs;
        let guard = lines.lock().unwrap();
        let (guard, timeout) = arrived
            .wait_timeout_while(guard, Duration::from_secs(10), |lines| {
                lines.iter().filter(|l| l.contains(needle)).count() < count
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no {count}× `{needle}` in:\n{}",
            guard.join("\n")
        );
    }

    /// `grpcurl -plaintext [-H key] FLAGS ADDRESS VERB...`.
    pub(crate) fn grpcurl(
        &self,
        key: Option<&str>,
        flags: &[&str],
        verb: &[&str],
    ) -> (bool, String, String) {
        let mut command = Command::new(grpcurl_bin());
        command.arg("-plaintext");
        if let Some(key) = key {
            command.args(["-H", &format!("authorization: Bearer {key}")]);
        }
        let output = command
            .args(flags)
            .arg(&self.addr)
            .args(verb)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// The server's process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDRESS`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        // The log reader thread ends with the process's stderr.
        let logs = self.logs.0.lock().unwrap().join("\n");
        (status, logs)
    }
}
