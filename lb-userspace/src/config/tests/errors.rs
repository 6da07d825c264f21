//! Every error, with the file and line it names. Each case: the text, and
//! exactly the errors it is refused with.

use super::*;

fn check(cases: &[(&str, &[&str])]) {
    for (text, want) in cases {
        assert_eq!(errors(text), *want, "for:\n{text}");
    }
}

#[test]
fn grammar() {
    check(&[
        ("a 1\n}\n", &["k.conf:2: error: `}` closes no block"]),
        (
            "global_defs {\n router_id x\n",
            &["k.conf:1: error: block `global_defs` opened here is never closed"],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 1\n}\n",
            &["k.conf:1: error: block `virtual_server` opened here is never closed"],
        ),
        (
            "global_defs {\n}\n{\n x\n}\n",
            &["k.conf:3: error: `{` opens a block with no keyword; the block is skipped"],
        ),
        (
            "vrrp_script s {\n script \"/bin/true\n}\n",
            // The quote runs to the end of its line; the block still closes.
            &["k.conf:2: error: unterminated quoted string starting at column 9"],
        ),
        (
            "include\n",
            &["k.conf:1: error: include needs a file name or pattern"],
        ),
    ]);
}

#[test]
fn unsupported_features() {
    check(&[
        (
            "virtual_server 10.0.0.1 80 {\n  lb_kind NAT\n}\n",
            &[
                "k.conf:2: error: lb_kind NAT is not supported: xdpvs forwards in direct-routing mode (DR)",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  lb_kind TUN\n}\n",
            &[
                "k.conf:2: error: lb_kind TUN is not supported: xdpvs forwards in direct-routing mode (DR)",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  lb_kind FNAT\n}\n",
            &["k.conf:2: error: lb_kind FNAT: expected DR"],
        ),
        (
            &instance(" authentication {\n  auth_type AH\n  auth_pass x\n }\n"),
            &[
                "k.conf:8: error: auth_type AH is not supported: use PASS, or VRRP version 3 without authentication",
            ],
        ),
        (
            "virtual_server fwmark 1 {\n}\n",
            &[
                "k.conf:1: error: virtual_server fwmark is not supported: xdpvs balances by VIP, port and protocol",
            ],
        ),
        (
            "virtual_server group web {\n}\n",
            &["k.conf:1: error: virtual_server group web: no virtual_server_group web is defined"],
        ),
        (
            "virtual_server 10.0.0.1 0 {\n real_server 10.0.0.2 0 {\n  TCP_CHECK {\n  }\n }\n}\n",
            &[
                "k.conf:3: error: TCP_CHECK of real_server 10.0.0.2 needs connect_port (or a port on its real_server): the virtual_server serves every port",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n protocol SCTP\n}\n",
            &["k.conf:2: error: protocol SCTP: xdpvs balances TCP or UDP"],
        ),
    ]);
}

#[test]
fn vrrp_instance_values() {
    check(&[
        (
            "vrrp_instance V {\n interface eth0\n virtual_router_id 300\n priority 0\n advert_int -1\n state LEADER\n virtual_ipaddress {\n  10.0.0.1/33\n  10.0.0.300\n  10.0.0.2\n }\n}\n",
            &[
                "k.conf:3: error: virtual_router_id 300: must be a whole number from 1 to 255",
                "k.conf:4: error: priority 0: must be a whole number from 1 to 255",
                "k.conf:5: error: advert_int -1: must be a number of seconds, at least 0.01",
                "k.conf:6: error: state LEADER: expected MASTER or BACKUP",
                "k.conf:8: error: virtual_ipaddress 10.0.0.1/33: prefix must be 0 to 32",
                "k.conf:9: error: virtual_ipaddress 10.0.0.300: not an IP address",
            ],
        ),
        (
            &instance(" priority 300\n"),
            &["k.conf:7: error: priority 300: must be a whole number from 1 to 255"],
        ),
        (
            &instance(" version 4\n"),
            &["k.conf:7: error: version 4: must be a whole number from 2 to 3"],
        ),
        (
            &instance(" priority\n"),
            &["k.conf:7: error: priority needs a value"],
        ),
        (
            &instance(" mcast_src_ip eth0\n"),
            &["k.conf:7: error: mcast_src_ip eth0: not an IP address"],
        ),
        (
            &instance(" unicast_peer {\n  10.0.0.2\n  peer-b\n }\n"),
            &["k.conf:9: error: unicast_peer peer-b: not an IP address"],
        ),
        (
            &instance(" track_interface {\n  eth1 weight 300\n }\n"),
            &["k.conf:8: error: eth1 weight 300: must be from -254 to 254"],
        ),
        (
            &instance(" advert_int 1.5\n"),
            &[
                "k.conf:1: error: vrrp_instance V: advert_int 1.5: VRRPv2 needs whole seconds from 1 to 255 (or `version 3`)",
            ],
        ),
        (
            &instance(" version 3\n advert_int 41\n"),
            &[
                "k.conf:1: error: vrrp_instance V: advert_int 41: VRRPv3 allows at most 40.95 seconds",
            ],
        ),
        (
            &instance(" notify_master\n"),
            &["k.conf:7: error: notify_master needs a command"],
        ),
    ]);
}

