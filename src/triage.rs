//! `regtorture triage`: from a configuration that finds something to the smallest one that
//! still does. It runs the configuration until its first finding, then narrows the triggers,
//! the window kinds, the register classes and the thread count by delta debugging, each
//! candidate tried a bounded number of times; the result is a ready-to-paste command line, the
//! steps with their reproduction rates, and the same as JSON.
//!
//! Every attempt is a child process (`regtorture run ... --json -` of this very executable):
//! a kernel bug may kill or corrupt the process that meets it, and triage must outlive that.
//! A child is killed when its time is up, when triage is interrupted, and when triage ends.
//!
//! "Still reproduces" means the same finding: the same known bug (signature) when the first
//! finding matched one, else the same kind (a fault with the same signal, or a mismatch of the
//! same class), so that narrowing does not drift to another bug.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::arch::{self, linux};
use crate::cli::{RunArgs, TriageArgs};
use crate::error::{EXIT_CLEAN, EXIT_CORRUPTION, Error, Result};
use crate::schema::{Report, TriageReport, TriageSetup, TriageStep};
use crate::window::WindowKind;

/// What each finding of a report is, for "the same finding" (see the module doc): the known
/// bug when a signature has the bug's fingerprint ("match"; a merely "consistent" one depends
/// on the value the corruption happened to leave), else the fault's signal or the class.
fn finding_keys(r: &Report) -> Vec<String> {
    let known = |s: &Option<crate::schema::SignatureMatch>| s.as_ref().filter(|s| s.confidence == "match").map(|s| format!("known bug: {}", s.name));
    let faults = r.faults.iter().map(|f| known(&f.signature).unwrap_or_else(|| format!("fault {}", f.signal)));
    let mismatches = r.mismatches.iter().map(|m| known(&m.signature).unwrap_or_else(|| format!("corruption of {} registers", m.class)));
    faults.chain(mismatches).collect()
}

/// The first finding's key.
fn finding_key(r: &Report) -> Option<String> {
    finding_keys(r).into_iter().next()
}

/// Whether `r` made the finding `key`.
fn made(r: &Report, key: &str) -> bool {
    finding_keys(r).iter().any(|k| k == key)
}

/// Seconds from the run's start to its first finding.
fn detect_s(r: &Report) -> f64 {
    let m = r.mismatches.first().map(|m| m.elapsed_s);
    let f = r.faults.first().map(|f| f.elapsed_s);
    match (m, f) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(r.elapsed_s),
    }
}

/// The class and window kind the first finding was made in.
fn finding_place(r: &Report) -> (Option<String>, Option<String>) {
    if let Some(m) = r.mismatches.first() {
        return (Some(m.class.name().to_string()), Some(m.window.name().to_string()));
    }
    let doing = r.faults.first().and_then(|f| f.doing.clone()).unwrap_or_default();
    let mut words = doing.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(c), Some(w), Some("window")) => (Some(c.to_string()), Some(w.to_string())),
        _ => (None, None),
    }
}

/// The options of `args` that are not narrowed, as `run` arguments.
fn fixed_args(args: &RunArgs) -> Vec<String> {
    let mut v = Vec::new();
    if args.spin != 20_000 {
        v.extend(["--spin".to_string(), args.spin.to_string()]);
    }
    if let Some(vl) = args.sve_vl {
        v.extend(["--sve-vl".to_string(), vl.to_string()]);
    }
    if let Some(vl) = args.sme_vl {
        v.extend(["--sme-vl".to_string(), vl.to_string()]);
    }
    if let Some(seed) = args.seed {
        v.extend(["--seed".to_string(), format!("{seed:#x}")]);
    }
    if args.trace {
        v.push("--trace".into());
    }
    if args.trace_syscalls {
        v.push("--trace-syscalls".into());
    }
    v
}

