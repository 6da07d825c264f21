//! Scenario tables: (time in µs, input, exact actions), each citing what it
//! checks. Times: v3, advert_int 1 s; Skew_Time for priority 100 is
//! 156/256 s = 609_375 µs, for 200 it is 56/256 s = 218_750 µs.

use std::net::Ipv4Addr;

use Action::*;
use Input::*;
use TimerKind::*;

use super::*;

pub(super) const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub(super) const PEER_HI: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
pub(super) const PEER_LO: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0));
pub(super) const S: u64 = 1_000_000;
pub(super) const DOWN_100: u64 = 3 * S + 609_375;
pub(super) const DOWN_200: u64 = 3 * S + 218_750;

pub(super) struct Step {
    at: u64,
    input: Input,
    want: Vec<Action>,
    why: &'static str,
}

pub(super) fn step(at: u64, input: Input, want: Vec<Action>, why: &'static str) -> Step {
    Step {
        at,
        input,
        want,
        why,
    }
}

/// Runs a table on a fresh instance and returns it for further checks.
pub(super) fn run(cfg: FsmConfig, base: Instant, steps: Vec<Step>) -> Fsm {
    let mut fsm = Fsm::new(cfg);
    for (i, s) in steps.into_iter().enumerate() {
        let got = fsm.handle(base + Duration::from_micros(s.at), s.input);
        assert_eq!(
            got, s.want,
            "step {i} at {} µs ({:?}): {}",
            s.at, s.input, s.why
        );
    }
    fsm
}

pub(super) fn cfg(priority: u8) -> FsmConfig {
    FsmConfig::new(Version::V3, 51, priority, ME)
}

pub(super) fn advert(from: IpAddr, priority: u8) -> Input {
    AdvertReceived {
        from,
        priority,
        max_advert_int: Duration::from_secs(1),
    }
}

pub(super) struct T(pub(super) Instant);
impl T {
    pub(super) fn at(&self, us: u64) -> Instant {
        self.0 + Duration::from_micros(us)
    }
    pub(super) fn arm(&self, kind: TimerKind, us: u64) -> Action {
        ArmTimer {
            kind,
            at: self.at(us),
        }
    }
    /// Everything a takeover at `us` emits with keepalived's default garp.
    pub(super) fn takeover(&self, us: u64, prio: u8, from: State) -> Vec<Action> {
        vec![
            SendAdvert { priority: prio },
            AddVips { accept: false },
            SendGratuitous { count: 5 },
            self.arm(Advert, us + S),
            self.arm(GarpDelay, us + 5 * S),
            StateChanged {
                from,
                to: State::Master,
            },
            Notify(NotifyEvent::Master),
        ]
    }
    pub(super) fn startup_backup(&self, down: u64) -> Vec<Action> {
        vec![
            self.arm(MasterDown, down),
            StateChanged {
                from: State::Initialize,
                to: State::Backup,
            },
            Notify(NotifyEvent::Backup),
        ]
    }
}

pub(super) fn t() -> T {
    T(Instant::now())
}

/// An instance of priority `prio` that became master at 0 (owner path
/// skipped: startup, then master-down at DOWN).
pub(super) fn master_steps(t: &T, prio: u8, down: u64) -> Vec<Step> {
    vec![
        step(
            0,
            Startup,
            t.startup_backup(down),
            "RFC 5798 §6.4.1: non-owner starts Backup",
        ),
        step(
            down,
            TimerFired(MasterDown),
            t.takeover(down, prio, State::Backup),
            "RFC 5798 §6.4.2",
        ),
    ]
}

#[test]
fn startup_backup_then_master_down() {
    let t = t();
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        DOWN_100 + S,
        TimerFired(Advert),
        vec![
            SendAdvert { priority: 100 },
            t.arm(Advert, DOWN_100 + 2 * S),
        ],
        "RFC 5798 §6.4.3: Adver_Timer fires -> advert, re-arm",
    ));
    let fsm = run(cfg(100), t.0, steps);
    assert_eq!(fsm.state(), State::Master);
}

