//! Files written the way operators write them (`tests/configs/`).

use std::time::Duration;

use super::*;

#[test]
fn classic_nginx_pair() {
    let master = load_ok(&fixture("nginx-ha.conf"));
    let backup = load_ok(&fixture("nginx-ha-backup.conf"));
    let c = &master.config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(c.global.vrrp_version, 2);
    let s = &c.vrrp_scripts[0];
    assert_eq!(
        (s.name.as_str(), s.script.as_str()),
        ("chk_nginx", "/usr/bin/pgrep -x nginx")
    );
    assert_eq!(
        (s.interval, s.timeout, s.weight, s.rise, s.fall),
        (Duration::from_secs(2), Duration::from_secs(2), -20, 2, 2)
    );
    let i = &c.vrrp_instances[0];
    assert_eq!(
        (i.name.as_str(), i.interface.as_str(), i.vrid, i.priority),
        ("VI_1", "eth0", 51, 101)
    );
    assert_eq!(i.initial_state, InitialState::Master);
    assert_eq!(i.auth, Some(Auth::Pass("1111".into())));
    assert_eq!(
        i.vips,
        [VipAddress {
            addr: ip("192.168.200.16"),
            prefix: 24,
            dev: Some("eth0".into()),
            label: Some("eth0:vip".into()),
            options: VipOptions::default(),
        }]
    );
    assert_eq!(
        i.track_scripts,
        [TrackScript {
            name: "chk_nginx".into(),
            weight: None
        }]
    );
    assert_eq!(
        i.notify.master.as_ref().map(|s| s.command.as_str()),
        Some("/etc/keepalived/notify.sh master")
    );
    assert_eq!(
        i.notify.backup.as_ref().map(|s| s.command.as_str()),
        Some("/etc/keepalived/notify.sh backup")
    );
    assert_eq!(
        i.notify.any.as_ref().map(|s| s.command.as_str()),
        Some("/etc/keepalived/notify-all.sh")
    );
    assert_eq!(
        (
            i.notify.fault.as_ref().map(|s| s.command.as_str()),
            i.notify.stop.as_ref().map(|s| s.command.as_str())
        ),
        (None, None)
    );
    assert_eq!(
        i.location.to_string(),
        format!("{}:22", fixture("nginx-ha.conf").display())
    );

    // The pair agrees on everything but the role and the priority.
    let b = &backup.config.vrrp_instances[0];
    assert_eq!((b.initial_state, b.priority), (InitialState::Backup, 100));
    assert_eq!((&b.vips, b.vrid, &b.auth), (&i.vips, i.vrid, &i.auth));

    // Mail settings and script security are read.
    assert_eq!(warnings(&master), [] as [String; 0]);
    let g = &master.config.global;
    assert!(g.mail.enabled());
    assert!(g.enable_script_security);
    assert_eq!(
        g.script_user,
        Some(ScriptUser {
            user: "root".into(),
            group: None
        })
    );
    assert_eq!(notes(&master), [] as [String; 0]);
    assert_eq!(g.router_id.as_deref(), Some("LVS_DEVEL"));
}

