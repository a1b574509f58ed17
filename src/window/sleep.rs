//! `sleep`: clock_nanosleep for 20 µs from inside the window. The thread blocks in the kernel
//! with its registers live, so task_work and signals that arrive meanwhile are handled on this
//! syscall's exit.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "sleep",
    describe: "clock_nanosleep 20 us from inside the window: task_work and signals land on its exit",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_clock_nanosleep,
        name: "clock_nanosleep",
        args: |c| [libc::CLOCK_MONOTONIC as u64, 0, c.timeout, 0, 0, 0],
        // A relative sleep that only reads its timespec (no TIMER_ABSTIME, no remainder to write).
        allows: |a| a[1] == 0 && a[2] != 0 && a[3] == 0,
        takes_args: true,
        child: false,
        result: None,
    }),
    available: super::always,
};
