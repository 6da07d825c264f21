//! The VRRP keywords that shape gratuitous ARPs, tracking and the node's
//! own addresses: global defaults, `garp_group`, `static_ipaddress`,
//! `track_file`, sync-group tracking and `net_namespace`.

use std::time::Duration;

use super::*;

#[test]
fn global_garp_defaults_reach_the_instances() {
    let c = ok(&format!(
        "global_defs {{\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 3\n \
         vrrp_garp_master_refresh 30\n vrrp_garp_master_refresh_repeat 2\n \
         vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert true\n}}\n{}{}",
        instance(""),
        instance(" garp_master_repeat 4\n lower_prio_no_advert false\n")
            .replace("V {", "W {")
            .replace("router_id 7", "router_id 8")
    ))
    .config;
    let (v, w) = (&c.vrrp_instances[0], &c.vrrp_instances[1]);
    assert_eq!(
        v.garp,
        GarpSettings {
            master_delay: Duration::from_secs(2),
            master_repeat: 3,
            master_refresh: Some(Duration::from_secs(30)),
            master_refresh_repeat: 2,
            // Unset everywhere: the global master batch.
            lower_prio_delay: Some(Duration::from_secs(2)),
            lower_prio_repeat: Some(3),
        }
    );
    assert!(v.lower_prio_no_advert && v.higher_prio_send_advert);
    assert_eq!(w.garp.master_repeat, 4, "the instance's own wins");
    assert_eq!(
        w.garp.lower_prio_repeat,
        Some(3),
        "keepalived: the global value, not the instance's master repeat"
    );
    assert!(!w.lower_prio_no_advert);

    let c = ok(&format!(
        "global_defs {{\n vrrp_garp_lower_prio_delay 7\n vrrp_garp_lower_prio_repeat 0\n vrrp_garp_master_repeat 0\n}}\n{}",
        instance("")
    ));
    let i = &c.config.vrrp_instances[0];
    assert_eq!(
        (
            i.garp.lower_prio_delay,
            i.garp.lower_prio_repeat,
            i.garp.master_repeat
        ),
        (Some(Duration::from_secs(7)), Some(0), 1)
    );
    assert_eq!(
        warnings(&c),
        ["k.conf:4: warning: vrrp_garp_master_repeat 0: read as 1, as keepalived does"]
    );
    assert_eq!(
        errors(&format!(
            "global_defs {{\n vrrp_higher_prio_send_advert maybe\n}}\n{}",
            instance("")
        )),
        [
            "k.conf:2: error: vrrp_higher_prio_send_advert maybe: expected on/off, true/false or yes/no"
        ]
    );
}

#[test]
fn vrrp_strict_answers_other_priorities_as_keepalived() {
    let strict = |body: &str| {
        format!(
            "global_defs {{\n vrrp_strict\n vrrp_higher_prio_send_advert\n}}\n{}",
            instance(body)
        )
    };
    let l = ok(&strict(""));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(
        (
            i.garp.lower_prio_repeat,
            i.garp.lower_prio_delay,
            i.lower_prio_no_advert,
            i.higher_prio_send_advert
        ),
        (Some(0), Some(Duration::ZERO), true, false),
        "unset: strict's values, not global_defs'"
    );
    assert_eq!(warnings(&l), [] as [String; 0]);
    let l = ok(&strict(
        " garp_lower_prio_repeat 3\n garp_lower_prio_delay 1\n lower_prio_no_advert false\n higher_prio_send_advert\n",
    ));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(
        (
            i.garp.lower_prio_repeat,
            i.garp.lower_prio_delay,
            i.lower_prio_no_advert,
            i.higher_prio_send_advert
        ),
        (Some(0), Some(Duration::ZERO), true, false),
        "set: reset"
    );
    assert_eq!(warnings(&l).len(), 4, "{:?}", warnings(&l));
    assert!(warnings(&l)[0].contains("vrrp_strict requires garp_lower_prio_delay 0; reset"));
}

