//! Running a report: the steps `regtorture run`, `selftest` and the VM's init share. From run
//! arguments to a plan (class selection, seed, triggers, vector length), then the run with its
//! phases and an optional prior selftest, to a [`Report`]. `app` (the command line) and
//! `vm::init` (regtorture as a guest's PID 1) both call it; it calls neither.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::arch::{self, linux};
use crate::class::{ClassDesc, ClassId};
use crate::cli::{Output, RunArgs};
use crate::engine;
use crate::error::{Error, Result};
use crate::pattern::{MAX_THREADS, Pattern};
use crate::plan::Plan;
use crate::report::{human, json, ktap, progress};
use crate::schema::{Report, SelftestReport};
use crate::selftest;
use crate::trace;
use crate::trigger::TriggerSet;
use crate::window::WindowKind;

/// The classes asked for (all available ones when none are named), checked against this machine.
pub fn select_classes(descs: &[ClassDesc], asked: &[ClassId]) -> Result<Vec<ClassDesc>> {
    if asked.is_empty() {
        let v: Vec<_> = descs.iter().filter(|d| d.available.is_ok()).cloned().collect();
        if v.is_empty() {
            return Err(Error::Environment("no register class is usable on this machine: nothing to test".into()));
        }
        return Ok(v);
    }
    asked
        .iter()
        .map(|c| {
            let d = descs.iter().find(|d| d.id() == *c).ok_or_else(|| Error::Usage(format!("register class '{c}' does not exist on {}", arch::name())))?;
            match &d.available {
                Ok(()) => Ok(d.clone()),
                Err(why) => Err(Error::Environment(format!("register class '{c}' is not available here: {why}"))),
            }
        })
        .collect()
}

pub(crate) fn default_seed() -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    crate::pattern::mix64(t ^ ((linux::getpid() as u64) << 32)) & 0xffff_ffff
}

/// Which triggers `--triggers` asks for: `None` means all.
pub(crate) fn trigger_names(args: &RunArgs) -> Option<Vec<String>> {
    if args.triggers.is_empty() || args.triggers.iter().any(|t| t == "all") {
        None
    } else if args.triggers.iter().any(|t| t == "none") {
        Some(Vec::new())
    } else {
        Some(args.triggers.clone())
    }
}

/// Set the vector lengths (`--sve-vl`, `--sme-vl`) the classes' layouts then follow.
pub(crate) fn set_vl(sve: Option<usize>, sme: Option<usize>) -> Result<()> {
    if let Some(n) = sve {
        arch::native().set_vector_length(n).map_err(|e| Error::Environment(format!("--sve-vl {n}: {e}")))?;
    }
    if let Some(n) = sme {
        arch::native().set_streaming_vector_length(n).map_err(|e| Error::Environment(format!("--sme-vl {n}: {e}")))?;
    }
    Ok(())
}

/// Refuse a `--json FILE` that cannot be written before spending the run on it.
pub fn check_json_path(path: Option<&str>) -> Result<()> {
    check_writable("--json", path)
}

/// Refuse an output file (`flag FILE`) that cannot be written before spending the run on it.
pub fn check_writable(flag: &str, path: Option<&str>) -> Result<()> {
    match path {
        Some(p) if p != "-" => {
            std::fs::OpenOptions::new().create(true).append(true).open(p).map(drop).map_err(|e| Error::Usage(format!("{flag} {p}: cannot write there: {e}")))
        }
        _ => Ok(()),
    }
}

