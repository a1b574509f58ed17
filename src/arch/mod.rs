//! The architecture seam: everything that touches registers, signal frames or raw system calls.
//!
//! Every `unsafe` block and every assembly file of regtorture lives below this module; the rest
//! of the crate is `#![deny(unsafe_code)]`. One backend is compiled, chosen by `target_arch`
//! (in the style of rustix): a `Native` unit struct that implements [`Backend`] (its register
//! classes, the assembly that runs a window over each, the clobbering handler's routine) and
//! [`Frames`] (its signal frames: the fault injector's and the fault forensics' view).
//! [`native`] returns it; docs/architecture.md lists what a new backend must provide.
//!
//! [`linux`] holds the operating-system calls every backend shares.

/// `(begin, end)` code addresses of a pair of assembly labels that bound a class's live window
/// in a backend's regs.S.
macro_rules! live {
    ($b:path, $e:path) => {{
        // SAFETY: only the addresses of the labels are taken; nothing is read through them.
        #[allow(unused_unsafe)]
        unsafe {
            ((&raw const $b) as usize, (&raw const $e) as usize)
        }
    }};
}

/// Declare a backend's assembly routines (from its regs.S) and build `asm_routines(class)`, the
/// table [`Backend::routines`] returns: per class, its window routine, clobber routine and the
/// two labels that bound its live window. `asm_classes! { "rt_x86": Sse => sse, ... }` declares,
/// for `ClassId::Sse`, `rt_x86_window_sse`, `rt_x86_clobber_sse` and the labels
/// `rt_x86_live_begin_sse`/`rt_x86_live_end_sse` as `asm::sse::{window, clobber, BEGIN, END}`.
macro_rules! asm_classes {
    ($prefix:literal: $($class:ident => $name:ident),* $(,)?) => {
        /// The regs.S symbols of each class.
        mod asm {
            $(
                pub(super) mod $name {
                    unsafe extern "C" {
                        #[link_name = concat!($prefix, "_window_", stringify!($name))]
                        pub(crate) fn window(e: *const u64, o: *mut u64, op: *mut crate::window::WindowOp, hi: *const crate::window::HiVector);
                        #[link_name = concat!($prefix, "_clobber_", stringify!($name))]
                        pub(crate) fn clobber(v: *const u64);
                        #[link_name = concat!($prefix, "_live_begin_", stringify!($name))]
                        pub(crate) static BEGIN: u8;
                        #[link_name = concat!($prefix, "_live_end_", stringify!($name))]
                        pub(crate) static END: u8;
                    }
                }
            )*
        }

        /// The assembly of `class`, `None` for a class this backend lacks.
        fn asm_routines(class: ClassId, words: usize) -> Option<super::Routines> {
            match class {
                $(ClassId::$class => Some(super::Routines { window: asm::$name::window, clobber: asm::$name::clobber, live: live!(asm::$name::BEGIN, asm::$name::END), words }),)*
                _ => None,
            }
        }
    };
}

/// Which classes the backend's `detect` found usable (one backend is compiled).
pub(crate) static ENABLED: Enabled = Enabled::new();

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod imp;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64/mod.rs"]
mod imp;

#[cfg(target_arch = "powerpc64")]
#[path = "powerpc64/mod.rs"]
mod imp;

#[cfg(target_arch = "riscv64")]
#[path = "riscv64/mod.rs"]
mod imp;

pub mod iowq;
pub mod linux;

use crate::class::{ClassDesc, ClassId, ClassLayout};
use crate::injection::Fault;
use crate::schema::FaultReading;
use crate::window::{HiVector, WindowKind, WindowOp};

