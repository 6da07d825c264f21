//! The daemon's desired state: every service and real as the configuration
//! describes it, with what happened since — health-check results, runtime
//! changes from the admin API — folded in. Pure: the daemon feeds it events
//! and hands `specs()` to the reconciler.
//!
//! A runtime change (`adm -a/-e/-d`, `ctl weight/drain`) holds until the next
//! reload, which reports each one it overrides.
//!
//! Every change that can move a service's live weight re-evaluates its
//! quorum (`quorum`); the transitions wait in the table until the daemon
//! takes them (`take_quorum_changes`) to log them and run their scripts.

pub mod quorum;

use std::{
    collections::{BTreeMap, HashSet},
    net::{IpAddr, SocketAddr},
};

use thiserror::Error;

use self::quorum::Quorum;
use crate::{
    config::{Config, NotifyScript, VirtualServer},
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
            inhibited,
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
    /// Takes the new flows while the service has no quorum (`sorry_server`).
    pub sorry_server: Option<SocketAddr>,
    /// Added at run time (`adm -A`), not in the configuration.
    pub runtime: bool,
    /// Changed at run time (`adm -E`).
    pub edited: bool,
    pub quorum: Quorum,
    /// `quorum_up` and `quorum_down`.
    pub quorum_scripts: (Option<NotifyScript>, Option<NotifyScript>),
    /// Whether the service has its quorum now.
    pub quorum_up: bool,
}

/// A service gained or lost its quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumChange {
    pub service: ServiceId,
    pub up: bool,
    pub live_weight: u64,
    /// The weight the transition was decided against.
    pub threshold: u64,
    /// The script to run for it, if one is configured.
    pub script: Option<NotifyScript>,
}

impl Service {
    pub fn id(&self) -> ServiceId {
        (self.vip, self.port, self.proto)
    }

    /// The sum of the healthy reals' weights, which the quorum is about.
    pub fn live_weight(&self) -> u64 {
        self.reals
            .values()
            .filter(|r| r.healthy)
            .map(|r| u64::from(r.weight()))
            .sum()
    }

    /// Whether the sorry server stands in: the service has lost its quorum
    /// (by default: no real is up with a weight).
    pub fn sorry(&self) -> Option<SocketAddr> {
        self.sorry_server.filter(|_| !self.quorum_up)
    }

    /// Re-evaluates the quorum; returns the transition, if there is one.
    fn requorum(&mut self) -> Option<QuorumChange> {
        let live_weight = self.live_weight();
        let threshold = self.quorum.threshold(self.quorum_up);
        let up = self.quorum.next(self.quorum_up, live_weight);
        if up == self.quorum_up {
            return None;
        }
        self.quorum_up = up;
        let (up_script, down_script) = &self.quorum_scripts;
        Some(QuorumChange {
            service: self.id(),
            up,
            live_weight,
            threshold,
            script: if up { up_script } else { down_script }.clone(),
        })
    }

