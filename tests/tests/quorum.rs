//! End to end in network namespaces (root): a virtual server's `quorum`
//! follows its healthy reals' weights, runs `quorum_down` and `quorum_up` on
//! the transitions (what operators use to withdraw and announce a VIP by BGP)
//! and shows in `ctl status` and the metrics; a reload that changes the
//! quorum runs the scripts it brings.

use std::time::Duration;

use tests::{
    netns::wait_for,
    topology::{DrLab, VIP, real_addr},
};

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn quorum_scripts_run_on_transitions_root() {
    let mut lab = DrLab::build("qu", 1, 2).expect("building the lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    let events = lab.lab.dir.join("quorum-events");
    let script = |word: &str| format!("\"/bin/sh -c 'echo {word} >> {}'\"", events.display());
    let real = |i: usize| {
        format!(
            "  real_server {} 80 {{\n    weight 2\n    TCP_CHECK {{\n      connect_timeout 1\n      \
             retry 0\n    }}\n  }}\n",
            real_addr(i)
        )
    };
    // Weights 2 + 2; quorum 3: one real down (2) loses it.
    let config = format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 0.3\n  lb_kind DR\n  protocol TCP\n  quorum 3\n  \
         quorum_up {}\n  quorum_down {}\n{}{}}}\n",
        script("up"),
        script("down"),
        real(0),
        real(1)
    );
    lab.start_xdpvs(0, &config, "generic")
        .expect("starting xdpvs");
    let read = || std::fs::read_to_string(&events).unwrap_or_default();
    let status = lab.ctl(0, &["status"]).expect("status");
    assert!(
        status.contains("quorum UP: live weight 4, quorum 3"),
        "{status}"
    );
    assert_eq!(read(), "", "no script at start");

    lab.stop_nginx(0).expect("stopping rs1");
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "down\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("quorum_down ran once");
    let status = lab.ctl(0, &["status"]).expect("status");
    assert!(
        status.contains("quorum DOWN: live weight 2, quorum 3"),
        "{status}"
    );
    let metrics = lab.metrics(0).expect("metrics");
    let line = format!("xdpvs_service_quorum_up{{protocol=\"TCP\",vip=\"{VIP}\",port=\"80\"}} 0");
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
    assert!(
        lab.lab
            .log("xdpvs-lb1")
            .contains("lost quorum, live weight 2 < 3"),
        "{}",
        lab.lab.log("xdpvs-lb1")
    );

    lab.start_nginx(0).expect("starting rs1");
    wait_for(Duration::from_secs(10), || match read().as_str() {
        "down\nup\n" => Ok(()),
        other => anyhow::bail!("events so far: {other:?}"),
    })
    .expect("quorum_up ran once");
    let metrics = lab.metrics(0).expect("metrics");
    let line = format!("xdpvs_service_quorum_up{{protocol=\"TCP\",vip=\"{VIP}\",port=\"80\"}} 1");
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_reload_that_loses_quorum_runs_the_quorum_down_it_adds_root() {
    let mut lab = DrLab::build("qr", 1, 1).expect("building the lab");
    let events = lab.lab.dir.join("quorum-events");
    let config = |extra: &str| {
        format!(
            "virtual_server {VIP} 80 {{\n  delay_loop 0.3\n  lb_kind DR\n  protocol TCP\n{extra}  \
             real_server {} 80 {{\n    weight 2\n    TCP_CHECK {{\n      connect_timeout 1\n    \
             }}\n  }}\n}}\n",
            real_addr(0)
        )
    };
    lab.start_xdpvs(0, &config(""), "generic")
        .expect("starting xdpvs");
    // Weight 2 under quorum 3: the reload itself loses the quorum, and the
    // script is the reload's own.
    let down = format!(
        "  quorum 3\n  quorum_down \"/bin/sh -c 'echo down >> {}'\"\n",
        events.display()
    );
    std::fs::write(lab.lab.dir.join("xdpvs-lb1.conf"), config(&down)).expect("rewrite config");
    lab.ctl(0, &["reload"]).expect("ctl reload");
    wait_for(Duration::from_secs(10), || {
        match std::fs::read_to_string(&events)
            .unwrap_or_default()
            .as_str()
        {
            "down\n" => Ok(()),
            other => anyhow::bail!("events so far: {other:?}"),
        }
    })
    .expect("quorum_down ran once");
}
