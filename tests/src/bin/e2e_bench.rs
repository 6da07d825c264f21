//! End-to-end benchmark (root): HTTP through the VIP with wrk, each path the
//! client can take to the same nginx real, alternated in rounds in one run:
//! - direct to the real (no balancer);
//! - an nftables netdev rule on the balancer node (stateless direct routing:
//!   both MACs rewritten, `fwd` back out), the floor a kernel DR rule sets;
//! - xdpvs in the mode `--xdp-mode auto` picks on veth (tc), and in generic
//!   XDP;
//! - xdpvs in native XDP (for this path alone the lab gives the bridge-side
//!   veth peer an XDP program and the client software checksums, which veth
//!   needs for it: see `DrLab::set_native_ready`; every other path runs in
//!   the lab as a new user builds it).
//!
//! Two loads per path: wrk keep-alive (`-t2 -c50`, many requests per
//! connection) and one new connection per request (`Connection: close`, so
//! every request is a new flow through the balancer). Medians over the rounds
//! of req/s, p50 and p99 (wrk --latency), ratios to direct, and the goals;
//! xdpvs's req/s against nftables' is the median of each round's ratio.
//! wrk and nginx run at nice -20, ahead of other work on the machine. Beside
//! each run: TCP retransmissions (loss shows there), the balancer's veth drop
//! counters, the XDP verdicts, and the CPU the daemon and its flow scan used.
//!
//! `--paths a,b` picks paths (also `native-kept`: native XDP with the daemon
//! stopped and its data plane left forwarding, `--keep-dataplane`), `--rounds N`,
//! `--seconds N`; `--xdpvs-arg ARG` (repeatable) passes ARG to `xdpvs run`.

use std::{collections::BTreeMap, net::Ipv4Addr, process::Command, time::Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tests::{
    netns::{is_root, sh},
    report::{Report, loadavg, median},
    topology::{DrLab, Launch, VIP, real_addr},
};

const THREADS: u32 = 2;
const CONNECTIONS: u32 = 50;
/// The client's and the real's nice value: ahead of whatever else runs on
/// the machine (other builds), so rounds measure the paths, not the neighbours.
const NICE: i32 = -20;

/// Where a request goes on its way to rs1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Path {
    Direct,
    Nft,
    /// What `--xdp-mode auto` picks on veth: tc.
    XdpvsAuto,
    XdpvsGeneric,
    XdpvsNative,
    /// Native XDP, the daemon stopped with `--keep-dataplane`.
    NativeKept,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Nft => "nft",
            Path::XdpvsAuto => "auto",
            Path::XdpvsGeneric => "generic",
            Path::XdpvsNative => "native",
            Path::NativeKept => "native-kept",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Path::Direct => "direct to rs1",
            Path::Nft => "nftables netdev DR rule",
            Path::XdpvsAuto => "xdpvs, auto (tc)",
            Path::XdpvsGeneric => "xdpvs, generic XDP",
            Path::XdpvsNative => "xdpvs, native XDP",
            Path::NativeKept => "xdpvs native, daemon stopped",
        }
    }

    /// Native XDP, which on veth needs the lab's tricks
    /// (`DrLab::set_native_ready`): put in for this path alone.
    fn native(self) -> bool {
        matches!(self, Path::XdpvsNative | Path::NativeKept)
    }

    fn parse(s: &str) -> Result<Self> {
        [
            Path::Direct,
            Path::Nft,
            Path::XdpvsAuto,
            Path::XdpvsGeneric,
            Path::XdpvsNative,
            Path::NativeKept,
        ]
        .into_iter()
        .find(|p| p.name() == s)
        .ok_or_else(|| {
            anyhow!("unknown path {s:?}: direct, nft, auto, generic, native, native-kept")
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Load {
    KeepAlive,
    Close,
}

impl Load {
    fn label(self) -> &'static str {
        match self {
            Load::KeepAlive => "keep-alive",
            Load::Close => "new connection per request",
        }
    }
}

/// What one wrk run reported.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Socket errors and non-2xx answers.
    errors: u64,
    /// TCP segments the client and the real retransmitted meanwhile.
    retransmits: u64,
}

struct Options {
    paths: Vec<Path>,
    rounds: usize,
    seconds: u32,
    xdpvs_args: Vec<String>,
    /// Reals in xdpvs's service (direct and nftables go to rs1 alone).
    reals: usize,
}

impl Options {
    fn parse() -> Result<Self> {
        let mut o = Options {
            paths: vec![
                Path::Direct,
                Path::Nft,
                Path::XdpvsAuto,
                Path::XdpvsGeneric,
                Path::XdpvsNative,
            ],
            rounds: 7,
            seconds: 3,
            xdpvs_args: Vec::new(),
            reals: 1,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| anyhow!("{arg} needs a value"));
            match arg.as_str() {
                "--paths" => {
                    o.paths = value()?
                        .split(',')
                        .map(Path::parse)
                        .collect::<Result<_>>()?;
                }
                "--rounds" => o.rounds = value()?.parse().context("--rounds")?,
                "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
                "--xdpvs-arg" => o.xdpvs_args.push(value()?),
                "--reals" => o.reals = value()?.parse().context("--reals")?,
                _ => bail!("unknown argument {arg:?}"),
            }
        }
        if !o.paths.contains(&Path::Direct) {
            o.paths.insert(0, Path::Direct);
        }
        if !(1..=4).contains(&o.reals) {
            bail!("--reals: 1 to 4");
        }
        if o.rounds == 0 || o.seconds == 0 || o.rounds * o.seconds as usize > 60 {
            bail!("--rounds and --seconds: at least 1, at most 60 s of load per path and load");
        }
        Ok(o)
    }
}

