//! One VRRP instance's task: adverts in (socket → decode → FSM), timers,
//! tracking and sync-group inputs in, and the FSM's actions carried out
//! (adverts out, VIPs, gratuitous ARP / NA, notify scripts).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use log::{info, warn};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{
    addresses::{Addresses, Vip},
    announce::Announcer,
    persist::{BootTime, Saved, Store},
    routes::VirtualRoutes,
    scripts::{Notifier, NotifyScripts},
    socket::{Received, VrrpSocket},
};
use crate::alert::VrrpState;
use crate::vrrp::{
    fsm::{Action, Fsm, Input, NotifyEvent, State, TimerKind},
    packet::{Advert, Auth, DecodeError, Expect},
    sync_group::{GroupState, MemberView, decide},
    track::Effective,
};

/// What `Ha::status` reports for one instance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// Us while master; the last master heard from while backup.
    pub master: Option<IpAddr>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Dropped packets by `DecodeError::reason()` (and `unknown_peer`).
    pub bad_packets: BTreeMap<String, u64>,
    pub transitions: u64,
}

pub type SharedStatus = Arc<Mutex<InstanceStatus>>;

/// The instance's place in a `vrrp_sync_group`.
pub struct GroupLink {
    pub index: usize,
    pub views: Arc<Mutex<Vec<MemberView>>>,
    pub members: Vec<mpsc::UnboundedSender<Input>>,
    pub notify: Arc<GroupNotify>,
}

/// A sync group's own state and `notify*` scripts, shared by its members:
/// whichever member completes a group transition runs them.
pub struct GroupNotify {
    pub name: String,
    pub scripts: NotifyScripts,
    pub state: Mutex<GroupState>,
}

/// Everything one instance runs with.
pub struct Instance {
    pub name: String,
    pub fsm: Fsm,
    pub socket: VrrpSocket,
    pub auth: Auth,
    /// Advertised (`virtual_ipaddress`) and all managed addresses.
    pub advertised: Vec<IpAddr>,
    pub managed: Vec<Vip>,
    pub addresses: Addresses,
    /// `virtual_routes`, present with the VIPs.
    pub routes: VirtualRoutes,
    pub announcer: Announcer,
    pub notify: NotifyScripts,
    pub notifier: Notifier,
    /// `smtp_alert` mails of the state changes.
    pub alerts: crate::alert::Alerts,
    pub tracking: watch::Receiver<Effective>,
    pub inputs: mpsc::UnboundedReceiver<Input>,
    pub group: Option<GroupLink>,
    pub status: SharedStatus,
    pub timers: Timers,
    /// keepalived `skip_check_adv_addr`: the current master's adverts are
    /// not checked against our VIP list.
    pub skip_check_adv_addr: bool,
    /// `Startup`, or `ResumeMaster` when the last run was master just now.
    pub start: Input,
    /// `vrrp_startup_delay` / `vrrp_delay_after_boot` still to wait before
    /// `start` (zero when resuming).
    pub start_delay: Duration,
    /// Where the state is recorded; `None` when it cannot be.
    pub store: Option<Store>,
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

impl Instance {
    /// Waits out the start delay, in INIT (no adverts, no VIPs); false
    /// when the daemon stops meanwhile: nothing was started to hand over.
    /// Other inputs meanwhile come from sync-group members, which wait as
    /// long: dropped. Tracking is read when the start comes.
    async fn wait_start_delay(&mut self) -> bool {
        info!("{}: VRRP starts in {:?}", self.name, self.start_delay);
        let until = tokio::time::Instant::now() + self.start_delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                input = self.inputs.recv() => match input {
                    None | Some(Input::Shutdown) => return false,
                    Some(_) => {}
                },
            }
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, InstanceStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs until the state machine reports `Stopped`.
    pub async fn run(mut self) {
        if !self.start_delay.is_zero() && !self.wait_start_delay().await {
            return;
        }
        let first = *self.tracking.borrow_and_update();
        self.apply_tracking(first).await;
        self.feed(self.start).await;
        let mut stopped = false;
        let mut tracking_open = true;
        while !stopped {
            let next = self.timers.next().map(tokio::time::Instant::from_std);
            let actions = tokio::select! {
                input = self.inputs.recv() => {
                    // Every sender gone: the daemon is going away; hand over.
                    self.step(input.unwrap_or(Input::Shutdown))
                }
                received = self.socket.recv() => match received {
                    Ok(r) => self.received(r),
                    Err(e) => {
                        warn!("{}: {e}", self.name);
                        Vec::new()
                    }
                },
                () = sleep_until(next), if next.is_some() => {
                    let now = Instant::now();
                    let mut out = Vec::new();
                    for kind in self.timers.take_due(now) {
                        out.extend(self.step(Input::TimerFired(kind)));
                    }
                    out
                }
                changed = self.tracking.changed(), if tracking_open => {
                    if changed.is_err() {
                        tracking_open = false;
                        Vec::new()
                    } else {
                        let eff = *self.tracking.borrow_and_update();
                        self.tracking_inputs(eff)
                    }
                }
            };
            stopped = self.perform(actions).await;
        }
        info!("{}: stopped", self.name);
    }

