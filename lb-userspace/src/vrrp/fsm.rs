//! One VRRP instance's state machine (RFC 3768 §6.4, RFC 5798 §6.4) with
//! keepalived's behaviour where the RFCs leave room, and xdpvs's planned
//! handover on shutdown.
//!
//! Pure: the caller passes `now`, feeds `Input`s and carries out the
//! returned `Action`s in order (send adverts, add/remove VIPs, arm timers).
//! A timer of one kind is at most one deadline: `ArmTimer` replaces it.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

pub use super::fsm_config::{FsmConfig, GarpConfig};
use super::packet::Version;

/// Priority of the address owner (RFC 5798 §5.2.4).
pub const PRIO_OWNER: u8 = 255;
/// Priority a master sends when it stops (RFC 5798 §5.2.4).
pub const PRIO_STOP: u8 = 0;

/// Bounds on a learnt v3 Master_Adver_Interval, as factors of our own
/// `advert_int`. RFC 5798 §6.4.2 has a backup adopt the master's interval,
/// so one spoofed advert could stretch Master_Down_Interval to 148 s (40.95 s
/// interval) or shrink it to 30 ms (flapping). At no less than half our
/// interval, 3 × Master_Adver_Interval stays above one of our intervals, so a
/// master advertising as configured is never timed out; at no more than
/// twice, a spoofed advert at most doubles the failover time. An interval
/// beyond is learnt as the nearest bound, its advert otherwise taken as any
/// other (the daemon counts and logs it; keepalived only logs it): peers
/// that differ by more are misconfigured, and refusing their adverts made
/// both nodes master for good.
pub const LEARN_MIN_DIVISOR: u32 = 2;
pub const LEARN_MAX_FACTOR: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, or stopped.
    Initialize,
    Backup,
    Master,
    Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Master: send the next advert.
    Advert,
    /// Backup: the master is presumed dead when it fires.
    MasterDown,
    /// Master: second gratuitous batch, `garp_master_delay` after takeover.
    GarpDelay,
    /// Master: periodic gratuitous batch, `garp_master_refresh`.
    GarpRefresh,
    /// Master: delayed batch after a lower-priority advert.
    GarpLowerPrio,
    /// Stopping master: release the VIPs even if no new master spoke.
    Handover,
}

const KINDS: [TimerKind; 6] = [
    TimerKind::Advert,
    TimerKind::MasterDown,
    TimerKind::GarpDelay,
    TimerKind::GarpRefresh,
    TimerKind::GarpLowerPrio,
    TimerKind::Handover,
];

/// Timers that only run while Master.
const MASTER_TIMERS: [TimerKind; 4] = [
    TimerKind::Advert,
    TimerKind::GarpDelay,
    TimerKind::GarpRefresh,
    TimerKind::GarpLowerPrio,
];

impl TimerKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// keepalived's notify hooks (`notify_master`, ..., `notify_stop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyEvent {
    Master,
    Backup,
    Fault,
    Stop,
    /// `notify_master_rx_lower_pri`.
    MasterRxLowerPri,
}

