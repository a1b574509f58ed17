//! Minimal reproducers as standalone C: a setup of register classes, window kinds, triggers
//! and threads becomes one C file that a kernel developer builds with `gcc -O2 -static -pthread`
//! and attaches to a bug report. It fills the registers with a pattern, runs the window with
//! the triggers on, reads the registers back in the same assembly block and compares; a wrong
//! register or a fault in a checking thread ends it with exit code 1.
//!
//! The C is data: the fragments `head.c`, `<arch>.c` and `tail.c` next to this file, with a
//! block of `#define`s and the class and window tables generated from the [`Setup`] between
//! them. Only what the C backend can express is accepted ([`supported`]); anything else is an
//! [`Error::CannotExpress`] that says what it can.
//!
//! Used by `regtorture export-c` and, for the setup it narrowed down, `regtorture triage
//! --emit-c`.

use std::fmt::Write as _;

use crate::class::ClassId;
use crate::cli::GuestArch;
use crate::error::{Error, Result};
use crate::window::WindowKind;

const HEAD: &str = include_str!("head.c");
const TAIL: &str = include_str!("tail.c");
const PPC64LE: &str = include_str!("ppc64le.c");
const X86_64: &str = include_str!("x86_64.c");

/// The triggers the C backend has, in the order of `regtorture list`.
pub const TRIGGERS: [&str; 3] = ["io_uring", "tgkill", "timer"];

/// Loop iterations a window spins with the registers live (regtorture run's `--spin` default).
pub const DEFAULT_SPIN: u64 = 20_000;

/// What a reproducer runs: the minimal setup of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The target; it need not be the host's architecture.
    pub arch: GuestArch,
    pub classes: Vec<ClassId>,
    pub windows: Vec<WindowKind>,
    /// Trigger names as `regtorture list` prints them (`io_uring`, `tgkill`, `timer`); empty for
    /// none.
    pub triggers: Vec<String>,
    /// Checking threads; 0 for one per CPU the program may run on.
    pub threads: usize,
    /// How long the program runs before it declares the kernel clean.
    pub seconds: u64,
    /// Loop iterations of each window with the registers live.
    pub spin: u64,
    /// The kernel the finding was made on (`uname -r`, or a package name), for the header.
    pub kernel: Option<String>,
    /// What the program reproduces (a finding's title or a signature's name), for the header.
    pub finding: Option<String>,
}

impl Setup {
    /// A setup with the defaults of `regtorture run`: 30 s, spin 20000, one thread per CPU.
    pub fn new(arch: GuestArch, classes: Vec<ClassId>, windows: Vec<WindowKind>, triggers: Vec<String>) -> Setup {
        Setup { arch, classes, windows, triggers, threads: 0, seconds: 30, spin: DEFAULT_SPIN, kernel: None, finding: None }
    }
}

/// The architecture this binary runs on, when the C backend has it.
pub fn host_arch() -> Option<GuestArch> {
    if cfg!(target_arch = "x86_64") {
        Some(GuestArch::X86_64)
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        Some(GuestArch::Ppc64le)
    } else {
        None
    }
}

/// The name of an architecture as the command line spells it.
pub fn arch_name(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::Ppc64le => "ppc64le",
        GuestArch::Aarch64 => "aarch64",
        GuestArch::X86_64 => "x86_64",
        GuestArch::Riscv64 => "riscv64",
    }
}

/// The register classes the C backend has for `arch` (none for aarch64 and riscv64).
pub fn classes_for(arch: GuestArch) -> &'static [ClassId] {
    match arch {
        GuestArch::Ppc64le => &[ClassId::Fpr, ClassId::Vsx, ClassId::Gpr],
        GuestArch::X86_64 => &[ClassId::Sse, ClassId::Avx],
        GuestArch::Aarch64 | GuestArch::Riscv64 => &[],
    }
}

/// The window kinds the C backend has for `arch`.
pub fn windows_for(arch: GuestArch) -> &'static [WindowKind] {
    use WindowKind::*;
    match arch {
        GuestArch::Ppc64le => &[Spin, Syscall, Yield, Sleep, ScvSyscall, ScvYield, ScvSleep],
        GuestArch::X86_64 => &[Spin, Syscall, Yield, Sleep],
        GuestArch::Aarch64 | GuestArch::Riscv64 => &[],
    }
}

