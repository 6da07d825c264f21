//! What feeds an instance's priority and fault state, and what it tells the
//! outside world: `vrrp_script` checks (interval, timeout, rise/fall),
//! `track_interface` link state, and the `notify*` scripts.
//!
//! Checks publish their up/down state on a `watch` channel that every
//! tracking instance reads. Notify scripts go through one bounded queue to a
//! worker, so a slow or hung script never delays an advert.

use std::{sync::Arc, time::Duration};

use log::{info, warn};
use tokio::{
    sync::{Semaphore, mpsc, watch},
    task::JoinHandle,
};

use crate::{
    config::{Config, Location, Notify, NotifyScript, Severity, VrrpScript},
    script_runner::{Kind, Preparer, RealFs, Script},
    vrrp::{
        fsm::NotifyEvent,
        track::{Effective, Tracked, TrackedFile, effective},
    },
};

/// How often `track_interface` reads the link state.
const LINK_POLL: Duration = Duration::from_millis(200);
/// Notify scripts running at once; more wait in the queue.
const NOTIFY_PARALLEL: usize = 4;
/// Queued notifications beyond which new ones are dropped (and logged).
const NOTIFY_QUEUE: usize = 64;
/// A notify script still running after this is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// keepalived's state word for the generic `notify` script.
pub fn state_word(event: NotifyEvent) -> Option<&'static str> {
    match event {
        NotifyEvent::Master => Some("MASTER"),
        NotifyEvent::Backup => Some("BACKUP"),
        NotifyEvent::Fault => Some("FAULT"),
        NotifyEvent::Stop => Some("STOP"),
        NotifyEvent::MasterRxLowerPri => None,
    }
}

/// The generic `notify` script's extra arguments, after its own words:
/// `INSTANCE|GROUP name state priority` (keepalived gives a group 0).
pub fn notify_args(kind: &str, name: &str, state: &str, priority: u8) -> Vec<String> {
    [kind, name, state, &priority.to_string()]
        .map(String::from)
        .into()
}

/// rise/fall hysteresis of one check; starts up, or with keepalived's
/// `init_fail` down (then `rise` successes bring it up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    up: bool,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        Hysteresis {
            up: !init_fail,
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Records one result; true when the state flipped.
    pub fn observe(&mut self, ok: bool) -> bool {
        if ok == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        if self.streak >= if ok { self.rise } else { self.fall } {
            self.up = ok;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// A `vrrp_script` as the runner needs it.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub script: Script,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// Starts a check; its state is on the returned channel.
pub fn spawn_check(check: Check) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let mut state = Hysteresis::new(check.rise, check.fall, check.init_fail);
    let (tx, rx) = watch::channel(state.up());
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(check.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ok = check.script.run(check.timeout).await.success();
            if state.observe(ok) {
                info!(
                    "vrrp_script {}: {}",
                    check.name,
                    if state.up() { "succeeded" } else { "failed" }
                );
                let _ = tx.send(state.up());
            }
        }
    });
    (rx, task)
}

/// Whether /sys/class/net/IF/operstate says the link can carry traffic.
/// `unknown` (dummy, lo, some tunnels) counts as up, as keepalived does.
pub fn link_up(operstate: &str) -> bool {
    !matches!(
        operstate.trim(),
        "down" | "lowerlayerdown" | "notpresent" | ""
    )
}

fn read_link(dev: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/operstate")).is_ok_and(|s| link_up(&s))
}

/// Follows one interface's link state by polling (missing = down).
pub fn spawn_link(dev: String) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(read_link(&dev));
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(LINK_POLL);
        loop {
            tick.tick().await;
            let up = read_link(&dev);
            if *tx.borrow() != up {
                info!(
                    "track_interface {dev}: link {}",
                    if up { "up" } else { "down" }
                );
                let _ = tx.send(up);
            }
        }
    });
    (rx, task)
}

/// One tracked check, link or file feeding an instance's priority.
pub enum Source {
    /// A `vrrp_script`, a link or a `track_process` quorum: up or down.
    Check {
        state: watch::Receiver<bool>,
        /// keepalived: 0 means fault while down.
        weight: i32,
        /// keepalived's `reverse` (track_process): the weight's sign and
        /// the fault's sense flip.
        reverse: bool,
    },
    /// A `track_file`: the number in it.
    File {
        value: watch::Receiver<i64>,
        weight: i32,
        reverse: bool,
    },
}

impl Source {
    async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        match self {
            Source::Check { state, .. } => state.changed().await,
            Source::File { value, .. } => value.changed().await,
        }
    }
}

