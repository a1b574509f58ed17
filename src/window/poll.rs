//! `poll`: ppoll of no descriptors with a 20 µs timeout. It must return 0, or EINTR when a
//! signal was handled on this thread meanwhile. Interrupted, it returns -ERESTARTNOHAND inside
//! the kernel, so its result tells whether the kernel's syscall restart worked.

use super::{Action, Ctx, Spec, Syscall};

/// ppoll(NULL, 0, &timeout, NULL, sizeof(sigset)): nothing to wait for but the time.
fn nothing(c: &Ctx) -> [u64; 6] {
    [0, 0, c.timeout, 0, 8, 0]
}

/// No descriptors, no signal mask: the kernel reads and updates only the timespec.
fn timespec_only(a: &[u64; 6]) -> bool {
    a[0] == 0 && a[1] == 0 && a[2] != 0 && a[3] == 0
}

/// It times out (0), or a signal handled on this thread meanwhile interrupted it (EINTR).
fn timed_out(ret: i64, signal_handled: bool) -> bool {
    ret == 0 || (ret == -(libc::EINTR as i64) && signal_handled)
}

pub(super) const SPEC: Spec = Spec::new(
    "poll",
    "ppoll of nothing, 20 us timeout; its result is checked: 0, or EINTR only after a handled signal",
    Action::Syscall(Syscall::new(libc::SYS_ppoll, "ppoll").args(nothing, timespec_only).result(timed_out)),
);
