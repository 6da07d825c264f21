//! Binary upgrade with no gap (`xdpvs ctl upgrade`, SIGUSR2): the running
//! daemon starts the binary now on disk at the path it was started from,
//! with the same arguments, and hands it the admin and metrics listeners.
//! The new process runs the normal startup path; it finds each VRRP master
//! recorded a moment ago (the old one is still advertising) and resumes it
//! at once, then reports ready over a pipe. Only then does the old process
//! stop, without a priority-0 advert and with the VIPs left in place, so the
//! peers never see a change. A new process that cannot take over (missing,
//! not executable, bad config, crashes, says no, or is silent for
//! `READY_TIMEOUT`) is stopped and the old one runs on, putting back what
//! the new one wrote into the maps (`State::take_back_after_upgrade`).
//!
//! The hand-over is one environment variable, `XDPVS_UPGRADE=PPID;admin=FD,
//! metrics=FD,ready=FD`, naming inherited descriptors (close-on-exec cleared
//! for the new process only). PPID makes a process that inherited the
//! variable further down (a notify script) ignore it.

use std::{
    ffi::OsString,
    fs::File,
    io::{Read as _, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::{
            ffi::OsStrExt as _, fs::PermissionsExt as _, net::UnixListener,
            process::CommandExt as _,
        },
    },
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow, bail};
use log::{error, info, warn};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::api::protocol::{DaemonInfo, Response};

const ENV: &str = "XDPVS_UPGRADE";
/// Long enough to load and verify the XDP program and fill large maps.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refusing new process gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// Lets the answer to `ctl upgrade` reach its socket before the old
/// process exits (the runtime drops unfinished writes with it).
const ANSWER_GRACE: Duration = Duration::from_millis(200);
/// The longest report a new process may send.
const REPORT_MAX: u64 = 64 * 1024;

/// How this process was started, for `ctl status` and for re-executing.
pub struct Origin {
    /// argv[0] made absolute at start, symlinks kept: after the binary is
    /// replaced, /proc/self/exe is the old inode, this path the new one.
    pub exe: PathBuf,
    pub args: Vec<OsString>,
    pub started: SystemTime,
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// argv[0] as the shell found it: a path, or a name looked up on PATH.
fn resolve(argv0: &Path) -> Result<PathBuf> {
    if argv0.as_os_str().as_bytes().contains(&b'/') {
        return std::path::absolute(argv0)
            .with_context(|| format!("resolving {}", argv0.display()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(argv0))
        .find(|p| is_executable(p))
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .ok_or_else(|| anyhow!("{} is not on PATH", argv0.display()))
}

impl Origin {
    pub fn capture() -> Result<Self> {
        let mut argv = std::env::args_os();
        let argv0 = argv
            .next()
            .ok_or_else(|| anyhow!("started without argv[0]"))?;
        Ok(Self {
            exe: resolve(Path::new(&argv0))?,
            args: argv.collect(),
            started: SystemTime::now(),
        })
    }

    pub fn info(&self) -> DaemonInfo {
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            started_unix: self
                .started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            exe: self.exe.display().to_string(),
        }
    }

    /// `ctl status` answers name the daemon.
    pub fn stamp(&self, mut response: Response) -> Response {
        if let Response::Status { daemon, .. } = &mut response {
            *daemon = Some(self.info());
        }
        response
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor number; a closed one gives EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What the old daemon handed to this process.
#[derive(Default)]
pub struct Inherited {
    pub admin: Option<UnixListener>,
    pub metrics: Option<std::net::TcpListener>,
    ready: Option<File>,
}

/// `PPID;name=FD,...` when PPID is our parent.
fn parse_env(value: &str, parent: u32) -> Result<Vec<(String, RawFd)>> {
    let (ppid, list) = value
        .split_once(';')
        .ok_or_else(|| anyhow!("{ENV}={value:?}: expected PPID;name=FD,..."))?;
    if ppid.parse::<u32>().ok() != Some(parent) {
        return Ok(Vec::new());
    }
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, fd) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("{ENV}: {item:?} is not name=FD"))?;
            let fd: RawFd = fd.parse().with_context(|| format!("{ENV}: {item:?}"))?;
            if fd < 3 {
                bail!("{ENV}: {item:?} names a standard stream");
            }
            Ok((name.to_string(), fd))
        })
        .collect()
}

