//! `xdpvs adm`: ipvsadm's commands and options, against the running daemon.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    thread,
    time::Duration,
};

use anyhow::{Result, bail};
use clap::{ArgGroup, Args};
use xdpvs::{
    api::{
        client::call,
        ipvsadm,
        protocol::{RealRef, Request, Response, ServiceRef, ServiceStatus},
    },
    config::SCHEDULERS,
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
    /// Zero the packet and byte counters (with -t/-u, of that service and
    /// its real servers only).
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
    /// Real server RIP[:PORT] ([RIP6]:PORT); the port is the service's, as
    /// direct routing keeps it.
    #[arg(short = 'r', long = "real-server", value_parser = real_address)]
    real_server: Option<(IpAddr, Option<u16>)>,
    /// Scheduler name, one of IPVS's (every one is served by weighted Maglev).
    #[arg(short = 's', long = "scheduler", value_parser = scheduler)]
    scheduler: Option<String>,
    /// Persistence in seconds (ipvsadm's default 300 when given without a value).
    #[arg(short = 'p', long = "persistent", num_args = 0..=1, default_missing_value = "300")]
    persistent: Option<u32>,
    /// Real server weight, 0 to 65535 as ipvsadm's.
    #[arg(short = 'w', long = "weight", value_parser = clap::value_parser!(u32).range(0..=65535))]
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

    /// `-t`/`-u` when given, for a command that otherwise takes the whole
    /// table.
    fn service_if_given(&self) -> Result<Option<ServiceRef>> {
        if self.tcp_service.is_none() && self.udp_service.is_none() {
            return Ok(None);
        }
        self.service().map(Some)
    }

    /// The real server of `-r`, on the service's port (ipvsadm's rule for
    /// direct routing: the real answers on the port the client asked for).
    fn real(&self) -> Result<RealRef> {
        let service = self.service()?;
        let Some((addr, port)) = self.real_server else {
            bail!("which real server? give -r RIP[:PORT]")
        };
        if addr.is_ipv4() != service.vip.is_ipv4() {
            bail!(
                "-r {addr}: not of the service's address family (only tunnelled reals may be, \
                 and xdpvs forwards by direct routing)"
            );
        }
        if let Some(p) = port.filter(|p| *p != 0 && *p != service.port) {
            eprintln!(
                "xdpvs: -r {}: direct routing keeps the service's port {}: the real is {}",
                SocketAddr::new(addr, p),
                service.port,
                SocketAddr::new(addr, service.port)
            );
        }
        Ok(RealRef {
            addr,
            port: service.port,
        })
    }
}

/// The daemon request for a command other than a listing.
fn request(a: &Adm) -> Result<Request> {
    Ok(if let Some(set) = &a.set {
        let &[tcp, tcpfin, udp] = set.as_slice() else {
            bail!("--set takes three values: TCP TCPFIN UDP")
        };
        Request::SetTimeouts { tcp, tcpfin, udp }
    } else if a.zero {
        match a.service_if_given()? {
            Some(service) => Request::ZeroService { service },
            None => Request::ZeroCounters,
        }
    } else if a.clear {
        Request::Clear
    } else if a.add_service {
        Request::AddService {
            service: a.service()?,
            scheduler: a.scheduler.clone().unwrap_or_else(|| "wlc".into()),
            persistence_timeout: a.persistent.unwrap_or(0),
        }
    } else if a.edit_service {
        // ipvsadm -E replaces the whole service: no -s is wlc, no -p no
        // persistence.
        Request::EditService {
            service: a.service()?,
            scheduler: Some(a.scheduler.clone().unwrap_or_else(|| "wlc".into())),
            persistence_timeout: Some(a.persistent.unwrap_or(0)),
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
    })
}

/// `-r`'s RIP, RIP:PORT, [RIP6]:PORT or a bare IPv6 address.
fn real_address(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok((a.ip(), Some(a.port())));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| (ip, None))
        .map_err(|_| format!("{text:?} is not RIP, RIP:PORT or [RIP6]:PORT"))
}

