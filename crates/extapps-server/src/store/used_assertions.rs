//! The `jti` of every accepted client assertion, written in batches: the
//! requests that arrive while one batch is written are written together
//! next, in one statement (`INSERT … ON CONFLICT DO NOTHING RETURNING`),
//! and each learns whether its own `jti` was new. One write per request
//! bounded assertions to what the database's single writer could take one
//! at a time; a batch shares one statement, one commit and one trip to the
//! driver. What is left per row is the row's place in the key's index,
//! which is random (a `jti` is).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use tokio::sync::{mpsc, oneshot};

use super::client_keys::FirstUse;
use super::db_error;
use crate::domain::Error;
use crate::metrics::Metrics;

/// Rows written in one statement at most.
const BATCH: usize = 64;
/// Requests waiting for the writer at most; more wait to be queued.
const QUEUE: usize = 1024;
/// The longest a request waits for its `jti` to be written: past it, the
/// database is too slow, and the request is told to retry.
const WAIT: Duration = Duration::from_secs(5);

/// One `jti` to remember.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct UsedAssertion {
    pub application_id: String,
    pub issuer: String,
    pub jti: String,
    pub expire_time: i64,
}

impl UsedAssertion {
    /// What makes it used, whichever application presents it.
    fn key(&self) -> (String, String) {
        (self.issuer.clone(), self.jti.clone())
    }
}

struct Pending {
    row: UsedAssertion,
    answer: oneshot::Sender<Result<FirstUse, Error>>,
}

/// The batching writer, started on first use (again if it ever stopped),
/// on the runtime the store was opened on. Cheap to clone.
#[derive(Clone)]
pub(super) struct UsedAssertions {
    runtime: tokio::runtime::Handle,
    writer: Arc<Mutex<Option<mpsc::Sender<Pending>>>>,
    metrics: Arc<OnceLock<Metrics>>,
}

impl std::fmt::Debug for UsedAssertions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsedAssertions")
    }
}

impl UsedAssertions {
    /// A writer for a store opened on the current runtime.
    pub fn new() -> Self {
        Self {
            runtime: tokio::runtime::Handle::current(),
            writer: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts the batches written, and their rows, in `metrics`.
    pub fn count_in(&self, metrics: Metrics) {
        let _ = self.metrics.set(metrics);
    }

    /// The writer's queue, started (or started again) if need be.
    fn sender(&self, db: &DatabaseConnection) -> mpsc::Sender<Pending> {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = writer.as_ref().filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        if writer.is_some() {
            tracing::error!("the writer of used assertions stopped; starting it again");
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.runtime
            .spawn(write_batches(db.clone(), receiver, self.metrics.clone()));
        *writer = Some(sender.clone());
        sender
    }

    /// Remembers `row`; whether its `jti` was new. Waits at most a few
    /// seconds: past them the database is too slow, and the answer is
    /// `Unavailable`.
    pub async fn first_use(
        &self,
        db: &DatabaseConnection,
        row: UsedAssertion,
    ) -> Result<FirstUse, Error> {
        let sender = self.sender(db);
        let (answer, answered) = oneshot::channel();
        let waited = tokio::time::timeout(WAIT, async {
            sender
                .send(Pending { row, answer })
                .await
                .map_err(|_| Error::Unavailable)?;
            answered.await.map_err(|_| Error::Unavailable)?
        })
        .await;
        waited.unwrap_or(Err(Error::Unavailable))
    }
}

async fn write_batches(
    db: DatabaseConnection,
    mut receiver: mpsc::Receiver<Pending>,
    metrics: Arc<OnceLock<Metrics>>,
) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        if receiver.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        write_batch(&db, batch, metrics.get()).await;
    }
}

/// Writes one batch and answers each of its requests.
async fn write_batch(db: &DatabaseConnection, mut batch: Vec<Pending>, metrics: Option<&Metrics>) {
    // Every replica's batches insert their rows in one order, so two
    // written at once that share a `jti` (a replay sent to two replicas)
    // wait for each other instead of deadlocking.
    batch.sort_by(|a, b| (&a.row.issuer, &a.row.jti).cmp(&(&b.row.issuer, &b.row.jti)));
    let rows: Vec<UsedAssertion> = batch.iter().map(|p| p.row.clone()).collect();
    let started = Instant::now();
    let inserted = insert(db, &rows).await;
    if let Some(metrics) = metrics {
        let written = inserted.as_ref().ok().map(|_| rows.len());
        metrics.used_assertions_written(written, started.elapsed());
    }
    let answers: Vec<Result<FirstUse, Error>> = match inserted {
        Ok(mut inserted) => rows
            .iter()
            .map(|row| {
                // A `jti` twice in one batch: the first is the new one.
                Ok(match inserted.remove(&row.key()) {
                    true => FirstUse::Yes,
                    false => FirstUse::No,
                })
            })
            .collect(),
        Err(e) => {
            let error = db_error(e);
            rows.iter().map(|_| Err(error.clone())).collect()
        }
    };
    for (pending, answer) in batch.into_iter().zip(answers) {
        // A request that went away no longer waits for its answer.
        let _ = pending.answer.send(answer);
    }
}

/// Inserts `rows`, skipping those already there; the keys of those it
/// inserted.
async fn insert(
    db: &DatabaseConnection,
    rows: &[UsedAssertion],
) -> Result<HashSet<(String, String)>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 4);
    let mut tuples = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        tuples.push(match backend {
            DbBackend::Postgres => format!(
                "(${}, ${}, ${}, ${})",
                4 * i + 1,
                4 * i + 2,
                4 * i + 3,
                4 * i + 4
            ),
            _ => "(?, ?, ?, ?)".to_owned(),
        });
        values.extend([
            row.application_id.clone().into(),
            row.issuer.clone().into(),
            row.jti.clone().into(),
            row.expire_time.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO used_assertions (application_id, issuer, jti, expire_time) VALUES {} \
         ON CONFLICT DO NOTHING RETURNING issuer, jti",
        tuples.join(", ")
    );
    let inserted = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    inserted
        .iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<String>(1)?,
            ))
        })
        .collect()
}
