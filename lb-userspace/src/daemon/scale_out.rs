//! The daemon's side of active-active operation: it feeds the route
//! announcer its decisions and flow sync its numbering, from the control
//! loop's state, and withdraws first when the daemon stops.

use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use lb_common::Reason;
use log::{error, info, warn};

use super::state::State;
use crate::{
    announce::{self, Announcer, Phase, VrrpView},
    api::protocol::Response,
    config::{AnnounceRequire, Config},
    dataplane::maps::Maps,
    flowsync::{FlowSync, Index},
    ha::Ha,
};

/// VRRP states change inside the instances' tasks: look this often.
pub const TICK: Duration = Duration::from_millis(100);
/// After the withdrawal, a node keeps forwarding until no packet came for
/// `QUIET` (the routers have moved every flow), at most `WITHDRAW_DRAIN`.
const QUIET: Duration = Duration::from_millis(500);
const WITHDRAW_DRAIN: Duration = Duration::from_secs(10);

pub struct ScaleOut {
    announcer: Option<(Announcer, AnnounceRequire)>,
    sync: Option<FlowSync>,
    /// The VIPs of each vrrp_instance (read at start, like the instances).
    vrrp_vips: Vec<(String, Vec<IpAddr>)>,
    /// A new data plane learns the peers' flows before it announces; an
    /// adopted one (a restart, an upgrade) has its flows already.
    joining: bool,
}

impl ScaleOut {
    pub fn start(config: &Config, maps: &Maps, adopted: bool) -> Result<Self> {
        let announcer = config
            .global
            .announce
            .as_ref()
            .map(|a| Announcer::start(a).map(|an| (an, a.require)))
            .transpose()?;
        let sync = match &config.global.sync {
            Some(s) => {
                let (flows, persist) = maps.bindings()?;
                Some(FlowSync::start(s, flows, &persist, maps.config_handle()?)?)
            }
            None => None,
        };
        let vrrp_vips = config
            .vrrp_instances
            .iter()
            .map(|i| (i.name.clone(), i.vips.iter().map(|v| v.addr).collect()))
            .collect();
        Ok(Self {
            announcer,
            sync,
            vrrp_vips,
            joining: !adopted,
        })
    }

    pub fn is_on(&self) -> bool {
        self.announcer.is_some() || self.sync.is_some()
    }

    /// `ready`: the daemon's readiness (every real's MAC known, or its wait
    /// over), before which routers must not send this node traffic.
    fn phase(&self, ready: bool) -> Phase {
        match &self.sync {
            _ if !ready => Phase::Resolving,
            Some(s) if self.joining && !s.ready() => Phase::Joining,
            _ => Phase::Running,
        }
    }

    fn decide(&self, state: &State, ha: &Ha, phase: Phase) -> Option<Vec<announce::Verdict>> {
        let (_, require) = self.announcer.as_ref()?;
        Some(announce::decide(
            &announce::service_views(&state.table),
            &self.vrrp_views(ha),
            *require,
            phase,
        ))
    }

    pub fn tick(&mut self, state: &State, ha: &Ha, ready: bool) {
        if let Some(s) = &self.sync {
            s.set_index(Index::of(
                &state.reconciler,
                state.table.services.keys().copied(),
            ));
        }
        if let (Some((a, _)), Some(verdicts)) =
            (&self.announcer, self.decide(state, ha, self.phase(ready)))
        {
            a.set(verdicts);
        }
    }

    /// Adds announcements and sync counters to a `ctl status` or metrics answer.
    pub fn annotate(&self, response: &mut Response) {
        if let Some((a, _)) = &self.announcer {
            a.annotate(response);
        }
        if let (Some(s), Response::Status { sync, .. }) = (&self.sync, response) {
            *sync = Some(s.status());
        }
    }

    /// Withdraws every VIP, then waits for the routers to move the flows.
    pub async fn withdraw(&self, state: &State, ha: &Ha) {
        let (Some((a, _)), Some(stopping)) =
            (&self.announcer, self.decide(state, ha, Phase::Stopping))
        else {
            return;
        };
        match a.withdraw_all(stopping).await {
            Ok(()) => wait_until_quiet(state).await,
            Err(e) => error!("withdrawing the VIP routes: {e:#}"),
        }
    }

    /// The VRRP instances that hold VIPs, with whether each is master now.
    fn vrrp_views(&self, ha: &Ha) -> Vec<VrrpView> {
        let states = ha.status();
        self.vrrp_vips
            .iter()
            .map(|(name, vips)| VrrpView {
                instance: name.clone(),
                vips: vips.clone(),
                master: states
                    .iter()
                    .any(|s| s.name == *name && s.state == "MASTER"),
            })
            .collect()
    }
}

async fn wait_until_quiet(state: &State) {
    let forwarded = || {
        state
            .maps
            .reason_counters()
            .map(|r| {
                r.iter()
                    .filter(|(reason, _)| {
                        matches!(reason, Reason::Forwarded | Reason::ForwardedIcmpError)
                    })
                    .map(|(_, c)| c.packets)
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    let mut last = forwarded();
    while started.elapsed() < WITHDRAW_DRAIN {
        tokio::time::sleep(QUIET).await;
        let now = forwarded();
        if now == last {
            info!(
                "withdrawn: no packet for {QUIET:?}, {:.1?} after the withdrawal",
                started.elapsed()
            );
            return;
        }
        last = now;
    }
    warn!("withdrawn, still forwarding after {WITHDRAW_DRAIN:?}: stopping anyway");
}
