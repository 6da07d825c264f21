//! The active-active test network: a client behind a router that spreads
//! VIP flows over every xdpvs node by ECMP, the routes learnt by BGP from a
//! BIRD on each node (the configurations shipped in `deploy/bird/`).
//!
//! ```text
//!   client 10.200.0.10 ── router 10.200.0.1 | 10.100.0.1 ─┐
//!   lb1..lbN 10.100.0.2.. (xdpvs + BIRD) ─────────────────┼─ bridge
//!   rs1..rsM 10.100.0.11.. (VIP on lo, default via router) ┘
//! ```

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{
    netns::{in_netns, sh, wait_for},
    topology::{DrLab, VIP, exchange, lb_addr, real_addr},
};

/// What an operator runs: `auto`, tc on these veths (the router forwards the
/// client's partially checksummed segments, which native XDP on veth would
/// send on unfinished; tc keeps the skb's checksum state).
pub const MODE: &str = "auto";

/// Every node's configuration (one file for all): the VIP announced for
/// BGP, the reals with `weights` and TCP checks, and with `sync` flow sync
/// between the three nodes.
pub fn config(weights: &[u32], sync: bool) -> String {
    let real = |(i, w): (usize, &u32)| {
        format!(
            "    real_server {} 80 {{\n        weight {w}\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n        }}\n    }}\n",
            real_addr(i)
        )
    };
    let body: String = weights.iter().enumerate().map(real).collect();
    let sync = if sync {
        "    lvs_sync_daemon eth0\n    xdpvs_sync_peers {\n        10.100.0.2\n        10.100.0.3\n        10.100.0.4\n    }\n"
    } else {
        ""
    };
    format!(
        "global_defs {{\n    xdpvs_announce {{\n    }}\n{sync}}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n{body}}}\n"
    )
}

/// How many of the connections still answer, from the same real.
pub fn survivors(conns: &mut [(TcpStream, String)]) -> usize {
    let mut kept = 0;
    for (s, real) in conns.iter_mut() {
        if exchange(s).is_ok_and(|body| body.split(' ').next() == Some(real.as_str())) {
            kept += 1;
        }
    }
    kept
}

pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 1);
/// The client, one routed hop away from the balancers.
pub const REMOTE_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 10);
const ROUTER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);

/// Node 1's address in the shipped node configuration.
const NODE_IN_EXAMPLE: &str = "10.100.0.2";

pub struct EcmpLab {
    pub dr: DrLab,
    pub router: String,
}

fn deploy_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/bird")
        .join(name)
}

impl EcmpLab {
    pub fn build(tag: &str, lb_count: usize, real_count: usize) -> Result<Self> {
        let mut dr = DrLab::bare(tag)?;
        let router = dr.host("router", ROUTER)?;
        for s in [
            "net.ipv4.ip_forward=1",
            // Hash on the 5-tuple, so flows of one client spread too.
            "net.ipv4.fib_multipath_hash_policy=1",
        ] {
            dr.lab.sysctl(&router, s)?;
        }
        let client = dr.lab.netns("client")?;
        dr.lab.ip(
            &router,
            &[
                "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", &client,
            ],
        )?;
        dr.lab.ip(
            &router,
            &[
                "addr",
                "add",
                &format!("{ROUTER_CLIENT_SIDE}/24"),
                "dev",
                "eth1",
            ],
        )?;
        dr.lab.ip(&router, &["link", "set", "eth1", "up"])?;
        dr.lab.ip(
            &client,
            &["addr", "add", &format!("{REMOTE_CLIENT}/24"), "dev", "eth0"],
        )?;
        dr.lab.ip(&client, &["link", "set", "eth0", "up"])?;
        dr.lab.ip(
            &client,
            &[
                "route",
                "add",
                "default",
                "via",
                &ROUTER_CLIENT_SIDE.to_string(),
            ],
        )?;
        dr.client = client;
        for i in 0..lb_count {
            let ns = dr.host(&format!("lb{}", i + 1), lb_addr(i))?;
            dr.lbs.push(ns);
        }
        for i in 0..real_count {
            dr.add_real(i)?;
            let ns = dr.reals[i].clone();
            dr.lab.ip(
                &ns,
                &["route", "add", "default", "via", &ROUTER.to_string()],
            )?;
        }
        let mut this = Self { dr, router };
        let conf = std::fs::read_to_string(deploy_file("router.conf"))?;
        let router = this.router.clone();
        this.bird("bird-router", &router, &conf)?;
        Ok(this)
    }

