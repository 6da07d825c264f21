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
    dns::DnsProbe,
    http::HttpProbe,
    hysteresis::Policy,
    misc::MiscProbe,
    ping::PingProbe,
    probe::Probe,
    runner::{CheckSpec, Checker},
    smtp::SmtpProbe,
    source::Source,
    tcp::TcpProbe,
    udp::UdpProbe,
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
    let mut checkers = Vec::new();
    for check in &real.checks {
        if let Some(probe) = probe(check, real, scripts, auth) {
            let (policy, warmup) = timing(vs, real, check);
            checkers.push(Checker {
                probe,
                policy,
                warmup,
            });
        }
    }
    if checkers.is_empty() {
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
        checkers,
        start_up: !real.starts_down(vs.alpha),
        unjudged: false,
        ha_suspend: if vs.ha_suspend {
            vec![vs.addr]
        } else {
            Vec::new()
        },
    })
}

/// What runs `check` of `real`, or `None` for a MISC_CHECK whose script
/// `scripts` refuses.
fn probe(
    check: &HealthCheck,
    real: &RealServer,
    scripts: &mut Preparer<'_>,
    auth: &tls::ClientAuth,
) -> Option<Box<dyn Probe>> {
    // Where the check connects, from where.
    let connect = |c: &Connect| {
        let target = SocketAddr::new(
            c.connect_ip.unwrap_or(real.addr),
            c.connect_port.unwrap_or(real.port),
        );
        (target, Source::from(c), c.connect_timeout)
    };
    match check {
        HealthCheck::TcpCheck(c) => {
            let (target, source, timeout) = connect(&c.connect);
            Some(Box::new(TcpProbe {
                target,
                source,
                timeout,
            }))
        }
        HealthCheck::HttpGet(c) => {
            let (target, source, timeout) = connect(&c.connect);
            Some(Box::new(HttpProbe {
                target,
                source,
                urls: c.urls.clone(),
                timeout,
                tls: None,
            }))
        }
        HealthCheck::SslGet(c) => {
            let (target, source, timeout) = connect(&c.http.connect);
            match auth.connector(c.enable_sni) {
                Ok(connector) => Some(Box::new(HttpProbe {
                    target,
                    source,
                    urls: c.http.urls.clone(),
                    timeout,
                    tls: Some(connector),
                })),
                Err(e) => Some(Box::new(Broken(format!("SSL_GET {target}: {e}")))),
            }
        }
        HealthCheck::MiscCheck(c) => {
            let script =
                scripts.prepare(Kind::Misc, &c.misc_path, c.user.as_ref(), &real.location)?;
            Some(Box::new(MiscProbe {
                script,
                timeout: c.misc_timeout,
                dynamic: c.misc_dynamic,
            }))
        }
        HealthCheck::UdpCheck(c) => {
            let (target, source, timeout) = connect(&c.connect);
            Some(Box::new(UdpProbe {
                target,
                source,
                timeout,
                payload: c.payload.clone(),
                require_reply: c.require_reply,
                reply_pattern: c.reply_pattern.clone(),
                reply_length: c.min_reply_length..=c.max_reply_length,
            }))
        }
        HealthCheck::PingCheck(c) => {
            let (target, source, timeout) = connect(&c.connect);
            Some(Box::new(PingProbe::new(target.ip(), source, timeout)))
        }
        HealthCheck::DnsCheck(c) => {
            let (target, source, timeout) = connect(&c.connect);
            match DnsProbe::new(target, source, timeout, &c.record_type, &c.name) {
                Ok(p) => Some(Box::new(p)),
                // The parser accepted both: a mismatch is a bug, and the
                // real must not pass for want of its check.
                Err(e) => Some(Box::new(Broken(format!("DNS_CHECK {target}: {e}")))),
            }
        }
        HealthCheck::SmtpCheck(c) => {
            let (target, source, timeout) = connect(&c.connect);
            Some(Box::new(SmtpProbe {
                target,
                source,
                timeout,
                helo_name: c.helo_name.clone(),
            }))
        }
        HealthCheck::FileCheck(c) => Some(Box::new(file::FileProbe {
            name: c.track_file.clone(),
            path: c.path.clone().into(),
            weight: c.weight.unwrap_or(1),
            reverse: c.reverse.unwrap_or(false),
            base: real.weight,
        })),
    }
}

