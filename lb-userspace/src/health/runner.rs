//! Runs every real's checks concurrently, one task per real: a hung real or
//! script holds only its own task (every attempt is bounded by its timeout),
//! and nothing here can delay the daemon's main loop, which only receives
//! the events. Within a real, each checker runs on its own timing with its
//! own retries (keepalived's checkers), and the real is up while every one
//! of them is. Specs with the same `shared_key` (one real under several
//! services of a virtual_server_group) run as one check whose verdicts go
//! to every one of those services.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher as _, Hasher as _},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::join_all;
use log::{info, warn};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    hysteresis::{Policy, Tracker},
    probe::{Outcome, Probe},
};
use crate::dataplane::reconcile::{RealId, ServiceId};

/// One checker of a real: its probe and keepalived's timing of its own.
pub struct Checker {
    pub probe: Box<dyn Probe>,
    pub policy: Policy,
    /// `warmup`: its first attempt waits a random time up to this.
    pub warmup: Duration,
}

pub struct CheckSpec {
    /// Equal for specs that check the same real the same way.
    pub shared_key: String,
    pub service: ServiceId,
    pub real: RealId,
    pub checkers: Vec<Checker>,
    /// The real's state, and each checker's, before the first result (false
    /// with `alpha`): a real that starts down comes up once every checker
    /// has passed.
    pub start_up: bool,
    /// The daemon is starting: no check has judged the real yet, and the
    /// first failure takes it down (`Tracker::unjudged`); false on reload,
    /// whose checks go on from the state the last ones left.
    pub unjudged: bool,
    /// `ha_suspend`: attempts run only while one of these VIPs is on this
    /// host (empty: always).
    pub ha_suspend: Vec<IpAddr>,
}

/// The addresses on this host (`presence::watch_host` keeps them current).
pub type Addresses = watch::Receiver<Arc<HashSet<IpAddr>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub service: ServiceId,
    pub real: RealId,
    pub up: bool,
    /// Set by MISC_CHECK `misc_dynamic`.
    pub weight: Option<u32>,
    /// "connection refused", "status 500", "script exit 1", "ok".
    pub reason: String,
    /// From the first failed attempt to the decision (down only).
    pub detected_in: Option<Duration>,
    /// When the decision was taken: the daemon measures the time to the maps.
    pub decided_at: Instant,
    /// The `Runner` that sent it (`Runner::sent`).
    pub generation: u64,
}

/// How long each real's last attempt (of any of its checkers) took, for
/// metrics and status.
pub type Latencies = Arc<Mutex<HashMap<(ServiceId, RealId), Duration>>>;

/// Attempts that could not run, per real: counted, never held against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalErrorCount {
    pub count: u64,
    pub last: String,
}

pub type LocalErrors = Arc<Mutex<HashMap<(ServiceId, RealId), LocalErrorCount>>>;

struct Shared {
    generation: u64,
    events: mpsc::Sender<HealthEvent>,
    addresses: Addresses,
    latencies: Latencies,
    local_errors: LocalErrors,
}

/// Merges the specs that share a check, keeping the first's probes: each
/// with the services it reports to, in order.
fn dedupe(specs: Vec<CheckSpec>) -> Vec<(CheckSpec, Vec<ServiceId>)> {
    let mut out: Vec<(CheckSpec, Vec<ServiceId>)> = Vec::new();
    let mut index: HashMap<(String, bool), usize> = HashMap::new();
    for s in specs {
        // Reals whose state differs (a reload) keep checks of their own.
        match index.get(&(s.shared_key.clone(), s.start_up)) {
            Some(&i) => {
                // A group's checks run while any of its VIPs is here.
                out[i].0.ha_suspend.extend(s.ha_suspend);
                out[i].1.push(s.service);
            }
            None => {
                index.insert((s.shared_key.clone(), s.start_up), out.len());
                let service = s.service;
                out.push((s, vec![service]));
            }
        }
    }
    out
}

