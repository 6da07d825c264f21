//! `xdpvs_announce`: VIP routes for BGP.

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
