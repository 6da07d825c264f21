//! Binary upgrade with no gap (root): an xdpvs master (priority 100) and a
//! real keepalived backup (99), 20 keep-alive HTTP connections through the
//! VIP and a ping every 10 ms, flow sync on (its port bound by both processes
//! for a moment). The daemon runs from a temporary path; a new
//! binary is copied over it (copy + rename, as a package manager does) and
//! `ctl upgrade`, then SIGUSR2, replace the daemon. Checked: every
//! connection answers throughout, no ping is lost, the adverts on the wire
//! never pause longer than one interval (plus scheduling slack), keepalived
//! never advertises (a backup that does has become master), the admin socket
//! and metrics answer from the new PID. A broken new binary is refused and
//! the running daemon goes on.

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use tests::{
    adverts::{Advert, Capture},
    keepalived::{self, Vrrp, has_vip, master_down_interval, wait_vip},
    netns::{in_netns, wait_for},
    topology::{DrLab, VIP, exchange, lb_addr},
};

const XDP_MODE: &str = "native";
const CONNECTIONS: usize = 20;
const ADVERT_INT: Duration = Duration::from_secs(1);
/// Scheduling on a loaded 2-core runner.
const GAP_SLACK: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_millis(1500);

/// The daemon once an upgrade has made it nobody's child: stopped (SIGTERM,
/// then SIGKILL) by PID when the test ends, before the lab goes.
#[derive(Default)]
struct Adopted(Option<i32>);

/// Running: neither gone nor a zombie (an exited daemon whose parent, the
/// lab or an init that does not reap, has not collected it yet).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for Adopted {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        // SAFETY: kill on the PID of the daemon this test started (by upgrade).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if !wait_gone(pid, Duration::from_secs(10)) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Keep-alive connections asked in turn until stopped; every failure is
/// a lost connection.
struct Connections {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<(usize, Vec<String>)>>,
}

impl Connections {
    fn open(lab: &DrLab) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ns) = (stop.clone(), lab.client.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            in_netns(&ns, move || -> Result<(usize, Vec<String>)> {
                let vip = SocketAddr::from((VIP, 80));
                let mut conns = Vec::new();
                for _ in 0..CONNECTIONS {
                    let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(2))?;
                    c.set_read_timeout(Some(Duration::from_secs(2)))?;
                    exchange(&mut c)?;
                    conns.push(Some(c));
                }
                let _ = ready_tx.send(());
                let (mut answered, mut lost) = (0, Vec::new());
                while !s.load(Ordering::Relaxed) {
                    for (i, slot) in conns.iter_mut().enumerate() {
                        let Some(c) = slot else { continue };
                        match exchange(c) {
                            Ok(_) => answered += 1,
                            Err(e) => {
                                lost.push(format!("connection {i}: {e:#}"));
                                *slot = None;
                            }
                        }
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                Ok((answered, lost))
            })?
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| anyhow!("the {CONNECTIONS} connections did not open"))?;
        Ok(Self { stop, thread })
    }

    /// (requests answered, connections lost with why).
    fn close(self) -> Result<(usize, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("connection thread panicked"))?
    }
}

/// An echo request to the VIP every 10 ms from the client (a raw ICMP
/// socket: the image has no ping); counts the replies.
struct Pinger {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<(usize, usize)>>,
}

const PING_EVERY: Duration = Duration::from_millis(10);

impl Pinger {
    fn start(lab: &DrLab) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ns) = (stop.clone(), lab.client.clone());
        let thread = thread::spawn(move || in_netns(&ns, move || echo_loop(&s))?);
        Self { stop, thread }
    }

    /// (sent, answered): an echo counts as answered within a second.
    fn finish(self) -> Result<(usize, usize)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("ping thread panicked"))?
    }
}

