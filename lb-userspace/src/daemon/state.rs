//! The daemon's state and everything that changes it: MACs, health checks,
//! reloads, the admin API. Every change goes through `apply`, which hands the
//! desired services to the reconciler and its writes to the maps.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::PoisonError,
};

use anyhow::{Context as _, Result};
use log::{error, info, warn};
use tokio::sync::{mpsc, watch};

use super::{explain, load_config};
use crate::{
    api::protocol::{
        RealRef, RealStatus, ReasonCount, Request, Response, ServiceRef, ServiceStatus, Traffic,
    },
    config::{Config, Protocol},
    dataplane::{
        keys::{Mac, Proto, format_mac},
        loader::Sizes,
        maps::Maps,
        reconcile::{Reconciler, ServiceId},
    },
    ha::Ha,
    health::{
        self,
        runner::{CheckSpec, HealthEvent, Runner},
    },
    metrics,
    services::Table,
};

/// A draining real's flow counts as ended after this long without a packet.
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct State {
    pub table: Table,
    pub maps: Maps,
    pub reconciler: Reconciler,
    sizes: Sizes,
    /// The reals whose MACs the neighbour task must resolve.
    wanted: watch::Sender<Vec<IpAddr>>,
    config_path: PathBuf,
    /// The health checks of the configuration in force, and where they report.
    checks: Runner,
    health_events: mpsc::Sender<HealthEvent>,
}

fn service_id(s: &ServiceRef) -> ServiceId {
    (s.vip, s.port, if s.udp { Proto::Udp } else { Proto::Tcp })
}

fn real_id(r: &RealRef) -> (IpAddr, u16) {
    (r.addr, r.port)
}

fn traffic(c: lb_common::Counters) -> Traffic {
    Traffic {
        packets: c.packets,
        bytes: c.bytes,
        new_flows: c.new_flows,
    }
}

impl State {
    /// The state for `config`, its services in the maps, its checks running.
    pub fn start(
        config: &Config,
        maps: Maps,
        reconciler: Reconciler,
        sizes: Sizes,
        wanted: watch::Sender<Vec<IpAddr>>,
        config_path: PathBuf,
        health_events: mpsc::Sender<HealthEvent>,
    ) -> Result<Self> {
        let mut state = Self {
            table: Table::from_config(config),
            maps,
            reconciler,
            sizes,
            wanted,
            config_path,
            checks: Runner::spawn(Vec::new(), health_events.clone()),
            health_events,
        };
        state.apply().context("filling the data plane")?;
        state.checks = Runner::spawn(state.check_specs(config), state.health_events.clone());
        Ok(state)
    }

    /// Brings the maps to the table's state.
    pub fn apply(&mut self) -> Result<()> {
        let writes = self.reconciler.set_services(self.table.specs())?;
        self.maps.apply(&writes)?;
        let addrs = self.reconciler.real_addresses();
        // Only a new set makes the neighbour task look again.
        self.wanted.send_if_modified(|wanted| {
            let changed = *wanted != addrs;
            if changed {
                *wanted = addrs;
            }
            changed
        });
        Ok(())
    }

    pub fn mac_changed(&mut self, addr: IpAddr, mac: Option<Mac>) {
        let applied = self
            .reconciler
            .set_mac(addr, mac)
            .map_err(anyhow::Error::from)
            .and_then(|writes| self.maps.apply(&writes));
        match (applied, mac) {
            (Err(e), _) => error!("updating the data plane for real {addr}: {e:#}"),
            (Ok(()), Some(m)) => info!("real {addr} is at {}: it takes traffic", format_mac(&m)),
            (Ok(()), None) => warn!("real {addr}: MAC unknown, it gets no traffic"),
        }
    }

    /// A health check's verdict: applied at once, logged with its reason, how
    /// long detection took and how long the maps took after the decision.
    pub fn health(&mut self, e: HealthEvent) {
        let rid = SocketAddr::new(e.real.0, e.real.1);
        let service = format!(
            "{} {}",
            e.service.2,
            SocketAddr::new(e.service.0, e.service.1)
        );
        if !self
            .table
            .set_health(&e.service, &e.real, e.up, e.weight, e.reason.clone())
        {
            return;
        }
        if let Err(err) = self.apply() {
            error!("real {rid} of {service}: updating the data plane: {err:#}");
            return;
        }
        let to_maps = e.decided_at.elapsed();
        let detection = e
            .detected_in
            .map(|d| format!(", detected in {d:.1?}"))
            .unwrap_or_default();
        let weight = e
            .weight
            .map(|w| format!(", weight {w}"))
            .unwrap_or_default();
        if e.up {
            info!(
                "real {rid} of {service}: UP{weight} ({}); maps updated {to_maps:.1?} after the decision",
                e.reason
            );
        } else {
            warn!(
                "real {rid} of {service}: DOWN ({}){detection}; maps updated {to_maps:.1?} after the decision",
                e.reason
            );
        }
        if let Some(s) = self.table.services.get(&e.service).and_then(|s| s.sorry()) {
            warn!("{service}: no real can take traffic, sorry server {s} stands in");
        }
    }

