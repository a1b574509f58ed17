//! `sleep`: clock_nanosleep for 20 µs from inside the window. The thread blocks in the kernel
//! with its registers live, so task_work and signals that arrive meanwhile are handled on this
//! syscall's exit.

use super::{Action, Ctx, Spec, Syscall};

/// clock_nanosleep(CLOCK_MONOTONIC, 0, &timeout, NULL).
fn relative(c: &Ctx) -> [u64; 6] {
    [libc::CLOCK_MONOTONIC as u64, 0, c.timeout, 0, 0, 0]
}

/// A relative sleep that only reads its timespec (no TIMER_ABSTIME, no remainder to write).
fn reads_only(a: &[u64; 6]) -> bool {
    a[1] == 0 && a[2] != 0 && a[3] == 0
}

pub(super) const SPEC: Spec = Spec::new(
    "sleep",
    "clock_nanosleep 20 us from inside the window: task_work and signals land on its exit",
    Action::Syscall(Syscall::new(libc::SYS_clock_nanosleep, "clock_nanosleep").args(relative, reads_only)),
);