impl Inherited {
    /// Takes over the descriptors `XDPVS_UPGRADE` names, if our parent set
    /// it; they become close-on-exec again so scripts do not inherit them.
    pub fn from_env() -> Self {
        let mut this = Self::default();
        let Some(value) = std::env::var_os(ENV) else {
            return this;
        };
        let parent = std::os::unix::process::parent_id();
        let fds = match parse_env(&value.to_string_lossy(), parent) {
            Ok(fds) => fds,
            Err(e) => {
                warn!("ignoring the upgrade hand-over: {e:#}");
                return this;
            }
        };
        for (name, fd) in fds {
            if let Err(e) = set_cloexec(fd, true) {
                warn!("upgrade hand-over: {name} descriptor {fd}: {e}");
                continue;
            }
            // SAFETY: our parent passed this open descriptor for us alone
            // (checked open just above); nothing else in this process owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            match name.as_str() {
                "admin" => this.admin = Some(UnixListener::from(owned)),
                "metrics" => this.metrics = Some(std::net::TcpListener::from(owned)),
                "ready" => this.ready = Some(File::from(owned)),
                other => warn!("upgrade hand-over: unknown descriptor {other:?}"),
            }
        }
        if this.ready.is_some() {
            info!("taking over from pid {parent} (upgrade)");
        }
        this
    }

    /// Tells the old daemon it may go.
    pub fn ready(&mut self) {
        self.report("ready");
    }

    /// Tells the old daemon why this process cannot take over.
    pub fn failed(&mut self, e: &anyhow::Error) {
        self.report(&format!("error: {e:#}"));
    }

    fn report(&mut self, text: &str) {
        if let Some(mut pipe) = self.ready.take()
            && let Err(e) = pipe.write_all(text.as_bytes())
        {
            warn!("reporting to the old daemon: {e}");
        }
    }
}

/// What the new process said before closing its end of the pipe.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Ready,
    Refused(String),
    /// Closed without a word: it exited or crashed.
    Silent,
    TimedOut,
    /// This daemon is stopping: the upgrade is called off.
    Cancelled,
}

/// How often a wait for the report looks at `cancel`.
const CANCEL_POLL: Duration = Duration::from_millis(100);

fn read_report(pipe: &mut File, timeout: Duration, cancel: &AtomicBool) -> Report {
    let deadline = Instant::now() + timeout;
    let mut text = Vec::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Report::Cancelled;
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(CANCEL_POLL);
        if left.is_zero() {
            return Report::TimedOut;
        }
        let mut poll = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one pollfd on a descriptor `pipe` owns.
        let n = unsafe { libc::poll(&mut poll, 1, ms) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Report::Silent;
        }
        if n == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(k) if (text.len() as u64) < REPORT_MAX => text.extend_from_slice(&buf[..k]),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text);
    match text.trim() {
        "ready" => Report::Ready,
        "" => Report::Silent,
        other => Report::Refused(other.strip_prefix("error: ").unwrap_or(other).to_string()),
    }
}

fn pipe() -> Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating the upgrade pipe");
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits for a refusing or crashed new process, killing it after `EXIT_WAIT`.
fn reap(child: &mut Child) -> String {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return "killed: it did not exit".into();
            }
        }
    }
}

/// The listeners the old daemon passes on, as its own duplicates.
pub struct Handover {
    admin: OwnedFd,
    metrics: Option<OwnedFd>,
}

impl Handover {
    pub fn new(admin: &UnixListener, metrics: Option<&std::net::TcpListener>) -> Result<Self> {
        Ok(Self {
            admin: admin.as_fd().try_clone_to_owned()?,
            metrics: metrics
                .map(|m| m.as_fd().try_clone_to_owned())
                .transpose()?,
        })
    }
}