    async fn apply_tracking(&mut self, eff: Effective) {
        let actions = self.tracking_inputs(eff);
        self.perform(actions).await;
    }

    fn tracking_inputs(&mut self, eff: Effective) -> Vec<Action> {
        let mut out = self.step(Input::PriorityChanged(eff.priority));
        if eff.fault != self.fsm.own_fault() {
            out.extend(self.step(Input::FaultChanged(eff.fault)));
        }
        out
    }

    async fn feed(&mut self, input: Input) {
        let actions = self.step(input);
        self.perform(actions).await;
    }

    /// One input through the FSM, then the sync group's reaction to it.
    fn step(&mut self, input: Input) -> Vec<Action> {
        let actions = self.fsm.handle(Instant::now(), input);
        if let Some(g) = &self.group {
            let mut views = g.views.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = views.get_mut(g.index) {
                *v = MemberView::from(&self.fsm);
            }
            // A member may see a decision twice (views update as members
            // handle them); every group input is idempotent.
            for (i, input) in decide(&views) {
                if let Some(tx) = g.members.get(i) {
                    let _ = tx.send(input);
                }
            }
        }
        actions
    }

    /// Sends `input` to every other member of our sync group.
    fn tell_other_members(&self, input: Input) {
        let Some(g) = &self.group else { return };
        for (i, tx) in g.members.iter().enumerate() {
            if i != g.index {
                let _ = tx.send(input);
            }
        }
    }

    fn received(&mut self, r: Received) -> Vec<Action> {
        let (meta, payload) = match r {
            Received::Packet { meta, payload } => (meta, payload),
            Received::Own => return Vec::new(),
            Received::UnknownPeer => {
                self.count_bad("unknown_peer");
                return Vec::new();
            }
            Received::BadIp(e) => {
                self.count_bad(e.reason());
                return Vec::new();
            }
        };
        let check = checks_addresses(self.skip_check_adv_addr, self.fsm.last_master(), meta.src);
        let cfg = self.fsm.config();
        let expect = Expect {
            version: cfg.version,
            vrid: cfg.vrid,
            auth: self.auth,
            advert_int: cfg.advert_int,
            addrs: check.then_some(&self.advertised[..]),
        };
        match Advert::decode(&meta, &payload, &expect) {
            Ok(advert) => {
                self.status().adverts_received += 1;
                let learnt = self.fsm.master_adver_int();
                let learnable = self.fsm.interval_acceptable(advert.advert_int);
                if !learnable {
                    // Learnt as the nearest bound (`vrrp::fsm::LEARN_*`).
                    let n = self.count_bad("interval_out_of_bounds");
                    if n.is_power_of_two() {
                        warn!(
                            "{}: advert interval {} ms from {} is beyond half or twice ours ({} ms): \
                             taken as the nearest of those ({n} so far)",
                            self.name,
                            advert.advert_int.as_millis(),
                            meta.src,
                            cfg.advert_int.as_millis()
                        );
                    }
                } else if self.fsm.state() == State::Backup && advert.advert_int != learnt {
                    // keepalived's v3 log line, once per change.
                    info!(
                        "({}) advertisement interval mismatch: mine={} milli-sec, rcved={} milli-sec",
                        self.name,
                        learnt.as_millis(),
                        advert.advert_int.as_millis()
                    );
                }
                self.step(Input::AdvertReceived {
                    from: meta.src,
                    priority: advert.priority,
                    max_advert_int: advert.advert_int,
                })
            }
            // Another instance's VRID on the same link: not ours to count.
            Err(DecodeError::WrongVrid { .. }) => Vec::new(),
            Err(e @ DecodeError::IntervalMismatch { got, want }) => {
                // RFC 3768 §7.1: dropped; keepalived's log line.
                if self.count_bad(e.reason()).is_power_of_two() {
                    info!(
                        "({}) advertisement interval mismatch mine={} sec rcv'd={} sec",
                        self.name,
                        want.as_secs(),
                        got.as_secs()
                    );
                }
                Vec::new()
            }
            Err(e) => {
                self.count_bad(e.reason());
                Vec::new()
            }
        }
    }

