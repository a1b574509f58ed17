//! `signal`: the thread signals itself with tgkill; the handler overwrites every register before
//! it returns, so the signal frame's save and sigreturn's restore must both be right.

use super::{Action, Ctx, Spec, Syscall};

/// tgkill(pid, tid, signal): a signal to this very thread.
fn to_self(c: &Ctx) -> [u64; 6] {
    [c.pid as u64, c.tid as u64, c.clobber_signal as u64, 0, 0, 0]
}

pub(super) const SPEC: Spec = Spec::new(
    "signal",
    "tgkill to self; the handler clobbers every register, sigreturn must restore",
    // Only a signal to a thread: tgkill writes no memory of the caller.
    Action::Syscall(Syscall::new(libc::SYS_tgkill, "tgkill").args(to_self, |a| a[3..].iter().all(|&x| x == 0))),
);
