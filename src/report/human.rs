//! The human summary: per class checks, per window kind windows, per trigger events, every
//! recorded mismatch in full, and the verdict as the last line.

use std::fmt::Write;

use super::si;

use crate::schema::{ClassStatus, FaultReport, Leak, LeakReport, Mismatch, Reading, Report, SelftestReport, SelftestStatus, Timeline, TriggerStatus, Verdict};

/// What a reading means, in words.
pub fn reading(r: &Reading) -> String {
    match r {
        Reading::Stale { iterations_ago } => format!("its own value from {iterations_ago} iteration(s) ago (stale save/restore)"),
        Reading::OtherRegister { class, register, lane, iterations_ago } => {
            let when = match iterations_ago {
                0 => "this iteration".to_string(),
                n => format!("{n} iteration(s) ago"),
            };
            format!("the value of {class} {register} lane {lane} from {when}")
        }
        Reading::OtherThread { thread, class, register, lane } => {
            format!("checking thread {thread}'s value of {class} {register} lane {lane} (another task's state)")
        }
        Reading::OtherProcess { process, thread, class, register, lane } => {
            format!("LEAK: process {process}'s (checking thread {thread}) value of {class} {register} lane {lane}: another process's register state")
        }
        Reading::SignalHandler { class, register, lane } => {
            format!("the signal handler's value of {class} {register} lane {lane} (not restored at sigreturn)")
        }
        Reading::TracerValue { class, register, lane } => format!("the value the tracer wrote to {class} {register} lane {lane} through ptrace"),
        Reading::BeforePtraceWrite => "the value before the tracer's ptrace write: the write was lost".into(),
        Reading::FrameRewrite { class, register, lane } => format!("the value a signal handler wrote into its frame for {class} {register} lane {lane}"),
        Reading::BeforeFrameRewrite => "the value before the signal handler rewrote its frame: sigreturn did not deliver the frame's value".into(),
        Reading::ControlImage { register } => format!("the image of {register} (used as scratch to save it?)"),
        Reading::Zero => "zero (register reset to init state?)".into(),
        Reading::InitState => "the register's initial (after-exec) value".into(),
        Reading::BitFlip { bits } => format!("bit flip(s) at {bits:?}"),
        Reading::Unknown => "an unknown value".into(),
        Reading::SyscallResult { syscall, errno } => format!(
            "{syscall} returned -{errno} ({}) where it must return 0 (EINTR only after a handled signal: none was)",
            std::io::Error::from_raw_os_error(*errno as i32)
        ),
    }
}

/// One line naming a mismatch (used by KTAP diagnostics and the verdict).
pub fn mismatch_line(m: &Mismatch) -> String {
    let lanes: Vec<String> = m.lanes.iter().map(|l| l.lane.to_string()).collect();
    if let Some(p) = m.ptrace.as_ref().filter(|p| p.kind == "view") {
        let at: Vec<String> = m.lanes.iter().filter_map(|l| l.offset.map(|o| format!("+{o}"))).collect();
        return format!(
            "{} {} lane(s) {} shown wrong by {} at byte(s) {} at a {} stop in a {} window (thread {}, tid {}, iteration {}, {:.3} s){}",
            m.class,
            m.register,
            lanes.join(","),
            p.regset,
            at.join(","),
            p.stop,
            m.window,
            m.thread,
            m.tid,
            m.iteration,
            m.elapsed_s,
            known_tag(m.signature.as_ref())
        );
    }
    format!(
        "{} {} lane(s) {} corrupted in a {} window (thread {}, tid {}, cpu {}, iteration {}, {:.3} s){}",
        m.class,
        m.register,
        lanes.join(","),
        m.window,
        m.thread,
        m.tid,
        m.cpu,
        m.iteration,
        m.elapsed_s,
        known_tag(m.signature.as_ref())
    )
}

/// ": known bug \[id\] (acknowledged)" after a finding's line, or nothing.
fn known_tag(sig: Option<&crate::schema::SignatureMatch>) -> String {
    sig.map(|s| format!(": known bug [{}]{} \"{}\"", s.id, if s.acknowledged { " (acknowledged)" } else { "" }, s.name)).unwrap_or_default()
}

