//! The machine-readable report: every type that goes into regtorture's JSON, in one place,
//! versioned by [`SCHEMA_VERSION`] (docs/json.md describes each field). Only data lives here:
//! the modules that build these values (engine, selftest, forensics, signature, report) depend
//! on this one, never the other way round.

use serde::{Deserialize, Serialize};

use crate::class::ClassId;
use crate::window::WindowKind;

/// Bumped whenever a field changes meaning or disappears (adding fields keeps it).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub version: String,
    pub verdict: Verdict,
    pub exit_code: i32,
    pub machine: Machine,
    pub config: Config,
    pub elapsed_s: f64,
    /// Stopped early by SIGINT/SIGTERM: the counts are partial.
    pub interrupted: bool,
    pub total_checks: u64,
    pub classes: Vec<ClassSummary>,
    pub windows: Vec<WindowSummary>,
    pub cells: Vec<Cell>,
    pub triggers: TriggerResults,
    pub mismatch_count: u64,
    /// The first mismatches in detail (all are counted in `mismatch_count`).
    pub mismatches: Vec<Mismatch>,
    /// Faults of regtorture's own threads (a kernel bug can corrupt the tool itself): each one
    /// is a finding, decoded (see docs/json.md).
    #[serde(default)]
    pub faults: Vec<FaultReport>,
    /// All faults, the ones not kept in detail included.
    #[serde(default)]
    pub fault_count: u64,
    /// The selftest that ran before, when the run was asked to do one (the VM's init does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selftest: Option<SelftestReport>,
    /// The kernel trace of the run (`--trace`): what was recorded, or why nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSummary>,
    /// The leak checks (schema 2): fresh processes after execve, and other checking processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaks: Option<LeakReport>,
    /// The findings that match a known bug, one entry per signature (set by `Report::decide`).
    #[serde(default)]
    pub known_findings: Vec<KnownFinding>,
}

/// How many findings (mismatches, faults and leaked lanes kept in detail) matched one known bug.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownFinding {
    /// The signature id (`--known` takes it).
    pub id: String,
    pub count: u64,
    /// Acknowledged with `--known`: it does not fail the run.
    pub acknowledged: bool,
}

/// What `--trace` recorded for the whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TraceSummary {
    /// `recorded`, or `skipped` (then `reason` says why: not root, no tracefs...).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tracepoints recorded (`system:event`), and the asked-for ones this kernel lacks.
    pub events: Vec<String>,
    pub missing: Vec<String>,
    pub buffer_kb_per_cpu: usize,
    /// Events in the buffer when it was read; events the kernel dropped (`LOST` marks) or the
    /// ring overwrote before the first finding froze it.
    pub recorded: u64,
    pub lost: u64,
    pub overwritten: u64,
    /// The buffer stopped recording at the first finding (so later findings have no timeline).
    pub frozen_at_finding: bool,
}

/// The kernel's events of one thread around a finding (`--trace`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// CLOCK_MONOTONIC nanoseconds that `t_ns` counts from: the window's start (a mismatch) or
    /// the fault.
    pub origin_ns: u64,
    /// The interval looked at: `[from_ns, to_ns]` (to the check, or to the fault).
    pub from_ns: u64,
    pub to_ns: u64,
    /// The events of the thread and about it (a signal to it, a switch to or from it, a thread
    /// it made), oldest first: every one in the window (up to the check, or to the fault), or
    /// the last ones before a fault outside a window.
    pub events: Vec<TraceEvent>,
    /// The buffer's oldest event is younger than `from_ns`: the start is missing.
    pub truncated: bool,
}

