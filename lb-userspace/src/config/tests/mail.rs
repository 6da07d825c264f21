//! The alert-mail keywords as keepalived's files write them.

use std::time::Duration;

use super::*;
use crate::config::mail::{MailSettings, SmtpServer, summary};

/// keepalived's sample keepalived.conf global_defs, as distributions ship it.
const SAMPLE: &str = "global_defs {
   notification_email {
     acassen@firewall.loc
     failover@firewall.loc
     sysadmin@firewall.loc
   }
   notification_email_from Alexandre.Cassen@firewall.loc
   smtp_server 192.168.200.1
   smtp_connect_timeout 30
   router_id LVS_DEVEL
}
";

#[test]
fn keepalived_sample_global_defs() {
    let c = ok(SAMPLE).config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(
        c.global.mail,
        MailSettings {
            smtp_server: Some(SmtpServer {
                host: "192.168.200.1".into(),
                port: 25
            }),
            smtp_connect_timeout: Duration::from_secs(30),
            notification_email: vec![
                "acassen@firewall.loc".into(),
                "failover@firewall.loc".into(),
                "sysadmin@firewall.loc".into()
            ],
            notification_email_from: Some("Alexandre.Cassen@firewall.loc".into()),
            ..MailSettings::default()
        }
    );
    assert!(c.global.mail.enabled());
}

#[test]
fn defaults_send_nothing_and_real_servers_default_on() {
    let m = ok("global_defs {\n}\n").config.global.mail;
    assert_eq!(m.smtp_connect_timeout, Duration::from_secs(30));
    assert!(!m.enabled());
    // keepalived's completion of each block with nothing set.
    assert!(!m.vrrp(None) && !m.virtual_server(None) && m.real_server(None));
    assert!(m.vrrp(Some(true)) && !m.real_server(Some(false)));
}

#[test]
fn global_smtp_alert_and_its_vrrp_and_checker_overrides() {
    let m = ok("global_defs {\n smtp_alert\n smtp_alert_checker off\n}\n")
        .config
        .global
        .mail;
    assert_eq!(
        (m.smtp_alert, m.smtp_alert_vrrp, m.smtp_alert_checker),
        (Some(true), None, Some(false))
    );
    assert!(m.vrrp(None), "smtp_alert is the VRRP blocks' default");
    assert!(!m.virtual_server(None) && !m.real_server(None));
    assert!(m.real_server(Some(true)), "a block's own wins");
    let m = ok("global_defs {\n smtp_alert off\n smtp_alert_vrrp yes\n}\n")
        .config
        .global
        .mail;
    assert!(m.vrrp(None) && !m.real_server(None));
}

#[test]
fn every_on_off_word() {
    for (word, want) in [
        ("on", true),
        ("true", true),
        ("yes", true),
        ("off", false),
        ("false", false),
        ("no", false),
    ] {
        let c = ok(&instance(&format!(" smtp_alert {word}\n"))).config;
        assert_eq!(c.vrrp_instances[0].smtp_alert, Some(want), "{word}");
    }
    let bare = ok(&instance(" smtp_alert\n")).config;
    assert_eq!(bare.vrrp_instances[0].smtp_alert, Some(true));
    assert_eq!(ok(&instance("")).config.vrrp_instances[0].smtp_alert, None);
    assert_eq!(
        errors(&instance(" smtp_alert maybe\n")),
        ["k.conf:7: error: smtp_alert maybe: expected on/off, true/false or yes/no"]
    );
}

#[test]
fn smtp_alert_in_every_block() {
    let text = format!(
        "{}vrrp_sync_group G {{\n group {{\n  V\n }}\n smtp_alert off\n}}\nvirtual_server 10.0.0.1 80 {{\n smtp_alert\n real_server 10.0.0.2 80 {{\n  smtp_alert no\n  TCP_CHECK {{\n  }}\n }}\n real_server 10.0.0.3 80 {{\n }}\n}}\n",
        instance(" smtp_alert on\n")
    );
    let c = ok(&text).config;
    assert_eq!(c.vrrp_instances[0].smtp_alert, Some(true));
    assert_eq!(c.sync_groups[0].smtp_alert, Some(false));
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.smtp_alert, Some(true));
    assert_eq!(
        (vs.reals[0].smtp_alert, vs.reals[1].smtp_alert),
        (Some(false), None)
    );
}

