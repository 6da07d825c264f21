//! `vrrp_sync_group`: members fail over together (keepalived vrrp_sync.c).
//!
//! Level-triggered and pure: after any member's `Fsm::handle`, the daemon
//! takes a `MemberView` of every member, calls `decide`, feeds each
//! returned input to its member, and repeats until `decide` returns
//! nothing (at most three rounds: fault, then backup/master).
//!
//! Rules, as keepalived applies them:
//! - a member in its own fault puts every other member in Fault;
//! - a Backup member that hears a live master keeps the group Backup:
//!   members that are Master are forced to Backup (no priority 0);
//! - a member goes Master only once every Backup member wants to
//!   (members are built with `FsmConfig::sync_group = true`, so their
//!   master-down timer only sets `wants_master`);
//! - a master that hears a lower-priority master has the other masters
//!   refresh ARP too (`Action::LowerPrioToGroup`, relayed by the daemon).
//!
//! `GroupState` follows the group's own state for its notify scripts.

use super::fsm::{Fsm, Input, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub state: State,
    pub own_fault: bool,
    pub group_fault: bool,
    pub wants_master: bool,
}

impl From<&Fsm> for MemberView {
    fn from(fsm: &Fsm) -> Self {
        MemberView {
            state: fsm.state(),
            own_fault: fsm.own_fault(),
            group_fault: fsm.group_fault(),
            wants_master: fsm.wants_master(),
        }
    }
}

/// Inputs to feed, as (member index, input).
pub fn decide(members: &[MemberView]) -> Vec<(usize, Input)> {
    let faulted = members.iter().filter(|m| m.own_fault).count();
    let faults: Vec<(usize, Input)> = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let others_faulted = faulted > usize::from(m.own_fault);
            (m.group_fault != others_faulted).then_some((i, Input::GroupFault(others_faulted)))
        })
        .collect();
    if !faults.is_empty() || faulted > 0 {
        return faults;
    }
    if members
        .iter()
        .any(|m| matches!(m.state, State::Initialize | State::Fault))
    {
        return Vec::new();
    }
    let backups = || {
        members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state == State::Backup)
    };
    if backups().any(|(_, m)| !m.wants_master) {
        members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state == State::Master)
            .map(|(i, _)| (i, Input::GroupForceBackup))
            .collect()
    } else {
        backups().map(|(i, _)| (i, Input::GroupGoMaster)).collect()
    }
}

/// A sync group's state from its members' last entered (`None`: not
/// started; `Initialize` entered again is a stop), keepalived's rule
/// (vrrp_sync_fault, _backup, _master): Fault as soon as any member is,
/// Master once all are, stopped once all are, Backup when one is and
/// none stopped; otherwise unchanged (`None`).
pub fn group_state(members: &[Option<State>]) -> Option<State> {
    let all = |s| members.iter().all(|m| *m == Some(s));
    let any = |s| members.contains(&Some(s));
    if members.is_empty() {
        None
    } else if any(State::Fault) {
        Some(State::Fault)
    } else if all(State::Master) {
        Some(State::Master)
    } else if all(State::Initialize) {
        Some(State::Initialize)
    } else if any(State::Backup) && !any(State::Initialize) {
        Some(State::Backup)
    } else {
        None
    }
}

/// A sync group's own state as its members enter theirs, for its
/// `notify*` scripts: each change of `group_state` once.
#[derive(Clone, Debug)]
pub struct GroupState {
    /// Each member's last state entered; `None` until it starts.
    members: Vec<Option<State>>,
    last: Option<State>,
}

impl GroupState {
    pub fn new(members: usize) -> Self {
        GroupState {
            members: vec![None; members],
            last: None,
        }
    }

    /// Member `index` entered `state`: the group's new state when the
    /// group as a whole just changed, so once per group transition.
    pub fn entered(&mut self, index: usize, state: State) -> Option<State> {
        *self.members.get_mut(index)? = Some(state);
        let now = group_state(&self.members)?;
        if self.last == Some(now) {
            return None;
        }
        self.last = Some(now);
        Some(now)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::{IpAddr, Ipv4Addr},
        time::{Duration, Instant},
    };

