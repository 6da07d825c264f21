//! Loads the XDP object with its maps pinned, sizes them and attaches one
//! of its two programs: `xdpvs` by XDP (native or generic), or `xdpvs_tc`
//! by tcx ingress.

use std::{fmt, path::Path, str::FromStr};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
        xdp::XdpLink,
    },
};
use lb_common::{
    MAX_FLOWS, MAX_FRAGMENTS, MAX_PERSIST, MAX_REALS, MAX_SERVICES, RING_SIZE, flow_buckets,
    flow_cache_entries_here,
    flow_table::{FLOW_BUCKETS, flow_lines},
    maps, programs, service_slots,
    service_table::SERVICE_SLOT_MASK,
};
use log::{info, warn};

use super::device;

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
    /// Flows `FLOWS` is sized for (`lb_common::flow_buckets`).
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

/// `--xdp-mode`: `Auto` is tc on devices where native XDP breaks forwarding
/// (veth; generic XDP when the kernel has no tcx), else native with generic
/// as the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    #[default]
    Auto,
    Native,
    Generic,
    /// The tc program on tcx ingress (Linux 6.6+): the skb in place, sent
    /// on with `bpf_redirect`.
    Tc,
}

impl FromStr for AttachMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "driver" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            "tc" | "tcx" => Ok(Self::Tc),
            _ => Err(format!(
                "unknown XDP mode {s:?}: expected auto, native, generic or tc"
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
            Self::Tc => "tc",
        })
    }
}

/// How the tc program sends a frame back out (`TC_REDIRECT_PEER`): decided
/// when the object is loaded, from the interface as it is then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcSend {
    /// `bpf_redirect` to the interface's egress: any device.
    Egress,
    /// `bpf_redirect_peer` into the ingress of the interface's veth peer,
    /// in another network namespace: the frame reaches what the egress
    /// would have reached, without the veth transmit and the peer's backlog
    /// (measured: about 5% more requests per second end to end, 2 cores).
    Peer,
}

impl TcSend {
    /// `Peer` where the kernel takes it (`device::redirects_to_peer`).
    pub fn for_interface(interface: &str) -> Self {
        match device::redirects_to_peer(interface) {
            Ok(true) => TcSend::Peer,
            Ok(false) => TcSend::Egress,
            Err(e) => {
                warn!(
                    "{interface}: cannot tell whether it is a veth with a peer elsewhere ({e}); the tc program sends by its egress"
                );
                TcSend::Egress
            }
        }
    }
}

/// Loads the object with maps of the given sizes, each pinned in `pins` by
/// name: a map already pinned there is reused as it is (its contents and
/// its size). The program is not loaded into the kernel yet.
pub fn load(object: &[u8], sizes: Sizes, pins: &Path, tc_send: TcSend) -> Result<Ebpf> {
    let rings = sizes
        .services
        .checked_mul(2 * RING_SIZE)
        .ok_or_else(|| anyhow!("{} services do not fit one ring array", sizes.services))?;
    let buckets = flow_buckets(sizes.flows);
    // The program's sizes must match the maps it gets; adopted maps keep
    // theirs, which `sizes` then comes from.
    let service_slots = service_slots(sizes.services);
    let service_mask = service_slots - 1;
    let peer = u32::from(tc_send == TcSend::Peer);
    let cache =
        flow_cache_entries_here().context("sizing the flow cache for this machine's CPUs")?;
    let mut loader = EbpfLoader::new();
    loader
        .override_global(FLOW_BUCKETS, &buckets, true)
        .override_global(programs::TC_REDIRECT_PEER, &peer, true)
        .override_global(SERVICE_SLOT_MASK, &service_mask, true)
        .map_max_entries(maps::SERVICES, service_slots)
        .map_max_entries(maps::SERVICE_STATS, sizes.services)
        .map_max_entries(maps::RINGS, rings)
        .map_max_entries(maps::REALS, sizes.reals)
        .map_max_entries(maps::REAL_STATS, sizes.reals)
        .map_max_entries(maps::FLOWS, flow_lines(buckets))
        .map_max_entries(maps::PERSIST, sizes.persist)
        .map_max_entries(maps::FRAGMENTS, sizes.fragments)
        .map_max_entries(maps::FLOW_CACHE, cache);
    for name in maps::OBJECT {
        loader.map_pin_path(name, pins.join(name));
    }
    let ebpf = loader.load(object).context("loading the XDP object")?;
    // A map left out of lb_common::maps::OBJECT would start empty on every
    // restart: refuse it here rather than lose its state silently.
    for (name, _) in ebpf.maps() {
        if !name.starts_with('.') && !maps::OBJECT.contains(&name) {
            bail!(
                "the XDP object's map {name} is not in lb_common::maps::OBJECT, so it is not pinned"
            );
        }
    }
    Ok(ebpf)
}

fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    let prog: &mut Xdp = ebpf
        .program_mut(programs::XDP)
        .ok_or_else(|| anyhow!("the XDP object has no program {:?}", programs::XDP))?
        .try_into()
        .context("program is not XDP")?;
    prog.load().context("the kernel refused the XDP program")?;
    Ok(prog)
}

