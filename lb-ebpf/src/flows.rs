//! The flow table `FLOWS` in the program: one probe of a flow's bucket finds
//! its way and the way a new flow would take (`lb_common::flow_table` has
//! the layout, and why a torn way is harmless).
//!
//! Ways are read and written with volatile accesses, in the order that
//! module documents (tag, then key; writers clear the tag first and set it
//! last), so that LLVM keeps that order; the JIT keeps it on x86, whose
//! stores are seen in program order.

use core::ptr::{null_mut, read_volatile, write_volatile};

use lb_common::{
    DataplaneConfig, FLOW_CLOSING, FLOW_WAYS, FlowKey, FlowSlot, MAX_FLOWS, flow_buckets,
    flow_table::{bucket_of, checks, slot_line, tag_line, tag_of},
};

use crate::maps::FLOWS;

/// `FLOWS`' buckets. The loader sets it to the size it gives `FLOWS`
/// (`lb_common::flow_table::FLOW_BUCKETS`); read only, so the verifier knows
/// its value.
#[unsafe(no_mangle)]
static FLOW_BUCKETS: u32 = flow_buckets(MAX_FLOWS);

/// No way: the flow is not there, or the bucket has no room.
const NONE: usize = FLOW_WAYS;

/// A flow's bucket as one probe saw it.
pub struct Probe {
    /// With no such bucket (a size the map does not match), `found` and
    /// `free` are `NONE`.
    bucket: Bucket,
    /// The way holding the flow, or `NONE`.
    found: usize,
    /// The found way's slot.
    slot: *mut FlowSlot,
    /// The found way's tag (its real).
    tag: u64,
    /// The first free way (empty, or idle beyond its timeout), or `NONE`.
    free: usize,
}

/// The key as five words, as the slots are compared.
#[inline(always)]
fn words(key: &FlowKey) -> *const u64 {
    (key as *const FlowKey).cast::<u64>()
}

/// The slot in entry `line` of `FLOWS`.
#[inline(always)]
fn slot(line: u32) -> Option<*mut FlowSlot> {
    FLOWS.get_ptr_mut(line).map(|l| l.cast::<FlowSlot>())
}

/// A flow's bucket, found once per packet by [`bucket`] and probed later.
#[derive(Clone, Copy)]
pub struct Bucket {
    /// Its tags; null when `FLOWS` has no such line (a size the map does not
    /// match).
    tags: *mut u64,
    /// The entry of `FLOWS` holding its first way.
    first_slot: u32,
}

/// The bucket of a flow of hash `hash` (`FlowKey::hash`), whose tags it
/// starts reading without waiting for them: the table is far larger than the
/// caches, so the line is nearly always a miss, which then overlaps the
/// service and ring lookups that come before [`Bucket::probe`].
#[inline(always)]
pub fn bucket(hash: u32) -> Bucket {
    // SAFETY: a plain read of the program's own read-only global.
    let buckets = unsafe { read_volatile(&FLOW_BUCKETS) };
    let bucket = bucket_of(hash, buckets);
    let tags = match FLOWS.get_ptr_mut(tag_line(bucket)) {
        Some(line) => {
            let tags = line.cast::<u64>();
            // SAFETY: a pointer into `FLOWS`; the value read is not used.
            unsafe { read_volatile(tags) };
            tags
        }
        None => null_mut(),
    };
    Bucket {
        tags,
        first_slot: slot_line(buckets, bucket, 0),
    }
}

impl Bucket {
    /// Probes the bucket for `key` (whose `FlowKey::hash` is `hash`).
    ///
    /// Not an `Option`: LLVM leaves the fields of a `None` undefined, and the
    /// verifier refuses a program that copies an unset register.
    #[inline(always)]
    pub fn probe(&self, key: &FlowKey, hash: u32, cfg: &DataplaneConfig, now: u64) -> Probe {
        let (tags, first_slot) = (self.tags, self.first_slot);
        let (mut found, mut found_slot, mut tag, mut free) = (NONE, null_mut(), 0, NONE);
        // No such bucket: nothing found, no room.
        if !tags.is_null() {
            let w = words(key);
            // SAFETY (both loops): `way` < FLOW_WAYS, inside the tag line;
            // both keys compared as words are 8-byte aligned: the packet's
            // sits first in the align(8) `Packet`, a slot's first in a
            // 64-byte line.
            let mut way = 0;
            while way < FLOW_WAYS {
                let t = unsafe { read_volatile(tags.add(way)) };
                if t == 0 {
                    if free == NONE {
                        free = way;
                    }
                } else if checks(t, hash)
                    && let Some(s) = slot(first_slot + way as u32)
                    && unsafe { same_key(w, s) }
                {
                    found = way;
                    found_slot = s;
                    tag = t;
                    break;
                }
                way += 1;
            }
            // No empty way: an idle one, read from the slots (the daemon's
            // flow scan empties idle ways, so this is seldom needed while it
            // runs).
            if found == NONE && free == NONE {
                let mut way = 0;
                while way < FLOW_WAYS {
                    if let Some(s) = slot(first_slot + way as u32)
                        && unsafe { idle(s, cfg, now) }
                    {
                        free = way;
                        break;
                    }
                    way += 1;
                }
            }
        }
        Probe {
            bucket: *self,
            found,
            slot: found_slot,
            tag,
            free,
        }
    }
}