fn main() -> Result<()> {
    if !is_root() {
        bail!("the end-to-end benchmark needs root (network namespaces, XDP)");
    }
    let opts = Options::parse()?;
    let started = Instant::now();
    let load_before = loadavg();
    println!(
        "end to end: client, lb1 and {} real(s) (nginx, 1 worker each) on one bridge; \
         xdpvs balances over them, direct and nftables go to rs1; wrk -t{THREADS} \
         -c{CONNECTIONS} -d{}s --latency, {} rounds",
        opts.reals, opts.seconds, opts.rounds
    );
    let mut lab = DrLab::build_plain("eb", 1, opts.reals)?;
    let lb = lab.lbs[0].clone();
    for real in &lab.reals {
        for pid in sh("ip", &["netns", "pids", real])?.split_whitespace() {
            let pid: libc::id_t = pid.parse().context("ip netns pids")?;
            // SAFETY: setpriority on a process of this lab's; no memory involved.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, NICE) } != 0 {
                bail!("renicing nginx: {}", std::io::Error::last_os_error());
            }
        }
    }
    // The client closes first (wrk, on the response to `Connection: close`),
    // so each request leaves a TIME_WAIT socket there for 60 s: at 40,000
    // new connections a second the default 28,232 ports ran out within a
    // round, connect() searched ever longer for a free one, and whole rounds
    // of whichever path ran then fell to 1,000 req/s. A load generator's
    // usual settings: every port, and reuse of a TIME_WAIT port once its
    // timestamps allow it.
    for s in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        lab.lab.sysctl(&lab.client, s)?;
    }
    lab.lab
        .ip(&lb, &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"])?;
    let mut results: BTreeMap<(Load, Path), Vec<Wrk>> = BTreeMap::new();
    for round in 1..=opts.rounds {
        // Rotate the order so no path always runs first or last.
        let mut order = opts.paths.clone();
        let first = (round - 1) % order.len();
        order.rotate_left(first);
        for &path in &order {
            if path.native() {
                lab.set_native_ready(true)?;
            }
            let (target, daemon) = enter(&mut lab, path, &opts.xdpvs_args)?;
            for load in [Load::KeepAlive, Load::Close] {
                let cpu_before = daemon.map(daemon_cpu).transpose()?;
                let w = wrk(&lab, target, load, opts.seconds)?;
                println!(
                    "  round {round} {:<28} {:<10} {:>6.0} req/s  p50 {:>5.2} ms  p99 {:>6.2} ms  \
                     {:>4} retransmits{}",
                    path.label(),
                    match load {
                        Load::KeepAlive => "keep-alive",
                        Load::Close => "close",
                    },
                    w.rps,
                    w.p50_ms,
                    w.p99_ms,
                    w.retransmits,
                    if w.errors > 0 {
                        format!("  ({} errors)", w.errors)
                    } else {
                        String::new()
                    }
                );
                if let (Some(pid), Some((all, scan))) = (daemon, cpu_before) {
                    let (all_after, scan_after) = daemon_cpu(pid)?;
                    let secs = f64::from(opts.seconds);
                    println!(
                        "    (the daemon used {:.1}% of a CPU, its flow scan {:.1}%)",
                        (all_after - all) / secs * 100.0,
                        (scan_after - scan) / secs * 100.0
                    );
                }
                let drops = veth_drops(&lab)?;
                if !drops.is_empty() {
                    println!("    (veth counters: {drops})");
                }
                results.entry((load, path)).or_default().push(w);
            }
            leave(&mut lab, path)?;
            if path.native() {
                lab.set_native_ready(false)?;
            }
        }
    }
    let load_after = loadavg();
    report(&opts, &results).save(&load_before, &load_after)?;
    println!(
        "\nload average {load_before} before, {load_after} after (2 CPUs: above ~0.5 other \
         work shared the machine); {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sets `path` up; returns the address wrk targets and the running
/// daemon's PID.
fn enter(lab: &mut DrLab, path: Path, extra: &[String]) -> Result<(Ipv4Addr, Option<u32>)> {
    match path {
        Path::Direct => Ok((real_addr(0), None)),
        Path::Nft => {
            nft_dr(lab)?;
            Ok((VIP, None))
        }
        Path::XdpvsAuto | Path::XdpvsGeneric | Path::XdpvsNative | Path::NativeKept => {
            let mode = match path {
                Path::XdpvsAuto => "auto",
                Path::XdpvsGeneric => "generic",
                _ => "native",
            };
            let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
            if path == Path::NativeKept {
                args.push("--keep-dataplane");
            }
            let pid = lab.start_xdpvs_with(
                0,
                &config(lab.reals.len()),
                mode,
                &Launch {
                    extra: &args,
                    ..Launch::default()
                },
            )?;
            if path == Path::NativeKept {
                lab.lab.stop("xdpvs-lb1", libc::SIGTERM)?;
                return Ok((VIP, None));
            }
            Ok((VIP, Some(pid)))
        }
    }
}

fn leave(lab: &mut DrLab, path: Path) -> Result<()> {
    match path {
        Path::Direct => Ok(()),
        Path::Nft => nft(lab, &["delete", "table", "netdev", "xvbench"]),
        Path::XdpvsAuto | Path::XdpvsGeneric | Path::XdpvsNative => {
            lab.lab.alive("xdpvs-lb1")?;
            let metrics = lab.metrics(0)?;
            let gauge = |name: &str| {
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            let verdicts: Vec<&str> = metrics
                .lines()
                .filter_map(|l| l.strip_prefix("xdpvs_verdict_packets_total{reason="))
                .filter(|l| !l.ends_with(" 0"))
                .collect();
            println!(
                "    (the daemon's last flow scan: {:.0} entries in {:.1} ms; verdicts {})",
                gauge("xdpvs_flow_table_entries "),
                gauge("xdpvs_flow_scan_duration_seconds ") * 1e3,
                verdicts.join(", ")
            );
            lab.lab.stop("xdpvs-lb1", libc::SIGTERM)
        }
        Path::NativeKept => {
            let bin = lab.artifacts.xdpvs.to_string_lossy().into_owned();
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &lab.lbs[0],
                    &bin,
                    "down",
                    "--interface",
                    "eth0",
                ],
            )
            .map(drop)
        }
    }
}

/// The nonzero drop and error counters of the balancer's veth pair, since
/// the last call (`ethtool -S` on lb1's eth0 and its bridge port).
fn veth_drops(lab: &DrLab) -> Result<String> {
    let sw = lab
        .client
        .strip_suffix("client")
        .map(|p| format!("{p}sw"))
        .ok_or_else(|| anyhow!("unexpected namespace name {}", lab.client))?;
    let mut out = Vec::new();
    for (ns, dev) in [(lab.lbs[0].as_str(), "eth0"), (sw.as_str(), "p-lb1")] {
        let stats = sh("ip", &["netns", "exec", ns, "ethtool", "-S", dev])?;
        for line in stats.lines() {
            let Some((name, value)) = line.trim().split_once(": ") else {
                continue;
            };
            let interesting = name.contains("drop") || name.contains("error");
            let value: u64 = value.trim().parse().unwrap_or(0);
            let key = format!("{dev} {name}");
            let last = LAST_DROPS.with_borrow_mut(|m| m.insert(key.clone(), value));
            let delta = value - last.unwrap_or(0).min(value);
            if interesting && delta > 0 {
                out.push(format!("{key} +{delta}"));
            }
        }
    }
    Ok(out.join(", "))
}

thread_local! {
    static LAST_DROPS: std::cell::RefCell<BTreeMap<String, u64>> = Default::default();
}

/// CPU seconds process `pid` has used: all its threads, and its flow-scan
/// thread's.
fn daemon_cpu(pid: u32) -> Result<(f64, f64)> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (mut all, mut scan) = (0.0, 0.0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else {
            continue; // a thread that just ended
        };
        // "tid (comm) state ..." with utime and stime the 14th and 15th fields.
        let (comm, rest) = stat
            .split_once(" (")
            .and_then(|(_, r)| r.rsplit_once(") "))
            .ok_or_else(|| anyhow!("unreadable stat {stat:?}"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11..13)
            .ok_or_else(|| anyhow!("short stat {stat:?}"))?
            .iter()
            .map(|f| f.parse::<f64>())
            .sum::<Result<f64, _>>()?;
        all += ticks / hz;
        if comm == "flow-scan" {
            scan += ticks / hz;
        }
    }
    Ok((all, scan))
}

/// One service over `reals` reals (by default one: every path ends at the
/// same nginx), each with a TCP check, as a real configuration has.
fn config(reals: usize) -> String {
    let mut c =
        format!("virtual_server {VIP} 80 {{\n  delay_loop 2\n  lb_kind DR\n  protocol TCP\n");
    for i in 0..reals {
        c += &format!(
            "  real_server {} 80 {{\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n",
            real_addr(i)
        );
    }
    c + "}\n"
}

/// The nftables rule: VIP:80 packets arriving on the balancer's eth0 leave
/// it again at once for rs1, source MAC = the balancer's (as xdpvs does; the
/// client's would teach the bridge that the client sits behind the balancer).
fn nft_dr(lab: &DrLab) -> Result<()> {
    let lb_mac = mac(lab, &lab.lbs[0])?;
    let rs_mac = mac(lab, &lab.reals[0])?;
    let rules = format!(
        "table netdev xvbench {{\n  chain ingress {{\n    type filter hook ingress device eth0 \
         priority 0; policy accept;\n    ip daddr {VIP} tcp dport 80 ether saddr set {lb_mac} \
         ether daddr set {rs_mac} fwd to eth0\n  }}\n}}\n"
    );
    let file = lab.lab.dir.join("dr.nft");
    std::fs::write(&file, rules)?;
    nft(lab, &["-f", &file.to_string_lossy()])
}

fn nft(lab: &DrLab, args: &[&str]) -> Result<()> {
    let mut all = vec!["netns", "exec", &lab.lbs[0], "nft"];
    all.extend_from_slice(args);
    sh("ip", &all).map(drop)
}

fn mac(lab: &DrLab, ns: &str) -> Result<String> {
    let out = lab.lab.ip(ns, &["-o", "link", "show", "eth0"])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no MAC in {out:?}"))
}

fn wrk(lab: &DrLab, target: Ipv4Addr, load: Load, seconds: u32) -> Result<Wrk> {
    let (threads, conns, secs) = (
        format!("-t{THREADS}"),
        format!("-c{CONNECTIONS}"),
        format!("-d{seconds}s"),
    );
    let url = format!("http://{target}/");
    // Bounded even when a path is broken: wrk gives up on a request after
    // 2 s, `timeout` on wrk a few seconds after its run should have ended.
    let (nice, limit) = (NICE.to_string(), (seconds + 5).to_string());
    let mut args = vec![
        "netns",
        "exec",
        &lab.client,
        "timeout",
        "-k",
        "2",
        &limit,
        "nice",
        "-n",
        &nice,
        "wrk",
        &threads,
        &conns,
        &secs,
        "--timeout",
        "2s",
        "--latency",
    ];
    if load == Load::Close {
        args.extend_from_slice(&["-H", "Connection: close"]);
    }
    args.push(&url);
    let before = retransmits(lab)?;
    let out = Command::new("ip")
        .args(&args)
        .output()
        .context("running wrk (is the wrk package installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}{text}", String::from_utf8_lossy(&out.stderr));
    }
    let mut w = parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))?;
    w.retransmits = retransmits(lab)? - before;
    Ok(w)
}

