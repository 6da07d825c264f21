//! Data-plane benchmark: what the xdpvs XDP program costs in the kernel
//! (`BPF_PROG_TEST_RUN`), as nanoseconds *added* over a bare MAC-swap
//! `XDP_TX` program (the least a direct-routing forwarder can do) on the same
//! frames, measured the same way in the same run. Needs root.
//!
//! Fair to every program: each call runs one frame once (repeat 1), because
//! the program changes the frame and its state (a repeated run would see the
//! frame the previous run rewrote, and a new flow only once); the kernel
//! reports the duration of that one run. Each figure is the mean over many
//! calls, and the median of three rounds (`XDPVS_BENCH_ROUNDS`) in which the
//! baseline and xdpvs alternate, in each of three placements
//! (`XDPVS_BENCH_LOADS`). New flows are measured at several fills of the flow
//! table. The flood guard is off (the bench writes no `CONFIG`), so it is
//! never hit.
//!
//! The tc program (`xdpvs_tc`, what `--xdp-mode auto` runs on veth) is
//! measured the same way, every case, beside a tc MAC-swap that writes the
//! MACs and redirects as it does, and for the packet for no service beside a
//! tc program that passes it (no goals: the issue's are the XDP program's).
//!
//! Objects: `XDPVS_EBPF_OBJECT`, `XDPVS_BASELINE_OBJECT` and
//! `XDPVS_TC_BASELINE_OBJECT`, defaulting to the release build under
//! `target/ebpf`. `XDPVS_BENCH_FLOW_ENTRIES`: load the flow
//! table with this many entries (fills are still counted against the default),
//! to try other table shapes.
//!
//! A placement is one load of both programs and their maps: where the maps
//! land in memory moves the same-frame figures by several ns, and a new
//! flow's by tens, from one load to the next. So each figure is the median
//! over several placements; compare objects over several runs each all the
//! same.

use std::{net::Ipv4Addr, time::Instant};

use anyhow::{Context as _, Result, bail};
use aya::{Ebpf, EbpfLoader, maps::Array};
use lb_common::{
    FAMILY_V4, FLOW_CACHE_SIZE, FlowKey, MAX_FLOWS, PROTO_TCP, REAL_UP, RING_SIZE, Real, Service,
    ServiceKey, flow_buckets, flow_cache_entries_here, flow_cache_slot,
    flow_table::{FLOW_BUCKETS, flow_lines},
    maps, rings_of, vip_filter_bit,
};
use tests::{
    hook::{Hook, XDP_PASS, XDP_TX},
    packet::{IPPROTO_TCP, Ipv4, TCP_ACK, TCP_FIN, TCP_SYN, frame, tcp},
    report::{Report, loadavg, median},
};

/// Flows of the "established flows in turn (cold)" case: half the flow
/// cache's slots, lines (cache and `FLOWS`) far beyond what this CPU's
/// caches keep between two packets of one flow; measured over
/// `COLD_PASSES` passes.
const COLD_FLOWS: usize = FLOW_CACHE_SIZE as usize / 2;
const COLD_PASSES: u32 = 4;

/// Frames of the mutation run (the kernel test runs 200,000).
const MUTATED_FRAMES: u64 = 1_000_000;
const REALS: u32 = 64;

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

/// Where the source address and port of `packet`'s frames sit.
const SRC_ADDR_AT: usize = 14 + 12;
const SRC_PORT_AT: usize = 14 + 20;

/// Goals (issue 10), in ns added over MAC-swap.
const GOAL_ESTABLISHED_NS: f64 = 15.0;
const GOAL_NOT_SERVICE_NS: f64 = 15.0;
const GOAL_NEW_FLOW_NS: f64 = 250.0;
/// New-flow cost at the fullest fill over the emptiest.
const GOAL_FILL_RATIO: f64 = 1.2;

struct Settings {
    /// Placements (`XDPVS_BENCH_LOADS`, default 3): both programs loaded
    /// afresh each time, since where their maps land moves the figures.
    loads: usize,
    /// Interleaved rounds per figure and placement (`XDPVS_BENCH_ROUNDS`,
    /// default 3: each new-flow round adds `new_calls` flows to the fill it
    /// measures).
    rounds: usize,
    /// Calls per figure per round, same-frame cases.
    calls: u32,
    /// Calls per figure per round, new flows (each adds a flow: small
    /// beside the table, so a fill stays what it says).
    new_calls: u32,
    /// Flow table size the object is loaded with.
    flows: u32,
    /// Fills of the flow table at which new flows are measured, in percent.
    /// The emptiest is 2%, not 0: the first tens of thousands of SYNs after
    /// a load pay a cold start a running balancer does not (measured: +256
    /// and +278 ns at 0%, +226 after 20,000 SYNs, as at 10%; not isolated,
    /// likely the table's page-table lines), and 2% is that many SYNs.
    fills: &'static [u32],
}

