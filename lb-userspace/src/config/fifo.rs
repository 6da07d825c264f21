//! keepalived's notify FIFOs in global_defs: `notify_fifo` (every event),
//! `vrrp_notify_fifo` (VRRP's) and `lvs_notify_fifo` (the checkers'), each
//! `PATH [USER [GROUP]]`, with `*_script SCRIPT [USER [GROUP]]`: a reader
//! started with the FIFO's path as its last argument.

use serde::Serialize;

use super::{
    diag::{Diagnostics, Location},
    model::ScriptUser,
    tree::Node,
    values::word_and_user,
};

/// The three FIFOs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifyFifos {
    pub all: Option<NotifyFifo>,
    pub vrrp: Option<NotifyFifo>,
    pub lvs: Option<NotifyFifo>,
    /// Scripts read before their FIFO, placed by [`finish`].
    #[serde(skip)]
    scripts: Vec<(&'static str, FifoScript)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyFifo {
    pub path: String,
    /// Who owns a FIFO xdpvs creates.
    pub owner: Option<ScriptUser>,
    pub script: Option<FifoScript>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FifoScript {
    pub command: String,
    pub user: Option<ScriptUser>,
    pub location: Location,
}

impl NotifyFifos {
    pub fn iter(&self) -> impl Iterator<Item = &NotifyFifo> {
        [&self.all, &self.vrrp, &self.lvs].into_iter().flatten()
    }
}

const PREFIXES: [&str; 3] = ["notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"];

impl NotifyFifos {
    fn slot(&mut self, prefix: &str) -> &mut Option<NotifyFifo> {
        match prefix {
            "notify_fifo" => &mut self.all,
            "vrrp_notify_fifo" => &mut self.vrrp,
            _ => &mut self.lvs,
        }
    }
}

/// Gives each script its FIFO, wherever in global_defs either stood.
pub fn finish(fifos: &mut NotifyFifos, d: &mut Diagnostics) {
    for (prefix, script) in std::mem::take(&mut fifos.scripts) {
        match fifos.slot(prefix) {
            Some(f) => f.script = Some(script),
            None => d.error(
                &script.location,
                format!("{prefix}_script needs {prefix} PATH in global_defs"),
            ),
        }
    }
}

/// Reads the FIFO keywords of one global_defs; false when `k` is none.
pub fn read(k: &Node, fifos: &mut NotifyFifos, d: &mut Diagnostics) -> bool {
    let name = k.keyword.as_str();
    let (prefix, script) = match name.strip_suffix("_script") {
        Some(p) => (p, true),
        None => (name, false),
    };
    let Some(prefix) = PREFIXES.iter().copied().find(|p| *p == prefix) else {
        return false;
    };
    let Ok((word, user)) = word_and_user(k) else {
        d.error(&k.at, format!("{name} needs NAME [USER [GROUP]]"));
        return true;
    };
    if script {
        let script = FifoScript {
            command: word,
            user,
            location: k.at.clone(),
        };
        fifos.scripts.push((prefix, script));
    } else {
        let slot = fifos.slot(prefix);
        if !word.starts_with('/') {
            d.error(&k.at, format!("{name} {word}: needs an absolute path"));
            return true;
        }
        *slot = Some(NotifyFifo {
            path: word,
            owner: user,
            script: None,
            location: k.at.clone(),
        });
    }
    true
}
