//! What an absent setting means: keepalived's defaults (keepalived.conf(5)).

use std::time::Duration;

use super::*;

#[test]
fn vrrp_instance_defaults() {
    let c = ok(&instance("")).config;
    assert_eq!(
        c.global,
        GlobalDefs {
            vrrp_version: 2,
            router_id: None,
            mail: crate::config::mail::MailSettings::default(),
            announce: None,
            sync: None,
            sync_peers: None,
            strict: None,
            capacity: Capacity {
                services: 64,
                reals: 4096,
                flows: 1 << 20
            },
            enable_script_security: false,
            script_user: None,
            vrrp_mcast_group4: None,
            vrrp_mcast_group6: None,
            vrrp_skip_check_adv_addr: false,
            vrrp_down_timer_adverts: 3,
            rs_init_notifies: false,
            disable_local_igmp: false,
            default_interface: None,
            notify_fifos: crate::config::fifo::NotifyFifos::default(),
            vrrp_startup_delay: None,
            vrrp_delay_after_boot: None,
            startup_script: None,
            shutdown_script: None,
            lvs_timeouts: LvsTimeouts::default(),
            garp: GarpSettings::default(),
            garp_pacing: GarpPacing::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            net_namespace: None,
        }
    );
    let i = &c.vrrp_instances[0];
    assert_eq!(i.initial_state, InitialState::Backup);
    assert_eq!(
        (i.priority, i.advert_int, i.version),
        (100, Duration::from_secs(1), 2)
    );
    assert_eq!((i.preempt, i.preempt_delay), (true, Duration::ZERO));
    assert_eq!(
        (i.mcast_src_ip, i.unicast_src_ip, i.unicast_peers.len()),
        (None, None, 0)
    );
    assert_eq!(i.auth, None);
    assert_eq!(
        i.vips,
        [VipAddress {
            addr: ip("10.0.0.1"),
            prefix: 32,
            dev: None,
            label: None,
            options: VipOptions::default(),
        }]
    );
    assert!(
        i.excluded_vips.is_empty() && i.track_scripts.is_empty() && i.track_interfaces.is_empty()
    );
    assert_eq!(i.notify, Notify::default());
    assert_eq!(
        i.garp,
        GarpSettings {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            // keepalived: the master batch's delay and size.
            lower_prio_delay: Some(Duration::from_secs(5)),
            lower_prio_repeat: Some(5),
        }
    );
    assert!(!i.lower_prio_no_advert && !i.skip_check_adv_addr && !i.higher_prio_send_advert);
    assert!(!i.dont_track_primary && i.notify_master_rx_lower_pri.is_none());
}

#[test]
fn lower_priority_answers_are_configurable() {
    let c = ok(&instance(
        " garp_lower_prio_delay 2.5
 garp_lower_prio_repeat 0
 lower_prio_no_advert
",
    ))
    .config;
    let i = &c.vrrp_instances[0];
    assert_eq!(
        (i.garp.lower_prio_delay, i.garp.lower_prio_repeat),
        (Some(Duration::from_millis(2500)), Some(0))
    );
    assert!(i.lower_prio_no_advert);
}

#[test]
fn ipv6_vip_prefix_defaults_to_128() {
    let c = ok("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 3\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n").config;
    assert_eq!(c.vrrp_instances[0].vips[0].prefix, 128);
}

#[test]
fn global_vrrp_version_is_the_default_and_an_instance_may_override_it() {
    let text = format!(
        "{}{}global_defs {{\n vrrp_version 3\n}}\n",
        instance(" advert_int 0.25\n"),
        instance(" version 2\n")
            .replace("vrrp_instance V", "vrrp_instance W")
            .replace("7", "8"),
    );
    let c = ok(&text).config;
    assert_eq!(
        c.global.vrrp_version, 3,
        "global_defs may come after the instances"
    );
    assert_eq!(
        (c.vrrp_instances[0].version, c.vrrp_instances[0].advert_int),
        (3, Duration::from_millis(250))
    );
    assert_eq!(c.vrrp_instances[1].version, 2);
}

