//! Active-active end to end (root): three xdpvs nodes behind a router that
//! spreads the VIP's flows over them by ECMP, each node's BIRD announcing
//! the VIP by BGP (with BFD) while xdpvs can serve it.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use tests::{
    ecmp::{self, EcmpLab, MODE, survivors},
    load::Load,
    topology::{VIP, real_addr},
};

fn vip() -> SocketAddr {
    SocketAddr::from((VIP, 80))
}

fn config(reals: usize) -> String {
    ecmp::config(&vec![1; reals], false)
}

/// Every node's configuration: the same file, with flow sync between all
/// three, and the reals' weights.
fn synced(weights: &[u32]) -> String {
    ecmp::config(weights, true)
}

fn start(lab: &mut EcmpLab, reals: usize) {
    start_with(lab, &config(reals));
}

fn start_with(lab: &mut EcmpLab, config: &str) {
    let took = lab.start_all(config).expect("every node announced");
    println!("all {} nodes announced in {took:.2?}", lab.dr.lbs.len());
}

fn conns(lab: &EcmpLab, lb: usize) -> u64 {
    lab.conns(lb).expect("adm")
}

fn keep_alive(lab: &EcmpLab, n: usize) -> Vec<(TcpStream, String)> {
    lab.keep_alive(n).expect("keep-alive connections")
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn three_nodes_share_the_vip_and_survive_a_crash_and_a_stop_root() {
    let mut lab = EcmpLab::build("e", 3, 2).expect("lab");
    start(&mut lab, 2);

    // Every node carries traffic; the reals share it by weight.
    let answers = lab.dr.answers(vip(), 300).expect("requests");
    let per_node: Vec<u64> = (0..3).map(|lb| conns(&lab, lb)).collect();
    println!("300 new connections: per node {per_node:?}, per real {answers:?}");
    assert_eq!(answers.get("failed"), None, "{answers:?}");
    assert!(
        per_node.iter().all(|&n| n >= 45),
        "each node forwards at least 15%: {per_node:?}"
    );
    assert!(
        ["rs1", "rs2"]
            .iter()
            .all(|r| answers.get(*r).copied().unwrap_or(0) >= 100),
        "weights 1:1: {answers:?}"
    );

    // A node crashes under 60 keep-alive connections.
    let mut open = keep_alive(&lab, 60);
    let on_node_2 = conns(&lab, 1);
    lab.crash_node(1).expect("crash lb2");
    let withdrawn = lab
        .wait_next_hops(&[0, 2], Duration::from_secs(5))
        .expect("lb2 withdrawn");
    let kept = survivors(&mut open);
    let after: BTreeMap<String, usize> = lab.dr.answers(vip(), 100).expect("requests");
    println!(
        "lb2 crashed (it had forwarded {on_node_2} connections): withdrawn in {withdrawn:.2?}; \
         {kept}/60 keep-alive connections kept their real; 100 new requests after: {after:?}"
    );
    assert!(
        withdrawn < Duration::from_secs(1),
        "BFD bound: {withdrawn:?}"
    );
    assert_eq!(kept, 60, "every connection survives the crash");
    assert_eq!(
        after.get("failed"),
        None,
        "no new connection fails: {after:?}"
    );

    // A node stopped on purpose withdraws first: nothing breaks, nothing fails.
    let load = Load::start(&lab.dr);
    std::thread::sleep(Duration::from_millis(500));
    lab.dr
        .lab
        .stop("xdpvs-lb1", libc::SIGTERM)
        .expect("stop lb1");
    let log = lab.dr.lab.log("xdpvs-lb1");
    let (ok, failed) = load.finish();
    let kept = survivors(&mut open);
    println!(
        "lb1 stopped with SIGTERM: {ok} requests ok, {failed} failed during the stop; \
         {kept}/60 connections kept their real"
    );
    let withdrew = log.find("withdrew 10.100.0.100");
    let gone = log.find("stopping: removing the data plane");
    assert!(
        withdrew.is_some() && withdrew < gone,
        "withdrawn before the data plane goes:\n{log}"
    );
    lab.wait_next_hops(&[2], Duration::from_secs(2))
        .expect("only lb3 left");
    assert_eq!(
        (failed, kept),
        (0, 60),
        "no request fails, no connection breaks"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_node_that_cannot_reach_the_reals_withdraws_root() {
    let mut lab = EcmpLab::build("w", 2, 2).expect("lab");
    start(&mut lab, 2);
    // lb1's own connections to the reals fail (its checks), while its XDP
    // program, which needs no route, could still forward.
    let lb1 = lab.dr.lbs[0].clone();
    for i in 0..2 {
        lab.dr
            .lab
            .ip(
                &lb1,
                &["route", "add", "prohibit", &format!("{}/32", real_addr(i))],
            )
            .expect("cut lb1 off");
    }
    let withdrawn = lab
        .wait_next_hops(&[1], Duration::from_secs(10))
        .expect("lb1 withdraws");
    let status = lab.dr.ctl(0, &["status"]).expect("ctl status");
    println!("lb1 cut off from the reals: withdrawn in {withdrawn:.2?}\n{status}");
    assert!(
        status.contains(
            "VIP 10.100.0.100: withdrawn (TCP 10.100.0.100:80: below quorum (live weight 0, needs 1))"
        ),
        "{status}"
    );
    let answers = lab.dr.answers(vip(), 50).expect("requests");
    assert_eq!(answers.get("failed"), None, "lb2 serves: {answers:?}");

    for i in 0..2 {
        lab.dr
            .lab
            .ip(
                &lb1,
                &["route", "del", "prohibit", &format!("{}/32", real_addr(i))],
            )
            .expect("reconnect lb1");
    }
    let back = lab
        .wait_next_hops(&[0, 1], Duration::from_secs(10))
        .expect("lb1 announces again");
    println!("lb1 reaches the reals again: announced in {back:.2?}");
    let metrics = lab.dr.metrics(0).expect("metrics");
    assert!(
        metrics.contains("xdpvs_vip_announced{vip=\"10.100.0.100\"} 1"),
        "{metrics}"
    );
}

/// Rewrites node `lb`'s configuration and reloads it.
fn reload(lab: &EcmpLab, lb: usize, config: &str) {
    let path = lab.dr.lab.dir.join(format!("xdpvs-lb{}.conf", lb + 1));
    std::fs::write(&path, config).expect("config");
    lab.dr.ctl(lb, &["reload"]).expect("reload");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn synced_flows_keep_their_real_across_a_ring_change_and_a_crash_root() {
    let mut lab = EcmpLab::build("s", 3, 3).expect("lab");
    start_with(&mut lab, &synced(&[1, 1, 0]));
    let mut open = keep_alive(&lab, 60);
    // rs3 takes traffic (weight 0 to 1): every node's ring changes, so a
    // third of the flows that ECMP later moves would land elsewhere
    // without their entries.
    for lb in 0..3 {
        reload(&lab, lb, &synced(&[1, 1, 1]));
    }
    std::thread::sleep(Duration::from_secs(1));
    let status = lab.dr.ctl(0, &["status"]).expect("status");
    let on_node_2 = conns(&lab, 1);
    lab.crash_node(1).expect("crash lb2");
    lab.wait_next_hops(&[0, 2], Duration::from_secs(5))
        .expect("lb2 withdrawn");
    let kept = survivors(&mut open);
    println!(
        "rs3 added, then lb2 crashed (it had forwarded {on_node_2} connections): \
         {kept}/60 keep-alive connections kept their real\n{status}"
    );
    assert!(status.contains("flow sync with"), "{status}");
    assert_eq!(kept, 60, "every connection keeps its real");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_joining_node_learns_the_flows_before_it_announces_root() {
    let mut lab = EcmpLab::build("j", 3, 3).expect("lab");
    for lb in 0..2 {
        lab.dr
            .start_xdpvs(lb, &synced(&[1, 1, 0]), MODE)
            .expect("xdpvs");
        lab.start_node_bird(lb).expect("bird");
    }
    lab.wait_next_hops(&[0, 1], Duration::from_secs(20))
        .expect("two nodes announced");
    let mut open = keep_alive(&lab, 60);
    for lb in 0..2 {
        reload(&lab, lb, &synced(&[1, 1, 1]));
    }
    std::thread::sleep(Duration::from_millis(500));
    // lb3 joins with the new ring; ECMP then moves a third of the flows to it.
    lab.dr
        .start_xdpvs(2, &synced(&[1, 1, 1]), MODE)
        .expect("xdpvs lb3");
    lab.start_node_bird(2).expect("bird lb3");
    let joined = lab
        .wait_next_hops(&[0, 1, 2], Duration::from_secs(20))
        .expect("lb3 announced");
    let log = lab.dr.lab.log("xdpvs-lb3");
    let learnt = log.find("learnt the live flows of every peer");
    let announced = log.find("announcing 10.100.0.100");
    assert!(
        learnt.is_some() && learnt < announced,
        "lb3 learns the flows, then announces:\n{log}"
    );
    let kept = survivors(&mut open);
    let status = lab.dr.ctl(2, &["status"]).expect("status");
    println!(
        "lb3 joined, announced in {joined:.2?}; {kept}/60 connections kept their real\n{status}"
    );
    assert_eq!(kept, 60, "flows moved to the new node keep their real");
}