    pub fn spec(&self) -> ServiceSpec {
        let mut reals: Vec<RealSpec> = self.reals.values().map(Real::spec).collect();
        if let Some(sorry) = self.sorry() {
            // As keepalived with IPVS: while the sorry server stands in, the
            // reals take no new flows (their established flows go on).
            for r in &mut reals {
                r.weight = 0;
            }
            reals.push(RealSpec {
                addr: sorry.ip(),
                port: sorry.port(),
                weight: 1,
                healthy: true,
                inhibited: false,
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

fn service_of(vs: &VirtualServer) -> Service {
    let mut service = Service {
        vip: vs.addr,
        port: vs.port,
        proto: vs.protocol.into(),
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
                    // keepalived's `alpha`: start down until the first
                    // success (the checks start from this state).
                    healthy: !r.starts_down(vs.alpha),
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
        quorum: Quorum::from(&vs.quorum),
        quorum_scripts: (vs.quorum.up_script.clone(), vs.quorum.down_script.clone()),
        quorum_up: false,
    };
    service.quorum_up = service.quorum.initial(service.live_weight());
    service
}

/// The reals `config` gives checks to.
fn checked_reals(config: &Config) -> HashSet<(ServiceId, RealId)> {
    let mut checked = HashSet::new();
    for vs in &config.virtual_servers {
        let sid = (vs.addr, vs.port, vs.protocol.into());
        for r in vs.reals.iter().filter(|r| !r.checks.is_empty()) {
            checked.insert((sid, (r.addr, r.port)));
        }
    }
    checked
}

/// Every service, keyed as the data plane keys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub services: BTreeMap<ServiceId, Service>,
    /// Quorum transitions not yet taken by the daemon.
    quorum_changes: Vec<QuorumChange>,
}

impl Table {
    pub fn from_config(config: &Config) -> Self {
        let services = config
            .virtual_servers
            .iter()
            .map(service_of)
            .map(|s| (s.id(), s))
            .collect();
        Self {
            services,
            quorum_changes: Vec::new(),
        }
    }

    /// The quorum transitions since the last call, oldest first.
    pub fn take_quorum_changes(&mut self) -> Vec<QuorumChange> {
        std::mem::take(&mut self.quorum_changes)
    }

    /// A service with quorum that goes away loses it, as in keepalived: its
    /// `quorum_down` runs (an announced VIP is withdrawn).
    fn removed(&mut self, service: &Service) {
        if service.quorum_up {
            self.quorum_changes.push(QuorumChange {
                service: service.id(),
                up: false,
                live_weight: 0,
                threshold: service.quorum.threshold(true),
                script: service.quorum_scripts.1.clone(),
            });
        }
    }

    fn requorum(&mut self, id: &ServiceId) {
        if let Some(change) = self.services.get_mut(id).and_then(Service::requorum) {
            self.quorum_changes.push(change);
        }
    }

    pub fn specs(&self) -> Vec<ServiceSpec> {
        self.services.values().map(Service::spec).collect()
    }

    /// Replaces the table by the configuration's. Services and reals that stay
    /// keep their health (a real left without checks is up, as at a fresh
    /// start); every runtime change is dropped and reported.
    pub fn reload(&mut self, config: &Config) -> Vec<String> {
        let mut next = Self::from_config(config);
        let checked = checked_reals(config);
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
                // The state carries over; the new settings may change it below.
                new.quorum_up = old.quorum_up;
                // Only a real still checked keeps its health: with no check
                // left, nothing would bring a failed one back up.
                for (rid, real) in new.reals.iter_mut() {
                    if let Some(old_real) = old
                        .reals
                        .get(rid)
                        .filter(|_| checked.contains(&(*id, *rid)))
                    {
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
        next.quorum_changes = std::mem::take(&mut self.quorum_changes);
        let gone: Vec<Service> = self
            .services
            .values()
            .filter(|s| !next.services.contains_key(&s.id()))
            .cloned()
            .collect();
        for s in &gone {
            next.removed(s);
        }
        *self = next;
        let ids: Vec<ServiceId> = self.services.keys().copied().collect();
        for id in &ids {
            self.requorum(id);
        }
        overridden
    }

    /// At start, the health an adopted data plane recorded (not re-learned),
    /// for the reals `config` still checks: one without checks is up, as at
    /// a fresh start, since nothing would bring a failed one back.
    pub fn adopt_health(&mut self, config: &Config, health: Vec<(ServiceId, RealId, bool)>) {
        let checked = checked_reals(config);
        for (sid, rid, healthy) in health {
            if checked.contains(&(sid, rid)) {
                let reason = "carried over from the running data plane".to_string();
                self.set_health(&sid, &rid, healthy, None, reason);
            }
        }
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
            quorum: Quorum::default(),
            quorum_scripts: (None, None),
            quorum_up: false,
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
        let gone = self
            .services
            .remove(id)
            .ok_or(TableError::NoService(SocketAddr::new(id.0, id.1)))?;
        self.removed(&gone);
        Ok(())
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
        self.requorum(id);
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
        self.requorum(id);
        Ok(())
    }

    /// `adm -d`: the real leaves the ring; its flows are placed again.
    pub fn delete_real(&mut self, id: &ServiceId, rid: &RealId) -> Result<(), TableError> {
        let s = self.service_mut(id)?;
        s.reals.remove(rid).ok_or(TableError::NoReal(
            SocketAddr::new(id.0, id.1),
            SocketAddr::new(rid.0, rid.1),
        ))?;
        self.requorum(id);
        Ok(())
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
        self.requorum(id);
    }

    /// `adm -C`.
    pub fn clear(&mut self) {
        for gone in std::mem::take(&mut self.services).into_values() {
            self.removed(&gone);
        }
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
        self.requorum(id);
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

    const TWO_CHECKED: &str = "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  weight 1\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.12 80 {\n  weight 3\n  TCP_CHECK {\n  }\n }\n}\n";

    #[test]
    fn reload_keeps_health_of_reals_that_stay() {
        let mut t = table(TWO_CHECKED);
        assert!(t.set_health(
            &id(),
            &(ip("10.0.0.11"), 80),
            false,
            None,
            "connection refused".into()
        ));
        let changed = TWO_CHECKED.replace("weight 3", "weight 5");
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
    fn a_real_whose_checks_a_reload_removes_is_up_as_at_a_fresh_start() {
        let mut t = table(TWO_CHECKED);
        let r = (ip("10.0.0.11"), 80);
        assert!(t.set_health(&id(), &r, false, None, "connection refused".into()));
        assert!(t.set_health(&id(), &r, false, Some(9), "script exit 9".into()));
        t.reload(&parse_str(TWO_REALS, Path::new("t.conf")).unwrap().config);
        assert_eq!(weights(&t), [(1, true), (3, true)], "no check to wait for");
        let real = &t.services[&id()].reals[&r];
        assert_eq!(
            (real.check_weight, real.last_check.as_deref()),
            (None, None)
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

    const QUORUM: &str = "virtual_server 10.0.0.100 80 {\n quorum 4\n hysteresis 1\n quorum_up \"/bin/up 'a b'\"\n quorum_down /bin/down\n sorry_server 10.0.0.99 80\n real_server 10.0.0.11 80 {\n  weight 2\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.12 80 {\n  weight 3\n  TCP_CHECK {\n  }\n }\n}\n";

    fn up(t: &Table) -> bool {
        t.services[&id()].quorum_up
    }

    #[test]
    fn quorum_follows_the_live_weight_with_hysteresis_and_says_so_once() {
        let mut t = table(QUORUM);
        assert!(up(&t), "5 >= 4 + 1: starts with quorum");
        assert!(t.take_quorum_changes().is_empty(), "no script at start");
        let (r1, r2) = ((ip("10.0.0.11"), 80), (ip("10.0.0.12"), 80));
        // 3 is inside the band (3..5): still up.
        t.set_health(&id(), &r1, false, None, "refused".into());
        assert!(up(&t) && t.take_quorum_changes().is_empty());
        // 0: lost; the sorry server takes the new flows, the reals none.
        t.set_health(&id(), &r2, false, None, "refused".into());
        assert_eq!(
            t.take_quorum_changes(),
            [QuorumChange {
                service: id(),
                up: false,
                live_weight: 0,
                threshold: 3,
                script: Some("/bin/down".into()),
            }]
        );
        // Back to 3: inside the band from below, still down.
        t.set_health(&id(), &r2, true, None, "ok".into());
        assert!(!up(&t));
        assert_eq!(
            t.specs()[0]
                .reals
                .iter()
                .map(|r| (r.addr, r.weight))
                .collect::<Vec<_>>(),
            [
                (ip("10.0.0.11"), 0),
                (ip("10.0.0.12"), 0),
                (ip("10.0.0.99"), 1)
            ],
            "without quorum the sorry server alone takes new flows"
        );
        // 5: gained, the sorry server leaves.
        t.set_health(&id(), &r1, true, None, "ok".into());
        let changes = t.take_quorum_changes();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].up && changes[0].live_weight == 5 && changes[0].threshold == 5);
        assert_eq!(
            changes[0].script.as_ref().map(|s| s.command.as_str()),
            Some("/bin/up 'a b'")
        );
        assert_eq!(weights(&t), [(2, true), (3, true)]);
        // An operator's weight counts: 2 + 0 < 3 loses it.
        t.set_weight(&id(), &r2, 0).unwrap();
        assert!(!up(&t));
        assert_eq!(t.take_quorum_changes().len(), 1);
    }

    #[test]
    fn quorum_state_carries_over_reloads_and_a_removed_service_loses_it() {
        let mut t = table(QUORUM);
        let config = |text: &str| parse_str(text, Path::new("t.conf")).unwrap().config;
        // Down to 3 (in the band), then a reload with a higher quorum loses it.
        t.set_health(&id(), &(ip("10.0.0.11"), 80), false, None, "x".into());
        t.reload(&config(QUORUM));
        assert!(up(&t), "same settings: the state carries over");
        assert!(t.take_quorum_changes().is_empty());
        t.reload(&config(&QUORUM.replace("quorum 4", "quorum 5")));
        assert!(!up(&t), "3 < 5 - 1");
        assert_eq!(t.take_quorum_changes().len(), 1);
        // Back up through a reload that lowers the quorum, then removed.
        t.reload(&config(&QUORUM.replace("quorum 4", "quorum 2")));
        assert!(up(&t), "3 >= 2 + 1");
        assert!(t.take_quorum_changes()[0].up);
        t.reload(&config("virtual_server 10.0.0.1 81 {\n}\n"));
        let gone = t.take_quorum_changes();
        assert_eq!(gone.len(), 1);
        assert!(
            !gone[0].up && gone[0].script.as_ref().map(|s| s.command.as_str()) == Some("/bin/down")
        );
        t.clear();
        assert!(
            t.take_quorum_changes().is_empty(),
            "it had no quorum: no real"
        );
    }

    #[test]
    fn a_failed_inhibited_real_keeps_its_flows_with_weight_0() {
        let mut t = table(
            "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  inhibit_on_failure\n  weight 2\n }\n real_server 10.0.0.12 80 {\n }\n}\n",
        );
        assert_eq!(weights(&t), [(2, true), (1, true)]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), false, None, "refused".into());
        t.set_health(&id(), &(ip("10.0.0.12"), 80), false, None, "refused".into());
        // Inhibited: up for its flows, weight 0, and said so for adoption.
        // Not inhibited: down.
        assert_eq!(weights(&t), [(0, true), (1, false)]);
        let inhibited = |t: &Table| {
            t.specs()[0]
                .reals
                .iter()
                .map(|r| r.inhibited)
                .collect::<Vec<_>>()
        };
        assert_eq!(inhibited(&t), [true, false]);
        t.set_health(&id(), &(ip("10.0.0.11"), 80), true, None, "ok".into());
        assert_eq!(weights(&t)[0], (2, true));
        assert_eq!(inhibited(&t), [false, false]);
    }

    #[test]
    fn adopted_health_holds_only_for_checked_reals() {
        let text = "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.12 80 {\n }\n}\n";
        let config = parse_str(text, Path::new("t.conf")).unwrap().config;
        let mut t = Table::from_config(&config);
        let down = |real| (id(), (ip(real), 80), false);
        t.adopt_health(&config, vec![down("10.0.0.11"), down("10.0.0.12")]);
        assert_eq!(
            weights(&t),
            [(1, false), (1, true)],
            "no check, so never down forever"
        );
    }

    #[test]
    fn alpha_starts_checked_reals_down_and_unchecked_ones_up() {
        let t = table(
            "virtual_server 10.0.0.100 80 {\n alpha\n real_server 10.0.0.11 80 {\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.12 80 {\n }\n}\n",
        );
        assert_eq!(
            weights(&t),
            [(1, false), (1, true)],
            "no check, so never down forever"
        );
    }

    #[test]
    fn a_real_or_checker_alpha_starts_its_real_down_under_a_virtual_server_without() {
        let t = table(
            "virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  alpha\n  TCP_CHECK {\n  }\n }\n \
             real_server 10.0.0.12 80 {\n  TCP_CHECK {\n   alpha\n  }\n }\n \
             real_server 10.0.0.13 80 {\n  alpha\n  TCP_CHECK {\n   alpha no\n  }\n }\n}\n",
        );
        assert_eq!(
            weights(&t),
            [(1, false), (1, false), (1, true)],
            "the real's alpha, the checker's, the checker's `alpha no` over the real's"
        );
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