    use super::*;
    use crate::vrrp::{
        fsm::{Action, FsmConfig, TimerKind},
        packet::Version,
    };

    fn view(state: State, wants_master: bool) -> MemberView {
        MemberView {
            state,
            own_fault: false,
            group_fault: false,
            wants_master,
        }
    }

    #[test]
    fn own_fault_spreads_and_clears() {
        let faulted = MemberView {
            own_fault: true,
            ..view(State::Fault, false)
        };
        let members = [
            faulted,
            view(State::Master, false),
            view(State::Backup, false),
        ];
        assert_eq!(
            decide(&members),
            vec![(1, Input::GroupFault(true)), (2, Input::GroupFault(true))]
        );
        let held = MemberView {
            group_fault: true,
            ..view(State::Fault, false)
        };
        assert_eq!(
            decide(&[faulted, held, held]),
            vec![],
            "stable while the fault lasts"
        );
        let recovered = view(State::Backup, false);
        assert_eq!(
            decide(&[recovered, held, held]),
            vec![(1, Input::GroupFault(false)), (2, Input::GroupFault(false))]
        );
    }

    #[test]
    fn one_member_losing_mastership_takes_the_group() {
        let members = [
            view(State::Backup, false),
            view(State::Master, false),
            view(State::Master, false),
        ];
        assert_eq!(
            decide(&members),
            vec![(1, Input::GroupForceBackup), (2, Input::GroupForceBackup)]
        );
    }

    #[test]
    fn master_only_when_every_backup_wants_it() {
        let half = [view(State::Backup, true), view(State::Backup, false)];
        assert_eq!(decide(&half), vec![]);
        let all = [
            view(State::Backup, true),
            view(State::Backup, true),
            view(State::Master, false),
        ];
        assert_eq!(
            decide(&all),
            vec![(0, Input::GroupGoMaster), (1, Input::GroupGoMaster)]
        );
        assert_eq!(decide(&[view(State::Master, false); 2]), vec![]);
        assert_eq!(
            decide(&[view(State::Initialize, false), view(State::Backup, true)]),
            vec![]
        );
    }

    /// Two real instances: when one goes to Fault the other, Master, is
    /// forced down too (keepalived vrrp_sync_fault), and both come back.
    #[test]
    fn group_of_two_fails_over_together() {
        let base = Instant::now();
        let mk = |vrid| {
            let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
            Fsm::new(FsmConfig {
                sync_group: true,
                ..FsmConfig::new(Version::V3, vrid, 100, addr)
            })
        };
        let mut group = [mk(1), mk(2)];
        let settle = |group: &mut [Fsm; 2], now: Instant| {
            for _ in 0..4 {
                let views: Vec<MemberView> = group.iter().map(MemberView::from).collect();
                let inputs = decide(&views);
                if inputs.is_empty() {
                    return;
                }
                for (i, input) in inputs {
                    let _ = group[i].handle(now, input);
                }
            }
            panic!("sync group did not settle");
        };
        for m in &mut group {
            let _ = m.handle(base, Input::Startup);
        }
        let down = base + group[0].master_down_interval();
        let _ = group[0].handle(down, Input::TimerFired(TimerKind::MasterDown));
        settle(&mut group, down);
        assert_eq!(
            group.iter().map(Fsm::state).collect::<Vec<_>>(),
            [State::Backup; 2],
            "member 2 not ready"
        );
        let _ = group[1].handle(down, Input::TimerFired(TimerKind::MasterDown));
        settle(&mut group, down);
        assert_eq!(
            group.iter().map(Fsm::state).collect::<Vec<_>>(),
            [State::Master; 2]
        );

        let later = down + Duration::from_secs(1);
        let _ = group[1].handle(later, Input::FaultChanged(true));
        settle(&mut group, later);
        assert_eq!(
            group.iter().map(Fsm::state).collect::<Vec<_>>(),
            [State::Fault; 2]
        );
        let _ = group[1].handle(later, Input::FaultChanged(false));
        settle(&mut group, later);
        assert_eq!(
            group.iter().map(Fsm::state).collect::<Vec<_>>(),
            [State::Backup; 2]
        );
    }

