//! End to end in network namespaces (root): the daemon, attacked or handled
//! carelessly, keeps its reals and its admin socket. A flood of idle
//! connections to `--metrics` under a 1,024 open-file limit; a file at the
//! socket path; a second daemon on the same socket; umask 000; a non-root
//! client; an oversize request line.

use std::{
    ffi::CString,
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{
            ffi::OsStrExt as _,
            fs::{MetadataExt as _, PermissionsExt as _},
            net::UnixStream,
            process::CommandExt as _,
        },
    },
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use tests::{
    netns::{in_netns, wait_for},
    topology::{DrLab, Launch, VIP, lb_addr, real_addr},
};

/// `nobody` and `nogroup` on Debian.
const NOBODY: u32 = 65534;

/// rs1 checked by TCP_CHECK, rs2 by HTTP_GET, each every second.
fn config() -> String {
    let timing =
        "            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n";
    format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n\
         \x20   real_server {} 80 {{\n        weight 1\n        TCP_CHECK {{\n{timing}        }}\n    }}\n\
         \x20   real_server {} 80 {{\n        weight 1\n        HTTP_GET {{\n            url {{\n                path /\n            }}\n{timing}        }}\n    }}\n}}\n",
        real_addr(0),
        real_addr(1)
    )
}

fn lab(tag: &str) -> DrLab {
    let lab = DrLab::build(tag, 1, 2).expect("lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP");
    lab
}

/// Both reals listed UP by `ctl status`.
fn both_up(status: &str) -> bool {
    (0..2).all(|i| status.contains(&format!("{}:80  UP", real_addr(i))))
}

/// Lets this test process hold the flood's sockets: soft = hard >= `n`.
fn raise_own_open_files(n: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_max = l.rlim_max.max(n);
        l.rlim_cur = l.rlim_max;
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_NOFILE, &l),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

/// `n` non-blocking connects from namespace `ns` to `to`, left idle.
fn flood(ns: &str, to: SocketAddr, n: usize) -> Vec<OwnedFd> {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    in_netns(ns, move || {
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: to.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*to.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        (0..n)
            .map(|_| {
                // SAFETY: a new socket, owned at once; connect reads `addr`.
                unsafe {
                    let fd = libc::socket(
                        libc::AF_INET,
                        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        0,
                    );
                    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
                    let owned = OwnedFd::from_raw_fd(fd);
                    let rc = libc::connect(
                        fd,
                        (&addr as *const libc::sockaddr_in).cast(),
                        size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    );
                    let e = std::io::Error::last_os_error();
                    assert!(
                        rc == 0 || e.raw_os_error() == Some(libc::EINPROGRESS),
                        "connect: {e}"
                    );
                    owned
                }
            })
            .collect()
    })
    .expect("netns")
}

/// How many of `fds` completed their handshake (in the daemon's backlog or
/// accepted by it).
fn established(fds: &[OwnedFd]) -> usize {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    // SAFETY: poll over our own descriptors, no wait.
    unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
    polls
        .iter()
        .filter(|p| p.revents & libc::POLLOUT != 0 && p.revents & libc::POLLERR == 0)
        .count()
}

/// One scrape of `addr` from namespace `ns`, with a query string.
fn scrape(ns: &str, addr: SocketAddr) -> anyhow::Result<String> {
    in_netns(ns, move || -> anyhow::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics?from=hardening HTTP/1.1\r\nHost: lb\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        anyhow::ensure!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        Ok(text)
    })?
}

