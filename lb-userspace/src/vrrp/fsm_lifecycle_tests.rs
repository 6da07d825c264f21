//! Scenario tables for the instance's life: fault, planned handover,
//! gratuitous ARP schedule, priority changes, sync-group inputs.

use Action::*;
use Input::*;
use TimerKind::*;

use super::{
    tests::{DOWN_100, DOWN_200, PEER_HI, S, advert, cfg, master_steps, run, step, t},
    *,
};

#[test]
fn fault_in_and_out_of_master() {
    let t = t();
    let at = DOWN_100 + 10;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.extend([
        step(
            at,
            FaultChanged(true),
            vec![
                SendAdvert { priority: 0 },
                CancelTimer(Advert),
                CancelTimer(GarpDelay),
                RemoveVips,
                StateChanged {
                    from: State::Master,
                    to: State::Fault,
                },
                Notify(NotifyEvent::Fault),
            ],
            "keepalived: master entering FAULT sends priority 0 and drops VIPs",
        ),
        step(
            at + 1,
            advert(PEER_HI, 200),
            vec![],
            "Fault ignores adverts",
        ),
        step(at + 2, FaultChanged(true), vec![], "idempotent"),
        step(
            at + 3,
            FaultChanged(false),
            vec![
                t.arm(MasterDown, at + 3 + DOWN_100),
                StateChanged {
                    from: State::Fault,
                    to: State::Backup,
                },
                Notify(NotifyEvent::Backup),
            ],
            "fault cleared -> Backup",
        ),
    ]);
    run(cfg(100), t.0, steps);
}

#[test]
fn fault_from_backup_and_before_startup() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, FaultChanged(true), vec![], "before Startup: remembered"),
            step(
                1,
                Startup,
                vec![
                    StateChanged {
                        from: State::Initialize,
                        to: State::Fault,
                    },
                    Notify(NotifyEvent::Fault),
                ],
                "starts in Fault",
            ),
            step(
                2,
                FaultChanged(false),
                t.startup_backup(2 + DOWN_100)
                    .into_iter()
                    .map(|a| match a {
                        StateChanged { to, .. } => StateChanged {
                            from: State::Fault,
                            to,
                        },
                        a => a,
                    })
                    .collect(),
                "fault cleared",
            ),
            step(
                3,
                FaultChanged(true),
                vec![
                    CancelTimer(MasterDown),
                    StateChanged {
                        from: State::Backup,
                        to: State::Fault,
                    },
                    Notify(NotifyEvent::Fault),
                ],
                "Backup -> Fault stops the master-down timer",
            ),
            step(
                2 + DOWN_100,
                TimerFired(MasterDown),
                vec![],
                "cancelled timer ignored",
            ),
        ],
    );
}

fn stop_actions() -> Vec<Action> {
    vec![
        StateChanged {
            from: State::Master,
            to: State::Initialize,
        },
        Notify(NotifyEvent::Stop),
        Stopped,
    ]
}

#[test]
fn shutdown_handover_until_new_master_speaks() {
    let t = t();
    let at = DOWN_100 + 500_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.extend([
        step(
            at,
            Shutdown,
            vec![
                SendAdvert { priority: 0 },
                CancelTimer(Advert),
                CancelTimer(GarpDelay),
                t.arm(Handover, at + DOWN_100),
            ],
            "xdpvs handover: priority 0 (RFC 5798 §6.4.3 shutdown), VIPs kept",
        ),
        step(
            DOWN_100 + S,
            TimerFired(Advert),
            vec![],
            "no more adverts while handing over",
        ),
        step(
            at + 100,
            advert(PEER_HI, 0),
            vec![],
            "a priority-0 advert is not a new master",
        ),
        step(
            at + 609_375,
            advert(PEER_HI, 50),
            [vec![CancelTimer(Handover), RemoveVips], stop_actions()].concat(),
            "new master's advert: release the VIPs",
        ),
        step(
            at + S,
            advert(PEER_HI, 50),
            vec![],
            "stopped: inputs ignored",
        ),
    ]);
    let fsm = run(cfg(100), t.0, steps);
    assert_eq!(fsm.state(), State::Initialize);
}

