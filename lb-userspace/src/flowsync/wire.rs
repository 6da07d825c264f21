//! The flow-sync datagram: what one node tells its peers about the flows
//! and persistence bindings it decided, by address (never by the node's own
//! real numbers, which differ between nodes). Pure: bytes in, values out.
//!
//! ```text
//! header  "XVSY" | version 1 | kind | sync id | entry count (u16 BE) | 0 0
//! entry   what | family | proto | 0 | client (16) | client port (BE)
//!         | VIP (16) | VIP port (BE) | real (16) | real port (BE)
//! ```
//! IPv4 addresses fill the first 4 of their 16 bytes, the rest zero.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

const MAGIC: &[u8; 4] = b"XVSY";
const VERSION: u8 = 1;
const HEADER: usize = 12;
pub const ENTRY: usize = 58;
/// Entries per datagram: 12 + 23 × 58 = 1346 bytes, under any Ethernet MTU.
pub const MAX_ENTRIES: usize = 23;

/// What a datagram carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Flows and bindings the sender decided.
    State(Vec<Entry>),
    /// "I (re)joined: send me every live flow."
    Hello,
    /// "That was all of them" (the end of the answer to a `Hello`).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum What {
    /// A connection: client address and port to the VIP and port.
    Flow,
    /// A `persistence_timeout` binding: every flow of the client goes to
    /// the real (the client port is 0).
    Persistence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub what: What,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub client: IpAddr,
    pub client_port: u16,
    pub vip: IpAddr,
    pub vip_port: u16,
    pub real: IpAddr,
    pub real_port: u16,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("too short ({0} bytes)")]
    Short(usize),
    #[error("not a flow-sync datagram")]
    Magic,
    #[error("version {0}, this node speaks 1")]
    Version(u8),
    #[error("sync id {0}, this node's is {1}")]
    SyncId(u8, u8),
    #[error("kind {0} unknown")]
    Kind(u8),
    #[error("{count} entries announced, {bytes} bytes of entries")]
    Length { count: usize, bytes: usize },
    #[error("entry {0}: {1}")]
    Entry(usize, &'static str),
}

const KIND_STATE: u8 = 1;
const KIND_HELLO: u8 = 2;
const KIND_DONE: u8 = 3;

fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            out.extend_from_slice(&v4.octets());
            out.extend_from_slice(&[0; 12]);
        }
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() { 4 } else { 6 }
}

/// The datagrams for `message`: one for `Hello`/`Done`, as many as the
/// entries need for `State`.
pub fn encode(message: &Message, sync_id: u8) -> Vec<Vec<u8>> {
    let header = |kind: u8, count: usize| {
        let mut d = Vec::with_capacity(HEADER + count * ENTRY);
        d.extend_from_slice(MAGIC);
        d.extend_from_slice(&[VERSION, kind, sync_id]);
        d.extend_from_slice(&(count as u16).to_be_bytes());
        d.extend_from_slice(&[0; 3]);
        d
    };
    match message {
        Message::Hello => vec![header(KIND_HELLO, 0)],
        Message::Done => vec![header(KIND_DONE, 0)],
        Message::State(entries) => entries
            .chunks(MAX_ENTRIES)
            .map(|chunk| {
                let mut d = header(KIND_STATE, chunk.len());
                for e in chunk {
                    let what = match e.what {
                        What::Flow => 1,
                        What::Persistence => 2,
                    };
                    d.extend_from_slice(&[what, family(e.vip), e.proto, 0]);
                    put_addr(&mut d, e.client);
                    d.extend_from_slice(&e.client_port.to_be_bytes());
                    put_addr(&mut d, e.vip);
                    d.extend_from_slice(&e.vip_port.to_be_bytes());
                    put_addr(&mut d, e.real);
                    d.extend_from_slice(&e.real_port.to_be_bytes());
                }
                d
            })
            .collect(),
    }
}

