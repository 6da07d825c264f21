//! The VRRP runtime: drives one pure `vrrp::fsm::Fsm` per `vrrp_instance`
//! with real sockets, timers, netlink and scripts, keepalived-compatibly.
//!
//! `Ha::start` cleans VIPs a crashed run left behind, starts the checks
//! (`vrrp_script`, `track_interface`), then one task per instance (see
//! `instance`). `Ha::shutdown` is the planned handover: each master sends
//! priority 0 and keeps its VIPs until a new master speaks.
//!
//! Each instance records its state (`persist`); an instance that was master
//! less than Master_Down_Interval ago resumes as master at once, its VIPs
//! kept, so a crash + restart or an upgrade is invisible to peers.
//! `Ha::abandon` is the upgrade's exit: stop without a word, VIPs kept.

mod addresses;
mod announce;
mod igmp;
mod instance;
pub mod persist;
mod promote;
mod routes;
pub(crate) mod scripts;
mod socket;
mod track_file;
mod track_process;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use log::{info, warn};
use tokio::{sync::mpsc, task::JoinHandle};

pub use self::instance::InstanceStatus;
use self::{
    addresses::{Addresses, Vip},
    announce::{Announcer, GarpService},
    instance::{GroupLink, GroupNotify, Instance, Timers},
    persist::{BootTime, Store},
    routes::VirtualRoutes,
    scripts::{Check, Notifier, NotifyScripts, Source, spawn_check, spawn_link, spawn_tracker},
    socket::{Endpoint, VrrpSocket},
};
use crate::{
    config::{self, Config, VrrpInstance},
    vrrp::{
        fsm::{Fsm, FsmConfig, GarpConfig, Input},
        garp_pace::Spacing,
        packet::{Auth, MCAST_V4, MCAST_V6, Version},
        sync_group::{GroupState, MemberView},
    },
};

/// Extra wait beyond the longest handover.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(1);

struct Running {
    inputs: mpsc::UnboundedSender<Input>,
    task: JoinHandle<()>,
    status: instance::SharedStatus,
    /// The handover's upper bound (`Fsm::longest_handover`).
    longest_handover: Duration,
}

/// The VRRP instances of one daemon.
pub struct Ha {
    running: Vec<Running>,
    /// Checks, link pollers, trackers and the notify worker.
    helpers: Vec<JoinHandle<()>>,
    /// Interfaces whose promote_secondaries this daemon set (cleared at stop).
    promoted: Vec<String>,
    /// `disable_local_igmp`: the value of igmp_link_local_mcast_reports found.
    igmp_reports: Option<String>,
    /// `static_ipaddress`: added at start, removed by `shutdown`.
    statics: Option<(Addresses, Vec<Vip>)>,
}

/// How long VRRP waits before starting: `vrrp_startup_delay`, or what is
/// left of `vrrp_delay_after_boot` after `uptime`, whichever is longer.
fn start_delay(g: &config::GlobalDefs, uptime: Option<Duration>) -> Duration {
    let after_boot = match (g.vrrp_delay_after_boot, uptime) {
        (Some(d), Some(up)) => d.saturating_sub(up),
        _ => Duration::ZERO,
    };
    g.vrrp_startup_delay.unwrap_or_default().max(after_boot)
}

/// The interfaces of the addresses of instances with `promote_secondaries`.
fn promoting(config: &Config) -> Vec<String> {
    let mut devs: Vec<String> = config
        .vrrp_instances
        .iter()
        .filter(|i| i.promote_secondaries)
        .flat_map(|i| {
            let (v, x) = vips_of(i);
            v.into_iter().chain(x).map(|v| v.dev)
        })
        .collect();
    devs.sort();
    devs.dedup();
    devs
}

/// `static_ipaddress` as addresses to add (the parser made sure of `dev`).
fn static_vips(config: &Config) -> Vec<Vip> {
    config
        .static_addresses
        .iter()
        .map(|v| Vip {
            addr: v.addr,
            prefix: v.prefix,
            dev: v.dev.clone().unwrap_or_default(),
            label: v.label.clone(),
            options: v.options.clone(),
        })
        .collect()
}

