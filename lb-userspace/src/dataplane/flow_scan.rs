//! Per-real flow counts, read from the flow table off the control loop, and
//! the flow table's garbage collection.
//!
//! With a million flows, walking `FLOWS` one key at a time takes seconds; done
//! on the daemon's loop, health verdicts, MAC changes and signals would wait
//! for it. Instead a thread of its own reads the whole table with
//! `BPF_MAP_LOOKUP_BATCH` (thousands of entries per syscall), at most once per
//! `every` and never more than half of its time, and publishes a `Snapshot`.
//! Readers (`adm -L`, `ctl status`, metrics, the drain sweep) take the latest
//! one at once and show its age.
//!
//! `FLOWS` is a plain hash, not an LRU (a new flow costs the data plane much
//! less to insert), so nothing in the kernel ages it: each scan deletes the
//! entries the XDP program already treats as absent (idle beyond their
//! timeout), Cilium's conntrack GC. A packet that refreshes such an entry
//! between the scan's read and its delete loses the refresh: its next packet
//! is decided again, by persistence or the ring, and recorded anew. While no
//! daemon runs nothing is deleted: the data plane keeps forwarding, idle
//! entries are overwritten in place by their own tuple, and once the table is
//! full new flows go by the ring unrecorded (`forwarded_untracked`) until a
//! daemon scans again. A full table is logged.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
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

use super::batch::{self, BPF_MAP_DELETE_BATCH, BPF_MAP_LOOKUP_BATCH, BatchAttr};

/// Entries per `BPF_MAP_LOOKUP_BATCH`. One call copies its batch without
/// rescheduling (about 250 ns an entry here), and on a kernel without
/// preemption (`PREEMPT_NONE`, the default of many) nothing else runs on
/// that CPU meanwhile, whatever the thread's nice value: 16k entries held a
/// CPU for 4 ms, delaying the clients and servers beside the balancer.
/// 1024 keeps each call near 0.3 ms at the same total cost.
const CHUNK: usize = 1024;

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
    /// Entries left after the scan's deletions.
    pub entries: u64,
    /// Idle entries the scan deleted.
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

