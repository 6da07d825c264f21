//! keepalived.conf: the grammar real files use, read into the model xdpvs
//! acts on, with every problem reported as `file:line: severity: message`.
//!
//! Stages: `reader` (files and `include`, within `limits`), `params`
//! (`@ID` lines and `$NAME` parameters), `lexer` (tokens, comments, quotes,
//! Unicode blanks), `tree` (statements and blocks), then `vrrp` and `lvs`
//! read the blocks into `model`, and `check` validates across blocks;
//! `keywords` is the table of what xdpvs does with each keyword. Pure: no
//! I/O beyond reading the files, no clock.
//!
//! # JSON (`xdpvs check FILE --json` prints [`to_json`])
//!
//! One object, the [`Config`] with every default filled in:
//! ```text
//! { "global": { "vrrp_version": 2, "router_id": "LVS_DEVEL" | null,
//!               "announce": { "table", "protocol", "require": "any" | "all" } | null,
//!               "sync": { "interface", "instance", "id", "port", "group",
//!                         "peers", "location" } | null,
//!               "capacity": { "services", "reals", "flows" },
//!               "enable_script_security", "script_user": { "user", "group" } | null,
//!               "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_skip_check_adv_addr",
//!               "rs_init_notifies", "disable_local_igmp", "default_interface",
//!               "vrrp_startup_delay", "vrrp_delay_after_boot": seconds | null,
//!               "notify_fifos": { "all" / "vrrp" / "lvs": { "path", "owner",
//!                                   "script": { "command", "user", "location" } | null,
//!                                   "location" } | null },
//!               "startup_script" / "shutdown_script": { "command", "user", "timeout",
//!                                   "location" } | null,
//!               "lvs_timeouts": { "tcp", "tcpfin", "udp" } (null: IPVS's default),
//!               "mail": { "smtp_server": { "host", "port" } | null, "smtp_helo_name",
//!                         "smtp_connect_timeout", "notification_email": [ ... ],
//!                         "notification_email_from", "smtp_alert", "smtp_alert_vrrp",
//!                         "smtp_alert_checker", "no_email_faults" },
//!               "garp": { as an instance's "garp" }, "garp_pacing": { "garp_interval",
//!               "gna_interval" }, "lower_prio_no_advert", "higher_prio_send_advert",
//!               "net_namespace": "NAME" | null },
//!   "vrrp_scripts":   [ { "name", "script", "interval", "timeout", "weight",
//!                         "rise", "fall", "init_fail", "user": { "user", "group" } | null,
//!                         "location" } ],
//!   "vrrp_instances": [ { "name", "initial_state": "MASTER" | "BACKUP",
//!                         "interface", "vrid", "priority", "advert_int",
//!                         "version", "preempt", "preempt_delay",
//!                         "mcast_src_ip", "unicast_src_ip", "unicast_peers",
//!                         "auth": { "type": "PASS", "password" } | null,
//!                         "vips" / "excluded_vips": [ { "addr", "prefix", "dev", "label",
//!                                   "broadcast", "scope", "home", "noprefixroute",
//!                                   "no_track", "preferred_lft" } ],
//!                         "track_scripts" / "track_interfaces": [ { "name", "weight" } ],
//!                         "notify": { "master", "backup", "fault", "stop", "any" }
//!                                   (each { "command", "user" } | null),
//!                         "garp": { "master_delay", "master_repeat",
//!                                   "master_refresh", "master_refresh_repeat",
//!                                   "lower_prio_delay", "lower_prio_repeat" },
//!                         "lower_prio_no_advert", "higher_prio_send_advert",
//!                         "dont_track_primary", "notify_master_rx_lower_pri",
//!                         "track_files" / "track_processes": [ { "name", "weight", "reverse" } ],
//!                         "skip_check_adv_addr", "smtp_alert", "down_timer_adverts",
//!                         "promote_secondaries", "mcast_dst_ip",
//!                         "virtual_routes": [ { "kind": "unicast" | "blackhole" |
//!                                   "unreachable" | "prohibit", "dst", "prefix", "src",
//!                                   "via", "dev", "table", "metric", "scope",
//!                                   "protocol", "location" } ],
//!                         "virtual_rules": [ { "v6", "from": ["addr", len] | null,
//!                                   "to", "table", "priority", "iif", "oif",
//!                                   "fwmark": [mark, mask | null] | null, "location" } ],
//!                         "location" } ],
//!   "static_routes":  [ { as "virtual_routes" below } ],
//!   "static_rules":   [ { as "virtual_rules" below } ],
//!   "static_addresses": [ { as "vips" } ],
//!   "ssl": { "certificate", "key", "ca", "location" } | null,
//!   "garp_groups":    [ { "garp_interval", "gna_interval", "interfaces", "location" } ],
//!   "track_files":    [ { "name", "path", "weight", "reverse",
//!                         "init": { "value", "overwrite" } | null, "location" } ],
//!   "track_processes": [ { "name", "process", "params", "param_match": "none" | "exact" |
//!                         "partial" | "initial", "full_command", "weight", "reverse",
//!                         "quorum", "quorum_max", "fork_delay", "terminate_delay", "location" } ],
//!   "sync_groups":    [ { "name", "members", "notify", "smtp_alert", "track_scripts",
//!                         "track_interfaces", "track_files", "track_processes",
//!                         "tracking_weight", "location" } ],
//!   "virtual_servers": [ { "addr", "port", "group": "NAME" | null,
//!                          "protocol": "TCP" | "UDP",
//!                          "delay_loop", "scheduler", "persistence_timeout",
//!                          "sorry_server": "ip:port" | null, "alpha", "smtp_alert",
//!                          "reals": [ { "addr", "port", "weight", "inhibit_on_failure",
//!                                       "smtp_alert", "checks", "location" } ],
//!                          "location" } ] }
//! ```
//! Durations are seconds as numbers (`0.5`), addresses are strings, absent
//! options are `null` (an absent `smtp_alert`: the global default, see `mail`), `location` is `"file:line"`. A check is an object with
//! `"type"`: `"TCP_CHECK"` (`connect_ip`, `connect_port`, `bindto`,
//! `connect_timeout`, `retry`, `delay_before_retry`), `"HTTP_GET"` (the same
//! plus `urls`: `[{ "path", "status_codes", "digest", "virtualhost" }]`, empty
//! `status_codes` meaning any 2xx, `virtualhost` the one in force for the
//! url), `"SSL_GET"` (HTTP_GET's plus `enable_sni`), `"MISC_CHECK"`
//! (`misc_path`, `misc_timeout`, `misc_dynamic`, `user`), `"UDP_CHECK"` (the
//! connect fields plus `payload` hex | null, `require_reply`, `reply_pattern`
//! hex with `x` | null, `min_reply_length`, `max_reply_length`),
//! `"PING_CHECK"` (the connect fields), `"DNS_CHECK"` (plus `query_type`,
//! `name`), `"SMTP_CHECK"` (plus `helo_name`) or `"FILE_CHECK"`
//! (`track_file`, `path`, `weight`, `reverse`).

