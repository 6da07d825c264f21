//! The daemon's handles on the XDP program's maps: applies the reconciler's
//! writes and reads the per-CPU counters.

use std::{
    os::fd::{AsFd as _, OwnedFd},
    sync::Arc,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::PerCpuValues;
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, PerCpuArray},
};
use lb_common::{
    Binding, Counters, DataplaneConfig, FlowKey, PersistKey, RING_SIZE, Real, RealIdent, Reason,
    Service, ServiceKey, ServiceSlot, maps, rings_of,
    service_table::{FAMILY_TOMBSTONE, SERVICE_PROBES, find, place},
};

use log::{debug, warn};

use super::{
    batch,
    flow_table::FlowTable,
    reconcile::{ServiceIndex, Snapshot, SnapshotReal, Write},
};

pub struct Maps {
    /// `SERVICES` (see `lb_common::service_table`) and a copy of it: the
    /// daemon is its only writer, so it places services without reading the
    /// kernel's (but see [`Maps::reread_services`]).
    services: Array<MapData, ServiceSlot>,
    service_slots: Vec<ServiceSlot>,
    rings: Array<MapData, u32>,
    /// For batch writes, which aya does not offer.
    rings_fd: OwnedFd,
    reals: Array<MapData, Real>,
    idents: Array<MapData, RealIdent>,
    /// `FLOWS`, mapped once (see `flow_table`) and shared with the flow
    /// scan and flow sync: every mapping shows in the daemon's RSS in full
    /// (the kernel maps a BPF array's pages all at once).
    flows: Arc<FlowTable>,
    persist: HashMap<MapData, PersistKey, Binding>,
    service_stats: PerCpuArray<MapData, Counters>,
    real_stats: PerCpuArray<MapData, Counters>,
    reason_stats: PerCpuArray<MapData, Counters>,
    config: Array<MapData, DataplaneConfig>,
    vip_filter: Array<MapData, u64>,
    cache_epoch: Array<MapData, u64>,
}

fn take(ebpf: &mut Ebpf, name: &str) -> Result<Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("the XDP object has no map {name}"))
}

impl Maps {
    /// The object's maps, taken from `ebpf`, and the daemon's own `IDENTS`.
    pub fn new(ebpf: &mut Ebpf, idents: Array<MapData, RealIdent>) -> Result<Self> {
        let rings = take(ebpf, maps::RINGS)?;
        let services: Array<MapData, ServiceSlot> = take(ebpf, maps::SERVICES)?.try_into()?;
        let flows = match take(ebpf, maps::FLOWS)? {
            Map::Array(data) => data.fd().as_fd().try_clone_to_owned()?,
            _ => bail!("{} is not an array", maps::FLOWS),
        };
        Ok(Self {
            service_slots: services
                .iter()
                .collect::<Result<_, _>>()
                .context("reading SERVICES")?,
            services,
            rings_fd: match &rings {
                Map::Array(data) => data.fd().as_fd().try_clone_to_owned()?,
                _ => bail!("{} is not an array", maps::RINGS),
            },
            rings: rings.try_into()?,
            reals: take(ebpf, maps::REALS)?.try_into()?,
            idents,
            flows: Arc::new(FlowTable::map(flows)?),
            persist: take(ebpf, maps::PERSIST)?.try_into()?,
            service_stats: take(ebpf, maps::SERVICE_STATS)?.try_into()?,
            real_stats: take(ebpf, maps::REAL_STATS)?.try_into()?,
            reason_stats: take(ebpf, maps::REASON_STATS)?.try_into()?,
            config: take(ebpf, maps::CONFIG)?.try_into()?,
            vip_filter: take(ebpf, maps::VIP_FILTER)?.try_into()?,
            cache_epoch: take(ebpf, maps::CACHE_EPOCH)?.try_into()?,
        })
    }

    /// The settings the XDP program runs with (flood guard, timeouts, flags).
    pub fn config(&self) -> Result<DataplaneConfig> {
        self.config.get(&0, 0).context("reading CONFIG")
    }

