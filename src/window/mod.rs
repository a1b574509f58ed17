//! Window kinds: what happens while a class's registers hold the pattern.
//!
//! A window is described by data, not code: a [`WindowOp`] that every architecture's assembly
//! runs the same way (spin, optionally touch a page, optionally issue one syscall, spin again).
//! The kinds differ only in the values they put there. Each kind is one file here holding its
//! `Spec`: what it does, its syscall and arguments, which arguments are allowed (the
//! allow-list the backends enforce before running a window: [`vet`]), what result is right
//! and where it can run. The `scv-*` kinds are their `sc` twins issued with powerpc's `scv 0`
//! (`scv.rs`).
//!
//! This module depends on nothing of the crate: the facts availability needs come in as a
//! [`Host`] from the architecture backend.

mod fork;
mod pagefault;
mod poll;
mod sched_yield;
mod scv;
mod signal;
mod sleep;
mod spin;
mod syscall;
mod vfork;

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

    /// The kind's file: its [`Spec`] (an `scv-*` kind shares its `sc` twin's).
    fn spec(self) -> &'static Spec {
        match self.sc_twin() {
            WindowKind::Spin => &spin::SPEC,
            WindowKind::Syscall => &syscall::SPEC,
            WindowKind::Yield => &sched_yield::SPEC,
            WindowKind::Signal => &signal::SPEC,
            WindowKind::Fork => &fork::SPEC,
            WindowKind::Vfork => &vfork::SPEC,
            WindowKind::Pagefault => &pagefault::SPEC,
            WindowKind::Sleep => &sleep::SPEC,
            WindowKind::Poll => &poll::SPEC,
            _ => unreachable!("an scv kind's twin is an sc kind"),
        }
    }

    fn syscall(self) -> Option<&'static Syscall> {
        match &self.spec().action {
            Action::Syscall(s) => Some(s),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        scv::twin_of(self).map_or(self.spec().name, |t| t.name)
    }

    pub fn from_name(name: &str) -> Option<WindowKind> {
        WindowKind::ALL.into_iter().find(|w| w.name() == name)
    }

    /// What the window does, for `regtorture list`.
    pub fn describe(self) -> &'static str {
        scv::twin_of(self).map_or(self.spec().describe, |t| t.describe)
    }

    /// The window this one issues through `scv 0` (powerpc64), with the same syscall.
    pub fn sc_twin(self) -> WindowKind {
        scv::twin_of(self).map_or(self, |t| t.sc)
    }

    /// Whether the window's syscall is issued with `scv 0`.
    pub fn uses_scv(self) -> bool {
        scv::twin_of(self).is_some()
    }

    /// Whether the window issues a syscall (and so is subject to the syscall ABI's clobbers).
    pub fn has_syscall(self) -> bool {
        self.syscall().is_some()
    }

    /// Whether the window's syscall takes arguments (the gpr class then loses the argument
    /// registers to them).
    pub fn syscall_args(self) -> bool {
        self.syscall().is_some_and(|s| s.takes_args)
    }

    /// Whether the window's syscall result is checked (it has one right answer).
    pub fn checks_result(self) -> bool {
        self.syscall().is_some_and(|s| s.result.is_some())
    }

    /// Whether `ret`, the result of the window's syscall, is right; `signal_handled` says
    /// whether a signal was handled on this thread during the window. Always true for windows
    /// whose result is not checked.
    pub fn result_ok(self, ret: i64, signal_handled: bool) -> bool {
        self.syscall().and_then(|s| s.result).is_none_or(|ok| ok(ret, signal_handled))
    }

    /// The name of the window's syscall ("ppoll"), for reports.
    pub fn syscall_name(self) -> Option<&'static str> {
        self.syscall().map(|s| s.name)
    }

    /// Whether the window makes a child (fork, vfork) that the caller must reap.
    pub fn makes_child(self) -> bool {
        self.syscall().is_some_and(|s| s.child)
    }

    /// Whether the window touches a fresh page (the caller passes one to the backend).
    pub fn touches_page(self) -> bool {
        matches!(self.spec().action, Action::Touch)
    }

    /// The operation the assembly runs for this window: `spin` loop iterations around the
    /// action.
    pub fn op(self, ctx: &Ctx, spin: u64) -> WindowOp {
        let mut op = match &self.spec().action {
            Action::Spin => WindowOp::spin(spin),
            Action::Touch => {
                let mut op = WindowOp::spin(spin / 2);
                op.spin_after = spin - spin / 2;
                op.flags = FLAG_TOUCH;
                op
            }
            Action::Syscall(s) => WindowOp::syscall(spin, s.nr, &(s.args)(ctx)),
        };
        if self.uses_scv() {
            op.flags |= FLAG_SCV;
        }
        op
    }

    /// The kinds that work on `host`, in report order.
    pub fn runnable(host: &Host) -> Vec<WindowKind> {
        WindowKind::ALL.into_iter().filter(|w| w.available(host).is_ok()).collect()
    }

    /// `Ok` when the window kind works on `host`, else why not.
    pub fn available(self, host: &Host) -> Result<(), String> {
        if self.uses_scv() && !host.has_scv {
            return Err(format!(
                "needs the `scv` system call instruction: powerpc64 with PPC_FEATURE2_SCV in AT_HWCAP2 (POWER9+, Linux 5.9+); {} has none",
                host.arch
            ));
        }
        (self.spec().available)(host)
    }
}