fn mismatch_detail(s: &mut String, i: usize, m: &Mismatch) {
    let _ = writeln!(s, "  #{} {}", i + 1, mismatch_line(m));
    if !m.triggers.is_empty() {
        let _ = writeln!(s, "      triggers running: {}", m.triggers.join(", "));
    }
    for l in &m.lanes {
        let bits = l.xor.0.count_ones();
        let _ = writeln!(
            s,
            "      lane {}: expected {:#018x} observed {:#018x} xor {:#018x} ({bits} bit(s)) = {}",
            l.lane,
            l.expected.0,
            l.observed.0,
            l.xor.0,
            reading(&l.reading)
        );
    }
    if let Some(t) = &m.truncated {
        let what = t.length_is.as_ref().map(|w| format!(": {w}")).unwrap_or_default();
        let _ = writeln!(s, "      the register was cut short: its first {} bytes held, every lane after them is zero{what}", t.bytes);
    }
    if !m.control_images.is_empty() {
        let imgs: Vec<String> = m.control_images.iter().map(|(n, v)| format!("{n}={:#x}", v.0)).collect();
        let _ = writeln!(s, "      control registers written this window: {}", imgs.join(" "));
    }
    known_bug(s, m.signature.as_ref());
    if let Some(t) = &m.timeline {
        timeline(s, t, m.tid, "the window's start");
    }
}

/// The human timeline shows a finding's last events; the JSON has them all.
const TIMELINE_SHOWN: usize = 16;

/// A finding's kernel timeline, its times in microseconds from `origin`.
fn timeline(s: &mut String, t: &Timeline, tid: i32, origin: &str) {
    let n = t.events.len();
    let shown = &t.events[n.saturating_sub(TIMELINE_SHOWN)..];
    let _ = writeln!(
        s,
        "      kernel timeline of tid {tid} ({n} event(s){}{}; microseconds from {origin}):",
        if shown.len() < n { format!(", the last {} shown", shown.len()) } else { String::new() },
        if t.truncated { ", the trace begins after the window's start" } else { "" }
    );
    if n == 0 {
        let _ = writeln!(s, "        (none recorded)");
    }
    for e in shown {
        let what = e.note.clone().unwrap_or_else(|| e.fields.clone());
        let who = if e.tid == tid { String::new() } else { format!(" [{}-{}]", e.comm, e.tid) };
        let _ = writeln!(s, "        {:>+8} cpu{:<3} {:<22} {what}{who}", (e.t_ns as f64 / 1e3).round() as i64, e.cpu, e.name);
    }
}

fn known_bug(s: &mut String, sig: Option<&crate::schema::SignatureMatch>) {
    if let Some(sig) = sig {
        let _ = writeln!(s, "      known bug ({}): {}", sig.confidence, sig.name);
        let _ = writeln!(s, "        fix: {}", sig.fix);
        let _ = writeln!(s, "        affected: {}", sig.affected);
        let _ = writeln!(s, "        see: {}", sig.reference);
    }
}

/// One line naming a fault (used by KTAP diagnostics and the verdict).
pub fn fault_line(f: &FaultReport) -> String {
    let who = match (f.thread, &f.doing) {
        (Some(n), Some(d)) => format!("checking thread {n} (tid {}, {d})", f.tid),
        _ => format!("thread {}", f.tid),
    };
    format!(
        "{} in {who} at pc {:#x} ({}), {:.3} s{}{}",
        f.signal,
        f.pc.0,
        f.pc_location,
        f.elapsed_s,
        if f.recovered { ", recovered" } else { "" },
        known_tag(f.signature.as_ref())
    )
}

fn fault_detail(s: &mut String, i: usize, f: &FaultReport) {
    let _ = writeln!(s, "  #{} {}", i + 1, fault_line(f));
    let _ = writeln!(s, "      si_code {} si_addr {:#x}", f.si_code, f.si_addr.0);
    if !f.triggers.is_empty() {
        let _ = writeln!(s, "      triggers running: {}", f.triggers.join(", "));
    }
    for r in &f.readings {
        let _ = writeln!(s, "      reading: {}", r.describe());
    }
    if let Some(l) = &f.lost_signal {
        let _ = writeln!(
            s,
            "      lost signal: {} set up (trap {:#x}) to resume at {:#x} ({}); its handler never ran{}",
            l.signal,
            l.trap.0,
            l.resume_pc.0,
            l.resume_at,
            if f.recovered { "; the frame was returned from and the thread went on" } else { "" }
        );
    }
    for row in f.registers.chunks(4) {
        let cells: Vec<String> = row.iter().map(|(n, v)| format!("{n:>8} {:#018x}", v.0)).collect();
        let _ = writeln!(s, "     {}", cells.join(" "));
    }
    known_bug(s, f.signature.as_ref());
    if let Some(t) = &f.timeline {
        timeline(s, t, f.tid, "the fault");
    }
}

