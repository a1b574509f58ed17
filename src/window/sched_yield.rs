//! `yield`: sched_yield issued with the registers live, so the thread may be switched out (and
//! its state saved and restored) inside the window's syscall.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec = Spec {
    name: "yield",
    describe: "sched_yield syscall from inside the window",
    action: Action::Syscall(Syscall {
        nr: libc::SYS_sched_yield,
        name: "sched_yield",
        args: |_| [0; 6],
        allows: |_| true,
        takes_args: false,
        child: false,
        result: None,
    }),
    available: super::always,
};
