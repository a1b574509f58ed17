//! `syscall`: a cheap system call (getppid) issued with the registers live: the plain syscall
//! entry and exit.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "syscall",
    describe: "getppid syscall from inside the window",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_getppid,
        name: "getppid",
        args: |_| [0; 6],
        allows: |_| true,
        takes_args: false,
        child: false,
        result: None,
    }),
    available: super::always,
};
