//! VRRP in the end-to-end tests: keepalived.conf text that both keepalived
//! and xdpvs read, a real keepalived as peer, and VIP / ARP observation.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use crate::{
    netns::{Lab, sh},
    topology::{VIP, real_addr},
};

/// RFC bounds, for printing beside measured times (advert_int 1 s).
pub fn master_down_interval(version: u8, priority: u8) -> Duration {
    Duration::from_secs(3) + skew_time(version, priority)
}

/// v2 (256-p)/256 s; v3 (256-p)*Master_Adver_Interval/256, the same at 1 s.
pub fn skew_time(_version: u8, priority: u8) -> Duration {
    Duration::from_micros((256 - u64::from(priority)) * 1_000_000 / 256)
}

/// One `vrrp_instance` on eth0 holding the VIP, with keepalived's keywords.
#[derive(Clone, Debug)]
pub struct Vrrp {
    pub version: u8,
    pub priority: u8,
    pub preempt: bool,
    /// v2 `auth_type PASS`.
    pub auth: bool,
    /// A `vrrp_script` that fails (weight -10) while this file is missing.
    pub track_file: Option<PathBuf>,
    /// `virtual_server` blocks for the two reals (xdpvs nodes only).
    pub reals: usize,
}

impl Vrrp {
    pub fn new(version: u8, priority: u8) -> Self {
        Vrrp {
            version,
            priority,
            preempt: true,
            auth: version == 2,
            track_file: None,
            reals: 0,
        }
    }

    pub fn conf(&self) -> String {
        let mut c =
            String::from("global_defs {\n    script_user root\n    enable_script_security\n}\n");
        if let Some(f) = &self.track_file {
            c += &format!(
                "vrrp_script chk_file {{\n    script \"/usr/bin/test -f {}\"\n    interval 1\n    \
                 timeout 1\n    fall 1\n    rise 1\n    weight -10\n}}\n",
                f.display()
            );
        }
        c += &format!(
            "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
             priority {}\n    advert_int 1\n    version {}\n",
            self.priority, self.version
        );
        if !self.preempt {
            c += "    nopreempt\n";
        }
        if self.auth {
            c += "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n";
        }
        c += &format!("    virtual_ipaddress {{\n        {VIP}/32 dev eth0\n    }}\n");
        if self.track_file.is_some() {
            c += "    track_script {\n        chk_file\n    }\n";
        }
        c += "}\n";
        if self.reals > 0 {
            c += &format!(
                "virtual_server {VIP} 80 {{\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n"
            );
            for i in 0..self.reals {
                c += &format!(
                    "    real_server {} 80 {{\n        weight 1\n    }}\n",
                    real_addr(i)
                );
            }
            c += "}\n";
        }
        c
    }
}

/// Starts keepalived (VRRP only, foreground, console log) in `ns` as `name`.
pub fn start(lab: &mut Lab, name: &str, ns: &str, conf: &str) -> Result<u32> {
    let path = |ext: &str| {
        lab.dir
            .join(format!("{name}.{ext}"))
            .to_string_lossy()
            .into_owned()
    };
    let (conf_path, pid, vpid) = (path("conf"), path("pid"), path("vrrp.pid"));
    std::fs::write(&conf_path, conf)?;
    lab.spawn(
        name,
        ns,
        "/usr/sbin/keepalived".as_ref(),
        &[
            "-n", "-l", "-D", "-P", "-R", "-f", &conf_path, "-p", &pid, "-r", &vpid,
        ],
    )
}

/// Crashes keepalived's VRRP process (SIGKILL to the PID in its pid file).
/// Killing the parent instead would not do: its VRRP child is told of the
/// parent's death and stops gracefully, with a priority-0 advert.
pub fn crash_vrrp(lab: &Lab, name: &str) -> Result<()> {
    let path = lab.dir.join(format!("{name}.vrrp.pid"));
    let pid: i32 = std::fs::read_to_string(&path)?.trim().parse()?;
    // SAFETY: kill on the PID keepalived (our child) recorded for its VRRP process.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        bail!("kill {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `ns` holds the VIP on eth0.
pub fn has_vip(ns: &str) -> bool {
    sh("ip", &["-n", ns, "-o", "-4", "addr", "show", "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!(" {VIP}/")))
}

/// Waits until `ns` holds the VIP (`want`) or not; returns how long it took.
pub fn wait_vip(ns: &str, want: bool, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if has_vip(ns) == want {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "{ns}: VIP {} after {timeout:?}",
        if want {
            "never appeared"
        } else {
            "still there"
        }
    )
}

/// The MAC of `ns`'s eth0.
pub fn mac_of(lab: &Lab, ns: &str) -> Result<String> {
    let out = lab.ip(ns, &["-o", "link", "show", "dev", "eth0"])?;
    match out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
    {
        Some(mac) => Ok(mac.to_string()),
        None => bail!("no MAC in {out}"),
    }
}

/// The client's neighbour entry for the VIP: its MAC, if any.
pub fn neigh_mac(lab: &Lab, ns: &str) -> Option<String> {
    let out = lab.ip(ns, &["neigh", "show", &VIP.to_string()]).ok()?;
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_string)
}
