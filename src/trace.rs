//! The kernel's own timeline of regtorture's threads: tracepoint events recorded through tracefs,
//! so that a finding can show what the kernel did to the affected thread during its bad window
//! (which syscalls it entered, which signals were generated and delivered, when it was switched
//! out or migrated, which interrupts, IPIs and io_uring task work hit it, which threads it made).
//!
//! [`Tracer::start`] makes a tracefs *instance* of its own (`instances/regtorture-<pid>`), so the
//! global trace buffer and any other user of tracefs are left alone; it is removed again when the
//! [`Tracer`] is dropped (and at the next start when a killed process left one behind). When no
//! tracefs is mounted yet (as when regtorture is the init of a VM), it is mounted on a directory
//! of the process's own under the temporary directory, and unmounted and removed on drop. One tracer per process at a time. Then
//! [`Tracer::freeze`] when a finding is made, [`Tracer::events`], and [`timeline`] for the
//! affected thread and the CLOCK_MONOTONIC interval of its window.
//!
//! How the instance is set up, and what was measured on Linux 6.18 (x86_64, 2 CPUs):
//!
//! * `trace_clock` is `mono`, the kernel's CLOCK_MONOTONIC, so event times compare with
//!   [`monotonic_ns`](crate::arch::linux::monotonic_ns) read in user space. The `trace` text
//!   prints every nanosecond clock in **microseconds** (`secs.usecs`), so [`Event::ts_ns`] is
//!   truncated to a whole microsecond: the event happened in `[ts_ns, ts_ns + 1000)`, and
//!   [`timeline`] keeps an event when that microsecond meets the interval.
//! * `set_event_pid` holds the thread ids of `/proc/self/task`, and the `event-fork` option adds
//!   every task a traced task forks: threads spawned after the start (`std::thread::spawn`, also
//!   by a thread itself spawned later) are followed from their first instruction.
//! * io_uring's io-wq workers are *not* followed: they are made by `create_io_thread`, which does
//!   not pass the `sched_process_fork` tracepoint that `event-fork` hooks. Their creation is an
//!   event of the submitting thread: `task_newtask pid=<worker> comm=<the submitter's comm>
//!   clone_flags=80810f00` (CLONE_IO set; the `iou-wrk-<tid>` name appears only once the worker
//!   runs, in later `sched_switch` fields). The first worker is made inside `io_uring_enter`,
//!   further ones by task work on the submitter's way back to user space (seen right after a
//!   `clock_nanosleep` exit with -516, ERESTART_RESTARTBLOCK, before `restart_syscall`).
//!   [`Tracer::follow_threads`] (workers are threads of this process) adds the workers that
//!   exist; their own events are recorded from then on.
//! * The pid filter is a per-CPU flag switched at context switches and wake-ups, so some events
//!   of other tasks slip in (the task that switches to or wakes a traced one, an interrupt just
//!   after); [`timeline`] picks one thread's events anyway. A task's comm is the one the kernel
//!   remembers when the trace is read (`<...>` if forgotten), not the one it had at the event.
//! * `buffer_size_kb` bounds the ring buffer of each CPU. It overwrites its oldest events, so it
//!   holds the last stretch of time ([`Trace::overwritten`] counts what it lost); a getppid loop
//!   fills 2 MiB in about 40,000 events, some 15 ms. [`Tracer::freeze`] stops recording so a
//!   finding's window is not overwritten before it is read.
//! * Events come from [`TraceOptions::events`]; those the kernel does not list in
//!   `available_events` are reported by [`Tracer::missing`]. The Debian 6.1 kernels (amd64,
//!   arm64, ppc64el) have no `ipi:ipi_send_cpu*` (arm64 has `ipi:ipi_raise`) and call
//!   `io_uring_submit_req` `io_uring_submit_sqe`; [`DEFAULT_EVENTS`] takes whichever there is.
//!
//! The cost: 1e6 getppid calls of a traced thread took 3 to 4 times as long with
//! [`DEFAULT_EVENTS`] (about 0.2 µs → 0.7 µs each, as every call writes `sys_enter` and
//! `sys_exit`); without `raw_syscalls:*` there was no measurable difference. While `raw_syscalls`
//! are enabled *every* task of the machine takes the kernel's syscall slow path (the tracepoint
//! work flag), traced or not: a thread left out of the filter took 1.3 to 1.5 times as long. A bug
//! that lives on the fast syscall exit path may hide while they are on.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::arch::linux;
use crate::error::{Error, Result};
use crate::schema::{Report, Timeline, TraceEvent, TraceSummary};

/// Where this process mounts tracefs when it is not mounted yet: a directory of its own, so
/// that two regtorture processes never unmount each other's (tracefs is one tree however often
/// it is mounted; the instances are named after their processes).
fn private_mount_point() -> PathBuf {
    std::env::temp_dir().join(format!("regtorture-tracefs-{}", linux::getpid()))
}

/// System call entries and exits: recorded only when asked for ([`TraceOptions::with_syscalls`]).
/// While they are enabled every task takes the kernel's syscall slow path (the tracepoint work
/// flag; on powerpc `syscall_exit_prepare` then asks for a full register restore), so a bug of
/// the fast syscall exit hides while they are on.
pub const SYSCALL_EVENTS: &[&str] = &["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"];