/// The entry stub's record (`rt_entry_state` of this backend's regs.S, its `ENTRY_STATE_BYTES`
/// long: a test below checks that against regs.S) and a reader of its little-endian 64-bit
/// words by byte offset; `None` when the word at byte `flag`, which the stub sets, is zero (the
/// process did not start through the stub).
pub(crate) fn entry_record(flag: usize) -> Option<(&'static [u8], impl Fn(usize) -> u64)> {
    unsafe extern "C" {
        static rt_entry_state: u8;
    }
    // SAFETY: regs.S reserves ENTRY_STATE_BYTES bytes from the label (tested); the entry stub
    // wrote them before main and nothing writes them since; they are plain bytes.
    let st = unsafe { std::slice::from_raw_parts(&raw const rt_entry_state, imp::ENTRY_STATE_BYTES) };
    let word = move |o: usize| u64::from_le_bytes(st[o..o + 8].try_into().expect("8 bytes"));
    (word(flag) != 0).then_some((st, word))
}

/// The bytes a regs.S reserves for `rt_entry_state`: the `.zero` after the label, its names
/// resolved from the file's `.set` lines (sums of products of numbers and names).
#[cfg(test)]
pub(crate) fn entry_state_bytes_in(regs_s: &str) -> usize {
    let sets: Vec<(&str, usize)> = regs_s
        .lines()
        .filter_map(|l| {
            let (n, v) = l.trim().strip_prefix(".set")?.split_once(',')?;
            Some((n.trim(), v.trim().parse().ok()?))
        })
        .collect();
    let after = regs_s.split("\nrt_entry_state:").nth(1).expect("an rt_entry_state label");
    let zero = after.lines().map(str::trim).find_map(|l| l.strip_prefix(".zero")).expect("a .zero after the label");
    let value = |f: &str| f.parse().ok().or_else(|| sets.iter().find(|(n, _)| *n == f).map(|(_, v)| *v)).unwrap_or_else(|| panic!("{f} in regs.S"));
    zero.split('+').map(|term| term.split('*').map(|f| value(f.trim())).product::<usize>()).sum()
}

/// This backend's regs.S, which tests read to check the Rust side against it (build.rs names it).
#[cfg(test)]
const REGS_S: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", env!("REGTORTURE_REGS_S")));

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_record_is_as_long_as_regs_s_reserves() {
        assert_eq!(super::entry_state_bytes_in(super::REGS_S), super::imp::ENTRY_STATE_BYTES);
    }
}

/// The backend compiled for this machine.
pub fn native() -> &'static dyn Backend {
    &imp::Native
}

/// The architecture's name in reports ("x86_64", "aarch64", "powerpc64", "riscv64").
pub fn name() -> &'static str {
    native().name()
}

/// The facts of this machine that decide which window kinds can run.
pub fn host() -> crate::window::Host {
    crate::window::Host { arch: name(), has_scv: native().has_scv(), user_mode_emulation: linux::user_mode_emulation() }
}

