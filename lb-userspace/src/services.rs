//! The daemon's desired state: every service and real as the configuration
//! describes it, with what happened since — health-check results, runtime
//! changes from the admin API — folded in. Pure: the daemon feeds it events
//! and hands `specs()` to the reconciler.
//!
//! A runtime change (`adm -a/-e/-d`, `ctl weight/drain`) holds until the next
//! reload, which reports each one it overrides.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use thiserror::Error;

use crate::{
    config::{Config, Protocol, VirtualServer},
    dataplane::{
        keys::Proto,
        reconcile::{RealId, RealSpec, ServiceId, ServiceSpec},
    },
};

/// A real as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    pub addr: IpAddr,
    pub port: u16,
    /// From the configuration (or `adm -a`).
    pub config_weight: u32,
    /// Set at run time (`adm -e`, `ctl weight`, `ctl drain`).
    pub runtime_weight: Option<u32>,
    /// Set by a MISC_CHECK with `misc_dynamic`.
    pub check_weight: Option<u32>,
    pub healthy: bool,
    /// Shown with weight 0 while down instead of leaving the table.
    pub inhibit_on_failure: bool,
    /// The last check result, for `ctl status`.
    pub last_check: Option<String>,
    /// Added at run time, not in the configuration.
    pub runtime: bool,
    /// Removed from the configuration by a reload: weight 0, so it takes no
    /// new flows, until its flows have ended (`Table::drained`).
    pub draining: bool,
}

impl Real {
    pub fn weight(&self) -> u32 {
        if self.draining {
            return 0;
        }
        self.runtime_weight
            .or(self.check_weight)
            .unwrap_or(self.config_weight)
    }

