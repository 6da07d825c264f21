//! The lab a new user builds by hand (root): veth pairs on a bridge with
//! default offloads and nothing on the LB's bridge port. `--xdp-mode auto`
//! must pick tc there and every connection must work, as it must in
//! generic XDP; `native` must say precisely why it will not.

use std::net::SocketAddr;

use tests::topology::{DrLab, VIP, real_addr};

fn config() -> String {
    let real = |i: usize| {
        format!(
            "    real_server {} 80 {{\n        weight 1\n    }}\n",
            real_addr(i)
        )
    };
    format!(
        "virtual_server {VIP} 80 {{\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n{}{}}}\n",
        real(0),
        real(1)
    )
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn auto_mode_serves_a_plain_veth_lab_root() {
    let mut lab = DrLab::build_plain("a", 1, 2).expect("building the lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    lab.start_xdpvs(0, &config(), "auto")
        .expect("starting xdpvs");
    let log = lab.lab.log("xdpvs-lb1");
    let why = log
        .lines()
        .find(|l| l.contains("XDP mode auto picks tc"))
        .unwrap_or_else(|| panic!("auto must say why it picks tc:\n{log}"));
    println!("{why}");
    assert!(why.contains("veth"), "{why}");
    assert!(
        log.contains("tc program attached to eth0 (tcx ingress)"),
        "{log}"
    );
    for mode in ["auto", "generic"] {
        if mode == "generic" {
            lab.start_xdpvs(0, &config(), mode)
                .expect("starting xdpvs generic");
        }
        let answers = lab
            .answers(SocketAddr::from((VIP, 80)), 300)
            .expect("client");
        println!("300 connections through the VIP, {mode} mode, default offloads: {answers:?}");
        assert_eq!(answers.get("failed"), None, "{mode}: {answers:?}");
        assert!(
            answers.contains_key("rs1") && answers.contains_key("rs2"),
            "{mode}: {answers:?}"
        );
        lab.lab
            .stop("xdpvs-lb1", libc::SIGTERM)
            .expect("stopping xdpvs");
    }
    lab.start_xdpvs(0, &config(), "native")
        .expect("starting xdpvs native");
    let log = lab.lab.log("xdpvs-lb1");
    let warning = log
        .lines()
        .find(|l| l.contains("--xdp-mode native: eth0 is a veth device"))
        .unwrap_or_else(|| panic!("native on veth must warn:\n{log}"));
    println!("{warning}");
    assert!(
        warning.contains("XDP_TX") && warning.contains("checksum"),
        "{warning}"
    );
}
