//! `ipvsadm -L -n` layouts, column for column, so scripts that parse
//! ipvsadm's output keep working against xdpvs.

use std::{fmt::Write as _, net::SocketAddr, time::Duration};

use super::protocol::{RealStatus, ServiceStatus, Traffic};

/// ipvsadm prints this version; scripts match on the header line.
const HEADER: &str = "IP Virtual Server version 1.2.1";

/// As keepalived does with IPVS: a down real leaves the table, unless
/// `inhibit_on_failure` keeps it there with weight 0.
fn listed(r: &RealStatus) -> bool {
    r.healthy || r.inhibit_on_failure
}

/// The version line for a listing of the whole table (`table_size`:
/// `Some`); ipvsadm prints none for one service (`-L -t VIP:PORT`).
fn version_line(table_size: Option<u32>) -> String {
    table_size
        .map(|size| format!("{HEADER} (size={size})\n"))
        .unwrap_or_default()
}

/// In ipvsadm's order: by protocol number (TCP before UDP), then address
/// (IPv4 before IPv6), then port.
pub fn sort(services: &mut [ServiceStatus]) {
    services.sort_by_key(|s| (s.protocol != "TCP", s.vip, s.port));
}

/// `ipvsadm -L -n`.
pub fn list(services: &[ServiceStatus], table_size: Option<u32>) -> String {
    let mut out = version_line(table_size);
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    for s in services {
        let _ = write!(
            out,
            "{}  {} {}",
            s.protocol,
            SocketAddr::new(s.vip, s.port),
            s.scheduler
        );
        if s.persistence_timeout > 0 {
            let _ = write!(out, " persistent {}", s.persistence_timeout);
        }
        out.push('\n');
        for r in s.reals.iter().filter(|r| listed(r)) {
            let weight = if r.healthy { r.weight } else { 0 };
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                SocketAddr::new(r.addr, r.port),
                "Route",
                weight,
                r.active_flows,
                r.inactive_flows
            );
        }
    }
    out
}

/// `ipvsadm -L -n --stats`. Out* columns are 0: in direct routing the replies
/// never cross the balancer.
pub fn stats(services: &[ServiceStatus], table_size: Option<u32>) -> String {
    let mut out = version_line(table_size);
    out.push_str(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    );
    out.push_str("  -> RemoteAddress:Port\n");
    let row = |out: &mut String, name: String, t: &Traffic| {
        let _ = write!(out, "{name:<33}");
        for n in [t.new_flows, t.packets, 0, t.bytes, 0] {
            out.push_str(&large(n));
        }
        out.push('\n');
    };
    for s in services {
        row(
            &mut out,
            format!("{}  {}", s.protocol, SocketAddr::new(s.vip, s.port)),
            &s.traffic,
        );
        for r in s.reals.iter().filter(|r| listed(r)) {
            row(
                &mut out,
                format!("  -> {}", SocketAddr::new(r.addr, r.port)),
                &r.traffic,
            );
        }
    }
    out
}

/// `ipvsadm -L -n --rate`: per-second rates between two readings.
pub fn rate(
    before: &[ServiceStatus],
    after: &[ServiceStatus],
    interval: Duration,
    table_size: Option<u32>,
) -> String {
    let mut out = version_line(table_size);
    out.push_str(
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    );
    out.push_str("  -> RemoteAddress:Port\n");
    let secs = interval.as_secs_f64().max(f64::EPSILON);
    let per_s = |a: u64, b: u64| (b.saturating_sub(a) as f64 / secs).round() as u64;
    let row = |out: &mut String, name: String, a: &Traffic, b: &Traffic| {
        let _ = write!(out, "{name:<33}");
        for n in [
            per_s(a.new_flows, b.new_flows),
            per_s(a.packets, b.packets),
            0,
            per_s(a.bytes, b.bytes),
            0,
        ] {
            out.push_str(&large(n));
        }
        out.push('\n');
    };
    for s in after {
        let Some(old) = before
            .iter()
            .find(|o| (o.vip, o.port, &o.protocol) == (s.vip, s.port, &s.protocol))
        else {
            continue;
        };
        row(
            &mut out,
            format!("{}  {}", s.protocol, SocketAddr::new(s.vip, s.port)),
            &old.traffic,
            &s.traffic,
        );
        for r in s.reals.iter().filter(|r| listed(r)) {
            let prev = old
                .reals
                .iter()
                .find(|o| (o.addr, o.port) == (r.addr, r.port))
                .map(|o| o.traffic.clone())
                .unwrap_or_default();
            row(
                &mut out,
                format!("  -> {}", SocketAddr::new(r.addr, r.port)),
                &prev,
                &r.traffic,
            );
        }
    }
    out
}

