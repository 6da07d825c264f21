//! The layout of `FLOWS`, the connection table, and the rules the XDP
//! program and userspace both follow to find a flow in it.
//!
//! `FLOWS` is a BPF array of [`FlowBucket`]s, set-associative: a flow lives in
//! bucket [`bucket_of`]`(FlowKey::hash())`, in any of its [`FLOW_WAYS`] ways.
//! A bucket is 512 bytes: a line of tags (each way's real and a check of its
//! key) and a line per way (key, last packet, flags). A flow the bucket does
//! not hold, every new flow, costs one line read whatever the table's fill,
//! where the kernel's hash map walked a chain and took an element from its
//! free list: that insert was most of a new flow's cost, and grew with the
//! fill. 512 bytes, not eight ways' 576: a bucket never straddles a page
//! (a second TLB miss), and its tag line always pairs with its first way's in
//! the 128-byte blocks the CPU fetches together.
//!
//! A way is free when empty or idle beyond its timeout: a new flow takes the
//! first empty way, else the first idle one. The daemon's flow scan empties
//! idle ways (so a new flow seldom reads more than the tags); with no daemon,
//! new flows still take idle ways. A full bucket is not evicted from: a new
//! flow is then forwarded by the ring, unrecorded, so a flood cannot push
//! established flows out. There are twice as many ways as the table is sized
//! for ([`flow_buckets`]), so at 80% of that size about 2.5% of new flows
//! find their bucket full.
//!
//! Ways are written without locks, by the XDP program on every CPU and by the
//! daemon through a memory mapping. A writer clears the tag, writes the slot,
//! then sets the tag: the real and the check in one 8-byte store. A reader
//! reads the tag, then the key: one that catches a way half rewritten sees a
//! key that is neither flow's, or a tag whose check is not its key's, and
//! treats the way as absent: the packet is decided again, by persistence or
//! the ring. (The real it would use is checked to be up and the service's
//! anyway.) The order holds on x86, whose stores are seen in program order;
//! on a weakly ordered CPU (arm64) BPF has no barrier to keep it, and a torn
//! read could at worst send one packet to another up real of the same
//! service.

use crate::{Binding, DataplaneConfig, FlowKey};

/// Ways per bucket: seven, so that with the tag line a bucket is 512 bytes.
pub const FLOW_WAYS: usize = 7;

/// The XDP program's global holding the number of buckets of `FLOWS`, set at
/// load time (`EbpfLoader::override_global`) to the size the map gets.
pub const FLOW_BUCKETS: &str = "FLOW_BUCKETS";

/// Buckets of a table sized for `flows` flows: twice as many ways.
pub const fn flow_buckets(flows: u32) -> u32 {
    let buckets = (flows as u64 * 2).div_ceil(FLOW_WAYS as u64);
    if buckets == 0 { 1 } else { buckets as u32 }
}

/// The flows a table of `buckets` buckets is sized for (inverse of
/// [`flow_buckets`] on its results).
pub const fn flows_of_buckets(buckets: u32) -> u32 {
    let flows = buckets as u64 * FLOW_WAYS as u64 / 2;
    if flows > u32::MAX as u64 {
        u32::MAX
    } else {
        flows as u32
    }
}

/// One flow's key and the rest of its binding (the real is in its tag), one
/// cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FlowSlot {
    /// First, so it is 8-byte aligned and compared as five words.
    pub key: FlowKey,
    /// As `Binding::last_seen_ns`.
    pub last_seen_ns: u64,
    /// As `Binding::flags`.
    pub flags: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(core::mem::size_of::<FlowSlot>() == 64);

/// Value of `FLOWS`: one bucket. The tags come first, in one cache line, so
/// that a flow the bucket does not hold (every new flow) costs one line
/// read, and finding one reads two: its tag, then its slot.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FlowBucket {
    /// Way `i`'s tag (see [`tag_of`]); 0: way `i` is empty.
    pub tags: [u64; FLOW_WAYS],
    pub _pad: u64,
    pub slots: [FlowSlot; FLOW_WAYS],
}
const _: () = assert!(core::mem::size_of::<FlowBucket>() == 512);

impl Default for FlowBucket {
    fn default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

/// The tag of a way holding a flow of hash `hash` bound to `real`: the real
/// in the low 32 bits, a check of the key in the high 32. Never 0: the
/// check has its low bit set.
#[inline(always)]
pub const fn tag_of(hash: u32, real: u32) -> u64 {
    ((hash | 1) as u64) << 32 | real as u64
}

/// Whether `tag` carries the check of a key of hash `hash`.
#[inline(always)]
pub const fn checks(tag: u64, hash: u32) -> bool {
    (tag >> 32) as u32 == hash | 1
}

/// The bucket of a flow of hash `hash` in a table of `buckets` buckets: the
/// hash scaled to the table (one multiply, no division, any table size).
#[inline(always)]
pub const fn bucket_of(hash: u32, buckets: u32) -> u32 {
    ((hash as u64 * buckets as u64) >> 32) as u32
}

impl FlowBucket {
    /// The way holding `key`'s flow, if any.
    pub fn find(&self, key: &FlowKey) -> Option<usize> {
        let hash = key.hash();
        (0..FLOW_WAYS)
            .find(|&w| self.tags[w] != 0 && checks(self.tags[w], hash) && self.slots[w].key == *key)
    }

