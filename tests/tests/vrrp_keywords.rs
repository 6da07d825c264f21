//! VRRP keywords that change what a node does, end to end (root): the
//! spacing of gratuitous ARPs on an interface (`vrrp_garp_interval`),
//! `static_ipaddress` on for the daemon's life, `net_namespace`,
//! `track_file` moving the VIP, `track_process` faulting an instance, a
//! real_server's FILE_CHECK, and with keepalived as the peer
//! `higher_prio_send_advert`, and `notify_master_rx_lower_pri` on a
//! lower-priority advert.

use std::{
    net::Ipv4Addr,
    process::Command,
    time::{Duration, Instant},
};

use tests::{
    adverts::Capture,
    keepalived::{self, Vrrp, master_down_interval, wait_vip},
    netns::{in_netns, sh, wait_for},
    packet::checksum,
    topology::{DrLab, Launch, VIP, lb_addr, real_addr},
};

const SLACK: Duration = Duration::from_millis(1500);
const VIP2: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 101);

/// Gratuitous ARPs (sender = target address) for `vips` heard in `ns` for
/// `listen`: (when, address), in arrival order.
fn capture_garps(ns: &str, vips: Vec<Ipv4Addr>, listen: Duration) -> Vec<(Instant, Ipv4Addr)> {
    in_netns(ns, move || {
        let proto = (libc::ETH_P_ARP as u16).to_be();
        // SAFETY: plain socket(2), closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: a valid timeval for SO_RCVTIMEO on our socket.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        let mut seen = Vec::new();
        let mut buf = [0u8; 128];
        let end = Instant::now() + listen;
        while Instant::now() < end {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            let at = Instant::now();
            if n < 42 {
                continue;
            }
            let spa = Ipv4Addr::new(buf[28], buf[29], buf[30], buf[31]);
            let tpa = Ipv4Addr::new(buf[38], buf[39], buf[40], buf[41]);
            if spa == tpa && vips.contains(&spa) {
                seen.push((at, spa));
            }
        }
        // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
        seen
    })
    .expect("capture in the client namespace")
}

/// An address owner (master at once) with two VIPs and two GARPs each.
fn owner_conf(global: &str) -> String {
    format!(
        "global_defs {{\n{global}}}\nvrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    \
         priority 255\n    advert_int 1\n    garp_master_delay 0\n    garp_master_repeat 2\n    \
         virtual_ipaddress {{\n        {VIP}/32 dev eth0\n        {VIP2}/32 dev eth0\n    }}\n}}\n"
    )
}

/// Starts the owner with `global` and returns the gaps between the GARPs
/// the client heard.
fn garp_gaps(lab: &mut DrLab, global: &str) -> Vec<Duration> {
    let client = lab.client.clone();
    let capture =
        std::thread::spawn(move || capture_garps(&client, vec![VIP, VIP2], Duration::from_secs(4)));
    std::thread::sleep(Duration::from_millis(300));
    lab.start_xdpvs(0, &owner_conf(global), "generic")
        .expect("xdpvs");
    let seen = capture.join().expect("capture thread");
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("stopping");
    println!("{global:?}: {seen:?}");
    assert_eq!(
        seen.iter().filter(|(_, a)| *a == VIP).count(),
        2,
        "two for {VIP}: {seen:?}\n{}",
        lab.lab.log("xdpvs-lb1")
    );
    assert_eq!(seen.len(), 4, "two for each VIP: {seen:?}");
    seen.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn gratuitous_arps_are_spaced_by_vrrp_garp_interval_root() {
    let mut lab = DrLab::build("garp", 1, 0).expect("building the lab");
    // Unspaced: the batch goes out back to back.
    let gaps = garp_gaps(&mut lab, "");
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(100)),
        "{gaps:?}"
    );
    // 0.3 s: every message on eth0 waits for the one before.
    let gaps = garp_gaps(&mut lab, "    vrrp_garp_interval 0.3\n");
    println!("gaps with vrrp_garp_interval 0.3: {gaps:?}");
    for g in &gaps {
        assert!(
            *g >= Duration::from_millis(290) && *g < Duration::from_millis(600),
            "{gaps:?}"
        );
    }
    // A garp_group for eth0 replaces the global interval.
    let grouped = garp_gaps(
        &mut lab,
        "    vrrp_garp_interval 0.6\n}\ngarp_group {\n    garp_interval 0.15\n    interface eth0\n",
    );
    println!("gaps with a garp_group of 0.15: {grouped:?}");
    for g in &grouped {
        assert!(
            *g >= Duration::from_millis(140) && *g < Duration::from_millis(450),
            "{grouped:?}"
        );
    }
}

