//! Prometheus text exposition (`--metrics ADDR`): per service and real
//! traffic, flows, health and weight; the data plane's verdicts by reason;
//! VRRP instances. The text is built by the daemon loop from its own state
//! (`render`), so a scrape sees one consistent moment.

use std::{fmt::Write as _, net::SocketAddr};

use anyhow::{Context as _, Result};
use log::{info, warn};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
    sync::{mpsc, oneshot},
};

use crate::{
    api::{
        protocol::{ReasonCount, Request, Response, ServiceStatus},
        server::ApiCall,
    },
    ha::InstanceStatus,
};

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(
    services: &[ServiceStatus],
    reasons: &[ReasonCount],
    instances: &[InstanceStatus],
) -> String {
    let mut out = String::new();
    let svc = |s: &ServiceStatus| {
        format!(
            "protocol=\"{}\",vip=\"{}\",port=\"{}\"",
            s.protocol, s.vip, s.port
        )
    };
    type Get = fn(&ServiceStatus) -> u64;
    let per_service: [(&str, &str, Get); 3] = [
        (
            "xdpvs_service_packets_total",
            "Packets forwarded for the service.",
            |s| s.traffic.packets,
        ),
        (
            "xdpvs_service_bytes_total",
            "Bytes forwarded for the service (frames).",
            |s| s.traffic.bytes,
        ),
        (
            "xdpvs_service_flows_total",
            "Flows the service placed on a real.",
            |s| s.traffic.new_flows,
        ),
    ];
    for (name, help, get) in per_service {
        family(&mut out, name, "counter", help);
        for s in services {
            let _ = writeln!(out, "{name}{{{}}} {}", svc(s), get(s));
        }
    }
    type RealGet = fn(&crate::api::protocol::RealStatus) -> u64;
    let per_real: [(&str, &str, &str, RealGet); 7] = [
        (
            "xdpvs_real_packets_total",
            "counter",
            "Packets forwarded to the real.",
            |r| r.traffic.packets,
        ),
        (
            "xdpvs_real_bytes_total",
            "counter",
            "Bytes forwarded to the real.",
            |r| r.traffic.bytes,
        ),
        (
            "xdpvs_real_flows_total",
            "counter",
            "Flows placed on the real.",
            |r| r.traffic.new_flows,
        ),
        (
            "xdpvs_real_active_flows",
            "gauge",
            "Flows in the flow table with no FIN/RST seen.",
            |r| r.active_flows,
        ),
        (
            "xdpvs_real_inactive_flows",
            "gauge",
            "Flows in the flow table that saw FIN or RST.",
            |r| r.inactive_flows,
        ),
        (
            "xdpvs_real_up",
            "gauge",
            "1 when the real's health checks pass.",
            |r| r.healthy as u64,
        ),
        ("xdpvs_real_weight", "gauge", "The weight in force.", |r| {
            u64::from(r.weight)
        }),
    ];
    for (name, kind, help, get) in per_real {
        family(&mut out, name, kind, help);
        for s in services {
            for r in &s.reals {
                let _ = writeln!(
                    out,
                    "{name}{{{},real=\"{}\"}} {}",
                    svc(s),
                    SocketAddr::new(r.addr, r.port),
                    get(r)
                );
            }
        }
    }
    family(
        &mut out,
        "xdpvs_real_check_duration_seconds",
        "gauge",
        "How long the real's last health check took.",
    );
    for s in services {
        for r in &s.reals {
            if let Some(us) = r.check_micros {
                let d = us as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "xdpvs_real_check_duration_seconds{{{},real=\"{}\"}} {d}",
                    svc(s),
                    SocketAddr::new(r.addr, r.port)
                );
            }
        }
    }
    family(
        &mut out,
        "xdpvs_verdict_packets_total",
        "counter",
        "Packets by the XDP program's verdict reason.",
    );
    for r in reasons {
        let _ = writeln!(
            out,
            "xdpvs_verdict_packets_total{{reason=\"{}\"}} {}",
            r.reason, r.packets
        );
    }
    family(
        &mut out,
        "xdpvs_verdict_bytes_total",
        "counter",
        "Bytes by the XDP program's verdict reason.",
    );
    for r in reasons {
        let _ = writeln!(
            out,
            "xdpvs_verdict_bytes_total{{reason=\"{}\"}} {}",
            r.reason, r.bytes
        );
    }
    family(
        &mut out,
        "xdpvs_vrrp_state",
        "gauge",
        "1 for the state the VRRP instance is in.",
    );
    for i in instances {
        for state in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let v = u8::from(i.state.eq_ignore_ascii_case(state));
            let _ = writeln!(
                out,
                "xdpvs_vrrp_state{{instance=\"{}\",state=\"{state}\"}} {v}",
                esc(&i.name)
            );
        }
    }
    type InstGet = fn(&InstanceStatus) -> u64;
    let per_instance: [(&str, &str, &str, InstGet); 5] = [
        (
            "xdpvs_vrrp_priority",
            "gauge",
            "Configured priority.",
            |i| u64::from(i.base_priority),
        ),
        (
            "xdpvs_vrrp_effective_priority",
            "gauge",
            "Priority after tracking.",
            |i| u64::from(i.effective_priority),
        ),
        (
            "xdpvs_vrrp_adverts_sent_total",
            "counter",
            "Adverts sent.",
            |i| i.adverts_sent,
        ),
        (
            "xdpvs_vrrp_adverts_received_total",
            "counter",
            "Valid adverts received.",
            |i| i.adverts_received,
        ),
        (
            "xdpvs_vrrp_transitions_total",
            "counter",
            "State changes.",
            |i| i.transitions,
        ),
    ];
    for (name, kind, help, get) in per_instance {
        family(&mut out, name, kind, help);
        for i in instances {
            let _ = writeln!(out, "{name}{{instance=\"{}\"}} {}", esc(&i.name), get(i));
        }
    }
    family(
        &mut out,
        "xdpvs_vrrp_bad_packets_total",
        "counter",
        "VRRP packets dropped, by reason.",
    );
    for i in instances {
        for (reason, n) in &i.bad_packets {
            let _ = writeln!(
                out,
                "xdpvs_vrrp_bad_packets_total{{instance=\"{}\",reason=\"{}\"}} {n}",
                esc(&i.name),
                esc(reason)
            );
        }
    }
    out
}