    pub fn write_config(&mut self, config: &DataplaneConfig) -> Result<()> {
        self.config.set(0, config, 0).context("writing CONFIG")?;
        self.next_cache_epoch()
    }

    /// Moves the flow cache's epoch on: every cached flow takes the slow path
    /// once more. Called every `TOUCH_INTERVAL_NS` and after every change.
    pub fn next_cache_epoch(&mut self) -> Result<()> {
        let epoch = self.cache_epoch.get(&0, 0).context("reading CACHE_EPOCH")?;
        self.cache_epoch
            .set(0, epoch.wrapping_add(1), 0)
            .context("writing CACHE_EPOCH")
    }

    /// Applies writes in order; the reconciler orders them so that every
    /// prefix is a state the XDP program can run on. Cached flows see the
    /// result at once (a new cache epoch).
    pub fn apply(&mut self, writes: &[Write]) -> Result<()> {
        self.write_all(writes)?;
        if !writes.is_empty() {
            self.next_cache_epoch()?;
        }
        Ok(())
    }

    fn write_all(&mut self, writes: &[Write]) -> Result<()> {
        for w in writes {
            match w {
                Write::Real { index, real } => self
                    .reals
                    .set(*index, real, 0)
                    .with_context(|| format!("REALS[{index}]"))?,
                Write::Ident { index, ident } => {
                    // Counters never stop a change to what is forwarded.
                    if let Err(e) = self.hand_over_counters(*index, ident) {
                        warn!("real number {index}'s counters: {e:#}");
                    }
                    self.idents
                        .set(*index, ident, 0)
                        .with_context(|| format!("IDENTS[{index}]"))?
                }
                Write::RingSlots { ring, slots } => self.write_ring(*ring, slots)?,
                Write::Service { key, service } => self.write_service(key, service)?,
                Write::DeleteService { key } => self.delete_service(key)?,
                Write::VipFilter { word, bits } => self
                    .vip_filter
                    .set(*word, bits, 0)
                    .with_context(|| format!("VIP_FILTER[{word}]"))?,
            }
        }
        Ok(())
    }

    fn set_service_slot(&mut self, slot: u32, value: ServiceSlot) -> Result<()> {
        self.services
            .set(slot, value, 0)
            .with_context(|| format!("SERVICES[{slot}]"))?;
        self.service_slots[slot as usize] = value;
        Ok(())
    }

    /// Adds or replaces a service. A new one is written twice, first as a
    /// tombstone (matching no packet, probed past), so the program never
    /// reads its key before its value.
    fn write_service(&mut self, key: &ServiceKey, service: &Service) -> Result<()> {
        let slot = place(&self.service_slots, key).ok_or_else(|| {
            anyhow!(
                "SERVICES has no free slot within {SERVICE_PROBES} of {key:?}'s: \
                 raise xdpvs_max_services"
            )
        })?;
        let value = ServiceSlot {
            key: *key,
            service: *service,
        };
        if self.service_slots[slot as usize].key != *key {
            // A new service: counters from zero, whoever held its id before.
            if let Err(e) = zero(&mut self.service_stats, [service.id]) {
                warn!("service {}'s counters: {e:#}", service.id);
            }
            let mut hidden = value;
            hidden.key.family = FAMILY_TOMBSTONE;
            self.set_service_slot(slot, hidden)?;
        }
        self.set_service_slot(slot, value)
    }

    /// Before real number `index` changes hands (`next`, from `IDENTS`'
    /// current holder): what its real was counted goes to the counters its
    /// service keeps for the reals it lost, and the next holder starts from
    /// zero. A change of health flags alone keeps them where they are.
    fn hand_over_counters(&mut self, index: u32, next: &RealIdent) -> Result<()> {
        let held = self
            .idents
            .get(&index, 0)
            .with_context(|| format!("IDENTS[{index}]"))?;
        if same_holder(&held, next) {
            return Ok(());
        }
        if held.family != 0 {
            let lost = self
                .real_stats
                .get(&index, 0)
                .with_context(|| format!("REAL_STATS[{index}]"))?;
            let kept = self
                .service_stats
                .get(&held.service, 0)
                .with_context(|| format!("SERVICE_STATS[{}]", held.service))?;
            let both: Vec<Counters> = kept.iter().zip(lost.iter()).map(|(k, l)| *k + *l).collect();
            self.service_stats
                .set(held.service, PerCpuValues::try_from(both)?, 0)
                .with_context(|| format!("SERVICE_STATS[{}]", held.service))?;
        }
        zero(&mut self.real_stats, [index])
    }

