//! The layout of `FLOWS`, the connection table, and the rules the XDP
//! program and userspace both follow to find a flow in it.
//!
//! `FLOWS` is a BPF array of 64-byte [`FlowLine`]s holding a set-associative
//! table: a flow lives in bucket [`bucket_of`]`(FlowKey::hash())`, in any of
//! its [`FLOW_WAYS`] ways. A bucket is a line of tags (each way's real and a
//! check of its key) in the first part of the array, and a line per way (key,
//! last packet, flags) in the second ([`tag_line`], [`slot_line`]). A flow
//! the bucket does not hold, every new flow, costs one tag line read whatever
//! the table's fill, where the kernel's hash map walked a chain and took an
//! element from its free list: that insert was most of a new flow's cost, and
//! grew with the fill.
//!
//! The tags are apart from the slots because a new flow's cost is mostly
//! finding the tag line: the table is far larger than the caches and than
//! the TLB's reach, and in a virtual machine each TLB miss is a
//! two-dimensional page walk. All the tags, 8 bytes a way, take a ninth of
//! the table (16 MB at the default size): their pages' translations mostly
//! stay in the TLB, and their lines partly in the last-level cache, where a
//! bucket laid out in one piece put every tag line on a page of its own.
//! Past one page of tags the bucket count is a multiple of 64, so the slots
//! start on a page and a bucket's eight slots (512 bytes) never straddle one.
//!
//! A way is free when empty or idle beyond its timeout: a new flow takes the
//! first empty way, else the first idle one. The daemon's flow scan empties
//! idle ways (so a new flow seldom reads more than the tags); with no daemon,
//! new flows still take idle ways. A full bucket is not evicted from: a new
//! flow is then forwarded by the ring, unrecorded, so a flood cannot push
//! established flows out. There are twice as many ways as the table is sized
//! for ([`flow_buckets`]), so at 80% of that size about 1.7% of new flows
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

/// Ways per bucket: eight, so that their tags fill one line.
pub const FLOW_WAYS: usize = 8;

/// The XDP program's global holding the number of buckets of `FLOWS`, set at
/// load time (`EbpfLoader::override_global`) to the size the map gets.
pub const FLOW_BUCKETS: &str = "FLOW_BUCKETS";

/// Buckets of a table sized for `flows` flows: twice as many ways; past 64,
/// a multiple of 64 (a whole number of pages of tags).
pub const fn flow_buckets(flows: u32) -> u32 {
    let buckets = (flows as u64 * 2).div_ceil(FLOW_WAYS as u64);
    if buckets == 0 {
        1
    } else if buckets > 64 {
        buckets.next_multiple_of(64) as u32
    } else {
        buckets as u32
    }
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

/// Entries of `FLOWS` for `buckets` buckets: a tag line and a line per way
/// each.
pub const fn flow_lines(buckets: u32) -> u32 {
    buckets * (1 + FLOW_WAYS as u32)
}

/// Buckets of a `FLOWS` of `lines` entries (inverse of [`flow_lines`]).
pub const fn buckets_of_lines(lines: u32) -> u32 {
    lines / (1 + FLOW_WAYS as u32)
}

/// The entry of `FLOWS` holding `bucket`'s tags.
#[inline(always)]
pub const fn tag_line(bucket: u32) -> u32 {
    bucket
}

/// The entry of `FLOWS` holding way `way` of `bucket`, in a table of
/// `buckets` buckets.
#[inline(always)]
pub const fn slot_line(buckets: u32, bucket: u32, way: u32) -> u32 {
    buckets + bucket * FLOW_WAYS as u32 + way
}

/// Value of `FLOWS`: one cache line, a bucket's tags ([`FlowLine::tags`]) or
/// one way's [`FlowSlot`].
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FlowLine {
    pub words: [u64; 8],
}
const _: () = assert!(core::mem::size_of::<FlowLine>() == 64);

impl FlowLine {
    /// The line as a bucket's tags: way `i`'s tag (see [`tag_of`]) is word
    /// `i`; 0: way `i` is empty.
    pub fn tags(&self) -> &[u64; FLOW_WAYS] {
        &self.words
    }

    pub fn slot(&self) -> FlowSlot {
        bytemuck::cast(*self)
    }
}

impl From<FlowSlot> for FlowLine {
    fn from(slot: FlowSlot) -> Self {
        bytemuck::cast(slot)
    }
}

/// One flow's key and the rest of its binding (the real is in its tag), one
/// line of `FLOWS`.
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

/// A copy of one bucket, its tag line and its slots gathered, on which
/// userspace and the tests decide as the XDP program does in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBucket {
    /// Way `i`'s tag (see [`tag_of`]); 0: way `i` is empty.
    pub tags: [u64; FLOW_WAYS],
    pub slots: [FlowSlot; FLOW_WAYS],
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
        let slot = &self.slots[way];
        self.tags[way] != 0 && !config.idle_out(slot.key.proto, slot.flags, slot.last_seen_ns, now)
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
        assert_eq!(flow_buckets(1 << 20), 262_144, "2M ways of 8");
        assert_eq!(flows_of_buckets(262_144), 1 << 20);
        assert_eq!(flow_buckets(0), 1);
        assert_eq!(flow_buckets(4), 1, "one bucket holds 4 flows");
        assert_eq!(flow_buckets(5), 2);
        assert_eq!(flow_buckets(256), 64);
        assert_eq!(flow_buckets(257), 128, "past 64, whole pages of tags");
        for flows in [1u32, 3, 4, 5, 64, 1023, 1 << 20, 1 << 26, u32::MAX] {
            let b = flow_buckets(flows);
            assert!(flows_of_buckets(b) >= flows, "{flows}");
            assert_eq!(flow_buckets(flows_of_buckets(b)), b, "{flows}");
        }
    }

    #[test]
    fn tags_then_slots_each_slot_group_inside_a_page() {
        let buckets = flow_buckets(1 << 20);
        assert_eq!(flow_lines(buckets), 9 * buckets);
        assert_eq!(buckets_of_lines(flow_lines(buckets)), buckets);
        assert_eq!(tag_line(buckets - 1), buckets - 1);
        assert_eq!(slot_line(buckets, 0, 0), buckets, "slots after the tags");
        assert_eq!(
            slot_line(buckets, buckets - 1, FLOW_WAYS as u32 - 1),
            flow_lines(buckets) - 1
        );
        for flows in [1024u32, 5000, 1 << 20, 1 << 26] {
            let buckets = flow_buckets(flows);
            for bucket in [0, 1, buckets / 2, buckets - 1] {
                let first = slot_line(buckets, bucket, 0) as usize * 64;
                let last = slot_line(buckets, bucket, FLOW_WAYS as u32 - 1) as usize * 64 + 63;
                assert_eq!(first / 4096, last / 4096, "{flows} flows, bucket {bucket}");
            }
        }
    }

    #[test]
    fn a_line_holds_a_slot_unchanged() {
        let slot = FlowSlot {
            key: key(7),
            last_seen_ns: 99,
            flags: FLOW_CLOSING,
            _pad: [0; 3],
        };
        assert_eq!(FlowLine::from(slot).slot(), slot);
    }

    #[test]
    fn buckets_cover_the_table_evenly() {
        for buckets in [1u32, 3, 7, 262_144] {
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
