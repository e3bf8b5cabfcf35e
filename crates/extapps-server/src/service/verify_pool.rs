//! A bounded pool for argon2id work. tokio's blocking pool grows to 512
//! threads and queues without limit; argon2id needs 19 MiB a run, so an
//! unbounded flood of verifications exhausts memory. Here the work runs on
//! `workers` dedicated threads (a rayon pool: a fixed set of threads also
//! bounds the memory the allocator keeps per thread after a run), at most
//! `queue` more wait, and anyone beyond is refused at once, so the caller
//! can answer "busy, retry" instead of piling up.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::Error;

/// Sizes of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Verifications running at once (default: the number of cores).
    pub workers: usize,
    /// Verifications waiting for a worker; more are refused (default 16).
    pub queue: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            queue: 16,
        }
    }
}

/// Why work did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full: retry shortly.
    Busy,
    Failed(Error),
}

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

    /// Runs `work` if the pool has room, else refuses at once.
    pub async fn try_run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(PoolError::Busy);
        };
        self.run(work).await.map_err(PoolError::Failed)
    }

    /// Runs `work` when a worker is free, however long that takes: for
    /// authenticated callers (hashing a new secret), whose number is bounded
    /// by the keys an operator handed out.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal)?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let _ = done.send(work());
        });
        result.await.map_err(|_| {
            tracing::error!("a secret verification thread failed");
            Error::Internal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_workers_and_queue_and_recovers() {
        let pool = VerifyPool::new(PoolSettings {
            workers: 1,
            queue: 1,
        })
        .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = |gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = gate.lock().map(|g| g.recv());
                1
            }
        };
        let first = tokio::spawn({
            let pool = pool.clone();
            let work = blocked(gate.clone());
            async move { pool.try_run(work).await }
        });
        let second = tokio::spawn({
            let pool = pool.clone();
            let work = blocked(gate.clone());
            async move { pool.try_run(work).await }
        });
        // Both admitted (one running, one queued): the third is refused.
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.try_run(|| 3).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(1));
        assert_eq!(pool.try_run(|| 4).await, Ok(4));
    }
}
