//! Packet builders for the kernel tests and the benchmark.
//!
//! Each layer is built from its payload outwards and fills in its own lengths
//! and checksums, so a test writes what it means
//! (`frame(.., &ipv4.build(&tcp(..)))`) and gets a packet the kernel would
//! accept; tests that want a broken packet truncate or patch the bytes after.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_VRRP: u8 = 112;

pub const IPV6_HOP_BY_HOP: u8 = 0;
pub const IPV6_ROUTING: u8 = 43;
pub const IPV6_FRAGMENT: u8 = 44;
pub const IPV6_DEST_OPTS: u8 = 60;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;

pub const ETH_HLEN: usize = 14;

/// One 802.1Q or 802.1ad tag.
#[derive(Clone, Copy, Debug)]
pub struct Vlan {
    pub tpid: u16,
    pub tci: u16,
}

/// An Ethernet frame with `vlans` tags, outermost first.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    vlans: &[Vlan],
    ether_type: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for v in vlans {
        f.extend_from_slice(&v.tpid.to_be_bytes());
        f.extend_from_slice(&v.tci.to_be_bytes());
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An untagged Ethernet frame carrying an IP packet (the EtherType follows
/// the IP version nibble).
pub fn frame(dst: [u8; 6], src: [u8; 6], ip_packet: &[u8]) -> Vec<u8> {
    let ether_type = match ip_packet.first().map(|b| b >> 4) {
        Some(6) => ETH_P_IPV6,
        _ => ETH_P_IP,
    };
    ethernet(dst, src, &[], ether_type, ip_packet)
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header TCP, UDP and ICMPv6 checksums cover.
fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("pseudo header with mixed families: {src} {dst}"),
    }
    p
}

/// Writes the checksum of `segment` (with its pseudo header) at `at`.
fn fill_l4_checksum(segment: &mut [u8], at: usize, src: IpAddr, dst: IpAddr, proto: u8) {
    let pseudo = pseudo_header(src, dst, proto, segment.len());
    let mut sum = checksum(&[&pseudo, segment]);
    if proto == IPPROTO_UDP && sum == 0 {
        sum = 0xffff;
    }
    segment[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// A TCP segment (20-byte header, fixed sequence numbers) with its checksum.
pub fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // sequence number
    let ack: u32 = if flags & TCP_ACK != 0 { 0x0a0b_0c0d } else { 0 };
    s.extend_from_slice(&ack.to_be_bytes());
    s.push(5 << 4); // data offset: 5 words
    s.push(flags);
    s.extend_from_slice(&64240u16.to_be_bytes()); // window
    s.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    s.extend_from_slice(payload);
    fill_l4_checksum(&mut s, 16, src, dst, IPPROTO_TCP);
    s
}

/// A UDP datagram with its checksum.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(8 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    fill_l4_checksum(&mut s, 6, src, dst, IPPROTO_UDP);
    s
}

/// An ICMPv4 message: type, code, the 4 bytes after the checksum (`rest`,
/// e.g. the next-hop MTU of "fragmentation needed") and the body (for an
/// error, the quoted packet).
pub fn icmpv4(icmp_type: u8, code: u8, rest: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(body);
    let sum = checksum(&[&m]);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An ICMPv6 message (checksum over the IPv6 pseudo header).
pub fn icmpv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    code: u8,
    rest: u32,
    body: &[u8],
) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(body);
    fill_l4_checksum(&mut m, 2, src.into(), dst.into(), IPPROTO_ICMPV6);
    m
}

/// An ARP request (the payload of an `ETH_P_ARP` frame).
pub fn arp_request(sender_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1]; // Ethernet, IPv4, request
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    a
}

/// The IPv4 header fields the tests vary.
#[derive(Clone, Debug)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
    pub ttl: u8,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Options, a multiple of 4 bytes (at most 40).
    pub options: Vec<u8>,
}

