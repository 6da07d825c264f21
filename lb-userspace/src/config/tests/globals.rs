//! global_defs settings of the whole node: host scripts and IPVS timeouts.

use std::time::Duration;

use super::*;

#[test]
fn startup_and_shutdown_scripts_with_users_and_timeouts() {
    // The timeout may stand before its script, as keepalived allows.
    let c = ok("global_defs {\n shutdown_script_timeout 3\n startup_script \"/bin/echo up now\" nobody nogroup\n shutdown_script /bin/true\n}\n").config;
    let up = c.global.startup_script.as_ref().expect("startup_script");
    assert_eq!(up.command, "/bin/echo up now");
    assert_eq!(
        up.user,
        Some(ScriptUser {
            user: "nobody".into(),
            group: Some("nogroup".into())
        })
    );
    assert_eq!(up.timeout, HOST_SCRIPT_TIMEOUT);
    assert_eq!(up.location.line, 3);
    let down = c.global.shutdown_script.as_ref().expect("shutdown_script");
    assert_eq!(
        (down.user.as_ref(), down.timeout),
        (None, Duration::from_secs(3))
    );
}

#[test]
fn host_script_mistakes_are_named() {
    assert_eq!(
        errors("global_defs {\n startup_script\n}\n"),
        ["k.conf:2: error: startup_script needs a script"]
    );
    assert_eq!(
        errors("global_defs {\n startup_script /bin/true\n startup_script_timeout 0\n}\n"),
        ["k.conf:3: error: startup_script_timeout 0: must be a whole number from 1 to 1000"]
    );
    let l = ok("global_defs {\n shutdown_script_timeout 5\n}\n");
    assert_eq!(
        warnings(&l),
        ["k.conf:2: warning: shutdown_script_timeout without shutdown_script, ignored"]
    );
}

#[test]
fn lvs_timeouts_in_any_order_and_subset() {
    let t = ok("global_defs {\n lvs_timeouts udp 30 tcp 7200\n}\n")
        .config
        .global
        .lvs_timeouts;
    assert_eq!(
        t,
        LvsTimeouts {
            tcp: Some(7200),
            tcpfin: None,
            udp: Some(30)
        }
    );
    assert_eq!(ok("").config.global.lvs_timeouts, LvsTimeouts::default());
}

#[test]
fn lvs_timeouts_mistakes_are_named() {
    assert_eq!(
        errors("global_defs {\n lvs_timeouts tcp\n}\n"),
        ["k.conf:2: error: lvs_timeouts tcp: needs seconds from 1 to 2678400"]
    );
    assert_eq!(
        errors("global_defs {\n lvs_timeouts sctp 10\n}\n"),
        ["k.conf:2: error: lvs_timeouts: unknown timeout \"sctp\" (tcp, tcpfin or udp)"]
    );
    assert_eq!(
        errors("global_defs {\n lvs_timeouts tcp 0\n}\n"),
        ["k.conf:2: error: lvs_timeouts tcp: needs seconds from 1 to 2678400"]
    );
}

#[test]
fn a_virtual_servers_weight_and_inhibit_are_its_reals_defaults() {
    let c = ok("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n weight 3\n inhibit_on_failure\n real_server 10.0.0.3 80 {\n  weight 1\n }\n lvs_method DR\n sorry_server 10.0.0.9 80\n sorry_server_lvs_method DR\n}\n").config;
    let reals = &c.virtual_servers[0].reals;
    // Wherever the defaults stand, as keepalived applies them after reading.
    assert_eq!(
        reals
            .iter()
            .map(|r| (r.weight, r.inhibit_on_failure))
            .collect::<Vec<_>>(),
        [(3, true), (1, true)]
    );
    assert_eq!(
        errors(
            "virtual_server 10.0.0.1 80 {\n weight 0\n real_server 10.0.0.2 80 {\n  lvs_method NAT\n }\n}\n"
        ),
        [
            "k.conf:2: error: weight 0: must be a whole number from 1 to 65535",
            "k.conf:4: error: lvs_method NAT is not supported: xdpvs forwards in direct-routing mode (DR)",
        ]
    );
}

#[test]
fn down_timer_adverts_from_global_defs_or_the_instance() {
    let c = ok(&format!(
        "global_defs {{\n vrrp_down_timer_adverts 5\n}}\n{}{}",
        instance(" down_timer_adverts 2\n promote_secondaries\n"),
        instance("")
            .replace("vrrp_instance V", "vrrp_instance W")
            .replace("router_id 7", "router_id 8")
    ))
    .config;
    let i = &c.vrrp_instances;
    assert_eq!(
        (i[0].down_timer_adverts, i[0].promote_secondaries),
        (2, true)
    );
    assert_eq!(
        (i[1].down_timer_adverts, i[1].promote_secondaries),
        (5, false)
    );
    assert_eq!(
        errors(&instance(" down_timer_adverts 0\n")),
        ["k.conf:7: error: down_timer_adverts 0: must be a whole number from 1 to 100"]
    );
    let strict = errors(&format!(
        "global_defs {{\n vrrp_strict\n}}\n{}",
        instance(" down_timer_adverts 2\n")
    ));
    assert!(
        strict
            .iter()
            .any(|e| e.contains("down_timer_adverts is not allowed with vrrp_strict")),
        "{strict:?}"
    );
}

#[test]
fn vrrp_start_delays() {
    let g = ok("global_defs {\n vrrp_startup_delay 2.5\n vrrp_delay_after_boot 120\n}\n")
        .config
        .global;
    assert_eq!(
        (g.vrrp_startup_delay, g.vrrp_delay_after_boot),
        (
            Some(Duration::from_millis(2500)),
            Some(Duration::from_secs(120))
        )
    );
}