#[test]
fn vrrp_instance_needs() {
    check(&[
        (
            "vrrp_instance V {\n}\n",
            &[
                "k.conf:1: error: vrrp_instance V needs an interface",
                "k.conf:1: error: vrrp_instance V needs a virtual_router_id",
                "k.conf:1: error: vrrp_instance V has no virtual_ipaddress",
            ],
        ),
        (
            "vrrp_instance {\n}\n",
            &["k.conf:1: error: vrrp_instance needs one name"],
        ),
        (
            "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n",
            &["k.conf:1: error: vrrp_instance V: IPv6 addresses need VRRP version 3 (`version 3`)"],
        ),
        (
            &instance(" authentication {\n  auth_type PASS\n }\n"),
            &["k.conf:7: error: auth_type PASS needs auth_pass"],
        ),
        (
            &instance(" authentication {\n  auth_pass x\n }\n"),
            &["k.conf:7: error: authentication needs auth_type"],
        ),
        (
            &instance(" authentication {\n  auth_type MD5\n  auth_pass x\n }\n"),
            &["k.conf:8: error: auth_type MD5: expected PASS"],
        ),
    ]);
}

#[test]
fn vrrp_script_and_sync_group() {
    check(&[
        (
            "vrrp_script s {\n interval 2\n}\n",
            &["k.conf:1: error: vrrp_script s needs a script"],
        ),
        (
            "vrrp_script s {\n script /bin/true\n interval 0\n weight 300\n rise 0\n}\n",
            &[
                "k.conf:3: error: interval 0: must be a number of seconds, at least 0.001",
                "k.conf:4: error: weight 300: must be a whole number from -253 to 253",
                "k.conf:5: error: rise 0: must be a whole number from 1 to 1000",
            ],
        ),
        (
            "vrrp_sync_group {\n}\n",
            &["k.conf:1: error: vrrp_sync_group needs one name"],
        ),
    ]);
}

#[test]
fn references_across_blocks() {
    let a = instance(" track_script {\n  chk\n  nope weight 2\n }\n");
    let b = "vrrp_instance B {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n";
    let groups = "vrrp_sync_group G {\n group {\n  V\n  C\n }\n}\nvrrp_sync_group H {\n group {\n  V\n }\n}\n";
    let script = "vrrp_script chk {\n script /bin/true\n}\n";
    let e = errors(&format!("{a}{b}{groups}{script}{script}"));
    assert_eq!(
        e,
        [
            "k.conf:9: error: vrrp_instance V: track_script nope is not defined by any vrrp_script",
            "k.conf:12: error: vrrp_instance B: virtual_router_id 7 on eth0 is already used by vrrp_instance V (k.conf:1)",
            "k.conf:22: error: vrrp_sync_group G: no vrrp_instance C",
            "k.conf:27: error: vrrp_sync_group H: vrrp_instance V is already in vrrp_sync_group G",
            "k.conf:33: error: vrrp_script chk is already defined at k.conf:30",
        ]
    );
    let twice = format!("{}{}", instance(""), instance("").replace("7", "8"));
    assert_eq!(
        errors(&twice),
        ["k.conf:8: error: vrrp_instance V is already defined at k.conf:1"]
    );
}

#[test]
fn services_and_reals() {
    check(&[
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 70000\n }\n real_server 10.0.0.2 80 {\n }\n}\nvirtual_server 10.0.0.1 80 {\n}\n",
            &[
                "k.conf:3: error: weight 70000: must be a whole number from 0 to 65535",
                "k.conf:5: error: real_server 10.0.0.2 80 is listed twice in this virtual_server",
                "k.conf:8: error: virtual_server 10.0.0.1 80 (TCP) is already defined at k.conf:1",
            ],
        ),
        (
            "virtual_server 10.0.0.1 {\n}\nvirtual_server www 80 {\n}\n",
            &[
                "k.conf:1: error: virtual_server needs an IP address and a port: `virtual_server 10.0.0.100 80 {`",
                "k.conf:3: error: virtual_server needs an IP address and a port: `virtual_server 10.0.0.100 80 {`",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server web1 80 {\n }\n real_server 2001:db8::1 80 {\n }\n}\n",
            &[
                "k.conf:2: error: real_server needs an IP address and a port: `real_server 10.0.0.11 80 {`",
                "k.conf:4: error: real_server and virtual_server must be of the same address family in direct routing",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n delay_loop 0\n persistence_timeout -5\n sorry_server 10.0.0.9\n}\n",
            &[
                "k.conf:2: error: delay_loop 0: must be a number of seconds, at least 0.001",
                "k.conf:3: error: persistence_timeout -5: must be a whole number from 0 to 4294967295",
                "k.conf:4: error: sorry_server needs an IP address and a port",
            ],
        ),
    ]);
}

