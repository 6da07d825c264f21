//! Every keyword xdpvs knows, by the block it stands in, with what xdpvs
//! does with it: the table the README's keyword table is generated from
//! (`cargo test` fails when they differ, and rewrites the README with
//! `XDPVS_BLESS=1`), and the list the parser reads past with a warning.
//! A test reads a probe of every row and checks the parser does what the
//! row says. Keywords in no row are "unknown keyword ..., ignored".

/// What xdpvs does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Read into the model and acted on.
    Acted,
    /// An error: it changes what the node does and xdpvs cannot honour it.
    Refused,
    /// Read past with a warning naming it.
    Ignored,
}

#[cfg(test)]
impl Class {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Acted => "acted on",
            Self::Refused => "refused",
            Self::Ignored => "ignored",
        }
    }
}

/// One keyword in one block. `probe` is the statement a test reads to see
/// the class (`{name} {probe}` when it does not start with the name).
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    pub block: &'static str,
    pub name: &'static str,
    pub class: Class,
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub probe: &'static str,
}

use Class::{Acted as A, Ignored as I, Refused as R};

const fn k(block: &'static str, name: &'static str, class: Class, probe: &'static str) -> Keyword {
    Keyword {
        block,
        name,
        class,
        probe,
    }
}

/// Whether the parser reads past `name` in `block` with a warning.
pub fn ignored(block: &str, name: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|k| k.class == Class::Ignored && k.block == block && k.name == name)
}

pub const TOP: &str = "top level";

