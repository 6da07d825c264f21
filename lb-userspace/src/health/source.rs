//! Where a check's packets leave from: `bindto` (source address),
//! `bind_port` (source port), `bind_if` (SO_BINDTODEVICE) and `fwmark`
//! (SO_MARK, for policy routing), set on every checker's socket before it
//! connects, as keepalived does.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use socket2::SockRef;

use crate::config::Connect;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    pub interface: Option<String>,
    pub mark: Option<u32>,
}

impl From<&Connect> for Source {
    fn from(c: &Connect) -> Self {
        Self {
            addr: c.bindto,
            port: c.bind_port,
            interface: c.bind_if.clone(),
            mark: c.fwmark,
        }
    }
}

impl Source {
    /// Just a source address (tests, and what `bindto` alone sets).
    pub fn addr(addr: Option<IpAddr>) -> Self {
        Self {
            addr,
            ..Self::default()
        }
    }

    /// Sets the mark and the device, then binds when an address or a port
    /// is given; `v6` is the target's family. A fixed port is bound with
    /// SO_REUSEADDR: Linux then lets the next check's connection reuse it
    /// while the last one is in TIME_WAIT (TCP timestamps tell them apart).
    pub fn apply(&self, socket: SockRef<'_>, v6: bool) -> io::Result<()> {
        if let Some(mark) = self.mark {
            socket.set_mark(mark)?;
        }
        if let Some(dev) = &self.interface {
            socket.bind_device(Some(dev.as_bytes()))?;
        }
        if self.addr.is_none() && self.port.is_none() {
            return Ok(());
        }
        if self.port.is_some() {
            socket.set_reuse_address(true)?;
        }
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let local = SocketAddr::new(self.addr.unwrap_or(any), self.port.unwrap_or(0));
        socket.bind(&local.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_port_is_the_source_port_and_nothing_set_binds_nothing() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        Source::default().apply((&s).into(), false).unwrap();
        assert!(
            s.local_addr().unwrap().as_socket().unwrap().port() == 0,
            "unbound"
        );
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let source = Source {
            addr: Some("127.0.0.1".parse().unwrap()),
            port: Some(port),
            ..Source::default()
        };
        source.apply((&s).into(), false).unwrap();
        assert_eq!(
            s.local_addr().unwrap().as_socket().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
    }

    /// A named network namespace, deleted when dropped.
    struct Netns(String);

    impl Netns {
        fn new(tag: &str) -> Self {
            let name = format!("xvsrc{}{tag}", std::process::id() % 100_000);
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &name])
                .status();
            run(&["netns", "add", &name]);
            let ns = Self(name);
            ns.ip(&["link", "set", "lo", "up"]);
            ns
        }

        fn ip(&self, args: &[&str]) {
            let mut all = vec!["-n", self.0.as_str()];
            all.extend_from_slice(args);
            run(&all);
        }

        /// Runs `f` on a thread inside the namespace: sockets it makes are the namespace's.
        fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
            let file = std::fs::File::open(format!("/var/run/netns/{}", self.0)).unwrap();
            std::thread::spawn(move || {
                use std::os::fd::AsRawFd as _;
                // SAFETY: setns on a namespace descriptor moves only this thread.
                assert_eq!(
                    unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                    0
                );
                f()
            })
            .join()
            .unwrap()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }

    fn run(args: &[&str]) {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A checker namespace joined to a server namespace by two links:
    /// c1 (10.71.0.1) is the route to the server's 10.79.0.1, c2
    /// (10.72.0.1) the route of packets bound to c2 or marked 7. The server
    /// tells the links apart by the source address it sees.
    fn two_links() -> (Netns, Netns) {
        let (c, s) = (Netns::new("c"), Netns::new("s"));
        for (i, link) in [(1, "71"), (2, "72")] {
            c.ip(&[
                "link",
                "add",
                &format!("c{i}"),
                "type",
                "veth",
                "peer",
                "name",
                &format!("s{i}"),
                "netns",
                &s.0,
            ]);
            c.ip(&[
                "addr",
                "add",
                &format!("10.{link}.0.1/24"),
                "dev",
                &format!("c{i}"),
            ]);
            s.ip(&[
                "addr",
                "add",
                &format!("10.{link}.0.2/24"),
                "dev",
                &format!("s{i}"),
            ]);
            c.ip(&["link", "set", &format!("c{i}"), "up"]);
            s.ip(&["link", "set", &format!("s{i}"), "up"]);
        }
        s.ip(&["addr", "add", "10.79.0.1/32", "dev", "lo"]);
        c.ip(&["route", "add", "10.79.0.1", "via", "10.71.0.2", "dev", "c1"]);
        c.ip(&[
            "route",
            "add",
            "10.79.0.1",
            "via",
            "10.72.0.2",
            "dev",
            "c2",
            "metric",
            "100",
        ]);
        c.ip(&["rule", "add", "fwmark", "7", "table", "100"]);
        c.ip(&[
            "route",
            "add",
            "10.79.0.1",
            "via",
            "10.72.0.2",
            "dev",
            "c2",
            "table",
            "100",
        ]);
        (c, s)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn bind_if_fwmark_and_bind_port_reach_the_server_as_set_root() {
        use std::time::Duration;

        use crate::health::{
            probe::{Outcome, Probe as _},
            tcp::TcpProbe,
            udp::UdpProbe,
        };

        let (c, s) = two_links();
        let tcp = s.enter(|| std::net::TcpListener::bind("10.79.0.1:80").unwrap());
        let udp = s.enter(|| std::net::UdpSocket::bind("10.79.0.1:53").unwrap());
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let target: SocketAddr = "10.79.0.1:80".parse().unwrap();
        let cases = [
            (Source::default(), "10.71.0.1"),
            (
                Source {
                    interface: Some("c2".into()),
                    ..Source::default()
                },
                "10.72.0.1",
            ),
            (
                Source {
                    mark: Some(7),
                    ..Source::default()
                },
                "10.72.0.1",
            ),
        ];
        for (source, want) in cases {
            let probe = TcpProbe {
                target,
                source: source.clone(),
                timeout: Duration::from_secs(2),
            };
            assert_eq!(
                c.enter(move || block_on(probe.run())),
                Outcome::Up,
                "{source:?}"
            );
            let (_, peer) = tcp.accept().unwrap();
            assert_eq!(peer.ip().to_string(), want, "{source:?}");
        }
        // The same source port twice in a row: the first connection's
        // TIME_WAIT does not hold it.
        for _ in 0..2 {
            let probe = TcpProbe {
                target,
                source: Source {
                    port: Some(1000),
                    ..Source::default()
                },
                timeout: Duration::from_secs(2),
            };
            assert_eq!(c.enter(move || block_on(probe.run())), Outcome::Up);
            let (_, peer) = tcp.accept().unwrap();
            assert_eq!(peer.port(), 1000);
        }
        // UDP_CHECK's datagram is marked too, and leaves from the bound port.
        let probe = UdpProbe {
            target: "10.79.0.1:53".parse().unwrap(),
            source: Source {
                mark: Some(7),
                port: Some(1053),
                ..Source::default()
            },
            timeout: Duration::from_millis(300),
            payload: Some(b"x".to_vec()),
            require_reply: false,
            reply_pattern: None,
            reply_length: 0..=255,
        };
        assert_eq!(c.enter(move || block_on(probe.run())), Outcome::Up);
        let (_, from) = udp.recv_from(&mut [0u8; 16]).unwrap();
        assert_eq!(from, "10.72.0.1:1053".parse().unwrap());
        // A device this host does not have: down, with the kernel's reason.
        let probe = TcpProbe {
            target,
            source: Source {
                interface: Some("nosuchdev0".into()),
                ..Source::default()
            },
            timeout: Duration::from_secs(1),
        };
        let outcome = c.enter(move || block_on(probe.run()));
        assert!(
            matches!(&outcome, Outcome::Down(crate::health::probe::Failure::Io(m)) if m.contains("No such device")),
            "{outcome:?}"
        );
    }

    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn the_mark_is_on_the_socket_root() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let source = Source {
            mark: Some(0x2a),
            ..Source::default()
        };
        source.apply((&s).into(), false).unwrap();
        assert_eq!(s.mark().unwrap(), 0x2a);
    }
}