#[test]
fn owner_goes_straight_to_master() {
    let t = t();
    run(
        cfg(255),
        t.0,
        vec![step(
            0,
            Startup,
            t.takeover(0, 255, State::Initialize),
            "RFC 5798 §6.4.1 owner",
        )],
    );
}

#[test]
fn v2_skew_is_in_seconds() {
    // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 s, whatever the interval.
    let t = t();
    let cfg = FsmConfig {
        advert_int: Duration::from_secs(2),
        ..FsmConfig::new(Version::V2, 51, 100, ME)
    };
    let fsm = run(
        cfg,
        t.0,
        vec![step(
            0,
            Startup,
            t.startup_backup(6 * S + 609_375),
            "RFC 3768 §6.4.1",
        )],
    );
    assert_eq!(fsm.skew_time(), Duration::from_micros(609_375));
}

#[test]
fn v3_skew_scales_with_interval() {
    // RFC 5798 §6.1: (256 - 100) * 0.5 s / 256 = 304_687.5 µs.
    let cfg = FsmConfig {
        advert_int: Duration::from_millis(500),
        ..cfg(100)
    };
    let fsm = Fsm::new(cfg);
    assert_eq!(fsm.skew_time(), Duration::from_micros(304_687));
    assert_eq!(fsm.master_down_interval(), Duration::from_micros(1_804_687));
}

#[test]
fn down_timer_adverts_replaces_the_rfcs_three() {
    // keepalived's down_timer_adverts: N * Master_Adver_Interval + Skew_Time.
    for (n, want) in [(1, S + 609_375), (3, DOWN_100), (10, 10 * S + 609_375)] {
        let fsm = Fsm::new(FsmConfig {
            down_timer_adverts: n,
            ..cfg(100)
        });
        assert_eq!(
            fsm.master_down_interval(),
            Duration::from_micros(want),
            "{n}"
        );
    }
    // The backup's timer follows it: an advert restarts one interval.
    let t = t();
    let down = S + 609_375;
    run(
        FsmConfig {
            down_timer_adverts: 1,
            ..cfg(100)
        },
        t.0,
        vec![
            step(0, Startup, t.startup_backup(down), "one interval plus skew"),
            step(
                S,
                advert(PEER_HI, 200),
                vec![t.arm(MasterDown, S + down)],
                "the master's advert restarts it",
            ),
        ],
    );
}

#[test]
fn backup_accepts_higher_master_and_restarts_timer() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 200),
                vec![t.arm(MasterDown, S + DOWN_100)],
                "RFC 5798 §6.4.2 reset timer",
            ),
            step(
                S + DOWN_100 - 1,
                TimerFired(MasterDown),
                vec![],
                "stale fire before the deadline is ignored",
            ),
            step(
                2 * S,
                advert(PEER_LO, 100),
                vec![t.arm(MasterDown, 2 * S + DOWN_100)],
                "equal priority accepted",
            ),
        ],
    );
}

#[test]
fn master_yields_to_higher_priority() {
    let t = t();
    let at = DOWN_100 + 300_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        advert(PEER_LO, 200),
        vec![
            CancelTimer(Advert),
            CancelTimer(GarpDelay),
            RemoveVips,
            t.arm(MasterDown, at + DOWN_100),
            StateChanged {
                from: State::Master,
                to: State::Backup,
            },
            Notify(NotifyEvent::Backup),
        ],
        "RFC 5798 §6.4.3: higher priority -> Backup",
    ));
    let fsm = run(cfg(100), t.0, steps);
    assert_eq!(fsm.last_master(), Some((PEER_LO, 200)));
}

#[test]
fn backup_preempts_lower_master() {
    let t = t();
    run(
        cfg(200),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_200), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 100),
                vec![],
                "RFC 5798 §6.4.2: lower priority discarded (preempt)",
            ),
            step(2 * S, advert(PEER_HI, 100), vec![], "still discarded"),
            step(
                DOWN_200,
                TimerFired(MasterDown),
                t.takeover(DOWN_200, 200, State::Backup),
                "preemption",
            ),
        ],
    );
}