fn addr(bytes: &[u8], family: u8) -> Option<IpAddr> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    match family {
        4 if b[4..].iter().all(|&x| x == 0) => {
            Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
        }
        6 => Some(IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

fn port(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub fn decode(d: &[u8], sync_id: u8) -> Result<Message, WireError> {
    if d.len() < HEADER {
        return Err(WireError::Short(d.len()));
    }
    if &d[..4] != MAGIC {
        return Err(WireError::Magic);
    }
    if d[4] != VERSION {
        return Err(WireError::Version(d[4]));
    }
    if d[6] != sync_id {
        return Err(WireError::SyncId(d[6], sync_id));
    }
    let count = usize::from(u16::from_be_bytes([d[7], d[8]]));
    let body = &d[HEADER..];
    if body.len() != count * ENTRY {
        return Err(WireError::Length {
            count,
            bytes: body.len(),
        });
    }
    match d[5] {
        KIND_HELLO | KIND_DONE if count != 0 => Err(WireError::Length {
            count,
            bytes: body.len(),
        }),
        KIND_HELLO => Ok(Message::Hello),
        KIND_DONE => Ok(Message::Done),
        KIND_STATE => body
            .chunks_exact(ENTRY)
            .enumerate()
            .map(|(i, e)| {
                let what = match e[0] {
                    1 => What::Flow,
                    2 => What::Persistence,
                    _ => return Err(WireError::Entry(i, "unknown entry kind")),
                };
                if !matches!(e[2], 6 | 17) {
                    return Err(WireError::Entry(i, "protocol is neither TCP nor UDP"));
                }
                let family = e[1];
                let bad = || WireError::Entry(i, "address does not match its family");
                Ok(Entry {
                    what,
                    proto: e[2],
                    client: addr(&e[4..20], family).ok_or_else(bad)?,
                    client_port: port(&e[20..22]),
                    vip: addr(&e[22..38], family).ok_or_else(bad)?,
                    vip_port: port(&e[38..40]),
                    real: addr(&e[40..56], family).ok_or_else(bad)?,
                    real_port: port(&e[56..58]),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Message::State),
        other => Err(WireError::Kind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u16) -> Entry {
        Entry {
            what: What::Flow,
            proto: 6,
            client: "10.200.0.10".parse().unwrap(),
            client_port: 40000 + i,
            vip: "10.100.0.100".parse().unwrap(),
            vip_port: 80,
            real: "10.100.0.11".parse().unwrap(),
            real_port: 80,
        }
    }

    #[test]
    fn state_round_trips_in_mtu_sized_datagrams() {
        let entries: Vec<Entry> = (0..50).map(entry).collect();
        let datagrams = encode(&Message::State(entries.clone()), 7);
        assert_eq!(
            datagrams.iter().map(Vec::len).collect::<Vec<_>>(),
            [1346, 1346, 12 + 4 * 58]
        );
        let back: Vec<Entry> = datagrams
            .iter()
            .flat_map(|d| match decode(d, 7) {
                Ok(Message::State(e)) => e,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn exact_bytes_of_one_entry() {
        let e = Entry {
            what: What::Persistence,
            proto: 17,
            client: "2001:db8::1".parse().unwrap(),
            client_port: 0,
            vip: "2001:db8::100".parse().unwrap(),
            vip_port: 53,
            real: "2001:db8::11".parse().unwrap(),
            real_port: 5353,
        };
        let d = &encode(&Message::State(vec![e]), 0)[0];
        assert_eq!(&d[..12], b"XVSY\x01\x01\x00\x00\x01\x00\x00\x00");
        assert_eq!(&d[12..16], [2, 6, 17, 0]);
        assert_eq!(
            &d[16..32],
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&d[32..34], [0, 0]);
        assert_eq!(&d[50..52], [0, 53]);
        assert_eq!(&d[68..70], 5353u16.to_be_bytes());
        assert_eq!(decode(d, 0), Ok(Message::State(vec![e])));
    }

    #[test]
    fn hello_and_done() {
        for m in [Message::Hello, Message::Done] {
            let d = encode(&m, 3);
            assert_eq!(d.len(), 1);
            assert_eq!(decode(&d[0], 3), Ok(m));
        }
    }

    #[test]
    fn every_malformed_datagram_is_refused() {
        let good = encode(&Message::State(vec![entry(1)]), 1).remove(0);
        let with = |at: usize, b: u8| {
            let mut d = good.clone();
            d[at] = b;
            d
        };
        assert_eq!(decode(&good[..11], 1), Err(WireError::Short(11)));
        assert_eq!(decode(&with(0, b'Y'), 1), Err(WireError::Magic));
        assert_eq!(decode(&with(4, 2), 1), Err(WireError::Version(2)));
        assert_eq!(decode(&good, 2), Err(WireError::SyncId(1, 2)));
        assert_eq!(decode(&with(5, 9), 1), Err(WireError::Kind(9)));
        assert_eq!(
            decode(&with(8, 2), 1),
            Err(WireError::Length {
                count: 2,
                bytes: 58
            })
        );
        assert_eq!(
            decode(&good[..good.len() - 1], 1),
            Err(WireError::Length {
                count: 1,
                bytes: 57
            })
        );
        assert_eq!(
            decode(&with(12, 3), 1),
            Err(WireError::Entry(0, "unknown entry kind"))
        );
        assert_eq!(
            decode(&with(14, 1), 1),
            Err(WireError::Entry(0, "protocol is neither TCP nor UDP"))
        );
        // An IPv4 entry with bytes beyond its 4 address bytes.
        assert_eq!(
            decode(&with(20, 1), 1),
            Err(WireError::Entry(0, "address does not match its family"))
        );
        assert_eq!(
            decode(&with(13, 5), 1),
            Err(WireError::Entry(0, "address does not match its family"))
        );
        let mut hello = encode(&Message::Hello, 1).remove(0);
        hello[8] = 1;
        assert!(decode(&hello, 1).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap sweep; the fuzz target goes further.
        let good = encode(&Message::State(vec![entry(1)]), 0).remove(0);
        for at in 0..good.len() {
            for b in [0u8, 1, 2, 4, 6, 17, 0x7f, 0xff] {
                let mut d = good.clone();
                d[at] = b;
                let _ = decode(&d, 0);
            }
        }
    }
}
