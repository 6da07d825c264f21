//! The daemon's state and everything that changes it: MACs, health checks,
//! reloads, the admin API. Every change goes through `apply`, which hands the
//! desired services to the reconciler and its writes to the maps.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::PoisonError,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use log::{error, info, warn};
use tokio::sync::{mpsc, watch};

use super::{explain, load_config};
use crate::{
    api::protocol::{
        FlowScanStatus, QuorumStatus, RealRef, RealStatus, ReasonCount, Request, Response,
        ServiceRef, ServiceStatus, TableSizes, Traffic,
    },
    config::{Config, Location, NotifyScript, Severity},
    dataplane::{
        flow_scan::{self, Scanner},
        keys::{Mac, Proto, format_mac},
        loader::Sizes,
        maps::Maps,
        reconcile::{RealId, Reconciler, ServiceId},
    },
    ha::{Ha, scripts::Notifier},
    health::{
        self,
        runner::{Addresses, CheckSpec, HealthEvent, Runner},
    },
    metrics,
    script_runner::{Preparer, RealFs, Script},
    services::{QuorumChange, Table, TableError},
};

/// What an `omega` script may take at shutdown (keepalived: one second).
const OMEGA_WAIT: Duration = Duration::from_secs(1);

/// How often the flow table is counted (a slow scan pauses as long as it took).
const FLOW_SCAN_EVERY: Duration = Duration::from_secs(1);

pub struct State {
    pub table: Table,
    pub maps: Maps,
    pub reconciler: Reconciler,
    sizes: Sizes,
    /// The reals whose MACs the neighbour task must resolve.
    wanted: watch::Sender<Vec<IpAddr>>,
    config_path: PathBuf,
    /// The health checks of the configuration in force, and where they report.
    checks: Runner,
    health_events: mpsc::Sender<HealthEvent>,
    /// Per-real flow counts, read off this loop.
    flows: Scanner,
    /// Counts from a scan that began before this may predate a drain.
    reloaded_at: Instant,
    /// The configuration's `lvs_timeouts`: a reload that changes them
    /// writes them (over `adm --set`).
    lvs_timeouts: crate::config::LvsTimeouts,
    /// The data plane's settings when an upgrade began (see
    /// [`State::take_back_after_upgrade`]).
    held_settings: Option<lb_common::DataplaneConfig>,
    /// Runs `quorum_up` / `quorum_down` and the reals' `notify_up` / `notify_down`.
    scripts: Notifier,
    /// Those scripts as the configuration in force has them.
    notifies: Notifies,
    /// The host's addresses, for `ha_suspend`.
    addresses: Addresses,
    /// `smtp_alert` mails of the reals' and services' changes.
    pub alerts: crate::alert::Alerts,
}

/// The scripts run on a change, as one configuration has them.
#[derive(Default)]
struct Notifies {
    /// Every line below, checked and resolved by the script runner (a
    /// refused one is absent).
    scripts: HashMap<NotifyScript, Script>,
    /// Each real's `notify_up` and `notify_down` lines.
    reals: HashMap<(ServiceId, RealId), (Option<NotifyScript>, Option<NotifyScript>)>,
    /// The `omega` services' `quorum_down` lines, run at shutdown.
    omega: Vec<(ServiceId, Option<NotifyScript>)>,
}

impl Notifies {
    /// `config`'s quorum and real scripts, each line checked once.
    fn prepare(config: &Config, preparer: &mut Preparer<'_>) -> Self {
        let mut notifies = Self::default();
        // A virtual_server group is one virtual server to keepalived: its
        // reals' scripts and its omega run once, for its first member.
        let mut groups = std::collections::HashSet::new();
        for vs in &config.virtual_servers {
            let sid = (vs.addr, vs.port, vs.protocol.into());
            let first = vs.group.as_ref().is_none_or(|g| groups.insert(g.as_str()));
            if vs.omega && first {
                notifies.omega.push((sid, vs.quorum.down_script.clone()));
            }
            let reals = vs.reals.iter().filter(|_| first).map(|r| {
                notifies.reals.insert(
                    (sid, (r.addr, r.port)),
                    (r.notify_up.clone(), r.notify_down.clone()),
                );
                (&r.location, [&r.notify_up, &r.notify_down])
            });
            let lines: Vec<_> =
                std::iter::once((&vs.location, [&vs.quorum.up_script, &vs.quorum.down_script]))
                    .chain(reals)
                    .collect();
            for (at, pair) in lines {
                for line in pair.into_iter().flatten() {
                    if !notifies.scripts.contains_key(line)
                        && let Some(script) = preparer.prepare_notify(line, at)
                    {
                        notifies.scripts.insert(line.clone(), script);
                    }
                }
            }
        }
        notifies
    }

