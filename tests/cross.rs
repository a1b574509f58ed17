//! The powerpc64le, aarch64 and riscv64 builds under qemu-user: every class detected and
//! selftested 100/100 (but riscv64's vector class, which QEMU's user-mode signal frames cannot
//! carry: reported unavailable, with that reason), a short clean run, and io_uring (which
//! qemu-user does not implement) a reported skip.
//!
//! `scripts/cross` builds the binaries first (scripts/test does). Without them the tests fail,
//! unless REGTORTURE_NO_CROSS=1 says on purpose that this machine cannot build them.

mod common;

use std::path::PathBuf;
use std::process::Command;

struct Target {
    triple: &'static str,
    qemu: &'static [&'static str],
    classes: &'static [&'static str],
    /// Classes of `classes` that user-mode emulation cannot check: reported unavailable, with a
    /// reason that says so.
    emulation_skips: &'static [&'static str],
    /// Classes the emulated CPU (QEMU 7.2) does not have: reported unavailable, with the
    /// AT_HWCAP2 bit they need.
    absent: &'static [&'static str],
}

const PPC: Target = Target {
    triple: "powerpc64le-unknown-linux-gnu",
    qemu: &["qemu-ppc64le-static", "-cpu", "power9"],
    classes: &["fpr", "vmx", "vsx", "gpr", "fp-vmx-vsx"],
    emulation_skips: &[],
    absent: &[],
};
const A64: Target = Target {
    triple: "aarch64-unknown-linux-gnu",
    qemu: &["qemu-aarch64-static", "-cpu", "max"],
    classes: &["neon", "sve", "gpr", "neon-sve", "ssve", "za", "za-sm", "tpidr2", "sve-za", "sve-ssve"],
    emulation_skips: &[],
    absent: &["zt0", "fpmr"],
};
const RV64: Target = Target {
    triple: "riscv64gc-unknown-linux-gnu",
    qemu: &["qemu-riscv64-static", "-cpu", "rv64,v=true,vext_spec=v1.0,vlen=256"],
    classes: &["fpr", "vector", "gpr"],
    emulation_skips: &["vector"],
    absent: &[],
};

fn binary(t: &Target) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(t.triple).join("release/regtorture");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("REGTORTURE_NO_CROSS").is_ok_and(|v| v == "1") {
        common::skip(&format!("no {} binary and REGTORTURE_NO_CROSS=1", t.triple));
        return None;
    }
    panic!("{} is missing: run scripts/cross (or set REGTORTURE_NO_CROSS=1)", p.display());
}

