//! `xdpvs`: the daemon (`run`), config validation (`check`) and the admin
//! CLI (`adm`, ipvsadm's habits).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use xdpvs::{
    api::{
        client, ipvsadm,
        protocol::{Request, Response},
    },
    daemon::{self, RunArgs},
    dataplane::loader::AttachMode,
};

const DEFAULT_SOCKET: &str = "/run/xdpvs.sock";

#[derive(Parser)]
#[command(name = "xdpvs", version, about = "XDP layer-4 load balancer with a keepalived-compatible control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: load XDP on an interface and serve the config's virtual servers.
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
    },
    /// Talk to the running daemon as ipvsadm would (-L -n [--stats]).
    Adm(Adm),
}

#[derive(Args)]
struct Adm {
    /// List the virtual server table.
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    list: bool,
    /// Numeric output (xdpvs never resolves names; accepted for habit).
    #[arg(short = 'n', long = "numeric")]
    _numeric: bool,
    /// Show packet and byte counters.
    #[arg(long)]
    stats: bool,
    /// Only this TCP service (VIP:PORT).
    #[arg(short = 't', long = "tcp-service")]
    tcp_service: Option<SocketAddr>,
    /// Only this UDP service (VIP:PORT).
    #[arg(short = 'u', long = "udp-service")]
    udp_service: Option<SocketAddr>,
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xdpvs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { config, interface, xdp_mode, socket, bpf_object } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(daemon::run(RunArgs { config, interface, xdp_mode, socket, bpf_object }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Adm(adm) => adm_command(adm),
    }
}

fn adm_command(adm: Adm) -> Result<ExitCode> {
    if !adm.list {
        bail!("only -L (list) is available in this version");
    }
    let Response::List { mut services, flow_table_size, .. } = client::call(&adm.socket, &Request::List)? else {
        bail!("unexpected answer from the daemon");
    };
    let filter = match (adm.tcp_service, adm.udp_service) {
        (Some(a), _) => Some(("TCP", a)),
        (None, Some(a)) => Some(("UDP", a)),
        (None, None) => None,
    };
    if let Some((proto, addr)) = filter {
        services.retain(|s| s.protocol == proto && s.vip == addr.ip() && s.port == addr.port());
        if services.is_empty() {
            bail!("no such service");
        }
    }
    let text = if adm.stats {
        ipvsadm::stats(&services, flow_table_size)
    } else {
        ipvsadm::list(&services, flow_table_size)
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
