//! Real servers for the tests: the extapps server started in-process on
//! `127.0.0.1:0`, over a fresh database per test (an SQLite file in a temp
//! dir, or a PostgreSQL database named by a fresh UUID), reached through the
//! real gRPC client.

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use extapps_client::{ErrorReport, GeneratedClient as Client, with_key};
use extapps_server::{
    domain::{caller::Role, clock::Clock, key_ring::KeyRing, names::OrganizationId},
    service::{ClientAuthSettings, Service, TokenSettings, UserAccessSettings},
    store::Store,
};
use sea_orm::{ConnectionTrait, Database};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether servers started here follow changes and so answer from their
/// caches (the default), or read the database on every call
/// (`EXTAPPS_TEST_CACHES=off`): a server that does not follow changes never
/// trusts its caches.
pub fn caches_on() -> bool {
    std::env::var("EXTAPPS_TEST_CACHES").as_deref() != Ok("off")
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
/// Exported at the crate root: scenario files call it as
/// `crate::on_both_backends!(name, ...)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::harness::Backend::Postgres).await
            }
        }
    )*};
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Everything the server logged while the tests ran (every test shares the
/// process, so this is every test's logs).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let sink = LogSink(LOGS.get_or_init(Default::default).clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,h2=info,hyper=info,hyper_util=info,tower=info")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .try_init();
    });
}

/// The PostgreSQL server the suite must use. Missing is a failure, not a skip.
pub fn postgres_url() -> String {
    std::env::var("EXTAPPS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "EXTAPPS_TEST_POSTGRES_URL is not set: the PostgreSQL suite cannot be skipped. \
             Run tests/run.sh, which starts PostgreSQL and sets it."
        )
    })
}

/// A fresh, empty database for one test; returns its URL.
pub async fn fresh_database(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("extapps.db").display()
        ),
        Backend::Postgres => {
            let base = postgres_url();
            let name = format!("extapps_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let mut url = url::Url::parse(&base).expect("EXTAPPS_TEST_POSTGRES_URL is a URL");
            url.set_path(&name);
            url.to_string()
        }
    }
}

/// Where test servers send browsers to sign in: tests play the sign-in
/// front end themselves, reading the redirect.
pub const SIGNIN_URL: &str = "https://signin.test/consent";

/// The user access settings of test servers: the defaults, signing in at
/// [`SIGNIN_URL`].
pub fn user_access() -> UserAccessSettings {
    UserAccessSettings {
        signin_url: Some(SIGNIN_URL.into()),
        ..Default::default()
    }
}

