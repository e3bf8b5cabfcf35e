//! `authorizations`: the unauthenticated authorization endpoint, flat out.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use extapps_client::v1 as pb;

use super::{
    Failure, Options,
    measure::{mib, rss_kib, watch_memory},
};

pub(super) async fn authorizations(
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
