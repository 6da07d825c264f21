//! `cargo xtask demo`: xdpvs in network namespaces with a built-in
//! keepalived-style config: two LB nodes sharing the VIP by VRRP, two nginx
//! reals with HTTP health checks. It shows the weighted split, a real
//! failing and coming back, and the master being killed mid-traffic, with
//! the times measured. Then three nodes active-active behind a router with
//! ECMP (VIPs announced by BGP through BIRD), one of them killed
//! mid-traffic. It cleans everything up.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use tests::{
    ecmp::{self, EcmpLab},
    keepalived::{master_down_interval, wait_vip},
    load::Load,
    netns::{is_root, wait_for},
    topology::{DrLab, VIP, real_addr},
};

const REQUESTS: usize = 600;
const WEIGHTS: [u32; 2] = [1, 5];

fn main() {
    if let Err(e) = demo() {
        eprintln!("demo: error: {e:#}");
        std::process::exit(1);
    }
}

fn config(priority: u8) -> String {
    let real = |i: usize| {
        format!(
            "  real_server {} 80 {{\n    weight {}\n    HTTP_GET {{\n      url {{\n        path /\n      }}\n      \
             connect_timeout 1\n      retry 1\n      delay_before_retry 0.5\n    }}\n  }}\n",
            real_addr(i),
            WEIGHTS[i]
        )
    };
    format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int 1\n  \
         authentication {{\n    auth_type PASS\n    auth_pass demo\n  }}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n{}{}}}\n",
        real(0),
        real(1)
    )
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn demo() -> Result<()> {
    if !is_root() {
        bail!("the demo needs root (network namespaces, XDP)");
    }
    section("building the lab: client, lb1, lb2, rs1, rs2 on one bridge (network namespaces)");
    // As a new user builds it: default offloads, nothing on the bridge
    // ports; `auto` picks the XDP mode that works on veth, and says why.
    let mut lab = DrLab::build_plain("demo", 2, 2)?;
    println!(
        "xdpvs config of lb1 (lb2 has priority 99):\n{}",
        config(100)
    );
    lab.start_xdpvs(1, &config(99), "auto")
        .context("starting xdpvs on lb2")?;
    lab.start_xdpvs(0, &config(100), "auto")
        .context("starting xdpvs on lb1")?;
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let elected = wait_vip(&lb1, true, Duration::from_secs(10)).context("lb1 becoming master")?;
    println!("lb1 is VRRP master and holds {VIP} ({elected:.1?} after start); lb2 is backup");

    section(&format!(
        "{REQUESTS} HTTP requests to {VIP}:80, one connection each"
    ));
    let start = Instant::now();
    let counts = tally(&lab, REQUESTS)?;
    let total: u32 = WEIGHTS.iter().sum();
    println!("  real                  weight  expected  received");
    for (i, w) in WEIGHTS.iter().enumerate() {
        let name = format!("rs{}", i + 1);
        let expected = REQUESTS as f64 * f64::from(*w) / f64::from(total);
        println!(
            "  {name} {:<15} {w:>6} {expected:>9.0} {:>9}",
            real_addr(i),
            counts.get(&name).unwrap_or(&0)
        );
    }
    println!(
        "  failed: {}; {:.0} requests/s",
        counts.get("failed").unwrap_or(&0),
        REQUESTS as f64 / start.elapsed().as_secs_f64()
    );

    section("rs2's nginx stops: health checks take it out");
    lab.stop_nginx(1)?;
    let stopped = Instant::now();
    let line = wait_for(Duration::from_secs(10), || log_line(&lab, "rs2", "DOWN"))?;
    println!(
        "  {:.2?} after the stop: {}",
        stopped.elapsed(),
        tail(&line)
    );
    let counts = tally(&lab, 100)?;
    println!("  100 new requests: {counts:?}");
    lab.start_nginx(1)?;
    let started = Instant::now();
    let line = wait_for(Duration::from_secs(10), || log_line(&lab, "rs2", "UP"))?;
    println!(
        "  nginx back: {:.2?} later: {}",
        started.elapsed(),
        tail(&line)
    );

    section("kill -9 of the master (lb1) while the client sends a request every 20 ms");
    let load = Load::start(&lab);
    thread::sleep(Duration::from_millis(500));
    lab.lab.stop("xdpvs-lb1", libc::SIGKILL)?;
    let bound = master_down_interval(2, 99);
    let took = wait_vip(&lb2, true, bound + Duration::from_secs(2)).context("lb2 taking over")?;
    thread::sleep(Duration::from_secs(1));
    let (ok, failed) = load.finish();
    println!(
        "  lb2 took the VIP {took:.2?} after the kill (Master_Down_Interval for priority 99: {bound:.2?})"
    );
    println!("  requests meanwhile: {ok} ok, {failed} failed");
    let counts = tally(&lab, 100)?;
    println!("  100 new requests through lb2: {counts:?}");

    section("xdpvs adm -L -n --stats on lb2 (the new master)");
    print!("{}", lab.adm(1, &["-L", "-n", "--stats"])?);
    section("cleaning up the VRRP lab");
    drop(lab);
    active_active()?;
    section("cleaning up");
    Ok(())
}

/// Three nodes behind a router with ECMP, the VIP announced by BGP (BIRD).
fn active_active() -> Result<()> {
    section(
        "active-active: a client behind a router (BIRD, ECMP), three xdpvs nodes each with BIRD, two reals",
    );
    let mut lab = EcmpLab::build("demoe", 3, 2)?;
    let config = ecmp::config(&[1, 1], true);
    println!("xdpvs config of every node:\n{config}");
    let took = lab.start_all(&config)?;
    println!(
        "  the router's route for {VIP}: via {:?} ({took:.1?} after start)",
        lab.next_hops()?
    );
    let counts = lab.dr.answers(SocketAddr::from((VIP, 80)), 300)?;
    let per_node = (0..3).map(|lb| lab.conns(lb)).collect::<Result<Vec<_>>>()?;
    println!("  300 new connections: per node {per_node:?}, per real {counts:?}");

    section("lb2 crashes (link down, xdpvs and BIRD killed) under 60 keep-alive connections");
    let mut open = lab.keep_alive(60)?;
    lab.crash_node(1)?;
    let withdrawn = lab.wait_next_hops(&[0, 2], Duration::from_secs(5))?;
    let kept = ecmp::survivors(&mut open);
    println!("  BFD withdrew lb2 in {withdrawn:.2?}; {kept} of 60 connections kept their real");
    let after = lab.dr.answers(SocketAddr::from((VIP, 80)), 100)?;
    println!("  100 new requests: {after:?}");
    Ok(())
}

fn tally(lab: &DrLab, n: usize) -> Result<BTreeMap<String, usize>> {
    lab.answers(SocketAddr::from((VIP, 80)), n)
}

/// The newest lb1 log line about `real` going `state`.
fn log_line(lab: &DrLab, real: &str, state: &str) -> Result<String> {
    let addr = real_addr(if real == "rs1" { 0 } else { 1 });
    let needle = format!("real {addr}:80 of TCP {VIP}:80: {state}");
    match lab
        .lab
        .log("xdpvs-lb1")
        .lines()
        .rev()
        .find(|l| l.contains(&needle))
    {
        Some(l) => Ok(l.to_string()),
        None => bail!("no {state} yet"),
    }
}

/// A log line without its timestamp and module.
fn tail(line: &str) -> &str {
    line.split_once("] ").map_or(line, |(_, t)| t)
}
