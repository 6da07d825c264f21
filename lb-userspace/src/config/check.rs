//! Checks that span blocks: duplicates and references by name.

use std::collections::{HashMap, HashSet};

use super::{
    diag::{Diagnostics, Location},
    model::{Capacity, Config},
};

/// A name used in one block that another block must define.
#[derive(Debug, Clone)]
pub struct Reference {
    pub kind: RefKind,
    /// The block that refers, e.g. `vrrp_instance VI_1`.
    pub from: String,
    pub name: String,
    pub at: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `track_script { NAME }` → `vrrp_script NAME`.
    TrackScript,
    /// `vrrp_sync_group { group { NAME } }` → `vrrp_instance NAME`.
    SyncMember,
    /// `track_file { NAME }` → `track_file NAME { file ... }`.
    TrackFile,
    /// `track_process { NAME }` → `track_process NAME { process ... }`.
    TrackProcess,
}

pub fn across_blocks(c: &Config, refs: &[Reference], d: &mut Diagnostics) {
    capacity(c, d);
    let mut services = HashMap::new();
    for vs in &c.virtual_servers {
        if let Some(first) = services.insert((vs.addr, vs.port, vs.protocol), &vs.location) {
            d.error(
                &vs.location,
                format!(
                    "virtual_server {} {} ({}) is already defined at {first}",
                    vs.addr, vs.port, vs.protocol
                ),
            );
        }
    }
    let mut scripts = HashMap::new();
    for s in &c.vrrp_scripts {
        if let Some(first) = scripts.insert(s.name.as_str(), &s.location) {
            d.error(
                &s.location,
                format!("vrrp_script {} is already defined at {first}", s.name),
            );
        }
    }
    let mut files = HashMap::new();
    for f in &c.track_files {
        if let Some(first) = files.insert(f.name.as_str(), &f.location) {
            d.error(
                &f.location,
                format!("track_file {} is already defined at {first}", f.name),
            );
        }
    }
    let mut processes = HashMap::new();
    for p in &c.track_processes {
        if let Some(first) = processes.insert(p.name.as_str(), &p.location) {
            d.error(
                &p.location,
                format!("track_process {} is already defined at {first}", p.name),
            );
        }
    }
    let mut names = HashMap::new();
    let mut routers = HashMap::new();
    for i in &c.vrrp_instances {
        if let Some(first) = names.insert(i.name.as_str(), &i.location) {
            d.error(
                &i.location,
                format!("vrrp_instance {} is already defined at {first}", i.name),
            );
        }
        // IPv4 and IPv6 VRRP are separate protocols: the same VRID may serve both.
        let v6 = i.vips.first().is_some_and(|v| v.addr.is_ipv6());
        if i.vrid == 0 || i.interface.is_empty() {
            continue; // already reported as missing
        }
        if let Some(other) = routers.insert((i.interface.as_str(), i.vrid, v6), i) {
            d.error(
                &i.location,
                format!(
                    "vrrp_instance {}: virtual_router_id {} on {} is already used by vrrp_instance {} ({})",
                    i.name, i.vrid, i.interface, other.name, other.location
                ),
            );
        }
    }
    let mut grouped = HashMap::new();
    let mut seen_in_group = HashSet::new();
    for r in refs {
        match r.kind {
            RefKind::TrackScript if !scripts.contains_key(r.name.as_str()) => d.error(
                &r.at,
                format!(
                    "{}: track_script {} is not defined by any vrrp_script",
                    r.from, r.name
                ),
            ),
            RefKind::SyncMember if !names.contains_key(r.name.as_str()) => {
                d.error(&r.at, format!("{}: no vrrp_instance {}", r.from, r.name));
            }
            RefKind::SyncMember if !seen_in_group.insert((r.from.as_str(), r.name.as_str())) => {
                d.warn(&r.at, format!("{}: {} is listed twice", r.from, r.name));
            }
            RefKind::SyncMember => {
                // keepalived: an instance belongs to at most one sync group.
                if let Some(other) = grouped.insert(r.name.as_str(), r.from.as_str())
                    && other != r.from
                {
                    d.error(
                        &r.at,
                        format!("{}: vrrp_instance {} is already in {other}", r.from, r.name),
                    );
                }
            }
            RefKind::TrackFile if !files.contains_key(r.name.as_str()) => d.error(
                &r.at,
                format!(
                    "{}: track_file {} is not defined by any top-level track_file block",
                    r.from, r.name
                ),
            ),
            RefKind::TrackProcess if !processes.contains_key(r.name.as_str()) => d.error(
                &r.at,
                format!(
                    "{}: track_process {} is not defined by any top-level track_process block",
                    r.from, r.name
                ),
            ),
            RefKind::TrackScript | RefKind::TrackFile | RefKind::TrackProcess => {}
        }
    }
}

/// What `xdpvs run` would refuse when it fills tables of the configured
/// sizes: the first virtual server or real past the capacity is named.
fn capacity(c: &Config, d: &mut Diagnostics) {
    let cap = c.global.capacity;
    if let Some(vs) = c.virtual_servers.get(cap.services as usize) {
        d.error(
            &vs.location,
            format!(
                "virtual_server {} {}: more than {} virtual servers; raise xdpvs_max_services in global_defs (at most {})",
                vs.addr,
                vs.port,
                cap.services,
                Capacity::SERVICES.2
            ),
        );
    }
    let mut reals = 0u64;
    for vs in &c.virtual_servers {
        // A sorry server takes a real's slot while it stands in.
        let sorry = u64::from(vs.sorry_server.is_some());
        let before = reals;
        reals += vs.reals.len() as u64 + sorry;
        if reals > u64::from(cap.reals) {
            let index = usize::try_from(u64::from(cap.reals) - before).unwrap_or(usize::MAX);
            let at = vs.reals.get(index).map_or(&vs.location, |r| &r.location);
            d.error(
                at,
                format!(
                    "virtual_server {} {}: more than {} real servers over all virtual servers (a sorry_server counts as one); raise xdpvs_max_reals in global_defs (at most {})",
                    vs.addr,
                    vs.port,
                    cap.reals,
                    Capacity::REALS.2
                ),
            );
            return;
        }
    }
}
