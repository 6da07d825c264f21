//! keepalived's notify FIFOs: one line per event, in keepalived's words, to
//! `notify_fifo` (everything), `vrrp_notify_fifo` (instances and groups) and
//! `lvs_notify_fifo` (reals and virtual servers):
//!
//! ```text
//! INSTANCE "VI_1" MASTER 100
//! GROUP "G1" MASTER 0
//! RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN
//! VS [10.0.0.100]:tcp:80 UP
//! ```
//!
//! A FIFO is created (0644, owned by its USER) when absent and removed at
//! stop if xdpvs created it; one that is not a FIFO, or owned by someone
//! else, is not used. Its `*_script` is started once with the FIFO's path
//! as last argument, runs while the daemon does, and is killed at stop.
//! Writes never block: a line a full FIFO cannot take is dropped and logged.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    path::Path,
    time::Duration,
};

use log::{info, warn};
use nix::{sys::stat::Mode, unistd};
use tokio::task::JoinHandle;

use super::message::{VrrpState, group_state, trio};
use crate::{
    config::{Config, fifo::NotifyFifo},
    dataplane::reconcile::{RealId, ServiceId},
    script_runner::{Identity, prepare_one},
};

/// A reader script runs as long as the daemon; this only bounds the wait.
const READER_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Which events a FIFO takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    All,
    Vrrp,
    Lvs,
}

impl Takes {
    fn vrrp(self) -> bool {
        self != Takes::Lvs
    }
    fn lvs(self) -> bool {
        self != Takes::Vrrp
    }
}

fn state_word(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
        VrrpState::Fault => "FAULT",
        VrrpState::Stop => "STOP",
    }
}

/// The lines events make, as keepalived writes them: a group's line when
/// its state (from its members') changes, a real's when its verdict does.
/// Pure: events in, lines out.
#[derive(Default)]
pub struct Lines {
    groups: Vec<(String, Vec<String>, Option<VrrpState>)>,
    states: HashMap<String, VrrpState>,
    reals: HashMap<(ServiceId, RealId), bool>,
}

impl Lines {
    pub fn new(config: &Config) -> Self {
        Lines {
            groups: config
                .sync_groups
                .iter()
                .map(|g| (g.name.clone(), g.members.clone(), None))
                .collect(),
            ..Lines::default()
        }
    }

    /// An instance's new state: its line, then its groups' that changed.
    pub fn instance(&mut self, instance: &str, state: VrrpState, priority: u8) -> Vec<String> {
        self.states.insert(instance.to_string(), state);
        let mut out = vec![format!(
            "INSTANCE \"{instance}\" {} {priority}\n",
            state_word(state)
        )];
        for (group, members, last) in &mut self.groups {
            if !members.iter().any(|m| m == instance) {
                continue;
            }
            let now = group_state(
                &members
                    .iter()
                    .map(|m| self.states.get(m).copied())
                    .collect::<Vec<_>>(),
            );
            if now.is_some() && now != *last {
                *last = now;
                out.extend(now.map(|s| format!("GROUP \"{group}\" {} 0\n", state_word(s))));
            }
        }
        out
    }

    /// A real's verdict; a line when it changed (the first one says where
    /// it starts).
    pub fn real(&mut self, service: ServiceId, real: RealId, up: bool) -> Option<String> {
        if self.reals.insert((service, real), up) == Some(up) {
            return None;
        }
        Some(format!(
            "RS {} {} {}\n",
            trio(real.0, service.2, real.1),
            trio(service.0, service.2, service.1),
            if up { "UP" } else { "DOWN" }
        ))
    }

    /// A virtual server gained or lost its quorum.
    pub fn quorum(service: ServiceId, up: bool) -> String {
        format!(
            "VS {} {}\n",
            trio(service.0, service.2, service.1),
            if up { "UP" } else { "DOWN" }
        )
    }
}

struct Open {
    path: String,
    file: File,
    takes: Takes,
    created: bool,
    reader: Option<JoinHandle<()>>,
}

/// The open FIFOs and their lines.
#[derive(Default)]
pub struct Fifos {
    open: Vec<Open>,
    lines: Lines,
}

/// Creates (when absent) and opens one FIFO; `None` when it cannot be used
/// (logged).
fn open_fifo(f: &NotifyFifo) -> io::Result<(File, bool)> {
    let path = Path::new(&f.path);
    let owner = match &f.owner {
        Some(u) => Some(
            Identity::lookup(&u.user, u.group.as_deref())
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?,
        ),
        None => None,
    };
    let created = match unistd::mkfifo(path, Mode::from_bits_truncate(0o644)) {
        Ok(()) => true,
        Err(nix::errno::Errno::EEXIST) => false,
        Err(e) => return Err(e.into()),
    };
    if created && let Some(o) = &owner {
        let (uid, gid) = (o.uid, o.gid);
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    // Read-write: opening never waits for a reader, and a reader that
    // comes and goes never makes writes fail.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    let ours = meta.uid() == unistd::geteuid().as_raw()
        || owner.as_ref().is_some_and(|o| o.uid == meta.uid());
    if !meta.file_type().is_fifo() || !ours {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a FIFO this daemon or its USER owns",
        ));
    }
    Ok((file, created))
}

