//! `fork`: clone with SIGCHLD from inside the window (copy_process flushes the live register
//! state to the parent's task first); the child exits at once and the caller reaps it.

use super::{Action, Host, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "fork",
    describe: "fork from inside the window (copy_process flushes live state); child exits at once",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_clone,
        name: "clone",
        args: |_| [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
        // No stack, no TLS: the child runs on a copy of the window and exits in its assembly.
        allows: |a| a[0] == libc::SIGCHLD as u64 && a[1..].iter().all(|&x| x == 0),
        takes_args: true,
        child: true,
        result: None,
    }),
    available: no_fork_under_emulation,
};

/// Under user-mode emulation (qemu-user) a child forked from a multi-threaded emulated process
/// can stay blocked in one of the emulator's locks (measured: qemu-ppc64le 10.0, the child
/// waited in a futex forever).
pub(super) fn no_fork_under_emulation(host: &Host) -> Result<(), String> {
    if host.user_mode_emulation {
        return Err("fork in a multi-threaded process under user-mode emulation (qemu-user) can deadlock in the emulator".into());
    }
    Ok(())
}
