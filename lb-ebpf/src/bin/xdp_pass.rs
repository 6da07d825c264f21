//! Passes every frame. Test topologies attach it to the bridge-side peer of a
//! veth whose other end runs xdpvs in native mode: veth drops frames sent
//! with `XDP_TX` unless its peer has an XDP program too.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