#[test]
fn nopreempt_keeps_lower_master() {
    let t = t();
    let cfg = FsmConfig {
        preempt: false,
        ..cfg(200)
    };
    run(
        cfg,
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_200), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, S + DOWN_200)],
                "Preempt_Mode false",
            ),
            step(
                2 * S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, 2 * S + DOWN_200)],
                "Preempt_Mode false",
            ),
        ],
    );
}

#[test]
fn preempt_delay_accepts_lower_master_until_it_expires() {
    let t = t();
    let cfg = FsmConfig {
        preempt_delay: Duration::from_secs(2),
        ..cfg(200)
    };
    run(
        cfg,
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_200), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, S + DOWN_200)],
                "keepalived: delay starts",
            ),
            step(
                2 * S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, 2 * S + DOWN_200)],
                "within delay",
            ),
            step(3 * S, advert(PEER_HI, 100), vec![], "delay over: discarded"),
            step(4 * S, advert(PEER_HI, 100), vec![], "discarded"),
            step(
                2 * S + DOWN_200,
                TimerFired(MasterDown),
                t.takeover(2 * S + DOWN_200, 200, State::Backup),
                "preempt",
            ),
        ],
    );
}

#[test]
fn preempt_delay_restarts_after_higher_master() {
    let t = t();
    let cfg = FsmConfig {
        preempt_delay: Duration::from_secs(2),
        ..cfg(200)
    };
    run(
        cfg,
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_200), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, S + DOWN_200)],
                "delay starts (ends 3 s)",
            ),
            step(
                2 * S,
                advert(PEER_HI, 250),
                vec![t.arm(MasterDown, 2 * S + DOWN_200)],
                "higher: delay reset",
            ),
            step(
                3 * S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, 3 * S + DOWN_200)],
                "delay starts again",
            ),
            step(
                4 * S,
                advert(PEER_HI, 100),
                vec![t.arm(MasterDown, 4 * S + DOWN_200)],
                "within new delay",
            ),
            step(5 * S, advert(PEER_HI, 100), vec![], "new delay over"),
        ],
    );
}

#[test]
fn equal_priority_tie_break_by_address() {
    // RFC 5798 §6.4.3: equal priority and a greater primary address wins.
    let t = t();
    let at = DOWN_100 + 100_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        advert(PEER_LO, 100),
        vec![
            SendAdvert { priority: 100 },
            SendGratuitous { count: 5 },
            t.arm(GarpLowerPrio, at + 5 * S),
            Notify(NotifyEvent::MasterRxLowerPri),
        ],
        "equal priority, lower address: stay Master (keepalived answers at once)",
    ));
    steps.push(step(
        at + 1,
        advert(ME, 100),
        vec![],
        "own address: looped advert ignored",
    ));
    steps.push(step(
        at + 2,
        advert(PEER_HI, 100),
        vec![
            CancelTimer(Advert),
            CancelTimer(GarpDelay),
            CancelTimer(GarpLowerPrio),
            RemoveVips,
            t.arm(MasterDown, at + 2 + DOWN_100),
            StateChanged {
                from: State::Master,
                to: State::Backup,
            },
            Notify(NotifyEvent::Backup),
        ],
        "equal priority, higher address: Backup",
    ));
    run(cfg(100), t.0, steps);
}

#[test]
fn lower_prio_rfc_strict() {
    let t = t();
    let garp = GarpConfig {
        lower_prio_repeat: 0,
        ..GarpConfig::default()
    };
    let cfg = FsmConfig {
        lower_prio_no_advert: true,
        garp,
        ..cfg(100)
    };
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        DOWN_100 + 1,
        advert(PEER_HI, 50),
        vec![Notify(NotifyEvent::MasterRxLowerPri)],
        "RFC 5798 §6.4.3: discard (lower_prio_no_advert)",
    ));
    run(cfg, t.0, steps);
}

