//! Data-plane benchmark: nanoseconds per packet of the xdpvs XDP program in
//! the kernel (`BPF_PROG_TEST_RUN`), beside the MAC-swap baseline measured the
//! same way in the same run. Needs root.
//!
//! Objects: `XDPVS_EBPF_OBJECT` and `XDPVS_BASELINE_OBJECT`, defaulting to the
//! release build under `target/ebpf`.

use std::{net::Ipv4Addr, time::Instant};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap},
    programs::{TestRun, TestRunOptions, Xdp},
};
use lb_common::{
    FAMILY_V4, PROTO_TCP, REAL_UP, RING_SIZE, Real, Service, ServiceKey, maps, rings_of,
};
use tests::packet::{IPPROTO_TCP, Ipv4, TCP_ACK, TCP_SYN, frame, tcp};

const REPEAT: u32 = 1_000_000;
/// Repeated measurements take the best of this many runs: the VM's noise
/// only ever adds time.
const ROUNDS: u32 = 3;
const NEW_FLOWS: u32 = 1_000_000;
const REALS: u32 = 64;

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// Clients of the parallel new-flow run, apart from `CLIENT`'s flows.
const CLIENT_PARALLEL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

/// Where the source address and port of `packet`'s frames sit.
const SRC_ADDR_AT: usize = 14 + 12;
const SRC_PORT_AT: usize = 14 + 20;

fn object(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        format!(
            "{}/../target/ebpf/bpfel-unknown-none/release/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

fn load(path: &str, program: &str) -> Result<Ebpf> {
    let mut ebpf = EbpfLoader::new()
        .load_file(path)
        .with_context(|| format!("loading {path} (build it with `cargo xtask build-ebpf`)"))?;
    let prog: &mut Xdp = ebpf
        .program_mut(program)
        .with_context(|| format!("no program {program} in {path}"))?
        .try_into()?;
    prog.load()
        .with_context(|| format!("loading {program} into the kernel"))?;
    Ok(ebpf)
}

fn xdp<'a>(ebpf: &'a Ebpf, program: &str) -> Result<&'a Xdp> {
    Ok(ebpf
        .program(program)
        .with_context(|| format!("no program {program}"))?
        .try_into()?)
}

/// The kernel's mean duration per run of `repeat` runs on one buffer.
fn per_packet(prog: &Xdp, packet: &[u8], repeat: u32, want: u32) -> Result<f64> {
    let mut out = vec![0; packet.len() + 256];
    let r = prog.test_run(TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut out),
        repeat,
        ..Default::default()
    })?;
    if r.return_value != want {
        bail!("verdict {} where {want} was expected", r.return_value);
    }
    Ok(r.duration.as_nanos() as f64)
}

/// The best of `ROUNDS` runs of [`per_packet`].
fn best_of(prog: &Xdp, packet: &[u8], want: u32) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        best = best.min(per_packet(prog, packet, REPEAT, want)?);
    }
    Ok(best)
}

