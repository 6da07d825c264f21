//! End to end in network namespaces (root): a real's `notify_up` and
//! `notify_down` run when its checks take it out and bring it back and when
//! a reload removes it, `omega` runs the down scripts when the daemon stops, and `ha_suspend` holds a
//! virtual server's checks until its VIP is on the node.

use std::time::Duration;

use tests::{
    netns::wait_for,
    topology::{DrLab, VIP, real_addr},
};

fn vip_on_lb(lab: &DrLab) {
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
}

const CHECK: &str = "    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n";

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn notify_scripts_follow_a_real_and_omega_runs_them_at_shutdown_root() {
    let mut lab = DrLab::build("nt", 1, 2).expect("building the lab");
    vip_on_lb(&lab);
    let events = lab.lab.dir.join("events");
    let script = |word: &str| format!("\"/bin/sh -c 'echo {word} >> {}'\"", events.display());
    let config = |with_rs2: bool| {
        let rs2 = format!(
            "  real_server {} 80 {{\n    notify_down {}\n{CHECK}  }}\n",
            real_addr(1),
            script("rs2-down")
        );
        format!(
            "virtual_server {VIP} 80 {{\n  delay_loop 0.3\n  lb_kind DR\n  protocol TCP\n  omega\n  \
             quorum_down {}\n  real_server {} 80 {{\n    notify_up {}\n    notify_down {}\n{CHECK}  }}\n{}}}\n",
            script("quorum-down"),
            real_addr(0),
            script("rs1-up"),
            script("rs1-down"),
            if with_rs2 { rs2 } else { String::new() },
        )
    };
    let without_rs2 = config(false);
    let config = config(true);
    lab.start_xdpvs(0, &config, "generic")
        .expect("starting xdpvs");
    let read = || std::fs::read_to_string(&events).unwrap_or_default();
    // Reals start up: no transition, no script.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(read(), "", "no script at start");

    lab.stop_nginx(0).expect("stopping rs1");
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "rs1-down\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("notify_down ran once");
    lab.start_nginx(0).expect("starting rs1");
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "rs1-down\nrs1-up\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("notify_up ran once");

    // A reload that removes the live rs2 runs its notify_down, as keepalived.
    let conf = lab.lab.dir.join("xdpvs-lb1.conf");
    std::fs::write(&conf, without_rs2).expect("rewrite config");
    lab.ctl(0, &["reload"]).expect("ctl reload");
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "rs1-down\nrs1-up\nrs2-down\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("notify_down of the removed real ran");

    // omega: stopping runs every live real's notify_down and quorum_down.
    lab.lab
        .stop("xdpvs-lb1", libc::SIGTERM)
        .expect("stopping xdpvs");
    let log = lab.lab.log("xdpvs-lb1");
    let all = read();
    let mut at_stop: Vec<&str> = all.lines().skip(3).collect();
    at_stop.sort_unstable();
    assert_eq!(at_stop, ["quorum-down", "rs1-down"], "{all:?}\n{log}");
    assert!(log.contains("shutting down (omega): running"), "{log}");
}

/// `rs_init_notifies`: a real starting up gets its `notify_up` at start.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn rs_init_notifies_runs_notify_up_at_start_root() {
    let mut lab = DrLab::build("ni", 1, 1).expect("building the lab");
    vip_on_lb(&lab);
    let events = lab.lab.dir.join("events");
    let config = format!(
        "global_defs {{\n  rs_init_notifies\n}}\nvirtual_server {VIP} 80 {{\n  delay_loop 0.3\n  \
         lb_kind DR\n  protocol TCP\n  real_server {} 80 {{\n    notify_up \"/bin/sh -c 'echo up >> {}'\"\n{CHECK}  }}\n}}\n",
        real_addr(0),
        events.display()
    );
    lab.start_xdpvs(0, &config, "generic")
        .expect("starting xdpvs");
    let read = || std::fs::read_to_string(&events).unwrap_or_default();
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "up\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("notify_up ran at start");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(read(), "up\n", "once: the checks passing change nothing");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn ha_suspend_checks_only_while_the_vip_is_here_root() {
    let mut lab = DrLab::build("hs", 1, 2).expect("building the lab");
    let reals: String = (0..2)
        .map(|i| format!("  real_server {} 80 {{\n{CHECK}  }}\n", real_addr(i)))
        .collect();
    let config = format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 0.3\n  lb_kind DR\n  protocol TCP\n  \
         ha_suspend\n{reals}}}\n"
    );
    lab.start_xdpvs(0, &config, "generic")
        .expect("starting xdpvs");
    lab.stop_nginx(1).expect("stopping rs2");
    let rs2_down = format!("real {}:80 of TCP {VIP}:80: DOWN", real_addr(1));
    // Several delay_loops pass without a check while the VIP is elsewhere.
    std::thread::sleep(Duration::from_secs(2));
    let log = lab.lab.log("xdpvs-lb1");
    assert!(!log.contains(&rs2_down), "checked while suspended:\n{log}");
    assert!(
        log.contains(&format!(
            "checks suspended while VIP {VIP} is not on this host (ha_suspend)"
        )),
        "{log}"
    );
    vip_on_lb(&lab);
    wait_for(Duration::from_secs(10), || {
        let log = lab.lab.log("xdpvs-lb1");
        anyhow::ensure!(
            log.contains(&rs2_down) && log.contains("checks resumed"),
            "{log}"
        );
        Ok(())
    })
    .expect("checked once the VIP arrived");
}
