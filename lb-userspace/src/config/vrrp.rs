//! `global_defs`, `vrrp_script`, `vrrp_instance` and `vrrp_sync_group`.
//!
//! Defaults are keepalived's, from keepalived.conf(5) (2.x): vrrp_script
//! `interval` 1 second, `rise`/`fall` 1, `weight` 0; vrrp_instance
//! `priority` 100, `advert_int` 1, `vrrp_version` 2, preemption on; the
//! `garp_master_*` defaults are in `GarpSettings::default`. A script's
//! `timeout` is not given there; keepalived falls back to the interval.

use std::{collections::HashSet, net::IpAddr, time::Duration};

use super::{
    check::{RefKind, Reference},
    diag::{Diagnostics, Location},
    keywords,
    model::{
        Announce, AnnounceRequire, Auth, Capacity, FileCheck, FlowSync, GarpGroup, GarpPacing,
        GarpSettings, GlobalDefs, HOST_SCRIPT_TIMEOUT, HostScript, InitialState, LvsTimeouts,
        Notify, ParamMatch, ScriptUser, SyncGroup, TrackFile, TrackFileInit, TrackFileRef,
        TrackInterface, TrackProcess, TrackScript, VipAddress, VipOptions, VrrpInstance,
        VrrpScript,
    },
    tree::Node,
    values::{
        command, flag, int, ip, ip_text, notify_command, one, scope, secs, switch, word_and_user,
    },
};

/// Reads one `global_defs` block into `g` (a file may have several).
pub fn global_defs(n: &Node, g: &mut GlobalDefs, d: &mut Diagnostics) {
    for k in n.block.iter().flatten() {
        if super::mail::global(k, g, d) {
            continue;
        }
        match k.keyword.as_str() {
            "vrrp_version" => g.vrrp_version = int(k, 2u8, 3u8, d).unwrap_or(2),
            "xdpvs_max_services" => capacity(k, Capacity::SERVICES, &mut g.capacity.services, d),
            "xdpvs_max_reals" => capacity(k, Capacity::REALS, &mut g.capacity.reals, d),
            "xdpvs_max_flows" => capacity(k, Capacity::FLOWS, &mut g.capacity.flows, d),
            "vrrp_strict" => {
                flag(k, d);
                g.strict = Some(k.at.clone());
            }
            "net_namespace" => g.net_namespace = net_namespace(k, g.net_namespace.take(), d),
            "net_namespace_ipvs" => refuse_net_namespace_ipvs(k, d),
            "vrrp_garp_master_delay" => garp_secs(k, &mut g.garp.master_delay, d),
            "vrrp_garp_master_repeat" => repeat(k, &mut g.garp.master_repeat, d),
            // keepalived: one message, no second batch, no refresh; a
            // setting made before it is kept.
            "vrrp_min_garp" => {
                if switch(k, d) == Some(true) {
                    let default = GarpSettings::default();
                    if g.garp.master_repeat == default.master_repeat {
                        g.garp.master_repeat = 1;
                    }
                    if g.garp.master_delay == default.master_delay {
                        g.garp.master_delay = Duration::ZERO;
                    }
                    g.garp.master_refresh = None;
                }
            }
            "vrrp_garp_master_refresh" => {
                g.garp.master_refresh = secs(k, 0, d).filter(|r| !r.is_zero());
            }
            "vrrp_garp_master_refresh_repeat" => repeat(k, &mut g.garp.master_refresh_repeat, d),
            "vrrp_garp_lower_prio_delay" => g.garp.lower_prio_delay = secs(k, 0, d),
            "vrrp_garp_lower_prio_repeat" => g.garp.lower_prio_repeat = int(k, 0, 255, d),
            "vrrp_garp_interval" => g.garp_pacing.garp = pacing(k, d),
            "vrrp_gna_interval" => g.garp_pacing.gna = pacing(k, d),
            "vrrp_lower_prio_no_advert" => {
                g.lower_prio_no_advert = switch(k, d).unwrap_or(g.lower_prio_no_advert)
            }
            "vrrp_higher_prio_send_advert" => {
                g.higher_prio_send_advert = switch(k, d).unwrap_or(g.higher_prio_send_advert)
            }
            "xdpvs_announce" => g.announce = Some(announce(k, d)),
            "lvs_sync_daemon" => g.sync = lvs_sync_daemon(k, d),
            "xdpvs_sync_peers" => {
                let peers = k
                    .block
                    .iter()
                    .flatten()
                    .filter_map(|p| match ip_text(&p.keyword) {
                        Some(a) => Some(a),
                        None => {
                            d.error(
                                &p.at,
                                format!("xdpvs_sync_peers: {} is not an IP address", p.keyword),
                            );
                            None
                        }
                    })
                    .collect();
                g.sync_peers = Some((peers, k.at.clone()));
            }
            "startup_script" => g.startup_script = host_script(k, d),
            "shutdown_script" => g.shutdown_script = host_script(k, d),
            "startup_script_timeout" | "shutdown_script_timeout" => {
                // Read once every line is: the timeout may come first.
            }
            "lvs_timeouts" => g.lvs_timeouts = lvs_timeouts(k, d),
            "rs_init_notifies" => g.rs_init_notifies = flag(k, d),
            "disable_local_igmp" => g.disable_local_igmp = flag(k, d),
            "default_interface" => g.default_interface = one(k, d).map(String::from),
            _ if super::fifo::read(k, &mut g.notify_fifos, d) => {}
            // keepalived keeps the longer when both are given; so does `ha`.
            "vrrp_startup_delay" => g.vrrp_startup_delay = secs(k, 1, d),
            "vrrp_delay_after_boot" => g.vrrp_delay_after_boot = secs(k, 1, d),
            "vrrp_down_timer_adverts" => {
                g.vrrp_down_timer_adverts = int(k, 1, 100, d).unwrap_or(g.vrrp_down_timer_adverts)
            }
            "enable_script_security" => g.enable_script_security = flag(k, d),
            "script_user" => g.script_user = script_user(k, d),
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = flag(k, d),
            "vrrp_mcast_group4" => match ip(k, d) {
                Some(IpAddr::V4(a)) if a.is_multicast() => g.vrrp_mcast_group4 = Some(a),
                Some(a) => d.error(
                    &k.at,
                    format!("vrrp_mcast_group4 {a}: not an IPv4 multicast address"),
                ),
                None => {}
            },
            "vrrp_mcast_group6" => match ip(k, d) {
                Some(IpAddr::V6(a)) if a.is_multicast() => g.vrrp_mcast_group6 = Some(a),
                Some(a) => d.error(
                    &k.at,
                    format!("vrrp_mcast_group6 {a}: not an IPv6 multicast address"),
                ),
                None => {}
            },
            _ => keywords::unhandled("global_defs", k, d),
        }
    }
    host_script_timeouts(n, g, d);
    super::fifo::finish(&mut g.notify_fifos, d);
}

/// `startup_script` / `shutdown_script SCRIPT [USER [GROUP]]`; the timeout
/// is set by [`host_script_timeouts`].
fn host_script(k: &Node, d: &mut Diagnostics) -> Option<HostScript> {
    let (command, user) = match word_and_user(k) {
        Ok(words) => words,
        Err(0) => {
            d.error(&k.at, format!("{} needs a script", k.keyword));
            return None;
        }
        Err(_) => {
            d.error(&k.at, format!("{} needs SCRIPT [USER [GROUP]]", k.keyword));
            return None;
        }
    };
    Some(HostScript {
        command,
        user,
        timeout: HOST_SCRIPT_TIMEOUT,
        location: k.at.clone(),
    })
}

