//! In-process: after `engine::run` returns, nothing it started remains — no thread (io-wq
//! workers included), no child or zombie, no io_uring instance, no POSIX timer, no signal handler.

use std::time::{Duration, Instant};

use regtorture::arch::{self, linux};
use regtorture::engine;
use regtorture::pattern::Pattern;
use regtorture::plan::Plan;
use regtorture::trigger::TriggerSet;
use regtorture::window::WindowKind;

fn tasks() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn io_urings() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("io_uring")))
        .count()
}

fn timers() -> usize {
    std::fs::read_to_string("/proc/self/timers").map(|s| s.lines().filter(|l| l.starts_with("ID:")).count()).unwrap_or(0)
}

#[test]
fn a_run_with_every_trigger_and_window_leaves_nothing_behind() {
    let descs = arch::native().detect();
    let plan = Plan {
        layouts: descs.iter().filter(|d| d.available.is_ok()).map(|d| d.layout.clone()).collect(),
        windows: WindowKind::runnable(&arch::host()),
        threads: 2,
        duration: Duration::from_secs(3),
        pattern: Pattern::new(3),
        spin: 20_000,
        stop_on_first: true,
        stop_on_known: false,
        keep: 10,
    };
    let triggers = TriggerSet::select(None);
    let before = tasks();
    let out = engine::run(&plan, &triggers, |_| {}, &|_| {}).unwrap();
    assert_eq!(out.mismatch_count, 0);
    // Whether each trigger made events in 3 s depends on the machine's load (tests/triggers.rs
    // checks that they do); what this test is for is what is left after them.
    // io-wq workers leave shortly after the thread that owned them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tasks() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tasks(), before, "threads left behind");
    assert_eq!(io_urings(), 0, "io_uring instances left open");
    assert_eq!(timers(), 0, "POSIX timers left armed");
    // No child, not even a zombie: waitpid says there is none.
    let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!((r, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::ECHILD)));
    for sig in [linux::sig_clobber(), linux::sig_tgkill(), linux::sig_timer(), linux::sig_inject(), libc::SIGINT] {
        assert!(!linux::has_handler(sig), "signal {sig} still has a handler");
    }
}
