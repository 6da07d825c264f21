//! xdpvs: a layer-4 load balancer in direct-routing mode.
//!
//! A packet for a service (VIP, port, protocol) keeps its IP and transport
//! headers; only the Ethernet addresses change: source = our MAC (the frame's
//! old destination), destination = the chosen real server, and it leaves by
//! the interface it came in on. A packet for a service none of whose reals
//! can take it is dropped (or passed, if the daemon says so); everything else
//! goes on to the kernel stack. Every verdict is counted in `REASON_STATS`
//! under its `Reason`, and a forwarded packet once more, in its real's
//! `REAL_STATS` (the daemon adds a service's up from its reals': see
//! `lb_common::maps::SERVICE_STATS`).
//!
//! One program, two hooks (see `frame`): `xdpvs` for XDP (sent with
//! `XDP_TX`) and `xdpvs_tc` for tcx ingress (sent with `bpf_redirect` to the
//! same interface's egress, or into its veth peer: [`TC_REDIRECT_PEER`];
//! node traffic goes to the next tcx program).
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
mod flows;
mod fragments;
mod frame;
mod maps;
mod parse;

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, tcx_action_base::TCX_NEXT, xdp_action},
    helpers::{bpf_redirect, bpf_redirect_peer},
    macros::{classifier, xdp},
    maps::PerCpuArray,
    programs::{TcContext, XdpContext},
};
use lb_common::{CONFIG_PASS_NO_REAL, Counters, Reason};

use crate::{
    frame::Frame,
    maps::{REAL_STATS, REASON_STATS},
};

#[xdp]
pub fn xdpvs(ctx: XdpContext) -> u32 {
    match try_balance(&ctx) {
        Ok(Verdict::Send) => xdp_action::XDP_TX,
        Ok(Verdict::Pass) => xdp_action::XDP_PASS,
        Ok(Verdict::Drop) => xdp_action::XDP_DROP,
        Err(()) => xdp_action::XDP_ABORTED,
    }
}

#[classifier]
pub fn xdpvs_tc(ctx: TcContext) -> i32 {
    match try_balance(&ctx) {
        Ok(Verdict::Send) => send_tc(&ctx),
        Ok(Verdict::Pass) => TCX_NEXT,
        Ok(Verdict::Drop) | Err(()) => TC_ACT_SHOT,
    }
}

/// How the tc program sends a frame (`lb_common::programs::TC_REDIRECT_PEER`):
/// 0 to its interface's egress, 1 straight into the ingress of the veth
/// peer, which is what that egress would reach, without the transmit, the
/// peer's backlog queue and a second softirq pass (Cilium's path into a
/// pod). The loader sets 1 only on a veth whose peer is in another network
/// namespace: the kernel drops a peer redirect anywhere else. Read only, so
/// the verifier prunes the other branch.
#[unsafe(no_mangle)]
static TC_REDIRECT_PEER: u32 = 0;

#[inline(always)]
fn send_tc(ctx: &TcContext) -> i32 {
    // SAFETY: reads the skb's `ifindex`, the device it arrived on, and the
    // program's own read-only global.
    unsafe {
        let ifindex = (*ctx.skb.skb).ifindex;
        if core::ptr::read_volatile(&TC_REDIRECT_PEER) != 0 {
            bpf_redirect_peer(ifindex, 0) as i32
        } else {
            bpf_redirect(ifindex, 0) as i32
        }
    }
}

/// What becomes of the frame, whichever the hook.
enum Verdict {
    /// Readdressed: out again by the interface it came in on.
    Send,
    /// On to the kernel stack.
    Pass,
    Drop,
}

/// `Err` only when `REASON_STATS` lacks a reason's slot: the object and
/// `lb_common` disagree, which `XDP_ABORTED` makes visible in the
/// `xdp:xdp_exception` tracepoint (tc drops the frame).
#[inline(always)]
fn try_balance<C: Frame>(ctx: &C) -> Result<Verdict, ()> {
    let (verdict, reason) = match forward(ctx) {
        Ok(reason) => (Verdict::Send, reason),
        // VIP traffic never reaches a local listener by accident: dropped,
        // as IPVS refuses it, unless the daemon asked for the old pass-through.
        Err(Reason::PassNoReal) if balance::config().flags & CONFIG_PASS_NO_REAL == 0 => {
            (Verdict::Drop, Reason::DropNoReal)
        }
        Err(reason) => (Verdict::Pass, reason),
    };
    let stats = REASON_STATS.get_ptr_mut(reason as u32).ok_or(())?;
    // SAFETY: this CPU's slot of a per-CPU map; nothing else writes it now.
    unsafe { count(stats, ctx.len() as u64, false) };
    Ok(verdict)
}