fn run(t: &Target, args: &[&str]) -> (i32, String, String) {
    let bin = binary(t).expect("checked by the caller");
    let out = Command::new(t.qemu[0]).args(&t.qemu[1..]).arg(bin).args(args).output().expect("run qemu-user");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The transition classes (`ClassId::is_transition`): no process-leak control.
const TRANSITIONS: [&str; 5] = ["neon-sve", "fp-vmx-vsx", "avx-upper", "sve-za", "sve-ssve"];

fn selftest(t: &Target, extra: &[&str]) {
    let mut args = vec!["selftest", "--json", "-"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(t, &args);
    assert_eq!(code, 0, "{}: {err}", t.triple);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The register-fault rows, one per class; then the process-leak controls (another
    // process's value planted in a register: read as a leak) of every plain class.
    let rows = v["classes"].as_array().unwrap();
    let absent = |c: &serde_json::Value| t.absent.iter().any(|a| c["class"] == *a || c["name"] == *a);
    let tested: Vec<&str> = rows.iter().filter(|c| c.get("control").is_none() && !absent(c)).map(|c| c["class"].as_str().unwrap()).collect();
    assert_eq!(tested, t.classes, "{}", t.triple);
    let leaks = rows.iter().filter(|c| c["control"] == "process-leak").count();
    // (A class whose selftest is a skip under emulation has none either: riscv64's vector.)
    let plain = t.classes.iter().filter(|c| !TRANSITIONS.contains(c) && !t.emulation_skips.contains(c)).count();
    assert_eq!(leaks, plain, "a process-leak control per class but the transitions and the emulation skips: {rows:?}");
    for c in v["classes"].as_array().unwrap() {
        if absent(c) {
            assert_eq!(c["status"], "skipped", "{c}");
            assert!(c["reason"].as_str().unwrap_or("").contains("AT_HWCAP2"), "{c}");
            continue;
        }
        // The execve check's control needs ptrace and execve of the binary, the core-dump
        // check's a core the kernel writes: not under qemu-user.
        if t.emulation_skips.iter().any(|s| c["class"] == *s) || c["control"] == "exec-leak" || c["control"] == "core-dump" {
            assert_eq!(c["status"], "skipped", "{c}");
            assert!(c["reason"].as_str().unwrap_or("").contains("user-mode emulation"), "{c}");
            continue;
        }
        // No ptrace of emulated threads either.
        if c["control"] == "ptrace-write" {
            assert_eq!(c["status"], "skipped", "{c}");
            assert!(c["reason"].as_str().unwrap_or("").contains("user-mode emulation"), "{c}");
            continue;
        }
        assert_eq!(c["status"], "tested", "{c}");
        // The frame-rewrite control counts what its rounds planted: at least the selftest's
        // number; the others exactly that.
        if c["control"] == "frame-rewrite" {
            assert!(c["injected"].as_u64().unwrap() >= 100, "{c}");
        } else {
            assert_eq!(c["injected"], 100, "{c}");
        }
        assert_eq!(c["detected"], c["injected"], "{c}");
    }
}

fn clean_run(t: &Target) {
    let (code, out, err) = run(t, &["run", "--duration", "2s", "--json", "-", "--triggers", "io_uring,tgkill,timer,membarrier,preempt"]);
    assert_eq!(code, 0, "{}: {err}", t.triple);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mismatch_count"], 0);
    assert_eq!(v["machine"]["user_mode_emulation"], true);
    for c in v["classes"].as_array().unwrap() {
        if t.emulation_skips.iter().any(|s| c["name"] == *s) || t.absent.iter().any(|s| c["name"] == *s) {
            assert_eq!(c["status"], "unavailable", "{c}");
            continue;
        }
        assert_eq!(c["status"], "tested", "{c}");
        assert!(c["checks"].as_u64().unwrap() > 0);
    }
    for t in v["triggers"].as_array().unwrap() {
        if t["name"] == "io_uring" {
            assert_eq!(t["status"], "skipped", "{t}");
            assert!(t["reason"].as_str().unwrap().contains("ENOSYS"), "{t}");
        } else {
            assert_eq!(t["status"], "ran", "{t}");
            assert!(t["events"].as_u64().unwrap() > 0, "{t}");
        }
    }
    assert!(err.contains("regtorture: CLEAN"), "{err}");
}

fn lists_classes(t: &Target) {
    let (code, out, _) = run(t, &["list"]);
    assert_eq!(code, 0);
    for c in t.classes {
        let state = if t.emulation_skips.contains(c) { " unavailable " } else { " available " };
        assert!(out.lines().any(|l| l.trim_start().starts_with(c) && l.contains(state)), "{c} {state} in:\n{out}");
    }
}

/// The seed bug's corruption, replayed through signal frames, is named with its fix.
pub fn seed_bug_is_named(code: i32, out: &str, err: &str) {
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    let m = &v["mismatches"][0];
    assert!(m["register"] == "vs0" || m["register"] == "f0" || m["register"] == "v0", "{m}");
    assert!(m["signature"]["fix"].as_str().unwrap().contains("5e1d824f9a28"), "{m}");
    assert_eq!(m["lanes"][0]["reading"]["kind"], "control_image", "{m}");
}

#[test]
fn powerpc64le_under_qemu_user() {
    if binary(&PPC).is_none() {
        return;
    }
    lists_classes(&PPC);
    selftest(&PPC, &[]);
    clean_run(&PPC);
    let (code, out, err) = run(&PPC, &["run", "--duration", "30s", "--triggers", "replay", "--json", "-"]);
    seed_bug_is_named(code, &out, &err);
}

#[test]
fn replay_is_a_skip_where_no_bug_is_replayed() {
    if binary(&A64).is_none() {
        return;
    }
    let (code, out, err) = run(&A64, &["run", "--duration", "1s", "--triggers", "replay", "--json", "-"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["triggers"][0]["status"], "skipped");
}

#[test]
fn aarch64_under_qemu_user() {
    if binary(&A64).is_none() {
        return;
    }
    lists_classes(&A64);
    selftest(&A64, &[]);
    // SVE at the smallest and largest vector lengths: predicates of 2 and 32 bytes.
    selftest(&A64, &["--sve-vl", "16"]);
    selftest(&A64, &["--sve-vl", "256"]);
    clean_run(&A64);
}

#[test]
fn riscv64_under_qemu_user() {
    if binary(&RV64).is_none() {
        return;
    }
    lists_classes(&RV64);
    selftest(&RV64, &[]);
    clean_run(&RV64);
}

/// A CPU (or kernel) without V: AT_HWCAP has no V bit, as on every kernel before 6.5, which
/// saves no vector state. The vector class is unavailable and the report says why; the rest
/// is tested.
#[test]
fn riscv64_without_v_reports_why_the_vector_class_is_unavailable() {
    if binary(&RV64).is_none() {
        return;
    }
    let no_v = Target { qemu: &["qemu-riscv64-static", "-cpu", "rv64,v=false"], ..RV64 };
    let (code, out, err) = run(&no_v, &["selftest", "--json", "-"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let vector = v["classes"].as_array().unwrap().iter().find(|c| c["class"] == "vector").unwrap().clone();
    assert_eq!(vector["status"], "skipped", "{vector}");
    let why = vector["reason"].as_str().unwrap();
    assert!(why.contains("AT_HWCAP has no V") && why.contains("before 6.5"), "{why}");
}

/// The entry stub of the static binaries: the registers as execve left them, every one in its
/// initial state (qemu-user's here: the emulator starts the image, not a kernel).
fn entry_state_is_initial(t: &Target) {
    let (code, out, err) = run(t, &["__exec-probe"]);
    assert_eq!(code, 0, "{}: {err}", t.triple);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["static_entry"], true, "{}", t.triple);
    let lanes = v["lanes"].as_array().expect("the entry stub ran");
    assert!(lanes.len() > 60, "{}: {lanes:?}", t.triple);
    let bad: Vec<_> = lanes.iter().filter(|l| l["init"].is_u64() && l["init"] != l["value"]).collect();
    assert!(bad.is_empty(), "{}: not initial at the entry point: {bad:?}", t.triple);
}

#[test]
fn entry_stubs_record_the_initial_state_under_qemu_user() {
    for t in [&PPC, &A64, &RV64] {
        if binary(t).is_some() {
            entry_state_is_initial(t);
        }
    }
}

/// The static x86_64 build (scripts/cross) starts at its entry stub with nothing before it, so
/// the execve check holds it to the full initial state: FCW 0x37f, MXCSR 0x1f80, every vector
/// and integer register zero.
#[test]
fn a_static_x86_64_build_is_held_to_the_initial_state_after_execve() {
    if !cfg!(target_arch = "x86_64") {
        return common::skip("not an x86_64 host");
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/x86_64-unknown-linux-gnu/release/regtorture");
    if !p.exists() {
        if std::env::var("REGTORTURE_NO_CROSS").is_ok_and(|v| v == "1") {
            return common::skip("no static x86_64 binary and REGTORTURE_NO_CROSS=1");
        }
        panic!("{} is missing: run scripts/cross (or set REGTORTURE_NO_CROSS=1)", p.display());
    }
    let out = Command::new(&p).args(["run", "--duration", "300ms", "--triggers", "none", "--execs", "10", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &v["leaks"];
    assert_eq!(l["entry"], "entry point", "{l}");
    assert_eq!(l["execs"], 10, "{l}");
    assert_eq!(l["informational"], 0, "{l}");
    assert!(l["leaks"].as_array().unwrap().is_empty() && l["not_initial"].as_array().unwrap().is_empty(), "{l}");
    // The check's positive control: at the exec stop a value the process wrote is planted in
    // a random xmm lane (PTRACE_SETREGSET NT_PRFPREG); the entry stub must report exactly that
    // lane as a leak, every time.
    let out = Command::new(&p).args(["selftest", "--classes", "sse", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = v["classes"].as_array().unwrap().iter().find(|c| c["control"] == "exec-leak").unwrap_or_else(|| panic!("no exec-leak row: {v}"));
    assert_eq!(
        (r["status"].as_str(), r["injected"].as_u64(), r["detected"].as_u64(), r["misplaced"].as_u64()),
        (Some("tested"), Some(100), Some(100), Some(0)),
        "{r}"
    );
}
