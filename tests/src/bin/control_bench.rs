//! Control-loop benchmark (root): with a million flows in the flow table,
//! how long `xdpvs adm -L -n`, `xdpvs ctl status` and a metrics scrape take
//! (p99 each, goal 50 ms), and how long a health verdict takes to reach the
//! maps while the flow table is being scanned (goal 20 ms).
//!
//! The daemon's own flow table is filled from here, beside a few real flows
//! through the VIP whose reals' numbers the fill reuses.

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{Array, Map, MapData, MapInfo};
use lb_common::{
    Binding, FAMILY_V4, FLOW_CLOSING, FlowKey, FlowLine, PROTO_TCP, flow_table::bucket_of,
    maps::FLOWS,
};
use tests::{
    coarse_now_ns,
    netns::{is_root, wait_for},
    report::{Report, loadavg},
    topology::{DrLab, VIP, real_addr},
};

/// Flows written into the table (sized for 2^20).
const FLOWS_FILLED: u32 = 1_000_000;
/// Calls per measured command.
const SAMPLES: usize = 100;
const READ_GOAL: Duration = Duration::from_millis(50);
const VERDICT_GOAL: Duration = Duration::from_millis(20);
/// Verdicts wanted while a scan runs, and the most verdicts to try for them
/// (a scan of a million flows takes 20-50 ms a second: a few percent of
/// verdicts land in one).
const VERDICTS_DURING_SCAN: usize = 3;
const MAX_VERDICTS: usize = 400;

