//! End to end in network namespaces (root): health checks take a failed real
//! out of service and bring it back, a reload changes weights for new flows
//! only, and `xdpvs adm -L -n` shows the table throughout.

use std::{
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use tests::{
    netns::{in_netns, wait_for},
    topology::{CLIENT, DrLab, VIP, exchange, real_addr},
};

/// One service with the reals `(index, weight)`, each with an HTTP check.
fn config(reals: &[(usize, u32)]) -> String {
    let real = |i: usize, w: u32| {
        format!(
            "    real_server {} 80 {{\n        weight {w}\n        HTTP_GET {{\n            url {{\n                path /\n                status_code 200\n            }}\n            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n        }}\n    }}\n",
            real_addr(i)
        )
    };
    let body: String = reals.iter().map(|&(i, w)| real(i, w)).collect();
    format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n{body}}}\n"
    )
}

fn vip() -> SocketAddr {
    SocketAddr::from((VIP, 80))
}

/// Which reals answered `n` fresh connections, and how many failed.
fn spread(lab: &DrLab, n: usize) -> ([usize; 2], usize) {
    let counts = lab.answers(vip(), n).expect("client");
    let of = |k: &str| counts.get(k).copied().unwrap_or(0);
    ([of("rs1"), of("rs2")], of("failed"))
}

/// One request on an open keep-alive connection; returns the real's name.
fn ask(stream: &mut TcpStream) -> anyhow::Result<String> {
    let body = exchange(stream)?;
    Ok(body.split(' ').next().unwrap_or_default().to_string())
}

/// A keep-alive connection from the client that landed on `real`.
fn connection_to(lab: &DrLab, real: &'static str) -> TcpStream {
    in_netns(&lab.client, move || {
        for _ in 0..200 {
            let mut s =
                TcpStream::connect_timeout(&vip(), Duration::from_secs(2)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            if ask(&mut s).expect("first request") == real {
                return s;
            }
        }
        panic!("no connection landed on {real}");
    })
    .expect("netns")
}

fn log_line(lab: &DrLab, needle: &str) -> anyhow::Result<String> {
    lab.lab
        .log("xdpvs-lb1")
        .lines()
        .find(|l| l.contains(needle))
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("no log line with {needle:?}"))
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn failed_real_leaves_and_returns_root() {
    let mut lab = DrLab::build("h", 1, 2).expect("lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP");
    lab.start_xdpvs(0, &config(&[(0, 1), (1, 1)]), "native")
        .expect("xdpvs");
    let (counts, failed) = spread(&lab, 100);
    assert!(
        counts[0] > 20 && counts[1] > 20 && failed == 0,
        "{counts:?} {failed}"
    );

    // A long-lived connection to the real that stays healthy, and one to
    // the real that will fail.
    let mut survivor = connection_to(&lab, "rs2");
    let doomed = connection_to(&lab, "rs1");
    let doomed_port = doomed.local_addr().expect("local address").port();

    lab.stop_nginx(0).expect("stop rs1");
    let stopped = Instant::now();
    let down = wait_for(Duration::from_secs(10), || {
        log_line(
            &lab,
            &format!("real {}:80 of TCP {VIP}:80: DOWN", real_addr(0)),
        )
    })
    .expect("rs1 detected down");
    let detected = stopped.elapsed();
    println!(
        "rs1 stopped → DOWN in {detected:.2?} (bound: delay_loop 1 s + retry 1 × (0.5 s + timeout 1 s))\n{down}"
    );
    assert!(detected < Duration::from_secs(5), "{detected:?}");
    let list = lab.adm(0, &["-L", "-n"]).expect("adm");
    println!("{list}");
    assert!(
        !list.contains(&format!("-> {}:80", real_addr(0))),
        "a down real leaves the table:\n{list}"
    );

    // explain follows the data plane: a flow whose real is down is placed again.
    let explained = lab
        .ctl(
            0,
            &[
                "explain",
                "tcp",
                &format!("{CLIENT}:{doomed_port}"),
                &vip().to_string(),
            ],
        )
        .expect("explain");
    assert!(
        explained.contains(&format!("names {}:80, which is down", real_addr(0)))
            && explained.contains(&format!("→ {}:80", real_addr(1))),
        "{explained}"
    );
    drop(doomed);

    let (counts, failed) = spread(&lab, 100);
    assert_eq!(
        (counts, failed),
        ([0, 100], 0),
        "after detection every request goes to rs2 and none fails"
    );
    assert_eq!(
        ask(&mut survivor).expect("long-lived connection"),
        "rs2",
        "the healthy real's connection survives"
    );

    lab.start_nginx(0).expect("start rs1");
    let up = wait_for(Duration::from_secs(10), || {
        log_line(
            &lab,
            &format!("real {}:80 of TCP {VIP}:80: UP", real_addr(0)),
        )
    })
    .expect("rs1 back up");
    println!("{up}");
    let (counts, failed) = spread(&lab, 100);
    assert!(
        counts[0] > 20 && failed == 0,
        "rs1 takes new flows again: {counts:?}"
    );

    // Reload with new weights: new flows follow them, the open connection stays.
    let conf = lab.lab.dir.join("xdpvs-lb1.conf");
    std::fs::write(&conf, config(&[(0, 0), (1, 1)])).expect("rewrite config");
    let reload = lab.ctl(0, &["reload"]).expect("ctl reload");
    println!("{reload}");
    let (counts, failed) = spread(&lab, 50);
    assert_eq!(
        (counts, failed),
        ([0, 50], 0),
        "weight 0 takes no new flows"
    );
    assert_eq!(ask(&mut survivor).expect("after reload"), "rs2");
    let stats = lab.adm(0, &["-L", "-n", "--stats"]).expect("adm");
    println!("{stats}");
    let list = lab.adm(0, &["-L", "-n"]).expect("adm");
    assert!(
        list.contains(&format!("  -> {}:80               Route   0", real_addr(0))),
        "{list}"
    );
    let metrics = lab.metrics(0).expect("metrics");
    for line in [
        format!(
            "xdpvs_real_weight{{protocol=\"TCP\",vip=\"{VIP}\",port=\"80\",real=\"{}:80\"}} 0",
            real_addr(0)
        ),
        format!(
            "xdpvs_real_up{{protocol=\"TCP\",vip=\"{VIP}\",port=\"80\",real=\"{}:80\"}} 1",
            real_addr(1)
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("xdpvs_verdict_packets_total{reason=\"forwarded\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xdpvs_real_check_duration_seconds{"),
        "{metrics}"
    );

    // rs2 leaves the configuration: it drains. Its open connection goes on,
    // new flows go to rs1, and once that connection is closed rs2 goes.
    std::fs::write(&conf, config(&[(0, 1)])).expect("rewrite config");
    let reload = lab.ctl(0, &["reload"]).expect("ctl reload");
    assert!(reload.contains("draining until its flows end"), "{reload}");
    assert_eq!(ask(&mut survivor).expect("draining connection"), "rs2");
    assert_eq!(spread(&lab, 30), ([30, 0], 0));
    assert!(
        lab.ctl(0, &["status"])
            .expect("status")
            .contains("DRAINING")
    );
    drop(survivor);
    let rs2 = format!("-> {}:80", real_addr(1));
    wait_for(Duration::from_secs(10), || {
        match lab.adm(0, &["-L", "-n"]) {
            Ok(list) if !list.contains(&rs2) => Ok(()),
            Ok(list) => anyhow::bail!("rs2 still listed:\n{list}"),
            Err(e) => Err(e),
        }
    })
    .expect("rs2 removed once drained");
}
