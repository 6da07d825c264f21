//! Header parsing: Ethernet (up to two VLAN tags), IPv4 (with options),
//! IPv6 (with up to `MAX_EXT_HEADERS` extension headers), TCP, UDP, and the
//! packet quoted by an ICMP/ICMPv6 error.
//!
//! Every read goes through [`ptr_at`], which checks the access against
//! `data_end` (the verifier insists, and a truncated frame must never be
//! forwarded). Lengths are also checked against the IP header's own length
//! fields, so a datagram shorter than its headers is `PassMalformed` even when
//! the frame carries padding. Fields are read as byte arrays: the packet has no
//! alignment guarantee, and keys keep network byte order.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use lb_common::{FAMILY_V4, FAMILY_V6, FlowKey, PROTO_TCP, PROTO_UDP, Reason};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;

const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
/// ICMPv6 destination unreachable (1), packet too big (2), time exceeded (3).
const ICMPV6_ERRORS: core::ops::RangeInclusive<u8> = 1..=3;
/// ICMP header (type, code, checksum, 4 bytes) before the quoted packet.
const ICMP_HLEN: usize = 8;

const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;
/// Extension headers followed before giving up with `PassExtHeaders`.
const MAX_EXT_HEADERS: usize = 4;

const IP_MF: u16 = 0x2000;
const IP_OFFSET: u16 = 0x1fff;
const IPV6_FRAG_OFFSET: u16 = 0xfff8;
const IPV6_FRAG_MORE: u16 = 0x0001;
const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;

/// Where a packet stands in IP fragmentation.
#[derive(Clone, Copy)]
pub enum Fragment {
    /// Not fragmented (or an atomic IPv6 fragment).
    No,
    /// The first fragment, with the datagram's identification: it has ports.
    First(u32),
    /// A later fragment, with the datagram's identification: no ports.
    Later(u32),
}

/// What the balancer needs from a packet.
pub struct Packet {
    /// The 5-tuple as the client sent it. For an ICMP error this is the quoted
    /// packet's tuple reversed (the quoted packet went from the VIP to the
    /// client). For a later fragment the ports are 0 until looked up.
    pub key: FlowKey,
    pub icmp_error: bool,
    /// A TCP FIN or RST.
    pub closing: bool,
    pub fragment: Fragment,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv4Hdr {
    version_ihl: u8,
    _tos: u8,
    tot_len: [u8; 2],
    id: [u8; 2],
    frag_off: [u8; 2],
    _ttl: u8,
    proto: u8,
    _check: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv6Hdr {
    version_tc_flow: [u8; 4],
    payload_len: [u8; 2],
    next_header: u8,
    _hop_limit: u8,
    src: [[u8; 4]; 4],
    dst: [[u8; 4]; 4],
}

const IPV4_MIN_HLEN: usize = size_of::<Ipv4Hdr>();
const IPV6_HLEN: usize = size_of::<Ipv6Hdr>();
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// A pointer to a `T` at `off` bytes into the frame, if the frame holds it.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Result<*const T, Reason> {
    let start = ctx.data();
    if start + off + size_of::<T>() > ctx.data_end() {
        return Err(Reason::PassMalformed);
    }
    Ok((start + off) as *const T)
}

/// Reads a `T` made of bytes (no alignment needed) at `off`.
#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Result<T, Reason> {
    // SAFETY: `ptr_at` checked the bounds; `T` is a byte array or a struct of
    // byte arrays, so any alignment is fine.
    Ok(unsafe { *ptr_at::<T>(ctx, off)? })
}

#[inline(always)]
fn word(b: [u8; 4]) -> u32 {
    u32::from_ne_bytes(b)
}

/// Parses the frame up to the transport ports.
#[inline(always)]
pub fn packet(ctx: &XdpContext) -> Result<Packet, Reason> {
    let mut l3 = ETH_HLEN;
    let mut ether_type = u16::from_be_bytes(read(ctx, 12)?);
    // Tags are left in place: the real server sits on the same VLAN.
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        ether_type = u16::from_be_bytes(read(ctx, l3 + 2)?);
        l3 += VLAN_HLEN;
        if ether_type == ETH_P_8021Q {
            ether_type = u16::from_be_bytes(read(ctx, l3 + 2)?);
            l3 += VLAN_HLEN;
        }
    }
    match ether_type {
        ETH_P_IP => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3),
        _ => Err(Reason::PassNotIp),
    }
}

