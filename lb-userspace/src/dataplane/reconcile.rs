//! The reconciler's pure core: from the desired services, the real servers'
//! health and the MACs known so far, it computes the map writes that bring the
//! kernel to that state, in an order the XDP program can observe safely.
//!
//! It owns every map index: service ids, real numbers, and which of a
//! service's two rings is live. A new Maglev table is written into the ring
//! not in use and then published by one `SERVICES` update (see
//! `lb_common::Service`), so the XDP program never reads a half-written ring.
//! Only the ring positions that differ from what that ring already holds are
//! written.
//!
//! It can also start from what a running data plane holds (`adopt`): the
//! numbers, rings and entries in the kernel become its record of what is
//! written, so the next desired state costs only the difference.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
};

use lb_common::{
    IDENT_HEALTHY, IDENT_INHIBITED, REAL_NO_NEW, REAL_UP, RING_SIZE, Real, RealIdent, Service,
    ServiceKey, VIP_FILTER_WORDS, rings_of, vip_filter_bit,
};
use thiserror::Error;

use super::keys::{Mac, Proto, addr_words, service_key, words_addr};
use crate::maglev;

/// One virtual service as the configuration (or the admin API) wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub vip: IpAddr,
    /// 0 = every port.
    pub port: u16,
    pub proto: Proto,
    pub persist_timeout_s: u32,
    pub reals: Vec<RealSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealSpec {
    pub addr: IpAddr,
    pub port: u16,
    /// 0 = no new flows and no new persistence bindings, existing flows
    /// continue (drain; `REAL_NO_NEW`).
    pub weight: u32,
    /// False while health checks say it is down: no packets at all.
    pub healthy: bool,
    /// Down by its checks but kept (`healthy`, weight 0) by
    /// `inhibit_on_failure`: recorded so that an adopting daemon knows it failed.
    pub inhibited: bool,
}

/// Identity of a service: what the XDP program looks up.
pub type ServiceId = (IpAddr, u16, Proto);
/// Identity of a real within a service.
pub type RealId = (IpAddr, u16);

/// A service's numbers in the maps: its id, its live ring, its reals'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIndex {
    pub id: u32,
    pub ring: u32,
    pub reals: Vec<(RealId, u32)>,
}

