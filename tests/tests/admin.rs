//! End to end in network namespaces (root): ipvsadm's commands and `xdpvs
//! ctl` change the running daemon's table, and traffic follows at once.

use std::net::SocketAddr;

use tests::topology::{CLIENT, DrLab, VIP, real_addr};

fn config() -> String {
    format!(
        "global_defs {{\n  xdpvs_max_services 8\n  xdpvs_max_reals 32\n  xdpvs_max_flows 65536\n}}\n\
         virtual_server {VIP} 80 {{\n  lb_algo wlc\n  lb_kind DR\n  protocol TCP\n  \
         real_server {} 80 {{\n    weight 1\n  }}\n  real_server {} 80 {{\n    weight 1\n  }}\n}}\n",
        real_addr(0),
        real_addr(1)
    )
}

/// How many of `n` fresh connections each real answered; none may fail.
fn spread(lab: &DrLab, n: usize) -> [usize; 2] {
    let counts = lab.answers(SocketAddr::from((VIP, 80)), n).expect("client");
    assert!(
        !counts.contains_key("failed"),
        "requests failed: {counts:?}"
    );
    [
        counts.get("rs1").copied().unwrap_or(0),
        counts.get("rs2").copied().unwrap_or(0),
    ]
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn ipvsadm_commands_change_the_running_table_root() {
    let mut lab = DrLab::build("a", 1, 2).expect("lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP");
    lab.start_xdpvs(0, &config(), "native").expect("xdpvs");
    let (vip, rs1, rs2) = (
        format!("{VIP}:80"),
        format!("{}:80", real_addr(0)),
        format!("{}:80", real_addr(1)),
    );
    let adm = |args: &[&str]| {
        lab.adm(0, args)
            .unwrap_or_else(|e| panic!("adm {args:?}: {e:#}"))
    };

    // -d: the real leaves; its flows are placed again, every new flow goes to rs2.
    adm(&["-d", "-t", &vip, "-r", &rs1]);
    assert!(!adm(&["-L", "-n"]).contains(&rs1));
    assert_eq!(spread(&lab, 40), [0, 40]);
    // -a with a weight: back, at three times rs2's share.
    adm(&["-a", "-t", &vip, "-r", &rs1, "-g", "-w", "3"]);
    assert!(adm(&["-L", "-n"]).contains(&format!("  -> {rs1:<28} Route   3")));
    // 400 flows of random client ports: rs1's count is binomial (mean 300,
    // sd 8.7), so "more than twice rs2's" (267) fails about once in 10^4
    // runs; with 200 flows it failed one run in 300.
    let c = spread(&lab, 400);
    assert!(c[0] > c[1] * 2, "weights 3:1 → {c:?}");
    // -e -w 0 and `ctl drain`: no new flows.
    adm(&["-e", "-t", &vip, "-r", &rs1, "-w", "0"]);
    assert_eq!(spread(&lab, 40), [0, 40]);
    lab.ctl(0, &["weight", &vip, &rs1, "1"])
        .expect("ctl weight");
    lab.ctl(0, &["drain", &vip, &rs2]).expect("ctl drain");
    assert_eq!(spread(&lab, 40), [40, 0]);

    // explain: a flow not seen yet goes by the ring, to the only real with
    // weight. Its port lies above the ephemeral range (32768-60999), which
    // the requests above drew theirs from: 40000 was one of them once, and
    // the table held its closed flow.
    let explained = lab
        .ctl(0, &["explain", "tcp", &format!("{CLIENT}:61000"), &vip])
        .expect("explain");
    assert!(
        explained.contains("Maglev ring") && explained.contains(&format!("→ {rs1}")),
        "{explained}"
    );

    // A real that leaves takes nothing from its service's counters: the
    // program counts a packet in its real's alone, and the daemon keeps
    // the counters of the reals a service lost.
    let tcp_row = || {
        let stats = adm(&["-L", "-n", "--stats"]);
        let row: Vec<String> = stats
            .lines()
            .find(|l| l.starts_with(&format!("TCP  {vip} ")))
            .map(|l| l.split_whitespace().skip(2).map(String::from).collect())
            .unwrap_or_default();
        (row, stats)
    };
    let (before, stats) = tcp_row();
    adm(&["-d", "-t", &vip, "-r", &rs2]);
    let (after, stats_after) = tcp_row();
    assert!(
        before.len() == 5 && before[1] != "0" && after == before,
        "{stats}\nafter -d of {rs2}:\n{stats_after}"
    );

    // -A / -E / -D of a UDP service; -m is refused.
    adm(&["-A", "-u", &format!("{VIP}:53"), "-s", "rr"]);
    adm(&["-E", "-u", &format!("{VIP}:53"), "-s", "sh", "-p", "60"]);
    assert!(adm(&["-L", "-n"]).contains(&format!("UDP  {VIP}:53 sh persistent 60")));
    adm(&["-D", "-u", &format!("{VIP}:53")]);
    assert!(!adm(&["-L", "-n"]).contains("UDP"));
    let refused = lab
        .adm(0, &["-a", "-t", &vip, "-r", &rs1, "-m"])
        .expect_err("NAT must be refused");
    assert!(refused.to_string().contains("not supported"), "{refused:#}");

    // -L --timeout and --set, as ipvsadm (0 keeps a value).
    let timeouts = |lab: &DrLab| {
        lab.adm(0, &["-L", "--timeout"])
            .unwrap_or_else(|e| panic!("adm -L --timeout: {e:#}"))
    };
    assert_eq!(timeouts(&lab), "Timeout (tcp tcpfin udp): 900 120 300\n");
    adm(&["--set", "60", "0", "10"]);
    assert_eq!(timeouts(&lab), "Timeout (tcp tcpfin udp): 60 120 10\n");

    // -Z -u zeroes one service's counters and keeps the others'; -Z all.
    adm(&["-A", "-u", &format!("{VIP}:53")]);
    adm(&["-Z", "-u", &format!("{VIP}:53")]);
    let (row, stats) = tcp_row();
    assert!(
        row.len() == 5 && row[1] != "0",
        "TCP's packets kept: {stats}"
    );
    let absent = lab
        .adm(0, &["-Z", "-u", &format!("{VIP}:54")])
        .expect_err("no such service");
    assert!(absent.to_string().contains("no service"), "{absent:#}");
    adm(&["-D", "-u", &format!("{VIP}:53")]);
    // -Z zeroes the counters; status lists health and MACs.
    adm(&["-Z"]);
    let (row, stats) = tcp_row();
    assert_eq!(row, ["0"; 5], "{stats}");
    let status = lab.ctl(0, &["status"]).expect("status");
    assert!(
        status.contains(&format!("{rs1}  UP")) && !status.contains("mac unknown"),
        "{status}"
    );
    assert!(
        status.contains("tables: 8 services, 32 real servers, 65536 flows"),
        "the configured capacities: {status}"
    );
    println!("{status}");

    // -C: nothing left, and the VIP's traffic goes to the kernel.
    adm(&["-C"]);
    assert!(!adm(&["-L", "-n"]).contains("TCP"));
}

/// global_defs of the node: `lvs_timeouts` are the data plane's idle
/// timeouts from the start, a reload that changes them writes them, and
/// `startup_script` / `shutdown_script` run at start and at SIGTERM.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn lvs_timeouts_and_host_scripts_root() {
    let mut lab = DrLab::build("g", 1, 2).expect("lab");
    let marks = lab.lab.dir.join("marks");
    let global = |tcp: u32| {
        format!(
            "global_defs {{\n  lvs_timeouts tcp {tcp} udp 30\n  \
             startup_script \"/bin/sh -c 'echo up >> {m}'\"\n  \
             shutdown_script \"/bin/sh -c 'echo down >> {m}'\"\n  shutdown_script_timeout 2\n}}\n",
            m = marks.display()
        )
    };
    let body = config();
    let body = body
        .split_once("}\n")
        .map(|(_, rest)| rest)
        .unwrap_or(&body);
    lab.start_xdpvs(0, &format!("{}{body}", global(7200)), "generic")
        .expect("xdpvs");
    let read = || std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(read(), "up\n", "startup_script ran once, before serving");
    let timeouts = |lab: &DrLab| lab.adm(0, &["-L", "--timeout"]).expect("adm -L --timeout");
    assert_eq!(timeouts(&lab), "Timeout (tcp tcpfin udp): 7200 120 30\n");

    let conf = lab.lab.dir.join("xdpvs-lb1.conf");
    std::fs::write(&conf, format!("{}{body}", global(600))).expect("config");
    lab.ctl(0, &["reload"]).expect("reload");
    assert_eq!(timeouts(&lab), "Timeout (tcp tcpfin udp): 600 120 30\n");

    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("SIGTERM");
    assert_eq!(read(), "up\ndown\n", "shutdown_script ran at stop");
}