#[test]
fn shutdown_handover_times_out() {
    let t = t();
    let at = DOWN_100 + 500_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.extend([
        step(
            at,
            Shutdown,
            vec![
                SendAdvert { priority: 0 },
                CancelTimer(Advert),
                CancelTimer(GarpDelay),
                t.arm(Handover, at + DOWN_100),
            ],
            "handover starts",
        ),
        step(at + 1, TimerFired(Handover), vec![], "early fire ignored"),
        step(
            at + DOWN_100,
            TimerFired(Handover),
            [vec![RemoveVips], stop_actions()].concat(),
            "Master_Down_Interval",
        ),
    ]);
    let mut fsm = run(cfg(100), t.0, steps);
    assert!(!fsm.is_stopping());
    assert_eq!(fsm.handle(t.at(at + DOWN_100 + 1), Shutdown), vec![Stopped]);
}

#[test]
fn second_shutdown_stops_at_once() {
    let t = t();
    let at = DOWN_100 + 1;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        Shutdown,
        vec![
            SendAdvert { priority: 0 },
            CancelTimer(Advert),
            CancelTimer(GarpDelay),
            t.arm(Handover, at + DOWN_100),
        ],
        "handover starts",
    ));
    steps.push(step(
        at + 1,
        Shutdown,
        [vec![CancelTimer(Handover), RemoveVips], stop_actions()].concat(),
        "forced",
    ));
    run(cfg(100), t.0, steps);
}

#[test]
fn shutdown_as_backup_stops_at_once() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                1,
                Shutdown,
                vec![
                    CancelTimer(MasterDown),
                    StateChanged {
                        from: State::Backup,
                        to: State::Initialize,
                    },
                    Notify(NotifyEvent::Stop),
                    Stopped,
                ],
                "RFC 5798 §6.4.2 shutdown",
            ),
        ],
    );
}

#[test]
fn garp_schedule_delay_repeat_refresh() {
    let t = t();
    let garp = GarpConfig {
        master_delay: Duration::from_secs(5),
        master_repeat: 3,
        master_refresh: Duration::from_secs(60),
        master_refresh_repeat: 2,
        lower_prio_delay: Duration::ZERO,
        lower_prio_repeat: 1,
    };
    let cfg = FsmConfig {
        garp,
        accept: true,
        ..cfg(255)
    };
    run(
        cfg,
        t.0,
        vec![
            step(
                0,
                Startup,
                vec![
                    SendAdvert { priority: 255 },
                    AddVips { accept: true },
                    SendGratuitous { count: 3 },
                    t.arm(Advert, S),
                    t.arm(GarpDelay, 5 * S),
                    t.arm(GarpRefresh, 60 * S),
                    StateChanged {
                        from: State::Initialize,
                        to: State::Master,
                    },
                    Notify(NotifyEvent::Master),
                ],
                "garp_master_repeat now, delay and refresh armed",
            ),
            step(
                5 * S,
                TimerFired(GarpDelay),
                vec![SendGratuitous { count: 3 }],
                "garp_master_delay batch",
            ),
            step(
                60 * S,
                TimerFired(GarpRefresh),
                vec![SendGratuitous { count: 2 }, t.arm(GarpRefresh, 120 * S)],
                "garp_master_refresh",
            ),
            step(
                61 * S,
                advert(PEER_HI, 100),
                vec![Discarded(super::Discard::Owner)],
                "the owner drops every advert (RFC 9568), lower ones too",
            ),
        ],
    );
}

#[test]
fn garp_without_second_batch() {
    let t = t();
    let garp = GarpConfig {
        master_delay: Duration::ZERO,
        master_repeat: 1,
        ..GarpConfig::default()
    };
    run(
        FsmConfig { garp, ..cfg(255) },
        t.0,
        vec![step(
            0,
            Startup,
            vec![
                SendAdvert { priority: 255 },
                AddVips { accept: false },
                SendGratuitous { count: 1 },
                t.arm(Advert, S),
                StateChanged {
                    from: State::Initialize,
                    to: State::Master,
                },
                Notify(NotifyEvent::Master),
            ],
            "vrrp_min_garp style",
        )],
    );
}

#[test]
fn priority_change_shifts_master_down_timer() {
    let t = t();
    let fsm = run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                10,
                PriorityChanged(200),
                vec![t.arm(MasterDown, DOWN_200)],
                "keepalived: timer moves by Δskew",
            ),
            step(20, PriorityChanged(200), vec![], "unchanged"),
            step(
                30,
                PriorityChanged(0),
                vec![t.arm(MasterDown, 3 * S + 1_000_000 * 255 / 256)],
                "clamped to 1",
            ),
        ],
    );
    assert_eq!(fsm.priority(), 1);
    let mut owner = Fsm::new(cfg(255));
    assert_eq!(owner.handle(t.0, PriorityChanged(100)), vec![]);
    assert_eq!(
        owner.priority(),
        255,
        "keepalived: the owner's priority never moves"
    );
}

