//! `xdpvs run`: loads the data plane, fills it from the configuration, runs
//! VRRP and keeps the maps in step with the real servers' MACs, health and
//! the operator's changes until SIGINT or SIGTERM, or until `ctl upgrade`
//! or SIGUSR2 hands everything to the binary now on disk (`upgrade`).
//!
//! One task owns the desired state, the reconciler, the maps and the health
//! checks' lifetime; neighbour resolution, health checks and the admin socket
//! send it events.

mod explain;
mod host_scripts;
pub mod netns;
mod notify;
mod scale_out;
mod state;
mod upgrade;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use log::{error, info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use self::scale_out::ScaleOut;
use self::state::State;
use crate::{
    api::{
        protocol::{Request, Response},
        server::{self, ApiCall},
    },
    config::{self, Config},
    dataplane::{
        adopt::{self, Dataplane},
        loader::{self, AttachMode},
    },
    ha::{Ha, persist::Store},
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
    /// Members of this group may use the admin socket too.
    pub socket_group: Option<String>,
    /// How the file is read (`--config-id`).
    pub options: config::Options,
    /// Pin the data plane here instead of the interface's default directory.
    pub pin_dir: Option<PathBuf>,
    /// Drop the data plane a previous run left instead of adopting it.
    pub fresh_dataplane: bool,
    /// Leave the data plane forwarding when stopping.
    pub keep_dataplane: bool,
    /// Flood guard: new flows per second per CPU that are recorded; 0 = no guard.
    pub new_flow_rate: u32,
    /// VIP packets of a service with no usable real go to the local stack
    /// instead of being dropped.
    pub pass_without_real: bool,
    /// Where VRRP instance states are recorded (`ha::persist`).
    pub state_dir: PathBuf,
}

/// The flood guard's default rate, per CPU; README "Data-plane rules" says why.
pub const DEFAULT_NEW_FLOW_RATE: u32 = 25_000;

/// What `run` tells the XDP program: the flood guard (a burst of one
/// second's worth), no-real handling; the configuration's `lvs_timeouts`
/// (IPVS's by default) until `adm --set`.
fn dataplane_config(args: &RunArgs, config: &Config) -> lb_common::DataplaneConfig {
    let (new_flow_cost_ns, new_flow_burst_ns) =
        lb_common::DataplaneConfig::flood_guard(args.new_flow_rate, args.new_flow_rate);
    let mut c = lb_common::DataplaneConfig {
        new_flow_cost_ns,
        new_flow_burst_ns,
        flags: if args.pass_without_real {
            lb_common::CONFIG_PASS_NO_REAL
        } else {
            0
        },
        ..Default::default()
    };
    state::with_lvs_timeouts(&mut c, &config.global.lvs_timeouts);
    c
}

/// Removes the admin socket when the daemon ends, however it ends.
struct SocketFile<'a>(&'a Path);

impl Drop for SocketFile<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// The longest `xdpvs run` waits for the reals' MACs before it tells
/// systemd it is ready anyway.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `--config-id`, set once at start: every reload reads the file as start did.
static OPTIONS: std::sync::OnceLock<config::Options> = std::sync::OnceLock::new();

