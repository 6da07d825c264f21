//! Mutation testing of the XDP and tc programs through `BPF_PROG_TEST_RUN`
//! (verdicts in XDP's words, see `hook`): frames
//! derived from the kernel test table's forwarded cases, mutated at random
//! (deterministically, from a seed), run one by one, each verdict checked
//! against an oracle written apart from the program:
//! - never `XDP_ABORTED`, only `XDP_TX`, `XDP_PASS` or `XDP_DROP`;
//! - `XDP_TX` only for valid service traffic (by [`service_traffic`]), and
//!   the output differs from the input in the 12 MAC bytes only: destination
//!   a real of the world, source the frame's old destination;
//! - `XDP_PASS` leaves the frame untouched; `XDP_DROP` only for a service;
//! - every verdict is counted once in `REASON_STATS`.
//!
//! Used by the kernel test (`mutated_frames_root`, 200,000 frames) and by
//! `cargo xtask bench` (10^6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::{Array, PerCpuArray},
};
use lb_common::{
    Counters, FAMILY_V4, FAMILY_V6, PROTO_TCP, PROTO_UDP, REAL_UP, RING_SIZE, Real, Reason,
    Service, ServiceKey, maps, rings_of, vip_filter_bit,
};

use crate::hook::{Hook, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX};
use crate::packet::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ExtHeader, ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED, ICMPV6_PACKET_TOO_BIG, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP, IPV6_DEST_OPTS, IPV6_HOP_BY_HOP, Ipv4, Ipv6, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN,
    Vlan, ethernet, frame, icmpv4, icmpv6, tcp, to_hex, udp,
};

pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// The kernel table's services: (VIP, port, protocol, real); port 0 = all.
const SERVICES: [(IpAddr, u16, u8, u32); 5] = [
    (IpAddr::V4(VIP4), 80, PROTO_TCP, 1),
    (IpAddr::V4(VIP4), 53, PROTO_UDP, 11),
    (IpAddr::V6(VIP6), 80, PROTO_TCP, 21),
    (IpAddr::V6(VIP6), 53, PROTO_UDP, 31),
    (IpAddr::V4(VIP4), 0, PROTO_TCP, 2),
];

fn real_mac(real: u32) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, real as u8]
}

fn addr_words(ip: IpAddr) -> ([u32; 4], u8) {
    match ip {
        IpAddr::V4(a) => ([u32::from_ne_bytes(a.octets()), 0, 0, 0], FAMILY_V4),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            ([w(0), w(4), w(8), w(12)], FAMILY_V6)
        }
    }
}

/// Fills the maps with the table's world, as the daemon would.
pub fn configure(ebpf: &mut Ebpf) -> Result<()> {
    for (id, &(vip, port, proto, real)) in SERVICES.iter().enumerate() {
        let id = id as u32;
        let mut reals: Array<_, Real> =
            Array::try_from(ebpf.map_mut(maps::REALS).context("REALS")?)?;
        reals.set(
            real,
            Real {
                mac: real_mac(real),
                flags: REAL_UP,
                service: id,
            },
            0,
        )?;
        let ring = rings_of(id)[0];
        let mut rings: Array<_, u32> =
            Array::try_from(ebpf.map_mut(maps::RINGS).context("RINGS")?)?;
        for i in 0..RING_SIZE {
            rings.set(ring * RING_SIZE + i, real, 0)?;
        }
        let (addr, family) = addr_words(vip);
        let key = ServiceKey {
            addr,
            port: port.to_be(),
            proto,
            family,
        };
        let mut filter: Array<_, u64> =
            Array::try_from(ebpf.map_mut(maps::VIP_FILTER).context("VIP_FILTER")?)?;
        let (word, bit) = vip_filter_bit(&addr);
        let old = filter.get(&word, 0)?;
        filter.set(word, old | bit, 0)?;
        crate::services::put(
            ebpf,
            key,
            Service {
                id,
                ring,
                persist_timeout_s: 0,
            },
        )?;
    }
    Ok(())
}

fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4::new(s, d, proto).build(payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6::new(s, d, proto).build(payload),
        _ => unreachable!("one family per packet"),
    }
}

/// The table's forwarded frames: TCP and UDP over both families, a FIN,
/// the port-0 service, IPv4 options, IPv6 extension headers, VLAN tags,
/// fragments and ICMP errors about VIP flows.
pub fn seeds() -> Vec<Vec<u8>> {
    let (c4, v4, c6, v6): (IpAddr, IpAddr, IpAddr, IpAddr) =
        (CLIENT4.into(), VIP4.into(), CLIENT6.into(), VIP6.into());
    let tcp_frame = |c: IpAddr, v: IpAddr, port: u16, flags: u8| {
        let seg = tcp(c, v, 40000, port, flags, b"GET / HTTP/1.0\r\n\r\n");
        frame(LB_MAC, ROUTER_MAC, &ip_packet(c, v, IPPROTO_TCP, &seg))
    };
    let udp_frame = |c: IpAddr, v: IpAddr| {
        let seg = udp(c, v, 40000, 53, b"query");
        frame(LB_MAC, ROUTER_MAC, &ip_packet(c, v, IPPROTO_UDP, &seg))
    };
    let tagged = |f: &[u8], vlans: &[Vlan]| {
        let ether_type = u16::from_be_bytes([f[12], f[13]]);
        ethernet(LB_MAC, ROUTER_MAC, vlans, ether_type, &f[14..])
    };
    let v4_syn = tcp_frame(c4, v4, 80, TCP_SYN);
    let v6_syn = tcp_frame(c6, v6, 80, TCP_SYN);
    let options = {
        let mut ip = Ipv4::new(CLIENT4, VIP4, IPPROTO_TCP);
        ip.options = vec![7, 7, 4, 0, 0, 0, 0, 0];
        frame(
            LB_MAC,
            ROUTER_MAC,
            &ip.build(&tcp(c4, v4, 40001, 80, TCP_SYN, b"x")),
        )
    };
    let ext = {
        let mut ip = Ipv6::new(CLIENT6, VIP6, IPPROTO_TCP);
        ip.ext = vec![
            ExtHeader::options(IPV6_HOP_BY_HOP, 1),
            ExtHeader::routing(),
            ExtHeader::options(IPV6_DEST_OPTS, 2),
        ];
        frame(
            LB_MAC,
            ROUTER_MAC,
            &ip.build(&tcp(c6, v6, 40010, 80, TCP_SYN, b"x")),
        )
    };
    let (first4, later4) = {
        let ip = Ipv4 {
            id: 0x4242,
            ..Ipv4::new(CLIENT4, VIP4, IPPROTO_UDP)
        };
        let (a, b) = ip.fragments(&udp(c4, v4, 5000, 53, &[0x55; 64]), 32);
        (frame(LB_MAC, ROUTER_MAC, &a), frame(LB_MAC, ROUTER_MAC, &b))
    };
    let (first6, later6) = {
        let (a, b) = Ipv6::new(CLIENT6, VIP6, IPPROTO_UDP).fragments(
            &udp(c6, v6, 5000, 53, &[0x66; 64]),
            32,
            0xdead_beef,
        );
        (frame(LB_MAC, ROUTER_MAC, &a), frame(LB_MAC, ROUTER_MAC, &b))
    };
    let icmp4 = {
        let seg = tcp(v4, c4, 80, 41000, TCP_ACK | TCP_PSH, &[0; 1400]);
        let quoted = Ipv4::new(VIP4, CLIENT4, IPPROTO_TCP).build(&seg)[..548].to_vec();
        let m = icmpv4(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400, &quoted);
        frame(
            LB_MAC,
            ROUTER_MAC,
            &Ipv4::new(Ipv4Addr::new(192, 0, 2, 1), VIP4, IPPROTO_ICMP).build(&m),
        )
    };
    let icmp6 = {
        let seg = tcp(v6, c6, 80, 41000, TCP_ACK | TCP_PSH, &[0; 1400]);
        let quoted = Ipv6::new(VIP6, CLIENT6, IPPROTO_TCP).build(&seg)[..1184].to_vec();
        let m = icmpv6(ROUTER6, VIP6, ICMPV6_PACKET_TOO_BIG, 0, 1280, &quoted);
        frame(
            LB_MAC,
            ROUTER_MAC,
            &Ipv6::new(ROUTER6, VIP6, IPPROTO_ICMPV6).build(&m),
        )
    };
    vec![
        v4_syn.clone(),
        tcp_frame(c4, v4, 80, TCP_ACK),
        tcp_frame(c4, v4, 80, TCP_FIN | TCP_ACK),
        tcp_frame(c4, v4, 8080, TCP_SYN),
        udp_frame(c4, v4),
        v6_syn.clone(),
        udp_frame(c6, v6),
        options,
        ext,
        tagged(
            &v4_syn,
            &[Vlan {
                tpid: ETH_P_8021Q,
                tci: 100,
            }],
        ),
        tagged(
            &v6_syn,
            &[
                Vlan {
                    tpid: ETH_P_8021AD,
                    tci: 10,
                },
                Vlan {
                    tpid: ETH_P_8021Q,
                    tci: 100,
                },
            ],
        ),
        first4,
        later4,
        first6,
        later6,
        icmp4,
        icmp6,
    ]
}