/// A checker's timing, keepalived's: its own settings (their defaults
/// already resolved by the parser), its `delay_loop` else its real's else
/// its virtual server's. A FILE_CHECK, which has none, reads its file every
/// `delay_loop` and is not retried.
fn timing(vs: &VirtualServer, real: &RealServer, check: &HealthCheck) -> (Policy, Duration) {
    let delay_loop = real.delay_loop.unwrap_or(vs.delay_loop);
    match check.timing() {
        Some(t) => (
            Policy {
                delay_loop: t.delay_loop.unwrap_or(delay_loop),
                retry: t.retry,
                delay_before_retry: t.delay_before_retry,
            },
            t.warmup.unwrap_or_default(),
        ),
        None => (
            Policy {
                delay_loop,
                retry: 0,
                delay_before_retry: delay_loop,
            },
            Duration::ZERO,
        ),
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
                .flat_map(|s| &s.checkers)
                .map(|c| &c.probe)
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

    /// The checkers' timings of the first real of `text`, and whether it
    /// starts up.
    fn timings(text: &str) -> (Vec<(Policy, Duration)>, bool) {
        let c = crate::config::parse_str(text, Path::new("t.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let vs = &c.virtual_servers[0];
        let real = &vs.reals[0];
        let timings = real.checks.iter().map(|c| timing(vs, real, c)).collect();
        (timings, !real.starts_down(vs.alpha))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy(delay_loop: u64, retry: u32, delay_before_retry: u64) -> Policy {
        Policy {
            delay_loop: secs(delay_loop),
            retry,
            delay_before_retry: secs(delay_before_retry),
        }
    }

    #[test]
    fn each_checker_keeps_its_own_timing() {
        let (t, _) = timings(
            "virtual_server 10.0.0.1 80 {\n delay_loop 10\n real_server 10.0.0.2 80 {\n  \
             TCP_CHECK {\n   retry 3\n   warmup 8\n   delay_loop 4\n  }\n  \
             MISC_CHECK {\n   misc_path /bin/true\n   warmup 5\n   delay_before_retry 2\n  }\n  \
             HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n",
        );
        assert_eq!(
            t,
            [
                (policy(4, 3, 1), secs(8)),
                (policy(10, 0, 2), secs(5)),
                // HTTP_GET's own default: 3 s between retries.
                (policy(10, 1, 3), Duration::ZERO),
            ]
        );
    }

    #[test]
    fn the_reals_delay_loop_and_alpha_stand_for_the_virtual_servers() {
        let (t, up) = timings(
            "track_file f {\n file /run/f\n}\n\
             virtual_server 10.0.0.1 80 {\n delay_loop 10\n alpha\n real_server 10.0.0.2 80 {\n  \
             delay_loop 3\n  alpha no\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n  \
             FILE_CHECK {\n   track_file f\n  }\n }\n}\n",
        );
        assert_eq!(
            t,
            [
                (policy(3, 0, 1), Duration::ZERO),
                (policy(3, 0, 3), Duration::ZERO)
            ]
        );
        assert!(up);
        // One alpha check starts the real down.
        let (_, up) = timings(
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  \
             TCP_CHECK {\n  }\n  TCP_CHECK {\n   alpha\n  }\n }\n}\n",
        );
        assert!(!up);
        // A checker's own `alpha no` outweighs its real's alpha.
        let (_, up) = timings(
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  alpha\n  \
             TCP_CHECK {\n   alpha no\n  }\n }\n}\n",
        );
        assert!(up);
    }
}
