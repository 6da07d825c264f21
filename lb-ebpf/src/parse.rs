//! Header parsing: Ethernet (up to two VLAN tags), IPv4 (with options),
//! IPv6 (with up to `MAX_EXT_HEADERS` extension headers), TCP, UDP, and the
//! packet quoted by an ICMP/ICMPv6 error.
//!
//! Every read goes through [`at`], which checks the access against
//! `data_end` (the verifier insists, and a truncated frame must never be
//! forwarded; for tc, the end of the skb's linear part). Lengths are also
//! checked against the IP header's own length fields (and the whole
//! frame's), so a datagram shorter than its headers is `PassMalformed` even
//! when the frame carries padding. Fields are read as byte arrays: the
//! packet has no alignment guarantee, and keys keep network byte order.

use crate::frame::Frame;
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
/// The longest IPv6 extension header: a length byte of 255 eight-byte units
/// past the first.
const EXT_HEADER_MAX: usize = 256 * 8;
/// The longest TCP header (data offset 15).
const TCP_MAX_HLEN: usize = 60;
/// How deep the parser may read into a frame: two VLAN tags, IPv6 with its
/// longest extension headers, then TCP's longest header (deeper than an
/// ICMPv6 error's quoted IPv6 header and ports, or any IPv4 frame). tc's
/// `Frame::pull_headers` makes this much readable.
pub const HEADERS_MAX: usize =
    ETH_HLEN + 2 * VLAN_HLEN + IPV6_HLEN + MAX_EXT_HEADERS * EXT_HEADER_MAX + TCP_MAX_HLEN;

const IP_MF: u16 = 0x2000;
const IP_OFFSET: u16 = 0x1fff;
const IPV6_FRAG_OFFSET: u16 = 0xfff8;
const IPV6_FRAG_MORE: u16 = 0x0001;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

/// Where a packet stands in IP fragmentation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// Not fragmented (or an atomic IPv6 fragment).
    No,
    /// The first fragment: it has ports.
    First,
    /// A later fragment: no ports.
    Later,
}

/// A packet's [`FragmentKind`] and its datagram's identification (0 when not
/// fragmented). Not an enum with data: LLVM leaves the payload of `No`
/// undefined, and the verifier refuses a program that copies an unset
/// register.
#[derive(Clone, Copy)]
pub struct Fragment {
    pub kind: FragmentKind,
    pub id: u32,
}

impl Fragment {
    pub const NO: Self = Self {
        kind: FragmentKind::No,
        id: 0,
    };

    pub const fn first(id: u32) -> Self {
        Self {
            kind: FragmentKind::First,
            id,
        }
    }

    pub const fn later(id: u32) -> Self {
        Self {
            kind: FragmentKind::Later,
            id,
        }
    }
}

/// What the balancer needs from a packet. `key` is first and the struct is
/// 8-byte aligned so the flow cache can compare the key as five `u64` words.
#[repr(C, align(8))]
pub struct Packet {
    /// The 5-tuple as the client sent it. For an ICMP error this is the quoted
    /// packet's tuple reversed (the quoted packet went from the VIP to the
    /// client). For a later fragment the ports are 0 until looked up.
    pub key: FlowKey,
    pub icmp_error: bool,
    /// A TCP FIN or RST.
    pub closing: bool,
    /// A TCP SYN: the first packet of a connection.
    pub syn: bool,
    pub fragment: Fragment,
}

const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// The frame address `off` bytes in, if the frame holds `len` bytes there.
#[inline(always)]
fn at<C: Frame>(ctx: &C, off: usize, len: usize) -> Result<usize, Reason> {
    let p = ctx.data() + off;
    if p + len > ctx.data_end() {
        return Err(Reason::PassMalformed);
    }
    Ok(p)
}