/// The events recorded by default (see [`TraceOptions::events`]). Linux 6.1 names
/// `io_uring_submit_req` `io_uring_submit_sqe` and has no `ipi_send_cpu*` (arm64 has `ipi_raise`).
pub const DEFAULT_EVENTS: &[&str] = &[
    "task:task_newtask",
    "signal:signal_generate",
    "signal:signal_deliver",
    "sched:sched_switch",
    "sched:sched_migrate_task",
    "sched:sched_process_fork",
    "io_uring:io_uring_submit_req|io_uring_submit_sqe",
    "io_uring:io_uring_queue_async_work",
    "io_uring:io_uring_task_add",
    "io_uring:io_uring_task_work_run",
    "workqueue:workqueue_queue_work",
    "ipi:ipi_send_cpu|ipi_raise",
    "ipi:ipi_send_cpumask",
    "irq:irq_handler_entry",
    "irq:irq_handler_exit",
];

/// The trace text prints nanosecond clocks in whole microseconds.
const TS_STEP_NS: u64 = 1000;

/// What to record.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// The ring buffer of each CPU, in KiB (the kernel rounds it up to whole pages).
    pub buffer_kb_per_cpu: usize,
    /// `system:event` names; `system:*` takes every event of the system, `system:a|b` the first of
    /// the alternatives the kernel has.
    pub events: Vec<String>,
}

impl TraceOptions {
    /// The default events and the system calls ([`SYSCALL_EVENTS`]).
    pub fn with_syscalls(mut self) -> TraceOptions {
        self.events.extend(SYSCALL_EVENTS.iter().map(|e| e.to_string()));
        self
    }
}

impl Default for TraceOptions {
    fn default() -> TraceOptions {
        TraceOptions { buffer_kb_per_cpu: 2048, events: DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect() }
    }
}

/// One event of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// CLOCK_MONOTONIC in nanoseconds, truncated to the microsecond (see the module doc).
    pub ts_ns: u64,
    pub cpu: u32,
    /// The thread that was running when the event was recorded (0: idle).
    pub tid: i32,
    /// Its command name as the kernel remembers it when the trace is read; `<...>` if forgotten.
    pub comm: String,
    /// The event's name without its system, e.g. `sched_switch`.
    pub name: String,
    /// The rest of the line: the event's own fields as the kernel prints them.
    pub fields: String,
}

impl Event {
    /// The value of field `key` (`key=value`) of this event, if it has one.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.split_whitespace().find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// Whether this event is of thread `tid` or about it: a signal sent to it, a switch to or
    /// from it, its creation, a wake-up or migration of it.
    pub fn concerns(&self, tid: i32) -> bool {
        let id = tid.to_string();
        self.tid == tid || ["pid", "child_pid", "prev_pid", "next_pid"].iter().any(|k| self.field(k) == Some(id.as_str()))
    }
}

/// The parsed content of a trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// In the order of the trace (by time, the CPUs merged).
    pub events: Vec<Event>,
    /// The events that `CPU:n [LOST k EVENTS]` lines say are missing (the sum of the k).
    pub lost: u64,
    /// How many such lines there were (the kernel leaves the count out when it does not know it).
    pub lost_marks: u64,
    /// Events written but no longer in the buffer (the header's entries-written minus
    /// entries-in-buffer): the ring overwrote its oldest ones.
    pub overwritten: u64,
}

/// A `CPU:n [LOST k EVENTS]` line: `Some(Some(k))`; `CPU:n [LOST EVENTS]`: `Some(None)`.
fn lost_line(line: &str) -> Option<Option<u64>> {
    let rest = line.strip_prefix("CPU:")?;
    let (_, mark) = rest.split_once('[')?;
    let mark = mark.strip_suffix(']')?.strip_prefix("LOST")?.strip_suffix("EVENTS")?.trim();
    Some(mark.parse().ok())
}

/// Parse the text of a tracefs `trace` or `trace_pipe` file: header lines (`# ...`) are skipped
/// (but for the entry counts), `CPU:n [LOST k EVENTS]` lines are counted, and each event line
/// (`comm-tid [cpu] flags secs.usecs: name: fields`, with or without the TGID and irq-info
/// columns) becomes an [`Event`]. Lines that fit none of these are left out.
pub fn parse(text: &str) -> Trace {
    let mut t = Trace::default();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('#') {
            let counts = header.trim().strip_prefix("entries-in-buffer/entries-written:").and_then(|r| r.split_whitespace().next());
            if let Some((kept, written)) = counts.and_then(|c| c.split_once('/')) {
                if let (Ok(kept), Ok(written)) = (kept.parse::<u64>(), written.parse::<u64>()) {
                    t.overwritten += written.saturating_sub(kept);
                }
            }
        } else if let Some(count) = lost_line(trimmed) {
            t.lost_marks += 1;
            t.lost += count.unwrap_or(0);
        } else if let Some(e) = parse_event(line) {
            t.events.push(e);
        }
    }
    t
}

