//! `yield`: sched_yield issued with the registers live, so the thread may be switched out (and
//! its state saved and restored) inside the window's syscall.

use super::{Action, Spec, Syscall};

pub(super) const SPEC: Spec =
    Spec::new("yield", "sched_yield syscall from inside the window", Action::Syscall(Syscall::new(libc::SYS_sched_yield, "sched_yield")));
