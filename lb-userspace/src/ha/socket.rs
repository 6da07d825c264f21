//! Raw IPPROTO 112 sockets for one VRRP instance: multicast (224.0.0.18 or
//! ff02::12 unless `vrrp_mcast_group4/6` says otherwise, joined on the
//! instance's interface) or unicast to the
//! configured peers. The kernel writes the IP header; the source address is
//! chosen per packet with IP_PKTINFO / IPV6_PKTINFO so that it is exactly the
//! address the v3 checksum was computed over.

use std::{
    ffi::CString,
    io,
    mem::{size_of, zeroed},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use thiserror::Error;
use tokio::io::unix::AsyncFd;

use crate::vrrp::packet::{IPPROTO_VRRP, Ipv4Header, RxMeta, VRRP_TTL};

#[derive(Debug, Error)]
pub enum SocketError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: io::Error,
    },
    #[error("interface name {0:?} contains a NUL byte")]
    BadName(String),
    #[error("multicast group {0} is not of the instance's address family")]
    GroupFamily(IpAddr),
}

fn sys(what: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    move |source| SocketError::Sys { what, source }
}

/// Where adverts go and where they may come from.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub interface: String,
    pub ifindex: u32,
    /// Our source address; its family is the instance's family.
    pub src: IpAddr,
    /// Empty: multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// The multicast group of the instance's family (`vrrp_mcast_group4/6`,
    /// default 224.0.0.18 / ff02::12): joined, and where adverts go.
    pub group: IpAddr,
}

/// One received packet, as the decoder wants it.
pub enum Received {
    Packet {
        meta: RxMeta,
        payload: Vec<u8>,
    },
    /// Our own advert (multicast loops back on some setups): not counted.
    Own,
    /// A unicast advert from an address that is not a configured peer.
    UnknownPeer,
    /// Not parseable at the IP level (counted by the decoder's reason).
    BadIp(crate::vrrp::packet::DecodeError),
}

pub struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
    ep: Endpoint,
}

