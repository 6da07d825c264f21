//! Writing `SERVICES` (an open-addressed array, see
//! `lb_common::service_table`) from the tests and benchmarks, which load the
//! XDP object without the daemon.

use anyhow::{Context as _, Result, anyhow};
use aya::{Ebpf, maps::Array};
use lb_common::{
    Service, ServiceKey, ServiceSlot, maps,
    service_table::{find, place},
};

fn table(ebpf: &mut Ebpf) -> Result<Array<&mut aya::maps::MapData, ServiceSlot>> {
    Ok(Array::try_from(
        ebpf.map_mut(maps::SERVICES).context("no SERVICES map")?,
    )?)
}

fn slots(table: &Array<&mut aya::maps::MapData, ServiceSlot>) -> Result<Vec<ServiceSlot>> {
    Ok(table.iter().collect::<Result<_, _>>()?)
}

/// Adds or replaces `key`'s service.
pub fn put(ebpf: &mut Ebpf, key: ServiceKey, service: Service) -> Result<()> {
    let mut table = table(ebpf)?;
    let slot = place(&slots(&table)?, &key).ok_or_else(|| anyhow!("no slot for {key:?}"))?;
    table.set(slot, ServiceSlot { key, service }, 0)?;
    Ok(())
}

/// Removes `key`'s service (a tombstone, as the daemon leaves).
pub fn remove(ebpf: &mut Ebpf, key: &ServiceKey) -> Result<()> {
    let mut table = table(ebpf)?;
    let slot = find(&slots(&table)?, key).ok_or_else(|| anyhow!("no service {key:?}"))?;
    table.set(slot, ServiceSlot::TOMBSTONE, 0)?;
    Ok(())
}
