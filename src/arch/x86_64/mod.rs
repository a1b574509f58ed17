//! x86_64 backend: x87, MXCSR, SSE, AVX, AVX-512 (zmm and opmask) and AMX.
//!
//! Classes are detected from CPUID and XCR0, so a class is tested only when the CPU has it *and*
//! the kernel has enabled its state for user space; AMX tile data also needs the per-process
//! permission of `arch_prctl(ARCH_REQ_XCOMP_PERM)` (Linux 5.16+). The register code is in
//! `regs.S`; [`frame`] knows where each register lies in the XSAVE image of a signal frame.

mod frame;

use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::{HiVector, WindowKind, WindowOp};


/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

type WindowFn = unsafe extern "C" fn(*const u64, *mut u64, *mut WindowOp, *const HiVector);
type ClobberFn = unsafe extern "C" fn(*const u64);

unsafe extern "C" {
    fn rt_x86_window_x87(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_mxcsr(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_sse(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_avx(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_avx512(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_opmask(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_amx(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_window_gpr(e: *const u64, o: *mut u64, op: *mut WindowOp, hi: *const HiVector);
    fn rt_x86_clobber_x87(v: *const u64);
    fn rt_x86_clobber_mxcsr(v: *const u64);
    fn rt_x86_clobber_sse(v: *const u64);
    fn rt_x86_clobber_avx(v: *const u64);
    fn rt_x86_clobber_avx512(v: *const u64);
    fn rt_x86_clobber_opmask(v: *const u64);
    fn rt_x86_clobber_amx(v: *const u64);
    fn rt_x86_clobber_gpr(v: *const u64);
    // Code labels: only their addresses are used.
    static rt_x86_live_begin_x87: u8;
    static rt_x86_live_end_x87: u8;
    static rt_x86_live_begin_mxcsr: u8;
    static rt_x86_live_end_mxcsr: u8;
    static rt_x86_live_begin_sse: u8;
    static rt_x86_live_end_sse: u8;
    static rt_x86_live_begin_avx: u8;
    static rt_x86_live_end_avx: u8;
    static rt_x86_live_begin_avx512: u8;
    static rt_x86_live_end_avx512: u8;
    static rt_x86_live_begin_opmask: u8;
    static rt_x86_live_end_opmask: u8;
    static rt_x86_live_begin_amx: u8;
    static rt_x86_live_end_amx: u8;
    static rt_x86_live_begin_gpr: u8;
    static rt_x86_live_end_gpr: u8;
}

static ENABLED: super::Enabled = super::Enabled::new();

fn routines(class: ClassId) -> Option<(WindowFn, ClobberFn)> {
    Some(match class {
        ClassId::X87 => (rt_x86_window_x87 as WindowFn, rt_x86_clobber_x87 as ClobberFn),
        ClassId::Mxcsr => (rt_x86_window_mxcsr, rt_x86_clobber_mxcsr),
        ClassId::Sse => (rt_x86_window_sse, rt_x86_clobber_sse),
        ClassId::Avx => (rt_x86_window_avx, rt_x86_clobber_avx),
        ClassId::Avx512 => (rt_x86_window_avx512, rt_x86_clobber_avx512),
        ClassId::Opmask => (rt_x86_window_opmask, rt_x86_clobber_opmask),
        ClassId::Amx => (rt_x86_window_amx, rt_x86_clobber_amx),
        ClassId::Gpr => (rt_x86_window_gpr, rt_x86_clobber_gpr),
        _ => return None,
    })
}

/// x87 control word: exception masks and bit 6 always set; precision (bit 9 only, so single or
/// extended, never the reserved 01) and rounding vary.
const FCW: RegKind = RegKind::Control { valid: 0x0e00, fixed: 0x007f, init: 0x037f };
/// MXCSR: exception masks always set (so nothing traps); status flags, DAZ, rounding, FZ vary.
const MXCSR: RegKind = RegKind::Control { valid: 0xe07f, fixed: 0x1f80, init: 0x1f80 };
/// RFLAGS: the arithmetic flags (CF, PF, AF, ZF, SF, OF) vary; bit 1 and IF are always set;
/// TF, DF, AC and the system flags stay clear.
const RFLAGS: RegKind = RegKind::Control { valid: 0x08d5, fixed: 0x0202, init: 0x0202 };
/// The integer registers the gpr class holds, in the layout's order (rsp is the stack, rcx the
/// window's loop counter).
const GPRS: [&str; 14] = ["rax", "rbx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// The AMX tile configuration: palette 1, tiles 0-7 of 16 rows x 64 bytes.
fn tile_config() -> Vec<u64> {
    vec![1, 0, 0x0040_0040_0040_0040, 0x0040_0040_0040_0040, 0, 0, 0x1010_1010_1010_1010, 0]
}

fn layout(class: ClassId) -> ClassLayout {
    match class {
        ClassId::X87 => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            for i in 0..8 {
                l.push(&format!("st{i}"), 16, RegKind::X87);
            }
            l.regs.iter_mut().for_each(|r| r.bytes = 10);
            l.push("fcw", 2, FCW);
            l
        }
        ClassId::Mxcsr => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            l.push("mxcsr", 4, MXCSR);
            l
        }
        ClassId::Sse => ClassLayout::data_regs(class, "xmm", 16, 16),
        ClassId::Avx => ClassLayout::data_regs(class, "ymm", 16, 32),
        ClassId::Avx512 => ClassLayout::data_regs(class, "zmm", 32, 64),
        ClassId::Opmask => ClassLayout::data_regs(class, "k", 8, 8),
        ClassId::Amx => {
            let mut l = ClassLayout::data_regs(class, "tmm", 8, 1024);
            l.push("tilecfg", 64, RegKind::Config(tile_config()));
            l
        }
        ClassId::Gpr => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            GPRS.iter().for_each(|r| l.push(r, 8, RegKind::Data));
            l.push("rflags", 8, RFLAGS);
            l
        }
        _ => unreachable!("not an x86_64 class"),
    }
}

fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    // SAFETY: CPUID exists on every x86_64 CPU and has no side effects.
    #[allow(unused_unsafe)]
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, sub) };
    (r.eax, r.ebx, r.ecx, r.edx)
}

fn xcr0() -> u64 {
    #[target_feature(enable = "xsave")]
    unsafe fn read() -> u64 {
        // SAFETY: the caller checked CPUID.1:ECX.OSXSAVE, so XGETBV is enabled.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }
    if cpuid(1, 0).2 & (1 << 27) == 0 {
        return 3; // no OSXSAVE: x87 and SSE only, managed by FXSAVE
    }
    // SAFETY: OSXSAVE is set, checked just above.
    unsafe { read() }
}

/// Ask the kernel for permission to use AMX tile data (Linux 5.16+).
fn request_amx() -> Result<(), String> {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes this process's permissions.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "the kernel refused AMX permission (arch_prctl(ARCH_REQ_XCOMP_PERM): {}); Linux 5.16 or later is needed",
            std::io::Error::last_os_error()
        ))
    }
}