fn setopt<T>(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    val: &T,
    what: &'static str,
) -> Result<(), SocketError> {
    // SAFETY: `val` points at a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        Err(sys(what)(io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

impl VrrpSocket {
    pub fn open(ep: Endpoint) -> Result<Self, SocketError> {
        let v6 = ep.src.is_ipv6();
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe {
            libc::socket(
                family,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(IPPROTO_VRRP),
            )
        };
        if raw < 0 {
            return Err(sys("socket(IPPROTO_VRRP)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = CString::new(ep.interface.clone())
            .map_err(|_| SocketError::BadName(ep.interface.clone()))?;
        // SAFETY: the name buffer is valid for its length.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.as_bytes_with_nul().len() as u32,
            )
        };
        if rc < 0 {
            return Err(sys("SO_BINDTODEVICE")(io::Error::last_os_error()));
        }
        let ttl = i32::from(VRRP_TTL);
        let (zero, one) = (0i32, 1i32);
        if v6 {
            let s = libc::IPPROTO_IPV6;
            setopt(
                &fd,
                s,
                libc::IPV6_MULTICAST_HOPS,
                &ttl,
                "IPV6_MULTICAST_HOPS",
            )?;
            setopt(&fd, s, libc::IPV6_UNICAST_HOPS, &ttl, "IPV6_UNICAST_HOPS")?;
            setopt(
                &fd,
                s,
                libc::IPV6_MULTICAST_LOOP,
                &zero,
                "IPV6_MULTICAST_LOOP",
            )?;
            setopt(&fd, s, libc::IPV6_RECVHOPLIMIT, &one, "IPV6_RECVHOPLIMIT")?;
            setopt(&fd, s, libc::IPV6_RECVPKTINFO, &one, "IPV6_RECVPKTINFO")?;
            // The codec computes and checks the v3 checksum itself; keep the
            // kernel out of it (-1 is the raw-socket default, made explicit).
            setopt(
                &fd,
                libc::IPPROTO_RAW,
                libc::IPV6_CHECKSUM,
                &-1i32,
                "IPV6_CHECKSUM",
            )?;
            let index = ep.ifindex as i32;
            setopt(&fd, s, libc::IPV6_MULTICAST_IF, &index, "IPV6_MULTICAST_IF")?;
            if ep.unicast_peers.is_empty() {
                let IpAddr::V6(group) = ep.group else {
                    return Err(SocketError::GroupFamily(ep.group));
                };
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: group.octets(),
                    },
                    ipv6mr_interface: ep.ifindex,
                };
                setopt(
                    &fd,
                    s,
                    libc::IPV6_ADD_MEMBERSHIP,
                    &mreq,
                    "joining the IPv6 group",
                )?;
            }
        } else {
            let s = libc::IPPROTO_IP;
            setopt(&fd, s, libc::IP_MULTICAST_TTL, &ttl, "IP_MULTICAST_TTL")?;
            setopt(&fd, s, libc::IP_TTL, &ttl, "IP_TTL")?;
            setopt(&fd, s, libc::IP_MULTICAST_LOOP, &zero, "IP_MULTICAST_LOOP")?;
            let IpAddr::V4(group) = ep.group else {
                return Err(SocketError::GroupFamily(ep.group));
            };
            let mreq = libc::ip_mreqn {
                imr_multiaddr: in_addr(group),
                imr_address: in_addr(match ep.src {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                }),
                imr_ifindex: ep.ifindex as i32,
            };
            setopt(&fd, s, libc::IP_MULTICAST_IF, &mreq, "IP_MULTICAST_IF")?;
            if ep.unicast_peers.is_empty() {
                setopt(
                    &fd,
                    s,
                    libc::IP_ADD_MEMBERSHIP,
                    &mreq,
                    "joining the IPv4 group",
                )?;
            }
        }
        // SAFETY: the OwnedFd is valid, and AsyncFd owns it until it is dropped.
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| sys("registering with tokio")(e.into_parts().1))?;
        Ok(VrrpSocket { fd, ep })
    }

    /// Multicast group, or the unicast peers.
    pub fn destinations(&self) -> Vec<IpAddr> {
        if !self.ep.unicast_peers.is_empty() {
            return self.ep.unicast_peers.clone();
        }
        vec![self.ep.group]
    }

    pub fn src(&self) -> IpAddr {
        self.ep.src
    }

    /// Sends one VRRP message (no IP header) to `dst`. Non-blocking: a full
    /// socket buffer loses this advert, as a lost packet on the wire would.
    pub fn send(&self, dst: IpAddr, payload: &[u8]) -> Result<(), SocketError> {
        let fd = self.fd.get_ref().as_raw_fd();
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: every structure is zero-initialisable plain data.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        let rc = match (self.ep.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(d)) => {
                let mut sa: libc::sockaddr_in = unsafe { zeroed() };
                sa.sin_family = libc::AF_INET as u16;
                sa.sin_addr = in_addr(d);
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ep.ifindex as i32,
                    ipi_spec_dst: in_addr(src),
                    ipi_addr: in_addr(Ipv4Addr::UNSPECIFIED),
                };
                msg.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
                // SAFETY: cbuf is large and aligned enough for one cmsg.
                unsafe { put_cmsg(&mut msg, libc::IPPROTO_IP, libc::IP_PKTINFO, &info) };
                unsafe { libc::sendmsg(fd, &msg, 0) }
            }
            (IpAddr::V6(src), IpAddr::V6(d)) => {
                let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
                sa.sin6_family = libc::AF_INET6 as u16;
                sa.sin6_addr = libc::in6_addr {
                    s6_addr: d.octets(),
                };
                sa.sin6_scope_id = self.ep.ifindex;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ep.ifindex,
                };
                msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
                // SAFETY: as above.
                unsafe { put_cmsg(&mut msg, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info) };
                unsafe { libc::sendmsg(fd, &msg, 0) }
            }
            _ => return Err(sys("sendmsg")(io::Error::from(io::ErrorKind::InvalidInput))),
        };
        if rc < 0 {
            Err(sys("sendmsg")(io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }

    /// Waits for the next packet.
    pub async fn recv(&self) -> Result<Received, SocketError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(sys("waiting for adverts"))?;
            match guard.try_io(|fd| recv_one(fd.get_ref().as_raw_fd(), self.ep.src.is_ipv6())) {
                Ok(Ok(raw)) => return Ok(self.classify(raw)),
                Ok(Err(e)) => return Err(sys("recvmsg")(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn classify(&self, raw: Raw) -> Received {
        let (meta, payload) = match raw {
            Raw::V4(pkt) => match Ipv4Header::parse(&pkt) {
                Ok((hdr, payload)) => (hdr.meta(), payload.to_vec()),
                Err(e) => return Received::BadIp(e),
            },
            Raw::V6 { meta, payload } => (meta, payload),
        };
        if meta.src == self.ep.src {
            Received::Own
        } else if !self.ep.unicast_peers.is_empty() && !self.ep.unicast_peers.contains(&meta.src) {
            Received::UnknownPeer
        } else {
            Received::Packet { meta, payload }
        }
    }
}

enum Raw {
    V4(Vec<u8>),
    V6 { meta: RxMeta, payload: Vec<u8> },
}

fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from_ne_bytes(a.octets()),
    }
}

/// # Safety
/// `msg.msg_control` must point at a buffer with room for one cmsg of `T`.
unsafe fn put_cmsg<T>(msg: &mut libc::msghdr, level: i32, kind: i32, val: &T) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<T>() as u32) as usize;
        let c = libc::CMSG_FIRSTHDR(msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as usize;
        std::ptr::copy_nonoverlapping(
            (val as *const T).cast::<u8>(),
            libc::CMSG_DATA(c),
            size_of::<T>(),
        );
    }
}

fn recv_one(fd: i32, v6: bool) -> io::Result<Raw> {
    let mut buf = vec![0u8; 2048];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: plain data, zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&cbuf);
    // SAFETY: every pointer in `msg` refers to a live buffer of the given size.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    if !v6 {
        return Ok(Raw::V4(buf));
    }
    let src = Ipv6Addr::from(sa.sin6_addr.s6_addr);
    let (mut dst, mut hops) = (Ipv6Addr::UNSPECIFIED, 0u8);
    // SAFETY: walking the control messages the kernel just wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let h: i32 = std::ptr::read_unaligned(data.cast());
                    hops = u8::try_from(h).unwrap_or(0);
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let meta = RxMeta {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl: hops,
    };
    Ok(Raw::V6 { meta, payload: buf })
}