mod check;
mod diag;
pub mod fifo;
mod keywords;
mod lexer;
pub mod limits;
mod lvs;
pub mod mail;
mod model;
mod params;
mod reader;
mod routes;
mod strict;
mod tree;
mod values;
mod vrrp;

use std::{fmt::Write as _, path::Path};

use self::{check::Reference, diag::Diagnostics, tree::Node};
pub use self::{
    diag::{Diagnostic, Location, Severity},
    lvs::SCHEDULERS,
    model::*,
};

/// A configuration that can be acted on, and what was said about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Warnings and notes, in the order of the files and lines they name.
    pub diagnostics: Vec<Diagnostic>,
}

/// A configuration refused: every error, with the warnings and notes around them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(diagnostics))]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

/// One diagnostic a line.
fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        let sep = if i == 0 { "" } else { "\n" };
        let _ = write!(out, "{sep}{d}");
    }
    out
}

/// How a file is read beyond its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// keepalived's `-i`/`--config-id`: lines `@ID ...` are read only when
    /// ID is this, lines `@^ID ...` only when it is not. `None` (no id)
    /// skips every `@ID` line. keepalived defaults it to the node name; the
    /// command line does the same.
    pub config_id: Option<String>,
}

impl Options {
    fn selection(&self) -> reader::Selection<'_> {
        reader::Selection {
            config_id: self.config_id.as_deref(),
        }
    }
}

/// Reads `path` and the files it includes, without a config id.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &Options::default())
}

/// Reads `path` and the files it includes.
pub fn load_with(path: &Path, options: &Options) -> Result<Loaded, ConfigError> {
    let mut d = Diagnostics::default();
    let tokens = reader::read_file(path, options.selection(), &mut d);
    finish(tokens, d)
}