fn main() -> Result<()> {
    if !is_root() {
        bail!("the control-loop benchmark needs root (network namespaces, XDP)");
    }
    println!("control loop: client, lb1, rs1, rs2 (nginx); {FLOWS_FILLED} flows in the table");
    let load_before = loadavg();
    let mut report = Report::new("control_bench");
    let mut lab = DrLab::build("cb", 1, 2)?;
    lab.lab.ip(
        &lab.lbs[0],
        &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
    )?;
    // rs2's check passes while this file exists: verdicts at will, fast.
    let up_file = lab.lab.dir.join("rs2-up");
    std::fs::write(&up_file, "")?;
    let config = format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 0.1\n  lb_kind DR\n  protocol TCP\n  \
         real_server {} 80 {{\n  }}\n  real_server {} 80 {{\n    MISC_CHECK {{\n      \
         misc_path \"test -e {}\"\n      misc_timeout 1\n    }}\n  }}\n}}\n",
        real_addr(0),
        real_addr(1),
        up_file.display()
    );
    lab.start_xdpvs(0, &config, "native")?;

    let flows = flow_table(&lab)?;
    fill(flows, &lab)?;
    let entries = wait_for(Duration::from_secs(30), || {
        let n = gauge(&lab.metrics(0)?, "xdpvs_flow_table_entries")?;
        if n < f64::from(FLOWS_FILLED) * 0.95 {
            bail!("the last scan counted {n} flows");
        }
        Ok(n)
    })
    .context("the daemon did not count the filled table")?;
    let metrics = lab.metrics(0)?;
    report.line("```");
    report.line(format!(
        "flow table: {entries} flows, scanned in {:.0} ms",
        gauge(&metrics, "xdpvs_flow_scan_duration_seconds")? * 1e3
    ));
    let listed = listed_flows(&lab.adm(0, &["-L", "-n"])?);
    if (listed as f64) < entries * 0.95 {
        bail!("adm -L -n lists {listed} flows of {entries}");
    }

    report.line(format!(
        "{SAMPLES} calls each, with {entries} flows in the table:"
    ));
    report.line("command                 p50 ms   p99 ms   max ms   goal");
    let mut missed = false;
    let reads: [(&str, &dyn Fn() -> Result<String>); 3] = [
        ("xdpvs adm -L -n", &|| lab.adm(0, &["-L", "-n"])),
        ("xdpvs ctl status", &|| lab.ctl(0, &["status"])),
        ("GET /metrics", &|| lab.metrics(0)),
    ];
    for (name, call) in reads {
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let start = Instant::now();
            call().with_context(|| name.to_string())?;
            times.push(start.elapsed());
        }
        times.sort();
        let p99 = percentile(&times, 99);
        missed |= p99 > READ_GOAL;
        report.line(format!(
            "{name:<22} {:>7.1}  {:>7.1}  {:>7.1}   p99 <= {} ms: {}",
            ms(percentile(&times, 50)),
            ms(p99),
            ms(times[times.len() - 1]),
            READ_GOAL.as_millis(),
            verdict(p99 <= READ_GOAL)
        ));
    }

    let verdicts = toggle_health(&mut lab, &up_file)?;
    let listing: Vec<String> = verdicts
        .iter()
        .map(|(d, scan)| format!("{:.1}{}", ms(*d), if *scan { "*" } else { "" }))
        .collect();
    println!(
        "\nverdict to maps, ms (* during a scan): {}",
        listing.join(" ")
    );
    let during: Vec<Duration> = verdicts.iter().filter(|v| v.1).map(|v| v.0).collect();
    let worst_during = during.iter().max().copied().unwrap_or_default();
    let worst = verdicts.iter().map(|v| v.0).max().unwrap_or_default();
    missed |= worst_during > VERDICT_GOAL || during.is_empty();
    report.line(format!(
        "health verdict to maps: {} verdicts, {} of them during a flow-table scan\n\
         during a scan: max {:.2} ms (goal <= {} ms: {}); all verdicts: max {:.2} ms",
        verdicts.len(),
        during.len(),
        ms(worst_during),
        VERDICT_GOAL.as_millis(),
        verdict(!during.is_empty() && worst_during <= VERDICT_GOAL),
        ms(worst)
    ));
    report.line("```");
    report.save(&load_before, &loadavg())?;
    lab.lab.alive("xdpvs-lb1")?;
    if missed {
        bail!("a control-loop goal was missed");
    }
    Ok(())
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p`th percentile of sorted `times`.
fn percentile(times: &[Duration], p: usize) -> Duration {
    let i = (times.len() * p).div_ceil(100).saturating_sub(1);
    times[i.min(times.len() - 1)]
}

/// A gauge without labels from Prometheus text.
fn gauge(text: &str, name: &str) -> Result<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .ok_or_else(|| anyhow!("no {name} yet"))?
        .trim()
        .parse()
        .with_context(|| format!("reading {name}"))
}

/// ActiveConn + InActConn over every real of `adm -L -n`.
fn listed_flows(list: &str) -> u64 {
    list.lines()
        .filter(|l| l.trim_start().starts_with("-> ") && !l.contains("RemoteAddress"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.iter()
                .rev()
                .take(2)
                .filter_map(|c| c.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// The daemon's `FLOWS`: among the maps of the XDP program attached to the
/// LB's eth0 (other daemons on this machine have their own).
fn flow_table(lab: &DrLab) -> Result<Array<MapData, FlowLine>> {
    let link = lab.lab.ip(&lab.lbs[0], &["-d", "link", "show", "eth0"])?;
    let id: u32 = link
        .split("prog/xdp")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().skip_while(|w| *w != "id").nth(1))
        .ok_or_else(|| anyhow!("no XDP program on the LB's eth0:\n{link}"))?
        .parse()?;
    let program = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .ok_or_else(|| anyhow!("XDP program {id} not found"))?;
    for map_id in program.map_ids()?.unwrap_or_default() {
        let info = MapInfo::from_id(map_id)?;
        if info.name_as_str() == Some(FLOWS) {
            let data = MapData::from_id(map_id)?;
            return Ok(Array::try_from(Map::Array(data))?);
        }
    }
    bail!("XDP program {id} has no {FLOWS} map")
}

/// Fills the flow table with `FLOWS_FILLED` flows from 172.16.0.0/12 to the
/// VIP, spread over the reals real traffic was bound to; one in ten closing.
/// Bucket by bucket, into the empty ways (a few flows find their bucket
/// full, as the data plane's would).
fn fill(mut flows: Array<MapData, FlowLine>, lab: &DrLab) -> Result<()> {
    let answers = lab.requests(SocketAddr::from((VIP, 80)), 20)?;
    if answers.iter().any(Result::is_err) {
        bail!("requests through the VIP failed: {answers:?}");
    }
    let mut buckets = tests::flows::read_all(&flows)?;
    let mut reals: Vec<u32> = buckets
        .iter()
        .flat_map(|b| b.tags.iter().filter(|&&t| t != 0).map(|&t| t as u32))
        .collect();
    reals.sort();
    reals.dedup();
    if reals.is_empty() {
        bail!("no flow of the client in the table");
    }
    let now = coarse_now_ns();
    let start = Instant::now();
    let vip = u32::from_ne_bytes(VIP.octets());
    let count = tests::flows::buckets(&flows);
    let mut touched = vec![false; buckets.len()];
    for i in 0..FLOWS_FILLED {
        let key = FlowKey {
            src: [
                u32::from_ne_bytes((0xac10_0000u32 + i).to_be_bytes()),
                0,
                0,
                0,
            ],
            dst: [vip, 0, 0, 0],
            sport: 40000u16.to_be(),
            dport: 80u16.to_be(),
            proto: PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        };
        let binding = Binding {
            real: reals[i as usize % reals.len()],
            flags: if i % 10 == 0 { FLOW_CLOSING } else { 0 },
            last_seen_ns: now,
        };
        let index = bucket_of(key.hash(), count) as usize;
        let bucket = &mut buckets[index];
        if let Some(way) = bucket.empty_way() {
            bucket.set(way, key, &binding);
            touched[index] = true;
        }
    }
    for (index, bucket) in buckets.iter().enumerate() {
        if touched[index] {
            tests::flows::write(&mut flows, index as u32, bucket)
                .with_context(|| format!("writing bucket {index}"))?;
        }
    }
    println!(
        "  filled {FLOWS_FILLED} flows over reals {reals:?} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Turns rs2's check off and on until `VERDICTS_DURING_SCAN` verdicts came
/// while a scan ran (at most `MAX_VERDICTS`); returns each verdict's time
/// from decision to maps and whether a scan was running.
fn toggle_health(lab: &mut DrLab, up_file: &Path) -> Result<Vec<(Duration, bool)>> {
    let mut seen = 0;
    let mut verdicts = Vec::new();
    while verdicts.len() < MAX_VERDICTS
        && verdicts.iter().filter(|v: &&(Duration, bool)| v.1).count() < VERDICTS_DURING_SCAN
    {
        if verdicts.len() % 2 == 0 {
            std::fs::remove_file(up_file)?;
        } else {
            std::fs::write(up_file, "")?;
        }
        let line = wait_for(Duration::from_secs(5), || {
            let log = lab.lab.log("xdpvs-lb1");
            let lines: Vec<&str> = log.lines().filter(|l| l.contains("maps updated")).collect();
            match lines.get(seen) {
                Some(l) => Ok(l.to_string()),
                None => bail!("no new verdict"),
            }
        })
        .context("rs2's check gave no verdict")?;
        seen += 1;
        verdicts.push((to_maps(&line)?, line.contains("during a flow-table scan")));
    }
    // Leave rs2 up, as it started.
    std::fs::write(up_file, "")?;
    Ok(verdicts)
}

/// The duration in "... maps updated 1.2ms after the decision".
fn to_maps(line: &str) -> Result<Duration> {
    let text = line
        .split("maps updated ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .ok_or_else(|| anyhow!("no duration in {line:?}"))?;
    let (number, scale) = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)]
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
        .ok_or_else(|| anyhow!("no unit in {text:?}"))?;
    Ok(Duration::from_secs_f64(number.parse::<f64>()? * scale))
}