impl NotifyEvent {
    /// The hook of a transition to `state` (`Initialize`: stopped).
    pub fn entering(state: State) -> NotifyEvent {
        match state {
            State::Master => NotifyEvent::Master,
            State::Backup => NotifyEvent::Backup,
            State::Fault => NotifyEvent::Fault,
            State::Initialize => NotifyEvent::Stop,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    /// Instead of `Startup`: a restarted or upgraded daemon whose instance
    /// was master less than Master_Down_Interval ago takes mastership back
    /// at once, VIPs kept, before any backup's timer can run out.
    ResumeMaster,
    /// A validated advert (see `packet::Advert::decode`) for this VRID.
    AdvertReceived {
        from: IpAddr,
        priority: u8,
        max_advert_int: Duration,
    },
    TimerFired(TimerKind),
    /// New effective priority from tracking (`track::effective_priority`).
    PriorityChanged(u8),
    /// Own fault (interface down, weight-0 track failed).
    FaultChanged(bool),
    /// Planned stop: a master hands over before releasing its VIPs.
    Shutdown,
    /// Sync group: another member is in fault.
    GroupFault(bool),
    /// Sync group: another member lost mastership; follow it.
    GroupForceBackup,
    /// Sync group: every member wants to be master.
    GroupGoMaster,
    /// Sync group: another member, master, heard a lower-priority master
    /// (`Action::LowerPrioToGroup`); a master refreshes its ARP caches too.
    GroupLowerPrio,
}

/// Why a received advert changed nothing; the daemon counts these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// The address owner (priority 255) drops every advert it receives, as
    /// RFC 3768, RFC 5798 and RFC 9568 say and keepalived 2.3.3 can be told
    /// to: a spoofed priority-255 advert cannot make it step down.
    Owner,
    /// A lower-priority advert within one advert interval of the last one
    /// answered (advert, gratuitous batch and notify are not repeated).
    LowerPrioRateLimited,
}

impl Discard {
    /// Stable snake_case name for drop counters.
    pub fn reason(self) -> &'static str {
        match self {
            Discard::Owner => "owner_discards",
            Discard::LowerPrioRateLimited => "lower_prio_rate_limited",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advert now, with this priority and our configured interval.
    SendAdvert {
        priority: u8,
    },
    AddVips {
        accept: bool,
    },
    RemoveVips,
    /// Send `count` gratuitous ARPs / unsolicited NAs for every VIP.
    SendGratuitous {
        count: u32,
    },
    ArmTimer {
        kind: TimerKind,
        at: Instant,
    },
    CancelTimer(TimerKind),
    StateChanged {
        from: State,
        to: State,
    },
    Notify(NotifyEvent),
    /// Sync group: a lower-priority master was heard, as after a split
    /// brain; the other members get `Input::GroupLowerPrio` (keepalived
    /// vrrp_state_master_rx refreshes ARP for the whole group: the lower
    /// node's other members give up without a word to us).
    LowerPrioToGroup,
    /// A received advert was discarded by rule.
    Discarded(Discard),
    /// The instance has stopped; the daemon may drop it.
    Stopped,
}

/// One VRRP instance.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    priority: u8,
    master_adver_int: Duration,
    own_fault: bool,
    group_fault: bool,
    /// keepalived's `preempt_time`: lower masters are accepted until then.
    preempt_until: Option<Instant>,
    wants_master: bool,
    stopping: bool,
    timers: [Option<Instant>; KINDS.len()],
    master: Option<(IpAddr, u8)>,
    /// When a lower-priority advert was last answered (rate limit).
    lower_answered: Option<Instant>,
}

impl Fsm {
    pub fn new(cfg: FsmConfig) -> Self {
        Fsm {
            state: State::Initialize,
            priority: cfg.priority.max(1),
            master_adver_int: cfg.advert_int,
            own_fault: false,
            group_fault: false,
            preempt_until: None,
            wants_master: false,
            stopping: false,
            timers: [None; KINDS.len()],
            master: None,
            lower_answered: None,
            cfg,
        }
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Master_Adver_Interval: learned from the master in v3 Backup.
    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// A master that sent priority 0 and still holds its VIPs.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Backup whose master-down timer expired (sync groups wait on this).
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// Own fault, as opposed to one imposed by the sync group.
    pub fn own_fault(&self) -> bool {
        self.own_fault
    }

    pub fn group_fault(&self) -> bool {
        self.group_fault
    }

    /// Address and priority of the last accepted master's advert.
    pub fn last_master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// Skew_Time: v3 (256 - Priority) * Master_Adver_Interval / 256
    /// (RFC 5798 §6.1); v2 (256 - Priority) / 256 seconds (RFC 3768 §6.1).
    pub fn skew_time(&self) -> Duration {
        self.skew_for(self.priority)
    }

    fn skew_for(&self, priority: u8) -> Duration {
        let factor = 256 - u128::from(priority);
        let micros = match self.cfg.version {
            Version::V2 => factor * 1_000_000 / 256,
            Version::V3 => factor * self.master_adver_int.as_micros() / 256,
        };
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time, or
    /// keepalived's `down_timer_adverts` instead of 3.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_int * self.cfg.down_timer_adverts.max(1) + self.skew_time()
    }

    /// The longest a planned handover (`Shutdown` as master) may wait: the
    /// Master_Down_Interval of a master (its own advert interval) at the
    /// lowest priority tracking can leave it, since the effective priority,
    /// not the configured one, sets the skew.
    pub fn longest_handover(&self) -> Duration {
        let interval = self.cfg.advert_int;
        let skew = match self.cfg.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => interval,
        };
        interval * self.cfg.down_timer_adverts.max(1) + skew
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::ResumeMaster => self.resume_master(now, &mut out),
            Input::AdvertReceived {
                from,
                priority,
                max_advert_int,
            } => {
                self.advert(now, from, priority, max_advert_int, &mut out);
            }
            Input::TimerFired(kind) => self.timer(now, kind, &mut out),
            Input::PriorityChanged(p) => self.priority_changed(p, &mut out),
            Input::FaultChanged(f) => {
                self.own_fault = f;
                self.apply_fault(now, &mut out);
            }
            Input::GroupFault(f) => {
                self.group_fault = f;
                self.apply_fault(now, &mut out);
            }
            Input::GroupForceBackup => {
                // keepalived vrrp_sync_backup: leave without a priority-0 advert.
                if self.state == State::Master && !self.stopping {
                    self.leave_master(&mut out);
                    self.enter_backup(now + self.master_down_interval(), &mut out);
                }
            }
            Input::GroupGoMaster => {
                if self.state == State::Backup {
                    self.become_master(now, &mut out);
                }
            }
            Input::GroupLowerPrio => {
                if self.state == State::Master && !self.stopping {
                    self.lower_prio_garp(now, &mut out);
                }
            }
            Input::Shutdown => self.shutdown(now, &mut out),
        }
        out
    }

