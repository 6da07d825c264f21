//! IP fragments, the Cilium way.
//!
//! Only the first fragment of a datagram carries the TCP/UDP header, so only it
//! can be matched to a service and a flow. The rule:
//! - the first fragment (offset 0, more-fragments set) is balanced like any
//!   packet, and its ports are recorded in `FRAGMENTS` under (src, dst, IP
//!   identification, protocol);
//! - a later fragment (offset > 0) takes its ports from that record and then
//!   follows exactly the path of the first: same service, same flow, same real.
//!   It never creates a flow or persistence entry (the first fragment did);
//! - a later fragment with no record (reordered before the first, or the
//!   record evicted) is passed to the kernel stack as `PassFragment`.
//!
//! IPv6 uses the fragment header's 32-bit identification the same way. Entries
//! are never deleted: the LRU recycles them, as identifications do.

use lb_common::{FlowKey, FragmentKey, FragmentPorts, Reason};

use crate::maps::FRAGMENTS;

#[inline(always)]
fn fragment_key(key: &FlowKey, id: u32) -> FragmentKey {
    FragmentKey {
        src: key.src,
        dst: key.dst,
        id,
        proto: key.proto,
        family: key.family,
        _pad: [0; 2],
    }
}

/// Records the ports of a first fragment for the fragments that follow it.
#[inline(always)]
pub fn record_first(key: &FlowKey, id: u32) {
    let ports = FragmentPorts {
        sport: key.sport,
        dport: key.dport,
    };
    // A full LRU evicts rather than fails; a failure only costs the later
    // fragments a trip through the kernel stack.
    let _ = FRAGMENTS.insert(fragment_key(key, id), ports, 0);
}

/// Fills in the ports of a later fragment from its first fragment.
#[inline(always)]
pub fn fill_later(key: &mut FlowKey, id: u32) -> Result<(), Reason> {
    let ports = FRAGMENTS
        .get_ptr(fragment_key(key, id))
        .ok_or(Reason::PassFragment)?;
    // SAFETY: a pointer to a live map value; the copy is two u16 reads.
    let ports = unsafe { *ports };
    key.sport = ports.sport;
    key.dport = ports.dport;
    Ok(())
}
