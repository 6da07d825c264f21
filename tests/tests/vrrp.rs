//! VRRP end to end (root): xdpvs against a real keepalived and against
//! itself, in network namespaces, with measured failover times printed
//! beside the RFC bounds (advert_int 1 s, so Master_Down_Interval is
//! 3 s + Skew_Time, and Skew_Time is (256 - priority)/256 s).

use std::{net::SocketAddr, thread, time::Duration};

use tests::{
    adverts::{Capture, longest_dual_master},
    keepalived::{
        self, Vrrp, has_vip, mac_of, master_down_interval, neigh_mac, skew_time, wait_vip,
    },
    load::Load,
    topology::{DrLab, VIP, lb_addr},
};

/// Scheduling, polling and process start-up on a loaded 2-core runner.
const SLACK: Duration = Duration::from_millis(1500);
const XDP_MODE: &str = "native";

fn report(what: &str, took: Duration, bound_name: &str, bound: Duration) {
    println!(
        "{what}: {:.2} s (RFC {bound_name} {:.2} s)",
        took.as_secs_f64(),
        bound.as_secs_f64()
    );
}

/// SIGTERMs lb1's xdpvs and times how soon `ns` holds the VIP, from the
/// signal (`Lab::stop` itself returns only once xdpvs has exited).
fn handover(lab: &mut DrLab, ns: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let ns = ns.to_string();
    let watcher = thread::spawn(move || wait_vip(&ns, true, timeout));
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM)?;
    watcher
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))?
}

