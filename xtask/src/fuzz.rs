//! `cargo xtask fuzz`: the libFuzzer targets in `fuzz/` (cargo-fuzz, nightly),
//! each run for a given time from its committed seed corpus.
//!
//! New inputs go to `target/fuzz-corpus/TARGET` (the committed seeds in
//! `fuzz/corpus/TARGET` stay as they are); a crash leaves its input in
//! `fuzz/artifacts/TARGET` and fails the run.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{cmd, root, run, step};

const CARGO_FUZZ_VERSION: &str = "0.13";
pub const TARGETS: &[&str] = &["config", "vrrp_packet", "http_response"];
/// How long `cargo xtask test` fuzzes each target: enough to catch a
/// regression on the seeds' neighbourhood, short enough for CI.
pub const TEST_SECONDS: u64 = 20;

/// cargo-fuzz, installed on first use (a minute or two of building).
fn cargo_fuzz() -> Result<()> {
    if let Ok(out) = cmd("cargo", &["fuzz", "--version"]).output()
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(&format!(" {CARGO_FUZZ_VERSION}."))
    {
        return Ok(());
    }
    step(&format!(
        "installing cargo-fuzz {CARGO_FUZZ_VERSION} (builds from crates.io, a minute or two)"
    ));
    run(cmd(
        "cargo",
        &[
            "install",
            "cargo-fuzz",
            "--version",
            &format!("^{CARGO_FUZZ_VERSION}"),
            "--locked",
        ],
    ))
    .context("could not install cargo-fuzz")
}

fn nightly_cargo(args: &[&str]) -> Command {
    let mut c = cmd("cargo", &["+nightly"]);
    c.args(args).current_dir(root().join("fuzz"));
    // The outer `cargo xtask` sets these for the stable toolchain.
    for var in ["RUSTC", "RUSTUP_TOOLCHAIN", "CARGO"] {
        c.env_remove(var);
    }
    c
}

/// Fuzzes `only` (or every target) for `seconds` each.
pub fn fuzz(seconds: u64, only: Option<&str>) -> Result<()> {
    let targets: Vec<&str> = match only {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t}: the targets are {}", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    cargo_fuzz()?;
    step("building the fuzz targets (nightly, sanitizer coverage)");
    // Debug assertions on: an arithmetic overflow is a crash too.
    run(nightly_cargo(&["fuzz", "build", "--debug-assertions"])).context("building fuzz/")?;
    for target in targets {
        let corpus = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = root().join("fuzz/corpus").join(target);
        step(&format!("fuzzing {target} for {seconds} s"));
        let mut c = nightly_cargo(&["fuzz", "run", "--debug-assertions", target]);
        c.arg(&corpus).arg(&seeds).args([
            "--".to_string(),
            format!("-max_total_time={seconds}"),
            // A hang of 10 s or an input using 2 GB is a bug, as a crash is.
            "-timeout=10".to_string(),
            "-rss_limit_mb=2048".to_string(),
            "-print_final_stats=1".to_string(),
        ]);
        run(c).with_context(|| {
            format!("fuzz target {target} failed: its input is in fuzz/artifacts/{target}/")
        })?;
    }
    Ok(())
}