    /// Removes a service, leaving a tombstone that lookups probe past.
    fn delete_service(&mut self, key: &ServiceKey) -> Result<()> {
        let Some(slot) = find(&self.service_slots, key) else {
            bail!("SERVICES has no {key:?} to remove");
        };
        self.set_service_slot(slot, ServiceSlot::TOMBSTONE)
    }

    /// One batch for the whole ring change, slot by slot if the kernel has
    /// no batch updates for arrays.
    fn write_ring(&mut self, ring: u32, slots: &[(u32, u32)]) -> Result<()> {
        let base = ring * RING_SIZE;
        let keys: Vec<u32> = slots.iter().map(|(pos, _)| base + pos).collect();
        let values: Vec<u32> = slots.iter().map(|(_, real)| *real).collect();
        if let Err(e) = batch::update_u32_array(&self.rings_fd, &keys, &values) {
            debug!("batch update of RINGS failed ({e}); writing slot by slot");
            for (k, v) in keys.iter().zip(&values) {
                self.rings
                    .set(*k, v, 0)
                    .with_context(|| format!("RINGS[{k}]"))?;
            }
        }
        Ok(())
    }

    /// Reads `SERVICES` back into the copy: after an upgrade's new process,
    /// which writes them too, failed and left this daemon to run on.
    pub fn reread_services(&mut self) -> Result<()> {
        self.service_slots = self
            .services
            .iter()
            .collect::<Result<_, _>>()
            .context("reading SERVICES")?;
        Ok(())
    }

