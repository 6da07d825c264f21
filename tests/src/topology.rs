//! The direct-routing test network: a client, load-balancer nodes and real
//! servers on one bridge, each in its own namespace.
//!
//! ```text
//!   client 10.100.0.10 ─┐
//!   lb1    10.100.0.2  ─┼─ bridge (namespace "sw")
//!   rs1    10.100.0.11 ─┤   reals hold the VIP 10.100.0.100 on lo,
//!   rs2    10.100.0.12 ─┘   with arp_ignore=1 and arp_announce=2
//! ```
//! Each real runs nginx answering `<name> <client address>`. `build` readies
//! the lab for native XDP on veth (`DrLab::set_native_ready`), `build_plain`
//! leaves it as a new user builds it.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    programs::{Xdp, XdpMode},
};

use crate::netns::{Lab, in_netns, sh, wait_for};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 10);

/// Where every LB node serves its metrics, inside its own namespace.
pub const METRICS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9120);

pub fn lb_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, 2 + i as u8)
}

pub fn real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, 11 + i as u8)
}

/// Paths that `cargo xtask` passes in the environment.
pub struct Artifacts {
    pub xdpvs: PathBuf,
    pub pass_object: PathBuf,
}

impl Artifacts {
    pub fn from_env() -> Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(default))
        };
        let a = Self {
            xdpvs: path("XDPVS_BIN", "target/release/xdpvs"),
            pass_object: path(
                "XDPVS_PASS_OBJECT",
                "target/ebpf/bpfel-unknown-none/release/xdp-pass",
            ),
        };
        for p in [&a.xdpvs, &a.pass_object] {
            if !p.is_file() {
                bail!(
                    "{} is missing: run the tests with `cargo xtask test`",
                    p.display()
                );
            }
        }
        Ok(a)
    }
}

/// How `DrLab::start_xdpvs_with` runs the daemon.
#[derive(Default)]
pub struct Launch<'a> {
    /// A command the daemon runs under (`prlimit --nofile=1024:1024`, ...).
    pub wrapper: &'a [&'a str],
    /// Where it serves metrics (default `METRICS`).
    pub metrics: Option<SocketAddr>,
    /// More `xdpvs run` options.
    pub extra: &'a [&'a str],
}

pub struct DrLab {
    pub lab: Lab,
    pub artifacts: Artifacts,
    pub(crate) sw: String,
    pub client: String,
    pub lbs: Vec<String>,
    pub reals: Vec<String>,
    /// Keeps the pass-through programs attached.
    pass: Vec<Ebpf>,
}

impl DrLab {
    /// The bridge alone: no hosts yet.
    pub(crate) fn bare(tag: &str) -> Result<Self> {
        let artifacts = Artifacts::from_env()?;
        let mut lab = Lab::new(tag)?;
        let sw = lab.netns("sw")?;
        lab.ip(&sw, &["link", "add", "br0", "type", "bridge"])?;
        lab.ip(&sw, &["link", "set", "br0", "up"])?;
        Ok(Self {
            lab,
            artifacts,
            sw,
            client: String::new(),
            lbs: Vec::new(),
            reals: Vec::new(),
            pass: Vec::new(),
        })
    }

    pub fn build(tag: &str, lb_count: usize, real_count: usize) -> Result<Self> {
        Self::build_as(tag, lb_count, real_count, true)
    }

    /// The lab as a new user builds it by hand: default offloads on every
    /// veth and no XDP program on the LB nodes' bridge ports.
    pub fn build_plain(tag: &str, lb_count: usize, real_count: usize) -> Result<Self> {
        Self::build_as(tag, lb_count, real_count, false)
    }

    /// `native_ready`: the tweaks native XDP on veth needs (`set_native_ready`).
    fn build_as(tag: &str, lb_count: usize, real_count: usize, native_ready: bool) -> Result<Self> {
        let mut this = Self::bare(tag)?;
        this.client = this.host("client", CLIENT)?;
        for i in 0..lb_count {
            let ns = this.host(&format!("lb{}", i + 1), lb_addr(i))?;
            this.lbs.push(ns);
        }
        if native_ready {
            this.set_native_ready(true)?;
        }
        for i in 0..real_count {
            this.add_real(i)?;
        }
        Ok(this)
    }

