//! `xdpvs adm`: ipvsadm's commands and options, against the running daemon.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, thread, time::Duration};

use anyhow::{Result, bail};
use clap::{ArgGroup, Args};
use xdpvs::api::{
    client::call,
    ipvsadm,
    protocol::{RealRef, Request, Response, ServiceRef, ServiceStatus},
};

use super::DEFAULT_SOCKET;

#[derive(Args)]
#[command(group(ArgGroup::new("command").required(true).args(
    ["list", "add_service", "edit_service", "delete_service", "add_server", "edit_server", "delete_server", "zero", "clear", "set"]
)))]
pub struct Adm {
    /// List the virtual server table.
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    list: bool,
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service")]
    add_service: bool,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service")]
    edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service")]
    delete_service: bool,
    /// Add a real server to a service.
    #[arg(short = 'a', long = "add-server")]
    add_server: bool,
    /// Edit a real server.
    #[arg(short = 'e', long = "edit-server")]
    edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server")]
    delete_server: bool,
    /// Zero the packet, byte and flow counters.
    #[arg(short = 'Z', long = "zero")]
    zero: bool,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear")]
    clear: bool,
    /// Idle timeouts in seconds for TCP, TCP after FIN/RST, and UDP flows
    /// (0 keeps a value).
    #[arg(long = "set", num_args = 3, value_names = ["TCP", "TCPFIN", "UDP"])]
    set: Option<Vec<u32>>,

    /// TCP service VIP:PORT.
    #[arg(short = 't', long = "tcp-service", conflicts_with = "udp_service")]
    tcp_service: Option<SocketAddr>,
    /// UDP service VIP:PORT.
    #[arg(short = 'u', long = "udp-service")]
    udp_service: Option<SocketAddr>,
    /// Real server RIP:PORT.
    #[arg(short = 'r', long = "real-server")]
    real_server: Option<SocketAddr>,
    /// Scheduler name (every one is served by weighted Maglev).
    #[arg(short = 's', long = "scheduler")]
    scheduler: Option<String>,
    /// Persistence in seconds (ipvsadm's default 300 when given without a value).
    #[arg(short = 'p', long = "persistent", num_args = 0..=1, default_missing_value = "300")]
    persistent: Option<u32>,
    /// Real server weight.
    #[arg(short = 'w', long = "weight")]
    weight: Option<u32>,
    /// Direct routing (the only forwarding xdpvs does; accepted for habit).
    #[arg(short = 'g', long = "gatewaying")]
    _gatewaying: bool,
    /// NAT forwarding: not supported.
    #[arg(short = 'm', long = "masquerading")]
    masquerading: bool,
    /// IPIP tunnelling: not supported.
    #[arg(short = 'i', long = "ipip")]
    ipip: bool,
    /// Numeric output (xdpvs never resolves names; accepted for habit).
    #[arg(short = 'n', long = "numeric")]
    _numeric: bool,
    /// With -L: packet and byte counters.
    #[arg(long, conflicts_with = "rate")]
    stats: bool,
    /// With -L: rates over one second.
    #[arg(long)]
    rate: bool,
    /// With -L: the idle timeouts, as ipvsadm prints them.
    #[arg(long, conflicts_with_all = ["stats", "rate"])]
    timeout: bool,
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

impl Adm {
    fn service(&self) -> Result<ServiceRef> {
        match (self.tcp_service, self.udp_service) {
            (Some(a), None) => Ok(ServiceRef {
                udp: false,
                vip: a.ip(),
                port: a.port(),
            }),
            (None, Some(a)) => Ok(ServiceRef {
                udp: true,
                vip: a.ip(),
                port: a.port(),
            }),
            _ => bail!("which service? give -t VIP:PORT or -u VIP:PORT"),
        }
    }

    fn real(&self) -> Result<RealRef> {
        match self.real_server {
            Some(r) => Ok(RealRef {
                addr: r.ip(),
                port: r.port(),
            }),
            None => bail!("which real server? give -r RIP:PORT"),
        }
    }
}

fn list(socket: &std::path::Path) -> Result<(Vec<ServiceStatus>, u32)> {
    match call(socket, &Request::List)? {
        Response::List {
            services,
            flow_table_size,
            ..
        } => Ok((services, flow_table_size)),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

pub fn run(a: Adm) -> Result<ExitCode> {
    if a.masquerading || a.ipip {
        bail!(
            "NAT (-m) and tunnelling (-i) are not supported: xdpvs forwards in direct-routing mode (-g)"
        );
    }
    if a.list && a.timeout {
        return match call(&a.socket, &Request::Timeouts)? {
            Response::Timeouts { tcp, tcpfin, udp } => {
                println!("Timeout (tcp tcpfin udp): {tcp} {tcpfin} {udp}");
                Ok(ExitCode::SUCCESS)
            }
            other => bail!("unexpected answer from the daemon: {other:?}"),
        };
    }
    if a.list {
        let (mut services, size) = list(&a.socket)?;
        if a.tcp_service.is_some() || a.udp_service.is_some() {
            let s = a.service()?;
            let proto = if s.udp { "UDP" } else { "TCP" };
            services.retain(|x| x.protocol == proto && x.vip == s.vip && x.port == s.port);
            if services.is_empty() {
                bail!("no such service");
            }
        }
        let text = if a.stats {
            ipvsadm::stats(&services, size)
        } else if a.rate {
            let before = services;
            let interval = Duration::from_secs(1);
            thread::sleep(interval);
            let (mut after, _) = list(&a.socket)?;
            after.retain(|x| {
                before
                    .iter()
                    .any(|b| (b.vip, b.port, &b.protocol) == (x.vip, x.port, &x.protocol))
            });
            ipvsadm::rate(&before, &after, interval, size)
        } else {
            ipvsadm::list(&services, size)
        };
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let request = if let Some(set) = &a.set {
        let &[tcp, tcpfin, udp] = set.as_slice() else {
            bail!("--set takes three values: TCP TCPFIN UDP")
        };
        Request::SetTimeouts { tcp, tcpfin, udp }
    } else if a.zero {
        Request::ZeroCounters
    } else if a.clear {
        Request::Clear
    } else if a.add_service {
        Request::AddService {
            service: a.service()?,
            scheduler: a.scheduler.clone().unwrap_or_else(|| "wlc".into()),
            persistence_timeout: a.persistent.unwrap_or(0),
        }
    } else if a.edit_service {
        Request::EditService {
            service: a.service()?,
            scheduler: a.scheduler.clone(),
            persistence_timeout: a.persistent,
        }
    } else if a.delete_service {
        Request::DeleteService {
            service: a.service()?,
        }
    } else if a.add_server {
        Request::AddReal {
            service: a.service()?,
            real: a.real()?,
            weight: a.weight.unwrap_or(1),
        }
    } else if a.edit_server {
        let Some(weight) = a.weight else {
            bail!("-e changes the weight: give -w WEIGHT")
        };
        Request::SetWeight {
            service: a.service()?,
            real: a.real()?,
            weight,
        }
    } else {
        Request::DeleteReal {
            service: a.service()?,
            real: a.real()?,
        }
    };
    match call(&a.socket, &request)? {
        Response::Done { message } => {
            eprintln!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}
