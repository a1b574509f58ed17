//! The Prometheus text exposition format, for node_exporter's textfile collector: what the last
//! run (or selftest) found, as gauges a fleet's Prometheus scrapes and alerts on
//! (deploy/prometheus/regtorture-alerts.yml, docs/fleet.md). Written atomically by the caller.

use std::fmt::Write;

use crate::schema::{ClassStatus, Report, SelftestReport, SelftestStatus, Verdict};

/// A label value, escaped as the format wants (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(s: &mut String, name: &str, help: &str) {
    let _ = writeln!(s, "# HELP regtorture_{name} {help}");
    let _ = writeln!(s, "# TYPE regtorture_{name} gauge");
}

/// The CPU model as /proc/cpuinfo names it (x86 "model name", powerpc "cpu", arm64 none).
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "model name" | "cpu" | "CPU part").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn info(s: &mut String, arch: &str, kernel: &str) {
    family(s, "info", "The machine and tool of the last run (always 1).");
    let _ = writeln!(
        s,
        "regtorture_info{{version=\"{}\",arch=\"{}\",kernel=\"{}\",cpu_model=\"{}\"}} 1",
        esc(env!("CARGO_PKG_VERSION")),
        esc(arch),
        esc(kernel),
        esc(&cpu_model())
    );
}

fn selftest(s: &mut String, st: &SelftestReport) {
    family(s, "selftest_passed", "1 when the selftest caught every injected fault.");
    let _ = writeln!(s, "regtorture_selftest_passed {}", u8::from(st.passed));
    // The register-fault rows, then the process-leak controls' rows in families of their own
    // (one series per class in each).
    for (control, name, what) in [
        (None, "selftest", "Faults"),
        (Some("process-leak"), "selftest_process_leak", "Other processes' values"),
        (Some("exec-leak"), "selftest_exec_leak", "Values planted at the exec stop"),
        (Some("ptrace-write"), "selftest_ptrace_write", "Wrong values recorded for ptrace writes"),
        (Some("frame-rewrite"), "selftest_frame_rewrite", "Wrong values recorded for a handler's frame rewrites"),
    ] {
        let rows = || st.classes.iter().filter(move |c| c.status == SelftestStatus::Tested && c.control.as_deref() == control);
        let how = match control {
            Some("exec-leak" | "ptrace-write") => "through ptrace",
            _ => "through signal frames",
        };
        family(s, &format!("{name}_injected"), &format!("{what} injected {how}, per class."));
        for c in rows() {
            let _ = writeln!(s, "regtorture_{name}_injected{{class=\"{}\"}} {}", c.class, c.injected);
        }
        family(s, &format!("{name}_detected"), "Of those, detected in the right register, lane and bits, per class.");
        for c in rows() {
            let _ = writeln!(s, "regtorture_{name}_detected{{class=\"{}\"}} {}", c.class, c.detected);
        }
    }
}

/// The metrics of a run; `now` is the Unix time it ended.
pub fn render(r: &Report, now: f64) -> String {
    let mut s = String::new();
    info(&mut s, &r.machine.arch, &r.machine.kernel);
    family(&mut s, "last_run_timestamp_seconds", "When the last run ended (Unix time).");
    let _ = writeln!(s, "regtorture_last_run_timestamp_seconds {now:.3}");
    family(&mut s, "last_run_duration_seconds", "How long the last run checked.");
    let _ = writeln!(s, "regtorture_last_run_duration_seconds {:.3}", r.elapsed_s);
    // One 0/1 family per verdict that is not clean.
    let flags = [
        ("corruption", Verdict::Corruption, "1 when the last run found register corruption or a fault (verdict corruption), else 0."),
        ("leak", Verdict::Leak, "1 when the last run saw another process's register values (verdict leak), else 0."),
        ("untested", Verdict::Untested, "1 when the last run completed no window (verdict untested, exit 3): it certifies nothing, else 0."),
        ("known_only", Verdict::Known, "1 when every finding of the last run was an acknowledged known bug (verdict known, exit 0), else 0."),
        ("selftest_failed", Verdict::SelftestFailed, "1 when the selftest before the last run missed planted faults (verdict selftest-failed), else 0."),
        ("ptrace_view_wrong", Verdict::ViewWrong, "1 when a ptrace register set showed other values than the registers held (verdict view-wrong), else 0."),
    ];
    for (name, verdict, help) in flags {
        family(&mut s, name, help);
        let _ = writeln!(s, "regtorture_{name} {}", u8::from(r.verdict == verdict));
    }
    family(&mut s, "known_findings", "Findings of the last run that matched a known bug, per signature id; acknowledged ones (--known) do not fail the run.");
    for k in &r.known_findings {
        let _ = writeln!(s, "regtorture_known_findings{{signature=\"{}\",acknowledged=\"{}\"}} {}", k.id, k.acknowledged, k.count);
    }
    family(&mut s, "exit_code", "The exit code of the last run.");
    let _ = writeln!(s, "regtorture_exit_code {}", r.exit_code);
    family(&mut s, "checks", "Windows checked in the last run, per class and window kind.");
    for c in &r.cells {
        if r.classes.iter().any(|x| x.name == c.class && x.status == ClassStatus::Tested) {
            let _ = writeln!(s, "regtorture_checks{{class=\"{}\",window=\"{}\"}} {}", c.class, c.window, c.checks);
        }
    }
    family(&mut s, "corrupted_registers", "Registers found corrupted in the last run (the first 100 in detail), per class and register.");
    let mut seen: Vec<(String, String, u64)> = Vec::new();
    for m in &r.mismatches {
        match seen.iter_mut().find(|x| x.0 == m.class.name() && x.1 == m.register) {
            Some(x) => x.2 += 1,
            None => seen.push((m.class.name().to_string(), m.register.clone(), 1)),
        }
    }
    for (class, reg, n) in &seen {
        let _ = writeln!(s, "regtorture_corrupted_registers{{class=\"{class}\",register=\"{}\"}} {n}", esc(reg));
    }
    family(&mut s, "mismatches", "All corrupted registers found in the last run.");
    let _ = writeln!(s, "regtorture_mismatches {}", r.mismatch_count);
    family(&mut s, "faults", "Faults of regtorture's own threads in the last run (each a finding).");
    let _ = writeln!(s, "regtorture_faults {}", r.fault_count.max(r.faults.len() as u64));
    family(&mut s, "trigger_events", "Kernel events each trigger caused in the last run.");
    for t in &r.triggers {
        let _ = writeln!(
            s,
            "regtorture_trigger_events{{trigger=\"{}\",status=\"{}\"}} {}",
            t.name,
            serde_json::to_value(t.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            t.events
        );
    }
    if let Some(st) = &r.selftest {
        selftest(&mut s, st);
    }
    s
}

/// Write `text` to `path` the way a textfile collector needs: a temporary file beside it,
/// then a rename, so that a scrape never reads half a file.
pub fn write_atomically(path: &str, text: &str) -> std::io::Result<()> {
    let tmp = format!("{path}.{}.tmp", std::process::id());
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
