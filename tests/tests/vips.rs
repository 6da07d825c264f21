//! How VRRP puts itself on the wire and its VIPs on the interface, end to
//! end (root): IPv6 VIPs skip duplicate address detection (keepalived adds
//! them with NODAD), and `vrrp_mcast_group4` / `vrrp_mcast_group6` are joined
//! and spoken on, with keepalived as the peer.

use std::time::{Duration, Instant};

use tests::{
    keepalived::{self, master_down_interval, wait_vip},
    netns::{sh, wait_for},
    topology::{DrLab, VIP},
};

const SLACK: Duration = Duration::from_millis(1500);

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn ipv6_vip_is_never_tentative_root() {
    let mut lab = DrLab::build("dad", 1, 0).expect("building the lab");
    let lb = lab.lbs[0].clone();
    // DAD on, as on any host (one probe, a second of `tentative`).
    for s in [
        "net.ipv6.conf.eth0.accept_dad=1",
        "net.ipv6.conf.eth0.dad_transmits=1",
    ] {
        lab.lab.sysctl(&lb, s).expect("sysctl");
    }
    let vip = "2001:db8::100";
    // The owner becomes master at once (RFC 5798 §6.4.1).
    let conf = format!(
        "vrrp_instance VI_6 {{\n    interface eth0\n    virtual_router_id 61\n    priority 255\n    \
         advert_int 1\n    version 3\n    virtual_ipaddress {{\n        {vip}/64 dev eth0\n    }}\n}}\n"
    );
    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    let start = Instant::now();
    let first = wait_for(Duration::from_secs(10), || {
        let out = sh("ip", &["-n", &lb, "-6", "addr", "show", "dev", "eth0"])?;
        match out.lines().find(|l| l.contains(&format!(" {vip}/"))) {
            Some(line) => Ok(line.to_string()),
            None => anyhow::bail!("{vip} not added yet"),
        }
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    println!(
        "VIP seen after {:.2} s: {first}",
        start.elapsed().as_secs_f64()
    );
    assert!(!first.contains("tentative"), "{first}");
    assert!(first.contains("nodad"), "added with IFA_F_NODAD: {first}");
}

/// `promote_secondaries`: set on the VIPs' interface while xdpvs runs, so
/// deleting the interface's primary address keeps a VIP of its subnet;
/// cleared at stop, as keepalived does. `disable_local_igmp` likewise turns
/// the namespace's link-local IGMP reports off while it runs.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn promote_secondaries_keeps_vips_of_the_primarys_subnet_root() {
    let mut lab = DrLab::build("ps", 1, 0).expect("building the lab");
    let lb = lab.lbs[0].clone();
    let sysctl = || {
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &lb,
                "cat",
                "/proc/sys/net/ipv4/conf/eth0/promote_secondaries",
            ],
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
    };
    assert_eq!(sysctl(), "0", "off by default");
    let igmp = || {
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &lb,
                "cat",
                "/proc/sys/net/ipv4/igmp_link_local_mcast_reports",
            ],
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
    };
    assert_eq!(igmp(), "1", "the kernel's default");
    let conf = format!(
        "global_defs {{\n    disable_local_igmp\n}}\nvrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 255\n    \
         promote_secondaries\n    virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n"
    );
    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    let has_vip = || {
        sh("ip", &["-n", &lb, "-4", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!(" {VIP}/24")))
    };
    wait_for(Duration::from_secs(10), || {
        if has_vip() {
            Ok(())
        } else {
            anyhow::bail!("no VIP yet")
        }
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    assert_eq!(sysctl(), "1");
    assert_eq!(igmp(), "0", "no link-local IGMP reports while xdpvs runs");
    // The node's own address, primary of the VIP's /24 (the VIP came second).
    let primary = sh(
        "ip",
        &["-n", &lb, "-4", "-o", "addr", "show", "dev", "eth0"],
    )
    .expect("addr")
    .lines()
    .find(|l| !l.contains("secondary") && l.contains("/24"))
    .and_then(|l| l.split_whitespace().nth(3).map(String::from))
    .expect("a primary /24 address");
    sh("ip", &["-n", &lb, "addr", "del", &primary, "dev", "eth0"]).expect("del");
    assert!(
        has_vip(),
        "the VIP was promoted, not deleted with {primary}"
    );
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("SIGTERM");
    assert_eq!(sysctl(), "0", "cleared at stop");
    assert_eq!(igmp(), "1", "given back at stop");
}

/// `vrrp_startup_delay`: the owner, which takes over at once otherwise,
/// holds its VIP only once the delay has passed.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn vrrp_startup_delay_holds_vrrp_back_root() {
    let mut lab = DrLab::build("sd", 1, 0).expect("building the lab");
    let lb = lab.lbs[0].clone();
    let conf = format!(
        "global_defs {{\n    vrrp_startup_delay 2\n}}\nvrrp_instance VI_1 {{\n    interface eth0\n    \
         virtual_router_id 51\n    priority 255\n    virtual_ipaddress {{\n        {VIP}/32 dev eth0\n    }}\n}}\n"
    );
    let start = Instant::now();
    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    // The delay runs from the instance's start, which the daemon logs once
    // its data plane is loaded (on a slow host the VIP came 3.5 s after the
    // start: the load, the verifier's walk included, then the 2 s): the
    // upper bound is from there.
    let mut delaying = None;
    wait_for(Duration::from_secs(10), || {
        if delaying.is_none() && lab.lab.log("xdpvs-lb1").contains("VI_1: VRRP starts in 2s") {
            delaying = Some(Instant::now());
        }
        let out = sh("ip", &["-n", &lb, "-4", "addr", "show", "dev", "eth0"])?;
        if out.contains(&format!(" {VIP}/32")) {
            Ok(())
        } else {
            anyhow::bail!("no VIP yet")
        }
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    let took = start.elapsed();
    let delaying = delaying.expect("the daemon logged the delay");
    let after_delay_began = delaying.elapsed();
    assert!(
        took >= Duration::from_secs(2) && after_delay_began < Duration::from_secs(2) + SLACK,
        "VIP {took:?} after the start, {after_delay_began:?} after the delay was logged, want 2 s"
    );
}

/// `vrrp_mcast_group4 224.0.0.19` on both nodes: xdpvs joins and sends to
/// that group only, and keepalived, listening there, backs off.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn custom_multicast_group_with_keepalived_root() {
    multicast_group_with_keepalived(
        "mg",
        "global_defs {\n    vrrp_mcast_group4 224.0.0.19\n}\n",
        "",
    );
}

/// The same with the instance's own `mcast_dst_ip 224.0.0.19`.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn instance_multicast_group_with_keepalived_root() {
    multicast_group_with_keepalived("mi", "", "    mcast_dst_ip 224.0.0.19\n");
}

