//! `xdpvs_announce` (VIP routes for BGP) and `lvs_sync_daemon` (flow sync).

use super::*;

#[test]
fn announce_block_and_its_defaults() {
    let none = ok("global_defs {\n router_id lb1\n}\n").config;
    assert_eq!(none.global.announce, None, "off unless asked for");
    let defaults = ok("global_defs {\n xdpvs_announce {\n }\n}\n").config;
    assert_eq!(
        defaults.global.announce,
        Some(Announce {
            table: 200,
            protocol: 201,
            require: AnnounceRequire::Any,
        })
    );
    let set =
        ok("global_defs {\n xdpvs_announce {\n  table 1000\n  protocol 99\n  require all\n }\n}\n")
            .config;
    assert_eq!(
        set.global.announce,
        Some(Announce {
            table: 1000,
            protocol: 99,
            require: AnnounceRequire::All,
        })
    );
}

#[test]
fn announce_errors_name_the_line() {
    assert_eq!(
        errors(
            "global_defs {\n xdpvs_announce {\n  table 254\n  protocol 2\n  require most\n  via x\n }\n}\n"
        ),
        [
            "k.conf:3: error: table 254: a kernel table (default, main, local); choose a table of its own",
            "k.conf:4: error: protocol 2: must be a whole number from 5 to 255",
            "k.conf:5: error: require most: must be `any` or `all` (of a VIP's virtual_servers)",
            "k.conf:6: error: unknown keyword via in xdpvs_announce",
        ]
    );
}

#[test]
fn lvs_sync_daemon_as_keepalived_writes_it() {
    let multicast = ok("global_defs {\n lvs_sync_daemon eth1 VI_1 id 7 port 9000\n}\n").config;
    let s = multicast.global.sync.expect("sync on");
    assert_eq!(
        (
            s.interface.as_str(),
            s.instance.as_deref(),
            s.id,
            s.port,
            s.group,
            s.peers.len()
        ),
        ("eth1", Some("VI_1"), 7, 9000, SYNC_GROUP, 0)
    );
    let unicast = ok(
        "global_defs {\n lvs_sync_daemon eth0\n xdpvs_sync_peers {\n  10.0.0.2\n  2001:db8::3\n }\n}\n",
    )
    .config;
    let s = unicast.global.sync.expect("sync on");
    assert_eq!((s.instance, s.port), (None, SYNC_PORT));
    assert_eq!(s.peers, [ip("10.0.0.2"), ip("2001:db8::3")]);
    let noted = ok("global_defs {\n lvs_sync_daemon eth0 maxlen 1200\n}\n");
    assert_eq!(
        notes(&noted),
        [
            "k.conf:2: note: lvs_sync_daemon: maxlen 1200 is not used: xdpvs sends datagrams of at most 1346 bytes, with TTL 1 to the multicast group"
        ]
    );
}

#[test]
fn lvs_sync_daemon_errors_name_the_line() {
    assert_eq!(
        errors("global_defs {\n lvs_sync_daemon\n}\n"),
        ["k.conf:2: error: lvs_sync_daemon needs an interface"]
    );
    assert_eq!(
        errors("global_defs {\n lvs_sync_daemon eth0 id 300 port 0 group 10.0.0.1 mode x\n}\n"),
        [
            "k.conf:2: error: lvs_sync_daemon: id 300: must be a whole number from 0 to 255",
            "k.conf:2: error: lvs_sync_daemon: port 0: must be a port from 1 to 65535",
            "k.conf:2: error: lvs_sync_daemon: group 10.0.0.1: must be an IPv4 multicast address",
            "k.conf:2: error: lvs_sync_daemon: unknown option mode",
        ]
    );
    assert_eq!(
        errors("global_defs {\n xdpvs_sync_peers {\n  10.0.0.2\n  lb2\n }\n}\n"),
        [
            "k.conf:2: error: xdpvs_sync_peers without lvs_sync_daemon: add `lvs_sync_daemon INTERFACE` to global_defs",
            "k.conf:4: error: xdpvs_sync_peers: lb2 is not an IP address",
        ]
    );
}