/// One kernel event as the trace printed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Nanoseconds from the timeline's origin (negative: before it); the trace has whole
    /// microseconds.
    pub t_ns: i64,
    pub cpu: u32,
    /// The thread running when the event was recorded (0: idle), and its name.
    pub tid: i32,
    pub comm: String,
    /// The tracepoint (`signal_deliver`...) and its fields as the kernel printed them.
    pub name: String,
    pub fields: String,
    /// What the event means here, when regtorture knows (an io-wq worker made for this thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Confidentiality checks: what a process can see of another's registers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LeakReport {
    /// Fresh copies of regtorture started with execve from a process whose registers held
    /// pattern values, each checked at its entry point.
    pub execs: u32,
    /// How the entry state was read: "entry point" (a static binary: the first user
    /// instruction after execve) or "after the dynamic loader" (only pattern values count).
    pub entry: String,
    /// Why the execve check did not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Checking processes run side by side (`--processes`), each with its own identity.
    pub processes: u32,
    /// Fresh checking threads whose first instruction on a unit read its whole state (the
    /// first-use trap's construction: riscv64 V); each must read all zero.
    #[serde(default)]
    pub first_use: u64,
    /// Values of another process found in a register: each one a leak.
    pub leaks: Vec<Leak>,
    /// Registers not in their initial state at a static binary's entry point, with no
    /// pattern value: a breach of the exec ABI, not a leak.
    pub not_initial: Vec<Leak>,
    /// Registers not in their initial state where something ran before the entry stub (the
    /// dynamic loader) or the state is an emulator's: counted, not a finding.
    pub informational: u64,
    /// Cores written by children that held pattern values, and read (`crate::coredump`).
    #[serde(default)]
    pub core_dumps: u32,
    /// Why the core-dump check did not run (or stopped), when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_skip: Option<String>,
    /// Lanes a core showed otherwise than the process held them (a view finding: verdict
    /// `view-wrong` when nothing worse was found).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub core: Vec<Leak>,
}

/// One register lane that held what it must not.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Leak {
    /// "execve", "process" or "first use".
    pub source: String,
    pub class: ClassId,
    pub register: String,
    pub lane: u32,
    pub observed: Hex,
    /// The initial value (execve) or the value this process wrote (process).
    pub expected: Hex,
    /// Whose value it is ("process 2's avx512 zmm3 lane 1 ..."), or "not the initial value".
    pub reading: String,
    /// The known bug this matches, if any (riscv64's execve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureMatch>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub arch: String,
    pub kernel: String,
    pub cpus: usize,
    /// Running under qemu-user: signals and signal frames are the emulator's, not the kernel's.
    pub user_mode_emulation: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub duration_s: f64,
    pub threads: usize,
    pub seed: String,
    pub spin: u64,
    pub stop_on_first: bool,
    pub windows: Vec<WindowKind>,
    pub triggers: Vec<String>,
    /// The known bugs the user acknowledged (`--known`), by signature id.
    #[serde(default)]
    pub known: Vec<String>,
}

/// Whether a class was tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassStatus {
    #[serde(rename = "tested")]
    Tested,
    /// The CPU or kernel does not provide it (a reason says which).
    #[serde(rename = "unavailable")]
    Unavailable,
    #[serde(rename = "not selected")]
    NotSelected,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassSummary {
    pub name: ClassId,
    pub status: ClassStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub registers: usize,
    pub checks: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WindowSummary {
    pub name: WindowKind,
    pub windows: u64,
}

/// One class under one window kind: a KTAP test case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub class: ClassId,
    pub window: WindowKind,
    pub checks: u64,
    pub mismatches: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

/// What a run concludes; `Report::decide` sets it, with the exit code, from what the report holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Clean,
    /// Every finding matches a known bug the user acknowledged (`--known`): reported, exit 0.
    Known,
    Corruption,
    /// Another process's register values were seen (a confidentiality finding).
    Leak,
    /// Nothing was checked: no window completed, so nothing is certified (exit 3). A machine
    /// that stalls the checking threads (an overloaded host, an emulator livelocked by signal
    /// delivery) must not read as a clean kernel.
    Untested,
    /// The selftest before the run missed planted faults: the detector is not proven on this
    /// machine, so a clean run certifies nothing (exit 1).
    SelftestFailed,
    /// The registers held, but a ptrace register set showed other values than they held (the
    /// `ptrace` trigger's views): what a debugger, rr, CRIU or a core dump reads is wrong (exit 1).
    ViewWrong,
}

/// A 64-bit value that serialises as a hex string (JSON numbers lose bits past 2^53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub u64);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(s.trim_start_matches("0x"), 16).map(Hex).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#018x}", self.0))
    }
}

