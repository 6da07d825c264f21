//! PING_CHECK: an ICMP echo answered within the timeout. An unprivileged
//! ICMP socket (`ping_group_range`) is tried first, then a raw one (root or
//! CAP_NET_RAW); xdpvs never widens `ping_group_range` itself. When neither
//! can be opened the check cannot run: `unavailable` says so at start, every
//! attempt is a local error, and the runner keeps the real DOWN rather than
//! count it healthy by a check that did not run.

use std::{
    io::Read as _,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    source::Source,
};

pub struct PingProbe {
    pub target: IpAddr,
    pub source: Source,
    pub timeout: Duration,
    sequence: AtomicU16,
}

/// Which kind of ICMP socket this host lets the daemon open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SOCK_DGRAM: the kernel sets the echo id and filters replies by it.
    Unprivileged,
    /// SOCK_RAW: every ICMP packet from the peer arrives; IPv4 with its header.
    Raw,
}

/// Marks the echoes this daemon sends.
const PAYLOAD: &[u8] = b"xdpvs PING_CHECK";

fn open(target: IpAddr) -> Result<(Socket, Kind), String> {
    let (domain, protocol) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => Ok((s, Kind::Unprivileged)),
        Err(unprivileged) => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(s) => Ok((s, Kind::Raw)),
            Err(raw) => Err(format!(
                "cannot open an ICMP socket: unprivileged: {unprivileged} (see \
                 net.ipv4.ping_group_range); raw: {raw} (needs CAP_NET_RAW)"
            )),
        },
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(v6: bool, id: u16, sequence: u16) -> Vec<u8> {
    // Echo request: type 8 (ICMPv4) or 128 (ICMPv6), code 0.
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    // The kernel computes ICMPv6 checksums (they cover the pseudo-header).
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` is the reply to our echo `(id, sequence)`.
fn is_reply(packet: &[u8], kind: Kind, v6: bool, id: u16, sequence: u16) -> bool {
    let icmp = match (kind, v6) {
        // A raw IPv4 socket hands over the IP header too.
        (Kind::Raw, false) => match packet.first() {
            Some(b) => packet.get(usize::from(b & 0x0f) * 4..).unwrap_or_default(),
            None => return false,
        },
        _ => packet,
    };
    let reply_type = if v6 { 129 } else { 0 };
    icmp.len() >= 8
        && icmp[0] == reply_type
        && icmp[1] == 0
        // An unprivileged socket's id is the kernel's, and only its replies arrive.
        && (kind == Kind::Unprivileged || icmp[4..6] == id.to_be_bytes())
        && icmp[6..8] == sequence.to_be_bytes()
        && &icmp[8..] == PAYLOAD
}

impl PingProbe {
    pub fn new(target: IpAddr, source: Source, timeout: Duration) -> Self {
        Self {
            target,
            source,
            timeout,
            sequence: AtomicU16::new(0),
        }
    }

    async fn attempt(&self) -> Outcome {
        let (socket, kind) = match open(self.target) {
            Ok(s) => s,
            Err(e) => return Outcome::Down(Failure::Local(e)),
        };
        let io = |e: std::io::Error| Outcome::Down(e.into());
        let setup = || -> std::io::Result<()> {
            socket.set_nonblocking(true)?;
            // ICMP has no port: the parser refuses bind_port here.
            self.source.apply((&socket).into(), self.target.is_ipv6())?;
            // Only the target's packets reach a connected ICMP socket.
            socket.connect(&SockAddr::from(SocketAddr::new(self.target, 0)))
        };
        if let Err(e) = setup() {
            return io(e);
        }
        let v6 = self.target.is_ipv6();
        let id = std::process::id() as u16;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the AsyncFd owns the socket, so its descriptor stays open
        // and the same for the AsyncFd's whole life.
        let fd = match unsafe { AsyncFd::register(socket) } {
            Ok(fd) => fd,
            Err(e) => return io(e.into()),
        };
        let request = echo_request(v6, id, sequence);
        loop {
            let mut guard = match fd.writable().await {
                Ok(g) => g,
                Err(e) => return io(e),
            };
            match guard.try_io(|s| s.get_ref().send(&request)) {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => return io(e),
                Err(_would_block) => continue,
            }
        }
        let mut buf = [0u8; 1500];
        loop {
            let mut guard = match fd.readable().await {
                Ok(g) => g,
                Err(e) => return io(e),
            };
            match guard.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(Ok(n)) if is_reply(&buf[..n], kind, v6, id, sequence) => return Outcome::Up,
                // Another echo's reply, or other ICMP from the real: keep waiting.
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return io(e),
                Err(_would_block) => {}
            }
        }
    }
}

impl Probe for PingProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, self.attempt()))
    }

    fn describe(&self) -> String {
        format!("PING_CHECK {}", self.target)
    }

    fn unavailable(&self) -> Option<String> {
        open(self.target).err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns_testing::{in_empty_netns, ip};

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // Summing a packet with its checksum in place gives zero.
        assert_eq!(checksum(&p), 0);
        assert_eq!(echo_request(true, 1, 1)[0], 128);
    }

    #[test]
    fn only_our_reply_counts() {
        let mut reply = echo_request(false, 9, 3);
        reply[0] = 0;
        let mut with_header = vec![0x45; 1];
        with_header.extend_from_slice(&[0; 19]);
        with_header.extend_from_slice(&reply);
        assert!(is_reply(&with_header, Kind::Raw, false, 9, 3));
        assert!(
            !is_reply(&with_header, Kind::Raw, false, 10, 3),
            "another id"
        );
        assert!(
            is_reply(&reply, Kind::Unprivileged, false, 10, 3),
            "the kernel's id"
        );
        assert!(
            !is_reply(&reply, Kind::Unprivileged, false, 9, 4),
            "another sequence"
        );
        // Our own request looped back is no reply.
        assert!(!is_reply(
            &echo_request(false, 9, 3),
            Kind::Unprivileged,
            false,
            9,
            3
        ));
    }

    #[tokio::test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    async fn loopback_answers_root() {
        let p = PingProbe::new(
            "127.0.0.1".parse().unwrap(),
            Source::default(),
            Duration::from_millis(500),
        );
        assert_eq!(p.unavailable(), None);
        for _ in 0..3 {
            assert_eq!(p.run().await, Outcome::Up);
        }
        let v6 = PingProbe::new(
            "::1".parse().unwrap(),
            Source::default(),
            Duration::from_millis(500),
        );
        assert_eq!(v6.run().await, Outcome::Up);
    }

    fn run_here(p: PingProbe) -> (Outcome, Duration) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let start = std::time::Instant::now();
        let outcome = rt.block_on(p.run());
        (outcome, start.elapsed())
    }

    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn no_route_or_no_answer_is_down_root() {
        let ms = Duration::from_millis(300);
        // Loopback down: no route to anything.
        let (outcome, _) = in_empty_netns(move || {
            run_here(PingProbe::new(
                "127.0.0.1".parse().unwrap(),
                Source::default(),
                ms,
            ))
        });
        assert!(
            matches!(&outcome, Outcome::Down(f) if !f.is_local()),
            "{outcome:?}"
        );
        // A route to an address nobody holds: the echo goes out and nothing answers.
        let (outcome, took) = in_empty_netns(move || {
            ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
            ip(&["addr", "add", "10.99.0.1/24", "dev", "v0"]);
            ip(&["link", "set", "v0", "up"]);
            ip(&["link", "set", "v1", "up"]);
            run_here(PingProbe::new(
                "10.99.0.7".parse().unwrap(),
                Source::default(),
                ms,
            ))
        });
        assert_eq!(outcome, Outcome::Down(Failure::Timeout(ms)));
        assert!(took < Duration::from_millis(800), "{took:?}");
    }
}