/// What an architecture backend provides: its register classes, the assembly that runs a
/// window over each, and (through [`Frames`]) its signal frames. A new backend is a folder
/// `src/arch/<arch>/` whose `mod.rs` defines `pub(crate) struct Native` and implements both
/// traits, plus one `cfg` line below; docs/architecture.md lists what each method must do.
///
/// # Safety
///
/// The provided methods ([`Backend::run_window`], [`Backend::clobber`]) call the assembly that
/// [`Backend::routines`] names, trusting it; soundness rests on that, so implementing the trait
/// is `unsafe`. An implementor promises that every [`Routines`] it returns holds routines of its
/// regs.S that follow the window ABI of `src/arch/window_op.h` (restore every callee-saved and
/// control register they change, touch memory only in the buffers they are given and the page
/// of a page-fault window, run only the system calls `linux::check_window_op` allows), and that
/// `words` is the length of the buffers they read and write at the current vector length.
pub unsafe trait Backend: Frames + Sync {
    /// The architecture's name in reports: the target's (`std::env::consts::ARCH`, which is
    /// "powerpc64" for powerpc64le too), as one backend is compiled per `target_arch`.
    fn name(&self) -> &'static str {
        std::env::consts::ARCH
    }
    /// The register classes of this architecture, each with its buffer layout and whether this
    /// CPU and kernel provide it (and if not, why). Records which ones may run.
    fn detect(&self) -> Vec<ClassDesc>;
    /// The assembly of `class`; `None` for a class the backend lacks. Its window routine must
    /// restore every callee-saved register and control register it changes.
    fn routines(&self, class: ClassId) -> Option<Routines>;
    /// Load `class` from `expected` (ORed with `hi` in every lane, for classes that
    /// [`Backend::fuses_iteration`]), run the window `op`, store the class to `observed`.
    /// `touch` is the page a page-fault window writes to. Panics when the class was not
    /// detected as available, a buffer is too short, or `hi` is given for a class that does not
    /// fuse it.
    fn run_window(&self, class: ClassId, expected: &[u64], observed: &mut [u64], op: &mut WindowOp, touch: Option<&mut [u8]>, hi: Option<&HiVector>) {
        let r = self.routines(class).filter(|_| ENABLED.has(class));
        let r = r.unwrap_or_else(|| panic!("class {class} is not available here"));
        let words = r.words;
        assert!(expected.len() >= words && observed.len() >= words, "buffer too short for class {class}");
        assert!(hi.is_none() || self.fuses_iteration(class), "class {class} does not fuse the iteration");
        linux::check_window_op(op, touch);
        let hi = hi.map_or(std::ptr::null(), |h| h as *const HiVector);
        // SAFETY: the class is enabled (the CPU and kernel run its instructions) and both buffers
        // hold at least the words its routine reads and writes (checked); the window's syscall
        // returns to this thread or ends a child at once, and any page it writes is `touch`
        // (check_window_op); `hi` is null or a 64-byte-aligned HiVector read before the window;
        // the routine restores what it changes (the contract of `routines`).
        unsafe { (r.window)(expected.as_ptr(), observed.as_mut_ptr(), op, hi) }
    }
    /// Load `class` with `values` and leave it so (the clobbering signal handler's last act);
    /// nothing for a class that is not enabled or a buffer too short.
    ///
    /// # Safety
    /// Callee-saved and control registers of the class change: only for the last actions of a
    /// signal handler (sigreturn restores them); no floating point may run in between.
    unsafe fn clobber(&self, class: ClassId, values: &[u64]) {
        if let Some(r) = self.routines(class).filter(|r| ENABLED.has(class) && values.len() >= r.words) {
            // SAFETY: class enabled and buffer long enough, checked above; see the contract.
            unsafe { (r.clobber)(values.as_ptr()) }
        }
    }
    /// The code addresses between which the class's registers hold the pattern; (0, 0) for a
    /// class the backend lacks.
    fn live_range(&self, class: ClassId) -> (usize, usize) {
        self.routines(class).map_or((0, 0), |r| r.live)
    }
    /// The encodings of the system-call instructions the windows use, as they lie in memory.
    fn syscall_insns(&self) -> &'static [&'static [u8]];
    /// Whether `/proc/cpuinfo` describes a CPU of this architecture: when it does not, the
    /// process runs under user-mode emulation (qemu-user) on another one.
    fn cpuinfo_is_native(&self, cpuinfo: &str) -> bool;
    /// The bits of each word of `class` that a window of `kind` must keep, where the ABI keeps
    /// less than all of them (syscall clobbers); `None` for all.
    fn preserved(&self, _class: ClassId, _kind: WindowKind) -> Option<Vec<u64>> {
        None
    }
    /// Whether what a window of `kind` may lose of `class` (the bits [`Backend::preserved`]
    /// leaves out) is *scrubbed*: the ABI lets the kernel clobber it, but with values no thread
    /// wrote (riscv64 discards V at every syscall). There a pattern value, of another thread,
    /// process or iteration, is a stale or foreign restore and is reported.
    fn scrubbed(&self, _class: ClassId, _kind: WindowKind) -> bool {
        false
    }
    /// Read the whole state of `class`'s unit with the first instruction of this thread that
    /// touches it, into a buffer in the class's layout. Called first thing in a fresh thread,
    /// whose unit the kernel has off until the first-use trap constructs it; the rule for what
    /// that gives is the backend's ([`Backend::first_use_rule`]). `None` where the backend has
    /// no such unit or it is unavailable.
    fn first_use(&self, _class: ClassId) -> Option<Vec<u64>> {
        None
    }
    /// The first-use reader's positive control: load `class` with `values` (so the unit is on
    /// and holds them), then read it with the same routine as [`Backend::first_use`]. The
    /// kernel offers no way to plant a value for the first-use trap itself (see the backend).
    fn first_use_control(&self, _class: ClassId, _values: &[u64]) -> Option<Vec<u64>> {
        None
    }
    /// For a class that [`Backend::first_use`] reads: where the first-use trap's state comes
    /// from, cited (every word must be zero); `None` for the other classes.
    fn first_use_rule(&self, _class: ClassId) -> Option<&'static str> {
        None
    }
    /// Whether the class's transition happens at a thread's first use of a unit, in a trap
    /// the kernel takes only once per thread (aarch64 `sve-za`: the first SME instruction):
    /// then checking threads are renewed, as for a class with a [`Backend::first_use_rule`].
    fn first_use_in_window(&self, _class: ClassId) -> bool {
        false
    }
    /// The two words of state a signal handler must find zero at its entry, where the backend
    /// has such a rule (aarch64 with SME: SVCR and TPIDR2, sme.rst "Signal handling": "Signal
    /// handlers are invoked with PSTATE.SM=0, PSTATE.ZA=0, and TPIDR2_EL0=0"). Called first in
    /// the clobbering handler: async-signal-safe, no allocation.
    fn handler_entry_state(&self) -> Option<[u64; 2]> {
        None
    }
    /// More places the execve check's positive control may plant a value at the exec stop,
    /// beside the FP regset and the integer registers. aarch64 with SME: TPIDR2 through
    /// `NT_ARM_TLS`.
    fn exec_regset_sites(&self) -> Vec<RegsetSites> {
        Vec::new()
    }
    /// What a length of `bytes` is for a register of `class` on this machine, when it has a
    /// name (aarch64: the SVE vector length for a streaming register cut to it): the reading of
    /// a register that held only that many bytes.
    fn length_named(&self, _class: ClassId, _bytes: usize) -> Option<String> {
        None
    }
    /// How many transitions of its unit's state one window of a transition class makes, given
    /// the iterations of its two spin loops (`regtorture bench`'s transition rate): one for
    /// most; aarch64 `sve-ssve` flips PSTATE.SM every 256 spin iterations, and enters and
    /// leaves streaming mode around the window.
    fn transitions_in_window(&self, _class: ClassId, _spin: u64, _spin_after: u64) -> u64 {
        1
    }
    /// Whether the class's assembly ORs the iteration vector in as it loads (no fill pass).
    fn fuses_iteration(&self, _class: ClassId) -> bool {
        false
    }
    /// Set the vector length (aarch64 SVE); returns the length granted.
    fn set_vector_length(&self, _bytes: usize) -> Result<usize, String> {
        Err(format!("--sve-vl needs an aarch64 CPU with SVE; this is {}", self.name()))
    }
    /// Set the streaming vector length (aarch64 SME); returns the length granted.
    fn set_streaming_vector_length(&self, _bytes: usize) -> Result<usize, String> {
        Err(format!("--sme-vl needs an aarch64 CPU with SME; this is {}", self.name()))
    }
    /// Whether the `scv` system-call instruction can be used (powerpc64).
    fn has_scv(&self) -> bool {
        false
    }
    /// The registers as they were at the process's entry point, recorded by the backend's entry
    /// stub (`rt_<arch>_entry` in regs.S) before the C runtime ran, each with the value the ABI
    /// or Linux gives it after execve where there is one; `None` when the stub did not run
    /// (a test harness, or a binary linked without it).
    fn entry_state(&self) -> Option<Vec<EntryLane>> {
        None
    }
    /// Where the lanes of one class the entry stub records lie in ptrace's `NT_PRFPREG`
    /// register set, for the execve check's positive control (which plants a value there at
    /// the exec stop); `None` where the backend has no entry stub.
    fn fp_regset(&self) -> Option<FpRegset> {
        None
    }
    /// The byte offset of the program counter in ptrace's `NT_PRSTATUS` image (the kernel's
    /// `user_regs_struct` or `pt_regs` as ptrace shows it).
    fn prstatus_pc(&self) -> usize;
    /// What `NT_PRSTATUS` shows at byte `offset` at a syscall-exit stop in place of the
    /// thread's register, by the kernel's ABI (arm64 puts 1 in x7 there, to tell the tracer an
    /// exit stop from an entry stop, and restores x7 after the stop); `None` for a lane that
    /// shows the register.
    fn syscall_exit_view(&self, _offset: usize) -> Option<u64> {
        None
    }
    /// The byte offset in `NT_PRSTATUS` of the integer register named `name` (the gpr class's
    /// names), where the regset shows it.
    fn prstatus_offset(&self, _name: &str) -> Option<usize> {
        None
    }
    /// The integer registers an assembly execve loads ([`Backend::execve_with_registers`]), by
    /// name, the index being the register's number; the empty name marks one it leaves alone
    /// (the stack pointer, the call's number and arguments). Empty where execve goes through
    /// libc.
    fn execve_registers(&self) -> &'static [&'static str] {
        &[]
    }
    /// Integer registers of the gpr class that the entry stub records and that the process
    /// entry reads nothing from (callee-saved ones: `_start` takes the stack pointer and the
    /// atexit pointer, never these): the execve check's gpr control plants its value in one at
    /// the exec stop, through `NT_PRSTATUS`. Empty where the entry stub records no integer
    /// register (x86_64).
    fn exec_plant_gprs(&self) -> &'static [&'static str] {
        &[]
    }
    /// Call execve(`path`, `argv`, `envp`) from assembly with every register that
    /// [`Backend::execve_registers`] names loaded from `regs` (indexed alike), so that no
    /// compiled code stands between the values and the call. Returns only where the backend has
    /// no such routine; a failed execve exits the process with status 127.
    ///
    /// # Safety
    /// `path`, `argv` and `envp` must be valid for execve, `regs` as long as the register list;
    /// the caller must be a single-threaded child that has nothing left to do but this (its
    /// thread pointer and global pointer are overwritten).
    unsafe fn execve_with_registers(&self, _regs: &[u64], _path: *const libc::c_char, _argv: *const *const libc::c_char, _envp: *const *const libc::c_char) {}
    /// Every ptrace register set that shows lanes of `layout`'s class, and where each lane
    /// lies in it. The default: `NT_PRSTATUS` for the gpr class ([`Backend::prstatus_offset`])
    /// and `NT_PRFPREG` for the class of [`Backend::fp_regset`]; a backend adds its own
    /// (x86_64's `NT_X86_XSTATE`).
    fn regsets(&self, layout: &ClassLayout) -> Vec<RegsetMap> {
        default_regsets(self, layout)
    }
}

