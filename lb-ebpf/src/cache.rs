//! The per-CPU flow cache: the fast path for established flows (Katran's and
//! Cilium's per-CPU cache in front of the shared flow table, direct-mapped).
//!
//! `FLOW_CACHE` holds, per CPU, `FLOW_CACHE_SIZE` entries indexed by the flow
//! key (see [`slot`]). An entry is the whole `FlowKey`, the real and the
//! service the slow path chose, the `FLOWS` line of its slot, and when. A
//! packet that may use the cache (not a fragment, not an ICMP error, not a
//! TCP SYN) and whose key equals its slot's key word for word is forwarded to
//! the cached real with no `SERVICES` lookup and no `FLOWS` probe, provided
//! that:
//! - `REALS[real]` is up and still belongs to the cached service. A real that
//!   goes down, the reals of a deleted service (the daemon zeroes them) and a
//!   real number reused by another service all fail this at once, and the
//!   slow path re-picks or passes;
//! - the slow path decided it in the current `CACHE_EPOCH`, which the daemon
//!   moves on every `TOUCH_INTERVAL_NS` and after each change it writes. Once
//!   per epoch a packet of each cached flow takes the slow path, which looks
//!   the flow up in `FLOWS` (keeping its `last_seen_ns` fresh, so a
//!   long-lived flow served from here is not timed out there and deleted by
//!   the daemon's flow scan), refreshes persistence and sees what the
//!   daemon changed while the real stayed up (a new, more specific service; a
//!   `FLOWS` entry deleted). The daemon's changes reach cached flows at once.
//!   An epoch rather than the clock: `bpf_ktime_get_coarse_ns` on every
//!   packet was measured at about 20 ns, half of the fast path's cost. (Left
//!   alone, with no daemon writing it, the epoch stays put and the cache is
//!   trusted until the real changes.)
//!
//! The slow path refills the slot after every decision for a packet that could
//! have used it or a SYN (the newer flow wins a collision), and invalidates it
//! when it passes such a packet of the cached flow, so a real the slow path
//! refused is never used from here. A FIN or RST must reach `FLOWS`
//! (`FLOW_CLOSING`: the shorter timeout, and a SYN on the tuple opening a new
//! flow): served from here, it marks the slot at the entry's line itself,
//! once it has checked that the slot still holds its key, else it takes the
//! slow path.
//! ICMP errors are counted apart, and fragments need `FRAGMENTS`.
//!
//! A SYN opens a flow (or reopens a tuple), so it never reads the cache, but
//! its decision fills the slot, written without reading the line first
//! (`balance::to_fill`): the handshake's ACK is a hit, and a connection per
//! request takes the slow path once, for its SYN, where it took it three
//! times (SYN, ACK, FIN). An untracked new flow fills nothing, so a SYN
//! flood above the flood guard's rate cannot push established flows out of
//! the cache (below it, a new flow takes its slot as any refill does). A
//! packet whose tuple's recorded flow no longer decides (a closed tuple
//! reopened, an idle flow, a real gone) clears the tuple's entry
//! (`balance::forget_stale`): an untracked SYN, which fills nothing, would
//! otherwise leave the old connection's real there for the new one.

use aya_ebpf::helpers::bpf_get_smp_processor_id;
use lb_common::{FlowCacheEntry, FlowKey, flow_cache_index};

use crate::{
    balance::Decision,
    maps::{CACHE_EPOCH, FLOW_CACHE},
    parse::Packet,
};

/// This CPU's slot for the flow of key `w` (see `FlowKey::words` and
/// `lb_common::flow_cache_index`).
#[inline(always)]
pub fn slot(w: &[u64; 5]) -> Option<*mut FlowCacheEntry> {
    // SAFETY: a helper without arguments (the verifier inlines it).
    let cpu = unsafe { bpf_get_smp_processor_id() };
    FLOW_CACHE.get_ptr_mut(flow_cache_index(cpu, w))
}

/// The 40-byte key as five words, in place.
///
/// # Safety
/// `key` must be 8-byte aligned.
#[inline(always)]
unsafe fn words(key: &FlowKey) -> &[u64; 5] {
    // SAFETY: same size; alignment guaranteed by the caller.
    unsafe { &*(key as *const FlowKey).cast::<[u64; 5]>() }
}

/// Whether `entry` caches the flow of key `w` (see `FlowKey::words`).
#[inline(always)]
pub fn same_flow(a: &[u64; 5], entry: &FlowCacheEntry) -> bool {
    // SAFETY: `FlowCacheEntry` holds a u64, so it is 8-byte aligned, with
    // the key first.
    let b = unsafe { words(&entry.key) };
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
}

/// The current epoch.
#[inline(always)]
pub fn epoch() -> u64 {
    CACHE_EPOCH.get(0).copied().unwrap_or(0)
}

/// Records the slow path's decision for `pkt`'s flow.
#[inline(always)]
pub fn fill(entry: &mut FlowCacheEntry, pkt: &Packet, d: &Decision, epoch: u64) {
    // Word by word: a struct copy would be a byte loop (`memcpy`) in BPF.
    // SAFETY: both keys are 8-byte aligned (see `same_flow`).
    let (from, to) = unsafe {
        (
            words(&pkt.key),
            &mut *(&mut entry.key as *mut FlowKey).cast::<[u64; 5]>(),
        )
    };
    to[0] = from[0];
    to[1] = from[1];
    to[2] = from[2];
    to[3] = from[3];
    to[4] = from[4];
    entry.real = d.real;
    entry.service = d.service_id;
    entry.epoch = epoch;
    entry.line = d.line;
}

/// Makes `entry` match no packet: the slow path refused its flow.
#[inline(always)]
pub fn invalidate(entry: &mut FlowCacheEntry) {
    entry.key.family = 0;
}

/// Invalidates this CPU's entry for the flow of key `w`, if it holds it.
#[inline(always)]
pub fn forget(w: &[u64; 5]) {
    if let Some(entry) = slot(w) {
        // SAFETY: this CPU's slot of a per-CPU map (see `balance::cached`).
        let e = unsafe { &mut *entry };
        if same_flow(w, e) {
            invalidate(e);
        }
    }
}
