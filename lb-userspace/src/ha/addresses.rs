//! Virtual addresses (`virtual_ipaddress`, `virtual_ipaddress_excluded`) on
//! and off their interfaces, with rtnetlink, like `ip addr add IP/PREFIX dev
//! DEV label LABEL`. At start every configured VIP still present (a crashed
//! run leaves them behind) is removed before any instance takes part.
//!
//! IPv6 VIPs are added with IFA_F_NODAD, as keepalived does: a VIP moves
//! between nodes on purpose, and duplicate address detection would hold the
//! new master's address tentative (unusable) for a second or more.

use std::net::IpAddr;

use futures::TryStreamExt as _;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlag, AddressHeaderFlag, AddressMessage, AddressScope, CacheInfo,
};
use rtnetlink::Handle;
use thiserror::Error;

use crate::config::VipOptions;

#[derive(Debug, Error)]
pub enum AddressError {
    #[error("no interface named {0}")]
    NoInterface(String),
    #[error("{op} {addr}/{prefix} on {dev}: {source}")]
    Netlink {
        op: &'static str,
        addr: IpAddr,
        prefix: u8,
        dev: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("listing addresses of {dev}: {source}")]
    Dump {
        dev: String,
        source: Box<rtnetlink::Error>,
    },
}

/// One address as `ip addr` would be given it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: String,
    pub label: Option<String>,
    pub options: VipOptions,
}

/// Sets what `virtual_ipaddress` asked for on an add request: label, NODAD
/// (IPv6), home address, no prefix route, scope, broadcast, preferred lifetime.
pub fn apply_options(msg: &mut AddressMessage, v: &Vip) {
    let o = &v.options;
    if let Some(label) = &v.label {
        msg.attributes.push(AddressAttribute::Label(label.clone()));
    }
    let mut flags = Vec::new();
    if v.addr.is_ipv6() {
        flags.push(AddressFlag::Nodad);
        msg.header.flags.push(AddressHeaderFlag::Nodad);
    }
    if o.home {
        flags.push(AddressFlag::Homeaddress);
        msg.header.flags.push(AddressHeaderFlag::Homeaddress);
    }
    if o.noprefixroute {
        flags.push(AddressFlag::Noprefixroute);
    }
    if !flags.is_empty() {
        msg.attributes.push(AddressAttribute::Flags(flags));
    }
    if let Some(scope) = o.scope {
        msg.header.scope = AddressScope::from(scope);
    }
    if let Some(brd) = o.broadcast {
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if let Some(preferred) = o.preferred_lft {
        let mut info = CacheInfo::default();
        info.ifa_preferred = preferred;
        // INFINITY_LIFE_TIME: the address itself never expires.
        info.ifa_valid = u32::MAX;
        msg.attributes.push(AddressAttribute::CacheInfo(info));
    }
}

/// An address present on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Present {
    pub addr: IpAddr,
    pub dev: String,
}

/// The configured VIPs found among `present`: what a restart must clean.
/// Matched on address and device; the prefix may differ after a config edit.
pub fn stale<'a>(configured: &'a [Vip], present: &[Present]) -> Vec<&'a Vip> {
    let mut out: Vec<&Vip> = Vec::new();
    for v in configured {
        let here = present.iter().any(|p| p.addr == v.addr && p.dev == v.dev);
        if here && !out.iter().any(|o| o.addr == v.addr && o.dev == v.dev) {
            out.push(v);
        }
    }
    out
}

fn ifindex(dev: &str) -> Result<u32, AddressError> {
    crate::neighbour::ifindex(dev).map_err(|_| AddressError::NoInterface(dev.to_string()))
}

fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address on point-to-point links too.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(a) => Some(*a),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(a) => Some(*a),
            _ => None,
        })
    })
}

#[derive(Clone)]
pub struct Addresses {
    handle: Handle,
}

impl Addresses {
    pub fn new(handle: Handle) -> Self {
        Addresses { handle }
    }

