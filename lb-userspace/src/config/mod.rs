//! keepalived.conf: the grammar real files use, read into the model xdpvs
//! acts on, with every problem reported as `file:line: severity: message`.
//!
//! Stages: `lexer` (tokens, comments, quotes, Unicode blanks, `include`),
//! `tree` (statements and blocks), then `lvs` and `vrrp` read the blocks into
//! `model`, and `check` validates across blocks. Pure: no I/O beyond reading
//! the files.
//!
//! `xdpvs check FILE --json` prints `to_json`: an object with `global`
//! (`vrrp_version`, `router_id`), `vrrp_scripts`, `vrrp_instances`,
//! `sync_groups` and `virtual_servers`, each entry with every field of the
//! model and its default filled in; durations are seconds (numbers),
//! addresses strings, `location` is `"file:line"`, health checks carry a
//! `type` of `TCP_CHECK`, `HTTP_GET` or `MISC_CHECK`.

mod check;
mod diag;
mod lexer;
mod lvs;
mod model;
mod tree;
mod values;
mod vrrp;

use std::{fmt, path::Path, sync::Arc};

use self::{diag::Diagnostics, tree::Node};
pub use self::{
    diag::{Diagnostic, Location, Severity},
    model::*,
};

/// A configuration that can be acted on, and what was said about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Warnings and notes.
    pub diagnostics: Vec<Diagnostic>,
}

/// A configuration refused: every error, with the warnings around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(Diagnostic::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// Reads `path` and the files it includes.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let mut d = Diagnostics::default();
    let tokens = lexer::lex_file(path, &mut d);
    finish(tokens, d)
}

/// Reads a configuration held in memory; `name` is used in diagnostics and
/// `include` is resolved relative to its directory.
pub fn parse_str(text: &str, name: &Path) -> Result<Loaded, ConfigError> {
    let mut d = Diagnostics::default();
    let tokens = lexer::lex(text, &Arc::from(name), &mut d);
    finish(tokens, d)
}

fn finish(tokens: Vec<lexer::Token>, mut d: Diagnostics) -> Result<Loaded, ConfigError> {
    let nodes = tree::parse(tokens, &mut d);
    let config = build(&nodes, &mut d);
    check::across_blocks(&config, &mut d);
    if d.errors().next().is_some() {
        return Err(ConfigError { diagnostics: d.0 });
    }
    Ok(Loaded {
        config,
        diagnostics: d.0,
    })
}

/// Top-level blocks xdpvs reads past.
const IGNORED_BLOCKS: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "garp_group",
    "vrrp_track_file",
    "track_file",
    "vrrp_track_process",
    "track_process",
    "bfd_instance",
    "net_namespace",
    "instance",
];

fn build(nodes: &[Node], d: &mut Diagnostics) -> Config {
    let mut config = Config::default();
    // global_defs first: it sets the instances' default VRRP version.
    for n in nodes.iter().filter(|n| n.keyword == "global_defs") {
        config.global = vrrp::global_defs(n, d);
    }
    for n in nodes {
        match n.keyword.as_str() {
            "global_defs" => {}
            "vrrp_script" => config.vrrp_scripts.extend(vrrp::vrrp_script(n, d)),
            "vrrp_instance" => config.vrrp_instances.extend(vrrp::vrrp_instance(n, config.global.vrrp_version, d)),
            "vrrp_sync_group" => config.sync_groups.extend(vrrp::sync_group(n, d)),
            "virtual_server" => config.virtual_servers.extend(lvs::virtual_server(n, d)),
            "virtual_server_group" => {
                d.error(&n.at, "virtual_server_group is not supported yet: list each VIP as its own virtual_server")
            }
            k if IGNORED_BLOCKS.contains(&k) => d.warn(&n.at, format!("{k}: not acted on by xdpvs, ignored")),
            k => d.warn(&n.at, format!("unknown keyword {k}, ignored")),
        }
    }
    config
}

/// The model as `xdpvs check --json` prints it.
pub fn to_json(config: &Config) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests;
