//! Real-server health checks with keepalived's semantics: TCP_CHECK,
//! HTTP_GET, SSL_GET, MISC_CHECK, UDP_CHECK, PING_CHECK, DNS_CHECK and
//! SMTP_CHECK (and FILE_CHECK, a track_file's number), retried and decided by `hysteresis`, run concurrently by
//! `runner`, each kind behind the `probe::Probe` trait.

pub mod dns;
pub mod file;
pub mod http;
pub mod hysteresis;
pub mod misc;
pub mod ping;
pub mod probe;
pub mod runner;
pub mod smtp;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::net::SocketAddr;

use self::{
    dns::DnsProbe, http::HttpProbe, hysteresis::Policy, misc::MiscProbe, ping::PingProbe,
    probe::Probe, runner::CheckSpec, smtp::SmtpProbe, tcp::TcpProbe, udp::UdpProbe,
};
use crate::{
    config::{Connect, HealthCheck, RealServer, VirtualServer},
    dataplane::keys::Proto,
    script_runner::{Kind, Preparer},
};

/// What runs the checks of one configured real, or `None` if it has none.
/// A MISC_CHECK `scripts` refuses is left out, as keepalived removes it.
pub fn spec_for(
    vs: &VirtualServer,
    real: &RealServer,
    proto: Proto,
    scripts: &mut Preparer<'_>,
) -> Option<CheckSpec> {
    if real.checks.is_empty() {
        return None;
    }
    let mut retry = 0;
    let mut delay_before_retry = vs.delay_loop;
    // Where TCP_CHECK, HTTP_GET and SSL_GET connect, folding their retry timing into
    // the real's: the strictest of its checks decides.
    let mut connect = |c: &Connect| {
        retry = retry.max(c.retry);
        delay_before_retry = delay_before_retry.min(c.delay_before_retry);
        let target = SocketAddr::new(
            c.connect_ip.unwrap_or(real.addr),
            c.connect_port.unwrap_or(real.port),
        );
        (target, c.bindto, c.connect_timeout)
    };
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    for check in &real.checks {
        match check {
            HealthCheck::TcpCheck(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                probes.push(Box::new(TcpProbe {
                    target,
                    bindto,
                    timeout,
                }));
            }
            HealthCheck::HttpGet(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                probes.push(Box::new(HttpProbe {
                    target,
                    bindto,
                    urls: c.urls.clone(),
                    timeout,
                    tls: None,
                }));
            }
            HealthCheck::SslGet(c) => {
                let (target, bindto, timeout) = connect(&c.http.connect);
                probes.push(Box::new(HttpProbe {
                    target,
                    bindto,
                    urls: c.http.urls.clone(),
                    timeout,
                    tls: Some(tls::client(c.enable_sni)),
                }));
            }
            HealthCheck::MiscCheck(c) => {
                let at = &real.location;
                if let Some(script) = scripts.prepare(Kind::Misc, &c.misc_path, c.user.as_ref(), at)
                {
                    probes.push(Box::new(MiscProbe {
                        script,
                        timeout: c.misc_timeout,
                        dynamic: c.misc_dynamic,
                    }));
                }
            }
            HealthCheck::UdpCheck(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                probes.push(Box::new(UdpProbe {
                    target,
                    bindto,
                    timeout,
                    payload: c.payload.clone(),
                    require_reply: c.require_reply,
                    reply_pattern: c.reply_pattern.clone(),
                    reply_length: c.min_reply_length..=c.max_reply_length,
                }));
            }
            HealthCheck::PingCheck(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                probes.push(Box::new(PingProbe::new(target.ip(), bindto, timeout)));
            }
            HealthCheck::DnsCheck(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                match DnsProbe::new(target, bindto, timeout, &c.record_type, &c.name) {
                    Ok(p) => probes.push(Box::new(p)),
                    // The parser accepted both: a mismatch is a bug, and the
                    // real must not pass for want of its check.
                    Err(e) => probes.push(Box::new(Broken(format!("DNS_CHECK {target}: {e}")))),
                }
            }
            HealthCheck::SmtpCheck(c) => {
                let (target, bindto, timeout) = connect(&c.connect);
                probes.push(Box::new(SmtpProbe {
                    target,
                    bindto,
                    timeout,
                    helo_name: c.helo_name.clone(),
                }));
            }
            HealthCheck::FileCheck(c) => probes.push(Box::new(file::FileProbe {
                name: c.track_file.clone(),
                path: c.path.clone().into(),
                weight: c.weight.unwrap_or(1),
                reverse: c.reverse.unwrap_or(false),
                base: real.weight,
            })),
        }
    }
    if probes.is_empty() {
        return None;
    }
    Some(CheckSpec {
        // Reals of services built from one virtual_server_group entry share
        // one check: the same real, checks and timing make the same key.
        shared_key: format!(
            "{:?}",
            (
                real.addr,
                real.port,
                real.weight,
                &real.checks,
                vs.delay_loop,
                vs.alpha
            )
        ),
        service: (vs.addr, vs.port, proto),
        real: (real.addr, real.port),
        probes,
        policy: Policy {
            delay_loop: vs.delay_loop,
            retry,
            delay_before_retry,
        },
        start_up: !vs.alpha,
    })
}

/// A check that cannot be built: always a local error, never an up.
struct Broken(String);

impl Probe for Broken {
    fn run(&self) -> probe::Attempt<'_> {
        let reason = self.0.clone();
        Box::pin(async move { probe::Outcome::Down(probe::Failure::Local(reason)) })
    }

    fn describe(&self) -> String {
        self.0.clone()
    }

    fn unavailable(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// What the checks of `config` cannot do on this host (an ICMP socket
/// refused), one line each, for `xdpvs check` and the daemon's start.
pub fn unavailable(config: &crate::config::Config) -> Vec<String> {
    let mut out = Vec::new();
    // Scripts are audited on their own (`script_runner::audit`): their
    // diagnostics are not repeated here.
    let mut scripts = Preparer::new(config, &crate::script_runner::RealFs);
    for vs in &config.virtual_servers {
        let proto = match vs.protocol {
            crate::config::Protocol::Tcp => Proto::Tcp,
            crate::config::Protocol::Udp => Proto::Udp,
        };
        for real in &vs.reals {
            for p in spec_for(vs, real, proto, &mut scripts)
                .iter()
                .flat_map(|s| &s.probes)
            {
                if let Some(why) = p.unavailable() {
                    out.push(format!(
                        "{}: warning: {} cannot run on this host ({why}): real {} stays DOWN until it can",
                        real.location,
                        p.describe(),
                        SocketAddr::new(real.addr, real.port)
                    ));
                }
            }
        }
    }
    out.dedup();
    out
}
