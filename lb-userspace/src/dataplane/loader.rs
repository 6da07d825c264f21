//! Loads the XDP object, sizes its maps and attaches the program.

use std::{fmt, str::FromStr};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    programs::{Xdp, XdpMode},
};
use lb_common::{MAX_FLOWS, MAX_FRAGMENTS, MAX_PERSIST, MAX_REALS, MAX_SERVICES, RING_SIZE, maps};
use log::{info, warn};

/// The XDP object built by `cargo xtask build` and embedded at compile time.
#[cfg(xdpvs_embedded)]
pub fn embedded_object() -> Option<&'static [u8]> {
    Some(aya::include_bytes_aligned!(env!("XDPVS_EBPF_OBJECT")))
}

#[cfg(not(xdpvs_embedded))]
pub fn embedded_object() -> Option<&'static [u8]> {
    None
}

/// How large the data plane's tables are.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub services: u32,
    pub reals: u32,
    pub flows: u32,
    pub persist: u32,
    pub fragments: u32,
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            services: MAX_SERVICES,
            reals: MAX_REALS,
            flows: MAX_FLOWS,
            persist: MAX_PERSIST,
            fragments: MAX_FRAGMENTS,
        }
    }
}

/// `--xdp-mode`: native falls back to generic in `Auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    #[default]
    Auto,
    Native,
    Generic,
}

impl FromStr for AttachMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "driver" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            _ => Err(format!(
                "unknown XDP mode {s:?}: expected auto, native or generic"
            )),
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

pub const PROGRAM: &str = "xdpvs";

/// Loads the object with maps of the given sizes and the program verified.
pub fn load(object: &[u8], sizes: Sizes) -> Result<Ebpf> {
    let rings = sizes
        .services
        .checked_mul(2 * RING_SIZE)
        .ok_or_else(|| anyhow!("{} services do not fit one ring array", sizes.services))?;
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(maps::SERVICES, sizes.services)
        .map_max_entries(maps::SERVICE_STATS, sizes.services)
        .map_max_entries(maps::RINGS, rings)
        .map_max_entries(maps::REALS, sizes.reals)
        .map_max_entries(maps::REAL_STATS, sizes.reals)
        .map_max_entries(maps::FLOWS, sizes.flows)
        .map_max_entries(maps::PERSIST, sizes.persist)
        .map_max_entries(maps::FRAGMENTS, sizes.fragments)
        .load(object)
        .context("loading the XDP object")?;
    program(&mut ebpf)?
        .load()
        .context("the kernel refused the XDP program")?;
    Ok(ebpf)
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    ebpf.program_mut(PROGRAM)
        .ok_or_else(|| anyhow!("the XDP object has no program {PROGRAM:?}"))?
        .try_into()
        .context("program is not XDP")
}

/// Attaches the program; returns the mode it got. The attachment is a BPF
/// link owned by `ebpf`: it goes away when `ebpf` is dropped or the process
/// dies, so a crashed daemon never leaves a stale program on the interface.
pub fn attach(ebpf: &mut Ebpf, interface: &str, mode: AttachMode) -> Result<AttachMode> {
    let prog = program(ebpf)?;
    let attach = |prog: &mut Xdp, m: XdpMode| prog.attach(interface, m).map(drop);
    match mode {
        AttachMode::Native => attach(prog, XdpMode::Driver)
            .with_context(|| format!("attaching native XDP to {interface}"))?,
        AttachMode::Generic => attach(prog, XdpMode::Skb)
            .with_context(|| format!("attaching generic XDP to {interface}"))?,
        AttachMode::Auto => {
            if let Err(e) = attach(prog, XdpMode::Driver) {
                warn!("native XDP on {interface} failed ({e}); falling back to generic XDP");
                attach(prog, XdpMode::Skb)
                    .with_context(|| format!("attaching generic XDP to {interface}"))?;
                info!("XDP attached to {interface} (generic)");
                return Ok(AttachMode::Generic);
            }
        }
    }
    let got = if mode == AttachMode::Generic {
        AttachMode::Generic
    } else {
        AttachMode::Native
    };
    info!("XDP attached to {interface} ({got})");
    Ok(got)
}