/// One event line. The `[cpu]` column is the first `[digits]` that follows a `comm-tid` (and
/// optionally a `(tgid)`) and is followed by a timestamp, so a comm may hold dashes, spaces and
/// brackets.
fn parse_event(line: &str) -> Option<Event> {
    let mut from = 0;
    while let Some(off) = line[from..].find('[') {
        let open = from + off;
        from = open + 1;
        let Some(len) = line[open + 1..].find(']') else { break };
        let cpu = &line[open + 1..open + 1 + len];
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let (Some((comm, tid)), Some((ts_ns, name, fields))) = (task(&line[..open]), after_cpu(&line[open + 2 + len..])) else {
            continue;
        };
        let cpu = cpu.parse().ok()?;
        return Some(Event { ts_ns, cpu, tid, comm: comm.to_string(), name: name.to_string(), fields: fields.to_string() });
    }
    None
}

/// `comm-tid`, with an optional `(tgid)` column after it.
fn task(s: &str) -> Option<(&str, i32)> {
    let mut s = s.trim_end();
    if let Some(inner) = s.strip_suffix(')') {
        let (before, tgid) = inner.rsplit_once('(')?;
        if !tgid.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'-') {
            return None;
        }
        s = before.trim_end();
    }
    let (comm, tid) = s.rsplit_once('-')?;
    if tid.is_empty() || !tid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((comm.trim_start(), tid.parse().ok()?))
}

/// `[flags] secs.usecs: name: fields` (the flags column is there with the irq-info option).
fn after_cpu(s: &str) -> Option<(u64, &str, &str)> {
    let mut rest = s;
    let mut ts = None;
    for _ in 0..2 {
        let tok_rest = rest.trim_start();
        let end = tok_rest.find(char::is_whitespace).unwrap_or(tok_rest.len());
        let (tok, r) = tok_rest.split_at(end);
        rest = r;
        ts = tok.strip_suffix(':').and_then(timestamp);
        if ts.is_some() {
            break;
        }
    }
    let (name, fields) = rest.trim_start().split_once(':').unwrap_or((rest.trim(), ""));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some((ts?, name, fields.trim()))
}