fn check_class(class: ClassId, buffers: &[usize]) -> (WindowFn, ClobberFn) {
    ENABLED.check(class, layout_words(class), buffers);
    routines(class).expect("x86_64 class")
}

fn layout_words(class: ClassId) -> usize {
    match class {
        ClassId::X87 => 17,
        ClassId::Mxcsr => 1,
        ClassId::Sse => 32,
        ClassId::Avx => 64,
        ClassId::Avx512 => 256,
        ClassId::Opmask => 8,
        ClassId::Amx => 1032,
        ClassId::Gpr => 15,
        _ => usize::MAX,
    }
}

/// The encodings of the system-call instructions the windows use (`syscall`), as they lie in
/// memory: `arch::at_syscall_exit` looks for them just before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x0f, 0x05]];

/// The x86_64 backend.
impl super::Backend for Native {
    /// Detect the classes of this CPU and kernel. Call before [`run_window`]; calling again is cheap.
    fn detect(&self) -> Vec<ClassDesc> {
        let (_, _, ecx1, _) = cpuid(1, 0);
        let (_, ebx7, _, edx7) = cpuid(7, 0);
        let xcr0 = xcr0();
        let cpu_avx = ecx1 & (1 << 28) != 0;
        let cpu_avx512f = ebx7 & (1 << 16) != 0;
        let cpu_avx512bw = ebx7 & (1 << 30) != 0;
        let cpu_amx = edx7 & (1 << 24) != 0;
        let os = |bits: u64, what: &str| {
            if xcr0 & bits == bits {
                Ok(())
            } else {
                Err(format!("the kernel has not enabled {what} state (XCR0 = {xcr0:#x})"))
            }
        };
        let avail = |class: ClassId| -> Result<(), String> {
            match class {
                ClassId::X87 | ClassId::Mxcsr | ClassId::Sse | ClassId::Gpr => Ok(()),
                ClassId::Avx if !cpu_avx => Err("the CPU has no AVX (CPUID.1:ECX[28])".into()),
                ClassId::Avx => os(0b110, "AVX"),
                ClassId::Avx512 | ClassId::Opmask if !cpu_avx512f => {
                    Err("the CPU has no AVX-512 (CPUID.(7,0):EBX[16])".into())
                }
                ClassId::Opmask if !cpu_avx512bw => {
                    Err("the CPU has no AVX512BW, needed for 64-bit opmask moves (CPUID.(7,0):EBX[30])".into())
                }
                ClassId::Avx512 | ClassId::Opmask => os(0xe6, "AVX-512"),
                ClassId::Amx if !cpu_amx => Err("the CPU has no AMX tiles (CPUID.(7,0):EDX[24] AMX-TILE)".into()),
                ClassId::Amx => os(0x6_0000, "AMX").and_then(|_| request_amx()),
                _ => unreachable!(),
            }
        };
        let classes = [
            ClassId::X87,
            ClassId::Mxcsr,
            ClassId::Sse,
            ClassId::Avx,
            ClassId::Avx512,
            ClassId::Opmask,
            ClassId::Amx,
            ClassId::Gpr,
        ];
        let descs: Vec<ClassDesc> = classes.iter().map(|&c| ClassDesc { layout: layout(c), available: avail(c) }).collect();
        frame::init_offsets(xcr0);
        ENABLED.record(&descs);
        descs
    }