#[test]
fn garp_spacing_per_interface_and_per_group() {
    let l = ok(&format!(
        "global_defs {{\n vrrp_garp_interval 0.25\n vrrp_gna_interval 0.000001\n}}\n\
         garp_group {{\n garp_interval 0.1\n interfaces {{\n  eth1 eth2\n  eth3\n }}\n}}\n\
         garp_group {{\n gna_interval 2\n interface eth4\n}}\n\
         garp_group {{\n garp_interval 0.1\n interface eth1\n}}\n{}",
        instance("")
    ));
    let c = &l.config;
    assert_eq!(
        c.global.garp_pacing,
        GarpPacing {
            garp: Some(Duration::from_millis(250)),
            gna: Some(Duration::from_micros(1)),
        }
    );
    assert_eq!(
        c.garp_groups.len(),
        2,
        "the third names only a taken interface"
    );
    assert_eq!(c.garp_groups[0].interfaces, ["eth1", "eth2", "eth3"]);
    assert_eq!(
        c.garp_groups[0].pacing,
        GarpPacing {
            garp: Some(Duration::from_millis(100)),
            gna: None
        }
    );
    assert_eq!(c.garp_groups[1].interfaces, ["eth4"]);
    assert_eq!(
        warnings(&l),
        [
            "k.conf:16: warning: garp_group names no interface; ignored",
            "k.conf:18: warning: garp_group: eth1 is already in a garp_group; ignored here",
        ]
    );
    assert_eq!(
        notes(&l),
        ["k.conf:13: note: gna_interval 2: very large (keepalived says so too)"]
    );
    assert_eq!(
        errors(&format!(
            "global_defs {{\n vrrp_garp_interval 0\n}}\ngarp_group {{\n interface eth0\n delay 1\n}}\n{}",
            instance("")
        )),
        [
            "k.conf:2: error: vrrp_garp_interval: must be more than 0 seconds",
            "k.conf:6: error: unknown keyword delay in garp_group",
        ]
    );
}

#[test]
fn static_addresses_take_the_vip_syntax_and_need_a_device() {
    let c = ok(
        "static_ipaddress {\n 192.0.2.10/24 dev eth0 label eth0:st scope link\n 2001:db8::10/64 dev eth1\n}\n",
    )
    .config;
    assert_eq!(c.static_addresses.len(), 2);
    let a = &c.static_addresses[0];
    assert_eq!(
        (
            a.addr,
            a.prefix,
            a.dev.as_deref(),
            a.label.as_deref(),
            a.options.scope
        ),
        (
            ip("192.0.2.10"),
            24,
            Some("eth0"),
            Some("eth0:st"),
            Some(253)
        )
    );
    assert_eq!(
        errors("static_ipaddress {\n 192.0.2.11\n 192.0.2.12 dev eth0 frob\n}\n"),
        [
            "k.conf:2: error: static_ipaddress 192.0.2.11: needs `dev INTERFACE`, or `default_interface` in global_defs",
            "k.conf:3: error: static_ipaddress 192.0.2.12: frob is not supported",
        ]
    );
}

