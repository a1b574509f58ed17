//! deploy/kselftest/run_regtorture.sh as a kselftest tree runs it: the kernel's own runner
//! (tools/testing/selftests/kselftest/runner.sh from Debian's linux-source-6.1, unpacked by
//! scripts/setup) with the wrapper, its `settings` and the binary in a test directory, and the
//! options through KSELFTEST_RUN_REGTORTURE_SH_ARGS. A clean run passes, a corruption fails, and
//! nothing testable is a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A kselftest tree in a temporary directory: kselftest/ (runner) and regtorture/ (the test).
fn tree(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("regtorture-kselftest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let ks = root().join("target/kunit/tools/testing/selftests/kselftest");
    assert!(ks.join("runner.sh").exists(), "{} is missing: run scripts/setup", ks.display());
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    for f in ["runner.sh", "prefix.pl"] {
        copy(&ks.join(f), &base.join("kselftest").join(f));
    }
    for f in ["run_regtorture.sh", "settings"] {
        copy(&root().join("deploy/kselftest").join(f), &base.join("regtorture").join(f));
    }
    copy(Path::new(env!("CARGO_BIN_EXE_regtorture")), &base.join("regtorture/regtorture"));
    base
}

/// Run the test through the runner with `args`; its whole output.
fn kselftest(name: &str, args: &str) -> String {
    let base = tree(name);
    let script = "set -e; cd \"$BASE_DIR/regtorture\"; logfile=/dev/stdout; . \"$BASE_DIR/kselftest/runner.sh\"; run_many ./run_regtorture.sh";
    let out = Command::new("bash").args(["-c", script]).env("BASE_DIR", &base).env("KSELFTEST_RUN_REGTORTURE_SH_ARGS", args).output().unwrap();
    std::fs::remove_dir_all(&base).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn result_line(out: &str) -> &str {
    out.lines().find(|l| l.contains("selftests: regtorture: run_regtorture.sh") && !l.starts_with('#')).unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn a_clean_run_passes_and_its_ktap_is_nested() {
    let out = kselftest("pass", "--duration 2s --triggers none");
    assert_eq!(result_line(&out), "ok 1 selftests: regtorture: run_regtorture.sh", "{out}");
    assert!(out.lines().any(|l| l == "# KTAP version 1"), "the report, prefixed by the runner: {out}");
    assert!(out.lines().any(|l| l.starts_with("# ok ") && l.ends_with(" no_faults")), "{out}");
}

#[test]
fn a_corruption_fails() {
    let out = kselftest("fail", "--duration 20s --triggers inject");
    assert_eq!(result_line(&out), "not ok 1 selftests: regtorture: run_regtorture.sh # exit=1", "{out}");
    assert!(out.lines().any(|l| l.starts_with("# not ok ")), "{out}");
}

#[test]
fn nothing_testable_is_a_skip() {
    // Something this machine cannot test: AMX where the CPU lacks it, else the powerpc-only scv
    // windows (on x86_64 and aarch64 they cannot run).
    let avail = Command::new(env!("CARGO_BIN_EXE_regtorture")).arg("list").output().unwrap();
    let list = String::from_utf8_lossy(&avail.stdout);
    let args = if list.lines().any(|l| l.trim_start().starts_with("amx") && l.contains("unavailable")) {
        "--duration 1s --classes amx"
    } else {
        "--duration 1s --windows scv-sleep"
    };
    let out = kselftest("skip", args);
    assert_eq!(result_line(&out), "ok 1 selftests: regtorture: run_regtorture.sh # SKIP", "{out}");
    assert!(out.contains("1..0 # SKIP"), "{out}");
}