/// xdpvs (priority 100, lb1) against keepalived (99, lb2).
fn against_keepalived(version: u8) {
    let mut lab = DrLab::build(&format!("k{version}"), 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let ours = Vrrp::new(version, 100);
    keepalived::start(
        &mut lab.lab,
        "keepalived",
        &lb2,
        &Vrrp::new(version, 99).conf(),
    )
    .expect("keepalived");
    lab.start_xdpvs(0, &ours.conf(), XDP_MODE).expect("xdpvs");
    let kd_down = master_down_interval(version, 99);
    let our_down = master_down_interval(version, 100);
    let startup = our_down + kd_down + SLACK;
    wait_vip(&lb1, true, startup).expect("xdpvs (100) becomes master");
    wait_vip(&lb2, false, startup).expect("keepalived (99) backs off");

    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 xdpvs");
    let took = wait_vip(&lb2, true, kd_down + SLACK).expect("keepalived takes over after a crash");
    report(
        &format!("v{version} kill -9 xdpvs -> keepalived master"),
        took,
        "Master_Down_Interval(99)",
        kd_down,
    );
    assert!(has_vip(&lb1), "a SIGKILLed process cannot remove its VIP");

    lab.start_xdpvs(0, &ours.conf(), XDP_MODE)
        .expect("restarting xdpvs");
    let took = wait_vip(&lb2, false, our_down + SLACK).expect("xdpvs preempts back");
    report(
        &format!("v{version} xdpvs restart -> preempts keepalived"),
        took,
        "Master_Down_Interval(100)",
        our_down,
    );
    wait_vip(&lb1, true, SLACK).expect("the VIP is back on lb1");

    let skew = skew_time(version, 99);
    let took = handover(&mut lab, &lb2, skew + SLACK).expect("keepalived takes over on priority 0");
    assert!(!has_vip(&lb1), "a stopped xdpvs released its VIP");
    report(
        &format!("v{version} SIGTERM xdpvs -> keepalived master"),
        took,
        "Skew_Time(99)",
        skew,
    );

    let polite = Vrrp {
        preempt: false,
        ..ours
    };
    lab.start_xdpvs(0, &polite.conf(), XDP_MODE)
        .expect("xdpvs with nopreempt");
    thread::sleep(our_down + SLACK);
    assert!(
        has_vip(&lb2) && !has_vip(&lb1),
        "nopreempt: keepalived stays master"
    );
    lab.lab
        .alive("keepalived")
        .expect("keepalived still running");

    // The other way round: the keepalived master crashes, xdpvs takes over.
    keepalived::crash_vrrp(&lab.lab, "keepalived").expect("kill -9 keepalived's VRRP process");
    let took = wait_vip(&lb1, true, our_down + SLACK).expect("xdpvs takes over from keepalived");
    report(
        &format!("v{version} kill -9 keepalived -> xdpvs master"),
        took,
        "Master_Down_Interval(100)",
        our_down,
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn keepalived_interop_v2_pass_auth_root() {
    against_keepalived(2);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn keepalived_interop_v3_root() {
    against_keepalived(3);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn two_xdpvs_nodes_keep_serving_root() {
    let mut lab = DrLab::build("ff", 2, 2).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let adverts = Capture::start(&lab.client).expect("watching adverts from the client");
    let (first, second) = (
        Vrrp {
            reals: 2,
            ..Vrrp::new(3, 100)
        },
        Vrrp {
            reals: 2,
            ..Vrrp::new(3, 99)
        },
    );
    lab.start_xdpvs(1, &second.conf(), XDP_MODE)
        .expect("xdpvs on lb2");
    lab.start_xdpvs(0, &first.conf(), XDP_MODE)
        .expect("xdpvs on lb1");
    let (down1, down2) = (master_down_interval(3, 100), master_down_interval(3, 99));
    wait_vip(&lb1, true, down1 + down2 + SLACK).expect("lb1 becomes master");
    wait_vip(&lb2, false, down1 + SLACK).expect("lb2 backs off");
    let warm = lab
        .requests(SocketAddr::from((VIP, 80)), 5)
        .expect("client");
    assert!(
        warm.iter().all(Result::is_ok),
        "service through lb1: {warm:?}"
    );
    let mac2 = mac_of(&lab.lab, &lb2).expect("lb2 MAC");

    let load = Load::start(&lab);
    thread::sleep(Duration::from_millis(300));
    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 lb1");
    let took = wait_vip(&lb2, true, down2 + SLACK).expect("lb2 takes over");
    thread::sleep(Duration::from_secs(1));
    let (ok, failed) = load.finish();
    report(
        "kill -9 xdpvs master -> xdpvs backup master",
        took,
        "Master_Down_Interval(99)",
        down2,
    );
    println!("  requests during the crash: {ok} ok, {failed} failed");
    // Requests fail only while nobody serves: one per ~20 ms at most.
    let bound = ((down2 + SLACK).as_millis() / 20) as usize;
    assert!(
        failed <= bound,
        "{failed} failures, more than the {bound} a {down2:?} gap allows"
    );
    assert_eq!(
        neigh_mac(&lab.lab, &lab.client).as_deref(),
        Some(mac2.as_str()),
        "gratuitous ARP moved the client to lb2"
    );
    let after = lab
        .requests(SocketAddr::from((VIP, 80)), 5)
        .expect("client");
    assert!(
        after.iter().all(Result::is_ok),
        "service through lb2: {after:?}"
    );

    lab.start_xdpvs(0, &first.conf(), XDP_MODE)
        .expect("restarting lb1");
    wait_vip(&lb2, false, down1 + SLACK).expect("lb1 preempts back");
    wait_vip(&lb1, true, SLACK).expect("VIP on lb1 again");
    let mac1 = mac_of(&lab.lab, &lb1).expect("lb1 MAC");
    tests::netns::wait_for(SLACK, || match neigh_mac(&lab.lab, &lab.client) {
        Some(m) if m == mac1 => Ok(()),
        other => anyhow::bail!("client's VIP entry is {other:?}"),
    })
    .expect("client back on lb1");

    let load = Load::start(&lab);
    thread::sleep(Duration::from_millis(300));
    let skew = skew_time(3, 99);
    let took = handover(&mut lab, &lb2, skew + SLACK).expect("lb2 takes over on priority 0");
    thread::sleep(Duration::from_secs(1));
    let (ok, failed) = load.finish();
    report(
        "SIGTERM xdpvs master -> xdpvs backup master",
        took,
        "Skew_Time(99)",
        skew,
    );
    println!("  requests during the handover: {ok} ok, {failed} failed");
    assert_eq!(failed, 0, "a planned handover loses no request");
    assert!(ok > 0);

    // Over every election above (start, crash, preemption, handover).
    let seen = adverts.finish().expect("advert capture");
    let gap = Duration::from_millis(1500);
    let dual = longest_dual_master(&seen, lb_addr(0), lb_addr(1), gap);
    println!(
        "  {} adverts seen; longest time both nodes advertised as master: {dual:.2?} (bound: one advert interval, 1 s)",
        seen.len()
    );
    for lb in [lb_addr(0), lb_addr(1)] {
        assert!(
            seen.iter().any(|a| a.from == lb && a.priority > 0),
            "no advert from {lb} seen"
        );
    }
    assert!(dual <= Duration::from_secs(1), "split brain for {dual:?}");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn tracked_script_moves_the_vip_root() {
    let mut lab = DrLab::build("ts", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let flag = lab.lab.dir.join("healthy");
    std::fs::write(&flag, "").expect("flag file");
    let ours = Vrrp {
        track_file: Some(flag.clone()),
        ..Vrrp::new(3, 100)
    };
    keepalived::start(&mut lab.lab, "keepalived", &lb2, &Vrrp::new(3, 95).conf())
        .expect("keepalived");
    lab.start_xdpvs(0, &ours.conf(), XDP_MODE).expect("xdpvs");
    let (ours_down, theirs_down) = (master_down_interval(3, 100), master_down_interval(3, 95));
    wait_vip(&lb1, true, ours_down + theirs_down + SLACK).expect("xdpvs master");
    wait_vip(&lb2, false, ours_down + SLACK).expect("keepalived backup");

    std::fs::remove_file(&flag).expect("failing the check");
    // One check interval, then keepalived (95 > 90) preempts after its
    // Master_Down_Interval of ignoring our lower-priority adverts.
    let took = wait_vip(&lb2, true, Duration::from_secs(1) + theirs_down + SLACK)
        .expect("VIP moves to keepalived");
    wait_vip(&lb1, false, SLACK).expect("xdpvs releases the VIP");
    report(
        "track_script failed -> keepalived (95) master",
        took,
        "interval + Master_Down_Interval(95)",
        Duration::from_secs(1) + theirs_down,
    );

    std::fs::write(&flag, "").expect("restoring the check");
    let took =
        wait_vip(&lb1, true, Duration::from_secs(1) + ours_down + SLACK).expect("VIP moves back");
    wait_vip(&lb2, false, SLACK).expect("keepalived backs off");
    report(
        "track_script recovered -> xdpvs (100) master",
        took,
        "interval + Master_Down_Interval(100)",
        Duration::from_secs(1) + ours_down,
    );
}

/// Two instances per node in the dual-master layout: lb1 masters VIP 1 and
/// backs up VIP 2, lb2 the reverse; when lb1 dies, lb2 holds both.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn dual_master_layout_root() {
    let mut lab = DrLab::build("dm", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let vips = ["10.100.0.100", "10.100.0.101"];
    let conf = |prio: [u8; 2]| {
        (0..2)
            .map(|i| {
                format!(
                    "vrrp_instance VI_{i} {{\n    interface eth0\n    virtual_router_id {}\n    priority {}\n    \
                     advert_int 1\n    virtual_ipaddress {{\n        {}/32\n    }}\n}}\n",
                    60 + i,
                    prio[i],
                    vips[i]
                )
            })
            .collect::<String>()
    };
    let holds = |ns: &str, vip: &str| {
        tests::netns::sh("ip", &["-n", ns, "-o", "-4", "addr", "show", "dev", "eth0"])
            .is_ok_and(|out| out.contains(&format!(" {vip}/")))
    };
    lab.start_xdpvs(0, &conf([100, 90]), XDP_MODE)
        .expect("xdpvs on lb1");
    lab.start_xdpvs(1, &conf([90, 100]), XDP_MODE)
        .expect("xdpvs on lb2");
    let settled = |want: [[bool; 2]; 2]| {
        tests::netns::wait_for(Duration::from_secs(12), || {
            let got = [
                [holds(&lb1, vips[0]), holds(&lb1, vips[1])],
                [holds(&lb2, vips[0]), holds(&lb2, vips[1])],
            ];
            if got == want {
                Ok(())
            } else {
                anyhow::bail!("VIPs held: {got:?}, want {want:?}")
            }
        })
    };
    settled([[true, false], [false, true]]).expect("each node masters its own VIP");
    let status = lab.ctl(0, &["status"]).expect("ctl status");
    assert!(
        status.contains("VRRP VI_0 on eth0 vrid 60: MASTER"),
        "{status}"
    );
    assert!(
        status.contains("VRRP VI_1 on eth0 vrid 61: BACKUP"),
        "{status}"
    );
    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 lb1");
    settled([[true, false], [true, true]])
        .expect("lb2 holds both (lb1's crash leaves its address behind)");
}

/// VRRPv3 over IPv6 (ff02::12, link-local sources, unsolicited NAs) with
/// keepalived as the peer.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn keepalived_interop_v3_ipv6_root() {
    let mut lab = DrLab::build("k6", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let vip = "2001:db8::100";
    let conf = |prio: u8| {
        format!(
            "vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 61\n    \
             priority {prio}\n    advert_int 1\n    version 3\n    virtual_ipaddress {{\n        {vip}/64 dev eth0\n    }}\n}}\n"
        )
    };
    let holds = |ns: &str| {
        tests::netns::sh("ip", &["-n", ns, "-o", "-6", "addr", "show", "dev", "eth0"])
            .is_ok_and(|out| out.contains(&format!(" {vip}/")))
    };
    let wait = |ns: &str, want: bool, timeout: Duration| {
        let start = std::time::Instant::now();
        tests::netns::wait_for(timeout, || {
            if holds(ns) == want {
                Ok(start.elapsed())
            } else {
                anyhow::bail!("{ns} holds {vip}: {}", !want)
            }
        })
    };
    keepalived::start(&mut lab.lab, "keepalived", &lb2, &conf(99)).expect("keepalived");
    lab.start_xdpvs(0, &conf(100), XDP_MODE).expect("xdpvs");
    let (our_down, kd_down) = (master_down_interval(3, 100), master_down_interval(3, 99));
    let startup = our_down + kd_down + SLACK;
    wait(&lb1, true, startup).expect("xdpvs (100) becomes master over IPv6");
    wait(&lb2, false, startup).expect("keepalived (99) backs off");
    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 xdpvs");
    let took = wait(&lb2, true, kd_down + SLACK).expect("keepalived takes over");
    report(
        "v3 IPv6 kill -9 xdpvs -> keepalived master",
        took,
        "Master_Down_Interval(99)",
        kd_down,
    );
    lab.start_xdpvs(0, &conf(100), XDP_MODE)
        .expect("restarting xdpvs");
    let took = wait(&lb2, false, our_down + SLACK).expect("xdpvs preempts back over IPv6");
    report(
        "v3 IPv6 xdpvs restart -> preempts keepalived",
        took,
        "Master_Down_Interval(100)",
        our_down,
    );
}