/// Loads of packet bytes, written as BPF instructions: packet fields have no
/// alignment guarantee, Rust would split an unaligned read into byte loads,
/// and the BPF target has no unaligned-load lowering. The kernel allows
/// unaligned packet loads on the architectures that run this (those with
/// efficient unaligned access), which is what C XDP programs rely on too.
/// Values stay in network byte order (the bytes as they stand).
///
/// # Safety
/// `p` must come from [`at`] with enough bytes checked for the load.
macro_rules! load {
    ($name:ident, $at:ident, $ty:ty, $insn:literal, $insn_at:literal) => {
        #[inline(always)]
        pub(crate) unsafe fn $name(p: usize) -> $ty {
            let v: u64;
            // SAFETY: the caller checked `p` against `data_end`.
            unsafe {
                core::arch::asm!(
                    $insn,
                    out(reg) v,
                    in(reg) p,
                    options(pure, readonly, nostack, preserves_flags)
                );
            }
            v as $ty
        }

        /// The load at `p + OFF`, the offset in the instruction. Only where
        /// the verifier's view of the code stays simple (fixed offsets from
        /// the frame's start): in the full parser LLVM then merged offsets
        /// and pointers in ways the verifier refuses.
        #[inline(always)]
        pub(crate) unsafe fn $at<const OFF: i16>(p: usize) -> $ty {
            let v: u64;
            // SAFETY: the caller checked `p + OFF` against `data_end`.
            unsafe {
                core::arch::asm!(
                    $insn_at,
                    out(reg) v,
                    in(reg) p,
                    off = const OFF,
                    options(pure, readonly, nostack, preserves_flags)
                );
            }
            v as $ty
        }
    };
}
load!(
    load8,
    load8_at,
    u8,
    "{0} = *(u8 *)({1} + 0)",
    "{0} = *(u8 *)({1} + {off})"
);
load!(
    load16,
    load16_at,
    u16,
    "{0} = *(u16 *)({1} + 0)",
    "{0} = *(u16 *)({1} + {off})"
);
load!(
    load32,
    load32_at,
    u32,
    "{0} = *(u32 *)({1} + 0)",
    "{0} = *(u32 *)({1} + {off})"
);

/// Stores into the packet, for the same reason as [`load!`]: a 6-byte MAC
/// address becomes one 4-byte and one 2-byte store instead of six.
///
/// # Safety
/// `p` must come from [`at`] (or an equivalent check) with enough bytes.
macro_rules! store {
    ($name:ident, $ty:ty, $insn:literal) => {
        #[inline(always)]
        pub(crate) unsafe fn $name<const OFF: i16>(p: usize, v: $ty) {
            // SAFETY: the caller checked `p + OFF` against `data_end`.
            unsafe {
                core::arch::asm!(
                    $insn,
                    in(reg) p,
                    in(reg) v as u64,
                    off = const OFF,
                    options(nostack, preserves_flags)
                );
            }
        }
    };
}
store!(store16, u16, "*(u16 *)({0} + {off}) = {1}");
store!(store32, u32, "*(u32 *)({0} + {off}) = {1}");

/// An untagged IPv4 TCP or UDP frame without options, not fragmented (see
/// [`plain_ipv4`]): the fields the balancer reads, as loaded (network byte
/// order), kept in registers until the slow path needs a [`Packet`].
#[derive(Clone, Copy)]
pub struct Plain {
    pub src: u32,
    pub dst: u32,
    /// Both ports in one load: the source port in the low half, as
    /// `FlowKey::words` joins `FlowKey::sport` and `dport`.
    pub ports: u32,
    pub proto: u8,
    /// The TCP flags byte; 0 for UDP.
    pub flags: u8,
}

impl Plain {
    /// Not a SYN: a packet that may use the flow cache.
    #[inline(always)]
    pub fn cacheable(&self) -> bool {
        self.flags & TCP_SYN == 0
    }

    /// A TCP FIN or RST.
    #[inline(always)]
    pub fn closing(&self) -> bool {
        self.flags & (TCP_FIN | TCP_RST) != 0
    }

    #[inline(always)]
    pub fn key(&self) -> FlowKey {
        FlowKey {
            src: [self.src, 0, 0, 0],
            dst: [self.dst, 0, 0, 0],
            sport: self.ports as u16,
            dport: (self.ports >> 16) as u16,
            proto: self.proto,
            family: FAMILY_V4,
            _pad: [0; 2],
        }
    }