/// Run what `args` asks for and return the report (used locally and by the VM's init).
///
/// `selftest`, when one ran before, goes into the report. When a fault that a thread cannot
/// survive stops the run, the report of what was found is given to `deliver` instead, and the
/// process ends with exit code 1 (see `engine::run`).
pub fn run_report(args: &RunArgs, selftest: Option<SelftestReport>, deliver: &dyn Fn(&Report)) -> Result<Report> {
    // Check before doing: everything the arguments can get wrong (known-bug ids, window kinds,
    // --require) is refused before the vector length is set or a trace instance is opened.
    let known = args.known_ids()?;
    let host = arch::host();
    let windows = if args.windows.is_empty() { WindowKind::runnable(&host) } else { dedup(&args.windows) };
    for w in &windows {
        if let Err(why) = w.available(&host) {
            return Err(Error::Environment(format!("window kind {w} cannot run here: {why}")));
        }
    }
    let names = trigger_names(args);
    let triggers = TriggerSet::select(names.as_deref());
    for r in &args.require {
        if names.as_ref().is_some_and(|n| !n.contains(r)) {
            return Err(Error::Usage(format!("--require {r}: the trigger is not selected by --triggers")));
        }
        if let Some((_, why)) = triggers.skipped().into_iter().find(|(n, _)| n == r) {
            return Err(Error::Environment(format!("required trigger {r} cannot run here: {why}")));
        }
    }
    // The classes' layouts follow the vector lengths (SVE, SME): set them, then detect.
    set_vl(args.sve_vl, args.sme_vl)?;
    let descs = arch::native().detect();
    let classes = select_classes(&descs, &args.classes)?;
    let trace_opts = trace::TraceOptions { buffer_kb_per_cpu: args.trace_buffer_kb as usize, ..Default::default() };
    let trace_opts = if args.trace_syscalls { trace_opts.with_syscalls() } else { trace_opts };
    let tracer = std::cell::RefCell::new(match args.trace.then(|| trace::Tracer::start(&trace_opts)) {
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(None),
    });
    let finish = |mut rep: Report| {
        if let Some(st) = &selftest {
            attach_selftest(&mut rep, st.clone());
        }
        match &*tracer.borrow() {
            Ok(Some(t)) => {
                t.freeze();
                match t.events() {
                    Ok(events) => {
                        let mut summary = t.summary(&events, &trace_opts);
                        summary.frozen_at_finding = !rep.mismatches.is_empty() || !rep.faults.is_empty();
                        trace::annotate(&mut rep, &events, summary);
                    }
                    Err(e) => rep.trace = Some(trace::skipped(format!("the trace could not be read: {e}"))),
                }
            }
            Err(why) => rep.trace = Some(trace::skipped(why.clone())),
            Ok(None) => {}
        }
        rep
    };
    let only = |names: &[&str]| TriggerSet::select(Some(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>()));
    let runs = |names: &[&str]| only(names).skipped().is_empty();
    let mut selection = Some(triggers);
    let phases: Vec<(TriggerSet, f64)> = plan_phases(names.is_none(), runs(IO_URING_PHASE), runs(SIGNAL_PHASE))
        .into_iter()
        .map(|(set, share)| (set.map(only).or_else(|| selection.take()).unwrap_or_else(|| only(&[])), share))
        .collect();
    let base = args.threads.map(|t| t as usize).unwrap_or_else(|| linux::allowed_cpus().len().max(1));
    let seed = args.seed.unwrap_or_else(default_seed);
    // --processes: this process's identity, and the others (started by the first).
    let stride = crate::leak::process_stride(args.processes);
    crate::leak::set_process(args.process_index.unwrap_or(0), stride);
    let others = match (args.processes, args.process_index) {
        (n, None) if n > 1 => crate::leak::start_processes(args, seed).map_err(Error::io("cannot start the other checking processes"))?,
        _ => crate::leak::Others::default(),
    };
    let cap = if stride > 0 { stride as usize } else { MAX_THREADS as usize - 1 };
    let plan_for = |t: &TriggerSet, share: f64| Plan {
        layouts: classes.iter().map(|d| d.layout.clone()).collect(),
        windows: windows.clone(),
        threads: (base + t.extra_threads()).min(cap),
        duration: args.duration.mul_f64(share),
        pattern: Pattern::new(seed),
        spin: args.spin,
        stop_on_first: args.stop_on_first && !args.keep_going,
        stop_on_known: args.stop_on_known,
        keep: 100,
    };
    linux::catch_stop_signals().map_err(Error::io("cannot catch SIGINT/SIGTERM"))?;
    let line = progress::Line::new(args.out.quiet, args.duration);
    let mut out: Option<engine::Outcome> = None;
    let mut selected: Vec<String> = Vec::new();
    let mut plan = plan_for(&phases[0].0, 1.0);
    for (t, share) in &phases {
        let p = plan_for(t, *share);
        let before = out.as_ref().map(|o| o.elapsed).unwrap_or_default();
        let fatal = |o: engine::Outcome| {
            line.finish();
            let mut all = out.clone().unwrap_or_else(|| o.clone());
            if out.is_some() {
                all.merge(o, p.keep);
            }
            let mut sel = selected.clone();
            sel.extend(t.running_names().into_iter().filter(|n| !selected.contains(n)));
            let mut plan = p.clone();
            plan.duration = args.duration;
            deliver(&finish(Report::new(&descs, &plan, all, seed, sel, &known)));
            // The process ends after this: the trace instance goes first.
            drop(tracer.replace(Ok(None)));
        };
        let o = engine::run(&p, t, |pr| line.update(&engine::Progress { elapsed: before + pr.elapsed, ..pr.clone() }), &fatal)
            .map_err(Error::io("cannot install the signal handlers"))?;
        for n in t.running_names() {
            if !selected.contains(&n) {
                selected.push(n);
            }
        }
        // A known bug does not end the run: the run goes on for what else this kernel has.
        let stop = o.interrupted || (p.stop_on_first && o.ends_a_stop_on_first_run(p.stop_on_known));
        match &mut out {
            None => out = Some(o),
            Some(acc) => acc.merge(o, p.keep),
        }
        plan.threads = plan.threads.max(p.threads);
        if stop {
            break;
        }
    }
    line.finish();
    plan.duration = args.duration;
    let out = out.expect("at least one phase ran");
    let mut rep = finish(Report::new(&descs, &plan, out, seed, selected, &known));
    if args.processes > 1 && args.process_index.is_none() {
        let l = others.finish(&mut rep, args.duration);
        crate::leak::attach(&mut rep, l);
    }
    if args.execs > 0 && args.process_index.is_none() && !rep.interrupted {
        // Every available class is loaded before execve, selected or not: a leak is a leak.
        let all: Vec<_> = descs.iter().filter(|d| d.available.is_ok()).map(|d| d.layout.clone()).collect();
        let leaks = crate::leak::exec_check(&all, seed, args.execs).map_err(Error::io("the execve leak check"))?;
        crate::leak::attach(&mut rep, leaks);
    }
    if args.core_dumps > 0 && args.process_index.is_none() && !rep.interrupted {
        let all: Vec<_> = descs.iter().filter(|d| d.available.is_ok()).map(|d| d.layout.clone()).collect();
        let c = crate::coredump::check(&all, seed, args.core_dumps);
        crate::leak::attach(
            &mut rep,
            crate::schema::LeakReport { core_dumps: c.dumps, core_skip: c.skip, core: c.findings, processes: 1, ..Default::default() },
        );
    }
    if let Some(fu) = crate::leak::take_first_use() {
        crate::leak::attach(&mut rep, fu);
    }
    rep.decide();
    Ok(rep)
}

