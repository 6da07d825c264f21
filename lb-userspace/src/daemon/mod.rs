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
use lb_common::Reason;
use log::{error, info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use self::state::State;
use crate::{
    announce::{self, Announcer, VrrpView},
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
    let maps = Maps::new(&mut ebpf)?;
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
    let announcer = config
        .global
        .announce
        .as_ref()
        .map(Announcer::start)
        .transpose()?;
    let announce_require = config.global.announce.as_ref().map(|a| a.require);
    let vrrp_vips: Vec<(String, Vec<std::net::IpAddr>)> = config
        .vrrp_instances
        .iter()
        .map(|i| (i.name.clone(), i.vips.iter().map(|v| v.addr).collect()))
        .collect();
    // VRRP states change inside the instances' tasks: look often, act on change.
    let mut announce_tick = tokio::time::interval(std::time::Duration::from_millis(100));

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
            Some((request, reply)) = api.recv() => {
                let mut response = state.answer(request, &ha);
                if let Some(a) = &announcer {
                    a.annotate(&mut response);
                }
                let _ = reply.send(response);
            }
            _ = announce_tick.tick(), if announcer.is_some() => {
                if let (Some(a), Some(require)) = (&announcer, announce_require) {
                    a.set(announce::decide(
                        &announce::service_views(&state.table),
                        &vrrp_views(&vrrp_vips, &ha),
                        require,
                        false,
                    ));
                }
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
    // Withdraw first (make before break): the routers move the flows to
    // the other nodes while this one still forwards what reaches it.
    if let (Some(a), Some(require)) = (&announcer, announce_require) {
        let stopping = announce::decide(
            &announce::service_views(&state.table),
            &vrrp_views(&vrrp_vips, &ha),
            require,
            true,
        );
        match a.withdraw_all(stopping).await {
            Ok(()) => wait_until_quiet(&state).await,
            Err(e) => error!("withdrawing the VIP routes: {e:#}"),
        }
    }
    // Handover: a stopping master keeps its VIPs, so XDP keeps
    // forwarding until the new master has spoken.
    ha.shutdown().await;
    info!("stopping: detaching XDP from {}", args.interface);
    drop(ebpf);
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// The VRRP instances that hold VIPs, with whether each is master now.
fn vrrp_views(vips: &[(String, Vec<std::net::IpAddr>)], ha: &Ha) -> Vec<VrrpView> {
    let states = ha.status();
    vips.iter()
        .map(|(name, vips)| VrrpView {
            instance: name.clone(),
            vips: vips.clone(),
            master: states
                .iter()
                .any(|s| s.name == *name && s.state == "MASTER"),
        })
        .collect()
}

/// After a withdrawal: until no packet was forwarded for `QUIET` (the
/// routers have moved every flow), at most `WITHDRAW_DRAIN`.
async fn wait_until_quiet(state: &State) {
    const QUIET: std::time::Duration = std::time::Duration::from_millis(500);
    const WITHDRAW_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
    let forwarded = || {
        state
            .maps
            .reason_counters()
            .map(|r| {
                r.iter()
                    .filter(|(reason, _)| {
                        matches!(reason, Reason::Forwarded | Reason::ForwardedIcmpError)
                    })
                    .map(|(_, c)| c.packets)
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    let mut last = forwarded();
    while started.elapsed() < WITHDRAW_DRAIN {
        tokio::time::sleep(QUIET).await;
        let now = forwarded();
        if now == last {
            info!(
                "withdrawn: no packet for {QUIET:?}, {:.1?} after the withdrawal",
                started.elapsed()
            );
            return;
        }
        last = now;
    }
    warn!("withdrawn, still forwarding after {WITHDRAW_DRAIN:?}: stopping anyway");
}
