//! `xdpvs`: the daemon (`run`), configuration checks (`check`), the
//! ipvsadm-style admin CLI (`adm`) and the control CLI (`ctl`).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use log::{info, warn};

/// The daemon's descriptors are its health checks' sockets, its listeners'
/// connections and its maps: systemd's default soft limit of 1,024 is
/// little for that, and the hard limit is there to be used (systemd's own
/// advice). Epoll has no FD_SETSIZE, so nothing here breaks above 1,024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        warn!(
            "cannot read the open files limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        info!("open files limit: {} (soft = hard)", limit.rlim_cur);
        return;
    }
    let soft = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        info!(
            "open files limit raised from {soft} to the hard limit {}",
            limit.rlim_max
        );
    } else {
        warn!(
            "cannot raise the open files limit from {soft} to {}: {}",
            limit.rlim_max,
            std::io::Error::last_os_error()
        );
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let command = cli::Cli::parse().command;
    if matches!(command, cli::Command::Run { .. }) {
        raise_open_files_limit();
    }
    match cli::dispatch(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xdpvs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