#[rustfmt::skip]
pub const KEYWORDS: &[Keyword] = &[
    k(TOP, "include", A, "include /nonexistent-xdpvs/*.conf"),
    k(TOP, "global_defs", A, "{\n}"),
    k(TOP, "vrrp_script", A, "s {\n script /bin/true\n}"),
    k(TOP, "vrrp_instance", A, "W {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  10.0.0.9\n }\n}"),
    k(TOP, "vrrp_sync_group", A, "G {\n group {\n  V\n }\n}"),
    k(TOP, "virtual_server", A, "10.0.0.9 80 {\n}"),
    k(TOP, "virtual_server_group", A, "web {\n 10.0.0.9 80\n 10.0.1.1-3 80\n}"),
    k(TOP, "static_ipaddress", A, "{\n 10.0.0.50/24 dev eth0\n}"),
    k(TOP, "static_routes", A, "{\n 10.9.0.0/24 dev eth0\n}"),
    k(TOP, "static_rules", A, "{\n from 10.9.0.0/24 table 100\n}"),
    k(TOP, "linkbeat_interfaces", I, "{\n}"),
    k(TOP, "garp_group", A, "{\n garp_interval 0.1\n gna_interval 0.2\n interfaces {\n  eth0\n  eth1\n }\n}"),
    k(TOP, "vrrp_track_file", A, "f2 {\n file /run/f2\n}"),
    k(TOP, "track_file", A, "f3 {\n file /run/f3\n weight -2 reverse\n init_file 1 overwrite\n}"),
    k(TOP, "vrrp_track_process", A, "p3 {\n process nginx\n}"),
    k(TOP, "track_process", A, "p2 {\n process /usr/sbin/nginx -g x\n param_match partial\n full_command\n weight -10 reverse\n quorum 2\n quorum_max 4\n delay 0.5\n fork_delay 1\n terminate_delay 2\n}"),
    k(TOP, "bfd_instance", I, "b {\n}"),
    k(TOP, "net_namespace", A, "ns"),
    k(TOP, "net_namespace_ipvs", R, "ns"),
    k(TOP, "instance", I, "name"),
    k(TOP, "use_pid_dir", I, ""),
    k(TOP, "child_wait_time", I, "5"),
    k(TOP, "include_check", I, "readable"),
    k(TOP, "~SEQ", R, "~SEQ(N, 0, 3) 10.0.${N}.1"),
    k(TOP, "~LST", R, "~LST(N, 1, 2) 10.0.${N}.1"),

    k("global_defs", "vrrp_version", A, "3"),
    k("global_defs", "router_id", I, "lb1"),
    k("global_defs", "xdpvs_max_services", A, "128"),
    k("global_defs", "xdpvs_max_reals", A, "8192"),
    k("global_defs", "xdpvs_max_flows", A, "2097152"),
    k("global_defs", "xdpvs_announce", A, "{\n}"),
    k("global_defs", "lvs_sync_daemon", A, "eth0"),
    k("global_defs", "notification_email", I, "{\n a@example.com\n }"),
    k("global_defs", "notification_email_from", I, "a@example.com"),
    k("global_defs", "smtp_server", I, "127.0.0.1"),
    k("global_defs", "smtp_connect_timeout", I, "30"),
    k("global_defs", "smtp_helo", I, "lb1"),
    k("global_defs", "enable_script_security", A, ""),
    k("global_defs", "script_user", A, "nobody"),
    k("global_defs", "lvs_id", I, "lb1"),
    k("global_defs", "enable_traps", I, ""),
    k("global_defs", "enable_snmp_vrrp", I, ""),
    k("global_defs", "enable_snmp_checker", I, ""),
    k("global_defs", "enable_snmp_rfc", I, ""),
    k("global_defs", "vrrp_skip_check_adv_addr", A, ""),
    k("global_defs", "vrrp_strict", A, ""),
    k("global_defs", "net_namespace", A, "ns"),
    k("global_defs", "net_namespace_ipvs", R, "ns"),
    k("global_defs", "vrrp_garp_interval", A, "0.1"),
    k("global_defs", "vrrp_gna_interval", A, "0.1"),
    k("global_defs", "vrrp_iptables", I, ""),
    k("global_defs", "vrrp_mcast_group4", A, "224.0.0.18"),
    k("global_defs", "vrrp_mcast_group6", A, "ff02::12"),
    k("global_defs", "max_auto_priority", I, ""),
    k("global_defs", "vrrp_garp_master_delay", A, "5"),
    k("global_defs", "vrrp_garp_master_repeat", A, "5"),
    k("global_defs", "vrrp_garp_master_refresh", A, "0"),
    k("global_defs", "vrrp_garp_master_refresh_repeat", A, "2"),
    k("global_defs", "vrrp_garp_lower_prio_delay", A, "5"),
    k("global_defs", "vrrp_garp_lower_prio_repeat", A, "5"),
    k("global_defs", "vrrp_lower_prio_no_advert", A, ""),
    k("global_defs", "vrrp_higher_prio_send_advert", A, "true"),
    k("global_defs", "dynamic_interfaces", I, ""),
    k("global_defs", "process_names", I, ""),
    k("global_defs", "checker_process_name", I, "c"),
    k("global_defs", "vrrp_process_name", I, "v"),
    k("global_defs", "vrrp_no_swap", I, ""),
    k("global_defs", "checker_no_swap", I, ""),

    k("vrrp_script", "script", A, "\"/bin/true\""),
    k("vrrp_script", "interval", A, "2"),
    k("vrrp_script", "timeout", A, "1"),
    k("vrrp_script", "weight", A, "-20"),
    k("vrrp_script", "rise", A, "2"),
    k("vrrp_script", "fall", A, "2"),
    k("vrrp_script", "user", A, "nobody"),
    k("vrrp_script", "init_fail", A, ""),

    k("vrrp_instance", "state", A, "MASTER"),
    k("vrrp_instance", "interface", A, "eth1"),
    k("vrrp_instance", "virtual_router_id", A, "8"),
    k("vrrp_instance", "priority", A, "150"),
    k("vrrp_instance", "advert_int", A, "2"),
    k("vrrp_instance", "version", A, "3"),
    k("vrrp_instance", "nopreempt", A, ""),
    k("vrrp_instance", "preempt", A, ""),
    k("vrrp_instance", "preempt_delay", A, "10"),
    k("vrrp_instance", "mcast_src_ip", A, "10.0.0.2"),
    k("vrrp_instance", "unicast_src_ip", A, "10.0.0.2"),
    k("vrrp_instance", "unicast_peer", A, "{\n  10.0.0.3\n }"),
    k("vrrp_instance", "authentication", A, "{\n  auth_type PASS\n  auth_pass secret\n }"),
    k("vrrp_instance", "virtual_ipaddress", A, "{\n  10.0.0.5/24 dev eth0\n }"),
    k("vrrp_instance", "virtual_ipaddress_excluded", A, "{\n  10.0.0.6\n }"),
    k("vrrp_instance", "track_script", A, "{\n  s\n }"),
    k("vrrp_instance", "track_interface", A, "{\n  eth1 weight -10\n }"),
    k("vrrp_instance", "garp_master_delay", A, "2"),
    k("vrrp_instance", "garp_master_repeat", A, "3"),
    k("vrrp_instance", "garp_master_refresh", A, "60"),
    k("vrrp_instance", "garp_master_refresh_repeat", A, "2"),
    k("vrrp_instance", "notify_master", A, "/bin/true"),
    k("vrrp_instance", "notify_backup", A, "/bin/true"),
    k("vrrp_instance", "notify_fault", A, "/bin/true"),
    k("vrrp_instance", "notify_stop", A, "/bin/true"),
    k("vrrp_instance", "notify", A, "/bin/true"),
    k("vrrp_instance", "dont_track_primary", A, ""),
    k("vrrp_instance", "accept", A, ""),
    k("vrrp_instance", "no_accept", R, ""),
    k("vrrp_instance", "smtp_alert", I, ""),
    k("vrrp_instance", "use_vmac", R, ""),
    k("vrrp_instance", "vmac_xmit_base", I, ""),
    k("vrrp_instance", "native_ipv6", I, ""),
    k("vrrp_instance", "skip_check_adv_addr", A, ""),
    k("vrrp_instance", "strict_mode", R, ""),
    k("vrrp_instance", "debug", I, ""),
    k("vrrp_instance", "garp_lower_prio_delay", A, "5"),
    k("vrrp_instance", "garp_lower_prio_repeat", A, "5"),
    k("vrrp_instance", "lower_prio_no_advert", A, ""),
    k("vrrp_instance", "higher_prio_send_advert", A, ""),
    k("vrrp_instance", "kernel_rx_buf_size", I, "0"),
    k("vrrp_instance", "virtual_routes", A, "{\n  10.9.0.0/24 dev eth0\n }"),
    k("vrrp_instance", "virtual_rules", A, "{\n  from 10.9.0.0/24 table 100\n }"),
    k("vrrp_instance", "track_file", A, "{\n  f weight 10 reverse\n }"),
    k("vrrp_instance", "track_process", A, "{\n  p weight 5 reverse\n }"),
    k("vrrp_instance", "notify_master_rx_lower_pri", A, "/bin/true"),

    k("authentication", "auth_type", A, "PASS"),
    k("authentication", "auth_type", R, "AH"),
    k("authentication", "auth_pass", A, "secret"),

    k("vrrp_sync_group", "group", A, "{\n  V\n }"),
    k("vrrp_sync_group", "notify_master", A, "/bin/true"),
    k("vrrp_sync_group", "notify_backup", A, "/bin/true"),
    k("vrrp_sync_group", "notify_fault", A, "/bin/true"),
    k("vrrp_sync_group", "notify_stop", A, "/bin/true"),
    k("vrrp_sync_group", "notify", A, "/bin/true"),
    k("vrrp_sync_group", "smtp_alert", I, ""),
    k("vrrp_sync_group", "global_tracking", A, ""),
    k("vrrp_sync_group", "sync_group_tracking_weight", A, ""),
    k("vrrp_sync_group", "track_script", A, "{\n  s weight -5\n }"),
    k("vrrp_sync_group", "track_interface", A, "{\n  eth1\n }"),
    k("vrrp_sync_group", "track_file", A, "{\n  f\n }"),
    k("vrrp_sync_group", "track_bfd", I, "{\n }"),
    k("vrrp_sync_group", "track_process", A, "{\n  p\n }"),
    k("vrrp_sync_group", "notify_priority_changes", I, ""),

    k("virtual_server", "fwmark", R, "virtual_server fwmark 1 {\n}"),
    k("virtual_server", "group", A, "virtual_server group web {\n}\nvirtual_server_group web {\n 10.0.0.9 80\n}"),
    k("virtual_server", "delay_loop", A, "6"),
    k("virtual_server", "lb_algo", A, "rr"),
    k("virtual_server", "lvs_sched", A, "wrr"),
    k("virtual_server", "lb_kind", A, "DR"),
    k("virtual_server", "lb_kind", R, "NAT"),
    k("virtual_server", "lb_kind", R, "TUN"),
    k("virtual_server", "lvs_method", A, "DR"),
    k("virtual_server", "persistence_timeout", A, "300"),
    k("virtual_server", "protocol", A, "UDP"),
    k("virtual_server", "protocol", R, "SCTP"),
    k("virtual_server", "sorry_server", A, "10.0.0.99 80"),
    k("virtual_server", "alpha", A, ""),
    k("virtual_server", "real_server", A, "10.0.0.7 80 {\n }"),
    k("virtual_server", "connect_timeout", A, "3"),
    k("virtual_server", "retry", A, "2"),
    k("virtual_server", "nb_get_retry", A, "2"),
    k("virtual_server", "delay_before_retry", A, "2"),
    k("virtual_server", "quorum", A, "1"),
    k("virtual_server", "quorum_up", A, "/bin/true"),
    k("virtual_server", "quorum_down", A, "/bin/true"),
    k("virtual_server", "hysteresis", A, "0"),
    k("virtual_server", "omega", I, ""),
    k("virtual_server", "ha_suspend", I, ""),
    k("virtual_server", "virtualhost", A, "www.example.com"),
    k("virtual_server", "ops", I, ""),
    k("virtual_server", "smtp_alert", I, ""),
    k("virtual_server", "lb_algo_flags", I, ""),
    k("virtual_server", "persistence_granularity", I, "255.255.255.0"),
    k("virtual_server", "notify_up", I, "/bin/true"),
    k("virtual_server", "notify_down", I, "/bin/true"),
    k("virtual_server", "uthreshold", I, "0"),
    k("virtual_server", "lthreshold", I, "0"),
    k("virtual_server", "warmup", I, "0"),
    k("virtual_server", "sh-port", I, ""),
    k("virtual_server", "sh-fallback", I, ""),

    k("real_server", "weight", A, "3"),
    k("real_server", "inhibit_on_failure", A, ""),
    k("real_server", "TCP_CHECK", A, "{\n  }"),
    k("real_server", "HTTP_GET", A, "{\n   url {\n    path /\n   }\n  }"),
    k("real_server", "MISC_CHECK", A, "{\n   misc_path /bin/true\n  }"),
    k("real_server", "connect_timeout", A, "3"),
    k("real_server", "retry", A, "2"),
    k("real_server", "nb_get_retry", A, "2"),
    k("real_server", "delay_before_retry", A, "2"),
    k("real_server", "SSL_GET", A, "{\n   url {\n    path /\n   }\n  }"),
    k("real_server", "SMTP_CHECK", A, "{\n  }"),
    k("real_server", "DNS_CHECK", A, "{\n  }"),
    k("real_server", "UDP_CHECK", A, "{\n  }"),
    k("real_server", "PING_CHECK", A, "{\n  }"),
    k("real_server", "FILE_CHECK", A, "{\n   track_file f\n   weight 10 reverse\n  }"),
    k("real_server", "BFD_CHECK", I, "{\n  }"),
    k("real_server", "notify_up", I, "/bin/true"),
    k("real_server", "notify_down", I, "/bin/true"),
    k("real_server", "uthreshold", I, "0"),
    k("real_server", "lthreshold", I, "0"),
    k("real_server", "delay_loop", I, "6"),
    k("real_server", "alpha", I, ""),
    k("real_server", "smtp_alert", I, ""),
    k("real_server", "virtualhost", A, "www.example.com"),
    k("real_server", "warmup", I, "0"),

    k("TCP_CHECK", "connect_ip", A, "10.0.0.8"),
    k("TCP_CHECK", "connect_port", A, "8080"),
    k("TCP_CHECK", "bindto", A, "10.0.0.2"),
    k("TCP_CHECK", "connect_timeout", A, "3"),
    k("TCP_CHECK", "retry", A, "2"),
    k("TCP_CHECK", "nb_get_retry", A, "2"),
    k("TCP_CHECK", "delay_before_retry", A, "2"),
    k("TCP_CHECK", "warmup", I, "0"),
    k("TCP_CHECK", "bind_port", I, "1000"),
    k("TCP_CHECK", "bind_if", I, "eth0"),
    k("TCP_CHECK", "fwmark", I, "1"),
    k("TCP_CHECK", "alpha", I, ""),

    k("HTTP_GET", "url", A, "{\n    path /health\n   }"),
    k("HTTP_GET", "connect_ip", A, "10.0.0.8"),
    k("HTTP_GET", "connect_port", A, "8080"),
    k("HTTP_GET", "bindto", A, "10.0.0.2"),
    k("HTTP_GET", "connect_timeout", A, "3"),
    k("HTTP_GET", "retry", A, "2"),
    k("HTTP_GET", "nb_get_retry", A, "2"),
    k("HTTP_GET", "delay_before_retry", A, "2"),
    k("HTTP_GET", "warmup", I, "0"),
    k("HTTP_GET", "bind_port", I, "1000"),
    k("HTTP_GET", "bind_if", I, "eth0"),
    k("HTTP_GET", "fwmark", I, "1"),
    k("HTTP_GET", "alpha", I, ""),

    k("url", "path", A, "/health"),
    k("url", "status_code", A, "200-299"),
    k("url", "digest", A, "9b3a0c4e0e8b5d5b7f2a1c3d4e5f6a7b"),
    k("url", "virtualhost", A, "www.example.com"),
    k("url", "regex", I, "ok"),
    k("url", "regex_no_match", I, ""),
    k("url", "regex_options", I, ""),

    k("virtual_server_group", "fwmark", R, "1"),

    k("UDP_CHECK", "payload", A, "0a1b 2c"),
    k("UDP_CHECK", "require_reply", A, "0a1b xx"),
    k("UDP_CHECK", "min_reply_length", A, "2"),
    k("UDP_CHECK", "max_reply_length", A, "64"),
    k("DNS_CHECK", "type", A, "A"),
    k("DNS_CHECK", "name", A, "example.com"),
    k("SMTP_CHECK", "helo_name", A, "lb1.example.com"),
    k("SMTP_CHECK", "host", R, "{\n    connect_ip 10.0.0.8\n   }"),

    k("FILE_CHECK", "track_file", A, "f"),
    k("FILE_CHECK", "weight", A, "-5 reverse"),

    k("MISC_CHECK", "misc_path", A, "\"/bin/true x\""),
    k("MISC_CHECK", "misc_timeout", A, "5"),
    k("MISC_CHECK", "misc_dynamic", A, ""),
    k("MISC_CHECK", "user", A, "nobody"),
    k("MISC_CHECK", "warmup", I, "0"),
    k("MISC_CHECK", "retry", I, "2"),
    k("MISC_CHECK", "delay_before_retry", I, "2"),

    k("UDP_CHECK", "connect_ip", A, "10.0.0.8"),
    k("UDP_CHECK", "connect_port", A, "8080"),
    k("UDP_CHECK", "bindto", A, "10.0.0.2"),
    k("UDP_CHECK", "connect_timeout", A, "3"),
    k("UDP_CHECK", "retry", A, "2"),
    k("UDP_CHECK", "nb_get_retry", A, "2"),
    k("UDP_CHECK", "delay_before_retry", A, "2"),
    k("UDP_CHECK", "warmup", I, "0"),
    k("UDP_CHECK", "bind_port", I, "1000"),
    k("UDP_CHECK", "bind_if", I, "eth0"),
    k("UDP_CHECK", "fwmark", I, "1"),
    k("UDP_CHECK", "alpha", I, ""),
    k("PING_CHECK", "connect_ip", A, "10.0.0.8"),
    k("PING_CHECK", "connect_port", A, "8080"),
    k("PING_CHECK", "bindto", A, "10.0.0.2"),
    k("PING_CHECK", "connect_timeout", A, "3"),
    k("PING_CHECK", "retry", A, "2"),
    k("PING_CHECK", "nb_get_retry", A, "2"),
    k("PING_CHECK", "delay_before_retry", A, "2"),
    k("PING_CHECK", "warmup", I, "0"),
    k("PING_CHECK", "bind_port", I, "1000"),
    k("PING_CHECK", "bind_if", I, "eth0"),
    k("PING_CHECK", "fwmark", I, "1"),
    k("PING_CHECK", "alpha", I, ""),
    k("DNS_CHECK", "connect_ip", A, "10.0.0.8"),
    k("DNS_CHECK", "connect_port", A, "8080"),
    k("DNS_CHECK", "bindto", A, "10.0.0.2"),
    k("DNS_CHECK", "connect_timeout", A, "3"),
    k("DNS_CHECK", "retry", A, "2"),
    k("DNS_CHECK", "nb_get_retry", A, "2"),
    k("DNS_CHECK", "delay_before_retry", A, "2"),
    k("DNS_CHECK", "warmup", I, "0"),
    k("DNS_CHECK", "bind_port", I, "1000"),
    k("DNS_CHECK", "bind_if", I, "eth0"),
    k("DNS_CHECK", "fwmark", I, "1"),
    k("DNS_CHECK", "alpha", I, ""),
    k("SMTP_CHECK", "connect_ip", A, "10.0.0.8"),
    k("SMTP_CHECK", "connect_port", A, "8080"),
    k("SMTP_CHECK", "bindto", A, "10.0.0.2"),
    k("SMTP_CHECK", "connect_timeout", A, "3"),
    k("SMTP_CHECK", "retry", A, "2"),
    k("SMTP_CHECK", "nb_get_retry", A, "2"),
    k("SMTP_CHECK", "delay_before_retry", A, "2"),
    k("SMTP_CHECK", "warmup", I, "0"),
    k("SMTP_CHECK", "bind_port", I, "1000"),
    k("SMTP_CHECK", "bind_if", I, "eth0"),
    k("SMTP_CHECK", "fwmark", I, "1"),
    k("SMTP_CHECK", "alpha", I, ""),
];

#[cfg(test)]
/// The README's table (between its `keywords` markers), one row a keyword
/// and block, the probes' values left out.
pub fn readme_table() -> String {
    let mut out = String::from("| block | keyword | xdpvs |\n|---|---|---|\n");
    let mut rows: Vec<(&str, &str, String)> = Vec::new();
    for k in KEYWORDS {
        let class = match KEYWORDS
            .iter()
            .filter(|o| o.block == k.block && o.name == k.name)
            .map(|o| o.class)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => one.name().to_string(),
            // lb_kind DR / NAT: by value.
            _ => format!("{} `{}`", k.class.name(), k.probe),
        };
        let row = (k.block, k.name, class);
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    for (block, name, class) in rows {
        out.push_str(&format!("| {block} | `{name}` | {class} |\n"));
    }
    out
}
