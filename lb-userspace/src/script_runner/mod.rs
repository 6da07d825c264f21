//! The one way xdpvs runs a script (vrrp_script checks, MISC_CHECK and the
//! notify scripts), as keepalived does (keepalived.conf(5): `script_user`,
//! `enable_script_security`, a script's `user USER [GROUP]`):
//! - as its user and group, with that user's supplementary groups (what
//!   initgroups(3) sets); a non-root user keeps no capabilities (the kernel
//!   clears them at setuid, and the ambient set is cleared too);
//! - with `PATH=/usr/sbin:/usr/bin:/sbin:/bin` and nothing else of the
//!   daemon's environment;
//! - executed directly (no shell), words split as keepalived splits them;
//! - in its own process group, killed whole when it outlives its timeout or
//!   the caller stops waiting for it.
//!
//! [`Preparer`] resolves users and checks each script once (at start, on
//! reload, and in `xdpvs check`), with keepalived's messages; a refused
//! script is never run. User lookup and the privilege drop use `nix`.

pub mod security;

use std::{
    cell::RefCell,
    collections::HashMap,
    ffi::CString,
    io,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::unistd::{Gid, Group, User, getegid, geteuid, getgrouplist};
use thiserror::Error;
use tokio::process::Command;

use self::security::{Meta, PathVerdict, check_path};
use crate::config::{Config, Diagnostic, Location, NotifyScript, ScriptUser, Severity};

/// The whole environment a script gets.
pub const SCRIPT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// keepalived's default script user, used when it exists.
pub const DEFAULT_USER: &str = "keepalived_script";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("Script user '{0}' does not exist")]
    NoUser(String),
    #[error("Script group '{0}' does not exist")]
    NoGroup(String),
    #[error("Unable to resolve script user or group '{0}': {1}")]
    Database(String, nix::Error),
}

/// Who a script runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
}

impl Identity {
    /// `user` and `group` (default: the user's own group) from the user
    /// database, with the user's supplementary groups.
    pub fn lookup(user: &str, group: Option<&str>) -> Result<Identity, LookupError> {
        fn db(name: &str) -> impl FnOnce(nix::Error) -> LookupError + '_ {
            move |e| LookupError::Database(name.to_string(), e)
        }
        let u = User::from_name(user)
            .map_err(db(user))?
            .ok_or_else(|| LookupError::NoUser(user.to_string()))?;
        let gid = match group {
            None => u.gid,
            Some(g) => {
                Group::from_name(g)
                    .map_err(db(g))?
                    .ok_or_else(|| LookupError::NoGroup(g.to_string()))?
                    .gid
            }
        };
        let name = CString::new(user).map_err(|_| LookupError::NoUser(user.to_string()))?;
        let groups = getgrouplist(&name, gid).map_err(db(user))?;
        Ok(Identity {
            user: user.to_string(),
            uid: u.uid.as_raw(),
            gid: gid.as_raw(),
            groups: groups.into_iter().map(Gid::as_raw).collect(),
        })
    }

    /// The daemon's own user (keepalived's fallback: root, normally).
    pub fn current() -> Identity {
        let (uid, gid) = (geteuid(), getegid());
        let user = User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        let groups = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(Gid::as_raw).collect())
            .unwrap_or_else(|_| vec![gid.as_raw()]);
        Identity {
            user,
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            groups,
        }
    }
}

/// How one run of a script ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(i32),
    /// Killed by a signal (not ours).
    Signalled,
    TimedOut,
    /// It could not be started (fork, exec or the identity switch failed).
    Spawn(io::Error),
    Wait(io::Error),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }
}

/// A checked script, ready to run as its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    argv: Vec<String>,
    who: Identity,
}

/// SIGKILLs the script's process group when dropped armed: on timeout, and
/// when the caller drops the run (runner stopped, reload), because
/// `kill_on_drop` reaches only the script, not what it started.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: plain syscall. The group leader is our child and not yet
            // reaped (the guard is disarmed once it is), so the id is ours.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// In the child between fork and exec: only async-signal-safe syscalls on