#[test]
fn lvs_dr_services_and_checks() {
    let l = load_ok(&fixture("lvs-dr.conf"));
    let c = &l.config;
    let [web, web6] = &c.vrrp_instances[..] else {
        panic!("{:#?}", c.vrrp_instances)
    };
    assert_eq!(web.version, 3, "global_defs vrrp_version applies");
    assert_eq!(web.advert_int, Duration::from_millis(500));
    assert!(!web.preempt);
    assert_eq!(web.unicast_src_ip, Some(ip("10.1.0.2")));
    assert_eq!(web.unicast_peers, [ip("10.1.0.3")]);
    assert_eq!(web.excluded_vips[0].addr, ip("10.1.0.101"));
    assert_eq!(
        web.track_interfaces,
        [
            // In a sync group without sync_group_tracking_weight:
            // keepalived reads the weight as 0 (a fault while down).
            TrackInterface {
                name: "eth1".into(),
                weight: Some(0)
            },
            TrackInterface {
                name: "eth2".into(),
                weight: None
            }
        ]
    );
    assert_eq!(web.garp.master_refresh, Some(Duration::from_secs(60)));
    assert_eq!(web.garp.master_refresh_repeat, 2);
    assert_eq!(
        (web6.vrid, web6.vips[0].prefix),
        (10, 64),
        "same VRID, other family"
    );
    assert_eq!(c.sync_groups[0].members, ["VI_WEB", "VI_WEB6"]);
    assert_eq!(
        c.sync_groups[0]
            .notify
            .master
            .as_ref()
            .map(|s| s.command.as_str()),
        Some("/etc/keepalived/edge.sh master")
    );

    assert_eq!(c.virtual_servers.len(), 3);
    let http = &c.virtual_servers[0];
    assert_eq!(
        (
            http.port,
            http.protocol,
            http.scheduler.as_str(),
            http.persistence_timeout
        ),
        (80, Protocol::Tcp, "wlc", 300)
    );
    assert_eq!(http.delay_loop, Duration::from_secs(3));
    assert_eq!(
        http.sorry_server,
        Some("10.1.0.250:80".parse().unwrap_or_else(|e| panic!("{e}")))
    );
    let r1 = &http.reals[0];
    assert!(r1.inhibit_on_failure);
    assert_eq!(r1.weight, 3);
    let HealthCheck::HttpGet(h) = &r1.checks[0] else {
        panic!("{:?}", r1.checks)
    };
    let paths: Vec<_> = h
        .urls
        .iter()
        .map(|u| (u.path.as_str(), u.status_codes.clone()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/healthz", vec![200]),
            ("/ready", vec![200, 204]),
            ("/", vec![])
        ]
    );
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert_eq!(
        (h.connect.timing.retry, h.connect.connect_timeout),
        (3, Duration::from_secs(2)),
        "nb_get_retry is retry"
    );
    let r2 = &http.reals[1];
    let [HealthCheck::TcpCheck(t), HealthCheck::SslGet(s)] = &r2.checks[..] else {
        panic!("{:?}", r2.checks)
    };
    assert_eq!((s.http.urls[0].path.as_str(), s.enable_sni), ("/", false));
    assert_eq!(
        (
            t.connect.connect_port,
            t.connect.bindto,
            t.connect.timing.retry
        ),
        (Some(80), Some(ip("10.1.0.2")), 2)
    );
    assert_eq!(
        t.connect.timing.delay_before_retry,
        Duration::from_secs(1),
        "default"
    );

    let dns = &c.virtual_servers[1];
    assert_eq!(
        (dns.protocol, dns.delay_loop),
        (Protocol::Udp, Duration::from_secs(60))
    );
    assert_eq!(
        (dns.reals[0].weight, dns.reals[1].weight),
        (1, 0),
        "default weight; 0 drains"
    );
    let HealthCheck::MiscCheck(m) = &dns.reals[0].checks[0] else {
        panic!("{:?}", dns.reals[0].checks)
    };
    assert_eq!(
        (m.misc_path.as_str(), m.misc_timeout, m.misc_dynamic),
        (
            "/usr/local/bin/check_dns 10.1.0.21",
            Duration::from_secs(5),
            true
        )
    );
    let HealthCheck::MiscCheck(m) = &dns.reals[1].checks[0] else {
        panic!("{:?}", dns.reals[1].checks)
    };
    assert_eq!(
        (m.misc_path.as_str(), m.misc_timeout, m.misc_dynamic),
        (
            "/usr/local/bin/check_dns 10.1.0.22",
            Duration::from_secs(60),
            false
        ),
        "unquoted command; misc_timeout defaults to delay_loop"
    );

    let v6 = &c.virtual_servers[2];
    assert_eq!((v6.addr, v6.alpha), (ip("2001:db8::100"), true));
    let HealthCheck::TcpCheck(t) = &v6.reals[0].checks[0] else {
        panic!("{:?}", v6.reals[0].checks)
    };
    assert_eq!(
        (
            t.connect.connect_timeout,
            t.connect.timing.retry,
            t.connect.timing.delay_before_retry
        ),
        (Duration::from_secs(3), 5, Duration::from_secs(4)),
        "retry from the real, delay_before_retry from the service"
    );
    let HealthCheck::TcpCheck(t) = &v6.reals[1].checks[0] else {
        panic!("{:?}", v6.reals[1].checks)
    };
    assert_eq!(
        (
            t.connect.connect_ip,
            t.connect.connect_port,
            t.connect.timing.retry
        ),
        (Some(ip("2001:db8::12")), Some(8443), 1)
    );

    let file = fixture("lvs-dr.conf");
    let f = file.display();
    assert_eq!(
        warnings(&l),
        [format!(
            "{f}:16: warning: vrrp_instance VI_WEB: in vrrp_sync_group VG_EDGE without sync_group_tracking_weight: track_interface eth1 read with weight 0 (keepalived)"
        )]
    );
    // Every scheduler is said to be mapped, as a note.
    assert_eq!(
        notes(&l),
        [
            format!("{f}:56: note: lb_algo wlc is served by weighted Maglev consistent hashing"),
            format!("{f}:101: note: lb_algo sh is served by weighted Maglev consistent hashing"),
            format!("{f}:120: note: lb_algo mh is served by weighted Maglev consistent hashing"),
        ]
    );
}