impl Ipv4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Self {
            src,
            dst,
            proto,
            id: 0x1234,
            ttl: 64,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            options: Vec::new(),
        }
    }

    /// The header (with total length and checksum) followed by `payload`.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        assert!(
            self.options.len().is_multiple_of(4) && self.options.len() <= 40,
            "IPv4 options must be 4-byte words, at most 40 bytes"
        );
        let hlen = 20 + self.options.len();
        let mut p = Vec::with_capacity(hlen + payload.len());
        p.push(0x40 | (hlen / 4) as u8);
        p.push(0); // DSCP/ECN
        p.extend_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        let flags = u16::from(self.dont_fragment) << 14 | u16::from(self.more_fragments) << 13;
        p.extend_from_slice(&(flags | self.frag_offset).to_be_bytes());
        p.push(self.ttl);
        p.push(self.proto);
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&self.options);
        let sum = checksum(&[&p]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// `payload` (a whole transport segment) split into a first fragment
    /// holding `first_len` bytes (a multiple of 8) and a later one.
    pub fn fragments(&self, payload: &[u8], first_len: usize) -> (Vec<u8>, Vec<u8>) {
        assert!(
            first_len.is_multiple_of(8) && first_len < payload.len(),
            "bad fragment split"
        );
        let first = Ipv4 {
            dont_fragment: false,
            more_fragments: true,
            frag_offset: 0,
            ..self.clone()
        };
        let later = Ipv4 {
            dont_fragment: false,
            more_fragments: false,
            frag_offset: (first_len / 8) as u16,
            ..self.clone()
        };
        (
            first.build(&payload[..first_len]),
            later.build(&payload[first_len..]),
        )
    }
}

/// An IPv6 extension header: its type and its body after the two bytes of
/// next header and length (so the body is 6 bytes short of a multiple of 8).
#[derive(Clone, Debug)]
pub struct ExtHeader {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl ExtHeader {
    /// Hop-by-hop or destination options padded with a PadN option to
    /// `8 * units` bytes.
    pub fn options(kind: u8, units: usize) -> Self {
        assert!(units >= 1, "an extension header is at least 8 bytes");
        let pad = 8 * units - 2;
        let mut body = vec![1, (pad - 2) as u8]; // PadN
        body.resize(pad, 0);
        Self { kind, body }
    }

    /// A type 4 (segment routing) header with no segments left, 24 bytes.
    pub fn routing() -> Self {
        let mut body = vec![4, 0, 0, 0, 0, 0]; // type 4, segments left 0, ...
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        Self {
            kind: IPV6_ROUTING,
            body,
        }
    }

    /// A fragment header; `offset` in 8-byte units.
    pub fn fragment(offset: u16, more: bool, id: u32) -> Self {
        let mut body = (offset << 3 | u16::from(more)).to_be_bytes().to_vec();
        body.extend_from_slice(&id.to_be_bytes());
        Self {
            kind: IPV6_FRAGMENT,
            body,
        }
    }
}

/// The IPv6 header fields the tests vary.
#[derive(Clone, Debug)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The protocol after the extension headers.
    pub next_header: u8,
    pub hop_limit: u8,
    pub ext: Vec<ExtHeader>,
}

impl Ipv6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8) -> Self {
        Self {
            src,
            dst,
            next_header,
            hop_limit: 64,
            ext: Vec::new(),
        }
    }

    /// The header, the extension headers, then `payload`.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut ext = Vec::new();
        for (i, h) in self.ext.iter().enumerate() {
            let len = h.body.len() + 2;
            assert!(len.is_multiple_of(8), "extension header of {len} bytes");
            let next = self.ext.get(i + 1).map_or(self.next_header, |n| n.kind);
            ext.push(next);
            ext.push(if h.kind == IPV6_FRAGMENT {
                0
            } else {
                (len / 8 - 1) as u8
            });
            ext.extend_from_slice(&h.body);
        }
        let first = self.ext.first().map_or(self.next_header, |h| h.kind);
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
        p.push(first);
        p.push(self.hop_limit);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&ext);
        p.extend_from_slice(payload);
        p
    }

    /// `payload` split into a first fragment of `first_len` bytes (a multiple
    /// of 8) and a later one, each with a fragment header after `self.ext`.
    pub fn fragments(&self, payload: &[u8], first_len: usize, id: u32) -> (Vec<u8>, Vec<u8>) {
        assert!(
            first_len.is_multiple_of(8) && first_len < payload.len(),
            "bad fragment split"
        );
        let with = |h: ExtHeader| {
            let mut p = self.clone();
            p.ext.push(h);
            p
        };
        let first = with(ExtHeader::fragment(0, true, id)).build(&payload[..first_len]);
        let later = with(ExtHeader::fragment((first_len / 8) as u16, false, id))
            .build(&payload[first_len..]);
        (first, later)
    }
}