/// memory prepared before the fork.
fn become_user(groups: &[libc::gid_t], gid: libc::gid_t, uid: libc::uid_t) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls; `groups` outlives the call.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()))?;
        check(libc::setgid(gid))?;
        check(libc::setuid(uid))?;
        if uid != 0 {
            // Inherited ambient capabilities would survive a same-uid start;
            // EINVAL on kernels without ambient capabilities is fine.
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
        }
    }
    Ok(())
}

impl Script {
    /// A script run as `who` without any checks (tests, and `Preparer`).
    pub fn new(argv: Vec<String>, who: Identity) -> Script {
        Script { argv, who }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub fn identity(&self) -> &Identity {
        &self.who
    }

    /// The same script with more arguments (the generic `notify` script's).
    pub fn with_args(&self, extra: impl IntoIterator<Item = String>) -> Script {
        let mut s = self.clone();
        s.argv.extend(extra);
        s
    }

    /// Runs the script once; dropping the future kills its process group.
    pub async fn run(&self, timeout: Duration) -> Outcome {
        let Some((program, args)) = self.argv.split_first() else {
            return Outcome::Spawn(io::ErrorKind::InvalidInput.into());
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", SCRIPT_PATH)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let me = geteuid();
        let same = self.who.uid == me.as_raw() && self.who.gid == getegid().as_raw();
        // Root always sets the groups; another user can only run as itself.
        if me.is_root() || !same {
            let (groups, gid, uid) = (self.who.groups.clone(), self.who.gid, self.who.uid);
            // SAFETY: the closure makes only async-signal-safe syscalls on
            // memory allocated before the fork.
            unsafe {
                cmd.pre_exec(move || become_user(&groups, gid, uid));
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Outcome::Spawn(e),
        };
        // Declared after `child`, so dropped (and the group killed) before it.
        let mut group = GroupGuard(child.id().and_then(|pid| i32::try_from(pid).ok()));
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => {
                group.disarm();
                match status {
                    Ok(s) => s.code().map_or(Outcome::Signalled, Outcome::Exited),
                    Err(e) => Outcome::Wait(e),
                }
            }
            Err(_) => {
                drop(group);
                let _ = child.wait().await;
                Outcome::TimedOut
            }
        }
    }
}

/// Splits a script line into words as keepalived does: blanks separate,
/// single or double quotes group (no other shell syntax).
pub fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// What the security check reads from the filesystem.
pub trait Fs {
    fn lstat(&self, path: &Path) -> io::Result<Meta>;
    fn stat(&self, path: &Path) -> io::Result<Meta>;
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
}

/// The machine's filesystem.
pub struct RealFs;

fn meta(m: std::fs::Metadata) -> Meta {
    use std::os::unix::fs::MetadataExt as _;
    Meta {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode(),
    }
}

impl Fs for RealFs {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        std::fs::symlink_metadata(path).map(meta)
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        std::fs::metadata(path).map(meta)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// What one [`Preparer`] asked of an `Fs`, remembered: a config names the
/// same few programs many times (a `vrrp_script` per instance, a check
/// command per real), and each check is a `realpath`, a `stat` and an
/// `lstat` per directory. 112,733 scripts were 0.8 s of system time
/// (`xdpvs check`), a million syscalls; now a few. Nothing is kept beyond
/// the `Preparer`, so every load sees the filesystem as it is.
struct Memo<'f> {
    fs: &'f dyn Fs,
    lstat: RefCell<HashMap<PathBuf, Result<Meta, Failure>>>,
    stat: RefCell<HashMap<PathBuf, Result<Meta, Failure>>>,
    canonical: RefCell<HashMap<PathBuf, Result<PathBuf, Failure>>>,
}

/// An `io::Error` kept to be given again (`io::Error` is not `Clone`).
#[derive(Clone)]
struct Failure {
    os: Option<i32>,
    kind: io::ErrorKind,
    text: String,
}

impl Failure {
    fn of(e: &io::Error) -> Self {
        Failure {
            os: e.raw_os_error(),
            kind: e.kind(),
            text: e.to_string(),
        }
    }

    fn error(&self) -> io::Error {
        self.os.map_or_else(
            || io::Error::new(self.kind, self.text.clone()),
            io::Error::from_raw_os_error,
        )
    }
}

impl<'f> Memo<'f> {
    fn new(fs: &'f dyn Fs) -> Self {
        Memo {
            fs,
            lstat: RefCell::default(),
            stat: RefCell::default(),
            canonical: RefCell::default(),
        }
    }
}

/// `path`'s answer in `memo`, asking `ask` the first time.
fn remembered<T: Clone>(
    memo: &RefCell<HashMap<PathBuf, Result<T, Failure>>>,
    path: &Path,
    ask: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    let known = memo.borrow().get(path).cloned();
    let answer = known.unwrap_or_else(|| {
        let answer = ask().map_err(|e| Failure::of(&e));
        memo.borrow_mut().insert(path.to_path_buf(), answer.clone());
        answer
    });
    answer.map_err(|f| f.error())
}

impl Fs for Memo<'_> {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        remembered(&self.lstat, path, || self.fs.lstat(path))
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        remembered(&self.stat, path, || self.fs.stat(path))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        remembered(&self.canonical, path, || self.fs.canonicalize(path))
    }
}

