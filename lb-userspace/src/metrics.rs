//! Prometheus text exposition (`--metrics ADDR`): per service and real
//! traffic, flows, health and weight; the data plane's verdicts by reason;
//! VRRP instances. The text is built by the daemon loop from its own state
//! (`render`), so a scrape sees one consistent moment; hyper serves it,
//! with a connection cap, header and connection timeouts and a head size
//! limit, and a scrape waits for the loop a bounded time (then 503).

use std::{
    fmt::Write as _,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{StatusCode, http, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::info;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc, oneshot},
};

use crate::{
    accept::Backoff,
    api::{
        protocol::{FlowScanStatus, ReasonCount, Request, Response, ServiceStatus},
        server::ApiCall,
    },
    ha::InstanceStatus,
};

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
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
    flow_scan: Option<&FlowScanStatus>,
) -> String {
    let mut out = String::new();
    // The flow gauges below come from the last scan of the flow table.
    if let Some(f) = flow_scan {
        let per_scan = [
            (
                "xdpvs_flow_table_entries",
                "Entries in the flow table at the last scan.",
                f.entries as f64,
            ),
            (
                "xdpvs_flow_scan_age_seconds",
                "Since the last flow-table scan began (the flow gauges are this old).",
                f.age_ms as f64 / 1e3,
            ),
            (
                "xdpvs_flow_scan_duration_seconds",
                "How long the last flow-table scan took.",
                f.took_ms as f64 / 1e3,
            ),
        ];
        for (name, help, value) in per_scan {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    let svc = |s: &ServiceStatus| {
        format!(
            "protocol=\"{}\",vip=\"{}\",port=\"{}\"",
            s.protocol, s.vip, s.port
        )
    };
    type Get = fn(&ServiceStatus) -> u64;
    let per_service: [(&str, &str, &str, Get); 5] = [
        (
            "xdpvs_service_packets_total",
            "counter",
            "Packets forwarded for the service.",
            |s| s.traffic.packets,
        ),
        (
            "xdpvs_service_bytes_total",
            "counter",
            "Bytes forwarded for the service (frames).",
            |s| s.traffic.bytes,
        ),
        (
            "xdpvs_service_flows_total",
            "counter",
            "Flows the service placed on a real.",
            |s| s.traffic.new_flows,
        ),
        (
            "xdpvs_service_quorum_up",
            "gauge",
            "1 while the healthy reals' weights reach the service's quorum.",
            |s| u64::from(s.quorum.up),
        ),
        (
            "xdpvs_service_live_weight",
            "gauge",
            "The sum of the weights of the service's healthy reals.",
            |s| s.quorum.live_weight,
        ),
    ];
    for (name, kind, help, get) in per_service {
        family(&mut out, name, kind, help);
        for s in services {
            let _ = writeln!(out, "{name}{{{}}} {}", svc(s), get(s));
        }
    }
    type RealGet = fn(&crate::api::protocol::RealStatus) -> u64;
    let per_real: [(&str, &str, &str, RealGet); 8] = [
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
        (
            "xdpvs_check_local_errors_total",
            "counter",
            "Check attempts that could not run for want of the daemon's own resources \
             (descriptors, memory, processes); never counted against the real.",
            |r| r.local_errors,
        ),
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
    family(
        &mut out,
        "xdpvs_alert_mails_total",
        "counter",
        "smtp_alert mails by result: sent, failed (refused, unreachable or timed out) or dropped (queue full).",
    );
    for (result, n) in crate::alert::counts() {
        let _ = writeln!(out, "xdpvs_alert_mails_total{{result=\"{result}\"}} {n}");
    }
    out
}

/// What the metrics server allows: set once, at start.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; the rest wait in the kernel's backlog,
    /// costing the daemon no descriptor (its health checks keep theirs).
    pub max_connections: usize,
    /// A request's head must arrive within this.
    pub header_timeout: Duration,
    /// A whole connection (request and answer) lasts at most this.
    pub connection_timeout: Duration,
    /// A request head may be this large (hyper's minimum is 8 KiB).
    pub max_head: usize,
    /// A scrape waits this long for the control loop, then answers 503.
    pub render_timeout: Duration,
}

impl Limits {
    /// The defaults, with at most 1/16 of `open_files` for connections.
    pub fn within(open_files: u64) -> Self {
        Self {
            max_connections: crate::accept::connection_cap(open_files, 16, 64),
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(15),
            max_head: 16 * 1024,
            render_timeout: Duration::from_secs(2),
        }
    }
}

/// Binds the metrics listener (a separate step, so a listener can also be
/// handed over ready-made).
pub fn bind_metrics(addr: SocketAddr) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("binding metrics on {addr}"))
}

