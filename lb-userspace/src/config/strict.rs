//! `vrrp_strict`: what keepalived refuses in strict RFC mode, refused the
//! same way, so a file keepalived would reject is not run differently here.

use super::{
    diag::Diagnostics,
    model::{Config, InitialState},
};

pub fn refusals(c: &Config, d: &mut Diagnostics) {
    let Some(at) = &c.global.strict else {
        return;
    };
    let why = |what: &str| format!("{what} is not allowed with vrrp_strict (set at {at})");
    for i in &c.vrrp_instances {
        let here = &i.location;
        let name = &i.name;
        if i.vips.is_empty() {
            d.error(
                here,
                why(&format!("vrrp_instance {name}: no virtual_ipaddress")),
            );
        }
        if !i.unicast_peers.is_empty() {
            d.error(here, why(&format!("vrrp_instance {name}: unicast_peer")));
        }
        if i.auth.is_some() {
            d.error(here, why(&format!("vrrp_instance {name}: authentication")));
        }
        if i.down_timer_adverts != super::model::DOWN_TIMER_ADVERTS {
            d.error(
                here,
                why(&format!("vrrp_instance {name}: down_timer_adverts")),
            );
        }
        if !i.preempt_delay.is_zero() {
            d.error(here, why(&format!("vrrp_instance {name}: preempt_delay")));
        }
        if i.initial_state == InitialState::Master && i.priority != 255 {
            d.error(
                here,
                why(&format!(
                    "vrrp_instance {name}: state MASTER with a priority other than 255"
                )),
            );
        }
        if i.version == 2 && i.vips.iter().any(|v| v.addr.is_ipv6()) {
            d.error(
                here,
                why(&format!(
                    "vrrp_instance {name}: an IPv6 address in VRRP version 2"
                )),
            );
        }
        if let Some(v) = i.vips.first().filter(|v| v.addr.is_ipv6()) {
            let link_local = matches!(v.addr, std::net::IpAddr::V6(a) if a.is_unicast_link_local());
            if !link_local {
                d.error(
                    here,
                    why(&format!(
                        "vrrp_instance {name}: a first IPv6 virtual_ipaddress ({}) that is not link-local",
                        v.addr
                    )),
                );
            }
        }
    }
    d.note(
        at,
        "vrrp_strict: keepalived's refusals are applied; like keepalived with vrrp_iptables \
         off, xdpvs adds no firewall rules for the VIPs (no_accept), and XDP keeps balancing \
         their traffic",
    );
}