/// `secs.fraction` in nanoseconds (a bare number: a counter clock, taken as is).
fn timestamp(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || frac.len() > 9 || !(secs.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() {
        return secs.parse().ok();
    }
    let frac_ns = frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    secs.parse::<u64>().ok()?.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// The events of thread `tid` and about it ([`Event::concerns`]) that may lie in the
/// CLOCK_MONOTONIC interval `[from_ns, to_ns]` (an event's microsecond meets it), the last
/// `last` of them, in time order.
pub fn timeline(events: &[Event], tid: i32, from_ns: u64, to_ns: u64, last: usize) -> Vec<Event> {
    let mut out: Vec<Event> = events.iter().filter(|e| e.ts_ns <= to_ns && e.ts_ns.saturating_add(TS_STEP_NS) > from_ns && e.concerns(tid)).cloned().collect();
    out.sort_by_key(|e| e.ts_ns);
    out.split_off(out.len().saturating_sub(last))
}

/// A finding's timeline holds at most this many events (the window's last ones).
pub const TIMELINE_MAX: usize = 400;
/// A fault outside a window: the thread's last events before it.
pub const FAULT_EVENTS: usize = 40;

const CLONE_IO: u64 = 0x8000_0000;

/// What an event means for thread `tid`, when that is worth saying.
fn note(e: &Event, tid: i32) -> Option<String> {
    let id = tid.to_string();
    let is = |k: &str| e.field(k) == Some(id.as_str());
    match e.name.as_str() {
        "task_newtask" if e.tid == tid => {
            let flags = e.field("clone_flags").and_then(|f| u64::from_str_radix(f, 16).ok()).unwrap_or(0);
            let child = e.field("pid").unwrap_or("?");
            Some(if flags & CLONE_IO != 0 {
                format!("io-wq worker {child} (iou-wrk-{tid}) created on this thread (CLONE_IO)")
            } else {
                format!("thread or process {child} created by this thread")
            })
        }
        // io-wq retries a worker whose creation failed from a workqueue: copy_process refuses
        // with -ERESTARTNOINTR while a signal is pending, before any task_newtask.
        "workqueue_queue_work" if e.tid == tid && e.field("function") == Some("io_workqueue_create") => {
            Some("io-wq worker creation failed (a signal was pending?) and is retried from a workqueue".into())
        }
        "signal_generate" if is("pid") => Some(format!("signal {} sent to this thread", e.field("sig").unwrap_or("?"))),
        "signal_deliver" if e.tid == tid => Some(format!("signal {} delivered: handler frame set up", e.field("sig").unwrap_or("?"))),
        "sched_switch" if is("prev_pid") => Some(format!("switched out (state {})", e.field("prev_state").unwrap_or("?"))),
        "sched_switch" if is("next_pid") => Some("switched in".into()),
        "sched_migrate_task" if is("pid") => {
            Some(format!("migrated from cpu {} to cpu {}", e.field("orig_cpu").unwrap_or("?"), e.field("dest_cpu").unwrap_or("?")))
        }
        "sched_wakeup" | "sched_waking" if is("pid") => Some("woken".into()),
        _ => None,
    }
}

/// The timeline of `tid` over `[from_ns, to_ns]` from `trace`, times counted from `origin_ns`.
fn make_timeline(trace: &Trace, tid: i32, from_ns: u64, to_ns: u64, last: usize, origin_ns: u64) -> Timeline {
    let oldest = trace.events.iter().map(|e| e.ts_ns).min();
    let events = timeline(&trace.events, tid, from_ns, to_ns, last)
        .into_iter()
        .map(|e| TraceEvent {
            t_ns: e.ts_ns as i64 - origin_ns as i64,
            note: note(&e, tid),
            cpu: e.cpu,
            tid: e.tid,
            comm: e.comm,
            name: e.name,
            fields: e.fields,
        })
        .collect();
    Timeline { origin_ns, from_ns, to_ns, events, truncated: oldest.is_none_or(|o| o > from_ns) }
}

/// Put the kernel's timeline into every finding of `rep` that has a time: a mismatch's window
/// (from its start to its check); a fault's window (from its start to the fault), or, for a
/// checking thread's fault outside a window, the time since its last window ended (or since it
/// started, before its first: its triggers' start makes system calls too), else the last
/// [`FAULT_EVENTS`] events; and the summary of what was recorded.
///
/// A fault's own window, not a count of events, because the handler's first instruction can
/// come long after the fault: under QEMU's TCG, 4 ms after SIGSEGV was delivered, in which
/// timer interrupts on the thread's CPU had recorded some twenty events of other threads'
/// signals, enough to push the io-wq worker creation that led to the fault out of a 40-event
/// timeline.
pub fn annotate(rep: &mut Report, trace: &Trace, summary: TraceSummary) {
    // A finding after the first one froze the trace has no events of its own there: no
    // timeline, rather than a partial one that misleads (a run goes on past a known bug).
    let recorded = |end: u64| linux::trace_frozen_at().is_none_or(|frozen| end <= frozen);
    for m in &mut rep.mismatches {
        if let Some((from, to)) = m.window_ns.filter(|w| recorded(w.1)) {
            m.timeline = Some(make_timeline(trace, m.tid, from, to, TIMELINE_MAX, from));
        }
    }
    for f in &mut rep.faults {
        if f.at_ns > 0 && recorded(f.at_ns) {
            // Each event's whole microsecond: the fault's own signal is recorded in it.
            f.timeline = Some(fault_timeline(trace, f.tid, f.at_ns, f.window_start_ns.or(f.outside_since_ns)));
        }
    }
    rep.trace = Some(summary);
}

/// The timeline of a fault of thread `tid` at `at_ns`, times from the fault: the window it
/// happened in, or the time since the thread left its last one (or started), when `since_ns`
/// says when that began, else its last [`FAULT_EVENTS`].
fn fault_timeline(trace: &Trace, tid: i32, at_ns: u64, since_ns: Option<u64>) -> Timeline {
    // Each event's whole microsecond: the fault's own signal is recorded in it.
    let to = at_ns + TS_STEP_NS;
    match since_ns {
        Some(from) => make_timeline(trace, tid, from, to, TIMELINE_MAX, at_ns),
        None => Timeline { truncated: false, ..make_timeline(trace, tid, 0, to, FAULT_EVENTS, at_ns) },
    }
}

/// Why tracing was not possible, for the report.
pub fn skipped(reason: String) -> TraceSummary {
    TraceSummary { status: "skipped".into(), reason: Some(reason), ..TraceSummary::default() }
}

/// Set while a [`Tracer`] exists: its instance is named after the process.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Clears [`ACTIVE`] when dropped.
struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::Release);
    }
}

/// A tracefs mount; unmounted on drop if this process mounted it.
struct Mount {
    root: PathBuf,
    ours: bool,
}

impl Mount {
    fn get() -> Result<Mount> {
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let tracefs: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, dir, ty) = (f.next(), f.next()?, f.next()?);
                (ty == "tracefs").then(|| PathBuf::from(dir))
            })
            .collect();
        // Another regtorture's own mount is not for us (it unmounts it when it ends); one whose
        // process is gone is removed.
        let private =
            |p: &Path| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("regtorture-tracefs-")).and_then(|pid| pid.parse::<i32>().ok());
        for p in &tracefs {
            if private(p).is_some_and(|pid| pid != linux::getpid() && !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = linux::unmount_fs(&p.to_string_lossy());
                let _ = fs::remove_dir(p);
            }
        }
        let found = tracefs.into_iter().find(|p| private(p).is_none());
        if let Some(root) = found {
            return Ok(Mount { root, ours: false });
        }
        let root = private_mount_point();
        linux::mount_fs("nodev", &root.to_string_lossy(), "tracefs").map_err(|e| {
            let _ = fs::remove_dir(&root);
            let why = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => "tracing needs root",
                Some(libc::ENODEV) => "this kernel has no tracefs",
                _ => "",
            };
            Error::Environment(format!("cannot mount tracefs at {}: {e}{}{why}", root.display(), if why.is_empty() { "" } else { "; " }))
        })?;
        Ok(Mount { root, ours: true })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.ours {
            let _ = linux::unmount_fs(&self.root.to_string_lossy());
            let _ = fs::remove_dir(&self.root);
        }
    }
}

