//! The benchmark baseline: the least an XDP forwarder can do. It checks the
//! Ethernet header is there, swaps the two MAC addresses and returns `XDP_TX`.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn mac_swap(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let p = start as *mut [u8; 6];
    // SAFETY: the bounds check above covers both 6-byte addresses.
    unsafe {
        let dst = *p;
        *p = *p.add(1);
        *p.add(1) = dst;
    }
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
