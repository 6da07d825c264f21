//! VRRP advertisement codec: v2 (RFC 3768 §5) and v3 (RFC 5798 §5), pure.
//!
//! `decode` applies the receive checks of RFC 3768 §7.1 / RFC 5798 §7.1 in
//! keepalived's order and reports each drop reason as its own variant, so the
//! daemon can count drops by `DecodeError::reason()`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use thiserror::Error;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// TTL / hop limit every advert is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Length of v2 authentication data, present whatever the auth type.
pub const AUTH_LEN: usize = 8;
const HDR_LEN: usize = 8;
const TYPE_ADVERT: u8 = 1;
/// v3 Max Adver Int is 12 bits of centiseconds.
const MAX_V3_CENTIS: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// v2 authentication (RFC 3768 §5.3.6). v3 has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Simple text password, exactly as keepalived stores `auth_pass`.
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// keepalived truncates `auth_pass` to 8 bytes and zero-pads it.
    pub fn pass(password: &str) -> Self {
        let mut data = [0u8; AUTH_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(AUTH_LEN);
        data[..n].copy_from_slice(&bytes[..n]);
        Auth::Pass(data)
    }

    fn type_code(self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }

    fn data(self) -> [u8; AUTH_LEN] {
        match self {
            Auth::None => [0; AUTH_LEN],
            Auth::Pass(d) => d,
        }
    }
}

/// One decoded (or to-be-encoded) advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: whole seconds (1..=255); v3: centiseconds (1..=4095).
    pub advert_int: Duration,
    /// All of one family, the family of the IP packet.
    pub addrs: Vec<IpAddr>,
    /// Always `Auth::None` for v3.
    pub auth: Auth,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("VRRPv2 is IPv4 only")]
    V2OverIpv6,
    #[error("authentication is a VRRPv2 feature")]
    AuthOnV3,
    #[error("address {0} is not of the packet's family")]
    FamilyMismatch(IpAddr),
    #[error("{0} addresses do not fit the 8-bit count")]
    TooManyAddrs(usize),
    #[error("advert interval {0:?} is not representable in this version")]
    BadInterval(Duration),
}

/// Why a received packet was dropped; one variant per counter.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("packet of {0} bytes is shorter than a VRRP header")]
    TooShort(usize),
    #[error("TTL/hop limit {0}, must be 255")]
    BadTtl(u8),
    #[error("version {got}, expected {want}")]
    BadVersion { got: u8, want: u8 },
    #[error("type {0}, only advertisements (1) are defined")]
    BadType(u8),
    #[error("{len} bytes do not match {count} addresses")]
    LengthMismatch { count: u8, len: usize },
    #[error("bad checksum")]
    BadChecksum,
    #[error("VRID {got}, expected {want}")]
    WrongVrid { got: u8, want: u8 },
    #[error("auth type {0} is not supported")]
    InvalidAuthType(u8),
    #[error("auth type {got}, expected {want}")]
    AuthTypeMismatch { got: u8, want: u8 },
    #[error("wrong password")]
    AuthFailure,
    #[error("advert interval {got:?}, configured {want:?}")]
    IntervalMismatch { got: Duration, want: Duration },
    #[error("advert interval of zero")]
    ZeroInterval,
    #[error("source and destination are not of one family, or v2 over IPv6")]
    FamilyMismatch,
    #[error("address list does not match the configured virtual addresses")]
    AddrListMismatch,
    #[error("IP header: {0}")]
    BadIpHeader(&'static str),
}

impl DecodeError {
    /// Stable snake_case name for drop counters.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "too_short",
            DecodeError::BadTtl(_) => "bad_ttl",
            DecodeError::BadVersion { .. } => "bad_version",
            DecodeError::BadType(_) => "bad_type",
            DecodeError::LengthMismatch { .. } => "length_mismatch",
            DecodeError::BadChecksum => "bad_checksum",
            DecodeError::WrongVrid { .. } => "wrong_vrid",
            DecodeError::InvalidAuthType(_) => "invalid_auth_type",
            DecodeError::AuthTypeMismatch { .. } => "auth_type_mismatch",
            DecodeError::AuthFailure => "auth_failure",
            DecodeError::IntervalMismatch { .. } => "interval_mismatch",
            DecodeError::ZeroInterval => "zero_interval",
            DecodeError::FamilyMismatch => "family_mismatch",
            DecodeError::AddrListMismatch => "addr_list_mismatch",
            DecodeError::BadIpHeader(_) => "bad_ip_header",
        }
    }
}

