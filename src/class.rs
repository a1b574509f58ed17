//! Register classes: what a class is called, and how its registers lie in a check buffer.
//!
//! The architecture backend describes each class it knows as a [`ClassLayout`]: a list of
//! registers, each at a byte offset of the buffer that the class's assembly loads from and stores
//! to. Nothing outside `arch/` knows more of a register than its name, its size and its
//! [`RegKind`].

use serde::{Deserialize, Serialize};

/// Every register class regtorture knows, on any architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassId {
    /// x86 x87 FPU: st0-st7 and the control word.
    X87,
    /// x86 SSE control and status register.
    Mxcsr,
    /// x86 SSE: xmm0-xmm15.
    Sse,
    /// x86 AVX: ymm0-ymm15.
    Avx,
    /// x86 AVX-512: zmm0-zmm31.
    Avx512,
    /// x86 AVX-512 opmask registers k0-k7.
    Opmask,
    /// x86 AMX tiles tmm0-tmm7 and the tile configuration.
    Amx,
    /// aarch64 FP/SIMD: v0-v31, FPSR, FPCR.
    Neon,
    /// aarch64 SVE: z0-z31, p0-p15, FFR.
    Sve,
    /// Floating point: powerpc64 f0-f31 and FPSCR; riscv64 f0-f31 and fcsr.
    Fpr,
    /// powerpc64 AltiVec: v0-v31 and VSCR.
    Vmx,
    /// powerpc64 VSX: vs0-vs63.
    Vsx,
    /// The integer and branch registers user code owns (every architecture): general-purpose
    /// registers, and the flags, condition and link/count registers.
    Gpr,
    /// A transition (aarch64): v0-v31, FPSR and FPCR written with NEON, the SVE state dropped by
    /// the window, then z0-z31, p0-p15 and FFR read with SVE as the first SVE instructions.
    #[serde(rename = "neon-sve")]
    NeonSve,
    /// A transition (powerpc64): f0-f31 written with FP and v0-v31 with VMX, the units given up
    /// in the window, then vs0-vs63 read with VSX as the first VSX instructions.
    #[serde(rename = "fp-vmx-vsx")]
    FpVmxVsx,
    /// A transition (x86_64): ymm0-ymm15 written with AVX, `vzeroupper`, then ymm0-ymm15 read
    /// after the window: the upper halves must be zero.
    #[serde(rename = "avx-upper")]
    AvxUpper,
    /// riscv64 V: v0-v31 at the run-time VLEN, vtype, vl, vstart and vcsr. (Its pattern code
    /// is X87's, see [`ClassId::code`].)
    Vector,
    /// x86 memory protection keys: PKRU, whose bits of the keys the run allocated and never
    /// uses for memory vary. (Its pattern code is Neon's, see [`ClassId::code`].)
    Pkru,
    /// aarch64 SME streaming SVE: z0-z31, p0-p15 (and FFR where FA64 allows it) in streaming
    /// mode, at the streaming vector length (SVL).
    Ssve,
    /// aarch64 SME: the ZA array, SVL rows of SVL bytes, with PSTATE.ZA on.
    Za,
    /// aarch64 SME: TPIDR2_EL0, the lazy-save scheme's pointer.
    Tpidr2,
    /// aarch64 SME2: the 512-bit ZT0 register (with PSTATE.ZA on).
    Zt0,
    /// aarch64 FP8: the floating-point mode register FPMR.
    Fpmr,
    /// A transition (aarch64): z0-z31, p0-p15 and FFR written with SVE, the window, then
    /// `SMSTART ZA` (in a fresh thread its first SME instruction, which traps to the kernel's
    /// `do_sme_acc`) and the same registers read with SVE: turning ZA on leaves them alone.
    /// (Its pattern code is X87's, see [`ClassId::code`].)
    #[serde(rename = "sve-za")]
    SveZa,
    /// aarch64 SME: the ZA array as `za`, with streaming mode on in the window as well (a frame
    /// then has a streaming `sve_context` and a `za_context`; a syscall's SMSTOP SM must leave
    /// ZA alone). (Its pattern code is Mxcsr's, see [`ClassId::code`].)
    #[serde(rename = "za-sm")]
    ZaSm,
    /// A transition (aarch64): ZA loaded and z0-z31, p0-p15 and FFR given stale values with SVE,
    /// then streaming mode entered and flipped every 256 spin iterations of the window; after it ZA
    /// must be intact and z, p and FFR zero (each change of PSTATE.SM zeroes them). (Its pattern
    /// code is Vsx's, see [`ClassId::code`].)
    #[serde(rename = "sve-ssve")]
    SveSsve,
}

