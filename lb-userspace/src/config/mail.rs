//! keepalived's alert mails: the `global_defs` settings (`smtp_server`,
//! `notification_email`, ...) and the `smtp_alert [on|off]` of
//! vrrp_instance, vrrp_sync_group, virtual_server and real_server, with
//! keepalived's defaults (2.2.7, global_parser.c and the completion of each
//! block): a block's own `smtp_alert` wins, then `smtp_alert_vrrp` (VRRP
//! blocks) or `smtp_alert_checker` (LVS blocks), then `smtp_alert`; with
//! none, VRRP blocks and virtual servers send no mail and real servers do.
//! Mail is sent only when a server and at least one recipient are set.

use std::{fmt::Write as _, net::IpAddr, time::Duration};

use serde::{Serialize, Serializer};

use super::{
    diag::Diagnostics,
    model::{Config, GlobalDefs},
    tree::Node,
    values::{flag, int, one, switch},
};

/// keepalived's SMTP_PORT_STR.
pub const SMTP_PORT: u16 = 25;
/// keepalived's DEFAULT_SMTP_CONNECTION_TIMEOUT.
pub const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `smtp_server HOST [PORT]`: an address or a name, resolved when a mail goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// The `global_defs` mail settings; `None` means unset (the defaults are
/// the running host's, filled in by the sender: router_id and HELO the
/// host name, the sender `USER@HOST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailSettings {
    pub smtp_server: Option<SmtpServer>,
    pub smtp_helo_name: Option<String>,
    /// `smtp_connect_timeout`: bounds the connection and the whole exchange.
    #[serde(serialize_with = "secs")]
    pub smtp_connect_timeout: Duration,
    /// `notification_email { ... }`: the recipients.
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    /// `smtp_alert`, `smtp_alert_vrrp`, `smtp_alert_checker`: the defaults
    /// of the blocks' own `smtp_alert`.
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    /// `no_email_faults`: no mail when an instance or group enters FAULT.
    pub no_email_faults: bool,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: SMTP_CONNECT_TIMEOUT,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: false,
        }
    }
}

impl MailSettings {
    /// Whether any mail can go: a server and a recipient (keepalived).
    pub fn enabled(&self) -> bool {
        self.smtp_server.is_some() && !self.notification_email.is_empty()
    }

    /// A vrrp_instance's or vrrp_sync_group's `smtp_alert` in force.
    pub fn vrrp(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_vrrp)
            .or(self.smtp_alert)
            .unwrap_or(false)
    }

    /// A virtual_server's `smtp_alert` in force (its quorum mails).
    pub fn virtual_server(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker)
            .or(self.smtp_alert)
            .unwrap_or(false)
    }

    /// A real_server's `smtp_alert` in force: on by default, as keepalived
    /// keeps it for backward compatibility.
    pub fn real_server(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker)
            .or(self.smtp_alert)
            .unwrap_or(true)
    }
}

/// An address as a recipient or sender may be written: `local@domain`,
/// nothing that would break a header or an SMTP command.
fn address_ok(a: &str) -> bool {
    let addr = match (a.rfind('<'), a.strip_suffix('>')) {
        // `Name <local@domain>` (notification_email_from).
        (Some(i), Some(inner)) => &inner[i + 1..],
        _ => a,
    };
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
}

/// A host name of letters, digits, dots and dashes.
fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !h.starts_with(['-', '.'])
}