/// TCP segments retransmitted by the client and rs1 so far (each
/// namespace's `RetransSegs`).
fn retransmits(lab: &DrLab) -> Result<u64> {
    let mut sum = 0;
    for ns in [&lab.client, &lab.reals[0]] {
        let snmp = sh("ip", &["netns", "exec", ns, "cat", "/proc/net/snmp"])?;
        sum += snmp_field(&snmp, "Tcp:", "RetransSegs")?;
    }
    Ok(sum)
}

/// `field` of the `/proc/net/snmp`-style table `table` (a header line of
/// names, then a line of values, both starting with `table`).
fn snmp_field(text: &str, table: &str, field: &str) -> Result<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(table));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        bail!("no {table} table");
    };
    let i = names
        .split_whitespace()
        .position(|n| n == field)
        .ok_or_else(|| anyhow!("no {field} in {table}"))?;
    values
        .split_whitespace()
        .nth(i)
        .ok_or_else(|| anyhow!("no value for {field}"))?
        .parse()
        .with_context(|| format!("{table} {field}"))
}

fn parse_wrk(text: &str) -> Result<Wrk> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
            .ok_or_else(|| anyhow!("no {prefix:?} line"))
    };
    let rps: f64 = field("Requests/sec:")?.parse()?;
    let p50_ms = duration_ms(field("50%")?)?;
    let p99_ms = duration_ms(field("99%")?)?;
    let mut errors = 0;
    if let Ok(s) = field("Socket errors:") {
        // "connect 0, read 0, write 0, timeout 0"
        for part in s.split(',') {
            errors += part
                .split_whitespace()
                .nth(1)
                .ok_or_else(|| anyhow!("socket errors: {s:?}"))?
                .parse::<u64>()?;
        }
    }
    if let Ok(s) = field("Non-2xx or 3xx responses:") {
        errors += s.parse::<u64>()?;
    }
    Ok(Wrk {
        rps,
        p50_ms,
        p99_ms,
        errors,
        retransmits: 0,
    })
}

