//! systemd's service protocol (`Type=notify`), through the `sd-notify`
//! crate: READY=1 once the data plane is live and the admin socket serves,
//! MAINPID=<pid> when an upgrade hands the service to a new process, and
//! WATCHDOG=1 from the control loop while `WATCHDOG_USEC` asks for it.
//! Without `NOTIFY_SOCKET` every call is a no-op.

use std::time::Duration;

use log::warn;
use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("telling systemd {states:?}: {e}");
    }
}

/// Startup finished. A process that took over by upgrade names itself the
/// main process too (systemd accepts it with `NotifyAccess=all`; the old
/// process also announces it, which `NotifyAccess=main` accepts).
pub fn ready() {
    send(&[NotifyState::MainPid(std::process::id()), NotifyState::Ready]);
}

/// The old process, as it leaves: `pid` is the service's main process now.
pub fn main_pid(pid: u32) {
    send(&[NotifyState::MainPid(pid)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Feeds systemd's watchdog from the control loop, so a wedged loop is
/// noticed; pending forever when no watchdog is configured.
pub struct Watchdog {
    interval: Option<tokio::time::Interval>,
}

impl Watchdog {
    pub fn from_env() -> Self {
        // Twice per timeout, as sd_watchdog_enabled(3) recommends.
        let interval = sd_notify::watchdog_enabled().map(|timeout| {
            let mut i = tokio::time::interval((timeout / 2).max(Duration::from_millis(10)));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Self { interval }
    }

    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
                send(&[NotifyState::Watchdog]);
            }
            None => std::future::pending().await,
        }
    }
}
