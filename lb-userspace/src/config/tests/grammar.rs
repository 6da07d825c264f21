//! The shapes real files take, end to end, and the warnings they draw.

use std::time::Duration;

use super::*;

#[test]
fn glued_braces_and_block_names_on_later_lines() {
    let l = ok(
        "virtual_server\n 10.0.0.1 80\n{\n lb_kind DR\n real_server 10.0.0.2 80{\n  weight 2}}\nvrrp_script\n  chk\n{\n script \"/bin/check --x\"}\n",
    );
    let vs = &l.config.virtual_servers[0];
    assert_eq!(
        (vs.addr, vs.port, vs.reals[0].weight),
        (ip("10.0.0.1"), 80, 2)
    );
    assert_eq!(l.config.vrrp_scripts[0].script, "/bin/check --x");
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
}

#[test]
fn one_line_blocks() {
    let text = instance(" unicast_peer { 10.0.0.2 10.0.0.3 }\n track_script { chk weight -5 }\n");
    let c = ok(&format!("vrrp_script chk {{ script /bin/true }}\n{text}")).config;
    let i = &c.vrrp_instances[0];
    assert_eq!(i.unicast_peers, [ip("10.0.0.2"), ip("10.0.0.3")]);
    assert_eq!(
        i.track_scripts,
        [TrackScript {
            name: "chk".into(),
            weight: Some(-5)
        }]
    );
}

#[test]
fn assignments_are_split_with_a_warning() {
    let l = ok(&instance(" priority=120\n advert_int= 2\n"));
    assert_eq!(l.config.vrrp_instances[0].priority, 120);
    assert_eq!(
        l.config.vrrp_instances[0].advert_int,
        Duration::from_secs(2)
    );
    assert_eq!(
        warnings(&l),
        [
            "k.conf:7: warning: `priority=120` read as `priority 120`",
            "k.conf:8: warning: `advert_int=` read as `advert_int `"
        ]
    );
}

#[test]
fn unknown_keywords_warn_and_are_skipped_whole() {
    let l = ok(
        "frobnicate 1\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n mystery_block {\n  priority 1\n  inner {\n   priority 2\n  }\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\nlinkbeat_interfaces {\n eth0\n}\n",
    );
    assert_eq!(
        l.config.vrrp_instances[0].priority, 100,
        "the unknown block's contents are not read"
    );
    assert_eq!(
        warnings(&l),
        [
            "k.conf:1: warning: unknown keyword frobnicate, ignored",
            "k.conf:5: warning: unknown keyword mystery_block in vrrp_instance, ignored",
            "k.conf:15: warning: linkbeat_interfaces: not acted on by xdpvs (xdpvs follows link state through netlink, which every driver reports), ignored",
        ]
    );
}

#[test]
fn unknown_keywords_in_every_block() {
    let text = "global_defs {\n x1\n}\nvrrp_script s {\n script /bin/true\n x2\n}\nvrrp_sync_group G {\n group {\n  V\n }\n x3\n}\nvirtual_server 10.0.0.1 80 {\n x4\n real_server 10.0.0.2 80 {\n  x5\n  TCP_CHECK {\n   x6\n  }\n  HTTP_GET {\n   x7\n   url {\n    path /\n    x8\n   }\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n   x9\n  }\n }\n}\n";
    let l = ok(&format!(
        "{text}{}",
        instance(" authentication {\n  auth_type PASS\n  auth_pass p\n  x10\n }\n")
    ));
    let unknown: Vec<String> = warnings(&l)
        .into_iter()
        .filter(|w| w.contains("unknown"))
        .collect();
    assert_eq!(
        unknown,
        [
            "k.conf:2: warning: unknown keyword x1 in global_defs, ignored",
            "k.conf:6: warning: unknown keyword x2 in vrrp_script, ignored",
            "k.conf:12: warning: unknown keyword x3 in vrrp_sync_group, ignored",
            "k.conf:15: warning: unknown keyword x4 in virtual_server, ignored",
            "k.conf:17: warning: unknown keyword x5 in real_server, ignored",
            "k.conf:19: warning: unknown keyword x6 in TCP_CHECK, ignored",
            "k.conf:22: warning: unknown keyword x7 in HTTP_GET, ignored",
            "k.conf:25: warning: unknown keyword x8 in url, ignored",
            "k.conf:30: warning: unknown keyword x9 in MISC_CHECK, ignored",
            "k.conf:43: warning: unknown keyword x10 in authentication, ignored",
        ]
    );
}