/// Checks an IPv4 header at `l3` and returns it with its length (IHL * 4).
#[inline(always)]
fn ipv4_header(ctx: &XdpContext, l3: usize) -> Result<(Ipv4Hdr, usize), Reason> {
    let h: Ipv4Hdr = read(ctx, l3)?;
    let ihl = ((h.version_ihl & 0x0f) as usize) * 4;
    if h.version_ihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return Err(Reason::PassMalformed);
    }
    // The options must be in the frame too.
    ptr_at::<u8>(ctx, l3 + ihl - 1)?;
    Ok((h, ihl))
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Result<Packet, Reason> {
    let (h, ihl) = ipv4_header(ctx, l3)?;
    let tot_len = u16::from_be_bytes(h.tot_len) as usize;
    if tot_len < ihl || l3 + tot_len > ctx.data_end() - ctx.data() {
        return Err(Reason::PassMalformed);
    }
    let key = FlowKey {
        src: [word(h.src), 0, 0, 0],
        dst: [word(h.dst), 0, 0, 0],
        proto: h.proto,
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    let frag_off = u16::from_be_bytes(h.frag_off);
    let id = u16::from_be_bytes(h.id) as u32;
    let fragment = if frag_off & IP_OFFSET != 0 {
        Fragment::Later(id)
    } else if frag_off & IP_MF != 0 {
        Fragment::First(id)
    } else {
        Fragment::No
    };
    let l4 = l3 + ihl;
    let l4_len = tot_len - ihl;
    match (h.proto, fragment) {
        (_, Fragment::Later(_)) => Ok(unported(key, fragment)),
        (PROTO_ICMP, _) => icmp4(ctx, l4, l4_len),
        _ => transport(ctx, key, l4, l4_len, fragment),
    }
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> Result<Packet, Reason> {
    let h: Ipv6Hdr = read(ctx, l3)?;
    let payload_len = u16::from_be_bytes(h.payload_len) as usize;
    let end = l3 + IPV6_HLEN + payload_len;
    if h.version_tc_flow[0] >> 4 != 6 || end > ctx.data_end() - ctx.data() {
        return Err(Reason::PassMalformed);
    }
    let mut key = FlowKey {
        src: h.src.map(word),
        dst: h.dst.map(word),
        family: FAMILY_V6,
        ..FlowKey::default()
    };
    let mut next = h.next_header;
    let mut off = l3 + IPV6_HLEN;
    let mut fragment = Fragment::No;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let [nh, len]: [u8; 2] = read(ctx, off)?;
                off += (len as usize + 1) * 8;
                if off > end {
                    return Err(Reason::PassMalformed);
                }
                next = nh;
            }
            IPV6_FRAGMENT => {
                let f: [u8; 8] = read(ctx, off)?;
                off += 8;
                if off > end {
                    return Err(Reason::PassMalformed);
                }
                next = f[0];
                let frag_off = u16::from_be_bytes([f[2], f[3]]);
                let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                if frag_off & IPV6_FRAG_OFFSET != 0 {
                    key.proto = next;
                    return Ok(unported(key, Fragment::Later(id)));
                }
                if frag_off & IPV6_FRAG_MORE != 0 {
                    fragment = Fragment::First(id);
                }
            }
            _ => break,
        }
    }
    if is_ipv6_ext_header(next) {
        return Err(Reason::PassExtHeaders);
    }
    key.proto = next;
    let l4_len = end - off;
    if next == PROTO_ICMPV6 {
        return icmp6(ctx, off, l4_len);
    }
    transport(ctx, key, off, l4_len, fragment)
}

/// Extension headers (RFC 8200 section 4 and the IANA list), followed or not.
#[inline(always)]
fn is_ipv6_ext_header(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_FRAGMENT | IPV6_DEST_OPTS | 50 | 51 | 135 | 139 | 140 | 253 | 254
    )
}

/// A later fragment: its ports come from the `FRAGMENTS` table.
#[inline(always)]
fn unported(key: FlowKey, fragment: Fragment) -> Packet {
    Packet {
        key,
        icmp_error: false,
        closing: false,
        fragment,
    }
}