/// `startup_script_timeout` / `shutdown_script_timeout SECS` (1 to 1000, as
/// keepalived), wherever they stand in `global_defs`.
fn host_script_timeouts(n: &Node, g: &mut GlobalDefs, d: &mut Diagnostics) {
    for k in n.block.iter().flatten() {
        let script = match k.keyword.as_str() {
            "startup_script_timeout" => &mut g.startup_script,
            "shutdown_script_timeout" => &mut g.shutdown_script,
            _ => continue,
        };
        let Some(secs) = int(k, 1u64, 1000, d) else {
            continue;
        };
        match script {
            Some(s) => s.timeout = Duration::from_secs(secs),
            None => d.warn(
                &k.at,
                format!(
                    "{} without {}, ignored",
                    k.keyword,
                    k.keyword.trim_end_matches("_timeout")
                ),
            ),
        }
    }
}

/// `lvs_timeouts [tcp S] [tcpfin S] [udp S]`, as keepalived reads it.
fn lvs_timeouts(k: &Node, d: &mut Diagnostics) -> LvsTimeouts {
    let mut t = LvsTimeouts::default();
    let mut words = k.args.iter();
    while let Some(w) = words.next() {
        let slot = match w.text.as_str() {
            "tcp" => &mut t.tcp,
            "tcpfin" => &mut t.tcpfin,
            "udp" => &mut t.udp,
            other => {
                d.error(
                    &k.at,
                    format!("lvs_timeouts: unknown timeout {other:?} (tcp, tcpfin or udp)"),
                );
                return LvsTimeouts::default();
            }
        };
        // IPVS's own limit: 86400 * 31 s.
        match words.next().map(|v| v.text.parse::<u32>()) {
            Some(Ok(v)) if (1..=86400 * 31).contains(&v) => *slot = Some(v),
            _ => {
                d.error(
                    &k.at,
                    format!("lvs_timeouts {}: needs seconds from 1 to 2678400", w.text),
                );
                return LvsTimeouts::default();
            }
        }
    }
    t
}

/// `lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [id N] [maxlen N] [port N]
/// [ttl N] [group ADDR]`, keepalived's words.
fn lvs_sync_daemon(n: &Node, d: &mut Diagnostics) -> Option<FlowSync> {
    let Some(interface) = n.arg(0) else {
        d.error(&n.at, "lvs_sync_daemon needs an interface");
        return None;
    };
    let mut sync = FlowSync::on(interface, &n.at);
    let mut rest = n.args[1..].iter().map(|t| t.text.as_str()).peekable();
    if let Some(first) = rest.peek()
        && !matches!(*first, "id" | "maxlen" | "port" | "ttl" | "group")
    {
        sync.instance = Some(first.to_string());
        rest.next();
    }
    while let Some(option) = rest.next() {
        let Some(value) = rest.next() else {
            d.error(&n.at, format!("lvs_sync_daemon: {option} needs a value"));
            break;
        };
        let bad = |d: &mut Diagnostics, what: &str| {
            d.error(&n.at, format!("lvs_sync_daemon: {option} {value}: {what}"))
        };
        match option {
            "id" => match value.parse() {
                Ok(id) => sync.id = id,
                Err(_) => bad(d, "must be a whole number from 0 to 255"),
            },
            "port" => match value.parse() {
                Ok(p) if p > 0 => sync.port = p,
                _ => bad(d, "must be a port from 1 to 65535"),
            },
            "group" => match value.parse::<std::net::Ipv4Addr>() {
                Ok(g) if g.is_multicast() => sync.group = g,
                _ => bad(d, "must be an IPv4 multicast address"),
            },
            "maxlen" | "ttl" => d.note(
                &n.at,
                format!(
                    "lvs_sync_daemon: {option} {value} is not used: xdpvs sends datagrams of at \
                     most 1346 bytes, with TTL 1 to the multicast group"
                ),
            ),
            other => d.error(&n.at, format!("lvs_sync_daemon: unknown option {other}")),
        }
    }
    Some(sync)
}

/// Joins `xdpvs_sync_peers` to `lvs_sync_daemon`, once all global_defs are read.
/// keepalived 1.x's `lvs_sync_daemon_interface IF` in a vrrp_instance: read
/// as `lvs_sync_daemon IF INSTANCE` in global_defs, with a warning naming it.
pub fn old_sync_daemon(nodes: &[Node], g: &mut GlobalDefs, d: &mut Diagnostics) {
    for n in nodes.iter().filter(|n| n.keyword == "vrrp_instance") {
        let lines = n.block.iter().flatten();
        for k in lines.filter(|k| k.keyword == "lvs_sync_daemon_interface") {
            let (Some(interface), Some(instance)) = (k.arg(0), n.arg(0)) else {
                d.error(&k.at, "lvs_sync_daemon_interface needs an interface");
                continue;
            };
            if let Some(s) = &g.sync {
                d.error(
                    &k.at,
                    format!(
                        "lvs_sync_daemon_interface: flow sync is already set by lvs_sync_daemon at {}",
                        s.location
                    ),
                );
                continue;
            }
            d.warn(
                &k.at,
                format!(
                    "lvs_sync_daemon_interface is keepalived 1.x's spelling: read as \
                     `lvs_sync_daemon {interface} {instance}` in global_defs"
                ),
            );
            g.sync = Some(FlowSync {
                instance: Some(instance.to_string()),
                ..FlowSync::on(interface, &k.at)
            });
        }
    }
}

pub fn sync_peers(g: &mut GlobalDefs, d: &mut Diagnostics) {
    match (&mut g.sync, g.sync_peers.take()) {
        (Some(sync), Some((peers, _))) => sync.peers = peers,
        (None, Some((_, at))) => d.error(
            &at,
            "xdpvs_sync_peers without lvs_sync_daemon: add `lvs_sync_daemon INTERFACE` to global_defs",
        ),
        _ => {}
    }
}

/// `xdpvs_announce { table N  protocol N  require any|all }`.
fn announce(n: &Node, d: &mut Diagnostics) -> Announce {
    let mut a = Announce::default();
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "table" => match int(k, 1u32, u32::MAX, d) {
                // The kernel's default, main and local tables.
                Some(t @ 253..=255) => d.error(
                    &k.at,
                    format!("table {t}: a kernel table (default, main, local); choose a table of its own"),
                ),
                Some(t) => a.table = t,
                None => {}
            },
            // Below 5 are the kernel's own (redirect, kernel, boot, static).
            "protocol" => a.protocol = int(k, 5u8, 255u8, d).unwrap_or(a.protocol),
            "require" => match one(k, d) {
                Some("any") => a.require = AnnounceRequire::Any,
                Some("all") => a.require = AnnounceRequire::All,
                Some(other) => d.error(
                    &k.at,
                    format!("require {other}: must be `any` or `all` (of a VIP's virtual_servers)"),
                ),
                None => {}
            },
            other => d.error(&k.at, format!("unknown keyword {other} in xdpvs_announce")),
        }
    }
    a
}

fn garp_secs(k: &Node, slot: &mut Duration, d: &mut Diagnostics) {
    if let Some(v) = secs(k, 0, d) {
        *slot = v;
    }
}

/// A gratuitous batch's size; 0 is read as 1, as keepalived does.
fn repeat(k: &Node, slot: &mut u32, d: &mut Diagnostics) {
    match int(k, 0, 255, d) {
        Some(0) => {
            d.warn(
                &k.at,
                format!("{} 0: read as 1, as keepalived does", k.keyword),
            );
            *slot = 1;
        }
        Some(n) => *slot = n,
        None => {}
    }
}

