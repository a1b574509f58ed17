//! What a fleet deploys, checked by the tools fleets use: the metrics file by Debian's
//! `promtool check metrics`, the alert rules by `promtool check rules` and `promtool test
//! rules`, the systemd units by `systemd-analyze verify`, the DaemonSet by the Kubernetes schema
//! (`kubernetes-validate --strict`, from PyPI). scripts/setup installs the tools.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> PathBuf {
    let p = root().join("target/tools/promtool");
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regtorture-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check_metrics(path: &std::path::Path) {
    let out = Command::new(promtool()).args(["check", "metrics"]).stdin(std::fs::File::open(path).unwrap()).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
}

/// The metrics of a clean run with its selftest: promtool accepts them, every family is there,
/// and the file was written whole (no temporary left beside it).
#[test]
fn metrics_of_a_clean_run_pass_promtool() {
    let d = tmp("clean");
    let prom = d.join("regtorture.prom");
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["run", "--duration", "2s", "--selftest", "--quiet", "--triggers", "tgkill", "--metrics"])
        .arg(&prom)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    check_metrics(&prom);
    let text = std::fs::read_to_string(&prom).unwrap();
    for family in [
        "regtorture_info{",
        "regtorture_last_run_timestamp_seconds ",
        "regtorture_last_run_duration_seconds ",
        "regtorture_corruption 0",
        "regtorture_checks{class=\"gpr\",window=\"spin\"}",
        "regtorture_faults 0",
        "regtorture_trigger_events{trigger=\"tgkill\",status=\"ran\"}",
        "regtorture_selftest_passed 1",
        "regtorture_selftest_detected{class=\"sse\"} 100",
        "regtorture_selftest_injected{class=\"sse\"} 100",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(text.contains(&format!("kernel=\"{}\"", std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim())));
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 1, "a temporary was left: {left:?}");
    std::fs::remove_dir_all(&d).ok();
}

/// A corruption (the inject control) shows in the metrics the alert watches.
#[test]
fn metrics_of_a_corruption_say_so() {
    let d = tmp("bad");
    let prom = d.join("regtorture.prom");
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args(["run", "--duration", "20s", "--quiet", "--triggers", "inject", "--metrics"])
        .arg(&prom)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    check_metrics(&prom);
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("regtorture_corruption 1") && text.contains("regtorture_exit_code 1"), "{text}");
    assert!(text.contains("regtorture_corrupted_registers{class=\""), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_alert_rules_pass_promtool_and_fire_on_corruption() {
    let dir = root().join("deploy/prometheus");
    let check = Command::new(promtool()).args(["check", "rules", "regtorture-alerts.yml"]).current_dir(&dir).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let test = Command::new(promtool()).args(["test", "rules", "regtorture-alerts.test.yml"]).current_dir(&dir).output().unwrap();
    assert!(test.status.success(), "{}{}", String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
}

/// The units as shipped, but for ExecStart's path (verify wants the executable to exist; the
/// package installs it at /usr/bin/regtorture): the built binary stands in for it.
#[test]
fn the_systemd_units_verify() {
    let d = tmp("systemd");
    let unit = std::fs::read_to_string(root().join("deploy/systemd/regtorture.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/regtorture run "), "{unit}");
    let unit = unit.replace("ExecStart=/usr/bin/regtorture", &format!("ExecStart={}", env!("CARGO_BIN_EXE_regtorture")));
    std::fs::write(d.join("regtorture.service"), unit).unwrap();
    std::fs::copy(root().join("deploy/systemd/regtorture.timer"), d.join("regtorture.timer")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "regtorture.service", "regtorture.timer"])
        .current_dir(&d)
        .output()
        .expect("systemd-analyze (scripts/setup installs systemd)");
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !said.contains("regtorture."), "systemd-analyze verify: {said}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_daemonset_is_valid_kubernetes_and_unprivileged() {
    let ds = root().join("deploy/kubernetes/regtorture-daemonset.yaml");
    let out = Command::new("python3").args(["-m", "kubernetes_validate", "--strict"]).arg(&ds).output().expect("python3");
    assert!(out.status.success(), "kubernetes-validate: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&ds).unwrap();
    for must in ["runAsNonRoot: true", "allowPrivilegeEscalation: false", "drop: [\"ALL\"]", "readOnlyRootFilesystem: true", "--metrics /textfile/"] {
        assert!(text.contains(must), "{must} missing from the DaemonSet");
    }
    assert!(!text.contains("privileged: true"));
}

/// `campaign --emit kubernetes`: an Indexed Job with one completion per cell, valid against
/// the Kubernetes schema as the DaemonSet is, unprivileged, each pod running its own cell.
#[test]
fn the_campaign_job_is_valid_kubernetes_with_one_index_per_cell() {
    let d = tmp("campaign-job");
    let out = Command::new(env!("CARGO_BIN_EXE_regtorture"))
        .args([
            "campaign",
            "--arch",
            "aarch64,riscv64,ppc64le",
            "--kernel",
            "sid,experimental,riscv64=/k/Image",
            "--duration",
            "10m",
            "--jobs",
            "4",
            "--emit",
            "kubernetes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let job = d.join("job.yaml");
    std::fs::write(&job, &out.stdout).unwrap();
    let v = Command::new("python3").args(["-m", "kubernetes_validate", "--strict"]).arg(&job).output().expect("python3");
    assert!(v.status.success(), "kubernetes-validate: {}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // 3 architectures x 2 suites, and the riscv64 image: 7 cells.
    for must in [
        "kind: Job",
        "completionMode: Indexed",
        "completions: 7",
        "parallelism: 4",
        "#   4: riscv64-Image",
        "\"--cell\", \"$(CELL)\"",
        "job-completion-index",
        "runAsNonRoot: true",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(text.contains(must), "{must} missing from the Job:\n{text}");
    }
    assert!(!text.contains("privileged: true"));
    std::fs::remove_dir_all(&d).ok();
}