    /// The `notify_down` lines of the reals `next` no longer has that were
    /// live in `table` (the one before the reload): a real left the
    /// configuration, alone or with its whole virtual server.
    fn removed_downs<'a>(
        &'a self,
        next: &Notifies,
        table: &Table,
    ) -> Vec<((ServiceId, RealId), &'a NotifyScript)> {
        let live = |(sid, rid): &(ServiceId, RealId)| {
            table
                .services
                .get(sid)
                .and_then(|s| s.reals.get(rid))
                .is_some_and(|r| r.healthy)
        };
        self.reals
            .iter()
            .filter(|(key, _)| !next.reals.contains_key(key) && live(key))
            .filter_map(|(key, (_, down))| Some((*key, down.as_ref()?)))
            .collect()
    }
}

fn service_id(s: &ServiceRef) -> ServiceId {
    (s.vip, s.port, if s.udp { Proto::Udp } else { Proto::Tcp })
}

fn real_id(r: &RealRef) -> (IpAddr, u16) {
    (r.addr, r.port)
}

fn traffic(c: lb_common::Counters) -> Traffic {
    Traffic {
        packets: c.packets,
        bytes: c.bytes,
        new_flows: c.new_flows,
    }
}

impl State {
    /// The state for `config`, its services in the maps, its checks running.
    pub fn start(
        config: &Config,
        maps: Maps,
        reconciler: Reconciler,
        sizes: Sizes,
        wanted: watch::Sender<Vec<IpAddr>>,
        config_path: PathBuf,
        health_events: mpsc::Sender<HealthEvent>,
    ) -> Result<Self> {
        let flows = Scanner::spawn(maps.flow_table(), maps.config_handle()?, FLOW_SCAN_EVERY)
            .context("starting the flow-table scanner")?;
        let mut table = Table::from_config(config);
        let addresses = health::presence::watch_host();
        table.adopt_health(config, reconciler.adopted_health());
        let mut state = Self {
            table,
            flows,
            reloaded_at: Instant::now(),
            lvs_timeouts: config.global.lvs_timeouts,
            held_settings: None,
            scripts: Notifier::spawn().0,
            notifies: Notifies::default(),
            addresses: addresses.clone(),
            alerts: crate::alert::Alerts::default(),
            maps,
            reconciler,
            sizes,
            wanted,
            config_path,
            checks: Runner::spawn(Vec::new(), health_events.clone(), addresses),
            health_events,
        };
        let mut preparer = Preparer::new(config, &RealFs);
        // Before `apply`, whose quorum changes run them.
        state.notifies = Notifies::prepare(config, &mut preparer);
        let writes = state.apply().context("filling the data plane")?;
        info!("configuration in the data plane: {writes} map writes");
        let specs = state.check_specs(config, &mut preparer, true);
        state.report(preparer);
        state.checks = Runner::spawn(specs, state.health_events.clone(), state.addresses.clone());
        if config.global.rs_init_notifies {
            state.initial_notifies();
        }
        Ok(state)
    }

    /// Brings the maps to the table's state; returns how many writes it took.
    pub fn apply(&mut self) -> Result<usize> {
        let writes = self.reconciler.set_services(self.table.specs())?;
        if let Err(e) = self.maps.apply(&writes) {
            self.resync();
            return Err(e);
        }
        for change in self.table.take_quorum_changes() {
            self.quorum_changed(change);
        }
        let addrs = self.reconciler.real_addresses();
        // Only a new set makes the neighbour task look again.
        self.wanted.send_if_modified(|wanted| {
            let changed = *wanted != addrs;
            if changed {
                *wanted = addrs;
            }
            changed
        });
        Ok(writes.len())
    }

