//! `regtorture export-c`: the C programs it writes, built and run. x86_64 natively, ppc64le
//! under qemu-user: clean when nothing is wrong, and the positive control (a register changed
//! in the signal frame, `-DREGTORTURE_INJECT`) caught and named. The VM run on the kernel with
//! the scv fast-exit bug is in tests/vm.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regtorture-export-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn export(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture")).arg("export-c").args(args).arg("--emit-c").arg(&c).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "export-c {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    c
}

fn build(cc: &str, c: &Path, extra: &[&str]) -> PathBuf {
    let bin = c.with_extension(if extra.is_empty() { "bin" } else { "inject" });
    let out = Command::new(cc).args(["-O2", "-static", "-pthread", "-Wall", "-Wextra"]).args(extra).arg("-o").arg(&bin).arg(c).output().unwrap();
    assert!(out.status.success(), "{cc}: {}", String::from_utf8_lossy(&out.stderr));
    bin
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The verdict line.
fn verdict(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).lines().rev().find(|l| l.starts_with("REPRO-RESULT:")).unwrap_or("").to_string()
}

/// Clean with signals that clobber every register (and io_uring, which this kernel has);
/// the positive control must be caught, naming the injected register of its class.
#[test]
fn x86_64_programs_run_clean_natively_and_catch_the_injected_register() {
    if !cfg!(target_arch = "x86_64") {
        common::skip("not an x86_64 host");
        return;
    }
    let dir = scratch("x86_64");
    let c = export(
        &dir,
        "sse-avx",
        &[
            "--arch",
            "x86_64",
            "--classes",
            "sse,avx",
            "--windows",
            "spin,syscall,yield,sleep",
            "--triggers",
            "tgkill,timer",
            "--threads",
            "2",
            "--duration",
            "2s",
        ],
    );
    let out = Command::new(build("gcc", &c, &[])).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = verdict(&out);
    assert!(v.starts_with("REPRO-RESULT: clean after 2."), "{v}");
    let signals: u64 = v.split(" trigger signals").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(signals > 1000, "the triggers ran: {v}");

    // The x86_64 twin of the setup that reproduces the powerpc scv fast-exit bug (io-wq worker
    // creation by task_work on a sleeping window's exit, timer signals): x86 has no such bug.
    let c = export(
        &dir,
        "iowq",
        &["--arch", "x86_64", "--classes", "sse,avx", "--windows", "sleep", "--triggers", "io_uring,timer", "--threads", "2", "--duration", "3s"],
    );
    let out = Command::new(build("gcc", &c, &[])).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = verdict(&out);
    assert!(v.starts_with("REPRO-RESULT: clean after 3.") && !v.contains(" 0 io_uring rounds"), "{v}");

    for (class, reg) in [("sse", "xmm3"), ("avx", "ymm3")] {
        let c =
            export(&dir, class, &["--arch", "x86_64", "--classes", class, "--windows", "spin", "--triggers", "tgkill", "--threads", "1", "--duration", "10s"]);
        let out = Command::new(build("gcc", &c, &["-DREGTORTURE_INJECT"])).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let v = verdict(&out);
        assert!(v.starts_with("REPRO-RESULT: bug after ") && v.contains(&format!(": {reg} ")), "{class}: {v}");
        assert!(text(&out).contains(&format!("BUG: register corruption: class {class}, window spin")), "{}", text(&out));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same for ppc64le under qemu-ppc64le: clean, and each class's injected register caught;
/// io_uring and scv, which qemu-user does not provide, are setup errors (exit 3).
#[test]
fn ppc64le_programs_run_clean_under_qemu_user_and_catch_the_injected_register() {
    let cc = "powerpc64le-linux-gnu-gcc";
    let qemu = "qemu-ppc64le-static";
    if !have(cc) || !have(qemu) {
        common::skip(&format!("needs {cc} and {qemu}"));
        return;
    }
    let run = |bin: &Path| Command::new(qemu).args(["-cpu", "power9"]).arg(bin).output().unwrap();
    let dir = scratch("ppc64le");
    let c = export(
        &dir,
        "all",
        &[
            "--arch",
            "ppc64le",
            "--classes",
            "fpr,vsx,gpr",
            "--windows",
            "spin,syscall,yield,sleep",
            "--triggers",
            "tgkill,timer",
            "--threads",
            "2",
            "--duration",
            "2s",
        ],
    );
    let out = run(&build(cc, &c, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(verdict(&out).starts_with("REPRO-RESULT: clean after 2."), "{}", text(&out));

    for (class, reg) in [("fpr", "f3"), ("vsx", "vs3"), ("gpr", "r14")] {
        let c = export(
            &dir,
            class,
            &["--arch", "ppc64le", "--classes", class, "--windows", "spin,syscall", "--triggers", "tgkill", "--threads", "1", "--duration", "20s"],
        );
        let out = run(&build(cc, &c, &["-DREGTORTURE_INJECT"]));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let v = verdict(&out);
        assert!(v.contains(&format!(": {reg} ")) && v.contains(&format!("(class {class},")), "{class}: {v}");
    }

    let c = export(&dir, "iouring", &["--arch", "ppc64le", "--classes", "gpr", "--windows", "sleep", "--triggers", "io_uring,timer", "--duration", "2s"]);
    let out = run(&build(cc, &c, &[]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(verdict(&out).starts_with("REPRO-RESULT: error: io_uring unavailable"), "{}", text(&out));
    let c = export(&dir, "scv", &["--arch", "ppc64le", "--classes", "gpr", "--windows", "scv-sleep", "--triggers", "timer", "--duration", "2s"]);
    let out = run(&build(cc, &c, &[]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(verdict(&out).starts_with("REPRO-RESULT: error: scv unavailable"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_c_refuses_what_the_c_backend_cannot_express_with_exit_2() {
    let dir = scratch("refuse");
    let c = dir.join("never.c");
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["export-c", "--arch", "x86_64", "--classes", "sse", "--windows", "scv-sleep", "--triggers", "tgkill", "--emit-c"])
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot express the window kind scv-sleep on x86_64") && err.contains("x86_64: classes sse, avx"), "{err}");
    assert!(!c.exists(), "nothing written");
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args([
            "export-c",
            "--arch",
            "ppc64le",
            "--classes",
            "gpr",
            "--windows",
            "scv-sleep",
            "--triggers",
            "io_uring,timer",
            "--threads",
            "2",
            "--emit-c",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let src = String::from_utf8_lossy(&out.stdout);
    assert!(src.contains("regtorture run --classes gpr --windows scv-sleep --triggers io_uring,timer --threads 2 --duration 30s"), "{src}");
    let _ = std::fs::remove_dir_all(&dir);
}