/// The first reason a check of `spec` cannot run on this host.
fn unavailable(spec: &CheckSpec) -> Option<String> {
    spec.checkers.iter().find_map(|c| {
        c.probe
            .unavailable()
            .map(|why| format!("{}: cannot run: {why}", c.probe.describe()))
    })
}

async fn send_all(
    shared: &Shared,
    services: &[ServiceId],
    event: impl Fn(ServiceId) -> HealthEvent,
) -> bool {
    for &service in services {
        if shared.events.send(event(service)).await.is_err() {
            return false;
        }
    }
    true
}

/// A random share of `up_to`, so that checks started together spread out.
fn jitter(up_to: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    up_to.mul_f64(random as f64 / u64::MAX as f64)
}

/// Returns once one of `vips` is on this host (at once when `vips` is
/// empty); logs the suspension and the resumption.
async fn until_present(vips: &[IpAddr], addresses: &mut Addresses, real: RealId) {
    let present = |a: &Addresses| vips.is_empty() || vips.iter().any(|v| a.borrow().contains(v));
    if present(addresses) {
        return;
    }
    info!(
        "real {}: checks suspended while VIP {} is not on this host (ha_suspend)",
        SocketAddr::from(real),
        vips[0]
    );
    while !present(addresses) {
        if addresses.changed().await.is_err() {
            // No one reports addresses any more: stay suspended.
            std::future::pending::<()>().await;
        }
    }
    info!(
        "real {}: checks resumed, VIP {} is on this host",
        SocketAddr::from(real),
        vips[0]
    );
}

/// What a checker tells its real: a change of its state, or the weight it
/// read (MISC_CHECK `misc_dynamic`, FILE_CHECK), at every attempt.
struct Report {
    checker: usize,
    up: bool,
    weight: Option<u32>,
    reason: String,
    detected_in: Option<Duration>,
    at: Instant,
}

/// The real's side of its checkers: where they report, and its state,
/// which the checkers read for their logs.
struct RealState {
    reports: mpsc::UnboundedSender<Report>,
    up: AtomicBool,
}

async fn watch(spec: CheckSpec, services: Vec<ServiceId>, shared: Arc<Shared>) {
    let mut start_up = spec.start_up;
    if let Some(why) = unavailable(&spec) {
        // Never counted healthy by a check that did not run.
        warn!(
            "real {}: {why}; it stays DOWN until the check can run",
            SocketAddr::from(spec.real)
        );
        let now = Instant::now();
        if start_up
            && !send_all(&shared, &services, |service| HealthEvent {
                service,
                real: spec.real,
                up: false,
                weight: None,
                reason: why.clone(),
                detected_in: None,
                decided_at: now,
                generation: shared.generation,
            })
            .await
        {
            return;
        }
        start_up = false;
    }
    let (reports, mut received) = mpsc::unbounded_channel();
    let real = RealState {
        reports,
        up: AtomicBool::new(start_up),
    };
    let keys: Vec<_> = services.iter().map(|&s| (s, spec.real)).collect();
    let checks = join_all(
        spec.checkers
            .iter()
            .enumerate()
            .map(|(i, c)| check(i, c, &spec, start_up, &keys, &real, &shared)),
    );
    let verdicts = async {
        let mut ups = vec![start_up; spec.checkers.len()];
        let (mut up, mut weight) = (start_up, None);
        while let Some(r) = received.recv().await {
            ups[r.checker] = r.up;
            let was = up;
            up = ups.iter().all(|&u| u);
            real.up.store(up, Ordering::Relaxed);
            let weight_changed = r.weight.is_some() && r.weight != weight;
            if r.weight.is_some() {
                weight = r.weight;
            }
            // A checker's change that leaves the real as it was is not one
            // of the real's; a new weight is, while the real is up.
            if (up != was || (up && weight_changed))
                && !send_all(&shared, &services, |service| HealthEvent {
                    service,
                    real: spec.real,
                    up,
                    weight,
                    reason: r.reason.clone(),
                    detected_in: r.detected_in,
                    decided_at: r.at,
                    generation: shared.generation,
                })
                .await
            {
                return;
            }
        }
    };
    // The checkers never end; the real's side ends when the daemon stops
    // listening.
    tokio::select! {
        _ = checks => {}
        () = verdicts => {}
    }
}

