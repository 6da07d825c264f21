//! Virtual addresses (`virtual_ipaddress`, `virtual_ipaddress_excluded`) on
//! and off their interfaces, with rtnetlink, like `ip addr add IP/PREFIX dev
//! DEV label LABEL`. At start every configured VIP still present (a crashed
//! run leaves them behind) is removed before any instance takes part.

use std::net::IpAddr;

use futures::TryStreamExt as _;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::Handle;
use thiserror::Error;

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

    /// Adds every VIP; one already there is left as it is.
    pub async fn add(&self, vips: &[Vip]) -> Result<(), AddressError> {
        for v in vips {
            let mut req = self
                .handle
                .address()
                .add(ifindex(&v.dev)?, v.addr, v.prefix);
            if let Some(label) = &v.label {
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Label(label.clone()));
            }
            match req.execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                Err(e) => {
                    return Err(AddressError::Netlink {
                        op: "adding",
                        addr: v.addr,
                        prefix: v.prefix,
                        dev: v.dev.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes every VIP that is present; absent ones are not an error.
    pub async fn remove(&self, vips: &[Vip]) -> Result<(), AddressError> {
        let mut devs: Vec<&str> = vips.iter().map(|v| v.dev.as_str()).collect();
        devs.sort_unstable();
        devs.dedup();
        for dev in devs {
            for msg in self.dump(dev).await? {
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
                    Err(e) => {
                        return Err(AddressError::Netlink {
                            op: "removing",
                            addr: v.addr,
                            prefix: v.prefix,
                            dev: dev.to_string(),
                            source: Box::new(e),
                        });
                    }
                }
            }
        }
        Ok(())
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
        self.remove(&stale).await?;
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn vip(last: u8, dev: &str) -> Vip {
        Vip {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            prefix: 32,
            dev: dev.into(),
            label: None,
        }
    }

    fn present(last: u8, dev: &str) -> Present {
        Present {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            dev: dev.into(),
        }
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
}
