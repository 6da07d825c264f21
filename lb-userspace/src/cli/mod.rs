//! The command line: subcommands and their dispatch.

mod adm;
mod ctl;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use xdpvs::{
    config,
    daemon::{self, RunArgs},
    dataplane::loader::AttachMode,
};

pub const DEFAULT_SOCKET: &str = "/run/xdpvs.sock";

#[derive(Parser)]
#[command(
    name = "xdpvs",
    version,
    about = "XDP layer-4 load balancer with a keepalived-compatible control plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: XDP on an interface, the config's virtual servers and VRRP instances.
    Run {
        /// keepalived-style configuration file.
        #[arg(long, short = 'f')]
        config: PathBuf,
        /// Interface that receives VIP traffic (and sends it back out to the reals).
        #[arg(long, short = 'i')]
        interface: String,
        /// XDP attach mode: auto (native, else generic), native or generic.
        #[arg(long, default_value = "auto")]
        xdp_mode: AttachMode,
        /// Admin socket.
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Load this XDP object instead of the embedded one.
        #[arg(long)]
        bpf_object: Option<PathBuf>,
        /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9120).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
        /// Members of this group may use the admin socket too (mode 0660);
        /// without it only root may (mode 0600).
        #[arg(long, value_name = "NAME")]
        socket_group: Option<String>,
    },
    /// Validate a keepalived.conf without root: exit 0 when xdpvs can run it.
    Check {
        file: PathBuf,
        /// Print the model xdpvs understood, defaults filled in.
        #[arg(long)]
        json: bool,
    },
    /// ipvsadm's habits against the running daemon (-L -n, -A/-E/-D, -a/-e/-d, -Z, -C).
    Adm(adm::Adm),
    /// Status, drain, weight, reload and explain against the running daemon.
    Ctl(ctl::Ctl),
}

pub fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run {
            config,
            interface,
            xdp_mode,
            socket,
            bpf_object,
            metrics,
            socket_group,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(daemon::run(RunArgs {
                config,
                interface,
                xdp_mode,
                socket,
                bpf_object,
                metrics,
                socket_group,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, json } => Ok(check(&file, json)),
        Command::Adm(a) => adm::run(a),
        Command::Ctl(c) => ctl::run(c),
    }
}

fn check(file: &std::path::Path, json: bool) -> ExitCode {
    match config::load(file) {
        Ok(loaded) => {
            for d in &loaded.diagnostics {
                eprintln!("{d}");
            }
            for w in xdpvs::health::unavailable(&loaded.config) {
                eprintln!("{w}");
            }
            if json {
                println!("{}", config::to_json(&loaded.config));
            } else {
                let c = &loaded.config;
                eprintln!(
                    "{}: OK: {} virtual servers, {} VRRP instances, {} scripts",
                    file.display(),
                    c.virtual_servers.len(),
                    c.vrrp_instances.len(),
                    c.vrrp_scripts.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            let errors = e
                .diagnostics
                .iter()
                .filter(|d| d.severity == config::Severity::Error)
                .count();
            eprintln!("{}: refused: {errors} errors", file.display());
            ExitCode::FAILURE
        }
    }
}