/// A small deterministic PRNG (xorshift64*): the same seed, the same run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// One to four mutations of `seed`: bit flips, byte and 16-bit field
/// overwrites (mostly in the headers, with boundary values), truncation,
/// extension. Never shorter than an Ethernet header, which
/// `BPF_PROG_TEST_RUN` refuses.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut f = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        // Headers are in the first 120 bytes; most mutations land there.
        let span = if rng.below(4) == 0 {
            f.len()
        } else {
            f.len().min(120)
        };
        let at = rng.below(span);
        match rng.below(6) {
            0 => f[at] ^= 1 << rng.below(8),
            1 => f[at] = rng.next_u64() as u8,
            2 if at + 1 < f.len() => {
                let v: u16 = match rng.below(5) {
                    0 => 0,
                    1 => 0xffff,
                    2 => u16::from_be_bytes([f[at], f[at + 1]]).wrapping_add(1),
                    3 => u16::from_be_bytes([f[at], f[at + 1]]).wrapping_sub(1),
                    _ => rng.next_u64() as u16,
                };
                f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            3 => f.truncate((14 + rng.below(f.len())).min(f.len())),
            4 => {
                for _ in 0..1 + rng.below(16) {
                    f.push(rng.next_u64() as u8);
                }
            }
            _ => {
                // A whole field swapped for another ether type or protocol.
                let values = [
                    ETH_P_IP,
                    ETH_P_IPV6,
                    ETH_P_8021Q,
                    ETH_P_8021AD,
                    0x0806,
                    6,
                    17,
                    1,
                    58,
                    44,
                ];
                if at + 1 < f.len() {
                    let v = values[rng.below(values.len())];
                    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    f
}

/// Whether the frame is (by its own headers) traffic of a service of the
/// world, with lengths consistent, as the data-plane rules in the README
/// define it; `later_fragment`: a non-first fragment to a service VIP,
/// which is forwarded only if its first fragment was seen.
#[derive(Debug, PartialEq, Eq)]
pub enum Class {
    Service,
    LaterFragment,
    Other,
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

fn is_service(dst: IpAddr, proto: u8, port: u16) -> bool {
    SERVICES
        .iter()
        .any(|&(vip, p, pr, _)| vip == dst && pr == proto && (p == port || p == 0))
}

fn is_vip(dst: IpAddr, proto: u8) -> bool {
    SERVICES
        .iter()
        .any(|&(vip, _, pr, _)| vip == dst && pr == proto)
}

/// TCP or UDP at `l4` of length `l4_len` (per the IP header): the
/// destination port if the header is whole and consistent.
fn l4_port(f: &[u8], l4: usize, l4_len: usize, proto: u8) -> Option<u16> {
    match proto {
        IPPROTO_TCP => {
            let doff = usize::from(*f.get(l4 + 12)? >> 4) * 4;
            (f.len() >= l4 + 20 && l4_len >= 20 && doff >= 20 && doff <= l4_len)
                .then(|| be16(f, l4 + 2))?
        }
        IPPROTO_UDP => (f.len() >= l4 + 8 && l4_len >= 8).then(|| be16(f, l4 + 2))?,
        _ => None,
    }
}

pub fn service_traffic(f: &[u8]) -> Class {
    classify(f).unwrap_or(Class::Other)
}

fn classify(f: &[u8]) -> Option<Class> {
    let mut l3 = 14;
    let mut et = be16(f, 12)?;
    if et == ETH_P_8021Q || et == ETH_P_8021AD {
        et = be16(f, l3 + 2)?;
        l3 += 4;
        if et == ETH_P_8021Q {
            et = be16(f, l3 + 2)?;
            l3 += 4;
        }
    }
    match et {
        // A broadcast or multicast destination MAC: not for this host.
        ETH_P_IP | ETH_P_IPV6 if f[0] & 1 != 0 => None,
        ETH_P_IP => ipv4(f, l3),
        ETH_P_IPV6 => ipv6(f, l3),
        _ => None,
    }
}

fn ipv4(f: &[u8], l3: usize) -> Option<Class> {
    let vihl = *f.get(l3)?;
    let ihl = usize::from(vihl & 0xf) * 4;
    let tot = usize::from(be16(f, l3 + 2)?);
    if vihl >> 4 != 4 || ihl < 20 || f.len() < l3 + ihl || tot < ihl || l3 + tot > f.len() {
        return None;
    }
    let frag = be16(f, l3 + 6)?;
    let proto = f[l3 + 9];
    let dst: IpAddr = Ipv4Addr::new(f[l3 + 16], f[l3 + 17], f[l3 + 18], f[l3 + 19]).into();
    let (l4, l4_len) = (l3 + ihl, tot - ihl);
    if frag & 0x1fff != 0 {
        return is_vip(dst, proto).then_some(Class::LaterFragment);
    }
    if proto == IPPROTO_ICMP {
        let t = *f.get(l4)?;
        if f.len() < l4 + 8 || l4_len < 8 || (t != 3 && t != 11) {
            return None;
        }
        let inner = l4 + 8;
        let ivihl = *f.get(inner)?;
        let iihl = usize::from(ivihl & 0xf) * 4;
        if ivihl >> 4 != 4 || iihl < 20 || f.len() < inner + iihl + 4 || l4_len < 8 + iihl + 4 {
            return None;
        }
        let iproto = f[inner + 9];
        let isrc: IpAddr =
            Ipv4Addr::new(f[inner + 12], f[inner + 13], f[inner + 14], f[inner + 15]).into();
        let sport = be16(f, inner + iihl)?;
        let ok =
            be16(f, inner + 6)? & 0x1fff == 0 && isrc == dst && is_service(isrc, iproto, sport);
        return ok.then_some(Class::Service);
    }
    let port = l4_port(f, l4, l4_len, proto)?;
    is_service(dst, proto, port).then_some(Class::Service)
}

fn ipv6(f: &[u8], l3: usize) -> Option<Class> {
    let h = f.get(l3..l3 + 40)?;
    let end = l3 + 40 + usize::from(be16(f, l3 + 4)?);
    if h[0] >> 4 != 6 || end > f.len() {
        return None;
    }
    let dst_bytes: [u8; 16] = h[24..40].try_into().ok()?;
    let dst: IpAddr = Ipv6Addr::from(dst_bytes).into();
    let (mut next, mut off) = (h[6], l3 + 40);
    for _ in 0..4 {
        match next {
            0 | 43 | 60 => {
                let (nh, len) = (*f.get(off)?, *f.get(off + 1)?);
                off += (usize::from(len) + 1) * 8;
                if off > end {
                    return None;
                }
                next = nh;
            }
            44 => {
                let nh = *f.get(off)?;
                let fo = be16(f, off + 2)?;
                f.get(off + 7)?;
                off += 8;
                if off > end {
                    return None;
                }
                next = nh;
                if fo & 0xfff8 != 0 {
                    return is_vip(dst, next).then_some(Class::LaterFragment);
                }
            }
            _ => break,
        }
    }
    if matches!(
        next,
        0 | 43 | 44 | 60 | 50 | 51 | 135 | 139 | 140 | 253 | 254
    ) {
        return None;
    }
    let l4_len = end - off;
    if next == IPPROTO_ICMPV6 {
        let t = *f.get(off)?;
        let inner = off + 8;
        if !(1..=3).contains(&t) || l4_len < 8 + 44 || f.len() < inner + 44 {
            return None;
        }
        let inn = &f[inner..inner + 44];
        let isrc: [u8; 16] = inn[8..24].try_into().ok()?;
        let isrc: IpAddr = Ipv6Addr::from(isrc).into();
        let sport = be16(inn, 40)?;
        let ok = inn[0] >> 4 == 6 && isrc == dst && is_service(isrc, inn[6], sport);
        return ok.then_some(Class::Service);
    }
    let port = l4_port(f, off, l4_len, next)?;
    is_service(dst, next, port).then_some(Class::Service)
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub frames: u64,
    /// Frames the test run refuses for the hook (`Hook::refuses`), not run.
    pub refused: u64,
    pub tx: u64,
    pub pass: u64,
    pub drop: u64,
}

fn reason_total(ebpf: &Ebpf) -> Result<u64> {
    let m: PerCpuArray<_, Counters> =
        PerCpuArray::try_from(ebpf.map(maps::REASON_STATS).context("REASON_STATS")?)?;
    let mut n = 0;
    for r in Reason::ALL {
        n += m
            .get(&(r as u32), 0)?
            .iter()
            .map(|c| c.packets)
            .sum::<u64>();
    }
    Ok(n)
}

/// Runs `count` mutated frames through `hook`'s program (configured with
/// [`configure`]); the first failure of the oracle is an error naming the
/// frame in hex.
pub fn run(ebpf: &Ebpf, hook: Hook, count: u64, seed: u64) -> Result<Summary> {
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    let mut s = Summary::default();
    let counted_before = reason_total(ebpf)?;
    let mut out = vec![0u8; 4096];
    for n in 0..count {
        let input = mutate(&seeds[rng.below(seeds.len())], &mut rng);
        if hook.refuses(&input) {
            s.refused += 1;
            continue;
        }
        let (verdict, len) = hook.run(ebpf, &input, &mut out)?;
        let got = &out[..len];
        let class = service_traffic(&input);
        let fail = |why: &str| -> Result<Summary> {
            bail!(
                "frame {n} (seed {seed}, {hook:?}): {why}; verdict {verdict}, class \
                 {class:?}\ninput:\n{}\noutput:\n{}",
                to_hex(&input),
                to_hex(got)
            )
        };
        match verdict {
            XDP_TX => {
                s.tx += 1;
                if class == Class::Other {
                    return fail("XDP_TX of a frame that is no service traffic");
                }
                let real = u32::from(got.get(5).copied().unwrap_or(0));
                let rewritten = got.len() == input.len()
                    && got[12..] == input[12..]
                    && got[6..12] == input[0..6]
                    && got[0..6] == real_mac(real)
                    && SERVICES.iter().any(|&(.., r)| r == real);
                if !rewritten {
                    return fail("XDP_TX output differs from the input beyond the MACs");
                }
            }
            XDP_PASS => {
                s.pass += 1;
                if got != input.as_slice() {
                    return fail("XDP_PASS changed the frame");
                }
            }
            XDP_DROP => {
                s.drop += 1;
                if class == Class::Other {
                    return fail("XDP_DROP of a frame that is no service traffic");
                }
            }
            XDP_ABORTED => return fail("XDP_ABORTED"),
            _ => return fail("unknown verdict"),
        }
        s.frames += 1;
    }
    let counted = reason_total(ebpf)? - counted_before;
    if counted != s.frames {
        bail!(
            "REASON_STATS counted {counted} verdicts for {} frames",
            s.frames
        );
    }
    Ok(s)
}