/// Reads a configuration held in memory; `name` is used in diagnostics.
/// `include` is followed relative to `name`'s directory when `name` is
/// absolute, and never relative to the working directory.
pub fn parse_str(text: &str, name: &Path) -> Result<Loaded, ConfigError> {
    parse_str_with(text, name, &Options::default())
}

/// [`parse_str`] with options.
pub fn parse_str_with(text: &str, name: &Path, options: &Options) -> Result<Loaded, ConfigError> {
    let mut d = Diagnostics::default();
    let tokens = reader::read_text(text, name, options.selection(), &mut d);
    finish(tokens, d)
}

/// The model as `xdpvs check --json` prints it (see the module doc).
pub fn to_json(config: &Config) -> String {
    // Plain structs of strings and numbers: serialization cannot fail.
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn finish(tokens: reader::Chunks, mut d: Diagnostics) -> Result<Loaded, ConfigError> {
    let nodes = tree::parse(tokens, &mut d);
    let mut refs = Vec::new();
    let config = build(&nodes, &mut refs, &mut d);
    check::across_blocks(&config, &refs, &mut d);
    strict::refusals(&config, &mut d);
    let refused = d.has_errors();
    let diagnostics = d.finish();
    if refused {
        return Err(ConfigError { diagnostics });
    }
    Ok(Loaded {
        config,
        diagnostics,
    })
}

fn build(nodes: &[Node], refs: &mut Vec<Reference>, d: &mut Diagnostics) -> Config {
    let mut config = Config::default();
    // global_defs first, wherever it is: it sets the instances' default version.
    for n in nodes.iter().filter(|n| n.keyword == "global_defs") {
        vrrp::global_defs(n, &mut config.global, d);
    }
    vrrp::old_sync_daemon(nodes, &mut config.global, d);
    vrrp::sync_peers(&mut config.global, d);
    // Groups first too: a virtual_server may name one defined after it.
    let vs_groups = lvs::groups(nodes, d);
    let mut garp_taken = std::collections::HashSet::new();
    for n in nodes {
        match n.keyword.as_str() {
            "global_defs" => {}
            "vrrp_script" => config.vrrp_scripts.extend(vrrp::vrrp_script(n, d)),
            "vrrp_instance" => {
                config
                    .vrrp_instances
                    .extend(vrrp::vrrp_instance(n, &config.global, refs, d))
            }
            // Read once every instance is known: old files list them bare.
            "vrrp_sync_group" => {}
            "virtual_server" => config
                .virtual_servers
                .extend(lvs::virtual_server(n, &vs_groups, d)),
            "virtual_server_group" => {}
            "static_rules" => config.static_rules.extend(
                n.block
                    .iter()
                    .flatten()
                    .filter_map(|r| routes::rule(r, "static_rules", d)),
            ),
            "static_routes" => config.static_routes.extend(
                n.block
                    .iter()
                    .flatten()
                    .filter_map(|r| routes::route(r, "static_routes", d)),
            ),
            "static_ipaddress" => config.static_addresses.extend(vrrp::static_addresses(
                n,
                config.global.default_interface.as_deref(),
                d,
            )),
            "garp_group" => config
                .garp_groups
                .extend(vrrp::garp_group(n, &mut garp_taken, d)),
            "track_file" | "vrrp_track_file" => config.track_files.extend(vrrp::track_file(n, d)),
            "vrrp_track_process" | "track_process" => {
                config.track_processes.extend(vrrp::track_process(n, d))
            }
            "net_namespace" => {
                let before = config.global.net_namespace.take();
                config.global.net_namespace = vrrp::net_namespace(n, before, d);
            }
            "net_namespace_ipvs" => vrrp::refuse_net_namespace_ipvs(n, d),
            "bfd_instance" => lvs::refuse_bfd(n, d),
            "SSL" => config.ssl = lvs::ssl_client(n, d),
            _ => keywords::unhandled(keywords::TOP, n, d),
        }
    }
    let instances: std::collections::HashSet<&str> = config
        .vrrp_instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let groups: Vec<SyncGroup> = nodes
        .iter()
        .filter(|n| n.keyword == "vrrp_sync_group")
        .filter_map(|n| vrrp::sync_group(n, &instances, refs, d))
        .collect();
    config.sync_groups = groups;
    vrrp::group_tracking(&mut config, d);
    vrrp::file_checks(&mut config, d);
    config
}

#[cfg(test)]
mod tests;
