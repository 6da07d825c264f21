//! The checkers' keepalived settings beyond connect and retry: warmup,
//! delay_loop and alpha at every level, the sockets' bind_port / bind_if /
//! fwmark, url regexes, MISC_CHECK's timing, real notify scripts, and the
//! virtual_server settings xdpvs refuses with what to do instead.

use std::time::Duration;

use super::*;

fn vs(vs_body: &str, real_body: &str) -> String {
    format!(
        "virtual_server 10.0.0.100 80 {{\n delay_loop 6\n{vs_body} real_server 10.0.0.11 80 {{\n{real_body} }}\n}}\n"
    )
}

fn real(text: &str) -> RealServer {
    let l = ok(text);
    assert!(warnings(&l).is_empty(), "{:#?}", warnings(&l));
    l.config.virtual_servers[0].reals[0].clone()
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn warmup_cascades_from_virtual_server_to_real_to_checker() {
    let r = real(&vs(
        " warmup 30\n",
        "  warmup 20\n  TCP_CHECK {\n   warmup 10\n  }\n  TCP_CHECK {\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n",
    ));
    let w: Vec<_> = r
        .checks
        .iter()
        .map(|c| c.timing().and_then(|t| t.warmup))
        .collect();
    assert_eq!(w, [secs(10), secs(20), secs(20)]);
    let r = real(&vs(" warmup 30\n", "  TCP_CHECK {\n  }\n"));
    assert_eq!(r.checks[0].timing().and_then(|t| t.warmup), secs(30));
    let r = real(&vs("", "  TCP_CHECK {\n  }\n"));
    assert_eq!(
        r.checks[0].timing().and_then(|t| t.warmup),
        None,
        "no warmup unless asked"
    );
    assert!(
        errors(&vs("", "  TCP_CHECK {\n   warmup -1\n  }\n"))[0]
            .contains("warmup -1: must be a number of seconds, at least 0")
    );
}

#[test]
fn real_and_checker_delay_loop_and_alpha() {
    let r = real(&vs(
        " alpha\n",
        "  delay_loop 3\n  alpha no\n  TCP_CHECK {\n   delay_loop 2\n   alpha\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n   alpha false\n  }\n",
    ));
    assert_eq!((r.delay_loop, r.alpha), (secs(3), Some(false)));
    let own: Vec<_> = r
        .checks
        .iter()
        .filter_map(|c| c.timing().map(|t| (t.delay_loop, t.alpha)))
        .collect();
    assert_eq!(own, [(secs(2), Some(true)), (None, Some(false))]);
    let e = errors(&vs("", "  alpha maybe\n"));
    assert!(
        e[0].contains("alpha maybe: expected on/off, true/false or yes/no"),
        "{e:?}"
    );
    let e = errors(&vs("", "  delay_loop 0\n"));
    assert!(e[0].contains("delay_loop 0: must be a number of seconds, at least 0.001"));
}

#[test]
fn misc_check_retries_as_keepalived() {
    // MISC_CHECK's own default is retry 0.
    let r = real(&vs("", "  MISC_CHECK {\n   misc_path /bin/true\n  }\n"));
    let HealthCheck::MiscCheck(m) = &r.checks[0] else {
        panic!()
    };
    assert_eq!(
        (m.timing.retry, m.timing.delay_before_retry),
        (0, Duration::from_secs(1))
    );
    // The virtual_server's and real_server's settings apply to it too.
    let r = real(&vs(
        " retry 4\n",
        "  delay_before_retry 7\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n",
    ));
    let HealthCheck::MiscCheck(m) = &r.checks[0] else {
        panic!()
    };
    assert_eq!(
        (m.timing.retry, m.timing.delay_before_retry),
        (4, Duration::from_secs(7))
    );
    let r = real(&vs(
        "",
        "  MISC_CHECK {\n   misc_path /bin/true\n   retry 2\n   delay_before_retry 0.5\n   warmup 9\n   delay_loop 4\n  }\n",
    ));
    assert_eq!(
        *r.checks[0].timing().expect("a timed check"),
        Timing {
            retry: 2,
            delay_before_retry: Duration::from_millis(500),
            warmup: secs(9),
            delay_loop: secs(4),
            alpha: None,
        }
    );
}

#[test]
fn bind_port_bind_if_and_fwmark() {
    let r = real(&vs(
        "",
        "  TCP_CHECK {\n   bindto 10.0.0.2\n   bind_port 1000\n   bind_if eth1\n   fwmark 7\n  }\n  UDP_CHECK {\n   fwmark 0\n  }\n",
    ));
    let (HealthCheck::TcpCheck(t), HealthCheck::UdpCheck(u)) = (&r.checks[0], &r.checks[1]) else {
        panic!("{:?}", r.checks)
    };
    assert_eq!(
        (
            t.connect.bindto,
            t.connect.bind_port,
            t.connect.bind_if.as_deref(),
            t.connect.fwmark
        ),
        (Some(ip("10.0.0.2")), Some(1000), Some("eth1"), Some(7))
    );
    assert_eq!(u.connect.fwmark, None, "fwmark 0 is no mark");
    for (line, want) in [
        (
            "bind_port 0",
            "bind_port 0: must be a whole number from 1 to 65535",
        ),
        ("bind_if a/b", "bind_if a/b: not an interface name"),
        (
            "bind_if abcdefghijklmnopq",
            "bind_if abcdefghijklmnopq: not an interface name (at most 15 characters",
        ),
        (
            "fwmark -1",
            "fwmark -1: must be a whole number from 0 to 4294967295",
        ),
    ] {
        let e = errors(&vs("", &format!("  TCP_CHECK {{\n   {line}\n  }}\n")));
        assert!(e[0].contains(want), "{line}: {e:?}");
    }
    let e = errors(&vs("", "  PING_CHECK {\n   bind_port 1000\n  }\n"));
    assert_eq!(
        e,
        [
            "k.conf:5: error: bind_port: PING_CHECK sends ICMP echoes, which have no port; remove the line"
        ]
    );
}

fn url_regex(url_body: &str) -> Option<BodyRegex> {
    let r = real(&vs(
        "",
        &format!("  HTTP_GET {{\n   url {{\n    path /\n{url_body}   }}\n  }}\n"),
    ));
    let HealthCheck::HttpGet(h) = &r.checks[0] else {
        panic!()
    };
    h.urls[0].regex.clone()
}

#[test]
fn url_regex_with_keepalived_options() {
    assert_eq!(url_regex(""), None);
    let r = url_regex("    regex \"^status: (ok|fine)$\"\n").expect("a regex");
    assert_eq!(r.pattern, "^status: (ok|fine)$");
    assert!(!r.no_match);
    assert!(r.passes(b"status: ok"));
    assert!(!r.passes(b"status: bad"));
    assert!(
        !r.passes(b"x\nstatus: ok\n"),
        "no multiline: ^ is the body's start"
    );
    // Options in any order, before or after the regex.
    let r =
        url_regex("    regex_options caseless multiline\n    regex \"^STATUS: OK$\"\n").unwrap();
    assert_eq!(r.options, ["caseless", "multiline"]);
    assert!(r.passes(b"<html>\nstatus: ok\n</html>"));
    let r = url_regex("    regex error\n    regex_no_match\n").unwrap();
    assert!(r.no_match);
    assert!(r.passes(b"all good") && !r.passes(b"an error happened"));
    let r = url_regex("    regex a.b\n    regex_options dotall\n").unwrap();
    assert!(r.passes(b"a\nb"));
    // Bytes, as PCRE2 without utf: a body that is not UTF-8 still matches.
    let r = url_regex("    regex \"ok.$\"\n").unwrap();
    assert!(r.passes(b"ok\xff"));
}

#[test]
fn url_regex_refusals_say_what_to_do() {
    let url = |body: &str| {
        vs(
            "",
            &format!("  HTTP_GET {{\n   url {{\n    path /\n{body}   }}\n  }}\n"),
        )
    };
    let e = errors(&url("    regex ok\n    regex_options auto_callout\n"));
    assert!(
        e[0].starts_with(
            "k.conf:8: error: regex_options auto_callout: not supported by xdpvs's regex engine"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("caseless, multiline"), "{e:?}");
    let e = errors(&url("    regex \"(a)\\1\"\n"));
    assert!(
        e[0].starts_with("k.conf:7: error: regex \"(a)\\\\1\": "),
        "{e:?}"
    );
    assert!(e[0].contains("no look-around or back-references"), "{e:?}");
    let e = errors(&url("    regex two words\n"));
    assert!(e[0].contains("regex needs one pattern; quote it"), "{e:?}");
    let e = errors(&url("    regex_no_match\n"));
    assert_eq!(
        e,
        ["k.conf:7: error: regex_no_match and regex_options need a regex in the same url"]
    );
    let e = errors(&url("    regex ok\n    regex_max_offset 100\n"));
    assert!(e[0].contains("regex_max_offset is not supported"), "{e:?}");
}

#[test]
fn real_notify_scripts() {
    let r = real(&vs(
        "",
        "  notify_up \"/usr/local/bin/up.sh arg\"\n  notify_down /usr/local/bin/down.sh\n  TCP_CHECK {\n  }\n",
    ));
    assert_eq!(
        r.notify_up.as_ref().map(|s| s.command.as_str()),
        Some("/usr/local/bin/up.sh arg")
    );
    assert_eq!(
        r.notify_down.as_ref().map(|s| s.command.as_str()),
        Some("/usr/local/bin/down.sh")
    );
    let e = errors(&vs(" notify_up /bin/true\n", ""));
    assert_eq!(
        e,
        [
            "k.conf:3: error: notify_up belongs in each real_server block (keepalived runs it when that real goes up or down): move it there"
        ]
    );
}

#[test]
fn ha_suspend_and_omega() {
    let c = ok(&vs(" ha_suspend\n omega\n", "")).config;
    let v = &c.virtual_servers[0];
    assert!(v.ha_suspend && v.omega);
    let c = ok(&vs("", "")).config;
    assert!(!c.virtual_servers[0].ha_suspend && !c.virtual_servers[0].omega);
}

#[test]
fn thresholds_only_without_a_limit() {
    for kw in ["uthreshold", "lthreshold"] {
        // In the virtual_server (which keepalived does not read) and the real.
        for (v, r) in [
            (format!(" {kw} N\n"), String::new()),
            (String::new(), format!("  {kw} N\n")),
        ] {
            ok(&vs(&v.replace('N', "0"), &r.replace('N', "0")));
            let e = errors(&vs(&v.replace('N', "50"), &r.replace('N', "50")));
            assert!(
                e[0].contains(&format!(
                    "{kw} 50 is not supported: xdpvs does not limit a real's connections"
                )),
                "{e:?}"
            );
        }
    }
}

#[test]
fn persistence_granularity_full_mask_only() {
    // The full mask turns persistence on as keepalived does (360 s).
    let c = ok(&vs(" persistence_granularity 255.255.255.255\n", "")).config;
    assert_eq!(c.virtual_servers[0].persistence_timeout, 360);
    let c = ok(&vs(
        " persistence_timeout 50\n persistence_granularity 255.255.255.255\n",
        "",
    ))
    .config;
    assert_eq!(c.virtual_servers[0].persistence_timeout, 50);
    let e = errors(&vs(" persistence_granularity 255.255.255.0\n", ""));
    assert_eq!(
        e,
        [
            "k.conf:3: error: persistence_granularity 255.255.255.0 is not supported: xdpvs persists each client address on its own; remove the line or write `persistence_granularity 255.255.255.255`"
        ]
    );
    let v6 = "virtual_server 2001:db8::1 80 {\n persistence_granularity 128\n}\n";
    assert_eq!(ok(v6).config.virtual_servers[0].persistence_timeout, 360);
    let e = errors("virtual_server 2001:db8::1 80 {\n persistence_granularity 64\n}\n");
    assert!(
        e[0].contains("write `persistence_granularity 128`"),
        "{e:?}"
    );
}

#[test]
fn ops_and_bfd_are_refused_with_what_to_do() {
    let e = errors(&vs(" ops\n", ""));
    assert!(e[0].starts_with("k.conf:3: error: ops (one-packet scheduling) is not supported"));
    let e = errors(&vs("", "  BFD_CHECK {\n   name b\n  }\n"));
    assert!(
        e[0].starts_with("k.conf:4: error: BFD_CHECK is not supported: xdpvs runs no BFD.")
            && e[0].contains("run BFD in BIRD"),
        "{e:?}"
    );
    let e = errors("bfd_instance b {\n neighbor_ip 10.0.0.1\n}\n");
    assert!(
        e[0].starts_with("k.conf:1: error: bfd_instance is not supported"),
        "{e:?}"
    );
}

#[test]
fn shared_hash_flags_are_named_as_ignored() {
    let l = ok(&vs(" lb_algo sh\n sh-port\n sh-fallback\n", ""));
    let w = warnings(&l);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("sh-port: not acted on by xdpvs (IPVS scheduler flags: xdpvs's Maglev ring already hashes the client's port"),
        "{w:?}"
    );
}

#[test]
fn http_protocol_as_keepalived_sends_it() {
    let proto = |line: &str| {
        let c = ok(&vs(
            "",
            &format!("  HTTP_GET {{\n   url {{\n    path /\n   }}\n{line}  }}\n"),
        ))
        .config;
        match &c.virtual_servers[0].reals[0].checks[0] {
            HealthCheck::HttpGet(h) => h.urls[0].protocol,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(proto(""), HttpProtocol::Http10, "keepalived's default");
    assert_eq!(proto("   http_protocol 1.1\n"), HttpProtocol::Http11);
    assert_eq!(proto("   http_protocol 1.0C\n"), HttpProtocol::Http10Close);
    let e = errors(&vs(
        "",
        "  HTTP_GET {\n   url {\n    path /\n   }\n   http_protocol 2\n   fast_recovery\n  }\n",
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("http_protocol 2: expected 1.0, 1.0C or 1.1"),
        "{e:?}"
    );
    assert!(e[1].contains("fast_recovery is not supported"), "{e:?}");
}