/// `run` arguments for classes, windows, triggers (`None`: as `run` picks them, the default
/// run's phases included; empty: `none`) and threads, then the options not narrowed.
fn run_args(classes: &[String], windows: &[String], triggers: Option<&[String]>, threads: u32, fixed: &[String]) -> Vec<String> {
    let mut a = vec!["--classes".into(), classes.join(","), "--windows".into(), windows.join(",")];
    if let Some(t) = triggers {
        a.extend(["--triggers".into(), if t.is_empty() { "none".into() } else { t.join(",") }]);
    }
    a.extend(["--threads".into(), threads.to_string()]);
    a.extend(fixed.iter().cloned());
    a
}

/// The `run` arguments of a setup (without duration and output options).
pub fn setup_args(s: &TriageSetup, fixed: &[String]) -> Vec<String> {
    run_args(&s.classes, &s.windows, Some(&s.triggers), s.threads, fixed)
}

/// One child run; `None` when it was stopped (triage interrupted) or made no report.
struct Attempt {
    report: Option<Report>,
    stopped: bool,
}

/// Kills the child on every way out.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attempt(run_args: &[String], duration: Duration) -> Result<Attempt> {
    let exe = std::env::current_exe().map_err(Error::io("cannot find this executable"))?;
    let mut cmd = Command::new(exe);
    // Triage hunts one finding, known bug or not: each run ends at the first.
    cmd.arg("run").args(run_args).args(["--duration", &format!("{}ms", duration.as_millis().max(1)), "--json", "-", "--quiet", "--stop-on-known"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = Reaped(cmd.spawn().map_err(Error::io("cannot start a run"))?);
    let mut out = child.0.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    // The run ends itself after `duration`; a hung one (a kernel bug can hang a thread) is
    // killed a while after. Its end (threads joined, the leak and core-dump checks, the
    // report) takes longer the longer it ran, and far longer under emulation: a 10-minute
    // first run in a TCG guest overran a fixed 20 s and was killed without its report.
    let deadline = Instant::now() + duration + Duration::from_secs(20) + duration / 4;
    loop {
        if linux::STOP_REQUESTED.load(std::sync::atomic::Ordering::Acquire) {
            drop(child);
            return Ok(Attempt { report: None, stopped: true });
        }
        match child.0.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.0.kill();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::io("cannot wait for a run")(e)),
        }
    }
    drop(child);
    let buf = reader.join().unwrap_or_default();
    Ok(Attempt { report: serde_json::from_slice(&buf).ok(), stopped: false })
}

/// The narrowing: state shared by the steps.
struct Triage<'a> {
    fixed: Vec<String>,
    key: String,
    each: Duration,
    attempts: u32,
    deadline: Instant,
    steps: Vec<TriageStep>,
    quiet: bool,
    progress: &'a dyn Fn(&str),
    stopped: bool,
}

