//! Per-real flow counts, read from the flow table off the control loop, and
//! the emptying of idle ways.
//!
//! With a million flows, reading the table takes tens of milliseconds; done
//! on the daemon's loop, health verdicts, MAC changes and signals would wait
//! for it. Instead a thread of its own reads the whole table through its
//! memory mapping (`flow_table`: no syscall, nothing held in the kernel), at
//! most once per `every` and never more than half of its time, and publishes
//! a `Snapshot`. Readers (`adm -L`, `ctl status`, metrics, the drain sweep)
//! take the latest one at once and show its age.
//!
//! A way idle beyond its timeout is already free for the XDP program; the
//! scan empties it (its tag, if unchanged since read), so that new flows
//! find an empty way in the bucket's tags without reading the slots. While no
//! daemon runs nothing is emptied and new flows take idle ways themselves.
//! A bucket full of live flows sends its new flows by the ring unrecorded
//! (`forwarded_untracked`); a table at its size is logged.

use std::{
    collections::HashMap,
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{Array, MapData};
use lb_common::{Binding, DataplaneConfig, FLOW_CLOSING, FlowKey};
use log::{debug, info, warn};
use tokio::sync::watch;

use super::flow_table::FlowTable;

/// The scanning thread's nice value.
const SCAN_NICE: libc::c_int = 10;

/// One real's flows, as ipvsadm counts them for DR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealFlows {
    /// No FIN or RST seen.
    pub active: u64,
    /// A FIN or RST seen.
    pub inactive: u64,
    /// Active and within its idle timeout: what a draining real waits for.
    pub live: u64,
}

/// The flow table as one scan saw it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// By `REALS` index.
    pub by_real: HashMap<u32, RealFlows>,
    /// Flows the data plane follows (idle ones not counted).
    pub entries: u64,
    /// Idle flows the scan emptied from their ways.
    pub expired: u64,
    /// When the scan began: every flow older than this was counted.
    pub started: Instant,
    pub took: Duration,
}

impl Snapshot {
    pub fn real(&self, index: u32) -> RealFlows {
        self.by_real.get(&index).copied().unwrap_or_default()
    }
}

/// Whether a flow idle beyond its timeout (`config`, as the XDP program
/// judges it) at `now_ns`: gone for the data plane. `now_ns` and
/// `last_seen_ns` are CLOCK_MONOTONIC_COARSE.
pub fn expired(key: &FlowKey, b: &Binding, now_ns: u64, config: &DataplaneConfig) -> bool {
    // Touched after the scan took its clock: fresh, not (wrapping) old.
    let touched_since = now_ns.wrapping_sub(b.last_seen_ns) > u64::MAX / 2;
    !touched_since && config.idle_out(key.proto, b.flags, b.last_seen_ns, now_ns)
}

/// Counts a flow the data plane follows.
pub fn tally(counts: &mut HashMap<u32, RealFlows>, b: &Binding) {
    let c = counts.entry(b.real).or_default();
    if b.flags & FLOW_CLOSING != 0 {
        c.inactive += 1;
    } else {
        c.active += 1;
        c.live += 1;
    }
}

/// The clock the XDP program stamps flows with (`bpf_ktime_get_coarse_ns`).
pub(crate) fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// Reads every way of `table`, counts its flows and empties the idle ones.
pub fn scan(table: &FlowTable, config: &DataplaneConfig) -> Snapshot {
    let started = Instant::now();
    let now_ns = coarse_now_ns();
    let mut by_real = HashMap::new();
    let (mut entries, mut emptied) = (0u64, 0u64);
    for w in table.ways() {
        if expired(&w.key, &w.binding, now_ns, config) {
            emptied += u64::from(table.clear_if(w.bucket, w.way, w.tag));
        } else {
            tally(&mut by_real, &w.binding);
            entries += 1;
        }
    }
    Snapshot {
        by_real,
        entries,
        expired: emptied,
        started,
        took: started.elapsed(),
    }
}

/// The latest snapshot, `None` until the first scan has finished.
pub type Latest = watch::Receiver<Option<Arc<Snapshot>>>;

/// The running scanner: its snapshots, and whether a scan is under way.
pub struct Scanner {
    pub latest: Latest,
    scanning: Arc<AtomicBool>,
}

