//! The daemon's handles on the XDP program's maps: applies the reconciler's
//! writes and reads the per-CPU counters.

use std::os::fd::{AsFd as _, OwnedFd};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::PerCpuValues;
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, PerCpuArray},
};
use lb_common::{
    Binding, Counters, FlowKey, PersistKey, RING_SIZE, Real, Reason, Service, ServiceKey, maps,
};

use log::debug;

use super::{batch, reconcile::Write};

pub struct Maps {
    services: HashMap<MapData, ServiceKey, Service>,
    rings: Array<MapData, u32>,
    /// For batch writes, which aya does not offer.
    rings_fd: OwnedFd,
    reals: Array<MapData, Real>,
    flows: HashMap<MapData, FlowKey, Binding>,
    persist: HashMap<MapData, PersistKey, Binding>,
    service_stats: PerCpuArray<MapData, Counters>,
    real_stats: PerCpuArray<MapData, Counters>,
    reason_stats: PerCpuArray<MapData, Counters>,
}

fn take(ebpf: &mut Ebpf, name: &str) -> Result<Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("the XDP object has no map {name}"))
}

impl Maps {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        let rings = take(ebpf, maps::RINGS)?;
        Ok(Self {
            services: take(ebpf, maps::SERVICES)?.try_into()?,
            rings_fd: match &rings {
                Map::Array(data) => data.fd().as_fd().try_clone_to_owned()?,
                _ => bail!("{} is not an array", maps::RINGS),
            },
            rings: rings.try_into()?,
            reals: take(ebpf, maps::REALS)?.try_into()?,
            flows: take(ebpf, maps::FLOWS)?.try_into()?,
            persist: take(ebpf, maps::PERSIST)?.try_into()?,
            service_stats: take(ebpf, maps::SERVICE_STATS)?.try_into()?,
            real_stats: take(ebpf, maps::REAL_STATS)?.try_into()?,
            reason_stats: take(ebpf, maps::REASON_STATS)?.try_into()?,
        })
    }

    /// Applies writes in order; the reconciler orders them so that every
    /// prefix is a state the XDP program can run on.
    pub fn apply(&mut self, writes: &[Write]) -> Result<()> {
        for w in writes {
            match w {
                Write::Real { index, real } => self
                    .reals
                    .set(*index, real, 0)
                    .with_context(|| format!("REALS[{index}]"))?,
                Write::RingSlots { ring, slots } => self.write_ring(*ring, slots)?,
                Write::Service { key, service } => self
                    .services
                    .insert(key, service, 0)
                    .context("SERVICES insert")?,
                Write::DeleteService { key } => {
                    self.services.remove(key).context("SERVICES remove")?
                }
            }
        }
        Ok(())
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

    pub fn service_counters(&self, id: u32) -> Result<Counters> {
        sum(&self.service_stats, id)
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
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| anyhow!("{what}: {e}"))?;
        for map in [
            &mut self.service_stats,
            &mut self.real_stats,
            &mut self.reason_stats,
        ] {
            for i in 0..map.len() {
                let zeros = PerCpuValues::try_from(vec![Counters::default(); cpus])?;
                map.set(i, zeros, 0)
                    .with_context(|| format!("zeroing counters[{i}]"))?;
            }
        }
        Ok(())
    }

    pub fn flow(&self, key: &FlowKey) -> Option<Binding> {
        self.flows.get(key, 0).ok()
    }

    pub fn persistence(&self, key: &PersistKey) -> Option<Binding> {
        self.persist.get(key, 0).ok()
    }

    /// Descriptors of `FLOWS` and `PERSIST`, for flow sync's own threads.
    pub fn binding_fds(&self) -> Result<(OwnedFd, OwnedFd)> {
        use aya::maps::IterableMap as _;
        Ok((
            self.flows.map().fd().as_fd().try_clone_to_owned()?,
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

    /// Flows of real `index` that are still going: no FIN/RST seen and a
    /// packet within `idle` (UDP flows never close).
    pub fn live_flows(&self, index: u32, idle: std::time::Duration) -> Result<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        // The XDP program stamps flows with bpf_ktime_get_coarse_ns: the same clock.
        let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let mut n = 0;
        for entry in self.flows.iter() {
            let (_, b) = entry.context("reading FLOWS")?;
            let recent = now.saturating_sub(b.last_seen_ns) < idle.as_nanos() as u64;
            if b.real == index && b.flags & lb_common::FLOW_CLOSING == 0 && recent {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Flows by real index: (active, inactive), counted as ipvsadm does for
    /// DR: a TCP flow is active until its FIN or RST has been seen.
    pub fn flow_counts(&self) -> Result<std::collections::HashMap<u32, (u64, u64)>> {
        let mut counts = std::collections::HashMap::new();
        for entry in self.flows.iter() {
            let (_, b) = entry.context("reading FLOWS")?;
            let c: &mut (u64, u64) = counts.entry(b.real).or_default();
            if b.flags & lb_common::FLOW_CLOSING == 0 {
                c.0 += 1
            } else {
                c.1 += 1
            }
        }
        Ok(counts)
    }
}

fn sum(map: &PerCpuArray<MapData, Counters>, index: u32) -> Result<Counters> {
    let values = map
        .get(&index, 0)
        .with_context(|| format!("counters[{index}]"))?;
    Ok(values.iter().fold(Counters::default(), |a, c| Counters {
        packets: a.packets + c.packets,
        bytes: a.bytes + c.bytes,
        new_flows: a.new_flows + c.new_flows,
    }))
}
