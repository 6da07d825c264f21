//! Gratuitous ARP / unsolicited neighbour advertisements for the VIPs, sent
//! as whole Ethernet frames from an AF_PACKET socket on each VIP's interface
//! (the frames themselves come from the pure `vrrp::garp`). When to send
//! them (takeover, `garp_master_delay`, refresh) is the state machine's call.

use std::{
    io,
    mem::{size_of, zeroed},
    net::IpAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use thiserror::Error;

use super::addresses::Vip;
use crate::vrrp::garp::{Mac, announcement};

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

/// One interface's sender.
struct Port {
    dev: String,
    ifindex: u32,
    mac: Mac,
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
            mac,
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

/// Senders for every interface an instance's VIPs live on.
pub struct Announcer {
    ports: Vec<Port>,
    /// (port index, VIP) per announced address.
    targets: Vec<(usize, IpAddr)>,
}

impl Announcer {
    pub fn new(vips: &[Vip]) -> Result<Self, AnnounceError> {
        let mut ports: Vec<Port> = Vec::new();
        let mut targets = Vec::new();
        for v in vips {
            let i = match ports.iter().position(|p| p.dev == v.dev) {
                Some(i) => i,
                None => {
                    ports.push(Port::open(&v.dev)?);
                    ports.len() - 1
                }
            };
            targets.push((i, v.addr));
        }
        Ok(Announcer { ports, targets })
    }

    /// Sends `count` announcements for every VIP; returns how many went out.
    /// A failed send is logged, not fatal: the next batch may do better.
    pub fn send(&self, count: u32) -> usize {
        let mut sent = 0;
        for _ in 0..count {
            for &(i, addr) in &self.targets {
                let port = &self.ports[i];
                match port.send(&announcement(port.mac, addr, false)) {
                    Ok(()) => sent += 1,
                    Err(e) => log::warn!("announcing {addr}: {e}"),
                }
            }
        }
        sent
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
}