/// The first phase of the default run: io_uring alone (the seed bug's path: io-wq worker
/// creation as task_work landing mid-window).
const IO_URING_PHASE: &[&str] = &["io_uring"];
/// The second: io_uring with timer signals (a signal arriving while that task_work runs on a
/// syscall's exit: the powerpc fast-exit signal bug's path).
const SIGNAL_PHASE: &[&str] = &["io_uring", "timer"];

/// The phases of a run, each with its triggers (`None`: the run's own selection) and its share
/// of the duration. The default run (`default_selection`: no --triggers) gives the task_work
/// paths phases of their own, since with every trigger on at once io_uring makes a fraction of
/// its io-wq workers: io_uring alone for a quarter, with timer signals for a quarter (each
/// where it can run here), then everything for the rest. Pure: the caller says what runs.
pub(crate) fn plan_phases(default_selection: bool, io_uring_runs: bool, signals_run: bool) -> Vec<(Option<&'static [&'static str]>, f64)> {
    let mut phases = Vec::new();
    if default_selection && io_uring_runs {
        phases.push((Some(IO_URING_PHASE), 0.25));
        if signals_run {
            phases.push((Some(SIGNAL_PHASE), 0.25));
        }
    }
    let rest = 1.0 - phases.iter().map(|p| p.1).sum::<f64>();
    phases.push((None, rest));
    phases
}

/// The selftest of the classes `args` selects (the VM's init runs it before the run).
pub fn selftest_for(args: &RunArgs) -> Result<SelftestReport> {
    set_vl(args.sve_vl, args.sme_vl)?;
    let descs = arch::native().detect();
    let ids: Vec<ClassId> = select_classes(&descs, &args.classes)?.iter().map(ClassDesc::id).collect();
    Ok(selftest::run(&descs, &ids, 100, args.seed.unwrap_or(1))?)
}

/// Put a selftest into a run's report: a failed selftest is the verdict (`Report::decide`).
pub fn attach_selftest(rep: &mut Report, st: SelftestReport) {
    rep.selftest = Some(st);
    rep.decide();
}

pub(crate) fn dedup<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

/// Write `text` (a JSON document) to `path`, or to standard output for `-`.
pub fn emit(path: &str, text: &str) -> Result<()> {
    if path == "-" {
        say!("{text}");
        Ok(())
    } else {
        std::fs::write(path, format!("{text}\n")).map_err(Error::io(format!("cannot write the JSON report to {path}")))
    }
}

/// Render `rep` where `out` says: the human summary (after `prefix`) to standard output, or to
/// standard error when standard output carries JSON or KTAP; the JSON report; the KTAP report.
pub fn deliver(rep: &Report, out: &Output, prefix: &str) -> Result<()> {
    let summary = if out.quiet { format!("{}\n", human::verdict_line(rep)) } else { human::render(rep) };
    let text = format!("{prefix}{summary}");
    if out.ktap || out.json.as_deref() == Some("-") {
        eprint!("{text}");
    } else {
        say!("{}", text.trim_end());
    }
    if let Some(path) = &out.json {
        emit(path, &json::report(rep))?;
    }
    if out.ktap {
        say!("{}", ktap::render(rep).trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_run_gives_the_task_work_paths_phases_of_their_own() {
        assert_eq!(plan_phases(true, true, true), vec![(Some(IO_URING_PHASE), 0.25), (Some(SIGNAL_PHASE), 0.25), (None, 0.5)]);
        assert_eq!(plan_phases(true, true, false), vec![(Some(IO_URING_PHASE), 0.25), (None, 0.75)]);
        // No io_uring here: one phase of everything that runs.
        assert_eq!(plan_phases(true, false, true), vec![(None, 1.0)]);
        // --triggers: exactly what was asked, the whole time.
        assert_eq!(plan_phases(false, true, true), vec![(None, 1.0)]);
    }
}
