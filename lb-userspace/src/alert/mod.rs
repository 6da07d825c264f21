//! What the node tells the outside when its state changes, as keepalived
//! does: VRRP instance and sync-group state changes, real servers going up
//! or down, virtual servers gaining or losing their quorum, as `smtp_alert`
//! mails in keepalived's words (`message`), by keepalived's rules
//! (`policy`), sent over plain SMTP as keepalived sends them, and as lines
//! in the notify FIFOs (`fifo`).
//!
//! Nothing here can delay VRRP or the health checks: an event becomes a
//! mail in a bounded queue (the oldest dropped, counted and logged, when
//! full), and a worker sends a few at a time through lettre, each bounded
//! by `smtp_connect_timeout` from connect to QUIT. A dead or hanging
//! server costs only the mails to it.

mod fifo;
mod message;
mod policy;

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::extension::ClientId,
};
use log::{info, warn};
use tokio::sync::{Notify, Semaphore};

pub use self::message::VrrpState;
use self::{
    message::{Addresses, Alert, compose},
    policy::Policy,
};
use crate::{
    config::{Config, mail::SmtpServer},
    dataplane::reconcile::{RealId, ServiceId},
};

/// Mails waiting beyond which the oldest is dropped.
const QUEUE: usize = 64;
/// Mails being sent at once.
const PARALLEL: usize = 4;

/// Mails sent, failed and dropped since start.
static SENT: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// How long a stopping daemon waits for its last mails (the Stopping ones).
const DRAIN: Duration = Duration::from_secs(2);

/// The counts by result, for `--metrics`.
pub fn counts() -> [(&'static str, u64); 3] {
    [
        ("sent", SENT.load(Ordering::Relaxed)),
        ("failed", FAILED.load(Ordering::Relaxed)),
        ("dropped", DROPPED.load(Ordering::Relaxed)),
    ]
}

/// Where and how mails go, resolved against this host.
#[derive(Clone)]
struct Transport {
    server: SmtpServer,
    helo: String,
    timeout: Duration,
    router_id: String,
    who: Addresses,
}

struct Pending {
    message: Message,
    subject: String,
    transport: Transport,
}

#[derive(Default)]
struct Shared {
    transport: Mutex<Option<Transport>>,
    policy: Mutex<Policy>,
    queue: Mutex<VecDeque<Pending>>,
    wake: Notify,
    /// Mails taken from the queue and not yet sent or failed.
    sending: AtomicU64,
    fifos: Mutex<fifo::Fifos>,
}

/// The daemon's alerts (mails and FIFO lines); clones share them. Every
/// call returns at once.
#[derive(Clone, Default)]
pub struct Alerts {
    shared: Arc<Shared>,
}

/// This host's name (keepalived's default router_id and HELO name).
fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// keepalived's default sender: the user this runs as, at this host.
fn default_from(host: &str) -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name);
    format!("{user}@{host}")
}

fn transport(config: &Config) -> Option<Transport> {
    let m = &config.global.mail;
    let server = m.smtp_server.clone().filter(|_| m.enabled())?;
    let host = host_name();
    let from_text = m
        .notification_email_from
        .clone()
        .unwrap_or_else(|| default_from(&host));
    let from = match from_text.parse() {
        Ok(f) => f,
        Err(e) => {
            warn!("alert mails: notification_email_from {from_text}: {e}; no mail will be sent");
            return None;
        }
    };
    let to: Vec<_> = m
        .notification_email
        .iter()
        .filter_map(|a| {
            a.parse()
                .inspect_err(|e| warn!("alert mails: notification_email {a}: {e}; left out"))
                .ok()
        })
        .collect();
    if to.is_empty() {
        return None;
    }
    Some(Transport {
        server,
        helo: m.smtp_helo_name.clone().unwrap_or_else(|| host.clone()),
        timeout: m.smtp_connect_timeout,
        router_id: config.global.router_id.clone().unwrap_or(host),
        who: Addresses { from, to },
    })
}

impl Alerts {
    /// A sender for `config`, its worker running.
    pub fn start(config: &Config) -> Self {
        let alerts = Self::default();
        alerts.reconfigure(config);
        // Opened once: a reload keeps them (and their readers) as they are.
        *lock(&alerts.shared.fifos) = fifo::Fifos::open(config);
        let shared = alerts.shared.clone();
        tokio::spawn(async move { worker(shared).await });
        alerts
    }

    /// Takes the settings and `smtp_alert`s of a configuration (a reload).
    pub fn reconfigure(&self, config: &Config) {
        let t = transport(config);
        if let Some(t) = &t {
            info!(
                "alert mails: to {} via {}, as router_id {}",
                config.global.mail.notification_email.join(", "),
                t.server,
                t.router_id
            );
        }
        *lock(&self.shared.transport) = t;
        lock(&self.shared.policy).reconfigure(config);
    }

    /// A VRRP instance entered `state`, at `priority`.
    pub fn instance(&self, name: &str, state: VrrpState, priority: u8) {
        lock(&self.shared.fifos).instance(name, state, priority);
        let alerts = lock(&self.shared.policy).instance(name, state);
        alerts.into_iter().for_each(|a| self.queue(a));
    }

    /// A health verdict on a real.
    pub fn real(&self, service: ServiceId, real: RealId, up: bool) {
        lock(&self.shared.fifos).real(service, real, up);
        let alert = lock(&self.shared.policy).real(service, real, up);
        alert.into_iter().for_each(|a| self.queue(a));
    }