    /// Removes the reals a reload took out once their flows have ended.
    pub fn sweep_drained(&mut self) {
        let mut gone = Vec::new();
        for (sid, rid) in self.table.draining() {
            let Some(number) = self
                .reconciler
                .service_index(&sid)
                .and_then(|i| i.reals.iter().find(|(r, _)| *r == rid).map(|(_, n)| *n))
            else {
                continue;
            };
            match self.maps.live_flows(number, DRAIN_IDLE) {
                Ok(0) => gone.push((sid, rid)),
                Ok(_) => {}
                Err(e) => warn!("checking the flows of a draining real: {e:#}"),
            }
        }
        if gone.is_empty() {
            return;
        }
        for (sid, rid) in &gone {
            self.table.drained(sid, rid);
        }
        match self.apply() {
            Ok(()) => {
                for (sid, rid) in gone {
                    info!(
                        "real {} of {} {} drained: removed",
                        SocketAddr::new(rid.0, rid.1),
                        sid.2,
                        SocketAddr::new(sid.0, sid.1)
                    );
                }
            }
            Err(e) => error!("removing drained reals: {e:#}"),
        }
    }

    /// The health checks the table needs, each starting from the real's
    /// current state so a reload does not make it flap.
    fn check_specs(&self, config: &Config) -> Vec<CheckSpec> {
        let mut specs = Vec::new();
        for vs in &config.virtual_servers {
            let proto = match vs.protocol {
                Protocol::Tcp => Proto::Tcp,
                Protocol::Udp => Proto::Udp,
            };
            for real in &vs.reals {
                let Some(mut spec) = health::spec_for(vs, real, proto) else {
                    continue;
                };
                let current = self
                    .table
                    .services
                    .get(&spec.service)
                    .and_then(|s| s.reals.get(&spec.real));
                if let Some(r) = current {
                    spec.start_up = r.healthy;
                }
                specs.push(spec);
            }
        }
        specs
    }

    /// Re-reads the configuration, applies the difference and restarts the
    /// health checks; a refused configuration changes nothing. VRRP instances
    /// keep running as they are: changing them takes a restart.
    pub fn reload(&mut self) -> Result<String> {
        let config = load_config(&self.config_path)
            .context("reload refused, keeping the running configuration")?;
        let mut next = self.table.clone();
        let overridden = next.reload(&config);
        let previous = std::mem::replace(&mut self.table, next);
        if let Err(e) = self.apply() {
            self.table = previous;
            return Err(e.context("reload could not be applied, keeping the running configuration"));
        }
        for o in &overridden {
            warn!("reload: {o}");
        }
        let message = format!(
            "reloaded {}: {} services{}",
            self.config_path.display(),
            self.table.services.len(),
            if overridden.is_empty() {
                String::new()
            } else {
                format!("; {}", overridden.join("; "))
            }
        );
        info!("{message}");
        self.checks = Runner::spawn(self.check_specs(&config), self.health_events.clone());
        Ok(message)
    }

    pub fn answer(&mut self, request: Request, ha: &Ha) -> Response {
        let done = |message: String| Response::Done { message };
        let result = match request {
            Request::List => self.services().map(|services| Response::List {
                services,
                reasons: self.reasons(),
                flow_table_size: self.sizes.flows,
            }),
            Request::Status => self.services().map(|services| Response::Status {
                services,
                instances: serde_json::to_value(ha.status()).unwrap_or_default(),
                daemon: None,
                announcements: Vec::new(),
                sync: None,
            }),
            Request::Reload => self.reload().map(done),
            Request::Explain {
                udp,
                client,
                client_port,
                vip,
                port,
            } => {
                let proto = if udp { Proto::Udp } else { Proto::Tcp };
                explain::explain(self, proto, (client, client_port), (vip, port))
                    .map(|text| Response::Explain { text })
            }
            Request::Metrics => self.services().map(|services| Response::Metrics {
                text: metrics::render(&services, &self.reasons(), &ha.status()),
            }),
            Request::ZeroCounters => self
                .maps
                .zero_counters()
                .map(|()| done("counters zeroed".into())),
            change => self.change(change).map(done),
        };
        result.unwrap_or_else(|e| Response::Error {
            message: format!("{e:#}"),
        })
    }

