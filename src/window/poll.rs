//! `poll`: ppoll of no descriptors with a 20 µs timeout. It must return 0, or EINTR when a
//! signal was handled on this thread meanwhile. Interrupted, it returns -ERESTARTNOHAND inside
//! the kernel, so its result tells whether the kernel's syscall restart worked.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "poll",
    describe: "ppoll of nothing, 20 us timeout; its result is checked: 0, or EINTR only after a handled signal",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_ppoll,
        name: "ppoll",
        // ppoll(NULL, 0, &timeout, NULL, sizeof(sigset)): nothing to wait for but the time.
        args: |c| [0, 0, c.timeout, 0, 8, 0],
        // No descriptors, no signal mask: the kernel reads and updates only the timespec.
        allows: |a| a[0] == 0 && a[1] == 0 && a[2] != 0 && a[3] == 0,
        takes_args: true,
        child: false,
        result: Some(|ret, signal_handled| ret == 0 || (ret == -(libc::EINTR as i64) && signal_handled)),
    }),
    available: super::always,
};
