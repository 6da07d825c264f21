//! Codec tests. Expected hex is laid out by hand from RFC 3768 §5.1 /
//! RFC 5798 §5.1 and its checksums computed independently (RFC 1071).

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const DST4: IpAddr = IpAddr::V4(MCAST_V4);
const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
const DST6: IpAddr = IpAddr::V6(MCAST_V6);
const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100));

/// keepalived v2: vrid 51, prio 100, advert_int 1, auth_type PASS, auth_pass
/// "secret", virtual_ipaddress 10.0.0.100.
const V2_PASS: &str = "21 33 64 01 01 01 33 1a 0a 00 00 64 73 65 63 72 65 74 00 00";
/// keepalived v3 over IPv4: vrid 51, prio 100, advert_int 1 (100 cs), 10.0.0.100.
const V3_V4: &str = "31 33 64 01 00 64 75 73 0a 00 00 64";
/// keepalived v3 over IPv6: vrid 1, prio 100, 100 cs, fe80::1 -> ff02::12, 2001:db8::100.
const V3_V6: &str = "31 01 64 01 00 64 3d c1 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 01 00";

fn v2_advert() -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        advert_int: Duration::from_secs(1),
        addrs: vec![VIP4],
        auth: Auth::pass("secret"),
    }
}

fn v2_expect() -> Expect<'static> {
    Expect {
        version: Version::V2,
        vrid: 51,
        auth: Auth::pass("secret"),
        advert_int: Duration::from_secs(1),
        addrs: None,
    }
}

fn v3_expect(vrid: u8) -> Expect<'static> {
    Expect {
        version: Version::V3,
        vrid,
        auth: Auth::None,
        advert_int: Duration::from_secs(1),
        addrs: None,
    }
}

fn meta4() -> RxMeta {
    RxMeta {
        src: SRC4,
        dst: DST4,
        ttl: 255,
    }
}

fn meta6() -> RxMeta {
    RxMeta {
        src: SRC6,
        dst: DST6,
        ttl: 255,
    }
}

/// Recomputes the v2 checksum after a field was mutated, so the test hits
/// the check after the checksum.
fn fix_v2_checksum(p: &mut [u8]) {
    p[6] = 0;
    p[7] = 0;
    let ck = csum_fold(csum_add(0, p));
    p[6..8].copy_from_slice(&ck.to_be_bytes());
}

#[test]
fn v2_pass_encodes_to_keepalived_bytes() {
    assert_eq!(v2_advert().encode(SRC4, DST4), Ok(hex(V2_PASS)));
}

#[test]
fn v2_pass_decodes() {
    let a = Advert::decode(&meta4(), &hex(V2_PASS), &v2_expect()).expect("valid v2");
    assert_eq!(a, v2_advert());
}

#[test]
fn v2_no_auth_two_vips() {
    // vrid 1, prio 255 (owner), 2 addrs, auth none: checksum 0x5ca6.
    let bytes = hex("21 01 ff 02 00 01 5c a6 c0 a8 01 01 c0 a8 01 02 00 00 00 00 00 00 00 00");
    let vips = [
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
    ];
    let a = Advert {
        version: Version::V2,
        vrid: 1,
        priority: 255,
        advert_int: Duration::from_secs(1),
        addrs: vips.to_vec(),
        auth: Auth::None,
    };
    assert_eq!(a.encode(SRC4, DST4), Ok(bytes.clone()));
    let expect = Expect {
        vrid: 1,
        auth: Auth::None,
        addrs: Some(&vips),
        ..v2_expect()
    };
    assert_eq!(Advert::decode(&meta4(), &bytes, &expect), Ok(a));
}

#[test]
fn auth_pass_truncates_to_8_and_pads() {
    assert_eq!(Auth::pass("0123456789"), Auth::Pass(*b"01234567"));
    assert_eq!(Auth::pass("ab"), Auth::Pass([b'a', b'b', 0, 0, 0, 0, 0, 0]));
}