fn has_addr(ns: &str, addr: &str) -> bool {
    sh("ip", &["-n", ns, "-o", "addr", "show", "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!(" {addr}/")))
}

/// `net_namespace`: the daemon is started in another namespace and moves
/// itself into the LB's; its VIP and `static_ipaddress` land there, and the
/// static address goes when it stops.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn net_namespace_and_static_ipaddress_root() {
    let mut lab = DrLab::build("nsst", 1, 0).expect("building the lab");
    let lb = lab.lbs[0].clone();
    let outside = lab.lab.netns("out").expect("namespace");
    let conf = format!(
        "net_namespace {lb}\nstatic_ipaddress {{\n    10.100.0.60/24 dev eth0 label eth0:st\n}}\n{}",
        owner_conf("")
    );
    let wrapper = ["ip", "netns", "exec", outside.as_str()];
    lab.start_xdpvs_with(
        0,
        &conf,
        "generic",
        &Launch {
            wrapper: &wrapper,
            ..Launch::default()
        },
    )
    .expect("xdpvs");
    wait_vip(&lb, true, SLACK * 2).expect("the owner's VIP, in the LB namespace");
    wait_for(SLACK, || {
        anyhow::ensure!(has_addr(&lb, "10.100.0.60"), "no static address yet");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.lab.log("xdpvs-lb1")));
    let labels = sh("ip", &["-n", &lb, "-o", "addr", "show", "dev", "eth0"]).expect("ip");
    assert!(labels.contains("eth0:st"), "{labels}");
    let log = lab.lab.log("xdpvs-lb1");
    assert!(
        log.contains(&format!("net_namespace {lb}: running in")),
        "{log}"
    );
    // Nothing of it in the namespace it was started in.
    let out = sh("ip", &["-n", &outside, "-o", "addr"]).expect("ip");
    assert!(!out.contains("10.100.0."), "{out}");
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("stopping");
    assert!(
        !has_addr(&lb, "10.100.0.60"),
        "removed at stop, as keepalived does"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_missing_net_namespace_is_a_clear_error_root() {
    let lab = DrLab::build("nsmiss", 0, 0).expect("building the lab");
    let conf = lab.lab.dir.join("missing.conf");
    std::fs::write(&conf, "net_namespace xdpvs-no-such-ns\n").expect("write");
    let out = Command::new(&lab.artifacts.xdpvs)
        .args(["run", "--config"])
        .arg(&conf)
        .args(["--interface", "lo", "--socket"])
        .arg(lab.lab.dir.join("missing.sock"))
        .output()
        .expect("running xdpvs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "net_namespace xdpvs-no-such-ns: cannot open /var/run/netns/xdpvs-no-such-ns"
        ) && stderr.contains("ip netns add xdpvs-no-such-ns"),
        "{stderr}"
    );
}

/// `track_file`: the number written to the backup's file, times its
/// weight, lifts it over the master and the VIP moves; 0 moves it back.
/// Weight 0 on the master: a non-zero number is a fault.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn writing_a_track_file_moves_the_vip_root() {
    let mut lab = DrLab::build("tf", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let (f1, f2) = (lab.lab.dir.join("lb1.track"), lab.lab.dir.join("lb2.track"));
    let conf = |prio: u8, file: &std::path::Path, weight: i32| {
        let base = Vrrp::new(3, prio).conf().replace(
            "    virtual_ipaddress {",
            "    track_file {\n        tf\n    }\n    virtual_ipaddress {",
        );
        format!(
            "track_file tf {{\n    file {}\n    weight {weight}\n    init_file 0 overwrite\n}}\n{base}",
            file.display()
        )
    };
    lab.start_xdpvs(1, &conf(90, &f2, 2), "generic")
        .expect("xdpvs lb2");
    lab.start_xdpvs(0, &conf(100, &f1, 0), "generic")
        .expect("xdpvs lb1");
    let (down1, down2) = (master_down_interval(3, 100), master_down_interval(3, 90));
    wait_vip(&lb1, true, down1 + down2 + SLACK).expect("lb1 (100) becomes master");
    wait_vip(&lb2, false, SLACK).expect("lb2 (90) backs off");
    assert_eq!(std::fs::read_to_string(&f2).expect("init_file"), "0\n");

    // 90 + 8 × 2 = 106 > 100: lb2 preempts.
    std::fs::write(&f2, "8\n").expect("write");
    let took = wait_vip(&lb2, true, down2 + SLACK).expect("lb2 takes the VIP");
    println!("lb2 master {took:?} after the write");
    wait_vip(&lb1, false, SLACK).expect("lb1 lets it go");

    // Back to 0: 90 again, lb1 preempts.
    std::fs::write(&f2, "0\n").expect("write");
    wait_vip(&lb1, true, down1 + SLACK).expect("lb1 takes it back");
    wait_vip(&lb2, false, SLACK).expect("lb2 backs off");

    // Weight 0 on lb1: a non-zero number is a fault, the VIP goes to lb2.
    std::fs::write(&f1, "1\n").expect("write");
    wait_vip(&lb2, true, down2 + SLACK).expect("lb1 faults, lb2 takes over");
    assert!(
        lab.lab.log("xdpvs-lb1").contains("-> FAULT"),
        "{}",
        lab.lab.log("xdpvs-lb1")
    );
    std::fs::write(&f1, "0\n").expect("write");
    wait_vip(&lb1, true, down1 + SLACK * 2).expect("lb1 recovers and preempts");
}

/// The line of `adm -L -n` for real `i`, its words (the weight is the 4th).
fn real_line(lab: &DrLab, i: usize) -> Vec<String> {
    let list = lab.adm(0, &["-L", "-n"]).unwrap_or_default();
    list.lines()
        .find(|l| l.contains(&format!("{}:80", real_addr(i))))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// FILE_CHECK: weight 0, a non-zero number takes the real down and 0
/// brings it back; weighted, the number times the weight is added to the
/// real's weight.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn file_check_takes_a_real_down_and_moves_its_weight_root() {
    let mut lab = DrLab::build("fc", 1, 2).expect("lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    let (f1, f2) = (lab.lab.dir.join("rs1.weight"), lab.lab.dir.join("rs2.down"));
    std::fs::write(&f2, "0\n").expect("write");
    let config = format!(
        "track_file w1 {{\n file {}\n weight 2\n}}\ntrack_file d2 {{\n file {}\n}}\n\
         virtual_server {VIP} 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server {} 80 {{\n  weight 1\n  FILE_CHECK {{\n   track_file w1\n  }}\n }}\n\
         real_server {} 80 {{\n  FILE_CHECK {{\n   track_file d2\n   weight 0\n  }}\n }}\n}}\n",
        f1.display(),
        f2.display(),
        real_addr(0),
        real_addr(1)
    );
    lab.start_xdpvs(0, &config, "skb").expect("xdpvs");
    let answers = |lab: &DrLab| {
        lab.answers(std::net::SocketAddr::from((VIP, 80)), 20)
            .expect("client")
    };
    wait_for(Duration::from_secs(5), || {
        let c = answers(&lab);
        anyhow::ensure!(c.contains_key("rs1") && c.contains_key("rs2"), "{c:?}");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.lab.log("xdpvs-lb1")));

    std::fs::write(&f2, "1\n").expect("write");
    let rs2 = format!("real {}:80 of TCP {VIP}:80", real_addr(1));
    wait_for(Duration::from_secs(10), || {
        let log = lab.lab.log("xdpvs-lb1");
        anyhow::ensure!(
            log.lines().any(|l| l.contains(&rs2) && l.contains("DOWN")),
            "rs2 not down yet:\n{log}"
        );
        Ok(())
    })
    .expect("rs2 down");
    assert_eq!(answers(&lab).get("rs1").copied(), Some(20));
    std::fs::write(&f2, "0\n").expect("write");
    wait_for(Duration::from_secs(10), || {
        let c = answers(&lab);
        anyhow::ensure!(c.contains_key("rs2"), "{c:?}");
        Ok(())
    })
    .expect("rs2 back");

    // 1 + 4 × 2 = 9.
    std::fs::write(&f1, "4\n").expect("write");
    wait_for(Duration::from_secs(10), || {
        let line = real_line(&lab, 0);
        anyhow::ensure!(line.get(3).is_some_and(|w| w == "9"), "{line:?}");
        println!("rs1 with 4 in its file: {line:?}");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.adm(0, &["-L", "-n"]).unwrap_or_default()));
    std::fs::write(&f1, "0\n").expect("write");
    wait_for(Duration::from_secs(10), || {
        let line = real_line(&lab, 0);
        anyhow::ensure!(line.get(3).is_some_and(|w| w == "1"), "{line:?}");
        Ok(())
    })
    .expect("weight back to 1");
}

/// A process this test started, killed (by its PID) when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `track_process` with weight 0: the instance is in Fault while no copy
/// of the process runs, and takes the VIP again when one is back.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn track_process_faults_the_instance_while_the_process_is_gone_root() {
    let mut lab = DrLab::build("tp", 1, 0).expect("lab");
    let lb = lab.lbs[0].clone();
    // A name of its own (the kernel names a process after the path it
    // was started by), so no other process on the host matches.
    let name = format!("xtp{}", std::process::id() % 100_000);
    let path = lab.lab.dir.join(&name);
    std::os::unix::fs::symlink("/bin/sleep", &path).expect("symlink");
    let start = || Child(Command::new(&path).arg("1000").spawn().expect("sleep"));
    let mut child = Some(start());
    let conf = Vrrp::new(3, 100).conf().replace(
        "    virtual_ipaddress {",
        "    track_process {\n        tp\n    }\n    virtual_ipaddress {",
    );
    let conf = format!("track_process tp {{\n    process {name}\n    weight 0\n}}\n{conf}");
    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    let down = master_down_interval(3, 100);
    wait_vip(&lb, true, down + SLACK).expect("master while the process runs");
    let log = lab.lab.log("xdpvs-lb1");
    assert!(log.contains("track_process tp: 1 running, up"), "{log}");

    drop(child.take());
    let gone = wait_vip(&lb, false, SLACK).expect("fault once it is gone");
    println!("VIP released {gone:?} after the process ended");
    assert!(lab.lab.log("xdpvs-lb1").contains("-> FAULT"));

    child = Some(start());
    wait_vip(&lb, true, down + SLACK * 2).expect("master again");
    drop(child);
}

/// Sends one VRRPv3 advert for VRID 51 and the VIP at `priority` from
/// `ns`'s eth0 (TTL 255, to 224.0.0.18), as a peer's would be.
fn send_advert(ns: &str, src: Ipv4Addr, priority: u8) {
    in_netns(ns, move || {
        let group = Ipv4Addr::new(224, 0, 0, 18);
        // v3 advert, VRID 51, one address, 1 s (100 cs), checksum, VIP.
        let mut vrrp = vec![0x31, 51, priority, 1, 0x00, 100, 0, 0];
        vrrp.extend_from_slice(&VIP.octets());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&group.octets());
        pseudo.extend_from_slice(&[0, 112, 0, vrrp.len() as u8]);
        let ck = checksum(&[&pseudo, &vrrp]);
        vrrp[6..8].copy_from_slice(&ck.to_be_bytes());
        // SAFETY: plain socket calls on a descriptor closed below, with
        // pointers to locals that outlive each call.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, 112);
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            let ttl: libc::c_int = 255;
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_TTL,
                (&ttl as *const libc::c_int).cast(),
                4,
            );
            let dev = c"eth0";
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                5,
            );
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(group.octets()),
                },
                sin_zero: [0; 8],
            };
            let n = libc::sendto(
                fd,
                vrrp.as_ptr().cast(),
                vrrp.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
            assert_eq!(
                n,
                vrrp.len() as isize,
                "{}",
                std::io::Error::last_os_error()
            );
            libc::close(fd);
        }
    })
    .expect("sending an advert");
}

