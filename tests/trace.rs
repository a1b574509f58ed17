//! `--trace` against the real kernel: each finding of a positive control carries the kernel's
//! timeline of its thread (the signal that did it, then the check or the fault), a run that
//! cannot trace says why and goes on, and a run without `--trace` has no trace at all.

mod common;

use std::os::unix::process::CommandExt;

use common::{bin, run_json};

/// Whether this process may trace: root (tracefs is then mounted by regtorture if need be).
fn can_trace() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        common::skip("tracing needs root");
    }
    root
}

fn events(t: &serde_json::Value) -> Vec<&serde_json::Value> {
    t["events"].as_array().expect("a timeline has events").iter().collect()
}

#[test]
fn an_injected_mismatch_has_the_signal_that_did_it_in_its_window_timeline() {
    if !can_trace() {
        return;
    }
    let (code, v, err) =
        run_json(bin().args(["run", "--trace", "--triggers", "inject", "--classes", "sse", "--windows", "spin,syscall", "--duration", "10s", "--json", "-"]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["schema_version"], 2);
    let trace = &v["trace"];
    assert_eq!(trace["status"], "recorded", "{trace}");
    assert_eq!(trace["frozen_at_finding"], true, "{trace}");
    assert!(trace["events"].as_array().unwrap().iter().any(|e| e == "signal:signal_deliver"), "{trace}");
    assert!(!trace["events"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().starts_with("raw_syscalls")), "{trace}");
    let m = &v["mismatches"][0];
    let tid = m["tid"].as_i64().unwrap();
    let (from, to) = (m["window_ns"][0].as_u64().unwrap(), m["window_ns"][1].as_u64().unwrap());
    assert!(from > 0 && to >= from, "{m}");
    let t = &m["timeline"];
    assert_eq!(t["origin_ns"].as_u64(), Some(from), "{t}");
    let ev = events(t);
    // The injected value comes from a signal frame: its delivery to this thread lies in the
    // window, and every event is within the window's microseconds.
    assert!(ev.iter().any(|e| e["name"] == "signal_deliver" && e["tid"].as_i64() == Some(tid)), "{t}");
    let span = (to - from) as i64;
    assert!(ev.iter().all(|e| (-1000..=span).contains(&e["t_ns"].as_i64().unwrap())), "{t}");
    assert!(err.contains(&format!("kernel timeline of tid {tid}")), "{err}");
}

#[test]
fn a_fault_has_its_signal_and_the_one_before_it_in_its_timeline() {
    if !can_trace() {
        return;
    }
    let (code, v, err) =
        run_json(bin().args(["run", "--trace", "--triggers", "fault", "--classes", "sse", "--windows", "spin", "--duration", "10s", "--json", "-"]));
    assert_eq!(code, 1, "{err}");
    let f = &v["faults"][0];
    let tid = f["tid"].as_i64().unwrap();
    let ev = events(&f["timeline"]);
    let sig = |e: &serde_json::Value, name: &str, n: &str| {
        e["name"] == name && e["tid"].as_i64() == Some(tid) && e["fields"].as_str().unwrap().contains(&format!("sig={n} "))
    };
    // The control rewrote a signal frame: that signal's delivery, then SIGSEGV's, at the fault.
    let segv = ev.iter().position(|e| sig(e, "signal_deliver", "11")).unwrap_or_else(|| panic!("no SIGSEGV delivery: {ev:#?}"));
    assert!(ev[..segv].iter().any(|e| e["name"] == "signal_deliver" && e["tid"].as_i64() == Some(tid)), "{ev:#?}");
    assert!(ev.iter().all(|e| e["t_ns"].as_i64().unwrap() <= 1000), "{ev:#?}");
}

#[test]
fn without_privilege_trace_is_a_clean_skip_with_the_reason() {
    if !can_trace() {
        return;
    }
    // The same run as an unprivileged user: tracefs cannot be mounted or written.
    let (code, v, err) =
        run_json(bin().args(["run", "--trace", "--triggers", "none", "--classes", "sse", "--duration", "300ms", "--json", "-"]).uid(65534).gid(65534));
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["trace"]["status"], "skipped", "{}", v["trace"]);
    assert!(v["trace"]["reason"].as_str().unwrap().contains("root"), "{}", v["trace"]);
    assert!(err.contains("trace: skipped"), "{err}");
}

#[test]
fn without_the_flag_nothing_is_traced() {
    let (code, v, err) = run_json(bin().args(["run", "--triggers", "inject", "--classes", "sse", "--windows", "spin", "--duration", "10s", "--json", "-"]));
    assert_eq!(code, 1, "{err}");
    assert!(v.get("trace").is_none(), "{v}");
    assert!(v["mismatches"][0].get("timeline").is_none() && v["mismatches"][0].get("window_ns").is_none());
    assert!(!err.contains("kernel timeline"), "{err}");
}