/// `vrrp_garp_interval`, `garp_interval` and the `gna` ones: seconds, to
/// the microsecond, more than 0.
fn pacing(k: &Node, d: &mut Diagnostics) -> Option<Duration> {
    let v = secs(k, 0, d)?;
    if v < Duration::from_micros(1) {
        d.error(&k.at, format!("{}: must be more than 0 seconds", k.keyword));
        return None;
    }
    if v >= Duration::from_secs(1) {
        d.note(
            &k.at,
            format!(
                "{} {}: very large (keepalived says so too)",
                k.keyword,
                v.as_secs_f64()
            ),
        );
    }
    Some(v)
}

/// `garp_group { garp_interval S  gna_interval S  interface IF  interfaces { IF ... } }`.
/// `taken`: interfaces earlier groups named (one group per interface).
pub fn garp_group(n: &Node, taken: &mut HashSet<String>, d: &mut Diagnostics) -> Option<GarpGroup> {
    let mut g = GarpGroup {
        pacing: GarpPacing::default(),
        interfaces: Vec::new(),
        location: n.at.clone(),
    };
    let mut add =
        |g: &mut GarpGroup, dev: &str, at: &super::diag::Location, d: &mut Diagnostics| {
            if taken.insert(dev.to_string()) {
                g.interfaces.push(dev.to_string());
            } else {
                d.warn(
                    at,
                    format!("garp_group: {dev} is already in a garp_group; ignored here"),
                );
            }
        };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "garp_interval" => g.pacing.garp = pacing(k, d),
            "gna_interval" => g.pacing.gna = pacing(k, d),
            "interface" => {
                if let Some(dev) = one(k, d) {
                    add(&mut g, dev, &k.at, d);
                }
            }
            "interfaces" => {
                for i in k.block.iter().flatten() {
                    for dev in std::iter::once(&i.keyword).chain(i.args.iter().map(|a| &a.text)) {
                        add(&mut g, dev, &i.at, d);
                    }
                }
            }
            other => d.error(&k.at, format!("unknown keyword {other} in garp_group")),
        }
    }
    if g.pacing == GarpPacing::default() {
        d.warn(
            &n.at,
            "garp_group has no garp_interval or gna_interval; ignored",
        );
        return None;
    }
    if g.interfaces.is_empty() {
        d.warn(&n.at, "garp_group names no interface; ignored");
        return None;
    }
    Some(g)
}

/// `static_ipaddress { IP[/prefix] dev IF ... }`: `virtual_ipaddress` lines
/// that must name their interface.
pub fn static_addresses(
    n: &Node,
    default_interface: Option<&str>,
    d: &mut Diagnostics,
) -> Vec<VipAddress> {
    n.block
        .iter()
        .flatten()
        .filter_map(|k| {
            let mut v = vip(k, "static_ipaddress", d)?;
            if v.dev.is_none() {
                v.dev = default_interface.map(String::from);
            }
            if v.dev.is_none() {
                d.error(
                    &k.at,
                    format!(
                        "static_ipaddress {}: needs `dev INTERFACE`, or `default_interface` in global_defs",
                        k.keyword
                    ),
                );
                return None;
            }
            Some(v)
        })
        .collect()
}

/// `track_file NAME { file PATH  weight N [reverse]  init_file [VALUE] [overwrite] }`
/// (`vrrp_track_file` is keepalived's older name).
pub fn track_file(n: &Node, d: &mut Diagnostics) -> Option<TrackFile> {
    let name = name(n, &n.keyword, d)?;
    let mut t = TrackFile {
        name,
        path: String::new(),
        weight: 1,
        reverse: false,
        init: None,
        location: n.at.clone(),
    };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "file" => t.path = one(k, d).unwrap_or_default().to_string(),
            "weight" => {
                t.weight = int_arg(k, 0, -254, 254, d).unwrap_or(1);
                match k.arg(1) {
                    None => {}
                    Some("reverse") => t.reverse = true,
                    Some(other) => d.error(
                        &k.at,
                        format!("weight: unknown option {other} (expected reverse)"),
                    ),
                }
            }
            "init_file" => {
                let mut init = TrackFileInit {
                    value: 0,
                    overwrite: false,
                };
                for a in &k.args {
                    match a.text.as_str() {
                        "overwrite" => init.overwrite = true,
                        v => match v.parse::<i32>() {
                            Ok(x) if (-254..=254).contains(&x) => init.value = x,
                            _ => d.error(&k.at, format!("init_file {v}: expected a number from -254 to 254, or overwrite")),
                        },
                    }
                }
                t.init = Some(init);
            }
            other => d.error(
                &k.at,
                format!("unknown keyword {other} in {} {}", n.keyword, t.name),
            ),
        }
    }
    if t.path.is_empty() {
        d.error(&n.at, format!("{} {} needs `file PATH`", n.keyword, t.name));
        return None;
    }
    Some(t)
}

/// Argument `i` of `k` as an integer within `lo..=hi`.
fn int_arg(k: &Node, i: usize, lo: i32, hi: i32, d: &mut Diagnostics) -> Option<i32> {
    let Some(v) = k.arg(i) else {
        d.error(&k.at, format!("{} needs a value", k.keyword));
        return None;
    };
    match v.parse::<i32>() {
        Ok(x) if (lo..=hi).contains(&x) => Some(x),
        _ => {
            d.error(
                &k.at,
                format!(
                    "{} {v}: must be a whole number from {lo} to {hi}",
                    k.keyword
                ),
            );
            None
        }
    }
}

/// The lines of a `track_file { NAME [weight N [reverse|noreverse]] }` block.
fn track_file_refs(
    k: &Node,
    from: &str,
    refs: &mut Vec<Reference>,
    d: &mut Diagnostics,
) -> Vec<TrackFileRef> {
    tracked_refs(k, from, RefKind::TrackFile, refs, d)
}

/// The lines of a `track_file` or `track_process` block: `NAME [weight N
/// [reverse|noreverse]]`.
fn tracked_refs(
    k: &Node,
    from: &str,
    kind: RefKind,
    refs: &mut Vec<Reference>,
    d: &mut Diagnostics,
) -> Vec<TrackFileRef> {
    let what = &k.keyword;
    let mut out: Vec<TrackFileRef> = Vec::new();
    for t in k.block.iter().flatten() {
        let mut r = TrackFileRef {
            name: t.keyword.clone(),
            weight: None,
            reverse: None,
        };
        match t
            .args
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => {}
            ["weight", w, rest @ ..] => {
                r.weight = int_arg(t, 1, -254, 254, d);
                match rest {
                    [] => {}
                    ["reverse"] => r.reverse = Some(true),
                    ["noreverse"] => r.reverse = Some(false),
                    _ => d.error(
                        &t.at,
                        format!(
                            "{what} {} weight {w}: expected reverse or noreverse after it",
                            r.name
                        ),
                    ),
                }
            }
            _ => {
                d.error(
                    &t.at,
                    format!("{what} {}: expected `NAME [weight N [reverse]]`", r.name),
                );
                continue;
            }
        }
        if out.iter().any(|o| o.name == r.name) {
            d.warn(
                &t.at,
                format!("{from}: {what} {} listed twice; the first is used", r.name),
            );
            continue;
        }
        refs.push(Reference {
            kind,
            from: from.to_string(),
            name: r.name.clone(),
            at: t.at.clone(),
        });
        out.push(r);
    }
    out
}