/// IP-level facts of a received packet (from the IPv4 header, or from
/// recvmsg's IPV6_PKTINFO / IPV6_HOPLIMIT for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
}

/// What the receiving instance is configured with.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    pub version: Version,
    pub vrid: u8,
    /// v2 only: the configured auth (type and password must match).
    pub auth: Auth,
    /// v2 only: RFC 3768 §7.1 drops adverts whose interval differs.
    pub advert_int: Duration,
    /// keepalived checks the VIP list unless `skip_check_adv_addr`; `None` skips.
    pub addrs: Option<&'a [IpAddr]>,
}

/// RFC 1071 ones'-complement sum, folded; callers complement it.
pub(crate) fn csum_add(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

pub(crate) fn csum_fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Pseudo-header sum (RFC 768 for IPv4, RFC 8200 §8.1 for IPv6).
pub(crate) fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = csum_add(acc, &s.octets());
            acc = csum_add(acc, &d.octets());
            acc += u32::from(proto);
            acc += len as u32;
        }
        (s, d) => {
            for a in [s, d] {
                let octets = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                };
                acc = csum_add(acc, &octets);
            }
            acc = csum_add(acc, &(len as u32).to_be_bytes());
            acc += u32::from(proto);
        }
    }
    acc
}

fn addr_len(v6: bool) -> usize {
    if v6 { 16 } else { 4 }
}