/// The ptrace register sets every backend has: `NT_PRSTATUS` for the gpr class, `NT_PRFPREG`
/// for [`Backend::fp_regset`]'s class.
pub(crate) fn default_regsets<B: Backend + ?Sized>(b: &B, layout: &ClassLayout) -> Vec<RegsetMap> {
    let mut out = Vec::new();
    if layout.id == ClassId::Gpr {
        let words =
            layout.data_lanes().filter_map(|(w, r, l)| (l == 0).then(|| b.prstatus_offset(&layout.regs[r].name).map(|o| (w, o, 8))).flatten()).collect();
        out.push(RegsetMap::new(NT_PRSTATUS, "NT_PRSTATUS", words).partial());
    }
    if let Some(site) = b.fp_regset().filter(|s| s.class == layout.id) {
        let words = layout
            .data_lanes()
            .filter_map(|(w, r, l)| {
                let n: usize = layout.regs[r].name.strip_prefix(site.prefix)?.parse().ok()?;
                (n < site.regs && l < site.lanes).then(|| (w, site.offset(n, l), 8))
            })
            .collect();
        out.push(RegsetMap::new(NT_PRFPREG, "NT_PRFPREG", words).partial());
    }
    out.retain(|m| !m.words.is_empty());
    out
}

/// `NT_PRSTATUS` (elf.h): the general registers of `PTRACE_GETREGSET`.
pub const NT_PRSTATUS: u32 = 1;
/// `NT_PRFPREG` (elf.h): the floating-point registers.
pub const NT_PRFPREG: u32 = 2;