#[test]
fn an_instances_own_multicast_group() {
    let c = ok(&instance(" mcast_dst_ip 224.0.0.19\n")).config;
    assert_eq!(c.vrrp_instances[0].mcast_dst_ip, Some(ip("224.0.0.19")));
    assert_eq!(
        errors(&instance(" mcast_dst_ip 10.0.0.9\n")),
        ["k.conf:7: error: mcast_dst_ip 10.0.0.9: not a multicast address"]
    );
    assert_eq!(
        errors(&instance(" mcast_dst_ip ff02::13\n")),
        [
            "k.conf:7: error: mcast_dst_ip ff02::13: not of the instance's address family (that of 10.0.0.1)"
        ]
    );
}

#[test]
fn keepalived_1x_sync_daemon_interface_in_an_instance() {
    let l = ok(&instance(" lvs_sync_daemon_interface eth1\n"));
    let sync = l.config.global.sync.as_ref().expect("flow sync");
    assert_eq!(
        (sync.interface.as_str(), sync.instance.as_deref(), sync.port),
        ("eth1", Some("V"), SYNC_PORT)
    );
    assert_eq!(
        warnings(&l),
        [
            "k.conf:7: warning: lvs_sync_daemon_interface is keepalived 1.x's spelling: read as `lvs_sync_daemon eth1 V` in global_defs"
        ]
    );
    assert_eq!(
        errors(&format!(
            "global_defs {{\n lvs_sync_daemon eth0\n}}\n{}",
            instance(" lvs_sync_daemon_interface eth1\n")
        )),
        [
            "k.conf:10: error: lvs_sync_daemon_interface: flow sync is already set by lvs_sync_daemon at k.conf:2"
        ]
    );
}

#[test]
fn notify_fifos_with_owners_and_scripts_in_any_order() {
    use crate::config::fifo::{FifoScript, NotifyFifo};
    let f = ok("global_defs {\n vrrp_notify_fifo_script /bin/reader nobody\n vrrp_notify_fifo /run/vrrp.fifo nobody nogroup\n lvs_notify_fifo /run/lvs.fifo\n}\n")
        .config
        .global
        .notify_fifos;
    assert_eq!(f.all, None);
    let vrrp = f.vrrp.as_ref().expect("vrrp_notify_fifo");
    assert_eq!(
        (
            vrrp.path.as_str(),
            vrrp.owner
                .as_ref()
                .map(|o| (o.user.as_str(), o.group.as_deref()))
        ),
        ("/run/vrrp.fifo", Some(("nobody", Some("nogroup"))))
    );
    assert_eq!(
        vrrp.script
            .as_ref()
            .map(|s: &FifoScript| (s.command.as_str(), s.location.line)),
        Some(("/bin/reader", 2))
    );
    assert!(matches!(
        &f.lvs,
        Some(NotifyFifo {
            script: None,
            owner: None,
            ..
        })
    ));
    assert_eq!(
        errors("global_defs {\n lvs_notify_fifo_script /bin/reader\n}\n"),
        ["k.conf:2: error: lvs_notify_fifo_script needs lvs_notify_fifo PATH in global_defs"]
    );
    assert_eq!(
        errors("global_defs {\n notify_fifo fifo\n}\n"),
        ["k.conf:2: error: notify_fifo fifo: needs an absolute path"]
    );
}

#[test]
fn unicast_fault_no_peer_needs_peers() {
    ok(&instance(
        " unicast_fault_no_peer\n unicast_peer {\n  10.0.0.3\n }\n",
    ));
    assert_eq!(
        errors(&instance(" unicast_fault_no_peer\n")),
        [
            "k.conf:7: error: vrrp_instance V: unicast_fault_no_peer without a unicast_peer would keep it in FAULT: give it its peers, or leave the instance out on this node (`@ID` lines)"
        ]
    );
}

#[test]
fn the_ssl_block_names_the_client_certificate() {
    let c = ok("SSL {\n certificate /etc/keepalived/c.pem\n key /etc/keepalived/k.pem\n ca /etc/keepalived/ca.pem\n}\n").config;
    let s = c.ssl.as_ref().expect("SSL");
    assert_eq!(
        (s.certificate.as_str(), s.key.as_str(), s.ca.as_deref()),
        (
            "/etc/keepalived/c.pem",
            "/etc/keepalived/k.pem",
            Some("/etc/keepalived/ca.pem")
        )
    );
    assert_eq!(
        errors("SSL {\n certificate /c.pem\n}\n"),
        ["k.conf:1: error: SSL needs both certificate and key"]
    );
    let e = errors("SSL {\n certificate /c.pem\n key /k.pem\n password x\n}\n");
    assert!(
        e[0].starts_with("k.conf:4: error: SSL password: an encrypted key is not supported"),
        "{e:?}"
    );
}

#[test]
fn default_interface_is_a_static_addresss_device() {
    let c = ok("global_defs {\n default_interface eth3\n disable_local_igmp\n}\nstatic_ipaddress {\n 192.0.2.11/24\n 192.0.2.12/24 dev eth1\n}\n").config;
    let devs: Vec<_> = c
        .static_addresses
        .iter()
        .map(|v| v.dev.as_deref())
        .collect();
    assert_eq!(devs, [Some("eth3"), Some("eth1")]);
    assert!(c.global.disable_local_igmp);
}