    /// Reads back what the reconciler keeps in the kernel.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        for slot in self.service_slots.iter().filter(|s| s.in_use()) {
            snap.services.push((slot.key, slot.service));
        }
        for index in 0..self.reals.len() {
            let real = self
                .reals
                .get(&index, 0)
                .with_context(|| format!("REALS[{index}]"))?;
            let ident = self
                .idents
                .get(&index, 0)
                .with_context(|| format!("IDENTS[{index}]"))?;
            if real != Real::default() || ident != RealIdent::default() {
                snap.reals.push(SnapshotReal { index, real, ident });
            }
        }
        snap.vip_filter = (0..self.vip_filter.len())
            .map(|w| self.vip_filter.get(&w, 0))
            .collect::<Result<_, _>>()
            .context("reading VIP_FILTER")?;
        for (_, service) in &snap.services {
            for ring in rings_of(service.id) {
                let slots = batch::lookup_u32_array(&self.rings_fd, ring * RING_SIZE, RING_SIZE)
                    .or_else(|e| {
                        debug!("batch lookup of RINGS failed ({e}); reading slot by slot");
                        (0..RING_SIZE)
                            .map(|pos| self.ring_slot(ring, pos))
                            .collect::<Result<Vec<u32>>>()
                    })
                    .with_context(|| format!("reading ring {ring}"))?;
                snap.rings.insert(ring, slots);
            }
        }
        Ok(snap)
    }

    /// A service's counters: its current reals', where the program counts
    /// every packet, and those of the reals it lost.
    pub fn service_counters(&self, index: &ServiceIndex) -> Result<Counters> {
        index
            .reals
            .iter()
            .try_fold(sum(&self.service_stats, index.id)?, |total, (_, r)| {
                Ok(total + self.real_counters(*r)?)
            })
    }

    pub fn real_counters(&self, index: u32) -> Result<Counters> {
        sum(&self.real_stats, index)
    }

    pub fn reason_counters(&self) -> Result<Vec<(Reason, Counters)>> {
        Reason::ALL
            .iter()
            .map(|r| Ok((*r, sum(&self.reason_stats, *r as u32)?)))
            .collect()
    }

    /// `adm -Z`: every counter back to zero.
    pub fn zero_counters(&mut self) -> Result<()> {
        for map in [
            &mut self.service_stats,
            &mut self.real_stats,
            &mut self.reason_stats,
        ] {
            let all = 0..map.len();
            zero(map, all)?;
        }
        Ok(())
    }

    /// `adm -Z -t SERVICE`: the service's counters and its reals'.
    pub fn zero_service_counters(&mut self, index: &ServiceIndex) -> Result<()> {
        zero(&mut self.service_stats, [index.id])?;
        zero(&mut self.real_stats, index.reals.iter().map(|(_, r)| *r))
    }

    pub fn flow(&self, key: &FlowKey) -> Option<Binding> {
        self.flows.get(key)
    }

    pub fn persistence(&self, key: &PersistKey) -> Option<Binding> {
        self.persist.get(key, 0).ok()
    }

    /// The flow table and a descriptor of `PERSIST`, for flow sync's own
    /// threads.
    pub fn bindings(&self) -> Result<(Arc<FlowTable>, OwnedFd)> {
        use aya::maps::IterableMap as _;
        Ok((
            self.flows.clone(),
            self.persist.map().fd().as_fd().try_clone_to_owned()?,
        ))
    }

    /// `REALS[index]` as the XDP program sees it.
    pub fn real(&self, index: u32) -> Option<Real> {
        self.reals.get(&index, 0).ok()
    }

    pub fn ring_slot(&self, ring: u32, slot: u32) -> Result<u32> {
        Ok(self.rings.get(&(ring * RING_SIZE + slot), 0)?)
    }

    /// A handle on `CONFIG` for `flow_scan`, which judges idle flows by it.
    pub fn config_handle(&self) -> Result<Array<MapData, DataplaneConfig>> {
        use aya::maps::IterableMap as _;
        let fd = self.config.map().fd().as_fd().try_clone_to_owned()?;
        Ok(Array::try_from(Map::Array(MapData::from_fd(fd)?))?)
    }

    /// The flow table, for `flow_scan`, which reads it off the control loop.
    pub fn flow_table(&self) -> Arc<FlowTable> {
        self.flows.clone()
    }
}

fn sum(map: &PerCpuArray<MapData, Counters>, index: u32) -> Result<Counters> {
    let values = map
        .get(&index, 0)
        .with_context(|| format!("counters[{index}]"))?;
    Ok(values.iter().fold(Counters::default(), |a, c| a + *c))
}

/// Whether two `IDENTS` entries name the same real (their health aside).
fn same_holder(a: &RealIdent, b: &RealIdent) -> bool {
    RealIdent { flags: 0, ..*a } == RealIdent { flags: 0, ..*b }
}

/// Entries `indices` of a per-CPU counter map back to zero on every CPU.
fn zero(
    map: &mut PerCpuArray<MapData, Counters>,
    indices: impl IntoIterator<Item = u32>,
) -> Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(what, e)| anyhow!("{what}: {e}"))?;
    for i in indices {
        let zeros = PerCpuValues::try_from(vec![Counters::default(); cpus])?;
        map.set(i, zeros, 0)
            .with_context(|| format!("zeroing counters[{i}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lb_common::{IDENT_HEALTHY, IDENT_INHIBITED};

    use super::*;

    #[test]
    fn health_alone_does_not_hand_a_number_over() {
        let held = RealIdent {
            addr: [0x0a64_000b, 0, 0, 0],
            port: 80,
            family: 4,
            flags: IDENT_HEALTHY,
            service: 3,
        };
        for flags in [0, IDENT_HEALTHY | IDENT_INHIBITED] {
            assert!(same_holder(&held, &RealIdent { flags, ..held }));
        }
        assert!(!same_holder(&held, &RealIdent { service: 4, ..held }));
        assert!(!same_holder(&held, &RealIdent { port: 81, ..held }));
        assert!(!same_holder(&held, &RealIdent::default()), "freed");
    }
}