    /// An upgrade begins: the settings are kept for
    /// [`State::take_back_after_upgrade`] (nothing writes them meanwhile:
    /// run-time changes are refused until the upgrade ends).
    pub fn hold_for_upgrade(&mut self) {
        self.held_settings = self
            .maps
            .config()
            .inspect_err(|e| warn!("upgrade: reading the data plane's settings: {e:#}"))
            .ok();
    }

    /// An upgrade failed and this daemon runs on. The new process ran the
    /// normal start, which may have written its configuration (the file as
    /// it is now, perhaps edited since this daemon read it) into the maps
    /// before it failed: the maps are read back and brought to this
    /// daemon's table again, and the settings written back as they were.
    pub fn take_back_after_upgrade(&mut self) {
        if let Some(settings) = self.held_settings.take()
            && let Err(e) = self.maps.write_config(&settings)
        {
            error!("upgrade: writing the data plane's settings back: {e:#}");
        }
        if let Err(e) = self.maps.reread_services() {
            error!("upgrade: {e:#}");
        }
        self.resync();
        match self.apply() {
            Ok(0) => info!("upgrade: the data plane is as this daemon left it"),
            Ok(writes) => warn!(
                "upgrade: the new process had changed the data plane before it failed: \
                 {writes} map writes put this daemon's tables back"
            ),
            Err(e) => error!("upgrade: putting this daemon's tables back: {e:#}"),
        }
    }

    /// After a write the kernel refused: the reconciler takes the maps'
    /// contents as its record, so the next change writes what is missing.
    fn resync(&mut self) {
        match self.maps.snapshot() {
            Ok(kernel) => self.reconciler.resync(&kernel),
            Err(e) => error!("reading the maps back after a failed write: {e:#}"),
        }
    }

    /// A service gained or lost its quorum (now in the maps): said, and its
    /// script run, as keepalived does.
    fn quorum_changed(&self, c: QuorumChange) {
        let service = format!(
            "{} {}",
            c.service.2,
            SocketAddr::new(c.service.0, c.service.1)
        );
        if c.up {
            info!(
                "{service}: gained quorum, live weight {} >= {}",
                c.live_weight, c.threshold
            );
        } else {
            warn!(
                "{service}: lost quorum, live weight {} < {}",
                c.live_weight, c.threshold
            );
        }
        self.alerts
            .quorum(c.service, c.up, c.threshold, c.live_weight);
        if let Some(line) = c.script {
            match self.notifies.scripts.get(&line) {
                Some(script) => {
                    info!("{service}: running {line}");
                    self.scripts.run(script.clone());
                }
                None => warn!("{service}: {line} not run: the script was refused at load"),
            }
        }
    }

    /// A real went up or down: its `notify_up` / `notify_down` runs, as
    /// keepalived runs it when the real's checks change its state.
    fn notify_real(&self, sid: &ServiceId, rid: &RealId, up: bool, service: &str) {
        let Some((on_up, on_down)) = self.notifies.reals.get(&(*sid, *rid)) else {
            return;
        };
        let Some(line) = (if up { on_up } else { on_down }) else {
            return;
        };
        let real = SocketAddr::new(rid.0, rid.1);
        match self.notifies.scripts.get(line) {
            Some(script) => {
                info!("real {real} of {service}: running {line}");
                self.scripts.run(script.clone());
            }
            None => {
                warn!("real {real} of {service}: {line} not run: the script was refused at load")
            }
        }
    }

    /// keepalived's `rs_init_notifies`: at start, each real that starts up
    /// gets its `notify_up` (one starting down waits for its checks).
    fn initial_notifies(&self) {
        for (sid, service) in &self.table.services {
            let name = format!("{} {}", sid.2, SocketAddr::new(sid.0, sid.1));
            for (rid, _) in service.reals.iter().filter(|(_, r)| r.healthy) {
                self.notify_real(sid, rid, true, &name);
            }
        }
    }

