//! End-to-end benchmark (root): HTTP requests per second from a client
//! through the VIP (xdpvs forwarding with native XDP) beside the same client
//! talking to a real server directly, in the same run, on the same bridge.
//! Each request is a new TCP connection, so every one is a new flow.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use tests::{
    netns::is_root,
    topology::{DrLab, VIP, real_addr},
};

const REQUESTS: usize = 3000;
const ROUNDS: usize = 3;

fn main() -> Result<()> {
    if !is_root() {
        bail!("the end-to-end benchmark needs root (network namespaces, XDP)");
    }
    println!("end to end: building client, lb1, rs1, rs2 (nginx) on one bridge");
    let mut lab = DrLab::build("eb", 1, 2)?;
    lab.lab.ip(
        &lab.lbs[0],
        &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
    )?;
    let config = format!(
        "virtual_server {VIP} 80 {{\n  lb_kind DR\n  protocol TCP\n  real_server {} 80 {{\n  }}\n  real_server {} 80 {{\n  }}\n}}\n",
        real_addr(0),
        real_addr(1)
    );
    lab.start_xdpvs(0, &config, "native")?;
    let rate = |target: SocketAddr| -> Result<f64> {
        let start = Instant::now();
        let results = lab.requests(target, REQUESTS)?;
        let elapsed = start.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            bail!("{failed} of {REQUESTS} requests to {target} failed");
        }
        Ok(REQUESTS as f64 / elapsed.as_secs_f64())
    };
    let (vip, direct) = (
        SocketAddr::from((VIP, 80)),
        SocketAddr::from((real_addr(0), 80)),
    );
    let mut best = (0f64, 0f64);
    for round in 1..=ROUNDS {
        let (through, straight) = (rate(vip)?, rate(direct)?);
        println!("  round {round}: through the VIP {through:.0} req/s, direct {straight:.0} req/s");
        best = (best.0.max(through), best.1.max(straight));
    }
    println!(
        "\n{REQUESTS} sequential HTTP requests, one TCP connection each, best of {ROUNDS}:\n\
         case                      req/s   vs direct\n\
         direct to rs1          {:>8.0}       1.00x\n\
         through the VIP (XDP)  {:>8.0}       {:.2}x",
        best.1,
        best.0,
        best.0 / best.1
    );
    // Let the daemon's log show nothing went wrong, then clean up.
    std::thread::sleep(Duration::from_millis(100));
    lab.lab.alive("xdpvs-lb1")?;
    Ok(())
}