/// Runs checker `index` of `spec` for good: keepalived's retries on its own
/// policy, its changes reported to `real`.
async fn check(
    index: usize,
    checker: &Checker,
    spec: &CheckSpec,
    start_up: bool,
    keys: &[(ServiceId, RealId)],
    real: &RealState,
    shared: &Shared,
) {
    let mut addresses = shared.addresses.clone();
    let mut tracker = if spec.unjudged {
        Tracker::unjudged(checker.policy, start_up)
    } else {
        Tracker::new(checker.policy, start_up)
    };
    if !checker.warmup.is_zero() {
        tokio::time::sleep(jitter(checker.warmup)).await;
    }
    loop {
        until_present(&spec.ha_suspend, &mut addresses, spec.real).await;
        let started = Instant::now();
        let outcome = checker.probe.run().await;
        let now = Instant::now();
        {
            let mut latencies = shared
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for &key in keys {
                latencies.insert(key, now - started);
            }
        }
        let (ok, w, reason) = match outcome {
            Outcome::Up => (true, None, "ok".to_string()),
            Outcome::UpWithWeight(w) => (true, Some(w), "ok".to_string()),
            Outcome::Down(f) if f.is_local() => {
                let reason = format!("{}: {f}", checker.probe.describe());
                let mut count = 0;
                {
                    let mut all = shared
                        .local_errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    for &key in keys {
                        let entry = all.entry(key).or_default();
                        entry.count += 1;
                        entry.last = reason.clone();
                        count = entry.count;
                    }
                }
                let step = tracker.inconclusive();
                warn!(
                    "real {} of {}: {reason}; local error {count}, the real stays {}, \
                     next try in {:?}",
                    SocketAddr::from(spec.real),
                    SocketAddr::from((keys[0].0.0, keys[0].0.1)),
                    if real.up.load(Ordering::Relaxed) {
                        "UP"
                    } else {
                        "DOWN"
                    },
                    step.next_in
                );
                tokio::time::sleep(step.next_in).await;
                continue;
            }
            Outcome::Down(f) => (false, None, format!("{}: {f}", checker.probe.describe())),
        };
        let step = tracker.observe(ok, now);
        // Every weight read goes to the real's side, which tells a new one.
        if (step.transition.is_some() || w.is_some())
            && real
                .reports
                .send(Report {
                    checker: index,
                    up: tracker.is_up(),
                    weight: w,
                    reason,
                    detected_in: step.detected_in,
                    at: now,
                })
                .is_err()
        {
            return;
        }
        tokio::time::sleep(step.next_in).await;
    }
}

/// Numbers each `Runner`, so that the events of one a reload replaced,
/// still queued, are told from the new one's.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// The running checks; dropping it stops them all.
pub struct Runner {
    generation: u64,
    tasks: Vec<JoinHandle<()>>,
    latencies: Latencies,
    local_errors: LocalErrors,
}

impl Runner {
    pub fn spawn(
        specs: Vec<CheckSpec>,
        events: mpsc::Sender<HealthEvent>,
        addresses: Addresses,
    ) -> Self {
        let shared = Arc::new(Shared {
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            events,
            addresses,
            latencies: Latencies::default(),
            local_errors: LocalErrors::default(),
        });
        let tasks = dedupe(specs)
            .into_iter()
            .map(|(s, services)| tokio::spawn(watch(s, services, shared.clone())))
            .collect();
        Self {
            generation: shared.generation,
            tasks,
            latencies: shared.latencies.clone(),
            local_errors: shared.local_errors.clone(),
        }
    }

    /// Whether these checks sent `e`: aborting a runner leaves its last
    /// events in the channel, and they are older than the new checks' start.
    pub fn sent(&self, e: &HealthEvent) -> bool {
        e.generation == self.generation
    }

    /// The duration of each real's last attempt, kept up to date.
    pub fn latencies(&self) -> Latencies {
        self.latencies.clone()
    }

    /// The attempts of each real that could not run, kept up to date.
    pub fn local_errors(&self) -> LocalErrors {
        self.local_errors.clone()
    }