/// TCP or UDP at `l4`, `l4_len` bytes long according to the IP header.
#[inline(always)]
fn transport(
    ctx: &XdpContext,
    mut key: FlowKey,
    l4: usize,
    l4_len: usize,
    fragment: Fragment,
) -> Result<Packet, Reason> {
    let mut closing = false;
    match key.proto {
        PROTO_TCP => {
            let t: [u8; TCP_MIN_HLEN] = read(ctx, l4)?;
            let doff = ((t[12] >> 4) as usize) * 4;
            if l4_len < TCP_MIN_HLEN || doff < TCP_MIN_HLEN || doff > l4_len {
                return Err(Reason::PassMalformed);
            }
            key.sport = u16::from_ne_bytes([t[0], t[1]]);
            key.dport = u16::from_ne_bytes([t[2], t[3]]);
            closing = t[13] & (TCP_FIN | TCP_RST) != 0;
        }
        PROTO_UDP => {
            let u: [u8; UDP_HLEN] = read(ctx, l4)?;
            if l4_len < UDP_HLEN {
                return Err(Reason::PassMalformed);
            }
            key.sport = u16::from_ne_bytes([u[0], u[1]]);
            key.dport = u16::from_ne_bytes([u[2], u[3]]);
        }
        _ => return Err(Reason::PassNotService),
    }
    Ok(Packet {
        key,
        icmp_error: false,
        closing,
        fragment,
    })
}

/// The flow an ICMP error quotes: the quoted packet went from VIP:vport to
/// client:cport, so the tuple is reversed into the client's direction.
#[inline(always)]
fn quoted(mut key: FlowKey, ports: [u8; 4]) -> Packet {
    core::mem::swap(&mut key.src, &mut key.dst);
    key.sport = u16::from_ne_bytes([ports[2], ports[3]]);
    key.dport = u16::from_ne_bytes([ports[0], ports[1]]);
    Packet {
        key,
        icmp_error: true,
        closing: false,
        fragment: Fragment::No,
    }
}

/// ICMP destination unreachable (including fragmentation needed) and time
/// exceeded quoting a TCP or UDP packet; any other ICMP is not ours.
#[inline(always)]
fn icmp4(ctx: &XdpContext, l4: usize, l4_len: usize) -> Result<Packet, Reason> {
    let [icmp_type, ..]: [u8; ICMP_HLEN] = read(ctx, l4)?;
    if l4_len < ICMP_HLEN {
        return Err(Reason::PassMalformed);
    }
    if icmp_type != ICMP_DEST_UNREACH && icmp_type != ICMP_TIME_EXCEEDED {
        return Err(Reason::PassNotService);
    }
    let inner = l4 + ICMP_HLEN;
    let (h, ihl) = ipv4_header(ctx, inner)?;
    // The quote must hold the inner header and both ports.
    if l4_len < ICMP_HLEN + ihl + 4 {
        return Err(Reason::PassMalformed);
    }
    let offset = u16::from_be_bytes(h.frag_off) & IP_OFFSET;
    if offset != 0 || (h.proto != PROTO_TCP && h.proto != PROTO_UDP) {
        return Err(Reason::PassNotService);
    }
    let key = FlowKey {
        src: [word(h.src), 0, 0, 0],
        dst: [word(h.dst), 0, 0, 0],
        proto: h.proto,
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    Ok(quoted(key, read(ctx, inner + ihl)?))
}

/// ICMPv6 errors (RFC 4443 types 1-3) quoting a TCP or UDP packet. The quoted
/// packet's own extension headers are not followed: a real server answering
/// from a VIP sends none.
#[inline(always)]
fn icmp6(ctx: &XdpContext, l4: usize, l4_len: usize) -> Result<Packet, Reason> {
    let [icmp_type, ..]: [u8; ICMP_HLEN] = read(ctx, l4)?;
    if l4_len < ICMP_HLEN {
        return Err(Reason::PassMalformed);
    }
    if !ICMPV6_ERRORS.contains(&icmp_type) {
        return Err(Reason::PassNotService);
    }
    let inner = l4 + ICMP_HLEN;
    let h: Ipv6Hdr = read(ctx, inner)?;
    if h.version_tc_flow[0] >> 4 != 6 || l4_len < ICMP_HLEN + IPV6_HLEN + 4 {
        return Err(Reason::PassMalformed);
    }
    if h.next_header != PROTO_TCP && h.next_header != PROTO_UDP {
        return Err(Reason::PassNotService);
    }
    let key = FlowKey {
        src: h.src.map(word),
        dst: h.dst.map(word),
        proto: h.next_header,
        family: FAMILY_V6,
        ..FlowKey::default()
    };
    Ok(quoted(key, read(ctx, inner + IPV6_HLEN)?))
}