    fn arm(&mut self, kind: TimerKind, at: Instant, out: &mut Vec<Action>) {
        self.timers[kind.index()] = Some(at);
        out.push(Action::ArmTimer { kind, at });
    }

    fn cancel(&mut self, kind: TimerKind, out: &mut Vec<Action>) {
        if self.timers[kind.index()].take().is_some() {
            out.push(Action::CancelTimer(kind));
        }
    }

    fn cancel_all(&mut self, out: &mut Vec<Action>) {
        for kind in KINDS {
            self.cancel(kind, out);
        }
    }

    fn transition(&mut self, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::StateChanged { from, to });
        out.push(Action::Notify(NotifyEvent::entering(to)));
    }

    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.cfg.advert_int;
        if self.own_fault || self.group_fault {
            self.transition(State::Fault, out);
        } else if self.priority == PRIO_OWNER {
            // RFC 5798 §6.4.1: the owner goes straight to Master.
            self.become_master(now, out);
        } else if self.cfg.start_as_master {
            // keepalived `state MASTER`: one interval plus minimal skew.
            self.enter_backup(now + self.master_adver_int + self.skew_for(PRIO_OWNER), out);
        } else {
            self.enter_backup(now + self.master_down_interval(), out);
        }
    }

    /// RFC 5798 §6.4.1/§6.4.2 "transition to the Master state".
    fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.cancel(TimerKind::MasterDown, out);
        self.wants_master = false;
        self.preempt_until = None;
        self.master = None;
        self.master_adver_int = self.cfg.advert_int;
        // Advert first so the old master drops the VIPs before our GARPs.
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        out.push(Action::AddVips {
            accept: self.cfg.accept,
        });
        let garp = self.cfg.garp;
        out.push(Action::SendGratuitous {
            count: garp.master_repeat,
        });
        self.arm(TimerKind::Advert, now + self.cfg.advert_int, out);
        if !garp.master_delay.is_zero() {
            self.arm(TimerKind::GarpDelay, now + garp.master_delay, out);
        }
        if !garp.master_refresh.is_zero() {
            self.arm(TimerKind::GarpRefresh, now + garp.master_refresh, out);
        }
        self.transition(State::Master, out);
    }

    /// `ResumeMaster`: Master as after RFC 5798 §6.4.1's transition, but
    /// the peers never saw us go, so no gratuitous storm: one advert now,
    /// the VIPs ensured (they were kept), one gratuitous ARP / NA. A fault
    /// or another master heard later follows the normal rules.
    fn resume_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.own_fault || self.group_fault {
            self.transition(State::Fault, out);
            return;
        }
        self.master_adver_int = self.cfg.advert_int;
        self.wants_master = false;
        self.preempt_until = None;
        self.master = None;
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        out.push(Action::AddVips {
            accept: self.cfg.accept,
        });
        out.push(Action::SendGratuitous { count: 1 });
        self.arm(TimerKind::Advert, now + self.cfg.advert_int, out);
        let refresh = self.cfg.garp.master_refresh;
        if !refresh.is_zero() {
            self.arm(TimerKind::GarpRefresh, now + refresh, out);
        }
        self.transition(State::Master, out);
    }

    fn leave_master(&mut self, out: &mut Vec<Action>) {
        for kind in MASTER_TIMERS {
            self.cancel(kind, out);
        }
        out.push(Action::RemoveVips);
    }

    fn enter_backup(&mut self, down_at: Instant, out: &mut Vec<Action>) {
        self.wants_master = false;
        self.arm(TimerKind::MasterDown, down_at, out);
        self.transition(State::Backup, out);
    }

    fn finish_stop(&mut self, out: &mut Vec<Action>) {
        self.cancel_all(out);
        if self.state == State::Master {
            out.push(Action::RemoveVips);
        }
        self.stopping = false;
        self.wants_master = false;
        if self.state != State::Initialize {
            self.transition(State::Initialize, out);
        }
        out.push(Action::Stopped);
    }

    fn learn_interval(&mut self, max_advert_int: Duration) {
        // RFC 5798 §6.4.2: Master_Adver_Interval := the advert's interval,
        // within the bounds (`LEARN_*`).
        if self.cfg.version == Version::V3 && !max_advert_int.is_zero() {
            let ours = self.cfg.advert_int;
            self.master_adver_int =
                max_advert_int.clamp(ours / LEARN_MIN_DIVISOR, ours * LEARN_MAX_FACTOR);
        }
    }

    /// Whether a v3 advert's interval is learnt as it is (see `LEARN_*`);
    /// v2 intervals were matched against ours by the codec (RFC 3768 §7.1).
    pub fn interval_acceptable(&self, int: Duration) -> bool {
        let ours = self.cfg.advert_int;
        self.cfg.version == Version::V2
            || (int >= ours / LEARN_MIN_DIVISOR && int <= ours * LEARN_MAX_FACTOR)
    }

    fn advert(
        &mut self,
        now: Instant,
        from: IpAddr,
        prio: u8,
        int: Duration,
        out: &mut Vec<Action>,
    ) {
        let owner = self.cfg.priority == PRIO_OWNER;
        match self.state {
            State::Master if self.stopping => {
                // Handover: the new master has spoken; release the VIPs.
                if prio != PRIO_STOP {
                    self.finish_stop(out);
                }
            }
            // As Backup (after a fault) the owner takes over when its
            // master-down timer runs out, whatever others advertise.
            State::Backup | State::Master if owner => out.push(Action::Discarded(Discard::Owner)),
            State::Backup => self.backup_advert(now, from, prio, int, out),
            State::Master => self.master_advert(now, from, prio, int, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 §6.4.2 with keepalived's `nopreempt` and `preempt_delay`.
    fn backup_advert(
        &mut self,
        now: Instant,
        from: IpAddr,
        prio: u8,
        int: Duration,
        out: &mut Vec<Action>,
    ) {
        if prio == PRIO_STOP {
            let at = now + self.skew_time();
            self.arm(TimerKind::MasterDown, at, out);
            return;
        }
        let delaying =
            !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|until| until > now);
        if !self.cfg.preempt || prio >= self.priority || delaying {
            self.learn_interval(int);
            self.arm(
                TimerKind::MasterDown,
                now + self.master_down_interval(),
                out,
            );
            self.master = Some((from, prio));
            self.wants_master = false;
            if !self.cfg.preempt_delay.is_zero() {
                if prio >= self.priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                }
            }
        }
        // Otherwise a lower priority master is discarded and the
        // master-down timer runs out: preemption.
    }

    /// RFC 5798 §6.4.3 with keepalived's answer to lower priorities.
    fn master_advert(
        &mut self,
        now: Instant,
        from: IpAddr,
        prio: u8,
        int: Duration,
        out: &mut Vec<Action>,
    ) {
        if prio == PRIO_STOP {
            out.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.arm(TimerKind::Advert, now + self.cfg.advert_int, out);
            return;
        }
        let ours = self.priority;
        if prio > ours || (prio == ours && from > self.cfg.primary_addr) {
            if self.cfg.higher_prio_send_advert {
                // keepalived: tell the other master (and the backups) we
                // were here, at our priority, before stepping down.
                out.push(Action::SendAdvert { priority: ours });
            }
            self.leave_master(out);
            self.learn_interval(int);
            self.master = Some((from, prio));
            self.enter_backup(now + self.master_down_interval(), out);
        } else if prio < ours || from < self.cfg.primary_addr {
            // keepalived forces a new election and refreshes ARP caches;
            // the RFC would just discard. At most once per advert interval,
            // so a flood of lower adverts is not answered in kind.
            if self
                .lower_answered
                .is_some_and(|at| now < at + self.cfg.advert_int)
            {
                out.push(Action::Discarded(Discard::LowerPrioRateLimited));
                return;
            }
            self.lower_answered = Some(now);
            if !self.cfg.lower_prio_no_advert {
                out.push(Action::SendAdvert { priority: ours });
            }
            self.lower_prio_garp(now, out);
            if self.cfg.sync_group {
                out.push(Action::LowerPrioToGroup);
            }
            out.push(Action::Notify(NotifyEvent::MasterRxLowerPri));
        }
        // Equal priority from our own address: a loop; ignored.
    }

    /// keepalived's ARP refresh after a lower-priority advert:
    /// `garp_lower_prio_repeat` now, again after `garp_lower_prio_delay`.
    fn lower_prio_garp(&mut self, now: Instant, out: &mut Vec<Action>) {
        let garp = self.cfg.garp;
        if garp.lower_prio_repeat > 0 {
            out.push(Action::SendGratuitous {
                count: garp.lower_prio_repeat,
            });
            if !garp.lower_prio_delay.is_zero() {
                self.arm(TimerKind::GarpLowerPrio, now + garp.lower_prio_delay, out);
            }
        }
    }

    fn timer(&mut self, now: Instant, kind: TimerKind, out: &mut Vec<Action>) {
        // Stale or cancelled timers from the daemon's queue are ignored.
        match self.timers[kind.index()] {
            Some(at) if at <= now => self.timers[kind.index()] = None,
            _ => return,
        }
        let garp = self.cfg.garp;
        match (self.state, kind) {
            (State::Master, TimerKind::Advert) if !self.stopping => {
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                self.arm(TimerKind::Advert, now + self.cfg.advert_int, out);
            }
            (State::Backup, TimerKind::MasterDown) => {
                if self.cfg.sync_group {
                    self.wants_master = true;
                } else {
                    self.become_master(now, out);
                }
            }
            (State::Master, TimerKind::GarpDelay) => {
                out.push(Action::SendGratuitous {
                    count: garp.master_repeat,
                });
            }
            (State::Master, TimerKind::GarpRefresh) => {
                out.push(Action::SendGratuitous {
                    count: garp.master_refresh_repeat,
                });
                self.arm(TimerKind::GarpRefresh, now + garp.master_refresh, out);
            }
            (State::Master, TimerKind::GarpLowerPrio) => {
                out.push(Action::SendGratuitous {
                    count: garp.lower_prio_repeat,
                });
            }
            (State::Master, TimerKind::Handover) => self.finish_stop(out),
            _ => {}
        }
    }

    fn priority_changed(&mut self, new: u8, out: &mut Vec<Action>) {
        // keepalived: the address owner's priority never changes.
        let new = new.max(1);
        if self.cfg.priority == PRIO_OWNER || new == self.priority {
            return;
        }
        let old_down = self.master_down_interval();
        self.priority = new;
        let new_down = self.master_down_interval();
        // keepalived shifts a running master-down timer by the difference.
        if self.state == State::Backup
            && let Some(at) = self.timers[TimerKind::MasterDown.index()]
        {
            let at = if new_down > old_down {
                at + (new_down - old_down)
            } else {
                at - (old_down - new_down)
            };
            self.arm(TimerKind::MasterDown, at, out);
        }
    }

    fn apply_fault(&mut self, now: Instant, out: &mut Vec<Action>) {
        let fault = self.own_fault || self.group_fault;
        match self.state {
            State::Master if fault && self.stopping => self.finish_stop(out),
            State::Master if fault => {
                // keepalived tells the peers at once when a master faults.
                out.push(Action::SendAdvert {
                    priority: PRIO_STOP,
                });
                self.leave_master(out);
                self.transition(State::Fault, out);
            }
            State::Backup if fault => {
                self.cancel(TimerKind::MasterDown, out);
                self.wants_master = false;
                self.transition(State::Fault, out);
            }
            State::Fault if !fault => {
                self.master_adver_int = self.cfg.advert_int;
                self.preempt_until = None;
                // keepalived (`try_up_instance`): the address owner, which
                // heeds no master, takes over after one interval.
                let down = if self.cfg.priority == PRIO_OWNER {
                    self.master_adver_int + self.skew_time()
                } else {
                    self.master_down_interval()
                };
                self.enter_backup(now + down, out);
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Master && !self.stopping {
            // Planned handover: tell the backups, keep forwarding until the
            // new master speaks or Master_Down_Interval passes.
            out.push(Action::SendAdvert {
                priority: PRIO_STOP,
            });
            for kind in MASTER_TIMERS {
                self.cancel(kind, out);
            }
            self.stopping = true;
            self.arm(TimerKind::Handover, now + self.master_down_interval(), out);
        } else {
            // Backup, Fault, or a second Shutdown while handing over.
            self.finish_stop(out);
        }
    }
}

#[cfg(test)]
#[path = "fsm_lifecycle_tests.rs"]
mod lifecycle_tests;
#[cfg(test)]
#[path = "fsm_resume_tests.rs"]
mod resume_tests;
#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;
