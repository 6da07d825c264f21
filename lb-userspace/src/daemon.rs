//! `xdpvs run`: loads the data plane, fills it from the configuration and
//! keeps it in step with the real servers' MACs until SIGINT or SIGTERM.
//!
//! One task owns the reconciler and the maps; everything else (neighbour
//! resolution, the admin socket) sends it events.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use log::{error, info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use crate::{
    api::{
        protocol::{ReasonCount, RealStatus, Request, Response, ServiceStatus, Traffic},
        server::{self, ApiCall},
    },
    config::{self, Config},
    dataplane::{
        keys::{Mac, Proto, format_mac},
        loader::{self, AttachMode, Sizes},
        maps::Maps,
        reconcile::{RealSpec, Reconciler, ServiceSpec},
    },
    neighbour,
};

pub struct RunArgs {
    pub config: PathBuf,
    pub interface: String,
    pub xdp_mode: AttachMode,
    pub socket: PathBuf,
    pub bpf_object: Option<PathBuf>,
}

/// What the daemon serves, with what it shows beside the maps' state.
struct Service {
    spec: ServiceSpec,
    scheduler: String,
}

pub fn services_of(config: &Config) -> Vec<(ServiceSpec, String)> {
    config
        .virtual_servers
        .iter()
        .map(|vs| {
            let spec = ServiceSpec {
                vip: vs.addr,
                port: vs.port,
                proto: match vs.protocol {
                    config::Protocol::Tcp => Proto::Tcp,
                    config::Protocol::Udp => Proto::Udp,
                },
                persist_timeout_s: vs.persistence_timeout,
                reals: vs
                    .reals
                    .iter()
                    .map(|r| RealSpec { addr: r.addr, port: r.port, weight: r.weight, healthy: true })
                    .collect(),
            };
            (spec, vs.scheduler.clone())
        })
        .collect()
}

fn load_config(path: &Path) -> Result<Config> {
    match config::load(path) {
        Ok(loaded) => {
            for d in &loaded.diagnostics {
                warn!("{d}");
            }
            Ok(loaded.config)
        }
        Err(e) => bail!("{path}: configuration refused:\n{e}", path = path.display()),
    }
}

fn object(args: &RunArgs) -> Result<Vec<u8>> {
    match (&args.bpf_object, loader::embedded_object()) {
        (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
        (None, Some(bytes)) => Ok(bytes.to_vec()),
        (None, None) => bail!(
            "this xdpvs was built without its XDP program: build it with `cargo xtask build`, \
             or pass --bpf-object FILE"
        ),
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let services: Vec<Service> = services_of(&config)
        .into_iter()
        .map(|(spec, scheduler)| Service { spec, scheduler })
        .collect();
    for s in &services {
        info!(
            "service {} {}:{}: lb_algo {} is served by weighted Maglev consistent hashing",
            s.spec.proto, s.spec.vip, s.spec.port, s.scheduler
        );
    }
    let sizes = Sizes::default();
    let mut ebpf = loader::load(&object(&args)?, sizes)?;
    loader::attach(&mut ebpf, &args.interface, args.xdp_mode)?;
    let mut maps = Maps::new(&mut ebpf)?;
    let mut reconciler = Reconciler::new(sizes.services, sizes.reals);
    maps.apply(&reconciler.set_services(services.iter().map(|s| s.spec.clone()).collect())?)?;
    // VRRP starts once XDP forwards, so a new master serves at once.
    let ha = crate::ha::Ha::start(&config).await?;

    let (wanted_tx, wanted_rx) = watch::channel(reconciler.real_addresses());
    let (mac_tx, mut macs) = mpsc::channel(256);
    let interface = args.interface.clone();
    tokio::spawn(async move {
        if let Err(e) = neighbour::resolve(interface, wanted_rx, mac_tx).await {
            error!("neighbour resolution stopped: {e:#}");
        }
    });
    let (api_tx, mut api) = mpsc::channel::<ApiCall>(16);
    server::spawn(&args.socket, api_tx)?;

    let mut state = State { services, maps, reconciler, macs: Default::default(), sizes };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    info!("xdpvs running on {}; admin socket {}", args.interface, args.socket.display());
    loop {
        tokio::select! {
            Some((addr, mac)) = macs.recv() => state.mac_changed(addr, mac),
            Some((request, reply)) = api.recv() => {
                let _ = reply.send(state.answer(request));
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    // Handover first: a stopping master keeps its VIPs, so XDP keeps
    // forwarding until the new master has spoken.
    ha.shutdown().await;
    info!("stopping: detaching XDP from {}", args.interface);
    drop(wanted_tx);
    drop(ebpf);
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

struct State {
    services: Vec<Service>,
    maps: Maps,
    reconciler: Reconciler,
    macs: std::collections::HashMap<IpAddr, Mac>,
    sizes: Sizes,
}

impl State {
    fn mac_changed(&mut self, addr: IpAddr, mac: Option<Mac>) {
        match mac {
            Some(m) => self.macs.insert(addr, m),
            None => self.macs.remove(&addr),
        };
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

    fn answer(&self, request: Request) -> Response {
        match request {
            Request::List => match self.list() {
                Ok(r) => r,
                Err(e) => Response::Error { message: format!("{e:#}") },
            },
        }
    }

    fn list(&self) -> Result<Response> {
        let flows = self.maps.flow_counts()?;
        let mut out = Vec::new();
        for s in &self.services {
            let id = (s.spec.vip, s.spec.port, s.spec.proto);
            let Some(index) = self.reconciler.service_index(&id) else { continue };
            let mut reals = Vec::new();
            for r in &s.spec.reals {
                let number = index.reals.iter().find(|(rid, _)| *rid == (r.addr, r.port)).map(|(_, i)| *i);
                let (traffic, (active, inactive)) = match number {
                    Some(i) => (traffic(self.maps.real_counters(i)?), flows.get(&i).copied().unwrap_or_default()),
                    None => (Traffic::default(), (0, 0)),
                };
                reals.push(RealStatus {
                    addr: r.addr,
                    port: r.port,
                    weight: r.weight,
                    healthy: r.healthy,
                    mac: self.macs.get(&r.addr).map(format_mac),
                    active_flows: active,
                    inactive_flows: inactive,
                    traffic,
                });
            }
            out.push(ServiceStatus {
                protocol: s.spec.proto.to_string(),
                vip: s.spec.vip,
                port: s.spec.port,
                scheduler: s.scheduler.clone(),
                persistence_timeout: s.spec.persist_timeout_s,
                traffic: traffic(self.maps.service_counters(index.id)?),
                reals,
            });
        }
        let reasons = self
            .maps
            .reason_counters()?
            .into_iter()
            .map(|(r, c)| ReasonCount { reason: r.name().into(), packets: c.packets, bytes: c.bytes })
            .collect();
        Ok(Response::List { services: out, reasons, flow_table_size: self.sizes.flows })
    }
}

fn traffic(c: lb_common::Counters) -> Traffic {
    Traffic { packets: c.packets, bytes: c.bytes, new_flows: c.new_flows }
}