    /// A runtime change to the table, applied at once; it holds until reload.
    fn change(&mut self, request: Request) -> Result<String> {
        let before = self.table.clone();
        let message = match request {
            Request::AddService {
                service,
                scheduler,
                persistence_timeout,
            } => {
                self.table
                    .add_service(service_id(&service), scheduler, persistence_timeout)?;
                "service added".to_string()
            }
            Request::EditService {
                service,
                scheduler,
                persistence_timeout,
            } => {
                self.table
                    .edit_service(&service_id(&service), scheduler, persistence_timeout)?;
                "service edited".to_string()
            }
            Request::DeleteService { service } => {
                self.table.delete_service(&service_id(&service))?;
                "service deleted".to_string()
            }
            Request::AddReal {
                service,
                real,
                weight,
            } => {
                self.table
                    .add_real(&service_id(&service), real_id(&real), weight)?;
                "real server added".to_string()
            }
            Request::SetWeight {
                service,
                real,
                weight,
            } => {
                self.table
                    .set_weight(&service_id(&service), &real_id(&real), weight)?;
                if weight == 0 {
                    "real server draining (weight 0)".to_string()
                } else {
                    format!("weight set to {weight}")
                }
            }
            Request::DeleteReal { service, real } => {
                self.table
                    .delete_real(&service_id(&service), &real_id(&real))?;
                "real server deleted".to_string()
            }
            Request::Clear => {
                self.table.clear();
                "every service cleared".to_string()
            }
            other => anyhow::bail!("unexpected request {other:?}"),
        };
        if let Err(e) = self.apply() {
            self.table = before;
            return Err(e);
        }
        info!("admin: {message}");
        Ok(format!("{message} (until the next reload)"))
    }

    fn reasons(&self) -> Vec<ReasonCount> {
        match self.maps.reason_counters() {
            Ok(r) => r
                .into_iter()
                .map(|(r, c)| ReasonCount {
                    reason: r.name().into(),
                    packets: c.packets,
                    bytes: c.bytes,
                })
                .collect(),
            Err(e) => {
                warn!("reading verdict counters: {e:#}");
                Vec::new()
            }
        }
    }

    fn services(&self) -> Result<Vec<ServiceStatus>> {
        let flows = self.maps.flow_counts()?;
        let mut out = Vec::new();
        for s in self.table.services.values() {
            let Some(index) = self.reconciler.service_index(&s.id()) else {
                continue;
            };
            let mut reals = Vec::new();
            for r in s.reals.values() {
                let number = index
                    .reals
                    .iter()
                    .find(|(rid, _)| *rid == (r.addr, r.port))
                    .map(|(_, i)| *i);
                let (traffic, (active, inactive)) = match number {
                    Some(i) => (
                        traffic(self.maps.real_counters(i)?),
                        flows.get(&i).copied().unwrap_or_default(),
                    ),
                    None => (Traffic::default(), (0, 0)),
                };
                let local = self
                    .checks
                    .local_errors()
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&(s.id(), (r.addr, r.port)))
                    .cloned();
                reals.push(RealStatus {
                    addr: r.addr,
                    port: r.port,
                    weight: r.weight(),
                    healthy: r.healthy,
                    inhibit_on_failure: r.inhibit_on_failure,
                    draining: r.draining,
                    last_check: r.last_check.clone(),
                    check_micros: self
                        .checks
                        .latencies()
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&(s.id(), (r.addr, r.port)))
                        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    local_errors: local.as_ref().map_or(0, |l| l.count),
                    last_local_error: local.map(|l| l.last),
                    mac: self.reconciler.mac(&r.addr).as_ref().map(format_mac),
                    active_flows: active,
                    inactive_flows: inactive,
                    traffic,
                });
            }
            out.push(ServiceStatus {
                protocol: s.proto.to_string(),
                vip: s.vip,
                port: s.port,
                scheduler: s.scheduler.clone(),
                persistence_timeout: s.persistence_timeout,
                traffic: traffic(self.maps.service_counters(index.id)?),
                reals,
            });
        }
        Ok(out)
    }
}