fn open_descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_metrics_flood_under_1024_open_files_leaves_the_reals_up_root() {
    raise_own_open_files(8192);
    let mut lab = lab("f");
    let metrics = SocketAddr::from((lb_addr(0), 9120));
    // soft = hard = 1,024: the daemon cannot raise its way out.
    let pid = lab
        .start_xdpvs_with(
            0,
            &config(),
            "native",
            &Launch {
                wrapper: &["prlimit", "--nofile=1024:1024"],
                metrics: Some(metrics),
                extra: &[],
            },
        )
        .expect("xdpvs");
    let log = || lab.lab.log("xdpvs-lb1");
    assert!(
        log().contains("open files limit: 1024 (soft = hard)"),
        "{}",
        log()
    );
    let status = lab.ctl(0, &["status"]).expect("status");
    assert!(both_up(&status), "{status}");
    let before = open_descriptors(pid);

    let fds = flood(&lab.client, metrics, 3000);
    let start = Instant::now();
    let (mut slowest, mut most_fds, mut polls) = (Duration::ZERO, 0, 0);
    // Eight seconds: several check rounds, past the idle connections'
    // 5-second header timeout.
    while start.elapsed() < Duration::from_secs(8) {
        let asked = Instant::now();
        let status = lab
            .ctl(0, &["status"])
            .expect("ctl status during the flood");
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(2), "ctl status took {took:?}");
        assert!(both_up(&status), "a real went DOWN:\n{status}\n{}", log());
        slowest = slowest.max(took);
        most_fds = most_fds.max(open_descriptors(pid));
        polls += 1;
        thread::sleep(Duration::from_millis(300));
    }
    let reached = established(&fds);
    // The data plane serves throughout.
    let counts = lab
        .answers(SocketAddr::from((VIP, 80)), 20)
        .expect("client");
    assert!(!counts.contains_key("failed"), "{counts:?}");
    drop(fds);

    assert!(
        reached > 64,
        "only {reached} of 3000 connections reached the daemon"
    );
    assert!(
        most_fds < 300,
        "the daemon held {most_fds} descriptors (the listeners' caps should keep it far below 1,024)"
    );
    assert!(!log().contains(": DOWN ("), "{}", log());
    let text = wait_for(Duration::from_secs(15), || scrape(&lab.client, metrics))
        .expect("a scrape after the flood");
    for i in 0..2 {
        let labels = format!(
            "{{protocol=\"TCP\",vip=\"{VIP}\",port=\"80\",real=\"{}:80\"}}",
            real_addr(i)
        );
        for line in [
            format!("xdpvs_real_up{labels} 1"),
            format!("xdpvs_check_local_errors_total{labels} 0"),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
    println!(
        "flood: 3000 connections, {reached} established; daemon descriptors {before} before, \
         at most {most_fds} during; {polls} ctl status calls, slowest {slowest:?}"
    );
}

/// The lowest descriptor number `pid` does not use: with the open-file
/// limit set to it, its next socket() or pipe() fails with EMFILE.
fn lowest_free_descriptor(pid: u32) -> u64 {
    let used: std::collections::BTreeSet<u64> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !used.contains(n)).unwrap_or(0)
}