#[test]
fn track_files_and_their_references() {
    let c = ok(&format!(
        "track_file up {{\n file /run/up\n weight -3 reverse\n init_file 7 overwrite\n}}\n\
         vrrp_track_file old {{\n file /run/old\n}}\n{}",
        instance(" track_file {\n  up\n  old weight 0\n  up weight 9\n }\n")
    ))
    .config;
    assert_eq!(
        c.track_files,
        [
            TrackFile {
                name: "up".into(),
                path: "/run/up".into(),
                weight: -3,
                reverse: true,
                init: Some(TrackFileInit {
                    value: 7,
                    overwrite: true
                }),
                location: Location {
                    line: 1,
                    ..Location::of(Path::new("k.conf"))
                },
            },
            TrackFile {
                name: "old".into(),
                path: "/run/old".into(),
                weight: 1,
                reverse: false,
                init: None,
                location: Location {
                    line: 6,
                    ..Location::of(Path::new("k.conf"))
                },
            },
        ]
    );
    assert_eq!(
        c.vrrp_instances[0].track_files,
        [
            TrackFileRef {
                name: "up".into(),
                weight: None,
                reverse: None
            },
            TrackFileRef {
                name: "old".into(),
                weight: Some(0),
                reverse: None
            },
        ],
        "listed twice: the first is used"
    );
    assert_eq!(
        errors(&format!(
            "track_file a {{\n weight 300\n}}\ntrack_file b {{\n file /x\n init_file 999\n}}\ntrack_file b {{\n file /y\n}}\n{}",
            instance(" track_file {\n  nope\n  b weight 1 sideways\n }\n")
        )),
        [
            "k.conf:1: error: track_file a needs `file PATH`",
            "k.conf:2: error: weight 300: must be a whole number from -254 to 254",
            "k.conf:6: error: init_file 999: expected a number from -254 to 254, or overwrite",
            "k.conf:8: error: track_file b is already defined at k.conf:4",
            "k.conf:18: error: vrrp_instance V: track_file nope is not defined by any top-level track_file block",
            "k.conf:19: error: track_file b weight 1: expected reverse or noreverse after it",
        ]
    );
}

#[test]
fn sync_group_tracking_follows_keepalived() {
    let text = |group_extra: &str| {
        format!(
            "track_file f {{\n file /run/f\n}}\ntrack_file g {{\n file /run/g\n weight 5\n}}\n\
             vrrp_script s {{\n script /bin/true\n weight 10\n}}\nvrrp_script z {{\n script /bin/true\n}}\n{}\
             vrrp_sync_group G {{\n group {{\n  V\n }}\n{group_extra}}}\n",
            instance(
                " track_interface {\n  eth1 weight -5\n  eth2\n }\n track_script {\n  s\n  z\n }\n track_file {\n  f\n  g\n }\n"
            )
        )
    };
    // Without sync_group_tracking_weight: the members' weights do not count.
    let l = ok(&text(""));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(
        i.track_interfaces,
        [
            TrackInterface {
                name: "eth1".into(),
                weight: Some(0)
            },
            TrackInterface {
                name: "eth2".into(),
                weight: None
            },
        ]
    );
    assert_eq!(
        i.track_scripts,
        [TrackScript {
            name: "z".into(),
            weight: None
        }]
    );
    assert_eq!(
        i.track_files,
        [TrackFileRef {
            name: "f".into(),
            weight: Some(0),
            reverse: None
        }]
    );
    assert_eq!(warnings(&l).len(), 4, "{:?}", warnings(&l));
    // With it, they do; the group's own entries are added to each member.
    let l = ok(&text(
        " sync_group_tracking_weight\n track_script {\n  s weight -7\n }\n track_interface {\n  eth3 weight 4\n }\n track_file {\n  f weight 2 reverse\n }\n",
    ));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(warnings(&l), [] as [String; 0]);
    assert_eq!(
        i.track_interfaces,
        [
            TrackInterface {
                name: "eth1".into(),
                weight: Some(-5)
            },
            TrackInterface {
                name: "eth2".into(),
                weight: None
            },
            TrackInterface {
                name: "eth3".into(),
                weight: Some(4)
            },
        ]
    );
    assert_eq!(
        i.track_scripts,
        [
            TrackScript {
                name: "z".into(),
                weight: None
            },
            TrackScript {
                name: "s".into(),
                weight: Some(-7)
            },
        ]
    );
    assert_eq!(
        i.track_files,
        [
            TrackFileRef {
                name: "f".into(),
                weight: Some(2),
                reverse: Some(true)
            },
            TrackFileRef {
                name: "g".into(),
                weight: None,
                reverse: None
            },
        ]
    );
    let l = ok(&text(" global_tracking\n"));
    assert!(
        warnings(&l)[0].contains("global_tracking is deprecated"),
        "{:?}",
        warnings(&l)
    );
    assert_eq!(l.config.vrrp_instances[0].track_scripts.len(), 2);
}

