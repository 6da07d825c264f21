//! The loader end to end: realistic files, every error and warning with its
//! location, includes on disk, defaults and the JSON form.

mod advanced;
mod announce;
mod check_options;
mod checkers;
mod defaults;
mod errors;
mod fixtures;
mod globals;
mod grammar;
mod groups;
mod includes;
mod keywords;
mod limits;
mod mail;
mod routes;
mod ssl;
mod tracking;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
}

fn load_ok(path: &Path) -> Loaded {
    load(path).unwrap_or_else(|e| panic!("{} refused:\n{e}", path.display()))
}

fn ok(text: &str) -> Loaded {
    parse_str(text, Path::new("k.conf")).unwrap_or_else(|e| panic!("refused:\n{e}"))
}

fn rendered(diagnostics: &[Diagnostic], severity: Severity) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(ToString::to_string)
        .collect()
}

/// The errors `text` is refused with.
fn errors(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("k.conf")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => rendered(&e.diagnostics, Severity::Error),
    }
}

fn warnings(l: &Loaded) -> Vec<String> {
    rendered(&l.diagnostics, Severity::Warning)
}

fn notes(l: &Loaded) -> Vec<String> {
    rendered(&l.diagnostics, Severity::Note)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A minimal valid instance around `body`.
fn instance(body: &str) -> String {
    format!(
        "vrrp_instance V {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{\n  10.0.0.1\n }}\n{body}}}\n"
    )
}

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("xdpvs-config-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
