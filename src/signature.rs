//! Known bugs: a small table of signatures that a mismatch is compared against.
//!
//! A row is data: the architecture, a predicate on a [`Mismatch`], a fault or a [`Leak`], and
//! what is known of the bug (a short id, name, upstream fix, affected versions, reference). The
//! id is what a user acknowledges with `--known ID`: the finding is still reported, but it no
//! longer fails the run (see `Report::decide`). A finding with a signature never ends a
//! stop-on-first run: one known, unfixed bug must not mask everything else on that kernel.
//! Add a row when a new bug of this family is understood; give it a unit test below.

use crate::class::ClassId;

use crate::pattern::holds_image;
use crate::schema::{FaultReading, FaultReport, Hex, Leak, Mismatch, Reading, SignatureMatch};

/// What is known of a bug (a row's static text).
struct Known {
    /// Short and stable: what `--known` takes.
    id: &'static str,
    name: &'static str,
    confidence: &'static str,
    fix: &'static str,
    affected: &'static str,
    reference: &'static str,
}

/// What a row looks at: a register that came back wrong, or a fault of one of regtorture's
/// own threads (see the forensics module).
enum Predicate {
    Register(fn(&Mismatch) -> bool),
    Fault(fn(&FaultReport) -> bool),
    Leak(fn(&Leak) -> bool),
}

struct Signature {
    arch: &'static str,
    matches: Predicate,
    info: Known,
}

fn image(m: &Mismatch, name: &str) -> Option<u64> {
    m.control_images.iter().find(|(n, _)| n == name).map(|(_, Hex(v))| *v)
}

/// Some 64-bit lane of the register holds the image `value`.
fn holds(m: &Mismatch, value: u64) -> bool {
    m.lanes.iter().any(|l| holds_image(l.observed.0, value))
}

/// powerpc save_fpu/save_altivec used f0/vs0 (v0) as scratch to store FPSCR (VSCR).
fn ppc_fp_scratch_clobber(m: &Mismatch) -> bool {
    let fp_reg = matches!((m.class, m.register.as_str()), (ClassId::Fpr, "f0") | (ClassId::Vsx, "vs0"));
    let vmx_reg = matches!((m.class, m.register.as_str()), (ClassId::Vmx, "v0") | (ClassId::Vsx, "vs32"));
    (fp_reg && image(m, "fpscr").is_some_and(|v| holds(m, v))) || (vmx_reg && image(m, "vscr").is_some_and(|v| holds(m, v)))
}

/// x86 FPU state of an earlier moment, or of another task, after a kernel entry: the Linux 5.2
/// fpregs-owner caching bug (found by Go's runtime as corrupted AVX registers after signals).
fn x86_stale_fpregs(m: &Mismatch) -> bool {
    matches!(m.class, ClassId::Sse | ClassId::Avx | ClassId::Avx512)
        && m.lanes.iter().all(|l| matches!(l.reading, Reading::Stale { .. } | Reading::OtherThread { .. }))
}

/// powerpc: a signal frame set up during task_work on a fast syscall exit. The trampoline's
/// `bctrl` went to CTR's value (the MSR image after scv, zero after sc) instead of the handler.
fn ppc_fast_exit_signal_fault(f: &FaultReport) -> bool {
    let has = |r: FaultReading| f.readings.contains(&r);
    has(FaultReading::LinkAfterSignalTrampoline)
        && has(FaultReading::JumpedThroughRegister)
        && (has(FaultReading::CtrIsMsrImage) || has(FaultReading::CtrIsZero))
}

/// The same bug seen in the registers of a thread that survived it: after a system call with a
/// signal trigger running, CTR holds the MSR image (or zero), LR the vDSO trampoline, or r12 is
/// zero, in a window where the ABI keeps them. (With the ABIs as they are, scv and sc clobber
/// these registers, so a window checks them only where a future ABI or a libc keeps them.)
fn ppc_fast_exit_signal_registers(m: &Mismatch) -> bool {
    const MSR_SF_PR: u64 = (1 << 63) | (1 << 14);
    let signals = m.triggers.iter().any(|t| t == "timer" || t == "tgkill");
    let observed = |l: &crate::schema::LaneDiff| l.observed.0;
    signals
        && m.class == ClassId::Gpr
        && m.window.has_syscall()
        && match m.register.as_str() {
            "ctr" => m.lanes.iter().any(|l| observed(l) == 0 || observed(l) & MSR_SF_PR == MSR_SF_PR),
            "r12" => m.lanes.iter().any(|l| observed(l) == 0),
            _ => false,
        }
}

