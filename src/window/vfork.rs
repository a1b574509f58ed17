//! `vfork`: clone with CLONE_VM | CLONE_VFORK from inside the window; the parent sleeps until the
//! child, which shares its memory, exits at once.

use super::{Action, Spec, Syscall};

const FLAGS: u64 = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;

pub(super) const SPEC: Spec = Spec {
    name: "vfork",
    describe: "vfork from inside the window; child exits at once",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_clone,
        name: "clone",
        args: |_| [FLAGS, 0, 0, 0, 0, 0],
        // No stack, no TLS: the child runs on the parent's stack only to exit at once.
        allows: |a| a[0] == FLAGS && a[1..].iter().all(|&x| x == 0),
        takes_args: true,
        child: true,
        result: None,
    }),
    available: super::fork::no_fork_under_emulation,
};
