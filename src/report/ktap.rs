//! KTAP rendering (Documentation/dev-tools/ktap.rst): one test per register class × window
//! kind, skipped with the reason where the class is unavailable or was not selected; trigger
//! event counts as diagnostic lines. A test whose every finding matches a known bug the user
//! acknowledged (`--known`) is `ok ... # XFAIL` with the bug's id, as kselftest marks an
//! expected failure, and counted as xfail in the totals.

use std::fmt::Write;

use crate::schema::{Report, SignatureMatch, TriggerStatus};

/// The XFAIL directive of a test whose findings (their signatures) are all acknowledged known
/// bugs: "XFAIL known bug(s) a, b"; None when any is not (or there is none).
fn xfail<'a>(sigs: impl IntoIterator<Item = Option<&'a SignatureMatch>>) -> Option<String> {
    let mut ids: Vec<&str> = Vec::new();
    for s in sigs {
        let s = s.filter(|s| s.acknowledged)?;
        if !ids.contains(&s.id.as_str()) {
            ids.push(&s.id);
        }
    }
    (!ids.is_empty()).then(|| format!("XFAIL known bug(s) {}", ids.join(", ")))
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "KTAP version 1");
    let _ = writeln!(s, "# regtorture {} on {} (Linux {}), seed {}, {:.1} s", r.version, r.machine.arch, r.machine.kernel, r.config.seed, r.elapsed_s);
    // Test cases: every class x window kind, then no_faults, then every trigger selected.
    // The ptrace views' own case, where a ptrace trigger was selected.
    let traced = r.triggers.iter().find(|t| t.name.starts_with("ptrace"));
    // The core dumps' own case, where the check ran or said why not.
    let cores = r.leaks.as_ref().filter(|l| l.core_dumps > 0 || l.core_skip.is_some());
    let _ = writeln!(s, "1..{}", r.cells.len() + 2 + r.triggers.len() + usize::from(traced.is_some()) + usize::from(cores.is_some()));
    let (mut pass, mut fail, mut skip, mut xfails) = (0, 0, 0, 0);
    for (i, c) in r.cells.iter().enumerate() {
        let name = format!("{}_{}", c.class.name(), c.window.name());
        if let Some(why) = &c.skip {
            skip += 1;
            let _ = writeln!(s, "ok {} {} # SKIP {}", i + 1, name, why.replace('\n', " "));
        } else if c.checks == 0 && c.mismatches == 0 {
            // Not a pass: nothing of this cell was checked.
            skip += 1;
            let _ = writeln!(s, "ok {} {} # SKIP no window of this class and kind completed", i + 1, name);
        } else if let Some(x) =
            xfail(r.mismatches.iter().filter(|m| m.class == c.class && m.window == c.window).map(|m| m.signature.as_ref())).filter(|_| c.mismatches > 0)
        {
            xfails += 1;
            let _ = writeln!(s, "# {name}: {} corrupted registers in {} checks, all of acknowledged known bugs", c.mismatches, c.checks);
            let _ = writeln!(s, "ok {} {} # {x}", i + 1, name);
        } else if c.mismatches > 0 {
            fail += 1;
            let _ = writeln!(s, "# {name}: {} corrupted registers in {} checks", c.mismatches, c.checks);
            let _ = writeln!(s, "not ok {} {}", i + 1, name);
        } else {
            pass += 1;
            let _ = writeln!(s, "# {name}: {} checks", c.checks);
            let _ = writeln!(s, "ok {} {}", i + 1, name);
        }
    }
    // The last test: regtorture's own threads did not fault (a kernel bug can hit the tool).
    let n = r.cells.len() + 1;
    if r.faults.is_empty() {
        pass += 1;
        let _ = writeln!(s, "ok {n} no_faults");
    } else if let Some(x) = xfail(r.faults.iter().map(|f| f.signature.as_ref())) {
        xfails += 1;
        for f in &r.faults {
            let _ = writeln!(s, "# {}", super::human::fault_line(f));
        }
        let _ = writeln!(s, "ok {n} no_faults # {x}");
    } else {
        fail += 1;
        for f in &r.faults {
            let _ = writeln!(s, "# {}", super::human::fault_line(f));
            for reading in &f.readings {
                let _ = writeln!(s, "#   {}", reading.describe());
            }
        }
        let _ = writeln!(s, "not ok {n} no_faults");
    }
    // Then: no register value of another process was seen (execve, --processes).
    let n = r.cells.len() + 2;
    match &r.leaks {
        None => {
            skip += 1;
            let _ = writeln!(s, "ok {n} no_leaks # SKIP no leak check ran (--execs 0)");
        }
        Some(l) if l.execs == 0 && l.processes <= 1 && l.first_use == 0 => {
            skip += 1;
            let why = l.skip.clone().unwrap_or_else(|| "no leak check ran".into());
            let _ = writeln!(s, "ok {n} no_leaks # SKIP {}", why.replace('\n', " "));
        }
        Some(l) if l.leaks.is_empty() && l.not_initial.is_empty() => {
            pass += 1;
            let _ = writeln!(s, "# no_leaks: {} execve(s) ({}), {} first-use probe(s), {} informational", l.execs, l.entry, l.first_use, l.informational);
            let _ = writeln!(s, "ok {n} no_leaks");
        }
        Some(l) if xfail(l.leaks.iter().chain(&l.not_initial).map(|x| x.signature.as_ref())).is_some() => {
            xfails += 1;
            for x in l.leaks.iter().chain(&l.not_initial).take(20) {
                let _ = writeln!(s, "# {}", super::human::leak_line(x));
            }
            let x = xfail(l.leaks.iter().chain(&l.not_initial).map(|x| x.signature.as_ref())).unwrap_or_default();
            let _ = writeln!(s, "ok {n} no_leaks # {x}");
        }
        Some(l) => {
            fail += 1;
            for x in l.leaks.iter().chain(&l.not_initial).take(20) {
                let _ = writeln!(s, "# {}", super::human::leak_line(x));
            }
            let _ = writeln!(s, "not ok {n} no_leaks");
        }
    }
    for (i, t) in r.triggers.iter().enumerate() {
        let n = r.cells.len() + 3 + i;
        let name = format!("trigger_{}", t.name);
        match (t.status, &t.reason) {
            (TriggerStatus::Ran, _) => {
                pass += 1;
                let _ = writeln!(s, "# {name}: {} events ({:.0}/s)", t.events, t.events_per_s);
                let _ = writeln!(s, "ok {n} {name}");
            }
            (_, why) => {
                skip += 1;
                let why = why.clone().unwrap_or_default().replace('\n', " ");
                let _ = writeln!(s, "ok {n} {name} # SKIP {why}");
            }
        }
    }
    if let Some(t) = traced {
        let n = r.cells.len() + 3 + r.triggers.len();
        let views: Vec<_> = r.mismatches.iter().filter(|m| m.ptrace.as_ref().is_some_and(|p| p.kind == "view")).collect();
        if t.status != TriggerStatus::Ran {
            skip += 1;
            let _ = writeln!(s, "ok {n} ptrace_views # SKIP {}", t.reason.clone().unwrap_or_default().replace('\n', " "));
        } else if views.is_empty() {
            pass += 1;
            let _ = writeln!(s, "ok {n} ptrace_views");
        } else if let Some(x) = xfail(views.iter().map(|m| m.signature.as_ref())) {
            xfails += 1;
            let _ = writeln!(s, "ok {n} ptrace_views # {x}");
        } else {
            fail += 1;
            for m in &views {
                let _ = writeln!(s, "# {}", super::human::mismatch_line(m));
            }
            let _ = writeln!(s, "not ok {n} ptrace_views");
        }
    }
    if let Some(l) = cores {
        let n = r.cells.len() + 3 + r.triggers.len() + usize::from(traced.is_some());
        if l.core_dumps == 0 {
            skip += 1;
            let _ = writeln!(s, "ok {n} core_dumps # SKIP {}", l.core_skip.clone().unwrap_or_default().replace('\n', " "));
        } else if l.core.is_empty() {
            pass += 1;
            let _ = writeln!(s, "# core_dumps: {} core(s) read", l.core_dumps);
            let _ = writeln!(s, "ok {n} core_dumps");
        } else if let Some(x) = xfail(l.core.iter().map(|x| x.signature.as_ref())) {
            xfails += 1;
            let _ = writeln!(s, "ok {n} core_dumps # {x}");
        } else {
            fail += 1;
            for x in l.core.iter().take(20) {
                let _ = writeln!(s, "# {}", super::human::leak_line(x));
            }
            let _ = writeln!(s, "not ok {n} core_dumps");
        }
    }
    for m in &r.mismatches {
        let _ = writeln!(s, "# {}", super::human::mismatch_line(m));
    }
    let _ = writeln!(s, "# totals: pass:{pass} fail:{fail} xfail:{xfails} xpass:0 skip:{skip} error:0");
    s
}
