//! `fork`: clone with SIGCHLD from inside the window (copy_process flushes the live register
//! state to the parent's task first); the child exits at once and the caller reaps it.

use super::{Action, Host, Spec, Syscall};

const CLONE: Syscall = Syscall::new(libc::SYS_clone, "clone")
    // No stack, no TLS: the child runs on a copy of the window and exits in its assembly.
    .args(|_| [libc::SIGCHLD as u64, 0, 0, 0, 0, 0], |a| a[0] == libc::SIGCHLD as u64 && a[1..].iter().all(|&x| x == 0))
    .child();

pub(super) const SPEC: Spec = Spec::new("fork", "fork from inside the window (copy_process flushes live state); child exits at once", Action::Syscall(CLONE))
    .only(no_fork_under_emulation);

/// Under user-mode emulation (qemu-user) a child forked from a multi-threaded emulated process
/// can stay blocked in one of the emulator's locks (measured: qemu-ppc64le 10.0, the child
/// waited in a futex forever).
pub(super) fn no_fork_under_emulation(host: &Host) -> Result<(), String> {
    if host.user_mode_emulation {
        return Err("fork in a multi-threaded process under user-mode emulation (qemu-user) can deadlock in the emulator".into());
    }
    Ok(())
}
