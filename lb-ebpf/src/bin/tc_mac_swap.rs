//! The benchmark baselines for the tc program. `tc_mac_swap`: the least a
//! tc forwarder does the way `xdpvs_tc` does it: it swaps the two MAC
//! addresses with `bpf_skb_store_bytes` and redirects the frame to the
//! interface it came in on. `tc_pass`: the least a tc program does with node
//! traffic, on to the next program.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, tcx_action_base::TCX_NEXT},
    helpers::bpf_redirect,
    macros::classifier,
    programs::TcContext,
};

#[classifier]
pub fn tc_mac_swap(ctx: TcContext) -> i32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return TC_ACT_OK;
    }
    // SAFETY: the bounds check above covers both 6-byte addresses.
    let addrs = unsafe { *(start as *const [u8; 12]) };
    let mut swapped = [0u8; 12];
    swapped[..6].copy_from_slice(&addrs[6..]);
    swapped[6..].copy_from_slice(&addrs[..6]);
    if ctx.store(0, &swapped, 0).is_err() {
        return TC_ACT_OK;
    }
    // SAFETY: reads the skb's `ifindex`, the device it arrived on.
    unsafe { bpf_redirect((*ctx.skb.skb).ifindex, 0) as i32 }
}

#[classifier]
pub fn tc_pass(_ctx: TcContext) -> i32 {
    TCX_NEXT
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
