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
pub mod presence;
pub mod probe;
pub mod runner;
pub mod smtp;
pub mod source;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::{net::SocketAddr, time::Duration};

use self::{
    dns::DnsProbe, http::HttpProbe, hysteresis::Policy, misc::MiscProbe, ping::PingProbe,
    probe::Probe, runner::CheckSpec, smtp::SmtpProbe, source::Source, tcp::TcpProbe, udp::UdpProbe,
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
    auth: &tls::ClientAuth,
) -> Option<CheckSpec> {
    if real.checks.is_empty() {
        return None;
    }
    let timing = Fold::of(vs, real);
    // Where the checks connect, from where.
    let connect = |c: &Connect| {
        let target = SocketAddr::new(
            c.connect_ip.unwrap_or(real.addr),
            c.connect_port.unwrap_or(real.port),
        );
        (target, Source::from(c), c.connect_timeout)
    };
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    for check in &real.checks {
        match check {
            HealthCheck::TcpCheck(c) => {
                let (target, source, timeout) = connect(&c.connect);
                probes.push(Box::new(TcpProbe {
                    target,
                    source,
                    timeout,
                }));
            }
            HealthCheck::HttpGet(c) => {
                let (target, source, timeout) = connect(&c.connect);
                probes.push(Box::new(HttpProbe {
                    target,
                    source,
                    urls: c.urls.clone(),
                    timeout,
                    tls: None,
                }));
            }
            HealthCheck::SslGet(c) => {
                let (target, source, timeout) = connect(&c.http.connect);
                match auth.connector(c.enable_sni) {
                    Ok(connector) => probes.push(Box::new(HttpProbe {
                        target,
                        source,
                        urls: c.http.urls.clone(),
                        timeout,
                        tls: Some(connector),
                    })),
                    Err(e) => probes.push(Box::new(Broken(format!("SSL_GET {target}: {e}")))),
                }
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
                let (target, source, timeout) = connect(&c.connect);
                probes.push(Box::new(UdpProbe {
                    target,
                    source,
                    timeout,
                    payload: c.payload.clone(),
                    require_reply: c.require_reply,
                    reply_pattern: c.reply_pattern.clone(),
                    reply_length: c.min_reply_length..=c.max_reply_length,
                }));
            }
            HealthCheck::PingCheck(c) => {
                let (target, source, timeout) = connect(&c.connect);
                probes.push(Box::new(PingProbe::new(target.ip(), source, timeout)));
            }
            HealthCheck::DnsCheck(c) => {
                let (target, source, timeout) = connect(&c.connect);
                match DnsProbe::new(target, source, timeout, &c.record_type, &c.name) {
                    Ok(p) => probes.push(Box::new(p)),
                    // The parser accepted both: a mismatch is a bug, and the
                    // real must not pass for want of its check.
                    Err(e) => probes.push(Box::new(Broken(format!("DNS_CHECK {target}: {e}")))),
                }
            }
            HealthCheck::SmtpCheck(c) => {
                let (target, source, timeout) = connect(&c.connect);
                probes.push(Box::new(SmtpProbe {
                    target,
                    source,
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
                (vs.delay_loop, real.delay_loop),
                (vs.alpha, real.alpha),
                vs.ha_suspend
            )
        ),
        service: (vs.addr, vs.port, proto),
        real: (real.addr, real.port),
        probes,
        policy: Policy {
            delay_loop: timing.delay_loop,
            retry: timing.retry,
            delay_before_retry: timing.delay_before_retry,
        },
        start_up: !timing.alpha,
        unjudged: false,
        warmup: timing.warmup,
        ha_suspend: if vs.ha_suspend {
            vec![vs.addr]
        } else {
            Vec::new()
        },
    })
}

/// The timing of a real's checks, which run together: keepalived's
/// defaults (checker, else real, else virtual server) per check, then the
/// strictest of them decides (the most retries, the shortest delays);
/// `alpha` as `RealServer::starts_down` resolves it.
#[derive(Debug, PartialEq)]
struct Fold {
    retry: u32,
    delay_before_retry: Duration,
    delay_loop: Duration,
    warmup: Duration,
    alpha: bool,
}

impl Fold {
    fn of(vs: &VirtualServer, real: &RealServer) -> Self {
        let delay_loop = real.delay_loop.unwrap_or(vs.delay_loop);
        let mut fold = Fold {
            retry: 0,
            delay_before_retry: delay_loop,
            delay_loop,
            warmup: Duration::MAX,
            alpha: real.starts_down(vs.alpha),
        };
        for t in real.checks.iter().filter_map(HealthCheck::timing) {
            fold.retry = fold.retry.max(t.retry);
            fold.delay_before_retry = fold.delay_before_retry.min(t.delay_before_retry);
            fold.delay_loop = fold.delay_loop.min(t.delay_loop.unwrap_or(delay_loop));
            fold.warmup = fold.warmup.min(t.warmup.unwrap_or_default());
        }
        if fold.warmup == Duration::MAX {
            fold.warmup = Duration::ZERO;
        }
        fold
    }
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
    let auth = tls::ClientAuth::load(config.ssl.as_ref());
    for vs in &config.virtual_servers {
        let proto = Proto::from(vs.protocol);
        for real in &vs.reals {
            for p in spec_for(vs, real, proto, &mut scripts, &auth)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fold(text: &str) -> Fold {
        let c = crate::config::parse_str(text, Path::new("t.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let vs = &c.virtual_servers[0];
        Fold::of(vs, &vs.reals[0])
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_reals_checks_run_on_the_strictest_timing_of_them() {
        let f = fold(
            "virtual_server 10.0.0.1 80 {\n delay_loop 10\n real_server 10.0.0.2 80 {\n  \
             TCP_CHECK {\n   retry 3\n   warmup 8\n   delay_loop 4\n  }\n  \
             MISC_CHECK {\n   misc_path /bin/true\n   warmup 5\n   delay_before_retry 2\n  }\n }\n}\n",
        );
        assert_eq!(
            f,
            Fold {
                retry: 3,
                delay_before_retry: secs(1),
                delay_loop: secs(4),
                warmup: secs(5),
                alpha: false,
            }
        );
    }

    #[test]
    fn the_reals_delay_loop_and_alpha_stand_for_the_virtual_servers() {
        let f = fold(
            "virtual_server 10.0.0.1 80 {\n delay_loop 10\n alpha\n real_server 10.0.0.2 80 {\n  \
             delay_loop 3\n  alpha no\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n",
        );
        assert_eq!((f.delay_loop, f.alpha, f.retry), (secs(3), false, 0));
        // One alpha check starts the real down.
        let f = fold(
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  \
             TCP_CHECK {\n  }\n  TCP_CHECK {\n   alpha\n  }\n }\n}\n",
        );
        assert!(f.alpha);
        // A checker's own `alpha no` outweighs its real's alpha.
        let f = fold(
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  alpha\n  \
             TCP_CHECK {\n   alpha no\n  }\n }\n}\n",
        );
        assert!(!f.alpha);
        assert_eq!(
            f.warmup,
            Duration::ZERO,
            "no warmup unless every check has one"
        );
    }
}
