//! UDP_CHECK, PING_CHECK, DNS_CHECK and SMTP_CHECK as keepalived's files
//! write them: fields, defaults inherited from the virtual_server and
//! real_server, and the errors bad values get.

use std::time::Duration;

use super::*;

/// One virtual_server with one real whose block is `real_body`.
fn with_real(vs_body: &str, real_body: &str) -> String {
    format!(
        "virtual_server 10.0.0.100 53 {{\n protocol UDP\n delay_loop 6\n{vs_body} real_server 10.0.0.11 53 {{\n{real_body} }}\n}}\n"
    )
}

fn checks(text: &str) -> Vec<HealthCheck> {
    let l = ok(text);
    assert!(warnings(&l).is_empty(), "{:#?}", warnings(&l));
    l.config.virtual_servers[0].reals[0].checks.clone()
}

#[test]
fn udp_check_with_payload_and_reply_pattern() {
    let c = checks(&with_real(
        "",
        "  UDP_CHECK {\n   connect_port 5353\n   connect_timeout 2\n   payload Ab12f 3 456\n   require_reply 0a xX 1\n   min_reply_length 2\n   max_reply_length 512\n  }\n",
    ));
    let [HealthCheck::UdpCheck(u)] = c.as_slice() else {
        panic!("{c:?}")
    };
    // keepalived.conf(5)'s own example: "Ab12f 3 456" is AB 12 0F 03 45 06.
    assert_eq!(
        u.payload.as_deref(),
        Some(&[0xab, 0x12, 0x0f, 0x03, 0x45, 0x06][..])
    );
    assert!(u.require_reply);
    let p = u.reply_pattern.as_ref().expect("pattern");
    assert_eq!(p.to_string(), "0axx01");
    assert!(p.matches(&[0x0a, 0x77, 0x01, 0xff]));
    assert!(p.matches(&[0x0a]), "compared over the shorter");
    assert!(!p.matches(&[0x0b, 0x77, 0x01]));
    assert_eq!((u.min_reply_length, u.max_reply_length), (2, 512));
    assert_eq!(u.connect.connect_port, Some(5353));
    assert_eq!(u.connect.connect_timeout, Duration::from_secs(2));
}