    /// Counts a dropped packet; returns the count so far for that reason
    /// (callers log at powers of two, so a flood cannot flood the log).
    fn count_bad(&self, reason: &str) -> u64 {
        let mut status = self.status();
        let n = status.bad_packets.entry(reason.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Carries out actions in order; true once the instance has stopped.
    async fn perform(&mut self, actions: Vec<Action>) -> bool {
        let mut stopped = false;
        // Every transition, and every advert a master sends: the record's
        // time is when we were last known to be master.
        let record = actions.iter().any(|a| match a {
            Action::StateChanged { .. } => true,
            Action::SendAdvert { priority } => *priority > 0 && self.fsm.state() == State::Master,
            _ => false,
        });
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.send_advert(priority),
                Action::AddVips { .. } => {
                    for e in self.addresses.add(&self.managed).await {
                        warn!("{}: {e}", self.name);
                    }
                    for e in self.routes.add().await {
                        warn!("{}: {e}", self.name);
                    }
                }
                Action::RemoveVips => {
                    self.announcer.cancel();
                    for e in self.addresses.remove(&self.managed).await {
                        warn!("{}: {e}", self.name);
                    }
                    for e in self.routes.remove().await {
                        warn!("{}: {e}", self.name);
                    }
                }
                Action::SendGratuitous { count } => {
                    self.announcer.send(count);
                }
                Action::ArmTimer { kind, at } => self.timers.arm(kind, at),
                Action::CancelTimer(kind) => self.timers.cancel(kind),
                Action::StateChanged { from, to } => {
                    info!("{}: {} -> {}", self.name, state_name(from), state_name(to));
                    self.status().transitions += 1;
                    self.group_entered(to);
                }
                Action::LowerPrioToGroup => self.tell_other_members(Input::GroupLowerPrio),
                Action::Notify(event) => self.notify(event),
                Action::Discarded(why) => {
                    let n = self.count_bad(why.reason());
                    if n.is_power_of_two() {
                        warn!(
                            "{}: advert discarded: {} ({n} so far)",
                            self.name,
                            why.reason()
                        );
                    }
                }
                Action::Stopped => stopped = true,
            }
        }
        self.refresh_status();
        if record {
            self.record();
        }
        stopped
    }