/// One leak (or a register not initial after execve), on one line.
pub fn leak_line(l: &Leak) -> String {
    format!(
        "{} {} lane {} after {} held {:#018x} (expected {:#x}): {}{}",
        l.class,
        l.register,
        l.lane,
        l.source,
        l.observed.0,
        l.expected.0,
        l.reading,
        known_tag(l.signature.as_ref())
    )
}

/// The leak checks' section of the summary.
fn leaks(s: &mut String, l: &LeakReport) {
    if let Some(why) = &l.skip {
        let _ = writeln!(s, "\nleaks: the execve check did not run: {why}");
    }
    let _ = writeln!(
        s,
        "
leaks: {} execve(s) checked ({}), {} checking process(es), {} first-use probe(s): {} leak(s), {} not initial, {} informational",
        l.execs,
        l.entry,
        l.processes.max(1),
        l.first_use,
        l.leaks.len(),
        l.not_initial.len(),
        l.informational
    );
    for x in l.leaks.iter().take(10) {
        let _ = writeln!(s, "  LEAK {}", leak_line(x));
    }
    for x in l.not_initial.iter().take(10) {
        let _ = writeln!(s, "  not initial: {}", leak_line(x));
    }
    match &l.core_skip {
        Some(why) if l.core_dumps == 0 => {
            let _ = writeln!(s, "core dumps: not checked: {why}");
        }
        _ if l.core_dumps > 0 => {
            let _ = writeln!(s, "core dumps: {} core(s) read, {} lane(s) shown wrong", l.core_dumps, l.core.len());
        }
        _ => {}
    }
    for x in l.core.iter().take(10) {
        let _ = writeln!(s, "  core shows wrong: {}", leak_line(x));
    }
}

/// The last line of every run: the verdict.
pub fn verdict_line(r: &Report) -> String {
    let partial = if r.interrupted { " (interrupted: partial)" } else { "" };
    let line = verdict_only(r, partial);
    // Known bugs are named with the verdict, whatever it is: acknowledged or not, found.
    let known: Vec<String> = r.known_findings.iter().map(|k| format!("{} x{}{}", k.id, k.count, if k.acknowledged { " (acknowledged)" } else { "" })).collect();
    if known.is_empty() || r.verdict == Verdict::Known { line } else { format!("{line}; known bugs also found: {}", known.join(", ")) }
}

/// The first finding the user did not acknowledge (the one the verdict is about), else the first.
fn first_open<T>(v: &[T], sig: impl Fn(&T) -> Option<&crate::schema::SignatureMatch>) -> Option<&T> {
    v.iter().find(|x| !sig(x).is_some_and(|s| s.acknowledged)).or(v.first())
}

