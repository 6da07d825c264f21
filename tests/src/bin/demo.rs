//! `cargo xtask demo`: xdpvs in network namespaces with a built-in
//! keepalived-style config. A client sends a bounded burst of HTTP requests
//! to the VIP; the demo prints what each real received beside its weight, and
//! the balancer's own `xdpvs adm -L -n --stats`, then cleans everything up.

use std::{collections::BTreeMap, net::SocketAddr, time::Instant};

use anyhow::{Context as _, Result, bail};
use tests::{
    netns::is_root,
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

fn demo() -> Result<()> {
    if !is_root() {
        bail!("the demo needs root (network namespaces, XDP)");
    }
    let config = format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 5\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n\
         \x20 real_server {r1} 80 {{\n    weight {w1}\n  }}\n\
         \x20 real_server {r2} 80 {{\n    weight {w2}\n  }}\n}}\n",
        r1 = real_addr(0),
        r2 = real_addr(1),
        w1 = WEIGHTS[0],
        w2 = WEIGHTS[1],
    );
    println!("== building the lab: client, lb1, rs1, rs2 on one bridge (namespaces)");
    let mut lab = DrLab::build("demo", 1, 2)?;
    lab.lab.ip(
        &lab.lbs[0],
        &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
    )?;
    println!("== xdpvs config (lb1):\n{config}");
    lab.start_xdpvs(0, &config, "native")
        .context("starting xdpvs")?;
    println!("== xdpvs is forwarding with native XDP on lb1/eth0");

    println!("== {REQUESTS} HTTP requests from the client to {VIP}:80, one connection each");
    let start = Instant::now();
    let bodies = lab.requests(SocketAddr::from((VIP, 80)), REQUESTS)?;
    let elapsed = start.elapsed();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = 0;
    for body in bodies {
        match body {
            Ok(b) => {
                *counts
                    .entry(b.split(' ').next().unwrap_or_default().to_string())
                    .or_default() += 1
            }
            Err(_) => failed += 1,
        }
    }
    let total_weight: u32 = WEIGHTS.iter().sum();
    println!("\n  real          weight  expected  received");
    for (i, w) in WEIGHTS.iter().enumerate() {
        let name = format!("rs{}", i + 1);
        let got = counts.get(&name).copied().unwrap_or(0);
        let expected = REQUESTS as f64 * *w as f64 / total_weight as f64;
        println!(
            "  {name} {:<9} {w:>4} {expected:>9.0} {got:>9}",
            real_addr(i)
        );
    }
    println!(
        "  failed requests: {failed}; {:.0} requests/s",
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "\n== xdpvs adm -L -n --stats (on lb1)\n{}",
        lab.adm(0, &["-L", "-n", "--stats"])?
    );
    println!("== cleaning up");
    Ok(())
}
