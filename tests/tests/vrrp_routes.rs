//! virtual_routes end to end (root): two xdpvs nodes in namespaces; the
//! routes are on the master and not on the backup, and move with the VIP
//! on a takeover and back on preemption. static_routes are on both nodes
//! from the start.

use std::time::Duration;

use tests::{
    keepalived::{Vrrp, master_down_interval, wait_vip},
    netns::{sh, wait_for},
    topology::DrLab,
};

const SLACK: Duration = Duration::from_millis(1500);

/// Routes of every kind the parser takes, in a table of their own and main.
const ROUTES: &str = "    virtual_routes {\n        \
    blackhole 198.51.100.0/24 table 100 metric 7\n        \
    203.0.113.0/24 via 10.100.0.1 dev eth0 table 100\n        \
    192.0.2.128/25 dev eth0 scope link src 10.100.0.100\n    }\n    \
    virtual_rules {\n        from 198.18.0.0/15 table 100 priority 1234\n    }\n";

const STATIC: &str = "static_routes {\n    blackhole 100.64.0.0/10 table 101\n}\n\
    static_rules {\n    to 100.64.0.0/10 table 101 priority 1235\n}\n";

fn conf(priority: u8) -> String {
    let with_routes = Vrrp::new(3, priority).conf().replace(
        "    virtual_ipaddress {",
        &format!("{ROUTES}    virtual_ipaddress {{"),
    );
    with_routes + STATIC
}

/// The rules `ns` holds that this test adds, as `ip rule` prints them.
fn rules(ns: &str) -> Vec<String> {
    sh("ip", &["netns", "exec", ns, "ip", "rule", "show"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("1234:") || l.starts_with("1235:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

const VIRTUAL_RULE: &str = "1234: from 198.18.0.0/15 lookup 100 proto keepalived";
const STATIC_RULE: &str = "1235: from all to 100.64.0.0/10 lookup 101 proto keepalived";

/// The routes `ns` holds that this test adds, as `ip route` prints them.
fn routes(ns: &str) -> Vec<String> {
    let table = |t: &str| {
        sh(
            "ip",
            &["netns", "exec", ns, "ip", "route", "show", "table", t],
        )
        .unwrap_or_default()
    };
    let all = table("100") + &table("main");
    all.lines()
        .filter(|l| {
            ["198.51.100.0/24", "203.0.113.0/24", "192.0.2.128/25"]
                .iter()
                .any(|d| l.contains(d))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

fn wait_routes(ns: &str, want: usize) {
    wait_for(SLACK, || {
        let r = routes(ns);
        anyhow::ensure!(r.len() == want, "{ns}: {r:?}, want {want}");
        Ok(())
    })
    .expect("routes");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn virtual_routes_follow_the_master_root() {
    let mut lab = DrLab::build("vr", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    lab.start_xdpvs(1, &conf(99), "skb").expect("xdpvs on lb2");
    lab.start_xdpvs(0, &conf(100), "skb").expect("xdpvs on lb1");
    let (down1, down2) = (master_down_interval(3, 100), master_down_interval(3, 99));
    wait_vip(&lb1, true, down1 + down2 + SLACK).expect("lb1 becomes master");
    wait_vip(&lb2, false, down1 + SLACK).expect("lb2 backs off");
    wait_routes(&lb1, 3);
    let on_master = routes(&lb1);
    println!("{on_master:#?}");
    assert!(
        on_master
            .iter()
            .any(|r| r.starts_with("blackhole 198.51.100.0/24 proto keepalived metric 7")),
        "{on_master:?}"
    );
    assert!(
        on_master
            .iter()
            .any(|r| r.starts_with("203.0.113.0/24 via 10.100.0.1 dev eth0 proto keepalived")),
        "{on_master:?}"
    );
    assert!(
        on_master.iter().any(|r| r
            .starts_with("192.0.2.128/25 dev eth0 proto keepalived scope link src 10.100.0.100")),
        "{on_master:?}"
    );
    assert_eq!(routes(&lb2), Vec::<String>::new(), "the backup holds none");
    assert_eq!(rules(&lb1), [VIRTUAL_RULE, STATIC_RULE]);
    assert_eq!(rules(&lb2), [STATIC_RULE]);
    for ns in [&lb1, &lb2] {
        let statics = sh(
            "ip",
            &["netns", "exec", ns, "ip", "route", "show", "table", "101"],
        )
        .expect("ip");
        assert!(
            statics.contains("blackhole 100.64.0.0/10 proto keepalived"),
            "{ns}: {statics}"
        );
    }

    // Takeover: lb1 leaves (priority 0 advert), its routes go, lb2's come.
    lab.lab
        .stop("xdpvs-lb1", libc::SIGTERM)
        .expect("stopping lb1");
    wait_vip(&lb2, true, down2 + SLACK).expect("lb2 takes over");
    wait_routes(&lb2, 3);
    assert_eq!(
        routes(&lb1),
        Vec::<String>::new(),
        "a stopped master removes its routes"
    );

    // Preemption back: lb2 becomes backup and removes them.
    lab.start_xdpvs(0, &conf(100), "skb")
        .expect("restarting lb1");
    wait_vip(&lb1, true, down1 + SLACK).expect("lb1 preempts");
    wait_routes(&lb1, 3);
    wait_routes(&lb2, 0);
    assert_eq!(rules(&lb2), [STATIC_RULE]);
}