fn current(base: u8, sources: &[Source]) -> Effective {
    let mut tracked = Vec::new();
    let mut files = Vec::new();
    for s in sources {
        match s {
            Source::Check {
                state,
                weight,
                reverse,
            } => tracked.push(Tracked {
                weight: *weight,
                reverse: *reverse,
                up: *state.borrow(),
            }),
            Source::File {
                value,
                weight,
                reverse,
            } => files.push(TrackedFile {
                weight: *weight,
                reverse: *reverse,
                value: *value.borrow(),
            }),
        }
    }
    effective(base, &tracked, &files)
}

/// Follows `sources` and publishes the instance's effective priority and
/// fault (`vrrp::track::effective`) whenever one of them changes.
pub fn spawn_tracker(
    base: u8,
    mut sources: Vec<Source>,
) -> (watch::Receiver<Effective>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(current(base, &sources));
    let task = tokio::spawn(async move {
        while !sources.is_empty() {
            let changes = sources.iter_mut().map(|s| Box::pin(s.changed()));
            let (changed, _, _) = futures::future::select_all(changes).await;
            if changed.is_err() {
                return;
            }
            tx.send_if_modified(|old| {
                let new = current(base, &sources);
                std::mem::replace(old, new) != new
            });
        }
        // Nothing tracked: keep the channel open, its value never changes.
        std::future::pending::<()>().await;
    });
    (rx, task)
}

/// An instance's or a sync group's checked `notify*` scripts.
#[derive(Clone, Debug, Default)]
pub struct NotifyScripts {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// `notify`: called with `INSTANCE|GROUP name state priority` appended.
    pub any: Option<Script>,
    /// `notify_master_rx_lower_pri` (instances only): run alone (keepalived
    /// gives the generic `notify` no word for it).
    pub master_rx_lower_pri: Option<Script>,
}

impl NotifyScripts {
    /// The `notify_*` script of `event`.
    pub fn specific(&self, event: NotifyEvent) -> Option<&Script> {
        match event {
            NotifyEvent::Master => self.master.as_ref(),
            NotifyEvent::Backup => self.backup.as_ref(),
            NotifyEvent::Fault => self.fault.as_ref(),
            NotifyEvent::Stop => self.stop.as_ref(),
            NotifyEvent::MasterRxLowerPri => self.master_rx_lower_pri.as_ref(),
        }
    }
}

/// The VRRP side's scripts after `script_runner`'s checks: `None` for a
/// refused `vrrp_script` (its trackers ignore it, as keepalived's do).
pub struct Prepared<'c> {
    pub checks: Vec<(&'c VrrpScript, Option<Script>)>,
    /// One per instance, in order.
    pub notify: Vec<NotifyScripts>,
    /// One per `vrrp_sync_group`, in order.
    pub groups: Vec<NotifyScripts>,
}

/// Checks every used `vrrp_script`, then every instance's and sync group's
/// notify scripts, before any runs (keepalived's order), logging what was
/// said.
pub fn prepare(config: &Config) -> Prepared<'_> {
    let mut p = Preparer::new(config, &RealFs);
    let used = |s: &VrrpScript| {
        config
            .vrrp_instances
            .iter()
            .any(|i| i.track_scripts.iter().any(|t| t.name == s.name))
    };
    let checks = config
        .vrrp_scripts
        .iter()
        .filter(|s| used(s))
        .map(|s| {
            let script = p.prepare(
                Kind::Track(&s.name),
                &s.script,
                s.user.as_ref(),
                &s.location,
            );
            (s, script)
        })
        .collect();
    let notify = config
        .vrrp_instances
        .iter()
        .map(|i| {
            let mut n = notify_scripts(&mut p, &i.notify, &i.location);
            n.master_rx_lower_pri = i
                .notify_master_rx_lower_pri
                .as_ref()
                .and_then(|s| p.prepare_notify(s, &i.location));
            n
        })
        .collect();
    let groups = config
        .sync_groups
        .iter()
        .map(|g| notify_scripts(&mut p, &g.notify, &g.location))
        .collect();
    let file = config.vrrp_instances.first().map(|i| &*i.location.file);
    for d in p.finish(&Location::of(file.unwrap_or("".as_ref()))) {
        match d.severity {
            Severity::Error => log::error!("{d}"),
            _ => warn!("{d}"),
        }
    }
    Prepared {
        checks,
        notify,
        groups,
    }
}

