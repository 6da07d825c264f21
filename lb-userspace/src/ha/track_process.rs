//! `track_process`: one task scans /proc every `POLL` and counts the
//! processes each `track_process` matches (`vrrp::track_process` has the
//! rules). keepalived follows the kernel's process events instead, so it
//! sees a change at once; here a change is seen within `POLL`, then waits
//! out `fork_delay` / `terminate_delay` as keepalived does.

use std::{collections::HashMap, time::Duration};

use log::info;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    config::{ParamMatch, TrackProcess},
    vrrp::track_process::{Matcher, Params, Quorum, comm_of_stat},
};

/// How often /proc is scanned.
pub const POLL: Duration = Duration::from_millis(500);

fn matcher(p: &TrackProcess) -> Matcher {
    Matcher {
        process: p.process.clone(),
        params: p.params.clone(),
        params_match: match p.param_match {
            ParamMatch::None => Params::Any,
            ParamMatch::Exact => Params::Exact,
            ParamMatch::Partial => Params::Partial,
            ParamMatch::Initial => Params::Initial,
        },
        full_command: p.full_command,
    }
}

/// How many processes each matcher matches now.
fn count(matchers: &[Matcher]) -> Vec<u32> {
    let mut counts = vec![0; matchers.len()];
    let need_cmdline = matchers.iter().any(|m| m.full_command);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return counts;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process gone between the listing and the read is not counted.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let comm = comm_of_stat(&stat);
        let cmdline = if need_cmdline && comm.is_some() {
            std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
        } else {
            Vec::new()
        };
        for (m, c) in matchers.iter().zip(&mut counts) {
            if m.matches(comm, &cmdline) {
                *c += 1;
            }
        }
    }
    counts
}

/// Follows every process in `tracked`; each name's up state is on its
/// channel, the first value counted before this returns.
pub fn spawn(
    tracked: &[&TrackProcess],
) -> (HashMap<String, watch::Receiver<bool>>, JoinHandle<()>) {
    let matchers: Vec<Matcher> = tracked.iter().map(|p| matcher(p)).collect();
    let mut quorums: Vec<Quorum> = tracked
        .iter()
        .map(|p| Quorum::new(p.quorum, p.quorum_max, p.fork_delay, p.terminate_delay))
        .collect();
    let now = std::time::Instant::now();
    let first = count(&matchers);
    let mut senders = Vec::new();
    let mut receivers = HashMap::new();
    for ((p, q), n) in tracked.iter().zip(&mut quorums).zip(&first) {
        let up = q.observe(now, *n);
        info!(
            "track_process {}: {n} running, {}",
            p.name,
            if up { "up" } else { "down" }
        );
        let (tx, rx) = watch::channel(up);
        senders.push(tx);
        receivers.insert(p.name.clone(), rx);
    }
    let names: Vec<String> = tracked.iter().map(|p| p.name.clone()).collect();
    let task = tokio::spawn(async move {
        loop {
            // A pending delay ends between two scans: look again then.
            let now = std::time::Instant::now();
            let wake = quorums
                .iter()
                .filter_map(Quorum::pending_until)
                .map(|at| at.saturating_duration_since(now))
                .fold(POLL, Duration::min);
            tokio::time::sleep(wake).await;
            let counts = tokio::task::spawn_blocking({
                let matchers = matchers.clone();
                move || count(&matchers)
            })
            .await
            .unwrap_or_default();
            let now = std::time::Instant::now();
            for (i, n) in counts.iter().enumerate() {
                let up = quorums[i].observe(now, *n);
                if *senders[i].borrow() != up {
                    info!(
                        "track_process {}: {n} running, now {}",
                        names[i],
                        if up { "up" } else { "down" }
                    );
                    let _ = senders[i].send(up);
                }
            }
        }
    });
    (receivers, task)
}