    /// Way `way`'s binding.
    pub fn binding(&self, way: usize) -> Binding {
        Binding {
            real: self.tags[way] as u32,
            flags: self.slots[way].flags,
            last_seen_ns: self.slots[way].last_seen_ns,
        }
    }

    /// Whether way `way` holds a flow the data plane still follows at `now`:
    /// not empty, and not idle beyond its timeout.
    pub fn live(&self, way: usize, config: &DataplaneConfig, now: u64) -> bool {
        self.tags[way] != 0 && !config.idle_out(self.slots[way].key.proto, &self.binding(way), now)
    }

    /// The first empty way.
    pub fn empty_way(&self) -> Option<usize> {
        self.tags.iter().position(|&t| t == 0)
    }

    /// Where a new flow of `key` goes: its own (dead) way if it has one, else
    /// the first empty way, else the first idle one, as the XDP program
    /// chooses; `None` when the bucket is full.
    pub fn room_for(&self, key: &FlowKey, config: &DataplaneConfig, now: u64) -> Option<usize> {
        self.find(key)
            .or_else(|| self.empty_way())
            .or_else(|| (0..FLOW_WAYS).find(|&w| !self.live(w, config, now)))
    }

    /// Records `key`'s flow in way `way`.
    pub fn set(&mut self, way: usize, key: FlowKey, b: &Binding) {
        self.tags[way] = tag_of(key.hash(), b.real);
        self.slots[way] = FlowSlot {
            key,
            last_seen_ns: b.last_seen_ns,
            flags: b.flags,
            _pad: [0; 3],
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FAMILY_V4, FLOW_CLOSING, PROTO_TCP};

    fn key(n: u32) -> FlowKey {
        FlowKey {
            src: [n, 0, 0, 0],
            dst: [0x6400_000a, 0, 0, 0],
            sport: 1000,
            dport: 80,
            proto: PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        }
    }

    #[test]
    fn sizes_round_trip_and_double_the_ways() {
        assert_eq!(flow_buckets(1 << 20), 299_594, "2M ways of 7");
        assert_eq!(flows_of_buckets(299_594), 1_048_579);
        assert_eq!(flow_buckets(0), 1);
        assert_eq!(flow_buckets(3), 1, "one bucket holds 3.5 flows");
        assert_eq!(flow_buckets(4), 2);
        for flows in [1u32, 3, 4, 5, 64, 1023, 1 << 20, 1 << 26, u32::MAX] {
            let b = flow_buckets(flows);
            assert!(flows_of_buckets(b) >= flows, "{flows}");
            assert_eq!(flow_buckets(flows_of_buckets(b)), b, "{flows}");
        }
    }

    #[test]
    fn buckets_cover_the_table_evenly() {
        for buckets in [1u32, 3, 7, 299_594] {
            assert_eq!(bucket_of(0, buckets), 0);
            assert_eq!(bucket_of(u32::MAX, buckets), buckets - 1);
        }
        let mut counts = [0u32; 10];
        for n in 0..100_000u32 {
            counts[bucket_of(key(n).hash(), 10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_tag_is_never_empty_and_checks_only_its_hash() {
        assert_ne!(tag_of(0, 0), 0);
        let t = tag_of(0xdead_beee, 7);
        assert_eq!(t as u32, 7);
        assert!(checks(t, 0xdead_beee));
        assert!(checks(t, 0xdead_beef), "the low bit is not checked");
        assert!(!checks(t, 0xdead_bee0));
        assert!(!checks(0, 0), "an empty way checks no hash");
    }

    #[test]
    fn find_and_room_follow_keys_checks_and_timeouts() {
        let config = DataplaneConfig::default();
        let now = 10_000 * 1_000_000_000u64;
        let mut b = FlowBucket::default();
        assert_eq!(b.find(&key(1)), None);
        assert_eq!(b.room_for(&key(1), &config, now), Some(0));
        let live = |real| Binding {
            real,
            flags: 0,
            last_seen_ns: now,
        };
        for w in 0..FLOW_WAYS {
            b.set(w, key(w as u32), &live(w as u32));
        }
        assert_eq!(b.find(&key(5)), Some(5));
        assert_eq!(b.binding(5), live(5));
        assert!(b.live(5, &config, now));
        assert_eq!(b.room_for(&key(5), &config, now), Some(5), "its own way");
        assert_eq!(b.room_for(&key(99), &config, now), None, "full");
        // A torn way: the key rewritten, the tag still the old flow's.
        b.slots[2].key = key(42);
        assert_eq!(b.find(&key(42)), None, "the check refuses it");
        assert_eq!(b.find(&key(2)), None);
        // Idle beyond the TCP timeout (or the shorter FIN one): free.
        b.slots[3].last_seen_ns = now - 901 * 1_000_000_000;
        assert!(!b.live(3, &config, now));
        assert_eq!(b.room_for(&key(99), &config, now), Some(3));
        b.slots[1].flags = FLOW_CLOSING;
        b.slots[1].last_seen_ns = now - 121 * 1_000_000_000;
        assert_eq!(b.room_for(&key(99), &config, now), Some(1));
        b.tags[6] = 0;
        assert_eq!(
            b.room_for(&key(99), &config, now),
            Some(6),
            "empty before idle"
        );
    }
}
