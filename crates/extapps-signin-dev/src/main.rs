//! `extapps-signin-dev`: the reference sign-in front end, for development
//! only (users from a file, passwords in plain text, no sessions).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;

/// DEVELOPMENT ONLY: signs users in for extapps and asks for their consent.
/// Point extapps at it with `serve --signin-url http://LISTEN/signin`.
#[derive(Parser)]
#[command(name = "extapps-signin-dev", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "EXTAPPS_SIGNIN_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// The extapps server.
    #[arg(long, env = "EXTAPPS_URL", default_value = "http://127.0.0.1:50051")]
    extapps_url: String,

    /// A `signin` caller key (`extapps-server keys create --role signin ...`).
    /// Set it in the environment, not on the command line.
    #[arg(long, env = "EXTAPPS_SIGNIN_KEY", hide_env_values = true)]
    key: String,

    /// Users file (TOML). Default: the example users (alice and bob).
    #[arg(long, env = "EXTAPPS_SIGNIN_USERS")]
    users: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let text = match &cli.users {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => extapps_signin_dev::EXAMPLE_USERS.to_owned(),
    };
    let users = extapps_signin_dev::parse_users(&text)?;
    let extapps = extapps_client::Client::builder(&cli.extapps_url, &cli.key)
        .connect()
        .await
        .map_err(|e| format!("cannot reach extapps at {}: {e}", cli.extapps_url))?;
    let state = extapps_signin_dev::SignIn::new(extapps, users)?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    tracing::warn!(
        listen = %cli.listen,
        signin_url = %format!("http://{}{}", cli.listen, extapps_signin_dev::SIGNIN_PATH),
        "development sign-in front end: users from a file with plain-text passwords; never use it in production"
    );
    axum::serve(listener, extapps_signin_dev::router(state))
        .await
        .map_err(|e| e.to_string())
}