    fn record(&mut self) {
        let Some(store) = &self.store else { return };
        let status = self.status().clone();
        let saved = if self.fsm.state() == State::Initialize {
            // Stopped after a planned handover: nothing to resume.
            store.forget(&self.name, status.vrid)
        } else {
            BootTime::now().and_then(|now| {
                store.save(&Saved {
                    instance: self.name.clone(),
                    vrid: status.vrid,
                    state: status.state,
                    priority: status.effective_priority,
                    master: status.master,
                    boot_id: now.boot_id,
                    boottime_ms: u64::try_from(now.since_boot.as_millis()).unwrap_or(u64::MAX),
                    pid: std::process::id(),
                })
            })
        };
        if let Err(e) = saved {
            // Once: a restart will simply not resume.
            warn!(
                "{}: cannot record the VRRP state in {}: {e}; a restart will not resume as master",
                self.name,
                store.dir().display()
            );
            self.store = None;
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let cfg = self.fsm.config();
        let advert = Advert {
            version: cfg.version,
            vrid: cfg.vrid,
            priority,
            advert_int: cfg.advert_int,
            addrs: self.advertised.clone(),
            auth: self.auth,
        };
        let src = self.socket.src();
        for dst in self.socket.destinations() {
            let sent = advert
                .encode(src, dst)
                .map_err(|e| e.to_string())
                .and_then(|bytes| self.socket.send(dst, &bytes).map_err(|e| e.to_string()));
            match sent {
                Ok(()) => self.status().adverts_sent += 1,
                Err(e) => warn!("{}: advert to {dst}: {e}", self.name),
            }
        }
    }

    fn notify(&self, event: NotifyEvent) {
        let priority = self.fsm.priority();
        self.notifier
            .event(&self.notify, event, "INSTANCE", &self.name, priority);
        let mailed = match event {
            NotifyEvent::Master => Some(VrrpState::Master),
            NotifyEvent::Backup => Some(VrrpState::Backup),
            NotifyEvent::Fault => Some(VrrpState::Fault),
            NotifyEvent::Stop => Some(VrrpState::Stop),
            NotifyEvent::MasterRxLowerPri => None,
        };
        if let Some(state) = mailed {
            self.alerts.instance(&self.name, state, priority);
        }
    }

    /// This instance entered `to`: when that changes its sync group's
    /// state, the group's scripts run (keepalived's
    /// send_group_notifies: `notify_*`, then `notify GROUP name STATE 0`).
    fn group_entered(&self, to: State) {
        let Some(g) = &self.group else { return };
        let group = &g.notify;
        let entered = group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entered(g.index, to);
        let Some(state) = entered else { return };
        let now = match state {
            State::Initialize => "stopped",
            s => state_name(s),
        };
        info!("vrrp_sync_group {}: {now}", group.name);
        let event = NotifyEvent::entering(state);
        self.notifier
            .event(&group.scripts, event, "GROUP", &group.name, 0);
    }

    fn refresh_status(&self) {
        let state = self.fsm.state();
        let master = match state {
            State::Master => Some(self.socket.src()),
            _ => self.fsm.last_master().map(|(a, _)| a),
        };
        let mut s = self.status();
        s.state = state_name(state).into();
        s.effective_priority = self.fsm.priority();
        s.master = master;
    }
}

/// keepalived `skip_check_adv_addr`: an advert's address list is checked
/// unless the option is on and the advert comes from the current master.
fn checks_addresses(skip: bool, master: Option<(IpAddr, u8)>, src: IpAddr) -> bool {
    !(skip && master.is_some_and(|(a, _)| a == src))
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The state machine's timers as deadlines: at most one per `TimerKind`
/// (`ArmTimer` replaces, `CancelTimer` clears), fired in deadline order.
#[derive(Debug, Default)]
pub struct Timers {
    armed: Vec<(TimerKind, Instant)>,
}

impl Timers {
    pub fn arm(&mut self, kind: TimerKind, at: Instant) {
        self.cancel(kind);
        self.armed.push((kind, at));
    }

    pub fn cancel(&mut self, kind: TimerKind) {
        self.armed.retain(|(k, _)| *k != kind);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.armed.iter().map(|(_, at)| *at).min()
    }

    /// Removes and returns the timers due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<TimerKind> {
        let mut due: Vec<(TimerKind, Instant)> = self
            .armed
            .iter()
            .copied()
            .filter(|(_, at)| *at <= now)
            .collect();
        self.armed.retain(|(_, at)| *at > now);
        due.sort_by_key(|(_, at)| *at);
        due.into_iter().map(|(k, _)| k).collect()
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn skip_check_adv_addr_only_for_the_current_master() {
        let (m, other): (IpAddr, IpAddr) = ([10, 0, 0, 2].into(), [10, 0, 0, 3].into());
        assert!(checks_addresses(false, Some((m, 200)), m), "option off");
        assert!(
            !checks_addresses(true, Some((m, 200)), m),
            "the master's advert"
        );
        assert!(
            checks_addresses(true, Some((m, 200)), other),
            "anyone else's"
        );
        assert!(checks_addresses(true, None, m), "no master known yet");
    }

    #[test]
    fn one_deadline_per_kind_in_order() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.arm(TimerKind::MasterDown, t0 + 3 * s);
        t.arm(TimerKind::GarpDelay, t0 + 2 * s);
        t.arm(TimerKind::MasterDown, t0 + 5 * s);
        assert_eq!(
            t.next(),
            Some(t0 + 2 * s),
            "re-arming replaced the 3 s deadline"
        );
        t.arm(TimerKind::Advert, t0 + s);
        assert_eq!(t.take_due(t0), vec![], "nothing due yet");
        assert_eq!(
            t.take_due(t0 + 2 * s),
            vec![TimerKind::Advert, TimerKind::GarpDelay]
        );
        t.cancel(TimerKind::MasterDown);
        assert_eq!(t.next(), None);
    }
}