    /// keepalived's `omega` at shutdown: each live real's `notify_down`, then
    /// the service's `quorum_down`, each given OMEGA_WAIT to finish.
    pub async fn omega(&self) {
        let mut runs = Vec::new();
        for (sid, quorum_down) in &self.notifies.omega {
            let Some(service) = self.table.services.get(sid) else {
                continue;
            };
            let live = service.reals.iter().filter(|(_, r)| r.healthy);
            let downs = live.filter_map(|(rid, _)| {
                self.notifies
                    .reals
                    .get(&(*sid, *rid))
                    .and_then(|(_, down)| down.as_ref())
            });
            for line in downs.chain(quorum_down) {
                if let Some(script) = self.notifies.scripts.get(line) {
                    info!(
                        "{} {}: shutting down (omega): running {line}",
                        sid.2,
                        SocketAddr::new(sid.0, sid.1)
                    );
                    runs.push(script.run(OMEGA_WAIT));
                }
            }
        }
        futures::future::join_all(runs).await;
    }

    /// Whether every real's MAC is known: the data plane can serve them all.
    pub fn macs_known(&self) -> bool {
        self.reconciler
            .real_addresses()
            .iter()
            .all(|a| self.reconciler.mac(a).is_some())
    }

    pub fn mac_changed(&mut self, addr: IpAddr, mac: Option<Mac>) {
        let applied = self
            .reconciler
            .set_mac(addr, mac)
            .map_err(anyhow::Error::from)
            .and_then(|writes| self.maps.apply(&writes));
        if applied.is_err() {
            self.resync();
        }
        match (applied, mac) {
            (Err(e), _) => error!("updating the data plane for real {addr}: {e:#}"),
            (Ok(()), Some(m)) => info!("real {addr} is at {}: it takes traffic", format_mac(&m)),
            (Ok(()), None) => warn!("real {addr}: MAC unknown, it gets no traffic"),
        }
    }

    /// A health check's verdict: applied at once, logged with its reason, how
    /// long detection took and how long the maps took after the decision.
    pub fn health(&mut self, e: HealthEvent) {
        let rid = SocketAddr::new(e.real.0, e.real.1);
        let service = format!(
            "{} {}",
            e.service.2,
            SocketAddr::new(e.service.0, e.service.1)
        );
        if !self.checks.sent(&e) {
            // Queued by the checks a reload replaced: the new ones started
            // from the table's state and report only changes from it.
            info!(
                "real {rid} of {service}: {} from the checks before the reload ignored",
                if e.up { "UP" } else { "DOWN" }
            );
            return;
        }
        let was_up = self
            .table
            .services
            .get(&e.service)
            .and_then(|s| s.reals.get(&e.real))
            .map(|r| r.healthy);
        if !self
            .table
            .set_health(&e.service, &e.real, e.up, e.weight, e.reason.clone())
        {
            return;
        }
        if was_up != Some(e.up) {
            self.notify_real(&e.service, &e.real, e.up, &service);
        }
        if let Err(err) = self.apply() {
            error!("real {rid} of {service}: updating the data plane: {err:#}");
            return;
        }
        let to_maps = e.decided_at.elapsed();
        let during_scan = if self.flows.scanning() {
            ", during a flow-table scan"
        } else {
            ""
        };
        let detection = e
            .detected_in
            .map(|d| format!(", detected in {d:.1?}"))
            .unwrap_or_default();
        let weight = e
            .weight
            .map(|w| format!(", weight {w}"))
            .unwrap_or_default();
        if e.up {
            info!(
                "real {rid} of {service}: UP{weight} ({}); maps updated {to_maps:.1?} after the decision{during_scan}",
                e.reason
            );
        } else {
            warn!(
                "real {rid} of {service}: DOWN ({}){detection}; maps updated {to_maps:.1?} after the decision{during_scan}",
                e.reason
            );
        }
        self.alerts.real(e.service, e.real, e.up);
        if let Some(s) = self.table.services.get(&e.service).and_then(|s| s.sorry()) {
            warn!("{service}: no real can take traffic, sorry server {s} stands in");
        }
    }