/// A tracefs instance recording the events of this process's threads; removed on drop.
pub struct Tracer {
    dir: PathBuf,
    /// `tracing_on`, open for the first finding's freeze ([`linux::freeze_trace`]).
    on: Option<fs::File>,
    enabled: Vec<String>,
    missing: Vec<String>,
    // Dropped after the instance is removed, in this order.
    mount: Mount,
    _active: Active,
}

/// Remove the instances of regtorture processes that are gone (killed before they could remove
/// theirs): their buffers hold memory, and their enabled `raw_syscalls` events slow every task.
fn remove_stale(instances: &Path) {
    let Ok(dir) = fs::read_dir(instances) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("regtorture-")).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| p != linux::getpid() && !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The events of `available` that `want` names: `system:event`, `system:*` (all of the system)
/// or `system:a|b` (the first of the alternatives the kernel has).
fn choose<'a>(want: &str, available: &[&'a str]) -> Vec<&'a str> {
    let Some((system, alternatives)) = want.split_once(':') else { return Vec::new() };
    for alt in alternatives.split('|') {
        let found: Vec<&str> = available.iter().copied().filter(|a| a.split_once(':').is_some_and(|(s, e)| s == system && (alt == "*" || e == alt))).collect();
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// The thread ids of this process.
fn own_threads() -> io::Result<Vec<i32>> {
    Ok(fs::read_dir("/proc/self/task")?.filter_map(|d| d.ok()?.file_name().to_str()?.parse().ok()).collect())
}

impl Tracer {
    /// Make the instance, set it up as the module doc says and start recording. An error says
    /// why tracing is not possible here (not root, no tracefs, no instance).
    pub fn start(opts: &TraceOptions) -> Result<Tracer> {
        if ACTIVE.swap(true, Ordering::AcqRel) {
            return Err(Error::Environment("a tracer of this process is already running".into()));
        }
        let active = Active;
        let mount = Mount::get()?;
        let instances = mount.root.join("instances");
        remove_stale(&instances);
        let dir = instances.join(format!("regtorture-{}", linux::getpid()));
        let made = fs::create_dir(&dir).or_else(|e| {
            // Left over from a process that had this pid and died before removing it.
            if e.kind() == io::ErrorKind::AlreadyExists { fs::remove_dir(&dir).and_then(|_| fs::create_dir(&dir)) } else { Err(e) }
        });
        if let Err(e) = made {
            let why = if e.kind() == io::ErrorKind::PermissionDenied { "; tracing needs root" } else { "" };
            return Err(Error::Environment(format!("cannot make the tracefs instance {}: {e}{why}", dir.display())));
        }
        let mut t = Tracer { dir, on: None, enabled: Vec::new(), missing: Vec::new(), mount, _active: active };
        t.write("tracing_on", "0")?;
        t.write("buffer_size_kb", &opts.buffer_kb_per_cpu.max(4).to_string())?;
        t.write("trace_clock", "mono")?;
        t.write("options/event-fork", "1")?;
        let tids = own_threads().map_err(Error::io("read /proc/self/task"))?;
        if tids.is_empty() {
            // An empty set_event_pid would trace every task of the machine.
            return Err(Error::Environment("no thread ids in /proc/self/task".into()));
        }
        let list = tids.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
        t.write("set_event_pid", &list)?;
        // Threads started meanwhile, before the filter could follow them.
        t.follow_threads()?;
        let available = fs::read_to_string(t.mount.root.join("available_events")).map_err(Error::io("read available_events"))?;
        let available: Vec<&str> = available.lines().map(str::trim).collect();
        for want in &opts.events {
            let names = choose(want, &available);
            if names.is_empty() {
                t.missing.push(want.clone());
            }
            for name in names {
                let path = format!("events/{}/enable", name.replacen(':', "/", 1));
                match t.write(&path, "1") {
                    Ok(()) => t.enabled.push(name.to_string()),
                    Err(_) => t.missing.push(name.to_string()),
                }
            }
        }
        t.write("trace", "")?;
        t.write("tracing_on", "1")?;
        let on = t.dir.join("tracing_on");
        let on = fs::OpenOptions::new().write(true).open(&on).map_err(Error::io(format!("open {}", on.display())))?;
        linux::set_trace_freeze_fd(std::os::fd::AsRawFd::as_raw_fd(&on));
        t.on = Some(on);
        Ok(t)
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        fs::write(self.dir.join(file), value).map_err(Error::io(format!("write {value:?} to {}", self.dir.join(file).display())))
    }

    /// The requested events this kernel does not have (or would not enable).
    #[cfg(test)]
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// What was recorded, for the report.
    pub fn summary(&self, trace: &Trace, opts: &TraceOptions) -> TraceSummary {
        TraceSummary {
            status: "recorded".into(),
            reason: None,
            events: self.enabled.clone(),
            missing: self.missing.clone(),
            buffer_kb_per_cpu: opts.buffer_kb_per_cpu,
            recorded: trace.events.len() as u64,
            lost: trace.lost,
            overwritten: trace.overwritten,
            frozen_at_finding: false,
        }
    }

    fn add_threads(&self, tids: &[i32]) -> Result<()> {
        let path = self.dir.join("set_event_pid");
        // Appending adds to the list; a plain write would replace it.
        let mut f = fs::OpenOptions::new().append(true).open(&path).map_err(Error::io(format!("open {}", path.display())))?;
        let list = tids.iter().map(|t| format!("{t}\n")).collect::<String>();
        f.write_all(list.as_bytes()).map_err(Error::io(format!("add threads to {}", path.display())))
    }

    /// Record the events of every thread this process has now (io-wq workers included).
    pub fn follow_threads(&self) -> Result<()> {
        self.add_threads(&own_threads().map_err(Error::io("read /proc/self/task"))?)
    }

    /// Stop recording, so that the events of a finding are not overwritten; they stay readable.
    pub fn freeze(&self) {
        let _ = self.write("tracing_on", "0");
    }

    /// Record again after [`freeze`](Tracer::freeze).
    pub fn resume(&self) {
        let _ = self.write("tracing_on", "1");
    }

    /// The events in the buffer now (the `trace` file: reading does not consume them).
    /// Recording pauses while they are read: the reading thread is traced too, and a reader
    /// that records its own `read` calls never reaches the end.
    pub fn events(&self) -> Result<Trace> {
        let on = fs::read_to_string(self.dir.join("tracing_on")).is_ok_and(|v| v.trim() == "1");
        if on {
            self.freeze();
        }
        let path = self.dir.join("trace");
        let text = fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())));
        if on {
            self.resume();
        }
        Ok(parse(&text?))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        linux::set_trace_freeze_fd(-1);
        self.on = None;
        let _ = self.write("tracing_on", "0");
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines captured from `trace` and `trace_pipe` on Linux 6.18 (x86_64, trace_clock mono).
    const CAPTURED: &str = "\
# tracer: nop
#
# entries-in-buffer/entries-written: 179/113405   #P:2
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
           a b-c-1891    [001] .....  7962.248771: sys_enter: NR 110 (8, 0, 1, 20022, 7f3fb8000038, 0)
    iou-wrk-1889-1892    [000] d..3.  7962.289287: ipi_send_cpu: cpu=1 callsite=ttwu_queue_wakelist+0x11d/0x150 callback=generic_smp_call_function_single_interrupt+0x0/0x10