#[test]
fn smtp_server_with_port_name_or_ipv6() {
    let server = |line: &str| {
        ok(&format!("global_defs {{\n {line}\n}}\n"))
            .config
            .global
            .mail
            .smtp_server
            .map(|s| s.to_string())
    };
    assert_eq!(
        server("smtp_server 10.0.0.25").as_deref(),
        Some("10.0.0.25:25")
    );
    assert_eq!(
        server("smtp_server 10.0.0.25 2525").as_deref(),
        Some("10.0.0.25:2525")
    );
    assert_eq!(
        server("smtp_server mail.example.com 587").as_deref(),
        Some("mail.example.com:587")
    );
    assert_eq!(
        server("smtp_server fd00::25 26").as_deref(),
        Some("[fd00::25]:26")
    );
    assert_eq!(
        errors("global_defs {\n smtp_server 10.0.0.25 99999\n smtp_server a/b\n smtp_server\n}\n"),
        [
            "k.conf:2: error: smtp_server 10.0.0.25 99999: the port must be from 1 to 65535",
            "k.conf:3: error: smtp_server a/b: not an IP address or a host name",
            "k.conf:4: error: smtp_server needs an address: `smtp_server 10.0.0.25 [PORT]`",
        ]
    );
}

#[test]
fn connect_timeout_helo_from_and_router_id() {
    let l = ok(
        "global_defs {\n smtp_connect_timeout 0\n smtp_helo_name lb1.example.com\n notification_email_from \"LB one <lb1@example.com>\"\n lvs_id LVS_MAIN\n}\n",
    );
    assert_eq!(
        warnings(&l),
        ["k.conf:2: warning: smtp_connect_timeout must be greater than 0, set to 1"]
    );
    let g = &l.config.global;
    assert_eq!(g.mail.smtp_connect_timeout, Duration::from_secs(1));
    assert_eq!(g.mail.smtp_helo_name.as_deref(), Some("lb1.example.com"));
    assert_eq!(
        g.mail.notification_email_from.as_deref(),
        Some("LB one <lb1@example.com>")
    );
    assert_eq!(
        g.router_id.as_deref(),
        Some("LVS_MAIN"),
        "lvs_id is router_id"
    );
    assert_eq!(
        errors(
            "global_defs {\n smtp_connect_timeout soon\n notification_email_from nobody\n router_id\n}\n"
        ),
        [
            "k.conf:2: error: smtp_connect_timeout soon: must be a whole number from 0 to 86400",
            "k.conf:3: error: notification_email_from nobody: not a mail address",
            "k.conf:4: error: router_id needs a value",
        ]
    );
}

#[test]
fn notification_email_words_and_one_line_blocks() {
    let c = ok("global_defs {\n notification_email { a@example.com }\n notification_email {\n  b@example.com c@example.com\n }\n}\n").config;
    assert_eq!(
        c.global.mail.notification_email,
        ["a@example.com", "b@example.com", "c@example.com"]
    );
    let l = ok("global_defs {\n notification_email {\n }\n}\n");
    assert_eq!(
        warnings(&l),
        ["k.conf:2: warning: notification_email: the block is empty, no mail will be sent"]
    );
    assert_eq!(
        errors("global_defs {\n notification_email {\n  root\n  a@b,c@d\n }\n}\n"),
        [
            "k.conf:3: error: notification_email root: not a mail address",
            "k.conf:4: error: notification_email a@b,c@d: not a mail address",
        ]
    );
}

#[test]
fn no_email_faults_and_the_old_helo_keyword() {
    let l = ok("global_defs {\n no_email_faults\n smtp_helo lb1\n}\n");
    assert!(l.config.global.mail.no_email_faults);
    // keepalived's keyword is smtp_helo_name; smtp_helo is unknown to it too.
    assert_eq!(
        warnings(&l),
        ["k.conf:3: warning: unknown keyword smtp_helo in global_defs, ignored"]
    );
}

#[test]
fn the_check_summary() {
    let none = ok("global_defs {\n notification_email {\n  a@example.com\n }\n}\n").config;
    assert_eq!(summary(&none), "alert mails: none (no smtp_server)");
    let text = format!(
        "{SAMPLE}{}virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n }}\n}}\n",
        instance(" smtp_alert\n")
    );
    assert_eq!(
        summary(&ok(&text).config),
        "alert mails: to acassen@firewall.loc, failover@firewall.loc, sysadmin@firewall.loc via \
         192.168.200.1:25 (timeout 30s), from Alexandre.Cassen@firewall.loc, router_id LVS_DEVEL; \
         smtp_alert on for 1/1 vrrp_instance, 0/0 vrrp_sync_group, 0/1 virtual_server (quorum), \
         1/1 real_server"
    );
}

#[test]
fn json_carries_the_mail_settings() {
    let json: serde_json::Value =
        serde_json::from_str(&to_json(&ok(&format!("{SAMPLE}{}", instance(""))).config))
            .expect("JSON");
    let mail = &json["global"]["mail"];
    assert_eq!(mail["smtp_server"]["host"], "192.168.200.1");
    assert_eq!(mail["smtp_server"]["port"], 25);
    assert_eq!(mail["smtp_connect_timeout"], 30.0);
    assert_eq!(mail["notification_email"][1], "failover@firewall.loc");
    assert_eq!(mail["smtp_alert"], serde_json::Value::Null);
    assert_eq!(
        json["vrrp_instances"][0]["smtp_alert"],
        serde_json::Value::Null
    );
}
