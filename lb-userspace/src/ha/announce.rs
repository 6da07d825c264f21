//! Gratuitous ARP / unsolicited neighbour advertisements for the VIPs, sent
//! as whole Ethernet frames from an AF_PACKET socket on each VIP's interface
//! (the frames themselves come from the pure `vrrp::garp`). When to send
//! them (takeover, `garp_master_delay`, refresh) is the state machine's call;
//! how far apart on an interface (`vrrp_garp_interval`, `garp_group`) is
//! `vrrp::garp_pace`'s, applied by one `GarpService` task for every instance.

use std::{
    io,
    mem::{size_of, zeroed},
    net::IpAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::Arc,
    time::Instant,
};

use thiserror::Error;
use tokio::{sync::mpsc, task::JoinHandle};

use super::addresses::Vip;
use crate::vrrp::{
    garp::{Mac, announcement},
    garp_pace::{Pacer, Spacing},
};

#[derive(Debug, Error)]
pub enum AnnounceError {
    #[error("reading the MAC address of {dev}: {source}")]
    Mac { dev: String, source: io::Error },
    #[error("no interface named {0}")]
    NoInterface(String),
    #[error("{what} on {dev}: {source}")]
    Sys {
        what: &'static str,
        dev: String,
        source: io::Error,
    },
}

/// Parses `aa:bb:cc:dd:ee:ff` as found in /sys/class/net/IF/address.
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Whether /proc/sys/net/ipv6/conf/IF/forwarding says the interface
/// forwards IPv6 (keepalived: any value but 0).
pub fn forwards(text: &str) -> bool {
    text.trim().parse::<i64>().is_ok_and(|v| v != 0)
}

/// What an interface's announcements say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    mac: Mac,
    /// The interface forwards IPv6: its NAs set the Router flag, as
    /// keepalived's do; with R=0 hosts clear IsRouter (RFC 4861 §7.2.5) and
    /// drop a VIP they route through from their default router list.
    router: bool,
}

impl Link {
    fn announcement(&self, vip: IpAddr) -> Vec<u8> {
        announcement(self.mac, vip, self.router)
    }
}

/// One interface's sender.
struct Port {
    dev: String,
    ifindex: u32,
    link: Link,
    fd: OwnedFd,
}

impl Port {
    fn open(dev: &str) -> Result<Self, AnnounceError> {
        let ifindex =
            crate::neighbour::ifindex(dev).map_err(|_| AnnounceError::NoInterface(dev.into()))?;
        let text =
            std::fs::read_to_string(format!("/sys/class/net/{dev}/address")).map_err(|source| {
                AnnounceError::Mac {
                    dev: dev.into(),
                    source,
                }
            })?;
        let mac = parse_mac(&text).ok_or_else(|| AnnounceError::Mac {
            dev: dev.into(),
            source: io::Error::new(io::ErrorKind::InvalidData, text.trim().to_string()),
        })?;
        // Unreadable (no IPv6 on it): no NA is sent there anyway.
        let router = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{dev}/forwarding"))
            .is_ok_and(|t| forwards(&t));
        // Protocol 0: this socket only sends, it never receives a frame.
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let source = io::Error::last_os_error();
            return Err(AnnounceError::Sys {
                what: "socket(AF_PACKET)",
                dev: dev.into(),
                source,
            });
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Port {
            dev: dev.into(),
            ifindex,
            link: Link { mac, router },
            fd,
        })
    }

    fn send(&self, frame: &[u8]) -> Result<(), AnnounceError> {
        // SAFETY: zero is a valid sockaddr_ll.
        let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = self.ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(frame.get(..6).unwrap_or(&[0xff; 6]));
        // SAFETY: frame and address are live for the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            return Err(AnnounceError::Sys {
                what: "sendto",
                dev: self.dev.clone(),
                source,
            });
        }
        Ok(())
    }
}

/// One message ready to go.
struct Frame {
    port: Arc<Port>,
    addr: IpAddr,
    bytes: Vec<u8>,
}

enum Request {
    Send(u64, Vec<Frame>),
    Cancel(u64),
}

