//! xdpvs: a layer-4 load balancer in direct-routing mode.
//!
//! A packet for a service (VIP, port, protocol) keeps its IP and transport
//! headers; only the Ethernet addresses change: source = our MAC (the frame's
//! old destination), destination = the chosen real server, and it leaves by
//! `XDP_TX`. A packet for a service none of whose reals can take it is
//! dropped (or passed, if the daemon says so); everything else goes to the
//! kernel stack with `XDP_PASS`. Every verdict is counted in `REASON_STATS`
//! under its `Reason`.
//!
//! Established flows take the fast path: a per-CPU flow cache hit skips the
//! `SERVICES` and `FLOWS` lookups (`cache` explains when it is trusted);
//! everything else takes the slow path in `balance`.
#![no_std]
#![no_main]
// Packet loads are written as BPF instructions (see `parse`).
#![feature(asm_experimental_arch)]

mod balance;
mod cache;
mod flood;
mod fragments;
mod maps;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, maps::PerCpuArray, programs::XdpContext};
use lb_common::{CONFIG_PASS_NO_REAL, Counters, Reason};

use crate::maps::{REAL_STATS, REASON_STATS, SERVICE_STATS};

#[xdp]
pub fn xdpvs(ctx: XdpContext) -> u32 {
    match try_balance(&ctx) {
        Ok(action) => action,
        Err(()) => xdp_action::XDP_ABORTED,
    }
}

/// `Err` only when `REASON_STATS` lacks a reason's slot: the object and
/// `lb_common` disagree, which `XDP_ABORTED` makes visible in the
/// `xdp:xdp_exception` tracepoint.
#[inline(always)]
fn try_balance(ctx: &XdpContext) -> Result<u32, ()> {
    let (action, reason) = match forward(ctx) {
        Ok(reason) => (xdp_action::XDP_TX, reason),
        // VIP traffic never reaches a local listener by accident: dropped,
        // as IPVS refuses it, unless the daemon asked for the old pass-through.
        Err(Reason::PassNoReal) if balance::config().flags & CONFIG_PASS_NO_REAL == 0 => {
            (xdp_action::XDP_DROP, Reason::DropNoReal)
        }
        Err(reason) => (xdp_action::XDP_PASS, reason),
    };
    let stats = REASON_STATS.get_ptr_mut(reason as u32).ok_or(())?;
    // SAFETY: this CPU's slot of a per-CPU map; nothing else writes it now.
    unsafe { count(stats, frame_len(ctx), false) };
    Ok(action)
}

/// Rewrites the frame for its real server; `Err` carries the pass reason.
///
/// The common frame (see `parse::plain_ipv4`) gets a copy of everything
/// below compiled for it alone: joined with the full parser's result, its
/// constants (IPv4, zero address words, no fragment, no ICMP error) became
/// variables kept on the stack, which cost more than its parsing saved. Two
/// instances (`PLAIN`), not one function called twice: LLVM joins two calls
/// of one function into one before inlining it.
#[inline(always)]
fn forward(ctx: &XdpContext) -> Result<Reason, Reason> {
    match parse::plain_ipv4(ctx) {
        Some(mut pkt) => forward_packet::<true>(ctx, &mut pkt),
        // Only `forward_packet` says `Ok`, and only with these reasons.
        None => match forward_any(ctx) {
            r @ (Reason::Forwarded | Reason::ForwardedIcmpError | Reason::ForwardedUntracked) => {
                Ok(r)
            }
            r => Err(r),
        },
    }
}

/// Any other frame, out of line for the reason `balance::slow` gives. It
/// returns the reason alone, which tells whether the frame was forwarded: a
/// `Result` of two reasons would come back through the stack (see
/// `balance::decide_into`).
#[inline(never)]
fn forward_any(ctx: &XdpContext) -> Reason {
    match parse::any_packet(ctx).and_then(|mut pkt| forward_packet::<false>(ctx, &mut pkt)) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn forward_packet<const PLAIN: bool>(
    ctx: &XdpContext,
    pkt: &mut parse::Packet,
) -> Result<Reason, Reason> {
    let d = balance::balance::<PLAIN>(pkt)?;
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return Err(Reason::PassMalformed);
    }
    // SAFETY: both addresses are inside the frame (checked just above).
    unsafe {
        // Source = the frame's destination (our MAC), destination = the real.
        let (head, tail) = (parse::load32_at::<0>(start), parse::load16_at::<4>(start));
        parse::store32::<6>(start, head);
        parse::store16::<10>(start, tail);
        parse::store32::<0>(start, d.mac.head);
        parse::store16::<4>(start, d.mac.tail);
    }
    let len = frame_len(ctx);
    // A service id or real number beyond the stats maps is a daemon bug that
    // must not stop traffic: those packets just go uncounted.
    count_at(&SERVICE_STATS, d.service_id, len, d.new_flow);
    count_at(&REAL_STATS, d.real, len, d.new_flow);
    Ok(if !PLAIN && pkt.icmp_error {
        Reason::ForwardedIcmpError
    } else if d.untracked {
        Reason::ForwardedUntracked
    } else {
        Reason::Forwarded
    })
}

#[inline(always)]
fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

#[inline(always)]
fn count_at(map: &PerCpuArray<Counters>, index: u32, len: u64, new_flow: bool) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU map.
        unsafe { count(c, len, new_flow) };
    }
}

/// # Safety
/// `c` must point to this CPU's slot of a per-CPU counters map.
#[inline(always)]
unsafe fn count(c: *mut Counters, len: u64, new_flow: bool) {
    // SAFETY: guaranteed by the caller.
    let c = unsafe { &mut *c };
    c.packets += 1;
    c.bytes += len;
    c.new_flows += new_flow as u64;
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