/// wrk's "850.00us", "1.23ms", "2.01s", "1.00m".
fn duration_ms(s: &str) -> Result<f64> {
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow!("no unit in {s:?}"))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("{s:?}"))?;
    Ok(match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        _ => bail!("unknown unit in {s:?}"),
    })
}

/// One path's req/s over another's, round by round: the two ran within
/// seconds of each other in each round, so the machine's drift over the run
/// (other work, the host) cancels out of the ratio where it does not out of
/// two medians taken apart.
#[derive(Debug, PartialEq)]
struct Paired {
    median: f64,
    low: f64,
    high: f64,
}

impl Paired {
    fn of(runs: &[Wrk], base: &[Wrk]) -> Self {
        let ratios: Vec<f64> = runs.iter().zip(base).map(|(a, b)| a.rps / b.rps).collect();
        Self {
            low: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            high: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            median: median(ratios),
        }
    }
}

fn report(opts: &Options, results: &BTreeMap<(Load, Path), Vec<Wrk>>) -> Report {
    let mut report = Report::new("e2e_bench");
    let med = |load, path, f: fn(&Wrk) -> f64| {
        results
            .get(&(load, path))
            .map(|v| median(v.iter().map(f).collect()))
    };
    let mut goals = Vec::new();
    let mut others = Vec::new();
    for load in [Load::KeepAlive, Load::Close] {
        report.line(format!(
            "\n{}, medians of {} rounds:\n\n| path | req/s | x direct | p50 ms | p99 ms | p99 x direct | retransmits | errors |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |",
            load.label(),
            opts.rounds
        ));
        let Some(direct_rps) = med(load, Path::Direct, |w| w.rps) else {
            continue;
        };
        let direct_p99 = med(load, Path::Direct, |w| w.p99_ms).unwrap_or(f64::NAN);
        let nft_rps = med(load, Path::Nft, |w| w.rps);
        for &path in &opts.paths {
            let (Some(rps), Some(p50), Some(p99)) = (
                med(load, path, |w| w.rps),
                med(load, path, |w| w.p50_ms),
                med(load, path, |w| w.p99_ms),
            ) else {
                continue;
            };
            let runs = &results[&(load, path)];
            let errors: u64 = runs.iter().map(|w| w.errors).sum();
            let retransmits: u64 = runs.iter().map(|w| w.retransmits).sum();
            report.line(format!(
                "| {} | {rps:.0} | {:.2} | {p50:.2} | {p99:.2} | {:.1} | {retransmits} | {errors} |",
                path.label(),
                rps / direct_rps,
                p99 / direct_p99
            ));
            // The goals are xdpvs's as it runs on this device by default
            // (auto: tc on veth). Generic and native XDP are shown beside
            // it: native on veth pays for what veth needs for it (the
            // peer's program, the client's software checksums; see
            // `DrLab::set_native_ready`).
            if path == Path::XdpvsAuto {
                goals.push((
                    format!(
                        "{}, {}: p99 <= 2x direct's ({p99:.2} vs {direct_p99:.2} ms)",
                        path.label(),
                        load.label()
                    ),
                    p99 <= 2.0 * direct_p99,
                ));
            }
            if !matches!(path, Path::Direct | Path::Nft)
                && let Some(nft_runs) = results.get(&(load, Path::Nft))
            {
                let paired = Paired::of(runs, nft_runs);
                let what = format!(
                    // Four places: a median just under 1 must not print as 1.000x.
                    "{}, {}: req/s >= nftables DR's: {:.4}x, the median of each round's ratio \
                     (rounds {:.3}x to {:.3}x; medians {rps:.0} vs {:.0})",
                    path.label(),
                    load.label(),
                    paired.median,
                    paired.low,
                    paired.high,
                    nft_rps.unwrap_or(f64::NAN),
                );
                if path == Path::XdpvsAuto {
                    goals.push((what, paired.median >= 1.0));
                } else {
                    others.push(what);
                }
            }
        }
    }
    report.line("\nGoals:\n");
    for (what, met) in goals {
        report.line(format!("- {} {what}", if met { "PASS" } else { "MISS" }));
    }
    if !others.is_empty() {
        report.line("\nThe other modes, no goal (xdpvs on veth runs tc unless told otherwise):\n");
    }
    for what in others {
        report.line(format!("- {what}"));
    }
    report
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn reads_what_wrk_prints() {
        let text = "Running 3s test @ http://10.100.0.100/\n  2 threads and 50 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.10ms    4.02ms  \
            60.11ms   95.12%\n    Req/Sec    10.21k     1.02k   12.00k    70.00%\n  Latency \
            Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    2.00ms\n     99%   \
            26.60ms\n  61234 requests in 3.00s, 9.40MB read\n  Socket errors: connect 0, read 3, \
            write 0, timeout 2\n  Non-2xx or 3xx responses: 4\nRequests/sec:  20411.33\n\
            Transfer/sec:      3.13MB\n";
        assert_eq!(
            parse_wrk(text).unwrap(),
            Wrk {
                rps: 20411.33,
                p50_ms: 0.85,
                p99_ms: 26.6,
                errors: 9,
                retransmits: 0,
            }
        );
        assert_eq!(duration_ms("1.50s").unwrap(), 1500.0);
        assert!(parse_wrk("Requests/sec: 1\n").is_err());
    }

    #[test]
    fn reads_snmp_tables() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RetransSegs InErrs\n\
                    Tcp: 1 42 0\n";
        assert_eq!(snmp_field(snmp, "Tcp:", "RetransSegs").unwrap(), 42);
        assert!(snmp_field(snmp, "Tcp:", "Nope").is_err());
        assert!(snmp_field(snmp, "Udp:", "RetransSegs").is_err());
    }

    #[test]
    fn paired_ratios_are_taken_round_by_round() {
        let run = |rps| Wrk {
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            retransmits: 0,
        };
        // The machine slows down over the run; the path is 2% ahead in every
        // round, which the medians of each path alone would not show.
        let a = [run(102.0), run(81.6), run(51.0)];
        let b = [run(100.0), run(80.0), run(50.0)];
        let p = Paired::of(&a, &b);
        assert!((p.median - 1.02).abs() < 1e-9, "{p:?}");
        assert!(
            (p.low - 1.02).abs() < 1e-9 && (p.high - 1.02).abs() < 1e-9,
            "{p:?}"
        );
        let p = Paired::of(&[run(90.0), run(110.0), run(100.0)], &b);
        assert_eq!((p.low, p.high), (0.9, 2.0));
        assert!((p.median - 1.375).abs() < 1e-9, "{p:?}");
    }
}