/// A register that did not hold its value across a window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mismatch {
    /// Checking-thread number (the one encoded in the pattern) and its kernel thread id.
    pub thread: u32,
    pub tid: i32,
    /// CPU the thread was on when it checked.
    pub cpu: i32,
    pub iteration: u64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    pub class: ClassId,
    pub register: String,
    pub window: WindowKind,
    /// Triggers that were running.
    pub triggers: Vec<String>,
    pub lanes: Vec<LaneDiff>,
    /// Control-register images of this window (FPSCR, VSCR, ...), for signatures and readers.
    pub control_images: Vec<(String, Hex)>,
    /// A known bug this matches, if any.
    pub signature: Option<SignatureMatch>,
    /// CLOCK_MONOTONIC nanoseconds at the window's start and at its check (with `--trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ns: Option<(u64, u64)>,
    /// The kernel's events of this thread over the window (with `--trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// A finding of the ptrace trigger: a view that disagreed with the registers, or a window
    /// whose registers the tracer wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptrace: Option<PtraceCheck>,
    /// The register was cut short: its first `bytes` bytes were right and every lane after
    /// them zero (an SVE-VL-sized copy of a streaming register, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
}

/// A register whose low bytes held and whose every lane above them read zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// How many bytes were right.
    pub bytes: usize,
    /// What that length is on this machine, where the backend knows (the SVE vector length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_is: Option<String>,
}

/// What the ptrace trigger did in a window with a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtraceCheck {
    /// "view": the regset showed other values than the thread's registers held (`observed` is
    /// the view's, `expected` the register's); "write": the tracer wrote the register through
    /// the regset and the thread did not get exactly that (`expected` is what was written).
    pub kind: String,
    /// The regset (`NT_PRFPREG`, `NT_X86_XSTATE`, ...).
    pub regset: String,
    /// How the thread was stopped: "interrupt" (`PTRACE_INTERRUPT`) or "signal-delivery".
    pub stop: String,
}

/// One lane of a register that came back wrong.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaneDiff {
    /// 64-bit lane index within the register (lane 0 holds the lowest bytes).
    pub lane: usize,
    pub expected: Hex,
    pub observed: Hex,
    /// Bits that differ.
    pub xor: Hex,
    pub bits_changed: u32,
    pub reading: Reading,
    /// For a ptrace view: the lane's byte offset in the regset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

impl LaneDiff {
    /// A lane that should have held `expected` and held `observed`; the differing bits are
    /// derived from the two.
    pub fn new(lane: usize, expected: u64, observed: u64, reading: Reading, offset: Option<usize>) -> Self {
        let xor = expected ^ observed;
        Self { lane, expected: Hex(expected), observed: Hex(observed), xor: Hex(xor), bits_changed: xor.count_ones(), reading, offset }
    }
}

/// What an observed wrong value is, as far as the pattern can tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reading {
    /// This register's own value from an earlier iteration: a stale save or restore.
    Stale { iterations_ago: u64 },
    /// Another register's (or another lane's) value of this thread.
    OtherRegister { class: ClassId, register: String, lane: u32, iterations_ago: i64 },
    /// A value of another checking thread: state of another task was restored here.
    OtherThread { thread: u32, class: ClassId, register: String, lane: u32 },
    /// A value of another checking *process* (`--processes`): a leak across address spaces.
    OtherProcess { process: u32, thread: u32, class: ClassId, register: String, lane: u32 },
    /// The value the signal handler wrote: the state was not restored at sigreturn.
    SignalHandler { class: ClassId, register: String, lane: u32 },
    /// A value the ptrace trigger's tracer wrote (to this or another lane).
    TracerValue { class: ClassId, register: String, lane: u32 },
    /// The lane's value before the tracer wrote it through ptrace: the write was lost.
    BeforePtraceWrite,
    /// A value the clobbering handler wrote into a signal frame (to this or another lane).
    FrameRewrite { class: ClassId, register: String, lane: u32 },
    /// The lane's value before the handler rewrote it in its signal frame: sigreturn did not
    /// deliver the frame's value.
    BeforeFrameRewrite,
    /// The image of one of the class's control registers (FPSCR, VSCR, ...) as written this
    /// window: a save routine used this register as scratch for it.
    ControlImage { register: String },
    /// All zero: the register was reset (init state, or a zeroed save area).
    Zero,
    /// The value the register has after exec (init state of a control register).
    InitState,
    /// A few bits differ from the expected value and the rest is right.
    BitFlip { bits: Vec<u32> },
    /// Nothing the pattern knows.
    Unknown,
    /// Not a register value: a window's system call returned `-errno` where it has one right
    /// answer (ppoll of nothing times out with 0, and EINTR needs a handled signal).
    SyscallResult { syscall: String, errno: i64 },
}