    /// The rtnetlink connection, shared with the instance's routes.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    async fn dump(&self, dev: &str) -> Result<Vec<AddressMessage>, AddressError> {
        let index = ifindex(dev)?;
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| AddressError::Dump {
                dev: dev.to_string(),
                source: Box::new(e),
            })
    }

    /// Adds every VIP; one already there is left as it is. Each VIP is
    /// tried whatever became of the others (keepalived's way): one on a
    /// missing interface must not keep the rest off. Returns the failures.
    pub async fn add(&self, vips: &[Vip]) -> Vec<AddressError> {
        let mut errors = Vec::new();
        for v in vips {
            let index = match ifindex(&v.dev) {
                Ok(index) => index,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let mut req = self.handle.address().add(index, v.addr, v.prefix);
            apply_options(req.message_mut(), v);
            match req.execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                Err(e) => errors.push(AddressError::Netlink {
                    op: "adding",
                    addr: v.addr,
                    prefix: v.prefix,
                    dev: v.dev.clone(),
                    source: Box::new(e),
                }),
            }
        }
        errors
    }

    /// Removes every VIP that is present; absent ones are not an error.
    /// As [`Addresses::add`], a failure on one interface or VIP does not
    /// keep the others: a VIP left behind would be held by two nodes once
    /// the peer takes over. Returns the failures.
    pub async fn remove(&self, vips: &[Vip]) -> Vec<AddressError> {
        let mut devs: Vec<&str> = vips.iter().map(|v| v.dev.as_str()).collect();
        devs.sort_unstable();
        devs.dedup();
        let mut errors = Vec::new();
        for dev in devs {
            let present = match self.dump(dev).await {
                Ok(present) => present,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for msg in present {
                let Some(addr) = address_of(&msg) else {
                    continue;
                };
                let Some(v) = vips.iter().find(|v| v.dev == dev && v.addr == addr) else {
                    continue;
                };
                match self.handle.address().del(msg).execute().await {
                    Ok(()) => {}
                    Err(rtnetlink::Error::NetlinkError(e))
                        if e.raw_code() == -libc::EADDRNOTAVAIL => {}
                    Err(e) => errors.push(AddressError::Netlink {
                        op: "removing",
                        addr: v.addr,
                        prefix: v.prefix,
                        dev: dev.to_string(),
                        source: Box::new(e),
                    }),
                }
            }
        }
        errors
    }

    /// Removes the configured VIPs a previous run left behind; returns them.
    pub async fn remove_stale(&self, configured: &[Vip]) -> Result<Vec<Vip>, AddressError> {
        let mut devs: Vec<&str> = configured.iter().map(|v| v.dev.as_str()).collect();
        devs.sort_unstable();
        devs.dedup();
        let mut present = Vec::new();
        for dev in devs {
            for msg in self.dump(dev).await? {
                if let Some(addr) = address_of(&msg) {
                    present.push(Present {
                        addr,
                        dev: dev.to_string(),
                    });
                }
            }
        }
        let stale: Vec<Vip> = stale(configured, &present).into_iter().cloned().collect();
        match self.remove(&stale).await.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(stale),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::netns_testing::{in_empty_netns, ip};

    fn vip(last: u8, dev: &str) -> Vip {
        Vip {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            prefix: 32,
            dev: dev.into(),
            label: None,
            options: VipOptions::default(),
        }
    }

    fn present(last: u8, dev: &str) -> Present {
        Present {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            dev: dev.into(),
        }
    }

    fn flags(msg: &AddressMessage) -> Vec<AddressFlag> {
        msg.attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Flags(f) => Some(f.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn ipv6_vips_skip_dad_and_options_reach_the_request() {
        let mut v6 = vip(1, "eth0");
        v6.addr = "2001:db8::1".parse().unwrap();
        v6.options.noprefixroute = true;
        v6.options.home = true;
        v6.options.preferred_lft = Some(0);
        let mut msg = AddressMessage::default();
        apply_options(&mut msg, &v6);
        assert_eq!(
            flags(&msg),
            [
                AddressFlag::Nodad,
                AddressFlag::Homeaddress,
                AddressFlag::Noprefixroute
            ]
        );
        assert!(msg.header.flags.contains(&AddressHeaderFlag::Nodad));
        let lifetimes = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::CacheInfo(c) => Some((c.ifa_preferred, c.ifa_valid)),
            _ => None,
        });
        assert_eq!(lifetimes, Some((0, u32::MAX)), "deprecated, never invalid");

        let mut v4 = vip(1, "eth0");
        v4.label = Some("eth0:vip".into());
        v4.options.scope = Some(254);
        v4.options.broadcast = Some(Ipv4Addr::new(10, 0, 0, 255));
        let mut msg = AddressMessage::default();
        msg.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::new(10, 0, 0, 1)));
        apply_options(&mut msg, &v4);
        assert!(flags(&msg).is_empty(), "no NODAD for IPv4");
        assert_eq!(msg.header.scope, AddressScope::Host);
        assert_eq!(
            msg.attributes,
            [
                AddressAttribute::Label("eth0:vip".into()),
                AddressAttribute::Broadcast(Ipv4Addr::new(10, 0, 0, 255)),
            ],
            "brd replaces the computed broadcast"
        );
    }

    #[test]
    fn stale_picks_configured_vips_still_present() {
        let configured = [
            vip(100, "eth0"),
            vip(101, "eth0"),
            vip(102, "eth1"),
            vip(100, "eth0"),
        ];
        let on_box = [
            present(2, "eth0"),
            present(100, "eth0"),
            present(102, "eth0"),
        ];
        let got: Vec<&Vip> = stale(&configured, &on_box);
        assert_eq!(
            got,
            vec![&configured[0]],
            "102 is on another device; duplicates once"
        );
        assert!(
            stale(&configured, &[present(2, "eth0")]).is_empty(),
            "the node's own address is never touched"
        );
    }

    /// A VIP on an interface that is gone must not keep the others from
    /// being added or removed: `absent0` sorts before `d1`.
    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn one_failing_vip_does_not_stop_the_others_root() {
        in_empty_netns(|| {
            // No dummy driver on every kernel: a veth pair, up.
            ip(&["link", "add", "d1", "type", "veth", "peer", "name", "d1p"]);
            ip(&["link", "set", "d1", "up"]);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (conn, handle, _) = rtnetlink::new_connection().unwrap();
                tokio::spawn(conn);
                let a = Addresses::new(handle);
                let vips = [vip(1, "absent0"), vip(2, "d1")];
                let on_d1 = || async {
                    a.dump("d1")
                        .await
                        .unwrap()
                        .iter()
                        .filter_map(address_of)
                        .collect::<Vec<_>>()
                };
                let errors = a.add(&vips).await;
                assert!(
                    matches!(&errors[..], [AddressError::NoInterface(d)] if d == "absent0"),
                    "{errors:?}"
                );
                assert_eq!(on_d1().await, vec![vips[1].addr], "added despite absent0");
                let errors = a.remove(&vips).await;
                assert!(
                    matches!(&errors[..], [AddressError::NoInterface(d)] if d == "absent0"),
                    "{errors:?}"
                );
                assert_eq!(
                    on_d1().await,
                    Vec::<IpAddr>::new(),
                    "removed despite absent0"
                );
            });
        });
    }
}