fn capacity(k: &Node, (_, lo, hi): (&str, u32, u32), slot: &mut u32, d: &mut Diagnostics) {
    if let Some(v) = int(k, lo, hi, d) {
        *slot = v;
    }
}

/// `script_user USER [GROUP]`, a vrrp_script's or MISC_CHECK's `user USER [GROUP]`.
pub fn script_user(k: &Node, d: &mut Diagnostics) -> Option<ScriptUser> {
    match k.args.as_slice() {
        [user] => Some(ScriptUser {
            user: user.text.clone(),
            group: None,
        }),
        [user, group] => Some(ScriptUser {
            user: user.text.clone(),
            group: Some(group.text.clone()),
        }),
        _ => {
            d.error(&k.at, format!("{} needs USER [GROUP]", k.keyword));
            None
        }
    }
}

fn name(n: &Node, what: &str, d: &mut Diagnostics) -> Option<String> {
    match n.args.as_slice() {
        [one] => Some(one.text.clone()),
        _ => {
            d.error(&n.at, format!("{what} needs one name"));
            None
        }
    }
}

pub fn vrrp_script(n: &Node, d: &mut Diagnostics) -> Option<VrrpScript> {
    let name = name(n, "vrrp_script", d)?;
    let mut script = None;
    let (mut interval, mut timeout) = (Duration::from_secs(1), None);
    let mut s = VrrpScript {
        name,
        script: String::new(),
        interval,
        timeout: interval,
        weight: 0,
        rise: 1,
        fall: 1,
        init_fail: false,
        user: None,
        location: n.at.clone(),
    };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "script" => script = command(k, d),
            "interval" => interval = secs(k, 1, d).unwrap_or(interval),
            "timeout" => timeout = secs(k, 1, d),
            "weight" => {
                s.weight = int(k, -253, 253, d).unwrap_or(0);
                if k.arg(1) == Some("reverse") {
                    d.warn(
                        &k.at,
                        "weight ... reverse is not supported yet; read as a plain weight",
                    );
                }
            }
            "rise" => s.rise = int(k, 1, 1000, d).unwrap_or(1),
            "fall" => s.fall = int(k, 1, 1000, d).unwrap_or(1),
            "user" => s.user = script_user(k, d),
            "init_fail" => s.init_fail = flag(k, d),
            _ => keywords::unhandled("vrrp_script", k, d),
        }
    }
    let Some(script) = script else {
        d.error(&n.at, format!("vrrp_script {} needs a script", s.name));
        return None;
    };
    s.script = script;
    s.interval = interval;
    s.timeout = timeout.unwrap_or(interval);
    Some(s)
}

/// One line of `virtual_ipaddress`: `IP[/prefix] [dev IF] [label L] [brd B]
/// [scope S] [preferred_lft N] [home] [nodad] [noprefixroute] [no_track]`;
/// anything else is an error (never dropped silently).
fn vip(k: &Node, what: &str, d: &mut Diagnostics) -> Option<VipAddress> {
    let (addr_text, prefix_text) = match k.keyword.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (k.keyword.as_str(), None),
    };
    let Some(addr) = ip_text(addr_text) else {
        d.error(&k.at, format!("{what} {}: not an IP address", k.keyword));
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text.map(str::parse::<u8>) {
        None => max,
        Some(Ok(p)) if p <= max => p,
        Some(_) => {
            d.error(
                &k.at,
                format!("{what} {}: prefix must be 0 to {max}", k.keyword),
            );
            return None;
        }
    };
    let mut v = VipAddress {
        addr,
        prefix,
        dev: None,
        label: None,
        options: VipOptions::default(),
    };
    let mut args = k.args.iter();
    let addr_text = &k.keyword;
    let mut ok = true;
    let mut bad = |d: &mut Diagnostics, msg: String| {
        d.error(&k.at, format!("{what} {addr_text}: {msg}"));
        ok = false;
    };
    while let Some(a) = args.next() {
        let opt = a.text.as_str();
        let value = match opt {
            "dev" | "label" | "brd" | "broadcast" | "scope" | "preferred_lft" => {
                match args.next() {
                    Some(t) => t.text.as_str(),
                    None => {
                        bad(d, format!("{opt} needs a value"));
                        continue;
                    }
                }
            }
            _ => "",
        };
        match opt {
            "dev" => v.dev = Some(value.to_string()),
            "label" => v.label = Some(value.to_string()),
            "brd" | "broadcast" => match (value, value.parse()) {
                ("+", _) => v.options.broadcast = None,
                (_, Ok(b)) if addr.is_ipv4() => v.options.broadcast = Some(b),
                _ => bad(
                    d,
                    format!("brd {value}: expected an IPv4 address or + (IPv4 VIPs only)"),
                ),
            },
            "scope" => match scope(value) {
                Some(n) => v.options.scope = Some(n),
                None => bad(
                    d,
                    format!("scope {value}: expected global, site, link, host, nowhere or 0-255"),
                ),
            },
            "preferred_lft" => match value {
                "forever" => v.options.preferred_lft = None,
                n => match n.parse::<u32>() {
                    Ok(secs) if secs < u32::MAX => v.options.preferred_lft = Some(secs),
                    _ => bad(d, format!("preferred_lft {n}: expected seconds or forever")),
                },
            },
            // keepalived adds every IPv6 VIP with NODAD; so does xdpvs.
            "nodad" | "-nodad" => {}
            "home" if addr.is_ipv6() => v.options.home = true,
            "home" => bad(d, "home is an IPv6 option".into()),
            "noprefixroute" => v.options.noprefixroute = true,
            "no_track" => v.options.no_track = true,
            other => bad(d, format!("{other} is not supported")),
        }
    }
    ok.then_some(v)
}

fn tracked(k: &Node, d: &mut Diagnostics) -> (String, Option<i32>) {
    let weight = match k.args.as_slice() {
        [] => None,
        [w, v, ..] if w.text == "weight" => match v.text.parse::<i32>() {
            Ok(x) if (-254..=254).contains(&x) => Some(x),
            _ => {
                d.error(
                    &k.at,
                    format!("{} weight {}: must be from -254 to 254", k.keyword, v.text),
                );
                None
            }
        },
        _ => {
            d.warn(
                &k.at,
                format!(
                    "{}: expected `NAME [weight N]`, the rest is ignored",
                    k.keyword
                ),
            );
            None
        }
    };
    (k.keyword.clone(), weight)
}

fn notify(notify: &mut Notify, k: &Node, d: &mut Diagnostics) -> bool {
    let slot = match k.keyword.as_str() {
        "notify_master" => &mut notify.master,
        "notify_backup" => &mut notify.backup,
        "notify_fault" => &mut notify.fault,
        "notify_stop" => &mut notify.stop,
        "notify" => &mut notify.any,
        _ => return false,
    };
    *slot = notify_command(k, d);
    true
}

