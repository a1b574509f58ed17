//! The report of a run: one [`Report`] value, rendered by [`human`], [`json`] and [`ktap`]; the
//! live [`progress`] line. The renderers compute nothing the others need: everything is here.

pub mod human;
pub mod json;
pub mod ktap;
pub mod metrics;
pub mod progress;

use crate::class::{ClassDesc, ClassId};
use crate::engine::Outcome;
use crate::error::{EXIT_CLEAN, EXIT_CORRUPTION, EXIT_ENVIRONMENT};
use crate::plan::Plan;
use crate::schema::{Cell, ClassStatus, ClassSummary, Config, KnownFinding, Machine, Report, SCHEMA_VERSION, SignatureMatch, Verdict, WindowSummary};

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
    pub fn new(descs: &[ClassDesc], plan: &Plan, out: Outcome, seed: u64, triggers_selected: Vec<String>, known: &[String]) -> Report {
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
                ClassSummary { name: d.id(), status, reason, registers: d.layout.regs.len(), checks: ci.map(|i| out.checks[i].iter().sum()).unwrap_or(0) }
            })
            .collect::<Vec<_>>();
        let windows = plan.windows.iter().enumerate().map(|(wi, &w)| WindowSummary { name: w, windows: out.checks.iter().map(|row| row[wi]).sum() }).collect();
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
        let mut rep = Report {
            schema_version: SCHEMA_VERSION,
            tool: "regtorture".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            verdict: Verdict::Untested,
            exit_code: EXIT_ENVIRONMENT,
            machine: Machine::here(),
            config: Config {
                duration_s: plan.duration.as_secs_f64(),
                threads: plan.threads,
                seed: format!("{seed:#x}"),
                spin: plan.spin,
                stop_on_first: plan.stop_on_first,
                windows: plan.windows.clone(),
                triggers: triggers_selected,
                known: known.to_vec(),
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
            known_findings: Vec::new(),
        };
        rep.decide();
        rep
    }

    /// The one place that decides the verdict and the exit code, from what the report holds;
    /// whatever adds to a report (leak checks, the other processes, a selftest) calls it again.
    /// It also marks each finding whose known bug the user acknowledged (`config.known`) and
    /// counts the findings per known bug.
    ///
    /// Precedence: another process's values (leak), then any other finding not acknowledged
    /// (corruption), then a selftest that missed planted faults, then a run that checked
    /// nothing (untested, exit 3), then acknowledged known bugs only (known, exit 0), clean.
    pub fn decide(&mut self) {
        let known = self.config.known.clone();
        let mut tally: Vec<KnownFinding> = Vec::new();
        let mut mark = |s: &mut Option<SignatureMatch>| -> bool {
            let Some(s) = s else { return false };
            s.acknowledged = known.contains(&s.id);
            match tally.iter_mut().find(|t| t.id == s.id) {
                Some(t) => t.count += 1,
                None => tally.push(KnownFinding { id: s.id.clone(), count: 1, acknowledged: s.acknowledged }),
            }
            s.acknowledged
        };
        // Unacknowledged findings, by kind. Counted findings not kept in detail are judged by
        // the kept ones: the engine keeps a finding without a signature before any with one.
        let mut open_mismatch = self.mismatch_count > 0 && self.mismatches.is_empty();
        let mut open_view = false;
        for m in &mut self.mismatches {
            let open = !mark(&mut m.signature);
            if m.ptrace.as_ref().is_some_and(|p| p.kind == "view") {
                open_view |= open;
            } else {
                open_mismatch |= open;
            }
        }
        let mut open_fault = self.fault_count > 0 && self.faults.is_empty();
        for f in &mut self.faults {
            open_fault |= !mark(&mut f.signature);
        }
        let (mut open_leak, mut open_not_initial) = (false, false);
        if let Some(l) = &mut self.leaks {
            for x in &mut l.leaks {
                open_leak |= !mark(&mut x.signature);
            }
            for x in &mut l.not_initial {
                open_not_initial |= !mark(&mut x.signature);
            }
            for x in &mut l.core {
                open_view |= !mark(&mut x.signature);
            }
        }
        let selftest_failed = self.selftest.as_ref().is_some_and(|st| !st.passed);
        self.verdict = if open_leak {
            Verdict::Leak
        } else if open_mismatch || open_fault || open_not_initial {
            Verdict::Corruption
        } else if open_view {
            Verdict::ViewWrong
        } else if selftest_failed {
            Verdict::SelftestFailed
        } else if self.total_checks == 0 {
            Verdict::Untested
        } else if !tally.is_empty() {
            Verdict::Known
        } else {
            Verdict::Clean
        };
        self.exit_code = self.verdict.exit_code();
        self.known_findings = tally;
    }
}