    /// Removes the reals a reload took out once the last flow-table scan
    /// (begun after the reload) found none of their flows still going.
    pub fn sweep_drained(&mut self) {
        let Some(flows) = self
            .flows
            .snapshot()
            .filter(|s| s.started >= self.reloaded_at)
        else {
            return;
        };
        let mut gone = Vec::new();
        for (sid, rid) in self.table.draining() {
            let number = self
                .reconciler
                .service_index(&sid)
                .and_then(|i| i.reals.iter().find(|(r, _)| *r == rid).map(|(_, n)| *n));
            if number.is_some_and(|n| flows.real(n).live == 0) {
                gone.push((sid, rid));
            }
        }
        if gone.is_empty() {
            return;
        }
        for (sid, rid) in &gone {
            self.table.drained(sid, rid);
        }
        match self.apply() {
            Ok(_) => {
                for (sid, rid) in gone {
                    info!(
                        "real {} of {} {} drained: removed",
                        SocketAddr::new(rid.0, rid.1),
                        sid.2,
                        SocketAddr::new(sid.0, sid.1)
                    );
                }
            }
            Err(e) => error!("removing drained reals: {e:#}"),
        }
    }

    /// The health checks the table needs, each starting from the real's
    /// current state so a reload does not make it flap.
    /// `starting`: the daemon's first checks (see `CheckSpec::unjudged`).
    fn check_specs(
        &self,
        config: &Config,
        scripts: &mut Preparer<'_>,
        starting: bool,
    ) -> Vec<CheckSpec> {
        let mut specs = Vec::new();
        let auth = health::tls::ClientAuth::load(config.ssl.as_ref());
        for vs in &config.virtual_servers {
            let proto = Proto::from(vs.protocol);
            for real in &vs.reals {
                let Some(mut spec) = health::spec_for(vs, real, proto, scripts, &auth) else {
                    continue;
                };
                let current = self
                    .table
                    .services
                    .get(&spec.service)
                    .and_then(|s| s.reals.get(&spec.real));
                if let Some(r) = current {
                    spec.start_up = r.healthy;
                }
                spec.unjudged = starting;
                specs.push(spec);
            }
        }
        specs
    }

    /// keepalived: a live real the new configuration removes is taken
    /// down, and its notify_down (as the old one had it) runs.
    fn notify_removed(&self, (old_table, old): &(Table, Notifies)) {
        for (key, line) in old.removed_downs(&self.notifies, old_table) {
            if let Some(script) = old.scripts.get(line) {
                info!(
                    "real {} of {} {}: removed by the reload: running {line}",
                    SocketAddr::new(key.1.0, key.1.1),
                    key.0.2,
                    SocketAddr::new(key.0.0, key.0.1),
                );
                self.scripts.run(script.clone());
            }
        }
    }

    /// What the script runner said about the configuration's scripts.
    fn report(&self, preparer: Preparer<'_>) {
        for d in preparer.finish(&Location::of(&self.config_path)) {
            match d.severity {
                Severity::Error => error!("{d}"),
                _ => warn!("{d}"),
            }
        }
    }