#[test]
fn udp_check_defaults() {
    let c = checks(&with_real(" connect_timeout 3\n", "  UDP_CHECK {\n  }\n"));
    let [HealthCheck::UdpCheck(u)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!(u.payload, None);
    assert!(!u.require_reply);
    assert_eq!(u.reply_pattern, None);
    assert_eq!((u.min_reply_length, u.max_reply_length), (0, 255));
    assert_eq!(
        u.connect.connect_timeout,
        Duration::from_secs(3),
        "from the virtual_server"
    );
    // require_reply alone: any reply will do.
    let c = checks(&with_real("", "  UDP_CHECK {\n   require_reply\n  }\n"));
    let [HealthCheck::UdpCheck(u)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert!(u.require_reply);
    assert_eq!(u.reply_pattern, None);
}

#[test]
fn udp_check_errors() {
    assert_eq!(
        errors(&with_real("", "  UDP_CHECK {\n   payload 12zz\n  }\n")),
        ["k.conf:6: error: payload needs hex digits, such as `payload 0a1b 2c`"]
    );
    assert_eq!(
        errors(&with_real("", "  UDP_CHECK {\n   payload\n  }\n")),
        ["k.conf:6: error: payload needs hex digits, such as `payload 0a1b 2c`"]
    );
    assert_eq!(
        errors(&with_real("", "  UDP_CHECK {\n   require_reply 0g\n  }\n")),
        [
            "k.conf:6: error: require_reply: expected hex digits (x for any), such as `require_reply 0a1b xx`"
        ]
    );
    assert_eq!(
        errors(&with_real(
            "",
            "  UDP_CHECK {\n   min_reply_length 9\n   max_reply_length 4\n  }\n"
        )),
        ["k.conf:5: error: UDP_CHECK: min_reply_length 9 is more than max_reply_length 4"]
    );
}

#[test]
fn ping_check_takes_the_common_settings() {
    let c = checks(&with_real(
        "",
        "  PING_CHECK {\n   connect_ip 10.0.0.12\n   connect_timeout 0.5\n   retry 4\n  }\n",
    ));
    let [HealthCheck::PingCheck(p)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!(p.connect.connect_ip, Some(ip("10.0.0.12")));
    assert_eq!(p.connect.connect_timeout, Duration::from_millis(500));
    assert_eq!(p.connect.timing.retry, 4);
    let l = ok(&with_real("", "  PING_CHECK {\n   payload 00\n  }\n"));
    assert_eq!(
        warnings(&l),
        ["k.conf:6: warning: unknown keyword payload in PING_CHECK, ignored"]
    );
}

#[test]
fn dns_check_fields_and_keepalived_defaults() {
    let c = checks(&with_real(
        "",
        "  DNS_CHECK {\n   type aaaa\n   name www.example.com\n   connect_port 5300\n  }\n",
    ));
    let [HealthCheck::DnsCheck(q)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!(
        (q.record_type.as_str(), q.name.as_str()),
        ("AAAA", "www.example.com")
    );
    assert_eq!(q.connect.connect_port, Some(5300));
    // keepalived.conf(5): SOA for the root, retry 3, delay_before_retry delay_loop.
    let c = checks(&with_real("", "  DNS_CHECK {\n  }\n"));
    let [HealthCheck::DnsCheck(q)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!((q.record_type.as_str(), q.name.as_str()), ("SOA", "."));
    assert_eq!(q.connect.timing.retry, 3);
    assert_eq!(q.connect.timing.delay_before_retry, Duration::from_secs(6));
    // What the blocks above set wins over DNS_CHECK's own defaults.
    let c = checks(&with_real(
        " retry 1\n",
        "  delay_before_retry 2\n  DNS_CHECK {\n  }\n",
    ));
    let [HealthCheck::DnsCheck(q)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!(q.connect.timing.retry, 1);
    assert_eq!(q.connect.timing.delay_before_retry, Duration::from_secs(2));
}

#[test]
fn dns_check_errors() {
    assert_eq!(
        errors(&with_real("", "  DNS_CHECK {\n   type PTR\n  }\n")),
        ["k.conf:6: error: type PTR: DNS_CHECK queries one of A, NS, CNAME, SOA, MX, TXT, AAAA"]
    );
    assert_eq!(
        errors(&with_real("", "  DNS_CHECK {\n   name a..b\n  }\n")),
        ["k.conf:6: error: name a..b: not a domain name"]
    );
}

#[test]
fn smtp_check_helo_name_and_default() {
    let c = checks(&with_real(
        "",
        "  SMTP_CHECK {\n   helo_name \"lb1.example.com\"\n   connect_port 25\n  }\n  SMTP_CHECK {\n  }\n",
    ));
    let [HealthCheck::SmtpCheck(a), HealthCheck::SmtpCheck(b)] = c.as_slice() else {
        panic!("{c:?}")
    };
    assert_eq!(a.helo_name, "lb1.example.com");
    assert_eq!(a.connect.connect_port, Some(25));
    assert_eq!(b.helo_name, "smtpchecker.keepalived.org");
    assert_eq!(
        errors(&with_real(
            "",
            "  SMTP_CHECK {\n   host {\n    connect_ip 10.0.0.12\n   }\n  }\n"
        )),
        [
            "k.conf:6: error: SMTP_CHECK host { } blocks are not supported: write one SMTP_CHECK per server, with connect_ip and connect_port"
        ]
    );
}

#[test]
fn the_new_checks_in_json() {
    let l = ok(&with_real(
        "",
        "  UDP_CHECK {\n   payload 0102\n   require_reply 01x\n  }\n  PING_CHECK {\n  }\n  DNS_CHECK {\n   type A\n   name example.org\n  }\n  SMTP_CHECK {\n  }\n",
    ));
    let json: serde_json::Value = serde_json::from_str(&to_json(&l.config)).unwrap();
    let checks = &json["virtual_servers"][0]["reals"][0]["checks"];
    assert_eq!(checks[0]["type"], "UDP_CHECK");
    assert_eq!(checks[0]["payload"], "0102");
    assert_eq!(checks[0]["reply_pattern"], "010x");
    assert_eq!(checks[0]["require_reply"], true);
    assert_eq!(checks[1]["type"], "PING_CHECK");
    assert_eq!(checks[2]["type"], "DNS_CHECK");
    assert_eq!(checks[2]["query_type"], "A");
    assert_eq!(checks[2]["name"], "example.org");
    assert_eq!(checks[3]["type"], "SMTP_CHECK");
    assert_eq!(checks[3]["helo_name"], "smtpchecker.keepalived.org");
    assert_eq!(checks[3]["connect_timeout"], 5.0);
}

// Not checkers, but the same migration question: what keepalived would do
// that xdpvs cannot, refused with what to do instead.

#[test]
fn use_vmac_and_net_namespace_ipvs_are_refused_with_what_to_do() {
    let e = errors(&instance(" use_vmac\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "k.conf:7: error: use_vmac is not supported: xdpvs attaches its XDP program"
        ) && e[0].contains("keep the addresses in virtual_ipaddress"),
        "{e:?}"
    );
    assert_eq!(
        errors("net_namespace_ipvs blue\n"),
        [
            "k.conf:1: error: net_namespace_ipvs is not supported: xdpvs has no IPVS; its data plane runs on the interface of the namespace the daemon is in (`net_namespace`). Remove this line"
        ]
    );
    assert_eq!(
        errors("global_defs {\n net_namespace_ipvs blue\n}\n").len(),
        1
    );
    assert_eq!(
        errors(&instance(" strict_mode\n")),
        [
            "k.conf:7: error: strict_mode is not supported per instance: set vrrp_strict in global_defs for every instance, or remove it"
        ]
    );
}

#[test]
fn vrrp_strict_applies_keepalived_refusals() {
    let strict = |body: &str| format!("global_defs {{\n vrrp_strict\n}}\n{}", instance(body));
    let l = ok(&strict(" priority 100\n"));
    assert_eq!(
        l.config
            .global
            .strict
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("k.conf:2")
    );
    assert!(
        notes(&l)
            .iter()
            .any(|n| n.starts_with("k.conf:2: note: vrrp_strict:")),
        "{:?}",
        notes(&l)
    );
    let e = errors(&strict(
        " unicast_peer {\n  10.0.0.2\n }\n authentication {\n  auth_type PASS\n  auth_pass x\n }\n preempt_delay 5\n state MASTER\n",
    ));
    assert_eq!(
        e,
        [
            "k.conf:4: error: vrrp_instance V: unicast_peer is not allowed with vrrp_strict (set at k.conf:2)",
            "k.conf:4: error: vrrp_instance V: authentication is not allowed with vrrp_strict (set at k.conf:2)",
            "k.conf:4: error: vrrp_instance V: state MASTER with a priority other than 255 is not allowed with vrrp_strict (set at k.conf:2)",
        ],
        "preempt_delay is cleared by state MASTER before vrrp_strict sees it (keepalived's order)"
    );
    assert_eq!(
        errors(&strict(" preempt_delay 5\n")),
        [
            "k.conf:4: error: vrrp_instance V: preempt_delay is not allowed with vrrp_strict (set at k.conf:2)"
        ]
    );
    // Without vrrp_strict the same instance is fine.
    ok(&instance(
        " unicast_peer {\n  10.0.0.2\n }\n preempt_delay 5\n",
    ));
}

#[test]
fn file_check_takes_the_track_files_path_and_weight() {
    let files = "track_file wf {\n file /run/wf\n weight 3 reverse\n}\n";
    let text = format!(
        "{files}{}",
        with_real(
            "",
            "  FILE_CHECK {\n   track_file wf\n  }\n  FILE_CHECK {\n   track_file wf\n   weight 0\n  }\n"
        )
    );
    assert_eq!(
        checks(&text),
        [
            HealthCheck::FileCheck(FileCheck {
                track_file: "wf".into(),
                path: "/run/wf".into(),
                weight: Some(3),
                reverse: Some(true),
            }),
            HealthCheck::FileCheck(FileCheck {
                track_file: "wf".into(),
                path: "/run/wf".into(),
                weight: Some(0),
                reverse: Some(false),
            }),
        ],
        "the file's weight unless the check gives one"
    );
    let e = errors(&with_real(
        "",
        "  FILE_CHECK {\n   track_file nope\n  }\n  FILE_CHECK {\n   weight 70000\n  }\n",
    ));
    assert_eq!(
        e,
        [
            "k.conf:4: error: FILE_CHECK: track_file nope is not defined by any top-level track_file block",
            "k.conf:8: error: FILE_CHECK needs `track_file NAME`",
            "k.conf:9: error: weight 70000: must be a whole number from -65535 to 65535",
        ]
    );
}