    /// Puts in (or takes out) what native XDP on veth needs and a physical
    /// NIC does not: a pass-through XDP program on every LB node's bridge
    /// port (veth drops `XDP_TX` frames when the peer has none), and software
    /// checksums on the client (veth leaves TCP/UDP checksums to "hardware",
    /// CHECKSUM_PARTIAL, and a frame that native XDP sends on with `XDP_TX`
    /// has lost that note, so it would reach the real with a partial checksum;
    /// a real NIC fills the checksum in on the client's side). Other paths
    /// pay for both when they cross the same veth, so a benchmark takes them
    /// out for those.
    pub fn set_native_ready(&mut self, on: bool) -> Result<()> {
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.client,
                "ethtool",
                "-K",
                "eth0",
                "tx",
                if on { "off" } else { "on" },
            ],
        )?;
        // Dropping a loaded program detaches it.
        self.pass.clear();
        if on {
            for i in 0..self.lbs.len() {
                self.attach_pass(&format!("p-lb{}", i + 1))?;
            }
        }
        Ok(())
    }

    /// Real server `i`: the VIP on `lo`, LVS-DR's ARP settings, nginx.
    pub(crate) fn add_real(&mut self, i: usize) -> Result<()> {
        let name = format!("rs{}", i + 1);
        let ns = self.host(&name, real_addr(i))?;
        self.lab
            .ip(&ns, &["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        for s in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            self.lab.sysctl(&ns, s)?;
        }
        self.reals.push(ns);
        self.start_nginx(i)
    }

    /// A host namespace with `eth0` on the bridge (its port is `p-<name>`).
    pub(crate) fn host(&mut self, name: &str, addr: Ipv4Addr) -> Result<String> {
        let ns = self.lab.netns(name)?;
        let port = format!("p-{name}");
        self.lab.ip(
            &self.sw,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        self.lab
            .ip(&self.sw, &["link", "set", &port, "master", "br0", "up"])?;
        self.lab
            .ip(&ns, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        self.lab.ip(&ns, &["link", "set", "eth0", "up"])?;
        Ok(ns)
    }

    fn attach_pass(&mut self, port: &str) -> Result<()> {
        let bytes = std::fs::read(&self.artifacts.pass_object)?;
        let port = port.to_string();
        let ebpf = in_netns(&self.sw, move || -> Result<Ebpf> {
            let mut ebpf = Ebpf::load(&bytes)?;
            let prog: &mut Xdp = ebpf
                .program_mut("xdp_pass")
                .ok_or_else(|| anyhow!("no xdp_pass program"))?
                .try_into()?;
            prog.load()?;
            prog.attach(&port, XdpMode::Driver)?;
            Ok(ebpf)
        })??;
        self.pass.push(ebpf);
        Ok(())
    }

    pub fn start_nginx(&mut self, i: usize) -> Result<()> {
        let name = format!("rs{}", i + 1);
        let dir = self.lab.dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
             fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  \
             server {{\n    listen 80;\n    location / {{ default_type text/plain; return 200 \"{name} $remote_addr\\n\"; }}\n  }}\n}}\n",
            d = dir.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let ns = self.reals[i].clone();
        self.lab.spawn(
            &name,
            &ns,
            "/usr/sbin/nginx".as_ref(),
            &["-c", &conf_path.to_string_lossy()],
        )?;
        let addr = SocketAddr::from((real_addr(i), 80));
        wait_for(Duration::from_secs(10), || {
            in_netns(&ns, move || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            })?
            .map(drop)
            .context("nginx not answering")
        })
    }

    pub fn stop_nginx(&mut self, i: usize) -> Result<()> {
        self.lab.stop(&format!("rs{}", i + 1), libc::SIGTERM)
    }

    /// LB node `lb`'s admin socket.
    pub fn socket(&self, lb: usize) -> PathBuf {
        self.lab.dir.join(format!("xdpvs-lb{}.sock", lb + 1))
    }

    /// Starts xdpvs on LB node `lb` with `config`, and waits until every
    /// real's MAC is known (the admin table shows them up).
    pub fn start_xdpvs(&mut self, lb: usize, config: &str, mode: &str) -> Result<()> {
        self.start_xdpvs_with(lb, config, mode, &Launch::default())
            .map(drop)
    }

    /// `start_xdpvs`, run as `launch` says; returns the daemon's PID.
    pub fn start_xdpvs_with(
        &mut self,
        lb: usize,
        config: &str,
        mode: &str,
        launch: &Launch,
    ) -> Result<u32> {
        let name = format!("xdpvs-lb{}", lb + 1);
        let conf = self.lab.dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config)?;
        let socket = self.socket(lb);
        let ns = self.lbs[lb].clone();
        let bin = self.artifacts.xdpvs.to_string_lossy().into_owned();
        let (conf, socket) = (conf.to_string_lossy(), socket.to_string_lossy());
        let metrics = launch.metrics.unwrap_or(METRICS).to_string();
        let mut args: Vec<&str> = launch.wrapper.to_vec();
        args.extend_from_slice(&[
            &bin,
            "run",
            "--config",
            &conf,
            "--interface",
            "eth0",
            "--xdp-mode",
            mode,
            "--socket",
            &socket,
            "--metrics",
            &metrics,
        ]);
        args.extend_from_slice(launch.extra);
        let (program, args) = args.split_first().expect("a program");
        let pid = self.lab.spawn(&name, &ns, program.as_ref(), args)?;
        wait_for(Duration::from_secs(15), || {
            self.lab.alive(&name)?;
            let log = self.lab.log(&name);
            // Running, not just spawned: a lab without reals would otherwise
            // start its timers during the daemon's start (attaching native
            // XDP to a veth alone has taken 2 s).
            if !log.contains("xdpvs running on ") {
                bail!("not running yet");
            }
            let resolved = log.matches(" is at ").count();
            if resolved < self.reals.len() {
                bail!("{resolved} of {} reals resolved", self.reals.len());
            }
            Ok(())
        })
        .with_context(|| format!("xdpvs did not become ready:\n{}", self.lab.log(&name)))?;
        Ok(pid)
    }

    /// `xdpvs adm ARGS` against LB node `lb`.
    pub fn adm(&self, lb: usize, args: &[&str]) -> Result<String> {
        let socket = self.socket(lb);
        let mut all = vec!["adm", "--socket", socket.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        sh(&self.artifacts.xdpvs.to_string_lossy(), &all)
    }

    /// The Prometheus text LB node `lb` serves.
    pub fn metrics(&self, lb: usize) -> Result<String> {
        in_netns(&self.lbs[lb], || -> Result<String> {
            let mut s = TcpStream::connect_timeout(&METRICS, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lb\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })?
    }

    /// `xdpvs ctl ARGS` against LB node `lb`.
    pub fn ctl(&self, lb: usize, args: &[&str]) -> Result<String> {
        let socket = self.socket(lb);
        let mut all = vec!["ctl", "--socket", socket.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        sh(&self.artifacts.xdpvs.to_string_lossy(), &all)
    }

    /// `count` fresh connections from the client to `addr`, counted by the
    /// real that answered (see `by_real`).
    pub fn answers(&self, addr: SocketAddr, count: usize) -> Result<BTreeMap<String, usize>> {
        Ok(by_real(self.requests(addr, count)?))
    }

    /// `count` HTTP requests from the client to `addr`, each on a new
    /// connection that the client closes first (so no 5-tuple is reused).
    /// Returns the bodies ("<real> <client address seen>").
    pub fn requests(&self, addr: SocketAddr, count: usize) -> Result<Vec<Result<String>>> {
        in_netns(&self.client, move || {
            (0..count).map(|_| http_get(addr)).collect()
        })
    }
}

/// One HTTP/1.1 GET on a fresh connection (closed by the client after the
/// answer); the body is "<real> <client address seen>".
pub fn http_get(addr: SocketAddr) -> Result<String> {
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    exchange(&mut s)
}

/// One GET on an open connection, which stays open (keep-alive); reads
/// exactly the body nginx announces.
pub fn exchange(s: &mut TcpStream) -> Result<String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before the response ended");
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .ok_or_else(|| anyhow!("no Content-Length"))?
                .trim()
                .parse()?;
            if buf.len() >= end + 4 + len {
                if !text.starts_with("HTTP/1.1 200") {
                    bail!(
                        "unexpected response: {}",
                        text.lines().next().unwrap_or_default()
                    );
                }
                return Ok(text[end + 4..end + 4 + len].trim().to_string());
            }
        }
    }
}

/// Answers per real name ("rs1", ...) from request results, failures
/// counted under "failed".
pub fn by_real(bodies: Vec<Result<String>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for body in bodies {
        let key = match body {
            Ok(b) => b.split(' ').next().unwrap_or_default().to_string(),
            Err(_) => "failed".to_string(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}