    /// The packet as the full parser would have returned it.
    #[inline(always)]
    pub fn packet(&self) -> Packet {
        Packet {
            key: self.key(),
            icmp_error: false,
            closing: self.closing(),
            syn: self.flags & TCP_SYN != 0,
            fragment: Fragment::NO,
        }
    }
}

/// Bytes of an untagged IPv4 frame without options up to the end of a
/// minimal TCP header (a UDP header ends before).
const PLAIN_V4_LEN: usize = ETH_HLEN + IPV4_MIN_HLEN + TCP_MIN_HLEN;

/// The common frame in one bounds check and loads at fixed offsets:
/// untagged IPv4 without options, not fragmented, TCP or UDP, to a unicast
/// MAC. Measured: the full parser's chain of checks was most of what a
/// packet for no service costs. Only a frame the full parser would read the
/// same way and accept is returned; `None` (anything else, any check
/// failing) leaves it to [`any_packet`], which then gives the verdict and
/// the reason.
#[inline(always)]
pub fn plain_ipv4<C: Frame>(ctx: &C) -> Option<Plain> {
    let start = ctx.data();
    let frame_len = ctx.len();
    if start + PLAIN_V4_LEN > ctx.data_end() {
        return None;
    }
    // SAFETY: every load below is inside the PLAIN_V4_LEN bytes checked.
    let (dst_mac, head, tot_len, frag_off, proto) = unsafe {
        (
            load8_at::<0>(start),
            load32_at::<12>(start),
            u16::from_be(load16_at::<16>(start)) as usize,
            load16_at::<20>(start),
            load8_at::<23>(start),
        )
    };
    // Ethertype 0x0800, then version 4 and IHL 5, whatever the TOS byte.
    const HEAD_MASK: u32 = u32::from_ne_bytes([0xff, 0xff, 0xff, 0]);
    const HEAD: u32 = u32::from_ne_bytes([0x08, 0x00, 0x45, 0]);
    // More fragments, or an offset: the flags' low bit and the 13 bits after.
    const FRAGMENTED: u16 = u16::from_ne_bytes([0x3f, 0xff]);
    if head & HEAD_MASK != HEAD
        || dst_mac & GROUP_BIT != 0
        || frag_off & FRAGMENTED != 0
        || tot_len < IPV4_MIN_HLEN
        || ETH_HLEN + tot_len > frame_len
    {
        return None;
    }
    let l4_len = tot_len - IPV4_MIN_HLEN;
    let mut flags = 0;
    match proto {
        PROTO_TCP => {
            // SAFETY: as above.
            let doff = unsafe { (load8_at::<46>(start) >> 4) as usize * 4 };
            if l4_len < TCP_MIN_HLEN || doff < TCP_MIN_HLEN || doff > l4_len {
                return None;
            }
            // SAFETY: as above.
            flags = unsafe { load8_at::<47>(start) };
        }
        PROTO_UDP if l4_len >= UDP_HLEN => {}
        _ => return None,
    }
    // SAFETY: as above.
    unsafe {
        Some(Plain {
            src: load32_at::<26>(start),
            dst: load32_at::<30>(start),
            ports: load32_at::<34>(start),
            proto,
            flags,
        })
    }
}