#[test]
fn pasted_file_reads_as_meant() {
    let l = load_ok(&fixture("pasted-from-blog.conf"));
    let c = &l.config;
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.name, "chk_haproxy", "name on the line after the keyword");
    assert_eq!(
        (s.script.as_str(), s.weight),
        ("killall -0 haproxy", 2),
        "weight=2"
    );
    let i = &c.vrrp_instances[0];
    assert_eq!(
        (i.initial_state, i.interface.as_str(), i.vrid),
        (InitialState::Master, "eth0", 51)
    );
    assert_eq!((i.vips[0].addr, i.vips[0].prefix), (ip("10.0.0.100"), 24));
    assert_eq!(i.track_scripts[0].weight, Some(5));
    assert_eq!(
        i.notify.master.as_ref().map(|s| s.command.as_str()),
        Some("/etc/keepalived/master.sh")
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.port, vs.delay_loop, vs.scheduler.as_str()),
        (80, Duration::from_secs(6), "rr")
    );
    assert_eq!(vs.reals[0].checks.len(), 1, "`}}` closes two blocks");
    let f = fixture("pasted-from-blog.conf");
    let f = f.display();
    assert_eq!(
        warnings(&l),
        [
            format!(
                "{f}:3: warning: Unicode blank U+00A0 read as a space (keepalived would read it as part of a word); further ones in this file are read the same way"
            ),
            format!("{f}:7: warning: `weight=2` read as `weight 2`"),
            format!(
                "{f}:9: warning: comment right after `{{`: read as a comment; some keepalived versions read it as a keyword"
            ),
            format!("{f}:33: warning: `weight=1` read as `weight 1`"),
        ]
    );
}

#[test]
fn conf_d_layout_with_nested_relative_includes() {
    let l = load_ok(&fixture("main-with-includes.conf"));
    let c = &l.config;
    let names: Vec<_> = c.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_A", "VI_B"]);
    assert_eq!(c.global.router_id.as_deref(), Some("node-a"));
    assert_eq!(
        c.vrrp_scripts[0].name, "chk_web",
        "conf.d includes ../scripts.d"
    );
    assert_eq!(c.vrrp_scripts[0].timeout, Duration::from_secs(2));
    assert_eq!(c.sync_groups[0].members, ["VI_A", "VI_B"]);
    assert_eq!(c.virtual_servers[0].scheduler, "rr");
    let at = |l: &Location| l.to_string();
    assert!(at(&c.virtual_servers[0].location).ends_with("conf.d/20-web.conf:1"));
    assert!(at(&c.vrrp_instances[1].location).ends_with("conf.d/10-vrrp.conf:15"));
    assert!(at(&c.vrrp_scripts[0].location).ends_with("scripts.d/checks.conf:1"));
    let w = warnings(&l);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].ends_with(
            "main-with-includes.conf:6: warning: include \"missing.d/*.conf\" matches no file"
        ),
        "{w:#?}"
    );
}

#[test]
fn every_fixture_prints_as_json() {
    for name in [
        "nginx-ha.conf",
        "lvs-dr.conf",
        "pasted-from-blog.conf",
        "main-with-includes.conf",
    ] {
        let l = load_ok(&fixture(name));
        let v: serde_json::Value =
            serde_json::from_str(&to_json(&l.config)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            v["vrrp_instances"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{name}"
        );
    }
}

#[test]
fn one_file_for_two_nodes_with_conditions_and_parameters() {
    let read = |id: &str| {
        let options = Options {
            config_id: Some(id.into()),
        };
        load_with(&fixture("one-file-two-nodes.conf"), &options)
            .unwrap_or_else(|e| panic!("{id}: refused:\n{e}"))
    };
    let (lb1, lb2) = (read("lb1"), read("lb2"));
    for (l, id, state, priority, src, peer) in [
        (
            &lb1,
            "lb1",
            InitialState::Master,
            150,
            "192.168.50.11",
            "192.168.50.12",
        ),
        (
            &lb2,
            "lb2",
            InitialState::Backup,
            100,
            "192.168.50.12",
            "192.168.50.11",
        ),
    ] {
        let c = &l.config;
        assert_eq!(c.global.router_id.as_deref(), Some(id));
        assert_eq!(c.global.capacity.services, 16);
        let i = &c.vrrp_instances[0];
        assert_eq!((i.initial_state, i.priority), (state, priority), "{id}");
        assert_eq!(i.unicast_src_ip, Some(ip(src)), "{id}");
        assert_eq!(i.unicast_peers, [ip(peer)], "{id}");
        assert_eq!(i.interface, "eth0");
        assert_eq!(
            (i.vips[0].addr, i.vips[0].prefix, i.vips[0].dev.as_deref()),
            (ip("192.168.50.100"), 24, Some("eth0"))
        );
        assert_eq!(c.sync_groups[0].members, ["VI_WEB"]);
        let web = &c.virtual_servers[0];
        assert_eq!((web.addr, web.port), (ip("192.168.50.100"), 80));
        let reals: Vec<(IpAddr, u16)> = web.reals.iter().map(|r| (r.addr, r.port)).collect();
        assert_eq!(
            reals,
            [(ip("192.168.50.21"), 80), (ip("192.168.50.22"), 80)]
        );
        assert_eq!(c.virtual_servers[1].port, 0);
        assert_eq!(
            warnings(l),
            [
                format!(
                    "{}:20: warning: vrrp_instance VI_WEB: in vrrp_sync_group SG_WEB without sync_group_tracking_weight: weighted track_script chk_nginx ignored (keepalived)",
                    fixture("one-file-two-nodes.conf").display()
                ),
                format!(
                    "{}:44: warning: vrrp_sync_group SG_WEB: VI_WEB written directly in the group (older syntax) is read as a member; the modern form is `group {{ VI_WEB }}`",
                    fixture("one-file-two-nodes.conf").display()
                )
            ]
        );
    }
}
