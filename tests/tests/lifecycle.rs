//! The data plane outlives the daemon (root, namespaces, real nginx): a
//! `kill -9` keeps every connection and the restarted daemon adopts the
//! pinned data plane; health is carried over; pins are per namespace and
//! interface; a layout mismatch, `--fresh-dataplane`, `--keep-dataplane`
//! and `xdpvs down` say what they do.

use std::{
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::programs::{SchedClassifier, TcAttachType};
use tests::{
    keepalived::{Vrrp, has_vip, master_down_interval, wait_vip},
    load::Load,
    netns::{host_bpffs, in_netns, sh},
    ping::Ping,
    topology::{DrLab, Launch, VIP, exchange, real_addr},
};

/// `xdpvs run` with more options.
fn extra<'a>(options: &'a [&'a str]) -> Launch<'a> {
    Launch {
        extra: options,
        ..Launch::default()
    }
}

const DAEMON: &str = "xdpvs-lb1";

fn config(check: bool) -> String {
    let checker = if check {
        "        TCP_CHECK {\n            connect_timeout 1\n        }\n"
    } else {
        ""
    };
    let real = |i: usize| {
        format!(
            "    real_server {} 80 {{\n        weight 1\n{checker}    }}\n",
            real_addr(i)
        )
    };
    format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n{}{}}}\n",
        real(0),
        real(1)
    )
}

