//! `virtual_routes`, added through rtnetlink when the instance becomes
//! master, removed when it stops being master (backup, fault, stop), like
//! keepalived. Added with replace, so a route left by a previous run is
//! taken over; removing a route already gone is not an error. The same
//! applier sets `static_routes` once at start. Rules (`virtual_rules`,
//! `static_rules`) go with the routes: added after them, removed before.

use std::net::IpAddr;

use futures::TryStreamExt as _;
use netlink_packet_route::{
    AddressFamily,
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType},
    rule::{RuleAction, RuleAttribute, RuleMessage},
};
use rtnetlink::Handle;
use thiserror::Error;

use crate::config::{KEEPALIVED_PROTOCOL, RouteKind, VirtualRoute, VirtualRule};

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("route at {at}: no interface {dev}")]
    NoDevice { at: String, dev: String },
    #[error("route at {at}: {action} {dst}/{prefix}: {source}")]
    Netlink {
        at: String,
        action: &'static str,
        dst: IpAddr,
        prefix: u8,
        source: Box<rtnetlink::Error>,
    },
    #[error("rule at {at}: {action}: {source}")]
    Rule {
        at: String,
        action: &'static str,
        source: Box<rtnetlink::Error>,
    },
}

/// The rule as `ip rule` would send it.
fn rule_message(r: &VirtualRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if r.v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = RuleAction::ToTable;
    m.header.table = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(
            KEEPALIVED_PROTOCOL,
        )));
    if let Some((a, len)) = r.from {
        m.header.src_len = len;
        if len > 0 {
            m.attributes.push(RuleAttribute::Source(a));
        }
    }
    if let Some((a, len)) = r.to {
        m.header.dst_len = len;
        if len > 0 {
            m.attributes.push(RuleAttribute::Destination(a));
        }
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(mask) = mask {
            m.attributes.push(RuleAttribute::FwMask(mask));
        }
    }
    m
}

/// The kernel's marker for "the table id is in the attribute".
const RT_TABLE_COMPAT: u8 = 252;
const MAIN_TABLE: u32 = 254;

fn address(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

pub struct VirtualRoutes {
    handle: Handle,
    routes: Vec<VirtualRoute>,
    rules: Vec<VirtualRule>,
}

impl VirtualRoutes {
    pub fn new(handle: Handle, routes: Vec<VirtualRoute>, rules: Vec<VirtualRule>) -> Self {
        Self {
            handle,
            routes,
            rules,
        }
    }

    fn rule_failed(r: &VirtualRule, action: &'static str, e: rtnetlink::Error) -> RouteError {
        RouteError::Rule {
            at: r.location.to_string(),
            action,
            source: Box::new(e),
        }
    }

    async fn ifindex(&self, r: &VirtualRoute, dev: &str) -> Result<u32, RouteError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(dev.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            _ => Err(RouteError::NoDevice {
                at: r.location.to_string(),
                dev: dev.to_string(),
            }),
        }
    }

    /// The route as rtnetlink carries it (what `ip route` would send).
    async fn message(&self, r: &VirtualRoute) -> Result<RouteMessage, RouteError> {
        let mut m = RouteMessage::default();
        m.header.address_family = if r.dst.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = r.prefix;
        m.header.protocol = RouteProtocol::from(r.protocol.unwrap_or(KEEPALIVED_PROTOCOL));
        m.header.kind = match r.kind {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
            RouteKind::Unreachable => RouteType::Unreachable,
            RouteKind::Prohibit => RouteType::Prohibit,
        };
        // As `ip route`: a route with neither gateway nor type is on-link.
        let default_scope = if r.kind == RouteKind::Unicast && r.via.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        m.header.scope = r.scope.map_or(default_scope, RouteScope::from);
        let table = r.table.unwrap_or(MAIN_TABLE);
        m.header.table = u8::try_from(table).unwrap_or(RT_TABLE_COMPAT);
        m.attributes.push(RouteAttribute::Table(table));
        if r.prefix > 0 {
            m.attributes
                .push(RouteAttribute::Destination(address(r.dst)));
        }
        if let Some(src) = r.src {
            m.attributes.push(RouteAttribute::PrefSource(address(src)));
        }
        if let Some(via) = r.via {
            m.attributes.push(RouteAttribute::Gateway(address(via)));
        }
        if let Some(dev) = &r.dev {
            m.attributes
                .push(RouteAttribute::Oif(self.ifindex(r, dev).await?));
        }
        if let Some(metric) = r.metric {
            m.attributes.push(RouteAttribute::Priority(metric));
        }
        Ok(m)
    }

    fn failed(r: &VirtualRoute, action: &'static str, e: rtnetlink::Error) -> RouteError {
        RouteError::Netlink {
            at: r.location.to_string(),
            action,
            dst: r.dst,
            prefix: r.prefix,
            source: Box::new(e),
        }
    }

    /// Adds every route; one that fails does not keep the others out.
    pub async fn add(&self) -> Vec<RouteError> {
        let mut errors = Vec::new();
        for r in &self.routes {
            let result = match self.message(r).await {
                Ok(m) => {
                    let mut req = self.handle.route().add().replace();
                    *req.message_mut() = m;
                    req.execute()
                        .await
                        .map_err(|e| Self::failed(r, "adding", e))
                }
                Err(e) => Err(e),
            };
            errors.extend(result.err());
        }
        for r in &self.rules {
            let mut req = self.handle.rule().add();
            *req.message_mut() = rule_message(r);
            match req.execute().await {
                Ok(()) => {}
                // Already there (a previous run's): what we want.
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                Err(e) => errors.push(Self::rule_failed(r, "adding", e)),
            }
        }
        errors
    }

    /// Removes every rule, then every route.
    pub async fn remove(&self) -> Vec<RouteError> {
        let mut errors = Vec::new();
        for r in &self.rules {
            match self.handle.rule().del(rule_message(r)).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e))
                    if [-libc::ENOENT, -libc::ESRCH].contains(&e.raw_code()) => {}
                Err(e) => errors.push(Self::rule_failed(r, "removing", e)),
            }
        }
        for r in &self.routes {
            let result = match self.message(r).await {
                Ok(m) => match self.handle.route().del(m).execute().await {
                    Ok(()) => Ok(()),
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ESRCH => {
                        Ok(())
                    }
                    Err(e) => Err(Self::failed(r, "removing", e)),
                },
                // The device went away, and the route with it.
                Err(RouteError::NoDevice { .. }) => Ok(()),
                Err(e) => Err(e),
            };
            errors.extend(result.err());
        }
        errors
    }
}