impl Verdict {
    /// The exit code of a run with this verdict (README: exit codes).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Clean | Verdict::Known => EXIT_CLEAN,
            Verdict::Corruption | Verdict::Leak | Verdict::SelftestFailed | Verdict::ViewWrong => EXIT_CORRUPTION,
            Verdict::Untested => EXIT_ENVIRONMENT,
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
            stop_on_known: false,
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
        Report::new(&[d], &plan, out, 1, vec![], &[])
    }

    /// A finding that matches the known bug `id` (None: no known bug).
    fn finding(id: Option<&str>) -> crate::schema::Leak {
        crate::schema::Leak {
            source: "execve".into(),
            class: crate::class::ClassId::Gpr,
            register: "t3".into(),
            lane: 0,
            observed: crate::schema::Hex(7),
            expected: crate::schema::Hex(0),
            reading: "r".into(),
            signature: id.map(|id| SignatureMatch {
                id: id.into(),
                acknowledged: false,
                name: id.into(),
                confidence: "match".into(),
                fix: String::new(),
                affected: String::new(),
                reference: String::new(),
            }),
        }
    }

    fn with_leaks(known: &[&str], leaks: Vec<crate::schema::Leak>) -> Report {
        let mut rep = report(5);
        rep.config.known = known.iter().map(|k| k.to_string()).collect();
        rep.leaks = Some(crate::schema::LeakReport { execs: 1, leaks, ..Default::default() });
        rep.decide();
        rep
    }

    /// A known bug is a finding until the user acknowledges it; then the run is `known`
    /// (exit 0), the finding still reported, marked and counted apart. One more finding
    /// that matches no acknowledged bug fails the run again.
    #[test]
    fn an_acknowledged_known_bug_is_reported_but_does_not_fail_the_run() {
        let rep = with_leaks(&[], vec![finding(Some("riscv-execve-gpr")); 3]);
        assert_eq!((rep.verdict, rep.exit_code), (Verdict::Leak, EXIT_CORRUPTION));
        assert_eq!(rep.known_findings, vec![KnownFinding { id: "riscv-execve-gpr".into(), count: 3, acknowledged: false }]);
        let rep = with_leaks(&["riscv-execve-gpr"], vec![finding(Some("riscv-execve-gpr")); 3]);
        assert_eq!((rep.verdict, rep.exit_code), (Verdict::Known, EXIT_CLEAN));
        assert!(rep.leaks.as_ref().unwrap().leaks.iter().all(|l| l.signature.as_ref().unwrap().acknowledged));
        assert_eq!(rep.known_findings[0].count, 3);
        assert!(human::verdict_line(&rep).contains("riscv-execve-gpr"), "{}", human::verdict_line(&rep));
        let ktap = ktap::render(&rep);
        assert!(ktap.contains("no_leaks # XFAIL"), "{ktap}");
        assert!(ktap.contains("xfail:1"), "{ktap}");
        let rep = with_leaks(&["riscv-execve-gpr"], vec![finding(Some("riscv-execve-gpr")), finding(None)]);
        assert_eq!((rep.verdict, rep.exit_code), (Verdict::Leak, EXIT_CORRUPTION));
        let rep = with_leaks(&["x86-stale-fpregs"], vec![finding(Some("riscv-execve-gpr"))]);
        assert_eq!(rep.verdict, Verdict::Leak, "another bug was acknowledged");
    }

    /// A selftest that missed planted faults: the verdict says so, and agrees with exit 1,
    /// also when the run checked nothing (once exit 3 and a clean verdict).
    #[test]
    fn a_failed_selftest_is_the_verdict_and_the_exit_code() {
        for checks in [5, 0] {
            let mut rep = report(checks);
            rep.selftest = Some(crate::schema::SelftestReport { faults_per_class: 1, classes: vec![], passed: false });
            rep.decide();
            assert_eq!((rep.verdict, rep.exit_code), (Verdict::SelftestFailed, EXIT_CORRUPTION), "{checks} checks");
            assert!(human::verdict_line(&rep).starts_with("regtorture: SELFTEST FAILED"), "{}", human::verdict_line(&rep));
        }
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

    /// A ptrace view that disagreed with the registers is its own verdict (exit 1), its own
    /// KTAP case fails, and its line names the regset and byte offset; a register that did not
    /// hold, in the same run, is corruption first.
    #[test]
    fn a_wrong_ptrace_view_is_its_own_verdict_and_ktap_case() {
        let view = |kind: &str| crate::schema::Mismatch {
            thread: 0,
            tid: 1,
            cpu: 0,
            iteration: 3,
            elapsed_s: 0.5,
            class: crate::class::ClassId::Gpr,
            register: "r9".into(),
            window: WindowKind::Spin,
            triggers: vec!["ptrace".into()],
            lanes: vec![crate::schema::LaneDiff {
                lane: 0,
                expected: crate::schema::Hex(1),
                observed: crate::schema::Hex(3),
                xor: crate::schema::Hex(2),
                bits_changed: 1,
                reading: crate::schema::Reading::BitFlip { bits: vec![1] },
                offset: Some(64),
            }],
            control_images: vec![],
            signature: None,
            window_ns: None,
            timeline: None,
            ptrace: Some(crate::schema::PtraceCheck { kind: kind.into(), regset: "NT_PRSTATUS".into(), stop: "interrupt".into() }),
            truncated: None,
        };
        let mut rep = report(5);
        rep.triggers = vec![crate::schema::TriggerReport {
            name: "ptrace".into(),
            status: crate::schema::TriggerStatus::Ran,
            reason: None,
            events: 9,
            events_per_s: 9.0,
            details: vec![],
        }];
        rep.decide();
        assert!(ktap::render(&rep).contains(" ptrace_views\n"), "{}", ktap::render(&rep));
        rep.mismatch_count = 1;
        rep.mismatches = vec![view("view")];
        rep.decide();
        assert_eq!((rep.verdict, rep.exit_code), (Verdict::ViewWrong, EXIT_CORRUPTION));
        let line = human::verdict_line(&rep);
        assert!(line.starts_with("regtorture: PTRACE VIEW WRONG") && line.contains("NT_PRSTATUS at byte(s) +64"), "{line}");
        assert!(ktap::render(&rep).contains("not ok ") && ktap::render(&rep).contains(" ptrace_views\n"), "{}", ktap::render(&rep));
        rep.mismatches.push(view("write"));
        rep.decide();
        assert_eq!(rep.verdict, Verdict::Corruption);
    }
}