#[test]
fn v3_ipv4_round_trip_with_pseudo_header() {
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        advert_int: Duration::from_millis(1000),
        addrs: vec![VIP4],
        auth: Auth::None,
    };
    assert_eq!(a.encode(SRC4, DST4), Ok(hex(V3_V4)));
    assert_eq!(Advert::decode(&meta4(), &hex(V3_V4), &v3_expect(51)), Ok(a));
}

#[test]
fn v3_ipv6_round_trip() {
    let a = Advert {
        version: Version::V3,
        vrid: 1,
        priority: 100,
        advert_int: Duration::from_millis(1000),
        addrs: vec![VIP6],
        auth: Auth::None,
    };
    assert_eq!(a.encode(SRC6, DST6), Ok(hex(V3_V6)));
    assert_eq!(Advert::decode(&meta6(), &hex(V3_V6), &v3_expect(1)), Ok(a));
}

#[test]
fn v3_checksum_covers_pseudo_header() {
    // The same bytes from another source fail: the pseudo-header differs.
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        ..meta4()
    };
    assert_eq!(
        Advert::decode(&meta, &hex(V3_V4), &v3_expect(51)),
        Err(DecodeError::BadChecksum)
    );
}

#[test]
fn v3_interval_12_bits_reserved_ignored() {
    let a = Advert {
        version: Version::V3,
        vrid: 7,
        priority: 50,
        advert_int: Duration::from_millis(40_950),
        addrs: vec![VIP4],
        auth: Auth::None,
    };
    let bytes = a.encode(SRC4, DST4).expect("4095 cs fits");
    assert_eq!(&bytes[4..6], &[0x0f, 0xff]);
    let too_long = Advert {
        advert_int: Duration::from_millis(40_960),
        ..a.clone()
    };
    assert!(matches!(
        too_long.encode(SRC4, DST4),
        Err(EncodeError::BadInterval(_))
    ));
    let zero = Advert {
        advert_int: Duration::ZERO,
        ..a.clone()
    };
    assert!(matches!(
        zero.encode(SRC4, DST4),
        Err(EncodeError::BadInterval(_))
    ));
}

#[test]
fn encode_rejects_bad_combinations() {
    let v2 = v2_advert();
    assert_eq!(
        Advert {
            addrs: vec![VIP6],
            ..v2.clone()
        }
        .encode(SRC6, DST6),
        Err(EncodeError::V2OverIpv6)
    );
    assert_eq!(
        Advert {
            addrs: vec![VIP6],
            ..v2.clone()
        }
        .encode(SRC4, DST4),
        Err(EncodeError::FamilyMismatch(VIP6))
    );
    assert_eq!(
        Advert {
            version: Version::V3,
            ..v2.clone()
        }
        .encode(SRC4, DST4),
        Err(EncodeError::AuthOnV3)
    );
    let half = Advert {
        advert_int: Duration::from_millis(1500),
        ..v2.clone()
    };
    assert!(matches!(
        half.encode(SRC4, DST4),
        Err(EncodeError::BadInterval(_))
    ));
    let many = Advert {
        addrs: vec![VIP4; 256],
        ..v2
    };
    assert_eq!(many.encode(SRC4, DST4), Err(EncodeError::TooManyAddrs(256)));
}

