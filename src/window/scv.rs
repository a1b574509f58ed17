//! The `scv-*` kinds: a window of another kind whose syscall is issued with powerpc's `scv 0`
//! (the instruction glibc uses on POWER9 and later) instead of `sc`. The kernel enters and
//! leaves through other code for it (`system_call_vectored`, its own fast exit), so each is a
//! window of its own. They need PPC_FEATURE2_SCV (see [`super::WindowKind::available`]).

use super::WindowKind;

/// An scv kind: its sc twin and how it reads in reports.
pub(super) struct Twin {
    pub sc: WindowKind,
    pub name: &'static str,
    pub describe: &'static str,
}

const TWINS: [(WindowKind, Twin); 5] = [
    (WindowKind::ScvSyscall, Twin { sc: WindowKind::Syscall, name: "scv-syscall", describe: "getppid through scv 0 (powerpc64)" }),
    (WindowKind::ScvYield, Twin { sc: WindowKind::Yield, name: "scv-yield", describe: "sched_yield through scv 0 (powerpc64)" }),
    (
        WindowKind::ScvSignal,
        Twin { sc: WindowKind::Signal, name: "scv-signal", describe: "tgkill to self through scv 0; the handler clobbers every register (powerpc64)" },
    ),
    (
        WindowKind::ScvSleep,
        Twin {
            sc: WindowKind::Sleep,
            name: "scv-sleep",
            describe: "clock_nanosleep 20 us through scv 0: the scv exit path with task_work and signals (powerpc64)",
        },
    ),
    (WindowKind::ScvPoll, Twin { sc: WindowKind::Poll, name: "scv-poll", describe: "poll through scv 0 (powerpc64)" }),
];

/// The twin of `kind` when it is an scv kind.
pub(super) fn twin_of(kind: WindowKind) -> Option<&'static Twin> {
    TWINS.iter().find(|(k, _)| *k == kind).map(|(_, t)| t)
}
