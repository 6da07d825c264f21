//! Real-server health checks with keepalived's semantics: TCP_CHECK,
//! HTTP_GET and MISC_CHECK, retried and decided by `hysteresis`, run
//! concurrently by `runner`, each kind behind the `probe::Probe` trait.

pub mod http;
pub mod hysteresis;
pub mod misc;
pub mod probe;
pub mod runner;
pub mod tcp;

use std::net::SocketAddr;

use self::{
    http::HttpProbe, hysteresis::Policy, misc::MiscProbe, probe::Probe, runner::CheckSpec,
    tcp::TcpProbe,
};
use crate::{
    config::{HealthCheck, RealServer, VirtualServer},
    dataplane::keys::Proto,
};

/// What runs the checks of one configured real, or `None` if it has none.
pub fn spec_for(vs: &VirtualServer, real: &RealServer, proto: Proto) -> Option<CheckSpec> {
    if real.checks.is_empty() {
        return None;
    }
    let target = |ip: Option<std::net::IpAddr>, port: Option<u16>| {
        SocketAddr::new(ip.unwrap_or(real.addr), port.unwrap_or(real.port))
    };
    let mut retry = 0;
    let mut delay_before_retry = vs.delay_loop;
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    for check in &real.checks {
        match check {
            HealthCheck::TcpCheck(c) => {
                retry = retry.max(c.retry);
                delay_before_retry = delay_before_retry.min(c.delay_before_retry);
                probes.push(Box::new(TcpProbe {
                    target: target(c.connect_ip, c.connect_port),
                    bindto: c.bindto,
                    timeout: c.connect_timeout,
                }));
            }
            HealthCheck::HttpGet(c) => {
                retry = retry.max(c.retry);
                delay_before_retry = delay_before_retry.min(c.delay_before_retry);
                probes.push(Box::new(HttpProbe {
                    target: target(c.connect_ip, c.connect_port),
                    bindto: c.bindto,
                    urls: c.urls.clone(),
                    timeout: c.connect_timeout,
                }));
            }
            HealthCheck::MiscCheck(c) => probes.push(Box::new(MiscProbe {
                command: c.misc_path.clone(),
                timeout: c.misc_timeout,
                dynamic: c.misc_dynamic,
            })),
        }
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
