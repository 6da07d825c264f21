//! `virtual_routes` in keepalived's (ip route's) words.

use super::*;

fn routes(lines: &str) -> Vec<VirtualRoute> {
    let l = ok(&instance(&format!(" virtual_routes {{\n{lines} }}\n")));
    assert!(warnings(&l).is_empty(), "{:#?}", warnings(&l));
    l.config.vrrp_instances[0].virtual_routes.clone()
}

fn route_errors(lines: &str) -> Vec<String> {
    errors(&instance(&format!(" virtual_routes {{\n{lines} }}\n")))
}

#[test]
fn every_option_xdpvs_sets() {
    let r = routes(
        "  192.168.2.0/24 via 192.168.1.100 dev eth0 table 6909 metric 12 proto 4\n  \
         blackhole 10.9.0.0/16\n  default gw 10.0.0.254\n  unreachable default inet6 table main\n  \
         10.8.0.0/24 dev eth1 scope link src 10.0.0.1 priority 3\n  prohibit 10.7.0.1\n",
    );
    assert_eq!(r.len(), 6);
    assert_eq!(
        (
            r[0].kind,
            r[0].dst,
            r[0].prefix,
            r[0].via,
            r[0].dev.as_deref()
        ),
        (
            RouteKind::Unicast,
            ip("192.168.2.0"),
            24,
            Some(ip("192.168.1.100")),
            Some("eth0")
        )
    );
    assert_eq!(
        (r[0].table, r[0].metric, r[0].protocol),
        (Some(6909), Some(12), Some(4))
    );
    assert_eq!(
        (r[1].kind, r[1].prefix, r[1].table),
        (RouteKind::Blackhole, 16, None)
    );
    assert_eq!(
        (r[2].dst, r[2].prefix, r[2].via),
        (ip("0.0.0.0"), 0, Some(ip("10.0.0.254")))
    );
    assert_eq!(
        (r[3].kind, r[3].dst, r[3].prefix, r[3].table),
        (RouteKind::Unreachable, ip("::"), 0, Some(254))
    );
    assert_eq!(
        (r[4].scope, r[4].src, r[4].metric),
        (Some(253), Some(ip("10.0.0.1")), Some(3))
    );
    assert_eq!((r[5].kind, r[5].prefix), (RouteKind::Prohibit, 32));
    assert_eq!(r[0].location.to_string(), "k.conf:8");
}

#[test]
fn what_is_not_set_is_refused_by_name() {
    assert_eq!(
        route_errors("  10.1.0.0/24 via 10.0.0.1 mtu 1400\n"),
        [
            "k.conf:8: error: virtual_routes: mtu is not supported (xdpvs sets src, via/gw, dev, table, metric, scope, protocol and blackhole/unreachable/prohibit)"
        ]
    );
    assert_eq!(
        route_errors("  10.1.0.0/24 via 10.0.0.1 table small\n"),
        [
            "k.conf:8: error: virtual_routes: table small: a table number (or main, local, default); names from rt_tables are not read"
        ]
    );
    assert_eq!(
        route_errors("  10.1.0.0/24 via 2001:db8::1\n"),
        [
            "k.conf:8: error: virtual_routes: via 2001:db8::1: not an address of the destination's family"
        ]
    );
    assert_eq!(
        route_errors("  10.1.0.0/33 dev eth0\n"),
        [
            "k.conf:8: error: virtual_routes: 10.1.0.0/33 is not a destination (ADDRESS[/LENGTH] or default)"
        ]
    );
    assert_eq!(
        route_errors("  10.1.0.0/24\n"),
        [
            "k.conf:8: error: virtual_routes: a route needs via (gw) or dev, or a type such as blackhole"
        ]
    );
    assert_eq!(
        route_errors("  10.1.0.0/24 dev\n"),
        ["k.conf:8: error: virtual_routes: dev needs a value"]
    );
}

#[test]
fn static_routes_at_the_top_level() {
    let l = ok("static_routes {\n 10.5.0.0/16 via 10.0.0.1 table 7\n blackhole 10.6.0.0/16\n}\n");
    assert!(warnings(&l).is_empty(), "{:#?}", warnings(&l));
    let r = &l.config.static_routes;
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].dst, r[0].table), (ip("10.5.0.0"), Some(7)));
    assert_eq!(r[1].kind, RouteKind::Blackhole);
    assert_eq!(
        errors("static_routes {\n 10.5.0.0/16 nexthop via 10.0.0.1\n}\n"),
        [
            "k.conf:2: error: static_routes: nexthop is not supported (xdpvs sets src, via/gw, dev, table, metric, scope, protocol and blackhole/unreachable/prohibit)"
        ]
    );
}

#[test]
fn rules_in_keepalived_words() {
    let l = ok(&instance(
        " virtual_rules {\n  from 192.168.2.0/24 table 100 priority 30\n  to 10.1.0.0/16 lookup main iif eth0 fwmark 0x10/0xff\n  from all table 7 inet6\n }\n",
    ));
    let r = &l.config.vrrp_instances[0].virtual_rules;
    assert!(warnings(&l).is_empty(), "{:#?}", warnings(&l));
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0].from, r[0].table, r[0].priority, r[0].v6),
        (Some((ip("192.168.2.0"), 24)), 100, Some(30), false)
    );
    assert_eq!(
        (r[1].to, r[1].table, r[1].iif.as_deref(), r[1].fwmark),
        (
            Some((ip("10.1.0.0"), 16)),
            254,
            Some("eth0"),
            Some((16, Some(255)))
        )
    );
    assert!(r[2].v6);
    let s = ok("static_rules {\n from 10.0.0.0/8 table 5\n}\n");
    assert_eq!(s.config.static_rules[0].table, 5);
    let e = |line: &str| errors(&format!("static_rules {{\n {line}\n}}\n"));
    assert_eq!(
        e("from 10.0.0.0/8"),
        ["k.conf:2: error: static_rules: a rule needs a table (xdpvs adds lookup rules only)"]
    );
    assert_eq!(
        e("from 10.0.0.0/8 table 5 goto 40"),
        [
            "k.conf:2: error: static_rules: goto is not supported (xdpvs sets from, to, table, priority, iif, oif and fwmark)"
        ]
    );
    assert_eq!(
        e("from 10.0.0.0/8 to 2001:db8::/32 table 5"),
        ["k.conf:2: error: static_rules: from and to are of different address families"]
    );
}