fn verdict_only(r: &Report, partial: &str) -> String {
    // A verdict from the execve/first-use leak check's findings: their count, the first open one.
    let leaks_verdict = |word: &str, what: &str, list: fn(&crate::schema::LeakReport) -> &Vec<Leak>| {
        let l = r.leaks.clone().unwrap_or_default();
        let list = list(&l);
        format!("regtorture: {word}: {} {what}; first: {}{partial}", list.len(), first_open(list, |x| x.signature.as_ref()).map(leak_line).unwrap_or_default())
    };
    let tested = r.classes.iter().filter(|c| c.status == ClassStatus::Tested).count();
    // What a clean or known verdict rests on.
    let scope = format!(
        "{} checks of {} classes x {} window kinds, {} threads, {:.1} s{}",
        si(r.total_checks as f64),
        tested,
        r.windows.len(),
        r.config.threads,
        r.elapsed_s,
        partial
    );
    match r.verdict {
        Verdict::Known => format!(
            "regtorture: KNOWN: only acknowledged known bugs found ({}); no other finding in {scope}",
            r.known_findings.iter().map(|k| format!("{} x{}", k.id, k.count)).collect::<Vec<_>>().join(", "),
        ),
        Verdict::SelftestFailed => format!(
            "regtorture: SELFTEST FAILED: the detector missed faults planted through the kernel, so nothing is certified ({}){}",
            r.selftest.as_ref().map(selftest_verdict).unwrap_or_default(),
            partial
        ),
        Verdict::Clean => format!("regtorture: CLEAN: no register corruption in {scope}"),
        Verdict::ViewWrong if r.mismatches.iter().all(|m| m.ptrace.as_ref().is_none_or(|p| p.kind != "view")) => {
            let core = r.leaks.as_ref().map(|l| l.core.clone()).unwrap_or_default();
            format!(
                "regtorture: CORE VIEW WRONG: the process held its registers, but {} lane(s) of its core showed other values; first: {}{}",
                core.len(),
                first_open(&core, |x| x.signature.as_ref()).map(leak_line).unwrap_or_default(),
                partial
            )
        }
        Verdict::ViewWrong => format!(
            "regtorture: PTRACE VIEW WRONG: the registers held, but {} lane(s) read through ptrace showed other values; first: {}{}",
            r.mismatches.iter().filter(|m| m.ptrace.as_ref().is_some_and(|p| p.kind == "view")).map(|m| m.lanes.len()).sum::<usize>(),
            first_open(&r.mismatches, |x| x.signature.as_ref()).map(mismatch_line).unwrap_or_default(),
            partial
        ),
        Verdict::Untested => format!(
            "regtorture: UNTESTED: no window completed in {:.1} s ({} threads), so nothing is certified: the checking threads \
             made no progress (an overloaded machine, or signals that outrun an emulator?); try fewer --triggers or a longer --duration{}",
            r.elapsed_s, r.config.threads, partial
        ),
        Verdict::Corruption if r.mismatch_count == 0 && r.faults.is_empty() => {
            leaks_verdict("CORRUPTION", "register lane(s) not in their initial state (after execve, or at first use)", |l| &l.not_initial)
        }
        Verdict::Leak => leaks_verdict("LEAK", "register value(s) of another process seen", |l| &l.leaks),
        Verdict::Corruption if r.mismatch_count == 0 => format!(
            "regtorture: CORRUPTION: {} fault(s) of regtorture's own threads; first: {}{}",
            r.fault_count.max(r.faults.len() as u64),
            first_open(&r.faults, |x| x.signature.as_ref()).map(fault_line).unwrap_or_default(),
            partial
        ),
        Verdict::Corruption => format!(
            "regtorture: CORRUPTION: {} corrupted register(s){}; first: {}{}",
            r.mismatch_count,
            if r.faults.is_empty() { String::new() } else { format!(" and {} fault(s)", r.fault_count.max(r.faults.len() as u64)) },
            first_open(&r.mismatches, |x| x.signature.as_ref()).map(mismatch_line).unwrap_or_default(),
            partial
        ),
    }
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "regtorture {} on {} (Linux {}, {} CPUs), {} threads, {:.1} s, seed {}",
        r.version, r.machine.arch, r.machine.kernel, r.machine.cpus, r.config.threads, r.elapsed_s, r.config.seed
    );
    if r.machine.user_mode_emulation {
        let _ = writeln!(s, "note: user-mode emulation (qemu-user): system calls and signal frames are the emulator's, not a kernel's");
    }
    if let Some(st) = &r.selftest {
        s.push_str(&selftest(st));
    }
    let _ = writeln!(s, "\n{:<10} {:>14} {:>12}  note", "class", "checks", "per second");
    for c in &r.classes {
        let note = match c.status {
            ClassStatus::Tested => format!("{} registers", c.registers),
            ClassStatus::Unavailable => format!("unavailable: {}", c.reason.clone().unwrap_or_default()),
            ClassStatus::NotSelected => "not selected".into(),
        };
        let _ = writeln!(s, "{:<10} {:>14} {:>12}  {}", c.name.name(), c.checks, si(c.checks as f64 / r.elapsed_s.max(1e-9)), note);
    }
    if let Some(l) = &r.leaks {
        leaks(&mut s, l);
    }
    let _ = writeln!(s, "\n{:<12} {:>12}", "window", "windows");
    for w in &r.windows {
        let _ = writeln!(s, "{:<12} {:>12}", w.name.name(), w.windows);
    }
    if !r.triggers.is_empty() {
        let _ = writeln!(s, "\n{:<11} {:>12} {:>12}  note", "trigger", "events", "per second");
        for t in &r.triggers {
            let note = match (&t.reason, t.status) {
                (Some(why), TriggerStatus::Skipped) => format!("skipped: {why}"),
                (Some(why), _) => format!("idle: {why}"),
                (None, _) => t.details.iter().map(|(k, v)| format!("{k}={}", si(*v))).collect::<Vec<_>>().join(" "),
            };
            let _ = writeln!(s, "{:<11} {:>12} {:>12}  {}", t.name, t.events, si(t.events_per_s), note);
        }
    }
    if let Some(t) = &r.trace {
        match &t.reason {
            Some(why) => {
                let _ = writeln!(s, "\ntrace: {}: {why}", t.status);
            }
            None => {
                let _ = writeln!(
                    s,
                    "\ntrace: {} kernel events in the buffer ({} KiB per CPU; {} lost, {} overwritten){}{}",
                    t.recorded,
                    t.buffer_kb_per_cpu,
                    t.lost,
                    t.overwritten,
                    if t.frozen_at_finding { ", stopped at the first finding" } else { "" },
                    if t.missing.is_empty() { String::new() } else { format!("; not on this kernel: {}", t.missing.join(", ")) }
                );
            }
        }
    }
    if r.mismatch_count > 0 {
        let _ = writeln!(s, "\nmismatches ({} in all, {} shown):", r.mismatch_count, r.mismatches.len());
        for (i, m) in r.mismatches.iter().enumerate() {
            mismatch_detail(&mut s, i, m);
        }
    }
    if !r.faults.is_empty() {
        let _ = writeln!(s, "\nfaults of regtorture's own threads ({} in all, {} shown):", r.fault_count.max(r.faults.len() as u64), r.faults.len());
        for (i, f) in r.faults.iter().enumerate() {
            fault_detail(&mut s, i, f);
        }
    }
    let _ = writeln!(s, "\n{}", verdict_line(r));
    s
}

