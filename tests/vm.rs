//! `regtorture vm` against Debian's own kernels (fetched by scripts/setup into target/kernels):
//! in each VM the selftest detects every class and a short run with every trigger is clean,
//! io_uring included; and a kernel that cannot boot is a bisect skip (125) within the timeout,
//! with no QEMU left behind.
//!
//! Without the kernels or cross binaries the tests fail, unless REGTORTURE_NO_VM=1 says on
//! purpose that this machine cannot run them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One VM at a time: two cores do not run two TCG guests well.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kernel(dir: &str) -> Option<PathBuf> {
    let found = std::fs::read_dir(root().join("target/kernels").join(dir))
        .ok()
        .and_then(|d| d.filter_map(Result::ok).map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinu"))));
    if found.is_none() {
        if std::env::var("REGTORTURE_NO_VM").is_ok_and(|v| v == "1") {
            eprintln!("skipping: no kernel for {dir} and REGTORTURE_NO_VM=1");
            return None;
        }
        panic!("no kernel in target/kernels/{dir}: run scripts/setup (or set REGTORTURE_NO_VM=1)");
    }
    found
}

fn qemu_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|c| c.starts_with("qemu-system"))
        .count()
}

fn boot(arch: &str, dir: &str, smp: &str, classes: &[&str]) {
    let Some(k) = kernel(dir) else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["vm", "--arch", arch, "--smp", smp, "--kernel"])
        .arg(&k)
        .args(["--timeout", "240s", "--json", "-", "--", "--duration", "5s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{arch}: {stderr}");
    // Boot, selftest and run phases were shown.
    for phase in ["booting", "selftest", "run", "verdict"] {
        assert!(stderr.contains(phase), "{arch}: phase {phase} missing from:\n{stderr}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["machine"]["user_mode_emulation"], false, "a real kernel");
    let st = &v["selftest"];
    assert_eq!(st["passed"], true, "{arch}: {st}");
    for c in classes {
        let r = st["classes"].as_array().unwrap().iter().find(|x| x["class"] == *c).unwrap_or_else(|| panic!("{arch}: {c} missing"));
        assert_eq!(r["detected"], 100, "{arch} {c}: {r}");
        assert_eq!(r["injected"], 100, "{arch} {c}: {r}");
    }
    for t in v["triggers"].as_array().unwrap() {
        if smp == "1" && t["name"] == "affinity" {
            // One CPU: nowhere to migrate to, and the report says so.
            assert_eq!(t["status"], "skipped", "{arch}: {t}");
            assert!(t["reason"].as_str().unwrap().contains("one CPU"), "{t}");
            continue;
        }
        assert_eq!(t["status"], "ran", "{arch}: {t}");
        assert!(t["events"].as_u64().unwrap() > 0, "{arch}: {t}");
    }
    assert!(v["triggers"].as_array().unwrap().iter().any(|t| t["name"] == "io_uring" && t["status"] == "ran"));
    assert_eq!(qemu_processes(), 0, "QEMU left behind");
}

/// One vCPU: with two, Debian's 6.1.176 ppc64le kernel under QEMU 10 TCG (multi- and
/// single-threaded alike) killed init with a store protection fault on a heap page in 2 of 3
/// ten-second runs that had io_uring and signal triggers together, and never with one vCPU
/// (6 of 6 clean) nor on the arm64 and amd64 kernels. Not yet root-caused (kernel or QEMU);
/// see the closing notes. The smoke test must not depend on it.
#[test]
fn ppc64le_kernel_selftest_and_clean_run() {
    boot("ppc64le", "ppc64el", "1", &["fpr", "vmx", "vsx"]);
}

#[test]
fn aarch64_kernel_selftest_and_clean_run() {
    boot("aarch64", "arm64", "2", &["neon", "sve"]);
}

#[test]
fn x86_64_kernel_selftest_and_clean_run() {
    boot("x86_64", "amd64", "2", &["x87", "mxcsr", "sse", "avx"]);
}

#[test]
fn a_kernel_that_cannot_boot_is_a_bisect_skip_within_the_timeout() {
    let Some(k) = kernel("ppc64el") else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("regtorture-vmtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("vmlinux-truncated");
    let data = std::fs::read(&k).unwrap();
    std::fs::write(&bad, &data[..data.len() / 3]).unwrap();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["vm", "--arch", "ppc64le", "--bisect", "--timeout", "60s", "--kernel"])
        .arg(&bad)
        .args(["--", "--duration", "2s"])
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(took < Duration::from_secs(70), "took {took:?}");
    assert!(stderr.contains("could not test"), "{stderr}");
    assert_eq!(qemu_processes(), 0, "QEMU left behind");
    // Without --bisect the same is an environment problem.
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["vm", "--arch", "ppc64le", "--timeout", "60s", "--kernel"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_vm_arguments_are_usage_errors() {
    for args in [
        vec!["vm", "--arch", "mips", "--kernel", "/dev/null"],
        vec!["vm", "--arch", "ppc64le", "--kernel", "/nonexistent/vmlinux"],
        vec!["vm", "--arch", "ppc64le", "--kernel", "/dev/null", "--memory", "lots"],
        vec!["vm", "--arch", "ppc64le", "--kernel", "/etc/hostname", "--", "--duration", "forever"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_regtorture")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// On a real powerpc kernel (its own signal frames, not QEMU's), the seed bug's corruption
/// replayed through a frame is caught and named with its fix.
#[test]
fn ppc64le_kernel_names_the_seed_bug_when_its_corruption_is_replayed() {
    let Some(k) = kernel("ppc64el") else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["vm", "--arch", "ppc64le", "--timeout", "240s", "--json", "-", "--kernel"])
        .arg(&k)
        .args(["--", "--duration", "30s", "--triggers", "replay", "--classes", "vsx,fpr"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["mismatches"][0];
    assert!(m["register"] == "vs0" || m["register"] == "f0", "{m}");
    assert!(m["signature"]["fix"].as_str().unwrap().contains("5e1d824f9a28"), "{m}");
    assert_eq!(v["selftest"]["passed"], true);
    assert_eq!(qemu_processes(), 0);
}
