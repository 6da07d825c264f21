//! A `virtual_routes` or `static_routes` line, in keepalived's syntax (that of `ip route`):
//! `[blackhole|unreachable|prohibit] DST[/LEN] [src A] [via|gw A] [dev D]
//! [table N] [metric N] [scope S] [protocol N] [inet6]`. Anything else a
//! line may hold (nexthop, mtu, ...) is refused by name, never skipped.
//! Rules (`virtual_rules`, `static_rules`), as `ip rule`: `[from A[/L]]
//! [to A[/L]] table N [priority N] [iif D] [oif D] [fwmark M[/MASK]] [inet6]`.

use std::net::IpAddr;

use super::{
    diag::Diagnostics,
    model::{RouteKind, VirtualRoute, VirtualRule},
    tree::Node,
    values::scope,
};

fn table(word: &str) -> Option<u32> {
    match word {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        n => n.parse().ok().filter(|&t| t != 0),
    }
}

/// `DST[/LEN]` or `default`; `inet6` makes `default` IPv6.
fn destination(word: &str, v6: bool) -> Option<(IpAddr, u8)> {
    if word == "default" {
        let any: IpAddr = if v6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        return Some((any, 0));
    }
    let (addr, len) = word
        .split_once('/')
        .map_or((word, None), |(a, l)| (a, Some(l)));
    let addr: IpAddr = addr.parse().ok()?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse().ok().filter(|&l| l <= full)?,
        None => full,
    };
    Some((addr, len))
}

/// One line of the block `block` (`virtual_routes`, `static_routes`).
pub fn route(n: &Node, block: &str, d: &mut Diagnostics) -> Option<VirtualRoute> {
    let mut words: Vec<&str> = std::iter::once(n.keyword.as_str())
        .chain(n.args.iter().map(|a| a.text.as_str()))
        .collect();
    let v6 = words.contains(&"inet6");
    words.retain(|w| *w != "inet6");
    let mut words = words.into_iter();
    let mut kind = RouteKind::Unicast;
    let mut first = words.next()?;
    match first {
        "blackhole" => kind = RouteKind::Blackhole,
        "unreachable" => kind = RouteKind::Unreachable,
        "prohibit" => kind = RouteKind::Prohibit,
        _ => {}
    }
    if kind != RouteKind::Unicast {
        let Some(w) = words.next() else {
            d.error(&n.at, format!("{block}: {first} needs a destination"));
            return None;
        };
        first = w;
    }
    let Some((dst, prefix)) = destination(first, v6) else {
        d.error(
            &n.at,
            format!("{block}: {first} is not a destination (ADDRESS[/LENGTH] or default)"),
        );
        return None;
    };
    let mut r = VirtualRoute {
        kind,
        dst,
        prefix,
        src: None,
        via: None,
        dev: None,
        table: None,
        metric: None,
        scope: None,
        protocol: None,
        location: n.at.clone(),
    };
    while let Some(option) = words.next() {
        let Some(value) = words.next() else {
            d.error(&n.at, format!("{block}: {option} needs a value"));
            return None;
        };
        let bad = |what: &str| format!("{block}: {option} {value}: {what}");
        let family = |a: IpAddr| (a.is_ipv4() == dst.is_ipv4()).then_some(a);
        let ok = match option {
            "src" => value.parse().ok().and_then(family).map(|a| r.src = Some(a)),
            "via" | "gw" => value.parse().ok().and_then(family).map(|a| r.via = Some(a)),
            "dev" | "oif" => {
                r.dev = Some(value.to_string());
                Some(())
            }
            "table" => table(value).map(|t| r.table = Some(t)),
            "metric" | "priority" | "preference" => value.parse().ok().map(|m| r.metric = Some(m)),
            "scope" => scope(value).map(|s| r.scope = Some(s)),
            "protocol" | "proto" => value.parse().ok().map(|p| r.protocol = Some(p)),
            other => {
                d.error(
                    &n.at,
                    format!(
                        "{block}: {other} is not supported (xdpvs sets src, via/gw, dev, \
                         table, metric, scope, protocol and blackhole/unreachable/prohibit)"
                    ),
                );
                return None;
            }
        };
        if ok.is_none() {
            d.error(
                &n.at,
                bad(match option {
                    "src" | "via" | "gw" => "not an address of the destination's family",
                    "table" => "a table number (or main, local, default); names from rt_tables are not read",
                    "scope" => "one of global, site, link, host, nowhere or a number",
                    _ => "not a number",
                }),
            );
            return None;
        }
    }
    if kind == RouteKind::Unicast && r.via.is_none() && r.dev.is_none() {
        d.error(
            &n.at,
            "virtual_routes: a route needs via (gw) or dev, or a type such as blackhole",
        );
        return None;
    }
    Some(r)
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

pub fn rule(n: &Node, block: &str, d: &mut Diagnostics) -> Option<VirtualRule> {
    let mut words: Vec<&str> = std::iter::once(n.keyword.as_str())
        .chain(n.args.iter().map(|a| a.text.as_str()))
        .collect();
    let inet6 = words.contains(&"inet6");
    words.retain(|w| *w != "inet6");
    let mut r = VirtualRule {
        v6: inet6,
        from: None,
        to: None,
        table: 0,
        priority: None,
        iif: None,
        oif: None,
        fwmark: None,
        location: n.at.clone(),
    };
    let mut words = words.into_iter();
    while let Some(option) = words.next() {
        let Some(value) = words.next() else {
            d.error(&n.at, format!("{block}: {option} needs a value"));
            return None;
        };
        let ok = match option {
            // `all` selects everything, as no `from`/`to` does.
            "from" | "to" if value == "all" => Some(()),
            "from" => destination(value, inet6).map(|p| r.from = Some(p)),
            "to" => destination(value, inet6).map(|p| r.to = Some(p)),
            "table" | "lookup" => table(value).map(|t| r.table = t),
            "priority" | "preference" | "pref" => value.parse().ok().map(|p| r.priority = Some(p)),
            "iif" => {
                r.iif = Some(value.to_string());
                Some(())
            }
            "oif" => {
                r.oif = Some(value.to_string());
                Some(())
            }
            "fwmark" => {
                let (mark, mask) = value
                    .split_once('/')
                    .map_or((value, None), |(m, k)| (m, Some(k)));
                let parsed = match (number(mark), mask.map(number)) {
                    (Some(m), None) => Some((m, None)),
                    (Some(m), Some(Some(k))) => Some((m, Some(k))),
                    _ => None,
                };
                parsed.map(|f| r.fwmark = Some(f))
            }
            other => {
                d.error(
                    &n.at,
                    format!(
                        "{block}: {other} is not supported (xdpvs sets from, to, table, \
                         priority, iif, oif and fwmark)"
                    ),
                );
                return None;
            }
        };
        if ok.is_none() {
            d.error(
                &n.at,
                format!("{block}: {option} {value}: not a valid value"),
            );
            return None;
        }
    }
    let families: Vec<bool> = [r.from, r.to]
        .iter()
        .flatten()
        .map(|(a, _)| a.is_ipv6())
        .collect();
    if families.iter().any(|&v6| v6 != families[0]) {
        d.error(
            &n.at,
            format!("{block}: from and to are of different address families"),
        );
        return None;
    }
    r.v6 = inet6 || families.first().copied().unwrap_or(false);
    if r.table == 0 {
        d.error(
            &n.at,
            format!("{block}: a rule needs a table (xdpvs adds lookup rules only)"),
        );
        return None;
    }
    Some(r)
}
