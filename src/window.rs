//! Window kinds: what happens while a class's registers hold the pattern.
//!
//! A window is described by data, not code: a [`WindowOp`] that every architecture's assembly
//! runs the same way (spin, optionally touch a page, optionally issue one syscall, spin again).
//! The kinds differ only in the values they put there.

use serde::{Deserialize, Serialize};

/// One kind of window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// A pure integer loop: asynchronous events (interrupts, IPIs, task_work, preemption) land here.
    Spin,
    /// A cheap syscall (getppid) issued with the registers live.
    Syscall,
    /// sched_yield issued with the registers live.
    Yield,
    /// The thread signals itself; the handler overwrites every register before sigreturn.
    Signal,
    /// fork (clone with SIGCHLD) from inside the window; the child exits at once.
    Fork,
    /// vfork (clone with CLONE_VM | CLONE_VFORK) from inside the window; the child exits at once.
    Vfork,
    /// The first touch of a fresh page: a page fault with the registers live.
    Pagefault,
    /// clock_nanosleep for 20 us: the thread blocks in the kernel with the registers live, so
    /// task_work and signals that arrive meanwhile are handled on this syscall's exit.
    Sleep,
    /// ppoll of no descriptors with a 20 us timeout: it must return 0 (or EINTR when a signal was
    /// handled meanwhile). Interrupted, it returns -ERESTARTNOHAND inside the kernel, so its
    /// result tells whether the kernel's syscall restart worked.
    Poll,
    /// `syscall`, issued with powerpc's `scv 0` (the instruction glibc uses on POWER9+).
    #[serde(rename = "scv-syscall")]
    ScvSyscall,
    /// `yield` through `scv 0`.
    #[serde(rename = "scv-yield")]
    ScvYield,
    /// `signal` through `scv 0`.
    #[serde(rename = "scv-signal")]
    ScvSignal,
    /// `sleep` through `scv 0`: the exit path of the scv signal-delivery bug.
    #[serde(rename = "scv-sleep")]
    ScvSleep,
    /// `poll` through `scv 0`.
    #[serde(rename = "scv-poll")]
    ScvPoll,
}

