//! A bounded pool for verifying secrets whose hashes still have the
//! password-grade parameters of earlier versions (19 MiB, ~15 ms; each is
//! replaced on its next successful use). tokio's blocking pool grows to 512
//! threads and queues without limit, so an unbounded flood of such
//! verifications would exhaust memory. Here the work runs on
//! `workers` dedicated threads (a rayon pool: a fixed set of threads also
//! bounds the memory the allocator keeps per thread after a run), at most
//! `queue` more wait, and anyone beyond is refused at once ([`VerifyPool::
//! admit`]), so the caller can answer "busy, retry" instead of piling up.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::Error;

/// Sizes of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Verifications running at once (default: one less than the number
    /// of cores, at least one, so they never take every core).
    pub workers: usize,
    /// Verifications waiting for a worker; more are refused (default 16).
    pub queue: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism()
                .map_or(1, |cores| usize::from(cores).saturating_sub(1))
                .max(1),
            queue: 16,
        }
    }
}

/// A place in the pool, held until the work run in it ends.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

#[derive(Clone)]
pub struct VerifyPool {
    /// Permits for running or waiting work.
    admitted: Arc<Semaphore>,
    /// Permits for running work.
    running: Arc<Semaphore>,
    threads: Arc<rayon::ThreadPool>,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("threads", &self.threads.current_num_threads())
            .finish_non_exhaustive()
    }
}

impl VerifyPool {
    pub fn new(settings: PoolSettings) -> Result<Self, Error> {
        let workers = settings.workers.max(1);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("extapps-argon2-{i}"))
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the secret verification threads");
                Error::Internal
            })?;
        Ok(Self {
            admitted: Arc::new(Semaphore::new(workers + settings.queue)),
            running: Arc::new(Semaphore::new(workers)),
            threads: Arc::new(threads),
        })
    }

    /// A place in the pool, if it has room: take it before spending anything
    /// else on the work (a budget), so a refusal costs nothing.
    pub fn admit(&self) -> Option<Admitted> {
        self.admitted.clone().try_acquire_owned().ok().map(Admitted)
    }

    /// Runs `work` in the place `admitted` holds. The caller may stop
    /// waiting (its request cancelled); the place is held until the work
    /// itself ends, so cancelled requests cannot queue unbounded work.
    pub async fn run_admitted<T: Send + 'static>(
        &self,
        admitted: Admitted,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal)?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            // A panic in the work must not take the process down.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            drop((running, admitted));
            let _ = done.send(outcome);
        });
        match result.await {
            Ok(Ok(value)) => Ok(value),
            _ => {
                tracing::error!("a secret verification failed unexpectedly");
                Err(Error::Internal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_workers_and_queue_even_when_callers_give_up() {
        let pool = VerifyPool::new(PoolSettings {
            workers: 2,
            queue: 0,
        })
        .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        // Each work takes the gate only to receive, so both can wait at once.
        let blocked = |gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                loop {
                    if let Ok(g) = gate.try_lock()
                        && g.try_recv().is_ok()
                    {
                        return 1;
                    }
                    std::thread::yield_now();
                }
            }
        };
        let first = tokio::spawn({
            let (pool, admitted) = (pool.clone(), pool.admit().unwrap());
            let work = blocked(gate.clone());
            async move { pool.run_admitted(admitted, work).await }
        });
        // The second caller gives up once its work runs: its place stays
        // taken until the work itself has ended.
        let second = tokio::spawn({
            let (pool, admitted) = (pool.clone(), pool.admit().unwrap());
            let work = blocked(gate.clone());
            async move { pool.run_admitted(admitted, work).await }
        });
        assert!(pool.admit().is_none(), "two running: full");
        while pool.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        second.abort();
        let _ = second.await;
        assert!(
            pool.admit().is_none(),
            "a caller that gave up frees no place"
        );
        // Either work may take either release: send both before waiting.
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        let admitted = loop {
            match pool.admit() {
                Some(admitted) => break admitted,
                None => tokio::task::yield_now().await,
            }
        };
        assert_eq!(pool.run_admitted(admitted, || 4).await, Ok(4));
        // A panic in the work is an error, not the end of the process.
        let admitted = pool.admit().unwrap();
        assert_eq!(
            pool.run_admitted(admitted, || -> i32 { panic!("boom") })
                .await,
            Err(Error::Internal)
        );
    }
}