    #[test]
    fn the_group_state_follows_keepalived() {
        use State::{Backup, Fault, Initialize as Stop, Master};
        assert_eq!(group_state(&[]), None);
        assert_eq!(group_state(&[None, None]), None);
        assert_eq!(group_state(&[Some(Backup), None]), Some(Backup));
        assert_eq!(group_state(&[Some(Master), Some(Backup)]), Some(Backup));
        assert_eq!(group_state(&[Some(Master), None]), None);
        assert_eq!(group_state(&[Some(Master), Some(Master)]), Some(Master));
        assert_eq!(group_state(&[Some(Master), Some(Fault)]), Some(Fault));
        assert_eq!(group_state(&[Some(Stop), Some(Fault)]), Some(Fault));
        assert_eq!(group_state(&[Some(Stop), Some(Master)]), None);
        assert_eq!(group_state(&[Some(Stop), Some(Backup)]), None);
        assert_eq!(group_state(&[Some(Stop), Some(Stop)]), Some(Stop));
    }

    /// FAULT and BACKUP are announced with the first member to enter
    /// them, MASTER and stop with the last.
    #[test]
    fn the_group_changes_state_once_per_transition() {
        let mut g = GroupState::new(2);
        let steps = [
            (0, State::Backup, Some(State::Backup)),
            (1, State::Backup, None),
            (0, State::Master, None),
            (1, State::Master, Some(State::Master)),
            (1, State::Master, None),
            (0, State::Fault, Some(State::Fault)),
            (1, State::Fault, None),
            (0, State::Backup, None),
            (1, State::Backup, Some(State::Backup)),
            (0, State::Initialize, None),
            (1, State::Initialize, Some(State::Initialize)),
        ];
        for (n, (member, state, want)) in steps.into_iter().enumerate() {
            assert_eq!(g.entered(member, state), want, "step {n}");
        }
        assert_eq!(g.entered(2, State::Master), None, "not a member");
    }

    /// Every member of a sync group of three, driven through its real
    /// state machine and `decide`: each group transition is announced
    /// once, whichever member led it.
    #[test]
    fn group_notifications_of_real_members() {
        let base = Instant::now();
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut members: Vec<Fsm> = (1..=3)
            .map(|vrid| {
                Fsm::new(FsmConfig {
                    sync_group: true,
                    ..FsmConfig::new(Version::V3, vrid, 100, addr)
                })
            })
            .collect();
        let mut group = GroupState::new(3);
        // One input to one member, then the group's reactions until stable:
        // the group states announced meanwhile.
        let mut feed = |members: &mut Vec<Fsm>, first: (usize, Input), now: Instant| {
            let mut announced = Vec::new();
            let mut pending = vec![first];
            for _ in 0..5 {
                for (i, input) in pending {
                    for a in members[i].handle(now, input) {
                        if let Action::StateChanged { to, .. } = a {
                            announced.extend(group.entered(i, to));
                        }
                    }
                }
                let views: Vec<MemberView> = members.iter().map(MemberView::from).collect();
                pending = decide(&views);
                if pending.is_empty() {
                    return announced;
                }
            }
            panic!("sync group did not settle");
        };
        for i in 0..3 {
            let want: &[State] = if i == 0 { &[State::Backup] } else { &[] };
            assert_eq!(feed(&mut members, (i, Input::Startup), base), want);
        }
        let down = base + members[0].master_down_interval();
        let timer = Input::TimerFired(TimerKind::MasterDown);
        assert_eq!(feed(&mut members, (0, timer), down), []);
        assert_eq!(feed(&mut members, (1, timer), down), []);
        assert_eq!(feed(&mut members, (2, timer), down), [State::Master]);
        let later = down + Duration::from_secs(1);
        let fault = Input::FaultChanged(true);
        assert_eq!(feed(&mut members, (1, fault), later), [State::Fault]);
        let healed = Input::FaultChanged(false);
        assert_eq!(feed(&mut members, (1, healed), later), [State::Backup]);
        let stop = |m| (m, Input::Shutdown);
        assert_eq!(feed(&mut members, stop(0), later), []);
        assert_eq!(feed(&mut members, stop(1), later), []);
        assert_eq!(feed(&mut members, stop(2), later), [State::Initialize]);
    }
}