#[test]
fn health_checks() {
    let real = |check: &str| {
        format!("virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n{check} }}\n}}\n")
    };
    check(&[
        (
            &real("  HTTP_GET {\n  }\n"),
            &["k.conf:3: error: HTTP_GET needs at least one url { path ... } block"],
        ),
        (
            &real("  HTTP_GET {\n   url {\n    status_code 200\n   }\n  }\n"),
            &["k.conf:4: error: url needs a path"],
        ),
        (
            &real(
                "  HTTP_GET {\n   url {\n    path /\n    status_code 2xx 700 299-200\n    digest abc\n   }\n  }\n",
            ),
            &[
                "k.conf:6: error: status_code 2xx: must be an HTTP status from 100 to 599, or a range such as 200-299",
                "k.conf:6: error: status_code 700: must be an HTTP status from 100 to 599, or a range such as 200-299",
                "k.conf:6: error: status_code 299-200: must be an HTTP status from 100 to 599, or a range such as 200-299",
                "k.conf:7: error: digest abc: must be 32 hex digits (an MD5, as genhash prints)",
            ],
        ),
        (
            &real("  MISC_CHECK {\n   misc_timeout 3\n  }\n"),
            &["k.conf:3: error: MISC_CHECK needs misc_path"],
        ),
        (
            &real(
                "  TCP_CHECK {\n   connect_port 0\n   connect_timeout 0\n   bindto eth0\n   nb_get_retry x\n  }\n",
            ),
            &[
                "k.conf:4: error: connect_port 0: must be a whole number from 1 to 65535",
                "k.conf:5: error: connect_timeout 0: must be a number of seconds, at least 0.001",
                "k.conf:6: error: bindto eth0: not an IP address",
                "k.conf:7: error: nb_get_retry x: must be a whole number from 0 to 1000",
            ],
        ),
    ]);
}

#[test]
fn every_error_is_reported_with_the_warnings_around_it() {
    let text = "frob 1\nvirtual_server 10.0.0.1 80 {\n lb_kind NAT\n}\nvrrp_instance V {\n priority 0\n}\n";
    let Err(e) = parse_str(text, Path::new("k.conf")) else {
        panic!("accepted")
    };
    assert_eq!(
        e.to_string(),
        [
            "k.conf:1: warning: unknown keyword frob, ignored",
            "k.conf:3: error: lb_kind NAT is not supported: xdpvs forwards in direct-routing mode (DR)",
            "k.conf:5: error: vrrp_instance V needs an interface",
            "k.conf:5: error: vrrp_instance V needs a virtual_router_id",
            "k.conf:5: error: vrrp_instance V has no virtual_ipaddress",
            "k.conf:6: error: priority 0: must be a whole number from 1 to 255",
        ]
        .join("\n")
    );
    let as_error: &dyn std::error::Error = &e;
    assert!(as_error.source().is_none());
}

#[test]
fn vrrp_wire_settings_are_acted_on_or_refused() {
    check(&[
        (
            &instance(" no_accept\n"),
            &[
                "k.conf:7: error: no_accept is not supported: xdpvs accepts traffic to its VIPs while master (keepalived's `accept`); drop unwanted traffic to them with nftables",
            ],
        ),
        (
            "global_defs {\n vrrp_mcast_group4 10.0.0.1\n vrrp_mcast_group6 2001:db8::1\n}\n",
            &[
                "k.conf:2: error: vrrp_mcast_group4 10.0.0.1: not an IPv4 multicast address",
                "k.conf:3: error: vrrp_mcast_group6 2001:db8::1: not an IPv6 multicast address",
            ],
        ),
        (
            "global_defs {\n script_user\n}\nvrrp_script s {\n script /bin/true\n user a b c\n}\n",
            &[
                "k.conf:2: error: script_user needs USER [GROUP]",
                "k.conf:6: error: user needs USER [GROUP]",
            ],
        ),
    ]);
}
