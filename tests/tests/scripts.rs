//! Scripts run keepalived's way, end to end (root): with
//! `enable_script_security`, a root-run script that others can write is
//! refused with keepalived's message and never runs; a safe one runs as
//! `script_user nobody`, with no capabilities and only PATH in its
//! environment, and so do `notify_master` and a sync group's `notify`.
//! `xdpvs check` refuses the same file.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tests::{netns::wait_for, topology::DrLab};

/// A directory under /tmp (root's, sticky) that only root can write.
struct ScriptDir(PathBuf);

impl ScriptDir {
    fn new() -> Self {
        let dir = Path::new("/tmp").join(format!("xdpvs-scripts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("script dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ScriptDir(dir)
    }

    fn script(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn unsafe_script_refused_safe_one_runs_as_nobody_root() {
    let dir = ScriptDir::new();
    // Written by the script as nobody: a file root made writable for it.
    let out = dir.0.join("who.out");
    std::fs::write(&out, "").expect("out file");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let ran = dir.0.join("open.ran");
    let who = dir.script(
        "who.sh",
        &format!(
            "{{ id -u; id -g; grep ^CapEff /proc/self/status; env | sort; }} > {}",
            out.display()
        ),
        0o755,
    );
    let open = dir.script("open.sh", &format!("touch {}", ran.display()), 0o777);
    let notified = dir.0.join("notify.out");
    std::fs::write(&notified, "").expect("out file");
    std::fs::set_permissions(&notified, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let notify = dir.script(
        "notify.sh",
        &format!("id -u > {}", notified.display()),
        0o755,
    );
    // The sync group's generic notify, with its keepalived arguments.
    let grouped = dir.0.join("group.out");
    std::fs::write(&grouped, "").expect("out file");
    std::fs::set_permissions(&grouped, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let group_notify = dir.script(
        "group.sh",
        &format!("echo $(id -u) \"$@\" >> {}", grouped.display()),
        0o755,
    );
    let conf = format!(
        "global_defs {{\n    enable_script_security\n    script_user nobody\n}}\n\
         vrrp_script who {{\n    script \"{}\"\n    interval 1\n}}\n\
         vrrp_script open {{\n    script \"{}\"\n    interval 1\n    user root\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority 100\n    advert_int 1\n    virtual_ipaddress {{\n        10.100.0.100/32 dev eth0\n    }}\n    \
         track_script {{\n        who\n        open\n    }}\n    notify_master \"{}\"\n}}\n\
         vrrp_sync_group G {{\n    group {{\n        VI_1\n    }}\n    notify \"{}\"\n}}\n",
        who.display(),
        open.display(),
        notify.display(),
        group_notify.display()
    );

    // `xdpvs check` refuses what the daemon would disable.
    let mut lab = DrLab::build("sc", 1, 0).expect("building the lab");
    let conf_path = lab.lab.dir.join("scripts.conf");
    std::fs::write(&conf_path, &conf).expect("config");
    let check = Command::new(&lab.artifacts.xdpvs)
        .arg("check")
        .arg(&conf_path)
        .output()
        .expect("xdpvs check");
    let stderr = String::from_utf8_lossy(&check.stderr);
    let refusal = format!(
        "Unsafe permissions found for script '{}' - disabling.",
        open.display()
    );
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("error: {refusal}")), "{stderr}");
    assert!(
        stderr.contains("error: Disabling track script open due to insecure"),
        "{stderr}"
    );

    lab.start_xdpvs(0, &conf, "generic").expect("xdpvs");
    let nobody = Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .expect("id");
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    let text = wait_for(Duration::from_secs(5), || {
        // `sort` writes the environment last, in one go.
        let t = std::fs::read_to_string(&out)?;
        if !t.contains("PATH=") {
            anyhow::bail!("who.sh has not run (to its end) yet");
        }
        Ok(t)
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], nobody, "runs as nobody: {text}");
    assert_eq!(
        lines[2], "CapEff:\t0000000000000000",
        "no capabilities: {text}"
    );
    let env: Vec<&str> = lines[3..]
        .iter()
        .copied()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    assert_eq!(env, ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "{text}");

    // Alone on the link, the instance becomes master: notify_master runs
    // through the same runner, as nobody too.
    let by = wait_for(Duration::from_secs(8), || {
        let t = std::fs::read_to_string(&notified)?;
        if t.trim().is_empty() {
            anyhow::bail!("notify_master has not run yet");
        }
        Ok(t.trim().to_string())
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));
    assert_eq!(by, nobody, "notify_master runs as nobody");
    // So does the sync group's, once the group as a whole is master.
    let master = format!("{nobody} GROUP G MASTER 0");
    wait_for(Duration::from_secs(5), || {
        let t = std::fs::read_to_string(&grouped)?;
        anyhow::ensure!(t.lines().any(|l| l == master), "group notify: {t:?}");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", lab.lab.log("xdpvs-lb1")));

    // Two more intervals: the refused script still never ran.
    std::thread::sleep(Duration::from_secs(2));
    let log = lab.lab.log("xdpvs-lb1");
    assert!(log.contains(&refusal), "{log}");
    assert!(
        log.contains("Disabling track script open due to insecure"),
        "{log}"
    );
    assert!(!ran.exists(), "the world-writable script ran:\n{log}");
}
