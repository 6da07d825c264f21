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
    /// is given; `v6` is the target's family. A TCP socket with a fixed port
    /// closes with a reset, so the next check can use the port at once
    /// (no TIME_WAIT holds it).
    pub fn apply(&self, socket: SockRef<'_>, v6: bool, stream: bool) -> io::Result<()> {
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
            if stream {
                socket.set_linger(Some(std::time::Duration::ZERO))?;
            }
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
        Source::default().apply((&s).into(), false, false).unwrap();
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
        source.apply((&s).into(), false, false).unwrap();
        assert_eq!(
            s.local_addr().unwrap().as_socket().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
    }
}
