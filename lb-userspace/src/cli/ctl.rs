//! `xdpvs ctl`: status, drain, weight, reload and explain.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use xdpvs::announce::VipStatus;
use xdpvs::api::{
    client::{call, call_waiting},
    protocol::{DaemonInfo, FlowScanStatus, RealRef, Request, Response, ServiceRef, ServiceStatus},
};

use super::DEFAULT_SOCKET;

#[derive(Args)]
pub struct Ctl {
    #[command(subcommand)]
    command: CtlCommand,
    #[arg(long, default_value = DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Services, reals with health and last check, VRRP instances.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Weight 0 for a real: no new flows, existing flows continue.
    Drain {
        service: SocketAddr,
        real: SocketAddr,
        #[arg(long)]
        udp: bool,
    },
    /// Set a real's weight until the next reload.
    Weight {
        service: SocketAddr,
        real: SocketAddr,
        weight: u32,
        #[arg(long)]
        udp: bool,
    },
    /// Re-read the configuration and apply the difference.
    Reload,
    /// Replace the daemon with the binary now at the path it was started
    /// from, same arguments, no gap; exits non-zero (and the daemon runs on)
    /// when the new binary cannot take over.
    Upgrade,
    /// Which real a flow goes to now, and why: `explain tcp CLIENT:PORT VIP:PORT`.
    Explain {
        proto: String,
        client: SocketAddr,
        vip: SocketAddr,
    },
}

fn service(addr: SocketAddr, udp: bool) -> ServiceRef {
    ServiceRef {
        udp,
        vip: addr.ip(),
        port: addr.port(),
    }
}

fn real(addr: SocketAddr) -> RealRef {
    RealRef {
        addr: addr.ip(),
        port: addr.port(),
    }
}

pub fn run(c: Ctl) -> Result<ExitCode> {
    let request = match c.command {
        CtlCommand::Status { json } => {
            let Response::Status {
                services,
                instances,
                daemon,
                announcements,
                sync,
                flow_scan,
                capacity,
            } = call(&c.socket, &Request::Status)?
            else {
                bail!("unexpected answer from the daemon");
            };
            if json {
                let all = serde_json::json!({
                    "daemon": daemon,
                    "services": services,
                    "vrrp_instances": instances,
                    "announcements": announcements,
                    "sync": sync,
                    "flow_scan": flow_scan,
                    "capacity": capacity,
                });
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                if let Some(d) = &daemon {
                    println!("{}", daemon_line(d));
                }
                print!("{}", status_text(&services, &instances, flow_scan.as_ref()));
                print!("{}", announcements_text(&announcements));
                if let Some(c) = capacity {
                    println!(
                        "tables: {} services, {} real servers, {} flows",
                        c.services, c.reals, c.flows
                    );
                }
                if let Some(s) = sync {
                    println!(
                        "flow sync with {:?}: {}, entries sent {} received {} inserted {}, datagrams refused {}",
                        s.peers,
                        if s.ready {
                            "ready"
                        } else {
                            "learning the peers' flows"
                        },
                        s.entries_sent,
                        s.entries_received,
                        s.entries_inserted,
                        s.datagrams_refused
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        CtlCommand::Upgrade => {
            // The daemon answers once the new process has taken over.
            let wait = std::time::Duration::from_secs(60);
            match call_waiting(&c.socket, &Request::Upgrade, wait)? {
                Response::Done { message } => println!("{message}"),
                other => bail!("unexpected answer from the daemon: {other:?}"),
            }
            return Ok(ExitCode::SUCCESS);
        }
        CtlCommand::Drain {
            service: s,
            real: r,
            udp,
        } => Request::SetWeight {
            service: service(s, udp),
            real: real(r),
            weight: 0,
        },
        CtlCommand::Weight {
            service: s,
            real: r,
            weight,
            udp,
        } => Request::SetWeight {
            service: service(s, udp),
            real: real(r),
            weight,
        },
        CtlCommand::Reload => Request::Reload,
        CtlCommand::Explain { proto, client, vip } => {
            let udp = match proto.to_ascii_lowercase().as_str() {
                "tcp" => false,
                "udp" => true,
                other => bail!("protocol {other}: expected tcp or udp"),
            };
            Request::Explain {
                udp,
                client: client.ip(),
                client_port: client.port(),
                vip: vip.ip(),
                port: vip.port(),
            }
        }
    };
    match call(&c.socket, &request)? {
        Response::Done { message } | Response::Explain { text: message } => println!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn daemon_line(d: &DaemonInfo) -> String {
    format!(
        "xdpvs {} pid {} started {} ({})",
        d.version,
        d.pid,
        utc(d.started_unix),
        d.exe
    )
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (civil-from-days,
/// proleptic Gregorian).
fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn status_text(
    services: &[ServiceStatus],
    instances: &serde_json::Value,
    flow_scan: Option<&FlowScanStatus>,
) -> String {
    let mut out = match flow_scan {
        Some(f) => format!(
            "flow table: {} entries, counted {:.1} s ago (the scan took {} ms)\n",
            f.entries,
            f.age_ms as f64 / 1000.0,
            f.took_ms
        ),
        None => "flow table: not counted yet (flows show as 0)\n".to_string(),
    };
    for s in services {
        out.push_str(&format!(
            "{} {} ({}",
            s.protocol,
            SocketAddr::new(s.vip, s.port),
            s.scheduler
        ));
        if s.persistence_timeout > 0 {
            out.push_str(&format!(", persistent {}s", s.persistence_timeout));
        }
        let q = &s.quorum;
        out.push_str(&format!(
            ") quorum {}: live weight {}, quorum {}",
            if q.up { "UP" } else { "DOWN" },
            q.live_weight,
            q.quorum
        ));
        if q.hysteresis > 0 {
            out.push_str(&format!(" ± {}", q.hysteresis));
        }
        out.push('\n');
        for r in &s.reals {
            out.push_str(&format!(
                "  {}  {}  weight {}  mac {}  flows {}/{}  last check: {}\n",
                SocketAddr::new(r.addr, r.port),
                match (r.healthy, r.draining) {
                    (_, true) => "DRAINING",
                    (true, false) => "UP      ",
                    (false, false) => "DOWN    ",
                },
                r.weight,
                r.mac.as_deref().unwrap_or("unknown"),
                r.active_flows,
                r.inactive_flows,
                r.last_check.as_deref().unwrap_or("-"),
            ));
            if let Some(last) = &r.last_local_error {
                out.push_str(&format!(
                    "    local check errors: {} (last: {last})\n",
                    r.local_errors
                ));
            }
        }
    }
    for i in instances.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "VRRP {} on {} vrid {}: {} priority {} (base {}), master {}, adverts sent {} received {}\n",
            i["name"].as_str().unwrap_or("?"),
            i["interface"].as_str().unwrap_or("?"),
            i["vrid"],
            i["state"].as_str().unwrap_or("?"),
            i["effective_priority"],
            i["base_priority"],
            i["master"].as_str().unwrap_or("-"),
            i["adverts_sent"],
            i["adverts_received"],
        ));
    }
    out
}

fn announcements_text(announcements: &[VipStatus]) -> String {
    announcements
        .iter()
        .map(|a| {
            let error = a
                .error
                .as_ref()
                .map(|e| format!(" (kernel: {e})"))
                .unwrap_or_default();
            format!(
                "VIP {}: {} ({}){error}\n",
                a.vip,
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                },
                a.reason
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn start_time_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_124_245), "2026-12-01 11:24:05 UTC");
    }
}
