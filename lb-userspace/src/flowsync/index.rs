//! The translation between this node's map numbers (real numbers, service
//! ids, which differ between nodes) and the addresses flow sync speaks.

use std::{collections::HashMap, net::IpAddr};

use lb_common::{FlowKey, PersistKey};

use super::wire::{Entry, What};
use crate::dataplane::{
    keys::{Proto, addr_words, flow_key, words_addr},
    reconcile::{RealId, Reconciler, ServiceId},
};

/// The numbering of the control loop's reconciler, as of its last change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    reals: HashMap<u32, (ServiceId, RealId)>,
    numbers: HashMap<(ServiceId, RealId), u32>,
    services: HashMap<ServiceId, u32>,
    ids: HashMap<u32, ServiceId>,
}

/// Where a received entry goes in this node's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    pub real: u32,
    service_id: u32,
    proto: Proto,
}

impl Local {
    pub fn flow_key(&self, e: &Entry) -> FlowKey {
        flow_key(self.proto, e.client, e.client_port, e.vip, e.vip_port)
    }

    pub fn persist_key(&self, e: &Entry) -> PersistKey {
        let (client, family) = addr_words(e.client);
        PersistKey {
            client,
            service: self.service_id,
            family,
            _pad: [0; 3],
        }
    }
}

impl Index {
    pub fn of(reconciler: &Reconciler, services: impl IntoIterator<Item = ServiceId>) -> Self {
        let mut index = Self::default();
        for sid in services {
            let Some(at) = reconciler.service_index(&sid) else {
                continue;
            };
            index.services.insert(sid, at.id);
            index.ids.insert(at.id, sid);
            for (rid, number) in at.reals {
                index.reals.insert(number, (sid, rid));
                index.numbers.insert((sid, rid), number);
            }
        }
        index
    }

    /// A flow-table entry of ours, by address.
    pub fn flow_entry(&self, key: &FlowKey, real: u32) -> Option<Entry> {
        let (sid, (raddr, rport)) = self.reals.get(&real)?;
        Some(Entry {
            what: What::Flow,
            proto: sid.2.number(),
            client: words_addr(key.src, key.family)?,
            client_port: u16::from_be(key.sport),
            vip: words_addr(key.dst, key.family)?,
            vip_port: u16::from_be(key.dport),
            real: *raddr,
            real_port: *rport,
        })
    }

    /// A persistence binding of ours, by address.
    pub fn persist_entry(&self, key: &PersistKey, real: u32) -> Option<Entry> {
        let sid = self.ids.get(&key.service)?;
        let (owner, (raddr, rport)) = self.reals.get(&real)?;
        (owner == sid).then_some(())?;
        Some(Entry {
            what: What::Persistence,
            proto: sid.2.number(),
            client: words_addr(key.client, key.family)?,
            client_port: 0,
            vip: sid.0,
            vip_port: sid.1,
            real: *raddr,
            real_port: *rport,
        })
    }

    /// Where a peer's entry goes here: its service (a flow may belong to a
    /// port-0 service, as the data plane looks it up) and this node's
    /// number for its real. `None` when this node has no such real.
    pub fn local(&self, e: &Entry) -> Option<Local> {
        let proto = Proto::try_from(e.proto).ok()?;
        let exact: ServiceId = (e.vip, e.vip_port, proto);
        let any_port: ServiceId = (e.vip, 0, proto);
        let sid = match e.what {
            What::Flow => [exact, any_port]
                .into_iter()
                .find(|s| self.services.contains_key(s))?,
            What::Persistence => exact,
        };
        let real: (IpAddr, u16) = (e.real, e.real_port);
        Some(Local {
            real: *self.numbers.get(&(sid, real))?,
            service_id: *self.services.get(&sid)?,
            proto,
        })
    }
}