    /// Re-reads the configuration, applies the difference and restarts the
    /// health checks; a refused configuration changes nothing. VRRP instances
    /// keep running as they are: changing them takes a restart.
    pub fn reload(&mut self) -> Result<String> {
        let config = load_config(&self.config_path)
            .context("reload refused, keeping the running configuration")?;
        let mut next = self.table.clone();
        let overridden = next.reload(&config);
        let mut preparer = Preparer::new(&config, &RealFs);
        // Before `apply`: a quorum change it makes runs the new scripts.
        let notifies = Notifies::prepare(&config, &mut preparer);
        let previous = (
            std::mem::replace(&mut self.table, next),
            std::mem::replace(&mut self.notifies, notifies),
        );
        if let Err(e) = self.apply() {
            (self.table, self.notifies) = previous;
            return Err(e.context("reload could not be applied, keeping the running configuration"));
        }
        self.notify_removed(&previous);
        self.reloaded_at = Instant::now();
        // The table is in force: the reload goes on to its checks whatever
        // becomes of the timeouts, which are only reported.
        let timeouts = self.write_lvs_timeouts(config.global.lvs_timeouts);
        for o in &overridden {
            warn!("reload: {o}");
        }
        let c = config.global.capacity;
        if (c.services, c.reals, c.flows)
            != (self.sizes.services, self.sizes.reals, self.sizes.flows)
        {
            warn!(
                "reload: xdpvs_max_* changed to {} services, {} reals, {} flows; the tables keep \
                 {}, {}, {} until a restart with --fresh-dataplane (which loses the flows)",
                c.services,
                c.reals,
                c.flows,
                self.sizes.services,
                self.sizes.reals,
                self.sizes.flows
            );
        }
        let message = format!(
            "reloaded {}: {} services{}",
            self.config_path.display(),
            self.table.services.len(),
            if overridden.is_empty() {
                String::new()
            } else {
                format!("; {}", overridden.join("; "))
            }
        );
        info!("{message}");
        let specs = self.check_specs(&config, &mut preparer, false);
        self.report(preparer);
        self.checks = Runner::spawn(specs, self.health_events.clone(), self.addresses.clone());
        self.alerts.reconfigure(&config);
        timeouts.map(|()| message).map_err(|e| {
            e.context(
                "reload applied, but writing its lvs_timeouts failed (the next reload tries again)",
            )
        })
    }

    /// Writes `lvs_timeouts` into the data plane when they changed.
    fn write_lvs_timeouts(&mut self, timeouts: crate::config::LvsTimeouts) -> Result<()> {
        if timeouts == self.lvs_timeouts {
            return Ok(());
        }
        let mut c = self.maps.config()?;
        with_lvs_timeouts(&mut c, &timeouts);
        self.maps.write_config(&c)?;
        self.lvs_timeouts = timeouts;
        info!("reload: lvs_timeouts changed");
        Ok(())
    }

    pub fn answer(&mut self, request: Request, ha: &Ha) -> Response {
        let done = |message: String| Response::Done { message };
        let result = match request {
            Request::List => self.services().map(|services| Response::List {
                services,
                reasons: self.reasons(),
                flow_table_size: self.sizes.flows,
            }),
            Request::Status => self.services().map(|services| Response::Status {
                services,
                instances: serde_json::to_value(ha.status()).unwrap_or_default(),
                daemon: None,
                announcements: Vec::new(),
                sync: None,
                flow_scan: self.flow_scan(),
                capacity: Some(TableSizes {
                    services: self.sizes.services,
                    reals: self.sizes.reals,
                    flows: self.sizes.flows,
                }),
            }),
            Request::Reload => self.reload().map(done),
            Request::Explain {
                udp,
                client,
                client_port,
                vip,
                port,
            } => {
                let proto = if udp { Proto::Udp } else { Proto::Tcp };
                explain::explain(self, proto, (client, client_port), (vip, port))
                    .map(|text| Response::Explain { text })
            }
            Request::Metrics => self.services().map(|services| Response::Metrics {
                text: metrics::render(
                    &services,
                    &self.reasons(),
                    &ha.status(),
                    self.flow_scan().as_ref(),
                ),
            }),
            Request::ZeroCounters => self
                .maps
                .zero_counters()
                .map(|()| done("counters zeroed".into())),
            Request::ZeroService { service } => self.zero_service(&service).map(done),
            Request::Timeouts => self.maps.config().map(|c| Response::Timeouts {
                tcp: c.timeout_s(lb_common::PROTO_TCP, false),
                tcpfin: c.timeout_s(lb_common::PROTO_TCP, true),
                udp: c.timeout_s(lb_common::PROTO_UDP, false),
            }),
            Request::SetTimeouts { tcp, tcpfin, udp } => {
                self.set_timeouts(tcp, tcpfin, udp).map(done)
            }
            change => self.change(change).map(done),
        };
        result.unwrap_or_else(|e| Response::Error {
            message: format!("{e:#}"),
        })
    }