impl WindowKind {
    pub const ALL: [WindowKind; 14] = [
        WindowKind::Spin,
        WindowKind::Syscall,
        WindowKind::Yield,
        WindowKind::Signal,
        WindowKind::Fork,
        WindowKind::Vfork,
        WindowKind::Pagefault,
        WindowKind::Sleep,
        WindowKind::Poll,
        WindowKind::ScvSyscall,
        WindowKind::ScvYield,
        WindowKind::ScvSignal,
        WindowKind::ScvSleep,
        WindowKind::ScvPoll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Spin => "spin",
            WindowKind::Syscall => "syscall",
            WindowKind::Yield => "yield",
            WindowKind::Signal => "signal",
            WindowKind::Fork => "fork",
            WindowKind::Vfork => "vfork",
            WindowKind::Pagefault => "pagefault",
            WindowKind::Sleep => "sleep",
            WindowKind::ScvSyscall => "scv-syscall",
            WindowKind::ScvYield => "scv-yield",
            WindowKind::ScvSignal => "scv-signal",
            WindowKind::ScvSleep => "scv-sleep",
            WindowKind::Poll => "poll",
            WindowKind::ScvPoll => "scv-poll",
        }
    }

    /// The window this one issues through `scv 0` (powerpc64), with the same syscall.
    pub fn sc_twin(self) -> WindowKind {
        match self {
            WindowKind::ScvSyscall => WindowKind::Syscall,
            WindowKind::ScvYield => WindowKind::Yield,
            WindowKind::ScvSignal => WindowKind::Signal,
            WindowKind::ScvSleep => WindowKind::Sleep,
            WindowKind::ScvPoll => WindowKind::Poll,
            w => w,
        }
    }

    /// Whether the window's syscall is issued with `scv 0`.
    pub fn uses_scv(self) -> bool {
        self.sc_twin() != self
    }

    /// Whether the window issues a syscall (and so is subject to the syscall ABI's clobbers).
    pub fn has_syscall(self) -> bool {
        !matches!(self, WindowKind::Spin | WindowKind::Pagefault)
    }

    /// Whether the window's syscall result is checked (see [`WindowKind::Poll`]).
    pub fn checks_result(self) -> bool {
        self.sc_twin() == WindowKind::Poll
    }

    /// Whether the window's syscall takes arguments (the gpr class then loses the argument
    /// registers to them); getppid and sched_yield take none.
    pub fn syscall_args(self) -> bool {
        !matches!(self.sc_twin(), WindowKind::Spin | WindowKind::Pagefault | WindowKind::Syscall | WindowKind::Yield)
    }

    pub fn from_name(name: &str) -> Option<WindowKind> {
        WindowKind::ALL.into_iter().find(|w| w.name() == name)
    }

    /// `Ok` when the window kind works here, else why not. Under user-mode emulation
    /// (qemu-user) fork and vfork are not: a child forked from a multi-threaded emulated process
    /// can stay blocked in one of the emulator's locks (measured: qemu-ppc64le 10.0, the child
    /// waited in a futex forever).
    pub fn available(self) -> Result<(), String> {
        match self {
            w if w.uses_scv() && !crate::arch::has_scv() => Err(format!(
                "needs the `scv` system call instruction: powerpc64 with PPC_FEATURE2_SCV in AT_HWCAP2 (POWER9+, Linux 5.9+); {} has none",
                crate::arch::ARCH
            )),
            WindowKind::Fork | WindowKind::Vfork if crate::arch::linux::user_mode_emulation() => {
                Err("fork in a multi-threaded process under user-mode emulation (qemu-user) can deadlock in the emulator".into())
            }
            _ => Ok(()),
        }
    }

    /// What the window does, for `regtorture list`.
    pub fn describe(self) -> &'static str {
        match self {
            WindowKind::Spin => "integer loop with registers live; async events land here",
            WindowKind::Syscall => "getppid syscall from inside the window",
            WindowKind::Yield => "sched_yield syscall from inside the window",
            WindowKind::Signal => "tgkill to self; the handler clobbers every register, sigreturn must restore",
            WindowKind::Fork => "fork from inside the window (copy_process flushes live state); child exits at once",
            WindowKind::Vfork => "vfork from inside the window; child exits at once",
            WindowKind::Pagefault => "first touch of a fresh page (page fault) from inside the window",
            WindowKind::Sleep => "clock_nanosleep 20 us from inside the window: task_work and signals land on its exit",
            WindowKind::ScvSyscall => "getppid through scv 0 (powerpc64)",
            WindowKind::ScvYield => "sched_yield through scv 0 (powerpc64)",
            WindowKind::ScvSignal => "tgkill to self through scv 0; the handler clobbers every register (powerpc64)",
            WindowKind::ScvSleep => "clock_nanosleep 20 us through scv 0: the scv exit path with task_work and signals (powerpc64)",
            WindowKind::Poll => "ppoll of nothing, 20 us timeout; its result is checked: 0, or EINTR only after a handled signal",
            WindowKind::ScvPoll => "poll through scv 0 (powerpc64)",
        }
    }
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The child of a fork/vfork window exits at once when its syscall returns 0.
pub const FLAG_CHILD_EXIT: u64 = 1;
/// Write one byte at `touch` after the first spin.
pub const FLAG_TOUCH: u64 = 2;
/// Issue the syscall with `scv 0` instead of `sc` (powerpc64).
pub const FLAG_SCV: u64 = 4;
/// How long a sleep window sleeps, and a poll window waits.
pub const SLEEP: libc::timespec = libc::timespec { tv_sec: 0, tv_nsec: 20_000 };

