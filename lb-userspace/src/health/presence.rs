//! Which addresses this host has, for `ha_suspend`: a virtual server's
//! checks pause while its VIP is not here (a VRRP backup) and resume when
//! it is added, as keepalived's address watch does. Read every POLL with
//! getifaddrs(3), off the daemon's loop.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::Duration,
};

use tokio::sync::watch;

use super::runner::Addresses;

/// How soon a VIP's arrival or departure is noticed.
const POLL: Duration = Duration::from_millis(500);

/// The host's addresses, kept current by a task that ends when every
/// receiver is gone.
pub fn watch_host() -> Addresses {
    let (tx, rx) = watch::channel(Arc::new(host_addresses().unwrap_or_default()));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            // A failed read keeps the last known set.
            let Ok(now) = host_addresses() else { continue };
            tx.send_if_modified(|known| {
                let changed = **known != now;
                if changed {
                    *known = Arc::new(now);
                }
                changed
            });
        }
    });
    rx
}

/// Every IPv4 and IPv6 address on this host's interfaces.
fn host_addresses() -> std::io::Result<HashSet<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = HashSet::new();
    let mut cur = head;
    // SAFETY: walking the list getifaddrs returned; each ifa_addr is read
    // as the sockaddr type its family says.
    unsafe {
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                        out.insert(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                        out.insert(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_on_this_host() {
        let here = host_addresses().unwrap();
        assert!(here.contains(&IpAddr::from([127, 0, 0, 1])), "{here:?}");
        assert!(!here.contains(&IpAddr::from([192, 0, 2, 123])));
    }
}