pub fn vrrp_instance(
    n: &Node,
    global: &GlobalDefs,
    refs: &mut Vec<Reference>,
    d: &mut Diagnostics,
) -> Option<VrrpInstance> {
    let name = name(n, "vrrp_instance", d)?;
    let mut i = VrrpInstance {
        name,
        initial_state: InitialState::Backup,
        interface: String::new(),
        vrid: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        version: global.vrrp_version,
        preempt: true,
        preempt_delay: Duration::ZERO,
        mcast_src_ip: None,
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        auth: None,
        vips: Vec::new(),
        excluded_vips: Vec::new(),
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        notify: Notify::default(),
        garp: global.garp.clone(),
        lower_prio_no_advert: global.lower_prio_no_advert,
        higher_prio_send_advert: global.higher_prio_send_advert,
        dont_track_primary: false,
        notify_master_rx_lower_pri: None,
        track_files: Vec::new(),
        track_processes: Vec::new(),
        skip_check_adv_addr: global.vrrp_skip_check_adv_addr,
        down_timer_adverts: global.vrrp_down_timer_adverts,
        promote_secondaries: false,
        mcast_dst_ip: None,
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
        smtp_alert: None,
        location: n.at.clone(),
    };
    let mut vrid_seen = false;
    let mut vips = Vec::new();
    let mut mcast_at = None;
    let mut fault_no_peer = None;
    // Set in the instance, or left to global_defs (and vrrp_strict).
    let (mut no_advert, mut send_advert) = (None, None);
    for k in n.block.iter().flatten() {
        if notify(&mut i.notify, k, d) {
            continue;
        }
        match k.keyword.as_str() {
            "state" => {
                let state = one(k, d).unwrap_or("BACKUP");
                match state.to_ascii_uppercase().as_str() {
                    "MASTER" => i.initial_state = InitialState::Master,
                    "BACKUP" => i.initial_state = InitialState::Backup,
                    _ => d.error(&k.at, format!("state {state}: expected MASTER or BACKUP")),
                }
                if matches!(state, "master" | "Master") {
                    // keepalived compares case-sensitively and starts such an instance as BACKUP.
                    d.warn(
                        &k.at,
                        format!("state {state} read as MASTER; keepalived would read BACKUP"),
                    );
                }
            }
            "interface" => i.interface = one(k, d).unwrap_or_default().to_string(),
            "virtual_router_id" => {
                vrid_seen = true;
                i.vrid = int(k, 1u8, 255u8, d).unwrap_or(0);
            }
            "priority" => i.priority = int(k, 1u8, 255u8, d).unwrap_or(100),
            "advert_int" => i.advert_int = secs(k, 10, d).unwrap_or(i.advert_int),
            "version" => i.version = int(k, 2u8, 3u8, d).unwrap_or(global.vrrp_version),
            "nopreempt" => i.preempt = !flag(k, d),
            "preempt" => i.preempt = flag(k, d),
            "preempt_delay" => i.preempt_delay = secs(k, 0, d).unwrap_or_default(),
            "mcast_src_ip" => i.mcast_src_ip = ip(k, d),
            "unicast_src_ip" => i.unicast_src_ip = ip(k, d),
            "unicast_peer" => {
                for p in k.block.iter().flatten() {
                    for w in std::iter::once(p.keyword.as_str())
                        .chain(p.args.iter().map(|a| a.text.as_str()))
                    {
                        match ip_text(w) {
                            Some(a) => i.unicast_peers.push(a),
                            // `min_ttl`/`max_ttl` and their values.
                            None if w.parse::<u8>().is_ok() || w.ends_with("_ttl") => {}
                            None => d.error(&p.at, format!("unicast_peer {w}: not an IP address")),
                        }
                    }
                }
            }
            "authentication" => i.auth = authentication(k, d),
            "virtual_ipaddress" => vips.extend(
                k.block
                    .iter()
                    .flatten()
                    .filter_map(|v| Some((vip(v, "virtual_ipaddress", d)?, v.at.clone()))),
            ),
            "virtual_ipaddress_excluded" => i
                .excluded_vips
                .extend(
                    k.block
                        .iter()
                        .flatten()
                        .filter_map(|v| vip(v, "virtual_ipaddress", d)),
                ),
            "track_script" => {
                for t in k.block.iter().flatten() {
                    let (name, weight) = tracked(t, d);
                    refs.push(Reference {
                        kind: RefKind::TrackScript,
                        from: format!("vrrp_instance {}", i.name),
                        name: name.clone(),
                        at: t.at.clone(),
                    });
                    i.track_scripts.push(TrackScript { name, weight });
                }
            }
            "track_interface" => {
                for t in k.block.iter().flatten() {
                    let (name, weight) = tracked(t, d);
                    i.track_interfaces.push(TrackInterface { name, weight });
                }
            }
            "virtual_routes" => i.virtual_routes.extend(
                k.block
                    .iter()
                    .flatten()
                    .filter_map(|r| super::routes::route(r, "virtual_routes", d)),
            ),
            "virtual_rules" => i.virtual_rules.extend(
                k.block
                    .iter()
                    .flatten()
                    .filter_map(|r| super::routes::rule(r, "virtual_rules", d)),
            ),
            "use_vmac" => d.error(
                &k.at,
                "use_vmac is not supported: xdpvs attaches its XDP program to the physical \
                 interface and answers for the VIPs with that interface's own MAC. Remove \
                 use_vmac and keep the addresses in virtual_ipaddress: on a takeover the new \
                 master's gratuitous ARPs move the VIPs to its MAC",
            ),
            "strict_mode" => d.error(
                &k.at,
                "strict_mode is not supported per instance: set vrrp_strict in global_defs \
                 for every instance, or remove it",
            ),
            "garp_master_delay" => {
                i.garp.master_delay = secs(k, 0, d).unwrap_or(i.garp.master_delay)
            }
            "garp_master_repeat" => i.garp.master_repeat = int(k, 1, 255, d).unwrap_or(5),
            "garp_master_refresh" => {
                i.garp.master_refresh = secs(k, 0, d).filter(|r| !r.is_zero());
            }
            "garp_master_refresh_repeat" => {
                i.garp.master_refresh_repeat = int(k, 1, 255, d).unwrap_or(1)
            }
            "garp_lower_prio_delay" => i.garp.lower_prio_delay = secs(k, 0, d),
            "garp_lower_prio_repeat" => i.garp.lower_prio_repeat = int(k, 0, 255, d),
            "lower_prio_no_advert" => no_advert = switch(k, d).or(no_advert),
            "higher_prio_send_advert" => send_advert = switch(k, d).or(send_advert),
            "dont_track_primary" => i.dont_track_primary = flag(k, d),
            "notify_master_rx_lower_pri" => i.notify_master_rx_lower_pri = notify_command(k, d),
            "track_file" => {
                let from = format!("vrrp_instance {}", i.name);
                i.track_files.extend(track_file_refs(k, &from, refs, d));
            }
            "track_process" => {
                let from = format!("vrrp_instance {}", i.name);
                let procs = tracked_refs(k, &from, RefKind::TrackProcess, refs, d);
                i.track_processes.extend(procs);
            }
            "smtp_alert" => i.smtp_alert = switch(k, d),
            "skip_check_adv_addr" => i.skip_check_adv_addr = flag(k, d),
            "down_timer_adverts" => {
                i.down_timer_adverts = int(k, 1, 100, d).unwrap_or(i.down_timer_adverts)
            }
            "promote_secondaries" => i.promote_secondaries = flag(k, d),
            "unicast_fault_no_peer" => fault_no_peer = Some(k.at.clone()),
            // Read before the instances (see `old_sync_daemon`).
            "lvs_sync_daemon_interface" => {}
            "mcast_dst_ip" => match ip(k, d) {
                Some(a) if a.is_multicast() => {
                    i.mcast_dst_ip = Some(a);
                    mcast_at = Some(k.at.clone());
                }
                Some(a) => d.error(&k.at, format!("mcast_dst_ip {a}: not a multicast address")),
                None => {}
            },
            // RFC 5798 Accept_Mode. xdpvs holds the VIPs on the interface
            // while master, so traffic to them is always accepted: that is
            // `accept`; `no_accept` would need a filter xdpvs does not install.
            "accept" => {
                flag(k, d);
            }
            "no_accept" => d.error(
                &k.at,
                "no_accept is not supported: xdpvs accepts traffic to its VIPs while master (keepalived's `accept`); drop unwanted traffic to them with nftables",
            ),
            "track_bfd" => super::lvs::refuse_bfd(k, d),
            _ => keywords::unhandled("vrrp_instance", k, d),
        }
    }
    lower_priority_answers(&mut i, global, (no_advert, send_advert), &n.at, d);
    if i.interface.is_empty() {
        d.error(
            &n.at,
            format!("vrrp_instance {} needs an interface", i.name),
        );
    }
    if !vrid_seen {
        d.error(
            &n.at,
            format!("vrrp_instance {} needs a virtual_router_id", i.name),
        );
    }
    one_family(&mut i, vips, d);
    // keepalived keeps such an instance in FAULT for good: refused instead.
    if let Some(at) = fault_no_peer
        && i.unicast_peers.is_empty()
    {
        d.error(
            &at,
            format!(
                "vrrp_instance {}: unicast_fault_no_peer without a unicast_peer would keep it \
                 in FAULT: give it its peers, or leave the instance out on this node (`@ID` lines)",
                i.name
            ),
        );
    }
    if let (Some(group), Some(at), Some(first)) = (i.mcast_dst_ip, &mcast_at, i.vips.first())
        && group.is_ipv6() != first.addr.is_ipv6()
    {
        d.error(
            at,
            format!(
                "mcast_dst_ip {group}: not of the instance's address family (that of {})",
                first.addr
            ),
        );
    }
    if i.vips.is_empty() {
        d.error(
            &n.at,
            format!("vrrp_instance {} has no virtual_ipaddress", i.name),
        );
    }
    if i.version == 2 && i.vips.first().is_some_and(|v| v.addr.is_ipv6()) {
        d.error(
            &n.at,
            format!(
                "vrrp_instance {}: IPv6 addresses need VRRP version 3 (`version 3`)",
                i.name
            ),
        );
    }
    if i.version == 3 && i.auth.is_some() {
        d.warn(
            &n.at,
            format!(
                "vrrp_instance {}: VRRPv3 has no authentication; ignored",
                i.name
            ),
        );
        i.auth = None;
    }
    advert_int(&mut i, &n.at, d);
    preemption(&mut i, &n.at, d);
    Some(i)
}

