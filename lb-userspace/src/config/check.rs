//! Checks that span blocks: duplicates and references by name.

use std::collections::HashSet;

use super::{diag::Diagnostics, model::Config};

pub fn across_blocks(c: &Config, d: &mut Diagnostics) {
    let mut services = HashSet::new();
    for vs in &c.virtual_servers {
        if !services.insert((vs.addr, vs.port, vs.protocol)) {
            d.error(
                &vs.location,
                format!("virtual_server {} {} is defined twice", vs.addr, vs.port),
            );
        }
    }
    let mut scripts = HashSet::new();
    for s in &c.vrrp_scripts {
        if !scripts.insert(s.name.as_str()) {
            d.error(
                &s.location,
                format!("vrrp_script {} is defined twice", s.name),
            );
        }
    }
    let mut names = HashSet::new();
    let mut routers = HashSet::new();
    for i in &c.vrrp_instances {
        if !names.insert(i.name.as_str()) {
            d.error(
                &i.location,
                format!("vrrp_instance {} is defined twice", i.name),
            );
        }
        let v6 = i.vips.first().is_some_and(|v| v.addr.is_ipv6());
        if i.vrid != 0 && !routers.insert((i.interface.as_str(), i.vrid, v6)) {
            d.error(
                &i.location,
                format!(
                    "vrrp_instance {}: virtual_router_id {} is already used on {}",
                    i.name, i.vrid, i.interface
                ),
            );
        }
        for t in &i.track_scripts {
            if !scripts.contains(t.name.as_str()) {
                d.error(
                    &i.location,
                    format!(
                        "vrrp_instance {}: track_script {} is not defined",
                        i.name, t.name
                    ),
                );
            }
        }
    }
    for g in &c.sync_groups {
        for m in &g.members {
            if !names.contains(m.as_str()) {
                d.error(
                    &g.location,
                    format!("vrrp_sync_group {}: no vrrp_instance {m}", g.name),
                );
            }
        }
    }
}