    /// Load `class` from `expected` (ORed with `hi` in every 64-bit lane when given, for classes
    /// that [`fuses_iteration`]), run the window `op`, store the class to `observed`.
    ///
    /// `touch` is the page a page-fault window writes to. Panics when the class was not detected as
    /// available, a buffer is shorter than the class layout, or `hi` is given for a class that
    /// does not fuse it.
    fn run_window(&self, 
        class: ClassId,
        expected: &[u64],
        observed: &mut [u64],
        op: &mut WindowOp,
        touch: Option<&mut [u8]>,
        hi: Option<&HiVector>,
    ) {
        let (window, _) = check_class(class, &[expected.len(), observed.len()]);
        assert!(hi.is_none() || self.fuses_iteration(class), "class {class} does not fuse the iteration");
        super::linux::check_window_op(op, touch);
        let hi = hi.map_or(std::ptr::null(), |h| h as *const HiVector);
        // SAFETY: the class is enabled (checked), both buffers are at least as long as the layout the
        // routine reads and writes (checked), the window's syscall is one that returns to this
        // thread or ends a child at once and any page it writes belongs to `touch`
        // (check_window_op). The routine clobbers only caller-saved registers and puts MXCSR and the
        // x87 control word back.
        // `hi` is null or a 64-byte-aligned vector of 8 words (HiVector), read before the window.
        unsafe { window(expected.as_ptr(), observed.as_mut_ptr(), op, hi) }
    }