/// keepalived's rules for settings that cannot hold together, each cleared
/// with a warning as keepalived clears it (vrrp.c, `vrrp_complete_instance`):
/// the address owner always preempts; an instance that starts as MASTER
/// neither waits (`nopreempt`) nor delays (`preempt_delay`); a delay means
/// nothing without preemption.
fn preemption(i: &mut VrrpInstance, at: &Location, d: &mut Diagnostics) {
    let name = i.name.clone();
    let mut clear = |what: &str, why: &str| {
        d.warn(
            at,
            format!("vrrp_instance {name}: {what} {why}; cleared, as keepalived does"),
        )
    };
    if !i.preempt && i.priority == 255 {
        clear(
            "nopreempt",
            "does not hold for the address owner (priority 255)",
        );
        i.preempt = true;
    }
    if i.initial_state == InitialState::Master {
        if !i.preempt {
            clear("nopreempt", "does not hold with state MASTER");
            i.preempt = true;
        }
        if !i.preempt_delay.is_zero() {
            clear("preempt_delay", "does not hold with state MASTER");
            i.preempt_delay = Duration::ZERO;
        }
    }
    if !i.preempt && !i.preempt_delay.is_zero() {
        clear("preempt_delay", "means nothing with nopreempt");
        i.preempt_delay = Duration::ZERO;
    }
}

/// How a master answers other priorities, by keepalived's rules: unset in
/// the instance, global_defs' settings (the lower-priority gratuitous batch
/// defaulting to the master one); under `vrrp_strict`, no batch, no advert
/// for a lower priority and none for a higher, whatever was set (reset with
/// a warning, as keepalived does).
fn lower_priority_answers(
    i: &mut VrrpInstance,
    global: &GlobalDefs,
    (no_advert, send_advert): (Option<bool>, Option<bool>),
    at: &Location,
    d: &mut Diagnostics,
) {
    let strict = global.strict.is_some();
    let reset = |d: &mut Diagnostics, what: &str| {
        d.warn(
            at,
            format!(
                "vrrp_instance {}: vrrp_strict requires {what}; reset, as keepalived does",
                i.name
            ),
        );
    };
    let g = &global.garp;
    i.garp.lower_prio_delay = match i.garp.lower_prio_delay {
        Some(v) if strict && !v.is_zero() => {
            reset(d, "garp_lower_prio_delay 0");
            Some(Duration::ZERO)
        }
        Some(v) => Some(v),
        None if strict => Some(Duration::ZERO),
        None => g.lower_prio_delay.or(Some(g.master_delay)),
    };
    i.garp.lower_prio_repeat = match i.garp.lower_prio_repeat {
        Some(v) if strict && v != 0 => {
            reset(d, "garp_lower_prio_repeat 0");
            Some(0)
        }
        Some(v) => Some(v),
        None if strict => Some(0),
        None => g.lower_prio_repeat.or(Some(g.master_repeat)),
    };
    i.lower_prio_no_advert = match no_advert {
        Some(false) if strict => {
            reset(d, "lower_prio_no_advert");
            true
        }
        Some(v) => v,
        None => strict || global.lower_prio_no_advert,
    };
    i.higher_prio_send_advert = match send_advert {
        Some(true) if strict => {
            reset(d, "higher_prio_send_advert off");
            false
        }
        Some(v) => v,
        None => !strict && global.higher_prio_send_advert,
    };
}

/// A VRRP instance speaks for one address family, that of its first VIP;
/// keepalived drops the others. Authors mean them to move with the
/// instance, which is what `virtual_ipaddress_excluded` does.
fn one_family(i: &mut VrrpInstance, vips: Vec<(VipAddress, Location)>, d: &mut Diagnostics) {
    let Some(v6) = vips.first().map(|(v, _)| v.addr.is_ipv6()) else {
        return;
    };
    for (v, at) in vips {
        if v.addr.is_ipv6() == v6 {
            i.vips.push(v);
            continue;
        }
        d.warn(
            &at,
            format!(
                "virtual_ipaddress {}: not of the instance's address family (that of its first address); handled as virtual_ipaddress_excluded",
                v.addr
            ),
        );
        i.excluded_vips.push(v);
    }
}

/// VRRPv2 advertises whole seconds (RFC 3768 5.3.7, 8 bits); VRRPv3
/// centiseconds (RFC 5798 5.2.7, 12 bits).
fn advert_int(i: &mut VrrpInstance, at: &Location, d: &mut Diagnostics) {
    let ms = i.advert_int.as_millis();
    if i.version == 2 {
        if !ms.is_multiple_of(1000) || !(1000..=255_000).contains(&ms) {
            d.error(
                at,
                format!(
                    "vrrp_instance {}: advert_int {}: VRRPv2 needs whole seconds from 1 to 255 (or `version 3`)",
                    i.name,
                    i.advert_int.as_secs_f64()
                ),
            );
        }
        return;
    }
    let cs = i.advert_int.as_micros().div_ceil(10_000).clamp(1, 4095);
    let rounded = Duration::from_millis(u64::try_from(cs * 10).unwrap_or(40_950));
    if i.advert_int > Duration::from_millis(40_950) {
        d.error(
            at,
            format!(
                "vrrp_instance {}: advert_int {}: VRRPv3 allows at most 40.95 seconds",
                i.name,
                i.advert_int.as_secs_f64()
            ),
        );
    } else if rounded != i.advert_int {
        d.warn(
            at,
            format!(
                "vrrp_instance {}: advert_int {} read as {} (VRRPv3 counts centiseconds)",
                i.name,
                i.advert_int.as_secs_f64(),
                rounded.as_secs_f64()
            ),
        );
        i.advert_int = rounded;
    }
}

