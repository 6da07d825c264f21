//! The grammar on files written the way operators write them, and every
//! error message with its location.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
}

fn ok(text: &str) -> Loaded {
    parse_str(text, Path::new("k.conf")).unwrap_or_else(|e| panic!("refused:\n{e}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("k.conf")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect(),
    }
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.to_string())
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn classic_nginx_pair() {
    let l = load(&fixture("nginx-ha.conf")).unwrap_or_else(|e| panic!("{e}"));
    let c = &l.config;
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
        vec![VipAddress {
            addr: ip("192.168.200.16"),
            prefix: 24,
            dev: Some("eth0".into()),
            label: Some("eth0:vip".into())
        }]
    );
    assert_eq!(
        i.track_scripts,
        vec![TrackScript {
            name: "chk_nginx".into(),
            weight: None
        }]
    );
    assert_eq!(
        i.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh master")
    );
    assert_eq!(
        i.notify.any.as_deref(),
        Some("/etc/keepalived/notify-all.sh")
    );
    assert_eq!(i.garp, GarpSettings::default());
    // Mail and script-security settings are named as ignored, with their lines.
    let w = warnings(&l);
    assert!(
        w.iter().any(|w| w.ends_with(
            "nginx-ha.conf:3: warning: notification_email: not acted on by xdpvs, ignored"
        )),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|w| w.contains(":7: warning: smtp_server")),
        "{w:#?}"
    );
}

#[test]
fn lvs_dr_services_and_checks() {
    let l = load(&fixture("lvs-dr.conf")).unwrap_or_else(|e| panic!("{e}"));
    let c = &l.config;
    let i = &c.vrrp_instances[0];
    assert_eq!(i.version, 3, "global_defs vrrp_version applies");
    assert_eq!(i.advert_int, Duration::from_millis(500));
    assert!(!i.preempt);
    assert_eq!(i.unicast_peers, vec![ip("10.1.0.3")]);
    assert_eq!(i.vips[1].prefix, 64);
    assert_eq!(i.garp.master_refresh, Some(Duration::from_secs(60)));
    assert_eq!(c.virtual_servers.len(), 3);
    let web = &c.virtual_servers[0];
    assert_eq!(
        (
            web.port,
            web.protocol,
            web.scheduler.as_str(),
            web.persistence_timeout
        ),
        (80, Protocol::Tcp, "wlc", 300)
    );
    assert_eq!(web.delay_loop, Duration::from_secs(3));
    assert_eq!(web.sorry_server, Some("10.1.0.250:80".parse().unwrap()));
    let r1 = &web.reals[0];
    assert!(r1.inhibit_on_failure);
    let HealthCheck::HttpGet(h) = &r1.checks[0] else {
        panic!("{:?}", r1.checks)
    };
    assert_eq!(h.urls.len(), 2);
    assert_eq!(h.urls[0].status_codes, vec![200]);
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert!(h.urls[1].status_codes.is_empty(), "no status_code: any 2xx");
    assert_eq!(
        (h.retry, h.connect_timeout),
        (3, Duration::from_secs(2)),
        "nb_get_retry is retry"
    );
    let HealthCheck::TcpCheck(t) = &web.reals[1].checks[0] else {
        panic!()
    };
    assert_eq!(
        (t.connect_port, t.bindto, t.retry),
        (Some(80), Some(ip("10.1.0.2")), 2)
    );
    assert_eq!(t.delay_before_retry, Duration::from_secs(1), "default");
    let dns = &c.virtual_servers[1];
    assert_eq!(
        (dns.protocol, dns.delay_loop),
        (Protocol::Udp, Duration::from_secs(60))
    );
    assert_eq!(dns.reals[0].weight, 1, "default weight");
    let HealthCheck::MiscCheck(m) = &dns.reals[0].checks[0] else {
        panic!()
    };
    assert_eq!(
        (m.misc_path.as_str(), m.misc_timeout, m.misc_dynamic),
        (
            "/usr/local/bin/check_dns 10.1.0.21",
            Duration::from_secs(5),
            true
        )
    );
    assert_eq!(c.virtual_servers[2].addr, ip("2001:db8::100"));
    // Every scheduler is said to be mapped, as a note.
    let notes = l
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Note)
        .count();
    assert_eq!(notes, 3);
}

#[test]
fn pasted_file_reads_as_meant() {
    let l = load(&fixture("pasted-from-blog.conf")).unwrap_or_else(|e| panic!("{e}"));
    let c = &l.config;
    assert_eq!(
        c.vrrp_scripts[0].name, "chk_haproxy",
        "name on the line after the keyword"
    );
    assert_eq!(c.vrrp_scripts[0].script, "killall -0 haproxy");
    assert_eq!(c.vrrp_scripts[0].weight, 2, "weight=2");
    let i = &c.vrrp_instances[0];
    assert_eq!((i.initial_state, i.vrid), (InitialState::Master, 51));
    assert_eq!(i.track_scripts[0].weight, Some(5));
    let w = warnings(&l);
    assert!(
        w.iter().any(|w| w.contains(":3: warning: non-ASCII blank")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains(":7: warning: `weight=2` read as `weight 2`")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains(":9: warning: comment right after `{`")),
        "{w:#?}"
    );
}