impl Fifos {
    /// Opens the configuration's FIFOs and starts their readers.
    pub fn open(config: &Config) -> Self {
        let f = &config.global.notify_fifos;
        let mut open = Vec::new();
        for (fifo, takes) in [
            (&f.all, Takes::All),
            (&f.vrrp, Takes::Vrrp),
            (&f.lvs, Takes::Lvs),
        ] {
            let Some(fifo) = fifo else {
                continue;
            };
            let (file, created) = match open_fifo(fifo) {
                Ok(ok) => ok,
                Err(e) => {
                    warn!("notify FIFO {}: {e}; not used", fifo.path);
                    continue;
                }
            };
            info!("notify FIFO {}: writing events", fifo.path);
            let reader = fifo.script.as_ref().and_then(|s| {
                let script = prepare_one(config, &s.command, s.user.as_ref(), &s.location)?
                    .with_args([fifo.path.clone()]);
                let command = s.command.clone();
                Some(tokio::spawn(async move {
                    let outcome = script.run(READER_LIFETIME).await;
                    warn!("notify FIFO reader {command} ended: {outcome:?}");
                }))
            });
            open.push(Open {
                path: fifo.path.clone(),
                file,
                takes,
                created,
                reader,
            });
        }
        Fifos {
            open,
            lines: Lines::new(config),
        }
    }

    fn write(&mut self, line: &str, wants: fn(Takes) -> bool) {
        for o in self.open.iter_mut().filter(|o| wants(o.takes)) {
            // One write of a short line: a FIFO takes it whole or not at all.
            if let Err(e) = o.file.write_all(line.as_bytes()) {
                warn!(
                    "notify FIFO {}: {:?} not written: {e}",
                    o.path,
                    line.trim_end()
                );
            }
        }
    }

    pub fn instance(&mut self, instance: &str, state: VrrpState, priority: u8) {
        for line in self.lines.instance(instance, state, priority) {
            self.write(&line, Takes::vrrp);
        }
    }

    pub fn real(&mut self, service: ServiceId, real: RealId, up: bool) {
        if let Some(line) = self.lines.real(service, real, up) {
            self.write(&line, Takes::lvs);
        }
    }

    pub fn quorum(&mut self, service: ServiceId, up: bool) {
        self.write(&Lines::quorum(service, up), Takes::lvs);
    }

    /// At stop: readers killed, FIFOs this daemon created removed.
    pub fn close(&mut self) {
        for o in self.open.drain(..) {
            if let Some(r) = o.reader {
                r.abort();
            }
            if o.created
                && let Err(e) = std::fs::remove_file(&o.path)
            {
                warn!("notify FIFO {}: not removed: {e}", o.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::dataplane::keys::Proto;

    fn config(text: &str) -> Config {
        crate::config::parse_str(text, Path::new("k.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    #[test]
    fn instance_and_group_lines_in_keepalived_words() {
        let c = config(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n\
             vrrp_sync_group G {\n group {\n  A\n  B\n }\n}\n",
        );
        let mut l = Lines::new(&c);
        assert_eq!(
            l.instance("A", VrrpState::Backup, 100),
            ["INSTANCE \"A\" BACKUP 100\n", "GROUP \"G\" BACKUP 0\n"]
        );
        assert_eq!(
            l.instance("B", VrrpState::Backup, 90),
            ["INSTANCE \"B\" BACKUP 90\n"]
        );
        // MASTER once every member is.
        assert_eq!(
            l.instance("A", VrrpState::Master, 100),
            ["INSTANCE \"A\" MASTER 100\n"]
        );
        assert_eq!(
            l.instance("B", VrrpState::Master, 90),
            ["INSTANCE \"B\" MASTER 90\n", "GROUP \"G\" MASTER 0\n"]
        );
        assert_eq!(
            l.instance("B", VrrpState::Fault, 90),
            ["INSTANCE \"B\" FAULT 90\n", "GROUP \"G\" FAULT 0\n"]
        );
    }

    #[test]
    fn real_lines_on_change_and_virtual_server_lines() {
        let vip: IpAddr = "10.0.0.100".parse().unwrap_or(IpAddr::from([0; 4]));
        let rs: IpAddr = "10.0.0.11".parse().unwrap_or(IpAddr::from([0; 4]));
        let service = (vip, 80, Proto::Tcp);
        let mut l = Lines::default();
        assert_eq!(
            l.real(service, (rs, 80), false).as_deref(),
            Some("RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN\n")
        );
        assert_eq!(l.real(service, (rs, 80), false), None, "no change, no line");
        assert_eq!(
            l.real(service, (rs, 80), true).as_deref(),
            Some("RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 UP\n")
        );
        assert_eq!(
            Lines::quorum((vip, 53, Proto::Udp), true),
            "VS [10.0.0.100]:udp:53 UP\n"
        );
    }
}