/// The mean kernel-reported duration over `count` distinct packets, each run
/// once: flow `n` (from `first` on) comes from a different (address, port).
fn per_distinct_packet(
    prog: &Xdp,
    template: &[u8],
    (first, count): (u32, u32),
    want: u32,
    label: &str,
) -> Result<f64> {
    let mut packet = template.to_vec();
    let mut total_ns = 0u128;
    let started = Instant::now();
    for n in first..first + count {
        let addr = u32::from(CLIENT) + (n >> 16);
        packet[SRC_ADDR_AT..SRC_ADDR_AT + 4].copy_from_slice(&addr.to_be_bytes());
        packet[SRC_PORT_AT..SRC_PORT_AT + 2].copy_from_slice(&(n as u16).to_be_bytes());
        total_ns += per_packet(prog, &packet, 1, want)? as u128;
        if n > first && (n - first) % 250_000 == 0 {
            println!(
                "  {label}: {n} packets, {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(total_ns as f64 / f64::from(count))
}

/// [`per_distinct_packet`] on every CPU at once, each CPU with its own
/// `count` flows: what a shared lock in the flow table costs under load.
fn per_distinct_packet_parallel(
    prog: &Xdp,
    template: &[u8],
    count: u32,
    want: u32,
    label: &str,
) -> Result<(usize, f64)> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let means = std::thread::scope(|s| {
        let threads: Vec<_> = (0..cpus)
            .map(|cpu| {
                s.spawn(move || {
                    pin_to(cpu)?;
                    let flows = (cpu as u32 * count, count);
                    per_distinct_packet(prog, template, flows, want, &format!("{label}, cpu {cpu}"))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("{label}: a thread panicked"))?
            })
            .collect::<Result<Vec<f64>>>()
    })?;
    Ok((cpus, means.iter().sum::<f64>() / means.len() as f64))
}

/// Pins the calling thread to `cpu`, so that `BPF_PROG_TEST_RUN` runs there.
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
    let mut services: HashMap<_, ServiceKey, Service> =
        HashMap::try_from(lb.map_mut(maps::SERVICES).context("SERVICES")?)?;
    let key = ServiceKey {
        addr: [u32::from_ne_bytes(VIP.octets()), 0, 0, 0],
        port: 80u16.to_be(),
        proto: PROTO_TCP,
        family: FAMILY_V4,
    };
    services.insert(
        key,
        Service {
            id: 0,
            ring,
            persist_timeout_s: 0,
        },
        0,
    )?;
    Ok(())
}

fn packet(dst: Ipv4Addr, flags: u8) -> Vec<u8> {
    packet_from(CLIENT, dst, flags)
}

fn packet_from(src: Ipv4Addr, dst: Ipv4Addr, flags: u8) -> Vec<u8> {
    let seg = tcp(src.into(), dst.into(), 40000, 80, flags, &[0; 18]);
    frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv4::new(src, dst, IPPROTO_TCP).build(&seg),
    )
}

fn main() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (BPF_PROG_TEST_RUN)");
    }
    const XDP_PASS: u32 = 2;
    const XDP_TX: u32 = 3;
    let started = Instant::now();

    println!("loading the objects and filling the maps ({REALS} reals, ring of {RING_SIZE} slots)");
    let mut lb = load(&object("XDPVS_EBPF_OBJECT", "lb-ebpf"), "xdpvs")?;
    configure(&mut lb)?;
    let new_flows = match std::env::var("XDPVS_BENCH_NEW_FLOWS") {
        Ok(n) => n.parse().context("XDPVS_BENCH_NEW_FLOWS")?,
        Err(_) => NEW_FLOWS,
    };
    let base = load(&object("XDPVS_BASELINE_OBJECT", "mac-swap"), "mac_swap")?;
    let (lb, base) = (xdp(&lb, "xdpvs")?, xdp(&base, "mac_swap")?);

    let established = packet(VIP, TCP_ACK);
    let non_vip = packet(OTHER, TCP_ACK);
    let syn = packet(VIP, TCP_SYN);

    println!("baseline, repeat {REPEAT}, best of {ROUNDS}");
    let base_rep = best_of(base, &established, XDP_TX)?;
    println!("established flow, repeat {REPEAT}, best of {ROUNDS}");
    per_packet(lb, &established, 1, XDP_TX)?; // records the flow
    let est = best_of(lb, &established, XDP_TX)?;
    println!("non-VIP packet, repeat {REPEAT}, best of {ROUNDS}");
    let other = best_of(lb, &non_vip, XDP_PASS)?;
    println!("baseline, {new_flows} distinct packets with repeat 1");
    let base_one = per_distinct_packet(base, &syn, (0, new_flows), XDP_TX, "baseline")?;
    println!("new flows, {new_flows} distinct packets with repeat 1");
    let new = per_distinct_packet(lb, &syn, (0, new_flows), XDP_TX, "new flows")?;
    println!("the same on every CPU at once, {new_flows} distinct packets each");
    let (cpus, base_par) = per_distinct_packet_parallel(base, &syn, new_flows, XDP_TX, "baseline")?;
    // Flows beyond the ones recorded above: each CPU inserts its own.
    let par_syn = packet_from(CLIENT_PARALLEL, VIP, TCP_SYN);
    let (_, new_par) = per_distinct_packet_parallel(lb, &par_syn, new_flows, XDP_TX, "new flows")?;

    println!();
    println!("A new flow cannot be repeated on one buffer (the first run records it), so");
    println!("new flows are {NEW_FLOWS} distinct packets run once each, and are compared with");
    println!("the baseline measured the same way (one run per call costs more per packet).");
    println!();
    println!(
        "{:<34} {:>10} {:>12} {:>8}",
        "case", "ns/packet", "vs baseline", "target"
    );
    let row = |name: &str, ns: f64, baseline: f64, target: &str| {
        println!("{name:<34} {ns:>10.1} {:>11.2}x {target:>8}", ns / baseline);
    };
    row("mac-swap baseline (repeat)", base_rep, base_rep, "");
    row("established flow (repeat)", est, base_rep, "<= 1.5x");
    row("non-VIP packet (repeat)", other, base_rep, "");
    row("mac-swap baseline (repeat 1)", base_one, base_one, "");
    row("new flow, 64 reals (repeat 1)", new, base_one, "<= 3x");
    row(
        &format!("mac-swap baseline ({cpus} CPUs, r. 1)"),
        base_par,
        base_par,
        "",
    );
    row(
        &format!("new flow ({cpus} CPUs at once, r. 1)"),
        new_par,
        base_par,
        "<= 3x",
    );
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
