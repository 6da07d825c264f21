//! Runs every real's checks concurrently, one task per real: a hung real or
//! script holds only its own task (every attempt is bounded by its timeout),
//! and nothing here can delay the daemon's main loop, which only receives
//! the events.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::future::join_all;
use log::warn;
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    hysteresis::{Policy, Tracker},
    probe::{Outcome, Probe},
};
use crate::dataplane::reconcile::{RealId, ServiceId};

pub struct CheckSpec {
    pub service: ServiceId,
    pub real: RealId,
    pub probes: Vec<Box<dyn Probe>>,
    pub policy: Policy,
    /// State before the first result (false with `alpha`).
    pub start_up: bool,
}

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
}

/// What one attempt of every check of a real found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Every check passed (with MISC_CHECK `misc_dynamic`'s weight).
    Up(Option<u32>),
    Down(String),
    /// No check failed, but one could not run (the daemon's own resources).
    Local(String),
}

/// Combines one attempt of every check of a real: up only if all are; a
/// real failure outweighs a check that could not run.
fn combine(probes: &[Box<dyn Probe>], outcomes: Vec<Outcome>) -> Verdict {
    let mut weight = None;
    let mut local = None;
    for (p, o) in probes.iter().zip(outcomes) {
        match o {
            Outcome::Up => {}
            Outcome::UpWithWeight(w) => weight = Some(w),
            Outcome::Down(f) if f.is_local() => {
                local.get_or_insert_with(|| format!("{}: {f}", p.describe()));
            }
            Outcome::Down(f) => return Verdict::Down(format!("{}: {f}", p.describe())),
        }
    }
    match local {
        Some(reason) => Verdict::Local(reason),
        None => Verdict::Up(weight),
    }
}

/// How long each real's last attempt took, for metrics and status.
pub type Latencies = Arc<Mutex<HashMap<(ServiceId, RealId), Duration>>>;

/// Attempts that could not run, per real: counted, never held against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalErrorCount {
    pub count: u64,
    pub last: String,
}

pub type LocalErrors = Arc<Mutex<HashMap<(ServiceId, RealId), LocalErrorCount>>>;

struct Shared {
    events: mpsc::Sender<HealthEvent>,
    latencies: Latencies,
    local_errors: LocalErrors,
}

async fn watch(spec: CheckSpec, shared: Arc<Shared>) {
    let mut tracker = Tracker::new(spec.policy, spec.start_up);
    let mut weight = None;
    let key = (spec.service, spec.real);
    loop {
        let started = Instant::now();
        let outcomes = join_all(spec.probes.iter().map(|p| p.run())).await;
        let verdict = combine(&spec.probes, outcomes);
        let now = Instant::now();
        shared
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, now - started);
        let (ok, w, reason) = match verdict {
            Verdict::Up(w) => (true, w, "ok".to_string()),
            Verdict::Down(reason) => (false, None, reason),
            Verdict::Local(reason) => {
                let count = {
                    let mut all = shared
                        .local_errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let entry = all.entry(key).or_default();
                    entry.count += 1;
                    entry.last = reason.clone();
                    entry.count
                };
                let step = tracker.inconclusive();
                warn!(
                    "real {} of {}: {reason}; local error {count}, the real stays {}, \
                     next try in {:?}",
                    SocketAddr::from(spec.real),
                    SocketAddr::from((spec.service.0, spec.service.1)),
                    if tracker.is_up() { "UP" } else { "DOWN" },
                    step.next_in
                );
                tokio::time::sleep(step.next_in).await;
                continue;
            }
        };
        let step = tracker.observe(ok, now);
        let weight_changed = ok && w != weight;
        if ok {
            weight = w;
        }
        if step.transition.is_some() || weight_changed {
            let event = HealthEvent {
                service: spec.service,
                real: spec.real,
                up: tracker.is_up(),
                weight,
                reason,
                detected_in: step.detected_in,
                decided_at: now,
            };
            if shared.events.send(event).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(step.next_in).await;
    }
}

/// The running checks; dropping it stops them all.
pub struct Runner {
    tasks: Vec<JoinHandle<()>>,
    latencies: Latencies,
    local_errors: LocalErrors,
}

impl Runner {
    pub fn spawn(specs: Vec<CheckSpec>, events: mpsc::Sender<HealthEvent>) -> Self {
        let shared = Arc::new(Shared {
            events,
            latencies: Latencies::default(),
            local_errors: LocalErrors::default(),
        });
        let tasks = specs
            .into_iter()
            .map(|s| tokio::spawn(watch(s, shared.clone())))
            .collect();
        Self {
            tasks,
            latencies: shared.latencies.clone(),
            local_errors: shared.local_errors.clone(),
        }
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
    use crate::{dataplane::keys::Proto, health::misc::MiscProbe};

    fn spec(real: u8, command: &str, timeout_ms: u64) -> CheckSpec {
        spec_with(real, command, timeout_ms, false, 0)
    }

    fn spec_with(real: u8, command: &str, timeout_ms: u64, dynamic: bool, retry: u32) -> CheckSpec {
        let ip: IpAddr = [10, 0, 0, real].into();
        CheckSpec {
            service: (ip, 80, Proto::Tcp),
            real: (ip, 80),
            probes: vec![Box::new(MiscProbe {
                command: command.into(),
                timeout: Duration::from_millis(timeout_ms),
                dynamic,
            })],
            policy: Policy {
                delay_loop: Duration::from_millis(100),
                retry,
                delay_before_retry: Duration::from_millis(50),
            },
            start_up: true,
        }
    }

    #[tokio::test]
    async fn each_attempt_records_its_duration() {
        let (tx, _rx) = mpsc::channel(8);
        let runner = Runner::spawn(vec![spec(8, "sleep 0.2", 2_000)], tx);
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
    async fn detection_time_spans_the_retries() {
        let (tx, mut rx) = mpsc::channel(8);
        // retry 2: three failures, 50 ms apart.
        let _runner = Runner::spawn(vec![spec_with(4, "exit 1", 500, false, 2)], tx);
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
        let _runner = Runner::spawn(vec![spec_with(5, "exit 7", 500, true, 0)], tx);
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
        s.probes = vec![Box::new(Starved {
            fail_for_real: fail_for_real.clone(),
        })];
        let (tx, mut rx) = mpsc::channel(8);
        let runner = Runner::spawn(vec![s], tx);
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
        let runner = Runner::spawn(vec![spec(6, &script, 60_000), spec(7, "exit 1", 500)], tx);
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
}