/// Where the lanes of one class lie in one ptrace register set.
#[derive(Clone, Debug)]
pub struct RegsetMap {
    /// The note type `PTRACE_GETREGSET` takes (`NT_PRFPREG`, `NT_X86_XSTATE`, ...).
    pub note: u32,
    /// Its name in reports.
    pub name: &'static str,
    /// (word of the class buffer, byte offset in the regset, bytes: 8, or fewer for a narrow
    /// field, whose low bytes the word's are), for every lane the regset shows.
    pub words: Vec<(usize, usize, usize)>,
    /// The regset is laid out this way only when the 64-bit word at this byte offset, masked,
    /// holds this value (arm64's `NT_ARM_SVE`, whose header names its vector length and its
    /// format, FPSIMD or SVE): (offset, mask, value). `None`: always.
    pub when: Option<(usize, u64, u64)>,
    /// The ABI lets a tracer write a prefix of the regset, the kernel keeping the rest
    /// (`user_regset_copyin` into a copy of the current state); x86's FXSAVE and XSAVE images
    /// and arm64's `NT_ARM_SVE` take only whole writes.
    pub partial: bool,
}

impl RegsetMap {
    /// A map of `note` that takes only whole writes and has one layout.
    pub fn new(note: u32, name: &'static str, words: Vec<(usize, usize, usize)>) -> RegsetMap {
        RegsetMap { note, name, words, when: None, partial: false }
    }