/// What the C backend can express, in words (for errors and `--help`).
pub fn supported() -> String {
    let mut s = String::new();
    for arch in [GuestArch::Ppc64le, GuestArch::X86_64] {
        let classes: Vec<_> = classes_for(arch).iter().map(|c| c.name()).collect();
        let windows: Vec<_> = windows_for(arch).iter().map(|w| w.name()).collect();
        let _ = write!(s, "{}: classes {}, windows {}; ", arch_name(arch), classes.join(", "), windows.join(", "));
    }
    let _ = write!(s, "triggers {} (or none)", TRIGGERS.join(", "));
    s
}

fn cannot(what: String) -> Error {
    Error::CannotExpress { what, supported: supported() }
}

/// `Ok` when the C backend can express `setup`, else what it cannot.
pub fn check(setup: &Setup) -> Result<()> {
    let arch = setup.arch;
    if classes_for(arch).is_empty() {
        return Err(cannot(format!("the architecture {}", arch_name(arch))));
    }
    if setup.classes.is_empty() {
        return Err(cannot("a setup without register classes".into()));
    }
    if setup.windows.is_empty() {
        return Err(cannot("a setup without window kinds".into()));
    }
    // Every class, window kind and trigger it cannot express, so that the user learns all of
    // what to change at once.
    let mut missing: Vec<String> = Vec::new();
    if let Some(c) = setup.classes.iter().find(|c| !classes_for(arch).contains(c)) {
        missing.push(format!("the class {} on {}", c.name(), arch_name(arch)));
    }
    if let Some(w) = setup.windows.iter().find(|w| !windows_for(arch).contains(w)) {
        missing.push(format!("the window kind {} on {}", w.name(), arch_name(arch)));
    }
    if let Some(t) = setup.triggers.iter().find(|t| !TRIGGERS.contains(&t.as_str()) && t.as_str() != "none") {
        missing.push(format!("the trigger {t}"));
    }
    if !missing.is_empty() {
        return Err(cannot(missing.join(" and ")));
    }
    if setup.threads > 1022 {
        return Err(cannot(format!("{} threads (at most 1022: the pattern has 10 bits for the thread)", setup.threads)));
    }
    if setup.seconds == 0 || setup.seconds > 7 * 86400 {
        return Err(cannot(format!("a run of {} s (1 s to 7 days)", setup.seconds)));
    }
    if setup.spin > 1_000_000_000 {
        return Err(cannot(format!("a spin of {} (at most 1000000000)", setup.spin)));
    }
    for text in setup.kernel.iter().chain(setup.finding.iter()) {
        if text.contains("*/") || text.contains('\n') {
            return Err(Error::Usage(format!("'{text}' cannot go into the program's header comment (no '*/', one line)")));
        }
    }
    Ok(())
}

/// The classes, windows and triggers of `setup`, each once, in the order given ("none" dropped).
fn normalized(setup: &Setup) -> (Vec<ClassId>, Vec<WindowKind>, Vec<&str>) {
    let mut classes = Vec::new();
    for c in &setup.classes {
        if !classes.contains(c) {
            classes.push(*c);
        }
    }
    let mut windows = Vec::new();
    for w in &setup.windows {
        if !windows.contains(w) {
            windows.push(*w);
        }
    }
    let mut triggers: Vec<&str> = Vec::new();
    for t in TRIGGERS {
        if setup.triggers.iter().any(|x| x == t) {
            triggers.push(t);
        }
    }
    (classes, windows, triggers)
}

/// The `regtorture run` command line that checks what `setup` does.
pub fn command_line(setup: &Setup) -> String {
    let (classes, windows, triggers) = normalized(setup);
    let join = |v: Vec<&str>| v.join(",");
    let mut s = format!(
        "regtorture run --classes {} --windows {} --triggers {}",
        join(classes.iter().map(|c| c.name()).collect()),
        join(windows.iter().map(|w| w.name()).collect()),
        if triggers.is_empty() { "none".to_string() } else { join(triggers.clone()) },
    );
    if setup.threads > 0 {
        let _ = write!(s, " --threads {}", setup.threads);
    }
    let _ = write!(s, " --duration {}s", setup.seconds);
    if setup.spin != DEFAULT_SPIN {
        let _ = write!(s, " --spin {}", setup.spin);
    }
    s
}

/// The cross compiler a Debian or Ubuntu host has for `arch`.
pub fn cross_gcc(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::Ppc64le => "powerpc64le-linux-gnu-gcc",
        GuestArch::X86_64 => "x86_64-linux-gnu-gcc",
        GuestArch::Aarch64 => "aarch64-linux-gnu-gcc",
        GuestArch::Riscv64 => "riscv64-linux-gnu-gcc",
    }
}

/// The C macro that selects a class's code in the arch fragment.
fn class_macro(c: ClassId) -> String {
    format!("RT_WITH_{}", c.name().to_uppercase())
}