/// A known bug that a mismatch matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureMatch {
    /// The short id `--known` takes (`regtorture run --help` lists them).
    #[serde(default)]
    pub id: String,
    /// The run was told this bug is known here (`--known`): reported, but not failing the run.
    #[serde(default)]
    pub acknowledged: bool,
    pub name: String,
    /// "match": the corruption has the bug's fingerprint; "consistent": it looks like it.
    pub confidence: String,
    pub fix: String,
    pub affected: String,
    pub reference: String,
}

/// Whether a trigger ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerStatus {
    /// It ran and caused kernel events.
    Ran,
    /// It ran for the whole run but caused no event (a reason says what it saw).
    Idle,
    /// It cannot run here (a reason says why).
    Skipped,
}

/// How one trigger did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriggerReport {
    pub name: String,
    pub status: TriggerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub events: u64,
    pub events_per_s: f64,
    pub details: Vec<(String, f64)>,
}

pub type TriggerResults = Vec<TriggerReport>;

/// The whole selftest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelftestReport {
    pub faults_per_class: u32,
    pub classes: Vec<ClassResult>,
    pub passed: bool,
}

/// How one class did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: ClassId,
    pub status: SelftestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Faults written into a frame of a thread inside its window.
    pub injected: u32,
    /// Of those, caught in exactly the injected register, lane and bits.
    pub detected: u32,
    /// Caught, but reported elsewhere or with other bits.
    pub misplaced: u32,
    /// Not caught at all.
    pub missed: u32,
    /// Mismatches reported where nothing was injected.
    pub spurious: u32,
    /// Signals that arrived outside the window (nothing injected; tried again).
    pub outside_window: u32,
    pub median_latency_us: f64,
    /// The first few failures, in words.
    pub failures: Vec<String>,
    /// Which control: none for register faults; "process-leak" for another process's value
    /// delivered into a register, which must be read as that process's (a leak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
}

impl ClassResult {
    /// A class's result before any fault: nothing injected, nothing found.
    pub fn empty(class: ClassId, status: SelftestStatus, reason: Option<String>) -> ClassResult {
        ClassResult {
            class,
            status,
            reason,
            injected: 0,
            detected: 0,
            misplaced: 0,
            missed: 0,
            spurious: 0,
            outside_window: 0,
            median_latency_us: 0.0,
            failures: vec![],
            control: None,
        }
    }

    /// Keep a failure in words (the first five).
    pub fn note(&mut self, s: String) {
        if self.failures.len() < 5 {
            self.failures.push(s);
        }
    }

    pub fn passed(&self) -> bool {
        self.status == SelftestStatus::Skipped || (self.injected > 0 && self.detected == self.injected && self.missed + self.misplaced + self.spurious == 0)
    }
}

/// Whether a class was selftested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelftestStatus {
    Tested,
    /// Not available here (a reason says why).
    Skipped,
}

/// A fault of one of regtorture's threads, decoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultReport {
    pub signal: String,
    pub si_code: i32,
    pub si_addr: Hex,
    pub tid: i32,
    /// The checking thread's number, when a checking thread faulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    /// What that thread was doing: `"<class> <window> window"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doing: Option<String>,
    pub elapsed_s: f64,
    pub pc: Hex,
    pub pc_location: String,
    /// Every register of the faulting context, as the backend names them.
    pub registers: Vec<(String, Hex)>,
    pub readings: Vec<FaultReading>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_signal: Option<LostSignal>,
    /// The thread went on: the handler finished the signal return the bug left undone.
    pub recovered: bool,
    pub triggers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureMatch>,
    /// CLOCK_MONOTONIC nanoseconds at the fault.
    #[serde(default)]
    pub at_ns: u64,
    /// With `--trace`: when the window the checking thread faulted in started (CLOCK_MONOTONIC
    /// nanoseconds); the timeline then covers that window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start_ns: Option<u64>,
    /// With `--trace`, for a checking thread that faulted outside a window: when its last window
    /// ended, or when it started if it had none yet; the timeline then starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_since_ns: Option<u64>,
    /// The kernel's events of the thread up to the fault (with `--trace`): from the start of the
    /// window it faulted in, or since it left its last window (or started), or, for a thread
    /// that is no checking thread, its last events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
}

