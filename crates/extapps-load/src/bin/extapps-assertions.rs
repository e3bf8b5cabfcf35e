//! `extapps-assertions`: client-credentials load in which every request
//! carries a fresh `private_key_jwt` client assertion (RFC 7523), signed
//! here per request, which oha cannot do (it repeats one body, and an
//! assertion is accepted once). For comparison it also sends
//! `client_secret_basic` requests, through the same code. `assertion-bench.sh`
//! drives it.
//!
//!   extapps-assertions keygen --alg es256 --out key.pk8 > key.jwk
//!   extapps-assertions load --url URL/oauth2/token --client-id ID --alg es256 --key key.pk8
//!
//! `load` prints one line: `rate=… ok=… failed=… cpu=…` (requests a second
//! answered 200, the counts, and the cores this process used).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
struct Options {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Alg {
    Es256,
    Eddsa,
}

#[derive(Subcommand)]
enum Command {
    /// Makes a key pair: writes the private key (PKCS#8) to `--out` and
    /// prints the public JWK.
    Keygen {
        #[arg(long, value_enum)]
        alg: Alg,
        #[arg(long)]
        out: PathBuf,
        /// The `kid` of the JWK and of the assertions.
        #[arg(long, default_value = "bench")]
        kid: String,
    },
    /// Loads a token endpoint with client-credentials requests.
    Load {
        /// The token endpoint's URL (also the assertions' audience).
        #[arg(long)]
        url: String,
        #[arg(long)]
        client_id: String,
        /// Sign an assertion per request with this algorithm and `--key`;
        /// without it, authenticate with `--secret` (HTTP Basic).
        #[arg(long, value_enum)]
        alg: Option<Alg>,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long, default_value = "bench")]
        kid: String,
        #[arg(long)]
        secret: Option<String>,
        /// Extra form parameters, already encoded (`scope=…`).
        #[arg(long, default_value = "")]
        extra: String,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        warmup: Duration,
    },
}

enum Signer {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What authenticates each request.
enum Credential {
    Basic(String),
    Assertion {
        signer: Signer,
        header: String,
        client_id: String,
        audience: String,
    },
}

impl Credential {
    /// The form body (and the Basic header, for a secret) of one request.
    fn request(&self, extra: &str) -> (String, Option<String>) {
        let mut body = String::from("grant_type=client_credentials");
        if !extra.is_empty() {
            body.push('&');
            body.push_str(extra);
        }
        match self {
            Credential::Basic(header) => (body, Some(header.clone())),
            Credential::Assertion {
                signer,
                header,
                client_id,
                audience,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let claims = serde_json::json!({
                    "iss": client_id, "sub": client_id, "aud": audience,
                    "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
                });
                let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
                let signature = match signer {
                    Signer::Ec(pair) => pair
                        .sign(&SystemRandom::new(), signed.as_bytes())
                        .map(|s| s.as_ref().to_vec())
                        .unwrap_or_default(),
                    Signer::Ed(pair) => pair.sign(signed.as_bytes()).as_ref().to_vec(),
                };
                body.push_str("&client_id=");
                body.push_str(client_id);
                body.push_str(
                    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=",
                );
                body.push_str(&signed);
                body.push('.');
                body.push_str(&b64(&signature));
                (body, None)
            }
        }
    }
}

/// CPU clock ticks this process used so far (user and system).
fn own_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn keygen(alg: Alg, out: &PathBuf, kid: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rng = SystemRandom::new();
    let jwk = match alg {
        Alg::Es256 => {
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
            std::fs::write(out, document.as_ref())?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())?;
            let point = pair.public_key().as_ref();
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                "alg": "ES256", "use": "sig", "kid": kid})
        }
        Alg::Eddsa => {
            let document = Ed25519KeyPair::generate_pkcs8(&rng)?;
            std::fs::write(out, document.as_ref())?;
            let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())?;
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()),
                "alg": "EdDSA", "use": "sig", "kid": kid})
        }
    };
    println!("{jwk}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, client_id, alg, key, kid, secret, extra, connections, duration, warmup) =
        match Options::parse().command {
            Command::Keygen { alg, out, kid } => return keygen(alg, &out, &kid),
            Command::Load {
                url,
                client_id,
                alg,
                key,
                kid,
                secret,
                extra,
                connections,
                duration,
                warmup,
            } => (
                url,
                client_id,
                alg,
                key,
                kid,
                secret,
                extra,
                connections,
                duration,
                warmup,
            ),
        };
    let credential = match (alg, key, secret) {
        (Some(alg), Some(key), _) => {
            let pkcs8 = std::fs::read(key)?;
            let (signer, name) = match alg {
                Alg::Es256 => (
                    Signer::Ec(EcdsaKeyPair::from_pkcs8(
                        &ECDSA_P256_SHA256_FIXED_SIGNING,
                        &pkcs8,
                    )?),
                    "ES256",
                ),
                Alg::Eddsa => (Signer::Ed(Ed25519KeyPair::from_pkcs8(&pkcs8)?), "EdDSA"),
            };
            let header = b64(serde_json::json!({"alg": name, "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes());
            Credential::Assertion {
                signer,
                header,
                client_id: client_id.clone(),
                audience: url.clone(),
            }
        }
        (None, _, Some(secret)) => Credential::Basic(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        )),
        _ => return Err("give --alg and --key, or --secret".into()),
    };
    let credential = Arc::new(credential);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + warmup + duration;
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, url, extra) = (client.clone(), url.clone(), extra.clone());
        let (credential, ok, failed, counting) = (
            credential.clone(),
            ok.clone(),
            failed.clone(),
            counting.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let (body, authorization) = credential.request(&extra);
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body);
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                let success = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        status == reqwest::StatusCode::OK
                    }
                    Err(_) => false,
                };
                if counting.load(Ordering::Relaxed) {
                    if success { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    counting.store(true, Ordering::Relaxed);
    let (started, ticks) = (Instant::now(), own_ticks());
    for worker in workers {
        worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Linux counts process CPU time in USER_HZ ticks, 100 a second.
    let hz = 100.0;
    let cpu = (own_ticks() - ticks) as f64 / hz / seconds;
    println!(
        "rate={:.0} ok={} failed={} cpu={:.2}",
        ok.load(Ordering::Relaxed) as f64 / seconds,
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        cpu
    );
    Ok(())
}