fn authentication(n: &Node, d: &mut Diagnostics) -> Option<Auth> {
    let mut kind = None;
    let mut pass = None;
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "auth_type" => kind = one(k, d).map(|s| (s.to_string(), k.at.clone())),
            "auth_pass" => pass = one(k, d).map(|p| (p.to_string(), k.at.clone())),
            other => d.warn(
                &k.at,
                format!("unknown keyword {other} in authentication, ignored"),
            ),
        }
    }
    match kind {
        Some((t, _)) if t == "PASS" => match pass {
            Some((p, at)) => {
                if p.len() > 8 {
                    d.warn(&at, "auth_pass is longer than 8 characters: only the first 8 are used, as keepalived does");
                }
                Some(Auth::Pass(p))
            }
            None => {
                d.error(&n.at, "auth_type PASS needs auth_pass");
                None
            }
        },
        Some((t, at)) if t == "AH" => {
            d.error(
                &at,
                "auth_type AH is not supported: use PASS, or VRRP version 3 without authentication",
            );
            None
        }
        Some((t, at)) => {
            d.error(&at, format!("auth_type {t}: expected PASS"));
            None
        }
        None => {
            d.error(&n.at, "authentication needs auth_type");
            None
        }
    }
}

/// `instances`: the names of every vrrp_instance, so that an older file's
/// members written directly in the group are read as members.
pub fn sync_group(
    n: &Node,
    instances: &HashSet<&str>,
    refs: &mut Vec<Reference>,
    d: &mut Diagnostics,
) -> Option<SyncGroup> {
    let name = name(n, "vrrp_sync_group", d)?;
    let mut g = SyncGroup {
        name,
        members: Vec::new(),
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        tracking_weight: false,
        notify: Notify::default(),
        smtp_alert: None,
        location: n.at.clone(),
    };
    let mut seen = HashSet::new();
    let mut member = |g: &mut SyncGroup, m: &Node, refs: &mut Vec<Reference>| {
        let names =
            std::iter::once(m.keyword.as_str()).chain(m.args.iter().map(|a| a.text.as_str()));
        for member in names {
            refs.push(Reference {
                kind: RefKind::SyncMember,
                from: format!("vrrp_sync_group {}", g.name),
                name: member.to_string(),
                at: m.at.clone(),
            });
            if seen.insert(member.to_string()) {
                g.members.push(member.to_string());
            }
        }
    };
    for k in n.block.iter().flatten() {
        if notify(&mut g.notify, k, d) {
            continue;
        }
        match k.keyword.as_str() {
            "group" => {
                for m in k.block.iter().flatten() {
                    member(&mut g, m, refs);
                }
            }
            "smtp_alert" => g.smtp_alert = switch(k, d),
            "track_file" => {
                let from = format!("vrrp_sync_group {}", g.name);
                let files = track_file_refs(k, &from, refs, d);
                g.track_files.extend(files);
            }
            "track_process" => {
                let from = format!("vrrp_sync_group {}", g.name);
                let procs = tracked_refs(k, &from, RefKind::TrackProcess, refs, d);
                g.track_processes.extend(procs);
            }
            "track_script" => {
                for t in k.block.iter().flatten() {
                    let (name, weight) = tracked(t, d);
                    refs.push(Reference {
                        kind: RefKind::TrackScript,
                        from: format!("vrrp_sync_group {}", g.name),
                        name: name.clone(),
                        at: t.at.clone(),
                    });
                    g.track_scripts.push(TrackScript { name, weight });
                }
            }
            "track_interface" => {
                for t in k.block.iter().flatten() {
                    let (name, weight) = tracked(t, d);
                    g.track_interfaces.push(TrackInterface { name, weight });
                }
            }
            "sync_group_tracking_weight" => g.tracking_weight = flag(k, d),
            "global_tracking" => {
                g.tracking_weight = flag(k, d);
                d.warn(
                    &k.at,
                    "global_tracking is deprecated (keepalived says so too): read as \
                     sync_group_tracking_weight; put tracking on the sync group instead",
                );
            }
            bare if k.block.is_none() && instances.contains(&bare) => {
                d.warn(
                    &k.at,
                    format!(
                        "vrrp_sync_group {}: {bare} written directly in the group (older syntax) is read as a member; the modern form is `group {{ {bare} }}`",
                        g.name
                    ),
                );
                member(&mut g, k, refs);
            }
            "track_bfd" => super::lvs::refuse_bfd(k, d),
            _ => keywords::unhandled("vrrp_sync_group", k, d),
        }
    }
    Some(g)
}

/// `net_namespace NAME` (in global_defs or at the top level, once).
pub fn net_namespace(k: &Node, before: Option<String>, d: &mut Diagnostics) -> Option<String> {
    let ns = one(k, d)?;
    if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
        d.error(
            &k.at,
            format!(
                "net_namespace {ns:?}: not a namespace name (one path component of /var/run/netns)"
            ),
        );
        return before;
    }
    match before {
        Some(b) if b != ns => {
            d.error(&k.at, format!("net_namespace {ns}: already set to {b}"));
            Some(b)
        }
        _ => Some(ns.to_string()),
    }
}

/// keepalived's `net_namespace_ipvs`: IPVS in another namespace than VRRP.
pub fn refuse_net_namespace_ipvs(k: &Node, d: &mut Diagnostics) {
    d.error(
        &k.at,
        "net_namespace_ipvs is not supported: xdpvs has no IPVS; its data plane runs on the \
         interface of the namespace the daemon is in (`net_namespace`). Remove this line",
    );
}

