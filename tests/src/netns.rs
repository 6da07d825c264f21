//! Network namespaces for the end-to-end tests and the demo: creation,
//! running code and programs inside them, and cleanup of everything a test
//! started (by PID) and created, even when the test fails.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Mounts the bpffs xdpvs prefers, /run/xdpvs/bpf, unless it is there:
/// `ip netns exec` gives each daemon its own /sys, so a bpffs there would
/// end with the daemon (and mounting it needs CAP_SYS_ADMIN); /run is the
/// host's. It stands for the /sys/fs/bpf systemd mounts on a host.
pub fn host_bpffs() {
    let dir = "/run/xdpvs/bpf";
    std::fs::create_dir_all(dir).expect("creating /run/xdpvs/bpf");
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir));
    if !mounted {
        sh("mount", &["-t", "bpf", "bpf", dir]).expect("mounting bpffs on /run/xdpvs/bpf");
    }
}

/// Runs a command to completion; fails with its stderr.
pub fn sh(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("could not run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let file = File::open(format!("/var/run/netns/{ns}")).with_context(|| format!("netns {ns}"))?;
    thread::spawn(move || {
        // SAFETY: setns on a valid namespace fd only changes this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread in netns {ns} panicked"))?
}

/// A set of namespaces and the processes started in them.
pub struct Lab {
    prefix: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
}

impl Lab {
    /// `tag` keeps concurrent labs apart; names stay short for interface limits.
    pub fn new(tag: &str) -> Result<Self> {
        let prefix = format!("xv{}{tag}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            prefix,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
        })
    }

    /// Creates namespace `name` (its full name is returned) with `lo` up.
    pub fn netns(&mut self, name: &str) -> Result<String> {
        let full = format!("{}-{name}", self.prefix);
        sh("ip", &["netns", "add", &full])?;
        self.namespaces.push(full.clone());
        sh("ip", &["-n", &full, "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// Runs `ip -n ns ARGS`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    pub fn sysctl(&self, ns: &str, setting: &str) -> Result<()> {
        sh("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", setting]).map(drop)
    }

    /// Starts a program in `ns`, output to `<dir>/<name>.log`. It is stopped
    /// (SIGTERM, then SIGKILL) when the lab is dropped.
    pub fn spawn(&mut self, name: &str, ns: &str, program: &Path, args: &[&str]) -> Result<u32> {
        let log = File::create(self.log_path(name))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id();
        self.children.push((name.to_string(), child));
        Ok(pid)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Sends `signal` to the process started as `name` and waits for it to end.
    pub fn stop(&mut self, name: &str, signal: i32) -> Result<()> {
        let Some(i) = self.children.iter().position(|(n, _)| n == name) else {
            bail!("no process {name}");
        };
        let (_, mut child) = self.children.remove(i);
        terminate(&mut child, signal);
        Ok(())
    }

    /// Fails if a process started as `name` has exited.
    pub fn alive(&mut self, name: &str) -> Result<()> {
        let Some((_, child)) = self.children.iter_mut().find(|(n, _)| n == name) else {
            bail!("no process {name}");
        };
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited ({status}):\n{}", self.log(name));
        }
        Ok(())
    }
}

fn terminate(child: &mut Child, signal: i32) {
    // SAFETY: kill on the PID of a child we own and have not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            terminate(child, libc::SIGTERM);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = sh("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `f` until it succeeds or `timeout` passes; returns its last error.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("still failing after {timeout:?}")));
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}
