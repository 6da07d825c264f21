//! `xdpvs run`: loads the data plane, fills it from the configuration, runs
//! VRRP and keeps the maps in step with the real servers' MACs, health and
//! the operator's changes until SIGINT or SIGTERM.
//!
//! One task owns the desired state, the reconciler, the maps and the health
//! checks' lifetime; neighbour resolution, health checks and the admin socket
//! send it events.

mod explain;
mod state;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use log::{error, info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use self::state::State;
use crate::{
    api::server::{self, ApiCall},
    config::{self, Config},
    dataplane::{
        loader::{self, AttachMode, Sizes},
        maps::Maps,
        reconcile::Reconciler,
    },
    ha::Ha,
    metrics, neighbour,
};

pub struct RunArgs {
    pub config: PathBuf,
    pub interface: String,
    pub xdp_mode: AttachMode,
    pub socket: PathBuf,
    pub bpf_object: Option<PathBuf>,
    /// Serve Prometheus metrics here.
    pub metrics: Option<std::net::SocketAddr>,
    /// Flood guard: new flows per second per CPU that are recorded; 0 = no guard.
    pub new_flow_rate: u32,
    /// VIP packets of a service with no usable real go to the local stack
    /// instead of being dropped.
    pub pass_without_real: bool,
}

/// The flood guard's default rate, per CPU; README "Data-plane rules" says why.
pub const DEFAULT_NEW_FLOW_RATE: u32 = 25_000;

/// What `run` tells the XDP program: the flood guard (a burst of one
/// second's worth), no-real handling; IPVS's timeouts until `adm --set`.
fn dataplane_config(args: &RunArgs) -> lb_common::DataplaneConfig {
    let (new_flow_cost_ns, new_flow_burst_ns) =
        lb_common::DataplaneConfig::flood_guard(args.new_flow_rate, args.new_flow_rate);
    lb_common::DataplaneConfig {
        new_flow_cost_ns,
        new_flow_burst_ns,
        flags: if args.pass_without_real {
            lb_common::CONFIG_PASS_NO_REAL
        } else {
            0
        },
        ..Default::default()
    }
}

/// Reads the configuration, logging its warnings; errors refuse it whole.
pub fn load_config(path: &Path) -> Result<Config> {
    match config::load(path) {
        Ok(loaded) => {
            for d in &loaded.diagnostics {
                match d.severity {
                    config::Severity::Note => info!("{d}"),
                    _ => warn!("{d}"),
                }
            }
            Ok(loaded.config)
        }
        Err(e) => bail!("configuration refused:\n{e}"),
    }
}

fn object(args: &RunArgs) -> Result<Vec<u8>> {
    match (&args.bpf_object, loader::embedded_object()) {
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        }
        (None, Some(bytes)) => Ok(bytes.to_vec()),
        (None, None) => bail!(
            "this xdpvs was built without its XDP program: build it with `cargo xtask build`, \
             or pass --bpf-object FILE"
        ),
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let sizes = Sizes::default();
    let mut ebpf = loader::load(&object(&args)?, sizes)?;
    loader::attach(&mut ebpf, &args.interface, args.xdp_mode)?;
    let mut maps = Maps::new(&mut ebpf)?;
    // Before any service exists, so no VIP packet sees a default.
    maps.write_config(&dataplane_config(&args))?;
    let reconciler = Reconciler::new(sizes.services, sizes.reals);
    let (wanted_tx, wanted_rx) = watch::channel(Vec::new());
    let (health_tx, mut health) = mpsc::channel(256);
    let mut state = State::start(
        &config,
        maps,
        reconciler,
        sizes,
        wanted_tx,
        args.config.clone(),
        health_tx,
    )?;
    // VRRP starts once XDP forwards, so a new master serves at once.
    let ha = Ha::start(&config).await?;

    let (mac_tx, mut macs) = mpsc::channel(256);
    let interface = args.interface.clone();
    tokio::spawn(async move {
        if let Err(e) = neighbour::resolve(interface, wanted_rx, mac_tx).await {
            error!("neighbour resolution stopped: {e:#}");
        }
    });
    let (api_tx, mut api) = mpsc::channel::<ApiCall>(16);
    if let Some(addr) = args.metrics {
        metrics::serve(addr, api_tx.clone()).await?;
    }
    server::spawn(&args.socket, api_tx)?;

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut drain_sweep = tokio::time::interval(std::time::Duration::from_secs(2));
    let mut cache_epoch = tokio::time::interval(std::time::Duration::from_nanos(
        lb_common::TOUCH_INTERVAL_NS,
    ));
    info!(
        "xdpvs running on {}; admin socket {}",
        args.interface,
        args.socket.display()
    );
    loop {
        tokio::select! {
            Some((addr, mac)) = macs.recv() => state.mac_changed(addr, mac),
            Some(event) = health.recv() => state.health(event),
            _ = drain_sweep.tick() => state.sweep_drained(),
            _ = cache_epoch.tick() => {
                if let Err(e) = state.maps.next_cache_epoch() {
                    warn!("{e:#}");
                }
            }
            Some((request, reply)) = api.recv() => {
                let _ = reply.send(state.answer(request, &ha));
            }
            _ = sighup.recv() => {
                if let Err(e) = state.reload() {
                    error!("{e:#}");
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    // Handover first: a stopping master keeps its VIPs, so XDP keeps
    // forwarding until the new master has spoken.
    ha.shutdown().await;
    info!("stopping: detaching XDP from {}", args.interface);
    drop(ebpf);
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