/// Sets `pid`'s soft open-file limit (its hard one stays: raising that
/// back would need CAP_SYS_RESOURCE, which a container may not have).
fn prlimit(pid: u32, soft: u64) {
    let out = Command::new("prlimit")
        .args([format!("--pid={pid}"), format!("--nofile={soft}:")])
        .output()
        .expect("prlimit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn checks_starved_of_descriptors_are_local_errors_not_downs_root() {
    let mut lab = lab("e");
    let pid = lab
        .start_xdpvs_with(0, &config(), "native", &Launch::default())
        .expect("xdpvs");
    let log = || lab.lab.log("xdpvs-lb1");
    // The limit at the lowest free descriptor (the least over a few looks,
    // in case a check held one): no new socket can be had.
    let mut limit = u64::MAX;
    for _ in 0..10 {
        limit = limit.min(lowest_free_descriptor(pid));
        thread::sleep(Duration::from_millis(30));
    }
    prlimit(pid, limit);
    let starved = |i: usize| {
        let kind = ["TCP_CHECK", "HTTP_GET"][i];
        format!(
            "real {r}:80 of {VIP}:80: {kind} {r}:80: could not run the check (a local error, \
             not the real's): Too many open files (os error 24); local error 3, the real stays UP",
            r = real_addr(i)
        )
    };
    // retry 1: two real failures would have been DOWN by the third attempt.
    let seen = wait_for(Duration::from_secs(10), || {
        let text = log();
        anyhow::ensure!((0..2).all(|i| text.contains(&starved(i))), "not yet");
        Ok(text)
    });
    prlimit(pid, 1024);
    let seen = seen.unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
    assert!(!seen.contains(": DOWN ("), "{seen}");
    let status = wait_for(Duration::from_secs(10), || lab.ctl(0, &["status"]))
        .expect("ctl status once descriptors are back");
    assert!(both_up(&status), "{status}");
    assert!(
        status.contains("    local check errors: ")
            && status.contains("(last: TCP_CHECK ")
            && status.contains("(last: HTTP_GET "),
        "{status}"
    );
    assert!(!log().contains(": DOWN ("), "{}", log());
    println!("{status}");
}

/// Runs `xdpvs ARGS` in namespace `ns`, killed if it outlives 20 s.
fn xdpvs_bounded(lab: &DrLab, ns: &str, args: &[&str]) -> Output {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(&lab.artifacts.xdpvs)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xdpvs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("xdpvs {args:?} did not end within 20 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A second `xdpvs run` on LB node 0 with the lab's socket.
fn second_daemon(lab: &DrLab) -> Output {
    let conf = lab.lab.dir.join("second.conf");
    fs::write(&conf, config()).expect("config");
    let socket = lab.socket(0);
    xdpvs_bounded(
        lab,
        &lab.lbs[0],
        &[
            "run",
            "--config",
            &conf.to_string_lossy(),
            "--interface",
            "eth0",
            "--socket",
            &socket.to_string_lossy(),
        ],
    )
}

/// A process that, as `nobody`, connects to a path in a tight loop until
/// told to stop: what an unprivileged local user racing the daemon's start
/// would do.
struct Prober {
    pid: libc::pid_t,
    results: OwnedFd,
    stop: PathBuf,
}

/// What the prober saw: attempts, connections made, EACCES refusals.
#[derive(Debug)]
struct Probed {
    attempts: u64,
    connected: u64,
    refused: u64,
}

impl Prober {
    fn start(socket: &Path, stop: &Path) -> Self {
        let _ = fs::remove_file(stop);
        // SAFETY: zeroed sockaddr_un is valid; the path fits (checked).
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = socket.as_os_str().as_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let stop_c = CString::new(stop.as_os_str().as_bytes()).unwrap();
        let mut pipe = [0; 2];
        // SAFETY: pipe2 fills two descriptors.
        assert_eq!(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
            0
        );
        // SAFETY: the child calls only async-signal-safe functions on memory
        // prepared before the fork, then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            unsafe {
                libc::close(pipe[0]);
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    libc::_exit(2);
                }
                let (mut attempts, mut connected, mut refused) = (0u64, 0u64, 0u64);
                let mut start: libc::timespec = std::mem::zeroed();
                let mut now: libc::timespec = std::mem::zeroed();
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut start);
                loop {
                    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
                    // Bounded: 60 s at most, whatever the parent does.
                    if libc::access(stop_c.as_ptr(), libc::F_OK) == 0
                        || now.tv_sec - start.tv_sec > 60
                    {
                        break;
                    }
                    let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                    if fd < 0 {
                        continue;
                    }
                    attempts += 1;
                    let rc = libc::connect(
                        fd,
                        (&addr as *const libc::sockaddr_un).cast(),
                        size_of::<libc::sockaddr_un>() as libc::socklen_t,
                    );
                    if rc == 0 {
                        connected += 1;
                    } else if *libc::__errno_location() == libc::EACCES {
                        refused += 1;
                    }
                    libc::close(fd);
                }
                let out = [attempts, connected, refused];
                libc::write(pipe[1], out.as_ptr().cast(), size_of_val(&out));
                libc::_exit(0);
            }
        }
        // SAFETY: our end of the pipe, owned from here.
        unsafe { libc::close(pipe[1]) };
        Self {
            pid,
            results: unsafe { OwnedFd::from_raw_fd(pipe[0]) },
            stop: stop.to_path_buf(),
        }
    }

    fn finish(self) -> Probed {
        fs::write(&self.stop, b"").expect("stop file");
        let mut out = [0u8; 24];
        let mut file = fs::File::from(self.results);
        file.read_exact(&mut out).expect("the prober's results");
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
        let n = |i: usize| u64::from_ne_bytes(out[i * 8..i * 8 + 8].try_into().unwrap());
        Probed {
            attempts: n(0),
            connected: n(1),
            refused: n(2),
        }
    }
}

