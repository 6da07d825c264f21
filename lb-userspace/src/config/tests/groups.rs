//! `virtual_server_group` and `virtual_server group NAME`: one service per
//! member, every one with the block's reals and checks.

use super::*;

const GROUPED: &str = "\
virtual_server group WEB {
 delay_loop 3
 protocol TCP
 real_server 10.0.0.11 {
  weight 2
  TCP_CHECK {
   connect_timeout 1
  }
 }
}
virtual_server_group WEB {
 10.0.0.100 80
 10.0.0.100 443
 10.0.0.101-102 80
}
";

#[test]
fn each_member_is_a_service_with_the_blocks_reals() {
    let l = ok(GROUPED);
    assert!(
        l.diagnostics.iter().all(|d| d.severity == Severity::Note),
        "{:#?}",
        l.diagnostics
    );
    let services: Vec<_> = l
        .config
        .virtual_servers
        .iter()
        .map(|vs| (vs.addr.to_string(), vs.port, vs.group.as_deref()))
        .collect();
    assert_eq!(
        services,
        [
            ("10.0.0.100".to_string(), 80, Some("WEB")),
            ("10.0.0.100".to_string(), 443, Some("WEB")),
            ("10.0.0.101".to_string(), 80, Some("WEB")),
            ("10.0.0.102".to_string(), 80, Some("WEB")),
        ]
    );
    for vs in &l.config.virtual_servers {
        assert_eq!(vs.delay_loop, std::time::Duration::from_secs(3));
        let [real] = vs.reals.as_slice() else {
            panic!("{vs:?}")
        };
        assert_eq!((real.addr, real.weight), (ip("10.0.0.11"), 2));
        // A real without a port serves each member's own.
        assert_eq!(real.port, vs.port);
        assert_eq!(real.checks.len(), 1);
        assert_eq!(vs.location.to_string(), "k.conf:1");
    }
}

#[test]
fn the_blocks_warnings_are_told_once() {
    let text = GROUPED.replace(" delay_loop 3\n", " delay_loop 3\n frobnicate\n");
    let l = ok(&text);
    assert_eq!(
        warnings(&l),
        ["k.conf:3: warning: unknown keyword frobnicate in virtual_server, ignored"]
    );
}

#[test]
fn ranges_and_prefixes() {
    let text = "virtual_server_group G {\n 10.0.1.8/30 53\n 10.0.2.250-10.0.3.1 53\n}\nvirtual_server group G {\n protocol UDP\n}\n";
    let addrs: Vec<String> = ok(text)
        .config
        .virtual_servers
        .iter()
        .map(|vs| vs.addr.to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "10.0.1.8",
            "10.0.1.9",
            "10.0.1.10",
            "10.0.1.11",
            "10.0.2.250",
            "10.0.2.251",
            "10.0.2.252",
            "10.0.2.253",
            "10.0.2.254",
            "10.0.2.255",
            "10.0.3.0",
            "10.0.3.1",
        ]
    );
    let v6 = "virtual_server_group G {\n 2001:db8::a-c 80\n}\nvirtual_server group G {\n}\n";
    let addrs: Vec<String> = ok(v6)
        .config
        .virtual_servers
        .iter()
        .map(|vs| vs.addr.to_string())
        .collect();
    assert_eq!(addrs, ["2001:db8::a", "2001:db8::b", "2001:db8::c"]);
}

#[test]
fn group_errors() {
    let e = |members: &str| {
        errors(&format!(
            "virtual_server_group G {{\n{members}}}\nvirtual_server group G {{\n}}\n"
        ))
    };
    assert_eq!(
        e(" 10.0.0.1\n"),
        [
            "k.conf:2: error: virtual_server_group G: `10.0.0.1` needs one port: xdpvs balances one port per service",
            "k.conf:4: error: virtual_server group G: the group has no usable member",
        ]
    );
    assert_eq!(
        e(" 10.0.0.9-3 80\n")[0],
        "k.conf:2: error: virtual_server_group G: 10.0.0.9-3 is not an IP address or range (10.0.0.1, 10.0.0.1-10, 10.0.0.1-10.0.0.9, 10.0.0.8/29), or has more than 1024 addresses"
    );
    assert_eq!(
        e(" 10.0.0.1 80\n 10.0.0.1 80\n"),
        ["k.conf:3: error: virtual_server_group G: 10.0.0.1 80 is listed twice"]
    );
    assert_eq!(
        e(" fwmark 7\n 10.0.0.1 80\n"),
        [
            "k.conf:2: error: virtual_server_group fwmark is not supported: xdpvs balances by VIP, port and protocol"
        ]
    );
    assert_eq!(
        e(" 10.0.0.1 80\n 2001:db8::1 80\n"),
        [
            "k.conf:3: error: virtual_server_group G: IPv4 and IPv6 members cannot share real servers in direct routing"
        ]
    );
    // A member that is also its own virtual_server is one service defined twice.
    let twice = format!("{GROUPED}virtual_server 10.0.0.100 443 {{\n}}\n");
    assert_eq!(
        errors(&twice),
        ["k.conf:16: error: virtual_server 10.0.0.100 443 (TCP) is already defined at k.conf:1"]
    );
    assert_eq!(
        errors("virtual_server_group G {\n}\nvirtual_server_group G {\n}\n"),
        ["k.conf:3: error: virtual_server_group G is already defined at k.conf:1"]
    );
}

#[test]
fn group_in_json() {
    let json: serde_json::Value = serde_json::from_str(&to_json(&ok(GROUPED).config)).unwrap();
    assert_eq!(json["virtual_servers"][1]["group"], "WEB");
    assert_eq!(json["virtual_servers"][1]["port"], 443);
}
