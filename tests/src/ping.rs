//! An ICMP echo probe from a namespace: one request every `interval`,
//! counting the replies, as `ping -i` would (ping is not installed here).

use std::{
    collections::BTreeSet,
    io,
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::netns::in_netns;

pub struct Ping {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<(usize, usize)>>,
}

/// What a probe saw: requests sent, replies received.
#[derive(Debug, Clone, Copy)]
pub struct PingCount {
    pub sent: usize,
    pub received: usize,
}

impl PingCount {
    pub fn lost(&self) -> usize {
        self.sent.saturating_sub(self.received)
    }
}

impl Ping {
    /// Starts probing `to` from namespace `ns`.
    pub fn start(ns: &str, to: Ipv4Addr, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ns) = (stop.clone(), ns.to_string());
        let thread = thread::spawn(move || in_netns(&ns, move || probe(to, interval, &s))?);
        Ping { stop, thread }
    }

    /// Stops sending, waits a second for late replies, and counts.
    pub fn finish(self) -> Result<PingCount> {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, received) = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("ping thread panicked"))??;
        Ok(PingCount { sent, received })
    }
}

fn probe(to: Ipv4Addr, interval: Duration, stop: &AtomicBool) -> Result<(usize, usize)> {
    // SAFETY: a raw ICMP socket, owned by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: fd was just opened.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let ident = (std::process::id() & 0xffff) as u16;
    let mut seen = BTreeSet::new();
    let mut sent = 0usize;
    let mut next = Instant::now();
    let mut last_sent = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping && Instant::now() >= next {
            send_echo(&sock, to, ident, sent as u16)?;
            sent += 1;
            next += interval;
        }
        if stopping {
            let since = *last_sent.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        receive(&sock, ident, &mut seen);
        thread::sleep(Duration::from_millis(1));
    }
    Ok((sent, seen.len()))
}

fn send_echo(sock: &OwnedFd, to: Ipv4Addr, ident: u16, seq: u16) -> Result<()> {
    let mut msg = [0u8; 16];
    msg[0] = 8; // echo request
    msg[4..6].copy_from_slice(&ident.to_be_bytes());
    msg[6..8].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `msg` and `addr` outlive the call; the lengths are theirs.
    let ret = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        // A missing neighbour or route is a lost probe, not a test error.
        let e = io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH)
        ) {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Records the sequence numbers of the echo replies waiting on the socket.
fn receive(sock: &OwnedFd, ident: u16, seen: &mut BTreeSet<u16>) {
    let mut buf = [0u8; 1500];
    loop {
        // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return;
        }
        // A raw socket delivers the IP header too.
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let icmp = &buf[ihl.min(n as usize)..n as usize];
        if icmp.len() >= 8 && icmp[0] == 0 && u16::from_be_bytes([icmp[4], icmp[5]]) == ident {
            seen.insert(u16::from_be_bytes([icmp[6], icmp[7]]));
        }
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