/// Parses any frame up to the transport ports.
#[inline(always)]
pub fn any_packet<C: Frame>(ctx: &C) -> Result<Packet, Reason> {
    // SAFETY (all loads below): each address comes from `at` with the
    // loaded bytes included in the checked length.
    let eth = at(ctx, 0, ETH_HLEN)?;
    let mut ether_type = u16::from_be(unsafe { load16(eth + 12) });
    let mut l3 = ETH_HLEN;
    // Tags are left in place: the real server sits on the same VLAN.
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        ether_type = u16::from_be(unsafe { load16(at(ctx, l3, VLAN_HLEN)? + 2) });
        l3 += VLAN_HLEN;
        if ether_type == ETH_P_8021Q {
            ether_type = u16::from_be(unsafe { load16(at(ctx, l3, VLAN_HLEN)? + 2) });
            l3 += VLAN_HLEN;
        }
    }
    match ether_type {
        // Not addressed to this host: readdressed, its broadcast or multicast
        // destination would become the source of the frame sent (which
        // bridges drop, and switches learn). The stack drops it.
        ETH_P_IP | ETH_P_IPV6 if unsafe { load8(eth) } & GROUP_BIT != 0 => {
            Err(Reason::PassNotService)
        }
        ETH_P_IP => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3),
        _ => Err(Reason::PassNotIp),
    }
}

/// The individual/group bit of a MAC address, in its first byte: set in a
/// broadcast or multicast address.
const GROUP_BIT: u8 = 0x01;

/// The fields of an IPv4 header the balancer uses.
struct Ipv4 {
    ihl: usize,
    tot_len: usize,
    id: u32,
    frag_off: u16,
    proto: u8,
    src: u32,
    dst: u32,
}

/// Checks an IPv4 header (options included) at `l3` and reads it.
#[inline(always)]
fn ipv4_header<C: Frame>(ctx: &C, l3: usize) -> Result<Ipv4, Reason> {
    let h = at(ctx, l3, IPV4_MIN_HLEN)?;
    // SAFETY: the 20-byte header was checked.
    let version_ihl = unsafe { load8(h) };
    let ihl = ((version_ihl & 0x0f) as usize) * 4;
    if version_ihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return Err(Reason::PassMalformed);
    }
    // The options must be in the frame too.
    at(ctx, l3, ihl)?;
    // SAFETY: as above.
    unsafe {
        Ok(Ipv4 {
            ihl,
            tot_len: u16::from_be(load16(h + 2)) as usize,
            id: u16::from_be(load16(h + 4)) as u32,
            frag_off: u16::from_be(load16(h + 6)),
            proto: load8(h + 9),
            src: load32(h + 12),
            dst: load32(h + 16),
        })
    }
}

#[inline(always)]
fn ipv4<C: Frame>(ctx: &C, l3: usize) -> Result<Packet, Reason> {
    let h = ipv4_header(ctx, l3)?;
    if h.tot_len < h.ihl || l3 + h.tot_len > ctx.len() {
        return Err(Reason::PassMalformed);
    }
    let key = FlowKey {
        src: [h.src, 0, 0, 0],
        dst: [h.dst, 0, 0, 0],
        proto: h.proto,
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    let fragment = if h.frag_off & IP_OFFSET != 0 {
        Fragment::later(h.id)
    } else if h.frag_off & IP_MF != 0 {
        Fragment::first(h.id)
    } else {
        Fragment::NO
    };
    let l4 = l3 + h.ihl;
    let l4_len = h.tot_len - h.ihl;
    if fragment.kind == FragmentKind::Later {
        return Ok(unported(key, fragment));
    }
    match h.proto {
        PROTO_ICMP => icmp4(ctx, l4, l4_len, h.dst),
        _ => transport(ctx, key, l4, l4_len, fragment),
    }
}

/// Reads the two addresses of an IPv6 header at `h` (checked by the caller).
///
/// # Safety
/// `h` must come from [`at`] with `IPV6_HLEN` bytes.
#[inline(always)]
unsafe fn ipv6_addrs(h: usize, key: &mut FlowKey) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        key.src = [
            load32(h + 8),
            load32(h + 12),
            load32(h + 16),
            load32(h + 20),
        ];
        key.dst = [
            load32(h + 24),
            load32(h + 28),
            load32(h + 32),
            load32(h + 36),
        ];
    }
}