/// The links an instance follows, with their weights: its own interface
/// (unless `dont_track_primary`), its `track_interface`s, and every other
/// interface a VIP is on unless the VIP says `no_track` (keepalived; with
/// `dont_track_primary` the VIPs on its own interface do not bring it back).
fn links_to_watch(inst: &VrrpInstance) -> Vec<(String, i32)> {
    let mut links: Vec<(String, i32)> = Vec::new();
    if !inst.dont_track_primary {
        links.push((inst.interface.clone(), 0));
    }
    for t in &inst.track_interfaces {
        links.retain(|(d, _)| *d != t.name);
        links.push((t.name.clone(), t.weight.unwrap_or(0)));
    }
    let (v, x) = vips_of(inst);
    for vip in v.iter().chain(&x).filter(|v| !v.options.no_track) {
        let untracked_primary = inst.dont_track_primary && vip.dev == inst.interface;
        let listed = links.iter().any(|(d, _)| *d == vip.dev);
        if !untracked_primary && !listed {
            links.push((vip.dev.clone(), 0));
        }
    }
    links
}

/// `garp_group`s and the global intervals, for `vrrp::garp_pace`.
fn spacing(config: &Config) -> Spacing {
    Spacing {
        groups: config
            .garp_groups
            .iter()
            .map(|g| (g.interfaces.clone(), g.pacing.garp, g.pacing.gna))
            .collect(),
        default: (
            config.global.garp_pacing.garp,
            config.global.garp_pacing.gna,
        ),
    }
}

/// The addresses an instance manages, `dev` defaulting to its interface.
fn vips_of(inst: &VrrpInstance) -> (Vec<Vip>, Vec<Vip>) {
    let conv = |list: &[config::VipAddress]| -> Vec<Vip> {
        list.iter()
            .map(|v| Vip {
                addr: v.addr,
                prefix: v.prefix,
                dev: v.dev.clone().unwrap_or_else(|| inst.interface.clone()),
                label: v.label.clone(),
                options: v.options.clone(),
            })
            .collect()
    };
    (conv(&inst.vips), conv(&inst.excluded_vips))
}

/// The instance's address family: its peers', else its first VIP's.
fn wants_v6(inst: &VrrpInstance) -> bool {
    inst.unicast_peers
        .first()
        .or(inst.unicast_src_ip.as_ref())
        .or(inst.mcast_src_ip.as_ref())
        .or(inst.vips.first().map(|v| &v.addr))
        .is_some_and(IpAddr::is_ipv6)
}