fn settings() -> Settings {
    let count = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&r| r > 0)
            .unwrap_or(default)
    };
    Settings {
        loads: count("XDPVS_BENCH_LOADS", 3),
        rounds: count("XDPVS_BENCH_ROUNDS", 3),
        calls: 100_000,
        new_calls: 10_000,
        flows: MAX_FLOWS,
        fills: &[2, 10, 50, 80],
    }
}

fn object(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        format!(
            "{}/../target/ebpf/bpfel-unknown-none/release/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

fn load(path: &str, hook: Hook, program: &str, flows: Option<u32>) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    loader.map_max_entries(maps::FLOW_CACHE, flow_cache_entries_here()?);
    let buckets;
    if let Some(flows) = flows {
        buckets = flow_buckets(flows);
        loader
            .map_max_entries(maps::FLOWS, flow_lines(buckets))
            .override_global(FLOW_BUCKETS, &buckets, true);
    }
    let mut ebpf = loader
        .load_file(path)
        .with_context(|| format!("loading {path} (build it with `cargo xtask build-ebpf`)"))?;
    hook.load_program(&mut ebpf, program)
        .with_context(|| format!("loading {program} of {path} into the kernel"))?;
    Ok(ebpf)
}

/// A loaded program to time.
struct Prog<'a> {
    ebpf: &'a Ebpf,
    hook: Hook,
    name: &'a str,
}

/// One run of one frame: the kernel-reported duration in ns.
fn run_once(prog: &Prog, packet: &[u8], out: &mut [u8], want: u32) -> Result<u64> {
    let r = prog.hook.run_program(prog.ebpf, prog.name, packet, out)?;
    if r.verdict != want {
        bail!(
            "{}: verdict {} where {want} was expected",
            prog.name,
            r.verdict
        );
    }
    Ok(r.duration.as_nanos() as u64)
}

/// Distinct SYNs: frame `n` comes from its own (address, port).
struct Frames {
    template: Vec<u8>,
}

impl Frames {
    /// The source address and port of frame `n`.
    fn source(n: u32) -> (Ipv4Addr, u16) {
        (Ipv4Addr::from(u32::from(CLIENT) + (n >> 16)), n as u16)
    }

    fn nth(&self, n: u32, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&self.template);
        let (addr, port) = Self::source(n);
        buf[SRC_ADDR_AT..SRC_ADDR_AT + 4].copy_from_slice(&addr.octets());
        buf[SRC_PORT_AT..SRC_PORT_AT + 2].copy_from_slice(&port.to_be_bytes());
    }

    /// The flow key of frame `n` of a template to VIP:80/TCP, as the
    /// program builds it.
    fn key(n: u32) -> FlowKey {
        let (addr, port) = Self::source(n);
        FlowKey {
            src: [u32::from_ne_bytes(addr.octets()), 0, 0, 0],
            dst: [u32::from_ne_bytes(VIP.octets()), 0, 0, 0],
            sport: port.to_be(),
            dport: 80u16.to_be(),
            proto: PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        }
    }
}

/// Mean ns per call of `prog` over frames `first..first + count`.
fn mean_distinct(prog: &Prog, frames: &Frames, first: u32, count: u32, want: u32) -> Result<f64> {
    let (mut buf, mut out) = (Vec::new(), vec![0u8; frames.template.len() + 256]);
    let mut total = 0u64;
    for n in first..first + count {
        frames.nth(n, &mut buf);
        total += run_once(prog, &buf, &mut out, want)?;
    }
    Ok(total as f64 / f64::from(count))
}

/// Mean ns per call of `prog` over frames `list`, in turn, `passes` times.
fn mean_listed(prog: &Prog, frames: &Frames, list: &[u32], passes: u32, want: u32) -> Result<f64> {
    let (mut buf, mut out) = (Vec::new(), vec![0u8; frames.template.len() + 256]);
    let mut total = 0u64;
    for _ in 0..passes {
        for &n in list {
            frames.nth(n, &mut buf);
            total += run_once(prog, &buf, &mut out, want)?;
        }
    }
    Ok(total as f64 / (f64::from(passes) * list.len() as f64))
}

