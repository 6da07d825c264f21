//! Embeds the XDP object that `cargo xtask build` passes in `XDPVS_EBPF_OBJECT`.
//!
//! Without it the binary still builds for unit tests and clippy, and then needs
//! `--bpf-object FILE` at run time; a release build without it is refused, so an
//! xdpvs with no data plane can never be shipped by accident (a fuzzing
//! build, which only runs the parsers and checks, is the exception).

use std::{env, path::Path};

fn main() {
    println!("cargo::rerun-if-env-changed=XDPVS_EBPF_OBJECT");
    println!("cargo::rustc-check-cfg=cfg(xdpvs_embedded)");
    match env::var("XDPVS_EBPF_OBJECT") {
        Ok(path) if Path::new(&path).is_file() => {
            println!("cargo::rerun-if-changed={path}");
            println!("cargo::rustc-env=XDPVS_EBPF_OBJECT={path}");
            println!("cargo::rustc-cfg=xdpvs_embedded");
        }
        Ok(path) => panic!("XDPVS_EBPF_OBJECT={path} is not a file: run `cargo xtask build-ebpf`"),
        // cargo-fuzz builds optimised (`--cfg fuzzing`); the fuzz targets run
        // the parsers and checks, never the data plane.
        Err(_)
            if env::var("PROFILE").as_deref() == Ok("release")
                && env::var_os("CARGO_CFG_FUZZING").is_none() =>
        {
            panic!("a release xdpvs must embed its XDP program: build it with `cargo xtask build`")
        }
        Err(_) => {}
    }
}