    /// A failed real with `inhibit_on_failure` stays as LVS keeps it: weight
    /// 0, so its established connections continue and it takes no new ones.
    /// Without it, a failed real is down: its flows move to other reals.
    fn spec(&self) -> RealSpec {
        let inhibited = !self.healthy && self.inhibit_on_failure;
        RealSpec {
            addr: self.addr,
            port: self.port,
            weight: if inhibited { 0 } else { self.weight() },
            healthy: self.healthy || inhibited,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub scheduler: String,
    pub persistence_timeout: u32,
    pub reals: BTreeMap<RealId, Real>,
    /// Takes the traffic while no real can (`sorry_server`).
    pub sorry_server: Option<SocketAddr>,
    /// Added at run time (`adm -A`), not in the configuration.
    pub runtime: bool,
    /// Changed at run time (`adm -E`).
    pub edited: bool,
}

impl Service {
    pub fn id(&self) -> ServiceId {
        (self.vip, self.port, self.proto)
    }

    /// Whether the sorry server stands in: no real is up with a weight.
    pub fn sorry(&self) -> Option<SocketAddr> {
        let serving = self.reals.values().any(|r| r.healthy && r.weight() > 0);
        self.sorry_server.filter(|_| !serving)
    }

    pub fn spec(&self) -> ServiceSpec {
        let mut reals: Vec<RealSpec> = self.reals.values().map(Real::spec).collect();
        if let Some(sorry) = self.sorry() {
            reals.push(RealSpec {
                addr: sorry.ip(),
                port: sorry.port(),
                weight: 1,
                healthy: true,
            });
        }
        ServiceSpec {
            vip: self.vip,
            port: self.port,
            proto: self.proto,
            persist_timeout_s: self.persistence_timeout,
            reals,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TableError {
    #[error("no service {0}")]
    NoService(SocketAddr),
    #[error("service {0} already exists")]
    ServiceExists(SocketAddr),
    #[error("no real server {1} in service {0}")]
    NoReal(SocketAddr, SocketAddr),
    #[error("real server {1} already exists in service {0}")]
    RealExists(SocketAddr, SocketAddr),
}

fn proto_of(p: &Protocol) -> Proto {
    match p {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
    }
}

fn service_of(vs: &VirtualServer) -> Service {
    Service {
        vip: vs.addr,
        port: vs.port,
        proto: proto_of(&vs.protocol),
        scheduler: vs.scheduler.clone(),
        persistence_timeout: vs.persistence_timeout,
        reals: vs
            .reals
            .iter()
            .map(|r| {
                let real = Real {
                    addr: r.addr,
                    port: r.port,
                    config_weight: r.weight,
                    runtime_weight: None,
                    check_weight: None,
                    // keepalived's `alpha`: start down until the first success.
                    healthy: !vs.alpha,
                    inhibit_on_failure: r.inhibit_on_failure,
                    last_check: None,
                    runtime: false,
                    draining: false,
                };
                ((r.addr, r.port), real)
            })
            .collect(),
        sorry_server: vs.sorry_server,
        runtime: false,
        edited: false,
    }
}

/// Every service, keyed as the data plane keys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub services: BTreeMap<ServiceId, Service>,
}

impl Table {
    pub fn from_config(config: &Config) -> Self {
        let services = config
            .virtual_servers
            .iter()
            .map(service_of)
            .map(|s| (s.id(), s))
            .collect();
        Self { services }
    }

    pub fn specs(&self) -> Vec<ServiceSpec> {
        self.services.values().map(Service::spec).collect()
    }

    /// Replaces the table by the configuration's. Services and reals that stay
    /// keep their health; every runtime change is dropped and reported.
    pub fn reload(&mut self, config: &Config) -> Vec<String> {
        let mut next = Self::from_config(config);
        let mut overridden = Vec::new();
        for (id, old) in &self.services {
            let name = format!("{} {}", old.proto, SocketAddr::new(old.vip, old.port));
            if old.runtime {
                overridden.push(format!("service {name} added at run time is removed"));
            } else if old.edited {
                overridden.push(format!("service {name} edited at run time is reset"));
            }
            let new = next.services.get_mut(id);
            for (rid, real) in &old.reals {
                let kept = new.as_ref().and_then(|s| s.reals.get(rid)).is_some();
                if real.runtime {
                    overridden.push(format!(
                        "real {} of {name} added at run time is removed",
                        SocketAddr::new(rid.0, rid.1)
                    ));
                } else if let Some(w) = real.runtime_weight.filter(|_| kept) {
                    overridden.push(format!(
                        "real {} of {name}: run-time weight {w} is replaced by the configured weight",
                        SocketAddr::new(rid.0, rid.1)
                    ));
                }
            }
            if let Some(new) = new {
                for (rid, real) in new.reals.iter_mut() {
                    if let Some(old_real) = old.reals.get(rid) {
                        real.healthy = old_real.healthy;
                        real.check_weight = old_real.check_weight;
                        real.last_check = old_real.last_check.clone();
                    }
                }
                // A real the configuration no longer has drains: its flows
                // continue, it takes no new ones, and it goes once they end.
                for (rid, real) in &old.reals {
                    if !real.runtime && !new.reals.contains_key(rid) {
                        if !real.draining {
                            overridden.push(format!(
                                "real {} of {name} left the configuration: draining until its flows end",
                                SocketAddr::new(rid.0, rid.1)
                            ));
                        }
                        new.reals.insert(
                            *rid,
                            Real {
                                draining: true,
                                ..real.clone()
                            },
                        );
                    }
                }
            }
        }
        *self = next;
        overridden
    }

    fn service_mut(&mut self, id: &ServiceId) -> Result<&mut Service, TableError> {
        self.services
            .get_mut(id)
            .ok_or(TableError::NoService(SocketAddr::new(id.0, id.1)))
    }

    pub fn real_mut(&mut self, id: &ServiceId, rid: &RealId) -> Result<&mut Real, TableError> {
        let service = self.service_mut(id)?;
        service.reals.get_mut(rid).ok_or(TableError::NoReal(
            SocketAddr::new(id.0, id.1),
            SocketAddr::new(rid.0, rid.1),
        ))
    }

    /// `adm -A`.
    pub fn add_service(
        &mut self,
        id: ServiceId,
        scheduler: String,
        persistence_timeout: u32,
    ) -> Result<(), TableError> {
        if self.services.contains_key(&id) {
            return Err(TableError::ServiceExists(SocketAddr::new(id.0, id.1)));
        }
        let service = Service {
            vip: id.0,
            port: id.1,
            proto: id.2,
            scheduler,
            persistence_timeout,
            reals: BTreeMap::new(),
            sorry_server: None,
            runtime: true,
            edited: false,
        };
        self.services.insert(id, service);
        Ok(())
    }

    /// `adm -E`.
    pub fn edit_service(
        &mut self,
        id: &ServiceId,
        scheduler: Option<String>,
        persistence_timeout: Option<u32>,
    ) -> Result<(), TableError> {
        let s = self.service_mut(id)?;
        if let Some(sched) = scheduler {
            s.scheduler = sched;
        }
        if let Some(p) = persistence_timeout {
            s.persistence_timeout = p;
        }
        s.edited = true;
        Ok(())
    }

    /// `adm -D`.
    pub fn delete_service(&mut self, id: &ServiceId) -> Result<(), TableError> {
        self.services
            .remove(id)
            .map(drop)
            .ok_or(TableError::NoService(SocketAddr::new(id.0, id.1)))
    }

    /// `adm -a`: a real added at run time has no health check and starts up.
    pub fn add_real(&mut self, id: &ServiceId, rid: RealId, weight: u32) -> Result<(), TableError> {
        let s = self.service_mut(id)?;
        if s.reals.contains_key(&rid) {
            return Err(TableError::RealExists(
                SocketAddr::new(id.0, id.1),
                SocketAddr::new(rid.0, rid.1),
            ));
        }
        let real = Real {
            addr: rid.0,
            port: rid.1,
            config_weight: weight,
            runtime_weight: None,
            check_weight: None,
            healthy: true,
            inhibit_on_failure: false,
            last_check: None,
            runtime: true,
            draining: false,
        };
        s.reals.insert(rid, real);
        Ok(())
    }

    /// `adm -e`, `ctl weight`, `ctl drain` (weight 0).
    pub fn set_weight(
        &mut self,
        id: &ServiceId,
        rid: &RealId,
        weight: u32,
    ) -> Result<(), TableError> {
        self.real_mut(id, rid)?.runtime_weight = Some(weight);
        Ok(())
    }

    /// `adm -d`: the real leaves the ring; its flows are placed again.
    pub fn delete_real(&mut self, id: &ServiceId, rid: &RealId) -> Result<(), TableError> {
        let s = self.service_mut(id)?;
        s.reals.remove(rid).map(drop).ok_or(TableError::NoReal(
            SocketAddr::new(id.0, id.1),
            SocketAddr::new(rid.0, rid.1),
        ))
    }

    /// The reals draining after a reload.
    pub fn draining(&self) -> Vec<(ServiceId, RealId)> {
        self.services
            .values()
            .flat_map(|s| {
                s.reals
                    .values()
                    .filter(|r| r.draining)
                    .map(|r| (s.id(), (r.addr, r.port)))
            })
            .collect()
    }

    /// A draining real whose flows have ended leaves for good.
    pub fn drained(&mut self, id: &ServiceId, rid: &RealId) {
        if let Some(s) = self.services.get_mut(id)
            && s.reals.get(rid).is_some_and(|r| r.draining)
        {
            s.reals.remove(rid);
        }
    }

    /// `adm -C`.
    pub fn clear(&mut self) {
        self.services.clear();
    }

    /// A health check's verdict; returns whether anything changed.
    pub fn set_health(
        &mut self,
        id: &ServiceId,
        rid: &RealId,
        healthy: bool,
        weight: Option<u32>,
        reason: String,
    ) -> bool {
        let Ok(real) = self.real_mut(id, rid) else {
            return false;
        };
        let changed = real.healthy != healthy || (weight.is_some() && real.check_weight != weight);
        real.healthy = healthy;
        if weight.is_some() {
            real.check_weight = weight;
        }
        real.last_check = Some(reason);
        changed
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    fn table(text: &str) -> Table {
        Table::from_config(
            &parse_str(text, Path::new("t.conf"))
                .unwrap_or_else(|e| panic!("{e}"))
                .config,
        )
    }

    const TWO_REALS: &str = "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  weight 1\n }\n real_server 10.0.0.12 80 {\n  weight 3\n }\n}\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn id() -> ServiceId {
        (ip("10.0.0.100"), 80, Proto::Tcp)
    }

    fn weights(t: &Table) -> Vec<(u32, bool)> {
        t.specs()[0]
            .reals
            .iter()
            .map(|r| (r.weight, r.healthy))
            .collect()
    }

    #[test]
    fn runtime_weight_wins_until_reload_which_says_so() {
        let mut t = table(TWO_REALS);
        t.set_weight(&id(), &(ip("10.0.0.12"), 80), 0).unwrap();
        assert_eq!(weights(&t), [(1, true), (0, true)]);
        let config = parse_str(TWO_REALS, Path::new("t.conf")).unwrap().config;
        let report = t.reload(&config);
        assert_eq!(weights(&t), [(1, true), (3, true)]);
        assert_eq!(
            report,
            [
                "real 10.0.0.12:80 of TCP 10.0.0.100:80: run-time weight 0 is replaced by the configured weight"
            ]
        );
    }

    #[test]
    fn reload_keeps_health_of_reals_that_stay() {
        let mut t = table(TWO_REALS);
        assert!(t.set_health(
            &id(),
            &(ip("10.0.0.11"), 80),
            false,
            None,
            "connection refused".into()
        ));
        let changed = TWO_REALS.replace("weight 3", "weight 5");
        t.reload(&parse_str(&changed, Path::new("t.conf")).unwrap().config);
        assert_eq!(weights(&t), [(1, false), (5, true)]);
        assert_eq!(
            t.services[&id()].reals[&(ip("10.0.0.11"), 80)]
                .last_check
                .as_deref(),
            Some("connection refused")
        );
    }

    #[test]
    fn a_real_removed_by_reload_drains_then_goes() {
        let mut t = table(TWO_REALS);
        let one = "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n }\n}\n";
        let report = t.reload(&parse_str(one, Path::new("t.conf")).unwrap().config);
        assert_eq!(
            report,
            [
                "real 10.0.0.12:80 of TCP 10.0.0.100:80 left the configuration: draining until its flows end"
            ]
        );
        assert_eq!(weights(&t), [(1, true), (0, true)], "kept up, weight 0");
        let gone = (ip("10.0.0.12"), 80);
        assert_eq!(t.draining(), [(id(), gone)]);
        // A second reload keeps it draining without saying so again.
        assert!(
            t.reload(&parse_str(one, Path::new("t.conf")).unwrap().config)
                .is_empty()
        );
        t.drained(&id(), &gone);
        assert_eq!(weights(&t), [(1, true)]);
        assert!(t.draining().is_empty());
        // Back in the configuration before it drained: a full member again.
        let mut t = table(TWO_REALS);
        t.reload(&parse_str(one, Path::new("t.conf")).unwrap().config);
        t.reload(&parse_str(TWO_REALS, Path::new("t.conf")).unwrap().config);
        assert_eq!(weights(&t), [(1, true), (3, true)]);
    }

    #[test]
    fn check_weight_applies_unless_the_operator_set_one() {
        let mut t = table(TWO_REALS);
        let r = (ip("10.0.0.11"), 80);
        assert!(t.set_health(&id(), &r, true, Some(7), "script exit 9".into()));
        assert_eq!(weights(&t)[0], (7, true));
        t.set_weight(&id(), &r, 2).unwrap();
        assert_eq!(weights(&t)[0], (2, true));
        assert!(
            !t.set_health(&id(), &r, true, Some(7), "script exit 9".into()),
            "nothing changed"
        );
    }

    #[test]
    fn the_sorry_server_stands_in_while_no_real_can() {
        let mut t = table(
            "virtual_server 10.0.0.100 80 {\n sorry_server 10.0.0.99 80\n real_server 10.0.0.11 80 {\n }\n}\n",
        );
        let addrs = |t: &Table| {
            t.specs()[0]
                .reals
                .iter()
                .map(|r| r.addr)
                .collect::<Vec<_>>()
        };
        assert_eq!(addrs(&t), [ip("10.0.0.11")]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), false, None, "refused".into());
        assert_eq!(addrs(&t), [ip("10.0.0.11"), ip("10.0.0.99")]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), true, None, "ok".into());
        assert_eq!(addrs(&t), [ip("10.0.0.11")]);
    }

    #[test]
    fn a_failed_inhibited_real_keeps_its_flows_with_weight_0() {
        let mut t = table(
            "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  inhibit_on_failure\n  weight 2\n }\n real_server 10.0.0.12 80 {\n }\n}\n",
        );
        assert_eq!(weights(&t), [(2, true), (1, true)]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), false, None, "refused".into());
        t.set_health(&id(), &(ip("10.0.0.12"), 80), false, None, "refused".into());
        // Inhibited: up for its flows, weight 0. Not inhibited: down.
        assert_eq!(weights(&t), [(0, true), (1, false)]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), true, None, "ok".into());
        assert_eq!(weights(&t)[0], (2, true));
    }

