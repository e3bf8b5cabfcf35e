//! `extapps-load`: drives a running extapps server with concurrent clients
//! and reports throughput and latency percentiles, for `BENCHMARKS.md`.
//!
//! Scenarios: `ceiling` (gRPC health check: the cheapest call the server
//! answers, the ceiling of the others), `introspect` (gRPC IntrospectToken of
//! an active token) and `token` (OAuth client credentials over HTTP/1.1).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use extapps_client::v1 as pb;
use hdrhistogram::Histogram;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ceiling,
    Introspect,
    Token,
}

/// Load generator for extapps. (No `Debug`: it holds keys.)
#[allow(missing_debug_implementations)]
#[derive(Parser)]
struct Options {
    /// Server base URL (gRPC and HTTP).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// An admin key of the organization `--organization`, to register the
    /// application the load uses.
    #[arg(long, env = "EXTAPPS_LOAD_ADMIN_KEY")]
    admin_key: String,
    /// An introspect key of the same organization.
    #[arg(long, env = "EXTAPPS_LOAD_INTROSPECT_KEY")]
    introspect_key: String,
    #[arg(long, default_value = "acme")]
    organization: String,
    /// Scenarios to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceiling,introspect,token"
    )]
    scenarios: Vec<Scenario>,
    /// Concurrent clients, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Measured time per run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each run.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// gRPC connections the clients share (HTTP/2 multiplexes the rest).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Label printed in the first column (e.g. the database).
    #[arg(long, default_value = "")]
    label: String,
    /// Distinct live tokens the introspection clients cycle through.
    #[arg(long, default_value_t = 10_000)]
    tokens: usize,
}

/// What every client needs.
struct Fixture {
    url: String,
    channels: Vec<Channel>,
    introspect_key: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
}

async fn setup(options: &Options) -> Result<Fixture, Box<dyn std::error::Error>> {
    let mut channels = Vec::new();
    for _ in 0..options.connections.max(1) {
        channels.push(
            Endpoint::from_shared(options.url.clone())?
                .connect()
                .await?,
        );
    }
    let mut admin = extapps_client::with_key(channels[0].clone(), &options.admin_key)?;
    let registered = admin
        .register_application(pb::RegisterApplicationRequest {
            parent: format!("organizations/{}", options.organization),
            application: Some(pb::Application {
                display_name: format!("load {}", uuid::Uuid::new_v4()),
                r#type: pb::ApplicationType::Confidential.into(),
                grants: vec![pb::ResourceGrant {
                    resource: "OR".into(),
                    user_scopes: vec![],
                    application_scopes: vec!["OR.Jobs.Read".into(), "OR.Queues".into()],
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    let app = registered
        .application
        .ok_or("no application in the response")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    Ok(Fixture {
        url: options.url.clone(),
        channels,
        introspect_key: options.introspect_key.clone(),
        client_id: app.client_id,
        client_secret: registered.client_secret,
        http,
    })
}

/// `count` live tokens, requested by 32 concurrent clients.
async fn mint(
    fixture: &Arc<Fixture>,
    count: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut tokens = Vec::with_capacity(count);
    while tokens.len() < count {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..(count - tokens.len()).min(32) {
            let fixture = fixture.clone();
            batch.spawn(async move { request_token(&fixture).await.map_err(|e| e.to_string()) });
        }
        while let Some(token) = batch.join_next().await {
            tokens.push(token??);
        }
    }
    Ok(tokens)
}

async fn request_token(fixture: &Fixture) -> Result<String, Box<dyn std::error::Error>> {
    let response = fixture
        .http
        .post(format!("{}/oauth2/token", fixture.url))
        .basic_auth(&fixture.client_id, Some(&fixture.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("token request failed: {}", response.status()).into());
    }
    let body: serde_json::Value = response.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".into())
}

/// One client's loop: calls until `until`, recording latencies if `record`.
async fn client_loop(
    scenario: Scenario,
    fixture: Arc<Fixture>,
    tokens: Arc<Vec<String>>,
    index: usize,
    until: Instant,
) -> Result<(Histogram<u64>, u64), hdrhistogram::CreationError> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    let mut next = index;
    let channel = fixture.channels[index % fixture.channels.len()].clone();
    let mut health = HealthClient::new(channel.clone());
    let mut api = extapps_client::with_key(channel, &fixture.introspect_key).ok();
    while Instant::now() < until {
        let started = Instant::now();
        let ok = match scenario {
            Scenario::Ceiling => health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok(),
            Scenario::Introspect => match api.as_mut() {
                Some(api) => api
                    .introspect_token(pb::IntrospectTokenRequest {
                        token: {
                            next = (next + 1) % tokens.len();
                            tokens[next].clone()
                        },
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().active),
                None => false,
            },
            Scenario::Token => request_token(&fixture).await.is_ok(),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if ok {
            let _ = histogram.record(micros.max(1));
        } else {
            errors += 1;
        }
    }
    Ok((histogram, errors))
}

async fn run(
    scenario: Scenario,
    fixture: &Arc<Fixture>,
    tokens: &Arc<Vec<String>>,
    concurrency: usize,
    time: Duration,
) -> Result<(Histogram<u64>, u64, Duration), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let until = started + time;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            tokio::spawn(client_loop(
                scenario,
                fixture.clone(),
                tokens.clone(),
                i * 7919,
                until,
            ))
        })
        .collect();
    let mut total = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, task_errors) = task.await??;
        total.add(&histogram)?;
        errors += task_errors;
    }
    Ok((total, errors, started.elapsed()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let fixture = Arc::new(setup(&options).await?);
    let tokens = Arc::new(mint(&fixture, options.tokens.max(1)).await?);
    println!("| database | scenario | concurrency | requests/s | p50 ms | p99 ms | errors |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for &scenario in &options.scenarios {
        for &concurrency in &options.concurrency {
            run(scenario, &fixture, &tokens, concurrency, options.warmup).await?;
            let (histogram, errors, took) =
                run(scenario, &fixture, &tokens, concurrency, options.duration).await?;
            let rate = histogram.len() as f64 / took.as_secs_f64();
            println!(
                "| {} | {:?} | {} | {:.0} | {:.2} | {:.2} | {} |",
                options.label,
                scenario,
                concurrency,
                rate,
                histogram.value_at_quantile(0.5) as f64 / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0,
                errors
            );
        }
    }
    Ok(())
}