/// The text of the latest render and when it was asked for: scrapes that
/// arrive while one is being rendered share it, so a flood of scrapes asks
/// the control loop for one render at a time.
struct Renders {
    calls: mpsc::Sender<ApiCall>,
    latest: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
    timeout: Duration,
}

impl Renders {
    /// The text for a scrape that arrived at `arrived`: a render asked for
    /// after that moment, or `None` if the control loop did not answer in time.
    async fn text(&self, arrived: Instant) -> Option<Bytes> {
        tokio::time::timeout_at((arrived + self.timeout).into(), async {
            let mut latest = self.latest.lock().await;
            if let Some((asked, text)) = &*latest
                && *asked >= arrived
            {
                return Some(text.clone());
            }
            let asked = Instant::now();
            let (tx, rx) = oneshot::channel();
            self.calls.send((Request::Metrics, tx)).await.ok()?;
            let Ok(Response::Metrics { text }) = rx.await else {
                return None;
            };
            let text = Bytes::from(text);
            *latest = Some((asked, text.clone()));
            Some(text)
        })
        .await
        .ok()
        .flatten()
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn handle(
    request: http::Request<hyper::body::Incoming>,
    renders: Arc<Renders>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    let arrived = Instant::now();
    let head = request.method() == http::Method::HEAD;
    if request.uri().path() != "/metrics" {
        return Ok(answer(StatusCode::NOT_FOUND, "try /metrics\n"));
    }
    if !head && request.method() != http::Method::GET {
        let mut r = answer(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return Ok(r);
    }
    let has_body = request
        .headers()
        .contains_key(http::header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v != "0");
    if has_body {
        return Ok(answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a scrape has no body\n",
        ));
    }
    Ok(match renders.text(arrived).await {
        Some(text) if head => {
            let mut r = answer(StatusCode::OK, Bytes::new());
            r.headers_mut()
                .insert(http::header::CONTENT_LENGTH, text.len().into());
            r
        }
        Some(text) => answer(StatusCode::OK, text),
        None => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the daemon's control loop did not answer within {:?}\n",
                renders.timeout
            ),
        ),
    })
}

