//! Helpers shared by the kernel (`BPF_PROG_TEST_RUN`) tests, the end-to-end
//! tests in network namespaces, the demo and the data-plane benchmark.

pub mod adverts;
pub mod ecmp;
pub mod flows;
pub mod hook;
pub mod keepalived;
pub mod load;
pub mod mutate;
pub mod netns;
pub mod packet;
pub mod packet_socket;
pub mod ping;
pub mod report;
pub mod services;
pub mod smtp;
pub mod topology;

/// CLOCK_MONOTONIC_COARSE in ns: the clock the XDP program stamps flows with
/// (`bpf_ktime_get_coarse_ns`).
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
