//! The admin socket's protocol: one JSON request per line, one JSON response
//! per line. The daemon answers from its own state and the maps' counters.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A service as ipvsadm names it: `-t VIP:PORT` or `-u VIP:PORT`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceRef {
    /// UDP rather than TCP.
    pub udp: bool,
    pub vip: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RealRef {
    pub addr: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Every service with its reals and counters.
    List,
    /// `ctl status`: services, reals with health, VRRP instances.
    Status,
    AddService {
        service: ServiceRef,
        scheduler: String,
        persistence_timeout: u32,
    },
    EditService {
        service: ServiceRef,
        scheduler: Option<String>,
        persistence_timeout: Option<u32>,
    },
    DeleteService {
        service: ServiceRef,
    },
    AddReal {
        service: ServiceRef,
        real: RealRef,
        weight: u32,
    },
    /// `adm -e`, `ctl weight`, `ctl drain` (weight 0).
    SetWeight {
        service: ServiceRef,
        real: RealRef,
        weight: u32,
    },
    DeleteReal {
        service: ServiceRef,
        real: RealRef,
    },
    /// `adm -Z`: every counter.
    ZeroCounters,
    /// `adm -Z -t|-u SERVICE`: that service's counters and its reals'.
    ZeroService {
        service: ServiceRef,
    },
    /// `adm -L --timeout`.
    Timeouts,
    /// `adm --set TCP TCPFIN UDP`, in seconds; 0 keeps a value.
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    /// `adm -C`.
    Clear,
    Reload,
    /// Prometheus text for `--metrics`.
    Metrics,
    /// `ctl upgrade`: replace the daemon with the binary now at its path;
    /// answered once the new process has taken over, or with why not.
    Upgrade,
    /// Where a flow from `client` to `vip` goes now, and why.
    Explain {
        udp: bool,
        client: IpAddr,
        client_port: u16,
        vip: IpAddr,
        port: u16,
    },
}

impl Request {
    /// Whether answering it changes the data plane or the daemon's state
    /// (`ZeroCounters` included: it zeroes the maps' counters).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Request::List
                | Request::Status
                | Request::Timeouts
                | Request::Metrics
                | Request::Upgrade
                | Request::Explain { .. }
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "response", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "one answer per admin request, moved once: its size does not matter"
)]
pub enum Response {
    Done {
        message: String,
    },
    List {
        services: Vec<ServiceStatus>,
        reasons: Vec<ReasonCount>,
        /// Capacity of the flow table (ipvsadm's `size=`).
        flow_table_size: u32,
    },
    Status {
        services: Vec<ServiceStatus>,
        instances: serde_json::Value,
        /// Which process answers (an older daemon leaves it out).
        #[serde(default)]
        daemon: Option<DaemonInfo>,
        /// VIPs announced for BGP (`xdpvs_announce`); empty when off.
        #[serde(default)]
        announcements: Vec<crate::announce::VipStatus>,
        /// Flow sync with the other nodes (`lvs_sync_daemon`), when on.
        #[serde(default)]
        sync: Option<crate::flowsync::SyncStatus>,
        /// `None` until the first scan of the flow table has finished.
        #[serde(default)]
        flow_scan: Option<FlowScanStatus>,
        /// What the data plane's tables hold (fixed when they were made).
        #[serde(default)]
        capacity: Option<TableSizes>,
    },
    Explain {
        text: String,
    },
    Metrics {
        text: String,
    },
    /// Idle timeouts in seconds.
    Timeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    Error {
        message: String,
    },
}

/// The data plane's table sizes, as `ctl status` shows them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableSizes {
    pub services: u32,
    pub reals: u32,
    pub flows: u32,
}

/// The daemon process, so an operator can see that an upgrade happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started_unix: u64,
    /// The path an upgrade re-executes.
    pub exe: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceStatus {
    /// "TCP" or "UDP".
    pub protocol: String,
    pub vip: IpAddr,
    pub port: u16,
    /// The configured `lb_algo`; every one is served by weighted Maglev.
    pub scheduler: String,
    pub persistence_timeout: u32,
    pub traffic: Traffic,
    /// Absent from daemons older than this field (a CLI newer than the
    /// daemon it talks to, during an upgrade).
    #[serde(default)]
    pub quorum: QuorumStatus,
    pub reals: Vec<RealStatus>,
}

/// keepalived's quorum of a service: up while the healthy reals' weights
/// reach `quorum` (with `hysteresis`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuorumStatus {
    pub up: bool,
    /// The sum of the healthy reals' weights.
    pub live_weight: u64,
    pub quorum: u32,
    pub hysteresis: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RealStatus {
    pub addr: IpAddr,
    pub port: u16,
    /// The weight in force (runtime, check or configured).
    pub weight: u32,
    pub healthy: bool,
    /// A down real with `inhibit_on_failure` stays listed with weight 0.
    pub inhibit_on_failure: bool,
    /// Left the configuration; goes once its flows have ended.
    pub draining: bool,
    pub last_check: Option<String>,
    /// How long the last check attempt took, in microseconds.
    pub check_micros: Option<u64>,
    /// Check attempts that could not run for want of the daemon's own
    /// resources (never held against the real), and the last one's reason.
    #[serde(default)]
    pub local_errors: u64,
    #[serde(default)]
    pub last_local_error: Option<String>,
    pub mac: Option<String>,
    /// Flows in the flow table with no FIN/RST seen.
    pub active_flows: u64,
    /// Flows in the flow table that saw a FIN or RST.
    pub inactive_flows: u64,
    pub traffic: Traffic,
}

/// The flow counts of `adm -L`, `ctl status` and the metrics come from a
/// scan of the flow table off the daemon's loop; this says how fresh it is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FlowScanStatus {
    /// Entries in the flow table.
    pub entries: u64,
    /// Since the scan began.
    pub age_ms: u64,
    /// How long the scan took.
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: String,
    pub packets: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// What a daemon handing over to an upgrade's new process refuses: every
    /// request that changes the maps or the daemon's state, and no other.
    #[test]
    fn writes_are_the_requests_that_change_state() {
        let service = ServiceRef {
            udp: false,
            vip: Ipv4Addr::LOCALHOST.into(),
            port: 80,
        };
        let real = RealRef {
            addr: Ipv4Addr::LOCALHOST.into(),
            port: 80,
        };
        let reads = [
            Request::List,
            Request::Status,
            Request::Timeouts,
            Request::Metrics,
            Request::Upgrade,
            Request::Explain {
                udp: false,
                client: Ipv4Addr::LOCALHOST.into(),
                client_port: 1,
                vip: service.vip,
                port: 80,
            },
        ];
        let writes = [
            Request::AddService {
                service,
                scheduler: "mh".into(),
                persistence_timeout: 0,
            },
            Request::EditService {
                service,
                scheduler: None,
                persistence_timeout: None,
            },
            Request::DeleteService { service },
            Request::AddReal {
                service,
                real,
                weight: 1,
            },
            Request::SetWeight {
                service,
                real,
                weight: 0,
            },
            Request::DeleteReal { service, real },
            Request::ZeroCounters,
            Request::ZeroService { service },
            Request::SetTimeouts {
                tcp: 1,
                tcpfin: 1,
                udp: 1,
            },
            Request::Clear,
            Request::Reload,
        ];
        assert!(reads.iter().all(|r| !r.writes()), "{reads:?}");
        assert!(writes.iter().all(Request::writes), "{writes:?}");
    }
}
