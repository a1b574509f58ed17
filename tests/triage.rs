//! `regtorture triage` against the real kernel: the `inject` positive control, started with
//! every trigger on, narrows to the one trigger that makes it (one class, one window kind, one
//! thread), with a command line that reproduces it; Ctrl-C gives the best so far; bad input
//! is a usage error.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regtorture"))
}

const EVERY_TRIGGER_AND_INJECT: &str = "io_uring,tgkill,timer,membarrier,tlb,affinity,preempt,inject";

#[test]
fn the_inject_control_with_every_trigger_narrows_to_inject_alone() {
    let c = std::env::temp_dir().join(format!("regtorture-triage-{}.c", std::process::id()));
    let out = bin()
        .args(["triage", "--triggers", EVERY_TRIGGER_AND_INJECT, "--classes", "sse,avx,gpr", "--windows", "spin,syscall,signal,sleep"])
        .args(["--duration", "30s", "--budget", "5m", "--attempts", "2", "--json", "-", "--emit-c"])
        .arg(&c)
        .stdin(Stdio::null())
        .output()
        .expect("run triage");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let m = &v["minimal"];
    assert_eq!(m["triggers"], serde_json::json!(["inject"]), "{v:#}");
    assert_eq!(m["classes"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(m["windows"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(m["threads"], 1, "{v:#}");
    assert!(v["confirmed"].as_u64().unwrap() >= 1, "the minimal setup reproduces: {v:#}");
    // The C backend has no inject control: the report says so (with whatever else of the
    // minimal setup it cannot express, such as the signal window), and no file is left.
    let why = v["reproducer"].as_str().unwrap();
    assert!(why.contains("cannot express") && why.contains("the trigger inject"), "{v:#}");
    assert!(!c.exists());
    // Every step says what it tried and how often it reproduced.
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["reproduced"] == 0), "some candidate did not reproduce: {v:#}");
    assert!(steps.iter().all(|s| s["attempts"].as_u64().unwrap() >= 1));
    // The progress said which subset was tried; the summary has the line to paste.
    assert!(stderr.contains("triage: trying"), "{stderr}");
    let line = format!("regtorture run {}", v["run_args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>().join(" "));
    assert!(stderr.contains(&line), "{stderr}");
    // And the line does reproduce.
    let args: Vec<&str> = v["run_args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let again = bin().arg("run").args(&args).args(["--quiet"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stdout));
}

#[test]
fn ctrl_c_prints_the_best_setup_so_far() {
    let mut child = bin()
        .args(["triage", "--triggers", "tgkill,timer,inject", "--classes", "sse", "--duration", "30s", "--budget", "5m"])
        // A seed no other test uses: the runs triage starts carry it on their command lines.
        .args(["--seed", "0x7e57c0de"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let start = Instant::now();
    for line in err.lines() {
        let line = line.unwrap();
        // Narrowing has begun: the first finding was made.
        if line.starts_with("triage: trying") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no narrowing within a minute");
    }
    // SAFETY: kill with a pid this test owns.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("interrupted: the best so far"), "{stdout}");
    assert!(stdout.contains("regtorture run --classes sse"), "{stdout}");
    // No run it started is left.
    std::thread::sleep(Duration::from_millis(300));
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains("0x7e57c0de"))
        .count();
    assert_eq!(left, 0);
}

#[test]
fn bad_triage_input_is_a_usage_error() {
    for args in [&["triage", "--attempts", "0"][..], &["triage", "--budget", "soon"], &["triage", "--ktap"], &["triage", "--classes", "nope"]] {
        let out = bin().args(args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("regtorture: error:") && !err.contains("panicked"), "{args:?}: {err}");
    }
}
