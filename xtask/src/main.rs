//! `cargo xtask`: builds, tests, runs, demonstrates and benchmarks xdpvs,
//! installing what each step needs first.

mod bench_readme;
mod fuzz;
mod install;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Build, test and run xdpvs")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the XDP object (lb-ebpf) and the benchmark baseline.
    BuildEbpf,
    /// Build the XDP object and a release `target/release/xdpvs` that embeds it.
    Build,
    /// Build, then run `xdpvs ARGS` (needs root or CAP_BPF + CAP_NET_ADMIN).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Every test: unit, kernel (BPF_PROG_TEST_RUN) and end-to-end (root).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The whole system in network namespaces, with a built-in config (root).
    Demo,
    /// Build, then install the binary, the systemd unit, its environment
    /// file and an example configuration (never over existing settings).
    Install {
        /// Where the binary goes: PREFIX/sbin/xdpvs.
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
        /// Stage everything under this directory instead of / (for packaging).
        #[arg(long)]
        destdir: Option<PathBuf>,
    },
    /// Data-plane ns/packet beside a MAC-swap baseline, end-to-end HTTP
    /// (wrk) through xdpvs beside direct access and an nftables DR rule, and
    /// the control loop's latencies with 1M flows in the table (root).
    Bench,
    /// libFuzzer on the config loader, the VRRP codec and the HTTP_GET
    /// response handling (installs cargo-fuzz; nightly).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// One target (config, vrrp_packet, http_response); default all.
        target: Option<String>,
    },
}