    /// Load `class` with `values` and leave it so: used by the signal handler, as its last action,
    /// so that sigreturn has to restore every register.
    ///
    /// # Safety
    /// MXCSR and the x87 control word are callee-saved but are changed here: the caller must not
    /// compute with floating point before the state is restored (sigreturn does).
    unsafe fn clobber(&self, class: ClassId, values: &[u64]) {
        if !ENABLED.has(class) || values.len() < layout_words(class) {
            return;
        }
        let (_, clobber) = routines(class).expect("x86_64 class");
        // SAFETY: class enabled and buffer long enough, checked above; see the function's contract.
        unsafe { clobber(values.as_ptr()) }
    }

    /// The code addresses between which the class's registers hold the pattern.
    fn live_range(&self, class: ClassId) -> (usize, usize) {
        live_ranges!(
            class,
            ClassId::X87 => (rt_x86_live_begin_x87, rt_x86_live_end_x87),
            ClassId::Mxcsr => (rt_x86_live_begin_mxcsr, rt_x86_live_end_mxcsr),
            ClassId::Sse => (rt_x86_live_begin_sse, rt_x86_live_end_sse),
            ClassId::Avx => (rt_x86_live_begin_avx, rt_x86_live_end_avx),
            ClassId::Avx512 => (rt_x86_live_begin_avx512, rt_x86_live_end_avx512),
            ClassId::Opmask => (rt_x86_live_begin_opmask, rt_x86_live_end_opmask),
            ClassId::Amx => (rt_x86_live_begin_amx, rt_x86_live_end_amx),
            ClassId::Gpr => (rt_x86_live_begin_gpr, rt_x86_live_end_gpr),
        )
    }

    /// Every FPU/vector class keeps all of its bits across every window (the syscall ABI preserves
    /// the whole FPU/vector state). Across `syscall` the gpr class loses rax (the result), r11 (the
    /// instruction overwrites it with RFLAGS) and the argument registers the window loaded
    /// (Linux x86_64 syscall ABI: arch/x86/entry/entry_64.S; rcx is not in the class).
    fn preserved(&self, class: ClassId, kind: WindowKind) -> Option<Vec<u64>> {
        if class != ClassId::Gpr || !kind.has_syscall() {
            return None;
        }
        let mut keep = vec![u64::MAX; layout_words(class)];
        let mut lose = vec!["rax", "r11"];
        if kind.syscall_args() {
            lose.extend(["rdi", "rsi", "rdx", "r10", "r8", "r9"]);
        }
        for r in lose {
            keep[GPRS.iter().position(|g| *g == r).expect("a gpr")] = 0;
        }
        Some(keep)
    }

    /// Whether the class's assembly ORs the iteration vector into the registers as it loads them
    /// (see [`run_window`]): the plain-data classes.
    fn fuses_iteration(&self, class: ClassId) -> bool {
        matches!(class, ClassId::Sse | ClassId::Avx | ClassId::Avx512 | ClassId::Opmask)
    }

    fn name(&self) -> &'static str {
        "x86_64"
    }

    fn syscall_insns(&self) -> &'static [&'static [u8]] {
        SYSCALL_INSNS
    }

    fn cpuinfo_is_native(&self, cpuinfo: &str) -> bool {
        cpuinfo.contains("vendor_id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes_match_the_assembly() {
        for c in [ClassId::X87, ClassId::Mxcsr, ClassId::Sse, ClassId::Avx, ClassId::Avx512, ClassId::Opmask, ClassId::Amx, ClassId::Gpr] {
            assert_eq!(layout(c).words, layout_words(c), "{c}");
        }
        assert_eq!(layout(ClassId::X87).regs[8].offset, 128);
        assert_eq!(layout(ClassId::Amx).regs[8].offset, 8192);
    }

    #[test]
    fn basic_classes_are_always_available() {
        let d = crate::arch::native().detect();
        for c in [ClassId::X87, ClassId::Mxcsr, ClassId::Sse] {
            assert!(d.iter().any(|x| x.id() == c && x.available.is_ok()));
        }
    }
}