/// Serves `GET /metrics` on `addr` until the daemon ends.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("binding metrics on {addr}"))
}

/// Serves `listener` (bound here, or inherited from the daemon this one
/// upgraded) until the daemon ends.
pub fn serve(listener: std::net::TcpListener, calls: mpsc::Sender<ApiCall>) -> Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    if let Ok(addr) = listener.local_addr() {
        info!("metrics on http://{addr}/metrics");
    }
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut buf),
                )
                .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let wanted = buf[..n].starts_with(b"GET /metrics ");
                let (status, body) = if wanted {
                    let (tx, rx) = oneshot::channel();
                    match calls.send((Request::Metrics, tx)).await {
                        Ok(()) => match rx.await {
                            Ok(Response::Metrics { text }) => ("200 OK", text),
                            _ => (
                                "503 Service Unavailable",
                                "the daemon is stopping\n".to_string(),
                            ),
                        },
                        Err(_) => (
                            "503 Service Unavailable",
                            "the daemon is stopping\n".to_string(),
                        ),
                    }
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if let Err(e) = stream.write_all(format!("{head}{body}").as_bytes()).await {
                    warn!("metrics: {e}");
                }
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::protocol::{RealStatus, Traffic};

    #[test]
    fn text_exposition_names_and_labels() {
        let services = vec![ServiceStatus {
            protocol: "TCP".into(),
            vip: "10.0.0.100".parse().unwrap(),
            port: 80,
            scheduler: "wrr".into(),
            persistence_timeout: 0,
            traffic: Traffic {
                packets: 10,
                bytes: 1000,
                new_flows: 2,
            },
            reals: vec![RealStatus {
                addr: "10.0.0.11".parse().unwrap(),
                port: 80,
                weight: 3,
                healthy: true,
                inhibit_on_failure: false,
                draining: false,
                last_check: None,
                check_micros: None,
                mac: None,
                active_flows: 1,
                inactive_flows: 1,
                traffic: Traffic {
                    packets: 10,
                    bytes: 1000,
                    new_flows: 2,
                },
            }],
        }];
        let reasons = vec![ReasonCount {
            reason: "forwarded".into(),
            packets: 10,
            bytes: 1000,
        }];
        let text = render(&services, &reasons, &[]);
        for line in [
            "# TYPE xdpvs_service_packets_total counter",
            "xdpvs_service_packets_total{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\"} 10",
            "xdpvs_real_weight{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11:80\"} 3",
            "xdpvs_real_up{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11:80\"} 1",
            "xdpvs_verdict_packets_total{reason=\"forwarded\"} 10",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // IPv6 reals keep their port apart from the address.
        let mut v6 = services;
        v6[0].reals[0].addr = "2001:db8::11".parse().unwrap();
        let text = render(&v6, &reasons, &[]);
        assert!(text.contains("real=\"[2001:db8::11]:80\""), "{text}");
    }
}