/// Every malformed field maps to its own error (RFC 3768 §7.1, RFC 5798 §7.1).
#[test]
fn malformed_v2_packets() {
    let good = hex(V2_PASS);
    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = good.clone();
        f(&mut p);
        p
    };
    let cases: Vec<(&str, RxMeta, Vec<u8>, DecodeError)> = vec![
        ("empty", meta4(), vec![], DecodeError::TooShort(0)),
        (
            "7 bytes",
            meta4(),
            good[..7].to_vec(),
            DecodeError::TooShort(7),
        ),
        (
            "ttl 254",
            RxMeta {
                ttl: 254,
                ..meta4()
            },
            good.clone(),
            DecodeError::BadTtl(254),
        ),
        (
            "version 3",
            meta4(),
            mutate(&|p| p[0] = 0x31),
            DecodeError::BadVersion { got: 3, want: 2 },
        ),
        (
            "type 2",
            meta4(),
            mutate(&|p| p[0] = 0x22),
            DecodeError::BadType(2),
        ),
        (
            "count 2 for 1 address",
            meta4(),
            mutate(&|p| p[3] = 2),
            DecodeError::LengthMismatch { count: 2, len: 20 },
        ),
        (
            "truncated auth",
            meta4(),
            good[..16].to_vec(),
            DecodeError::LengthMismatch { count: 1, len: 16 },
        ),
        (
            "trailing byte",
            meta4(),
            mutate(&|p| p.push(0)),
            DecodeError::LengthMismatch { count: 1, len: 21 },
        ),
        (
            "checksum",
            meta4(),
            mutate(&|p| p[7] ^= 1),
            DecodeError::BadChecksum,
        ),
        (
            "vrid 52",
            meta4(),
            mutate(&|p| {
                p[1] = 52;
                fix_v2_checksum(p);
            }),
            DecodeError::WrongVrid { got: 52, want: 51 },
        ),
        (
            "auth type 2 (AH)",
            meta4(),
            mutate(&|p| {
                p[4] = 2;
                fix_v2_checksum(p);
            }),
            DecodeError::InvalidAuthType(2),
        ),
        (
            "auth none, PASS configured",
            meta4(),
            mutate(&|p| {
                p[4] = 0;
                fix_v2_checksum(p);
            }),
            DecodeError::AuthTypeMismatch { got: 0, want: 1 },
        ),
        (
            "wrong password",
            meta4(),
            mutate(&|p| {
                p[12] = b'S';
                fix_v2_checksum(p);
            }),
            DecodeError::AuthFailure,
        ),
        (
            "interval 2",
            meta4(),
            mutate(&|p| {
                p[5] = 2;
                fix_v2_checksum(p);
            }),
            DecodeError::IntervalMismatch {
                got: Duration::from_secs(2),
                want: Duration::from_secs(1),
            },
        ),
        (
            "interval 0",
            meta4(),
            mutate(&|p| {
                p[5] = 0;
                fix_v2_checksum(p);
            }),
            DecodeError::ZeroInterval,
        ),
        (
            "v2 over IPv6",
            meta6(),
            good.clone(),
            DecodeError::FamilyMismatch,
        ),
    ];
    for (name, meta, pkt, want) in cases {
        assert_eq!(
            Advert::decode(&meta, &pkt, &v2_expect()),
            Err(want),
            "case {name}"
        );
    }
}

#[test]
fn malformed_v3_packets() {
    let good = hex(V3_V4);
    let mut zero_int = good.clone();
    zero_int[4] = 0xf0; // reserved bits set, interval 0
    zero_int[5] = 0;
    let mut count2 = good.clone();
    count2[3] = 2;
    let cases: Vec<(&str, RxMeta, Vec<u8>, u8, DecodeError)> = vec![
        (
            "hop limit 64",
            RxMeta { ttl: 64, ..meta6() },
            hex(V3_V6),
            1,
            DecodeError::BadTtl(64),
        ),
        (
            "v2 packet on v3 instance",
            meta4(),
            hex(V2_PASS),
            51,
            DecodeError::BadVersion { got: 2, want: 3 },
        ),
        (
            "count 2",
            meta4(),
            count2,
            51,
            DecodeError::LengthMismatch { count: 2, len: 12 },
        ),
        (
            "ipv4 advert seen as ipv6",
            meta6(),
            good.clone(),
            51,
            DecodeError::LengthMismatch { count: 1, len: 12 },
        ),
        (
            "mixed families",
            RxMeta {
                dst: DST6,
                ..meta4()
            },
            good.clone(),
            51,
            DecodeError::FamilyMismatch,
        ),
        (
            "wrong vrid",
            meta4(),
            good.clone(),
            52,
            DecodeError::WrongVrid { got: 51, want: 52 },
        ),
        (
            "interval edited, checksum not",
            meta4(),
            zero_int,
            51,
            DecodeError::BadChecksum,
        ),
    ];
    for (name, meta, pkt, vrid, want) in cases {
        assert_eq!(
            Advert::decode(&meta, &pkt, &v3_expect(vrid)),
            Err(want),
            "case {name}"
        );
    }
}