/// # Safety
/// `w` points to a key's five words, `slot` into `FLOWS`.
#[inline(always)]
unsafe fn same_key(w: *const u64, slot: *const FlowSlot) -> bool {
    // SAFETY: guaranteed by the caller; the slot's key is its first 40 bytes.
    unsafe {
        let s = (&raw const (*slot).key).cast::<u64>();
        let mut diff = 0;
        let mut i = 0;
        while i < 5 {
            diff |= *w.add(i) ^ read_volatile(s.add(i));
            i += 1;
        }
        diff == 0
    }
}

/// # Safety
/// `slot` points into `FLOWS`.
#[inline(always)]
unsafe fn idle(slot: *const FlowSlot, cfg: &DataplaneConfig, now: u64) -> bool {
    // SAFETY: guaranteed by the caller.
    let (proto, flags, last_seen_ns) = unsafe {
        (
            read_volatile(&(*slot).key.proto),
            read_volatile(&(*slot).flags),
            read_volatile(&(*slot).last_seen_ns),
        )
    };
    cfg.idle_out(proto, flags, last_seen_ns, now)
}

/// A recorded flow: its slot, to read and refresh.
pub struct Found {
    slot: *mut FlowSlot,
    pub real: u32,
    /// The entry of `FLOWS` holding the slot.
    pub line: u32,
}

impl Found {
    #[inline(always)]
    pub fn flags(&self) -> u32 {
        // SAFETY: a slot of `FLOWS` (see `Probe::found`).
        unsafe { read_volatile(&(*self.slot).flags) }
    }

    #[inline(always)]
    pub fn last_seen_ns(&self) -> u64 {
        // SAFETY: as above.
        unsafe { read_volatile(&(*self.slot).last_seen_ns) }
    }

    /// Refreshes the flow. Plain stores: another CPU refreshing the same flow
    /// writes the same fields, and losing one refresh is harmless.
    #[inline(always)]
    pub fn set_last_seen_ns(&self, now: u64) {
        // SAFETY: as above.
        unsafe { (*self.slot).last_seen_ns = now };
    }

    #[inline(always)]
    pub fn mark_closing(&self) {
        // SAFETY: as above.
        unsafe { (*self.slot).flags |= FLOW_CLOSING };
    }
}

impl Probe {
    /// The flow's slot, if the table has it.
    #[inline(always)]
    pub fn found(&self) -> Option<Found> {
        if self.found >= FLOW_WAYS {
            return None;
        }
        Some(Found {
            slot: self.slot,
            real: self.tag as u32,
            line: self.bucket.first_slot + self.found as u32,
        })
    }

    /// Empties the found way, if any: the flow is no longer recorded.
    #[inline(always)]
    pub fn clear(&self) {
        if self.found < FLOW_WAYS {
            // SAFETY: `found` < FLOW_WAYS, inside the tag line (see `insert`).
            unsafe { write_volatile(self.bucket.tags.add(self.found), 0) };
        }
    }

    /// Records `key`'s flow on `real`: in its own slot (expired, closed, or
    /// its real gone), else in the first free one, and returns the slot's
    /// line. `None`: the bucket is full, and the flow goes unrecorded.
    #[inline(always)]
    pub fn insert(&self, key: &FlowKey, hash: u32, real: u32, flags: u32, now: u64) -> Option<u32> {
        let (way, slot) = if self.found < FLOW_WAYS {
            (self.found, self.slot)
        } else if self.free < FLOW_WAYS
            && let Some(slot) = slot(self.bucket.first_slot + self.free as u32)
        {
            (self.free, slot)
        } else {
            return None;
        };
        let w = words(key);
        // SAFETY: `way` < FLOW_WAYS, inside the tag line (a way is found or
        // free only in a bucket the table has); `slot` is a line of `FLOWS`;
        // `w` is the key's five aligned words (see `probe`).
        unsafe {
            let tag = self.bucket.tags.add(way);
            // Cleared first, set last: a reader meanwhile sees no flow here.
            write_volatile(tag, 0);
            let s = (&raw mut (*slot).key).cast::<u64>();
            let mut i = 0;
            while i < 5 {
                write_volatile(s.add(i), *w.add(i));
                i += 1;
            }
            write_volatile(&mut (*slot).last_seen_ns, now);
            write_volatile(&mut (*slot).flags, flags);
            write_volatile(tag, tag_of(hash, real));
        }
        Some(self.bucket.first_slot + way as u32)
    }
}

/// The flow of key `key` in the slot at `line`, if that slot still holds
/// it: what a flow cache entry recorded (`FlowCacheEntry::line`). Its tag
/// is not read: a way emptied since holds its key until it is rewritten,
/// and marking it closing or fresh changes nothing for a free way.
#[inline(always)]
pub fn at_line(line: u32, key: &FlowKey, real: u32) -> Option<Found> {
    let s = slot(line)?;
    // SAFETY: `s` is a line of `FLOWS`; the key's words are aligned (see
    // `Bucket::probe`).
    unsafe { same_key(words(key), s) }.then_some(Found {
        slot: s,
        real,
        line,
    })
}