    /// Stops every check and returns once all have ended: their scripts are
    /// killed and no event of theirs can follow.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            // Err(cancelled) is the expected end.
            let _ = task.await;
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::{
        dataplane::keys::Proto,
        health::misc::MiscProbe,
        script_runner::{Identity, Script},
    };

    fn spec(real: u8, command: &str, timeout_ms: u64) -> CheckSpec {
        spec_with(real, command, timeout_ms, false, 0)
    }

    fn spec_with(real: u8, command: &str, timeout_ms: u64, dynamic: bool, retry: u32) -> CheckSpec {
        let ip: IpAddr = [10, 0, 0, real].into();
        CheckSpec {
            shared_key: format!("{real} {command}"),
            service: (ip, 80, Proto::Tcp),
            real: (ip, 80),
            checkers: vec![checker(script(command, timeout_ms, dynamic), retry)],
            start_up: true,
            unjudged: false,
            ha_suspend: Vec::new(),
        }
    }

    fn script(command: &str, timeout_ms: u64, dynamic: bool) -> Box<dyn Probe> {
        Box::new(MiscProbe {
            script: Script::new(
                vec!["/bin/sh".into(), "-c".into(), command.into()],
                Identity::current(),
            ),
            timeout: Duration::from_millis(timeout_ms),
            dynamic,
        })
    }

    /// `probe` checked every 100 ms, a failure retried `retry` times 50 ms apart.
    fn checker(probe: Box<dyn Probe>, retry: u32) -> Checker {
        Checker {
            probe,
            policy: Policy {
                delay_loop: Duration::from_millis(100),
                retry,
                delay_before_retry: Duration::from_millis(50),
            },
            warmup: Duration::ZERO,
        }
    }

    /// A host with no address that ever changes.
    fn nowhere() -> Addresses {
        watch::channel(Arc::default()).1
    }

    #[tokio::test]
    async fn each_attempt_records_its_duration() {
        let (tx, _rx) = mpsc::channel(8);
        let runner = Runner::spawn(vec![spec(8, "sleep 0.2", 2_000)], tx, nowhere());
        let latencies = runner.latencies();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let took = latencies
            .lock()
            .unwrap()
            .values()
            .next()
            .copied()
            .expect("an attempt ended");
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_hung_check_does_not_delay_another() {
        let (tx, mut rx) = mpsc::channel(8);
        let start = Instant::now();
        let _runner = Runner::spawn(
            vec![spec(1, "sleep 30", 20_000), spec(2, "exit 1", 500)],
            tx,
            nowhere(),
        );
        let event = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.real.0, IpAddr::from([10, 0, 0, 2]));
        assert!(!event.up);
        assert!(event.reason.ends_with("script exit 1"), "{}", event.reason);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn recovery_is_reported() {
        let flag = std::env::temp_dir().join(format!("xdpvs-runner-{}", std::process::id()));
        let _ = std::fs::remove_file(&flag);
        let (tx, mut rx) = mpsc::channel(8);
        let _runner = Runner::spawn(
            vec![spec(3, &format!("test -e {}", flag.display()), 500)],
            tx,
            nowhere(),
        );
        let down = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(!down.up);
        std::fs::write(&flag, b"").unwrap();
        let up = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        let _ = std::fs::remove_file(&flag);
        assert!(up.up);
        assert_eq!(up.reason, "ok");
    }

    async fn next(rx: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("no event within 2 s")
            .expect("channel closed")
    }

    #[tokio::test]
    async fn a_replaced_runners_queued_events_are_not_the_new_ones() {
        let (tx, mut rx) = mpsc::channel(8);
        let old = Runner::spawn(vec![spec(6, "exit 1", 500)], tx.clone(), nowhere());
        let queued = next(&mut rx).await;
        // A reload: the old checks stop, the new ones start.
        drop(old);
        let current = Runner::spawn(vec![spec(6, "exit 1", 500)], tx, nowhere());
        let fresh = next(&mut rx).await;
        assert_eq!((queued.up, fresh.up), (false, false));
        assert!(!current.sent(&queued), "the replaced runner's event");
        assert!(current.sent(&fresh), "the current runner's event");
    }

    #[tokio::test]
    async fn detection_time_spans_the_retries() {
        let (tx, mut rx) = mpsc::channel(8);
        // retry 2: three failures, 50 ms apart.
        let _runner = Runner::spawn(vec![spec_with(4, "exit 1", 500, false, 2)], tx, nowhere());
        let down = next(&mut rx).await;
        assert!(!down.up);
        let detected = down
            .detected_in
            .expect("a down event carries its detection time");
        assert!(
            detected >= Duration::from_millis(100) && detected < Duration::from_millis(600),
            "{detected:?}"
        );
    }

    #[tokio::test]
    async fn a_dynamic_weight_is_reported_while_up() {
        let (tx, mut rx) = mpsc::channel(8);
        let _runner = Runner::spawn(vec![spec_with(5, "exit 7", 500, true, 0)], tx, nowhere());
        let event = next(&mut rx).await;
        assert_eq!((event.up, event.weight), (true, Some(5)));
        // The same weight again is no news.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err()
        );
    }

