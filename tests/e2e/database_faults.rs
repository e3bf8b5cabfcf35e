//! A PostgreSQL restart and a stop under write load, on a PostgreSQL server
//! of the test's own (the suite's shared one stays up): callers hear only
//! `UNAVAILABLE` while the database is away, a retry with the same request
//! ID never registers twice, and every acknowledged registration is stored.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer};

/// A PostgreSQL server in a temporary directory, run as the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("pg_ctl").exists())
            .expect("pg_ctl is installed");
        let data = tempfile::tempdir().unwrap();
        let owned = Command::new("chown")
            .args(["postgres:postgres", data.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(owned.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { bin, data, port };
        cluster.as_postgres(&[
            "initdb",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-D",
            &cluster.dir(),
        ]);
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn dir(&self) -> String {
        self.data.path().join("db").to_str().unwrap().to_owned()
    }

    fn as_postgres(&self, command: &[&str]) {
        let program = self.bin.join(command[0]);
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(&command[1..])
            .current_dir(Path::new("/"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl ACTION`, waiting for it to finish; stops are fast (sessions
    /// are terminated, as in an administrator's restart).
    fn pg_ctl(&self, action: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.path().display()
        );
        let log = format!("{}/log", self.data.path().display());
        let dir = self.dir();
        let mut command = vec![
            "pg_ctl", "-D", &dir, "-w", "-m", "fast", "-l", &log, "-o", &options,
        ];
        command.extend_from_slice(action);
        self.as_postgres(&command);
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.dir(), "-m", "immediate", "stop"])
            .output();
    }
}

#[derive(Default)]
struct Tally {
    acknowledged: Mutex<Vec<String>>,
    unavailable: AtomicUsize,
    other_errors: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_or_doubled_across_a_restart_and_a_stop() {
    let postgres = PrivatePostgres::start();
    let server = TestServer::start_on_database(Backend::Postgres, postgres.url()).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let tally = Arc::new(Tally::default());
    let running = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (client, tally, running) = (server.client(&key), tally.clone(), running.clone());
            tokio::spawn(async move {
                let mut client = client;
                let mut n = 0;
                while running.load(Ordering::Relaxed) {
                    n += 1;
                    let mut request =
                        register_request("acme", service_app(&format!("w{writer}-{n}")));
                    request.request_id = uuid::Uuid::new_v4().to_string();
                    // As a careful client does: retry what is unavailable, with
                    // the same request ID, until it is answered.
                    loop {
                        match client.register_application(request.clone()).await {
                            Ok(response) => {
                                let app = response.into_inner().application.unwrap();
                                tally.acknowledged.lock().unwrap().push(app.client_id);
                                break;
                            }
                            Err(status) if status.code() == tonic::Code::Unavailable => {
                                tally.unavailable.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(status) => {
                                tally
                                    .other_errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("{status:?}"));
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let acknowledged = || tally.acknowledged.lock().unwrap().len();
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    tokio::task::block_in_place(|| until("writes", &|| acknowledged() >= 40));
    tokio::task::block_in_place(|| postgres.pg_ctl(&["restart"]));
    let after_restart = acknowledged();
    tokio::task::block_in_place(|| {
        until("writes after the restart", &|| {
            acknowledged() >= after_restart + 40
        })
    });
    // A stop: the writers hear UNAVAILABLE (several times each) until it is
    // back.
    tokio::task::block_in_place(|| postgres.pg_ctl(&["stop"]));
    let refused_before = tally.unavailable.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| {
        until("refusals while stopped", &|| {
            tally.unavailable.load(Ordering::Relaxed) >= refused_before + 32
        })
    });
    tokio::task::block_in_place(|| postgres.pg_ctl(&["start"]));
    let after_stop = acknowledged();
    tokio::task::block_in_place(|| {
        until("writes after the stop", &|| {
            acknowledged() >= after_stop + 40
        })
    });
    running.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    assert_eq!(
        tally.other_errors.lock().unwrap().as_slice(),
        &[] as &[String],
        "only UNAVAILABLE while the database was away"
    );
    let acked: Vec<String> = tally.acknowledged.lock().unwrap().clone();
    let distinct: HashSet<&String> = acked.iter().collect();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "no registration acknowledged twice"
    );
    let db = server.store().connection();
    let stored: HashSet<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM applications",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} is stored");
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "nothing stored that was not acknowledged once"
    );
    // Reads work again too.
    let listed = server
        .client(&key)
        .list_applications(pb::ListApplicationsRequest {
            parent: "organizations/acme".into(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.applications.len(), acked.len());
}