/// What one window kind is: the contents of its file.
pub(crate) struct Spec {
    pub name: &'static str,
    pub describe: &'static str,
    pub action: Action,
    /// `Ok` when the kind works on the host, else why not.
    pub available: fn(&Host) -> Result<(), String>,
}

/// What a window does between its two spins.
pub(crate) enum Action {
    /// Nothing: a pure integer loop.
    Spin,
    /// Write one byte to a fresh page.
    Touch,
    /// Issue one system call.
    Syscall(Syscall),
}

/// A window's system call: what it is and what may be passed to it.
#[derive(Clone, Copy)]
pub(crate) struct Syscall {
    pub nr: i64,
    pub name: &'static str,
    /// The arguments, from the checking thread's context.
    pub args: fn(&Ctx) -> [u64; 6],
    /// The allow-list entry: whether these arguments are safe to pass from inside a window
    /// (the syscall returns to this thread, or ends a child at once, and writes no memory but
    /// what [`Ctx`] lends it).
    pub allows: fn(&[u64; 6]) -> bool,
    /// Whether it takes arguments at all (the gpr class then loses the argument registers).
    pub takes_args: bool,
    /// Whether it makes a child that leaves at once (fork, vfork).
    pub child: bool,
    /// When the result has one right answer: whether `(ret, signal_handled)` is right.
    pub result: Option<fn(i64, bool) -> bool>,
}

impl Syscall {
    /// System call `nr` without arguments, any result right.
    const fn new(nr: i64, name: &'static str) -> Syscall {
        Syscall { nr, name, args: |_| [0; 6], allows: |_| true, takes_args: false, child: false, result: None }
    }

    /// Its arguments, and the allow-list entry for them.
    const fn args(self, args: fn(&Ctx) -> [u64; 6], allows: fn(&[u64; 6]) -> bool) -> Syscall {
        Syscall { args, allows, takes_args: true, ..self }
    }

    /// It makes a child that leaves at once.
    const fn child(self) -> Syscall {
        Syscall { child: true, ..self }
    }

    /// Its result has one right answer.
    const fn result(self, ok: fn(i64, bool) -> bool) -> Syscall {
        Syscall { result: Some(ok), ..self }
    }
}

impl Spec {
    const fn new(name: &'static str, describe: &'static str, action: Action) -> Spec {
        Spec { name, describe, action, available: always }
    }

