//! The VIP host routes a routing daemon announces: `blackhole VIP/32` (or
//! `/128`) in xdpvs's own table with xdpvs's own route protocol number, kept
//! with rtnetlink like `ip route add blackhole VIP table T proto P`.
//!
//! Blackhole, so that a VIP packet that ever reaches this node's stack
//! through that table is dropped rather than answered: XDP serves VIPs.
//! Routes are recognised by (table, protocol) alone, so a restarted daemon
//! finds the routes of the previous run and changes only what differs.

use std::{collections::BTreeSet, net::IpAddr};

use futures::TryStreamExt as _;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, IpVersion};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("listing the routes of table {table}: {source}")]
    List {
        table: u32,
        source: Box<rtnetlink::Error>,
    },
    #[error("adding blackhole {vip} to table {table}: {source}")]
    Add {
        vip: IpAddr,
        table: u32,
        source: Box<rtnetlink::Error>,
    },
    #[error("removing {vip} from table {table}: {source}")]
    Remove {
        vip: IpAddr,
        table: u32,
        source: Box<rtnetlink::Error>,
    },
}

/// Where the routes live and how they are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTable {
    pub table: u32,
    pub protocol: u8,
}

fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

fn host_destination(m: &RouteMessage) -> Option<IpAddr> {
    let full = match m.header.address_family {
        netlink_packet_route::AddressFamily::Inet => 32,
        netlink_packet_route::AddressFamily::Inet6 => 128,
        _ => return None,
    };
    if m.header.destination_prefix_length != full {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

impl RouteTable {
    fn ours(&self, m: &RouteMessage) -> bool {
        u8::from(m.header.protocol) == self.protocol && table_of(m) == self.table
    }

    /// The VIP routes this table holds now (ours only).
    pub async fn list(&self, handle: &Handle) -> Result<BTreeSet<IpAddr>, RouteError> {
        let mut vips = BTreeSet::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let mut req = handle.route().get(version);
            // A hint for the kernel; the filter below is what counts.
            req.message_mut().header.protocol = RouteProtocol::from(self.protocol);
            let mut routes = req.execute();
            while let Some(m) = routes.try_next().await.map_err(|e| RouteError::List {
                table: self.table,
                source: Box::new(e),
            })? {
                if self.ours(&m)
                    && let Some(vip) = host_destination(&m)
                {
                    vips.insert(vip);
                }
            }
        }
        Ok(vips)
    }

    /// `ip route replace blackhole VIP table T proto P`.
    pub async fn add(&self, handle: &Handle, vip: IpAddr) -> Result<(), RouteError> {
        let err = |e| RouteError::Add {
            vip,
            table: self.table,
            source: Box::new(e),
        };
        let req = handle
            .route()
            .add()
            .table_id(self.table)
            .protocol(RouteProtocol::from(self.protocol))
            .scope(RouteScope::Universe)
            .kind(RouteType::BlackHole)
            .replace();
        match vip {
            IpAddr::V4(v4) => req.v4().destination_prefix(v4, 32).execute().await,
            IpAddr::V6(v6) => req.v6().destination_prefix(v6, 128).execute().await,
        }
        .map_err(err)
    }

    /// Removes the VIP's route; one that is already gone is not an error.
    pub async fn remove(&self, handle: &Handle, vip: IpAddr) -> Result<(), RouteError> {
        let mut m = RouteMessage::default();
        m.header.protocol = RouteProtocol::from(self.protocol);
        m.header.kind = RouteType::BlackHole;
        m.header.scope = RouteScope::Universe;
        m.attributes.push(RouteAttribute::Table(self.table));
        m.header.table = u8::try_from(self.table).unwrap_or(RT_TABLE_COMPAT);
        match vip {
            IpAddr::V4(v4) => {
                m.header.address_family = netlink_packet_route::AddressFamily::Inet;
                m.header.destination_prefix_length = 32;
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet(v4)));
            }
            IpAddr::V6(v6) => {
                m.header.address_family = netlink_packet_route::AddressFamily::Inet6;
                m.header.destination_prefix_length = 128;
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet6(v6)));
            }
        }
        match handle.route().del(m).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ESRCH => Ok(()),
            Err(e) => Err(RouteError::Remove {
                vip,
                table: self.table,
                source: Box::new(e),
            }),
        }
    }
}

/// The kernel's marker for "the table id is in the attribute".
const RT_TABLE_COMPAT: u8 = 252;