#[test]
fn higher_prio_send_advert_answers_before_stepping_down() {
    // keepalived vrrp.c (vrrp_state_master_rx): an advert at our own
    // priority, then Backup; equal priority from a greater address too.
    let t = t();
    for (from, prio, why) in [
        (PEER_HI, 150, "higher priority"),
        (PEER_HI, 100, "equal priority, greater address"),
    ] {
        let at = DOWN_100 + 100_000;
        let mut steps = master_steps(&t, 100, DOWN_100);
        steps.push(step(
            at,
            advert(from, prio),
            vec![
                SendAdvert { priority: 100 },
                CancelTimer(Advert),
                CancelTimer(GarpDelay),
                RemoveVips,
                t.arm(MasterDown, at + DOWN_100),
                StateChanged {
                    from: State::Master,
                    to: State::Backup,
                },
                Notify(NotifyEvent::Backup),
            ],
            why,
        ));
        let cfg = FsmConfig {
            higher_prio_send_advert: true,
            ..cfg(100)
        };
        run(cfg, t.0, steps);
    }
    // Off (the default): no advert, as the other tests show; and a lower
    // priority is answered as before, whatever the switch says.
    let at = DOWN_100 + 100_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        advert(PEER_LO, 50),
        vec![
            SendAdvert { priority: 100 },
            SendGratuitous { count: 5 },
            t.arm(GarpLowerPrio, at + 5 * S),
            Notify(NotifyEvent::MasterRxLowerPri),
        ],
        "lower priority: keepalived's answer and notify_master_rx_lower_pri",
    ));
    let cfg = FsmConfig {
        higher_prio_send_advert: true,
        ..cfg(100)
    };
    run(cfg, t.0, steps);
}

#[test]
fn master_answers_priority_zero() {
    let t = t();
    let at = DOWN_100 + 400_000;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        advert(PEER_HI, 0),
        vec![SendAdvert { priority: 100 }, t.arm(Advert, at + S)],
        "RFC 5798 §6.4.3: priority 0 -> send advert, reset Adver_Timer",
    ));
    steps.push(step(
        DOWN_100 + S,
        TimerFired(Advert),
        vec![],
        "the replaced deadline is stale",
    ));
    run(cfg(100), t.0, steps);
}

#[test]
fn backup_priority_zero_sets_skew() {
    let t = t();
    run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                S,
                advert(PEER_HI, 200),
                vec![t.arm(MasterDown, S + DOWN_100)],
                "RFC 5798 §6.4.2",
            ),
            step(
                2 * S,
                advert(PEER_HI, 0),
                vec![t.arm(MasterDown, 2 * S + 609_375)],
                "priority 0 -> Skew_Time",
            ),
            step(
                2 * S + 609_375,
                TimerFired(MasterDown),
                t.takeover(2 * S + 609_375, 100, State::Backup),
                "take over",
            ),
        ],
    );
}

#[test]
fn v3_backup_learns_master_interval() {
    let t = t();
    let slow = AdvertReceived {
        from: PEER_HI,
        priority: 200,
        max_advert_int: Duration::from_millis(500),
    };
    // 3 * 0.5 s + 156 * 0.5 s / 256
    let down = 1_500_000 + 304_687;
    let mut fsm = run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                S,
                slow,
                vec![t.arm(MasterDown, S + down)],
                "RFC 5798 §6.4.2: Master_Adver_Interval learned",
            ),
            step(
                S + down,
                TimerFired(MasterDown),
                t.takeover(S + down, 100, State::Backup),
                "RFC 5798 §6.4.2",
            ),
        ],
    );
    // As Master the configured interval is ours again (keepalived become_master).
    assert_eq!(fsm.master_adver_int(), Duration::from_secs(1));
    let got = fsm.handle(t.at(S + down + S), TimerFired(Advert));
    assert_eq!(
        got,
        vec![
            SendAdvert { priority: 100 },
            t.arm(Advert, S + down + 2 * S)
        ]
    );
}