    /// The same, taking writes of a prefix.
    pub fn partial(self) -> RegsetMap {
        RegsetMap { partial: true, ..self }
    }

    /// The same, laid out so only when `bytes[offset..offset + 8] & mask == value`.
    pub fn when(self, offset: usize, mask: u64, value: u64) -> RegsetMap {
        RegsetMap { when: Some((offset, mask, value)), ..self }
    }

    /// Whether `bytes`, as read from the regset, are laid out as this map says (its header
    /// condition holds, and it is long enough for every lane).
    pub fn describes(&self, bytes: &[u8]) -> bool {
        let header =
            self.when.is_none_or(|(o, mask, value)| bytes.get(o..o + 8).is_some_and(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) & mask == value));
        header && self.words.iter().all(|&(_, o, width)| o + width <= bytes.len())
    }

    /// The byte offset and width of class-buffer word `w`, when the regset shows it.
    pub fn site(&self, w: usize) -> Option<(usize, usize)> {
        self.words.iter().find(|x| x.0 == w).map(|x| (x.1, x.2))
    }
}

/// Whether `pc` is a system-call instruction of one of the window routines, or lies just past
/// one: a thread stopped there is inside that call, returning from it, or about to restart it
/// (arm64 and riscv64 rewind the PC to the instruction before they stop for a signal; x86
/// after).
pub fn at_syscall_insn(pc: usize) -> bool {
    after_syscall_insn(pc)
        || native().syscall_insns().iter().any(|insn| {
            let inside = crate::class::ClassId::ALL.iter().any(|&c| {
                let (b, e) = native().live_range(c);
                b <= pc && pc + insn.len() <= e
            });
            // SAFETY: the instruction's bytes lie inside one of the window routines (checked),
            // mapped readable as this binary's text.
            inside && unsafe { std::slice::from_raw_parts(pc as *const u8, insn.len()) } == *insn
        })
}