#[test]
fn keepalived_defaults_that_differ_are_read_as_keepalived_reads_them() {
    // `inhibit_on_failure` takes keepalived's <BOOL>: `false` in a real
    // undoes the virtual server's; a bare `persistence_timeout` is IPVS's
    // 360 s; with no lb_kind keepalived forwards by NAT, which is said.
    let l = ok(
        "virtual_server 10.0.0.1 80 {\n inhibit_on_failure\n persistence_timeout\n \
         real_server 10.0.0.2 80 {\n  inhibit_on_failure false\n }\n \
         real_server 10.0.0.3 80 {\n }\n}\n",
    );
    let vs = &l.config.virtual_servers[0];
    assert_eq!(
        (
            vs.persistence_timeout,
            vs.reals[0].inhibit_on_failure,
            vs.reals[1].inhibit_on_failure
        ),
        (360, false, true)
    );
    assert!(warnings(&l).is_empty(), "{:?}", warnings(&l));
    assert_eq!(
        notes(&l),
        [
            "k.conf:1: note: no lb_kind: keepalived would forward by NAT; xdpvs forwards by direct routing (DR), so each real must hold the VIP on its loopback (set `lb_kind DR`)"
        ]
    );
}

#[test]
fn schedulers_are_kept_and_noted_not_warned() {
    for algo in [
        "rr", "wrr", "lc", "wlc", "lblc", "sh", "dh", "mh", "sed", "nq",
    ] {
        let l = ok(&format!(
            "virtual_server 10.0.0.1 80 {{\n lb_algo {algo}\n lb_kind DR\n}}\n"
        ));
        assert_eq!(l.config.virtual_servers[0].scheduler, algo);
        assert!(warnings(&l).is_empty(), "{algo}");
        assert_eq!(
            notes(&l),
            [format!(
                "k.conf:2: note: lb_algo {algo} is served by weighted Maglev consistent hashing"
            )]
        );
    }
    let l = ok("virtual_server 10.0.0.1 80 {\n lb_algo fancy\n}\n");
    assert_eq!(
        warnings(&l),
        ["k.conf:2: warning: lb_algo fancy: not an IPVS scheduler name; weighted Maglev is used"]
    );
}

#[test]
fn families_of_vips_and_reals() {
    let l = ok(&instance(" virtual_ipaddress {\n  2001:db8::5/64\n }\n"));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(i.vips.len(), 1);
    assert_eq!(
        i.excluded_vips[0].addr,
        ip("2001:db8::5"),
        "moved with the instance, not advertised"
    );
    assert_eq!(
        warnings(&l),
        [
            "k.conf:8: warning: virtual_ipaddress 2001:db8::5: not of the instance's address family (that of its first address); handled as virtual_ipaddress_excluded"
        ]
    );
    let c = ok("virtual_server 2001:db8::1 443 {\n real_server 2001:db8::2 443 {\n }\n}\n").config;
    assert_eq!(c.virtual_servers[0].reals[0].addr, ip("2001:db8::2"));
}

#[test]
fn vip_options() {
    let c = ok(&instance(" virtual_ipaddress_excluded {\n  192.0.2.1/24 brd 192.0.2.255 dev eth1 scope global label eth1:x\n  192.0.2.2 nodad noprefixroute no_track scope host preferred_lft 0\n  2001:db8::1 home -nodad preferred_lft forever brd +\n }\n")).config;
    let x = &c.vrrp_instances[0].excluded_vips;
    assert_eq!(
        x[0],
        VipAddress {
            addr: ip("192.0.2.1"),
            prefix: 24,
            dev: Some("eth1".into()),
            label: Some("eth1:x".into()),
            options: VipOptions {
                broadcast: Some("192.0.2.255".parse().unwrap()),
                scope: Some(0),
                ..VipOptions::default()
            },
        }
    );
    assert_eq!(x[1].prefix, 32);
    assert_eq!(
        x[1].options,
        VipOptions {
            scope: Some(254),
            noprefixroute: true,
            no_track: true,
            preferred_lft: Some(0),
            ..VipOptions::default()
        }
    );
    assert_eq!(
        x[2].options,
        VipOptions {
            home: true,
            ..VipOptions::default()
        }
    );
}