CPU:1 [LOST 11478 EVENTS]
           <...>-24710   [001] d..2.  7786.432226: sched_switch: prev_comm=ar prev_pid=24710 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=24711 next_prio=120
          <idle>-0       [000] d..2.  7660.447632: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19209 next_prio=120
            bash-24705   [001] d.h1.  7786.413303: irq_handler_entry: irq=36 name=virtio1-req.0
CPU:0 [LOST 10507 EVENTS]
 trace::tests::e-1464    [001] .....  7943.316884: task_newtask: pid=1466 comm=trace::tests::e clone_flags=80810f00 oom_score_adj=0
";

    fn ev(ts_ns: u64, cpu: u32, tid: i32, comm: &str, name: &str, fields: &str) -> Event {
        Event { ts_ns, cpu, tid, comm: comm.into(), name: name.into(), fields: fields.into() }
    }

    #[test]
    fn parses_captured_lines_with_tricky_comms_and_lost_events() {
        let t = parse(CAPTURED);
        assert_eq!((t.lost, t.lost_marks, t.overwritten), (11478 + 10507, 2, 113405 - 179));
        let got: Vec<_> = t.events.iter().map(|e| (e.ts_ns, e.cpu, e.tid, e.comm.as_str(), e.name.as_str())).collect();
        assert_eq!(
            got,
            [
                (7962_248771000, 1, 1891, "a b-c", "sys_enter"),
                (7962_289287000, 0, 1892, "iou-wrk-1889", "ipi_send_cpu"),
                (7786_432226000, 1, 24710, "<...>", "sched_switch"),
                (7660_447632000, 0, 0, "<idle>", "sched_switch"),
                (7786_413303000, 1, 24705, "bash", "irq_handler_entry"),
                (7943_316884000, 1, 1464, "trace::tests::e", "task_newtask"),
            ]
        );
        assert_eq!(t.events[0].fields, "NR 110 (8, 0, 1, 20022, 7f3fb8000038, 0)");
        assert_eq!(t.events[4].fields, "irq=36 name=virtio1-req.0");
        assert_eq!(t.events[2].field("next_pid"), Some("24711"));
    }

    #[test]
    fn parses_the_tgid_column_and_lines_without_irq_info() {
        let text = "\
            true-22438   (  22438) [000] d..2.  7765.856561: sched_switch: prev_comm=bash prev_pid=22438 prev_prio=120 prev_state=D ==> next_comm=rcu_tasks_trace next_pid=29 next_prio=120
 memfd:sealed-91-17445   (  17445) [000] d..2.  7765.863435: sched_switch: prev_comm=memfd:sealed-91 prev_pid=17445 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
          <idle>-0       (-------) [000] d..2.  7765.864046: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=rcu_preempt next_pid=15 next_prio=120
            true-22441   [000]   7765.968589: ipi_send_cpu: cpu=0 callsite=irq_work_queue+0x29/0x60 callback=call_rcu_tasks_iw_wakeup+0x0/0x10
CPU:3 [LOST EVENTS]
not an event line
";
        let t = parse(text);
        let got: Vec<_> = t.events.iter().map(|e| (e.tid, e.comm.as_str(), e.ts_ns)).collect();
        assert_eq!(
            got,
            [(22438, "true", 7765_856561000), (17445, "memfd:sealed-91", 7765_863435000), (0, "<idle>", 7765_864046000), (22441, "true", 7765_968589000)]
        );
        assert_eq!((t.lost, t.lost_marks), (0, 1));
    }

    #[test]
    fn a_timeline_holds_a_threads_events_and_those_about_it() {
        let events = [
            ev(1_000, 0, 7, "x", "task_newtask", "pid=8 comm=x clone_flags=3d0f00 oom_score_adj=0"),
            ev(2_000, 0, 7, "x", "signal_generate", "sig=36 errno=0 code=-6 comm=x pid=8 grp=0 res=0"),
            ev(2_000, 1, 9, "y", "sys_enter", "NR 110 (0, 0, 0, 0, 0, 0)"),
            ev(3_000, 1, 0, "<idle>", "sched_switch", "prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=x next_pid=8 next_prio=120"),
            ev(4_000, 1, 8, "x", "sys_enter", "NR 24 (0, 0, 0, 0, 0, 0)"),
            ev(5_000, 1, 8, "x", "signal_deliver", "sig=36 errno=0 code=-6 sa_handler=1 sa_flags=14000004"),
        ];
        let names = |v: Vec<Event>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(timeline(&events, 8, 0, u64::MAX, 10)), ["task_newtask", "signal_generate", "sched_switch", "sys_enter", "signal_deliver"]);
        // An event's microsecond that meets the interval counts; the last `last` are kept.
        assert_eq!(names(timeline(&events, 8, 2_500, 4_000, 10)), ["signal_generate", "sched_switch", "sys_enter"]);
        assert_eq!(names(timeline(&events, 8, 0, u64::MAX, 2)), ["sys_enter", "signal_deliver"]);
    }

    /// A fault in a window keeps the whole window, however many events came between the
    /// fault's delivery and its handler's first instruction (the case CI met under TCG: the
    /// io-wq creation that led to the fault fell out of the last 40 events).
    #[test]
    fn a_fault_in_a_window_keeps_its_window_however_late_its_handler_ran() {
        let mut events = vec![
            ev(9_000, 0, 8, "x", "signal_deliver", "sig=39 errno=0 code=-2 sa_handler=1 sa_flags=14000004"),
            ev(11_000, 0, 8, "x", "task_newtask", "pid=9 comm=iou-wrk-8 clone_flags=3d0f00 oom_score_adj=0"),
            ev(12_000, 0, 8, "x", "signal_deliver", "sig=39 errno=0 code=-2 sa_handler=1 sa_flags=14000004"),
            ev(13_000, 0, 8, "x", "signal_generate", "sig=11 errno=0 code=3 comm=x pid=8 grp=0 res=0"),
            ev(14_000, 0, 8, "x", "signal_deliver", "sig=11 errno=0 code=3 sa_handler=2 sa_flags=8000004"),
        ];
        // Timer interrupts on the thread's CPU while its handler had not yet run.
        events.extend((0..60).map(|k| ev(15_000 + 1_000 * k, 0, 8, "x", "signal_generate", "sig=39 errno=0 code=-2 comm=x pid=5 grp=0 res=0")));
        let trace = Trace { events, ..Trace::default() };
        let at = 80_000;
        let t = fault_timeline(&trace, 8, at, Some(10_000));
        assert_eq!((t.from_ns, t.origin_ns, t.events.len()), (10_000, at, 64), "{:?}", t.events);
        assert_eq!(t.events[0].name, "task_newtask");
        assert_eq!(t.events[0].t_ns, 11_000 - at as i64);
        assert!(!t.truncated);
        // Without a window, the last FAULT_EVENTS: here only the noise.
        let last = fault_timeline(&trace, 8, at, None);
        assert_eq!(last.events.len(), FAULT_EVENTS);
        assert!(last.events.iter().all(|e| e.name == "signal_generate"));
    }

    #[test]
    fn events_are_chosen_by_name_system_or_first_alternative() {
        let available = ["ipi:ipi_raise", "io_uring:io_uring_submit_sqe", "io_uring:io_uring_complete", "sched:sched_switch"];
        assert_eq!(choose("sched:sched_switch", &available), ["sched:sched_switch"]);
        assert_eq!(choose("io_uring:*", &available), ["io_uring:io_uring_submit_sqe", "io_uring:io_uring_complete"]);
        assert_eq!(choose("io_uring:io_uring_submit_req|io_uring_submit_sqe", &available), ["io_uring:io_uring_submit_sqe"]);
        assert_eq!(choose("ipi:ipi_send_cpu|ipi_raise", &available), ["ipi:ipi_raise"]);
        assert!(choose("ipi:ipi_send_cpumask", &available).is_empty());
        assert!(choose("sched_switch", &available).is_empty());
    }

    /// One real tracer at a time (the instance is named after the process).
    static REAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A test that cannot check what it is for says so where scripts/test counts it (as the
    /// end-to-end tests' `skip` does): never a silent pass.
    fn skip(reason: &str) {
        let test = std::thread::current().name().unwrap_or("unnamed").to_string();
        let line = format!("lib ({}): {test}: {reason}\n", std::env::consts::ARCH);
        print!("SKIP {line}");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-skips");
        let _ = fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(line.as_bytes()));
    }

    fn real_tracer() -> Option<Tracer> {
        if linux::user_mode_emulation() {
            skip("under user-mode emulation the kernel sees the emulator's syscalls and signals");
            return None;
        }
        match Tracer::start(&TraceOptions { buffer_kb_per_cpu: 1024, ..TraceOptions::default() }.with_syscalls()) {
            Ok(t) => Some(t),
            Err(e) => {
                skip(&e.to_string());
                None
            }
        }
    }

    #[test]
    fn records_a_new_threads_syscalls_signal_and_creation() {
        let _one = REAL.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tracer) = real_tracer() else { return };
        assert!(tracer.missing().iter().all(|m| !m.starts_with("signal:") && !m.starts_with("raw_syscalls:")), "{:?}", tracer.missing());
        // The counting handler of the tgkill trigger (no register values to load). No library
        // test runs the engine, which would put the default disposition back.
        let sig = linux::sig_tgkill();
        if !linux::has_handler(sig) {
            linux::set_clobber_values(Vec::new()).expect("install the signal handlers");
        }
        let handled = linux::handled(sig);
        let parent = linux::gettid();
        let from = linux::monotonic_ns();
        let tid = std::thread::spawn(move || {
            let tid = linux::gettid();
            let _ = std::os::unix::process::parent_id();
            std::thread::yield_now();
            linux::tgkill(tid, sig).expect("tgkill");
            tid
        })
        .join()
        .expect("the traced thread");
        let to = linux::monotonic_ns();
        tracer.freeze();
        assert!(linux::handled(sig) > handled, "the signal was handled");
        let trace = tracer.events().expect("read the trace");
        let tl = timeline(&trace.events, tid, from, to, usize::MAX);
        let shown = tl.iter().map(|e| format!("{} {} {} {}", e.ts_ns, e.tid, e.name, e.fields)).collect::<Vec<_>>().join("\n");
        let (sig, id) = (sig.to_string(), tid.to_string());
        let has = |what: &str, pred: &dyn Fn(&Event) -> bool| assert!(tl.iter().any(pred), "no {what} in the timeline of {tid}:\n{shown}");
        for (what, nr) in [("getppid", libc::SYS_getppid), ("sched_yield", libc::SYS_sched_yield), ("tgkill", libc::SYS_tgkill)] {
            has(what, &|e| e.tid == tid && e.name == "sys_enter" && e.fields.starts_with(&format!("NR {nr} ")));
        }
        let of_sig = |e: &Event, name: &str| e.tid == tid && e.name == name && e.field("sig") == Some(sig.as_str());
        has("signal_generate", &|e| of_sig(e, "signal_generate") && e.field("pid") == Some(id.as_str()));
        has("signal_deliver", &|e| of_sig(e, "signal_deliver"));
        has("task_newtask from the parent", &|e| e.tid == parent && e.name == "task_newtask" && e.field("pid") == Some(id.as_str()));
        // mono is CLOCK_MONOTONIC, printed in whole microseconds.
        assert!(tl.iter().all(|e| e.ts_ns >= from / 1000 * 1000 && e.ts_ns <= to), "times within [{from}, {to}]:\n{shown}");
    }

    #[test]
    fn an_io_wq_worker_is_made_by_the_submitting_thread() {
        let _one = REAL.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = crate::arch::iowq::probe() {
            skip(&format!("io_uring: {e}"));
            return;
        }
        let Some(tracer) = real_tracer() else { return };
        let from = linux::monotonic_ns();
        let submitter = std::thread::spawn(|| {
            // The first io-wq worker is created inside io_uring_enter.
            let blocked = crate::arch::iowq::BlockedSplices::submit(1).expect("submit a splice");
            let to = linux::monotonic_ns();
            drop(blocked);
            (linux::gettid(), to)
        });
        let (tid, to) = submitter.join().expect("the submitting thread");
        tracer.freeze();
        let trace = tracer.events().expect("read the trace");
        const CLONE_IO: u64 = 0x8000_0000;
        let io_thread = |e: &Event| e.field("clone_flags").and_then(|f| u64::from_str_radix(f, 16).ok()).is_some_and(|f| f & CLONE_IO != 0);
        let tl = timeline(&trace.events, tid, from, to, usize::MAX);
        assert!(tl.iter().any(|e| e.tid == tid && e.name == "task_newtask" && io_thread(e)), "{tl:#?}");
    }
}
