//! The command line: subcommands and their dispatch.

mod adm;
mod ctl;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use xdpvs::{
    config,
    daemon::{self, RunArgs},
    dataplane::{loader::AttachMode, pin},
    script_runner,
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
        /// How the program attaches: auto (tc on veth, else native XDP with
        /// generic as the fallback), native, generic, or tc (tcx ingress,
        /// Linux 6.6+).
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
        /// Where VRRP instance states are recorded, so a restart or an
        /// upgrade within Master_Down_Interval resumes as master.
        #[arg(long, default_value = xdpvs::ha::persist::DEFAULT_DIR)]
        state_dir: PathBuf,
        /// Members of this group may use the admin socket too (mode 0660);
        /// without it only root may (mode 0600).
        #[arg(long, value_name = "NAME")]
        socket_group: Option<String>,
        #[command(flatten)]
        id: ConfigId,
        /// Pin the data plane in this bpffs directory instead of
        /// <bpffs>/xdpvs/netns<cookie>-<interface> (bpffs: /run/xdpvs/bpf if
        /// mounted, else /sys/fs/bpf).
        #[arg(long)]
        pin_dir: Option<PathBuf>,
        /// Drop the data plane a previous run left on the interface instead of
        /// adopting it: its flows are lost.
        #[arg(long)]
        fresh_dataplane: bool,
        /// On SIGTERM/SIGINT, leave the data plane forwarding with its last
        /// state (as keepalived's --dont-release-ipvs); `xdpvs down` removes it.
        #[arg(long)]
        keep_dataplane: bool,
        /// Flood guard: new flows per second per CPU recorded in the flow
        /// table (a burst of one second's worth); above it new flows are
        /// forwarded but not recorded. 0 turns the guard off.
        #[arg(long, default_value_t = daemon::DEFAULT_NEW_FLOW_RATE)]
        new_flow_rate: u32,
        /// While a service has no usable real, pass its packets to the local
        /// stack (the old behaviour) instead of dropping them.
        #[arg(long)]
        pass_without_real: bool,
    },
    /// Remove the data plane a previous run left on an interface (detaches XDP, unpins its maps).
    Down {
        /// The interface, in this network namespace.
        #[arg(long, short = 'i')]
        interface: String,
        /// The bpffs directory it was pinned in, if not the default.
        #[arg(long)]
        pin_dir: Option<PathBuf>,
    },
    /// Validate a keepalived.conf without root: exit 0 when xdpvs can run it.
    Check {
        file: PathBuf,
        /// Print the model xdpvs understood, defaults filled in.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        id: ConfigId,
    },
    /// ipvsadm's habits against the running daemon (-L -n, -A/-E/-D, -a/-e/-d, -Z, -C).
    Adm(adm::Adm),
    /// Status, drain, weight, reload and explain against the running daemon.
    Ctl(ctl::Ctl),
}

/// keepalived's `-i`/`--config-id`, for `@ID` conditional lines.
#[derive(clap::Args)]
pub struct ConfigId {
    /// Read `@ID` lines for this ID (and `@^ID` lines for any other);
    /// defaults to the node name up to its first dot, as in keepalived.
    #[arg(long = "config-id", value_name = "ID")]
    config_id: Option<String>,
}

impl ConfigId {
    fn options(self) -> config::Options {
        let node = || {
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
            let short = name.trim().split('.').next()?.to_string();
            (!short.is_empty()).then_some(short)
        };
        config::Options {
            config_id: self.config_id.or_else(node),
        }
    }
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
            state_dir,
            socket_group,
            id,
            pin_dir,
            fresh_dataplane,
            keep_dataplane,
            new_flow_rate,
            pass_without_real,
        } => {
            let options = id.options();
            // Before the runtime: its threads must start in the namespace.
            daemon::netns::enter_configured(&config, &options)?;
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
                state_dir,
                socket_group,
                options,
                pin_dir,
                fresh_dataplane,
                keep_dataplane,
                new_flow_rate,
                pass_without_real,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Down { interface, pin_dir } => down(&interface, pin_dir),
        Command::Check { file, json, id } => Ok(check(&file, json, &id.options())),
        Command::Adm(a) => adm::run(a),
        Command::Ctl(c) => ctl::run(c),
    }
}

fn down(interface: &str, pin_dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match pin_dir {
        Some(dir) => dir,
        None => pin::default_dir(interface)?,
    };
    match pin::remove(&dir)? {
        0 => println!(
            "nothing to remove: no xdpvs data plane is pinned for {interface} in this network \
             namespace ({} does not exist)",
            dir.display()
        ),
        n => println!(
            "removed the data plane on {interface}: program detached, {n} pins removed from {}; \
             its flows are lost",
            dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(file: &std::path::Path, json: bool, options: &config::Options) -> ExitCode {
    match config::load_with(file, options) {
        Ok(loaded) => {
            for d in &loaded.diagnostics {
                eprintln!("{d}");
            }
            for w in xdpvs::health::unavailable(&loaded.config) {
                eprintln!("{w}");
            }
            let at = config::Location::of(file);
            let scripts = script_runner::audit(&loaded.config, &at, &script_runner::RealFs);
            for d in &scripts {
                eprintln!("{d}");
            }
            let refused = scripts
                .iter()
                .filter(|d| d.severity == config::Severity::Error)
                .count();
            if refused > 0 {
                eprintln!("{}: refused: {refused} errors", file.display());
                return ExitCode::FAILURE;
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
                eprintln!("{}", config::mail::summary(c));
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
