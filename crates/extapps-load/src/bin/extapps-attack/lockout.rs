//! `lockout`: a stranger's wrong secrets against an owner asking for tokens.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use extapps_client::v1 as pb;

use super::{
    Failure, LockoutPlan, Options, forged_secret,
    measure::{cpu_now, cpu_used},
    register, tally, token,
};

pub(super) async fn lockout(
    options: &Options,
    admin_key: &str,
    plan: LockoutPlan,
) -> Result<(), Failure> {
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