fn window_kind(w: WindowKind) -> &'static str {
    match w.sc_twin() {
        WindowKind::Spin => "RT_W_SPIN",
        WindowKind::Syscall => "RT_W_GETPPID",
        WindowKind::Yield => "RT_W_YIELD",
        _ => "RT_W_SLEEP",
    }
}

/// What each piece of the setup does, for the header.
fn describe_class(c: ClassId) -> &'static str {
    match c {
        ClassId::Fpr => "fpr: f0-f31 and FPSCR",
        ClassId::Vsx => "vsx: vs0-vs63",
        ClassId::Gpr => "gpr: r3-r12, r14-r31, CTR, LR, XER, CR (what each window's syscall ABI preserves)",
        ClassId::Sse => "sse: xmm0-xmm15 and MXCSR",
        ClassId::Avx => "avx: ymm0-ymm15",
        _ => "",
    }
}

fn describe_window(w: WindowKind) -> String {
    let what = match w.sc_twin() {
        WindowKind::Spin => "a busy loop with the registers loaded",
        WindowKind::Syscall => "getppid() issued with the registers loaded",
        WindowKind::Yield => "sched_yield() issued with the registers loaded",
        _ => "clock_nanosleep() for 20 us with the registers loaded\n *     (task_work and signals are handled on its exit)",
    };
    let how = if w.uses_scv() {
        ", issued with `scv 0`"
    } else if w.has_syscall() {
        ", issued with `sc` (powerpc) or `syscall` (x86_64)"
    } else {
        ""
    };
    format!("{}: {what}{how}", w.name())
}

fn describe_trigger(t: &str) -> &'static str {
    match t {
        "io_uring" => {
            "io_uring: each checking thread queues 128 splices from an empty pipe (raw\n *     io_uring syscalls); they block in its io-wq, and io_uring creates each further\n *     worker by TWA_SIGNAL task_work run on the checking thread, mid-window. A fresh\n *     thread (a fresh io-wq) replaces it every 20 ms."
        }
        "tgkill" => "tgkill: a thread signals every checking thread every 50 us (SIGUSR1)",
        _ => "timer: a POSIX timer per checking thread (SIGEV_THREAD_ID) fires every 100 us (SIGUSR2)",
    }
}

