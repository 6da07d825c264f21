//! The VRRP codec on arbitrary packets, v2 and v3, IPv4 and IPv6.
//!
//! Input: one flags byte, then the packet.
//! - bit 0: IPv6 (else IPv4); bit 1: VRRPv3 (else v2);
//! - bit 2: IPv4 only: the packet is a raw-socket datagram with its IPv4
//!   header, split by `Ipv4Header::parse` (else the VRRP message alone);
//! - bit 3: the checksum is fixed first, so the checks after it are reached;
//! - bit 4: the receiver expects what the packet says (VRID, password,
//!   interval), so decoding can succeed; else keepalived's test instance
//!   (VRID 51, PASS "secret", 1 s);
//! - bit 5: the receiver checks the address list against one VIP.
//!
//! What decodes must encode again and decode to the same advert.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use xdpvs::vrrp::packet::{
    Advert, Auth, Expect, IPPROTO_VRRP, Ipv4Header, MCAST_V4, MCAST_V6, RxMeta, Version,
};

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
const VIPS4: &[IpAddr] = &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))];
const VIPS6: &[IpAddr] = &[IpAddr::V6(Ipv6Addr::new(
    0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100,
))];

/// RFC 1071 checksum over the pseudo-header sum `acc` and `data`.
fn checksum(mut acc: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// RFC 5798 §5.2.8: v3 sums the pseudo-header, v2 the message alone.
fn fix_checksum(version: Version, meta: &RxMeta, p: &mut [u8]) {
    if p.len() < 8 {
        return;
    }
    p[6] = 0;
    p[7] = 0;
    let mut acc = 0u32;
    if version == Version::V3 {
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        match (meta.src, meta.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                add(&s.octets());
                add(&d.octets());
                add(&[0, IPPROTO_VRRP]);
                add(&(p.len() as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                add(&s.octets());
                add(&d.octets());
                add(&(p.len() as u32).to_be_bytes());
                add(&[0, 0, 0, IPPROTO_VRRP]);
            }
            _ => return,
        }
    }
    let ck = checksum(acc, p);
    p[6..8].copy_from_slice(&ck.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, packet)) = data.split_first() else {
        return;
    };
    let v6 = flags & 1 != 0;
    let version = if flags & 2 != 0 {
        Version::V3
    } else {
        Version::V2
    };
    let (meta, payload) = if !v6 && flags & 4 != 0 {
        match Ipv4Header::parse(packet) {
            Ok((header, payload)) => (header.meta(), payload),
            Err(e) => {
                let _ = e.reason();
                return;
            }
        }
    } else {
        let (src, dst) = if v6 {
            (SRC6, IpAddr::V6(MCAST_V6))
        } else {
            (SRC4, IpAddr::V4(MCAST_V4))
        };
        (RxMeta { src, dst, ttl: 255 }, packet)
    };
    let mut payload = payload.to_vec();
    if flags & 8 != 0 {
        fix_checksum(version, &meta, &mut payload);
    }
    let mut expect = Expect {
        version,
        vrid: 51,
        auth: if version == Version::V2 {
            Auth::pass("secret")
        } else {
            Auth::None
        },
        advert_int: Duration::from_secs(1),
        addrs: None,
    };
    if flags & 16 != 0 && payload.len() >= 8 {
        expect.vrid = payload[1];
        if version == Version::V2 {
            expect.advert_int = Duration::from_secs(u64::from(payload[5]));
            expect.auth = match payload.get(payload.len().saturating_sub(8)..) {
                Some(d) if payload[4] == 1 && d.len() == 8 => {
                    Auth::Pass(d.try_into().expect("8 bytes"))
                }
                _ => Auth::None,
            };
        }
    }
    if flags & 32 != 0 {
        expect.addrs = Some(if meta.src.is_ipv6() { VIPS6 } else { VIPS4 });
    }
    match Advert::decode(&meta, &payload, &expect) {
        Ok(advert) => {
            let again = advert
                .encode(meta.src, meta.dst)
                .unwrap_or_else(|e| panic!("{advert:?} decoded but does not encode: {e}"));
            assert_eq!(
                Advert::decode(&meta, &again, &expect),
                Ok(advert),
                "re-encoded as {again:02x?}"
            );
        }
        Err(e) => {
            let _ = (e.reason(), e.to_string());
        }
    }
});