/// The first `count` frames from `first` on (see [`Frames::nth`]) whose
/// flows take distinct flow cache slots, so that each stays cached.
fn distinct_slots(first: u32, count: usize) -> Vec<u32> {
    let mut taken = vec![false; FLOW_CACHE_SIZE as usize];
    let mut list = Vec::with_capacity(count);
    let mut n = first;
    while list.len() < count {
        let key = Frames::key(n);
        let slot = &mut taken[flow_cache_slot(&key.words()) as usize];
        if !*slot {
            *slot = true;
            list.push(n);
        }
        n += 1;
    }
    list
}

/// Mean ns per call of `prog` over `count` calls with the same frame.
fn mean_same(prog: &Prog, packet: &[u8], count: u32, want: u32) -> Result<f64> {
    let mut out = vec![0u8; packet.len() + 256];
    let mut total = 0u64;
    for _ in 0..count {
        total += run_once(prog, packet, &mut out, want)?;
    }
    Ok(total as f64 / f64::from(count))
}

/// One figure: the baseline's and xdpvs's mean per round.
#[derive(Default)]
struct Figure {
    base: Vec<f64>,
    lb: Vec<f64>,
}

impl Figure {
    fn push(&mut self, base: f64, lb: f64) {
        self.base.push(base);
        self.lb.push(lb);
    }
    fn base(&self) -> f64 {
        median(self.base.clone())
    }
    fn lb(&self) -> f64 {
        median(self.lb.clone())
    }
    /// The median over rounds of the cost added in that round.
    fn added(&self) -> f64 {
        median(self.lb.iter().zip(&self.base).map(|(l, b)| l - b).collect())
    }
    /// How far the baseline moved between rounds: a busy machine shows here.
    fn base_spread(&self) -> f64 {
        let max = self.base.iter().copied().fold(f64::MIN, f64::max);
        let min = self.base.iter().copied().fold(f64::MAX, f64::min);
        max / min
    }
}

/// One VIP:80/TCP service whose ring spreads over `REALS` reals.
fn configure(lb: &mut Ebpf) -> Result<()> {
    let mut reals: Array<_, Real> = Array::try_from(lb.map_mut(maps::REALS).context("REALS")?)?;
    for r in 1..=REALS {
        let mac = [0x02, 0, 0, 0, 0x01, r as u8];
        reals.set(
            r,
            Real {
                mac,
                flags: REAL_UP,
                service: 0,
            },
            0,
        )?;
    }
    let ring = rings_of(0)[0];
    let mut rings: Array<_, u32> = Array::try_from(lb.map_mut(maps::RINGS).context("RINGS")?)?;
    for i in 0..RING_SIZE {
        rings.set(ring * RING_SIZE + i, 1 + i % REALS, 0)?;
    }
    let key = ServiceKey {
        addr: [u32::from_ne_bytes(VIP.octets()), 0, 0, 0],
        port: 80u16.to_be(),
        proto: PROTO_TCP,
        family: FAMILY_V4,
    };
    // Objects from before the VIP filter have no such map.
    if let Some(map) = lb.map_mut(maps::VIP_FILTER) {
        let mut filter: Array<_, u64> = Array::try_from(map)?;
        let (word, bit) = vip_filter_bit(&key.addr);
        filter.set(word, bit, 0)?;
    }
    tests::services::put(
        lb,
        key,
        Service {
            id: 0,
            ring,
            persist_timeout_s: 0,
        },
    )
}

fn packet(src: Ipv4Addr, dst: Ipv4Addr, flags: u8) -> Vec<u8> {
    let seg = tcp(src.into(), dst.into(), 40000, 80, flags, &[0; 18]);
    frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv4::new(src, dst, IPPROTO_TCP).build(&seg),
    )
}

/// The buffer [`memory_latency_ns`] reads: larger than the last-level cache
/// and than the TLB's reach, as the flow table is.
const LATENCY_BYTES: usize = 256 << 20;

