//! `signal`: the thread signals itself with tgkill; the handler overwrites every register before
//! it returns, so the signal frame's save and sigreturn's restore must both be right.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "signal",
    describe: "tgkill to self; the handler clobbers every register, sigreturn must restore",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_tgkill,
        name: "tgkill",
        args: |c| [c.pid as u64, c.tid as u64, c.clobber_signal as u64, 0, 0, 0],
        // Only a signal to a thread: tgkill writes no memory of the caller.
        allows: |a| a[3..].iter().all(|&x| x == 0),
        takes_args: true,
        child: false,
        result: None,
    }),
    available: super::always,
};
