//! Reading and writing `FLOWS` (tag lines apart from slot lines, see
//! `lb_common::flow_table`) a bucket at a time, from the tests and
//! benchmarks, which reach it through the map's syscalls rather than the
//! daemon's mapping.

use std::borrow::{Borrow, BorrowMut};

use anyhow::{Context as _, Result};
use aya::maps::{Array, MapData};
use lb_common::{
    FLOW_WAYS, FlowBucket, FlowLine,
    flow_table::{buckets_of_lines, slot_line, tag_line},
};

/// Buckets of the table.
pub fn buckets<T: Borrow<MapData>>(flows: &Array<T, FlowLine>) -> u32 {
    buckets_of_lines(flows.len())
}

/// A copy of bucket `bucket`.
pub fn read<T: Borrow<MapData>>(flows: &Array<T, FlowLine>, bucket: u32) -> Result<FlowBucket> {
    let n = buckets(flows);
    let get = |line| {
        flows
            .get(&line, 0)
            .with_context(|| format!("FLOWS line {line}"))
    };
    let mut copy = FlowBucket {
        tags: *get(tag_line(bucket))?.tags(),
        ..FlowBucket::default()
    };
    for (way, slot) in copy.slots.iter_mut().enumerate() {
        *slot = get(slot_line(n, bucket, way as u32))?.slot();
    }
    Ok(copy)
}

/// Every bucket, in one pass over the map.
pub fn read_all<T: Borrow<MapData>>(flows: &Array<T, FlowLine>) -> Result<Vec<FlowBucket>> {
    let n = buckets(flows) as usize;
    let lines: Vec<FlowLine> = flows.iter().collect::<Result<_, _>>()?;
    let (tags, slots) = lines.split_at(n);
    Ok(tags
        .iter()
        .zip(slots.chunks_exact(FLOW_WAYS))
        .map(|(tags, slots)| FlowBucket {
            tags: *tags.tags(),
            slots: std::array::from_fn(|w| slots[w].slot()),
        })
        .collect())
}

/// Ways holding a flow (reading only the tag lines).
pub fn count<T: Borrow<MapData>>(flows: &Array<T, FlowLine>) -> Result<usize> {
    (0..buckets(flows)).try_fold(0, |n, bucket| {
        let tags = flows
            .get(&tag_line(bucket), 0)
            .with_context(|| format!("FLOWS tags of bucket {bucket}"))?;
        Ok(n + tags.tags().iter().filter(|&&t| t != 0).count())
    })
}

/// Writes `copy` as bucket `bucket`: its slots, then its tags.
pub fn write<T: BorrowMut<MapData>>(
    flows: &mut Array<T, FlowLine>,
    bucket: u32,
    copy: &FlowBucket,
) -> Result<()> {
    let n = buckets(flows);
    for (way, slot) in copy.slots.iter().enumerate() {
        let line = slot_line(n, bucket, way as u32);
        flows
            .set(line, FlowLine::from(*slot), 0)
            .with_context(|| format!("FLOWS line {line}"))?;
    }
    flows
        .set(tag_line(bucket), FlowLine { words: copy.tags }, 0)
        .with_context(|| format!("FLOWS tags of bucket {bucket}"))
}