/// Which kind of script, for keepalived's "Disabling ..." lines.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    /// A `vrrp_script`, by name.
    Track(&'a str),
    Misc,
    Notify,
}

impl Kind<'_> {
    fn word(self) -> &'static str {
        match self {
            Kind::Track(_) => "track",
            Kind::Misc => "misc",
            Kind::Notify => "notify",
        }
    }
}

enum Refusal {
    Insecure,
    NotFound,
    /// Refused with its own message only (not executable, bad user).
    Silent,
}

/// Resolves and checks scripts under one `global_defs`, collecting
/// keepalived's messages as diagnostics (warnings; errors for what it refuses).
pub struct Preparer<'f> {
    enforce: bool,
    script_user: Option<ScriptUser>,
    /// The default identity, resolved when a script first needs it.
    default: Option<Option<Identity>>,
    fs: Memo<'f>,
    /// What a missing user or script is: an error where scripts run, a
    /// warning in `xdpvs check` (the file may be checked on another machine).
    missing: Severity,
    notes: Vec<Diagnostic>,
    ran: bool,
    insecure: bool,
}

impl<'f> Preparer<'f> {
    pub fn new(config: &Config, fs: &'f dyn Fs) -> Self {
        Preparer {
            enforce: config.global.enable_script_security,
            script_user: config.global.script_user.clone(),
            default: None,
            fs: Memo::new(fs),
            missing: Severity::Error,
            notes: Vec::new(),
            ran: false,
            insecure: false,
        }
    }

    fn note(&mut self, severity: Severity, at: &Location, message: String) {
        self.notes.push(Diagnostic {
            severity,
            file: at.file.to_path_buf(),
            line: at.line,
            message,
        });
    }