/// The selftest table.
pub fn selftest(st: &SelftestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nselftest: {} faults per class injected through signal frames (exec-leak: at the exec stop)", st.faults_per_class);
    let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>8} {:>10} {:>14}  note", "class", "detected", "injected", "missed", "misplaced", "median latency");
    for c in &st.classes {
        let name = match &c.control {
            Some(k) => format!("{} {k}", c.class.name()),
            None => c.class.name().to_string(),
        };
        if c.status == SelftestStatus::Skipped {
            let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>8} {:>10} {:>14}  skipped: {}", name, "-", "-", "-", "-", "-", c.reason.clone().unwrap_or_default());
            continue;
        }
        let note = match (c.passed(), c.failures.is_empty()) {
            (true, true) => "ok".to_string(),
            // A passed row's notes: what it could not judge (a known bug's windows).
            (true, false) => format!("ok; {}", c.failures.join("; ")),
            (false, _) => format!("FAILED: {}", c.failures.join("; ")),
        };
        let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>8} {:>10} {:>11.1} us  {}", name, c.detected, c.injected, c.missed, c.misplaced, c.median_latency_us, note);
    }
    s
}

/// The selftest's verdict line.
pub fn selftest_verdict(st: &SelftestReport) -> String {
    let tested: Vec<_> = st.classes.iter().filter(|c| c.status == SelftestStatus::Tested).collect();
    let caught: u32 = tested.iter().map(|c| c.detected).sum();
    let injected: u32 = tested.iter().map(|c| c.injected).sum();
    if st.passed {
        format!("regtorture selftest: PASS: {caught}/{injected} injected faults detected in {} classes", tested.len())
    } else {
        let bad: Vec<_> = tested
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.control.as_ref().map_or(c.class.name().to_string(), |k| format!("{} {k}", c.class.name())))
            .collect();
        format!("regtorture selftest: FAIL: {caught}/{injected} injected faults detected; failing classes: {}", bad.join(", "))
    }
}