/// Reads the configuration, logging its warnings; errors refuse it whole.
pub fn load_config(path: &Path) -> Result<Config> {
    match config::load_with(path, OPTIONS.get_or_init(config::Options::default)) {
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
    // A process started by an upgrade tells the old one how its start went.
    let mut inherited = upgrade::Inherited::from_env();
    let result = serve(args, &mut inherited).await;
    if let Err(e) = &result {
        inherited.failed(e);
    }
    result
}

async fn serve(args: RunArgs, inherited: &mut upgrade::Inherited) -> Result<()> {
    let origin = upgrade::Origin::capture()?;
    let _ = OPTIONS.set(args.options.clone());
    let config = load_config(&args.config)?;
    // An upgrade's new process is handed the listeners: the node goes on.
    let upgrading = inherited.admin.is_some();
    if !upgrading {
        host_scripts::startup(&config).await;
    }
    // The sockets first: a daemon that cannot have them (another one serves
    // them) stops here, before it touches the interface's XDP program. A
    // daemon started by an upgrade has them from the old one.
    let group = args
        .socket_group
        .as_deref()
        .map(server::SocketGroup::lookup)
        .transpose()?;
    let (admin, socket_file) = match inherited.admin.take() {
        // The path is the old daemon's until this one is ready.
        Some(passed) => (passed, None),
        None => (
            server::bind_admin_socket(&args.socket, group.as_ref())?,
            Some(SocketFile(&args.socket)),
        ),
    };
    let metrics_listener = match (args.metrics, inherited.metrics.take()) {
        (Some(_), Some(passed)) => Some(passed),
        (addr, _) => addr.map(metrics::bind_metrics).transpose()?,
    };
    let mut upgrades = upgrade::Upgrades::new(
        origin,
        upgrade::Handover::new(&admin, metrics_listener.as_ref())?,
    );
    let c = config.global.capacity;
    let object = object(&args)?;
    // Adopted when a previous run (a crash, or the old process of an
    // upgrade, still running) left it: its flows and rings go on.
    let (mut dataplane, mut maps, reconciler) = Dataplane::open_or_adopt(&adopt::Options {
        interface: &args.interface,
        mode: args.xdp_mode,
        object: &object,
        sizes: loader::Sizes {
            services: c.services,
            reals: c.reals,
            flows: c.flows,
            ..loader::Sizes::default()
        },
        pin_dir: args.pin_dir.clone(),
        fresh: args.fresh_dataplane,
    })?;
    let sizes = dataplane.sizes;
    // Before any new service exists, so no VIP packet sees a default.
    maps.write_config(&dataplane_config(&args, &config))?;
    let alerts = crate::alert::Alerts::start(&config);
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
    state.alerts = alerts.clone();
    // VRRP starts once XDP forwards, so a new master serves at once.
    let store = Store::new(&args.state_dir)
        .inspect_err(|e| warn!("VRRP states will not be recorded: {e}"))
        .ok();
    let ha = Ha::start(&config, store, alerts.clone()).await?;
    let mut scale_out = ScaleOut::start(&config, &state.maps, dataplane.adopted)?;
    let mut scale_out_tick = tokio::time::interval(scale_out::TICK);

    let (mac_tx, mut macs) = mpsc::channel(256);
    let interface = args.interface.clone();
    tokio::spawn(async move {
        if let Err(e) = neighbour::resolve(interface, wanted_rx, mac_tx).await {
            error!("neighbour resolution stopped: {e:#}");
        }
    });
    let (api_tx, mut api) = mpsc::channel::<ApiCall>(16);
    // The listeners hold a small share of the descriptors, so a flood of
    // connections cannot starve the health checks.
    let open_files = crate::accept::open_files_limit();
    if let Some(listener) = metrics_listener {
        metrics::serve(
            listener,
            api_tx.clone(),
            metrics::Limits::within(open_files),
        )?;
    }
    server::spawn(admin, api_tx, group, server::Limits::within(open_files))?;

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigusr2 = signal(SignalKind::user_defined2())?;
    let mut watchdog = notify::Watchdog::from_env();
    let mut drain_sweep = tokio::time::interval(std::time::Duration::from_secs(2));
    dataplane.started();
    let mut cache_epoch = tokio::time::interval(std::time::Duration::from_nanos(
        lb_common::TOUCH_INTERVAL_NS,
    ));
    info!(
        "xdpvs running on {} ({} XDP, {} data plane); admin socket {}",
        args.interface,
        dataplane.mode,
        if dataplane.adopted { "adopted" } else { "new" },
        args.socket.display()
    );
    // Ready for systemd once every real's MAC is known, so a unit ordered
    // after this one finds VIP traffic served; at most READY_WAIT after start.
    let ready_by = tokio::time::Instant::now() + READY_WAIT;
    let mut ready = false;
    tell_ready(&state, &mut ready, false);
    inherited.ready();
    // Lazily: a guard made and dropped at once would remove the socket.
    let socket_file = socket_file.unwrap_or_else(|| SocketFile(&args.socket));
    let successor = loop {
        // While a new process starts, the maps stay as its snapshot found
        // them: MAC, health and drain changes wait in their queues (applied
        // here if the upgrade fails; the new process's own checks and
        // neighbour watch find them if it succeeds), a reload waits, and
        // run-time changes are refused.
        let frozen = upgrades.in_progress();
        tokio::select! {
            Some((addr, mac)) = macs.recv(), if !frozen => {
                state.mac_changed(addr, mac);
                tell_ready(&state, &mut ready, false);
            }
            _ = tokio::time::sleep_until(ready_by), if !ready => tell_ready(&state, &mut ready, true),
            Some(event) = health.recv(), if !frozen => state.health(event),
            _ = drain_sweep.tick(), if !frozen => state.sweep_drained(),
            _ = cache_epoch.tick() => {
                if let Err(e) = state.maps.next_cache_epoch() {
                    warn!("{e:#}");
                }
            }
            Some((request, reply)) = api.recv() => {
                if request == Request::Upgrade {
                    begin_upgrade(&mut upgrades, &mut state, Some(reply));
                    continue;
                }
                if frozen && request.writes() {
                    let message = "an upgrade is in progress: the new daemon takes over the \
                                   tables as they are; try again once it has"
                        .to_string();
                    let _ = reply.send(upgrades.origin().stamp(Response::Error { message }));
                    continue;
                }
                let mut response = state.answer(request, &ha);
                scale_out.annotate(&mut response);
                let _ = reply.send(upgrades.origin().stamp(response));
            }
            _ = sigusr2.recv() => begin_upgrade(&mut upgrades, &mut state, None),
            ended = upgrades.finished() => match ended {
                Some(pid) => break Some(pid),
                None => state.take_back_after_upgrade(),
            },
            _ = watchdog.tick() => {}
            _ = scale_out_tick.tick(), if scale_out.is_on() => scale_out.tick(&state, &ha, ready),
            _ = sighup.recv(), if !frozen => {
                if let Err(e) = state.reload() {
                    error!("{e:#}");
                }
            }
            _ = sigint.recv() => break None,
            _ = sigterm.recv() => break None,
        }
    };
    if let Some(pid) = successor {
        // The new process has adopted the data plane, resumed every master
        // and serves the listeners: go quietly, the data plane, the VIPs
        // and the socket's path left to it (the guard only holds a path:
        // forgetting it frees nothing).
        std::mem::forget(socket_file);
        ha.abandon();
        dataplane.leave();
        notify::main_pid(pid);
        upgrades.succeeded(pid).await;
        return Ok(());
    }
    notify::stopping();
    upgrades.cancel().await;
    // Withdraw first (make before break): the routers move the flows to
    // the other nodes while this one still forwards what reaches it.
    scale_out.withdraw(&state, &ha).await;
    // keepalived's `omega`: the down scripts of what stops being served.
    state.omega().await;
    // Handover: a stopping master keeps its VIPs, so XDP keeps
    // forwarding until the new master has spoken.
    ha.shutdown().await;
    alerts.drain().await;
    let result = if args.keep_dataplane {
        dataplane.leave();
        Ok(())
    } else {
        info!("stopping: removing the data plane from {}", args.interface);
        dataplane.remove()
    };
    host_scripts::shutdown(&config).await;
    result
}

/// Starts an upgrade (or joins the one running), keeping what a failed
/// one must put back.
fn begin_upgrade(
    upgrades: &mut upgrade::Upgrades,
    state: &mut State,
    answer: Option<tokio::sync::oneshot::Sender<Response>>,
) {
    if !upgrades.in_progress() {
        state.hold_for_upgrade();
    }
    upgrades.begin(answer);
}

/// Tells systemd the daemon is ready, once: when every real's MAC is known,
/// or (`waited`) when READY_WAIT has passed without that.
fn tell_ready(state: &State, ready: &mut bool, waited: bool) {
    if *ready || !(waited || state.macs_known()) {
        return;
    }
    *ready = true;
    if waited {
        warn!("ready after {READY_WAIT:?} with reals whose MAC is still unknown");
    }
    notify::ready();
}