    /// keepalived.conf(5): `script_user`, else `keepalived_script` if it
    /// exists, else root (the daemon's user) with a warning.
    fn default_identity(&mut self, at: &Location) -> Option<Identity> {
        if let Some(d) = &self.default {
            return d.clone();
        }
        let resolved = match self.script_user.clone() {
            Some(u) => match Identity::lookup(&u.user, u.group.as_deref()) {
                Ok(id) => Some(id),
                Err(e) => {
                    self.note(self.missing, at, e.to_string());
                    None
                }
            },
            None => match Identity::lookup(DEFAULT_USER, None) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.note(
                        Severity::Warning,
                        at,
                        format!(
                            "WARNING - default user '{DEFAULT_USER}' for script execution does not exist - please create."
                        ),
                    );
                    Some(Identity::current())
                }
            },
        };
        self.default = Some(resolved.clone());
        resolved
    }

    /// [`Preparer::prepare`] for a `notify*` or `quorum_*` script, run as
    /// its own user if it names one.
    pub fn prepare_notify(&mut self, script: &NotifyScript, at: &Location) -> Option<Script> {
        self.prepare(Kind::Notify, &script.command, script.user.as_ref(), at)
    }

    /// Checks one script; `None` when it must not run (the reasons are in
    /// the diagnostics). `at` is where the script is configured.
    pub fn prepare(
        &mut self,
        kind: Kind<'_>,
        command: &str,
        user: Option<&ScriptUser>,
        at: &Location,
    ) -> Option<Script> {
        let mut argv = split_command(command);
        let first = argv.first()?.clone();
        let who = match user {
            Some(u) => match Identity::lookup(&u.user, u.group.as_deref()) {
                Ok(id) => id,
                Err(e) => {
                    self.note(self.missing, at, e.to_string());
                    let msg = format!(
                        "Invalid user/group for {} script {first} - ignoring",
                        kind.word()
                    );
                    self.note(self.missing, at, msg);
                    return None;
                }
            },
            None => match self.default_identity(at) {
                Some(id) => id,
                None => {
                    let msg = format!(
                        "Failed to set default user for {} script {first} - ignoring",
                        kind.word()
                    );
                    self.note(self.missing, at, msg);
                    return None;
                }
            },
        };
        match self.check(&mut argv, &who, at) {
            Ok(()) => Some(Script { argv, who }),
            Err(refusal) => {
                let (severity, why) = match refusal {
                    Refusal::Insecure => (Severity::Error, "due to insecure"),
                    Refusal::NotFound => (self.missing, "since not found/accessible"),
                    Refusal::Silent => return None,
                };
                let what = match kind {
                    Kind::Track(name) => format!("track script {name}"),
                    Kind::Misc => format!("misc script {command}"),
                    Kind::Notify => format!("notify script {command}"),
                };
                self.note(severity, at, format!("Disabling {what} {why}"));
                None
            }
        }
    }

    fn check(&mut self, argv: &mut [String], who: &Identity, at: &Location) -> Result<(), Refusal> {
        if !argv[0].contains('/') {
            let found = SCRIPT_PATH
                .split(':')
                .map(|dir| Path::new(dir).join(&argv[0]))
                .find(|p| {
                    self.fs.stat(p).is_ok_and(|m| {
                        m.mode & 0o170_000 == 0o100_000 && m.executable_by(who.uid, who.gid)
                    })
                });
            let Some(found) = found else {
                let msg = format!("Cannot find script {} in path - disabling", argv[0]);
                self.note(self.missing, at, msg);
                return Err(Refusal::NotFound);
            };
            let msg = format!(
                "WARNING - script `{}` resolved by path search to `{}`. Please specify full path.",
                argv[0],
                found.display()
            );
            self.note(Severity::Warning, at, msg);
            argv[0] = found.to_string_lossy().into_owned();
        }
        let path = PathBuf::from(&argv[0]);
        let real = match self.fs.canonicalize(&path) {
            Ok(r) => r,
            Err(e) => {
                // strerror(3)'s words, as keepalived prints them.
                let why = e.raw_os_error().map_or_else(
                    || e.to_string(),
                    |n| nix::errno::Errno::from_i32(n).desc().to_string(),
                );
                let msg = format!("Script {} cannot be accessed - {why}", argv[0]);
                self.note(self.missing, at, msg);
                return Err(Refusal::NotFound);
            }
        };
        // keepalived runs the resolved path (no symlinked directories left
        // to walk), keeping the file name a program may act on (busybox).
        let mut paths = vec![real.clone()];
        if real != path {
            let named = real.parent().zip(path.file_name()).map(|(d, f)| d.join(f));
            match named {
                Some(n) if n != real && self.fs.canonicalize(&n).is_ok_and(|r| r == real) => {
                    paths.insert(0, n.clone());
                    argv[0] = n.to_string_lossy().into_owned();
                }
                _ => argv[0] = real.to_string_lossy().into_owned(),
            }
        }
        let Ok(file) = self.fs.stat(&real) else {
            let msg = format!("Unable to access script `{}` - disabling", argv[0]);
            self.note(self.missing, at, msg);
            return Err(Refusal::NotFound);
        };
        self.ran = true;
        if !file.executable_by(who.uid, who.gid) {
            let msg = format!(
                "WARNING - script '{}' is not executable for uid:gid {}:{} - disabling.",
                argv[0], who.uid, who.gid
            );
            self.note(self.missing, at, msg);
            return Err(Refusal::Silent);
        }
        // keepalived checks only scripts that run with root's privileges.
        if !(who.uid == 0 || who.gid == 0 || file.setid_root()) {
            return Ok(());
        }
        for p in paths {
            match check_path(&p, |q| self.fs.lstat(q)) {
                PathVerdict::Safe => {}
                PathVerdict::Unsafe(_) => {
                    self.insecure = true;
                    let tail = if self.enforce { " - disabling" } else { "" };
                    let msg = format!("Unsafe permissions found for script '{}'{tail}.", argv[0]);
                    if self.enforce {
                        self.note(Severity::Error, at, msg);
                        return Err(Refusal::Insecure);
                    }
                    self.note(Severity::Warning, at, msg);
                    return Ok(());
                }
                PathVerdict::NotFound(_) => {
                    let msg = format!(
                        "check_script_secure could not find script '{}' - disabling",
                        p.display()
                    );
                    self.note(self.missing, at, msg);
                    return Err(Refusal::NotFound);
                }
                PathVerdict::WrongType(_) => {
                    let msg = format!("Wrong file type found in script path '{}'.", p.display());
                    self.note(Severity::Error, at, msg);
                    return Err(Refusal::Insecure);
                }
            }
        }
        Ok(())
    }

    /// Everything said, with keepalived's summary when scripts run without
    /// `enable_script_security`.
    pub fn finish(mut self, at: &Location) -> Vec<Diagnostic> {
        if self.ran && !self.enforce {
            let tail = if self.insecure {
                " There are insecure scripts."
            } else {
                ""
            };
            let msg = format!(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled.{tail}"
            );
            self.note(Severity::Warning, at, msg);
        }
        self.notes
    }
}