/// Starts the binary at `exe` with `args` and the listeners; returns its
/// PID once it reports ready, or why it cannot take over.
fn start_successor(
    exe: &Path,
    args: &[OsString],
    fds: &[(&str, OwnedFd)],
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<u32> {
    if !exe.exists() {
        bail!("{} is missing", exe.display());
    }
    if !is_executable(exe) {
        bail!("{} is not an executable file", exe.display());
    }
    let (mut report, ready_w) = pipe()?;
    let mut passed: Vec<(&str, RawFd)> = fds.iter().map(|(n, fd)| (*n, fd.as_raw_fd())).collect();
    passed.push(("ready", ready_w.as_raw_fd()));
    let list: Vec<String> = passed.iter().map(|(n, fd)| format!("{n}={fd}")).collect();
    let raw: Vec<RawFd> = passed.iter().map(|(_, fd)| *fd).collect();
    let mut command = Command::new(exe);
    command
        .args(args)
        .env(ENV, format!("{};{}", std::process::id(), list.join(",")))
        // The watchdog is the new process's to feed once it is main.
        .env_remove("WATCHDOG_PID");
    // SAFETY: the closure runs between fork and exec and only calls fcntl,
    // which is async-signal-safe, on descriptors this process holds open.
    unsafe {
        command.pre_exec(move || {
            for fd in &raw {
                set_cloexec(*fd, false)?;
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    // Our copy of the write end must go, or its end never reads as closed.
    drop(ready_w);
    let pid = child.id();
    info!("upgrade: started {} as pid {pid}", exe.display());
    match read_report(&mut report, timeout, cancel) {
        Report::Ready => Ok(pid),
        Report::Refused(why) => {
            let status = reap(&mut child);
            bail!("the new xdpvs (pid {pid}) cannot take over ({status}): {why}")
        }
        Report::Silent => {
            let status = reap(&mut child);
            bail!("the new xdpvs (pid {pid}) ended before it was ready ({status}); see its log")
        }
        Report::TimedOut => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the new xdpvs (pid {pid}) did not report ready within {timeout:?}; it was stopped"
            )
        }
        Report::Cancelled => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("this daemon is stopping: the new xdpvs (pid {pid}) was stopped")
        }
    }
}

/// The daemon loop's upgrades: at most one at a time, answered when done.
pub struct Upgrades {
    origin: Origin,
    handover: Handover,
    running: Option<JoinHandle<Result<u32>>>,
    waiting: Vec<oneshot::Sender<Response>>,
    cancel: Arc<AtomicBool>,
}

impl Upgrades {
    pub fn new(origin: Origin, handover: Handover) -> Self {
        Self {
            origin,
            handover,
            running: None,
            waiting: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This daemon stops for good: a new process still starting is stopped
    /// and a waiting `ctl upgrade` told so.
    pub async fn cancel(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if self.running.is_some() {
            self.finished().await;
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// A new process is starting: it has taken (or is taking) its snapshot
    /// of the pinned maps, which this process must then leave as they are,
    /// or the two would each write what the other does not know.
    pub fn in_progress(&self) -> bool {
        self.running.is_some()
    }

    /// Starts an upgrade (`ctl upgrade` passes where to answer; SIGUSR2 not).
    pub fn begin(&mut self, answer: Option<oneshot::Sender<Response>>) {
        self.waiting.extend(answer);
        if self.running.is_some() {
            return;
        }
        let exe = self.origin.exe.clone();
        let args = self.origin.args.clone();
        let fds = (|| -> std::io::Result<Vec<(&'static str, OwnedFd)>> {
            let mut fds = vec![("admin", self.handover.admin.try_clone()?)];
            if let Some(m) = &self.handover.metrics {
                fds.push(("metrics", m.try_clone()?));
            }
            Ok(fds)
        })();
        info!("upgrade: replacing this daemon with {}", exe.display());
        let cancel = self.cancel.clone();
        self.running = Some(tokio::task::spawn_blocking(move || {
            start_successor(&exe, &args, &fds?, READY_TIMEOUT, &cancel)
        }));
    }

    /// The running upgrade's end: the new PID, or `None` when it failed
    /// (answered and logged; this daemon runs on). Pending when idle.
    pub async fn finished(&mut self) -> Option<u32> {
        let Some(task) = &mut self.running else {
            return std::future::pending().await;
        };
        let result = task
            .await
            .unwrap_or_else(|e| Err(anyhow!("the upgrade task failed: {e}")));
        self.running = None;
        match result {
            Ok(pid) => Some(pid),
            Err(e) => {
                error!("upgrade refused, this daemon runs on: {e:#}");
                for w in self.waiting.drain(..) {
                    let _ = w.send(Response::Error {
                        message: format!("upgrade failed, the running daemon goes on: {e:#}"),
                    });
                }
                None
            }
        }
    }

    /// Answers `ctl upgrade` once this process has stopped its VRRP.
    pub async fn succeeded(self, pid: u32) {
        let message = format!(
            "upgraded: pid {} -> pid {pid} ({})",
            std::process::id(),
            self.origin.exe.display()
        );
        info!("{message}");
        for w in self.waiting {
            let _ = w.send(Response::Done {
                message: message.clone(),
            });
        }
        tokio::time::sleep(ANSWER_GRACE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_over_variable_is_for_the_named_parent_only() {
        assert_eq!(
            parse_env("41;admin=5,metrics=6,ready=7", 41).expect("parse"),
            vec![
                ("admin".to_string(), 5),
                ("metrics".to_string(), 6),
                ("ready".to_string(), 7)
            ]
        );
        assert_eq!(
            parse_env("41;admin=5", 99).expect("parse"),
            vec![],
            "a grandchild ignores it"
        );
        assert!(parse_env("41;admin=x", 41).is_err());
        assert!(
            parse_env("41;admin=1", 41).is_err(),
            "stdout is not a listener"
        );
        assert!(parse_env("no-separator", 41).is_err());
    }

    #[test]
    fn argv0_is_made_absolute_without_resolving_symlinks() {
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            resolve(Path::new("./bin/xdpvs")).expect("relative"),
            cwd.join("bin/xdpvs")
        );
        assert_eq!(
            resolve(Path::new("/usr/sbin/xdpvs")).expect("absolute"),
            PathBuf::from("/usr/sbin/xdpvs")
        );
        assert_eq!(
            resolve(Path::new("sh")).expect("on PATH").file_name(),
            Some("sh".as_ref())
        );
    }

    fn successor(script: &str) -> Result<u32> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xdpvs-upgrade-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let exe = dir.join("xdpvs");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).expect("script");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // Another test's fork may briefly hold the script open for writing.
        let mut r = start_successor(
            &exe,
            &[],
            &[],
            Duration::from_secs(2),
            &AtomicBool::new(false),
        );
        for _ in 0..20 {
            match &r {
                Err(e) if format!("{e:#}").contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(50));
                    r = start_successor(
                        &exe,
                        &[],
                        &[],
                        Duration::from_secs(2),
                        &AtomicBool::new(false),
                    );
                }
                _ => break,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    /// The script finds its pipe through the variable, as xdpvs does.
    const READY_FD: &str = r#"fd=${XDPVS_UPGRADE##*ready=}"#;

    #[test]
    fn a_successor_that_reports_ready_takes_over() {
        let pid = successor(&format!("{READY_FD}; printf ready >&$fd")).expect("ready");
        assert!(pid > 0);
    }

    #[test]
    fn a_successor_that_refuses_says_why() {
        let e = successor(&format!(
            "{READY_FD}; printf 'error: configuration refused: x.conf:3: bad' >&$fd; exit 1"
        ))
        .expect_err("refused");
        let text = format!("{e:#}");
        assert!(
            text.contains("configuration refused: x.conf:3: bad"),
            "{text}"
        );
        assert!(text.contains("exit status: 1"), "{text}");
    }

    #[test]
    fn a_successor_that_exits_or_hangs_is_refused() {
        let e = successor("exit 1").expect_err("silent exit");
        assert!(
            format!("{e:#}").contains("ended before it was ready"),
            "{e:#}"
        );
        let e = successor("exec sleep 30").expect_err("hangs");
        assert!(format!("{e:#}").contains("did not report ready"), "{e:#}");
    }

    #[test]
    fn stopping_calls_an_upgrade_off() {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        let e = start_successor(
            Path::new("/bin/sleep"),
            &["30".into()],
            &[],
            READY_TIMEOUT,
            &cancel,
        )
        .expect_err("cancelled");
        setter.join().expect("setter");
        assert!(format!("{e:#}").contains("is stopping"), "{e:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_or_plain_file_is_refused() {
        let e = start_successor(
            Path::new("/nonexistent/xdpvs"),
            &[],
            &[],
            READY_TIMEOUT,
            &AtomicBool::new(false),
        )
        .expect_err("missing");
        assert!(format!("{e:#}").contains("is missing"), "{e:#}");
        let plain = std::env::temp_dir().join(format!("xdpvs-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").expect("file");
        let e = start_successor(&plain, &[], &[], READY_TIMEOUT, &AtomicBool::new(false))
            .expect_err("not executable");
        let _ = std::fs::remove_file(&plain);
        assert!(format!("{e:#}").contains("not an executable"), "{e:#}");
    }
}
