//! `syscall`: a cheap system call (getppid) issued with the registers live: the plain syscall
//! entry and exit.

use super::{Action, Spec, Syscall};

const GETPPID: Syscall = Syscall::new(libc::SYS_getppid, "getppid");

pub(super) const SPEC: Spec = Spec::new("syscall", "getppid syscall from inside the window", Action::Syscall(GETPPID));
