//! io-wq worker creation on the checking thread: the path of the bug regtorture was made for.
//!
//! Each checking thread, as it starts, queues splice requests that block in its own io-wq
//! (see `arch::iowq`). io_uring creates the first worker synchronously while the thread is in
//! `io_uring_enter`; every further one is created by task_work queued on the checking thread
//! with TWA_SIGNAL, which interrupts it (an IPI) while it spins in a window and runs
//! `create_io_thread` → `copy_process` on its way back to user space, with its registers live.
//!
//! io-wq workers are per task, are reused while idle and only exit after seconds, so a thread
//! makes new workers only while it has fresh blocking work: the trigger asks for checking threads
//! to be replaced by fresh ones every [`LIFETIME`]; each fresh thread has a fresh io-wq.
//!
//! Counting: workers are kernel threads named `iou-wrk-<tid of the submitting thread>`, listed
//! under /proc/self/task. Those present when `io_uring_enter` returns were created synchronously
//! (or by task_work on that return); any that appear after it, while the thread only runs its windows and never enters io_uring
//! again, can only have been created by task_work run on that thread (`create_worker_cb`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{About, Trigger, TriggerCtx};
use crate::arch::{iowq, linux};

/// Blocking requests queued by each fresh checking thread (measured by `regtorture bench`: on a
/// 2-CPU machine 128 requests with 20 ms threads made more task_work creations per second than
/// 16, 32 or 64, and than longer or shorter lives).
pub const REQUESTS: usize = 128;
/// How long a checking thread lives before a fresh one (with a fresh io-wq) replaces it.
pub const LIFETIME: Duration = Duration::from_millis(20);

pub struct IoUring {
    requests: usize,
    /// `None`: one checking thread for the whole run (creation stops once its io-wq is full).
    lifetime: Option<Duration>,
    counts: Arc<Counts>,
}

impl Default for IoUring {
    fn default() -> IoUring {
        IoUring::with(REQUESTS, Some(LIFETIME))
    }
}

impl IoUring {
    /// A variant with other parameters, for the benchmark's comparison of designs.
    pub fn with(requests: usize, lifetime: Option<Duration>) -> IoUring {
        IoUring { requests, lifetime, counts: Arc::default() }
    }
}

#[derive(Default)]
struct Counts {
    /// Workers that existed once io_uring_enter had returned: made synchronously, or by
    /// task_work on that return.
    sync: AtomicU64,
    /// Workers created afterwards, by task_work on the checking thread while it ran windows.
    task_work: AtomicU64,
    rounds: AtomicU64,
}

/// The kernel thread ids of this process's tasks now, sorted: the names of /proc/self/task
/// only (a few getdents calls), so that taking it lets little of the worker chain run.
fn task_ids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut v: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort_unstable();
    v
}

/// How many of the tasks in `now` but not in `before` (both sorted) are io-wq workers of
/// thread `tid` (named `iou-wrk-<tid>`).
fn new_workers(tid: i32, before: &[i32], now: &[i32]) -> u64 {
    let name = format!("iou-wrk-{tid}");
    now.iter()
        .filter(|t| before.binary_search(t).is_err())
        .filter(|t| std::fs::read_to_string(format!("/proc/self/task/{t}/comm")).is_ok_and(|c| c.trim_end() == name))
        .count() as u64
}

/// Lives as long as a checking thread: its blocked requests, and the tasks there were before
/// it submitted them and right after. Which workers are whose is read when it ends: reading
/// every task's name at the start took hundreds of system calls, on each of whose returns the
/// worker chain went on (under QEMU's TCG all 128 workers were made before the first window).
struct Round {
    splices: Option<iowq::BlockedSplices>,
    tid: i32,
    before: Vec<i32>,
    after: Vec<i32>,
    counts: Arc<Counts>,
}

impl Drop for Round {
    fn drop(&mut self) {
        let now = task_ids();
        let sync = new_workers(self.tid, &self.before, &self.after);
        self.counts.sync.fetch_add(sync, Ordering::Relaxed);
        self.counts.task_work.fetch_add(new_workers(self.tid, &self.after, &now), Ordering::Relaxed);
        self.counts.rounds.fetch_add(1, Ordering::Relaxed);
        self.splices.take();
    }
}

impl Trigger for IoUring {
    fn about(&self) -> About {
        About::hooks("io_uring", "io-wq worker creation run as task_work on the checking thread mid-window (the seed bug's path)")
    }
    fn available(&self) -> Result<(), String> {
        if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
            if v.trim() != "0" {
                return Err(format!("io_uring is disabled (/proc/sys/kernel/io_uring_disabled = {})", v.trim()));
            }
        }
        iowq::probe().map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSYS) => "io_uring is not implemented here (ENOSYS: no CONFIG_IO_URING, or user-mode emulation)".into(),
            Some(libc::EPERM) => "io_uring is not permitted (EPERM: io_uring_disabled, or a seccomp filter)".into(),
            _ => format!("io_uring cannot be used: {e}"),
        })
    }
    fn checker_start(&self, _ctx: &TriggerCtx) -> Option<Box<dyn Send>> {
        let tid = linux::gettid();
        let before = task_ids();
        let splices = iowq::BlockedSplices::submit(self.requests).ok()?;
        let after = task_ids();
        Some(Box::new(Round { splices: Some(splices), tid, before, after, counts: self.counts.clone() }))
    }
    fn checker_lifetime(&self) -> Option<Duration> {
        self.lifetime
    }
    fn events(&self) -> u64 {
        self.counts.task_work.load(Ordering::Relaxed)
    }
    fn details(&self, elapsed: Duration, checker_seconds: f64) -> Vec<(String, f64)> {
        let tw = self.counts.task_work.load(Ordering::Relaxed) as f64;
        let threads = (checker_seconds / elapsed.as_secs_f64().max(1e-9)).max(1e-9);
        vec![
            ("workers_before_windows".into(), self.counts.sync.load(Ordering::Relaxed) as f64),
            ("workers_by_task_work_in_windows".into(), tw),
            ("fresh_checking_threads".into(), self.counts.rounds.load(Ordering::Relaxed) as f64),
            ("task_work_creations_per_s_per_checking_thread".into(), tw / elapsed.as_secs_f64().max(1e-9) / threads),
        ]
    }
}
