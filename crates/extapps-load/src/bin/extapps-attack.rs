//! `extapps-attack`: hostile load against a running extapps server, with the
//! server's memory watched from `/proc`, for `BENCHMARKS.md`.
//!
//! - `flood`: a legitimate client's token throughput alone, then again while
//!   strangers (`strangers`, run as a separate process so that the two loads
//!   do not share a scheduler) send `--rate` unauthenticated token requests a
//!   second: random client IDs with well-formed secrets, and the legitimate
//!   client's ID with wrong ones.
//! - `lockout`: a stranger at one loopback address sends well-formed wrong
//!   secrets for a client's ID, after the application was renamed (which
//!   empties what the server remembers of it); its owner, at another
//!   address, asks for a token at a steady pace: how often it is served.
//! - `cold`: token requests that each find nothing remembered (every one
//!   for another client, registered for the run): what a request costs
//!   when its secret must be verified and its application read.
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
    Lockout {
        /// An admin key of `acme`, to register and rename the victim.
        #[arg(long, env = "EXTAPPS_LOAD_ADMIN_KEY")]
        admin_key: String,
        /// The stranger's wrong secrets a second.
        #[arg(long, default_value_t = 5)]
        rate: u64,
        /// The owner's pace: one token request per this.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        every: Duration,
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// How long the stranger runs before the owner's first request
        /// after the rename (an attacker is there first).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        head_start: Duration,
        /// The owner's source address (a loopback address of this host).
        #[arg(long, default_value = "127.0.0.1")]
        owner_address: std::net::IpAddr,
        /// The stranger's.
        #[arg(long, default_value = "127.0.0.2")]
        stranger_address: std::net::IpAddr,
    },
    Cold {
        /// An admin key of `acme`, to register the clients.
        #[arg(long, env = "EXTAPPS_LOAD_ADMIN_KEY")]
        admin_key: String,
        /// Clients registered, each asking for one token.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Token requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
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

/// CPU time so far, in clock ticks (1/100 s here): the whole machine's
/// busy time, the server's, and this process's own with its waited-for
/// children (the stranger process of `flood`).
struct CpuTicks {
    at: Instant,
    machine: u64,
    server: u64,
    own: u64,
}

/// utime + stime (+ cutime + cstime with `children`) of a process.
fn process_ticks(path: &str, children: bool) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let sum = |range: std::ops::Range<usize>| fields.get(range).map_or(0, |f| f.iter().sum());
    sum(10..12) + if children { sum(12..14) } else { 0 }
}

fn cpu_now(server_pid: u32) -> CpuTicks {
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal: all but idle
            // and iowait are busy.
            Some(fields.iter().take(8).sum::<u64>() - fields.get(3)? - fields.get(4)?)
        })
        .unwrap_or(0);
    CpuTicks {
        at: Instant::now(),
        machine,
        server: process_ticks(&format!("/proc/{server_pid}/stat"), false),
        own: process_ticks("/proc/self/stat", true),
    }
}

