//! The report of a run: one [`Report`] value, rendered by [`human`], [`json`] and [`ktap`]; the
//! live [`progress`] line. The renderers compute nothing the others need: everything is here.

pub mod human;
pub mod json;
pub mod ktap;
pub mod metrics;
pub mod progress;


use crate::class::{ClassDesc, ClassId};
use crate::engine::Outcome;
use crate::error::{EXIT_CLEAN, EXIT_CORRUPTION};
use crate::plan::Plan;
use crate::schema::{Cell, ClassStatus, ClassSummary, Config, Machine, Report, SCHEMA_VERSION, Verdict, WindowSummary};


impl Machine {
    pub fn here() -> Machine {
        Machine {
            arch: crate::arch::name().to_string(),
            kernel: crate::arch::linux::kernel_release(),
            cpus: crate::arch::linux::allowed_cpus().len(),
            user_mode_emulation: crate::arch::linux::user_mode_emulation(),
        }
    }
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
            trace: None,
            leaks: None,
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