#[test]
fn vip_options_never_dropped_silently() {
    let text = instance(
        " virtual_ipaddress_excluded {\n  192.0.2.2 frob\n  192.0.2.3 home\n  192.0.2.4 scope galaxy brd 2001:db8::1\n  192.0.2.5 preferred_lft soon peer\n  192.0.2.6 dev\n }\n",
    );
    let line = |n: u32, m: &str| format!("k.conf:{n}: error: virtual_ipaddress {m}");
    let base = text.lines().position(|l| l.contains("192.0.2.2")).unwrap() as u32 + 1;
    assert_eq!(
        errors(&text),
        [
            line(base, "192.0.2.2: frob is not supported"),
            line(base + 1, "192.0.2.3: home is an IPv6 option"),
            line(
                base + 2,
                "192.0.2.4: scope galaxy: expected global, site, link, host, nowhere or 0-255"
            ),
            line(
                base + 2,
                "192.0.2.4: brd 2001:db8::1: expected an IPv4 address or + (IPv4 VIPs only)"
            ),
            line(
                base + 3,
                "192.0.2.5: preferred_lft soon: expected seconds or forever"
            ),
            line(base + 3, "192.0.2.5: peer is not supported"),
            line(base + 4, "192.0.2.6: dev needs a value"),
        ]
    );
}

#[test]
fn preemption_settings_that_cannot_hold_are_cleared_as_keepalived_does() {
    let parse = |body: &str| {
        let l = ok(&instance(body));
        let i = &l.config.vrrp_instances[0];
        ((i.preempt, i.preempt_delay), warnings(&l))
    };
    let cleared = |what: &str, why: &str| {
        format!("k.conf:1: warning: vrrp_instance V: {what} {why}; cleared, as keepalived does")
    };
    assert_eq!(
        parse(" state MASTER\n nopreempt\n preempt_delay 30\n"),
        (
            (true, Duration::ZERO),
            vec![
                cleared("nopreempt", "does not hold with state MASTER"),
                cleared("preempt_delay", "does not hold with state MASTER"),
            ]
        )
    );
    assert_eq!(
        parse(" state BACKUP\n priority 255\n nopreempt\n"),
        (
            (true, Duration::ZERO),
            vec![cleared(
                "nopreempt",
                "does not hold for the address owner (priority 255)"
            )]
        )
    );
    assert_eq!(
        parse(" state BACKUP\n nopreempt\n preempt_delay 30\n"),
        (
            (false, Duration::ZERO),
            vec![cleared("preempt_delay", "means nothing with nopreempt")]
        )
    );
    assert_eq!(
        parse(" state BACKUP\n preempt_delay 30\n"),
        ((true, Duration::from_secs(30)), vec![]),
        "a delay with preemption stays"
    );
}

#[test]
fn warnings_about_values_read_differently() {
    let l = ok(&format!(
        "{}virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 8080 {{\n  inhibit_on_failure yes\n }}\n}}\n",
        instance(
            " state MASTER\n nopreempt\n version 3\n advert_int 0.015\n authentication {\n  auth_type PASS\n  auth_pass 123456789\n }\n priority 90 100\n"
        )
    ));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(
        (i.advert_int, i.auth.as_ref(), i.priority),
        (Duration::from_millis(20), None, 90)
    );
    assert!(l.config.virtual_servers[0].reals[0].inhibit_on_failure);
    assert_eq!(
        warnings(&l),
        [
            "k.conf:1: warning: vrrp_instance V: VRRPv3 has no authentication; ignored",
            "k.conf:1: warning: vrrp_instance V: advert_int 0.015 read as 0.02 (VRRPv3 counts centiseconds)",
            "k.conf:1: warning: vrrp_instance V: nopreempt does not hold with state MASTER; cleared, as keepalived does",
            "k.conf:13: warning: auth_pass is longer than 8 characters: only the first 8 are used, as keepalived does",
            "k.conf:15: warning: priority: extra values after \"90\" ignored",
            "k.conf:18: warning: real_server 10.0.0.2 8080: port differs from the virtual_server's 80; direct routing keeps port 80",
        ]
    );
}

