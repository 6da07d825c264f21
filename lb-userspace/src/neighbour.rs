//! Real servers' MAC addresses, from the kernel's neighbour table.
//!
//! The XDP program bypasses the kernel, so the kernel never resolves the reals
//! on its own. This task asks it to (an `RTM_NEWNEIGH` with `NTF_USE`, which
//! makes the kernel send ARP / neighbour solicitations as if it had a packet
//! to send), follows the table through its multicast group, and refreshes
//! every entry periodically so none goes stale and is collected. It reports a
//! MAC when it becomes known or changes, and `None` when it is lost (failed
//! resolution or deleted entry): a real with no MAC gets no traffic.
//!
//! A static entry (`nud permanent` or `noarp`, which operators set for reals)
//! is used as it is and never asked for: the kernel turns a permanent entry
//! that gets an `NTF_USE` request into a dynamic one that must be resolved.

use std::{collections::HashMap, ffi::CString, net::IpAddr, time::Duration};

use anyhow::{Context as _, Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use log::{debug, info, warn};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    RouteNetlinkMessage,
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlag, NeighbourMessage, NeighbourState,
    },
};
use netlink_sys::{AsyncSocket as _, SocketAddr};
use rtnetlink::{Handle, constants::RTMGRP_NEIGH};
use tokio::sync::{mpsc, watch};

use crate::dataplane::keys::{Mac, format_mac};

/// How often unresolved reals are asked for again.
const RETRY: Duration = Duration::from_secs(1);
/// How often resolved reals are refreshed; well under the kernel's default
/// `gc_stale_time` (60 s) so no entry is ever garbage-collected.
const REFRESH: Duration = Duration::from_secs(20);

pub type MacUpdate = (IpAddr, Option<Mac>);

pub fn ifindex(interface: &str) -> Result<u32> {
    let name = CString::new(interface).context("interface name contains a NUL byte")?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        bail!("no interface named {interface}");
    }
    Ok(index)
}