/// The checked `notify_master` ... `notify` of one instance or sync group.
fn notify_scripts(p: &mut Preparer<'_>, n: &Notify, at: &Location) -> NotifyScripts {
    let mut one = |s: &Option<NotifyScript>| p.prepare_notify(s.as_ref()?, at);
    NotifyScripts {
        master: one(&n.master),
        backup: one(&n.backup),
        fault: one(&n.fault),
        stop: one(&n.stop),
        any: one(&n.any),
        master_rx_lower_pri: None,
    }
}

/// Runs notify scripts off the instances' tasks, a few at a time.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Script>,
}

impl Notifier {
    pub fn spawn() -> (Notifier, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Script>(NOTIFY_QUEUE);
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(NOTIFY_PARALLEL));
            while let Some(script) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                tokio::spawn(async move {
                    let outcome = script.run(NOTIFY_TIMEOUT).await;
                    if !outcome.success() {
                        warn!("notify script {:?} failed: {outcome:?}", script.argv());
                    }
                    drop(permit);
                });
            }
        });
        (Notifier { tx }, task)
    }

    /// Queues a script; never waits.
    pub fn run(&self, script: Script) {
        if let Err(e) = self.tx.try_send(script) {
            warn!("notify script dropped ({e})");
        }
    }

    /// An instance's or group's (`kind`: INSTANCE or GROUP) `event`: its
    /// `notify_*` script, then the generic `notify` with keepalived's
    /// arguments.
    pub fn event(
        &self,
        scripts: &NotifyScripts,
        event: NotifyEvent,
        kind: &str,
        name: &str,
        priority: u8,
    ) {
        if let Some(script) = scripts.specific(event) {
            self.run(script.clone());
        }
        if let (Some(script), Some(word)) = (&scripts.any, state_word(event)) {
            self.run(script.with_args(notify_args(kind, name, word, priority)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_script_runs_as_the_user_it_names() {
        let config = crate::config::parse_str(
            "vrrp_instance V {\n interface eth0\n virtual_router_id 7\n \
             virtual_ipaddress {\n  10.0.0.100/32\n }\n notify_backup /bin/true nobody\n notify_master /bin/true\n}\n",
            std::path::Path::new("k.conf"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
        let prepared = prepare(&config);
        let n = &prepared.notify[0];
        let who = |s: &Option<Script>| s.as_ref().expect("prepared").identity().user.clone();
        assert_eq!(who(&n.backup), "nobody");
        // The others run as script_user (here, as no one else was named,
        // the user the daemon runs as).
        assert_eq!(
            who(&n.master),
            crate::script_runner::Identity::current().user
        );
    }

    #[test]
    fn generic_notify_arguments() {
        let argv = notify_args("INSTANCE", "VI_1", "MASTER", 100);
        assert_eq!(argv, ["INSTANCE", "VI_1", "MASTER", "100"]);
        // keepalived's notify_script_exec: a group's priority is 0.
        assert_eq!(
            notify_args("GROUP", "G", "FAULT", 0),
            ["GROUP", "G", "FAULT", "0"]
        );
        assert_eq!(state_word(NotifyEvent::Stop), Some("STOP"));
        assert_eq!(state_word(NotifyEvent::MasterRxLowerPri), None);
    }

    #[test]
    fn rise_and_fall() {
        let mut h = Hysteresis::new(2, 3, false);
        assert!(h.up(), "starts up");
        assert!(
            !h.observe(false) && !h.observe(false),
            "two failures are not three"
        );
        assert!(!h.observe(true), "a success resets the streak");
        let flips: Vec<bool> = [false, false, false]
            .into_iter()
            .map(|ok| h.observe(ok))
            .collect();
        assert_eq!(flips, [false, false, true]);
        assert!(!h.up());
        assert!(!h.observe(true) && h.observe(true) && h.up(), "rise 2");
    }

    #[test]
    fn init_fail_starts_down_and_needs_rise_successes() {
        // keepalived vrrp_init_script: init_fail sets the result to 0, so
        // `rise` successes are needed before the script counts as up.
        let mut h = Hysteresis::new(3, 2, true);
        assert!(!h.up(), "starts failed");
        assert!(!h.observe(false), "a failure changes nothing");
        assert!(!h.observe(true) && !h.observe(true), "two of three");
        assert!(h.observe(true) && h.up(), "the third success: up");
        let mut h = Hysteresis::new(1, 1, true);
        assert!(h.observe(true), "rise 1: the first success");
        // Without init_fail the same script is up from the start.
        assert!(Hysteresis::new(3, 2, false).up());
    }

    #[test]
    fn operstate_words() {
        assert!(link_up("up\n") && link_up("unknown"));
        assert!(!link_up("down\n") && !link_up("lowerlayerdown") && !link_up(""));
    }
}
