//! Which VIPs this node announces, and why not the others: a pure function
//! of the services' health and the VRRP instances' states.
//!
//! A VIP is announced while its virtual_servers can serve (any of them, or
//! all with `require all`) and, when a VRRP instance holds the VIP, only
//! while that instance is MASTER, so a VRRP site that also runs BGP keeps
//! one active node per VIP. A node that is still learning its peers' flows
//! (flow sync) or is stopping announces nothing.

use std::{collections::BTreeMap, net::IpAddr};

use serde::Serialize;

use crate::{
    config::AnnounceRequire,
    services::{Service, Table},
};

/// One virtual_server as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub vip: IpAddr,
    /// For the reason text, e.g. "TCP 10.0.0.1:80".
    pub name: String,
    /// `None` when it can serve; else why not.
    pub down_because: Option<String>,
}

/// One vrrp_instance that holds VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpView {
    pub instance: String,
    pub vips: Vec<IpAddr>,
    pub master: bool,
}

/// Where the node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting: the reals' MACs are not all known yet, and a real without
    /// one is out of the ring (at most the daemon's readiness wait).
    Resolving,
    /// Learning the live flows from the sync peers.
    Joining,
    Running,
    Stopping,
}

/// The decision for one VIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub vip: IpAddr,
    pub announced: bool,
    pub reason: String,
}

/// A service can serve while it has its quorum (keepalived's `quorum` and
/// `hysteresis`: by default, while its healthy reals' weights add up to at
/// least one), or its `sorry_server` stands in: withdrawing the VIP then
/// would take away the very answer the sorry server is there to give.
pub fn service_view(s: &Service) -> ServiceView {
    ServiceView {
        vip: s.vip,
        name: format!("{} {}", s.proto, std::net::SocketAddr::new(s.vip, s.port)),
        down_because: (!s.quorum_up && s.sorry().is_none()).then(|| {
            if s.reals.is_empty() {
                "no real server".to_string()
            } else {
                format!(
                    "below quorum (live weight {}, needs {})",
                    s.live_weight(),
                    s.quorum.threshold(false)
                )
            }
        }),
    }
}

pub fn service_views(table: &Table) -> Vec<ServiceView> {
    table.services.values().map(service_view).collect()
}