#[test]
fn v2_backup_does_not_learn_interval() {
    let t = t();
    let cfg = FsmConfig::new(Version::V2, 51, 100, ME);
    let odd = AdvertReceived {
        from: PEER_HI,
        priority: 200,
        max_advert_int: Duration::from_secs(3),
    };
    run(
        cfg,
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 3768 §6.4.1"),
            step(
                S,
                odd,
                vec![t.arm(MasterDown, S + DOWN_100)],
                "RFC 3768 §6.4.2: own Advertisement_Interval",
            ),
        ],
    );
}

#[test]
fn v3_master_yielding_learns_interval() {
    // RFC 5798 §6.4.3: Master -> Backup takes the new master's interval.
    let t = t();
    let at = DOWN_100 + 1;
    let fast = AdvertReceived {
        from: PEER_LO,
        priority: 200,
        max_advert_int: Duration::from_millis(500),
    };
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        at,
        fast,
        vec![
            CancelTimer(Advert),
            CancelTimer(GarpDelay),
            RemoveVips,
            t.arm(MasterDown, at + 1_500_000 + 304_687),
            StateChanged {
                from: State::Master,
                to: State::Backup,
            },
            Notify(NotifyEvent::Backup),
        ],
        "RFC 5798 §6.4.3",
    ));
    run(cfg(100), t.0, steps);
}

fn advert_int(from: IpAddr, priority: u8, ms: u64) -> Input {
    AdvertReceived {
        from,
        priority,
        max_advert_int: Duration::from_millis(ms),
    }
}

#[test]
fn owner_drops_every_advert() {
    // RFC 3768 / RFC 5798 / RFC 9568: the address owner drops received
    // adverts (keepalived 2.3.3 as an option), so a spoofed priority 255
    // cannot make it step down, nor a flood of lower ones make it answer.
    let t = t();
    let mut fsm = run(
        cfg(255),
        t.0,
        vec![
            step(
                0,
                Startup,
                t.takeover(0, 255, State::Initialize),
                "RFC 5798 §6.4.1: owner",
            ),
            step(
                S / 2,
                advert(PEER_HI, 255),
                vec![Discarded(Discard::Owner)],
                "a second owner (or a spoofer) with a greater address",
            ),
            step(
                S / 2 + 1,
                advert(PEER_HI, 254),
                vec![Discarded(Discard::Owner)],
                "lower priorities are dropped too",
            ),
            step(
                S / 2 + 2,
                advert(PEER_HI, 0),
                vec![Discarded(Discard::Owner)],
                "and priority 0",
            ),
            step(
                S / 2 + 3,
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
                "fault",
            ),
        ],
    );
    let back = S;
    // keepalived: one interval (and the owner's skew), not three.
    let down = S + 1_000_000 / 256;
    assert_eq!(
        fsm.handle(t.at(back), FaultChanged(false)),
        t.startup_backup(back + down)
            .into_iter()
            .map(|a| match a {
                StateChanged { to, .. } => StateChanged {
                    from: State::Fault,
                    to,
                },
                a => a,
            })
            .collect::<Vec<_>>(),
        "fault over: Backup for one advert interval"
    );
    assert_eq!(
        fsm.handle(t.at(back + 1), advert(PEER_HI, 255)),
        vec![Discarded(Discard::Owner)],
        "as Backup the owner does not even re-arm its timer for a master"
    );
    assert_eq!(
        fsm.handle(t.at(back + down), TimerFired(MasterDown)),
        t.takeover(back + down, 255, State::Backup)
    );
}