/// The daemon's one sender of gratuitous messages: queues them by lane
/// (interface or garp_group, and family) and sends each when its lane's
/// spacing allows.
#[derive(Clone)]
pub struct GarpService {
    tx: mpsc::UnboundedSender<Request>,
}

impl GarpService {
    pub fn spawn(spacing: Spacing) -> (GarpService, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let task = tokio::spawn(async move {
            let mut pacer: Pacer<Frame> = Pacer::new(spacing);
            loop {
                let wake = pacer.next_wake().map(tokio::time::Instant::from_std);
                tokio::select! {
                    request = rx.recv() => match request {
                        Some(Request::Send(owner, frames)) => {
                            for f in frames {
                                let dev = f.port.dev.clone();
                                pacer.push(&dev, f.addr.is_ipv6(), owner, f);
                            }
                        }
                        Some(Request::Cancel(owner)) => {
                            pacer.cancel(owner);
                        }
                        None => return,
                    },
                    () = sleep_until(wake), if wake.is_some() => {}
                }
                for f in pacer.due(Instant::now()) {
                    if let Err(e) = f.port.send(&f.bytes) {
                        log::warn!("announcing {}: {e}", f.addr);
                    }
                }
            }
        });
        (GarpService { tx }, task)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Senders for every interface an instance's VIPs live on.
pub struct Announcer {
    /// (port, VIP) per announced address.
    targets: Vec<(Arc<Port>, IpAddr)>,
    service: GarpService,
    /// Whose messages these are (one per instance), to drop them on a step down.
    owner: u64,
}

impl Announcer {
    pub fn new(vips: &[Vip], service: GarpService, owner: u64) -> Result<Self, AnnounceError> {
        let mut ports: Vec<Arc<Port>> = Vec::new();
        let mut targets = Vec::new();
        for v in vips {
            let port = match ports.iter().find(|p| p.dev == v.dev) {
                Some(p) => p.clone(),
                None => {
                    let p = Arc::new(Port::open(&v.dev)?);
                    ports.push(p.clone());
                    p
                }
            };
            targets.push((port, v.addr));
        }
        Ok(Announcer {
            targets,
            service,
            owner,
        })
    }

    /// Queues `count` announcements for every VIP, in rounds (every VIP
    /// once, then again); the service sends them as the spacing allows.
    /// A failed send is logged, not fatal: the next batch may do better.
    pub fn send(&self, count: u32) {
        let mut frames = Vec::new();
        for _ in 0..count {
            for (port, addr) in &self.targets {
                frames.push(Frame {
                    port: port.clone(),
                    addr: *addr,
                    bytes: port.link.announcement(*addr),
                });
            }
        }
        if !frames.is_empty() {
            let _ = self.service.tx.send(Request::Send(self.owner, frames));
        }
    }

    /// Drops what is still queued: the VIPs are no longer ours to announce
    /// (keepalived sends queued ones only while master).
    pub fn cancel(&self) {
        let _ = self.service.tx.send(Request::Cancel(self.owner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_from_sysfs_text() {
        assert_eq!(
            parse_mac("02:00:0a:64:00:ff\n"),
            Some([2, 0, 0x0a, 0x64, 0, 0xff])
        );
        assert_eq!(parse_mac("02:00:0a:64:00"), None, "too short");
        assert_eq!(parse_mac("02:00:0a:64:00:ff:01"), None, "too long");
        assert_eq!(parse_mac("zz:00:0a:64:00:ff"), None);
    }

    #[test]
    fn ipv6_forwarding_from_procfs_text() {
        assert!(forwards("1\n"));
        assert!(forwards("2"), "keepalived: any value but 0");
        assert!(!forwards("0\n"));
        assert!(!forwards(""));
    }

    /// The NA flags byte (after Ethernet, IPv6 and the ICMPv6 type, code
    /// and checksum): Router + Override, or Override alone.
    #[test]
    fn a_forwarding_interface_announces_itself_as_a_router() {
        const FLAGS: usize = 14 + 40 + 4;
        let mac = [2, 0, 0, 0, 0, 1];
        let vip = IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let frame = |router| Link { mac, router }.announcement(vip);
        assert_eq!(frame(true)[FLAGS], 0xa0);
        assert_eq!(frame(false)[FLAGS], 0x20);
    }
}