/// What the assembly does between loading and storing the registers. The layout is shared with
/// every `src/arch/*/` assembly file: change both together.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowOp {
    /// Loop iterations before the action.
    pub spin: u64,
    /// Syscall number, or -1 for none.
    pub sysno: i64,
    pub args: [u64; 6],
    pub flags: u64,
    /// Address to write when `FLAG_TOUCH` is set.
    pub touch: u64,
    /// Loop iterations after the action.
    pub spin_after: u64,
    /// The syscall's return value.
    pub ret: i64,
}

impl WindowOp {
    /// A pure spin of `spin` iterations.
    pub fn spin(spin: u64) -> WindowOp {
        WindowOp { spin, sysno: -1, ..Default::default() }
    }

    /// Spin half, issue `sysno(args)`, spin the other half.
    pub fn syscall(spin: u64, sysno: i64, args: &[u64]) -> WindowOp {
        let mut op = WindowOp { spin: spin / 2, spin_after: spin - spin / 2, sysno, ..Default::default() };
        op.args[..args.len()].copy_from_slice(args);
        op
    }
}

/// The iteration part of a pattern, one word per 64-bit lane of a 512-bit vector: the assembly
/// of classes that fuse it ORs it into each register as it loads it.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub struct HiVector(pub [u64; 8]);

#[cfg(test)]
mod tests {
    use super::*;

    /// The header every regs.S includes against this file's struct and flags: a drift fails here.
    #[test]
    fn the_assembly_header_matches_the_struct() {
        use std::mem::offset_of;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/arch");
        let header = std::fs::read_to_string(format!("{dir}/window_op.h")).unwrap();
        let defs: Vec<(&str, usize)> = header
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .map(|d| {
                let mut f = d.split_whitespace();
                (f.next().unwrap(), f.next().unwrap().parse().unwrap())
            })
            .collect();
        let mut want = vec![
            ("OP_SPIN", offset_of!(WindowOp, spin)),
            ("OP_SYSNO", offset_of!(WindowOp, sysno)),
            ("OP_FLAGS", offset_of!(WindowOp, flags)),
            ("OP_TOUCH", offset_of!(WindowOp, touch)),
            ("OP_SPIN_AFTER", offset_of!(WindowOp, spin_after)),
            ("OP_RET", offset_of!(WindowOp, ret)),
            ("FLAG_CHILD_EXIT", FLAG_CHILD_EXIT as usize),
            ("FLAG_TOUCH", FLAG_TOUCH as usize),
            ("FLAG_SCV", FLAG_SCV as usize),
            ("FLAG_CHILD_EXIT_BIT", FLAG_CHILD_EXIT.trailing_zeros() as usize),
            ("FLAG_TOUCH_BIT", FLAG_TOUCH.trailing_zeros() as usize),
            ("FLAG_SCV_BIT", FLAG_SCV.trailing_zeros() as usize),
        ];
        let names = ["OP_ARG0", "OP_ARG1", "OP_ARG2", "OP_ARG3", "OP_ARG4", "OP_ARG5"];
        want.extend(names.iter().enumerate().map(|(i, n)| (*n, offset_of!(WindowOp, args) + 8 * i)));
        for (name, value) in &want {
            assert_eq!(defs.iter().find(|d| d.0 == *name).map(|d| d.1), Some(*value), "{name} in window_op.h");
        }
        assert_eq!(defs.len(), want.len(), "window_op.h defines something the test does not check");
        // Every backend takes the values from the header, and none sets its own.
        for arch in ["x86_64", "aarch64", "powerpc64"] {
            let asm = std::fs::read_to_string(format!("{dir}/{arch}/regs.S")).unwrap();
            assert!(asm.contains("#include \"../window_op.h\""), "{arch}/regs.S does not include the header");
            assert!(!asm.contains(".set OP_") && !asm.contains(".set FLAG_"), "{arch}/regs.S defines its own offsets");
        }
    }

    #[test]
    fn names_round_trip() {
        for w in WindowKind::ALL {
            assert_eq!(WindowKind::from_name(w.name()), Some(w));
        }
    }
}