/// Rewrites the frame for its real server; `Err` carries the pass reason.
///
/// Only the common frame's fast path is inlined here: the flow cache and
/// the check for a VIP (see `parse::plain_ipv4`), on the loaded words kept in
/// registers; its `Packet` is built only for the slow path. Everything else
/// is in two BPF functions of their own (bpf-to-bpf calls),
/// [`forward_plain_slow`] and [`forward_any`], each with the slow path
/// inlined. Measured: inlined here, their thousands of instructions lay
/// between the pieces of the fast path, and an established flow cost about
/// 12 ns more, a packet for no service 8 ns more; new flows got no slower
/// for the call. Each inlines `decide` rather than calling a third
/// function: the frames of nested calls add up against BPF's 512-byte
/// stack (three reached it).
#[inline(always)]
fn forward<C: Frame>(ctx: &C) -> Result<Reason, Reason> {
    let Some(frame) = parse::plain_ipv4(ctx) else {
        return verdict_of(forward_any(ctx));
    };
    // The cache before the VIP check (see `balance::balance`).
    let miss = if frame.cacheable() {
        match balance::cached(&frame.key().words(), frame.closing()) {
            Ok(hit) => return send_cached(ctx, &hit),
            Err(miss) => miss,
        }
    } else {
        // Not a `Miss` of zeros: LLVM wrote that constant with a call to
        // `memset`, whose returned stack pointer the verifier refuses.
        None
    };
    if !balance::maybe_vip(&[frame.dst, 0, 0, 0]) {
        return Err(Reason::PassNotService);
    }
    // A SYN's decision fills its slot (see `cache`).
    let miss = if frame.cacheable() {
        miss
    } else {
        balance::to_fill(&frame.key().words())
    };
    verdict_of(forward_plain_slow(ctx, &frame, miss.as_ref()))
}

/// The outcome of [`forward_plain_slow`] or [`forward_any`]: only `send`
/// says `Ok`, and only with these reasons. Those functions return the reason
/// alone: a `Result` of two reasons would come back through the caller's
/// stack, leaving in R0 whatever LLVM last put there, and the verifier
/// refuses a function that may return a stack pointer.
#[inline(always)]
fn verdict_of(reason: Reason) -> Result<Reason, Reason> {
    match reason {
        Reason::Forwarded | Reason::ForwardedIcmpError | Reason::ForwardedUntracked => Ok(reason),
        _ => Err(reason),
    }
}

/// The common frame after the cache did not decide it.
#[inline(never)]
fn forward_plain_slow<C: Frame>(
    ctx: &C,
    frame: &parse::Plain,
    miss: Option<&balance::Miss>,
) -> Reason {
    let mut pkt = frame.packet();
    let sent = match balance::refill(&mut pkt, miss) {
        Ok(d) => send(ctx, &d, forwarded(&d)),
        Err(reason) => Err(reason),
    };
    match sent {
        Ok(r) | Err(r) => r,
    }
}

/// Any other frame.
#[inline(never)]
fn forward_any<C: Frame>(ctx: &C) -> Reason {
    match forward_packet(ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn forward_packet<C: Frame>(ctx: &C) -> Result<Reason, Reason> {
    let mut pkt = match parse::any_packet(ctx) {
        // tc: headers beyond the skb's linear part (`Frame::pull_headers`).
        // Only the parse is tried again, so the verifier walks the rest of
        // the slow path once, not once per try.
        Err(Reason::PassMalformed) if ctx.pull_headers() => parse::any_packet(ctx)?,
        parsed => parsed?,
    };
    let d = balance::balance(&mut pkt)?;
    let reason = if pkt.icmp_error {
        Reason::ForwardedIcmpError
    } else {
        forwarded(&d)
    };
    send(ctx, &d, reason)
}

#[inline(always)]
fn forwarded(d: &balance::Decision) -> Reason {
    if d.untracked {
        Reason::ForwardedUntracked
    } else {
        Reason::Forwarded
    }
}

/// Addresses the frame to the real of `d` and counts it.
#[inline(always)]
fn send<C: Frame>(ctx: &C, d: &balance::Decision, reason: Reason) -> Result<Reason, Reason> {
    ctx.readdress(d.mac)?;
    // A real number beyond the stats map is a daemon bug that must not stop
    // traffic: those packets just go uncounted.
    count_at(&REAL_STATS, d.real, ctx.len() as u64, d.new_flow);
    Ok(reason)
}

/// [`send`] for a flow cache hit, reading the real in the cache entry: no
/// `Decision` is built, and no new flow is counted.
#[inline(always)]
fn send_cached<C: Frame>(ctx: &C, hit: &balance::Hit) -> Result<Reason, Reason> {
    ctx.readdress(hit.mac)?;
    // SAFETY: a `FLOW_CACHE` entry (see `balance::cached`).
    let entry = unsafe { &*hit.entry };
    count_at(&REAL_STATS, entry.real, ctx.len() as u64, false);
    Ok(Reason::Forwarded)
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