#[inline(always)]
fn ipv6<C: Frame>(ctx: &C, l3: usize) -> Result<Packet, Reason> {
    let h = at(ctx, l3, IPV6_HLEN)?;
    // SAFETY (all loads below): addresses from `at`, lengths covered.
    let (version, payload_len, mut next) = unsafe {
        (
            load8(h) >> 4,
            u16::from_be(load16(h + 4)) as usize,
            load8(h + 6),
        )
    };
    let end = l3 + IPV6_HLEN + payload_len;
    if version != 6 || end > ctx.len() {
        return Err(Reason::PassMalformed);
    }
    let mut key = FlowKey {
        family: FAMILY_V6,
        ..FlowKey::default()
    };
    unsafe { ipv6_addrs(h, &mut key) };
    let mut off = l3 + IPV6_HLEN;
    let mut fragment = Fragment::NO;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let e = at(ctx, off, 2)?;
                let (nh, len) = unsafe { (load8(e), load8(e + 1)) };
                off += (len as usize + 1) * 8;
                if off > end {
                    return Err(Reason::PassMalformed);
                }
                next = nh;
            }
            IPV6_FRAGMENT => {
                let f = at(ctx, off, 8)?;
                off += 8;
                if off > end {
                    return Err(Reason::PassMalformed);
                }
                let (nh, frag_off, id) = unsafe {
                    (
                        load8(f),
                        u16::from_be(load16(f + 2)),
                        u32::from_be(load32(f + 4)),
                    )
                };
                next = nh;
                if frag_off & IPV6_FRAG_OFFSET != 0 {
                    key.proto = next;
                    return Ok(unported(key, Fragment::later(id)));
                }
                if frag_off & IPV6_FRAG_MORE != 0 {
                    fragment = Fragment::first(id);
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
        return icmp6(ctx, off, l4_len, &key.dst);
    }
    transport(ctx, key, off, l4_len, fragment)
}

/// Extension headers (RFC 8200 section 4 and the IANA list), followed or not.
#[inline(always)]
fn is_ipv6_ext_header(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP
            | IPV6_ROUTING
            | IPV6_FRAGMENT
            | IPV6_DEST_OPTS
            | 50
            | 51
            | 135
            | 139
            | 140
            | 253
            | 254
    )
}

/// A later fragment: its ports come from the `FRAGMENTS` table.
#[inline(always)]
fn unported(key: FlowKey, fragment: Fragment) -> Packet {
    Packet {
        key,
        icmp_error: false,
        closing: false,
        syn: false,
        fragment,
    }
}

/// TCP or UDP at `l4`, `l4_len` bytes long according to the IP header.
#[inline(always)]
fn transport<C: Frame>(
    ctx: &C,
    mut key: FlowKey,
    l4: usize,
    l4_len: usize,
    fragment: Fragment,
) -> Result<Packet, Reason> {
    let (mut closing, mut syn) = (false, false);
    match key.proto {
        PROTO_TCP => {
            let t = at(ctx, l4, TCP_MIN_HLEN)?;
            // SAFETY: the 20-byte header was checked.
            let (doff, flags) = unsafe { (((load8(t + 12) >> 4) as usize) * 4, load8(t + 13)) };
            if l4_len < TCP_MIN_HLEN || doff < TCP_MIN_HLEN || doff > l4_len {
                return Err(Reason::PassMalformed);
            }
            // SAFETY: as above.
            unsafe { (key.sport, key.dport) = (load16(t), load16(t + 2)) };
            closing = flags & (TCP_FIN | TCP_RST) != 0;
            syn = flags & TCP_SYN != 0;
        }
        PROTO_UDP => {
            let u = at(ctx, l4, UDP_HLEN)?;
            if l4_len < UDP_HLEN {
                return Err(Reason::PassMalformed);
            }
            // SAFETY: the 8-byte header was checked.
            unsafe { (key.sport, key.dport) = (load16(u), load16(u + 2)) };
        }
        _ => return Err(Reason::PassNotService),
    }
    Ok(Packet {
        key,
        icmp_error: false,
        closing,
        syn,
        fragment,
    })
}