impl Advert {
    /// Serialises the VRRP message (no IP header). `src`/`dst` feed the v3
    /// pseudo-header checksum; v2 checksums the message alone.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let v6 = src.is_ipv6();
        if let Some(a) = self.addrs.iter().find(|a| a.is_ipv6() != v6) {
            return Err(EncodeError::FamilyMismatch(*a));
        }
        let count = u8::try_from(self.addrs.len())
            .map_err(|_| EncodeError::TooManyAddrs(self.addrs.len()))?;
        let mut buf = Vec::with_capacity(HDR_LEN + self.addrs.len() * addr_len(v6) + AUTH_LEN);
        buf.extend_from_slice(&[
            (self.version.number() << 4) | TYPE_ADVERT,
            self.vrid,
            self.priority,
            count,
        ]);
        match self.version {
            Version::V2 => {
                if v6 {
                    return Err(EncodeError::V2OverIpv6);
                }
                let secs = self.advert_int.as_secs();
                let secs = u8::try_from(secs)
                    .ok()
                    .filter(|s| *s > 0 && self.advert_int.subsec_nanos() == 0)
                    .ok_or(EncodeError::BadInterval(self.advert_int))?;
                buf.extend_from_slice(&[self.auth.type_code(), secs, 0, 0]);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::AuthOnV3);
                }
                let centis = u16::try_from(self.advert_int.as_millis() / 10)
                    .ok()
                    .filter(|c| (1..=MAX_V3_CENTIS).contains(c))
                    .ok_or(EncodeError::BadInterval(self.advert_int))?;
                // The top 4 bits are reserved and sent as zero.
                buf.extend_from_slice(&centis.to_be_bytes());
                buf.extend_from_slice(&[0, 0]);
            }
        }
        for a in &self.addrs {
            match a {
                IpAddr::V4(v4) => buf.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => buf.extend_from_slice(&v6.octets()),
            }
        }
        let acc = match self.version {
            Version::V2 => {
                buf.extend_from_slice(&self.auth.data());
                0
            }
            Version::V3 => pseudo_header_sum(src, dst, IPPROTO_VRRP, buf.len()),
        };
        let ck = csum_fold(csum_add(acc, &buf));
        buf[6..8].copy_from_slice(&ck.to_be_bytes());
        Ok(buf)
    }

    /// Parses and validates one VRRP message (the IP payload).
    pub fn decode(meta: &RxMeta, payload: &[u8], expect: &Expect<'_>) -> Result<Self, DecodeError> {
        let Some(&[vers_type, vrid, priority, count, b4, b5, _, _]) =
            payload.first_chunk::<HDR_LEN>()
        else {
            return Err(DecodeError::TooShort(payload.len()));
        };
        if meta.ttl != VRRP_TTL {
            return Err(DecodeError::BadTtl(meta.ttl));
        }
        let v6 = meta.src.is_ipv6();
        if meta.dst.is_ipv6() != v6 || (v6 && expect.version == Version::V2) {
            return Err(DecodeError::FamilyMismatch);
        }
        let want = expect.version.number();
        if vers_type >> 4 != want {
            return Err(DecodeError::BadVersion {
                got: vers_type >> 4,
                want,
            });
        }
        if vers_type & 0x0f != TYPE_ADVERT {
            return Err(DecodeError::BadType(vers_type & 0x0f));
        }
        let alen = addr_len(v6);
        let body = usize::from(count) * alen;
        let expected_len = HDR_LEN
            + body
            + match expect.version {
                Version::V2 => AUTH_LEN,
                Version::V3 => 0,
            };
        if payload.len() != expected_len {
            return Err(DecodeError::LengthMismatch {
                count,
                len: payload.len(),
            });
        }
        let acc = match expect.version {
            Version::V2 => 0,
            Version::V3 => pseudo_header_sum(meta.src, meta.dst, IPPROTO_VRRP, payload.len()),
        };
        if csum_fold(csum_add(acc, payload)) != 0 {
            return Err(DecodeError::BadChecksum);
        }
        if vrid != expect.vrid {
            return Err(DecodeError::WrongVrid {
                got: vrid,
                want: expect.vrid,
            });
        }
        let addr_bytes = payload.get(HDR_LEN..HDR_LEN + body).unwrap_or_default();
        let (advert_int, auth) = match expect.version {
            Version::V2 => {
                let auth_data = payload.get(HDR_LEN + body..).unwrap_or_default();
                let auth = match b4 {
                    0 => Auth::None,
                    1 => Auth::Pass(<[u8; AUTH_LEN]>::try_from(auth_data).map_err(|_| {
                        DecodeError::LengthMismatch {
                            count,
                            len: payload.len(),
                        }
                    })?),
                    other => return Err(DecodeError::InvalidAuthType(other)),
                };
                let want_type = expect.auth.type_code();
                if auth.type_code() != want_type {
                    return Err(DecodeError::AuthTypeMismatch {
                        got: b4,
                        want: want_type,
                    });
                }
                if auth != expect.auth {
                    return Err(DecodeError::AuthFailure);
                }
                let int = Duration::from_secs(u64::from(b5));
                if b5 == 0 {
                    return Err(DecodeError::ZeroInterval);
                }
                if int != expect.advert_int {
                    return Err(DecodeError::IntervalMismatch {
                        got: int,
                        want: expect.advert_int,
                    });
                }
                (int, auth)
            }
            Version::V3 => {
                let centis = u16::from_be_bytes([b4, b5]) & MAX_V3_CENTIS;
                if centis == 0 {
                    return Err(DecodeError::ZeroInterval);
                }
                (Duration::from_millis(u64::from(centis) * 10), Auth::None)
            }
        };
        let addrs: Vec<IpAddr> = addr_bytes
            .chunks_exact(alen)
            .map(|c| match <[u8; 16]>::try_from(c) {
                Ok(o) => IpAddr::V6(Ipv6Addr::from(o)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
            })
            .collect();
        if let Some(want) = expect.addrs
            && (want.len() != addrs.len() || !want.iter().all(|a| addrs.contains(a)))
        {
            return Err(DecodeError::AddrListMismatch);
        }
        Ok(Advert {
            version: expect.version,
            vrid,
            priority,
            advert_int,
            addrs,
            auth,
        })
    }
}

/// The IPv4 header facts the receive path needs (raw IPv4 sockets deliver
/// the header; IPv6 ones do not, use cmsgs there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
}

impl Ipv4Header {
    /// Splits a raw-socket datagram into header facts and VRRP payload.
    pub fn parse(pkt: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let hdr: &[u8; 20] = pkt
            .first_chunk()
            .ok_or(DecodeError::BadIpHeader("shorter than 20 bytes"))?;
        if hdr[0] >> 4 != 4 {
            return Err(DecodeError::BadIpHeader("not IPv4"));
        }
        let ihl = usize::from(hdr[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if ihl < 20 || total < ihl || total > pkt.len() {
            return Err(DecodeError::BadIpHeader("bad IHL or total length"));
        }
        if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
            return Err(DecodeError::BadIpHeader("fragment"));
        }
        let header = Ipv4Header {
            ttl: hdr[8],
            protocol: hdr[9],
            src: Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]),
            dst: Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]),
        };
        let payload = pkt.get(ihl..total).unwrap_or_default();
        Ok((header, payload))
    }

    pub fn meta(&self) -> RxMeta {
        RxMeta {
            src: self.src.into(),
            dst: self.dst.into(),
            ttl: self.ttl,
        }
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
