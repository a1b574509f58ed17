//! What the kernel shows of a thread's registers, and writes on someone else's say-so, against
//! the real kernel: the ptrace trigger (a tracer process stops the checking threads, reads
//! their register sets and writes new values through them) and core dumps. Runs with them stay
//! clean; their positive controls are reported in exactly the lane planted, as often as
//! planted; and the tracer never outlives the run.

mod common;

use std::process::Stdio;

use common::{bin, run_json, skip};

fn trigger<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["triggers"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no {name} trigger in {v}"))
}

fn detail(t: &serde_json::Value, key: &str) -> f64 {
    t["details"].as_array().unwrap().iter().find(|d| d[0] == key).map(|d| d[1].as_f64().unwrap()).unwrap_or_else(|| panic!("no {key} in {t}"))
}

/// Whether ptrace runs here; else the skip is recorded with the report's reason.
fn traceable(v: &serde_json::Value, name: &str) -> bool {
    let t = trigger(v, name);
    if t["status"] == "skipped" {
        skip(&format!("the {name} trigger cannot run here: {}", t["reason"]));
        return false;
    }
    true
}

/// Every class and window, traced: views read and writes made, through every regset the
/// backend lists, and nothing differs (the kernel under test shows and takes what it should).
#[test]
fn a_traced_run_reads_and_writes_registers_and_stays_clean() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "3s", "--triggers", "ptrace", "--execs", "0", "--json", "-"]));
    if !traceable(&v, "ptrace") {
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["verdict"], "clean", "{err}");
    let t = trigger(&v, "ptrace");
    assert_eq!(t["status"], "ran", "{t}");
    assert!(detail(t, "views") > 0.0 && detail(t, "writes") > 0.0, "no view or no write: {t}");
    assert!(detail(t, "share_in_window") > 0.0, "{t}");
    // Interrupt stops, and system-call exit stops (PTRACE_SYSCALL) among them.
    assert!(detail(t, "syscall_exit_stops") > 0.0, "{t}");
    assert_eq!(detail(t, "errors"), 0.0, "{t}");
    // The run's end let the tracer leave between stops: killed, it could leave a thread with
    // a write and no record of it (a false finding).
    assert_eq!(detail(t, "tracer_left_between_stops"), 1.0, "{t}");
    // The KTAP report has the views' own case, and it passed.
    let (_, ktap, _) = {
        let out = bin().args(["run", "--duration", "1s", "--triggers", "ptrace", "--execs", "0", "--ktap", "--classes", "gpr"]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), ())
    };
    assert!(ktap.lines().any(|l| l.starts_with("ok ") && l.ends_with(" ptrace_views")), "{ktap}");
}

/// The positive control: each write through a regset is recorded with one lane wrong by one
/// bit. Every one must come back as a finding in exactly that lane (one lane, one bit, read as
/// the tracer's value), and there must be as many findings as plants: a write the kernel lost
/// would show as a second lane, a misplaced one as another register.
#[test]
fn every_wrong_value_the_control_plants_is_reported_in_its_lane() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "3s", "--triggers", "ptrace-control", "--execs", "0", "--keep-going", "--json", "-"]));
    if !traceable(&v, "ptrace-control") {
        return;
    }
    assert_eq!(code, 1, "{err}");
    let t = trigger(&v, "ptrace-control");
    let planted = detail(t, "planted") as u64;
    assert!(planted > 0, "nothing planted: {t}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(planted), "every plant is one finding: {t}");
    assert_eq!(detail(t, "tracer_left_between_stops"), 1.0, "{t}");
    let kept = v["mismatches"].as_array().unwrap();
    assert!(!kept.is_empty());
    for m in kept {
        assert_eq!(m["ptrace"]["kind"], "write", "{m}");
        let lanes = m["lanes"].as_array().unwrap();
        assert_eq!(lanes.len(), 1, "{m}");
        assert_eq!(lanes[0]["bits_changed"], 1, "{m}");
        // Read as the tracer's value of that lane, where it is read as the tracer's at all: a
        // handler that also rewrote the frame in that window leaves a value that names neither
        // writer (a bit flip, or by chance some other writer's).
        let r = &lanes[0]["reading"];
        if r["kind"] == "tracer_value" {
            assert_eq!((r["register"].as_str(), r["lane"].as_u64()), (m["register"].as_str(), lanes[0]["lane"].as_u64()), "{m}");
        }
    }
    // Every regset of the backend took part.
    let regsets: std::collections::BTreeSet<&str> = kept.iter().filter_map(|m| m["ptrace"]["regset"].as_str()).collect();
    assert!(regsets.contains("NT_PRFPREG") || regsets.contains("NT_PRSTATUS"), "{regsets:?}");
}