/// The flow an ICMP error quotes: the quoted packet went from VIP:vport to
/// client:cport, so the tuple is reversed into the client's direction.
/// `ports` is the address of the quoted transport header (4 bytes checked).
#[inline(always)]
fn quoted(mut key: FlowKey, ports: usize) -> Packet {
    core::mem::swap(&mut key.src, &mut key.dst);
    // SAFETY: the caller checked 4 bytes at `ports`.
    unsafe { (key.dport, key.sport) = (load16(ports), load16(ports + 2)) };
    Packet {
        key,
        icmp_error: true,
        closing: false,
        syn: false,
        fragment: Fragment::NO,
    }
}

/// ICMP destination unreachable (including fragmentation needed) and time
/// exceeded quoting a TCP or UDP packet sent from the address the error is
/// addressed to (`outer_dst`: in direct routing, the VIP the real answered
/// from); any other ICMP is not ours.
#[inline(always)]
fn icmp4<C: Frame>(ctx: &C, l4: usize, l4_len: usize, outer_dst: u32) -> Result<Packet, Reason> {
    let icmp = at(ctx, l4, ICMP_HLEN)?;
    if l4_len < ICMP_HLEN {
        return Err(Reason::PassMalformed);
    }
    // SAFETY: the ICMP header was checked.
    let icmp_type = unsafe { load8(icmp) };
    if icmp_type != ICMP_DEST_UNREACH && icmp_type != ICMP_TIME_EXCEEDED {
        return Err(Reason::PassNotService);
    }
    let inner = l4 + ICMP_HLEN;
    let h = ipv4_header(ctx, inner)?;
    // The quote must hold the inner header and both ports.
    let ports = at(ctx, inner + h.ihl, 4)?;
    if l4_len < ICMP_HLEN + h.ihl + 4 {
        return Err(Reason::PassMalformed);
    }
    if h.frag_off & IP_OFFSET != 0
        || (h.proto != PROTO_TCP && h.proto != PROTO_UDP)
        || h.src != outer_dst
    {
        return Err(Reason::PassNotService);
    }
    let key = FlowKey {
        src: [h.src, 0, 0, 0],
        dst: [h.dst, 0, 0, 0],
        proto: h.proto,
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    Ok(quoted(key, ports))
}

/// ICMPv6 errors (RFC 4443 types 1-3) quoting a TCP or UDP packet sent from
/// the address the error is addressed to (as `icmp4`). The quoted packet's
/// own extension headers are not followed: a real server answering from a
/// VIP sends none.
#[inline(always)]
fn icmp6<C: Frame>(
    ctx: &C,
    l4: usize,
    l4_len: usize,
    outer_dst: &[u32; 4],
) -> Result<Packet, Reason> {
    let icmp = at(ctx, l4, ICMP_HLEN)?;
    if l4_len < ICMP_HLEN {
        return Err(Reason::PassMalformed);
    }
    // SAFETY: the ICMP header was checked.
    let icmp_type = unsafe { load8(icmp) };
    if !ICMPV6_ERRORS.contains(&icmp_type) {
        return Err(Reason::PassNotService);
    }
    let inner = at(ctx, l4 + ICMP_HLEN, IPV6_HLEN + 4)?;
    if l4_len < ICMP_HLEN + IPV6_HLEN + 4 {
        return Err(Reason::PassMalformed);
    }
    // SAFETY: the inner header and the ports were checked.
    let (version, next) = unsafe { (load8(inner) >> 4, load8(inner + 6)) };
    if version != 6 {
        return Err(Reason::PassMalformed);
    }
    if next != PROTO_TCP && next != PROTO_UDP {
        return Err(Reason::PassNotService);
    }
    let mut key = FlowKey {
        proto: next,
        family: FAMILY_V6,
        ..FlowKey::default()
    };
    // SAFETY: as above.
    unsafe { ipv6_addrs(inner, &mut key) };
    let d = outer_dst;
    if (key.src[0] ^ d[0]) | (key.src[1] ^ d[1]) | (key.src[2] ^ d[2]) | (key.src[3] ^ d[3]) != 0 {
        return Err(Reason::PassNotService);
    }
    Ok(quoted(key, inner + IPV6_HLEN))
}