/// Parses a hex dump (whitespace ignored), for known-good packets in tests.
pub fn from_hex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("hex is ASCII");
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex byte {s:?}"))
        })
        .collect()
}

/// Lower-case hex, 16 bytes per line, for failure messages.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    #[test]
    fn ipv4_header_checksum_matches_a_known_header() {
        // The example header from RFC 1071 practice (Wikipedia, "IPv4 header
        // checksum"): checksum 0xb861.
        let mut h = from_hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
        assert_eq!(checksum(&[&h]), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(
            checksum(&[&h]),
            0,
            "a header with its checksum sums to zero"
        );
    }

    // The expected bytes below were produced by scapy 2.5 (`raw(Ether()/...)`),
    // an independent implementation of the same headers and checksums.

    #[test]
    fn tcp_over_ipv4_matches_scapy() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
        let seg = tcp(src.into(), dst.into(), 40000, 80, TCP_SYN, b"hi");
        let got = frame(MAC_A, MAC_B, &Ipv4::new(src, dst, IPPROTO_TCP).build(&seg));
        let want = from_hex(SCAPY_TCP4);
        assert_eq!(to_hex(&got), to_hex(&want));
    }

    #[test]
    fn udp_over_ipv6_with_ext_header_matches_scapy() {
        let (src, dst) = (
            "2001:db8::1".parse().expect("addr"),
            "2001:db8::100".parse().expect("addr"),
        );
        let mut ip = Ipv6::new(src, dst, IPPROTO_UDP);
        ip.ext.push(ExtHeader::options(IPV6_DEST_OPTS, 1));
        let got = frame(
            MAC_A,
            MAC_B,
            &ip.build(&udp(src.into(), dst.into(), 5353, 53, b"query")),
        );
        assert_eq!(to_hex(&got), to_hex(&from_hex(SCAPY_UDP6)));
    }

    #[test]
    fn icmpv6_packet_too_big_matches_scapy() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::fe".parse().expect("addr"),
            "2001:db8::100".parse().expect("addr"),
        );
        let client: Ipv6Addr = "2001:db8::1".parse().expect("addr");
        let inner = Ipv6::new(dst, client, IPPROTO_TCP).build(&tcp(
            dst.into(),
            client.into(),
            80,
            40000,
            TCP_ACK,
            b"",
        ));
        let m = icmpv6(src, dst, ICMPV6_PACKET_TOO_BIG, 0, 1280, &inner);
        let got = frame(MAC_A, MAC_B, &Ipv6::new(src, dst, IPPROTO_ICMPV6).build(&m));
        assert_eq!(to_hex(&got), to_hex(&from_hex(SCAPY_PTB6)));
    }

    #[test]
    fn ipv4_fragments_split_at_eight_byte_boundaries() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
        let seg = udp(src.into(), dst.into(), 1000, 53, &[7; 40]);
        let (first, later) = Ipv4::new(src, dst, IPPROTO_UDP).fragments(&seg, 16);
        assert_eq!(&first[6..8], &[0x20, 0x00], "MF set, offset 0");
        assert_eq!(&later[6..8], &[0x00, 0x02], "offset 16 bytes = 2 units");
        assert_eq!([&first[20..], &later[20..]].concat(), seg);
        assert_eq!(checksum(&[&first[..20]]), 0);
        assert_eq!(checksum(&[&later[..20]]), 0);
    }

    const SCAPY_TCP4: &str = "02000000000a02000000000b08004500002a12344000400614360a0000010a0000649c40005001020304000000005002faf0978b00006869";
    const SCAPY_UDP6: &str = "02000000000a02000000000b86dd6000000000153c4020010db800000000000000000000000120010db8000000000000000000000100110001040000000014e90035000d3e5b7175657279";
    const SCAPY_PTB6: &str = "02000000000a02000000000b86dd6000000000443a4020010db80000000000000000000000fe20010db8000000000000000000000100020034d700000500600000000014064020010db800000000000000000000010020010db800000000000000000000000100509c40010203040a0b0c0d5010faf0a1c20000";
}
