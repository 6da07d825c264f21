//! What `cargo xtask install` ships (deploy/): the systemd unit passes
//! `systemd-analyze verify` and asks only for options `xdpvs run` has; the
//! example configuration and environment file are what the unit reads.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tests::topology::Artifacts;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Where the unit expects the binary; `cargo xtask install` rewrites it for
/// another prefix.
const INSTALLED_BIN: &str = "/usr/local/sbin/xdpvs";

fn bin() -> PathBuf {
    Artifacts::from_env()
        .expect("run the tests with `cargo xtask test`")
        .xdpvs
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = read("systemd/xdpvs.service");
    assert!(
        unit.contains(&format!("ExecStart={INSTALLED_BIN} run ")),
        "{unit}"
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (`cargo xtask test` installs the systemd package)"
        );
        return;
    }
    // verify checks that ExecStart's program exists: point it at the build.
    let dir = std::env::temp_dir().join(format!("xdpvs-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("xdpvs.service");
    let text = unit.replace(INSTALLED_BIN, &bin().to_string_lossy());
    std::fs::write(&path, &text).expect("unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    // A broken setting is only a warning for verify: any output fails.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A unit that is wrong must fail here too.
    let broken = dir.join("broken.service");
    std::fs::write(&broken, text.replace("Type=notify", "Type=notifyy")).expect("unit");
    let broken_out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .output()
        .expect("systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    assert!(
        String::from_utf8_lossy(&broken_out.stderr).contains("notifyy"),
        "systemd-analyze no longer reports bad settings"
    );
}

#[test]
fn the_unit_uses_only_options_xdpvs_run_has() {
    let unit = read("systemd/xdpvs.service");
    let env = read("default/xdpvs");
    let help = Command::new(bin())
        .args(["run", "--help"])
        .output()
        .expect("xdpvs run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let options = env
        .lines()
        .find_map(|l| l.strip_prefix("XDPVS_OPTIONS="))
        .expect("XDPVS_OPTIONS in /etc/default/xdpvs")
        .trim_matches('"')
        .to_string();
    for word in exec.split_whitespace().chain(options.split_whitespace()) {
        if word.starts_with("--") {
            assert!(help.contains(word), "xdpvs run has no {word}:\n{help}");
        }
    }
    // Every variable the unit reads is set in the environment file.
    for var in ["XDPVS_CONFIG", "XDPVS_INTERFACE", "XDPVS_OPTIONS"] {
        assert!(exec.contains(var), "{exec}");
        assert!(
            env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "{var} missing in deploy/default/xdpvs"
        );
    }
    // Only the capabilities the daemon uses.
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("a capability bounding set");
    assert_eq!(caps, "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW");
}

#[test]
fn the_example_configuration_passes_check() {
    let out = Command::new(bin())
        .arg("check")
        .arg(deploy("keepalived.conf"))
        .output()
        .expect("xdpvs check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
}

/// The daemon with exactly the unit's capability bounding set (and
/// NoNewPrivileges): XDP, VRRP taking the VIP, neighbour resolution and
/// forwarding all work.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn the_daemon_runs_with_only_the_units_capabilities_root() {
    use std::{net::SocketAddr, time::Duration};

    use tests::{
        netns::{host_bpffs, wait_for},
        topology::{DrLab, VIP, real_addr},
    };

    let unit = read("systemd/xdpvs.service");
    let caps: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("a capability bounding set")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect();
    // The unit has systemd mount the bpffs (RequiresMountsFor): without
    // CAP_SYS_ADMIN the daemon cannot mount one in `ip netns exec`'s /sys.
    host_bpffs();
    let mut lab = DrLab::build("cp", 1, 2).expect("building the lab");
    let config = format!(
        "vrrp_instance VI_1 {{\n  state MASTER\n  interface eth0\n  virtual_router_id 90\n  \
         priority 150\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/32\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  lb_kind DR\n  protocol TCP\n  \
         real_server {} 80 {{\n  }}\n  real_server {} 80 {{\n  }}\n}}\n",
        real_addr(0),
        real_addr(1)
    );
    let conf = lab.lab.dir.join("caps.conf");
    std::fs::write(&conf, config).expect("config");
    let socket = lab.lab.dir.join("xdpvs-lb1.sock");
    let bounding = format!("-all,{}", caps.join(","));
    let (ns, xdpvs) = (lab.lbs[0].clone(), bin());
    lab.lab
        .spawn(
            "xdpvs-lb1",
            &ns,
            Path::new("/usr/bin/setpriv"),
            &[
                "--bounding-set",
                &bounding,
                "--inh-caps",
                "-all",
                "--no-new-privs",
                "--",
                &xdpvs.to_string_lossy(),
                "run",
                "--config",
                &conf.to_string_lossy(),
                "--interface",
                "eth0",
                "--xdp-mode",
                "generic",
                "--socket",
                &socket.to_string_lossy(),
            ],
        )
        .expect("starting xdpvs under setpriv");
    let resolved = wait_for(Duration::from_secs(15), || {
        lab.lab.alive("xdpvs-lb1")?;
        let log = lab.lab.log("xdpvs-lb1");
        if log.matches(" is at ").count() < 2 || !log.contains("-> MASTER") {
            anyhow::bail!("not ready yet");
        }
        Ok(())
    });
    resolved.unwrap_or_else(|e| panic!("{e:#}\n{}", lab.lab.log("xdpvs-lb1")));
    let counts = wait_for(Duration::from_secs(5), || {
        let counts = lab.answers(SocketAddr::from((VIP, 80)), 20)?;
        if counts.contains_key("failed") {
            anyhow::bail!("{counts:?}");
        }
        Ok(counts)
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.lab.log("xdpvs-lb1")));
    assert!(
        counts.contains_key("rs1") && counts.contains_key("rs2"),
        "{counts:?}"
    );
    let status = lab.ctl(0, &["status"]).expect("ctl status");
    assert!(status.contains("MASTER"), "{status}");
}