    /// `adm --set TCP TCPFIN UDP`: as ipvsadm, 0 keeps a value. They hold
    /// until the daemon stops (a reload keeps them too).
    fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) -> Result<String> {
        let mut c = self.maps.config()?;
        for (field, value) in [
            (&mut c.tcp_timeout_s, tcp),
            (&mut c.tcpfin_timeout_s, tcpfin),
            (&mut c.udp_timeout_s, udp),
        ] {
            if value != 0 {
                *field = value;
            }
        }
        self.maps.write_config(&c)?;
        let (tcp, tcpfin, udp) = (
            c.timeout_s(lb_common::PROTO_TCP, false),
            c.timeout_s(lb_common::PROTO_TCP, true),
            c.timeout_s(lb_common::PROTO_UDP, false),
        );
        info!("admin: timeouts (tcp tcpfin udp) set to {tcp} {tcpfin} {udp}");
        Ok(format!("timeouts (tcp tcpfin udp): {tcp} {tcpfin} {udp}"))
    }

    /// A runtime change to the table, applied at once; it holds until reload.
    fn change(&mut self, request: Request) -> Result<String> {
        let before = self.table.clone();
        let message = match request {
            Request::AddService {
                service,
                scheduler,
                persistence_timeout,
            } => {
                self.table
                    .add_service(service_id(&service), scheduler, persistence_timeout)?;
                "service added".to_string()
            }
            Request::EditService {
                service,
                scheduler,
                persistence_timeout,
            } => {
                self.table
                    .edit_service(&service_id(&service), scheduler, persistence_timeout)?;
                "service edited".to_string()
            }
            Request::DeleteService { service } => {
                self.table.delete_service(&service_id(&service))?;
                "service deleted".to_string()
            }
            Request::AddReal {
                service,
                real,
                weight,
            } => {
                self.table
                    .add_real(&service_id(&service), real_id(&real), weight)?;
                "real server added".to_string()
            }
            Request::SetWeight {
                service,
                real,
                weight,
            } => {
                self.table
                    .set_weight(&service_id(&service), &real_id(&real), weight)?;
                if weight == 0 {
                    "real server draining (weight 0)".to_string()
                } else {
                    format!("weight set to {weight}")
                }
            }
            Request::DeleteReal { service, real } => {
                self.table
                    .delete_real(&service_id(&service), &real_id(&real))?;
                "real server deleted".to_string()
            }
            Request::Clear => {
                self.table.clear();
                "every service cleared".to_string()
            }
            other => anyhow::bail!("unexpected request {other:?}"),
        };
        if let Err(e) = self.apply() {
            self.table = before;
            return Err(e);
        }
        info!("admin: {message}");
        Ok(format!("{message} (until the next reload)"))
    }

    fn reasons(&self) -> Vec<ReasonCount> {
        match self.maps.reason_counters() {
            Ok(r) => r
                .into_iter()
                .map(|(r, c)| ReasonCount {
                    reason: r.name().into(),
                    packets: c.packets,
                    bytes: c.bytes,
                })
                .collect(),
            Err(e) => {
                warn!("reading verdict counters: {e:#}");
                Vec::new()
            }
        }
    }

    /// How fresh the flow counts are.
    fn flow_scan(&self) -> Option<FlowScanStatus> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.flows.snapshot().map(|s| FlowScanStatus {
            entries: s.entries,
            age_ms: millis(s.started.elapsed()),
            took_ms: millis(s.took),
        })
    }

    /// `adm -Z -t SERVICE`: its counters and its reals', the others kept.
    fn zero_service(&mut self, service: &ServiceRef) -> Result<String> {
        let id = service_id(service);
        let addr = SocketAddr::new(id.0, id.1);
        let index = self
            .reconciler
            .service_index(&id)
            .ok_or(TableError::NoService(addr))?;
        self.maps.zero_service_counters(&index)?;
        Ok(format!("counters of {addr} zeroed"))
    }

    fn services(&self) -> Result<Vec<ServiceStatus>> {
        let flows = self.flows.snapshot();
        let flows_of = |i: u32| flows.as_ref().map(|s| s.real(i)).unwrap_or_default();
        let mut out = Vec::new();
        for s in self.table.services.values() {
            let Some(index) = self.reconciler.service_index(&s.id()) else {
                continue;
            };
            let mut reals = Vec::new();
            for r in s.reals.values() {
                let number = index
                    .reals
                    .iter()
                    .find(|(rid, _)| *rid == (r.addr, r.port))
                    .map(|(_, i)| *i);
                let (traffic, counted) = match number {
                    Some(i) => (traffic(self.maps.real_counters(i)?), flows_of(i)),
                    None => (Traffic::default(), flow_scan::RealFlows::default()),
                };
                let local = self
                    .checks
                    .local_errors()
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&(s.id(), (r.addr, r.port)))
                    .cloned();
                reals.push(RealStatus {
                    addr: r.addr,
                    port: r.port,
                    weight: r.weight(),
                    healthy: r.healthy,
                    inhibit_on_failure: r.inhibit_on_failure,
                    draining: r.draining,
                    last_check: r.last_check.clone(),
                    check_micros: self
                        .checks
                        .latencies()
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&(s.id(), (r.addr, r.port)))
                        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    local_errors: local.as_ref().map_or(0, |l| l.count),
                    last_local_error: local.map(|l| l.last),
                    mac: self.reconciler.mac(&r.addr).as_ref().map(format_mac),
                    active_flows: counted.active,
                    inactive_flows: counted.inactive,
                    traffic,
                });
            }
            out.push(ServiceStatus {
                protocol: s.proto.to_string(),
                vip: s.vip,
                port: s.port,
                scheduler: s.scheduler.clone(),
                persistence_timeout: s.persistence_timeout,
                traffic: traffic(self.maps.service_counters(&index)?),
                quorum: QuorumStatus {
                    up: s.quorum_up,
                    live_weight: s.live_weight(),
                    quorum: s.quorum.quorum,
                    hysteresis: s.quorum.hysteresis,
                },
                reals,
            });
        }
        Ok(out)
    }
}