/// powerpc: the same bug seen in a syscall's result: an `scv` ppoll returned EINTR with a
/// signal trigger running, but no handler of regtorture's ran (the result check counts handled
/// signals): the signal interrupted the call and its frame was set up on the fast exit, so the
/// handler was never called (the fault that follows is recovered: the run goes on).
fn ppc_fast_exit_signal_eintr(m: &Mismatch) -> bool {
    let signals = m.triggers.iter().any(|t| t == "timer" || t == "tgkill");
    signals
        && m.register == "result"
        && m.window.uses_scv()
        && m.lanes.iter().any(|l| matches!(l.reading, Reading::SyscallResult { errno, .. } if errno == libc::EINTR as i64))
}

/// powerpc: the same fast exit, seen without any signal: a syscall made with `sc` that task_work
/// interrupted must restart, but the fast exit zeroes r0, so the restart runs syscall 0
/// (restart_syscall), which fails with EINTR. `scv`'s fast exit restores r0: not affected.
fn ppc_sc_restart_eintr(m: &Mismatch) -> bool {
    m.register == "result"
        && !m.window.uses_scv()
        && m.lanes.iter().any(|l| matches!(l.reading, Reading::SyscallResult { errno, .. } if errno == libc::EINTR as i64))
}

/// riscv64: after a sigreturn, vtype has vill set (and vl is 0): the "discarded" vector state
/// the kernel makes on every syscall entry, rt_sigreturn included, was saved over the state
/// the frame restored. With the registers live no vector instruction runs between load and
/// store, so only the kernel can have put vill there.
fn riscv_sigreturn_discarded_vstate(m: &Mismatch) -> bool {
    const VILL: u64 = 1 << 63;
    m.class == ClassId::Vector && m.register == "vtype" && m.lanes.iter().any(|l| l.observed.0 & VILL != 0)
}

/// riscv64: vector registers holding another checking thread's values: another task's vector
/// state handed to this one (what the first-use trap did before it cleared the registers).
fn riscv_vector_other_task(m: &Mismatch) -> bool {
    m.class == ClassId::Vector && !m.lanes.is_empty() && m.lanes.iter().all(|l| matches!(l.reading, Reading::OtherThread { .. }))
}

/// riscv64: a register of the new image after execve holds the value the calling process had
/// in an integer register: riscv defines no ELF_PLAT_INIT and its start_thread sets only sp.
fn riscv_execve_keeps_gprs(l: &Leak) -> bool {
    l.source == "execve" && l.class == ClassId::Gpr && l.reading.contains("in the process that called execve")
}

/// x86_64: a core shows the dumping thread's PKRU as the kernel last saved it at a context
/// switch (`thread.pkru`), not the value the thread held: xstateregs_get syncs the FPU
/// registers of `current` into its fpstate (fpu_sync_fpstate) but copies PKRU from
/// `thread.pkru`, which only a context switch writes.
fn x86_core_stale_pkru(l: &Leak) -> bool {
    l.source == "core dump" && l.class == ClassId::Pkru
}

/// riscv64: after a window with a signal, the FP registers hold the values the signal
/// handler left: the frame's FP state was not what sigreturn put back. restore_fp_state copies
/// the frame into thread.fstate, then loads it; a context switch in between (a preemptible
/// kernel) saves the handler's still-dirty registers over the copy.
fn riscv_fp_lost_at_sigreturn(m: &Mismatch) -> bool {
    m.class == ClassId::Fpr && !m.lanes.is_empty() && m.lanes.iter().all(|l| matches!(l.reading, Reading::SignalHandler { .. }))
}

