//! Real-server health checks with keepalived's semantics: TCP_CHECK,
//! HTTP_GET, SSL_GET and MISC_CHECK, retried and decided by `hysteresis`, run
//! concurrently by `runner`, each kind behind the `probe::Probe` trait.

pub mod http;
pub mod hysteresis;
pub mod misc;
pub mod probe;
pub mod runner;
pub mod tcp;
pub mod tls;

use std::net::SocketAddr;

use self::{
    http::HttpProbe, hysteresis::Policy, misc::MiscProbe, probe::Probe, runner::CheckSpec,
    tcp::TcpProbe,
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
        }
    }
    if probes.is_empty() {
        return None;
    }
    Some(CheckSpec {
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