/// Resolves and follows the MACs of `wanted` on `interface` until `wanted` is
/// closed, reporting changes on `updates`.
pub async fn resolve(
    interface: String,
    mut wanted: watch::Receiver<Vec<IpAddr>>,
    updates: mpsc::Sender<MacUpdate>,
) -> Result<()> {
    let index = ifindex(&interface)?;
    let (mut conn, handle, mut events) =
        rtnetlink::new_connection().context("opening rtnetlink")?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_NEIGH))
        .context("subscribing to neighbour events")?;
    tokio::spawn(conn);

    let mut known: HashMap<IpAddr, Mac> = HashMap::new();
    // The last state the kernel reported for each wanted real.
    let mut states: HashMap<IpAddr, NeighbourState> = HashMap::new();
    let mut retry = tokio::time::interval(RETRY);
    let mut refresh = tokio::time::interval(REFRESH);
    let mut addrs = wanted.borrow_and_update().clone();
    for msg in dump(&handle).await? {
        note(&msg, index, &addrs, &mut known, &mut states, &updates).await;
    }
    loop {
        tokio::select! {
            changed = wanted.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                addrs = wanted.borrow_and_update().clone();
                known.retain(|a, _| addrs.contains(a));
                states.retain(|a, _| addrs.contains(a));
                for msg in dump(&handle).await? {
                    note(&msg, index, &addrs, &mut known, &mut states, &updates).await;
                }
                retry.reset_immediately();
            }
            Some((msg, _)) = events.next() => {
                if let NetlinkPayload::InnerMessage(m) = msg.payload {
                    match m {
                        RouteNetlinkMessage::NewNeighbour(n) => {
                            note(&n, index, &addrs, &mut known, &mut states, &updates).await;
                        }
                        RouteNetlinkMessage::DelNeighbour(n) => {
                            let addr = destination(&n).filter(|a| n.header.ifindex == index && addrs.contains(a));
                            if let Some(addr) = addr {
                                states.remove(&addr);
                            }
                            if let Some(addr) = addr
                                && known.remove(&addr).is_some()
                            {
                                info!("real {addr}: neighbour entry deleted, resolving again");
                                let _ = updates.send((addr, None)).await;
                                solicit(&handle, index, addr).await;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ = retry.tick() => {
                for addr in addrs.iter().filter(|a| !known.contains_key(a)) {
                    if may_ask(states.get(addr)) {
                        solicit(&handle, index, *addr).await;
                    }
                }
            }
            _ = refresh.tick() => {
                for addr in known.keys().filter(|a| may_ask(states.get(a))) {
                    solicit(&handle, index, *addr).await;
                }
            }
        }
    }
}

async fn dump(handle: &Handle) -> Result<Vec<NeighbourMessage>> {
    handle
        .neighbours()
        .get()
        .execute()
        .try_collect()
        .await
        .context("reading the neighbour table")
}

/// Whether the daemon may ask the kernel about an entry in `state` (`None`:
/// no entry). Never about a static one, which the request would make dynamic;
/// for a reachable entry the request changes nothing, for a stale one it
/// starts the kernel's reachability probe, which keeps it from being collected.
fn may_ask(state: Option<&NeighbourState>) -> bool {
    !matches!(
        state,
        Some(NeighbourState::Permanent | NeighbourState::Noarp)
    )
}

/// Asks the kernel to resolve `addr` on `index` (or to refresh its entry).
async fn solicit(handle: &Handle, index: u32, addr: IpAddr) {
    let request = handle
        .neighbours()
        .add(index, addr)
        .state(NeighbourState::None)
        .flags(vec![NeighbourFlag::Use])
        .replace();
    if let Err(e) = request.execute().await {
        warn!("real {addr}: asking the kernel to resolve it failed: {e}");
    }
}

fn destination(msg: &NeighbourMessage) -> Option<IpAddr> {
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

/// The MAC an entry gives, if its state makes it usable.
fn usable_mac(msg: &NeighbourMessage) -> Option<Mac> {
    let usable = matches!(
        msg.header.state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    );
    if !usable {
        return None;
    }
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLocalAddress(l) => l.as_slice().try_into().ok(),
        _ => None,
    })
}

async fn note(
    msg: &NeighbourMessage,
    index: u32,
    addrs: &[IpAddr],
    known: &mut HashMap<IpAddr, Mac>,
    states: &mut HashMap<IpAddr, NeighbourState>,
    updates: &mpsc::Sender<MacUpdate>,
) {
    let Some(addr) = destination(msg).filter(|a| msg.header.ifindex == index && addrs.contains(a))
    else {
        return;
    };
    states.insert(addr, msg.header.state);
    match usable_mac(msg) {
        Some(mac) if known.get(&addr) != Some(&mac) => {
            debug!("real {addr} is at {}", format_mac(&mac));
            known.insert(addr, mac);
            let _ = updates.send((addr, Some(mac))).await;
        }
        Some(_) => {}
        None if msg.header.state == NeighbourState::Failed && known.remove(&addr).is_some() => {
            warn!("real {addr}: neighbour resolution failed, it gets no traffic");
            let _ = updates.send((addr, None)).await;
        }
        None => debug!("real {addr}: neighbour state {:?}", msg.header.state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_entries_are_never_asked_for_and_all_others_are() {
        assert!(may_ask(None), "a missing entry");
        for state in [NeighbourState::Permanent, NeighbourState::Noarp] {
            assert!(!may_ask(Some(&state)), "{state:?}");
        }
        for state in [
            NeighbourState::None,
            NeighbourState::Incomplete,
            NeighbourState::Reachable,
            NeighbourState::Stale,
            NeighbourState::Delay,
            NeighbourState::Probe,
            NeighbourState::Failed,
        ] {
            assert!(may_ask(Some(&state)), "{state:?}");
        }
    }
}