/// The C source of the reproducer for `setup`.
pub fn emit_c(setup: &Setup) -> Result<String> {
    check(setup)?;
    let (classes, windows, triggers) = normalized(setup);
    let arch = setup.arch;
    let mut c = String::new();

    // The header: what, where from, how to build and run.
    let _ = writeln!(c, "// SPDX-License-Identifier: MIT OR Apache-2.0");
    let _ = writeln!(c, "/*");
    let _ = writeln!(c, " * Standalone reproducer for {}, generated by regtorture {} (export-c).", arch_name(arch), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(c, " *");
    if let Some(f) = &setup.finding {
        let _ = writeln!(c, " * Reproduces: {f}");
    }
    if let Some(k) = &setup.kernel {
        let _ = writeln!(c, " * Found on:   {k}");
    }
    let _ = writeln!(c, " * The same check in regtorture:");
    let _ = writeln!(c, " *   {}", command_line(setup));
    let _ = writeln!(c, " *");
    for line in [
        "What it does: each checking thread loads a pattern into every register of a class (each",
        "value encodes its thread, class, register and iteration), runs a window, stores the",
        "registers in the same assembly block and compares; classes and windows take turns, while",
        "the triggers run. The first wrong register is printed with its expected and observed",
        "values (and whose value the observed one is); a fault in a checking thread prints the",
        "faulting pc and registers. Either is a kernel bug: exit 1.",
    ] {
        let _ = writeln!(c, " * {line}");
    }
    let _ = writeln!(c, " *");
    let _ = writeln!(c, " * Setup:");
    for cl in &classes {
        let _ = writeln!(c, " *   class {}", describe_class(*cl));
    }
    for w in &windows {
        let _ = writeln!(c, " *   window {}", describe_window(*w));
    }
    for t in &triggers {
        let _ = writeln!(c, " *   trigger {}", describe_trigger(t));
    }
    if triggers.is_empty() {
        let _ = writeln!(c, " *   no trigger");
    } else {
        let _ = writeln!(c, " *   The trigger signals' handler loads other values into every register of every");
        let _ = writeln!(c, " *   class before it returns: only sigreturn can bring the window's values back.");
    }
    let threads = if setup.threads == 0 { "one checking thread per CPU".to_string() } else { format!("{} checking threads", setup.threads) };
    let _ = writeln!(c, " *   {threads}, {} s, {} loop iterations per window", setup.seconds, setup.spin);
    let _ = writeln!(c, " *");
    let _ = writeln!(c, " * Build:  gcc -O2 -static -pthread -o repro repro.c          (on {})", arch_name(arch));
    let _ = writeln!(c, " *         {} -O2 -static -pthread -o repro repro.c  (cross)", cross_gcc(arch));
    let _ = writeln!(c, " * Run:    ./repro [SECONDS] [threads=N] [spin=N]");
    let _ = writeln!(c, " *         or as /init of a VM (it mounts devtmpfs and restarts the machine at the end:");
    let _ = writeln!(c, " *         run QEMU with -no-reboot).");
    let _ = writeln!(c, " * Exit:   0 clean after SECONDS, 1 the bug (a wrong register or a fault), 3 a setup");
    let _ = writeln!(c, " *         error (io_uring unavailable, a class or scv missing, ...). The last line is");
    let _ = writeln!(c, " *         always \"REPRO-RESULT: bug|clean|error ...\".");
    let _ = writeln!(c, " * Positive control: built with -DREGTORTURE_INJECT, the trigger signals' handler changes");
    let _ = writeln!(c, " *         one register in the signal frame when it interrupted a window, so sigreturn");
    let _ = writeln!(c, " *         restores a wrong value: the program must exit 1 naming that register (needs a");
    let _ = writeln!(c, " *         signal trigger).");
    let _ = writeln!(c, " */");

    // The configuration.
    let _ = writeln!(c, "#define RT_SECONDS {}", setup.seconds);
    let _ = writeln!(c, "#define RT_THREADS {}", setup.threads);
    let _ = writeln!(c, "#define RT_SPIN {}", setup.spin);
    let _ = writeln!(c, "#define RT_TRIGGER_NAMES \"{}\"", if triggers.is_empty() { "none".to_string() } else { triggers.join(", ") });
    // The code of the classes and triggers not in the setup is left out, not compiled out.
    let mut defs: Vec<(String, bool)> = TRIGGERS.iter().map(|t| (format!("RT_WITH_{}", t.to_uppercase()), triggers.contains(t))).collect();
    defs.extend(classes_for(arch).iter().map(|cl| (class_macro(*cl), classes.contains(cl))));
    c.push('\n');
    c.push_str(&select(HEAD, &defs));
    c.push('\n');
    c.push_str(&select(
        match arch {
            GuestArch::Ppc64le => PPC64LE,
            _ => X86_64,
        },
        &defs,
    ));
    c.push('\n');

    // The tables of this setup.
    let _ = writeln!(c, "/* ---- this setup ---- */\n");
    let _ = writeln!(c, "static const struct rt_class *const rt_classes[] = {{");
    for cl in &classes {
        let _ = writeln!(c, "\t&rt_class_{},", cl.name());
    }
    let _ = writeln!(c, "}};\n");
    let _ = writeln!(c, "static const struct rt_window rt_windows[] = {{");
    for w in &windows {
        let _ = writeln!(c, "\t{{ \"{}\", {}, {} }},", w.name(), window_kind(*w), u8::from(w.uses_scv()));
    }
    let _ = writeln!(c, "}};\n");
    c.push_str(&select(TAIL, &defs));
    Ok(c)
}

/// `text` with each `#if NAME` ... `#endif` block of a NAME in `defs` kept (without the two
/// lines) or dropped; every other preprocessor line stays as it is. The fragments' own
/// conditionals (`#ifdef REGTORTURE_INJECT`, the architecture checks) nest inside or around them.
fn select(text: &str, defs: &[(String, bool)]) -> String {
    // One entry per open conditional: (whether its lines are kept, whether it is ours).
    let mut open: Vec<(bool, bool)> = Vec::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        let kept = open.iter().all(|(k, _)| *k);
        if let Some(name) = t.strip_prefix("#if ") {
            if let Some((_, on)) = defs.iter().find(|(d, _)| d == name.trim()) {
                open.push((*on, true));
                continue;
            }
        }
        if t.starts_with("#if") {
            open.push((true, false));
        } else if t.starts_with("#endif") {
            if let Some((_, true)) = open.pop() {
                continue;
            }
        }
        if kept {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The register the positive control (`-DREGTORTURE_INJECT`) corrupts in `class`, as the
/// program names it.
#[cfg(test)]
pub fn injected_register(class: ClassId) -> Option<&'static str> {
    match class {
        ClassId::Fpr => Some("f3"),
        ClassId::Vsx => Some("vs3"),
        ClassId::Gpr => Some("r14"),
        ClassId::Sse => Some("xmm3"),
        ClassId::Avx => Some("ymm3"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
