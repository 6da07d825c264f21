//! End to end in network namespaces (root): a virtual_server_group forwards
//! for every member and its reals are checked (and notified) once for all of
//! them, and PING_CHECK takes a real that stops answering ICMP out and back.

use std::{net::SocketAddr, time::Duration};

use tests::{
    netns::wait_for,
    topology::{DrLab, VIP, real_addr},
};

/// A second VIP, the group's other member.
const VIP2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 100, 0, 101);

fn lab_with_vips(tag: &str, vips: &[std::net::Ipv4Addr]) -> DrLab {
    let lab = DrLab::build(tag, 1, 2).expect("lab");
    for vip in vips {
        lab.lab
            .ip(
                &lab.lbs[0],
                &["addr", "add", &format!("{vip}/32"), "dev", "eth0"],
            )
            .expect("VIP on lb1");
        if *vip != VIP {
            for r in &lab.reals {
                lab.lab
                    .ip(r, &["addr", "add", &format!("{vip}/32"), "dev", "lo"])
                    .expect("VIP on a real's lo");
            }
        }
    }
    lab
}

/// Waits until the daemon's log has `n` lines containing all of `needles`.
fn wait_log(lab: &DrLab, needles: &[&str], n: usize) {
    wait_for(Duration::from_secs(10), || {
        let log = lab.lab.log("xdpvs-lb1");
        let found = log
            .lines()
            .filter(|l| needles.iter().all(|w| l.contains(w)))
            .count();
        anyhow::ensure!(found >= n, "{found} of {n} lines with {needles:?}:\n{log}");
        Ok(())
    })
    .expect("log");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn virtual_server_group_forwards_for_every_member_root() {
    let mut lab = lab_with_vips("g", &[VIP, VIP2]);
    let events = lab.lab.dir.join("events");
    let reals: String = (0..2)
        .map(|i| {
            format!(
                " real_server {} {{\n  notify_down \"/bin/sh -c 'echo rs{} >> {}'\"\n  \
                 TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n",
                real_addr(i),
                i + 1,
                events.display()
            )
        })
        .collect();
    let config = format!(
        "virtual_server_group WEB {{\n {VIP}-101 80\n}}\n\
         virtual_server group WEB {{\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n{reals}}}\n"
    );
    lab.start_xdpvs(0, &config, "skb").expect("xdpvs");
    let list = lab.adm(0, &["-L", "-n"]).expect("adm");
    for vip in [VIP, VIP2] {
        assert!(list.contains(&format!("TCP  {vip}:80 rr")), "{list}");
        let counts = lab
            .answers(SocketAddr::from((vip, 80)), 40)
            .expect("client");
        assert_eq!(counts.get("failed"), None, "{vip}: {counts:?}");
        assert!(
            counts.get("rs1").copied().unwrap_or(0) > 0
                && counts.get("rs2").copied().unwrap_or(0) > 0,
            "{vip}: {counts:?}"
        );
    }
    // One check for rs2, its verdict applied to both services.
    lab.stop_nginx(1).expect("stopping rs2");
    let rs2 = format!("real {}:80 of", real_addr(1));
    for vip in [VIP, VIP2] {
        wait_log(&lab, &[&rs2, &format!("TCP {vip}:80: DOWN")], 1);
    }
    let log = lab.lab.log("xdpvs-lb1");
    let downs = log
        .lines()
        .filter(|l| l.contains(&rs2) && l.contains(": DOWN"))
        .count();
    assert_eq!(downs, 2, "one DOWN per service:\n{log}");
    // One real of one virtual server to keepalived: its notify_down runs once.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_to_string(&events).unwrap_or_default(),
        "rs2\n"
    );
    for vip in [VIP, VIP2] {
        let counts = lab
            .answers(SocketAddr::from((vip, 80)), 20)
            .expect("client");
        assert_eq!(counts.get("rs1").copied(), Some(20), "{vip}: {counts:?}");
    }
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn ping_check_follows_a_real_that_stops_answering_root() {
    let mut lab = lab_with_vips("p", &[VIP]);
    let reals: String = (0..2)
        .map(|i| {
            format!(
                " real_server {} 80 {{\n  PING_CHECK {{\n   connect_timeout 0.5\n   retry 0\n  }}\n }}\n",
                real_addr(i)
            )
        })
        .collect();
    let config = format!(
        "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n{reals}}}\n"
    );
    lab.start_xdpvs(0, &config, "skb").expect("xdpvs");
    // rs2 stops answering echoes (its web server still runs).
    lab.lab
        .sysctl(&lab.reals[1], "net.ipv4.icmp_echo_ignore_all=1")
        .expect("sysctl");
    let rs2 = format!("real {}:80 of TCP {VIP}:80", real_addr(1));
    wait_log(&lab, &[&rs2, "DOWN (PING_CHECK", "timeout after 500ms"], 1);
    let counts = lab
        .answers(SocketAddr::from((VIP, 80)), 20)
        .expect("client");
    assert_eq!(counts.get("rs1").copied(), Some(20), "{counts:?}");
    lab.lab
        .sysctl(&lab.reals[1], "net.ipv4.icmp_echo_ignore_all=0")
        .expect("sysctl");
    wait_log(&lab, &[&rs2, "UP"], 1);
    let rs1 = format!("real {}:80 of TCP {VIP}:80: DOWN", real_addr(0));
    assert!(
        !lab.lab.log("xdpvs-lb1").contains(&rs1),
        "rs1 answered throughout"
    );
}
