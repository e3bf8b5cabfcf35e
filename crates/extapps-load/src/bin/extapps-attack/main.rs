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

use std::{collections::BTreeMap, time::Duration};

use clap::{Parser, Subcommand};
use extapps_client::v1 as pb;

mod authorizations;
mod cold;
mod connections;
mod flood;
mod lockout;
mod measure;

use authorizations::authorizations;
use cold::cold;
use connections::connections;
use flood::{flood, strangers};
use lockout::lockout;

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