impl Triage<'_> {
    fn out_of_time(&self) -> bool {
        self.stopped || Instant::now() >= self.deadline
    }

    /// Whether `s` reproduces the finding: up to `attempts` runs, the first success ends it.
    fn test(&mut self, what: &str, s: &TriageSetup) -> bool {
        let args = setup_args(s, &self.fixed);
        let mut tried = 0;
        let mut hit = None;
        while tried < self.attempts && !self.out_of_time() {
            tried += 1;
            let left = self.deadline.saturating_duration_since(Instant::now());
            if !self.quiet {
                (self.progress)(&format!("triage: trying {what}: {} (attempt {tried}/{})", args.join(" "), self.attempts));
            }
            match attempt(&args, self.each.min(left.max(Duration::from_millis(1)))) {
                Ok(a) if a.stopped => {
                    self.stopped = true;
                    break;
                }
                Ok(a) => {
                    if let Some(r) = a.report.filter(|r| made(r, &self.key)) {
                        hit = Some(detect_s(&r));
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        self.steps.push(TriageStep { tried: what.to_string(), setup: s.clone(), attempts: tried, reproduced: hit.is_some() as u32, detect_s: hit });
        hit.is_some()
    }

    /// Delta debugging (ddmin) of one list: the smallest sub-list with which `with` still
    /// reproduces, trying `hint` alone first (where the finding was made).
    fn narrow(
        &mut self,
        name: &str,
        list: Vec<String>,
        hint: Option<&str>,
        with: &dyn Fn(&TriageSetup, Vec<String>) -> TriageSetup,
        base: &TriageSetup,
    ) -> Vec<String> {
        let mut cur = list;
        if let Some(h) = hint.filter(|h| cur.len() > 1 && cur.iter().any(|c| c == h)) {
            if self.test(&format!("{name} {h} alone"), &with(base, vec![h.to_string()])) {
                cur = vec![h.to_string()];
            }
        }
        let mut n = 2;
        while cur.len() >= 2 && !self.out_of_time() {
            let chunk = cur.len().div_ceil(n);
            let parts: Vec<Vec<String>> = cur.chunks(chunk).map(|c| c.to_vec()).collect();
            let mut reduced = false;
            for p in &parts {
                if p.len() < cur.len() && self.test(&format!("{name} {}", p.join(",")), &with(base, p.clone())) {
                    cur = p.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced && parts.len() > 2 {
                for p in &parts {
                    let rest: Vec<String> = cur.iter().filter(|c| !p.contains(c)).cloned().collect();
                    if self.test(&format!("{name} without {}", p.join(",")), &with(base, rest.clone())) {
                        cur = rest;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if !reduced {
                if n >= cur.len() {
                    break;
                }
                n = (2 * n).min(cur.len());
            }
        }
        cur
    }
}

/// Run `regtorture triage`. `progress` shows which subset is tried (standard error).
pub fn run(args: &TriageArgs, progress: &dyn Fn(&str)) -> Result<TriageReport> {
    let run = &args.run;
    linux::catch_stop_signals().map_err(Error::io("cannot catch SIGINT/SIGTERM"))?;
    let start = Instant::now();
    let deadline = start + args.budget;
    // The starting point, made explicit: what `run` would select here.
    let descs = arch::native().detect();
    let classes: Vec<String> = crate::runner::select_classes(&descs, &run.classes)?.iter().map(|d| d.id().name().to_string()).collect();
    let host = arch::host();
    let windows: Vec<String> =
        if run.windows.is_empty() { WindowKind::runnable(&host) } else { run.windows.clone() }.iter().map(|w| w.name().to_string()).collect();
    let triggers = crate::runner::trigger_names(run);
    let threads = run.threads.unwrap_or_else(|| linux::allowed_cpus().len().max(1) as u32);
    let fixed = fixed_args(run);
    let quiet = run.out.quiet;
    // 1. The given configuration until its first finding (triggers as given: the default
    //    run's phases included).
    let first_args = run_args(&classes, &windows, triggers.as_deref(), threads, &fixed);
    if !quiet {
        progress(&format!("triage: running until the first finding: regtorture run {}", first_args.join(" ")));
    }
    let first_budget = run.duration.min(args.budget);
    let a = attempt(&first_args, first_budget)?;
    let base_report = match a.report {
        Some(r) if finding_key(&r).is_some() => r,
        Some(_) | None if a.stopped => return Err(Error::Environment("triage interrupted before the first finding".into())),
        Some(r) => {
            return Ok(TriageReport::clean(first_args, r.elapsed_s, start.elapsed().as_secs_f64()));
        }
        None => return Err(Error::Environment("the first run made no report (see `regtorture run` with these options)".into())),
    };
    let key = finding_key(&base_report).expect("checked");
    let first_s = detect_s(&base_report);
    // The triggers that were running at the finding (the default run's phase, say).
    let running =
        base_report.faults.first().map(|f| f.triggers.clone()).or_else(|| base_report.mismatches.first().map(|m| m.triggers.clone())).unwrap_or_default();
    let each = Duration::from_secs_f64((first_s * 5.0).max(2.0));
    let (hint_class, hint_window) = finding_place(&base_report);
    let mut t = Triage { fixed: fixed.clone(), key: key.clone(), each, attempts: args.attempts, deadline, steps: Vec::new(), quiet, progress, stopped: false };
    let mut cur = TriageSetup { classes, windows, triggers: running, threads };
    // 2. Classes and window kinds first, each starting from where the finding was made (a
    //    positive control that picks its class at random reproduces the same finding only once
    //    the class is fixed), then triggers, then threads.
    let c = t.narrow("classes", cur.classes.clone(), hint_class.as_deref(), &|b, v| TriageSetup { classes: v, ..b.clone() }, &cur);
    cur.classes = c;
    let w = t.narrow("windows", cur.windows.clone(), hint_window.as_deref(), &|b, v| TriageSetup { windows: v, ..b.clone() }, &cur);
    cur.windows = w;
    let trig = t.narrow("triggers", cur.triggers.clone(), None, &|b, v| TriageSetup { triggers: v, ..b.clone() }, &cur);
    cur.triggers = trig;
    if cur.triggers.len() == 1 && !t.out_of_time() && t.test("no trigger at all", &TriageSetup { triggers: vec![], ..cur.clone() }) {
        cur.triggers.clear();
    }
    let mut n = 1;
    while n < cur.threads && !t.out_of_time() {
        if t.test(&format!("{n} thread(s)"), &TriageSetup { threads: n, ..cur.clone() }) {
            cur.threads = n;
            break;
        }
        n *= 2;
    }
    // 3. The minimal setup's reproduction rate: every attempt runs.
    let args_min = setup_args(&cur, &fixed);
    let mut rate = (0, 0);
    let mut detect = Vec::new();
    for _ in 0..args.attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        if t.stopped || linux::STOP_REQUESTED.load(std::sync::atomic::Ordering::Acquire) || left < each.min(Duration::from_secs(2)) {
            break;
        }
        if !quiet {
            progress(&format!("triage: confirming: regtorture run {} ({}/{})", args_min.join(" "), rate.1 + 1, args.attempts));
        }
        let a = attempt(&args_min, each.min(left))?;
        if a.stopped {
            break;
        }
        rate.1 += 1;
        if let Some(r) = a.report.filter(|r| made(r, &key)) {
            rate.0 += 1;
            detect.push(detect_s(&r));
        }
    }
    let interrupted = t.stopped || linux::STOP_REQUESTED.load(std::sync::atomic::Ordering::Acquire);
    let mut run_line = args_min.clone();
    run_line.extend(["--duration".into(), format!("{}s", each.as_secs().max(2))]);
    Ok(TriageReport {
        finding: Some(key),
        first_run: first_args,
        first_detect_s: Some(first_s),
        attempt_s: each.as_secs_f64(),
        steps: t.steps,
        minimal: Some(cur),
        confirmed: rate.0,
        confirm_attempts: rate.1,
        confirm_detect_s: detect,
        run_args: run_line,
        elapsed_s: start.elapsed().as_secs_f64(),
        budget_exhausted: Instant::now() >= deadline,
        interrupted,
        exit_code: EXIT_CORRUPTION,
        vm_command: None,
        reproducer: None,
    })
}

impl TriageReport {
    /// Nothing found in the first run: nothing to narrow.
    pub fn clean(first_run: Vec<String>, ran_s: f64, elapsed_s: f64) -> TriageReport {
        TriageReport {
            finding: None,
            first_run,
            first_detect_s: None,
            attempt_s: ran_s,
            steps: Vec::new(),
            minimal: None,
            confirmed: 0,
            confirm_attempts: 0,
            confirm_detect_s: Vec::new(),
            run_args: Vec::new(),
            elapsed_s,
            budget_exhausted: false,
            interrupted: false,
            exit_code: EXIT_CLEAN,
            vm_command: None,
            reproducer: None,
        }
    }

    /// The ready-to-paste command line.
    pub fn command(&self) -> Option<String> {
        self.minimal.as_ref().map(|_| format!("regtorture run {}", self.run_args.join(" ")))
    }
}

/// `--emit-c`: write the minimal setup of `rep` as a C program for `arch` to `path`, and say
/// in the report what was written, or why nothing could be (a setup the C backend cannot
/// express is not an error of the triage).
pub fn emit_reproducer(rep: &mut TriageReport, arch: crate::cli::GuestArch, path: &str, kernel: Option<String>) -> Result<()> {
    use crate::class::ClassId;
    use crate::reproducer;
    let Some(m) = &rep.minimal else { return Ok(()) };
    let classes: Vec<ClassId> = m.classes.iter().filter_map(|c| ClassId::from_name(c)).collect();
    let windows: Vec<WindowKind> = m.windows.iter().filter_map(|w| WindowKind::from_name(w)).collect();
    let mut setup = reproducer::Setup::new(arch, classes, windows, m.triggers.clone());
    setup.threads = m.threads as usize;
    setup.seconds = (rep.attempt_s.ceil() as u64).max(2) * 2;
    setup.kernel = kernel;
    setup.finding = rep.finding.clone();
    match reproducer::emit_c(&setup) {
        Ok(text) => {
            std::fs::write(path, text).map_err(Error::io(format!("cannot write the C program to {path}")))?;
            rep.reproducer = Some(format!("{path} (build it with {} -O2 -static -pthread)", reproducer::cross_gcc(arch)));
        }
        Err(e) => {
            // The empty file the writability check made goes again.
            if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(path);
            }
            rep.reproducer = Some(format!("not written: {e}"));
        }
    }
    Ok(())
}

/// The human summary.
pub fn render(r: &TriageReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let Some(key) = &r.finding else {
        let _ = writeln!(s, "regtorture triage: CLEAN: nothing found in {:.1} s of regtorture run {}; nothing to narrow", r.attempt_s, r.first_run.join(" "));
        return s;
    };
    let _ = writeln!(s, "triage of: {key}");
    let _ = writeln!(s, "first found after {:.3} s by: regtorture run {}", r.first_detect_s.unwrap_or(0.0), r.first_run.join(" "));
    let _ = writeln!(
        s,
        "each candidate: up to {} attempt(s) of {:.1} s; the first reproduction accepts it",
        r.steps.iter().map(|x| x.attempts).max().unwrap_or(0),
        r.attempt_s
    );
    let _ = writeln!(s, "\n{:<40} {:>10} {:>10}", "step", "reproduced", "after");
    for st in &r.steps {
        let after = st.detect_s.map_or("-".to_string(), |d| format!("{d:.3} s"));
        let _ = writeln!(s, "{:<40} {:>6}/{:<3} {:>10}", st.tried, st.reproduced, st.attempts, after);
    }
    if let Some(m) = &r.minimal {
        let _ = writeln!(
            s,
            "\nminimal: classes {} | windows {} | triggers {} | {} thread(s)",
            m.classes.join(","),
            m.windows.join(","),
            if m.triggers.is_empty() { "none".into() } else { m.triggers.join(",") },
            m.threads
        );
        if r.confirm_attempts == 0 {
            let _ = writeln!(s, "not confirmed: no time was left for confirming runs");
        } else {
            let _ = writeln!(
                s,
                "reproduced {}/{} confirming runs{}",
                r.confirmed,
                r.confirm_attempts,
                median(&r.confirm_detect_s).map_or(String::new(), |d| format!(", median {d:.3} s to the finding"))
            );
        }
        if let Some(c) = r.command() {
            let _ = writeln!(s, "\n  {c}");
        }
        if let Some(vm) = &r.vm_command {
            let _ = writeln!(s, "  {vm}");
        }
        if let Some(c) = &r.reproducer {
            let _ = writeln!(s, "\nC reproducer: {c}");
        }
    }
    let why = if r.interrupted {
        " (interrupted: the best so far)"
    } else if r.budget_exhausted {
        " (budget spent: the best so far)"
    } else {
        ""
    };
    let _ = writeln!(s, "\nregtorture triage: {} steps in {:.1} s{why}", r.steps.len(), r.elapsed_s);
    s
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}
