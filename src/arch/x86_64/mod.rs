//! x86_64 backend: x87, MXCSR, SSE, AVX, AVX-512 (zmm and opmask) and AMX.
//!
//! Classes are detected from CPUID and XCR0, so a class is tested only when the CPU has it *and*
//! the kernel has enabled its state for user space; AMX tile data also needs the per-process
//! permission of `arch_prctl(ARCH_REQ_XCOMP_PERM)` (Linux 5.16+). The register code is in
//! `regs.S`; [`frame`] knows where each register lies in the XSAVE image of a signal frame.

mod frame;

use super::{EntryLane, Routines};
use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::WindowKind;

/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

asm_classes! {
    "rt_x86":
    X87 => x87, Mxcsr => mxcsr, Sse => sse, Avx => avx, Avx512 => avx512,
    Opmask => opmask, Amx => amx, Gpr => gpr, AvxUpper => avxupper, Pkru => pkru
}

/// PKRU after execve and in every signal handler: access disabled for keys 1-15, key 0 open
/// (`init_pkru_value`, arch/x86/mm/pkeys.c; its default, which the run does not read back).
const PKRU_INIT: u64 = 0x5555_5554;

/// The protection keys the run allocated (`pkey_alloc`) and never uses for memory: the PKRU
/// bits that vary (AD and WD of each), or why there are none.
static PKEYS: std::sync::OnceLock<Result<u64, String>> = std::sync::OnceLock::new();

/// Allocate two protection keys for the pkru class, once per process.
fn pkeys(cpu_ospke: bool) -> Result<u64, String> {
    PKEYS
        .get_or_init(|| {
            if !cpu_ospke {
                return Err("the CPU or kernel has no protection keys (CPUID.(7,0):ECX[4] OSPKE clear)".into());
            }
            let mut valid = 0u64;
            for _ in 0..2 {
                // SAFETY: pkey_alloc(flags 0, access rights 0) only allocates a key for this
                // process; no memory is ever tagged with it.
                let k = unsafe { libc::syscall(libc::SYS_pkey_alloc, 0, 0) };
                if !(1..16).contains(&k) {
                    return Err(format!("pkey_alloc gave no key ({})", std::io::Error::last_os_error()));
                }
                valid |= 0b11 << (2 * k);
            }
            Ok(valid)
        })
        .clone()
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
        ClassId::Pkru => {
            let valid = PKEYS.get().and_then(|k| k.clone().ok()).unwrap_or(0);
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            l.push("pkru", 4, RegKind::Control { valid, fixed: PKRU_INIT & !valid, init: PKRU_INIT });
            l
        }
        ClassId::AvxUpper => {
            // xmm<i> (the low 128 bits, plain data) and ymm<i>.hi, which `vzeroupper` zeroes
            // (Intel SDM vol. 2, VZEROUPPER: "bits 255:128 ... are zeroed"; the YMM_Hi128 state
            // component is then in its initial configuration, SDM vol. 1, 13.6) and which must
            // stay zero through the window: the kernel's XSAVE/XRSTOR must keep the init state.
            let reg = |name: String, offset: usize, kind: RegKind| crate::class::RegSpec { name, offset, bytes: 16, kind };
            let mut regs: Vec<_> = (0..16).map(|i| reg(format!("xmm{i}"), 32 * i, RegKind::Data)).collect();
            regs.extend((0..16).map(|i| reg(format!("ymm{i}.hi"), 32 * i + 16, RegKind::Zero)));
            ClassLayout { id: class, words: 64, regs }
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
        Err(format!("the kernel refused AMX permission (arch_prctl(ARCH_REQ_XCOMP_PERM): {}); Linux 5.16 or later is needed", std::io::Error::last_os_error()))
    }
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
        ClassId::AvxUpper => 64,
        ClassId::Pkru => 1,
        _ => usize::MAX,
    }
}

/// The encodings of the system-call instructions the windows use (`syscall`), as they lie in
/// memory: `arch::at_syscall_exit` looks for them just before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x0f, 0x05]];

/// The x86_64 backend.
/// The x86 entry record: the XSAVE image, then its kind word, then 15 GPRs (regs.S: E_XSAVE_BYTES).
const E_XSAVE_BYTES: usize = 16384;
/// The bytes regs.S reserves for `rt_entry_state` (a test reads regs.S to check).
pub(super) const ENTRY_STATE_BYTES: usize = E_XSAVE_BYTES + 8 + 15 * 8;

