//! The two programs of the xdpvs object, XDP and tc, run through
//! `BPF_PROG_TEST_RUN` and their verdicts told in XDP's words, so one table
//! of cases checks both.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    programs::{ProgramError, SchedClassifier, TestRun, TestRunOptions, Xdp},
};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;
/// `TCX_NEXT` (-1): on to the next tcx program, or the stack.
const TCX_NEXT: u32 = u32::MAX;
/// A tc return value with no XDP counterpart.
pub const UNKNOWN: u32 = 0xdead;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Xdp,
    Tc,
}

impl Hook {
    pub const ALL: [Hook; 2] = [Hook::Xdp, Hook::Tc];

    pub fn program(self) -> &'static str {
        match self {
            Hook::Xdp => lb_common::programs::XDP,
            Hook::Tc => lb_common::programs::TC,
        }
    }

    /// Loads this hook's program of `ebpf` into the kernel.
    pub fn load(self, ebpf: &mut Ebpf) -> Result<(), ProgramError> {
        self.load_program(ebpf, self.program())
    }

    /// Loads `ebpf`'s program `name`, one of this hook's.
    pub fn load_program(self, ebpf: &mut Ebpf, name: &str) -> Result<(), ProgramError> {
        let prog = ebpf.program_mut(name).ok_or(ProgramError::NotLoaded)?;
        match self {
            Hook::Xdp => <&mut Xdp>::try_from(prog)?.load(),
            Hook::Tc => <&mut SchedClassifier>::try_from(prog)?.load(),
        }
    }

    /// Whether `BPF_PROG_TEST_RUN` refuses `input` for this hook: for an
    /// skb it wants the whole IPv4 or IPv6 header of a frame whose
    /// EtherType names one (EINVAL otherwise). Such a runt still reaches a
    /// tc program on a real interface; the kernel tests just cannot build it.
    pub fn refuses(self, input: &[u8]) -> bool {
        let l3 = input.len().saturating_sub(14);
        self == Hook::Tc
            && match input.get(12..14) {
                Some([0x08, 0x00]) => l3 < 20,
                Some([0x86, 0xdd]) => l3 < 40,
                _ => false,
            }
    }

    /// Runs `input` once; returns the verdict in XDP's words (a tc
    /// redirect is `XDP_TX`: the program only redirects to the interface
    /// the frame came in on) and the frame as the program left it.
    pub fn run(self, ebpf: &Ebpf, input: &[u8], out: &mut [u8]) -> Result<(u32, usize)> {
        let r = self.run_program(ebpf, self.program(), input, out)?;
        Ok((r.verdict, r.len))
    }

    /// [`Hook::run`] for `ebpf`'s program `name`, with the kernel-reported
    /// duration of the run.
    pub fn run_program(self, ebpf: &Ebpf, name: &str, input: &[u8], out: &mut [u8]) -> Result<Run> {
        let prog = ebpf
            .program(name)
            .with_context(|| format!("program {name}"))?;
        let opts = TestRunOptions {
            data_in: Some(input),
            data_out: Some(out),
            repeat: 1,
            ..Default::default()
        };
        let r = match self {
            Hook::Xdp => <&Xdp>::try_from(prog)?.test_run(opts)?,
            Hook::Tc => <&SchedClassifier>::try_from(prog)?.test_run(opts)?,
        };
        let verdict = match (self, r.return_value) {
            (Hook::Xdp, v) => v,
            (Hook::Tc, TC_ACT_REDIRECT) => XDP_TX,
            (Hook::Tc, TCX_NEXT) => XDP_PASS,
            (Hook::Tc, TC_ACT_SHOT) => XDP_DROP,
            (Hook::Tc, _) => UNKNOWN,
        };
        Ok(Run {
            verdict,
            len: r.data_size_out as usize,
            duration: r.duration,
        })
    }
}

/// One test run of a frame.
pub struct Run {
    /// In XDP's words (see [`Hook::run`]).
    pub verdict: u32,
    /// Bytes of the frame after the program.
    pub len: usize,
    pub duration: Duration,
}