#[test]
fn master_carries_new_priority_in_next_advert() {
    let t = t();
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        DOWN_100 + 1,
        PriorityChanged(90),
        vec![],
        "no immediate advert (keepalived)",
    ));
    steps.push(step(
        DOWN_100 + S,
        TimerFired(Advert),
        vec![SendAdvert { priority: 90 }, t.arm(Advert, DOWN_100 + 2 * S)],
        "RFC 5798 §6.4.3: adverts carry the current priority",
    ));
    run(cfg(100), t.0, steps);
}

#[test]
fn start_as_master_waits_one_interval() {
    // keepalived `state MASTER`: Master_Adver_Interval + Skew(255) = 1 s + 3906 µs.
    let t = t();
    let cfg = FsmConfig {
        start_as_master: true,
        ..cfg(100)
    };
    run(
        cfg,
        t.0,
        vec![
            step(
                0,
                Startup,
                t.startup_backup(S + 3906),
                "keepalived vrrp_init_state",
            ),
            step(
                S + 3906,
                TimerFired(MasterDown),
                t.takeover(S + 3906, 100, State::Backup),
                "no master heard",
            ),
        ],
    );
}

#[test]
fn sync_member_waits_for_group() {
    let t = t();
    let cfg = FsmConfig {
        sync_group: true,
        ..cfg(100)
    };
    let mut fsm = run(
        cfg,
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                DOWN_100,
                TimerFired(MasterDown),
                vec![],
                "keepalived: sync member only wants master",
            ),
        ],
    );
    assert!(fsm.wants_master());
    assert_eq!(
        fsm.handle(t.at(DOWN_100 + 1), GroupGoMaster),
        t.takeover(DOWN_100 + 1, 100, State::Backup)
    );
    let at = DOWN_100 + 2;
    assert_eq!(
        fsm.handle(t.at(at), GroupForceBackup),
        vec![
            CancelTimer(Advert),
            CancelTimer(GarpDelay),
            RemoveVips,
            t.arm(MasterDown, at + DOWN_100),
            StateChanged {
                from: State::Master,
                to: State::Backup
            },
            Notify(NotifyEvent::Backup),
        ],
        "keepalived vrrp_sync_backup: no priority 0"
    );
    assert!(!fsm.wants_master());
    let got = fsm.handle(t.at(at + 1), GroupFault(true));
    assert_eq!(got[0], CancelTimer(MasterDown));
    assert_eq!(fsm.state(), State::Fault);
    assert!(!fsm.own_fault() && fsm.group_fault());
    let _ = fsm.handle(t.at(at + 2), FaultChanged(true));
    assert!(
        fsm.handle(t.at(at + 3), GroupFault(false)).is_empty(),
        "own fault still holds"
    );
    assert_eq!(fsm.handle(t.at(at + 4), FaultChanged(false)).len(), 3);
    assert_eq!(fsm.state(), State::Backup);
}

#[test]
fn the_longest_handover_bounds_it_at_any_effective_priority() {
    for version in [Version::V2, Version::V3] {
        let mut c = FsmConfig::new(version, 51, 254, super::tests::ME);
        c.advert_int = Duration::from_secs(10);
        let bound = Fsm::new(c.clone()).longest_handover();
        for effective in [1, 100, 254] {
            // A master whose tracking lowered it to `effective`: its
            // handover waits the Master_Down_Interval at that priority.
            let mut fsm = Fsm::new(c.clone());
            let t = t();
            fsm.handle(t.0, FaultChanged(false));
            fsm.handle(t.0, Startup);
            fsm.handle(t.at(40_000_000), TimerFired(MasterDown));
            assert_eq!(fsm.state(), State::Master, "{version:?}");
            fsm.handle(t.at(40_000_001), PriorityChanged(effective));
            let at = t.at(40_000_002);
            let handover = fsm.handle(at, Shutdown).into_iter().find_map(|a| match a {
                ArmTimer {
                    kind: Handover,
                    at: until,
                } => Some(until - at),
                _ => None,
            });
            let handover = handover.expect("a master hands over");
            assert!(
                handover <= bound,
                "{version:?} at priority {effective}: {handover:?} beyond {bound:?}"
            );
        }
    }
}