#[test]
fn v3_learnt_interval_is_bounded() {
    // RFC 5798 §6.4.2 learns Master_Adver_Interval from the master; one
    // spoofed advert must not set 40.95 s (Master_Down_Interval 148 s) or
    // 10 ms (flapping): what is learnt stays in [advert_int / 2,
    // advert_int * 2], the advert otherwise taken.
    let t = t();
    // Master_Down_Interval at priority 100 (skew 156/256 of the interval).
    let down = |interval_us: u64| 3 * interval_us + 156 * interval_us / 256;
    let fsm = run(
        cfg(100),
        t.0,
        vec![
            step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
            step(
                S,
                advert_int(PEER_HI, 200, 40_950),
                vec![t.arm(MasterDown, S + down(2 * S))],
                "40.95 s learnt as twice ours",
            ),
            step(
                S + 1,
                advert_int(PEER_HI, 200, 10),
                vec![t.arm(MasterDown, S + 1 + down(S / 2))],
                "10 ms learnt as half ours",
            ),
            step(
                S + 2,
                advert_int(PEER_HI, 200, 2_001),
                vec![t.arm(MasterDown, S + 2 + down(2 * S))],
                "just over twice ours: twice ours",
            ),
            step(
                S + 3,
                advert_int(PEER_HI, 200, 700),
                vec![t.arm(MasterDown, S + 3 + down(700_000))],
                "within the bounds: learnt as it is",
            ),
        ],
    );
    assert_eq!(fsm.master_adver_int(), Duration::from_millis(700));
    assert_eq!(fsm.last_master(), Some((PEER_HI, 200)));
}

#[test]
fn v3_master_yields_to_a_higher_priority_whatever_its_interval() {
    // RFC 5798 §6.4.3: a higher priority takes over; refusing a peer whose
    // interval is far from ours would leave both nodes master.
    let t = t();
    let mut fsm = run(cfg(100), t.0, master_steps(&t, 100, DOWN_100));
    let out = fsm.handle(t.at(DOWN_100 + 1), advert_int(PEER_HI, 200, 40_950));
    assert!(out.contains(&RemoveVips), "{out:?}");
    assert_eq!(fsm.state(), State::Backup);
    assert_eq!(
        fsm.master_adver_int(),
        Duration::from_secs(2),
        "learnt as twice ours"
    );
}

#[test]
fn lower_priority_answers_are_rate_limited() {
    // keepalived answers each lower-priority advert (advert + gratuitous
    // batch + notify); xdpvs answers at most one per advert interval.
    let t = t();
    let at = DOWN_100 + 100_000;
    let answer = |us: u64| {
        vec![
            SendAdvert { priority: 100 },
            SendGratuitous { count: 5 },
            t.arm(GarpLowerPrio, us + 5 * S),
            Notify(NotifyEvent::MasterRxLowerPri),
        ]
    };
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.extend([
        step(at, advert(PEER_HI, 50), answer(at), "first: answered"),
        step(
            at + 1,
            advert(PEER_HI, 50),
            vec![Discarded(Discard::LowerPrioRateLimited)],
            "within one interval: not answered",
        ),
        step(
            at + S - 1,
            advert(PEER_LO, 99),
            vec![Discarded(Discard::LowerPrioRateLimited)],
            "any sender counts",
        ),
        step(
            at + S,
            advert(PEER_HI, 50),
            answer(at + S),
            "one interval later",
        ),
    ]);
    run(cfg(100), t.0, steps);
}

#[test]
fn garp_lower_prio_settings_and_no_advert() {
    // keepalived.conf(5): garp_lower_prio_repeat / _delay, lower_prio_no_advert.
    let t = t();
    let cfg = FsmConfig {
        lower_prio_no_advert: true,
        garp: GarpConfig {
            lower_prio_repeat: 2,
            lower_prio_delay: Duration::from_secs(3),
            ..GarpConfig::default()
        },
        ..cfg(100)
    };
    let at = DOWN_100 + 1;
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.extend([
        step(
            at,
            advert(PEER_HI, 50),
            vec![
                SendGratuitous { count: 2 },
                t.arm(GarpLowerPrio, at + 3 * S),
                Notify(NotifyEvent::MasterRxLowerPri),
            ],
            "no advert, 2 gratuitous now",
        ),
        step(
            at + 3 * S,
            TimerFired(GarpLowerPrio),
            vec![SendGratuitous { count: 2 }],
            "second batch after garp_lower_prio_delay",
        ),
    ]);
    run(cfg, t.0, steps);
}