    /// Stands in for the kernel: a connect that fails with EMFILE until
    /// `fail_for_real` is set, then with a refusal.
    struct Starved {
        fail_for_real: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Probe for Starved {
        fn run(&self) -> crate::health::probe::Attempt<'_> {
            let errno = if self.fail_for_real.load(std::sync::atomic::Ordering::SeqCst) {
                libc::ECONNREFUSED
            } else {
                libc::EMFILE
            };
            let failure = std::io::Error::from_raw_os_error(errno).into();
            Box::pin(async move { Outcome::Down(failure) })
        }

        fn describe(&self) -> String {
            "TCP_CHECK 10.0.0.9:80".into()
        }
    }

    #[tokio::test]
    async fn a_check_that_cannot_run_is_counted_and_retried_never_down() {
        let fail_for_real = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut s = spec_with(9, "unused", 500, false, 0);
        s.checkers[0].probe = Box::new(Starved {
            fail_for_real: fail_for_real.clone(),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let runner = Runner::spawn(vec![s], tx, nowhere());
        // retry 0: one real failure would be DOWN at once.
        assert!(
            tokio::time::timeout(Duration::from_millis(400), rx.recv())
                .await
                .is_err(),
            "a local error changed the real's state"
        );
        let counted = runner
            .local_errors()
            .lock()
            .unwrap()
            .values()
            .next()
            .cloned();
        let counted = counted.expect("local errors counted");
        // Retried every delay_before_retry (50 ms).
        assert!(counted.count >= 3, "{counted:?}");
        assert_eq!(
            counted.last,
            "TCP_CHECK 10.0.0.9:80: could not run the check (a local error, not the real's): \
             Too many open files (os error 24)"
        );
        fail_for_real.store(true, std::sync::atomic::Ordering::SeqCst);
        let down = next(&mut rx).await;
        assert!(!down.up);
        assert!(
            down.reason.ends_with("connection refused"),
            "{}",
            down.reason
        );
    }

    #[tokio::test]
    async fn shutdown_stops_every_check_and_its_scripts() {
        let late = std::env::temp_dir().join(format!("xdpvs-runner-late-{}", std::process::id()));
        let _ = std::fs::remove_file(&late);
        let (tx, mut rx) = mpsc::channel(8);
        let script = format!("(sleep 0.5; touch {}) & sleep 100", late.display());
        let runner = Runner::spawn(
            vec![spec(6, &script, 60_000), spec(7, "exit 1", 500)],
            tx,
            nowhere(),
        );
        assert!(!next(&mut rx).await.up, "the failing check reported");
        runner.shutdown().await;
        // Every sender is gone with its task.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), rx.recv())
                .await
                .expect("channel not closed")
                .is_none()
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!late.exists(), "a script outlived the runner");
    }

    /// Counts its attempts; fails every one.
    struct Counted(Arc<std::sync::atomic::AtomicU32>);

    impl Probe for Counted {
        fn run(&self) -> crate::health::probe::Attempt<'_> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Outcome::Down(crate::health::probe::Failure::Refused) })
        }

        fn describe(&self) -> String {
            "TCP_CHECK 10.0.0.10:80".into()
        }
    }

