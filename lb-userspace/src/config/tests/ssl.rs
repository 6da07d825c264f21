//! SSL_GET and `virtualhost`: the fields keepalived.conf(5) gives them, where
//! a virtual host is inherited from, and what is refused.

use std::time::Duration;

use super::*;

/// `checks` inside `real_server 10.0.0.2 443` of `virtual_server 10.0.0.1 443`,
/// with `vs` and `rs` as extra lines of those blocks.
fn service(vs: &str, rs: &str, checks: &str) -> String {
    format!(
        "virtual_server 10.0.0.1 443 {{\n{vs} real_server 10.0.0.2 443 {{\n{rs}{checks} }}\n}}\n"
    )
}

fn checks(text: &str) -> Vec<HealthCheck> {
    ok(text).config.virtual_servers[0].reals[0].checks.clone()
}

#[test]
fn ssl_get_reads_http_get_fields_and_enable_sni() {
    let text = service(
        "",
        "",
        "  SSL_GET {\n   url {\n    path /health\n    status_code 200-201 503\n    digest 9B3A0C85A887A256D6939DA88AABD8CD\n    virtualhost www.example.test\n   }\n   connect_ip 10.0.0.9\n   connect_port 8443\n   bindto 10.0.0.1\n   connect_timeout 2\n   retry 4\n   delay_before_retry 0.5\n   enable_sni\n  }\n",
    );
    let l = ok(&text);
    assert_eq!(warnings(&l), Vec::<String>::new());
    let [HealthCheck::SslGet(s)] = &l.config.virtual_servers[0].reals[0].checks[..] else {
        panic!("{:?}", l.config.virtual_servers[0].reals[0].checks)
    };
    assert!(s.enable_sni);
    assert_eq!(
        s.http.urls,
        [Url {
            path: "/health".into(),
            status_codes: vec![200, 201, 503],
            digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
            virtualhost: Some("www.example.test".into()),
            regex: None,
            protocol: Default::default(),
        }]
    );
    let c = &s.http.connect;
    assert_eq!(
        (
            c.connect_ip,
            c.connect_port,
            c.bindto,
            c.connect_timeout,
            c.timing.retry,
            c.timing.delay_before_retry
        ),
        (
            Some(ip("10.0.0.9")),
            Some(8443),
            Some(ip("10.0.0.1")),
            Duration::from_secs(2),
            4,
            Duration::from_millis(500)
        )
    );
    // SNI is off unless asked for, as in keepalived.
    let [HealthCheck::SslGet(s)] = &checks(&service(
        "",
        "",
        "  SSL_GET {\n   url {\n    path /\n   }\n  }\n",
    ))[..] else {
        panic!()
    };
    assert!(!s.enable_sni);
    assert_eq!(s.http.urls[0].virtualhost, None);
}

#[test]
fn virtualhost_comes_from_the_url_the_checker_the_real_or_the_service() {
    let urls = "   url {\n    path /own\n    virtualhost url.test\n   }\n   url {\n    path /inherited\n   }\n";
    let hosts = |text: &str| -> Vec<Vec<Option<String>>> {
        checks(text)
            .iter()
            .map(|c| match c {
                HealthCheck::HttpGet(h) | HealthCheck::SslGet(SslCheck { http: h, .. }) => {
                    h.urls.iter().map(|u| u.virtualhost.clone()).collect()
                }
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let some = |h: &str| Some(h.to_string());
    // The service's, even when written after the real.
    let text = format!(
        "virtual_server 10.0.0.1 443 {{\n real_server 10.0.0.2 443 {{\n  HTTP_GET {{\n{urls}  }}\n }}\n virtualhost vs.test\n}}\n"
    );
    assert_eq!(hosts(&text), [[some("url.test"), some("vs.test")]]);
    // The real's over the service's, the checker's over the real's.
    let text = service(
        " virtualhost vs.test\n",
        "  virtualhost rs.test\n",
        &format!(
            "  HTTP_GET {{\n{urls}  }}\n  SSL_GET {{\n   virtualhost check.test\n{urls}  }}\n"
        ),
    );
    assert_eq!(
        hosts(&text),
        [
            [some("url.test"), some("rs.test")],
            [some("url.test"), some("check.test")]
        ]
    );
    // None anywhere: the check sends the address it connects to.
    let text = service("", "", &format!("  HTTP_GET {{\n{urls}  }}\n"));
    assert_eq!(hosts(&text), [[some("url.test"), None]]);
}

#[test]
fn ssl_get_and_virtualhost_in_json() {
    let text = service(
        " virtualhost vs.test\n",
        "",
        "  SSL_GET {\n   url {\n    path /\n   }\n   enable_sni\n  }\n",
    );
    let c = ok(&text).config;
    let v: serde_json::Value = serde_json::from_str(&to_json(&c)).unwrap_or_else(|e| panic!("{e}"));
    let check = &v["virtual_servers"][0]["reals"][0]["checks"][0];
    assert_eq!(check["type"], "SSL_GET");
    assert_eq!(check["enable_sni"], true);
    assert_eq!(check["connect_timeout"], 5.0);
    assert_eq!(
        check["urls"][0],
        serde_json::json!({"path": "/", "status_codes": [], "digest": null, "virtualhost": "vs.test", "regex": null, "protocol": "1.0"})
    );
}

#[test]
fn refused_and_warned_ssl_get_settings() {
    assert_eq!(
        errors(&service("", "", "  SSL_GET {\n   enable_sni\n  }\n")),
        ["k.conf:3: error: SSL_GET needs at least one url { path ... } block"]
    );
    assert_eq!(
        errors(&service(
            "",
            "",
            "  SSL_GET {\n   url {\n    path health\n    virtualhost \"a b\"\n   }\n  }\n"
        )),
        [
            "k.conf:5: error: path health: must be an HTTP request path such as /health or /status?full",
            "k.conf:6: error: virtualhost a b: must be a host name, with no spaces or control characters",
        ]
    );
    let l = ok(&service(
        "",
        "",
        "  SSL_GET {\n   url {\n    path /a\n   }\n   url {\n    path /b\n    virtualhost 10.0.0.2\n   }\n   enable_sni\n   http_protocol 1.0\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n   enable_sni\n  }\n",
    ));
    assert_eq!(
        warnings(&l),
        [
            "k.conf:11: warning: enable_sni: url /a has no virtualhost, so no server name is sent",
            "k.conf:11: warning: enable_sni: virtualhost 10.0.0.2 is not a DNS name, so no server name is sent",
            "k.conf:18: warning: enable_sni: not acted on by xdpvs (SNI is TLS's: acted on in SSL_GET), ignored",
        ]
    );
}