impl Scanner {
    /// Starts the thread that scans `table` every `every` (or, when one scan
    /// takes longer than that, pauses as long as it took). It stops when the
    /// `Scanner` is dropped.
    /// Each scan reads the timeouts from `config` (the `CONFIG` map).
    pub fn spawn(
        table: Arc<FlowTable>,
        config: Array<MapData, DataplaneConfig>,
        every: Duration,
    ) -> io::Result<Self> {
        let capacity = table.capacity();
        let (tx, latest) = watch::channel(None);
        let scanning = Arc::new(AtomicBool::new(false));
        let flag = scanning.clone();
        std::thread::Builder::new()
            .name("flow-scan".into())
            .spawn(move || {
                // Background work: the control loop and the health checks
                // come first when the CPUs are busy. Linux's nice is per thread.
                // SAFETY: setpriority on this thread's own id.
                let tid = unsafe { libc::gettid() } as libc::id_t;
                // SAFETY: as above; a failure only leaves the default priority.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, SCAN_NICE) } != 0 {
                    debug!("flow scan: setpriority: {}", io::Error::last_os_error());
                }
                let mut last_error = None;
                let mut full = false;
                while !tx.is_closed() {
                    flag.store(true, Ordering::Relaxed);
                    let result = config
                        .get(&0, 0)
                        .map_err(io::Error::other)
                        .map(|c| scan(&table, &c));
                    flag.store(false, Ordering::Relaxed);
                    let pause = match result {
                        Ok(s) => {
                            debug!(
                                "flow scan: {} flows, {} idle emptied, in {:.1?}",
                                s.entries, s.expired, s.took
                            );
                            last_error = None;
                            // Said when it fills up and when it has room again.
                            let now_full = s.entries >= u64::from(capacity);
                            if now_full != full {
                                if now_full {
                                    warn!(
                                        "the flow table holds the {capacity} flows it is sized \
                                         for: more and more new flows find their bucket full \
                                         and are forwarded by the ring but not recorded \
                                         (forwarded_untracked); raise xdpvs_max_flows"
                                    );
                                } else {
                                    info!("the flow table has room again");
                                }
                                full = now_full;
                            }
                            let pause = every.max(s.took);
                            tx.send_replace(Some(Arc::new(s)));
                            pause
                        }
                        Err(e) => {
                            // Said once per kind of failure, not every round.
                            let text = e.to_string();
                            if last_error.as_ref() != Some(&text) {
                                warn!("reading the flow table: {text}; keeping the last counts");
                            }
                            last_error = Some(text);
                            every
                        }
                    };
                    std::thread::sleep(pause);
                }
            })?;
        Ok(Self { latest, scanning })
    }

    /// The latest snapshot, if a scan has finished.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.latest.borrow().clone()
    }

    /// Whether a scan is reading the table now.
    pub fn scanning(&self) -> bool {
        self.scanning.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(real: u32, flags: u32, last_seen_ns: u64) -> Binding {
        Binding {
            real,
            flags,
            last_seen_ns,
        }
    }

    fn key(proto: u8) -> FlowKey {
        FlowKey {
            proto,
            family: lb_common::FAMILY_V4,
            ..FlowKey::default()
        }
    }

    #[test]
    fn tally_counts_what_the_data_plane_still_follows() {
        // tcp 60 s, tcpfin 10 s, udp 30 s.
        let config = DataplaneConfig {
            tcp_timeout_s: 60,
            tcpfin_timeout_s: 10,
            udp_timeout_s: 30,
            ..DataplaneConfig::default()
        };
        let s = 1_000_000_000u64;
        let now = 1000 * s;
        let (tcp, udp) = (key(lb_common::PROTO_TCP), key(lb_common::PROTO_UDP));
        let entries = [
            (tcp, binding(0, 0, now)),
            (tcp, binding(0, 0, now - 59 * s)),
            (tcp, binding(0, 0, now - 61 * s)), // idle out: not counted
            (tcp, binding(0, FLOW_CLOSING, now - 9 * s)),
            (tcp, binding(0, FLOW_CLOSING, now - 11 * s)), // idle out
            (udp, binding(1, 0, now - 29 * s)),
            (udp, binding(1, 0, now - 31 * s)), // idle out
            (tcp, binding(1, 0, now + 5)),      // touched after the scan began
        ];
        let mut counts = HashMap::new();
        let mut gone = 0;
        for (k, b) in &entries {
            if expired(k, b, now, &config) {
                gone += 1;
            } else {
                tally(&mut counts, b);
            }
        }
        assert_eq!(gone, 3, "the idle ones are to be emptied");
        assert_eq!(
            counts[&0],
            RealFlows {
                active: 2,
                inactive: 1,
                live: 2
            }
        );
        assert_eq!(
            counts[&1],
            RealFlows {
                active: 2,
                inactive: 0,
                live: 2
            }
        );
    }

    #[test]
    fn nothing_expires_near_a_fresh_boot() {
        // Just after boot the clock is below every timeout.
        let config = DataplaneConfig::default();
        let tcp = key(lb_common::PROTO_TCP);
        assert!(!expired(&tcp, &binding(3, 0, 0), 1_000, &config));
    }

    /// The XDP object's own flow table, filled with `n` flows over three
    /// reals (one in four closing) and `idle` flows idle beyond the TCP
    /// timeout, read through its mapping: the idle ones are emptied, not
    /// counted, and a way rewritten meanwhile is not emptied.
    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn scan_counts_every_flow_of_a_large_table_root() {
        use aya::maps::Map;

        use crate::dataplane::{loader, pin};
        let object = loader::embedded_object().expect("built by `cargo xtask test`");
        let n: u32 = 100_000;
        let sizes = loader::Sizes {
            flows: 2 * n,
            ..loader::Sizes::default()
        };
        // The loader pins every map; a directory of this test's own.
        let pins = pin::bpffs()
            .unwrap()
            .join(format!("xdpvs-scan-test-{}", std::process::id()));
        std::fs::create_dir_all(&pins).unwrap();
        let ebpf = loader::load(object, sizes, &pins, loader::TcSend::Egress).unwrap();
        let _ = std::fs::remove_dir_all(&pins);
        let fd = match ebpf.map(lb_common::maps::FLOWS).expect("FLOWS") {
            Map::Array(d) => {
                use std::os::fd::AsFd as _;
                d.fd().as_fd().try_clone_to_owned().unwrap()
            }
            _ => panic!("FLOWS is not an array"),
        };
        let table = FlowTable::map(fd).unwrap();
        assert!(table.capacity() >= 2 * n);
        let config = DataplaneConfig::default();
        let empty = scan(&table, &config);
        assert_eq!((empty.entries, empty.expired), (0, 0));
        let now = coarse_now_ns();
        let key = |i: u32, vip: u32| FlowKey {
            src: [i.to_be(), 0, 0, 0],
            dst: [vip, 0, 0, 0],
            sport: 1000,
            dport: 80,
            proto: lb_common::PROTO_TCP,
            family: lb_common::FAMILY_V4,
            _pad: [0; 2],
        };
        let mut stored = 0;
        for i in 0..n {
            let flags = if i % 4 == 0 { FLOW_CLOSING } else { 0 };
            let b = binding(i % 3, flags, now);
            stored += u32::from(table.insert_absent(&key(i, 0x0a00_0064), &b, &config, now));
        }
        // At half the table's size a bucket is seldom full.
        assert!(stored > n * 99 / 100, "{stored} of {n} stored");
        let idle = 20_000;
        // Wrapping, as the data plane judges stamps near a fresh boot.
        let long_ago =
            now.wrapping_sub(u64::from(lb_common::DEFAULT_TCP_TIMEOUT_S + 1) * 1_000_000_000);
        let mut idle_stored = 0;
        for i in 0..idle {
            let b = binding(1, 0, long_ago);
            idle_stored += u32::from(table.insert_absent(&key(i, 0x0a00_0065), &b, &config, now));
        }
        assert!(idle_stored > idle * 99 / 100);
        // An idle flow is free: a later one may have taken its way.
        let idle_present = table.ways().count() as u64 - u64::from(stored);
        assert!(idle_present > u64::from(idle) * 99 / 100);
        let s = scan(&table, &config);
        assert_eq!(s.entries, u64::from(stored), "every live flow counted");
        assert_eq!(s.expired, idle_present, "every idle flow emptied");
        assert_eq!(table.get(&key(7, 0x0a00_0065)), None, "gone from the table");
        assert_eq!(table.ways().count(), stored as usize);
        let again = scan(&table, &config);
        assert_eq!((again.entries, again.expired), (u64::from(stored), 0));
        let total: u64 = s.by_real.values().map(|c| c.active + c.inactive).sum();
        assert_eq!(total, u64::from(stored));
        assert_eq!(s.real(1).live, s.real(1).active);
        assert_eq!(s.real(7), RealFlows::default());
        // A live flow is never overwritten by flow sync; an idle one is.
        let live = key(8, 0x0a00_0064);
        let before = table.get(&live);
        assert!(before.is_some());
        assert!(!table.insert_absent(&live, &binding(2, 0, now), &config, now));
        assert_eq!(table.get(&live), before);
        // A way rewritten after the scan read it survives the emptying.
        let w = table.ways().next().unwrap();
        assert!(!table.clear_if(w.bucket, w.way, w.tag ^ 1), "another tag");
        assert!(table.way(w.bucket, w.way).is_some());
        assert!(table.clear_if(w.bucket, w.way, w.tag));
        assert!(table.way(w.bucket, w.way).is_none());
    }
}