fn echo_loop(stop: &AtomicBool) -> Result<(usize, usize)> {
    // SAFETY: plain socket calls on a descriptor this function owns and
    // closes; every pointer is to a local that outlives the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            bail!("raw ICMP socket: {}", std::io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 1_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of_val(&timeout) as libc::socklen_t,
        );
        let dst = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(VIP.octets()),
            },
            sin_zero: [0; 8],
        };
        let id = (std::process::id() & 0xffff) as u16;
        let mut answered = std::collections::BTreeSet::new();
        let mut sent: usize = 0;
        let mut next = Instant::now();
        // Bounded even if never told to stop.
        let give_up = next + Duration::from_secs(120);
        let mut stopping: Option<Instant> = None;
        let mut buf = [0u8; 1500];
        loop {
            let now = Instant::now();
            match stopping {
                Some(at) if now >= at => break,
                None if stop.load(Ordering::Relaxed) || now >= give_up => {
                    stopping = Some(now + Duration::from_secs(1));
                }
                None if now >= next => {
                    let rest = (u32::from(id) << 16) | (sent as u32 & 0xffff);
                    let m = tests::packet::icmpv4(8, 0, rest, b"xdpvs-upgrade");
                    libc::sendto(
                        fd,
                        m.as_ptr().cast(),
                        m.len(),
                        0,
                        (&raw const dst).cast(),
                        size_of_val(&dst) as libc::socklen_t,
                    );
                    sent += 1;
                    next += PING_EVERY;
                }
                _ => {}
            }
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            let Ok(n) = usize::try_from(n) else { continue };
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n >= ihl + 8
                && buf[12..16] == VIP.octets()
                && buf[ihl] == 0
                && buf[ihl + 4..ihl + 6] == id.to_be_bytes()
            {
                answered.insert(u16::from_be_bytes([buf[ihl + 6], buf[ihl + 7]]));
            }
        }
        libc::close(fd);
        Ok((sent, answered.len()))
    }
}

/// The PID `ctl status` names.
fn daemon_pid(lab: &DrLab) -> Result<i32> {
    let status = lab.ctl(0, &["status"])?;
    let first = status.lines().next().unwrap_or_default();
    first
        .split_whitespace()
        .skip_while(|w| *w != "pid")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("no pid in `ctl status`: {first}"))
}