#[test]
fn garp_lower_prio_without_delayed_batch() {
    // keepalived.conf(5): garp_lower_prio_delay 0 sends no second batch.
    let t = t();
    let cfg = FsmConfig {
        garp: GarpConfig {
            lower_prio_repeat: 1,
            lower_prio_delay: Duration::ZERO,
            ..GarpConfig::default()
        },
        ..cfg(100)
    };
    let mut steps = master_steps(&t, 100, DOWN_100);
    steps.push(step(
        DOWN_100 + 1,
        advert(PEER_HI, 50),
        vec![
            SendAdvert { priority: 100 },
            SendGratuitous { count: 1 },
            Notify(NotifyEvent::MasterRxLowerPri),
        ],
        "advert and one gratuitous message, nothing armed",
    ));
    run(cfg, t.0, steps);
}

/// A sync member that became master at DOWN_100 + 1 (after `GroupGoMaster`).
fn sync_master_steps(t: &T) -> Vec<Step> {
    vec![
        step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
        step(DOWN_100, TimerFired(MasterDown), vec![], "wants master"),
        step(
            DOWN_100 + 1,
            GroupGoMaster,
            t.takeover(DOWN_100 + 1, 100, State::Backup),
            "the group goes master",
        ),
    ]
}

#[test]
fn a_sync_member_hearing_a_lower_master_refreshes_its_whole_group() {
    // keepalived vrrp_state_master_rx: after a split brain the lower
    // node's other members give up silently, so this node's other members
    // send their lower-priority gratuitous batch too.
    let t = t();
    let sync = |repeat| FsmConfig {
        sync_group: true,
        garp: GarpConfig {
            lower_prio_repeat: repeat,
            ..GarpConfig::default()
        },
        ..cfg(100)
    };
    let at = DOWN_100 + 2;
    let mut steps = sync_master_steps(&t);
    steps.push(step(
        at,
        advert(PEER_HI, 50),
        vec![
            SendAdvert { priority: 100 },
            SendGratuitous { count: 5 },
            t.arm(GarpLowerPrio, at + 5 * S),
            LowerPrioToGroup,
            Notify(NotifyEvent::MasterRxLowerPri),
        ],
        "its own batch, then the other members'",
    ));
    run(sync(5), t.0, steps);
    let mut steps = sync_master_steps(&t);
    steps.push(step(
        at,
        advert(PEER_HI, 50),
        vec![
            SendAdvert { priority: 100 },
            LowerPrioToGroup,
            Notify(NotifyEvent::MasterRxLowerPri),
        ],
        "no batch of its own: the others' repeat is theirs to decide",
    ));
    run(sync(0), t.0, steps);
}

#[test]
fn a_sync_master_told_of_a_lower_master_sends_its_lower_prio_batch() {
    let t = t();
    let sync = FsmConfig {
        sync_group: true,
        ..cfg(100)
    };
    let at = DOWN_100 + 2;
    let mut steps = vec![
        step(0, Startup, t.startup_backup(DOWN_100), "RFC 5798 §6.4.1"),
        step(
            1,
            GroupLowerPrio,
            vec![],
            "a backup holds no VIPs to announce",
        ),
    ];
    steps.extend(sync_master_steps(&t).into_iter().skip(1));
    steps.extend([
        step(
            at,
            GroupLowerPrio,
            vec![
                SendGratuitous { count: 5 },
                t.arm(GarpLowerPrio, at + 5 * S),
            ],
            "garp_lower_prio_repeat now",
        ),
        step(
            at + 5 * S,
            TimerFired(GarpLowerPrio),
            vec![SendGratuitous { count: 5 }],
            "and after garp_lower_prio_delay",
        ),
    ]);
    let mut fsm = run(sync, t.0, steps);
    let _ = fsm.handle(t.at(at + 5 * S + 1), Shutdown);
    assert!(fsm.is_stopping());
    assert_eq!(
        fsm.handle(t.at(at + 5 * S + 2), GroupLowerPrio),
        vec![],
        "a stopping master announces nothing"
    );
}