/// powerpc64: after a window in which signals were delivered, FPSCR reads 0 (what signal
/// delivery leaves in `thread.fp_state.fpscr` for the handler) or the FP/VMX registers hold the
/// values they had before the handler rewrote its frame (or the handler's own, when the handler
/// was switched out too): the thread resumed with a saved state older than the frame's. restore_sigcontext() clears MSR_FP/VEC/VSX, then
/// copies the frame into the thread struct with accesses that may sleep; a thread switched out
/// there is switched in by __switch_to(), whose restore_math() loads the half-copied state and
/// sets MSR_FP again, so the return to user space does not reload it.
fn ppc_sigreturn_fp_switch(m: &Mismatch) -> bool {
    let signals = m.triggers.iter().any(|t| t == "timer" || t == "tgkill");
    let fp_class = matches!(m.class, ClassId::Fpr | ClassId::Vmx | ClassId::Vsx | ClassId::FpVmxVsx);
    let fpscr_zero = m.register == "fpscr" && m.lanes.iter().all(|l| l.observed.0 == 0 && l.expected.0 != 0);
    let before_rewrite = m.register != "fpscr" && m.lanes.iter().all(|l| matches!(l.reading, Reading::BeforeFrameRewrite | Reading::SignalHandler { .. }));
    signals && fp_class && !m.lanes.is_empty() && (fpscr_zero || before_rewrite)
}

const PPC_SC_RESTART: Known = Known {
    id: "ppc-sc-restart-eintr",
    name: "powerpc: a syscall made with sc and interrupted only by task_work returns EINTR: the sc fast exit zeroes r0, so its restart runs restart_syscall (same root cause as the fast-exit signal bug)",
    confidence: "match",
    fix: "mainline v7.2 (the generic-entry conversion, bee25f97ad24 \"powerpc: Enable GENERIC_ENTRY feature\": arch_do_signal_or_restart() sets _TIF_RESTOREALL on every call); stable patch: _TIF_RESTOREALL for _TIF_NOTIFY_SIGNAL too, in interrupt_exit_user_prepare_main() (5.10.y: syscall_exit_prepare() and interrupt_exit_user_prepare())",
    affected: "Linux 5.10.162+ and 5.11 to 7.1 (Debian 6.1 and 6.12 measured); sc only (POWER8, glibc built with --disable-scv, programs issuing sc themselves); calls that restart with -ERESTARTNOHAND/-ERESTARTSYS (ppoll, select, pselect6, read); any TWA_SIGNAL task_work (an io_uring completion run as task_work, io-wq worker creation)",
    reference: "docs/findings/ppc64-fast-exit-signal/README.md",
};

const PPC_FAST_EXIT: Known = Known {
    id: "ppc-fast-exit-signal",
    name: "powerpc: signal frame set up during task_work on a fast syscall exit, without _TIF_RESTOREALL (CTR = MSR after scv, 0 after sc; the handler is never called)",
    confidence: "match",
    fix: "mainline v7.2 (the generic-entry conversion, bee25f97ad24 \"powerpc: Enable GENERIC_ENTRY feature\": arch_do_signal_or_restart() sets _TIF_RESTOREALL on every call); stable patch: _TIF_RESTOREALL for _TIF_NOTIFY_SIGNAL too, in interrupt_exit_user_prepare_main() (5.10.y: syscall_exit_prepare() and interrupt_exit_user_prepare())",
    affected: "Linux 5.10.162+ and 5.11 to 7.1 (Debian 6.1 and 6.12 measured, sid's 7.2.13 clean); needs TWA_SIGNAL task_work (an io_uring completion run as task_work; io-wq worker creation widens the window) and a signal that becomes pending while it runs",
    reference: "docs/findings/ppc64-fast-exit-signal/README.md",
};