/// A running server and the handles a test needs around it.
pub struct TestServer {
    pub backend: Backend,
    /// `http://127.0.0.1:PORT`: gRPC and the OAuth endpoints.
    pub url: String,
    pub service: Service,
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    /// The key ring the server seals with (a deployment's key file).
    pub ring: KeyRing,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, ClientAuthSettings::default()).await
    }

    /// A server with its own bounds on client authentication.
    pub async fn start_with(backend: Backend, client_auth: ClientAuthSettings) -> Self {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, &dir).await;
        let ring = KeyRing::generate(extapps_server::domain::clock::SystemClock.now()).unwrap();
        Self::launch(backend, dir, database_url, ring, client_auth, user_access()).await
    }

    /// A server with its own user access settings.
    pub async fn start_with_user_access(backend: Backend, user: UserAccessSettings) -> Self {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, &dir).await;
        let ring = KeyRing::generate(extapps_server::domain::clock::SystemClock.now()).unwrap();
        Self::launch(backend, dir, database_url, ring, Default::default(), user).await
    }

    /// A server on an existing database of the test's own.
    pub async fn start_on_database(backend: Backend, database_url: String) -> Self {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::generate(extapps_server::domain::clock::SystemClock.now()).unwrap();
        Self::launch(
            backend,
            dir,
            database_url,
            ring,
            Default::default(),
            user_access(),
        )
        .await
    }

    /// Another server on this one's database, with the key ring `ring`,
    /// on the same clock (moving one moves both).
    pub async fn beside(&self, ring: KeyRing) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::launch_with_clock(
            self.backend,
            dir,
            self.database_url.clone(),
            ring,
            Default::default(),
            user_access(),
            self.clock.clone(),
        )
        .await
    }

    async fn launch(
        backend: Backend,
        dir: tempfile::TempDir,
        database_url: String,
        ring: KeyRing,
        client_auth: ClientAuthSettings,
        user: UserAccessSettings,
    ) -> Self {
        let clock = Arc::new(ManualClock(Mutex::new(
            extapps_server::domain::clock::SystemClock.now(),
        )));
        Self::launch_with_clock(backend, dir, database_url, ring, client_auth, user, clock).await
    }

    async fn launch_with_clock(
        backend: Backend,
        dir: tempfile::TempDir,
        database_url: String,
        ring: KeyRing,
        client_auth: ClientAuthSettings,
        user: UserAccessSettings,
        clock: Arc<ManualClock>,
    ) -> Self {
        let store = Store::connect(&database_url).await.unwrap();
        store.migrate().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let catalog = extapps_server::commands::load_catalog(None).unwrap();
        let tokens = TokenSettings {
            ttl: time::Duration::HOUR,
            issuer: format!("http://{addr}"),
            user,
        };
        let service = Service::new(store, catalog, clock.clone(), &ring, tokens, client_auth)
            .await
            .unwrap();
        if caches_on() {
            // Tests run against the cached path, unless told otherwise.
            service.store().listen_for_changes(clock.clone());
            tokio::time::timeout(
                Duration::from_secs(10),
                service.store().caches_trusted(true),
            )
            .await
            .expect("the cache invalidation channel comes up");
        }
        let router = extapps_server::server::router(service.clone())
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(extapps_server::server::serve(
            listener,
            None,
            router,
            async move {
                let _ = stopped.await;
            },
            extapps_server::server::ConnectionLimits {
                drain: Duration::from_secs(5),
                ..Default::default()
            },
        ));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            backend,
            url: format!("http://{addr}"),
            service,
            clock,
            database_url,
            ring,
            channel,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Creates a caller key as the operator command does; returns its ID
    /// and the key.
    pub async fn key_with_id(
        &self,
        organization: Option<&str>,
        role: Role,
        resources: &[&str],
    ) -> (String, String) {
        let organization = organization.map(|o| OrganizationId::parse(o).unwrap());
        let created = self
            .service
            .create_caller_key(
                organization,
                role,
                resources.iter().map(|r| r.to_string()).collect(),
            )
            .await
            .unwrap();
        (created.id, created.key.expose_secret().to_owned())
    }

    /// Creates a caller key; returns the key.
    pub async fn key(&self, organization: Option<&str>, role: Role, resources: &[&str]) -> String {
        self.key_with_id(organization, role, resources).await.1
    }

    /// A client authenticated with `key`.
    pub fn client(&self, key: &str) -> Client {
        with_key(self.channel.clone(), key).unwrap()
    }

    /// A client with a fresh admin key of `organization`.
    pub async fn admin(&self, organization: &str) -> Client {
        let key = self.key(Some(organization), Role::Admin, &[]).await;
        self.client(&key)
    }

    /// The raw channel, for calls without a key.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn store(&self) -> &Store {
        self.service.store()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The error of a call, with its details; panics if the call succeeded.
pub fn error_of<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> ErrorReport {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => ErrorReport::from(&status),
    }
}

/// A binary of the workspace, built next to this test binary
/// (`cargo build --bins`, which `tests/run.sh` runs).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// An outside tool: the path in `$variable`, else `default` under the
/// workspace root (where `tests/run.sh` installs it).
pub fn tool(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    assert!(
        path.exists(),
        "{} is missing: run tests/run.sh, or set {variable}",
        path.display()
    );
    path
}

/// The workspace root, for tools and snapshots.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