/// xdpvs master (100): a lower-priority advert (50) makes it run
/// `notify_master_rx_lower_pri`; keepalived at 150 preempts, and xdpvs,
/// with `higher_prio_send_advert`, answers keepalived's first advert with
/// one of its own before stepping down.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn lower_and_higher_priority_answers_with_keepalived_root() {
    let mut lab = DrLab::build("hp", 2, 0).expect("lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let mark = lab.lab.dir.join("rx-lower");
    let conf = Vrrp::new(3, 100).conf().replace(
        "    virtual_ipaddress {",
        &format!(
            "    higher_prio_send_advert\n    notify_master_rx_lower_pri \"/usr/bin/touch {}\"\n    virtual_ipaddress {{",
            mark.display()
        ),
    );
    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    let down = master_down_interval(3, 100);
    wait_vip(&lb1, true, down + SLACK).expect("xdpvs alone becomes master");

    assert!(!mark.exists());
    send_advert(&lb2, lb_addr(1), 50);
    wait_for(Duration::from_secs(5), || {
        anyhow::ensure!(mark.exists(), "notify_master_rx_lower_pri not run yet");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.lab.log("xdpvs-lb1")));
    assert!(keepalived::has_vip(&lb1), "xdpvs stays master");

    let capture = Capture::start(&lab.client).expect("capture");
    keepalived::start(&mut lab.lab, "ka-high", &lb2, &Vrrp::new(3, 150).conf())
        .expect("keepalived 150");
    wait_vip(&lb2, true, master_down_interval(3, 150) + SLACK).expect("keepalived preempts");
    wait_vip(&lb1, false, SLACK).expect("xdpvs steps down");
    std::thread::sleep(Duration::from_millis(1500));
    let adverts = capture.finish().expect("adverts");
    let first_high = adverts
        .iter()
        .find(|a| a.from == lb_addr(1) && a.priority == 150)
        .expect("keepalived's advert at 150");
    let answers: Vec<_> = adverts
        .iter()
        .filter(|a| a.from == lb_addr(0) && a.at >= first_high.at)
        .collect();
    println!("xdpvs adverts after keepalived's first at 150: {answers:?}");
    assert_eq!(
        answers.len(),
        1,
        "one answer, then silence as backup: {answers:?}"
    );
    assert_eq!(answers[0].priority, 100);
    assert!(
        answers[0].at - first_high.at < Duration::from_millis(200),
        "at once: {:?}",
        answers[0].at - first_high.at
    );
}
