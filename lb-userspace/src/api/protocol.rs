//! The admin socket's protocol: one JSON request per line, one JSON response
//! per line. The daemon answers from its own state and the maps' counters.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Every service with its reals and counters.
    List,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    List {
        services: Vec<ServiceStatus>,
        reasons: Vec<ReasonCount>,
        /// Capacity of the flow table (ipvsadm's `size=`).
        flow_table_size: u32,
    },
    Error { message: String },
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
    pub reals: Vec<RealStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RealStatus {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub healthy: bool,
    pub mac: Option<String>,
    /// Flows in the flow table with no FIN/RST seen.
    pub active_flows: u64,
    /// Flows in the flow table that saw a FIN or RST.
    pub inactive_flows: u64,
    pub traffic: Traffic,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: String,
    pub packets: u64,
    pub bytes: u64,
}
