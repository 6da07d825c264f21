//! Prerequisites, installed on first use and checked cheaply afterwards: the
//! nightly `rust-src` component, bpf-linker built against rustc's own LLVM
//! (a plain `cargo install bpf-linker` wants a system LLVM of another major
//! version), and the Debian packages the tests use.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, run, step};

const BPF_LINKER_VERSION: &str = "0.13.0";
/// LLVM major version of the nightly toolchain; bpf-linker must match it.
const LLVM_FEATURE: &str = "llvm-22";

/// What the end-to-end tests and the demo run in network namespaces.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "ethtool",
    "nginx",
    "keepalived",
    "procps",
    "bird2",
    // systemd-analyze, to verify the unit in deploy/.
    "systemd",
    // setpriv, to run the daemon with only the unit's capabilities.
    "util-linux",
    // The SMTP server the smtp_alert mails are sent to (tests/src/smtp.rs).
    "python3-aiosmtpd",
    // The end-to-end benchmark's load generator and its kernel DR baseline.
    "wrk",
    "nftables",
];

pub fn rust_src() -> Result<()> {
    let out = cmd(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .output()
    .context("rustup is not on PATH: install Rust with rustup")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        return Ok(());
    }
    step("installing the nightly rust-src component (about 30 s)");
    run(cmd(
        "rustup",
        &["component", "add", "rust-src", "--toolchain", "nightly"],
    ))
    .context("could not install rust-src for the nightly toolchain")
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

pub fn bpf_linker() -> Result<()> {
    let linker = cargo_bin_dir().join("bpf-linker");
    if let Ok(out) = Command::new(&linker).arg("--version").output()
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION)
    {
        return Ok(());
    }
    step(&format!(
        "installing bpf-linker {BPF_LINKER_VERSION} against the nightly toolchain's LLVM (about a minute)"
    ));
    let sysroot = String::from_utf8(
        cmd("rustc", &["+nightly", "--print", "sysroot"])
            .output()
            .context("the nightly toolchain is missing: `rustup toolchain install nightly`")?
            .stdout,
    )?;
    let sysroot_lib = Path::new(sysroot.trim()).join("lib");
    // The prefix becomes bpf-linker's rpath, so it must outlive this build.
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let prefix = PathBuf::from(home).join(".cache/xdpvs/rust-llvm");
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    let mut found = None;
    for entry in fs::read_dir(&sysroot_lib)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("libLLVM.so") {
            relink(&path, &lib.join(name))?;
            found = Some(path);
        }
    }
    let Some(llvm) = found else {
        bail!(
            "no libLLVM.so in {}: the nightly toolchain is incomplete",
            sysroot_lib.display()
        );
    };
    relink(&llvm, &lib.join("libLLVM.so"))?;
    let mut install = cmd(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            LLVM_FEATURE,
            "--force",
        ],
    );
    install.env("LLVM_PREFIX", &prefix);
    run(install).context("could not build bpf-linker")
}

fn relink(target: &Path, link: &Path) -> Result<()> {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

/// Installs the Debian packages that are missing, with one `apt-get update`.
pub fn packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !cmd("dpkg-query", &["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    run(cmd("apt-get", &["update", "-qq"])).context("apt-get update failed (are you root?)")?;
    let mut install = cmd(
        "apt-get",
        &["install", "-y", "-qq", "--no-install-recommends"],
    );
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install).context("apt-get install failed")
}