pub fn decide(
    services: &[ServiceView],
    vrrp: &[VrrpView],
    require: AnnounceRequire,
    phase: Phase,
) -> Vec<Verdict> {
    let mut by_vip: BTreeMap<IpAddr, Vec<&ServiceView>> = BTreeMap::new();
    for s in services {
        by_vip.entry(s.vip).or_default().push(s);
    }
    by_vip
        .into_iter()
        .map(|(vip, members)| {
            let down: Vec<String> = members
                .iter()
                .filter_map(|s| {
                    s.down_because
                        .as_ref()
                        .map(|why| format!("{}: {why}", s.name))
                })
                .collect();
            let serves = match require {
                AnnounceRequire::Any => down.len() < members.len(),
                AnnounceRequire::All => down.is_empty(),
            };
            let holder = vrrp.iter().find(|v| v.vips.contains(&vip));
            let (announced, reason) = if phase == Phase::Stopping {
                (false, "the daemon is stopping".to_string())
            } else if phase == Phase::Resolving {
                (false, "resolving the reals' MAC addresses".to_string())
            } else if phase == Phase::Joining {
                (
                    false,
                    "learning the live flows from the sync peers".to_string(),
                )
            } else if !serves {
                (false, down.join("; "))
            } else if let Some(h) = holder.filter(|h| !h.master) {
                (false, format!("vrrp_instance {} is not MASTER", h.instance))
            } else {
                let why = match holder {
                    Some(h) => format!("can serve; vrrp_instance {} is MASTER", h.instance),
                    None => "can serve".to_string(),
                };
                (true, why)
            };
            Verdict {
                vip,
                announced,
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn vip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn svc(v: u8, port: u16, up: bool) -> ServiceView {
        ServiceView {
            vip: vip(v),
            name: format!("TCP {}:{port}", vip(v)),
            down_because: (!up).then(|| "no healthy real server with weight".to_string()),
        }
    }

    fn announced(verdicts: &[Verdict]) -> Vec<(IpAddr, bool)> {
        verdicts.iter().map(|v| (v.vip, v.announced)).collect()
    }

    #[test]
    fn a_vip_is_announced_while_it_can_serve() {
        let v = decide(
            &[svc(1, 80, true), svc(2, 80, false)],
            &[],
            AnnounceRequire::Any,
            Phase::Running,
        );
        assert_eq!(announced(&v), [(vip(1), true), (vip(2), false)]);
        assert_eq!(v[0].reason, "can serve");
        assert_eq!(
            v[1].reason,
            "TCP 10.0.0.2:80: no healthy real server with weight"
        );
    }

    #[test]
    fn a_service_below_quorum_serves_by_its_sorry_server() {
        let id = (vip(1), 80, crate::dataplane::keys::Proto::Tcp);
        let mut table = Table::default();
        table.add_service(id, "wlc".into(), 0).unwrap();
        let view = |t: &Table| service_view(&t.services[&id]).down_because;
        assert_eq!(view(&table).as_deref(), Some("no real server"));
        let s = table.services.get_mut(&id).unwrap();
        s.sorry_server = Some("10.0.0.9:80".parse().unwrap());
        assert_eq!(view(&table), None, "the sorry server answers");
    }

    #[test]
    fn several_services_on_one_vip_any_or_all() {
        let services = [svc(1, 80, true), svc(1, 443, false)];
        let any = decide(&services, &[], AnnounceRequire::Any, Phase::Running);
        assert_eq!(announced(&any), [(vip(1), true)]);
        let all = decide(&services, &[], AnnounceRequire::All, Phase::Running);
        assert_eq!(announced(&all), [(vip(1), false)]);
        assert_eq!(
            all[0].reason,
            "TCP 10.0.0.1:443: no healthy real server with weight"
        );
        let none = decide(
            &[svc(1, 80, false), svc(1, 443, false)],
            &[],
            AnnounceRequire::Any,
            Phase::Running,
        );
        assert_eq!(announced(&none), [(vip(1), false)]);
        assert_eq!(
            none[0].reason,
            "TCP 10.0.0.1:80: no healthy real server with weight; \
             TCP 10.0.0.1:443: no healthy real server with weight"
        );
    }

    #[test]
    fn a_vrrp_held_vip_is_announced_by_the_master_only() {
        let holder = |master| VrrpView {
            instance: "VI_1".into(),
            vips: vec![vip(1)],
            master,
        };
        let backup = decide(
            &[svc(1, 80, true), svc(2, 80, true)],
            &[holder(false)],
            AnnounceRequire::Any,
            Phase::Running,
        );
        assert_eq!(announced(&backup), [(vip(1), false), (vip(2), true)]);
        assert_eq!(backup[0].reason, "vrrp_instance VI_1 is not MASTER");
        let master = decide(
            &[svc(1, 80, true)],
            &[holder(true)],
            AnnounceRequire::Any,
            Phase::Running,
        );
        assert_eq!(announced(&master), [(vip(1), true)]);
        assert_eq!(master[0].reason, "can serve; vrrp_instance VI_1 is MASTER");
        // A master whose service cannot serve does not announce either.
        let dead = decide(
            &[svc(1, 80, false)],
            &[holder(true)],
            AnnounceRequire::Any,
            Phase::Running,
        );
        assert_eq!(announced(&dead), [(vip(1), false)]);
    }

    #[test]
    fn a_stopping_node_withdraws_everything() {
        let v = decide(
            &[svc(1, 80, true), svc(2, 80, true)],
            &[],
            AnnounceRequire::Any,
            Phase::Stopping,
        );
        assert_eq!(announced(&v), [(vip(1), false), (vip(2), false)]);
        assert!(v.iter().all(|v| v.reason == "the daemon is stopping"));
    }

    #[test]
    fn a_joining_node_announces_once_it_has_learnt_the_flows() {
        let v = decide(
            &[svc(1, 80, true)],
            &[],
            AnnounceRequire::Any,
            Phase::Joining,
        );
        assert_eq!(announced(&v), [(vip(1), false)]);
        assert_eq!(v[0].reason, "learning the live flows from the sync peers");
    }

    #[test]
    fn a_starting_node_announces_once_its_reals_macs_are_known() {
        // Reals start healthy, but one without a MAC is out of the ring:
        // the routers would send this node traffic it cannot forward.
        let v = decide(
            &[svc(1, 80, true)],
            &[],
            AnnounceRequire::Any,
            Phase::Resolving,
        );
        assert_eq!(announced(&v), [(vip(1), false)]);
        assert_eq!(v[0].reason, "resolving the reals' MAC addresses");
    }
}