/// A signal whose frame was set up but whose handler was never reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LostSignal {
    pub signal: String,
    /// The interrupt the lost frame's context came from (powerpc TRAP: 0x3000 scv, 0xc00 sc).
    pub trap: Hex,
    /// Where that context was to resume.
    pub resume_pc: Hex,
    pub resume_at: String,
}

/// What a fault's registers say, as the architecture backend reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultReading {
    /// The PC equals the machine-state image (powerpc MSR, x86 RFLAGS, aarch64 PSTATE; riscv64,
    /// whose user frames hold no status register, fcsr).
    PcIsStateImage,
    /// powerpc: CTR holds the MSR image (the scv fast exit's `mtctr r5`).
    CtrIsMsrImage,
    /// powerpc: CTR is zero (the sc fast exit's zeroing of CTR).
    CtrIsZero,
    /// The link register points just after the vDSO signal trampoline's call of the handler:
    /// the trampoline ran, and its call went somewhere else than the handler.
    LinkAfterSignalTrampoline,
    /// powerpc: r12 is zero where the ELFv2 ABI needs the called function's entry address.
    EntryRegisterZero,
    /// The thread jumped through a register (the PC is the branch target, the link register
    /// the return address).
    JumpedThroughRegister,
    /// The PC is not in any mapping.
    PcUnmapped,
    /// The signal frame the lost handler call was for: a signal set up on the exit of a
    /// system call (`via` "scv" or "sc").
    SignalSetUpOnSyscallExit { via: String },
}

impl FaultReading {
    pub fn describe(&self) -> String {
        match self {
            FaultReading::PcIsStateImage => "the PC equals the machine-state image (MSR/RFLAGS/PSTATE)".into(),
            FaultReading::CtrIsMsrImage => "CTR holds the MSR image".into(),
            FaultReading::CtrIsZero => "CTR is zero".into(),
            FaultReading::LinkAfterSignalTrampoline => "LR points just after the vDSO signal trampoline's bctrl (the handler call went elsewhere)".into(),
            FaultReading::EntryRegisterZero => "r12 is zero where the ELFv2 ABI needs the handler's entry address".into(),
            FaultReading::JumpedThroughRegister => "the thread branched to the PC through a register".into(),
            FaultReading::PcUnmapped => "the PC lies in no mapping".into(),
            FaultReading::SignalSetUpOnSyscallExit { via } => {
                format!("the signal frame was set up on the exit of a system call made with {via}")
            }
        }
    }
}

/// The result of `regtorture triage` (its `--json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriageReport {
    /// What was narrowed: `"known bug: <name>"`, `"fault SIGSEGV"`, `"corruption of <class>
    /// registers"`; null when the first run found nothing.
    pub finding: Option<String>,
    /// The `run` arguments of the first run, and when it found the finding.
    pub first_run: Vec<String>,
    pub first_detect_s: Option<f64>,
    /// The length of each attempt: 5 times the first detection time, at least 2 s.
    pub attempt_s: f64,
    pub steps: Vec<TriageStep>,
    /// The smallest setup that still reproduced.
    pub minimal: Option<TriageSetup>,
    /// Confirming runs of the minimal setup: how many reproduced, of how many, and when.
    pub confirmed: u32,
    pub confirm_attempts: u32,
    pub confirm_detect_s: Vec<f64>,
    /// `regtorture run` arguments of the minimal setup (the ready-to-paste line).
    pub run_args: Vec<String>,
    /// The same inside `regtorture vm` (when triage ran in a guest, the host fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_command: Option<String>,
    /// `--emit-c`: the C reproducer written (its path), or why it could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproducer: Option<String>,
    pub elapsed_s: f64,
    pub budget_exhausted: bool,
    pub interrupted: bool,
    pub exit_code: i32,
}

/// One candidate setup of a triage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageSetup {
    pub classes: Vec<String>,
    pub windows: Vec<String>,
    /// Empty: no trigger (`--triggers none`).
    pub triggers: Vec<String>,
    pub threads: u32,
}

/// One step of a triage: a candidate and whether it reproduced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriageStep {
    pub tried: String,
    pub setup: TriageSetup,
    pub attempts: u32,
    /// 1 when one of the attempts reproduced (the first one that did ends the candidate).
    pub reproduced: u32,
    pub detect_s: Option<f64>,
}
