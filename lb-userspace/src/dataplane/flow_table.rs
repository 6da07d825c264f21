//! The daemon's view of `FLOWS`, the connection table (layout and rules in
//! `lb_common::flow_table`), mapped into its memory: the flow scan reads a
//! million flows without a syscall, and flow sync writes one way without
//! rewriting the bucket around it, which the XDP program may be writing too.
//!
//! Tags are read and written as atomics, slots as volatile memory, in the
//! module's order: a reader loads the tag, then the slot; a writer clears the
//! tag, writes the slot, then sets the tag.

use std::{
    io,
    os::fd::{AsRawFd as _, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::MapData;
use lb_common::{
    Binding, DataplaneConfig, FLOW_WAYS, FlowBucket, FlowKey, FlowLine, FlowSlot,
    flow_table::{bucket_of, buckets_of_lines, flow_lines, slot_line, tag_line, tag_of},
    flows_of_buckets,
};

/// `FLOWS`, mapped shared and writable.
pub struct FlowTable {
    base: NonNull<FlowLine>,
    buckets: u32,
    lines: u32,
    len: usize,
}

// SAFETY: the mapping is shared memory every access to which goes through
// atomics or volatile copies (see the module docs); the kernel writes it
// concurrently anyway.
unsafe impl Send for FlowTable {}
// SAFETY: as above.
unsafe impl Sync for FlowTable {}

/// One way of a bucket as a reader saw it: where it is, and its flow.
#[derive(Debug, Clone, Copy)]
pub struct Way {
    pub bucket: u32,
    pub way: usize,
    /// The tag the flow was read under (see [`FlowTable::clear_if`]).
    pub tag: u64,
    pub key: FlowKey,
    pub binding: Binding,
}

impl FlowTable {
    /// Maps the flow table behind `fd`, which must have this build's layout.
    /// The mapping holds the map; `fd` is closed.
    pub fn map(fd: OwnedFd) -> io::Result<Self> {
        let info = MapData::from_fd(fd.try_clone()?)
            .and_then(|m| m.info())
            .map_err(io::Error::other)?;
        let lines = info.max_entries();
        let buckets = buckets_of_lines(lines);
        if info.value_size() as usize != size_of::<FlowLine>()
            || info.key_size() != 4
            || buckets == 0
            || flow_lines(buckets) != lines
        {
            return Err(io::Error::other(format!(
                "the flow table has {} entries of {}-byte keys and {}-byte values, not this \
                 build's {}-byte lines of whole buckets",
                lines,
                info.key_size(),
                info.value_size(),
                size_of::<FlowLine>()
            )));
        }
        let len = (lines as usize * size_of::<FlowLine>()).next_multiple_of(page_size());
        // SAFETY: a fresh shared mapping of the map's whole (page-rounded)
        // array, which the kernel allows for BPF_F_MMAPABLE arrays; nothing
        // else refers to the new address range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("mapping the flow table: {e}"),
            ));
        }
        Ok(Self {
            base: NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap gave NULL"))?,
            buckets,
            lines,
            len,
        })
    }

    /// The flows the table is sized for (`xdpvs_max_flows`).
    pub fn capacity(&self) -> u32 {
        flows_of_buckets(self.buckets)
    }

    fn line_ptr(&self, line: u32) -> *mut FlowLine {
        assert!(line < self.lines, "line {line} of {}", self.lines);
        // SAFETY: within the mapping (checked just above).
        unsafe { self.base.as_ptr().add(line as usize) }
    }

    /// `bucket`'s tags, as atomics.
    fn tags(&self, bucket: u32) -> &[AtomicU64; FLOW_WAYS] {
        assert!(bucket < self.buckets, "bucket {bucket} of {}", self.buckets);
        // SAFETY: an aligned line of u64s inside the mapping, which lives as
        // long as `self`; every access to it is atomic (the XDP program's
        // stores are plain 8-byte stores, atomic on every architecture BPF
        // runs on). `AtomicU64` has `u64`'s size and alignment.
        unsafe {
            &*self
                .line_ptr(tag_line(bucket))
                .cast::<[AtomicU64; FLOW_WAYS]>()
        }
    }

    fn tag(&self, bucket: u32, way: usize) -> &AtomicU64 {
        &self.tags(bucket)[way]
    }

    fn slot_ptr(&self, bucket: u32, way: usize) -> *mut FlowSlot {
        assert!(bucket < self.buckets, "bucket {bucket} of {}", self.buckets);
        self.line_ptr(slot_line(self.buckets, bucket, way as u32))
            .cast()
    }

    fn slot(&self, bucket: u32, way: usize) -> FlowSlot {
        // SAFETY: a slot inside the mapping; volatile, as the kernel writes it.
        unsafe { std::ptr::read_volatile(self.slot_ptr(bucket, way)) }
    }

    /// Way `way` of `bucket`, if it holds a flow.
    pub fn way(&self, bucket: u32, way: usize) -> Option<Way> {
        self.way_tagged(bucket, way, self.tag(bucket, way).load(Ordering::Acquire))
    }

    /// Way `way` of `bucket` read under `tag`, if that is a flow's.
    fn way_tagged(&self, bucket: u32, way: usize, tag: u64) -> Option<Way> {
        if tag == 0 {
            return None;
        }
        let slot = self.slot(bucket, way);
        Some(Way {
            bucket,
            way,
            tag,
            key: slot.key,
            binding: Binding {
                real: tag as u32,
                flags: slot.flags,
                last_seen_ns: slot.last_seen_ns,
            },
        })
    }

    /// A copy of `bucket`, tags read before slots (a way emptied meanwhile
    /// is copied empty).
    fn read_bucket(&self, bucket: u32) -> FlowBucket {
        let mut copy = FlowBucket {
            tags: self.load_tags(bucket),
            ..FlowBucket::default()
        };
        for w in 0..FLOW_WAYS {
            if copy.tags[w] != 0 {
                copy.slots[w] = self.slot(bucket, w);
            }
        }
        copy
    }

    fn bucket_of(&self, key: &FlowKey) -> u32 {
        bucket_of(key.hash(), self.buckets)
    }

    /// `key`'s flow as the table holds it (idle or not).
    pub fn get(&self, key: &FlowKey) -> Option<Binding> {
        let copy = self.read_bucket(self.bucket_of(key));
        copy.find(key).map(|w| copy.binding(w))
    }

    /// Records `key`'s flow unless the table already follows it (flow sync:
    /// a node's own decision is never overwritten). Takes a way as the XDP
    /// program would (`FlowBucket::room_for`); `false` if the table follows
    /// the flow or its bucket is full.
    pub fn insert_absent(
        &self,
        key: &FlowKey,
        b: &Binding,
        config: &DataplaneConfig,
        now: u64,
    ) -> bool {
        let bucket = self.bucket_of(key);
        let copy = self.read_bucket(bucket);
        if copy.find(key).is_some_and(|w| copy.live(w, config, now)) {
            return false;
        }
        let Some(way) = copy.room_for(key, config, now) else {
            return false;
        };
        let tag = self.tag(bucket, way);
        tag.store(0, Ordering::Release);
        let slot = FlowSlot {
            key: *key,
            last_seen_ns: b.last_seen_ns,
            flags: b.flags,
            _pad: [0; 3],
        };
        // SAFETY: a slot inside the mapping; volatile, as the kernel reads it.
        unsafe {
            std::ptr::write_volatile(self.slot_ptr(bucket, way), slot);
        }
        tag.store(tag_of(key.hash(), b.real), Ordering::Release);
        true
    }

    /// Empties a way if it still holds the flow read under `tag`: the flow
    /// scan's removal of an idle flow, which a new flow the XDP program
    /// wrote there meanwhile survives. (The idle flow refreshed meanwhile
    /// keeps its tag and is emptied: its next packet is decided again.)
    pub fn clear_if(&self, bucket: u32, way: usize, tag: u64) -> bool {
        self.tag(bucket, way)
            .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Every way holding a flow, bucket by bucket.
    pub fn ways(&self) -> Ways<'_> {
        Ways {
            table: self,
            bucket: 0,
            tags: self.load_tags(0),
            way: 0,
        }
    }

    /// `bucket`'s tags, read once each (a way emptied meanwhile reads 0).
    fn load_tags(&self, bucket: u32) -> [u64; FLOW_WAYS] {
        let line = self.tags(bucket);
        std::array::from_fn(|w| line[w].load(Ordering::Acquire))
    }
}

/// [`FlowTable::ways`]: a bucket's tag line is read once and an empty one
/// skipped whole; slots are read only for the ways whose tags hold a flow.
/// The scan reads every bucket each second, and most are empty until the
/// table fills: over an empty table sized for a million flows this takes
/// 0.5 ms, where asking each way in turn took 3.1 ms (release build,
/// measured on this machine).
pub struct Ways<'a> {
    table: &'a FlowTable,
    bucket: u32,
    tags: [u64; FLOW_WAYS],
    way: usize,
}

impl Iterator for Ways<'_> {
    type Item = Way;

    fn next(&mut self) -> Option<Way> {
        loop {
            while self.way < FLOW_WAYS {
                let (way, tag) = (self.way, self.tags[self.way]);
                self.way += 1;
                if let Some(w) = self.table.way_tagged(self.bucket, way, tag) {
                    return Some(w);
                }
            }
            // The next bucket holding any flow.
            loop {
                if self.bucket + 1 >= self.table.buckets {
                    return None;
                }
                self.bucket += 1;
                self.tags = self.table.load_tags(self.bucket);
                if self.tags.iter().any(|&t| t != 0) {
                    break;
                }
            }
            self.way = 0;
        }
    }
}

impl Drop for FlowTable {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}