#[test]
fn includes_with_globs() {
    let l = load(&fixture("main-with-includes.conf")).unwrap_or_else(|e| panic!("{e}"));
    let c = &l.config;
    assert_eq!(
        c.vrrp_instances
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["VI_A", "VI_B"]
    );
    assert_eq!(c.sync_groups[0].members, ["VI_A", "VI_B"]);
    assert_eq!(c.virtual_servers[0].scheduler, "rr");
    assert!(
        c.virtual_servers[0]
            .location
            .to_string()
            .ends_with("conf.d/20-web.conf:1")
    );
    let w = warnings(&l);
    assert!(
        w.iter().any(|w| w.contains(
            "main-with-includes.conf:6: warning: include \"missing.d/*.conf\" matches no file"
        )),
        "{w:#?}"
    );
}

#[test]
fn include_loops_are_errors() {
    let dir = std::env::temp_dir().join(format!("xdpvs-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.conf"), "include b.conf\n").unwrap();
    std::fs::write(dir.join("b.conf"), "\ninclude a.conf\n").unwrap();
    let e = load(&dir.join("a.conf")).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        e.to_string().contains("b.conf:2: error: include loop"),
        "{e}"
    );
}

#[test]
fn unsupported_forwarding_and_auth_are_refused_with_their_lines() {
    let e = errors("virtual_server 10.0.0.1 80 {\n  lb_kind NAT\n}\n");
    assert_eq!(
        e,
        [
            "k.conf:2: error: lb_kind NAT is not supported: xdpvs forwards in direct-routing mode (lb_kind DR)"
        ]
    );
    let e = errors(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n authentication {\n  auth_type AH\n  auth_pass x\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    );
    assert_eq!(
        e,
        [
            "k.conf:5: error: auth_type AH is not supported: use PASS, or VRRP version 3 without authentication"
        ]
    );
    let e = errors("virtual_server fwmark 1 {\n}\n");
    assert!(
        e[0].starts_with("k.conf:1: error: virtual_server fwmark is not supported"),
        "{e:?}"
    );
}

#[test]
fn bad_values_name_keyword_and_value() {
    let e = errors(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 300\n priority 0\n advert_int -1\n virtual_ipaddress {\n  10.0.0.1/33\n  2001:db8::1\n }\n}\n",
    );
    assert_eq!(
        e,
        [
            "k.conf:3: error: virtual_router_id 300: must be a whole number from 1 to 255",
            "k.conf:4: error: priority 0: must be a whole number from 1 to 255",
            "k.conf:5: error: advert_int -1: must be a number of seconds, at least 0.01",
            "k.conf:7: error: virtual_ipaddress 10.0.0.1/33: prefix must be 0 to 32",
            "k.conf:1: error: vrrp_instance V: IPv6 addresses need VRRP version 3 (`version 3`)",
        ]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors(
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 70000\n }\n real_server 10.0.0.2 80 {\n }\n}\nvirtual_server 10.0.0.1 80 {\n}\n",
    );
    assert_eq!(
        e,
        [
            "k.conf:3: error: weight 70000: must be a whole number from 0 to 65535",
            "k.conf:5: error: real_server 10.0.0.2 80 is listed twice in this virtual_server",
            "k.conf:8: error: virtual_server 10.0.0.1 80 is defined twice",
        ]
    );
}

#[test]
fn references_across_blocks() {
    let base = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n track_script {\n  nope\n }\n}\n";
    let e = errors(&format!(
        "{base}vrrp_instance B {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{\n  10.0.0.2\n }}\n}}\nvrrp_sync_group G {{\n group {{\n  A\n  C\n }}\n}}\n"
    ));
    assert_eq!(
        e,
        [
            "k.conf:1: error: vrrp_instance A: track_script nope is not defined",
            "k.conf:11: error: vrrp_instance B: virtual_router_id 1 is already used on eth0",
            "k.conf:18: error: vrrp_sync_group G: no vrrp_instance C",
        ]
    );
}

#[test]
fn unknown_keywords_warn_and_are_skipped_whole() {
    let l = ok(
        "frobnicate 1\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n mystery_block {\n  priority 1\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    );
    assert_eq!(
        l.config.vrrp_instances[0].priority, 100,
        "the unknown block's contents are not read"
    );
    assert_eq!(
        warnings(&l),
        [
            "k.conf:1: warning: unknown keyword frobnicate, ignored",
            "k.conf:5: warning: unknown keyword mystery_block in vrrp_instance, ignored"
        ]
    );
}

#[test]
fn defaults_as_keepalived() {
    let c = ok("vrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.1\n }\n}\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n").config;
    let i = &c.vrrp_instances[0];
    assert_eq!(
        (i.priority, i.advert_int, i.version, i.preempt),
        (100, Duration::from_secs(1), 2, true)
    );
    assert_eq!(i.initial_state, InitialState::Backup);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.delay_loop, vs.protocol, vs.persistence_timeout, vs.alpha),
        (Duration::from_secs(60), Protocol::Tcp, 0, false)
    );
    let HealthCheck::TcpCheck(t) = &vs.reals[0].checks[0] else {
        panic!()
    };
    assert_eq!(
        (t.connect_timeout, t.retry, t.delay_before_retry),
        (Duration::from_secs(5), 1, Duration::from_secs(1))
    );
}

#[test]
fn json_shows_the_model_with_defaults() {
    let c = ok("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n").config;
    let v: serde_json::Value = serde_json::from_str(&to_json(&c)).unwrap();
    let vs = &v["virtual_servers"][0];
    assert_eq!(vs["addr"], "10.0.0.1");
    assert_eq!(vs["delay_loop"], 60.0);
    assert_eq!(vs["location"], "k.conf:1");
    assert_eq!(vs["reals"][0]["checks"][0]["type"], "MISC_CHECK");
    assert_eq!(
        vs["reals"][0]["checks"][0]["misc_timeout"], 60.0,
        "misc_timeout defaults to delay_loop"
    );
}