fn main() {
    if let Err(e) = dispatch(Cli::parse().command) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(task: Task) -> Result<()> {
    match task {
        Task::BuildEbpf => {
            let objects = build_ebpf()?;
            println!("{}", objects.xdpvs.display());
            Ok(())
        }
        Task::Build => build().map(drop),
        Task::Run { args } => {
            let artifacts = build()?;
            let status = Command::new(&artifacts.xdpvs).args(&args).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Task::Test { args } => test(&args),
        Task::Demo => tests_binaries("demo", &["demo"]),
        Task::Install { prefix, destdir } => {
            let artifacts = build()?;
            install::install(&root(), &artifacts.xdpvs, &prefix, destdir.as_deref())
        }
        Task::Bench => bench(),
        Task::Fuzz { seconds, target } => fuzz::fuzz(seconds, target.as_deref()),
    }
}

/// The XDP objects: the balancer, the benchmark baseline, and the pass-through
/// program test topologies put on veth peers.
struct Objects {
    xdpvs: PathBuf,
    baseline: PathBuf,
    tc_baseline: PathBuf,
    pass: PathBuf,
}

struct Artifacts {
    objects: Objects,
    xdpvs: PathBuf,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn step(what: &str) {
    eprintln!("xtask: {what}");
}

pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

pub fn run(mut c: Command) -> Result<()> {
    let status = c
        .status()
        .with_context(|| format!("could not start {:?}", c.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", c.get_program());
    }
    Ok(())
}

fn build_ebpf() -> Result<Objects> {
    setup::rust_src()?;
    setup::bpf_linker()?;
    step("building the XDP program (lb-ebpf, bpfel-unknown-none)");
    let root = root();
    let target_dir = root.join("target/ebpf");
    let mut c = cmd(
        "cargo",
        &[
            "+nightly",
            "build",
            "--quiet",
            "--release",
            "--package",
            "lb-ebpf",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ],
    );
    c.arg("--target-dir").arg(&target_dir).current_dir(&root);
    // The outer `cargo xtask` sets these for the stable toolchain; the nested
    // nightly build must pick its own.
    for var in ["RUSTC", "RUSTUP_TOOLCHAIN", "CARGO"] {
        c.env_remove(var);
    }
    run(c).context("building lb-ebpf")?;
    let out = target_dir.join("bpfel-unknown-none/release");
    Ok(Objects {
        xdpvs: out.join("lb-ebpf"),
        baseline: out.join("mac-swap"),
        tc_baseline: out.join("tc-mac-swap"),
        pass: out.join("xdp-pass"),
    })
}

fn build() -> Result<Artifacts> {
    let objects = build_ebpf()?;
    step("building target/release/xdpvs with the XDP program embedded");
    let mut c = cmd(
        "cargo",
        &["build", "--quiet", "--release", "--package", "lb-userspace"],
    );
    c.env("XDPVS_EBPF_OBJECT", &objects.xdpvs)
        .current_dir(root());
    run(c)?;
    Ok(Artifacts {
        objects,
        xdpvs: root().join("target/release/xdpvs"),
    })
}

fn with_artifacts(c: &mut Command, a: &Artifacts) {
    c.env("XDPVS_EBPF_OBJECT", &a.objects.xdpvs)
        .env("XDPVS_BASELINE_OBJECT", &a.objects.baseline)
        .env("XDPVS_TC_BASELINE_OBJECT", &a.objects.tc_baseline)
        .env("XDPVS_PASS_OBJECT", &a.objects.pass)
        .env("XDPVS_BIN", &a.xdpvs)
        .env("XDPVS_BENCH_REPORTS", bench_reports())
        .current_dir(root());
}

/// Where the benchmarks write their reports (see `bench_readme`).
fn bench_reports() -> PathBuf {
    root().join("target/bench")
}

fn test(extra: &[String]) -> Result<()> {
    setup::packages(setup::TEST_PACKAGES)?;
    let artifacts = build()?;
    let mut c = cmd("cargo", &["test", "--workspace", "--exclude", "lb-ebpf"]);
    c.args(extra);
    // Root-only tests are `#[ignore]`d so that a plain `cargo test` reports
    // them as ignored, never as passed; as root this runs them too.
    if is_root() {
        step("running every test (unit, kernel, end to end)");
        if !extra.iter().any(|a| a == "--") {
            c.arg("--");
        }
        c.arg("--include-ignored");
    } else {
        step("not root: the kernel and end-to-end tests are reported as ignored");
    }
    with_artifacts(&mut c, &artifacts);
    run(c).context("tests failed")?;
    // --- fuzz: every target briefly, so a parser regression fails CI (a
    // filtered run, `cargo xtask test NAME`, is a focused one and skips it). ---
    if extra.is_empty() {
        fuzz::fuzz(fuzz::TEST_SECONDS, None)?;
    }
    // --- end fuzz ---
    Ok(())
}

/// Builds once, then runs the `tests` crate's binaries `names` in order, all
/// of them even after one fails (a benchmark that misses a goal fails).
fn tests_binaries(task: &str, names: &[&str]) -> Result<()> {
    setup::packages(setup::TEST_PACKAGES)?;
    let artifacts = build()?;
    if !is_root() {
        bail!("`cargo xtask {task}` needs root (network namespaces, BPF)");
    }
    let mut failed = Vec::new();
    for name in names {
        step(&format!("building and running {name}"));
        let mut c = cmd(
            "cargo",
            &[
                "run",
                "--quiet",
                "--release",
                "--package",
                "tests",
                "--bin",
                name,
            ],
        );
        with_artifacts(&mut c, &artifacts);
        if let Err(e) = run(c) {
            eprintln!("xtask: {name}: {e:#}");
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        bail!("{} did not finish or missed a goal", failed.join(", "));
    }
    Ok(())
}

/// Runs every benchmark, then puts their reports into the README's
/// performance section (also when one missed a goal).
fn bench() -> Result<()> {
    const NAMES: [&str; 3] = ["bench", "e2e_bench", "control_bench"];
    let reports = bench_reports();
    let _ = std::fs::remove_dir_all(&reports);
    let ran = tests_binaries("bench", &NAMES);
    let updated = bench_readme::update(&root().join("README.md"), &reports, &NAMES)?;
    step(&format!(
        "README.md's performance section now shows this run's {}",
        if updated.is_empty() {
            "(no report: nothing)".to_string()
        } else {
            updated.join(", ")
        }
    ));
    ran
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