#[test]
fn v3_zero_interval_with_valid_checksum() {
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        advert_int: Duration::from_millis(10),
        addrs: vec![VIP4],
        auth: Auth::None,
    };
    let mut p = a.encode(SRC4, DST4).expect("encodes");
    // 1 cs -> 0 cs: the checksum word rises by one in ones' complement.
    p[5] = 0;
    let ck = u16::from_be_bytes([p[6], p[7]]).wrapping_add(1);
    p[6..8].copy_from_slice(&ck.to_be_bytes());
    assert_eq!(
        Advert::decode(&meta4(), &p, &v3_expect(51)),
        Err(DecodeError::ZeroInterval)
    );
}

#[test]
fn v3_accepts_other_interval_and_learns_it() {
    // RFC 5798 §6.4.2: a Backup takes the master's interval; no mismatch drop.
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        advert_int: Duration::from_millis(250),
        addrs: vec![VIP4],
        auth: Auth::None,
    };
    let p = a.encode(SRC4, DST4).expect("encodes");
    let got = Advert::decode(&meta4(), &p, &v3_expect(51)).expect("accepted");
    assert_eq!(got.advert_int, Duration::from_millis(250));
}

#[test]
fn address_list_check() {
    let other = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 200))];
    let expect = Expect {
        addrs: Some(&other),
        ..v2_expect()
    };
    assert_eq!(
        Advert::decode(&meta4(), &hex(V2_PASS), &expect),
        Err(DecodeError::AddrListMismatch)
    );
    let same = [VIP4];
    let expect = Expect {
        addrs: Some(&same),
        ..v2_expect()
    };
    assert!(Advert::decode(&meta4(), &hex(V2_PASS), &expect).is_ok());
}

#[test]
fn reasons_are_distinct() {
    let all = [
        DecodeError::TooShort(0),
        DecodeError::BadTtl(0),
        DecodeError::BadVersion { got: 0, want: 0 },
        DecodeError::BadType(0),
        DecodeError::LengthMismatch { count: 0, len: 0 },
        DecodeError::BadChecksum,
        DecodeError::WrongVrid { got: 0, want: 0 },
        DecodeError::InvalidAuthType(0),
        DecodeError::AuthTypeMismatch { got: 0, want: 0 },
        DecodeError::AuthFailure,
        DecodeError::IntervalMismatch {
            got: Duration::ZERO,
            want: Duration::ZERO,
        },
        DecodeError::ZeroInterval,
        DecodeError::FamilyMismatch,
        DecodeError::AddrListMismatch,
        DecodeError::BadIpHeader(""),
    ];
    let mut names: Vec<_> = all.iter().map(DecodeError::reason).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
}

#[test]
fn ipv4_header_parse() {
    // 20-byte header: tot_len 40, ttl 255, proto 112, 10.0.0.1 -> 224.0.0.18.
    let mut pkt = hex("45 c0 00 28 00 00 00 00 ff 70 00 00 0a 00 00 01 e0 00 00 12");
    pkt.extend(hex(V2_PASS));
    let (h, payload) = Ipv4Header::parse(&pkt).expect("valid header");
    assert_eq!(h.meta(), meta4());
    assert_eq!(h.protocol, IPPROTO_VRRP);
    assert_eq!(payload, hex(V2_PASS).as_slice());
    // Trailing link padding beyond tot_len is cut off.
    let mut padded = pkt.clone();
    padded.extend([0, 0]);
    assert_eq!(Ipv4Header::parse(&padded).map(|(_, p)| p.len()), Ok(20));
    assert!(Ipv4Header::parse(&pkt[..19]).is_err());
    let mut v6 = pkt.clone();
    v6[0] = 0x65;
    assert_eq!(
        Ipv4Header::parse(&v6),
        Err(DecodeError::BadIpHeader("not IPv4"))
    );
    let mut long = pkt.clone();
    long[3] = 0x29;
    assert!(Ipv4Header::parse(&long).is_err());
    let mut frag = pkt;
    frag[6] = 0x20; // more fragments
    assert_eq!(
        Ipv4Header::parse(&frag),
        Err(DecodeError::BadIpHeader("fragment"))
    );
}