/// Whether `pc` lies just past a system-call instruction of one of the window routines (a
/// thread stopped there is inside, or returning from, that system call).
pub fn after_syscall_insn(pc: usize) -> bool {
    native().syscall_insns().iter().any(|insn| {
        let inside = crate::class::ClassId::ALL.iter().any(|&c| {
            let (b, e) = native().live_range(c);
            b + insn.len() <= pc && pc < e
        });
        // SAFETY: the PC lies inside one of the window routines (checked), so the bytes before
        // it are code of the same routine, mapped readable as this binary's text.
        inside && unsafe { std::slice::from_raw_parts((pc - insn.len()) as *const u8, insn.len()) } == *insn
    })
}

/// The lanes of one class in the `NT_PRFPREG` image of `PTRACE_GETREGSET` (the kernel's
/// `user_regset` for `REGSET_FP`): lane `l` of register `r` is the little-endian 64-bit word at
/// byte `base + r * stride + 8 * l`.
#[derive(Clone, Copy, Debug)]
pub struct FpRegset {
    pub class: ClassId,
    /// The registers' names as the entry stub's lanes give them: `prefix` and the number.
    pub prefix: &'static str,
    pub regs: usize,
    pub lanes: usize,
    pub base: usize,
    pub stride: usize,
}

impl FpRegset {
    /// The byte offset of lane `lane` of register `reg`.
    pub fn offset(&self, reg: usize, lane: usize) -> usize {
        self.base + reg * self.stride + 8 * lane
    }
}

/// Lanes of a class in a ptrace register set, where the execve check's control plants.
pub struct RegsetSites {
    pub class: ClassId,
    /// The regset's note type (`NT_ARM_TLS`).
    pub note: u32,
    /// (register as the probe names it, lane, byte offset in the set)
    pub lanes: Vec<(&'static str, u32, usize)>,
}

/// One 64-bit lane of a register as the process found it at its entry point.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EntryLane {
    pub class: ClassId,
    pub register: String,
    pub lane: u32,
    pub value: u64,
    /// The value after execve (the ABI's or Linux's initial state, cited where it is set);
    /// `None` where nothing is promised (integer registers the kernel sets from the exec).
    pub init: Option<u64>,
}

impl EntryLane {
    pub(crate) fn new(class: ClassId, register: impl Into<String>, lane: u32, value: u64, init: Option<u64>) -> EntryLane {
        EntryLane { class, register: register.into(), lane, value, init }
    }
}

/// A class's window routine: (expected, observed, op, hi) — load, run the window, store.
pub type WindowFn = unsafe extern "C" fn(*const u64, *mut u64, *mut WindowOp, *const HiVector);
/// A class's clobber routine: load the class from the buffer and leave it so.
pub type ClobberFn = unsafe extern "C" fn(*const u64);

/// The assembly of one class, from a backend's regs.S.
/// Its fields are crate-private: outside the crate only [`Backend::routines`], under that
/// trait's safety promise, hands one out.
#[derive(Clone, Copy)]
pub struct Routines {
    pub(crate) window: WindowFn,
    pub(crate) clobber: ClobberFn,
    /// The labels that bound the live window (see the `live!` macro).
    pub(crate) live: (usize, usize),
    /// The words of the class's buffers (at the current vector length).
    pub(crate) words: usize,
}