/// ipvsadm's 9-column numbers: exact below 10^8, then K, M, G, T.
fn large(n: u64) -> String {
    const STEPS: [(u64, u64, char); 4] = [
        (1_000_000_000, 1_000, 'K'),
        (100_000_000_000, 1_000_000, 'M'),
        (100_000_000_000_000, 1_000_000_000, 'G'),
        (u64::MAX, 1_000_000_000_000, 'T'),
    ];
    if n < 100_000_000 {
        return format!("{n:>9}");
    }
    let (_, div, unit) = STEPS
        .iter()
        .find(|(below, _, _)| n < *below)
        .copied()
        .unwrap_or(STEPS[3]);
    format!("{:>8}{unit}", n / div)
}

#[cfg(test)]
mod tests {
    use super::{super::protocol::*, *};

    fn sample() -> Vec<ServiceStatus> {
        let real = |addr: &str, weight, flows, packets, bytes| RealStatus {
            addr: addr.parse().unwrap(),
            port: 80,
            weight,
            healthy: true,
            inhibit_on_failure: false,
            draining: false,
            last_check: None,
            check_micros: None,
            local_errors: 0,
            last_local_error: None,
            mac: None,
            active_flows: flows,
            inactive_flows: 0,
            traffic: Traffic {
                packets,
                bytes,
                new_flows: flows,
            },
        };
        vec![ServiceStatus {
            protocol: "TCP".into(),
            vip: "10.95.84.63".parse().unwrap(),
            port: 80,
            scheduler: "wlc".into(),
            persistence_timeout: 0,
            traffic: Traffic {
                packets: 36,
                bytes: 2464,
                new_flows: 6,
            },
            quorum: QuorumStatus {
                up: true,
                live_weight: 3,
                quorum: 1,
                hysteresis: 0,
            },
            reals: vec![
                real("10.95.84.69", 1, 2, 12, 825),
                real("10.95.84.74", 2, 4, 24, 1639),
            ],
        }]
    }

    #[test]
    fn list_matches_ipvsadm_columns() {
        let text = list(&sample(), Some(4096));
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.95.84.63:80 wlc\n",
            "  -> 10.95.84.69:80               Route   1      2          0         \n",
            "  -> 10.95.84.74:80               Route   2      4          0         \n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn one_service_is_listed_without_the_version_line_and_all_in_ipvsadm_order() {
        let text = list(&sample(), None);
        assert!(
            text.starts_with("Prot LocalAddress:Port Scheduler Flags\n"),
            "{text}"
        );
        let mut services = sample();
        let mut udp = services[0].clone();
        udp.protocol = "UDP".into();
        udp.vip = "10.0.0.1".parse().unwrap();
        let mut v6 = services[0].clone();
        v6.vip = "2001:db8::1".parse().unwrap();
        let mut low_port = services[0].clone();
        low_port.port = 53;
        services.extend([udp, v6, low_port]);
        sort(&mut services);
        let order: Vec<String> = services
            .iter()
            .map(|s| format!("{} {}", s.protocol, SocketAddr::new(s.vip, s.port)))
            .collect();
        assert_eq!(
            order,
            [
                "TCP 10.95.84.63:53",
                "TCP 10.95.84.63:80",
                "TCP [2001:db8::1]:80",
                "UDP 10.0.0.1:80"
            ]
        );
    }

    #[test]
    fn stats_matches_ipvsadm_columns() {
        let text = stats(&sample(), Some(4096));
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.95.84.63:80                      6       36        0     2464        0\n",
            "  -> 10.95.84.69:80                      2       12        0      825        0\n",
            "  -> 10.95.84.74:80                      4       24        0     1639        0\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn rate_is_the_difference_per_second() {
        let before = sample();
        let mut after = sample();
        after[0].traffic = Traffic {
            packets: 36 + 200,
            bytes: 2464 + 30_000,
            new_flows: 6 + 10,
        };
        let text = rate(&before, &after, Duration::from_secs(2), Some(4096));
        assert!(text.contains(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
        ));
        assert!(
            text.contains(
                "TCP  10.95.84.63:80                      5      100        0    15000        0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  -> 10.95.84.69:80                      0        0        0        0        0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn large_numbers_use_ipvsadm_units() {
        assert_eq!(large(99_999_999), " 99999999");
        assert_eq!(large(1_030_000_000), "    1030M");
        assert_eq!(large(863_494_000), "  863494K");
        assert_eq!(large(150_000_000_000), "     150G");
    }

    #[test]
    fn persistent_services_show_the_flag_and_v6_is_bracketed() {
        let mut s = sample();
        s[0].persistence_timeout = 300;
        s[0].vip = "2001:db8::1".parse().unwrap();
        assert!(list(&s, Some(4096)).contains("TCP  [2001:db8::1]:80 wlc persistent 300\n"));
    }
}