/// `lvs_timeouts` into the data plane's settings; an absent one is the
/// default again.
pub fn with_lvs_timeouts(c: &mut lb_common::DataplaneConfig, t: &crate::config::LvsTimeouts) {
    c.tcp_timeout_s = t.tcp.unwrap_or(0);
    c.tcpfin_timeout_s = t.tcpfin.unwrap_or(0);
    c.udp_timeout_s = t.udp.unwrap_or(0);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    fn config(text: &str) -> Config {
        parse_str(text, Path::new("t.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    fn notifies(config: &Config) -> Notifies {
        Notifies::prepare(config, &mut Preparer::new(config, &RealFs))
    }

    const VS: &str = "virtual_server 10.0.0.{vip} 80 {\n real_server 10.0.0.{rs} 80 {\n  notify_down \"/bin/true {rs}\"\n }\n}\n";

    fn vs(vip: u8, rs: u8) -> String {
        VS.replace("{vip}", &vip.to_string())
            .replace("{rs}", &rs.to_string())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The reload as `State::reload` sees it: the table before, and the
    /// notify_down lines it runs.
    #[test]
    fn a_reload_runs_notify_down_of_every_live_real_it_removes() {
        let before = config(&format!("{}{}", vs(100, 11), vs(101, 21)));
        let mut table = Table::from_config(&before);
        // 10.0.0.11 leaves a service that stays; 10.0.0.21 goes with its own.
        let after = config(&vs(100, 12));
        let removed = |table: &Table| {
            let mut downs: Vec<_> = notifies(&before)
                .removed_downs(&notifies(&after), table)
                .into_iter()
                .map(|((_, rid), line)| (rid.0, line.command.clone()))
                .collect();
            downs.sort();
            downs
        };
        assert_eq!(
            removed(&table),
            [
                (ip("10.0.0.11"), "/bin/true 11".to_string()),
                (ip("10.0.0.21"), "/bin/true 21".to_string())
            ]
        );
        let gone = (ip("10.0.0.101"), 80, Proto::Tcp);
        table.set_health(&gone, &(ip("10.0.0.21"), 80), false, None, "x".into());
        assert_eq!(
            removed(&table),
            [(ip("10.0.0.11"), "/bin/true 11".to_string())],
            "a real already down is not notified"
        );
    }
}
