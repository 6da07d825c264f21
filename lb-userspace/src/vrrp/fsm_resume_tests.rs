//! Scenario tables for `ResumeMaster`: a restarted or upgraded daemon that
//! was master within Master_Down_Interval takes mastership back at once.

use Action::*;
use Input::*;
use TimerKind::*;

use super::{
    tests::{DOWN_100, PEER_HI, PEER_LO, S, advert, cfg, run, step, t},
    *,
};

fn resumed(t: &super::tests::T, prio: u8) -> Vec<Action> {
    vec![
        SendAdvert { priority: prio },
        AddVips { accept: false },
        SendGratuitous { count: 1 },
        t.arm(Advert, S),
        StateChanged {
            from: State::Initialize,
            to: State::Master,
        },
        Notify(NotifyEvent::Master),
    ]
}

#[test]
fn resume_adverts_at_once_then_every_interval() {
    let t = t();
    let fsm = run(
        cfg(100),
        t.0,
        vec![
            step(
                0,
                ResumeMaster,
                resumed(&t, 100),
                "RFC 5798 §6.4.1 transition to Master without the Master_Down wait: \
                 advert at once, VIPs kept, one gratuitous ARP instead of a storm",
            ),
            step(
                S,
                TimerFired(Advert),
                vec![SendAdvert { priority: 100 }, t.arm(Advert, 2 * S)],
                "RFC 5798 §6.4.3: Adver_Timer fires -> advert, re-arm",
            ),
        ],
    );
    assert_eq!(fsm.state(), State::Master);
    assert_eq!(fsm.last_master(), None);
}

#[test]
fn resumed_master_yields_to_a_higher_master() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, ResumeMaster, resumed(&t, 100), "resume"),
            step(
                10,
                advert(PEER_HI, 200),
                vec![
                    CancelTimer(Advert),
                    RemoveVips,
                    t.arm(MasterDown, 10 + DOWN_100),
                    StateChanged {
                        from: State::Master,
                        to: State::Backup,
                    },
                    Notify(NotifyEvent::Backup),
                ],
                "RFC 5798 §6.4.3: higher priority advert -> Backup",
            ),
        ],
    );
}

#[test]
fn resumed_master_reasserts_over_a_lower_one() {
    let t = t();
    run(
        FsmConfig {
            preempt: false,
            ..cfg(100)
        },
        t.0,
        vec![
            step(0, ResumeMaster, resumed(&t, 100), "resume, nopreempt"),
            step(
                10,
                advert(PEER_LO, 50),
                vec![
                    SendAdvert { priority: 100 },
                    SendGratuitous { count: 5 },
                    t.arm(GarpLowerPrio, 10 + 5 * S),
                    Notify(NotifyEvent::MasterRxLowerPri),
                ],
                "RFC 5798 §6.4.3 as keepalived: a master answers a lower one \
                 (nopreempt governs a Backup only)",
            ),
        ],
    );
}

#[test]
fn resume_in_fault_goes_to_fault() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, FaultChanged(true), vec![], "fault before start"),
            step(
                1,
                ResumeMaster,
                vec![
                    StateChanged {
                        from: State::Initialize,
                        to: State::Fault,
                    },
                    Notify(NotifyEvent::Fault),
                ],
                "keepalived: a faulty instance never becomes master",
            ),
        ],
    );
}

#[test]
fn resume_only_from_initialize() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(1, ResumeMaster, vec![], "already started: ignored"),
        ],
    );
}

#[test]
fn resumed_master_hands_over_on_shutdown() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, ResumeMaster, resumed(&t, 100), "resume"),
            step(
                10,
                Shutdown,
                vec![
                    SendAdvert { priority: 0 },
                    CancelTimer(Advert),
                    t.arm(Handover, 10 + DOWN_100),
                ],
                "RFC 5798 §6.4.3 shutdown: priority 0, VIPs kept until a new master speaks",
            ),
        ],
    );
}