/// Serves `GET /metrics` (any query string) on `listener` until the daemon ends.
pub fn serve(
    listener: std::net::TcpListener,
    calls: mpsc::Sender<ApiCall>,
    limits: Limits,
) -> Result<()> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = TcpListener::from_std(listener)?;
    info!(
        "metrics on http://{addr}/metrics (at most {} connections)",
        limits.max_connections
    );
    let renders = Arc::new(Renders {
        calls,
        latest: tokio::sync::Mutex::new(None),
        timeout: limits.render_timeout,
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head)
        .keep_alive(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            // A slot first: past the cap, connections wait unaccepted.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    backoff.wait("metrics", &e).await;
                    continue;
                }
            };
            backoff.reset();
            let renders = renders.clone();
            let connection = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |r| handle(r, renders.clone())),
            );
            let lifetime = limits.connection_timeout;
            tokio::spawn(async move {
                let _slot = slot;
                // Errors are the client's (bad requests, hang-ups): hyper
                // has answered what it could.
                let _ = tokio::time::timeout(lifetime, connection).await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::api::protocol::{QuorumStatus, RealStatus, Traffic};

    /// A metrics server on a free port whose control loop renders "up 1"
    /// (or never answers, when `wedged`).
    fn server(limits: Limits, wedged: bool) -> SocketAddr {
        let listener = bind_metrics("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<ApiCall>(4);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((_, reply)) = rx.recv().await {
                if wedged {
                    held.push(reply);
                } else {
                    let _ = reply.send(Response::Metrics {
                        text: "up 1\n".into(),
                    });
                }
            }
        });
        serve(listener, tx, limits).unwrap();
        addr
    }

    /// Sends `request` on a fresh connection and reads until the server closes.
    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text))
            .await
            .expect("answered within 5 s")
            .expect("read");
        text
    }

    fn status(text: &str) -> &str {
        text.lines().next().unwrap_or_default()
    }

    #[tokio::test]
    async fn scrapes_with_query_strings_and_refusals() {
        let addr = server(Limits::default(), false);
        let ok = get(addr, "GET /metrics?x=y HTTP/1.1\r\nHost: lb\r\n\r\n").await;
        assert_eq!(status(&ok), "HTTP/1.1 200 OK");
        assert!(ok.ends_with("\r\n\r\nup 1\n"), "{ok}");
        assert!(
            ok.contains("content-type: text/plain; version=0.0.4"),
            "{ok}"
        );
        let head = get(addr, "HEAD /metrics HTTP/1.1\r\nHost: lb\r\n\r\n").await;
        assert!(
            head.contains("content-length: 5\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let other = get(addr, "GET / HTTP/1.1\r\nHost: lb\r\n\r\n").await;
        assert_eq!(status(&other), "HTTP/1.1 404 Not Found");
        let post = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: lb\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(status(&post), "HTTP/1.1 405 Method Not Allowed");
        let body = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: lb\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await;
        assert_eq!(status(&body), "HTTP/1.1 413 Payload Too Large");
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nHost: lb\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        assert_eq!(
            status(&get(addr, &huge).await),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[tokio::test]
    async fn a_wedged_control_loop_answers_503_in_bounded_time() {
        let limits = Limits {
            render_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let addr = server(limits, true);
        let start = Instant::now();
        let text = get(addr, "GET /metrics HTTP/1.1\r\nHost: lb\r\n\r\n").await;
        let took = start.elapsed();
        assert_eq!(status(&text), "HTTP/1.1 503 Service Unavailable");
        assert!(
            text.ends_with("the daemon's control loop did not answer within 200ms\n"),
            "{text}"
        );
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn idle_connections_are_capped_and_timed_out() {
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_millis(400),
            ..Limits::default()
        };
        let addr = server(limits, false);
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // Past the cap a scrape waits unaccepted until an idle one is dropped
        // at its header timeout.
        let start = Instant::now();
        let text = get(addr, "GET /metrics HTTP/1.1\r\nHost: lb\r\n\r\n").await;
        let took = start.elapsed();
        assert_eq!(status(&text), "HTTP/1.1 200 OK");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // The idle ones were closed by the server.
        for mut s in idle {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "an idle connection was kept open");
        }
    }

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
            quorum: QuorumStatus {
                up: false,
                live_weight: 3,
                quorum: 4,
                hysteresis: 1,
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
                local_errors: 4,
                last_local_error: Some("Too many open files".into()),
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
        let scan = FlowScanStatus {
            entries: 2,
            age_ms: 1500,
            took_ms: 3,
        };
        let text = render(&services, &reasons, &[], Some(&scan));
        for line in [
            "xdpvs_flow_table_entries 2",
            "xdpvs_flow_scan_age_seconds 1.5",
            "# TYPE xdpvs_service_packets_total counter",
            "xdpvs_service_packets_total{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\"} 10",
            "xdpvs_real_weight{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11:80\"} 3",
            "xdpvs_real_up{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11:80\"} 1",
            "xdpvs_service_quorum_up{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\"} 0",
            "xdpvs_service_live_weight{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\"} 3",
            "xdpvs_verdict_packets_total{reason=\"forwarded\"} 10",
            "xdpvs_check_local_errors_total{protocol=\"TCP\",vip=\"10.0.0.100\",port=\"80\",real=\"10.0.0.11:80\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // IPv6 reals keep their port apart from the address.
        let mut v6 = services;
        v6[0].reals[0].addr = "2001:db8::11".parse().unwrap();
        let text = render(&v6, &reasons, &[], None);
        assert!(!text.contains("xdpvs_flow_scan"), "no scan yet: no age");
        assert!(text.contains("real=\"[2001:db8::11]:80\""), "{text}");
    }
}