const TABLE: &[Signature] = &[
    Signature { arch: "powerpc64", matches: Predicate::Fault(ppc_fast_exit_signal_fault), info: PPC_FAST_EXIT },
    Signature { arch: "powerpc64", matches: Predicate::Register(ppc_fast_exit_signal_registers), info: PPC_FAST_EXIT },
    Signature { arch: "powerpc64", matches: Predicate::Register(ppc_sc_restart_eintr), info: PPC_SC_RESTART },
    Signature { arch: "powerpc64", matches: Predicate::Register(ppc_fast_exit_signal_eintr), info: PPC_FAST_EXIT },
    Signature {
        arch: "powerpc64",
        matches: Predicate::Register(ppc_fp_scratch_clobber),
        info: Known {
            id: "ppc-fp-scratch-clobber",
            name: "powerpc save_fpu/save_altivec clobbers f0/vs0 (v0) with FPSCR (VSCR) during register save",
            confidence: "match",
            fix: "5e1d824f9a28 \"powerpc: Don't clobber f0/vs0 during fp|altivec register save\" (Linux 6.7; stable 6.1.66, 5.15.142, 4.19.301)",
            affected: "Linux 4.6 (8792468da5e1) to 6.6; reached through io-wq worker creation (copy_process -> flush_all_to_thread) among others",
            reference: "https://git.kernel.org/torvalds/c/5e1d824f9a28",
        },
    },
    Signature {
        arch: "powerpc64",
        matches: Predicate::Register(ppc_sigreturn_fp_switch),
        info: Known {
            id: "ppc-sigreturn-fp-switch",
            name: "powerpc: rt_sigreturn loses the frame's FP (VMX, VSX) state when the thread is switched out while restore_sigcontext copies it: __switch_to's restore_math() loads the half-copied thread state and sets MSR_FP, so the thread resumes with its registers from the signal's delivery and FPSCR 0",
            confidence: "consistent",
            fix: "none upstream known; the frame has to reach the thread struct without a switch-in reloading it halfway (read it into a kernel buffer first, then clear the MSR bits and install it with preemption off)",
            affected: "by reading, every kernel since restore_math() went into __switch_to (the 2016 lazy-restore series, Linux 4.6); a sleeping fault in the copy on any kernel (userfaultfd reproducer: 20 of 20 rounds on Debian 6.1, 6.12.95 and 7.2.13), preemption there on PREEMPT kernels (Debian's 7.2.13 and 7.3 under QEMU)",
            reference: "docs/findings/ppc64-sigreturn-fp-switch/README.md",
        },
    },
    Signature {
        arch: "riscv64",
        matches: Predicate::Register(riscv_sigreturn_discarded_vstate),
        info: Known {
            id: "riscv-sigreturn-vill",
            name: "riscv64: rt_sigreturn restores the discarded vector state (vtype.vill, vl 0) instead of the frame's: the vectorized copy_from_user saved the live, discarded state over it",
            confidence: "consistent",
            fix: "c27fa53b858b \"riscv: Fix vector state restore in rt_sigreturn()\" (Linux 6.9-rc3; stable backports exist, their ids not verified here)",
            affected: "Linux 6.8 (c2a658d41924 \"riscv: lib: vectorize copy_to_user/copy_from_user\") to 6.9-rc2, with CONFIG_RISCV_ISA_V_UCOPY_THRESHOLD below the vector state's size (the default 768 bytes: VLEN 256 and up)",
            reference: "https://git.kernel.org/torvalds/c/c27fa53b858b",
        },
    },
    Signature {
        arch: "riscv64",
        matches: Predicate::Register(riscv_vector_other_task),
        info: Known {
            id: "riscv-first-use-stale",
            name: "riscv64: vector registers hold another task's values (the first-use trap handed out stale register contents before it cleared them)",
            confidence: "consistent",
            fix: "75b59f2a90aa \"riscv: vector: clear V-reg in the first-use trap\" (in the Linux 6.5 merge window, before 6.5-rc1)",
            affected: "development kernels of the 6.5 merge window between cd054837243b (\"riscv: Allocate user's vector context in the first-use trap\") and the fix; no release",
            reference: "https://git.kernel.org/torvalds/c/75b59f2a90aa",
        },
    },
    Signature {
        arch: "riscv64",
        matches: Predicate::Register(riscv_fp_lost_at_sigreturn),
        info: Known {
            id: "riscv-fp-sigreturn-preempt",
            name: "riscv64: rt_sigreturn loses the frame's FP registers to the handler's: a context switch between restore_fp_state's copy into thread.fstate and fstate_restore saves the handler's dirty registers over the copy",
            confidence: "consistent",
            fix: "none upstream known; candidate (A/B on 7.2.13: 5 of 5 runs without, 0 of 5 with): in restore_fp_state(), mark a dirty FP state clean before __copy_from_user",
            affected: "preemptible riscv64 kernels (Debian sid's 7.2.13 measured: every 30 s run under QEMU; Debian 13's 6.12.117, voluntary preemption, clean)",
            reference: "docs/findings/riscv64-fp-lost-at-sigreturn.md",
        },
    },
    Signature {
        arch: "riscv64",
        matches: Predicate::Leak(riscv_execve_keeps_gprs),
        info: Known {
            id: "riscv-execve-gpr",
            name: "riscv64: execve leaves the calling process's integer registers in the new image (no ELF_PLAT_INIT; start_thread sets only sp)",
            confidence: "match",
            fix: "none upstream known; candidate: clear x1-x31 but sp (keeping a7 for syscall_get_nr) in start_thread",
            affected: "every riscv64 Linux to date (Debian 13's 6.12.117 measured; mainline's start_thread is the same)",
            reference: "docs/findings/riscv64-execve-keeps-integer-registers/README.md",
        },
    },
    Signature {
        arch: "x86_64",
        matches: Predicate::Leak(x86_core_stale_pkru),
        info: Known {
            id: "x86-core-stale-pkru",
            name: "x86: a core dump shows the dumping thread's PKRU as of its last context switch (thread.pkru), not the value it held",
            confidence: "consistent",
            fix: "none upstream known; candidate: refresh thread.pkru from RDPKRU when xstateregs_get reads current (docs/findings/x86-core-dump-stale-pkru.md)",
            affected: "Debian's 6.1.0-57 and sid's 7.2.13 measured (QEMU TCG, -cpu max)",
            reference: "docs/findings/x86-core-dump-stale-pkru.md",
        },
    },
    Signature {
        arch: "x86_64",
        matches: Predicate::Register(x86_stale_fpregs),
        info: Known {
            id: "x86-stale-fpregs",
            name: "x86 FPU registers restored stale after a kernel entry (Linux 5.2 fpregs owner caching)",
            confidence: "consistent",
            fix: "59c4bd853abc \"x86/fpu: Don't cache access to fpu_fpregs_owner_ctx\" (Linux 5.4; stable 5.3.x)",
            affected: "Linux 5.2 to 5.3",
            reference: "https://github.com/golang/go/issues/35326",
        },
    },
];

