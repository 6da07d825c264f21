//! The flood guard (Katran's "max new connections per second per CPU").
//!
//! Every new flow the slow path would record costs `new_flow_cost_ns` of
//! credit from this CPU's bucket in `FLOOD_GUARD`; the bucket earns one
//! nanosecond of credit per nanosecond of time, up to `new_flow_burst_ns`.
//! So a CPU records at most `rate` new flows per second after a burst of
//! `burst`. Above that, a packet of an unknown flow is still sent to the
//! ring's real but neither `FLOWS` nor `PERSIST` is written, so a SYN or
//! spoofed-UDP flood cannot evict the flows already in the tables.
//! Credit as time rather than tokens keeps the refill free of divisions.

use lb_common::DataplaneConfig;

use crate::maps::FLOOD_GUARD;

/// Whether this CPU may record one more new flow now (and takes its credit).
#[inline(always)]
pub fn admit(cfg: &DataplaneConfig, now: u64) -> bool {
    if cfg.new_flow_cost_ns == 0 {
        return true;
    }
    let Some(b) = FLOOD_GUARD.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: this CPU's slot of a per-CPU map; nothing else uses it while
    // this program runs on this CPU.
    let b = unsafe { &mut *b };
    // Wrapping: a stamp of 0 (never used) or from before a clock jump gives a
    // huge interval, which the cap turns into a full bucket.
    let earned = now.wrapping_sub(b.stamp_ns);
    let mut credit = b.credit_ns.saturating_add(earned);
    if credit > cfg.new_flow_burst_ns {
        credit = cfg.new_flow_burst_ns;
    }
    b.stamp_ns = now;
    let admitted = credit >= cfg.new_flow_cost_ns;
    if admitted {
        credit -= cfg.new_flow_cost_ns;
    }
    b.credit_ns = credit;
    admitted
}
