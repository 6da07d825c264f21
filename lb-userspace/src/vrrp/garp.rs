//! Gratuitous ARP and unsolicited neighbour advertisement frames, built
//! the way keepalived builds them, ready for an AF_PACKET socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{csum_add, csum_fold, pseudo_header_sum};

pub type Mac = [u8; 6];

const BROADCAST: Mac = [0xff; 6];
/// 33:33 + low 32 bits of ff02::1 (RFC 2464 §7).
const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINKADDR: u8 = 2;

/// Ethernet + ARP, unpadded (the driver pads to 60 bytes).
pub const GARP_LEN: usize = 14 + 28;
/// Ethernet + IPv6 + NA + target link-layer option.
pub const NA_LEN: usize = 14 + 40 + 24 + 8;

fn eth(frame: &mut Vec<u8>, dst: Mac, src: Mac, ethertype: u16) {
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// Broadcast ARP request with sender = target = `vip` and target hardware
/// address all-ones, as keepalived's `send_gratuitous_arp_immediate`.
pub fn gratuitous_arp(mac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(GARP_LEN);
    eth(&mut f, BROADCAST, mac, ETH_P_ARP);
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request.
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&vip.octets());
    f
}

/// Unsolicited NA for `vip` from `vip` to ff02::1 with the override flag
/// and our link-layer address (RFC 4861 §7.2.6); `router` sets the R flag,
/// which keepalived does when the interface forwards.
pub fn unsolicited_na(mac: Mac, vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    icmp.extend_from_slice(&[ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[ND_OPT_TARGET_LINKADDR, 1]);
    icmp.extend_from_slice(&mac);
    let acc = pseudo_header_sum(
        IpAddr::V6(vip),
        IpAddr::V6(ALL_NODES),
        IPPROTO_ICMPV6,
        icmp.len(),
    );
    let ck = csum_fold(csum_add(acc, &icmp));
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());

    let mut f = Vec::with_capacity(NA_LEN);
    eth(&mut f, ALL_NODES_MAC, mac, ETH_P_IPV6);
    // Version 6, traffic class 0, flow label 0.
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    // Hop limit 255: receivers drop NAs that crossed a router (RFC 4861 §7.1.2).
    f.extend_from_slice(&[IPPROTO_ICMPV6, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&ALL_NODES.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The frame announcing `vip`, whichever its family.
pub fn announcement(mac: Mac, vip: IpAddr, router: bool) -> Vec<u8> {
    match vip {
        IpAddr::V4(v4) => gratuitous_arp(mac, v4),
        IpAddr::V6(v6) => unsolicited_na(mac, v6, router),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    #[test]
    fn garp_bytes() {
        let want = hex("ff ff ff ff ff ff 02 00 00 00 00 01 08 06
             00 01 08 00 06 04 00 01
             02 00 00 00 00 01 0a 00 00 64
             ff ff ff ff ff ff 0a 00 00 64");
        let got = gratuitous_arp(MAC, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(got, want);
        assert_eq!(got.len(), GARP_LEN);
    }

    fn na_hex(flags: &str, cksum: &str) -> Vec<u8> {
        hex(&format!(
            "33 33 00 00 00 01 02 00 00 00 00 01 86 dd
             60 00 00 00 00 20 3a ff
             20 01 0d b8 00 00 00 00 00 00 00 00 00 00 01 00
             ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01
             88 00 {cksum} {flags} 00 00 00
             20 01 0d b8 00 00 00 00 00 00 00 00 00 00 01 00
             02 01 02 00 00 00 00 01"
        ))
    }

    #[test]
    fn unsolicited_na_bytes() {
        // Checksums computed independently over the RFC 8200 §8.1 pseudo-header.
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let got = unsolicited_na(MAC, vip, false);
        assert_eq!(got, na_hex("20", "f7 2c"));
        assert_eq!(got.len(), NA_LEN);
        assert_eq!(unsolicited_na(MAC, vip, true), na_hex("a0", "77 2c"));
    }

    #[test]
    fn announcement_dispatches_on_family() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(announcement(MAC, v4, true).len(), GARP_LEN);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(announcement(MAC, v6, false).len(), NA_LEN);
    }
}
