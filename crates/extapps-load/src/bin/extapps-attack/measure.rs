//! Memory and CPU time of the server, this process and the machine, from `/proc`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// The server's resident memory in KiB, or `None` once it is gone.
pub(super) fn rss_kib(pid: u32) -> Option<u64> {
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
pub(super) fn watch_memory(pid: u32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
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
pub(super) struct CpuTicks {
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

pub(super) fn cpu_now(server_pid: u32) -> CpuTicks {
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
pub(super) fn cpu_used(from: &CpuTicks, to: &CpuTicks) -> String {
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

pub(super) fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}