// SAFETY: `routines` names only this folder's regs.S routines, written to the window ABI of
// window_op.h, with the buffer sizes of `detect`'s layouts (checked by the layout tests below).
unsafe impl super::Backend for Native {
    /// The routines clobber only caller-saved registers and put MXCSR and the x87 control word
    /// back; the clobbers leave them changed (the handler's last act).
    fn routines(&self, class: ClassId) -> Option<Routines> {
        asm_routines(class, layout_words(class))
    }

    /// Detect the classes of this CPU and kernel. Call before [`Backend::run_window`](super::Backend::run_window); calling again is cheap.
    fn detect(&self) -> Vec<ClassDesc> {
        let (_, _, ecx1, _) = cpuid(1, 0);
        let (_, ebx7, ecx7, edx7) = cpuid(7, 0);
        let xcr0 = xcr0();
        let cpu_avx = ecx1 & (1 << 28) != 0;
        let cpu_avx512f = ebx7 & (1 << 16) != 0;
        let cpu_avx512bw = ebx7 & (1 << 30) != 0;
        let cpu_amx = edx7 & (1 << 24) != 0;
        let os = |bits: u64, what: &str| {
            if xcr0 & bits == bits { Ok(()) } else { Err(format!("the kernel has not enabled {what} state (XCR0 = {xcr0:#x})")) }
        };
        let avail = |class: ClassId| -> Result<(), String> {
            match class {
                ClassId::X87 | ClassId::Mxcsr | ClassId::Sse | ClassId::Gpr => Ok(()),
                ClassId::Avx | ClassId::AvxUpper if !cpu_avx => Err("the CPU has no AVX (CPUID.1:ECX[28])".into()),
                ClassId::Avx | ClassId::AvxUpper => os(0b110, "AVX"),
                ClassId::Avx512 | ClassId::Opmask if !cpu_avx512f => Err("the CPU has no AVX-512 (CPUID.(7,0):EBX[16])".into()),
                ClassId::Opmask if !cpu_avx512bw => Err("the CPU has no AVX512BW, needed for 64-bit opmask moves (CPUID.(7,0):EBX[30])".into()),
                ClassId::Avx512 | ClassId::Opmask => os(0xe6, "AVX-512"),
                ClassId::Amx if !cpu_amx => Err("the CPU has no AMX tiles (CPUID.(7,0):EDX[24] AMX-TILE)".into()),
                ClassId::Amx => os(0x6_0000, "AMX").and_then(|_| request_amx()),
                ClassId::Pkru => pkeys(ecx7 & (1 << 4) != 0).map(drop).and_then(|_| os(0x200, "PKRU")),
                _ => unreachable!(),
            }
        };
        // This backend's classes: the ones it has assembly for, in report order.
        let classes = ClassId::ALL.into_iter().filter(|&c| asm_routines(c, 0).is_some());
        // Availability first: the pkru layout needs the keys it allocates.
        let descs: Vec<ClassDesc> = classes.map(|c| (c, avail(c))).map(|(c, available)| ClassDesc { layout: layout(c), available }).collect();
        frame::init_offsets(xcr0);
        super::ENABLED.record(&descs);
        descs
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
    /// (see [`Backend::run_window`](super::Backend::run_window)): the plain-data classes.
    fn fuses_iteration(&self, class: ClassId) -> bool {
        matches!(class, ClassId::Sse | ClassId::Avx | ClassId::Avx512 | ClassId::Opmask)
    }

    fn prstatus_pc(&self) -> usize {
        // struct user_regs_struct (arch/x86/include/asm/user_64.h): rip is its 17th word.
        16 * 8
    }
    fn prstatus_offset(&self, name: &str) -> Option<usize> {
        const ORDER: [&str; 15] = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi"];
        ORDER.iter().position(|r| *r == name).map(|i| 8 * i)
    }
    fn regsets(&self, layout: &crate::class::ClassLayout) -> Vec<super::RegsetMap> {
        let mut out: Vec<super::RegsetMap> = super::default_regsets(self, layout).into_iter().filter(|m| m.note != super::NT_PRFPREG).collect();
        out.extend(frame::regsets(layout));
        out
    }
    /// The entry stub's XSAVE image and integer registers. The initial state after execve:
    /// x87 FCW 0x037f and MXCSR 0x1f80 (System V x86-64 psABI, 3.4.1 "Initial Stack and Register
    /// State": the x87 control word and MXCSR hold their reset values), every x87, xmm, ymm,
    /// zmm and opmask register zero (Linux: execve's flush_thread -> fpu_flush_thread resets the
    /// FPU state to init_fpstate, arch/x86/kernel/fpu/core.c), and every integer register zero
    /// (ELF_PLAT_INIT -> elf_common_init, arch/x86/include/asm/elf.h).
    // NT_PRFPREG is the FXSAVE image (`struct user_i387_struct`, arch/x86/include/asm/user_64.h):
    // xmm0-15 from byte 160, 16 bytes each, low lane first.
    fn fp_regset(&self) -> Option<super::FpRegset> {
        Some(super::FpRegset { class: ClassId::Sse, prefix: "xmm", regs: 16, lanes: 2, base: 160, stride: 16 })
    }
    fn entry_state(&self) -> Option<Vec<EntryLane>> {
        let (st, u64at) = super::entry_record(E_XSAVE_BYTES)?;
        let xsave = u64at(E_XSAVE_BYTES) == 1;
        let bv = if xsave { u64at(512) } else { 3 };
        let xcr = if xsave { xcr0() } else { 3 };
        let on = |c: u32| bv & (1 << c) != 0;
        let mut out = Vec::new();
        let fcw = if on(0) { u16::from_le_bytes([st[0], st[1]]) as u64 } else { 0x037f };
        out.push(EntryLane::new(ClassId::X87, "fcw", 0, fcw, Some(0x037f)));
        for i in 0..8 {
            let (sig, exp) = if on(0) { (u64at(32 + 16 * i), u16::from_le_bytes([st[40 + 16 * i], st[41 + 16 * i]]) as u64) } else { (0, 0) };
            out.push(EntryLane::new(ClassId::X87, format!("st{i}"), 0, sig, Some(0)));
            out.push(EntryLane::new(ClassId::X87, format!("st{i}"), 1, exp, Some(0)));
        }
        out.push(EntryLane::new(ClassId::Mxcsr, "mxcsr", 0, u32::from_le_bytes(st[24..28].try_into().expect("4 bytes")) as u64, Some(0x1f80)));
        for i in 0..16 {
            for l in 0..2 {
                let v = if on(1) { u64at(160 + 16 * i + 8 * l) } else { 0 };
                out.push(EntryLane::new(ClassId::Sse, format!("xmm{i}"), l as u32, v, Some(0)));
            }
        }
        let comp = |c: u32, at: usize| if on(c) { u64at(cpuid(0xd, c).1 as usize + at) } else { 0 };
        if xcr & 4 != 0 {
            for i in 0..16 {
                for l in 0..2 {
                    out.push(EntryLane::new(ClassId::Avx, format!("ymm{i}"), 2 + l as u32, comp(2, 16 * i + 8 * l), Some(0)));
                }
            }
        }
        if xcr & 0xe0 == 0xe0 {
            for i in 0..8 {
                out.push(EntryLane::new(ClassId::Opmask, format!("k{i}"), 0, comp(5, 8 * i), Some(0)));
            }
            for i in 0..16 {
                for l in 0..4 {
                    out.push(EntryLane::new(ClassId::Avx512, format!("zmm{i}"), 4 + l as u32, comp(6, 32 * i + 8 * l), Some(0)));
                }
            }
            for i in 16..32 {
                for l in 0..8 {
                    out.push(EntryLane::new(ClassId::Avx512, format!("zmm{i}"), l as u32, comp(7, 64 * (i - 16) + 8 * l), Some(0)));
                }
            }
        }
        let names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
        for (i, n) in names.iter().enumerate() {
            out.push(EntryLane::new(ClassId::Gpr, *n, 0, u64at(E_XSAVE_BYTES + 8 + 8 * i), Some(0)));
        }
        Some(out)
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
        for c in [ClassId::X87, ClassId::Mxcsr, ClassId::Sse, ClassId::Avx, ClassId::Avx512, ClassId::Opmask, ClassId::Amx, ClassId::Gpr, ClassId::AvxUpper] {
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