fn found(s: &Signature) -> SignatureMatch {
    SignatureMatch {
        id: s.info.id.into(),
        acknowledged: false,
        name: s.info.name.into(),
        confidence: s.info.confidence.into(),
        fix: s.info.fix.into(),
        affected: s.info.affected.into(),
        reference: s.info.reference.into(),
    }
}

/// The first known bug `m` matches on `arch`.
pub fn find(arch: &str, m: &Mismatch) -> Option<SignatureMatch> {
    TABLE.iter().find(|s| s.arch == arch && matches!(s.matches, Predicate::Register(p) if p(m))).map(found)
}

/// The first known bug the fault `f` matches on `arch`.
pub fn find_fault(arch: &str, f: &FaultReport) -> Option<SignatureMatch> {
    TABLE.iter().find(|s| s.arch == arch && matches!(s.matches, Predicate::Fault(p) if p(f))).map(found)
}

/// The first known bug the leak `l` matches on `arch`.
pub fn find_leak(arch: &str, l: &Leak) -> Option<SignatureMatch> {
    TABLE.iter().find(|s| s.arch == arch && matches!(s.matches, Predicate::Leak(p) if p(l))).map(found)
}

/// Every signature id, on every architecture, once each: what `--known` accepts.
pub fn ids() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for s in TABLE {
        if !v.contains(&s.info.id) {
            v.push(s.info.id);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::LaneDiff;
    use crate::window::WindowKind;

    fn mismatch(class: ClassId, reg: &str, observed: &[u64], fpscr: u64) -> Mismatch {
        Mismatch {
            thread: 0,
            tid: 1,
            cpu: 0,
            iteration: 9,
            elapsed_s: 0.1,
            class,
            register: reg.into(),
            window: WindowKind::Spin,
            triggers: vec!["io_uring".into()],
            lanes: observed.iter().enumerate().map(|(lane, &o)| LaneDiff::new(lane, 0x1111, o, Reading::Unknown, None)).collect(),
            control_images: vec![("fpscr".into(), Hex(fpscr)), ("vscr".into(), Hex(0x0001_0000))],
            signature: None,
            window_ns: None,
            timeline: None,
            ptrace: None,
            truncated: None,
        }
    }

    /// The 7.2 FPSCR loss: FPSCR 0 after a window with signals, or FPRs from before the frame
    /// rewrite; not FPSCR 0 without signals, nor an FPSCR that reads 0 where 0 was written.
    #[test]
    fn a_frame_lost_at_sigreturn_on_powerpc_is_named() {
        let mut m = mismatch(ClassId::Fpr, "fpscr", &[0], 0x0e06_0005);
        m.lanes[0] = LaneDiff::new(0, 0x0e06_0005, 0, Reading::InitState, None);
        m.triggers = vec!["tgkill".into(), "timer".into()];
        assert_eq!(find("powerpc64", &m).map(|s| s.id), Some("ppc-sigreturn-fp-switch".to_string()));
        let mut rewritten = mismatch(ClassId::Vsx, "vs5", &[0x1234], 0);
        rewritten.lanes[0].reading = Reading::BeforeFrameRewrite;
        rewritten.triggers = vec!["timer".into()];
        assert_eq!(find("powerpc64", &rewritten).map(|s| s.id), Some("ppc-sigreturn-fp-switch".to_string()));
        let mut no_signal = m.clone();
        no_signal.triggers = vec!["io_uring".into()];
        assert!(find("powerpc64", &no_signal).is_none());
        let mut wrote_zero = m.clone();
        wrote_zero.lanes[0] = LaneDiff::new(0, 0, 0, Reading::Unknown, None);
        assert!(find("powerpc64", &wrote_zero).is_none());
        assert!(find("riscv64", &m).is_none());
    }

    #[test]
    fn the_seed_bug_is_named() {
        // vs0 as seen in the field: both doublewords hold the FPSCR image 0x82004000.
        let m = mismatch(ClassId::Vsx, "vs0", &[0x8200_4000_0000_0000, 0x8200_4000], 0x8200_4000);
        let s = find("powerpc64", &m).expect("seed bug");
        assert!(s.fix.contains("5e1d824f9a28"));
        let f0 = mismatch(ClassId::Fpr, "f0", &[0x8200_4000], 0x8200_4000);
        assert!(find("powerpc64", &f0).is_some());
    }

    #[test]
    fn the_image_is_recognised_with_hardware_summary_bits() {
        assert!(holds_image(0x8200_4000, 0x0200_4000));
        assert!(holds_image(0x8200_4000_0000_0000, 0x8200_4000));
        assert!(holds_image(0x8200_4000_8200_4000, 0x8200_4000));
        assert!(!holds_image(0x8200_4001, 0x8200_4000));
        assert!(!holds_image(0x1234_5678_8200_4000, 0x8200_4000));
        assert!(!holds_image(0, 0), "an all-zero image says nothing");
    }

    #[test]
    fn unrelated_values_get_no_name() {
        let m = mismatch(ClassId::Vsx, "vs0", &[0xdead_beef_0bad_f00d, 0x1234], 0x8200_4000);
        assert_eq!(find("powerpc64", &m), None);
        // FPSCR image, but in a register the bug does not touch.
        let m = mismatch(ClassId::Vsx, "vs7", &[0x8200_4000, 0], 0x8200_4000);
        assert_eq!(find("powerpc64", &m), None);
        // Right register and value, wrong architecture.
        let m = mismatch(ClassId::Vsx, "vs0", &[0x8200_4000, 0], 0x8200_4000);
        assert_eq!(find("x86_64", &m), None);
    }

    fn fault(readings: Vec<FaultReading>) -> FaultReport {
        FaultReport {
            signal: "SIGSEGV".into(),
            si_code: 1,
            si_addr: Hex(0x8000_0000_0280_f030),
            tid: 7,
            thread: Some(0),
            doing: None,
            elapsed_s: 1.0,
            pc: Hex(0x8000_0000_0280_f030),
            pc_location: "nothing (unmapped)".into(),
            registers: vec![],
            readings,
            lost_signal: None,
            recovered: true,
            triggers: vec!["io_uring".into(), "timer".into()],
            signature: None,
            at_ns: 0,
            window_start_ns: None,
            outside_since_ns: None,
            timeline: None,
        }
    }

    #[test]
    fn the_fast_exit_signal_bug_is_named_from_its_fault() {
        use FaultReading::*;
        let scv = fault(vec![PcIsStateImage, CtrIsMsrImage, JumpedThroughRegister, LinkAfterSignalTrampoline, EntryRegisterZero]);
        let s = find_fault("powerpc64", &scv).expect("scv form");
        assert!(s.reference.contains("docs/findings/"), "{s:?}");
        assert!(s.fix.contains("_TIF_NOTIFY_SIGNAL"));
        let sc = fault(vec![CtrIsZero, JumpedThroughRegister, LinkAfterSignalTrampoline, EntryRegisterZero]);
        assert!(find_fault("powerpc64", &sc).is_some(), "sc form");
        // A jump to a bad address that did not come from the trampoline is something else.
        assert_eq!(find_fault("powerpc64", &fault(vec![PcIsStateImage, CtrIsMsrImage, JumpedThroughRegister])), None);
        assert_eq!(find_fault("x86_64", &scv), None);
        // Register rows never match faults, nor fault rows mismatches.
        let m = mismatch(ClassId::Vsx, "vs0", &[0x8200_4000, 0], 0x8200_4000);
        assert!(!find("powerpc64", &m).unwrap().name.contains("fast syscall exit"));
    }

    #[test]
    fn the_fast_exit_signal_bug_is_named_from_registers() {
        let mut m = mismatch(ClassId::Gpr, "ctr", &[0x8000_0000_0280_f033], 0);
        m.window = WindowKind::ScvSleep;
        m.triggers = vec!["io_uring".into(), "timer".into()];
        assert!(find("powerpc64", &m).unwrap().name.contains("fast syscall exit"));
        m.triggers = vec!["io_uring".into()];
        assert_eq!(find("powerpc64", &m), None, "no signal was sent");
        m.triggers = vec!["timer".into()];
        m.window = WindowKind::Spin;
        assert_eq!(find("powerpc64", &m), None, "no system call in the window");
    }

    #[test]
    fn a_spurious_eintr_after_sc_is_the_restart_form() {
        let mut m = mismatch(ClassId::Gpr, "result", &[(-4i64) as u64], 0);
        m.window = WindowKind::Poll;
        m.lanes[0].reading = Reading::SyscallResult { syscall: "ppoll".into(), errno: libc::EINTR as i64 };
        let s = find("powerpc64", &m).expect("restart form");
        assert!(s.name.contains("restart_syscall"), "{s:?}");
        // Through scv the restart works: whatever that was, it is not this bug.
        m.window = WindowKind::ScvPoll;
        assert_eq!(find("powerpc64", &m), None);
        // But with a signal trigger running, an scv call's EINTR that no handler saw is the
        // fast-exit signal bug's lost signal.
        m.triggers = vec!["io_uring".into(), "timer".into()];
        assert_eq!(find("powerpc64", &m).map(|s| s.id), Some("ppc-fast-exit-signal".to_string()));
        m.triggers = vec!["io_uring".into()];
        m.window = WindowKind::Poll;
        m.lanes[0].reading = Reading::SyscallResult { syscall: "ppoll".into(), errno: libc::EBADF as i64 };
        assert_eq!(find("powerpc64", &m), None);
        assert_eq!(find("x86_64", &m), None);
    }

    #[test]
    fn riscv_vector_state_discarded_at_sigreturn_is_named() {
        let mut m = mismatch(ClassId::Vector, "vtype", &[1 << 63], 0);
        let s = find("riscv64", &m).expect("vill after sigreturn");
        assert!(s.fix.contains("c27fa53b858b"), "{s:?}");
        assert_eq!(find("powerpc64", &m), None, "riscv64 only");
        m.lanes[0].observed = Hex(0x41);
        assert_eq!(find("riscv64", &m), None, "a legal vtype is no discard");
        let m = mismatch(ClassId::Vector, "vl", &[1 << 63], 0);
        assert_eq!(find("riscv64", &m), None, "vill is a vtype bit");
    }

    #[test]
    fn another_tasks_vector_registers_are_consistent_with_the_first_use_leak() {
        let mut m = mismatch(ClassId::Vector, "v3", &[0x1234, 0x5678], 0);
        assert_eq!(find("riscv64", &m), None);
        for l in &mut m.lanes {
            l.reading = Reading::OtherThread { thread: 2, class: ClassId::Vector, register: "v3".into(), lane: l.lane as u32 };
        }
        assert!(find("riscv64", &m).expect("another task's values").fix.contains("75b59f2a90aa"));
        m.class = ClassId::Fpr;
        assert_eq!(find("riscv64", &m), None, "V registers only");
    }

    #[test]
    fn riscv_fp_registers_with_the_handlers_values_are_the_sigreturn_race() {
        let mut m = mismatch(ClassId::Fpr, "f7", &[0x1234], 0);
        assert_eq!(find("riscv64", &m), None);
        m.lanes[0].reading = Reading::SignalHandler { class: ClassId::Fpr, register: "f7".into(), lane: 0 };
        assert_eq!(find("riscv64", &m).map(|s| s.id), Some("riscv-fp-sigreturn-preempt".to_string()));
        assert_eq!(find("x86_64", &m), None, "riscv64 only");
        m.class = ClassId::Vector;
        assert_eq!(find("riscv64", &m).map(|s| s.id), None, "FP registers only");
    }

    #[test]
    fn riscv_execve_leak_of_the_callers_registers_is_named() {
        let mut l = Leak {
            source: "execve".into(),
            class: ClassId::Gpr,
            register: "t3".into(),
            lane: 0,
            observed: Hex(0x3ab7),
            expected: Hex(0),
            reading: "the value of gpr t3 lane 0 in the process that called execve".into(),
            signature: None,
        };
        assert_eq!(find_leak("riscv64", &l).map(|s| s.id), Some("riscv-execve-gpr".to_string()));
        assert_eq!(find_leak("x86_64", &l), None, "riscv64 only");
        l.source = "process".into();
        assert_eq!(find_leak("riscv64", &l), None, "another process's value is another finding");
    }

    #[test]
    fn ids_are_unique_short_and_shared_by_rows_of_one_bug() {
        let ids = ids();
        assert!(ids.len() >= 7, "{ids:?}");
        for id in &ids {
            assert!(id.len() <= 32 && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{id}");
        }
        // Three rows (the fault, the registers, an scv call's EINTR) name the fast-exit bug
        // with one id and one text.
        let rows: Vec<_> = TABLE.iter().filter(|s| s.info.id == "ppc-fast-exit-signal").collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].info.name, rows[1].info.name);
        // One id, one bug: no id names two different bugs.
        for a in TABLE {
            for b in TABLE.iter().filter(|b| b.info.id == a.info.id) {
                assert_eq!(a.info.name, b.info.name, "{}", a.info.id);
            }
        }
    }

    #[test]
    fn stale_x86_vector_state_is_consistent_with_the_5_2_bug() {
        let mut m = mismatch(ClassId::Avx, "ymm3", &[5], 0);
        m.lanes[0].reading = Reading::Stale { iterations_ago: 2 };
        assert_eq!(find("x86_64", &m).map(|s| s.confidence), Some("consistent".to_string()));
        m.lanes[0].reading = Reading::Unknown;
        assert_eq!(find("x86_64", &m), None);
    }
}