/// `xdpvs ctl --socket SOCKET status` as `nobody` (with `nogroup`), from a
/// copy of the binary that `nobody` can run.
fn status_as_nobody(lab: &DrLab, socket: &Path) -> Output {
    let copy = lab.lab.dir.join("xdpvs-as-nobody");
    if !copy.exists() {
        fs::copy(&lab.artifacts.xdpvs, &copy).expect("copy xdpvs");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    Command::new(&copy)
        .args(["ctl", "--socket", &socket.to_string_lossy(), "status"])
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("ctl as nobody")
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn the_admin_socket_is_roots_and_one_daemons_alone_root() {
    let mut lab = lab("s");
    let socket = lab.socket(0);
    let lb = lab.lbs[0].clone();

    // A regular file at the socket path survives a start, which fails
    // before it touches the interface.
    fs::write(&socket, b"precious").expect("file");
    let out = second_daemon(&lab);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "xdpvs: error: {} is a regular file, not a socket: refusing to replace it \
             (remove it yourself, or pick another --socket)\n",
            socket.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&socket).expect("still there"), b"precious");
    let link = lab.lab.ip(&lb, &["link", "show", "eth0"]).expect("link");
    assert!(!link.contains("xdp"), "XDP was attached: {link}");
    fs::remove_file(&socket).expect("remove");

    // Under umask 000 a non-root user racing the start never connects; the
    // daemon raises its soft open-file limit to the hard one.
    let prober = Prober::start(&socket, &lab.lab.dir.join("stop-probing"));
    lab.start_xdpvs_with(
        0,
        &config(),
        "native",
        &Launch {
            wrapper: &[
                "/bin/sh",
                "-c",
                "umask 000; exec \"$@\"",
                "sh",
                "prlimit",
                "--nofile=1024:4096",
            ],
            ..Launch::default()
        },
    )
    .expect("xdpvs");
    let probed = prober.finish();
    assert_eq!(probed.connected, 0, "{probed:?}");
    assert!(probed.attempts >= 100, "not a tight loop: {probed:?}");
    assert!(
        probed.refused > 0,
        "the prober never saw the socket: {probed:?}"
    );
    let meta = fs::symlink_metadata(&socket).expect("socket");
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0));
    let log = lab.lab.log("xdpvs-lb1");
    assert!(
        log.contains("open files limit raised from 1024 to the hard limit 4096"),
        "{log}"
    );
    println!("umask 000: {probed:?}");

    // A second daemon on the same socket is refused; the first serves on.
    let out = second_daemon(&lab);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "xdpvs: error: another daemon is serving {}: two daemons never share a socket \
             (stop it first, or pick another --socket)\n",
            socket.display()
        )),
        "{stderr}"
    );
    assert!(both_up(&lab.ctl(0, &["status"]).expect("status")));

    // A careless chmod opens the socket: SO_PEERCRED still refuses nobody.
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = status_as_nobody(&lab, &socket);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "xdpvs: error: permission denied: the admin socket serves root only, \
         not uid 65534 (gid 65534)\n"
    );
    assert!(both_up(&lab.ctl(0, &["status"]).expect("root is served")));

    // An oversize request line is refused, the daemon unharmed.
    let mut s = UnixStream::connect(&socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // The daemon stops reading at the cap, so the write may fail.
    let _ = s.write_all(&vec![b' '; 1 << 20]);
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).expect("answer");
    assert_eq!(
        answer,
        "{\"response\":\"error\",\"message\":\"request line longer than 65536 bytes: refused\"}\n"
    );
    assert!(both_up(&lab.ctl(0, &["status"]).expect("status")));

    // With --socket-group the group's members are served (0660).
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("stop");
    assert!(!socket.exists(), "the daemon left its socket behind");
    lab.start_xdpvs_with(
        0,
        &config(),
        "native",
        &Launch {
            extra: &["--socket-group", "nogroup"],
            ..Launch::default()
        },
    )
    .expect("xdpvs with --socket-group");
    let meta = fs::symlink_metadata(&socket).expect("socket");
    assert_eq!(
        (meta.mode() & 0o777, meta.uid(), meta.gid()),
        (0o660, 0, NOBODY)
    );
    let out = status_as_nobody(&lab, &socket);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && both_up(&stdout),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