#[test]
fn track_process_as_keepalived_reads_it() {
    let c = ok(&format!(
        "track_process web {{\n process /usr/sbin/nginx -g \"daemon off;\"\n weight -20 reverse\n \
         quorum 2\n quorum_max 5\n delay 0.5\n terminate_delay 3\n}}\n\
         vrrp_track_process any {{\n process nginx\n}}\n\
         track_process none {{\n process sshd\n quorum_max 0\n}}\n{}",
        instance(" track_process {\n  web\n  any weight 7\n }\n")
    ))
    .config;
    let [web, any, none] = &c.track_processes[..] else {
        panic!("{:#?}", c.track_processes)
    };
    assert_eq!(
        (
            web.process.as_str(),
            &web.params[..],
            web.param_match,
            web.full_command
        ),
        (
            "/usr/sbin/nginx",
            &["-g".to_string(), "daemon off;".to_string()][..],
            ParamMatch::Exact,
            true
        ),
        "arguments: the whole command line, exactly"
    );
    assert_eq!(
        (web.weight, web.reverse, web.quorum, web.quorum_max),
        (-20, true, 2, 5)
    );
    assert_eq!(
        (web.fork_delay, web.terminate_delay),
        (Duration::from_millis(500), Duration::from_secs(3)),
        "delay sets both, terminate_delay then its own"
    );
    assert_eq!(
        (
            any.param_match,
            any.full_command,
            any.weight,
            any.quorum,
            any.quorum_max
        ),
        (ParamMatch::None, false, 0, 1, u32::MAX),
        "keepalived's defaults: the name, weight 0, at least one"
    );
    assert_eq!(
        (none.quorum, none.quorum_max),
        (0, 0),
        "quorum_max 0: while none runs"
    );
    assert_eq!(
        c.vrrp_instances[0].track_processes,
        [
            TrackFileRef {
                name: "web".into(),
                weight: None,
                reverse: None
            },
            TrackFileRef {
                name: "any".into(),
                weight: Some(7),
                reverse: None
            },
        ]
    );
    assert_eq!(
        errors(&format!(
            "track_process a {{\n weight 1\n}}\ntrack_process b {{\n process x\n quorum 3\n quorum_max 2\n \
             param_match sideways\n delay 0\n}}\n{}",
            instance(" track_process {\n  c\n }\n")
        )),
        [
            "k.conf:1: error: track_process a needs `process NAME`",
            "k.conf:4: error: track_process b: quorum 3 is above quorum_max 2",
            "k.conf:8: error: param_match sideways: expected initial, partial or nothing",
            "k.conf:9: error: delay: must be from 0.000001 to 3600 seconds",
            "k.conf:18: error: vrrp_instance V: track_process c is not defined by any top-level track_process block",
        ]
    );
}

#[test]
fn net_namespace_once() {
    let c = ok("global_defs {\n net_namespace blue\n}\nnet_namespace blue\n").config;
    assert_eq!(c.global.net_namespace.as_deref(), Some("blue"));
    assert_eq!(
        errors("net_namespace blue\nnet_namespace red\nnet_namespace ../x\n"),
        [
            "k.conf:2: error: net_namespace red: already set to blue",
            "k.conf:3: error: net_namespace \"../x\": not a namespace name (one path component of /var/run/netns)",
        ]
    );
}

#[test]
fn instance_switches() {
    let c = ok(&instance(
        " dont_track_primary\n higher_prio_send_advert\n notify_master_rx_lower_pri \"/bin/echo lower\"\n",
    ))
    .config;
    let i = &c.vrrp_instances[0];
    assert!(i.dont_track_primary && i.higher_prio_send_advert);
    assert_eq!(
        i.notify_master_rx_lower_pri
            .as_ref()
            .map(|s| s.command.as_str()),
        Some("/bin/echo lower")
    );
    let c = ok("vrrp_script s {\n script /bin/true\n init_fail\n}\n").config;
    assert!(c.vrrp_scripts[0].init_fail);
}
