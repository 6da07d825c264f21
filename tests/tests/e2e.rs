//! End to end in network namespaces (root): a client, an xdpvs node and two
//! nginx real servers on one bridge; traffic to the VIP goes through XDP in
//! direct-routing mode.

use std::{collections::BTreeMap, net::SocketAddr};

use tests::topology::{CLIENT, DrLab, VIP, real_addr};

fn config(weights: [u32; 2]) -> String {
    format!(
        "! two reals behind one VIP, as an operator writes it\n\
         virtual_server {VIP} 80 {{\n    delay_loop 5\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n\
         \x20   real_server {r1} 80 {{\n        weight {w1}\n    }}\n\
         \x20   real_server {r2} 80 {{\n        weight {w2}\n    }}\n}}\n",
        r1 = real_addr(0),
        r2 = real_addr(1),
        w1 = weights[0],
        w2 = weights[1],
    )
}

/// Per real: how many responses, checking each saw the client's own address.
fn tally(bodies: Vec<anyhow::Result<String>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let body = body.unwrap_or_else(|e| panic!("request {i} failed: {e:#}"));
        let (real, seen) = body
            .split_once(' ')
            .unwrap_or_else(|| panic!("odd body {body:?}"));
        assert_eq!(
            seen,
            CLIENT.to_string(),
            "the real must see the client's address"
        );
        *counts.entry(real.to_string()).or_default() += 1;
    }
    counts
}

/// The `Conns` column of `xdpvs adm -L -n --stats` for a real.
fn conns(stats: &str, real: &str) -> u64 {
    stats
        .lines()
        .find(|l| l.starts_with(&format!("  -> {real}:")))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stats line for {real} in\n{stats}"))
}

fn weighted_split(mode: &str, requests: usize) {
    let weights = [1, 3];
    let mut lab = DrLab::build(&mode[..1], 1, 2).expect("building the lab");
    // The LB node answers ARP for the VIP; the reals hold it on lo only.
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    lab.start_xdpvs(0, &config(weights), mode)
        .expect("starting xdpvs");

    let counts = tally(
        lab.requests(SocketAddr::from((VIP, 80)), requests)
            .expect("client"),
    );
    let got = [
        counts.get("rs1").copied().unwrap_or(0),
        counts.get("rs2").copied().unwrap_or(0),
    ];
    assert_eq!(got[0] + got[1], requests, "{counts:?}");
    // Binomial: 5 standard deviations either side of the weight share.
    let p = weights[0] as f64 / (weights[0] + weights[1]) as f64;
    let (mean, sd) = (
        requests as f64 * p,
        (requests as f64 * p * (1.0 - p)).sqrt(),
    );
    assert!(
        (got[0] as f64 - mean).abs() <= 5.0 * sd,
        "rs1 got {} of {requests}, expected {mean:.0} ± {:.0} for weights {weights:?}",
        got[0],
        5.0 * sd
    );

    // The balancer's own counters: one flow per connection, all by XDP.
    let stats = lab.adm(0, &["-L", "-n", "--stats"]).expect("xdpvs adm");
    println!("{stats}");
    assert_eq!(
        conns(&stats, &real_addr(0).to_string()),
        got[0] as u64,
        "{stats}"
    );
    assert_eq!(
        conns(&stats, &real_addr(1).to_string()),
        got[1] as u64,
        "{stats}"
    );
    let list = lab.adm(0, &["-L", "-n"]).expect("xdpvs adm");
    assert!(list.contains(&format!("TCP  {VIP}:80 wrr")), "{list}");
    assert!(
        list.contains(&format!("  -> {}:80", real_addr(0))),
        "{list}"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn weighted_split_native_xdp_root() {
    weighted_split("native", 800);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn weighted_split_generic_xdp_root() {
    weighted_split("generic", 400);
}

/// systemd hears READY=1 only once every real's MAC is known, so what is
/// ordered after the unit finds the VIP served.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn ready_is_told_once_the_reals_are_resolved_root() {
    use std::os::unix::net::UnixDatagram;
    let mut lab = DrLab::build("r", 1, 2).expect("building the lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP");
    let path = lab.lab.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&path).expect("notify socket");
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let env = format!("NOTIFY_SOCKET={}", path.display());
    let log_path = lab.lab.log_path("xdpvs-lb1");
    let waiter = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let n = notify.recv(&mut buf).expect("a notification");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.lines().any(|l| l == "READY=1") {
                // The log as it stood when systemd would have been told.
                return std::fs::read_to_string(&log_path).unwrap_or_default();
            }
        }
    });
    lab.start_xdpvs_with(
        0,
        &config([1, 1]),
        "generic",
        &tests::topology::Launch {
            wrapper: &["env", &env],
            ..Default::default()
        },
    )
    .expect("xdpvs");
    let log_at_ready = waiter.join().expect("READY=1 received");
    assert_eq!(
        log_at_ready.matches(" is at ").count(),
        2,
        "both reals resolved before READY=1:\n{log_at_ready}"
    );
}
