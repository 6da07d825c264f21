//! Announcing VIPs for BGP/ECMP: while a VIP is servable (see `decide`), a
//! blackhole host route for it is kept in xdpvs's own kernel table (see
//! `routes`), which BIRD (or any routing daemon that learns kernel routes)
//! exports by BGP. The daemon's control loop decides; this task only brings
//! the kernel's table to the decision and retries when the kernel refuses.

pub mod decide;
pub mod routes;

use std::{
    collections::BTreeSet,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, Result};
use log::{info, warn};
use rtnetlink::Handle;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use self::decide::{Phase, ServiceView, Verdict, VrrpView, decide, service_views};
use self::routes::RouteTable;
use crate::{api::protocol::Response, config::Announce};

/// How often the kernel's table is compared with the decision even when
/// the decision did not change (a route removed by hand comes back).
const RESYNC: Duration = Duration::from_secs(5);

/// One VIP in `ctl status` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub vip: IpAddr,
    /// Whether the route is in the kernel's table now.
    pub announced: bool,
    /// Why it is (or is not) wanted.
    pub reason: String,
    /// The last error from the kernel for this VIP, if any.
    pub error: Option<String>,
}

pub struct Announcer {
    table: RouteTable,
    desired: watch::Sender<Vec<Verdict>>,
    status: Arc<Mutex<Vec<VipStatus>>>,
}

impl Announcer {
    /// Opens rtnetlink and starts keeping `announce.table` in step.
    pub fn start(announce: &Announce) -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        tokio::spawn(conn);
        let table = RouteTable {
            table: announce.table,
            protocol: announce.protocol,
        };
        let (desired, rx) = watch::channel(Vec::new());
        let status = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(keep(handle, table, rx, status.clone()));
        info!(
            "announcing servable VIPs as blackhole routes in table {} (protocol {})",
            table.table, table.protocol
        );
        Ok(Self {
            table,
            desired,
            status,
        })
    }

    /// A new decision; the task acts only when it differs from the last.
    pub fn set(&self, verdicts: Vec<Verdict>) {
        self.desired.send_if_modified(|d| {
            let changed = *d != verdicts;
            if changed {
                *d = verdicts;
            }
            changed
        });
    }

    pub fn status(&self) -> Vec<VipStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds the announcements to a `ctl status` or metrics answer.
    pub fn annotate(&self, response: &mut Response) {
        match response {
            Response::Status { announcements, .. } => *announcements = self.status(),
            Response::Metrics { text } => text.push_str(&metrics(&self.status())),
            _ => {}
        }
    }

    /// A stopping node withdraws first: hands the task the `stopping`
    /// decision, waits until it has acted on it, then sweeps the table over
    /// a connection of its own (a dump on the task's socket would collide
    /// with the task's).
    pub async fn withdraw_all(&self, stopping: Vec<Verdict>) -> Result<()> {
        let acted = |status: &[VipStatus]| {
            status.len() == stopping.len()
                && status
                    .iter()
                    .zip(&stopping)
                    .all(|(s, v)| !s.announced && s.reason == v.reason)
        };
        self.set(stopping.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !acted(&self.status()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        let conn = tokio::spawn(conn);
        let swept = async {
            for vip in self.table.list(&handle).await? {
                self.table.remove(&handle, vip).await?;
                info!("withdrew {vip}: the daemon is stopping");
            }
            Ok::<_, routes::RouteError>(())
        }
        .await;
        conn.abort();
        Ok(swept?)
    }
}

/// Brings the table to the latest decision, at each change and every `RESYNC`.
async fn keep(
    handle: Handle,
    table: RouteTable,
    mut desired: watch::Receiver<Vec<Verdict>>,
    status: Arc<Mutex<Vec<VipStatus>>>,
) {
    loop {
        let verdicts = desired.borrow_and_update().clone();
        let shown = sync(&handle, table, &verdicts).await;
        *status.lock().unwrap_or_else(PoisonError::into_inner) = shown;
        if tokio::time::timeout(RESYNC, desired.changed())
            .await
            .is_ok_and(|r| r.is_err())
        {
            return; // the daemon is gone
        }
    }
}

async fn sync(handle: &Handle, table: RouteTable, verdicts: &[Verdict]) -> Vec<VipStatus> {
    let present = match table.list(handle).await {
        Ok(p) => p,
        Err(e) => {
            warn!("{e}");
            return verdicts
                .iter()
                .map(|v| VipStatus {
                    vip: v.vip,
                    announced: false,
                    reason: v.reason.clone(),
                    error: Some(e.to_string()),
                })
                .collect();
        }
    };
    let wanted: BTreeSet<IpAddr> = verdicts
        .iter()
        .filter(|v| v.announced)
        .map(|v| v.vip)
        .collect();
    let mut errors = std::collections::BTreeMap::new();
    let mut now = present.clone();
    for vip in present.difference(&wanted) {
        let why = verdicts
            .iter()
            .find(|v| v.vip == *vip)
            .map_or("no longer configured", |v| v.reason.as_str());
        match table.remove(handle, *vip).await {
            Ok(()) => {
                now.remove(vip);
                info!("withdrew {vip}: {why}");
            }
            Err(e) => {
                warn!("{e}");
                errors.insert(*vip, e.to_string());
            }
        }
    }
    for vip in wanted.difference(&present) {
        match table.add(handle, *vip).await {
            Ok(()) => {
                now.insert(*vip);
                info!("announcing {vip}");
            }
            Err(e) => {
                warn!("{e}");
                errors.insert(*vip, e.to_string());
            }
        }
    }
    verdicts
        .iter()
        .map(|v| VipStatus {
            vip: v.vip,
            announced: now.contains(&v.vip),
            reason: v.reason.clone(),
            error: errors.remove(&v.vip),
        })
        .collect()
}

/// `xdpvs_vip_announced{vip}`: 1 while the route is in the table.
fn metrics(status: &[VipStatus]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    crate::metrics::family(
        &mut out,
        "xdpvs_vip_announced",
        "gauge",
        "Whether the VIP's route is announced (xdpvs_announce).",
    );
    for s in status {
        let _ = writeln!(
            out,
            "xdpvs_vip_announced{{vip=\"{}\"}} {}",
            s.vip,
            u8::from(s.announced)
        );
    }
    out
}