/// Puts `content` at `path` the way a package manager does: a new file,
/// renamed over the old one (whose inode the running daemon keeps).
fn install(path: &Path, from: &Path) -> Result<()> {
    let tmp = path.with_extension("new");
    std::fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn max_gap(adverts: &[Advert], from: std::net::Ipv4Addr) -> Duration {
    let ours: Vec<_> = adverts.iter().filter(|a| a.from == from).collect();
    ours.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default()
}

struct Rig {
    lab: DrLab,
    /// The path the daemon runs from, and the build it copies from.
    bin: PathBuf,
    build: PathBuf,
}

impl Rig {
    /// `tag` names the lab's namespaces (unique per test).
    fn new(tag: &str) -> Result<Self> {
        let mut lab = DrLab::build(tag, 2, 2)?;
        lab.start_nginx(0)?;
        lab.start_nginx(1)?;
        let build = lab.artifacts.xdpvs.clone();
        let dir = lab.lab.dir.join("bin");
        std::fs::create_dir_all(&dir)?;
        let bin = dir.join("xdpvs");
        std::fs::copy(&build, &bin)?;
        let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
        keepalived::start(&mut lab.lab, "keepalived", &lb2, &Vrrp::new(3, 99).conf())?;
        let ours = Vrrp {
            reals: 2,
            ..Vrrp::new(3, 100)
        };
        // With flow sync, whose port the new process binds beside the old.
        let conf = ours.conf().replacen(
            "global_defs {\n",
            "global_defs {\n    lvs_sync_daemon eth0\n",
            1,
        );
        // The daemon runs from `bin`; ctl and adm keep using the build.
        lab.artifacts.xdpvs = bin.clone();
        let started = lab.start_xdpvs(0, &conf, XDP_MODE);
        lab.artifacts.xdpvs = build.clone();
        started?;
        let startup = master_down_interval(3, 100) + master_down_interval(3, 99) + SLACK;
        wait_vip(&lb1, true, startup)?;
        wait_vip(&lb2, false, startup)?;
        Ok(Self { lab, bin, build })
    }

    /// Runs `trigger` under load; returns the new daemon's PID and prints
    /// what was measured.
    fn upgrade_under_load(
        &self,
        what: &str,
        trigger: impl FnOnce(&DrLab) -> Result<()>,
    ) -> Result<i32> {
        let lab = &self.lab;
        let old = daemon_pid(lab)?;
        // keepalived may have been master before xdpvs first started.
        let keepalived_before = lab.lab.log("keepalived").len();
        let conns = Connections::open(lab)?;
        let capture = Capture::start(&lab.client)?;
        let pinger = Pinger::start(lab);
        thread::sleep(Duration::from_secs(1));
        install(&self.bin, &self.build)?;
        let started = Instant::now();
        trigger(lab)?;
        let new = wait_for(Duration::from_secs(40), || {
            let pid = daemon_pid(lab)?;
            if pid == old {
                bail!("still pid {old}");
            }
            Ok(pid)
        })?;
        let took = started.elapsed();
        if !wait_gone(old, Duration::from_secs(5)) {
            bail!("the old daemon (pid {old}) did not exit");
        }
        // Adverts from the new process alone, several intervals of them.
        thread::sleep(3 * ADVERT_INT);
        let (sent, received) = pinger.finish()?;
        let adverts = capture.finish()?;
        let (answered, lost) = conns.close()?;
        let gap = max_gap(&adverts, lb_addr(0));
        println!(
            "{what}: pid {old} -> {new} (answering after {:.2} s); connections kept {}/{CONNECTIONS} \
             ({answered} requests answered); pings lost {} of {sent}; longest advert gap \
             {:.3} s (interval {:.0} s)",
            took.as_secs_f64(),
            CONNECTIONS - lost.len(),
            sent - received,
            gap.as_secs_f64(),
            ADVERT_INT.as_secs_f64()
        );
        let keepalived_adverts: Vec<_> = adverts.iter().filter(|a| a.from == lb_addr(1)).collect();
        assert!(
            keepalived_adverts.is_empty(),
            "{what}: keepalived advertised, so it became master: {keepalived_adverts:?}"
        );
        assert!(
            !adverts
                .iter()
                .any(|a| a.from == lb_addr(0) && a.priority == 0),
            "{what}: the old daemon sent priority 0"
        );
        assert!(
            gap <= ADVERT_INT + GAP_SLACK,
            "{what}: adverts paused for {gap:?}"
        );
        assert!(
            adverts.iter().filter(|a| a.from == lb_addr(0)).count() >= 3,
            "{what}: no adverts seen"
        );
        assert!(
            has_vip(&lab.lbs[0]) && !has_vip(&lab.lbs[1]),
            "{what}: the VIP moved"
        );
        keepalived_stayed(lab, keepalived_before, what);
        // The data plane across the upgrade.
        assert_eq!(sent, received, "{what}: pings lost");
        assert!(lost.is_empty(), "{what}: connections lost: {lost:#?}");
        // The listeners came along: the admin socket answers from the new
        // PID (text and JSON), metrics answer too.
        let json = lab.ctl(0, &["status", "--json"])?;
        assert!(
            json.contains(&format!("\"pid\": {new}")) && json.contains("\"started_unix\""),
            "{what}: {json}"
        );
        let metrics = lab.metrics(0)?;
        assert!(metrics.contains("xdpvs_"), "{what}: metrics: {metrics}");
        let log = lab.lab.log("xdpvs-lb1");
        assert!(
            log.contains("resuming as MASTER, VIPs kept"),
            "{what}: the new daemon did not resume:\n{log}"
        );
        Ok(new)
    }
}

/// Panics if keepalived (the backup) changed state after the first
/// `before` bytes of its log.
fn keepalived_stayed(lab: &DrLab, before: usize, what: &str) {
    let log = lab.lab.log("keepalived");
    let since = log.get(before..).unwrap_or_default();
    assert!(
        !since.contains("MASTER"),
        "{what}: keepalived changed state:\n{since}"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn upgrade_without_a_gap_root() {
    let rig = Rig::new("up").expect("lab with xdpvs master and keepalived backup");
    let mut adopted = Adopted::default();

    let socket = rig.lab.lab.dir.join("xdpvs-lb1.sock");
    let new = rig
        .upgrade_under_load("ctl upgrade", |lab| {
            let out = lab.ctl(0, &["upgrade"]).map_err(|e| {
                if format!("{e:#}").contains("Device or resource busy") {
                    // The old process's XDP link is not adoptable.
                    e.context(
                        "the new daemon needs the pinned data plane (issue 7 §1) to take over",
                    )
                } else {
                    e
                }
            })?;
            assert!(out.contains("upgraded: pid"), "{out}");
            Ok(())
        })
        .expect("ctl upgrade");
    adopted.0 = Some(new);

    let newer = rig
        .upgrade_under_load("SIGUSR2", |_| {
            // SAFETY: kill on the daemon's PID, as an operator would.
            if unsafe { libc::kill(new, libc::SIGUSR2) } != 0 {
                bail!("SIGUSR2: {}", std::io::Error::last_os_error());
            }
            Ok(())
        })
        .expect("SIGUSR2");
    adopted.0 = Some(newer);

    // Refusals: the daemon runs on as master, `ctl upgrade` says why.
    let refused = |what: &str| -> String {
        let out = Command::new(&rig.build)
            .args(["ctl", "--socket"])
            .arg(&socket)
            .arg("upgrade")
            .output()
            .expect("running ctl upgrade");
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        println!("{what}: ctl upgrade {}: {stderr}", out.status);
        assert!(!out.status.success(), "{what}: ctl upgrade succeeded");
        stderr
    };
    // The new binary refuses the configuration it finds.
    let conf = rig.lab.lab.dir.join("xdpvs-lb1.conf");
    let good = std::fs::read_to_string(&conf).expect("config");
    std::fs::write(&conf, format!("{good}\nvrrp_instance {{\n")).expect("bad config");
    let stderr = refused("bad configuration");
    assert!(stderr.contains("configuration refused"), "{stderr}");
    // A configuration the new process applies before it fails (its flow
    // sync on an interface that does not exist, after the tables are
    // written): rs2 left out of the service by it is put back by the old
    // daemon, which runs on with its own configuration.
    let second = good
        .match_indices("    real_server ")
        .nth(1)
        .map(|(at, _)| at)
        .expect("two reals");
    let end = second + good[second..].find("    }\n").expect("end of real_server") + 6;
    let edited = format!("{}{}", &good[..second], &good[end..]).replacen(
        "lvs_sync_daemon eth0",
        "lvs_sync_daemon nosuch0",
        1,
    );
    std::fs::write(&conf, edited).expect("edited config");
    let keepalived_before = rig.lab.lab.log("keepalived").len();
    let stderr = refused("fails after writing its tables");
    assert!(stderr.contains("nosuch0"), "{stderr}");
    std::fs::write(&conf, &good).expect("restoring the config");
    // Logged once the refusal is answered.
    wait_for(Duration::from_secs(5), || {
        let log = rig.lab.lab.log("xdpvs-lb1");
        if !log.contains("map writes put this daemon's tables back") {
            bail!("the old daemon did not take its tables back:\n{log}");
        }
        Ok(())
    })
    .expect("tables taken back");
    let answers = rig
        .lab
        .answers(SocketAddr::from((VIP, 80)), 40)
        .expect("client");
    assert!(
        answers.contains_key("rs1") && answers.contains_key("rs2"),
        "both reals serve again: {answers:?}"
    );
    assert!(
        has_vip(&rig.lab.lbs[0]),
        "still master after the failed upgrade"
    );
    // The new process resumed the master before it failed: it leaves
    // without a priority-0 advert, so the backup never took over.
    keepalived_stayed(&rig.lab, keepalived_before, "failed upgrade");
    // A broken binary, then none at all.
    let broken = rig.lab.lab.dir.join("broken");
    std::fs::write(&broken, "#!/bin/sh\necho 'not xdpvs' >&2\nexit 1\n").expect("script");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    install(&rig.bin, &broken).expect("installing the broken binary");
    let stderr = refused("broken binary");
    assert!(
        stderr.contains("upgrade failed") && stderr.contains("exit status: 1"),
        "{stderr}"
    );
    std::fs::remove_file(&rig.bin).expect("removing the binary");
    let stderr = refused("missing binary");
    assert!(stderr.contains("is missing"), "{stderr}");
    assert_eq!(
        daemon_pid(&rig.lab).expect("status"),
        newer,
        "the daemon runs on"
    );
    assert!(has_vip(&rig.lab.lbs[0]), "still master");
    let answers = rig
        .lab
        .answers(SocketAddr::from((VIP, 80)), 20)
        .expect("client");
    assert_eq!(answers.get("failed"), None, "{answers:?}");
    // `adopted` goes before `rig` (declared after it): the daemon stops
    // before its namespaces do.
}

/// `kill -9` of the master daemon, started again at once: it resumes as
/// master within Master_Down_Interval (VIP kept, advert at once), so the
/// keepalived backup never takes over. Started again only after that
/// interval, it starts normally and wins the election by priority.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn restart_after_crash_resumes_master_root() {
    let mut rig = Rig::new("rs").expect("lab with xdpvs master and keepalived backup");
    let (lb1, lb2) = (rig.lab.lbs[0].clone(), rig.lab.lbs[1].clone());
    let conf = Vrrp {
        reals: 2,
        ..Vrrp::new(3, 100)
    }
    .conf();
    let keepalived_before = rig.lab.lab.log("keepalived").len();
    let capture = Capture::start(&rig.lab.client).expect("capture");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, lb1) = (stop.clone(), lb1.clone());
        thread::spawn(move || {
            let mut missing = 0;
            while !stop.load(Ordering::Relaxed) {
                if !has_vip(&lb1) {
                    missing += 1;
                }
                thread::sleep(Duration::from_millis(20));
            }
            missing
        })
    };
    rig.lab
        .lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 xdpvs");
    let crashed = Instant::now();
    rig.lab
        .start_xdpvs(0, &conf, XDP_MODE)
        .expect("restarting xdpvs");
    let restarted = crashed.elapsed();
    thread::sleep(3 * ADVERT_INT);
    stop.store(true, Ordering::Relaxed);
    let missing = watcher.join().expect("watcher");
    let adverts = capture.finish().expect("adverts");
    let gap = max_gap(&adverts, lb_addr(0));
    println!(
        "kill -9 + restart: up again in {:.2} s; longest advert gap {:.3} s \
         (keepalived's Master_Down_Interval {:.2} s)",
        restarted.as_secs_f64(),
        gap.as_secs_f64(),
        master_down_interval(3, 99).as_secs_f64()
    );
    let log = rig.lab.lab.log("xdpvs-lb1");
    assert!(log.contains("resuming as MASTER, VIPs kept"), "{log}");
    assert_eq!(missing, 0, "the VIP left lb1 during the restart");
    assert!(
        !adverts.iter().any(|a| a.from == lb_addr(1)),
        "keepalived advertised: it became master"
    );
    keepalived_stayed(&rig.lab, keepalived_before, "kill -9 + restart");
    assert!(gap < master_down_interval(3, 99), "advert gap {gap:?}");

    // Later than Master_Down_Interval: the normal rules.
    rig.lab
        .lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 xdpvs");
    wait_vip(&lb2, true, master_down_interval(3, 99) + SLACK).expect("keepalived takes over");
    rig.lab
        .start_xdpvs(0, &conf, XDP_MODE)
        .expect("restarting xdpvs");
    let log = rig.lab.lab.log("xdpvs-lb1");
    assert!(
        log.contains("not within Master_Down_Interval") && !log.contains("resuming as MASTER"),
        "{log}"
    );
    wait_vip(&lb2, false, master_down_interval(3, 100) + SLACK).expect("xdpvs preempts");
}
