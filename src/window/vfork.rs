//! `vfork`: clone with CLONE_VM | CLONE_VFORK from inside the window; the parent sleeps until the
//! child, which shares its memory, exits at once.

use super::{Action, Spec, Syscall};

const FLAGS: u64 = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;

/// clone(CLONE_VM | CLONE_VFORK | SIGCHLD) and nothing else: no stack, no TLS; the child runs
/// on the parent's stack only to exit at once.
fn vfork_only(a: &[u64; 6]) -> bool {
    a[0] == FLAGS && a[1..].iter().all(|&x| x == 0)
}

pub(super) const SPEC: Spec = Spec::new(
    "vfork",
    "vfork from inside the window; child exits at once",
    Action::Syscall(Syscall::new(libc::SYS_clone, "clone").args(|_| [FLAGS, 0, 0, 0, 0, 0], vfork_only).child()),
)
.only(super::fork::no_fork_under_emulation);
