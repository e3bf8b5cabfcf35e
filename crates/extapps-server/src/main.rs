//! `extapps-server`: run the server, apply migrations, manage caller keys.

use std::process::ExitCode;

use clap::Parser;
use extapps_server::config::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

// mimalloc returns freed memory to the system within moments; glibc's
// allocator kept what a flood of connections or verifications had used
// (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr: stdout carries command output such as a new key.
    let filter = EnvFilter::try_new(&cli.global.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.global.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match extapps_server::commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
