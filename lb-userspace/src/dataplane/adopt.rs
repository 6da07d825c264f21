//! The data plane's lifetime: created pinned, or adopted as a previous run
//! left it, and at the end removed or left forwarding.
//!
//! Everything that makes forwarding decisions lives in bpffs (see `pin`):
//! the link keeps the program on the interface and the maps keep their
//! contents when the daemon exits, crashes or is replaced. A starting daemon
//! that finds them for its interface takes them over: maps as they are, the
//! reconciler seeded from their contents, and the program swapped on the
//! link (atomically, maps kept) when this binary carries a different one.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::{Array, Map, MapData},
};
use lb_common::{LAYOUT_VERSION, RealIdent, maps as names};
use log::{info, warn};

use super::{
    loader::{self, AttachMode, Sizes, TcSend},
    maps::Maps,
    pin::{self, Meta},
    reconcile::Reconciler,
};

/// How to open the data plane.
pub struct Options<'a> {
    pub interface: &'a str,
    pub mode: AttachMode,
    pub object: &'a [u8],
    /// The tables' sizes for a new data plane (an adopted one keeps its own).
    pub sizes: Sizes,
    /// Pins here instead of the default directory for the interface.
    pub pin_dir: Option<PathBuf>,
    /// Drop whatever a previous run left (its flows are lost).
    pub fresh: bool,
}

/// A pinned data plane this process drives.
pub struct Dataplane {
    /// Holds the program (when this process loaded one) and its link's fd.
    _ebpf: Ebpf,
    pub dir: PathBuf,
    pub interface: String,
    pub sizes: Sizes,
    pub mode: String,
    /// Taken over from a previous run rather than created.
    pub adopted: bool,
    /// Created by this process, which has not started yet: a failed start
    /// removes it rather than leave XDP forwarding with no daemon.
    provisional: bool,
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if self.provisional {
            match pin::remove(&self.dir) {
                Ok(_) => info!("start failed: program detached from {}", self.interface),
                Err(e) => warn!("removing the data plane of a failed start: {e:#}"),
            }
        }
    }
}