    #[test]
    fn alpha_starts_reals_down() {
        let t =
            table("virtual_server 10.0.0.100 80 {\n alpha\n real_server 10.0.0.11 80 {\n }\n}\n");
        assert_eq!(weights(&t), [(1, false)]);
    }

    #[test]
    fn admin_changes_and_their_errors() {
        let mut t = table(TWO_REALS);
        let udp = (ip("10.0.0.100"), 53, Proto::Udp);
        t.add_service(udp, "rr".into(), 0).unwrap();
        assert_eq!(
            t.add_service(udp, "rr".into(), 0),
            Err(TableError::ServiceExists(SocketAddr::new(udp.0, 53)))
        );
        t.add_real(&udp, (ip("10.0.0.21"), 53), 2).unwrap();
        assert_eq!(
            t.add_real(&udp, (ip("10.0.0.21"), 53), 2)
                .unwrap_err()
                .to_string(),
            "real server 10.0.0.21:53 already exists in service 10.0.0.100:53"
        );
        t.edit_service(&udp, Some("sh".into()), Some(60)).unwrap();
        assert_eq!(t.services[&udp].persistence_timeout, 60);
        t.delete_real(&udp, &(ip("10.0.0.21"), 53)).unwrap();
        assert_eq!(
            t.delete_service(&(ip("10.0.0.1"), 1, Proto::Tcp))
                .unwrap_err()
                .to_string(),
            "no service 10.0.0.1:1"
        );
        let report = t.reload(&parse_str(TWO_REALS, Path::new("t.conf")).unwrap().config);
        assert_eq!(
            report,
            ["service UDP 10.0.0.100:53 added at run time is removed"]
        );
        t.clear();
        assert!(t.specs().is_empty());
    }
}