/// The interface's first IPv4 address, or its IPv6 link-local one.
fn primary_address(dev: &str, v6: bool) -> Option<IpAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = head;
    // SAFETY: walking the list getifaddrs returned, reading only set fields.
    unsafe {
        while !cur.is_null() && found.is_none() {
            let ifa = &*cur;
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            if name == dev && !ifa.ifa_addr.is_null() {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET if !v6 => {
                        let sa = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                        found = Some(IpAddr::from(sa.sin_addr.s_addr.to_ne_bytes()));
                    }
                    libc::AF_INET6 if v6 => {
                        let sa = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                        let a = std::net::Ipv6Addr::from(sa.sin6_addr.s6_addr);
                        if a.is_unicast_link_local() {
                            found = Some(IpAddr::V6(a));
                        }
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    found
}

fn fsm_config(inst: &VrrpInstance, src: IpAddr, in_group: bool) -> Result<FsmConfig> {
    let version = match inst.version {
        2 => Version::V2,
        3 => Version::V3,
        v => bail!("{}: VRRP version {v} is not supported", inst.name),
    };
    let g = &inst.garp;
    Ok(FsmConfig {
        advert_int: inst.advert_int,
        preempt: inst.preempt,
        preempt_delay: inst.preempt_delay,
        start_as_master: inst.initial_state == config::InitialState::Master,
        sync_group: in_group,
        garp: GarpConfig {
            master_delay: g.master_delay,
            master_repeat: g.master_repeat,
            master_refresh: g.master_refresh.unwrap_or_default(),
            master_refresh_repeat: g.master_refresh_repeat,
            lower_prio_delay: g.lower_prio_delay.unwrap_or(g.master_delay),
            lower_prio_repeat: g.lower_prio_repeat.unwrap_or(g.master_repeat),
        },
        lower_prio_no_advert: inst.lower_prio_no_advert,
        down_timer_adverts: inst.down_timer_adverts,
        higher_prio_send_advert: inst.higher_prio_send_advert,
        ..FsmConfig::new(version, inst.vrid, inst.priority, src)
    })
}

/// Whether `inst` resumes as master from its record in `store` (logged).
fn resumes(inst: &VrrpInstance, store: Option<&Store>, in_group: bool) -> bool {
    let (Some(store), Ok(now)) = (store, BootTime::now()) else {
        return false;
    };
    let Some(saved) = store.load(&inst.name, inst.vrid) else {
        return false;
    };
    let unspecified = IpAddr::from([0u8; 4]);
    let Ok(cfg) = fsm_config(inst, unspecified, in_group) else {
        return false;
    };
    let down = Fsm::new(cfg).master_down_interval();
    let age = now
        .since_boot
        .saturating_sub(Duration::from_millis(saved.boottime_ms));
    let resume = persist::may_resume(&saved, &now, down);
    if resume {
        info!(
            "{}: was MASTER {age:.1?} ago (pid {}), within Master_Down_Interval {down:.1?}: \
             resuming as MASTER, VIPs kept",
            inst.name, saved.pid
        );
    } else if saved.state == "MASTER" {
        info!(
            "{}: was MASTER {age:.1?} ago, not within Master_Down_Interval {down:.1?} on this boot: \
             starting normally",
            inst.name
        );
    }
    resume
}

impl Ha {
    /// Starts every configured instance; with none, an `Ha` that does nothing.
    /// Instances recorded in `store` as master just now resume as master.
    pub async fn start(
        config: &Config,
        store: Option<Store>,
        alerts: crate::alert::Alerts,
    ) -> Result<Ha> {
        let mut ha = Ha {
            running: Vec::new(),
            helpers: Vec::new(),
            promoted: Vec::new(),
            igmp_reports: None,
            statics: None,
        };
        if config.vrrp_instances.is_empty()
            && config.static_routes.is_empty()
            && config.static_rules.is_empty()
            && config.static_addresses.is_empty()
        {
            return Ok(ha);
        }
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        ha.helpers.push(tokio::spawn(conn));
        // static_routes and static_rules: set at start and left in place.
        let statics = VirtualRoutes::new(
            handle.clone(),
            config.static_routes.clone(),
            config.static_rules.clone(),
        );
        for e in statics.add().await {
            warn!("{e}");
        }
        let addresses = Addresses::new(handle);
        let static_addresses = static_vips(config);
        if !static_addresses.is_empty() {
            // One that cannot be added is said, the others stay (keepalived).
            for v in &static_addresses {
                match addresses.add(std::slice::from_ref(v)).await.pop() {
                    None => info!("static_ipaddress {}/{} on {}", v.addr, v.prefix, v.dev),
                    Some(e) => warn!("static_ipaddress: {e}"),
                }
            }
            ha.statics = Some((addresses.clone(), static_addresses));
        }
        if config.vrrp_instances.is_empty() {
            return Ok(ha);
        }
        let grouped = |i: &VrrpInstance| {
            config
                .sync_groups
                .iter()
                .any(|g| g.members.contains(&i.name))
        };
        let resuming: Vec<bool> = config
            .vrrp_instances
            .iter()
            .map(|i| resumes(i, store.as_ref(), grouped(i)))
            .collect();
        // A resuming master's VIPs are not stale: they stay, and XDP with them.
        let all: Vec<Vip> = config
            .vrrp_instances
            .iter()
            .zip(&resuming)
            .filter(|(_, r)| !**r)
            .flat_map(|(i, _)| {
                let (v, x) = vips_of(i);
                v.into_iter().chain(x)
            })
            .collect();
        for v in addresses
            .remove_stale(&all)
            .await
            .context("removing stale VIPs")?
        {
            info!("removed stale VIP {}/{} from {}", v.addr, v.prefix, v.dev);
        }
        if config.global.disable_local_igmp {
            match igmp::disable() {
                Ok(before) => {
                    info!("disable_local_igmp: no IGMP reports for link-local groups");
                    ha.igmp_reports = Some(before);
                }
                Err(e) => warn!("disable_local_igmp: {e}"),
            }
        }
        for dev in promoting(config) {
            match promote::enable(&dev) {
                Ok(true) => {
                    info!("{dev}: promote_secondaries set");
                    ha.promoted.push(dev);
                }
                Ok(false) => {}
                Err(e) => warn!("{dev}: promote_secondaries not set: {e}"),
            }
        }
        let (notifier, task) = Notifier::spawn();
        ha.helpers.push(task);
        let (garps, task) = GarpService::spawn(spacing(config));
        ha.helpers.push(task);

        // track_file: init_file first, then one poller per file tracked.
        let mut files = HashMap::new();
        for t in &config.track_files {
            match track_file::init(t) {
                Ok(true) => info!("track_file {}: initialised {}", t.name, t.path),
                Ok(false) => {}
                Err(e) => warn!("track_file {}: cannot initialise {}: {e}", t.name, t.path),
            }
            let tracked = config
                .vrrp_instances
                .iter()
                .any(|i| i.track_files.iter().any(|r| r.name == t.name));
            if tracked {
                let (rx, task) = track_file::spawn(t);
                ha.helpers.push(task);
                files.insert(t.name.as_str(), (rx, t));
            }
        }

        let prepared = scripts::prepare(config);
        let mut checks = HashMap::new();
        let mut disabled = Vec::new();
        for (s, script) in prepared.checks {
            let Some(script) = script else {
                disabled.push(s.name.as_str());
                continue;
            };
            let (rx, task) = spawn_check(Check {
                name: s.name.clone(),
                script,
                interval: s.interval,
                timeout: s.timeout,
                rise: s.rise,
                fall: s.fall,
                init_fail: s.init_fail,
            });
            ha.helpers.push(task);
            checks.insert(s.name.clone(), (rx, s.weight));
        }

        // track_process: one /proc scanner for every process tracked.
        let tracked_processes: Vec<&config::TrackProcess> = config
            .track_processes
            .iter()
            .filter(|p| {
                config
                    .vrrp_instances
                    .iter()
                    .any(|i| i.track_processes.iter().any(|r| r.name == p.name))
            })
            .collect();
        let processes = if tracked_processes.is_empty() {
            HashMap::new()
        } else {
            let (rx, task) = track_process::spawn(&tracked_processes);
            ha.helpers.push(task);
            rx
        };

        // Sync groups: shared member views and each member's input channel.
        let channels: Vec<_> = config
            .vrrp_instances
            .iter()
            .map(|_| mpsc::unbounded_channel())
            .collect();
        let mut links: HashMap<usize, GroupLink> = HashMap::new();
        for (g, scripts) in config.sync_groups.iter().zip(prepared.groups) {
            let members: Vec<usize> = g
                .members
                .iter()
                .filter_map(|m| {
                    let found = config.vrrp_instances.iter().position(|i| &i.name == m);
                    if found.is_none() {
                        warn!("vrrp_sync_group {}: no vrrp_instance {m}", g.name);
                    }
                    found
                })
                .collect();
            let views = Arc::new(Mutex::new(vec![
                MemberView {
                    state: crate::vrrp::fsm::State::Initialize,
                    own_fault: false,
                    group_fault: false,
                    wants_master: false,
                };
                members.len()
            ]));
            let senders: Vec<_> = members.iter().map(|&m| channels[m].0.clone()).collect();
            let notify = Arc::new(GroupNotify {
                name: g.name.clone(),
                scripts,
                state: Mutex::new(GroupState::new(members.len())),
            });
            for (index, &m) in members.iter().enumerate() {
                links.insert(
                    m,
                    GroupLink {
                        index,
                        views: views.clone(),
                        members: senders.clone(),
                        notify: notify.clone(),
                    },
                );
            }
        }

        let instances = config
            .vrrp_instances
            .iter()
            .zip(channels)
            .zip(prepared.notify);
        for (i, ((inst, (tx, rx)), notify)) in instances.enumerate() {
            let mut sources = vec![];
            for (dev, weight) in links_to_watch(inst) {
                let (state, task) = spawn_link(dev);
                ha.helpers.push(task);
                sources.push(Source::Check {
                    state,
                    weight,
                    reverse: false,
                });
            }
            for r in &inst.track_processes {
                let (Some(state), Some(p)) = (
                    processes.get(&r.name),
                    tracked_processes.iter().find(|p| p.name == r.name),
                ) else {
                    continue;
                };
                sources.push(Source::Check {
                    state: state.clone(),
                    weight: r.weight.unwrap_or(p.weight),
                    reverse: r.reverse.unwrap_or(p.reverse),
                });
            }
            for r in &inst.track_files {
                if let Some((value, t)) = files.get(r.name.as_str()) {
                    sources.push(Source::File {
                        value: value.clone(),
                        weight: r.weight.unwrap_or(t.weight),
                        reverse: r.reverse.unwrap_or(t.reverse),
                    });
                }
            }
            for t in &inst.track_scripts {
                if disabled.contains(&t.name.as_str()) {
                    continue;
                }
                let Some((state, weight)) = checks.get(&t.name) else {
                    warn!(
                        "{}: track_script {} is not a vrrp_script",
                        inst.name, t.name
                    );
                    continue;
                };
                sources.push(Source::Check {
                    state: state.clone(),
                    weight: t.weight.unwrap_or(*weight),
                    reverse: false,
                });
            }
            let (tracking, task) = spawn_tracker(inst.priority, sources);
            ha.helpers.push(task);
            let start = if resuming[i] {
                Input::ResumeMaster
            } else {
                Input::Startup
            };
            let running = Self::start_instance(
                inst,
                &config.global,
                (
                    addresses.clone(),
                    notifier.clone(),
                    notify,
                    alerts.clone(),
                    (garps.clone(), i as u64),
                ),
                store.clone(),
                tracking,
                (tx, rx),
                (links.remove(&i), start),
            )
            .with_context(|| format!("vrrp_instance {}", inst.name))?;
            ha.running.push(running);
        }
        Ok(ha)
    }

    fn start_instance(
        inst: &VrrpInstance,
        global: &config::GlobalDefs,
        (addresses, notifier, notify, alerts, (garps, owner)): (
            Addresses,
            Notifier,
            NotifyScripts,
            crate::alert::Alerts,
            (GarpService, u64),
        ),
        store: Option<Store>,
        tracking: tokio::sync::watch::Receiver<crate::vrrp::track::Effective>,
        (tx, inputs): (mpsc::UnboundedSender<Input>, mpsc::UnboundedReceiver<Input>),
        (group, start): (Option<GroupLink>, Input),
    ) -> Result<Running> {
        let v6 = wants_v6(inst);
        let src = inst
            .unicast_src_ip
            .or(inst.mcast_src_ip)
            .or_else(|| primary_address(&inst.interface, v6))
            .ok_or_else(|| {
                anyhow!(
                    "{} has no {} address to send from",
                    inst.interface,
                    if v6 { "IPv6 link-local" } else { "IPv4" }
                )
            })?;
        let ifindex = crate::neighbour::ifindex(&inst.interface)?;
        let mcast = match inst.mcast_dst_ip {
            Some(group) => group,
            None if v6 => IpAddr::V6(global.vrrp_mcast_group6.unwrap_or(MCAST_V6)),
            None => IpAddr::V4(global.vrrp_mcast_group4.unwrap_or(MCAST_V4)),
        };
        let socket = VrrpSocket::open(Endpoint {
            interface: inst.interface.clone(),
            ifindex,
            src,
            unicast_peers: inst.unicast_peers.clone(),
            group: mcast,
        })?;
        let (vips, excluded) = vips_of(inst);
        let advertised = vips
            .iter()
            .map(|v| v.addr)
            .filter(|a| a.is_ipv6() == v6)
            .collect();
        let managed: Vec<Vip> = vips.into_iter().chain(excluded).collect();
        let announcer = Announcer::new(&managed, garps, owner)?;
        let fsm = Fsm::new(fsm_config(inst, src, group.is_some())?);
        let longest_handover = fsm.longest_handover();
        let auth = match (&inst.auth, fsm.config().version) {
            (Some(config::Auth::Pass(p)), Version::V2) => Auth::pass(p),
            _ => Auth::None,
        };
        let status = Arc::new(Mutex::new(InstanceStatus {
            name: inst.name.clone(),
            interface: inst.interface.clone(),
            vrid: inst.vrid,
            state: "INIT".into(),
            base_priority: inst.priority,
            effective_priority: inst.priority,
            ..InstanceStatus::default()
        }));
        info!(
            "{}: VRID {} on {} from {src}, priority {}",
            inst.name, inst.vrid, inst.interface, inst.priority
        );
        let instance = Instance {
            name: inst.name.clone(),
            fsm,
            socket,
            auth,
            advertised,
            managed,
            routes: VirtualRoutes::new(
                addresses.handle().clone(),
                inst.virtual_routes.clone(),
                inst.virtual_rules.clone(),
            ),
            addresses,
            announcer,
            notify,
            notifier,
            alerts,
            tracking,
            inputs,
            group,
            status: status.clone(),
            timers: Timers::default(),
            skip_check_adv_addr: inst.skip_check_adv_addr,
            start_delay: if start == Input::Startup {
                start_delay(global, BootTime::now().ok().map(|b| b.since_boot))
            } else {
                Duration::ZERO
            },
            start,
            store,
        };
        let task = tokio::spawn(instance.run());
        Ok(Running {
            inputs: tx,
            task,
            status,
            longest_handover,
        })
    }

    /// Planned handover; returns when every instance has stopped, or after
    /// the longest handover (`Fsm::longest_handover`) plus a second.
    pub async fn shutdown(self) {
        let bound = self
            .running
            .iter()
            .map(|r| r.longest_handover)
            .max()
            .unwrap_or_default()
            + SHUTDOWN_SLACK;
        for r in &self.running {
            let _ = r.inputs.send(Input::Shutdown);
        }
        let deadline = tokio::time::Instant::now() + bound;
        for mut r in self.running {
            let name = r
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .name
                .clone();
            match tokio::time::timeout_at(deadline, &mut r.task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!("{name}: {e}"),
                Err(_) => {
                    warn!("{name}: did not stop within {bound:?}");
                    r.task.abort();
                }
            }
        }
        // keepalived removes its static addresses when it stops (before
        // the helpers go: the netlink connection is one of them).
        if let Some((addresses, vips)) = self.statics {
            let errors = addresses.remove(&vips).await;
            for e in &errors {
                warn!("static_ipaddress: {e}");
            }
            if errors.is_empty() {
                info!("static_ipaddress: {} removed", vips.len());
            }
        }
        for h in self.helpers {
            h.abort();
        }
        for dev in &self.promoted {
            if let Err(e) = promote::clear(dev) {
                warn!("{dev}: promote_secondaries not cleared: {e}");
            }
        }
        if let Some(before) = &self.igmp_reports
            && let Err(e) = igmp::restore(before)
        {
            warn!("disable_local_igmp: igmp_link_local_mcast_reports not restored: {e}");
        }
    }

    /// The upgrade's exit, once the new daemon has resumed every master:
    /// stop at once, with no priority-0 advert and the VIPs left in place,
    /// and the records left saying what the new daemon took over.
    pub fn abandon(self) {
        for r in self.running {
            r.task.abort();
        }
        for h in self.helpers {
            h.abort();
        }
    }

    pub fn status(&self) -> Vec<InstanceStatus> {
        self.running
            .iter()
            .map(|r| {
                r.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn instance(body: &str) -> VrrpInstance {
        let text = format!(
            "vrrp_instance V {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{\n  \
             10.0.0.1\n  10.0.1.1 dev eth1\n  10.0.2.1 dev eth2 no_track\n }}\n{body}}}\n"
        );
        let loaded = config::parse_str(&text, Path::new("k.conf"))
            .unwrap_or_else(|e| panic!("refused:\n{e}"));
        loaded.config.vrrp_instances[0].clone()
    }

    fn links(body: &str) -> Vec<(String, i32)> {
        links_to_watch(&instance(body))
    }

    fn l(dev: &str, weight: i32) -> (String, i32) {
        (dev.to_string(), weight)
    }

    #[test]
    fn the_links_an_instance_follows() {
        assert_eq!(
            links(""),
            [l("eth0", 0), l("eth1", 0)],
            "its own interface and the VIPs' others, not no_track ones"
        );
        assert_eq!(
            links(" track_interface {\n  eth3 weight -10\n  eth0 weight 5\n }\n"),
            [l("eth3", -10), l("eth0", 5), l("eth1", 0)],
            "a track_interface entry for its own interface gives the weight"
        );
        // keepalived: dont_track_primary drops its interface and the VIPs
        // on it, not the VIPs elsewhere nor what track_interface names.
        assert_eq!(links(" dont_track_primary\n"), [l("eth1", 0)]);
        assert_eq!(
            links(" dont_track_primary\n track_interface {\n  eth0 weight -20\n }\n"),
            [l("eth0", -20), l("eth1", 0)]
        );
    }
}

#[cfg(test)]
mod start_delay_tests {
    use std::time::Duration;

    use super::start_delay;
    use crate::config::GlobalDefs;

    #[test]
    fn the_longer_of_the_startup_delay_and_what_is_left_after_boot() {
        let s = Duration::from_secs;
        let g = |startup: Option<u64>, boot: Option<u64>| GlobalDefs {
            vrrp_startup_delay: startup.map(s),
            vrrp_delay_after_boot: boot.map(s),
            ..GlobalDefs::default()
        };
        let up = Some(s(100));
        for (startup, boot, uptime, want) in [
            (None, None, up, 0),
            (Some(5), None, up, 5),
            (None, Some(130), up, 30),
            (None, Some(60), up, 0),
            (Some(5), Some(130), up, 30),
            (Some(50), Some(130), up, 50),
            // Uptime unknown: only the startup delay.
            (Some(5), Some(130), None, 5),
        ] {
            assert_eq!(
                start_delay(&g(startup, boot), uptime),
                s(want),
                "{startup:?} {boot:?} {uptime:?}"
            );
        }
    }
}
