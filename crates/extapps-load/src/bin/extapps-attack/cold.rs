//! `cold`: token requests that each find nothing remembered.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use super::{
    Failure, Options,
    measure::{cpu_now, cpu_used},
    register, tally, token,
};

pub(super) async fn cold(
    options: &Options,
    admin_key: &str,
    clients: usize,
    concurrency: usize,
) -> Result<(), Failure> {
    let url = options.url.as_str();
    // Registered four at a time (each hashes a new secret).
    let registered: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let registering: Vec<_> = (0..4)
        .map(|_| {
            let (url, admin_key, registered, next) = (
                url.to_owned(),
                admin_key.to_owned(),
                registered.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < clients as u64 {
                    let client = register(&url, &admin_key, "cold").await?;
                    if let Ok(mut registered) = registered.lock() {
                        registered.push(client);
                    }
                }
                Ok::<(), Failure>(())
            })
        })
        .collect();
    for task in registering {
        task.await??;
    }
    let all = Arc::new(registered.lock().map(|r| r.clone()).unwrap_or_default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_now(options.server_pid);
    let started = Instant::now();
    let askers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, all, next, answers) = (
                http.clone(),
                url.to_owned(),
                all.clone(),
                next.clone(),
                answers.clone(),
            );
            tokio::spawn(async move {
                let mut mine: BTreeMap<String, u64> = BTreeMap::new();
                while let Some((id, secret)) =
                    all.get(next.fetch_add(1, Ordering::Relaxed) as usize)
                {
                    let answer = token(&http, &url, id, secret)
                        .await
                        .map_or("no answer".to_owned(), |s| s.to_string());
                    *mine.entry(answer).or_default() += 1;
                }
                if let Ok(mut answers) = answers.lock() {
                    for (answer, n) in mine {
                        *answers.entry(answer).or_default() += n;
                    }
                }
            })
        })
        .collect();
    for asker in askers {
        asker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_used(&cpu_before, &cpu_now(options.server_pid));
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    println!(
        "{} cold token requests (each for another client) from {concurrency} clients in \
         {elapsed:.2} s: {:.0}/s, answered {}. {cpu}.",
        all.len(),
        all.len() as f64 / elapsed,
        tally(&answers)
    );
    Ok(())
}
