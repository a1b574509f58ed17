//! Every trigger against the real kernel: it makes events, the run stays clean, and a trigger
//! that cannot run is a reported skip (or exit 3 with --require).

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{bin, run_json};

fn trigger<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["triggers"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
}

fn detail(t: &serde_json::Value, key: &str) -> f64 {
    t["details"].as_array().unwrap().iter().find(|d| d[0] == key).map(|d| d[1].as_f64().unwrap()).unwrap_or(0.0)
}

#[test]
fn each_trigger_alone_makes_events_and_the_run_stays_clean() {
    let (_, list, _) = run_json(bin().args(["run", "--duration", "1s", "--triggers", "none", "--json", "-"]));
    assert_eq!(list["triggers"].as_array().unwrap().len(), 0, "--triggers none runs none");
    for name in ["io_uring", "tgkill", "timer", "membarrier", "tlb", "affinity", "preempt", "ptrace"] {
        let (code, v, err) = run_json(bin().args(["run", "--duration", "2s", "--triggers", name, "--json", "-", "--windows", "spin,syscall,signal,fork"]));
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(v["mismatch_count"], 0, "{name}");
        let t = trigger(&v, name);
        assert_eq!(t["status"], "ran", "{name}: {t}");
        assert!(t["events"].as_u64().unwrap() > 0, "{name} made no events: {t}");
        assert!(err.contains(name), "{name}: the summary names the trigger");
    }
}

/// The default run (no --triggers: its phases, io_uring alone, with timer signals, then every
/// trigger) makes events with each trigger it runs: a trigger that ran and caused none tested
/// nothing, and the verdict would rest on less than the report says.
#[test]
fn the_default_run_has_every_trigger_make_events() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "4s", "--json", "-"]));
    assert_eq!(code, 0, "{err}");
    for t in v["triggers"].as_array().unwrap() {
        assert_ne!(t["status"], "idle", "{}: {t}", t["name"]);
    }
    for name in ["io_uring", "tgkill", "timer", "affinity", "preempt"] {
        assert_eq!(trigger(&v, name)["status"], "ran", "{name}: {err}");
    }
}

/// The seed path: io-wq workers created by task_work on a checking thread while it ran windows.
///
/// How it is known: each checking thread lists its process's task ids before it submits its
/// blocking splices and again once io_uring_enter has returned; it never enters io_uring
/// again until it ends, so every `iou-wrk-<its tid>` worker that appears later was created by the task_work
/// (`create_worker_cb`) that io-wq queued on that thread, run on its return to user space.
#[test]
fn io_uring_workers_are_created_by_task_work_on_checking_threads() {
    let (code, v, err) = run_json(bin().args(["run", "--duration", "3s", "--triggers", "io_uring", "--json", "-", "--windows", "spin"]));
    assert_eq!(code, 0, "{err}");
    let t = trigger(&v, "io_uring");
    assert_eq!(t["status"], "ran", "{t}");
    let in_windows = detail(t, "workers_by_task_work_in_windows");
    assert!(in_windows > 0.0, "{t}");
    assert!(detail(t, "fresh_checking_threads") > 10.0, "{t}");
    assert!(detail(t, "task_work_creations_per_s_per_checking_thread") > 0.0, "{t}");
    assert_eq!(v["mismatch_count"], 0);
}

/// A child that cannot use io_uring: a seccomp filter makes io_uring_setup fail with EPERM.
fn without_io_uring(cmd: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec the closure only calls prctl(2), which is async-signal-safe,
    // on a filter program that lives on its own stack frame.
    unsafe {
        cmd.pre_exec(|| {
            const LD_ABS_W: u16 = 0x20;
            const JEQ_K: u16 = 0x15;
            const RET_K: u16 = 0x06;
            let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
            let prog = [
                f(LD_ABS_W, 0, 0, 0), // seccomp_data.nr
                f(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
                f(RET_K, 0, 0, 0x0005_0000 | libc::EPERM as u32), // SECCOMP_RET_ERRNO
                f(RET_K, 0, 0, 0x7fff_0000),                      // SECCOMP_RET_ALLOW
            ];
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || libc::prctl(libc::PR_SET_SECCOMP, 2, &fprog as *const _ as libc::c_ulong, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

#[test]
fn io_uring_blocked_by_seccomp_is_a_clean_skip_and_require_makes_it_exit_3() {
    let (code, v, err) = run_json(without_io_uring(bin().args(["run", "--duration", "1s", "--triggers", "io_uring,tgkill", "--json", "-"])));
    assert_eq!(code, 0, "{err}");
    let t = trigger(&v, "io_uring");
    assert_eq!(t["status"], "skipped", "{t}");
    assert!(t["reason"].as_str().unwrap().contains("EPERM"), "{t}");
    assert_eq!(trigger(&v, "tgkill")["status"], "ran");
    assert!(err.contains("skipped"), "{err}");

    let out = without_io_uring(bin().args(["run", "--duration", "1s", "--require", "io_uring"])).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("io_uring") && err.contains("cannot run here"), "{err}");
}

/// After SIGINT, nothing the run started is left: no process of it (fork/vfork children
/// included) outlives it.
#[test]
fn nothing_outlives_an_interrupted_run() {
    let marker = "0x7e57ab1e";
    let mut child = bin()
        .args(["run", "--duration", "60s", "--seed", marker, "--windows", "fork,vfork,spin", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok().map(|c| (e.file_name(), c)))
        .filter(|(_, c)| String::from_utf8_lossy(c).contains(marker))
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "processes of the run still alive: {left:?}");
}