    /// A service's quorum changed, decided against `threshold`.
    pub fn quorum(&self, service: ServiceId, up: bool, threshold: u64, live_weight: u64) {
        lock(&self.shared.fifos).quorum(service, up);
        let alert = lock(&self.shared.policy).quorum(service, up, threshold, live_weight);
        alert.into_iter().for_each(|a| self.queue(a));
    }

    /// Waits, at most `DRAIN`, for the mails queued and being sent (a
    /// stopping daemon's last words), then closes the FIFOs.
    pub async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + DRAIN;
        while (!lock(&self.shared.queue).is_empty()
            || self.shared.sending.load(Ordering::SeqCst) > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lock(&self.shared.fifos).close();
    }

    fn queue(&self, alert: Alert) {
        let Some(transport) = lock(&self.shared.transport).clone() else {
            return;
        };
        let subject = alert.subject(&transport.router_id);
        let message = match compose(
            &transport.who,
            subject.clone(),
            alert.body(),
            SystemTime::now(),
            message_id(),
        ) {
            Ok(m) => m,
            Err(e) => {
                FAILED.fetch_add(1, Ordering::Relaxed);
                warn!("alert mail {subject:?} not sent: {e}");
                return;
            }
        };
        let dropped = {
            let mut q = lock(&self.shared.queue);
            let dropped = (q.len() >= QUEUE).then(|| q.pop_front()).flatten();
            q.push_back(Pending {
                message,
                subject,
                transport,
            });
            dropped
        };
        if let Some(old) = dropped {
            let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                "alert mail {:?} dropped: {QUEUE} mails wait for {} ({n} dropped so far)",
                old.subject, old.transport.server
            );
        }
        self.shared.wake.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `<SECONDS.NANOS.PID.N@HOST>`: unique per mail.
fn message_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "<{}.{}.{}.{}@{}>",
        t.as_secs(),
        t.subsec_nanos(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        host_name()
    )
}

async fn worker(shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    loop {
        let next = {
            let mut q = lock(&shared.queue);
            // Counted as being sent before it leaves the queue: `drain` sees it.
            let p = q.pop_front();
            if p.is_some() {
                shared.sending.fetch_add(1, Ordering::SeqCst);
            }
            p
        };
        let Some(p) = next else {
            shared.wake.notified().await;
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            send(p).await;
            shared.sending.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        });
    }
}

async fn send(p: Pending) {
    let t = &p.transport;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.server.host.clone())
        .port(t.server.port)
        .hello_name(ClientId::Domain(t.helo.clone()))
        .timeout(Some(t.timeout))
        .build();
    // The whole exchange, name lookup to QUIT, within the timeout.
    match tokio::time::timeout(t.timeout, smtp.send(p.message)).await {
        Ok(Ok(_)) => {
            SENT.fetch_add(1, Ordering::Relaxed);
            info!("alert mail sent via {}: {}", t.server, p.subject);
        }
        Ok(Err(e)) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            warn!("alert mail via {} failed: {e}: {}", t.server, p.subject);
        }
        Err(_) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            warn!(
                "alert mail via {} failed: no answer within smtp_connect_timeout {:?}: {}",
                t.server, t.timeout, p.subject
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(server: std::net::SocketAddr, timeout: u32) -> Config {
        let text = format!(
            "global_defs {{\n notification_email {{\n  ops@example.com\n }}\n smtp_server {} {}\n smtp_connect_timeout {timeout}\n router_id lb1\n}}\nvrrp_instance V {{\n interface eth0\n virtual_router_id 7\n smtp_alert\n virtual_ipaddress {{\n  10.0.0.1\n }}\n}}\n",
            server.ip(),
            server.port()
        );
        crate::config::parse_str(&text, Path::new("k.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    /// A server that accepts and never answers holds its mails for the
    /// timeout; every call returns at once, and a full queue drops its
    /// oldest mails, counted.
    #[tokio::test]
    async fn a_silent_server_costs_only_its_mails() {
        let server = silent().await;
        let (failed, dropped) = (
            FAILED.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed),
        );
        let alerts = Alerts::start(&config(server, 1));
        let started = std::time::Instant::now();
        // 100 state changes: 4 being sent, 64 waiting, the rest dropped.
        for i in 0..100 {
            let state = if i % 2 == 0 {
                VrrpState::Master
            } else {
                VrrpState::Backup
            };
            alerts.instance("V", state, 100);
        }
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert!(DROPPED.load(Ordering::Relaxed) - dropped >= 100 - 64 - PARALLEL as u64);
        // The first four fail at the 1 s timeout, not before.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(FAILED.load(Ordering::Relaxed), failed);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(FAILED.load(Ordering::Relaxed) - failed >= PARALLEL as u64);
        // A stop waits for them at most DRAIN.
        let started = std::time::Instant::now();
        alerts.drain().await;
        assert!(started.elapsed() <= DRAIN + Duration::from_millis(200));
    }

    /// Accepts connections and never answers; returns where.
    async fn silent() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        server
    }

    #[tokio::test]
    async fn nothing_is_sent_without_a_server_or_recipients() {
        // Silent, so that no mail of this test fails during the other's.
        // 30 s: none fails while the other test counts failures.
        let mut c = config(silent().await, 30);
        c.global.mail.notification_email.clear();
        let alerts = Alerts::start(&c);
        alerts.instance("V", VrrpState::Master, 100);
        assert!(lock(&alerts.shared.queue).is_empty());
        c.global
            .mail
            .notification_email
            .push("ops@example.com".into());
        alerts.reconfigure(&c);
        alerts.instance("V", VrrpState::Backup, 100);
        let queued = lock(&alerts.shared.queue).len()
            + alerts.shared.sending.load(Ordering::SeqCst) as usize;
        assert_eq!(queued, 1, "a reload's settings are used");
    }
}