#[test]
fn vrrp_script_defaults() {
    let c = ok("vrrp_script a {\n script /bin/true\n}\nvrrp_script b {\n script /bin/true\n interval 5\n}\n").config;
    let [a, b] = &c.vrrp_scripts[..] else {
        panic!("{:?}", c.vrrp_scripts)
    };
    assert_eq!(
        (a.interval, a.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!((a.weight, a.rise, a.fall, a.user.as_ref()), (0, 1, 1, None));
    assert_eq!(
        b.timeout,
        Duration::from_secs(5),
        "timeout follows interval"
    );
}

#[test]
fn service_real_and_check_defaults() {
    let c = ok("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n real_server 10.0.0.3 {\n }\n real_server 10.0.0.4 0 {\n }\n}\n").config;
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (
            vs.delay_loop,
            vs.protocol,
            vs.scheduler.as_str(),
            vs.persistence_timeout,
            vs.sorry_server,
            vs.alpha
        ),
        (
            Duration::from_secs(60),
            Protocol::Tcp,
            "wlc",
            0,
            None,
            false
        )
    );
    let r = &vs.reals[0];
    assert_eq!((r.weight, r.inhibit_on_failure), (1, false));
    let [
        HealthCheck::TcpCheck(t),
        HealthCheck::HttpGet(h),
        HealthCheck::MiscCheck(m),
    ] = &r.checks[..]
    else {
        panic!("{:?}", r.checks)
    };
    let five = Duration::from_secs(5);
    let one = Duration::from_secs(1);
    assert_eq!(
        *t,
        TcpCheck {
            connect: Connect {
                connect_ip: None,
                connect_port: None,
                bindto: None,
                bind_port: None,
                bind_if: None,
                fwmark: None,
                connect_timeout: five,
                timing: Timing {
                    retry: 1,
                    delay_before_retry: one,
                    warmup: None,
                    delay_loop: None,
                    alpha: None,
                }
            }
        }
    );
    assert_eq!(
        (
            h.connect.connect_timeout,
            h.connect.timing.retry,
            h.connect.timing.delay_before_retry,
            h.connect.connect_port
        ),
        (five, 1, Duration::from_secs(3), None),
        "keepalived's http_get_handler: delay_before_retry 3 s"
    );
    assert_eq!(
        h.urls,
        [Url {
            path: "/".into(),
            status_codes: vec![],
            digest: None,
            virtualhost: None,
            regex: None,
            protocol: Default::default(),
        }],
        "no status_code: any 2xx"
    );
    let c = ok("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 200-204 301\n   }\n  }\n }\n}\n").config;
    let HealthCheck::HttpGet(h) = &c.virtual_servers[0].reals[0].checks[0] else {
        panic!()
    };
    assert_eq!(
        h.urls[0].status_codes,
        [200, 201, 202, 203, 204, 301],
        "ranges expand"
    );
    assert_eq!(
        (m.misc_timeout, m.misc_dynamic),
        (Duration::from_secs(60), false),
        "misc_timeout is delay_loop"
    );
    assert_eq!(
        (vs.reals[1].port, vs.reals[2].port),
        (80, 80),
        "no port or port 0: the service's"
    );
}

#[test]
fn json_shows_the_model_with_defaults() {
    let text = format!(
        "{}virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n  MISC_CHECK {{\n   misc_path /bin/true\n  }}\n }}\n}}\n",
        instance(" advert_int 2\n authentication {\n  auth_type PASS\n  auth_pass s3cret\n }\n")
    );
    let c = ok(&text).config;
    let v: serde_json::Value = serde_json::from_str(&to_json(&c)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v["global"],
        serde_json::json!({"vrrp_version": 2, "router_id": null, "announce": null, "sync": null,
            "capacity": {"services": 64, "reals": 4096, "flows": 1_048_576},
            "enable_script_security": false, "script_user": null,
            "vrrp_mcast_group4": null, "vrrp_mcast_group6": null,
            "vrrp_skip_check_adv_addr": false,
            "rs_init_notifies": false, "disable_local_igmp": false, "default_interface": null,
            "vrrp_startup_delay": null, "vrrp_delay_after_boot": null,
            "notify_fifos": {"all": null, "vrrp": null, "lvs": null},
            "startup_script": null, "shutdown_script": null,
            "lvs_timeouts": {"tcp": null, "tcpfin": null, "udp": null},
            "mail": {"smtp_server": null, "smtp_helo_name": null, "smtp_connect_timeout": 30.0,
                "notification_email": [], "notification_email_from": null, "smtp_alert": null,
                "smtp_alert_vrrp": null, "smtp_alert_checker": null, "no_email_faults": false},
            "garp": {"master_delay": 5.0, "master_repeat": 5, "master_refresh": null,
                "master_refresh_repeat": 1, "lower_prio_delay": null, "lower_prio_repeat": null},
            "garp_pacing": {"garp_interval": null, "gna_interval": null},
            "lower_prio_no_advert": false, "higher_prio_send_advert": false,
            "net_namespace": null})
    );
    let i = &v["vrrp_instances"][0];
    assert_eq!(i["initial_state"], "BACKUP");
    assert_eq!(i["advert_int"], 2.0);
    assert_eq!(
        i["auth"],
        serde_json::json!({"type": "PASS", "password": "s3cret"})
    );
    assert_eq!(
        i["vips"][0],
        serde_json::json!({"addr": "10.0.0.1", "prefix": 32, "dev": null, "label": null,
            "broadcast": null, "scope": null, "home": false, "noprefixroute": false,
            "no_track": false, "preferred_lft": null})
    );
    assert_eq!(i["garp"]["master_refresh"], serde_json::Value::Null);
    assert_eq!(i["location"], "k.conf:1");
    let vs = &v["virtual_servers"][0];
    assert_eq!(
        (&vs["addr"], &vs["protocol"], &vs["scheduler"]),
        (&"10.0.0.1".into(), &"TCP".into(), &"wlc".into())
    );
    assert_eq!(vs["delay_loop"], 60.0);
    assert_eq!(vs["location"], "k.conf:13");
    let check = &vs["reals"][0]["checks"][0];
    assert_eq!(check["type"], "MISC_CHECK");
    assert_eq!(check["misc_timeout"], 60.0);
}

#[test]
fn multicast_groups_and_address_checks() {
    let text = format!(
        "global_defs {{\n vrrp_mcast_group4 224.0.0.19\n vrrp_mcast_group6 ff02::13\n vrrp_skip_check_adv_addr\n}}\n{}{}",
        instance(" accept\n"),
        instance("")
            .replace("vrrp_instance V", "vrrp_instance W")
            .replace("7", "8")
    );
    let c = ok(&text).config;
    assert_eq!(
        c.global.vrrp_mcast_group4,
        Some("224.0.0.19".parse().unwrap())
    );
    assert_eq!(
        c.global.vrrp_mcast_group6,
        Some("ff02::13".parse().unwrap())
    );
    assert!(
        c.vrrp_instances.iter().all(|i| i.skip_check_adv_addr),
        "the global default reaches every instance"
    );
    let only = ok(&instance(" skip_check_adv_addr\n")).config;
    assert!(only.vrrp_instances[0].skip_check_adv_addr);
}