fn tc_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    let prog: &mut SchedClassifier = ebpf
        .program_mut(programs::TC)
        .ok_or_else(|| anyhow!("the XDP object has no program {:?}", programs::TC))?
        .try_into()
        .context("program is not a tc classifier")?;
    prog.load().context("the kernel refused the tc program")?;
    Ok(prog)
}

/// Loads the program `mode` needs (the verifier runs here) and attaches it
/// with a BPF link; returns the mode it got and the link, which the caller
/// pins so that it outlives the process.
pub fn attach(ebpf: &mut Ebpf, interface: &str, mode: AttachMode) -> Result<(AttachMode, FdLink)> {
    let caveat = device::native_caveat(interface);
    let got = match (mode, &caveat) {
        (AttachMode::Auto, Some(why)) => {
            info!("XDP mode auto picks tc: {why}");
            AttachMode::Tc
        }
        (AttachMode::Native, Some(why)) => {
            warn!("--xdp-mode native: {why}; --xdp-mode tc (or auto) avoids both");
            AttachMode::Native
        }
        (m, _) => m,
    };
    if got == AttachMode::Tc {
        return match attach_tc(ebpf, interface) {
            Err(e) if mode == AttachMode::Auto => {
                warn!("tc on {interface} failed ({e:#}); falling back to generic XDP");
                attach(ebpf, interface, AttachMode::Generic)
            }
            r => r.map(|link| (AttachMode::Tc, link)),
        };
    }
    let prog = xdp_program(ebpf)?;
    let id = match got {
        AttachMode::Generic => prog
            .attach(interface, XdpMode::Skb)
            .with_context(|| format!("attaching generic XDP to {interface}"))?,
        AttachMode::Native => prog
            .attach(interface, XdpMode::Driver)
            .with_context(|| format!("attaching native XDP to {interface}"))?,
        _ => match prog.attach(interface, XdpMode::Driver) {
            Ok(id) => id,
            Err(e) => {
                warn!("native XDP on {interface} failed ({e}); falling back to generic XDP");
                return attach(ebpf, interface, AttachMode::Generic);
            }
        },
    };
    let got = if got == AttachMode::Auto {
        AttachMode::Native
    } else {
        got
    };
    let link = FdLink::try_from(prog.take_link(id)?)
        .context("this kernel attached XDP without a BPF link, which cannot be pinned")?;
    info!("XDP attached to {interface} ({got})");
    warn_vlan_offload(interface);
    Ok((got, link))
}

/// tcx only, never a netlink filter: only a BPF link can be pinned. A
/// program the kernel loaded but would not attach is unloaded again, so
/// that auto mode's fallback leaves only the XDP program in the kernel.
fn attach_tc(ebpf: &mut Ebpf, interface: &str) -> Result<FdLink> {
    let prog = tc_program(ebpf)?;
    let attached = prog.attach_with_options(
        interface,
        TcAttachType::Ingress,
        TcAttachOptions::TcxOrder(LinkOrder::default()),
    );
    let id = match attached {
        Ok(id) => id,
        Err(e) => {
            let _ = prog.unload();
            return Err(anyhow::Error::new(e).context(format!(
                "attaching tc (tcx ingress, Linux 6.6+) to {interface}"
            )));
        }
    };
    let link = FdLink::try_from(prog.take_link(id)?).context("the tcx link")?;
    info!("tc program attached to {interface} (tcx ingress)");
    Ok(link)
}

/// Loads this object's program for `mode` (the mode the pinned data plane
/// runs in) and swaps it in on the pinned link: BPF_LINK_UPDATE, so the
/// interface goes from the old program to the new one between two packets,
/// both on the same maps.
pub fn replace(ebpf: &mut Ebpf, mode: &str, pinned: &Path) -> Result<()> {
    let link = FdLink::from(PinnedLink::from_pin(pinned).context("opening the pinned link")?);
    if mode.parse() == Ok(AttachMode::Tc) {
        let link = SchedClassifierLink::try_from(link).context("the pinned tcx link")?;
        tc_program(ebpf)?
            .attach_to_link(link)
            .context("replacing the tc program on the pinned link")?;
    } else {
        let link = XdpLink::try_from(link).context("the pinned XDP link")?;
        xdp_program(ebpf)?
            .attach_to_link(link)
            .context("replacing the XDP program on the pinned link")?;
    }
    Ok(())
}

/// With `rx-vlan-hw-parse` on, XDP never sees a VLAN tag and sends tagged
/// traffic back out untagged.
fn warn_vlan_offload(interface: &str) {
    if let Ok(true) = device::strips_vlan_tags(interface) {
        warn!(
            "{interface} strips VLAN tags before XDP (rx-vlan-hw-parse on): VIP traffic that \
             arrives tagged would reach the reals untagged; if it does arrive tagged, run \
             `ethtool -K {interface} rxvlan off`"
        );
    }
}
