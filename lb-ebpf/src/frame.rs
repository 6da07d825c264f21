//! The frame as each hook hands it over: XDP (the driver's buffer, or an skb
//! in generic mode) and tc (tcx ingress: the skb itself, on which the stack
//! goes on). The parser and the forwarder are written once over [`Frame`].
//!
//! Why tc: on veth, XDP copies every frame a local process sent (cloned, too
//! little headroom) and native XDP needs tricks of the peer; tc works on the
//! skb in place, keeps its checksum state and sends it on with
//! `bpf_redirect`, as Cilium does on veth.

use aya_ebpf::programs::{TcContext, XdpContext};
use lb_common::Reason;

use crate::balance::Mac;

pub trait Frame {
    /// The frame's first byte.
    fn data(&self) -> usize;
    /// The end of what can be read directly: the whole frame for XDP, the
    /// skb's linear part for tc.
    fn data_end(&self) -> usize;
    /// The whole frame's length (for tc, beyond `data_end` when the skb
    /// carries fragments).
    fn len(&self) -> usize;
    /// Makes the headers directly readable when they were not; `false` when
    /// nothing changed (XDP: every byte already is). Invalidates every
    /// address into the frame taken before.
    fn pull_headers(&self) -> bool;
    /// Writes the frame's first 12 bytes: destination `dst`, source `src`
    /// (each as [`Mac`]'s two words).
    ///
    /// # Safety
    /// `start` is [`Frame::data`], and the frame holds 12 bytes there.
    unsafe fn write_addresses(&self, start: usize, dst: Mac, src: Mac) -> Result<(), Reason>;

    /// Destination = `mac`, source = the old destination (our MAC).
    #[inline(always)]
    fn readdress(&self, mac: Mac) -> Result<(), Reason> {
        let start = self.data();
        if start + 12 > self.data_end() {
            return Err(Reason::PassMalformed);
        }
        // SAFETY: both addresses are inside the frame (checked just above).
        unsafe {
            use crate::parse::{load16_at, load32_at};
            let ours = Mac {
                head: load32_at::<0>(start),
                tail: load16_at::<4>(start),
            };
            self.write_addresses(start, mac, ours)
        }
    }
}

impl Frame for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }

    #[inline(always)]
    fn len(&self) -> usize {
        XdpContext::data_end(self) - XdpContext::data(self)
    }

    #[inline(always)]
    fn pull_headers(&self) -> bool {
        false
    }

    #[inline(always)]
    unsafe fn write_addresses(&self, start: usize, dst: Mac, src: Mac) -> Result<(), Reason> {
        // SAFETY: guaranteed by the caller.
        unsafe {
            use crate::parse::{store16, store32};
            store32::<0>(start, dst.head);
            store16::<4>(start, dst.tail);
            store32::<6>(start, src.head);
            store16::<10>(start, src.tail);
        }
        Ok(())
    }
}

impl Frame for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }

    #[inline(always)]
    fn len(&self) -> usize {
        TcContext::len(self) as usize
    }

    /// Only when the headers are not all in the linear part: pulling
    /// un-clones the skb, a copy a locally sent frame would otherwise pay
    /// even as node traffic.
    #[inline(always)]
    fn pull_headers(&self) -> bool {
        let want = Frame::len(self).min(crate::parse::HEADERS_MAX);
        Frame::data_end(self) - Frame::data(self) < want && self.skb.pull_data(want as u32).is_ok()
    }

    /// With `bpf_skb_store_bytes`, not by direct writes: a program that
    /// writes packet data directly gets a prologue that un-clones every skb
    /// it sees, forwarded or not.
    #[inline(always)]
    unsafe fn write_addresses(&self, _start: usize, dst: Mac, src: Mac) -> Result<(), Reason> {
        let mut addrs = [0u8; 12];
        addrs[0..4].copy_from_slice(&dst.head.to_ne_bytes());
        addrs[4..6].copy_from_slice(&dst.tail.to_ne_bytes());
        addrs[6..10].copy_from_slice(&src.head.to_ne_bytes());
        addrs[10..12].copy_from_slice(&src.tail.to_ne_bytes());
        self.skb
            .store(0, &addrs, 0)
            .map_err(|_| Reason::PassMalformed)
    }
}