    fn bird(&mut self, name: &str, ns: &str, conf: &str) -> Result<()> {
        let path = self.dr.lab.dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf)?;
        let socket = self.dr.lab.dir.join(format!("{name}.ctl"));
        self.dr.lab.spawn(
            name,
            ns,
            "/usr/sbin/bird".as_ref(),
            &[
                "-f",
                "-c",
                &path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
            ],
        )?;
        Ok(())
    }

    /// BIRD on node `lb`: the shipped node configuration, with its address.
    pub fn start_node_bird(&mut self, lb: usize) -> Result<()> {
        let conf = std::fs::read_to_string(deploy_file("xdpvs-node.conf"))?
            .replace(NODE_IN_EXAMPLE, &lb_addr(lb).to_string());
        let ns = self.dr.lbs[lb].clone();
        self.bird(&format!("bird-lb{}", lb + 1), &ns, &conf)
    }

    /// The nodes the router's route for the VIP goes through now.
    pub fn next_hops(&self) -> Result<Vec<Ipv4Addr>> {
        let text = self
            .dr
            .lab
            .ip(&self.router, &["route", "show", &format!("{VIP}/32")])?;
        let mut hops: Vec<Ipv4Addr> = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "via")
            .filter_map(|w| w[1].parse().ok())
            .collect();
        hops.sort();
        Ok(hops)
    }

    /// Waits until the VIP's route goes through exactly `nodes`; how long it took.
    pub fn wait_next_hops(&self, nodes: &[usize], timeout: Duration) -> Result<Duration> {
        let mut want: Vec<Ipv4Addr> = nodes.iter().map(|&i| lb_addr(i)).collect();
        want.sort();
        let started = Instant::now();
        wait_for(timeout, || {
            let hops = self.next_hops()?;
            if hops != want {
                bail!("next hops {hops:?}, waiting for {want:?}");
            }
            Ok(())
        })
        .with_context(|| format!("the router's route for {VIP}; {}", self.bgp_states()))?;
        Ok(started.elapsed())
    }

    /// What the router's BIRD says of each node's session, for a failure's
    /// message.
    fn bgp_states(&self) -> String {
        let socket = self.dr.lab.dir.join("bird-router.ctl");
        match sh(
            "birdc",
            &["-s", &socket.to_string_lossy(), "show", "protocols"],
        ) {
            Ok(protocols) => format!("the router's BIRD:\n{protocols}"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// Starts xdpvs (with `config`) and BIRD on every node; returns once
    /// the router's VIP route goes over all of them, and how long that took.
    pub fn start_all(&mut self, config: &str) -> Result<Duration> {
        for lb in 0..self.dr.lbs.len() {
            self.dr.start_xdpvs(lb, config, MODE)?;
            self.start_node_bird(lb)?;
        }
        let all: Vec<usize> = (0..self.dr.lbs.len()).collect();
        self.wait_next_hops(&all, Duration::from_secs(20))
    }

    /// New connections node `lb` forwarded, from `adm -L -n --stats`.
    pub fn conns(&self, lb: usize) -> Result<u64> {
        let stats = self.dr.adm(lb, &["-L", "-n", "--stats"])?;
        stats
            .lines()
            .find(|l| l.starts_with("TCP"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("no service line in\n{stats}"))
    }

    /// `n` keep-alive connections through the VIP, each with the real it reached.
    pub fn keep_alive(&self, n: usize) -> Result<Vec<(TcpStream, String)>> {
        let vip = SocketAddr::from((VIP, 80));
        in_netns(&self.dr.client, move || {
            (0..n)
                .map(|_| {
                    let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(2))?;
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let real = exchange(&mut s)?;
                    Ok((s, real.split(' ').next().unwrap_or_default().to_string()))
                })
                .collect()
        })?
    }

    /// A node dies: link down first, so that no BGP session is closed
    /// cleanly and only BFD can tell the router, then xdpvs and BIRD killed.
    pub fn crash_node(&mut self, lb: usize) -> Result<()> {
        let n = lb + 1;
        let ns = self.dr.lbs[lb].clone();
        self.dr.lab.ip(&ns, &["link", "set", "eth0", "down"])?;
        self.dr.lab.stop(&format!("xdpvs-lb{n}"), libc::SIGKILL)?;
        self.dr.lab.stop(&format!("bird-lb{n}"), libc::SIGKILL)?;
        Ok(())
    }
}