/// Every word of the statement, space-joined (keepalived's set_value).
fn words(k: &Node) -> String {
    k.args
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads one mail keyword of `global_defs` into `g`; false if `k` is not one.
pub fn global(k: &Node, g: &mut GlobalDefs, d: &mut Diagnostics) -> bool {
    let m = &mut g.mail;
    match k.keyword.as_str() {
        // `lvs_id` is keepalived 1.x's name for router_id.
        "router_id" | "lvs_id" => {
            if k.args.is_empty() {
                d.error(&k.at, format!("{} needs a value", k.keyword));
            } else {
                g.router_id = Some(words(k));
            }
        }
        "smtp_server" => {
            let (Some(host), port) = (k.arg(0), k.arg(1)) else {
                d.error(
                    &k.at,
                    "smtp_server needs an address: `smtp_server 10.0.0.25 [PORT]`",
                );
                return true;
            };
            if k.args.len() > 2 {
                d.warn(&k.at, "smtp_server: values after the port ignored");
            }
            let port = match port.map(str::parse::<u16>) {
                None => Some(SMTP_PORT),
                Some(Ok(p)) if p > 0 => Some(p),
                Some(_) => {
                    d.error(
                        &k.at,
                        format!(
                            "smtp_server {host} {}: the port must be from 1 to 65535",
                            k.arg(1).unwrap_or_default()
                        ),
                    );
                    None
                }
            };
            if host.parse::<IpAddr>().is_err() && !host_ok(host) {
                d.error(
                    &k.at,
                    format!("smtp_server {host}: not an IP address or a host name"),
                );
            } else if let Some(port) = port {
                m.smtp_server = Some(SmtpServer {
                    host: host.to_string(),
                    port,
                });
            }
        }
        "smtp_helo_name" => m.smtp_helo_name = one(k, d).map(String::from),
        "smtp_connect_timeout" => {
            if let Some(s) = int(k, 0u32, 86_400, d) {
                if s == 0 {
                    d.warn(
                        &k.at,
                        "smtp_connect_timeout must be greater than 0, set to 1",
                    );
                }
                m.smtp_connect_timeout = Duration::from_secs(u64::from(s.max(1)));
            }
        }
        "notification_email" => {
            let listed: Vec<&Node> = k.block.iter().flatten().collect();
            if listed.is_empty() {
                d.warn(
                    &k.at,
                    "notification_email: the block is empty, no mail will be sent",
                );
            }
            for e in listed {
                // Each word of each line is an address (keepalived's value block).
                for w in std::iter::once(e.keyword.as_str())
                    .chain(e.args.iter().map(|a| a.text.as_str()))
                {
                    if address_ok(w) {
                        m.notification_email.push(w.to_string());
                    } else {
                        d.error(&e.at, format!("notification_email {w}: not a mail address"));
                    }
                }
            }
        }
        "notification_email_from" => {
            let from = words(k);
            if from.is_empty() {
                d.error(&k.at, "notification_email_from needs an address");
            } else if !address_ok(&from) {
                d.error(
                    &k.at,
                    format!("notification_email_from {from}: not a mail address"),
                );
            } else {
                m.notification_email_from = Some(from);
            }
        }
        "smtp_alert" => m.smtp_alert = switch(k, d).or(m.smtp_alert),
        "smtp_alert_vrrp" => m.smtp_alert_vrrp = switch(k, d).or(m.smtp_alert_vrrp),
        "smtp_alert_checker" => m.smtp_alert_checker = switch(k, d).or(m.smtp_alert_checker),
        "no_email_faults" => m.no_email_faults = flag(k, d),
        _ => return false,
    }
    true
}

/// What `xdpvs check` says about the mails `config` sends.
pub fn summary(config: &Config) -> String {
    let m = &config.global.mail;
    let Some(server) = m.smtp_server.as_ref().filter(|_| m.enabled()) else {
        let missing = if m.smtp_server.is_none() {
            "no smtp_server"
        } else {
            "no notification_email"
        };
        return format!("alert mails: none ({missing})");
    };
    let count = |flags: &mut dyn Iterator<Item = bool>| -> (usize, usize) {
        flags.fold((0, 0), |(on, all), f| (on + usize::from(f), all + 1))
    };
    let instances = count(&mut config.vrrp_instances.iter().map(|i| m.vrrp(i.smtp_alert)));
    let groups = count(&mut config.sync_groups.iter().map(|g| m.vrrp(g.smtp_alert)));
    let services = count(
        &mut config
            .virtual_servers
            .iter()
            .map(|v| m.virtual_server(v.smtp_alert)),
    );
    let reals = count(
        &mut config
            .virtual_servers
            .iter()
            .flat_map(|v| &v.reals)
            .map(|r| m.real_server(r.smtp_alert)),
    );
    let mut out = format!(
        "alert mails: to {} via {server} (timeout {}s), from {}, router_id {}",
        m.notification_email.join(", "),
        m.smtp_connect_timeout.as_secs(),
        m.notification_email_from.as_deref().unwrap_or("USER@HOST"),
        config
            .global
            .router_id
            .as_deref()
            .unwrap_or("the host name"),
    );
    let _ = write!(
        out,
        "; smtp_alert on for {}/{} vrrp_instance, {}/{} vrrp_sync_group, {}/{} virtual_server (quorum), {}/{} real_server",
        instances.0, instances.1, groups.0, groups.1, services.0, services.1, reals.0, reals.1
    );
    if m.no_email_faults {
        out.push_str("; no_email_faults");
    }
    out
}