/// One script the daemon runs on its own (a host or FIFO script), checked
/// under `config`'s `global_defs`; what is said about it is logged.
pub fn prepare_one(
    config: &Config,
    command: &str,
    user: Option<&ScriptUser>,
    at: &Location,
) -> Option<Script> {
    let mut p = Preparer::new(config, &RealFs);
    let script = p.prepare(Kind::Notify, command, user, at);
    for d in p.finish(at) {
        log::warn!("{d}");
    }
    script
}

/// Every script of `config` through one `Preparer`: what `xdpvs check`
/// reports. Missing scripts and users are warnings there; unsafe scripts
/// under `enable_script_security` are errors.
pub fn audit(config: &Config, config_at: &Location, fs: &dyn Fs) -> Vec<Diagnostic> {
    let mut p = Preparer::new(config, fs);
    p.missing = Severity::Warning;
    for s in &config.vrrp_scripts {
        p.prepare(
            Kind::Track(&s.name),
            &s.script,
            s.user.as_ref(),
            &s.location,
        );
    }
    for i in &config.vrrp_instances {
        for script in i.notify.scripts().chain(&i.notify_master_rx_lower_pri) {
            p.prepare_notify(script, &i.location);
        }
    }
    for g in &config.sync_groups {
        for script in g.notify.scripts() {
            p.prepare_notify(script, &g.location);
        }
    }
    for s in [
        &config.global.startup_script,
        &config.global.shutdown_script,
    ]
    .into_iter()
    .flatten()
    {
        p.prepare(Kind::Notify, &s.command, s.user.as_ref(), &s.location);
    }
    for vs in &config.virtual_servers {
        for script in [&vs.quorum.up_script, &vs.quorum.down_script]
            .into_iter()
            .flatten()
        {
            p.prepare_notify(script, &vs.location);
        }
        for real in &vs.reals {
            for script in [&real.notify_up, &real.notify_down].into_iter().flatten() {
                p.prepare_notify(script, &real.location);
            }
            for check in &real.checks {
                if let crate::config::HealthCheck::MiscCheck(m) = check {
                    p.prepare(Kind::Misc, &m.misc_path, m.user.as_ref(), &real.location);
                }
            }
        }
    }
    p.finish(config_at)
}

#[cfg(test)]
mod tests;