/// How a backend reads and rewrites signal frames: the fault injector of the positive controls
/// and the fault forensics. Every method that takes `uc` needs the `ucontext_t` pointer passed
/// to an SA_SIGINFO handler that is running now.
pub trait Frames {
    /// The interrupted instruction address.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn frame_pc(&self, uc: *mut libc::c_void) -> usize;
    /// XOR the fault into the saved image of one lane; false when the frame has no such image.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn inject(&self, uc: *mut libc::c_void, f: &Fault) -> bool;
    /// The fault-forensics control: make sigreturn resume at a wrong address.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn misreturn(&self, uc: *mut libc::c_void) -> bool;
    /// Copy the frame's registers into `out` (named by [`Frames::fault_layout`]); returns
    /// how many.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn fault_regs(&self, uc: *mut libc::c_void, out: &mut [u64]) -> usize;
    /// The names of the registers [`Frames::fault_regs`] copies, and the index of the PC.
    fn fault_layout(&self) -> (&'static [&'static str], usize);
    /// Whether [`Frames::replay_known_bug`] reproduces a known bug of this architecture.
    fn replays_known_bug(&self) -> bool {
        false
    }
    /// Rewrite the frame the way a known kernel bug leaves the registers.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn replay_known_bug(&self, _uc: *mut libc::c_void, _class: ClassId) -> bool {
        false
    }
    /// Finish a signal delivery that a known bug left undone, so the thread goes on; returns
    /// whether it did, and what it restored.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn recover(&self, _uc: *mut libc::c_void) -> (bool, Option<(u64, u64, u64)>) {
        (false, None)
    }
    /// What a fault's registers say; `sym` finds a vDSO symbol's address.
    fn fault_readings(&self, _regs: &[u64], _sym: &dyn Fn(&str) -> Option<u64>) -> Vec<FaultReading> {
        Vec::new()
    }
    /// The (start, end) of the vDSO signal trampoline in the image `img` mapped at `base`.
    fn signal_trampoline(&self, _img: &[u8], _base: usize) -> (usize, usize) {
        (0, 0)
    }
    /// Whether the fault-forensics control needs the trampoline's start.
    fn needs_trampoline_start(&self) -> bool {
        false
    }
    /// The name of the system call a frame's trap number stands for.
    fn syscall_trap_name(&self, _trap: u64) -> Option<&'static str> {
        None
    }
}

/// Whether the interrupted context of a signal frame is the return from a system call issued
/// by one of the windows (the instruction before the PC is one of the backend's
/// `SYSCALL_INSNS`): the signal was delivered on that syscall's exit.
///
/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
pub(crate) unsafe fn at_syscall_exit(uc: *mut libc::c_void) -> bool {
    // SAFETY: the caller passes the kernel's ucontext_t.
    after_syscall_insn(unsafe { native().frame_pc(uc) })
}

/// The address just past the first system-call instruction of `class`'s live window (where a
/// window's syscall has returned), or `None` when there is none.
pub(crate) fn after_first_syscall(class: crate::class::ClassId) -> Option<usize> {
    let (b, e) = native().live_range(class);
    // Instructions are at least 2-byte aligned on every architecture here (riscv64's
    // compressed ones); a match at a wrong offset would only begin inside an instruction.
    (b..e).step_by(2).find_map(|pc| {
        native().syscall_insns().iter().find_map(|insn| {
            // SAFETY: [b, e) is the code of one window routine (its live labels), mapped and
            // readable as the text of this binary; the slice ends inside it.
            let here = pc + insn.len() <= e && unsafe { std::slice::from_raw_parts(pc as *const u8, insn.len()) } == *insn;
            here.then_some(pc + insn.len())
        })
    })
}

/// Which classes `detect` found usable: a class's assembly runs only then (an instruction the
/// CPU or kernel has not enabled would raise SIGILL). One per backend.
pub struct Enabled(std::sync::atomic::AtomicU32);

impl Enabled {
    pub(crate) const fn new() -> Enabled {
        Enabled(std::sync::atomic::AtomicU32::new(0))
    }

    /// Remember which of `descs` are available.
    pub(crate) fn record(&self, descs: &[crate::class::ClassDesc]) {
        let mask = descs.iter().filter(|d| d.available.is_ok()).fold(0, |m, d| m | 1 << d.id().code());
        self.0.store(mask, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn has(&self, class: crate::class::ClassId) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) & (1 << class.code()) != 0
    }
}