    /// Runs only where `available` says so.
    const fn only(self, available: fn(&Host) -> Result<(), String>) -> Spec {
        Spec { available, ..self }
    }
}

/// What a window kind's arguments come from: the checking thread's identity and memory it lends
/// the kernel for the window.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub pid: i32,
    pub tid: i32,
    /// The signal whose handler clobbers every register (the signal window sends it).
    pub clobber_signal: i32,
    /// The address of a timespec the kernel may read and write back (sleep and poll windows).
    pub timeout: u64,
}

/// The facts of this machine that decide which window kinds can run.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub arch: &'static str,
    /// The `scv` instruction can be used (powerpc64, POWER9+, Linux 5.9+).
    pub has_scv: bool,
    /// Running under user-mode emulation (qemu-user).
    pub user_mode_emulation: bool,
}

/// Every kind works everywhere.
fn always(_: &Host) -> Result<(), String> {
    Ok(())
}

/// The specs of the kinds, once each (the `scv-*` kinds share their twins').
const SPECS: [&Spec; 9] =
    [&spin::SPEC, &syscall::SPEC, &sched_yield::SPEC, &signal::SPEC, &fork::SPEC, &vfork::SPEC, &pagefault::SPEC, &sleep::SPEC, &poll::SPEC];

/// The allow-list, vetted once per window: `Some(None)` for an operation without a syscall,
/// `Some(Some(syscall))` when a window kind issues exactly this syscall with such arguments,
/// `None` when none does. The backends refuse the last before running a window (see
/// `arch::linux::check_window_op`).
pub(crate) fn vet(op: &WindowOp) -> Option<Option<&'static Syscall>> {
    if op.sysno < 0 {
        return Some(None);
    }
    SPECS
        .iter()
        .find_map(|s| match &s.action {
            Action::Syscall(c) if c.nr == op.sysno && (c.allows)(&op.args) => Some(c),
            _ => None,
        })
        .map(Some)
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
        let backends: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().filter(|e| e.path().join("regs.S").is_file()).map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert!(backends.len() >= 3, "{backends:?}");
        for arch in &backends {
            let asm = std::fs::read_to_string(format!("{dir}/{arch}/regs.S")).unwrap();
            assert!(asm.contains("#include \"../window_op.h\""), "{arch}/regs.S does not include the header");
            assert!(!asm.contains(".set OP_") && !asm.contains(".set FLAG_"), "{arch}/regs.S defines its own offsets");
        }
    }

    /// Every kind's own operation passes the allow-list; anything else does not.
    #[test]
    fn the_allow_list_is_the_kinds_own() {
        let ctx = Ctx { pid: 1, tid: 2, clobber_signal: 36, timeout: 0x1000 };
        for k in WindowKind::ALL {
            assert!(vet(&k.op(&ctx, 10)).is_some(), "{k}");
        }
        let refused = [
            WindowOp::syscall(10, libc::SYS_getpid, &[]),
            WindowOp::syscall(10, libc::SYS_clone, &[libc::SIGCHLD as u64, 0x7000]), // a stack
            WindowOp::syscall(10, libc::SYS_ppoll, &[0x1000, 1, 0x1000, 0, 8]),      // descriptors
            WindowOp::syscall(10, libc::SYS_clock_nanosleep, &[1, 0, 0x1000, 0x2000]), // a remainder
            WindowOp::syscall(10, libc::SYS_clock_nanosleep, &[1, 1, 0x1000, 0]),    // TIMER_ABSTIME
        ];
        for op in refused {
            assert!(vet(&op).is_none(), "{op:?}");
        }
        let child = |k: WindowKind| vet(&k.op(&ctx, 10)).flatten().is_some_and(|s| s.child);
        assert!(child(WindowKind::Fork) && child(WindowKind::Vfork) && !child(WindowKind::Poll));
    }

    #[test]
    fn names_round_trip() {
        for w in WindowKind::ALL {
            assert_eq!(WindowKind::from_name(w.name()), Some(w));
        }
    }
}