fn multicast_group_with_keepalived(tag: &str, global: &str, in_instance: &str) {
    let mut lab = DrLab::build(tag, 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let conf = |prio: u8| {
        format!(
            "{global}vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
             priority {prio}\n    advert_int 1\n{in_instance}    virtual_ipaddress {{\n        {VIP}/32 dev eth0\n    }}\n}}\n"
        )
    };
    keepalived::start(&mut lab.lab, "keepalived", &lb2, &conf(99)).expect("keepalived");
    lab.start_xdpvs(0, &conf(100), "generic").expect("xdpvs");
    let startup = master_down_interval(2, 100) + master_down_interval(2, 99) + SLACK;
    wait_vip(&lb1, true, startup).expect("xdpvs (100) becomes master");
    wait_vip(&lb2, false, startup).expect("keepalived (99) hears it on 224.0.0.19 and backs off");
    let groups = sh("ip", &["-n", &lb1, "maddr", "show", "dev", "eth0"]).expect("ip maddr");
    assert!(groups.contains("224.0.0.19"), "{groups}");
    assert!(!groups.contains("224.0.0.18"), "{groups}");
    // Stays that way: keepalived keeps hearing xdpvs's adverts.
    std::thread::sleep(master_down_interval(2, 99) + SLACK);
    assert!(
        !keepalived::has_vip(&lb2),
        "keepalived took the VIP: adverts lost"
    );
}

/// `vrrp_mcast_group6 ff02::13` on both nodes, VRRPv3 over IPv6.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn custom_ipv6_multicast_group_with_keepalived_root() {
    let mut lab = DrLab::build("mg6", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let vip = "2001:db8::100";
    let conf = |prio: u8| {
        format!(
            "global_defs {{\n    vrrp_mcast_group6 ff02::13\n}}\n\
             vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 61\n    \
             priority {prio}\n    advert_int 1\n    version 3\n    virtual_ipaddress {{\n        {vip}/64 dev eth0\n    }}\n}}\n"
        )
    };
    let holds = |ns: &str| {
        sh("ip", &["-n", ns, "-o", "-6", "addr", "show", "dev", "eth0"])
            .is_ok_and(|out| out.contains(&format!(" {vip}/")))
    };
    keepalived::start(&mut lab.lab, "keepalived", &lb2, &conf(99)).expect("keepalived");
    lab.start_xdpvs(0, &conf(100), "generic").expect("xdpvs");
    let startup = master_down_interval(3, 100) + master_down_interval(3, 99) + SLACK;
    wait_for(startup, || {
        if holds(&lb1) && !holds(&lb2) {
            Ok(())
        } else {
            anyhow::bail!("lb1 holds {}, lb2 holds {}", holds(&lb1), holds(&lb2))
        }
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    let groups = sh("ip", &["-n", &lb1, "-6", "maddr", "show", "dev", "eth0"]).expect("ip maddr");
    assert!(groups.contains("ff02::13"), "{groups}");
    assert!(!groups.contains("ff02::12"), "{groups}");
    std::thread::sleep(master_down_interval(3, 99) + SLACK);
    assert!(!holds(&lb2), "keepalived took the VIP: adverts lost");
}
