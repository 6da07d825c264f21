//! Conversions between userspace addresses and the kernel's key layouts.

use std::{fmt, net::IpAddr, str::FromStr};

use lb_common::{FAMILY_V4, FAMILY_V6, FlowKey, PROTO_TCP, PROTO_UDP, ServiceKey};

pub type Mac = [u8; 6];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => PROTO_TCP,
            Proto::Udp => PROTO_UDP,
        }
    }
}

impl From<crate::config::Protocol> for Proto {
    fn from(p: crate::config::Protocol) -> Self {
        match p {
            crate::config::Protocol::Tcp => Proto::Tcp,
            crate::config::Protocol::Udp => Proto::Udp,
        }
    }
}

impl TryFrom<u8> for Proto {
    type Error = u8;

    fn try_from(n: u8) -> Result<Self, u8> {
        match n {
            PROTO_TCP => Ok(Proto::Tcp),
            PROTO_UDP => Ok(Proto::Udp),
            other => Err(other),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

impl FromStr for Proto {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(format!("unknown protocol {s:?}: expected tcp or udp")),
        }
    }
}

/// An address as the kernel's keys hold it: network byte order words, IPv4 in
/// the first word, and its family.
pub fn addr_words(addr: IpAddr) -> ([u32; 4], u8) {
    match addr {
        IpAddr::V4(a) => ([u32::from_ne_bytes(a.octets()), 0, 0, 0], FAMILY_V4),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            ([w(0), w(4), w(8), w(12)], FAMILY_V6)
        }
    }
}

/// The inverse of `addr_words`; `None` for an unknown family.
pub fn words_addr(words: [u32; 4], family: u8) -> Option<IpAddr> {
    let b = |w: u32| w.to_ne_bytes();
    match family {
        FAMILY_V4 => Some(IpAddr::from(b(words[0]))),
        FAMILY_V6 => {
            let mut o = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                o[i * 4..i * 4 + 4].copy_from_slice(&b(*w));
            }
            Some(IpAddr::from(o))
        }
        _ => None,
    }
}

pub fn service_key(vip: IpAddr, port: u16, proto: Proto) -> ServiceKey {
    let (addr, family) = addr_words(vip);
    ServiceKey {
        addr,
        port: port.to_be(),
        proto: proto.number(),
        family,
    }
}

/// The flow-table key of a packet from `client` to `vip`.
pub fn flow_key(proto: Proto, client: IpAddr, cport: u16, vip: IpAddr, vport: u16) -> FlowKey {
    let (src, family) = addr_words(client);
    let (dst, _) = addr_words(vip);
    FlowKey {
        src,
        dst,
        sport: cport.to_be(),
        dport: vport.to_be(),
        proto: proto.number(),
        family,
        _pad: [0; 2],
    }
}

pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_key_holds_the_packet_bytes_in_the_first_word() {
        let k = service_key("10.0.0.100".parse().unwrap(), 80, Proto::Tcp);
        let bytes: &[u8] = bytemuck::bytes_of(&k);
        assert_eq!(&bytes[..4], &[10, 0, 0, 100]);
        assert_eq!(&bytes[4..16], &[0; 12]);
        assert_eq!(&bytes[16..18], &[0, 80], "port in network byte order");
        assert_eq!(bytes[18], 6);
        assert_eq!(bytes[19], FAMILY_V4);
    }

    #[test]
    fn v6_key_holds_the_packet_bytes() {
        let vip: IpAddr = "2001:db8::1".parse().unwrap();
        let k = service_key(vip, 443, Proto::Udp);
        let bytes: &[u8] = bytemuck::bytes_of(&k);
        let IpAddr::V6(v6) = vip else { unreachable!() };
        assert_eq!(&bytes[..16], &v6.octets());
        assert_eq!(bytes[18], 17);
        assert_eq!(bytes[19], FAMILY_V6);
    }
}
