//! What the interface's driver means for XDP, asked through the ethtool
//! ioctl: the driver's name (on veth, native XDP breaks forwarding) and
//! whether the NIC strips VLAN tags before XDP sees the frame.

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

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