    #[tokio::test]
    async fn services_sharing_a_real_share_its_check() {
        let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let specs = (0..3u16)
            .map(|i| {
                let mut s = spec(10, "unused", 500);
                s.shared_key = "the same real, the same checks".into();
                s.service.1 = 80 + i;
                s.checkers[0].probe = Box::new(Counted(attempts.clone()));
                s
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(8);
        let runner = Runner::spawn(specs, tx, nowhere());
        let mut ports = Vec::new();
        for _ in 0..3 {
            let e = next(&mut rx).await;
            assert!(!e.up);
            ports.push(e.service.1);
        }
        assert_eq!(ports, [80, 81, 82], "every service hears the verdict");
        // retry 0, delay_loop 100 ms: one check is 1 attempt now and about
        // 3 more in 300 ms; three checks would make about 12.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = attempts.load(std::sync::atomic::Ordering::SeqCst);
        assert!((2..=6).contains(&n), "{n} attempts");
        assert_eq!(runner.latencies().lock().unwrap().len(), 3);
    }

    /// Stands in for a PING_CHECK whose ICMP socket the host refuses.
    struct CannotRun;

    impl Probe for CannotRun {
        fn run(&self) -> crate::health::probe::Attempt<'_> {
            Box::pin(async {
                Outcome::Down(crate::health::probe::Failure::Local(
                    "no ICMP socket".into(),
                ))
            })
        }

        fn describe(&self) -> String {
            "PING_CHECK 10.0.0.11".into()
        }

        fn unavailable(&self) -> Option<String> {
            Some("no ICMP socket".into())
        }
    }

    #[tokio::test]
    async fn a_check_that_cannot_run_keeps_its_real_down() {
        let mut s = spec(11, "unused", 500);
        s.checkers[0].probe = Box::new(CannotRun);
        assert!(s.start_up);
        let (tx, mut rx) = mpsc::channel(8);
        let _runner = Runner::spawn(vec![s], tx, nowhere());
        let e = next(&mut rx).await;
        assert!(!e.up, "never counted healthy by a check that did not run");
        assert_eq!(e.reason, "PING_CHECK 10.0.0.11: cannot run: no ICMP socket");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "no UP follows"
        );
    }

    /// Passes while its flag is set, after `delay`; named `name`.
    struct Switch {
        name: &'static str,
        up: Arc<AtomicBool>,
        delay: Duration,
    }

    impl Switch {
        fn new(name: &'static str, up: bool, delay_ms: u64) -> (Self, Arc<AtomicBool>) {
            let flag = Arc::new(AtomicBool::new(up));
            let probe = Switch {
                name,
                up: flag.clone(),
                delay: Duration::from_millis(delay_ms),
            };
            (probe, flag)
        }
    }

    impl Probe for Switch {
        fn run(&self) -> crate::health::probe::Attempt<'_> {
            Box::pin(async {
                tokio::time::sleep(self.delay).await;
                if self.up.load(Ordering::SeqCst) {
                    Outcome::Up
                } else {
                    Outcome::Down(crate::health::probe::Failure::Refused)
                }
            })
        }

