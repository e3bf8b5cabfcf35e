//! `flood`: a legitimate client's throughput alone and under strangers' requests.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    Failure, Options, forged_secret,
    measure::{cpu_now, cpu_used, mib, rss_kib, watch_memory},
    register, token, token_from,
};

/// Tokens the legitimate clients got during `time`, a second.
async fn legitimate(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
    concurrency: usize,
    time: Duration,
) -> (f64, u64) {
    let until = Instant::now() + time;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, id, secret) = (
                http.clone(),
                url.to_owned(),
                id.to_owned(),
                secret.to_owned(),
            );
            let (ok, failed) = (ok.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    match token(&http, &url, &id, &secret).await {
                        Some(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    (
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

pub(super) async fn flood(
    options: &Options,
    admin_key: &str,
    rate: u64,
    concurrency: usize,
    duration: Duration,
    many_sources: bool,
) -> Result<(), Failure> {
    let url = options.url.as_str();
    let (id, secret) = register(url, admin_key, "flooded").await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let idle = rss_kib(options.server_pid).ok_or("no such server process")?;

    let before_alone = cpu_now(options.server_pid);
    let (alone, alone_failed) = legitimate(&http, url, &id, &secret, concurrency, duration).await;
    let cpu_alone = cpu_used(&before_alone, &cpu_now(options.server_pid));

    // The strangers, as another process, for the attacked phase and one
    // second of ramp-up before it.
    let (stop_watch, peak) = watch_memory(options.server_pid);
    let strangers = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "--url",
            url,
            "--server-pid",
            &options.server_pid.to_string(),
            "strangers",
        ])
        .args(["--client-id", &id, "--rate", &rate.to_string()])
        .args([
            "--duration",
            &humantime::format_duration(duration + Duration::from_secs(1)).to_string(),
        ])
        .args(many_sources.then_some("--many-sources"))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_attacked = cpu_now(options.server_pid);
    let (attacked, attacked_failed) =
        legitimate(&http, url, &id, &secret, concurrency, duration).await;
    let answers = String::from_utf8_lossy(&strangers.wait_with_output().await?.stdout).into_owned();
    let cpu_attacked = cpu_used(&before_attacked, &cpu_now(options.server_pid));
    stop_watch.store(true, Ordering::Relaxed);
    let peak = peak.await?;
    let alive = rss_kib(options.server_pid).is_some();
    println!("| | legitimate tokens/s | legitimate failures |");
    println!("| --- | ---: | ---: |");
    println!("| alone | {alone:.0} | {alone_failed} |");
    println!("| under a flood of {rate}/s | {attacked:.0} | {attacked_failed} |");
    println!();
    println!(
        "Alone: {cpu_alone}. Under the flood (the strangers' process counted with the generator, its second of ramp-up included): {cpu_attacked}."
    );
    println!();
    println!(
        "Kept {:.0} % of its throughput. Server memory: {} idle, {} peak under the flood; \
         server alive afterwards: {alive}. {}",
        100.0 * attacked / alone.max(1.0),
        mib(idle),
        mib(peak),
        answers.trim()
    );
    Ok(())
}

/// Sends `rate` token requests a second for `duration`, each on its own (at
/// most 2,048 in flight), and prints how they were answered.
pub(super) async fn strangers(
    options: &Options,
    id: &str,
    rate: u64,
    duration: Duration,
    many_sources: bool,
) -> Result<(), Failure> {
    let http = reqwest::Client::new();
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(2048));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / u32::try_from(rate.max(1))?);
    let until = Instant::now() + duration;
    let mut sent = 0u64;
    while Instant::now() < until {
        ticks.tick().await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        sent += 1;
        // Two in three with a random client ID, one with the legitimate
        // client's ID and a wrong secret.
        let client = if sent.is_multiple_of(3) {
            id.to_owned()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let (http, url, answers) = (http.clone(), options.url.clone(), answers.clone());
        let source = many_sources.then(|| {
            let [a, b, c, d] = uuid::Uuid::new_v4().as_bytes()[..4] else {
                return String::new();
            };
            format!("{}.{b}.{c}.{d}", a.max(1))
        });
        tokio::spawn(async move {
            let answer = token_from(&http, &url, &client, &forged_secret(), source)
                .await
                .map_or("no answer".to_owned(), |s| s.to_string());
            if let Ok(mut answers) = answers.lock() {
                *answers.entry(answer).or_default() += 1;
            }
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(2048).await;
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    println!(
        "Attack requests sent: {sent} ({:.0}/s), answered: {}.",
        sent as f64 / duration.as_secs_f64(),
        answers
            .iter()
            .map(|(status, n)| format!("{status} x {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