/// `-s`: IPVS's scheduler names, as ipvsadm refuses any other.
fn scheduler(name: &str) -> Result<String, String> {
    if SCHEDULERS.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "scheduler not found: {name} (IPVS's are {})",
            SCHEDULERS.join(", ")
        ))
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
        ipvsadm::sort(&mut services);
        // ipvsadm prints its version line only for the whole table.
        let mut size = Some(size);
        if let Some(s) = a.service_if_given()? {
            let proto = if s.udp { "UDP" } else { "TCP" };
            services.retain(|x| x.protocol == proto && x.vip == s.vip && x.port == s.port);
            if services.is_empty() {
                bail!("no such service");
            }
            size = None;
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
    let request = request(&a)?;
    match call(&a.socket, &request)? {
        Response::Done { message } => {
            eprintln!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        adm: Adm,
    }

    fn adm(args: &[&str]) -> Result<Adm, clap::Error> {
        Cli::try_parse_from(std::iter::once("adm").chain(args.iter().copied())).map(|c| c.adm)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_real_takes_the_services_port_as_ipvsadm_gives_it() {
        let port_of = |args: &[&str]| adm(args).unwrap().real().unwrap();
        let want = RealRef {
            addr: ip("10.0.0.11"),
            port: 80,
        };
        for r in ["10.0.0.11", "10.0.0.11:80", "10.0.0.11:0", "10.0.0.11:8080"] {
            assert_eq!(
                port_of(&["-a", "-t", "10.0.0.1:80", "-r", r, "-g"]),
                want,
                "{r}"
            );
        }
        let v6 = port_of(&["-a", "-t", "[2001:db8::1]:443", "-r", "2001:db8::11"]);
        assert_eq!((v6.addr, v6.port), (ip("2001:db8::11"), 443));
        let mixed = adm(&["-a", "-t", "[2001:db8::1]:443", "-r", "10.0.0.11"]).unwrap();
        assert!(
            mixed
                .real()
                .unwrap_err()
                .to_string()
                .contains("address family")
        );
    }

    #[test]
    fn schedulers_and_weights_are_refused_as_ipvsadm_refuses_them() {
        let e = adm(&["-A", "-t", "10.0.0.1:80", "-s", "wrrr"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("scheduler not found: wrrr"), "{e}");
        assert!(adm(&["-A", "-t", "10.0.0.1:80", "-s", "mh"]).is_ok());
        assert!(adm(&["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.11", "-w", "65536"]).is_err());
        assert!(adm(&["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.11", "-w", "65535"]).is_ok());
    }

    #[test]
    fn zero_takes_one_service_or_all() {
        let zero = |args: &[&str]| request(&adm(args).unwrap()).unwrap();
        assert_eq!(zero(&["-Z"]), Request::ZeroCounters);
        assert_eq!(
            zero(&["-Z", "-u", "10.0.0.1:53"]),
            Request::ZeroService {
                service: ServiceRef {
                    udp: true,
                    vip: ip("10.0.0.1"),
                    port: 53,
                }
            }
        );
    }

    #[test]
    fn edit_replaces_the_whole_service_as_ipvsadm_does() {
        let edit = |args: &[&str]| match request(&adm(args).unwrap()).unwrap() {
            Request::EditService {
                scheduler,
                persistence_timeout,
                ..
            } => (scheduler, persistence_timeout),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            edit(&["-E", "-t", "10.0.0.1:80", "-s", "sh"]),
            (Some("sh".into()), Some(0)),
            "no -p: persistence off"
        );
        assert_eq!(
            edit(&["-E", "-t", "10.0.0.1:80", "-p"]),
            (Some("wlc".into()), Some(300)),
            "no -s: wlc; -p alone: 300 s"
        );
    }
}