/// One change to the kernel's maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Real {
        index: u32,
        real: Real,
    },
    /// Who holds number `index` (written before its `Real`, cleared after).
    Ident {
        index: u32,
        ident: RealIdent,
    },
    RingSlots {
        ring: u32,
        slots: Vec<(u32, u32)>,
    },
    Service {
        key: ServiceKey,
        service: Service,
    },
    DeleteService {
        key: ServiceKey,
    },
    /// `VIP_FILTER[word] = bits`.
    VipFilter {
        word: u32,
        bits: u64,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReconcileError {
    #[error("too many services: the data plane holds {0}")]
    TooManyServices(u32),
    #[error("too many real servers: the data plane holds {0}")]
    TooManyReals(u32),
}

/// A real as the kernel has it.
#[derive(Debug, Clone)]
struct RealState {
    spec: RealSpec,
    index: u32,
    written: Real,
    written_ident: RealIdent,
}

#[derive(Debug)]
struct ServiceState {
    spec: ServiceSpec,
    id: u32,
    reals: BTreeMap<RealId, RealState>,
    /// What each of the two rings holds in the kernel.
    rings: [Vec<u32>; 2],
    live: usize,
    written: Option<Service>,
    /// The reals (number, seed, weight) the live ring was built from: an
    /// unchanged set skips the rebuild.
    built_from: Option<Vec<(u32, u64, u32)>>,
}

impl ServiceState {
    fn key(&self) -> ServiceKey {
        service_key(self.spec.vip, self.spec.port, self.spec.proto)
    }
}

/// Allocates indices first-in first-out, so a freed index is reused as late
/// as possible: a flow-table entry that still names it is then long evicted.
#[derive(Debug)]
struct Indices {
    free: VecDeque<u32>,
    capacity: u32,
}

impl Indices {
    fn new(capacity: u32) -> Self {
        Self {
            free: (0..capacity).collect(),
            capacity,
        }
    }
}

/// What the kernel's maps hold, as read back from them: the start of an
/// adoption, and of a resync after a write the kernel refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub services: Vec<(ServiceKey, Service)>,
    /// Every number whose `REALS` or `IDENTS` entry is not zeroed.
    pub reals: Vec<SnapshotReal>,
    /// The two rings of every service in `services`, by ring number.
    pub rings: HashMap<u32, Vec<u32>>,
    /// `VIP_FILTER`'s words (empty: not read).
    pub vip_filter: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotReal {
    pub index: u32,
    pub real: Real,
    pub ident: RealIdent,
}

#[derive(Debug)]
pub struct Reconciler {
    services: BTreeMap<ServiceId, ServiceState>,
    macs: HashMap<IpAddr, Mac>,
    service_ids: Indices,
    real_indices: Indices,
    /// Leftovers found by `adopt` that no service owns: cleared by the next pass.
    cleanup: Vec<Write>,
    /// What `VIP_FILTER` holds.
    vip_filter: Vec<u64>,
}

/// A real's identity as `IDENTS` holds it.
fn ident_of(spec: &RealSpec, service: u32) -> RealIdent {
    let (addr, family) = addr_words(spec.addr);
    RealIdent {
        addr,
        port: spec.port.to_be(),
        family,
        flags: match (spec.healthy, spec.inhibited) {
            (false, _) => 0,
            (true, false) => IDENT_HEALTHY,
            (true, true) => IDENT_HEALTHY | IDENT_INHIBITED,
        },
        service,
    }
}

fn service_id_of(key: &ServiceKey) -> Option<ServiceId> {
    Some((
        words_addr(key.addr, key.family)?,
        u16::from_be(key.port),
        Proto::try_from(key.proto).ok()?,
    ))
}

impl Reconciler {
    pub fn new(max_services: u32, max_reals: u32) -> Self {
        Self {
            services: BTreeMap::new(),
            macs: HashMap::new(),
            service_ids: Indices::new(max_services),
            real_indices: Indices::new(max_reals),
            vip_filter: vec![0; VIP_FILTER_WORDS as usize],
            cleanup: Vec::new(),
        }
    }

    /// A reconciler whose record of what is written is `kernel`: its
    /// services keep their numbers and live rings, their reals their
    /// numbers, MACs and health. Entries that no service owns (a crash in the
    /// middle of a change) are cleared by the next pass. Until the next
    /// `set_services`, a service's reals carry weight 0.
    pub fn adopt(max_services: u32, max_reals: u32, kernel: &Snapshot) -> Self {
        let mut rec = Self::new(max_services, max_reals);
        let mut owned: BTreeMap<u32, ServiceId> = BTreeMap::new();
        for (key, service) in &kernel.services {
            let usable = service.id < max_services && !owned.contains_key(&service.id);
            let Some(id) = service_id_of(key).filter(|_| usable) else {
                rec.cleanup.push(Write::DeleteService { key: *key });
                continue;
            };
            owned.insert(service.id, id);
            let [r0, r1] = rings_of(service.id);
            let ring = |r| kernel.rings.get(&r).cloned().unwrap_or_default();
            rec.services.insert(
                id,
                ServiceState {
                    spec: ServiceSpec {
                        vip: id.0,
                        port: id.1,
                        proto: id.2,
                        persist_timeout_s: service.persist_timeout_s,
                        reals: Vec::new(),
                    },
                    id: service.id,
                    reals: BTreeMap::new(),
                    rings: [ring(r0), ring(r1)],
                    live: usize::from(service.ring == r1),
                    written: Some(*service),
                    built_from: None,
                },
            );
        }
        let mut used = std::collections::BTreeSet::new();
        let mut orphans = Vec::new();
        for r in &kernel.reals {
            let owner = owned
                .get(&r.ident.service)
                .and_then(|sid| rec.services.get_mut(sid));
            let addr = words_addr(r.ident.addr, r.ident.family);
            match (owner, addr) {
                (Some(state), Some(addr)) if r.index < max_reals && used.insert(r.index) => {
                    let spec = RealSpec {
                        addr,
                        port: u16::from_be(r.ident.port),
                        weight: 0,
                        healthy: r.ident.flags & IDENT_HEALTHY != 0,
                        inhibited: r.ident.flags & IDENT_INHIBITED != 0,
                    };
                    if r.real.flags & REAL_UP != 0 || r.real.mac != Mac::default() {
                        rec.macs.insert(addr, r.real.mac);
                    }
                    state.spec.reals.push(spec.clone());
                    state.reals.insert(
                        (spec.addr, spec.port),
                        RealState {
                            spec,
                            index: r.index,
                            written: r.real,
                            written_ident: r.ident,
                        },
                    );
                }
                _ if r.index < max_reals => orphans.push(r.index),
                _ => {}
            }
        }
        // Orphans are cleared first: no live ring names them (their
        // service is not in SERVICES), and their numbers are reused last.
        for &index in &orphans {
            rec.cleanup.push(Write::Real {
                index,
                real: Real::default(),
            });
            rec.cleanup.push(Write::Ident {
                index,
                ident: RealIdent::default(),
            });
        }
        if kernel.vip_filter.len() == VIP_FILTER_WORDS as usize {
            rec.vip_filter = kernel.vip_filter.clone();
        }
        let taken = |i: &u32| used.contains(i) || orphans.contains(i);
        rec.real_indices.free = (0..max_reals).filter(|i| !taken(i)).collect();
        rec.real_indices.free.extend(orphans);
        rec.service_ids.free = (0..max_services)
            .filter(|i| !owned.contains_key(i))
            .collect();
        rec
    }

    /// The health of every real as the adopted data plane recorded it (an
    /// inhibited one failed its checks).
    pub fn adopted_health(&self) -> Vec<(ServiceId, RealId, bool)> {
        self.services
            .iter()
            .flat_map(|(sid, s)| {
                s.reals
                    .iter()
                    .map(|(rid, r)| (*sid, *rid, r.spec.healthy && !r.spec.inhibited))
            })
            .collect()
    }

    /// Forgets what it thought was written and takes `kernel` instead,
    /// keeping the MACs it knows: after a write the kernel refused.
    pub fn resync(&mut self, kernel: &Snapshot) {
        let macs = std::mem::take(&mut self.macs);
        let mut wanted: BTreeMap<ServiceId, ServiceSpec> = std::mem::take(&mut self.services)
            .into_iter()
            .map(|(id, s)| (id, s.spec))
            .collect();
        *self = Self::adopt(
            self.service_ids.capacity,
            self.real_indices.capacity,
            kernel,
        );
        self.macs.extend(macs);
        // Still wanted as before: the next pass needs the desired weights.
        for (id, state) in &mut self.services {
            if let Some(spec) = wanted.remove(id) {
                state.spec = spec;
            }
        }
    }

    /// The filter words to write so that every wanted VIP's bit is set before
    /// its service appears (`set`), and the bits of VIPs that left are
    /// cleared after their services went (`clear`).
    fn vip_filter_writes(&mut self, wanted: &[ServiceKey]) -> (Vec<Write>, Vec<Write>) {
        let mut next = vec![0u64; VIP_FILTER_WORDS as usize];
        for key in wanted {
            let (word, bit) = vip_filter_bit(&key.addr);
            next[word as usize] |= bit;
        }
        let (mut set, mut clear) = (Vec::new(), Vec::new());
        for (word, (old, new)) in self.vip_filter.iter().zip(&next).enumerate() {
            let word = word as u32;
            if old | new != *old {
                set.push(Write::VipFilter {
                    word,
                    bits: old | new,
                });
            }
            if old | new != *new {
                clear.push(Write::VipFilter { word, bits: *new });
            }
        }
        self.vip_filter = next;
        (set, clear)
    }

    /// Replaces the whole desired set of services.
    pub fn set_services(&mut self, specs: Vec<ServiceSpec>) -> Result<Vec<Write>, ReconcileError> {
        let wanted: BTreeMap<ServiceId, ServiceSpec> = specs
            .into_iter()
            .map(|s| ((s.vip, s.port, s.proto), s))
            .collect();
        self.check_capacity(&wanted)?;
        let keys: Vec<ServiceKey> = wanted
            .values()
            .map(|s| service_key(s.vip, s.port, s.proto))
            .collect();
        let (filter_set, filter_clear) = self.vip_filter_writes(&keys);
        let mut removed = Vec::new();
        self.services.retain(|id, state| {
            let keep = wanted.contains_key(id);
            if !keep {
                removed.push((
                    state.key(),
                    state.id,
                    state.reals.values().map(|r| r.index).collect::<Vec<_>>(),
                ));
            }
            keep
        });
        for (id, spec) in wanted {
            match self.services.get_mut(&id) {
                Some(state) => state.spec = spec,
                None => {
                    let sid = self
                        .service_ids
                        .free
                        .pop_front()
                        .ok_or(ReconcileError::TooManyServices(self.service_ids.capacity))?;
                    self.services.insert(
                        id,
                        ServiceState {
                            spec,
                            id: sid,
                            reals: BTreeMap::new(),
                            rings: [Vec::new(), Vec::new()],
                            live: 1,
                            written: None,
                            built_from: None,
                        },
                    );
                }
            }
        }
        let mut writes = filter_set;
        writes.extend(self.sync()?);
        for (key, id, reals) in removed {
            writes.push(Write::DeleteService { key });
            self.service_ids.free.push_back(id);
            for index in reals {
                writes.extend(Self::clear(index));
                self.real_indices.free.push_back(index);
            }
        }
        writes.extend(filter_clear);
        Ok(writes)
    }

    /// Frees number `index` in the kernel: the real, then who held it.
    fn clear(index: u32) -> [Write; 2] {
        [
            Write::Real {
                index,
                real: Real::default(),
            },
            Write::Ident {
                index,
                ident: RealIdent::default(),
            },
        ]
    }

    /// Refuses a set that needs more numbers than are free, before anything
    /// changes, so a refused set leaves the reconciler as it was. Numbers the
    /// set would free are not counted: they are reused last anyway.
    fn check_capacity(
        &self,
        wanted: &BTreeMap<ServiceId, ServiceSpec>,
    ) -> Result<(), ReconcileError> {
        let new_services = wanted
            .keys()
            .filter(|id| !self.services.contains_key(*id))
            .count();
        if new_services > self.service_ids.free.len() {
            return Err(ReconcileError::TooManyServices(self.service_ids.capacity));
        }
        let new_reals: usize = wanted
            .iter()
            .map(|(id, spec)| {
                let known = self.services.get(id);
                spec.reals
                    .iter()
                    .filter(|r| !known.is_some_and(|s| s.reals.contains_key(&(r.addr, r.port))))
                    .count()
            })
            .sum();
        if new_reals > self.real_indices.free.len() {
            return Err(ReconcileError::TooManyReals(self.real_indices.capacity));
        }
        Ok(())
    }

    /// Records a real's MAC address (`None`: no longer known).
    pub fn set_mac(
        &mut self,
        addr: IpAddr,
        mac: Option<Mac>,
    ) -> Result<Vec<Write>, ReconcileError> {
        match mac {
            Some(mac) => self.macs.insert(addr, mac),
            None => self.macs.remove(&addr),
        };
        self.sync()
    }

    /// The MAC known for a real's address.
    pub fn mac(&self, addr: &IpAddr) -> Option<Mac> {
        self.macs.get(addr).copied()
    }

    /// Every real address the data plane needs a MAC for.
    pub fn real_addresses(&self) -> Vec<IpAddr> {
        let mut addrs: Vec<IpAddr> = self
            .services
            .values()
            .flat_map(|s| s.spec.reals.iter().map(|r| r.addr))
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// Where a service stands in the maps.
    pub fn service_index(&self, id: &ServiceId) -> Option<ServiceIndex> {
        self.services.get(id).map(|s| ServiceIndex {
            id: s.id,
            ring: rings_of(s.id)[s.live],
            reals: s.reals.iter().map(|(rid, r)| (*rid, r.index)).collect(),
        })
    }

    /// Brings every service's reals, ring and entry to the desired state.
    fn sync(&mut self) -> Result<Vec<Write>, ReconcileError> {
        let mut idents = std::mem::take(&mut self.cleanup);
        let mut ups = Vec::new();
        let mut publish = Vec::new();
        let mut downs = Vec::new();
        // Freed only after this pass, so no index changes hands within it.
        let mut freed = Vec::new();
        for state in self.services.values_mut() {
            // Reals that left the spec: unpublished after the new ring is live.
            let wanted: BTreeMap<RealId, &RealSpec> = state
                .spec
                .reals
                .iter()
                .map(|r| ((r.addr, r.port), r))
                .collect();
            state.reals.retain(|rid, r| {
                let keep = wanted.contains_key(rid);
                if !keep {
                    downs.extend(Self::clear(r.index));
                    freed.push(r.index);
                }
                keep
            });
            for (rid, spec) in wanted {
                let real = match state.reals.get_mut(&rid) {
                    Some(real) => real,
                    None => {
                        let index = self
                            .real_indices
                            .free
                            .pop_front()
                            .ok_or(ReconcileError::TooManyReals(self.real_indices.capacity))?;
                        state.reals.entry(rid).or_insert(RealState {
                            spec: spec.clone(),
                            index,
                            written: Real::default(),
                            written_ident: RealIdent::default(),
                        })
                    }
                };
                real.spec = spec.clone();
                let ident = ident_of(spec, state.id);
                if ident != real.written_ident {
                    idents.push(Write::Ident {
                        index: real.index,
                        ident,
                    });
                    real.written_ident = ident;
                }
                let want = match self.macs.get(&spec.addr) {
                    Some(mac) if spec.healthy => Real {
                        mac: *mac,
                        flags: if spec.weight == 0 {
                            REAL_UP | REAL_NO_NEW
                        } else {
                            REAL_UP
                        },
                        service: state.id,
                    },
                    Some(mac) => Real {
                        mac: *mac,
                        flags: 0,
                        service: state.id,
                    },
                    None => Real::default(),
                };
                if want != real.written {
                    let write = Write::Real {
                        index: real.index,
                        real: want,
                    };
                    // A real opens before a ring names it and closes (down
                    // or drained) only after the new ring is live.
                    if want.flags == REAL_UP {
                        ups.push(write)
                    } else {
                        downs.push(write)
                    }
                    real.written = want;
                }
            }
            publish.extend(Self::publish(state));
        }
        self.real_indices.free.extend(freed);
        idents.extend(ups);
        idents.extend(publish);
        idents.extend(downs);
        Ok(idents)
    }

    /// Writes a changed Maglev table into the spare ring and makes it live.
    fn publish(state: &mut ServiceState) -> Vec<Write> {
        let members: Vec<(u32, u64, u32)> = state
            .reals
            .values()
            .filter(|r| r.written.flags & REAL_UP != 0 && r.spec.weight > 0)
            .map(|r| {
                (
                    r.index,
                    maglev::seed_of(r.spec.addr, r.spec.port),
                    r.spec.weight,
                )
            })
            .collect();
        let mut writes = Vec::new();
        if state.built_from.as_ref() != Some(&members) {
            let backends: Vec<maglev::Backend> = members
                .iter()
                .map(|&(id, seed, weight)| maglev::Backend { id, seed, weight })
                .collect();
            let table = maglev::build(&backends, RING_SIZE);
            state.built_from = Some(members);
            if state.rings[state.live] != table {
                Self::write_spare(state, table, &mut writes);
            }
        }
        let service = Service {
            id: state.id,
            ring: rings_of(state.id)[state.live],
            persist_timeout_s: state.spec.persist_timeout_s,
        };
        if state.written != Some(service) {
            writes.push(Write::Service {
                key: state.key(),
                service,
            });
            state.written = Some(service);
        }
        writes
    }

    /// Brings the spare ring to `table` and makes it the live one.
    fn write_spare(state: &mut ServiceState, table: Vec<u32>, writes: &mut Vec<Write>) {
        let spare = 1 - state.live;
        let slots = if state.rings[spare].is_empty() {
            // Never written: the kernel's array starts zeroed, not NO_REAL.
            table
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, *r))
                .collect()
        } else {
            maglev::changed(&state.rings[spare], &table)
        };
        writes.push(Write::RingSlots {
            ring: rings_of(state.id)[spare],
            slots,
        });
        state.rings[spare] = table;
        state.live = spare;
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
