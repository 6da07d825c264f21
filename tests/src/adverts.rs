//! Watching VRRP adverts on the wire from a namespace on the bridge, to check
//! that two nodes never both act as master for longer than one advert
//! interval (the RFCs' bound on a split brain during an election).

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use crate::netns::in_netns;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub at: Instant,
    pub from: Ipv4Addr,
    pub priority: u8,
}

pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<Vec<Advert>>>,
}

/// A raw IPPROTO 112 socket in the namespace's `eth0`, joined to 224.0.0.18.
fn open() -> Result<i32> {
    // SAFETY: plain socket calls on a descriptor this function owns; every
    // pointer passed is to a local that outlives the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, 112);
        if fd < 0 {
            bail!("raw socket: {}", std::io::Error::last_os_error());
        }
        let ifindex = libc::if_nametoindex(c"eth0".as_ptr());
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from_ne_bytes([224, 0, 0, 18]),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as i32,
        };
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        let len = |n: usize| n as libc::socklen_t;
        if libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_ADD_MEMBERSHIP,
            (&raw const mreq).cast(),
            len(size_of_val(&mreq)),
        ) != 0
            || libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                len(size_of_val(&timeout)),
            ) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            bail!("joining 224.0.0.18: {e}");
        }
        Ok(fd)
    }
}

impl Capture {
    pub fn start(ns: &str) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ns) = (stop.clone(), ns.to_string());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            in_netns(&ns, move || -> Result<Vec<Advert>> {
                let fd = match open() {
                    Ok(fd) => fd,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut seen = Vec::new();
                let mut buf = [0u8; 1500];
                while !s.load(Ordering::Relaxed) {
                    // SAFETY: reads into a local buffer of the size given.
                    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                    let Ok(n) = usize::try_from(n) else { continue };
                    let ihl = usize::from(buf[0] & 0x0f) * 4;
                    if n >= ihl + 3 && buf[9] == 112 {
                        let from = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                        seen.push(Advert {
                            at: Instant::now(),
                            from,
                            priority: buf[ihl + 2],
                        });
                    }
                }
                // SAFETY: closes the descriptor `open` returned.
                unsafe { libc::close(fd) };
                Ok(seen)
            })?
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { stop, thread }),
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("advert capture thread ended"),
        }
    }

    pub fn finish(self) -> Result<Vec<Advert>> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => bail!("advert capture thread panicked"),
        }
    }
}

/// The spans in which `from` advertised as master: runs of its non-zero
/// priority adverts no more than `gap` apart, first to last.
fn master_spans(adverts: &[Advert], from: Ipv4Addr, gap: Duration) -> Vec<(Instant, Instant)> {
    let mut spans: Vec<(Instant, Instant)> = Vec::new();
    for a in adverts.iter().filter(|a| a.from == from && a.priority > 0) {
        match spans.last_mut() {
            Some((_, end)) if a.at.duration_since(*end) <= gap => *end = a.at,
            _ => spans.push((a.at, a.at)),
        }
    }
    spans
}

/// The longest time both `a` and `b` advertised as master at once.
pub fn longest_dual_master(
    adverts: &[Advert],
    a: Ipv4Addr,
    b: Ipv4Addr,
    gap: Duration,
) -> Duration {
    let (sa, sb) = (master_spans(adverts, a, gap), master_spans(adverts, b, gap));
    let mut longest = Duration::ZERO;
    for (a0, a1) in &sa {
        for (b0, b1) in &sb {
            let (start, end) = ((*a0).max(*b0), (*a1).min(*b1));
            if end > start {
                longest = longest.max(end - start);
            }
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_master_spans() {
        let t0 = Instant::now();
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
        let ad = |s: f64, from, priority| Advert {
            at: t0 + Duration::from_secs_f64(s),
            from,
            priority,
        };
        // a masters 0..3 s, b takes over at 2.5 s (a's last at 3 s), a stops
        // with priority 0 at 3.2 s, b goes on to 6 s, a preempts at 5.9 s.
        let adverts = [
            ad(0.0, a, 100),
            ad(1.0, a, 100),
            ad(2.0, a, 100),
            ad(2.5, b, 99),
            ad(3.0, a, 100),
            ad(3.2, a, 0),
            ad(3.5, b, 99),
            ad(4.5, b, 99),
            ad(5.5, b, 99),
            ad(5.9, a, 100),
            ad(6.0, b, 99),
        ];
        let dual = longest_dual_master(&adverts, a, b, Duration::from_millis(1500));
        assert_eq!(dual, Duration::from_millis(500));
        assert_eq!(
            longest_dual_master(&adverts[..3], a, b, Duration::from_millis(1500)),
            Duration::ZERO
        );
    }
}