fn lab(tag: &str, lbs: usize) -> DrLab {
    host_bpffs();
    let lab = DrLab::build(tag, lbs, 2).expect("building the lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    lab
}

/// `n` keep-alive connections through the VIP, each with the real it reached.
fn keepalive(lab: &DrLab, n: usize) -> Vec<(TcpStream, String)> {
    let conns = in_netns(&lab.client, move || -> Result<Vec<TcpStream>> {
        (0..n)
            .map(|_| {
                let s = TcpStream::connect_timeout(
                    &SocketAddr::from((VIP, 80)),
                    Duration::from_secs(2),
                )?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                Ok(s)
            })
            .collect()
    })
    .expect("client")
    .expect("opening keep-alive connections");
    conns
        .into_iter()
        .map(|mut s| {
            let body = exchange(&mut s).expect("first request");
            (s, body.split(' ').next().unwrap_or_default().to_string())
        })
        .collect()
}

/// One more request on every connection: how many got an answer from the
/// real they started on.
fn still_served(conns: &mut [(TcpStream, String)]) -> usize {
    let mut served = 0;
    for (s, real) in conns.iter_mut() {
        if exchange(s).is_ok_and(|b| b.split(' ').next() == Some(real.as_str())) {
            served += 1;
        }
    }
    served
}

/// The program on `ns`'s eth0, XDP or tcx ingress ("xdp 41", "tcx 57").
fn attached_program(lab: &DrLab, ns: &str) -> Option<String> {
    let out = lab
        .lab
        .ip(ns, &["link", "show", "eth0"])
        .unwrap_or_default();
    if let Some(id) = out
        .split_whitespace()
        .skip_while(|w| *w != "prog/xdp")
        .nth(2)
    {
        return Some(format!("xdp {id}"));
    }
    let tcx = in_netns(ns, || {
        SchedClassifier::query_tcx("eth0", TcAttachType::Ingress)
            .map(|(_, progs)| progs.first().map(|p| p.id()))
    })
    .expect("entering the namespace")
    .expect("querying tcx on eth0");
    tcx.map(|id| format!("tcx {id}"))
}

/// The pin directory a daemon's log names.
fn pin_dir(log: &str) -> PathBuf {
    let at = log
        .find("pins in ")
        .map(|i| i + "pins in ".len())
        .or_else(|| log.find("pinned in ").map(|i| i + "pinned in ".len()))
        .unwrap_or_else(|| panic!("no pin directory in the log:\n{log}"));
    let dir: String = log[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ')' && *c != ':')
        .collect();
    PathBuf::from(dir.trim_end_matches(';'))
}

fn xdpvs_in(lab: &DrLab, ns: &str, args: &[&str]) -> Result<String> {
    let bin = lab.artifacts.xdpvs.to_string_lossy().into_owned();
    let mut all = vec!["netns", "exec", ns, &bin];
    all.extend_from_slice(args);
    sh("ip", &all)
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn connections_survive_a_crash_and_a_restart_root() {
    let mut lab = lab("k", 1);
    lab.start_xdpvs(0, &config(false), "auto")
        .expect("starting xdpvs");
    let log = lab.lab.log(DAEMON);
    assert!(log.contains("auto picks tc"), "{log}");
    let mut conns = keepalive(&lab, 20);
    let ping = Ping::start(&lab.client, VIP, Duration::from_millis(10));
    let load = Load::start(&lab);
    thread::sleep(Duration::from_millis(300));

    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9");
    let crashed = Instant::now();
    let program = attached_program(&lab, &lab.lbs[0]);
    assert!(
        program.is_some(),
        "the program must stay attached after kill -9"
    );
    let after_crash = still_served(&mut conns);
    thread::sleep(Duration::from_secs(1).saturating_sub(crashed.elapsed()));

    lab.start_xdpvs(0, &config(false), "auto")
        .expect("restarting xdpvs");
    let restarted_in = crashed.elapsed();
    let log = lab.lab.log(DAEMON);
    assert!(log.contains("adopted the data plane on eth0"), "{log}");
    let adopted = log
        .lines()
        .filter(|l| l.contains("adopted the data plane") || l.contains("map writes"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{adopted}");
    assert!(
        log.contains("configuration in the data plane: 0 map writes"),
        "the same configuration writes nothing after adoption:\n{log}"
    );
    assert_eq!(
        attached_program(&lab, &lab.lbs[0]),
        program,
        "the same program keeps running"
    );
    let after_restart = still_served(&mut conns);
    thread::sleep(Duration::from_millis(300));
    let (fresh_ok, fresh_failed) = load.finish();
    let pings = ping.finish().expect("ping");
    println!(
        "kill -9 then restart after {restarted_in:.1?}: keep-alive connections served after the \
         crash {after_crash}/20, after the restart {after_restart}/20; new connections meanwhile \
         {fresh_ok} ok, {fresh_failed} failed; pings to the VIP every 10 ms: {} sent, {} lost",
        pings.sent,
        pings.lost()
    );
    assert_eq!(after_crash, 20);
    assert_eq!(after_restart, 20);
    assert_eq!(fresh_failed, 0);
    assert!(fresh_ok > 0);
    assert_eq!(pings.lost(), 0, "{pings:?}");

    // SIGTERM: the data plane goes with the daemon.
    let dir = pin_dir(&log);
    lab.lab.stop(DAEMON, libc::SIGTERM).expect("SIGTERM");
    assert_eq!(
        attached_program(&lab, &lab.lbs[0]),
        None,
        "SIGTERM detaches the program"
    );
    assert!(!dir.exists(), "SIGTERM removes {}", dir.display());
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn health_is_carried_over_a_restart_root() {
    let mut lab = lab("h", 1);
    lab.start_xdpvs(0, &config(true), "generic")
        .expect("starting xdpvs");
    lab.stop_nginx(1).expect("stopping rs2");
    let down = format!("real {}:80 of TCP {VIP}:80: DOWN", real_addr(1));
    tests::netns::wait_for(Duration::from_secs(10), || {
        if lab.lab.log(DAEMON).contains(&down) {
            Ok(())
        } else {
            bail!("rs2 not down yet")
        }
    })
    .expect("rs2 down");
    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9");
    lab.start_xdpvs(0, &config(true), "generic")
        .expect("restarting xdpvs");
    let status = lab.ctl(0, &["status"]).expect("ctl status");
    let answers = lab
        .answers(SocketAddr::from((VIP, 80)), 40)
        .expect("client");
    println!("{status}\nafter the restart, 40 new connections: {answers:?}");
    assert!(status.contains("carried over"), "{status}");
    assert_eq!(
        answers.get("rs1").copied(),
        Some(40),
        "the real that was down stays down from the first moment: {answers:?}"
    );
    assert!(
        !lab.lab.log(DAEMON).contains(&down),
        "a carried-over DOWN is not learned again:\n{}",
        lab.lab.log(DAEMON)
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn pins_are_per_namespace_and_say_what_they_do_root() {
    let mut lab = lab("p", 2);
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    lab.start_xdpvs(0, &config(false), "generic").expect("lb1");
    lab.start_xdpvs(1, &config(false), "generic").expect("lb2");
    let d1 = pin_dir(&lab.lab.log(DAEMON));
    let d2 = pin_dir(&lab.lab.log("xdpvs-lb2"));
    println!("pins: lb1 {}, lb2 {}", d1.display(), d2.display());
    assert_ne!(d1, d2, "two namespaces, both eth0, never share pins");
    let lb2_program = attached_program(&lab, &lb2);

    // A crash leaves lb1's data plane; `down` in another namespace does not see it.
    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9 lb1");
    let other = xdpvs_in(&lab, &lab.client.clone(), &["down", "--interface", "eth0"])
        .expect("down in the client namespace");
    println!("{other}");
    assert!(other.contains("nothing to remove"), "{other}");
    assert!(attached_program(&lab, &lb1).is_some());

    // A layout this binary does not know: one clear line, the old data plane untouched.
    let layout = d1.join("layout");
    std::fs::remove_file(&layout).expect("layout");
    std::os::unix::fs::symlink("0", &layout).expect("layout");
    let conf = lab.lab.dir.join("xdpvs-lb1.conf");
    let refused = xdpvs_in(
        &lab,
        &lb1,
        &[
            "run",
            "--config",
            conf.to_str().unwrap(),
            "--interface",
            "eth0",
        ],
    )
    .expect_err("a layout mismatch is refused");
    let refused = format!("{refused:#}");
    println!("{refused}");
    assert!(
        refused.contains("has layout 0") && refused.contains("--fresh-dataplane"),
        "{refused}"
    );
    assert!(
        attached_program(&lab, &lb1).is_some(),
        "the old data plane keeps running"
    );

    lab.start_xdpvs_with(0, &config(false), "generic", &extra(&["--fresh-dataplane"]))
        .expect("lb1 fresh");
    let log = lab.lab.log(DAEMON);
    assert!(log.contains("flows are lost"), "{log}");

    // --keep-dataplane: SIGTERM leaves it forwarding, `down` removes it.
    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9 lb1");
    lab.start_xdpvs_with(0, &config(false), "generic", &extra(&["--keep-dataplane"]))
        .expect("lb1 keep");
    assert!(lab.lab.log(DAEMON).contains("adopted the data plane"));
    lab.lab.stop(DAEMON, libc::SIGTERM).expect("SIGTERM lb1");
    let log = lab.lab.log(DAEMON);
    assert!(log.contains("left forwarding on eth0"), "{log}");
    assert!(
        attached_program(&lab, &lb1).is_some(),
        "--keep-dataplane keeps XDP"
    );
    let down = xdpvs_in(&lab, &lb1, &["down", "-i", "eth0"]).expect("down");
    let again = xdpvs_in(&lab, &lb1, &["down", "-i", "eth0"]).expect("down again");
    println!("{down}{again}");
    assert!(down.contains("removed the data plane on eth0"), "{down}");
    assert!(again.contains("nothing to remove"), "{again}");
    assert_eq!(attached_program(&lab, &lb1), None);
    assert!(!d1.exists());

    assert_eq!(
        attached_program(&lab, &lb2),
        lb2_program,
        "lb2 was never touched"
    );
    assert!(d2.exists());

    // lb2 crashes and its namespace is deleted: its interface is gone, and
    // the next daemon to start frees the pins (and their memory).
    lab.lab
        .stop("xdpvs-lb2", libc::SIGKILL)
        .expect("kill -9 lb2");
    sh("ip", &["netns", "del", &lb2]).expect("deleting lb2's namespace");
    let sw = lab.client.replace("-client", "-sw");
    tests::netns::wait_for(Duration::from_secs(10), || {
        match lab.lab.ip(&sw, &["link", "show", "p-lb2"]) {
            Ok(_) => bail!("lb2's veth still there"),
            Err(_) => Ok(()),
        }
    })
    .expect("lb2's interface gone");
    lab.start_xdpvs(0, &config(false), "generic").expect("lb1");
    // Any daemon starting now frees them (one in a test running beside
    // this one may be first); only that frees them.
    assert!(!d2.exists(), "{} removed", d2.display());
}

/// An upgraded binary (another object) swaps the program on the running
/// link: the maps stay, so do the connections.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_new_object_is_swapped_in_keeping_the_maps_root() {
    swap_object("s", "generic");
}

/// The same on a tcx link (BPF_LINK_UPDATE works on both).
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_new_object_is_swapped_in_on_a_tcx_link_root() {
    swap_object("w", "tc");
}

fn swap_object(tag: &str, mode: &str) {
    let mut lab = lab(tag, 1);
    lab.start_xdpvs(0, &config(false), mode)
        .expect("starting xdpvs");
    let mut conns = keepalive(&lab, 20);
    let before = attached_program(&lab, &lab.lbs[0]);
    // The same program with other bytes after it: another digest.
    let object = std::env::var_os("XDPVS_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/ebpf/bpfel-unknown-none/release/lb-ebpf")
        });
    let mut bytes = std::fs::read(&object)
        .with_context(|| object.display().to_string())
        .expect("the XDP object");
    bytes.extend_from_slice(b"another build");
    let new = lab.lab.dir.join("new-object");
    std::fs::write(&new, bytes).expect("writing the new object");
    let ping = Ping::start(&lab.client, VIP, Duration::from_millis(10));
    let load = Load::start(&lab);
    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9");
    let swapped = Instant::now();
    lab.start_xdpvs_with(
        0,
        &config(false),
        mode,
        &extra(&["--bpf-object", new.to_str().unwrap()]),
    )
    .expect("restarting with the new object");
    let log = lab.lab.log(DAEMON);
    assert!(
        log.contains("replaced by the new object, maps kept"),
        "{log}"
    );
    let after = attached_program(&lab, &lab.lbs[0]);
    let served = still_served(&mut conns);
    thread::sleep(Duration::from_millis(300));
    let (fresh_ok, fresh_failed) = load.finish();
    let pings = ping.finish().expect("ping");
    println!(
        "{mode}: program {before:?} -> {after:?} on the pinned link, restart took {:.1?}; \
         keep-alive connections served {served}/20; new connections {fresh_ok} ok, \
         {fresh_failed} failed; pings every 10 ms: {} sent, {} lost",
        swapped.elapsed(),
        pings.sent,
        pings.lost()
    );
    assert_ne!(before, after);
    assert_eq!(served, 20);
    assert_eq!(fresh_failed, 0);
    assert_eq!(pings.lost(), 0, "{pings:?}");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn pin_dir_option_root() {
    let mut lab = lab("d", 1);
    let dir = format!("/run/xdpvs/bpf/test-{}-lb1", std::process::id());
    lab.start_xdpvs_with(0, &config(false), "generic", &extra(&["--pin-dir", &dir]))
        .expect("starting xdpvs");
    let log = lab.lab.log(DAEMON);
    assert_eq!(pin_dir(&log), PathBuf::from(&dir), "{log}");
    assert!(PathBuf::from(&dir).join("link").exists());
    lab.lab.stop(DAEMON, libc::SIGTERM).expect("SIGTERM");
    assert!(!PathBuf::from(&dir).exists(), "SIGTERM removes {dir}");

    let conf = lab.lab.dir.join("xdpvs-lb1.conf");
    let not_bpffs = lab.lab.dir.join("pins");
    let refused = xdpvs_in(
        &lab,
        &lab.lbs[0].clone(),
        &[
            "run",
            "--config",
            conf.to_str().unwrap(),
            "--interface",
            "eth0",
            "--pin-dir",
            not_bpffs.to_str().unwrap(),
        ],
    )
    .expect_err("a pin directory off bpffs is refused");
    let refused = format!("{refused:#}");
    println!("{}", refused.lines().last().unwrap_or_default());
    assert!(refused.contains("is not on a BPF file system"), "{refused}");
    assert_eq!(attached_program(&lab, &lab.lbs[0]), None);
}

/// Two xdpvs nodes by VRRP: the master's daemon crashes on a live host. Its
/// pinned data plane forwards until the backup has taken over with the same
/// Maglev table; the restarted daemon adopts its data plane and preempts back.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn two_nodes_keep_every_connection_when_the_master_daemon_crashes_root() {
    host_bpffs();
    let mut lab = DrLab::build("v", 2, 2).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let node = |priority| Vrrp {
        reals: 2,
        ..Vrrp::new(2, priority)
    };
    let slack = Duration::from_millis(1500);
    let (down1, down2) = (master_down_interval(2, 100), master_down_interval(2, 99));
    lab.start_xdpvs(0, &node(100).conf(), "generic")
        .expect("lb1");
    lab.start_xdpvs(1, &node(99).conf(), "generic")
        .expect("lb2");
    wait_vip(&lb1, true, down1 + down2 + slack).expect("lb1 master");
    wait_vip(&lb2, false, down2 + slack).expect("lb2 backup");
    let mut conns = keepalive(&lab, 20);
    let ping = Ping::start(&lab.client, VIP, Duration::from_millis(10));
    let load = Load::start(&lab);
    thread::sleep(Duration::from_millis(300));

    lab.lab.stop(DAEMON, libc::SIGKILL).expect("kill -9 lb1");
    let took = wait_vip(&lb2, true, down2 + slack).expect("lb2 takes over");
    thread::sleep(Duration::from_millis(500));
    let after_takeover = still_served(&mut conns);

    lab.start_xdpvs(0, &node(100).conf(), "generic")
        .expect("restarting lb1");
    assert!(lab.lab.log(DAEMON).contains("adopted the data plane"));
    wait_vip(&lb1, true, down1 + slack).expect("lb1 preempts back");
    wait_vip(&lb2, false, slack).expect("lb2 backs off");
    thread::sleep(Duration::from_millis(500));
    let after_preempt = still_served(&mut conns);
    let (fresh_ok, fresh_failed) = load.finish();
    let pings = ping.finish().expect("ping");
    println!(
        "two nodes, kill -9 of the master's daemon: lb2 master after {took:.1?}; keep-alive \
         connections served after the takeover {after_takeover}/20, after lb1's restart and \
         preemption {after_preempt}/20; new connections {fresh_ok} ok, {fresh_failed} failed; \
         pings every 10 ms: {} sent, {} lost",
        pings.sent,
        pings.lost()
    );
    assert!(has_vip(&lb1));
    assert_eq!(after_takeover, 20);
    assert_eq!(after_preempt, 20);
    assert_eq!(fresh_failed, 0);
}

/// A start that fails after creating its data plane removes it: no XDP is
/// left forwarding with no daemon.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_failed_start_leaves_no_data_plane_root() {
    let lab = lab("f", 1);
    let run = |conf: &str, metrics: &str| {
        let path = lab.lab.dir.join("failing.conf");
        std::fs::write(&path, conf).expect("config");
        let socket = lab.lab.dir.join("failing.sock");
        let failed = xdpvs_in(
            &lab,
            &lab.lbs[0].clone(),
            &[
                "run",
                "--config",
                path.to_str().unwrap(),
                "--interface",
                "eth0",
                "--socket",
                socket.to_str().unwrap(),
                "--metrics",
                metrics,
            ],
        )
        .expect_err("the start must fail");
        format!("{failed:#}")
    };
    // Its listeners come first: a taken port stops it before XDP is touched.
    let taken = in_netns(&lab.lbs[0], || {
        std::net::TcpListener::bind("127.0.0.1:9121")
    })
    .expect("netns")
    .expect("taking the metrics port");
    let failed = run(&config(false), "127.0.0.1:9121");
    assert!(
        failed.contains("binding metrics on 127.0.0.1:9121"),
        "{failed}"
    );
    assert!(!failed.contains("pins in "), "nothing created:\n{failed}");
    assert_eq!(attached_program(&lab, &lab.lbs[0]), None);
    drop(taken);
    // VRRP fails after the data plane exists: it is removed again.
    let vrrp = format!(
        "vrrp_instance VI_1 {{\n    interface nosuch0\n    virtual_router_id 51\n    priority 100\n    \
         virtual_ipaddress {{\n        {VIP}/32\n    }}\n}}\n{}",
        config(false)
    );
    let failed = run(&vrrp, "127.0.0.1:9122");
    println!("{}", failed.lines().last().unwrap_or_default());
    assert!(
        failed.contains("start failed: program detached from eth0"),
        "{failed}"
    );
    assert_eq!(attached_program(&lab, &lab.lbs[0]), None);
    assert!(!pin_dir(&failed).exists());
}