#[test]
fn notify_scripts_quoted_or_not() {
    let c = ok(&instance(" notify_master \"/bin/n.sh master now\"\n notify_backup \"/bin/n.sh backup\"\n notify_fault '/bin/f.sh'\n notify_stop /bin/s.sh\n notify /bin/any.sh\n")).config;
    let n = &c.vrrp_instances[0].notify;
    assert_eq!(
        *n,
        Notify {
            master: Some("/bin/n.sh master now".into()),
            backup: Some("/bin/n.sh backup".into()),
            fault: Some("'/bin/f.sh'".into()),
            stop: Some("/bin/s.sh".into()),
            any: Some("/bin/any.sh".into()),
        }
    );
}

/// keepalived reads the words after a notify script as the user and group
/// to run it as (`notify_backup /bin/n.sh backup` runs as user `backup`):
/// refused until xdpvs does the same, never run as script_user or with the
/// user as an argument.
#[test]
fn words_after_a_notify_script_are_its_user_and_group() {
    // keepalived's `notify_script_init`: SCRIPT [USER [GROUP]], the script
    // one word or a quoted command with its arguments.
    let run_as = |user: &str, group: Option<&str>| {
        Some(ScriptUser {
            user: user.into(),
            group: group.map(Into::into),
        })
    };
    let l = ok(&instance(
        " notify_backup /bin/n.sh backup\n notify_master \"/bin/n.sh master\" nobody nogroup\n \
         notify /bin/all.sh\n",
    ));
    let n = &l.config.vrrp_instances[0].notify;
    assert_eq!(
        n.backup,
        Some(NotifyScript {
            command: "/bin/n.sh".into(),
            user: run_as("backup", None),
        })
    );
    assert_eq!(
        n.master,
        Some(NotifyScript {
            command: "/bin/n.sh master".into(),
            user: run_as("nobody", Some("nogroup")),
        })
    );
    assert_eq!(n.any, Some("/bin/all.sh".into()));
    let l = ok(
        "virtual_server 10.0.0.1 80 {\n quorum_up /bin/q.sh nobody\n real_server 10.0.0.2 80 {\n  \
         notify_down /bin/d.sh nobody nogroup\n }\n}\n",
    );
    let vs = &l.config.virtual_servers[0];
    assert_eq!(
        vs.quorum.up_script.as_ref().unwrap().user,
        run_as("nobody", None)
    );
    assert_eq!(
        vs.reals[0].notify_down.as_ref().unwrap().user,
        run_as("nobody", Some("nogroup"))
    );
    // More words than a user and a group: arguments left outside the quotes.
    let e = errors(&instance(" notify_fault /bin/n.sh fault now please\n"));
    assert_eq!(
        e,
        [
            "k.conf:7: error: notify_fault needs SCRIPT [USER [GROUP]]: put the arguments inside \
          the quotes: \"/bin/n.sh ARGS\""
        ]
    );
}

#[test]
fn sync_group_members_on_one_line_and_listed_twice() {
    let text = format!(
        "{}{}vrrp_sync_group G {{\n group {{ V W V }}\n notify_backup /bin/b\n}}\n",
        instance(""),
        instance("")
            .replace("vrrp_instance V", "vrrp_instance W")
            .replace("7", "8")
    );
    let l = ok(&text);
    assert_eq!(l.config.sync_groups[0].members, ["V", "W"]);
    assert_eq!(
        l.config.sync_groups[0]
            .notify
            .backup
            .as_ref()
            .map(|s| s.command.as_str()),
        Some("/bin/b")
    );
    assert_eq!(
        warnings(&l),
        ["k.conf:16: warning: vrrp_sync_group G: V is listed twice"]
    );
}

#[test]
fn lower_case_master_is_read_as_meant() {
    let l = ok(&instance(" state master\n"));
    assert_eq!(
        l.config.vrrp_instances[0].initial_state,
        InitialState::Master
    );
    assert_eq!(
        warnings(&l),
        ["k.conf:7: warning: state master read as MASTER; keepalived would read BACKUP"]
    );
    let l = ok("virtual_server 10.0.0.1 80 {\n lb_kind dr\n protocol udp\n}\n");
    assert_eq!(l.config.virtual_servers[0].protocol, Protocol::Udp);
}