        fn describe(&self) -> String {
            self.name.into()
        }
    }

    /// A real of two checkers, `a` and `b`, with their retries.
    fn two_checkers(a: (Switch, u32), b: (Switch, u32)) -> CheckSpec {
        let mut s = spec(14, "unused", 500);
        s.checkers = vec![checker(Box::new(a.0), a.1), checker(Box::new(b.0), b.1)];
        s
    }

    #[tokio::test]
    async fn each_checker_retries_on_its_own() {
        // keepalived counts retries per checker: the failing one, retry 0,
        // takes the real down at its first failure; the passing one's
        // retry 5 is its own (one tracker for both waited for 6 failures,
        // 50 ms apart).
        let (passing, _) = Switch::new("TCP_CHECK a", true, 0);
        let (failing, _) = Switch::new("TCP_CHECK b", false, 0);
        let down = down_within(two_checkers((passing, 5), (failing, 0)), 200).await;
        assert_eq!(down.reason, "TCP_CHECK b: connection refused");
    }

    /// The first event of `spec`'s checks, which must be a DOWN within `ms`.
    async fn down_within(spec: CheckSpec, ms: u64) -> HealthEvent {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel(8);
        let _runner = Runner::spawn(vec![spec], tx, nowhere());
        let down = next(&mut rx).await;
        assert!(!down.up);
        assert!(
            started.elapsed() < Duration::from_millis(ms),
            "{:?}",
            started.elapsed()
        );
        down
    }

    #[tokio::test]
    async fn a_slow_checker_does_not_hold_another() {
        // Each attempt of `a` takes 2 s; `b` fails at once and is down
        // without waiting for `a` (one round of both waited for it).
        let (slow, _) = Switch::new("HTTP_GET a", true, 2_000);
        let (failing, _) = Switch::new("TCP_CHECK b", false, 0);
        down_within(two_checkers((slow, 0), (failing, 0)), 500).await;
    }

    #[tokio::test]
    async fn a_real_is_up_while_every_checker_is() {
        let (a, a_up) = Switch::new("TCP_CHECK a", true, 0);
        let (b, b_up) = Switch::new("TCP_CHECK b", false, 0);
        let mut s = two_checkers((a, 0), (b, 0));
        // alpha: down until every checker has passed.
        s.start_up = false;
        let (tx, mut rx) = mpsc::channel(8);
        let _runner = Runner::spawn(vec![s], tx, nowhere());
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "up with one checker failing"
        );
        b_up.store(true, Ordering::SeqCst);
        let up = next(&mut rx).await;
        assert!(up.up);
        assert_eq!(up.reason, "ok");
        // One checker down takes the real down; its reason is the real's.
        a_up.store(false, Ordering::SeqCst);
        let down = next(&mut rx).await;
        assert!(!down.up);
        assert_eq!(down.reason, "TCP_CHECK a: connection refused");
        // The other one failing too changes nothing; both back is up.
        b_up.store(false, Ordering::SeqCst);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "a second checker down is not a change of the real's"
        );
        a_up.store(true, Ordering::SeqCst);
        b_up.store(true, Ordering::SeqCst);
        assert!(next(&mut rx).await.up);
    }

    #[test]
    fn jitter_stays_within_the_warmup_and_varies() {
        let up_to = Duration::from_secs(10);
        let draws: Vec<_> = (0..200).map(|_| jitter(up_to)).collect();
        assert!(draws.iter().all(|d| *d <= up_to));
        assert!(draws.iter().any(|d| *d < up_to / 2) && draws.iter().any(|d| *d > up_to / 2));
    }

    #[tokio::test]
    async fn warmup_delays_only_the_first_attempt() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut s = spec(12, "exit 1", 500);
        s.checkers[0].warmup = Duration::from_millis(400);
        let start = Instant::now();
        let _runner = Runner::spawn(vec![s], tx, nowhere());
        let down = next(&mut rx).await;
        assert!(!down.up);
        // A random share of 400 ms, then the script.
        assert!(
            start.elapsed() < Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn ha_suspend_holds_the_checks_until_the_vip_is_here() {
        let vip: IpAddr = [192, 0, 2, 9].into();
        let (host_tx, host) = watch::channel(Arc::new(HashSet::new()));
        let (tx, mut rx) = mpsc::channel(8);
        let mut s = spec(13, "exit 1", 500);
        s.ha_suspend = vec![vip];
        let _runner = Runner::spawn(vec![s], tx, host);
        assert!(
            tokio::time::timeout(Duration::from_millis(400), rx.recv())
                .await
                .is_err(),
            "a check ran while the VIP was elsewhere"
        );
        host_tx.send_replace(Arc::new(HashSet::from([vip])));
        let down = next(&mut rx).await;
        assert!(!down.up, "checked once the VIP arrived");
    }
}
