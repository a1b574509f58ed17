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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pattern::Pattern;
    use crate::window::WindowKind;

    fn report(checks: u64) -> Report {
        let descs = crate::arch::native().detect();
        let d = descs.iter().find(|d| d.available.is_ok()).expect("a class is available here").clone();
        let plan = Plan {
            layouts: vec![d.layout.clone()],
            windows: vec![WindowKind::Spin],
            threads: 1,
            duration: Duration::from_secs(1),
            pattern: Pattern::new(1),
            spin: 1,
            stop_on_first: true,
            keep: 1,
        };
        let out = Outcome {
            elapsed: Duration::from_secs(1),
            checks: vec![vec![checks]],
            mismatch_count: 0,
            mismatches: vec![],
            interrupted: false,
            faults: vec![],
            fault_count: 0,
            triggers: vec![],
        };
        let mut rep = Report::new(&[d], &plan, out, 1, vec![]);
        crate::runner::untested_if_nothing_checked(&mut rep);
        rep
    }

    /// Zero checks certify nothing: the verdict is `untested` (exit 3), its KTAP cell a skip,
    /// not a pass; one check is enough for `clean`.
    #[test]
    fn a_run_without_checks_is_untested_not_clean() {
        let none = report(0);
        assert_eq!(none.verdict, Verdict::Untested);
        assert_eq!(none.exit_code, crate::error::EXIT_ENVIRONMENT);
        assert!(human::verdict_line(&none).starts_with("regtorture: UNTESTED: no window completed"), "{}", human::verdict_line(&none));
        assert!(ktap::render(&none).contains("_spin # SKIP no window of this class and kind completed"), "{}", ktap::render(&none));
        let one = report(1);
        assert_eq!(one.verdict, Verdict::Clean);
        assert_eq!(one.exit_code, EXIT_CLEAN);
        assert!(!ktap::render(&one).contains("# SKIP no window"));
    }
}
