//! `cargo xtask install`: the built binary, the systemd unit, its environment
//! file and an example configuration, each step printed. Settings an operator
//! may have edited (environment file, configuration) are never overwritten.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, run, step};

/// Where the unit in deploy/ expects the binary.
const UNIT_BIN: &str = "/usr/local/sbin/xdpvs";

/// `path` under `destdir` (or as is).
fn staged(destdir: Option<&Path>, path: &Path) -> PathBuf {
    match destdir {
        Some(d) => d.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

fn put(from_text: &[u8], to: &Path, mode: u32, what: &str) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Through a temporary file and a rename, so a running binary is replaced,
    // never written over (`xdpvs ctl upgrade` starts the new one).
    let tmp = to.with_extension("xtask-new");
    fs::write(&tmp, from_text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))?;
    step(&format!("installed {what}: {}", to.display()));
    Ok(())
}

/// Installs unless the file exists: the operator's copy wins.
fn put_once(from: &Path, to: &Path, mode: u32, what: &str) -> Result<()> {
    if to.exists() {
        step(&format!("kept the existing {what}: {}", to.display()));
        return Ok(());
    }
    let text = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    put(&text, to, mode, what)
}

pub fn install(root: &Path, xdpvs: &Path, prefix: &Path, destdir: Option<&Path>) -> Result<()> {
    if !prefix.is_absolute() {
        bail!("--prefix must be an absolute path: {}", prefix.display());
    }
    let deploy = root.join("deploy");
    let bin = prefix.join("sbin/xdpvs");
    let binary = fs::read(xdpvs).with_context(|| format!("reading {}", xdpvs.display()))?;
    put(&binary, &staged(destdir, &bin), 0o755, "the xdpvs binary")?;

    let unit = fs::read_to_string(deploy.join("systemd/xdpvs.service"))?;
    if !unit.contains(UNIT_BIN) {
        bail!("deploy/systemd/xdpvs.service no longer runs {UNIT_BIN}");
    }
    let unit = unit.replace(UNIT_BIN, &bin.to_string_lossy());
    let unit_path = staged(destdir, Path::new("/etc/systemd/system/xdpvs.service"));
    put(unit.as_bytes(), &unit_path, 0o644, "the systemd unit")?;

    put_once(
        &deploy.join("default/xdpvs"),
        &staged(destdir, Path::new("/etc/default/xdpvs")),
        0o644,
        "the environment file",
    )?;
    put_once(
        &deploy.join("keepalived.conf"),
        &staged(destdir, Path::new("/etc/xdpvs/keepalived.conf")),
        0o640,
        "the example configuration",
    )?;

    if destdir.is_none() && Path::new("/run/systemd/system").exists() {
        step("systemctl daemon-reload");
        run(cmd("systemctl", &["daemon-reload"]))?;
    }
    step(
        "next: set XDPVS_INTERFACE in /etc/default/xdpvs, edit /etc/xdpvs/keepalived.conf \
         (check it with `xdpvs check FILE`), then `systemctl enable --now xdpvs`",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_everything_under_destdir_and_keeps_edited_settings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dest = std::env::temp_dir().join(format!("xdpvs-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir_all(&dest).unwrap();
        let fake = dest.join("built-xdpvs");
        fs::write(&fake, b"binary v1").unwrap();
        let prefix = Path::new("/opt/xdpvs");
        install(&root, &fake, prefix, Some(&dest)).unwrap();

        let bin = dest.join("opt/xdpvs/sbin/xdpvs");
        assert_eq!(fs::read(&bin).unwrap(), b"binary v1");
        assert_eq!(
            fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let unit = fs::read_to_string(dest.join("etc/systemd/system/xdpvs.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/opt/xdpvs/sbin/xdpvs run "),
            "{unit}"
        );
        assert!(!unit.contains(UNIT_BIN));
        let conf = dest.join("etc/xdpvs/keepalived.conf");
        assert_eq!(
            fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
            0o640
        );

        // A second install replaces the binary and keeps the operator's files.
        fs::write(&fake, b"binary v2").unwrap();
        fs::write(dest.join("etc/default/xdpvs"), "XDPVS_INTERFACE=bond0\n").unwrap();
        fs::write(&conf, "! mine\n").unwrap();
        install(&root, &fake, prefix, Some(&dest)).unwrap();
        assert_eq!(fs::read(&bin).unwrap(), b"binary v2");
        assert_eq!(
            fs::read_to_string(dest.join("etc/default/xdpvs")).unwrap(),
            "XDPVS_INTERFACE=bond0\n"
        );
        assert_eq!(fs::read_to_string(&conf).unwrap(), "! mine\n");
        assert!(install(&root, &fake, Path::new("opt"), Some(&dest)).is_err());
        fs::remove_dir_all(&dest).unwrap();
    }
}