/// ns per load of a chase through a random cycle over `LATENCY_BYTES`:
/// each load waits for the last, as a new flow's reads of the flow table do.
/// The MAC-swap baseline touches no such memory, so a host whose memory is
/// contended shows here and not there.
fn memory_latency_ns() -> f64 {
    let slots = LATENCY_BYTES / 8;
    let mut next: Vec<u64> = (0..slots as u64).collect();
    // Sattolo's shuffle: a single cycle through every slot.
    let mut rng = tests::mutate::Rng::new(0x1a7e_0c11);
    for i in (1..slots).rev() {
        let j = (rng.next_u64() % i as u64) as usize;
        next.swap(i, j);
    }
    const STEPS: u32 = 2_000_000;
    let mut at = 0usize;
    let started = Instant::now();
    for _ in 0..STEPS {
        at = next[at] as usize;
    }
    std::hint::black_box(at);
    started.elapsed().as_nanos() as f64 / f64::from(STEPS)
}

/// Pins the calling thread to `cpu`, so that `BPF_PROG_TEST_RUN` runs there
/// (the flow cache is per CPU).
fn pin_to(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// One hook's figures, over all placements and rounds.
#[derive(Default)]
struct Figures {
    est: Figure,
    /// An established flow's packet that misses the flow cache: a lookup
    /// in the flow table that finds the flow (no goal: the issue sets none).
    uncached: Figure,
    /// Packets of cached flows in turn, `COLD_FLOWS` of them: each finds
    /// its lines as the lab's short connections do, evicted since (no goal).
    cached_cold: Figure,
    /// The client's FIN of a cached flow, which marks the flow closing in
    /// the flow table (no goal).
    fin: Figure,
    other: Figure,
    /// By fill, in percent.
    new_flows: Vec<(u32, Figure)>,
}

/// A hook's program and its baselines.
struct Programs {
    /// xdpvs's program is this hook's (`Hook::program`).
    hook: Hook,
    baselines: (&'static str, &'static str),
    /// The least a forwarder does: the baseline of forwarded cases.
    send: &'static str,
    /// The baseline of the packet for no service, and its verdict: for XDP
    /// the MAC-swap too (it costs as little as passing), for tc a program
    /// that passes (its MAC-swap pays a helper call to write).
    pass: (&'static str, u32),
}

const XDP_PROGRAMS: Programs = Programs {
    hook: Hook::Xdp,
    baselines: ("XDPVS_BASELINE_OBJECT", "mac-swap"),
    send: "mac_swap",
    pass: ("mac_swap", XDP_TX),
};

const TC_PROGRAMS: Programs = Programs {
    hook: Hook::Tc,
    baselines: ("XDPVS_TC_BASELINE_OBJECT", "tc-mac-swap"),
    send: "tc_mac_swap",
    pass: ("tc_pass", XDP_PASS),
};

/// One placement of `p`: xdpvs's program and its baselines loaded afresh
/// (their maps land elsewhere in memory), then every case measured in
/// `s.rounds` interleaved rounds.
fn measure(
    s: &Settings,
    p: &Programs,
    lb_path: &str,
    entries: u32,
    figures: &mut Figures,
) -> Result<()> {
    let mut lb = load(lb_path, p.hook, p.hook.program(), Some(entries))?;
    configure(&mut lb)?;
    let mut base = load(&object(p.baselines.0, p.baselines.1), p.hook, p.send, None)?;
    if p.pass.0 != p.send {
        p.hook
            .load_program(&mut base, p.pass.0)
            .with_context(|| format!("loading {}", p.pass.0))?;
    }
    let prog = |ebpf, name| Prog {
        ebpf,
        hook: p.hook,
        name,
    };
    let (lb, send, pass) = (
        prog(&lb, p.hook.program()),
        prog(&base, p.send),
        prog(&base, p.pass.0),
    );
    let (lb, base) = (&lb, &send);
    // For `bpftool prog dump xlated id N` while the bench runs.
    if let Ok(info) = lb.ebpf.program(p.hook.program()).context("program")?.info() {
        println!("  {} is program id {}", p.hook.program(), info.id());
    }

    // Established flow and node traffic: the same frame on every call.
    let established = packet(CLIENT, VIP, TCP_ACK);
    let not_service = packet(CLIENT, OTHER, TCP_ACK);
    // The same flow's FIN: the first call marks it closing, the others find
    // it so (one connection's FIN and its retransmissions).
    let fin = packet(CLIENT, VIP, TCP_FIN | TCP_ACK);
    let mut out = vec![0u8; established.len() + 256];
    // The first packet records the flow, the second fills the cache.
    run_once(lb, &established, &mut out, XDP_TX)?;
    run_once(lb, &established, &mut out, XDP_TX)?;
    for _ in 0..s.rounds {
        figures.est.push(
            mean_same(base, &established, s.calls, XDP_TX)?,
            mean_same(lb, &established, s.calls, XDP_TX)?,
        );
        figures.fin.push(
            mean_same(base, &fin, s.calls, XDP_TX)?,
            mean_same(lb, &fin, s.calls, XDP_TX)?,
        );
        figures.other.push(
            mean_same(&pass, &not_service, s.calls, p.pass.1)?,
            mean_same(lb, &not_service, s.calls, XDP_PASS)?,
        );
    }

    // New flows: distinct SYNs at each fill of the flow table. Filling runs
    // the program too (unmeasured), so the table holds what traffic leaves.
    let frames = Frames {
        template: packet(CLIENT, VIP, TCP_SYN),
    };
    let mut cursor = 0u32;
    for (fill, f) in &mut figures.new_flows {
        let target = (u64::from(s.flows) * u64::from(*fill) / 100) as u32;
        if target > cursor {
            let t = Instant::now();
            mean_distinct(lb, &frames, cursor, target - cursor, XDP_TX)?;
            println!(
                "  filled the flow table to {fill}% ({target} flows) in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            cursor = target;
        }
        for _ in 0..s.rounds {
            let b = mean_distinct(base, &frames, cursor, s.new_calls, XDP_TX)?;
            let l = mean_distinct(lb, &frames, cursor, s.new_calls, XDP_TX)?;
            f.push(b, l);
            cursor += s.new_calls;
        }
    }

    // Established flows the cache does not hold: the ACKs of the first new
    // flows, recorded at the emptiest fill, whose cache slots the hundreds
    // of thousands of SYNs since have taken, now among the fullest table's
    // lines.
    let acks = Frames {
        template: packet(CLIENT, VIP, TCP_ACK),
    };
    for round in 0..s.rounds {
        let first = round as u32 * s.new_calls;
        let b = mean_distinct(base, &acks, first, s.new_calls, XDP_TX)?;
        let l = mean_distinct(lb, &acks, first, s.new_calls, XDP_TX)?;
        figures.uncached.push(b, l);
    }

    // Cached flows in turn: new tuples' SYNs record them and fill their
    // slots, then their ACKs are measured round robin.
    let cold = distinct_slots(cursor, COLD_FLOWS);
    mean_listed(lb, &frames, &cold, 1, XDP_TX)?;
    for _ in 0..s.rounds {
        let b = mean_listed(base, &acks, &cold, COLD_PASSES, XDP_TX)?;
        let l = mean_listed(lb, &acks, &cold, COLD_PASSES, XDP_TX)?;
        figures.cached_cold.push(b, l);
    }
    Ok(())
}

/// `figures` as rows beside their baseline, with the goals when `goals`.
fn table(report: &mut Report, program: &str, baseline: &str, figures: &Figures, goals: bool) {
    report.line(format!(
        "{:<36} {baseline:>9} {program:>9} {:>9} {:>7} {:>10} {:>5}",
        "case", "added", "ratio", "goal", ""
    ));
    // `goal_ns`: `None` for a figure the issue sets no goal for.
    let row = |report: &mut Report, name: &str, f: &Figure, goal_ns: Option<f64>| {
        let (goal, met) = match goal_ns.filter(|_| goals) {
            Some(ns) => (format!("<= +{ns}"), verdict(f.added() <= ns)),
            None => ("-".into(), ""),
        };
        report.line(format!(
            "{name:<36} {:>9.1} {:>9.1} {:>+9.1} {:>6.2}x {goal:>10} {met:>5}",
            f.base(),
            f.lb(),
            f.added(),
            f.lb() / f.base(),
        ));
    };
    row(
        report,
        "established flow",
        &figures.est,
        Some(GOAL_ESTABLISHED_NS),
    );
    row(
        report,
        "established flow, not cached",
        &figures.uncached,
        None,
    );
    row(
        report,
        "established flows in turn (cold)",
        &figures.cached_cold,
        None,
    );
    row(report, "FIN of a cached flow", &figures.fin, None);
    row(
        report,
        "packet for no service",
        &figures.other,
        Some(GOAL_NOT_SERVICE_NS),
    );
    for (fill, f) in &figures.new_flows {
        let name = format!("new TCP flow, table {fill}% full");
        row(report, &name, f, Some(GOAL_NEW_FLOW_NS));
    }
    let (first, last) = (
        &figures.new_flows[0],
        &figures.new_flows[figures.new_flows.len() - 1],
    );
    let fill_ratio = last.1.added() / first.1.added();
    let goal = if goals {
        format!(
            " (goal <= {GOAL_FILL_RATIO}x) {}",
            verdict(fill_ratio <= GOAL_FILL_RATIO)
        )
    } else {
        String::new()
    };
    report.line(format!(
        "new flow at {}% over {}% full: {fill_ratio:.2}x{goal}",
        last.0, first.0
    ));
}

fn main() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (BPF_PROG_TEST_RUN)");
    }
    let started = Instant::now();
    let s = settings();
    // `XDPVS_BENCH_CPU`: another CPU than 0, to keep off a busy one.
    let cpu = std::env::var("XDPVS_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pin_to(cpu)?;
    let load_before = loadavg();
    let memory_before = memory_latency_ns();

    let lb_path = object("XDPVS_EBPF_OBJECT", "lb-ebpf");
    println!(
        "loading {lb_path} ({REALS} reals, ring of {RING_SIZE} slots, flow table of {}), its XDP and tc programs each beside its baselines, {} times",
        s.flows, s.loads
    );
    let entries = std::env::var("XDPVS_BENCH_FLOW_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(s.flows);
    let fresh = || Figures {
        new_flows: s.fills.iter().map(|&f| (f, Figure::default())).collect(),
        ..Figures::default()
    };
    let (mut xdp, mut tc) = (fresh(), fresh());
    for placement in 1..=s.loads {
        println!("placement {placement} of {}:", s.loads);
        measure(&s, &XDP_PROGRAMS, &lb_path, entries, &mut xdp)?;
        measure(&s, &TC_PROGRAMS, &lb_path, entries, &mut tc)?;
    }
    let load_after = loadavg();
    let memory_after = memory_latency_ns();

    let mut report = Report::new("bench");
    println!();
    report.line(format!(
        "ns per packet, repeat 1, mean of {} calls ({} distinct new flows), median of {} loads x {} interleaved rounds",
        s.calls, s.new_calls, s.loads, s.rounds
    ));
    report.line("```");
    table(&mut report, Hook::Xdp.program(), "mac-swap", &xdp, true);
    report.line(
        "the tc program beside a tc MAC-swap (bpf_skb_store_bytes, bpf_redirect; for no \
         service, beside a tc program that passes every frame), no goals:",
    );
    table(&mut report, Hook::Tc.program(), "tc base", &tc, false);

    let spread = [&xdp, &tc]
        .into_iter()
        .flat_map(|f| {
            [&f.est, &f.uncached, &f.cached_cold, &f.fin, &f.other]
                .into_iter()
                .chain(f.new_flows.iter().map(|(_, f)| f))
        })
        .map(Figure::base_spread)
        .fold(1.0, f64::max);
    report.line(format!(
        "the baseline moved {:.0}% between rounds",
        (spread - 1.0) * 100.0
    ));
    if spread > 1.25 {
        report.line(
            "the machine was busy during this run: figures are noisy, run again on a quieter machine",
        );
    }
    report.line(format!(
        "a dependent random read in {} MB took {memory_before:.0} ns before the run and \
         {memory_after:.0} ns after (new flows and uncached flows wait on such reads; \
         the baseline shows none of it)",
        LATENCY_BYTES >> 20
    ));

    // Mutated frames (issue 8): a fresh object with the kernel table's world.
    let mut world = load(&lb_path, Hook::Xdp, Hook::Xdp.program(), None)?;
    tests::mutate::configure(&mut world)?;
    let t = Instant::now();
    let m = tests::mutate::run(&world, Hook::Xdp, MUTATED_FRAMES, 0x5eed_0002);
    match &m {
        Ok(m) => report.line(format!(
            "{MUTATED_FRAMES} mutated frames in {:.1} s: {} XDP_TX, {} XDP_PASS, {} XDP_DROP, none aborted or wrong: PASS",
            t.elapsed().as_secs_f64(),
            m.tx,
            m.pass,
            m.drop
        )),
        Err(e) => report.line(format!("mutated frames: MISS: {e:#}")),
    }
    report.line("```");
    report.save(&load_before, &load_after)?;
    println!(
        "load average {load_before} before, {load_after} after; total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    m.map(drop)
}
