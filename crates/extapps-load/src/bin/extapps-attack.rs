//! `extapps-attack`: hostile load against a running extapps server, with the
//! server's memory watched from `/proc`, for `BENCHMARKS.md`.
//!
//! - `flood`: a legitimate client's token throughput alone, then again while
//!   strangers (`strangers`, run as a separate process so that the two loads
//!   do not share a scheduler) send `--rate` unauthenticated token requests a
//!   second: random client IDs with well-formed secrets, and the legitimate
//!   client's ID with wrong ones.
//! - `connections`: `--connections` idle connections opened at once; how long
//!   the server takes to close them, and its memory before, during, after.
//! - `authorizations`: `GET /oauth2/authorize` as fast as the server answers,
//!   from `--concurrency` clients: what anyone on the network can make the
//!   unauthenticated authorization endpoint do.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use extapps_client::v1 as pb;
use tokio::io::AsyncReadExt;

/// Hostile load for extapps. (No `Debug`: it holds keys.)
#[allow(missing_debug_implementations)]
#[derive(Parser)]
struct Options {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// The server's process ID, to read its memory (VmRSS) from `/proc`.
    #[arg(long)]
    server_pid: u32,
    #[command(subcommand)]
    attack: Attack,
}

#[allow(missing_debug_implementations)]
#[derive(Subcommand)]
enum Attack {
    Flood {
        /// An admin key of `acme`, to register the legitimate client.
        #[arg(long, env = "EXTAPPS_LOAD_ADMIN_KEY")]
        admin_key: String,
        /// Unauthenticated requests a second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Concurrent legitimate clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Time of each phase.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Each stranger request claims its own random source address in
        /// `X-Forwarded-For` (run the server with `--trusted-proxies 1`): a
        /// flood from many addresses, which per-source budgets cannot stop.
        #[arg(long)]
        many_sources: bool,
    },
    /// The strangers of `flood`, on their own: prints how they were answered.
    Strangers {
        /// The legitimate client's ID, one in three requests uses it.
        #[arg(long)]
        client_id: String,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long)]
        many_sources: bool,
    },
    Authorizations {
        /// An admin key of `acme`, to register the application asked for.
        #[arg(long, env = "EXTAPPS_LOAD_ADMIN_KEY")]
        admin_key: String,
        /// Clients sending requests back to back.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    Connections {
        /// Idle connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Give up waiting for the server to close them after this.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        patience: Duration,
    },
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The server's resident memory in KiB, or `None` once it is gone.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Samples the server's memory every 50 ms until stopped: the peak.
fn watch_memory(pid: u32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let watching = stop.clone();
    let peak = tokio::spawn(async move {
        let mut peak = 0;
        while !watching.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak
    });
    (stop, peak)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// A secret with the right prefix and checksum that is nobody's.
fn forged_secret() -> String {
    let body: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .chain("abcdefghijk".chars())
        .collect();
    let signed = format!("extapps_cs_{body}");
    format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
}

async fn token(http: &reqwest::Client, url: &str, id: &str, secret: &str) -> Option<u16> {
    token_from(http, url, id, secret, None).await
}

async fn token_from(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
    source: Option<String>,
) -> Option<u16> {
    let mut request = http.post(format!("{url}/oauth2/token"));
    if let Some(source) = source {
        request = request.header("x-forwarded-for", source);
    }
    request
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

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

async fn flood(
    options: &Options,
    admin_key: &str,
    rate: u64,
    concurrency: usize,
    duration: Duration,
    many_sources: bool,
) -> Result<(), Failure> {
    let url = options.url.as_str();
    let mut admin = extapps_client::connect(url, admin_key).await?.generated();
    let registered = admin
        .register_application(pb::RegisterApplicationRequest {
            parent: "organizations/acme".into(),
            application: Some(pb::Application {
                display_name: format!("flooded {}", uuid::Uuid::new_v4()),
                r#type: pb::ApplicationType::Confidential.into(),
                grants: vec![pb::ResourceGrant {
                    resource: "OR".into(),
                    user_scopes: vec![],
                    application_scopes: vec!["OR.Jobs.Read".into()],
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    let id = registered.application.ok_or("no application")?.client_id;
    let secret = registered.client_secret;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let idle = rss_kib(options.server_pid).ok_or("no such server process")?;

    let (alone, alone_failed) = legitimate(&http, url, &id, &secret, concurrency, duration).await;

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
    let (attacked, attacked_failed) =
        legitimate(&http, url, &id, &secret, concurrency, duration).await;
    let answers = String::from_utf8_lossy(&strangers.wait_with_output().await?.stdout).into_owned();
    stop_watch.store(true, Ordering::Relaxed);
    let peak = peak.await?;
    let alive = rss_kib(options.server_pid).is_some();
    println!("| | legitimate tokens/s | legitimate failures |");
    println!("| --- | ---: | ---: |");
    println!("| alone | {alone:.0} | {alone_failed} |");
    println!("| under a flood of {rate}/s | {attacked:.0} | {attacked_failed} |");
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
async fn strangers(
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

async fn authorizations(
    options: &Options,
    admin_key: &str,
    concurrency: usize,
    duration: Duration,
) -> Result<(), Failure> {
    let url = options.url.as_str();
    let mut admin = extapps_client::connect(url, admin_key).await?.generated();
    let app = admin
        .register_application(pb::RegisterApplicationRequest {
            parent: "organizations/acme".into(),
            application: Some(pb::Application {
                display_name: format!("asked {}", uuid::Uuid::new_v4()),
                r#type: pb::ApplicationType::NonConfidential.into(),
                grants: vec![pb::ResourceGrant {
                    resource: "OR".into(),
                    user_scopes: vec!["OR.Jobs".into()],
                    application_scopes: vec![],
                }],
                redirect_urls: vec!["http://127.0.0.1/callback".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .application
        .ok_or("no application")?;
    let request = format!(
        "{url}/oauth2/authorize?response_type=code&client_id={}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback&scope=OR.Jobs%20offline_access\
         &state=af0ifjsldkj&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256",
        app.client_id
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let idle = rss_kib(options.server_pid).ok_or("no such server process")?;
    let (stop_watch, peak) = watch_memory(options.server_pid);
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let until = Instant::now() + duration;
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, request, answers) = (http.clone(), request.clone(), answers.clone());
            tokio::spawn(async move {
                let mut mine: BTreeMap<String, u64> = BTreeMap::new();
                while Instant::now() < until {
                    let answer = http
                        .get(&request)
                        .send()
                        .await
                        .map_or("no answer".to_owned(), |r| r.status().as_u16().to_string());
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
    for client in clients {
        let _ = client.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop_watch.store(true, Ordering::Relaxed);
    let peak = peak.await?;
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    let total: u64 = answers.values().sum();
    println!(
        "{total} authorization requests from {concurrency} clients in {elapsed:.1} s: {:.0}/s, \
         answered {}. Server memory: {} idle, {} peak; alive afterwards: {}.",
        total as f64 / elapsed,
        answers
            .iter()
            .map(|(status, n)| format!("{status} x {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        mib(idle),
        mib(peak),
        rss_kib(options.server_pid).is_some()
    );
    Ok(())
}

async fn connections(options: &Options, count: usize, patience: Duration) -> Result<(), Failure> {
    let addr = options
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let pid = options.server_pid;
    let idle = rss_kib(pid).ok_or("no such server process")?;
    let (stop_watch, peak) = watch_memory(pid);
    let opened_at = Instant::now();
    let closed = Arc::new(AtomicU64::new(0));
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect(&addr).await?;
        let closed = closed.clone();
        held.push(tokio::spawn(async move {
            let mut stream = stream;
            let mut buf = [0u8; 64];
            // Idle: send nothing, and note when the server hangs up.
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
            opened_at.elapsed()
        }));
    }
    let opened = opened_at.elapsed();
    let open_rss = rss_kib(pid).unwrap_or(0);
    let mut last_closed = Duration::ZERO;
    let all_closed = tokio::time::timeout(patience, async {
        for task in held {
            if let Ok(at) = task.await {
                last_closed = last_closed.max(at);
            }
        }
    })
    .await
    .is_ok();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_watch.store(true, Ordering::Relaxed);
    let peak = peak.await?;
    let after = rss_kib(pid).unwrap_or(0);
    println!(
        "{count} idle connections opened in {:.1} s; closed by the server: {} of {count}{}. \
         Server memory: {} idle, {} with them open, {} peak, {} 2 s after they closed \
         ({:+.0} % of idle).",
        opened.as_secs_f64(),
        closed.load(Ordering::Relaxed),
        if all_closed {
            format!(
                ", the last {:.1} s after the first was opened",
                last_closed.as_secs_f64()
            )
        } else {
            format!(" (not all within {patience:?})")
        },
        mib(idle),
        mib(open_rss),
        mib(peak),
        mib(after),
        100.0 * (after as f64 - idle as f64) / idle as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let options = Options::parse();
    match &options.attack {
        Attack::Flood {
            admin_key,
            rate,
            concurrency,
            duration,
            many_sources,
        } => {
            flood(
                &options,
                admin_key,
                *rate,
                *concurrency,
                *duration,
                *many_sources,
            )
            .await
        }
        Attack::Strangers {
            client_id,
            rate,
            duration,
            many_sources,
        } => strangers(&options, client_id, *rate, *duration, *many_sources).await,
        Attack::Authorizations {
            admin_key,
            concurrency,
            duration,
        } => authorizations(&options, admin_key, *concurrency, *duration).await,
        Attack::Connections {
            connections: count,
            patience,
        } => connections(&options, *count, *patience).await,
    }
}