impl Dataplane {
    /// Creates the data plane for `opts.interface`, or adopts the one a
    /// previous run left there; returns it with its maps and a reconciler
    /// whose record matches what the kernel holds.
    pub fn open_or_adopt(opts: &Options) -> Result<(Self, Maps, Reconciler)> {
        let dir = match &opts.pin_dir {
            Some(dir) => {
                pin::check_on_bpffs(dir)?;
                dir.clone()
            }
            None => {
                let dir = pin::default_dir(opts.interface)?;
                if let Some(root) = dir.parent() {
                    pin::remove_orphans(root, &dir);
                }
                dir
            }
        };
        if opts.fresh && dir.exists() {
            let n = pin::remove(&dir)?;
            warn!(
                "--fresh-dataplane: removed the previous data plane on {} ({n} pins in {}); \
                 its flows are lost",
                opts.interface,
                dir.display()
            );
        }
        let found = Meta::read(&dir);
        if let Some(meta) = &found
            && meta.layout != LAYOUT_VERSION
        {
            bail!(layout_mismatch(&dir, &meta.layout.to_string()));
        }
        let stale = found.is_some() && !Self::link_is_ours(&dir, opts.interface);
        let found = found.filter(|_| !stale);
        if found.is_none() && dir.exists() {
            let n = pin::remove(&dir)?;
            let what = if stale {
                "a data plane whose interface was deleted since"
            } else {
                "an unfinished data plane"
            };
            info!(
                "removed {what} ({n} pins in {}): starting a new one",
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        match found {
            Some(meta) => Self::adopt(opts, dir, meta),
            // A data plane that could not be completed holds memory and
            // forwards nothing useful: it goes.
            None => Self::create(opts, dir.clone()).inspect_err(|_| {
                let _ = pin::remove(&dir);
            }),
        }
    }

    /// Whether the pinned link still drives `interface` (not a previous
    /// interface of that name, since deleted).
    fn link_is_ours(dir: &Path, interface: &str) -> bool {
        let Ok(name) = std::ffi::CString::new(interface) else {
            return false;
        };
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        matches!(pin::link_state(dir), Ok(l) if l.ifindex == ifindex && ifindex != 0)
    }

    fn create(opts: &Options, dir: PathBuf) -> Result<(Self, Maps, Reconciler)> {
        let sizes = opts.sizes;
        let tc_send = TcSend::for_interface(opts.interface);
        let mut ebpf = loader::load(opts.object, sizes, &dir, tc_send)?;
        let idents = Array::<MapData, RealIdent>::create(sizes.reals, 0)
            .context("creating the IDENTS map")?;
        idents
            .pin(dir.join(names::IDENTS))
            .context("pinning IDENTS")?;
        let idents = open_idents(&dir)?;
        let (mode, link) = loader::attach(&mut ebpf, opts.interface, opts.mode)?;
        link.pin(dir.join(pin::LINK))
            .context("pinning the program's link")?;
        if mode == AttachMode::Tc {
            log_tc_send(opts.interface, tc_send);
        }
        Meta {
            layout: LAYOUT_VERSION,
            object: pin::object_digest(opts.object),
            mode: mode.to_string(),
        }
        .write(&dir)?;
        info!("data plane pinned in {}", dir.display());
        let maps = Maps::new(&mut ebpf, idents)?;
        let reconciler = Reconciler::new(sizes.services, sizes.reals);
        let dp = Self {
            _ebpf: ebpf,
            dir,
            interface: opts.interface.to_string(),
            sizes,
            mode: mode.to_string(),
            adopted: false,
            provisional: true,
        };
        Ok((dp, maps, reconciler))
    }

    fn adopt(opts: &Options, dir: PathBuf, meta: Meta) -> Result<(Self, Maps, Reconciler)> {
        let sizes = pinned_sizes(&dir, opts.sizes)?;
        if (sizes.services, sizes.reals, sizes.flows, sizes.persist)
            != (
                opts.sizes.services,
                opts.sizes.reals,
                opts.sizes.flows,
                opts.sizes.persist,
            )
        {
            warn!(
                "the adopted data plane keeps its table sizes ({sizes:?}); --fresh-dataplane \
                 applies new ones (its flows are lost)"
            );
        }
        // Only a replaced program reads it (an adopted one keeps its own).
        let tc_send = TcSend::for_interface(opts.interface);
        let mut ebpf = loader::load(opts.object, sizes, &dir, tc_send)?;
        let idents = open_idents(&dir)?;
        let digest = pin::object_digest(opts.object);
        if meta.object != digest {
            loader::replace(&mut ebpf, &meta.mode, &dir.join(pin::LINK))?;
            if meta.mode.parse() == Ok(AttachMode::Tc) {
                log_tc_send(opts.interface, tc_send);
            }
            pin::set_symlink(&dir, "object", &digest)?;
            info!(
                "program on {} ({} mode) replaced by the new object, maps kept",
                opts.interface, meta.mode
            );
        }
        if opts.mode != AttachMode::Auto && opts.mode.to_string() != meta.mode {
            warn!(
                "--xdp-mode {}: the adopted data plane runs in {} mode and keeps it; \
                 --fresh-dataplane changes it (its flows are lost)",
                opts.mode, meta.mode
            );
        }
        let maps = Maps::new(&mut ebpf, idents)?;
        let read = std::time::Instant::now();
        let snapshot = maps.snapshot().context("reading the adopted data plane")?;
        let reconciler = Reconciler::adopt(sizes.services, sizes.reals, &snapshot);
        info!(
            "adopted the data plane on {} ({} mode, pins in {}): {} services, {} reals, flows \
             kept; read back in {:.1?}",
            opts.interface,
            meta.mode,
            dir.display(),
            snapshot.services.len(),
            snapshot.reals.len(),
            read.elapsed()
        );
        let dp = Self {
            _ebpf: ebpf,
            dir,
            interface: opts.interface.to_string(),
            sizes,
            mode: meta.mode,
            adopted: true,
            provisional: false,
        };
        Ok((dp, maps, reconciler))
    }

    /// The daemon is up: from now on the data plane outlives it (a crash
    /// leaves it forwarding). Until then, dropping a new one removes it.
    pub fn started(&mut self) {
        self.provisional = false;
    }

    /// Detaches the program and removes the pins: the end of the data plane.
    pub fn remove(mut self) -> Result<()> {
        self.provisional = false;
        let n = pin::remove(&self.dir)?;
        info!(
            "program detached from {}; {n} pins removed from {}",
            self.interface,
            self.dir.display()
        );
        Ok(())
    }

    /// Leaves the data plane forwarding with its last state after exit.
    pub fn leave(mut self) {
        self.provisional = false;
        info!(
            "data plane left forwarding on {} (pins in {}); `xdpvs down --interface {}` removes it",
            self.interface,
            self.dir.display(),
            self.interface
        );
    }
}

fn log_tc_send(interface: &str, tc_send: TcSend) {
    if tc_send == TcSend::Peer {
        info!(
            "{interface} is a veth whose peer is in another network namespace: the tc program \
             sends frames straight into the peer (bpf_redirect_peer)"
        );
    }
}

fn layout_mismatch(dir: &Path, found: &str) -> String {
    format!(
        "the data plane pinned in {} has layout {found}, this xdpvs needs layout {LAYOUT_VERSION}: \
         start with --fresh-dataplane to replace it (its flows are lost)",
        dir.display()
    )
}

fn open_idents(dir: &Path) -> Result<Array<MapData, RealIdent>> {
    let data = MapData::from_pin(dir.join(names::IDENTS)).context("opening IDENTS")?;
    Ok(Map::from_map_data(data)?.try_into()?)
}

/// The sizes of the pinned maps, checking that their entries have this
/// binary's layout (a guard under `LAYOUT_VERSION`).
fn pinned_sizes(dir: &Path, wanted: Sizes) -> Result<Sizes> {
    use core::mem::size_of;
    use lb_common::{
        Binding, FlowLine, PersistKey, Real, ServiceSlot, flow_table::buckets_of_lines,
        flows_of_buckets, services_of_slots,
    };
    let open = |name: &str, key: usize, value: usize| -> Result<u32> {
        let info = MapData::from_pin(dir.join(name))
            .and_then(|m| m.info())
            .with_context(|| format!("opening the pinned map {name}"))?;
        if info.key_size() as usize != key || info.value_size() as usize != value {
            bail!(layout_mismatch(
                dir,
                &format!("{LAYOUT_VERSION} with other {name} entries")
            ));
        }
        Ok(info.max_entries())
    };
    let services = services_of_slots(open(names::SERVICES, 4, size_of::<ServiceSlot>())?);
    let reals = open(names::REALS, 4, size_of::<Real>())?;
    open(names::RINGS, 4, 4)?;
    open(names::IDENTS, 4, size_of::<RealIdent>())?;
    let flows = flows_of_buckets(buckets_of_lines(open(
        names::FLOWS,
        4,
        size_of::<FlowLine>(),
    )?));
    let persist = open(
        names::PERSIST,
        size_of::<PersistKey>(),
        size_of::<Binding>(),
    )?;
    Ok(Sizes {
        services,
        reals,
        flows,
        persist,
        ..wanted
    })
}