/// Writes of a prefix of a regset (`iov_len` cut after a written lane, where the kernel takes
/// one: the integer registers' `NT_PRSTATUS` on every architecture): the lanes before the cut
/// must hold what was written, the rest what the thread had. With the control every write is
/// one finding in its planted lane, partial ones included, and nothing else.
#[test]
fn partial_writes_change_only_the_lanes_they_cover() {
    let (code, v, err) = run_json(bin().args([
        "run",
        "--duration",
        "5s",
        "--classes",
        "gpr",
        "--windows",
        "spin",
        "--triggers",
        "ptrace-control",
        "--execs",
        "0",
        "--keep-going",
        "--json",
        "-",
    ]));
    if !traceable(&v, "ptrace-control") {
        return;
    }
    assert_eq!(code, 1, "{err}");
    let t = trigger(&v, "ptrace-control");
    assert!(detail(t, "partial_writes") > 0.0, "no partial write: {t}");
    assert_eq!(detail(t, "errors"), 0.0, "a write the kernel refused: {t}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(detail(t, "planted") as u64), "{t}");
    for m in v["mismatches"].as_array().unwrap() {
        assert_eq!((m["lanes"].as_array().unwrap().len(), m["lanes"][0]["bits_changed"].as_u64()), (1, Some(1)), "{m}");
    }
}

/// The tracer is a process of its own: killing the run (SIGKILL, no handler runs) ends it too,
/// and the threads it held do not stay stopped.
#[test]
fn the_tracer_dies_with_a_killed_run() {
    let marker = "0x7ace0ff";
    let mut child = bin()
        .args(["run", "--duration", "60s", "--seed", marker, "--triggers", "ptrace", "--execs", "0", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let ours = |want_other: bool| -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            .filter(|e| !want_other || e.file_name().to_string_lossy() != pid.to_string())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok().map(|c| (e.file_name(), c)))
            .filter(|(_, c)| String::from_utf8_lossy(c).contains(marker))
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect()
    };
    // The tracer (a fork of the run, with its command line) appears once the run is going.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ours(true).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let tracer = ours(true);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(!tracer.is_empty(), "no tracer process appeared");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ours(false).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ours(false).is_empty(), "processes of the run still alive: {:?}", ours(false));
}

/// Cores of children that held pattern values show exactly those values in every lane of every
/// register set they hold (or the check says why it could not run here: a core_pattern that
/// pipes to a program); the control (an expectation one bit off) is caught 100/100.
#[test]
fn cores_show_the_registers_the_process_held() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "500ms", "--triggers", "none", "--execs", "0", "--core-dumps", "24", "--json", "-"]));
    assert_eq!(code, 0, "{err}");
    let l = &v["leaks"];
    if let Some(why) = l["core_skip"].as_str() {
        assert_eq!(l["core_dumps"], 0, "{l}");
        skip(&format!("no core dumps here: {why}"));
        return;
    }
    assert_eq!(l["core_dumps"], 24, "{l}");
    assert!(l.get("core").is_none(), "{l}");
    assert!(err.contains("core dumps: 24 core(s) read, 0 lane(s) shown wrong"), "{err}");
    let out = bin().args(["selftest", "--json", "-"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = st["classes"].as_array().unwrap().iter().find(|r| r["control"] == "core-dump").expect("a core-dump row");
    assert_eq!((row["injected"].as_u64(), row["detected"].as_u64()), (Some(100), Some(100)), "{row}");
    let ktap = bin().args(["run", "--duration", "300ms", "--triggers", "none", "--execs", "0", "--core-dumps", "2", "--ktap"]).output().unwrap();
    let ktap = String::from_utf8_lossy(&ktap.stdout);
    assert!(ktap.lines().any(|l| l.starts_with("ok ") && l.ends_with(" core_dumps")), "{ktap}");
}

/// Signal handlers that rewrite their frame: one in four signals a checking thread takes inside
/// a window, the handler writes a new generation of the window's class into its `ucontext`,
/// and sigreturn must deliver exactly that. A run with the signal triggers stays clean with
/// rewrites made; the control (each rewrite told one lane wrong by one bit) is reported in
/// exactly that lane, once per plant.
#[test]
fn frames_a_handler_rewrites_are_what_sigreturn_delivers() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "3s", "--triggers", "tgkill,timer", "--execs", "0", "--core-dumps", "0", "--json", "-"]));
    assert_eq!(code, 0, "{err}");
    let rewrites = detail(trigger(&v, "tgkill"), "frame_rewrites") + detail(trigger(&v, "timer"), "frame_rewrites");
    assert!(rewrites > 0.0, "no frame was rewritten: {}", v["triggers"]);
    let (code, v, err) =
        run_json(bin().args(["run", "--duration", "3s", "--triggers", "rewrite-control", "--execs", "0", "--core-dumps", "0", "--keep-going", "--json", "-"]));
    assert_eq!(code, 1, "{err}");
    let planted = detail(trigger(&v, "rewrite-control"), "planted") as u64;
    assert!(planted > 0, "nothing planted: {}", v["triggers"]);
    assert_eq!(v["mismatch_count"].as_u64(), Some(planted), "every plant is one finding");
    for m in v["mismatches"].as_array().unwrap() {
        let lanes = m["lanes"].as_array().unwrap();
        assert_eq!((lanes.len(), lanes[0]["bits_changed"].as_u64()), (1, Some(1)), "{m}");
        let r = &lanes[0]["reading"];
        assert_eq!(
            (r["kind"].as_str(), r["register"].as_str(), r["lane"].as_u64()),
            (Some("frame_rewrite"), m["register"].as_str(), lanes[0]["lane"].as_u64()),
            "{m}"
        );
    }
}
