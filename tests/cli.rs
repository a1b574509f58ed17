//! End-to-end tests of the built binary against the running kernel: selftest, a clean run, the
//! report formats, usage errors, and stopping on SIGINT.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regtorture"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).stdin(Stdio::null()).output().expect("run regtorture");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// (name, available) of every entry of one section of `list` ("register classes", "window
/// kinds", "triggers"): what this machine's architecture has, so that no test hard-codes it.
fn listed(section: &str) -> Vec<(String, bool)> {
    let (code, out, _) = run(&["list"]);
    assert_eq!(code, 0);
    out.lines()
        .skip_while(|l| !l.starts_with(section))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().to_string(), f.next() == Some("available"))
        })
        .collect()
}

/// The classes `list` says are available here.
fn available_classes() -> Vec<String> {
    listed("register classes").into_iter().filter(|(_, a)| *a).map(|(n, _)| n).collect()
}

#[test]
fn selftest_detects_every_injected_fault_in_every_available_class() {
    let (code, out, err) = run(&["selftest", "--json", "-"]);
    assert_eq!(code, 0, "selftest failed:\n{err}");
    let v = json(&out);
    assert_eq!(v["passed"], true);
    let avail = available_classes();
    assert!(!avail.is_empty(), "every architecture has a class that runs everywhere (gpr): {avail:?}");
    for c in v["classes"].as_array().unwrap() {
        let name = c["class"].as_str().unwrap();
        // The execve control of this dynamic build is a skip with its reason (the else branch;
        // tests/cross.rs runs it in the static build).
        if avail.iter().any(|a| a == name) && c["control"] != "exec-leak" {
            assert_eq!(c["status"], "tested", "{name}");
            // The controls that run as triggers plant as many as their rounds make, at least
            // the selftest's number (docs/ptrace.md); the others exactly that.
            if c["control"] == "ptrace-write" || c["control"] == "frame-rewrite" {
                assert!(c["injected"].as_u64().unwrap() >= 100, "{c}");
            } else {
                assert_eq!(c["injected"], 100, "{name}");
            }
            assert_eq!(c["detected"], c["injected"], "{c}");
            assert_eq!(c["spurious"], 0, "{name}");
        } else {
            assert_eq!(c["status"], "skipped", "{name}");
            assert!(c["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }
    assert!(err.contains("PASS"), "{err}");
    // The kernel's other hands have their rows: a ptrace write and a frame rewrite told wrong
    // (ptrace where it can run: not under Yama scope 3).
    let rows = v["classes"].as_array().unwrap();
    for control in ["ptrace-write", "frame-rewrite"] {
        assert!(rows.iter().any(|r| r["control"] == control), "no {control} row: {rows:?}");
    }
}

#[test]
fn selftest_fault_count_is_configurable_and_checked() {
    let class = available_classes().remove(0);
    let (code, out, _) = run(&["selftest", "--classes", &class, "--faults", "7", "--json", "-"]);
    assert_eq!(code, 0);
    let v = json(&out);
    let classes = v["classes"].as_array().unwrap();
    // The class, and its process-leak control where it has plain-data registers (the other
    // controls' rows count what they planted).
    let rows: Vec<_> = classes.iter().filter(|c| c.get("control").is_none() || c["control"] == "process-leak").collect();
    assert!(!rows.is_empty() && rows.len() <= 2, "{classes:?}");
    for c in rows {
        assert_eq!(c["detected"], 7, "{c}");
    }
}

#[test]
fn a_short_run_over_all_classes_and_windows_is_clean_and_reports_everything() {
    let dir = std::env::temp_dir().join(format!("regtorture-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.json");
    let (code, out, err) = run(&["run", "--duration", "5s", "--triggers", "none", "--json", path.to_str().unwrap(), "--seed", "0x5eed"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("regtorture: CLEAN"), "verdict line last: {last}");
    let v = json(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["mismatch_count"], 0);
    assert_eq!(v["config"]["seed"], "0x5eed");
    let listed: Vec<String> = v["classes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    for (c, _) in self::listed("register classes") {
        assert!(listed.contains(&c), "class {c} missing from the JSON report");
    }
    for c in v["classes"].as_array().unwrap() {
        if c["status"] == "tested" {
            assert!(c["checks"].as_u64().unwrap() > 0, "{c}");
        } else {
            assert!(c["reason"].is_string(), "an untested class says why: {c}");
        }
    }
    // Every window kind that runs here (the scv ones only on powerpc64 with scv).
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), self::listed("window kinds").iter().filter(|(_, a)| *a).count(), "{windows:?}");
    assert!(windows.iter().all(|w| !w["name"].as_str().unwrap().starts_with("scv")));
    for w in windows {
        assert!(w["windows"].as_u64().unwrap() > 0, "{w}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ktap_output_is_well_formed() {
    // No core dumps: their case would follow no_leaks (tests/views.rs checks it).
    let (code, out, err) = run(&["run", "--duration", "1s", "--triggers", "none", "--ktap", "--windows", "spin,signal", "--core-dumps", "0"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "KTAP version 1");
    let plan = lines.iter().find(|l| l.starts_with("1..")).expect("plan line");
    let n: usize = plan[3..].parse().unwrap();
    // One result per class x window kind, then `no_faults` and `no_leaks`, numbered 1..n in order.
    let results: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(results.len(), n);
    // --triggers none: no trigger cases.
    let classes = self::listed("register classes").len();
    assert_eq!(n, classes * 2 + 2, "spin and signal windows of {classes} classes, no_faults and no_leaks");
    assert!(results[n - 2].ends_with(" no_faults"), "{}", results[n - 2]);
    assert!(results[n - 1].starts_with(&format!("ok {n} no_leaks")), "{}", results[n - 1]);
    for (i, r) in results.iter().enumerate() {
        let rest = r.trim_start_matches("not ").trim_start_matches("ok ");
        let num: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(num, i + 1);
        assert!(!r.starts_with("not ok"), "{r}");
    }
    let tested = format!("{}_signal", available_classes()[0]);
    assert!(results.iter().any(|r| r.contains(&tested)), "{tested}");
    assert!(lines.iter().any(|l| l.starts_with("# totals: pass:")));
    assert!(err.contains("regtorture: CLEAN"), "the human summary went to stderr: {err}");
}

#[test]
fn bad_arguments_exit_2_with_one_line_saying_what_is_accepted() {
    for (args, hint) in [
        (vec!["--duration", "5x"], "500ms"),
        (vec!["run", "--duration", "-1s"], "duration"),
        (vec!["run", "--classes", "avx1024"], "one of"),
        (vec!["run", "--windows", "nap"], "one of"),
        (vec!["run", "--triggers", "cosmic-rays"], "one of"),
        (vec!["run", "--threads", "0"], "1..=512"),
        (vec!["run", "--seed", "0xzz"], "hex"),
        (vec!["selftest", "--faults", "0"], "1..=100000"),
        (vec!["--frobnicate"], "frobnicate"),
        (vec!["run", "--stop-on-first", "maybe"], "true"),
        (vec!["run", "--json", "/nonexistent-dir/report.json"], "cannot write"),
        (vec!["run", "--sve-vl", "17"], "multiple of 16"),
        (vec!["run", "--known", "a-bug-nobody-knows"], "riscv-execve-gpr"),
        (vec!["run", "--known-file", "/nonexistent-dir/known.txt"], "cannot read"),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line, got:\n{err}");
        assert!(err.contains(hint), "{args:?}: '{hint}' not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_unavailable_class_asked_for_by_name_is_an_environment_error() {
    let missing = listed("register classes").into_iter().find(|(_, a)| !a).map(|(n, _)| n);
    let Some(class) = missing else {
        common::skip("every class of this architecture is available here: no unavailable one to ask for");
        return;
    };
    let class = class.as_str();
    let (code, _, err) = run(&["run", "--duration", "1s", "--classes", class]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not available here"), "{err}");
    // For a kselftest-style runner (--ktap): KSFT_SKIP, and a KTAP plan of nothing with the reason.
    let (code, out, err) = run(&["run", "--duration", "1s", "--classes", class, "--ktap"]);
    assert_eq!(code, 4, "{err}");
    assert!(out.starts_with("KTAP version 1\n1..0 # SKIP register class"), "{out}");
}

#[test]
fn version_names_the_git_revision() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(out.contains(&format!("(git {head}")), "{out} does not name {head}");
}

#[test]
fn help_and_version_exit_0() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("selftest") && out.contains("Exit codes"));
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("regtorture "));
}

/// SIGINT ends a 60 s run at the end of the current window with the report of what was
/// checked so far. How fast is the machine's affair (a loaded machine is slower): the test
/// asks that the run ended long before its duration, and kills it if not.
#[test]
fn sigint_stops_the_run_early_and_prints_the_report() {
    let mut child = Reaped(bin().args(["run", "--duration", "60s", "--json", "-"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    // The run is on once its threads are (the stop handler comes before them), however slow
    // the machine is to get there; then it checks a while.
    child.wait_for_threads(2);
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) }, 0);
    let (code, stdout, stderr) = child.finish(Duration::from_secs(30), "after SIGINT");
    assert_eq!(code, Some(0), "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["interrupted"], true);
    assert!(v["elapsed_s"].as_f64().unwrap() < 31.5, "{}", v["elapsed_s"]);
    assert!(v["total_checks"].as_u64().unwrap() > 0);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_stop_signal_on_a_checking_thread_inside_its_syscall_is_no_finding() {
    for round in 0..8 {
        let mut child = Reaped(
            bin()
                .args(["run", "--duration", "30s", "--threads", "1", "--triggers", "none", "--windows", "poll", "--execs", "0", "--json", "-"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id() as i32;
        std::thread::sleep(Duration::from_millis(300 + 37 * round));
        // With no triggers and one checking thread, the only task besides the main one is it.
        let checker: Vec<i32> =
            std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|&t| t != pid).collect();
        assert_eq!(checker.len(), 1, "{checker:?}");
        // SAFETY: tgkill(2) on a thread of our own child.
        assert_eq!(unsafe { libc::syscall(libc::SYS_tgkill, pid, checker[0], libc::SIGINT) }, 0);
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut stdout).unwrap();
        assert_eq!(child.0.wait().unwrap().code(), Some(0), "round {round}: {stdout}");
        assert_eq!(json(&stdout)["interrupted"], true);
    }
}

/// The whole run path catches a real fault: the `inject` trigger rewrites a register in a
/// checking thread's signal frame mid-window, and the run must stop with exit 1, a diagnosis
/// naming the class, register and lanes, and a failing KTAP case.
#[test]
fn a_run_finds_diagnoses_and_reports_an_injected_corruption() {
    let start = std::time::Instant::now();
    let (code, out, err) = run(&["run", "--duration", "30s", "--triggers", "inject", "--json", "-", "--ktap"]);
    assert_eq!(code, 1, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "stop on first: {:?}", start.elapsed());
    let json_end = out.find("\nKTAP version 1").expect("KTAP after JSON");
    let v = json(&out[..json_end]);
    assert_eq!(v["verdict"], "corruption");
    assert!(v["mismatch_count"].as_u64().unwrap() >= 1);
    let m = &v["mismatches"][0];
    assert!(m["register"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(!m["lanes"].as_array().unwrap().is_empty());
    for l in m["lanes"].as_array().unwrap() {
        assert_ne!(l["expected"], l["observed"]);
        assert!(l["bits_changed"].as_u64().unwrap() > 0);
    }
    assert_eq!(m["triggers"][0], "inject");
    let ktap = &out[json_end..];
    assert!(ktap.lines().any(|l| l.starts_with("not ok ")), "{ktap}");
    assert!(err.lines().last().unwrap().starts_with("regtorture: CORRUPTION"), "{err}");
}

/// The positive control of fault forensics: a checking thread's signal frame is rewritten so
/// that sigreturn jumps to the RFLAGS image. The thread cannot survive that, and the run must
/// still end with the full report (human, JSON, KTAP), verdict corruption and exit 1, naming
/// the thread, its window, the PC, every register and what they say.
#[test]
fn a_fault_of_a_checking_thread_is_a_finding_with_forensics() {
    let (code, out, err) = run(&["run", "--duration", "30s", "--triggers", "fault", "--json", "-", "--ktap", "--classes", "sse,gpr"]);
    assert_eq!(code, 1, "{err}");
    let json_end = out.find("\nKTAP version 1").expect("KTAP after JSON");
    let v = json(&out[..json_end]);
    assert_eq!(v["verdict"], "corruption");
    assert_eq!(v["mismatch_count"], 0, "no register was corrupted, a thread faulted");
    let f = &v["faults"][0];
    assert_eq!(f["signal"], "SIGSEGV", "{f}");
    assert_eq!(f["recovered"], false, "{f}");
    assert!(f["thread"].is_u64(), "a checking thread: {f}");
    assert!(f["doing"].as_str().unwrap().ends_with("window"), "{f}");
    // Without --trace no window times are published: neither anchor of a timeline is claimed.
    assert!(f.get("window_start_ns").is_none() && f.get("outside_since_ns").is_none(), "{f}");
    assert_eq!(f["pc_location"], "nothing (unmapped)", "{f}");
    let readings: Vec<&str> = f["readings"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(readings.contains(&"pc_is_state_image"), "{readings:?}");
    let regs = f["registers"].as_array().unwrap();
    let reg = |n: &str| regs.iter().find(|r| r[0] == n).map(|r| r[1].clone()).unwrap_or_else(|| panic!("{n} missing: {f}"));
    assert_eq!(reg("rip"), f["pc"]);
    assert_eq!(regs.len(), 23);
    let ktap = &out[json_end..];
    assert!(ktap.lines().any(|l| l.starts_with("not ok ") && l.ends_with(" no_faults")), "{ktap}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("regtorture: CORRUPTION: 1 fault(s) of regtorture's own threads"), "{last}");
    assert!(err.contains("reading: the PC equals the machine-state image"), "{err}");
}

/// A trigger that ran but caused no event says so: status "idle" with the reason in JSON, and a
/// KTAP SKIP, never a silent "ran". (`inject` waits 200 ms before its first attempt, so a
/// 100 ms run gives it no chance.)
#[test]
fn a_trigger_that_caused_no_event_is_idle_not_ran() {
    let (code, out, err) = run(&["run", "--duration", "100ms", "--triggers", "inject", "--json", "-", "--ktap"]);
    assert_eq!(code, 0, "{err}");
    let json_end = out.find("\nKTAP version 1").expect("KTAP after JSON");
    let v = json(&out[..json_end]);
    let t = &v["triggers"][0];
    assert_eq!(t["name"], "inject");
    assert_eq!(t["status"], "idle", "{t}");
    assert_eq!(t["events"], 0);
    assert!(t["reason"].as_str().unwrap().contains("caused no event"), "{t}");
    let ktap = &out[json_end..];
    assert!(ktap.lines().any(|l| l.starts_with("ok ") && l.contains(" trigger_inject # SKIP ran for")), "{ktap}");
    assert!(err.contains("idle: ran for"), "{err}");
}

/// The kernel's own KTAP parser (tools/testing/kunit/kunit.py from Debian's linux-source-6.1,
/// unpacked by scripts/setup) accepts --ktap output, and counts what regtorture counts: a run
/// with a failure (the inject control), skips (classes not selected) and passes.
#[test]
fn ktap_is_read_by_the_kernels_own_parser_with_the_same_counts() {
    let kunit = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kunit/tools/testing/kunit/kunit.py");
    assert!(kunit.exists(), "{} is missing: run scripts/setup", kunit.display());
    // One class of every architecture's (gpr) out of several: the others' cells are skipped as
    // not selected, on any CPU (a skip that hangs on a missing class would vanish on a CPU that
    // has them all).
    let (code, ktap, err) = run(&["run", "--duration", "3s", "--ktap", "--classes", "gpr", "--windows", "spin,signal", "--triggers", "inject,tgkill"]);
    assert_eq!(code, 1, "the inject control makes a failure: {err}");
    let not_selected = ktap.lines().filter(|l| l.ends_with("# SKIP not selected")).count();
    assert!(not_selected >= 2, "every other class is skipped in both windows:\n{ktap}");
    let totals = ktap.lines().find_map(|l| l.strip_prefix("# totals: ")).expect("totals line");
    let count = |what: &str| -> u64 {
        totals.split_whitespace().find_map(|f| f.strip_prefix(what)).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{what} in {totals}"))
    };
    let (pass, fail, skip) = (count("pass:"), count("fail:"), count("skip:"));
    assert!(pass > 0 && fail > 0 && skip >= not_selected as u64, "{totals}");
    let mut child =
        Command::new("python3").arg(&kunit).arg("parse").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(ktap.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().find(|l| l.contains("Testing complete.")).unwrap_or_else(|| panic!("kunit.py said:\n{text}"));
    let want = format!("Ran {} tests: passed: {pass}, failed: {fail}, skipped: {skip}", pass + fail + skip);
    assert!(summary.contains(&want), "kunit.py: {summary}; regtorture: {totals}");
}

/// Every transition class and every process-leak control is selftested 100/100: the state the
/// ABI zeroes (the transition classes' faults go only there) and another process's value
/// planted through a signal frame must be reported in exactly the faulted lane.
#[test]
fn transition_classes_and_process_leak_controls_detect_every_fault() {
    let (code, out, err) = run(&["selftest", "--json", "-"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let rows = v["classes"].as_array().unwrap();
    let transitions = ["neon-sve", "fp-vmx-vsx", "avx-upper", "sve-za", "sve-ssve"];
    let avail = available_classes();
    let here: Vec<&str> = transitions.iter().copied().filter(|t| avail.iter().any(|a| a == t)).collect();
    assert!(!here.is_empty(), "no transition class available here: {avail:?}");
    for t in &here {
        let r = rows.iter().find(|r| r["class"] == *t && r.get("control").is_none()).expect(t);
        assert_eq!((r["injected"].as_u64(), r["detected"].as_u64()), (Some(100), Some(100)), "{r}");
    }
    // The execve check's control needs the entry stub to be the first instruction: this test
    // build is dynamic, so the row says why it was skipped (tests/cross.rs runs it static).
    let exec = rows.iter().find(|r| r["control"] == "exec-leak").expect("an exec-leak row");
    assert_eq!(exec["status"], "skipped", "{exec}");
    assert!(exec["reason"].as_str().unwrap().contains("dynamic loader"), "{exec}");
    let leaks: Vec<_> = rows.iter().filter(|r| r["control"] == "process-leak").collect();
    assert!(!leaks.is_empty(), "no process-leak control ran");
    for r in leaks {
        assert_eq!(r["status"], "tested", "{r}");
        assert_eq!((r["injected"].as_u64(), r["detected"].as_u64(), r["misplaced"].as_u64()), (Some(100), Some(100), Some(0)), "{r}");
    }
}

/// A fresh copy of regtorture started with execve from registers full of pattern values sees
/// none of them; the probe reports the entry state with the initial values it is held to.
#[test]
fn execve_children_see_no_pattern_value() {
    let (code, out, err) = run(&["run", "--duration", "300ms", "--triggers", "none", "--execs", "5", "--json", "-"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["schema_version"], 2);
    let l = &v["leaks"];
    assert_eq!(l["execs"], 5, "{l}");
    assert_eq!(l["leaks"].as_array().unwrap().len(), 0, "{l}");
    assert_eq!(l["not_initial"].as_array().unwrap().len(), 0, "{l}");
    // The probe: the host build is dynamic, so ld.so ran before the entry stub.
    let (code, out, _) = run(&["__exec-probe"]);
    assert_eq!(code, 0);
    let p = json(&out);
    let lanes = p["lanes"].as_array().expect("the entry stub ran");
    let mxcsr = lanes.iter().find(|x| x["register"] == "mxcsr" || x["register"] == "fpcr" || x["register"] == "fpscr");
    assert!(mxcsr.is_some_and(|x| x["init"].is_u64()), "{lanes:?}");
    // --execs 0: no check, and KTAP says so.
    let (code, out, _) = run(&["run", "--duration", "200ms", "--triggers", "none", "--execs", "0", "--ktap"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.contains(" no_leaks # SKIP")), "{out}");
}

/// --processes: the others run with the same seed and their own identities, report to the
/// first, and are gone when it exits, also when it is interrupted.
#[test]
fn checking_processes_run_side_by_side_and_leave_nothing_behind() {
    let (code, out, err) = run(&["run", "--duration", "2s", "--threads", "1", "--processes", "3", "--execs", "0", "--json", "-"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["leaks"]["processes"], 3, "{}", v["leaks"]);
    assert_eq!(v["leaks"]["leaks"].as_array().unwrap().len(), 0);
    assert_eq!(v["verdict"], "clean");
    let mut first = Reaped(
        bin()
            .args(["run", "--duration", "60s", "--threads", "1", "--processes", "3", "--execs", "0", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let pid = first.0.id() as i32;
    // The checking processes by their command line: a fork window's child is a copy of its
    // parent, and one of the first's can be alive at any moment.
    let checking = |parent: Option<i32>| -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == std::path::Path::new(env!("CARGO_BIN_EXE_regtorture"))))
            .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("--process-index")))
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|s| parent.is_none() || s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse::<i32>().ok()) == parent)
            .count()
    };
    assert_eq!(checking(Some(pid)), 2, "the two other checking processes");
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = first.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // Once the first is gone its children would be re-parented: look for any.
    let deadline = Instant::now() + Duration::from_secs(2);
    while checking(None) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(checking(None), 0, "checking processes outlived the first");
}

/// A child process that is killed and reaped when the test ends, also when it fails, so that
/// a failing test leaves no run behind to disturb the next one.
struct Reaped(std::process::Child);

impl Reaped {
    /// Wait until the child has `n` threads (at most a minute).
    fn wait_for_threads(&self, n: usize) {
        let tasks = format!("/proc/{}/task", self.0.id());
        let start = Instant::now();
        while std::fs::read_dir(&tasks).map_or(0, |d| d.count()) < n {
            assert!(start.elapsed() < Duration::from_secs(60), "the child started no {n} threads in a minute");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the child to exit, at most `limit` (then the test fails, and the drop kills
    /// it), reading its piped output meanwhile (a full pipe must not stall it): its exit code,
    /// standard output and standard error.
    fn finish(&mut self, limit: Duration, what: &str) -> (Option<i32>, String, String) {
        use std::io::Read as _;
        let drain = |p: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut p) = p {
                    let _ = p.read_to_string(&mut s);
                }
                s
            })
        };
        let out = drain(self.0.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let err = drain(self.0.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < limit, "no exit within {limit:?}: {what}");
            std::thread::sleep(Duration::from_millis(10));
        };
        (status.code(), out.join().unwrap(), err.join().unwrap())
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// As PID 1 of a new PID namespace (a container's `docker run IMAGE regtorture run ...`),
/// regtorture runs its command line: it is the VM's init only with the options `regtorture
/// vm` packed. (It once took any PID 1 for the VM's init, ignored its arguments and slept.)
#[test]
fn as_pid_1_of_a_container_it_runs_its_command_line() {
    let mut child = Reaped(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(env!("CARGO_BIN_EXE_regtorture"))
            .args(["run", "--duration", "1s", "--classes", "gpr", "--windows", "spin", "--triggers", "none", "--execs", "0", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux)"),
    );
    let (code, out, err) = child.finish(Duration::from_secs(60), "taken for the VM's init?");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("regtorture: CLEAN"), "{out}");
}

/// A fault ends the run through the fatal path: when its report cannot be written (`--json
/// /dev/full`: every write fails with ENOSPC), the error and the verdict still reach standard
/// error, and the exit code is the finding's (it was once dropped without a word).
#[test]
fn a_fault_whose_report_cannot_be_written_still_says_so() {
    let (code, _, err) = run(&["run", "--duration", "30s", "--triggers", "fault", "--json", "/dev/full", "--classes", "gpr"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the report of this run could not be written"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("regtorture: CORRUPTION: 1 fault(s)"), "{err}");
}

/// Fault forensics hold in every phase, not only while a run's monitor is up: a SIGSEGV that
/// reaches regtorture during its selftest (here sent with kill; a kernel bug that corrupts
/// every process's registers made a VM's init die of SIGILL there once, with no word) gives
/// the fault's registers on standard error and exit 1, not a death by signal.
#[test]
fn a_fault_during_the_selftest_phase_is_reported_not_a_silent_death() {
    let mut child = Reaped(bin().args(["selftest", "--faults", "100000", "--quiet"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    // In the selftest: its checking thread exists (however slow the machine is to get there).
    child.wait_for_threads(2);
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGSEGV) }, 0);
    let (code, _, err) = child.finish(Duration::from_secs(30), "after SIGSEGV");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("CORRUPTION: fatal signal 0x000000000000000b"), "{err}");
    assert!(err.contains("registers:"), "{err}");
}
