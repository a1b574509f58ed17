//! The report of a run: one [`Report`] value, rendered by [`human`], [`json`] and [`ktap`]; the
//! live [`progress`] line. The renderers compute nothing the others need: everything is here.

pub mod human;
pub mod json;
pub mod ktap;
pub mod metrics;
pub mod progress;

use serde::{Deserialize, Serialize};

use crate::class::{ClassDesc, ClassId};
use crate::engine::{Mismatch, Outcome, Plan};
use crate::forensics::FaultReport;
use crate::selftest::SelftestReport;
use crate::trigger::TriggerResults;
use crate::window::WindowKind;

/// Bumped whenever a field changes meaning or disappears (adding fields keeps it).
pub const SCHEMA_VERSION: u32 = 1;

/// Exit codes, as documented in the README.
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_CORRUPTION: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ENVIRONMENT: i32 = 3;
/// With `--ktap`, nothing testable here: kselftest's KSFT_SKIP.
pub const EXIT_KSFT_SKIP: i32 = 4;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub arch: String,
    pub kernel: String,
    pub cpus: usize,
    /// Running under qemu-user: signals and signal frames are the emulator's, not the kernel's.
    pub user_mode_emulation: bool,
}

impl Machine {
    pub fn here() -> Machine {
        Machine {
            arch: crate::arch::ARCH.to_string(),
            kernel: crate::arch::linux::kernel_release(),
            cpus: crate::arch::linux::allowed_cpus().len(),
            user_mode_emulation: crate::arch::linux::user_mode_emulation(),
        }
    }
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

/// "clean" or "corruption".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Clean,
    Corruption,
}

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
}

impl Report {
    pub fn new(descs: &[ClassDesc], plan: &Plan, out: Outcome, seed: u64, triggers_selected: Vec<String>) -> Report {
        let tested = |c: ClassId| plan.layouts.iter().position(|l| l.id == c);
        let classes = descs
            .iter()
            .map(|d| {
                let ci = tested(d.id());
                let (status, reason) = match (&d.available, ci) {
                    (Err(why), _) => (ClassStatus::Unavailable, Some(why.clone())),
                    (Ok(()), None) => (ClassStatus::NotSelected, None),
                    (Ok(()), Some(_)) => (ClassStatus::Tested, None),
                };
                ClassSummary {
                    name: d.id(),
                    status,
                    reason,
                    registers: d.layout.regs.len(),
                    checks: ci.map(|i| out.checks[i].iter().sum()).unwrap_or(0),
                }
            })
            .collect::<Vec<_>>();
        let windows = plan
            .windows
            .iter()
            .enumerate()
            .map(|(wi, &w)| WindowSummary { name: w, windows: out.checks.iter().map(|row| row[wi]).sum() })
            .collect();
        let mut cells = Vec::new();
        for c in &classes {
            for (wi, &w) in plan.windows.iter().enumerate() {
                let ci = tested(c.name);
                let mismatches = out.mismatches.iter().filter(|m| m.class == c.name && m.window == w).count() as u64;
                cells.push(Cell {
                    class: c.name,
                    window: w,
                    checks: ci.map(|i| out.checks[i][wi]).unwrap_or(0),
                    mismatches,
                    skip: match c.status {
                        ClassStatus::Tested => None,
                        ClassStatus::NotSelected => Some("not selected".into()),
                        ClassStatus::Unavailable => c.reason.clone(),
                    },
                });
            }
        }
        let total_checks = out.checks.iter().flatten().sum();
        let verdict = if out.mismatch_count > 0 || !out.faults.is_empty() { Verdict::Corruption } else { Verdict::Clean };
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "regtorture".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            verdict,
            exit_code: if verdict == Verdict::Clean { EXIT_CLEAN } else { EXIT_CORRUPTION },
            machine: Machine::here(),
            config: Config {
                duration_s: plan.duration.as_secs_f64(),
                threads: plan.threads,
                seed: format!("{seed:#x}"),
                spin: plan.spin,
                stop_on_first: plan.stop_on_first,
                windows: plan.windows.clone(),
                triggers: triggers_selected,
            },
            elapsed_s: out.elapsed.as_secs_f64(),
            interrupted: out.interrupted,
            total_checks,
            classes,
            windows,
            cells,
            triggers: out.triggers,
            mismatch_count: out.mismatch_count,
            mismatches: out.mismatches,
            faults: out.faults,
            fault_count: out.fault_count,
            selftest: None,
        }
    }
}

/// 1234567 -> "1.23M".
pub fn si(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2}G", n / 1e9),
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}