impl ClassId {
    /// All classes, in report order.
    pub const ALL: [ClassId; 26] = [
        ClassId::X87,
        ClassId::Mxcsr,
        ClassId::Sse,
        ClassId::Avx,
        ClassId::Avx512,
        ClassId::Opmask,
        ClassId::Amx,
        ClassId::Neon,
        ClassId::Sve,
        ClassId::Fpr,
        ClassId::Vmx,
        ClassId::Vsx,
        ClassId::Gpr,
        ClassId::NeonSve,
        ClassId::FpVmxVsx,
        ClassId::AvxUpper,
        ClassId::Vector,
        ClassId::Pkru,
        ClassId::Ssve,
        ClassId::Za,
        ClassId::Tpidr2,
        ClassId::Zt0,
        ClassId::Fpmr,
        ClassId::SveZa,
        ClassId::ZaSm,
        ClassId::SveSsve,
    ];

    /// The name used on the command line and in every report.
    pub fn name(self) -> &'static str {
        match self {
            ClassId::X87 => "x87",
            ClassId::Mxcsr => "mxcsr",
            ClassId::Sse => "sse",
            ClassId::Avx => "avx",
            ClassId::Avx512 => "avx512",
            ClassId::Opmask => "opmask",
            ClassId::Amx => "amx",
            ClassId::Neon => "neon",
            ClassId::Sve => "sve",
            ClassId::Fpr => "fpr",
            ClassId::Vmx => "vmx",
            ClassId::Vsx => "vsx",
            ClassId::Gpr => "gpr",
            ClassId::NeonSve => "neon-sve",
            ClassId::FpVmxVsx => "fp-vmx-vsx",
            ClassId::AvxUpper => "avx-upper",
            ClassId::Vector => "vector",
            ClassId::Pkru => "pkru",
            ClassId::Ssve => "ssve",
            ClassId::Za => "za",
            ClassId::Tpidr2 => "tpidr2",
            ClassId::Zt0 => "zt0",
            ClassId::Fpmr => "fpmr",
            ClassId::SveZa => "sve-za",
            ClassId::ZaSm => "za-sm",
            ClassId::SveSsve => "sve-ssve",
        }
    }

    /// A small number that identifies the class inside a pattern value (4 bits). A pattern
    /// only ever names classes of the architecture it runs on, so 16 codes serve 26 classes:
    /// riscv64's `vector` and aarch64's `sve-za` share x86's `x87` code, aarch64's `za-sm`
    /// x86's `mxcsr`, aarch64's `sve-ssve` powerpc64's `vsx`, x86's `pkru` aarch64's `neon`,
    /// and aarch64's SME classes (`ssve` to `fpmr`) x86's `sse` to `amx` (see
    /// [`ClassId::from_code`]).
    pub fn code(self) -> u32 {
        match self {
            ClassId::Pkru => ClassId::Neon.code(),
            ClassId::SveZa => ClassId::X87.code(),
            ClassId::ZaSm => ClassId::Mxcsr.code(),
            ClassId::SveSsve => ClassId::Vsx.code(),
            c => c as u32 & 15,
        }
    }

    /// The architectures that have the class (`std::env::consts::ARCH` names).
    pub fn archs(self) -> &'static [&'static str] {
        match self {
            ClassId::X87
            | ClassId::Mxcsr
            | ClassId::Sse
            | ClassId::Avx
            | ClassId::Avx512
            | ClassId::Opmask
            | ClassId::Amx
            | ClassId::AvxUpper
            | ClassId::Pkru => &["x86_64"],
            ClassId::Neon
            | ClassId::Sve
            | ClassId::NeonSve
            | ClassId::Ssve
            | ClassId::Za
            | ClassId::Tpidr2
            | ClassId::Zt0
            | ClassId::Fpmr
            | ClassId::SveZa
            | ClassId::ZaSm
            | ClassId::SveSsve => &["aarch64"],
            ClassId::Vmx | ClassId::Vsx | ClassId::FpVmxVsx => &["powerpc64"],
            ClassId::Fpr => &["powerpc64", "riscv64"],
            ClassId::Vector => &["riscv64"],
            ClassId::Gpr => &["x86_64", "aarch64", "powerpc64", "riscv64"],
        }
    }

    /// Whether the class is a transition: written through one view of a unit, read through
    /// another after the window made the kernel drop or give up the unit's state.
    pub fn is_transition(self) -> bool {
        matches!(self, ClassId::NeonSve | ClassId::FpVmxVsx | ClassId::AvxUpper | ClassId::SveZa | ClassId::SveSsve)
    }

    /// Whether the window itself makes the class's expected-zero state zero again after any
    /// signal (`sve-ssve`: the next change of PSTATE.SM zeroes z, p and FFR), so that a fault
    /// planted there never reaches the check: the positive controls plant in its data instead.
    pub fn zero_state_remade_in_window(self) -> bool {
        self == ClassId::SveSsve
    }

    /// Inverse of [`ClassId::code`]: of the classes with that code, the one this
    /// architecture has (else the first).
    pub fn from_code(code: u32) -> Option<ClassId> {
        let mut with = ClassId::ALL.into_iter().filter(|c| c.code() == code);
        let first = with.next()?;
        Some(std::iter::once(first).chain(with).find(|c| c.archs().contains(&std::env::consts::ARCH)).unwrap_or(first))
    }

    /// Parse a command-line name.
    pub fn from_name(name: &str) -> Option<ClassId> {
        ClassId::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for ClassId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of value a register holds, which decides how its pattern is made and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegKind {
    /// Plain data: every 64-bit lane carries a full pattern word.
    Data,
    /// An x87 80-bit register: lane 0 is the 64-bit significand (its integer bit kept set so the
    /// value is a normal number), lane 1 the 16-bit sign and exponent.
    X87,
    /// A control or status register: only `valid` bits vary, `fixed` bits are always set, and
    /// `init` is its value after exec (used to recognise a reset register).
    Control { valid: u64, fixed: u64, init: u64 },
    /// A configuration that never changes (the AMX tile configuration): its words, checked as is.
    Config(Vec<u64>),
    /// State the ABI defines as zero at the end of a transition window (the SVE-only bits of z
    /// after a syscall, the upper halves of ymm after `vzeroupper`): expected zero, and any
    /// value there is read back through the pattern (whose it is). Faults may be injected.
    Zero,
}

impl RegKind {
    /// A control or status register whose `valid` bits vary, none fixed, zero after exec.
    pub const fn control(valid: u64) -> RegKind {
        RegKind::Control { valid, fixed: 0, init: 0 }
    }
}

/// One register of a class.
#[derive(Clone, Debug)]
pub struct RegSpec {
    /// Its architectural name: `zmm17`, `st3`, `fpscr`.
    pub name: String,
    /// Byte offset of the register in the class buffer (a multiple of 8).
    pub offset: usize,
    /// How many bytes of it the assembly loads and stores.
    pub bytes: usize,
    /// What it holds.
    pub kind: RegKind,
}

impl RegSpec {
    /// Number of 64-bit lanes the register spans (the last may be partial).
    pub fn lanes(&self) -> usize {
        self.bytes.div_ceil(8)
    }
}

/// How the registers of one class lie in its check buffer.
#[derive(Clone, Debug)]
pub struct ClassLayout {
    pub id: ClassId,
    /// Length of the buffer in 64-bit words.
    pub words: usize,
    pub regs: Vec<RegSpec>,
}

impl ClassLayout {
    /// A layout of `count` data registers named `prefix0..`, each `bytes` long, back to back.
    pub fn data_regs(id: ClassId, prefix: &str, count: usize, bytes: usize) -> ClassLayout {
        let regs = (0..count).map(|i| RegSpec { name: format!("{prefix}{i}"), offset: i * bytes, bytes, kind: RegKind::Data }).collect();
        ClassLayout { id, words: count * bytes / 8, regs }
    }

    /// Append a register after the ones already there, growing the buffer.
    pub fn push(&mut self, name: &str, bytes: usize, kind: RegKind) {
        let offset = self.words * 8;
        self.regs.push(RegSpec { name: name.to_string(), offset, bytes, kind });
        self.words += bytes.div_ceil(8);
    }

    /// The register and lane that a buffer word belongs to, if any.
    pub fn locate(&self, word: usize) -> Option<(usize, usize)> {
        let byte = word * 8;
        self.regs.iter().position(|r| byte >= r.offset && byte < r.offset + r.lanes() * 8).map(|i| (i, (byte - self.regs[i].offset) / 8))
    }

    /// (word of the buffer, register, lane) of every full 64-bit lane of a plain-data register:
    /// the lanes that carry a whole pattern word (faults, writes and rewrites go there).
    pub fn data_lanes(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.regs.iter().enumerate().filter(|(_, r)| r.kind == RegKind::Data).flat_map(|(i, r)| (0..r.bytes / 8).map(move |l| (r.offset / 8 + l, i, l)))
    }

    /// Total number of 64-bit lanes over all registers.
    pub fn lane_count(&self) -> usize {
        self.regs.iter().map(RegSpec::lanes).sum()
    }
}

/// A class as detected on this machine.
#[derive(Clone, Debug)]
pub struct ClassDesc {
    pub layout: ClassLayout,
    /// `Ok` when the CPU has it and the kernel has enabled it for this process, else why not.
    pub available: Result<(), String>,
}

impl ClassDesc {
    pub fn id(&self) -> ClassId {
        self.layout.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in ClassId::ALL {
            assert_eq!(ClassId::from_name(c.name()), Some(c));
            assert!(c.code() < 16, "a pattern has 4 bits for the class");
            if c.archs().contains(&std::env::consts::ARCH) {
                assert_eq!(ClassId::from_code(c.code()), Some(c), "{c}");
            }
        }
        assert_eq!(ClassId::from_name("avx1024"), None);
    }

    /// A pattern names a class by its 4-bit code: the classes of one architecture must have
    /// codes of their own.
    #[test]
    fn each_architectures_classes_have_distinct_codes() {
        for arch in ["x86_64", "aarch64", "powerpc64", "riscv64"] {
            let codes: Vec<u32> = ClassId::ALL.iter().filter(|c| c.archs().contains(&arch)).map(|c| c.code()).collect();
            let mut unique = codes.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), codes.len(), "{arch}: {codes:?}");
        }
    }

    #[test]
    fn layout_locates_words() {
        let mut l = ClassLayout::data_regs(ClassId::Sse, "xmm", 16, 16);
        l.push("mxcsr", 4, RegKind::control(1));
        assert_eq!(l.words, 33);
        assert_eq!(l.locate(0), Some((0, 0)));
        assert_eq!(l.locate(3), Some((1, 1)));
        assert_eq!(l.locate(32), Some((16, 0)));
        assert_eq!(l.locate(33), None);
        assert_eq!(l.lane_count(), 33);
    }
}
