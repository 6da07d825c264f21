//! What the interface's driver means for XDP, asked through the ethtool
//! ioctl: the driver's name (on veth, native XDP breaks forwarding) and
//! whether the NIC strips VLAN tags before XDP sees the frame; and, through
//! rtnetlink, whether a veth's peer is in another network namespace (the tc
//! program then sends frames straight into it).

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GFLAGS: u32 = 0x25;
/// `rx-vlan-hw-parse` in `ETHTOOL_GFLAGS`.
const ETH_FLAG_RXVLAN: u32 = 1 << 8;

/// Drivers on which native XDP loses what the stack relies on: a local
/// sender's CHECKSUM_PARTIAL (the frame reaches the real with a partial
/// checksum) and `XDP_TX` without an XDP program on the peer (dropped).
const NATIVE_BREAKS: &[&str] = &["veth"];

/// Why native XDP does not work as is on `interface`, if it does not.
pub fn native_caveat(interface: &str) -> Option<String> {
    let driver = driver(interface).ok()?;
    NATIVE_BREAKS.contains(&driver.as_str()).then(|| {
        format!(
            "{interface} is a {driver} device: native XDP there drops frames sent back with \
             XDP_TX unless its peer has an XDP program, and loses the partial checksums of \
             local TCP senders (reals get bad checksums unless the senders run `ethtool -K \
             IF tx off`)"
        )
    })
}

/// Whether the tc program on `interface` may send frames with
/// `bpf_redirect_peer`: a veth whose peer is in another network namespace,
/// the only case the kernel takes (it drops a peer redirect on any other
/// device, or to a peer in the same namespace). A device whose driver does
/// not say (`lo`) is no veth.
pub fn redirects_to_peer(interface: &str) -> io::Result<bool> {
    match driver(interface) {
        Ok(d) if d == "veth" => link_in_other_netns(interface),
        _ => Ok(false),
    }
}

/// Whether the kernel reports `interface`'s link (a veth's peer) in another
/// network namespace: IFLA_LINK_NETNSID, which it sends only then.
fn link_in_other_netns(interface: &str) -> io::Result<bool> {
    let name = std::ffi::CString::new(interface)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut link = LinkMessage::default();
    link.header.index = index;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetLink(link));
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    let socket = Socket::new(NETLINK_ROUTE)?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&bytes, 0)?;
    let mut reply = Vec::with_capacity(64 * 1024);
    socket.recv(&mut reply, 0)?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => Ok(link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::NetnsId(_)))),
        NetlinkPayload::Error(e) => Err(e.to_io()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected rtnetlink reply {other:?}"),
        )),
    }
}

/// The driver behind `interface` ("veth", "mlx5_core", ...).
pub fn driver(interface: &str) -> io::Result<String> {
    // struct ethtool_drvinfo: cmd, then driver[32], ...; 196 bytes.
    let mut info = [0u8; 196];
    info[..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
    ethtool(interface, info.as_mut_ptr())?;
    let name = &info[4..36];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Whether the NIC takes VLAN tags off received frames (`rx-vlan-hw-parse`):
/// XDP then sees an untagged frame and `XDP_TX` sends it on untagged.
pub fn strips_vlan_tags(interface: &str) -> io::Result<bool> {
    // struct ethtool_value { cmd, data }.
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&ETHTOOL_GFLAGS.to_ne_bytes());
    ethtool(interface, value.as_mut_ptr())?;
    let data = u32::from_ne_bytes([value[4], value[5], value[6], value[7]]);
    Ok(data & ETH_FLAG_RXVLAN != 0)
}

fn ethtool(interface: &str, data: *mut u8) -> io::Result<()> {
    let name = interface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: a plain socket, closed by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_data = data.cast();
    // SAFETY: `req` names the interface and points at a buffer as large as
    // the ethtool command in its first word needs.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::netns_testing::{in_empty_netns, ip};

    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn a_veth_redirects_to_its_peer_only_in_another_namespace_root() {
        // A thread parked in a namespace of its own, to move a peer into
        // (`ip link set ... netns` takes its thread id as a pid).
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            // SAFETY: plain syscalls; unshare moves only this thread.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap().to_string();
        in_empty_netns(move || {
            ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v0p"]);
            assert!(
                !redirects_to_peer("v0").unwrap(),
                "peer in the same namespace"
            );
            ip(&["link", "set", "v0p", "netns", &tid]);
            assert!(
                redirects_to_peer("v0").unwrap(),
                "peer in another namespace"
            );
            assert!(!redirects_to_peer("lo").unwrap(), "not a veth");
            assert!(!redirects_to_peer("absent0").unwrap(), "no such device");
        });
        done_tx.send(()).unwrap();
        other.join().unwrap();
    }
}
