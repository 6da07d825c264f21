//! UDP_CHECK: a datagram to the real. An ICMP error (port or host
//! unreachable) is a failure; so, with `require_reply`, are silence and a
//! reply of the wrong length or content. Without `require_reply`, no error
//! within the timeout is success (keepalived): such a check takes its whole
//! `connect_timeout` to pass.

use std::{net::SocketAddr, time::Duration};

use tokio::net::UdpSocket;

use super::{
    probe::{Attempt, Failure, Outcome, Probe},
    source::Source,
};
use crate::config::HexPattern;

pub struct UdpProbe {
    pub target: SocketAddr,
    pub source: Source,
    pub timeout: Duration,
    /// `None`: a few random bytes each time.
    pub payload: Option<Vec<u8>>,
    pub require_reply: bool,
    pub reply_pattern: Option<HexPattern>,
    pub reply_length: std::ops::RangeInclusive<usize>,
}

/// A socket connected to `target`, from `source`: only the target's
/// datagrams and ICMP errors reach it.
pub async fn connected(target: SocketAddr, source: &Source) -> std::io::Result<UdpSocket> {
    let domain = if target.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, None)?;
    socket.set_nonblocking(true)?;
    source.apply((&socket).into(), target.is_ipv6())?;
    let socket = UdpSocket::from_std(socket.into())?;
    socket.connect(target).await?;
    Ok(socket)
}

/// `len` bytes from the kernel's random source, for a payload no server
/// could mistake for a request of its protocol.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    // SAFETY: writes at most `len` bytes into `buf`, which holds `len`.
    let got = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), len, 0) };
    if got != len as isize {
        // Content does not matter; only its unpredictability would.
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8 ^ 0x5a);
    }
    buf
}

impl UdpProbe {
    fn judge(&self, reply: &[u8]) -> Outcome {
        if !self.require_reply {
            return Outcome::Up;
        }
        if !self.reply_length.contains(&reply.len()) {
            return Outcome::Down(Failure::BadResponse(format!(
                "reply of {} bytes, expected {} to {}",
                reply.len(),
                self.reply_length.start(),
                self.reply_length.end()
            )));
        }
        match &self.reply_pattern {
            Some(p) if !p.matches(reply) => {
                Outcome::Down(Failure::BadResponse(format!("reply does not match {p}")))
            }
            _ => Outcome::Up,
        }
    }

    async fn attempt(&self) -> Outcome {
        let socket = match connected(self.target, &self.source).await {
            Ok(s) => s,
            Err(e) => return Outcome::Down(e.into()),
        };
        let payload = self.payload.clone().unwrap_or_else(|| random_bytes(8));
        if let Err(e) = socket.send(&payload).await {
            return Outcome::Down(e.into());
        }
        // Room for any datagram, so a long reply is measured, not cut.
        let mut buf = vec![0u8; 65536];
        match tokio::time::timeout(self.timeout, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => self.judge(&buf[..n]),
            // A connected socket reports the ICMP port unreachable as a refusal.
            Ok(Err(e)) => Outcome::Down(e.into()),
            Err(_) if self.require_reply => Outcome::Down(Failure::Timeout(self.timeout)),
            Err(_) => Outcome::Up,
        }
    }
}

impl Probe for UdpProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(self.attempt())
    }

    fn describe(&self) -> String {
        format!("UDP_CHECK {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP server on a thread: answers each datagram with `answer(request)`,
    /// or stays silent when it returns `None`.
    fn server(answer: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        addr
    }

    fn probe(target: SocketAddr) -> UdpProbe {
        UdpProbe {
            target,
            source: Default::default(),
            timeout: Duration::from_millis(300),
            payload: Some(b"ping".to_vec()),
            require_reply: true,
            reply_pattern: None,
            reply_length: 0..=255,
        }
    }

    fn pattern(p: &[(u8, u8)]) -> Option<HexPattern> {
        Some(HexPattern(p.to_vec()))
    }

    /// A port nothing listens on: bound, then closed.
    fn closed_port() -> SocketAddr {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[tokio::test]
    async fn an_echo_is_up_and_its_content_is_checked() {
        let echo = server(|r| Some(r.to_vec()));
        assert_eq!(probe(echo).run().await, Outcome::Up);
        // "pi" then any byte ("n"), wildcard nibbles included.
        let p = UdpProbe {
            reply_pattern: pattern(&[(b'p', 0xff), (b'i', 0xff), (0, 0), (0x07, 0x0f)]),
            ..probe(echo)
        };
        assert_eq!(p.run().await, Outcome::Up);
        let wrong = UdpProbe {
            reply_pattern: pattern(&[(b'p', 0xff), (b'o', 0xff)]),
            ..probe(echo)
        };
        assert!(matches!(
            wrong.run().await,
            Outcome::Down(Failure::BadResponse(m)) if m == "reply does not match 706f"
        ));
        let too_short = UdpProbe {
            reply_length: 5..=255,
            ..probe(echo)
        };
        assert!(matches!(
            too_short.run().await,
            Outcome::Down(Failure::BadResponse(m)) if m == "reply of 4 bytes, expected 5 to 255"
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_by_its_icmp_error() {
        let closed = closed_port();
        assert_eq!(probe(closed).run().await, Outcome::Down(Failure::Refused));
        // Without require_reply the ICMP error is what fails it.
        let p = UdpProbe {
            require_reply: false,
            ..probe(closed)
        };
        assert_eq!(p.run().await, Outcome::Down(Failure::Refused));
    }

    #[tokio::test]
    async fn a_silent_server_is_down_only_when_a_reply_is_required() {
        let silent = server(|_| None);
        let start = std::time::Instant::now();
        assert_eq!(
            probe(silent).run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
        );
        let took = start.elapsed();
        assert!(took < Duration::from_millis(800), "{took:?}");
        let p = UdpProbe {
            require_reply: false,
            payload: None,
            ..probe(silent)
        };
        assert_eq!(p.run().await, Outcome::Up);
    }

    #[tokio::test]
    async fn the_random_payload_reaches_the_server() {
        // Answers only 8-byte datagrams: what is sent without `payload`.
        let eight = server(|r| (r.len() == 8).then(|| b"ok".to_vec()));
        let p = UdpProbe {
            payload: None,
            ..probe(eight)
        };
        assert_eq!(p.run().await, Outcome::Up);
    }
}