/// `track_process NAME { ... }` (`vrrp_track_process` is keepalived's older name).
pub fn track_process(n: &Node, d: &mut Diagnostics) -> Option<TrackProcess> {
    let name = name(n, &n.keyword, d)?;
    let mut p = TrackProcess {
        name,
        process: String::new(),
        params: Vec::new(),
        param_match: ParamMatch::None,
        full_command: false,
        weight: 0,
        reverse: false,
        quorum: 1,
        quorum_max: u32::MAX,
        fork_delay: Duration::ZERO,
        terminate_delay: Duration::ZERO,
        location: n.at.clone(),
    };
    let mut param_match = None;
    let delay = |k: &Node, d: &mut Diagnostics| {
        let v = secs(k, 0, d)?;
        if v < Duration::from_micros(1) || v > Duration::from_secs(3600) {
            d.error(
                &k.at,
                format!("{}: must be from 0.000001 to 3600 seconds", k.keyword),
            );
            return None;
        }
        Some(v)
    };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "process" => match k.args.split_first() {
                Some((path, params)) => {
                    p.process = path.text.clone();
                    p.params = params.iter().map(|a| a.text.clone()).collect();
                }
                None => d.error(&k.at, "process needs a name or path"),
            },
            "param_match" => {
                param_match = match k.arg(0) {
                    None => Some(ParamMatch::Exact),
                    Some("initial") => Some(ParamMatch::Initial),
                    Some("partial") => Some(ParamMatch::Partial),
                    Some(other) => {
                        d.error(
                            &k.at,
                            format!("param_match {other}: expected initial, partial or nothing"),
                        );
                        None
                    }
                }
            }
            "full_command" => p.full_command = flag(k, d),
            "weight" => {
                p.weight = int_arg(k, 0, -254, 254, d).unwrap_or(0);
                match k.arg(1) {
                    None => {}
                    Some("reverse") => p.reverse = true,
                    Some(other) => d.error(
                        &k.at,
                        format!("weight: unknown option {other} (expected reverse)"),
                    ),
                }
            }
            "quorum" => p.quorum = int(k, 1, 65535, d).unwrap_or(1),
            "quorum_max" => p.quorum_max = int(k, 0, 65535, d).unwrap_or(u32::MAX),
            "delay" => {
                if let Some(v) = delay(k, d) {
                    (p.fork_delay, p.terminate_delay) = (v, v);
                }
            }
            "fork_delay" => p.fork_delay = delay(k, d).unwrap_or(p.fork_delay),
            "terminate_delay" => p.terminate_delay = delay(k, d).unwrap_or(p.terminate_delay),
            other => d.error(
                &k.at,
                format!("unknown keyword {other} in {} {}", n.keyword, p.name),
            ),
        }
    }
    if p.process.is_empty() {
        d.error(
            &n.at,
            format!("{} {} needs `process NAME`", n.keyword, p.name),
        );
        return None;
    }
    // keepalived: arguments or param_match compare the whole command line.
    p.param_match = param_match.unwrap_or(if p.params.is_empty() {
        ParamMatch::None
    } else {
        ParamMatch::Exact
    });
    if p.param_match != ParamMatch::None {
        p.full_command = true;
    }
    // quorum_max 0 alone means "while none runs" (keepalived).
    if p.quorum_max == 0 {
        p.quorum = 0;
    } else if p.quorum > p.quorum_max {
        d.error(
            &n.at,
            format!(
                "{} {}: quorum {} is above quorum_max {}",
                n.keyword, p.name, p.quorum, p.quorum_max
            ),
        );
        return None;
    }
    Some(p)
}

/// keepalived's sync-group tracking, once every block is read: without
/// `sync_group_tracking_weight` a member's own weighted tracking is read as
/// weight 0 (interfaces, files at their default weight) or dropped (scripts,
/// other weighted files), each with a warning; then the group's own
/// `track_*` entries are added to every member (a member's own entry of the
/// same name gives way unless it is unweighted).
pub fn group_tracking(c: &mut super::model::Config, d: &mut Diagnostics) {
    let script_weight =
        |name: &str, c: &[VrrpScript]| c.iter().find(|s| s.name == name).map_or(0, |s| s.weight);
    let file_weight =
        |name: &str, c: &[TrackFile]| c.iter().find(|f| f.name == name).map_or(1, |f| f.weight);
    for g in &c.sync_groups {
        for m in &g.members {
            let Some(i) = c.vrrp_instances.iter_mut().find(|i| &i.name == m) else {
                continue;
            };
            let why = format!(
                "vrrp_instance {}: in vrrp_sync_group {} without sync_group_tracking_weight",
                i.name, g.name
            );
            if !g.tracking_weight {
                for t in &mut i.track_interfaces {
                    if t.weight.is_some_and(|w| w != 0) {
                        d.warn(
                            &i.location,
                            format!(
                                "{why}: track_interface {} read with weight 0 (keepalived)",
                                t.name
                            ),
                        );
                        t.weight = Some(0);
                    }
                }
                i.track_scripts.retain(|t| {
                    let w = t
                        .weight
                        .unwrap_or_else(|| script_weight(&t.name, &c.vrrp_scripts));
                    if w != 0 {
                        d.warn(
                            &i.location,
                            format!(
                                "{why}: weighted track_script {} ignored (keepalived)",
                                t.name
                            ),
                        );
                    }
                    w == 0
                });
                i.track_files.retain_mut(|t| match t.weight.unwrap_or_else(|| file_weight(&t.name, &c.track_files)) {
                    0 => true,
                    1 => {
                        d.warn(&i.location, format!("{why}: track_file {} read with weight 0 (keepalived; write weight 0 to say so)", t.name));
                        t.weight = Some(0);
                        true
                    }
                    w => {
                        d.warn(&i.location, format!("{why}: track_file {} with weight {w} ignored (keepalived)", t.name));
                        false
                    }
                });
            }
            for t in &g.track_scripts {
                i.track_scripts.retain(|o| o.name != t.name);
                i.track_scripts.push(t.clone());
            }
            for t in &g.track_interfaces {
                i.track_interfaces.retain(|o| o.name != t.name);
                i.track_interfaces.push(t.clone());
            }
            for t in &g.track_processes {
                i.track_processes.retain(|o| o.name != t.name);
                i.track_processes.push(t.clone());
            }
            for t in &g.track_files {
                match i.track_files.iter_mut().find(|o| o.name == t.name) {
                    Some(o) if o.weight == Some(0) => {}
                    Some(o) => *o = t.clone(),
                    None => i.track_files.push(t.clone()),
                }
            }
        }
    }
}

/// keepalived's IPVS_WEIGHT_LIMIT: the bounds of a FILE_CHECK weight.
const CHECKER_WEIGHT_LIMIT: i32 = 65535;

/// A real_server's `FILE_CHECK { track_file NAME  weight N [reverse|noreverse] }`.
pub fn file_check(n: &Node, d: &mut Diagnostics) -> Option<FileCheck> {
    let mut c = FileCheck {
        track_file: String::new(),
        path: String::new(),
        weight: None,
        reverse: None,
    };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "track_file" => c.track_file = one(k, d).unwrap_or_default().to_string(),
            "weight" => {
                c.weight = int_arg(k, 0, -CHECKER_WEIGHT_LIMIT, CHECKER_WEIGHT_LIMIT, d);
                c.reverse = match k.arg(1) {
                    None | Some("noreverse") => Some(false),
                    Some("reverse") => Some(true),
                    Some(other) => {
                        d.error(
                            &k.at,
                            format!("weight: unknown option {other} (expected reverse)"),
                        );
                        None
                    }
                };
            }
            other => d.error(&k.at, format!("unknown keyword {other} in FILE_CHECK")),
        }
    }
    if c.track_file.is_empty() {
        d.error(&n.at, "FILE_CHECK needs `track_file NAME`");
        return None;
    }
    Some(c)
}

/// Joins each FILE_CHECK to its track_file, once every block is read: the
/// path, and the file's weight and direction where the check gives none.
pub fn file_checks(c: &mut super::model::Config, d: &mut Diagnostics) {
    let files = &c.track_files;
    for vs in &mut c.virtual_servers {
        for r in &mut vs.reals {
            for check in &mut r.checks {
                let super::model::HealthCheck::FileCheck(f) = check else {
                    continue;
                };
                match files.iter().find(|t| t.name == f.track_file) {
                    Some(t) => {
                        f.path = t.path.clone();
                        f.weight = f.weight.or(Some(t.weight));
                        f.reverse = f.reverse.or(Some(t.reverse));
                    }
                    None => d.error(
                        &r.location,
                        format!(
                            "FILE_CHECK: track_file {} is not defined by any top-level track_file block",
                            f.track_file
                        ),
                    ),
                }
            }
        }
    }
}