/// The cores each part used between two readings: server, this generator,
/// and everything else on the machine (which must be near zero for a fair
/// figure).
fn cpu_used(from: &CpuTicks, to: &CpuTicks) -> String {
    let seconds = to.at.duration_since(from.at).as_secs_f64().max(0.001);
    let cores = |ticks: u64| ticks as f64 / 100.0 / seconds;
    let server = to.server.saturating_sub(from.server);
    let own = to.own.saturating_sub(from.own);
    let machine = to.machine.saturating_sub(from.machine);
    format!(
        "CPU (cores): server {:.2}, load generator {:.2}, everything else {:.2}",
        cores(server),
        cores(own),
        cores(machine.saturating_sub(server + own))
    )
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

/// Registers a confidential application with one application scope: its
/// client ID and secret.
async fn register(url: &str, admin_key: &str, name: &str) -> Result<(String, String), Failure> {
    let mut admin = extapps_client::connect(url, admin_key).await?.generated();
    let registered = admin
        .register_application(pb::RegisterApplicationRequest {
            parent: "organizations/acme".into(),
            application: Some(pb::Application {
                display_name: format!("{name} {}", uuid::Uuid::new_v4()),
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
    let app = registered.application.ok_or("no application")?;
    Ok((app.client_id, registered.client_secret))
}

fn tally(answers: &BTreeMap<String, u64>) -> String {
    answers
        .iter()
        .map(|(status, n)| format!("{status} x {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lockout attempt's pace and addresses.
struct LockoutPlan {
    rate: u64,
    every: Duration,
    duration: Duration,
    head_start: Duration,
    owner_address: std::net::IpAddr,
    stranger_address: std::net::IpAddr,
}

async fn lockout(options: &Options, admin_key: &str, plan: LockoutPlan) -> Result<(), Failure> {
    let LockoutPlan {
        rate,
        every,
        duration,
        head_start,
        owner_address,
        stranger_address,
    } = plan;
    let url = options.url.as_str();
    let (id, secret) = register(url, admin_key, "victim").await?;
    let from = |address| {
        reqwest::Client::builder()
            .local_address(address)
            .timeout(Duration::from_secs(10))
            .build()
    };
    let (owner, stranger) = (from(owner_address)?, from(stranger_address)?);
    let first = token(&owner, url, &id, &secret).await;
    // A rename empties what the server remembers of the application.
    let mut admin = extapps_client::connect(url, admin_key).await?.generated();
    admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(pb::Application {
                name: format!("organizations/acme/applications/{id}"),
                display_name: format!("victim, renamed {}", uuid::Uuid::new_v4()),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await?;
    let until = Instant::now() + head_start + duration;
    let cpu_before = cpu_now(options.server_pid);
    let attack = {
        let (url, id) = (url.to_owned(), id.clone());
        tokio::spawn(async move {
            let mut answers: BTreeMap<String, u64> = BTreeMap::new();
            let mut ticks = tokio::time::interval(
                Duration::from_secs(1) / u32::try_from(rate.max(1)).unwrap_or(1),
            );
            let wrong = forged_secret();
            while Instant::now() < until {
                ticks.tick().await;
                let answer = token(&stranger, &url, &id, &wrong)
                    .await
                    .map_or("no answer".to_owned(), |s| s.to_string());
                *answers.entry(answer).or_default() += 1;
            }
            answers
        })
    };
    tokio::time::sleep(head_start).await;
    let mut served: BTreeMap<String, u64> = BTreeMap::new();
    let mut ticks = tokio::time::interval(every);
    while Instant::now() < until {
        ticks.tick().await;
        let answer = token(&owner, url, &id, &secret)
            .await
            .map_or("no answer".to_owned(), |s| s.to_string());
        *served.entry(answer).or_default() += 1;
    }
    let attacked = attack.await?;
    let cpu = cpu_used(&cpu_before, &cpu_now(options.server_pid));
    let tries: u64 = served.values().sum();
    let ok = served.get("200").copied().unwrap_or(0);
    println!(
        "Owner at {owner_address}, one token request every {every:?} for {duration:?} after a \
         rename (first token before it: {}): served {ok} of {tries} ({:.0} %), answered {}. \
         Stranger at {stranger_address}, {rate} wrong secrets a second for the owner's client \
         ID from {head_start:?} before the owner's first request: answered {}. {cpu}.",
        first.map_or("no answer".to_owned(), |s| s.to_string()),
        100.0 * ok as f64 / tries.max(1) as f64,
        tally(&served),
        tally(&attacked),
    );
    Ok(())
}

async fn cold(
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
        Attack::Lockout {
            admin_key,
            rate,
            every,
            duration,
            head_start,
            owner_address,
            stranger_address,
        } => {
            let plan = LockoutPlan {
                rate: *rate,
                every: *every,
                duration: *duration,
                head_start: *head_start,
                owner_address: *owner_address,
                stranger_address: *stranger_address,
            };
            lockout(&options, admin_key, plan).await
        }
        Attack::Cold {
            admin_key,
            clients,
            concurrency,
        } => cold(&options, admin_key, *clients, *concurrency).await,
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
