//! `connections`: idle connections held open, and how the server lets go.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::io::AsyncReadExt;

use super::{
    Failure, Options,
    measure::{mib, rss_kib, watch_memory},
};

pub(super) async fn connections(
    options: &Options,
    count: usize,
    patience: Duration,
) -> Result<(), Failure> {
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