/// Adds the entries to `counts`. `now_ns` and `last_seen_ns` are
/// CLOCK_MONOTONIC_COARSE. An entry idle beyond its timeout (`config`, as
/// the XDP program judges it) is gone for the data plane: not counted, and
/// its key goes to `expired`.
pub fn tally(
    counts: &mut HashMap<u32, RealFlows>,
    expired: &mut Vec<FlowKey>,
    keys: &[FlowKey],
    bindings: &[Binding],
    now_ns: u64,
    config: &DataplaneConfig,
) {
    for (k, b) in keys.iter().zip(bindings) {
        // Touched after the scan took its clock: fresh, not (wrapping) old.
        let touched_since = now_ns.wrapping_sub(b.last_seen_ns) > u64::MAX / 2;
        if !touched_since && config.idle_out(k.proto, b, now_ns) {
            expired.push(*k);
            continue;
        }
        let c = counts.entry(b.real).or_default();
        if b.flags & FLOW_CLOSING != 0 {
            c.inactive += 1;
        } else {
            c.active += 1;
            c.live += 1;
        }
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

/// Hands every entry of the flow table `map` (a hash of `FlowKey` to
/// `Binding`) to `f`, a batch of up to `CHUNK` at a time.
pub fn each_batch(
    map: BorrowedFd<'_>,
    mut f: impl FnMut(&[FlowKey], &[Binding]),
) -> io::Result<()> {
    let mut keys = vec![FlowKey::default(); CHUNK];
    let mut values = vec![Binding::default(); CHUNK];
    // Batch tokens: the hash table's is a bucket number; sized as a key, as
    // the kernel documents for any map.
    let mut tokens = [FlowKey::default(); 2];
    let mut first = true;
    loop {
        let (token_in, token_out) = tokens.split_at_mut(1);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: keys and values hold CHUNK entries of the map's key and
        // value sizes; both tokens are key-sized.
        let result = unsafe { batch::call(BPF_MAP_LOOKUP_BATCH, &mut attr) };
        let got = (attr.count as usize).min(CHUNK);
        match result {
            Ok(()) => {}
            // The end of the table; the last entries come with it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                f(&keys[..got], &values[..got]);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        f(&keys[..got], &values[..got]);
        tokens[0] = tokens[1];
        first = false;
    }
}

/// Deletes `keys` from the flow table `map`, in batches; returns how many
/// were there. A key already gone is skipped (the kernel stops a batch there).
pub fn delete(map: BorrowedFd<'_>, keys: &[FlowKey]) -> io::Result<u64> {
    let (mut done, mut deleted) = (0usize, 0u64);
    while done < keys.len() {
        let rest = &keys[done..];
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: rest.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `keys` holds `count` keys of the map's key size; no values.
        let result = unsafe { batch::call(BPF_MAP_DELETE_BATCH, &mut attr) };
        let gone = (attr.count as usize).min(rest.len());
        deleted += gone as u64;
        done += gone;
        match result {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => done += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Reads every entry of the flow table `map` in batches, counts them and
/// deletes those idle beyond their timeout.
pub fn scan(map: BorrowedFd<'_>, config: &DataplaneConfig) -> io::Result<Snapshot> {
    let started = Instant::now();
    let now_ns = coarse_now_ns();
    let mut by_real = HashMap::new();
    let (mut entries, mut expired) = (0u64, 0u64);
    let mut idle = Vec::new();
    let mut deleting = Ok(());
    each_batch(map, |keys, values| {
        tally(&mut by_real, &mut idle, keys, values, now_ns, config);
        entries += keys.len() as u64;
        // Deleting behind the walk (the hash's batches go bucket by bucket)
        // keeps the list one batch long.
        if deleting.is_ok() && !idle.is_empty() {
            deleting = delete(map, &idle).map(|n| expired += n);
        }
        idle.clear();
    })?;
    deleting?;
    Ok(Snapshot {
        by_real,
        entries: entries - expired,
        expired,
        started,
        took: started.elapsed(),
    })
}

/// The latest snapshot, `None` until the first scan has finished.
pub type Latest = watch::Receiver<Option<Arc<Snapshot>>>;

/// The running scanner: its snapshots, and whether a scan is under way.
pub struct Scanner {
    pub latest: Latest,
    scanning: Arc<AtomicBool>,
}

impl Scanner {
    /// Starts the thread that scans `map` every `every` (or, when one scan
    /// takes longer than that, pauses as long as it took). It stops when the
    /// `Scanner` is dropped.
    /// Each scan reads the timeouts from `config` (the `CONFIG` map).
    pub fn spawn(
        map: OwnedFd,
        config: Array<MapData, DataplaneConfig>,
        every: Duration,
    ) -> io::Result<Self> {
        let capacity = MapData::from_fd(map.try_clone()?)
            .and_then(|m| m.info())
            .map_err(io::Error::other)?
            .max_entries();
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
                        .and_then(|c| scan(map.as_fd(), &c));
                    flag.store(false, Ordering::Relaxed);
                    let pause = match result {
                        Ok(s) => {
                            debug!(
                                "flow scan: {} entries, {} idle deleted, in {:.1?}",
                                s.entries, s.expired, s.took
                            );
                            last_error = None;
                            // Said when it fills up and when it has room again.
                            let now_full = s.expired == 0 && s.entries >= u64::from(capacity);
                            if now_full != full {
                                if now_full {
                                    warn!(
                                        "the flow table is full ({capacity} flows, none idle): \
                                         new flows are forwarded by the ring but not recorded \
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
        let (keys, bindings): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
        let (mut counts, mut expired) = (HashMap::new(), Vec::new());
        tally(&mut counts, &mut expired, &keys, &bindings, now, &config);
        assert_eq!(expired.len(), 3, "the idle ones are to be deleted");
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
    fn tally_at_any_uptime() {
        // Just after boot the clock is below every timeout.
        let mut counts = HashMap::new();
        let config = DataplaneConfig::default();
        tally(
            &mut counts,
            &mut Vec::new(),
            &[key(lb_common::PROTO_TCP)],
            &[binding(3, 0, 0)],
            1_000,
            &config,
        );
        assert_eq!(counts[&3].live, 1);
    }

    /// The XDP object's own flow table, filled with `n` flows over three
    /// reals (one in four closing) and `idle` flows idle beyond the TCP
    /// timeout, scanned in batches: the idle ones are deleted, not counted.
    #[test]
    #[ignore = "needs root: run by `cargo xtask test`"]
    fn scan_counts_every_entry_of_a_large_table_root() {
        use aya::maps::{HashMap as BpfHash, Map, MapData};

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
        let ebpf = loader::load(object, sizes, &pins).unwrap();
        let _ = std::fs::remove_dir_all(&pins);
        let fd = match ebpf.map(lb_common::maps::FLOWS).expect("FLOWS") {
            Map::HashMap(d) => d.fd().as_fd().try_clone_to_owned().unwrap(),
            _ => panic!("FLOWS is not a hash map"),
        };
        let config = DataplaneConfig::default();
        let empty = scan(fd.as_fd(), &config).unwrap();
        assert_eq!(empty.entries, 0, "an empty table ends at once");
        let data = MapData::from_fd(fd.try_clone().unwrap()).unwrap();
        let mut flows: BpfHash<MapData, FlowKey, Binding> =
            BpfHash::try_from(Map::HashMap(data)).unwrap();
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
        for i in 0..n {
            let flags = if i % 4 == 0 { FLOW_CLOSING } else { 0 };
            flows
                .insert(key(i, 0x0a00_0064), binding(i % 3, flags, now), 0)
                .unwrap();
        }
        let idle = 20_000;
        // Wrapping, as the data plane judges stamps near a fresh boot.
        let long_ago =
            now.wrapping_sub(u64::from(lb_common::DEFAULT_TCP_TIMEOUT_S + 1) * 1_000_000_000);
        for i in 0..idle {
            flows
                .insert(key(i, 0x0a00_0065), binding(1, 0, long_ago), 0)
                .unwrap();
        }
        let s = scan(fd.as_fd(), &config).unwrap();
        assert_eq!(s.entries, u64::from(n), "more than one batch, every entry");
        assert_eq!(s.expired, u64::from(idle), "every idle entry deleted");
        assert!(
            flows.get(&key(7, 0x0a00_0065), 0).is_err(),
            "gone from the table"
        );
        assert_eq!(flows.keys().count(), n as usize);
        let again = scan(fd.as_fd(), &config).unwrap();
        assert_eq!((again.entries, again.expired), (u64::from(n), 0));
        // A key already gone is skipped, the rest still deleted.
        let (gone, there) = (key(7, 0x0a00_0065), key(7, 0x0a00_0064));
        assert_eq!(delete(fd.as_fd(), &[gone, there, gone]).unwrap(), 1);
        assert!(flows.get(&there, 0).is_err());
        flows.insert(there, binding(7 % 3, 0, now), 0).unwrap();
        let total: u64 = s.by_real.values().map(|c| c.active + c.inactive).sum();
        assert_eq!(total, u64::from(n));
        let closing = (0..n).filter(|i| i % 4 == 0 && i % 3 == 1).count() as u64;
        assert_eq!(s.real(1).inactive, closing);
        let of_real_1 = (0..n).filter(|i| i % 3 == 1).count() as u64;
        assert_eq!(s.real(1).active, of_real_1 - closing);
        assert_eq!(s.real(1).live, s.real(1).active);
        assert_eq!(s.real(7), RealFlows::default());
    }
}
