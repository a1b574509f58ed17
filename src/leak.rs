//! Leaks: register values of one process that another sees.
//!
//! **Across execve.** A child process loads every register class with pattern values of a
//! thread number no checking thread has ([`EXEC_THREAD`]) and calls execve on a fresh copy of
//! regtorture (`/proc/self/exe __exec-probe`). The new image starts at the backend's entry stub
//! (`rt_<arch>_entry` in regs.S, the ELF entry point), which records the registers before the C
//! runtime runs; the probe prints them and the parent reads them:
//!
//! * a value the parent process wrote (an exact 64-bit pattern word of this run, or a control
//!   register's value that is not the initial one) is a **leak**, whatever ran before;
//! * any other value that is not the initial one (`arch::EntryLane::init`, cited per backend)
//!   is a breach of the exec ABI when the stub was the first user instruction (a static binary,
//!   not under user-mode emulation); after a dynamic loader, or under qemu-user, it is only
//!   counted (`informational`): ld.so's own memcpy leaves values in vector registers, and
//!   qemu-user's initial state is the emulator's, not the kernel's.
//!
//! **Across processes** (`--processes N`): see [`crate::runner`]; the other processes' threads
//! carry thread numbers of their own, so a value of theirs reads as "process P's".

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::arch::{self, EntryLane, linux};
use crate::class::{ClassId, ClassLayout, RegKind};
use crate::pattern::{Pattern, Template};
use crate::schema::{ClassResult, Hex, Leak, LeakReport, SelftestStatus};

/// The first-use probes of this run's checking threads: how many ran, and what they found
/// (the first [`FIRST_USE_KEEP`] lanes of each kind).
static FIRST_USE: std::sync::Mutex<(u64, Vec<Leak>, Vec<Leak>)> = std::sync::Mutex::new((0, Vec::new(), Vec::new()));
const FIRST_USE_KEEP: usize = 64;

/// The first thing a fresh checking thread does: for each class of the plan whose unit the
/// backend can read at first use (`Backend::first_use`), read it and sort what it held. Before
/// this nothing of the thread touched the unit (Rust code here is built without vector
/// instructions; only the C library could, and its use would show as values not zero).
pub fn first_use_probe(plan: &crate::plan::Plan, thread: u32) {
    for l in &plan.layouts {
        let Some(buf) = arch::native().first_use(l.id) else { continue };
        let (leaks, stale) = classify_first_use(plan, l, ident(thread), &buf);
        let mut fu = FIRST_USE.lock().unwrap_or_else(|e| e.into_inner());
        fu.0 += 1;
        let room = FIRST_USE_KEEP.saturating_sub(fu.1.len());
        fu.1.extend(leaks.into_iter().take(room));
        let room = FIRST_USE_KEEP.saturating_sub(fu.2.len());
        fu.2.extend(stale.into_iter().take(room));
    }
}

/// What the first-use probes found, as a leak report (`None` when none ran); resets the tally.
pub fn take_first_use() -> Option<LeakReport> {
    let mut fu = FIRST_USE.lock().unwrap_or_else(|e| e.into_inner());
    let (probes, leaks, stale) = std::mem::take(&mut *fu);
    (probes > 0).then(|| LeakReport { first_use: probes, entry: String::new(), leaks, not_initial: stale, ..LeakReport::default() })
}

/// Sort one first-use read of `layout`'s unit: every word must be zero (the backend's
/// `first_use_rule`). A data word some thread wrote is a stale state handed over: another
/// process's is a leak, this process's (another checking thread's, or the handler's) is
/// not initial, with whose it is; any other value is not initial.
pub fn classify_first_use(plan: &crate::plan::Plan, layout: &ClassLayout, me: u32, buf: &[u64]) -> (Vec<Leak>, Vec<Leak>) {
    let p = &plan.pattern;
    let (mut leaks, mut stale) = (Vec::new(), Vec::new());
    for (w, &v) in buf.iter().enumerate().filter(|(_, v)| **v != 0) {
        let Some((reg, lane)) = layout.locate(w) else { continue };
        let leak = |to: &mut Vec<Leak>, reading: String| {
            to.push(Leak {
                source: "first use".into(),
                class: layout.id,
                register: layout.regs[reg].name.clone(),
                lane: lane as u32,
                observed: Hex(v),
                expected: Hex(0),
                reading,
                signature: None,
            })
        };
        let who = (layout.regs[reg].kind == RegKind::Data && crate::pattern::is_written(p, v)).then(|| p.identity(v as u32)).flatten();
        match who {
            Some(mut id) => {
                // Classes of different architectures share codes: the one in play is this one.
                if id.class.code() == layout.id.code() {
                    id.class = layout.id;
                }
                let what =
                    format!("{} {} lane {} (iteration {})", id.class, plan.reg_name(id.class, id.reg as usize), id.lane, p.iteration_of((v >> 32) as u32));
                match other_process(id.thread) {
                    Some((proc, t)) => leak(&mut leaks, format!("process {proc}'s (thread {t}) {what}: another process's state at first use")),
                    None if id.thread == crate::pattern::HANDLER_THREAD => leak(&mut stale, format!("the signal handler's {what}: a stale state at first use")),
                    None if id.thread == me => leak(&mut stale, format!("this thread slot's earlier thread's {what}: a stale state at first use")),
                    None => leak(&mut stale, format!("checking thread {}'s {what}: a stale state at first use", id.thread)),
                }
            }
            None => leak(&mut stale, format!("not zero at first use ({})", arch::native().first_use_rule(layout.id).unwrap_or("the ABI's"))),
        }
    }
    (leaks, stale)
}

/// This process's place among the checking processes of `--processes`: its index and the
/// thread numbers each process owns (0: the only one). A checking thread's pattern thread number
/// is `index * stride + thread`, so a value of another process reads as that process's.
static PROCESS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// Set this process's index among `--processes` and the thread numbers each one owns.
pub fn set_process(index: u32, stride: u32) {
    PROCESS[0].store(index, Ordering::Relaxed);
    PROCESS[1].store(stride, Ordering::Relaxed);
}

/// The pattern thread number of this process's checking thread `thread`.
pub fn ident(thread: u32) -> u32 {
    PROCESS[0].load(Ordering::Relaxed) * PROCESS[1].load(Ordering::Relaxed) + thread
}

/// (process, its thread) when pattern thread number `who` belongs to another checking process.
pub fn other_process(who: u32) -> Option<(u32, u32)> {
    let (me, stride) = (PROCESS[0].load(Ordering::Relaxed), PROCESS[1].load(Ordering::Relaxed));
    (stride > 0 && who < crate::pattern::MAX_THREADS && who / stride != me).then(|| (who / stride, who % stride))
}

/// The thread number of the values a process holds when it calls execve.
pub use crate::pattern::EXEC_THREAD;
/// The hidden subcommand of the probe (`regtorture __exec-probe`).
pub const PROBE: &str = "__exec-probe";

/// What the probe prints.
#[derive(Serialize, Deserialize)]
struct Probe {
    /// Started without a program interpreter: the entry stub ran first.
    static_entry: bool,
    emulated: bool,
    lanes: Option<Vec<EntryLane>>,
}

/// The probe: print the registers as they were at the entry point, as JSON, and exit 0.
pub fn probe_main() -> ! {
    let p = Probe { static_entry: linux::started_static(), emulated: linux::user_mode_emulation(), lanes: arch::native().entry_state() };
    say!("{}", serde_json::to_string(&p).unwrap_or_default());
    std::process::exit(0);
}

/// The values a process of thread number `thread` writes in iteration `it`: per class its
/// buffer (what the clobber routines load), the data words (64-bit exact, with a high half:
/// their chance to arise otherwise is nil).
pub struct Written {
    pub values: Vec<(ClassId, Vec<u64>)>,
    /// Where the backend issues execve from assembly ([`arch::Backend::execve_registers`]) and
    /// the gpr class is selected: a value for every register that routine loads, by number.
    /// The gpr layout's registers take theirs from the class's buffer; the others (riscv64's
    /// gp, tp and t6, which no window can hold) get pattern words of register numbers past the
    /// layout's, so that each is named if it arrives in the new image.
    pub gprs: Option<Vec<u64>>,
    words: HashMap<u64, (ClassId, String, u32)>,
}

impl Written {
    pub fn new(p: &Pattern, layouts: &[ClassLayout], thread: u32, it: u64) -> Written {
        let mut w = Written { values: Vec::new(), gprs: None, words: HashMap::new() };
        // A transition class's view overlaps its plain classes' registers: theirs are loaded.
        for l in layouts.iter().filter(|l| !l.id.is_transition()) {
            let mut buf = vec![0; l.words];
            Template::new(p, l, thread).fill(p, it, &mut buf);
            for r in &l.regs {
                let w0 = r.offset / 8;
                match r.kind {
                    RegKind::Data | RegKind::X87 => {
                        for lane in 0..r.lanes() {
                            let v = buf[w0 + lane];
                            if v >> 32 != 0 {
                                w.words.insert(v, (l.id, r.name.clone(), lane as u32));
                            }
                        }
                    }
                    _ => {}
                }
            }
            w.values.push((l.id, buf));
        }
        let names = arch::native().execve_registers();
        if let (false, Some((l, (_, buf)))) =
            (names.is_empty(), layouts.iter().find(|l| l.id == ClassId::Gpr).zip(w.values.iter().find(|v| v.0 == ClassId::Gpr)))
        {
            let mut extra = l.regs.len();
            let mut table = vec![0; names.len()];
            for (slot, name) in table.iter_mut().zip(names).filter(|(_, n)| !n.is_empty()) {
                *slot = match l.regs.iter().find(|r| r.name == *name) {
                    Some(r) => buf[r.offset / 8],
                    None => {
                        let id = crate::pattern::Identity { thread, class: ClassId::Gpr, reg: extra as u32, lane: 0 };
                        extra += 1;
                        let v = u64::from(p.lo(id)) | Template::hi_word(p, it);
                        w.words.insert(v, (ClassId::Gpr, name.to_string(), 0));
                        v
                    }
                };
            }
            w.gprs = Some(table);
        }
        w
    }

    /// Whose value `v` is: the register it was written to. Only data words count: a control
    /// register's few varying bits (VSCR has two) match an unrelated value far too often to
    /// name a writer; such a register that is not initial is an ABI breach, not a leak.
    pub fn whose(&self, v: u64) -> Option<(ClassId, String, u32)> {
        self.words.get(&v).cloned()
    }
}

/// Sort the entry state of one probe into the report.
fn classify(rep: &mut LeakReport, lanes: &[EntryLane], written: &Written, strict: bool) {
    for e in lanes {
        let leak = |reading: String| Leak {
            source: "execve".into(),
            class: e.class,
            register: e.register.clone(),
            lane: e.lane,
            observed: Hex(e.value),
            expected: Hex(e.init.unwrap_or(0)),
            reading,
            signature: None,
        };
        if let Some((c, r, l)) = written.whose(e.value) {
            rep.leaks.push(leak(format!("the value of {c} {r} lane {l} in the process that called execve")));
        } else if e.init.is_some_and(|i| i != e.value) {
            if strict {
                rep.not_initial.push(leak("not the initial value after execve".into()));
            } else {
                rep.informational += 1;
            }
        }
    }
}

/// Start `rounds` fresh copies of regtorture with execve from a process whose registers hold
/// the pattern of `layouts` (iteration = round), and check each at its entry point.
pub fn exec_check(layouts: &[ClassLayout], seed: u64, rounds: u32) -> std::io::Result<LeakReport> {
    let p = Pattern::new(seed);
    let mut rep = LeakReport { processes: 1, ..Default::default() };
    let mut strict_seen = None;
    for round in 0..rounds {
        let written = Written::new(&p, layouts, EXEC_THREAD, round as u64 + 1);
        let (pid, mut out) = linux::exec_with_registers(&written.values, written.gprs.as_deref(), &["regtorture", PROBE], None)?;
        let text = read_all(&mut out, Duration::from_secs(10));
        let status = linux::reap(pid as i64, Duration::from_secs(10))?;
        if text.trim().is_empty() && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 127 {
            // execve itself failed: under qemu-user a foreign binary runs only through
            // binfmt_misc, which is not set up here.
            rep.skip = Some(if linux::user_mode_emulation() {
                "execve of /proc/self/exe failed: under user-mode emulation it needs binfmt_misc for this architecture".into()
            } else {
                "execve of /proc/self/exe failed".into()
            });
            break;
        }
        let probe: Probe = serde_json::from_str(text.trim())
            .map_err(|e| std::io::Error::other(format!("the execve probe (exit status {status:#x}) printed no entry state: {e}: {:?}", text.trim())))?;
        let Some(lanes) = probe.lanes else {
            // No entry stub for this architecture (riscv64 has none yet): the registers cannot
            // be read before the C runtime runs. A skip with the reason, not a failure.
            rep.skip = Some(format!("no entry stub on {}: the entry state after execve cannot be read here", crate::arch::name()));
            break;
        };
        let strict = probe.static_entry && !probe.emulated;
        strict_seen = Some((strict, probe.static_entry));
        classify(&mut rep, &lanes, &written, strict);
        rep.execs += 1;
    }
    rep.entry = match strict_seen {
        None => "not run".into(),
        Some((true, _)) => "entry point".into(),
        Some((false, true)) => "entry point, emulated (qemu-user)".into(),
        Some((false, false)) => "after the dynamic loader".into(),
    };
    rep.leaks.truncate(100);
    rep.not_initial.truncate(100);
    Ok(rep)
}

/// Where the execve check's positive control may plant a value at the exec stop: lanes of
/// `class`, each named as the entry stub names it, at a byte offset of ptrace register set
/// `note`.
pub struct ExecSites {
    pub class: ClassId,
    pub note: u32,
    /// (register, lane, byte offset in the set)
    pub lanes: Vec<(String, u32, usize)>,
}

impl ExecSites {
    /// The lanes of `NT_PRFPREG` the backend names ([`arch::Backend::fp_regset`]).
    pub fn fp(site: arch::FpRegset) -> ExecSites {
        let lanes = (0..site.regs).flat_map(|r| (0..site.lanes).map(move |l| (format!("{}{r}", site.prefix), l as u32, site.offset(r, l)))).collect();
        ExecSites { class: site.class, note: arch::NT_PRFPREG, lanes }
    }

    /// The integer registers of [`arch::Backend::exec_plant_gprs`] in `NT_PRSTATUS`, where the
    /// backend has any.
    pub fn gpr() -> Option<ExecSites> {
        let b = arch::native();
        let lanes: Vec<_> = b.exec_plant_gprs().iter().filter_map(|n| Some((n.to_string(), 0, b.prstatus_offset(n)?))).collect();
        (!lanes.is_empty()).then_some(ExecSites { class: ClassId::Gpr, note: arch::NT_PRSTATUS, lanes })
    }

    /// The backend's other sites ([`arch::Backend::exec_regset_sites`]: aarch64's TPIDR2).
    pub fn others() -> Vec<ExecSites> {
        arch::native()
            .exec_regset_sites()
            .into_iter()
            .map(|s| ExecSites { class: s.class, note: s.note, lanes: s.lanes.into_iter().map(|(r, l, o)| (r.to_string(), l, o)).collect() })
            .collect()
    }
}

/// The positive control of the execve check: `rounds` times, a fresh copy is started with
/// execve from registers holding the pattern of `layout` (the class of `sites`), and at the
/// exec stop a value the process wrote to another register is written into a random lane of
/// `sites` (`PTRACE_SETREGSET`), as a kernel that leaked it would leave it. The probe must
/// report exactly that lane as a leak of that value, and the value nowhere else. (Another
/// register's value: on a kernel that leaks the class at exec, riscv64's integer registers,
/// the lane's own value would arrive without the plant; those leaks are the execve check's
/// finding, not the control's.)
pub fn exec_control(layout: &ClassLayout, sites: &ExecSites, seed: u64, rounds: u32) -> ClassResult {
    let mut r = ClassResult::empty(layout.id, SelftestStatus::Tested, None);
    r.control = Some("exec-leak".into());
    let skip = |r: &mut ClassResult, why: String| {
        r.status = SelftestStatus::Skipped;
        r.reason = Some(why);
    };
    if linux::user_mode_emulation() {
        skip(&mut r, "ptrace and execve of a foreign binary are not available under user-mode emulation (qemu-user)".into());
        return r;
    }
    if !linux::started_static() {
        // Measured on Debian 12's x86_64 glibc: 47 of 100 values planted in xmm0-15 were
        // overwritten by ld.so's own code before the entry stub ran.
        skip(
            &mut r,
            "this build is dynamic: the dynamic loader runs before the entry stub and overwrites vector registers, so the execve check is exact only in a static build (scripts/cross)".into(),
        );
        return r;
    }
    let p = Pattern::new(seed);
    let mut state = seed ^ 0xe8ec_1eac;
    let mut rnd = move || {
        state = crate::pattern::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        state
    };
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let written = Written::new(&p, std::slice::from_ref(layout), EXEC_THREAD, round as u64 + 1);
        // A lane of the sites, and a value the process wrote to another register.
        let (name, lane, offset) = sites.lanes[(rnd() % sites.lanes.len() as u64) as usize].clone();
        let mut words: Vec<u64> = written.values[0].1.iter().copied().filter(|v| written.whose(*v).is_some_and(|w| w.1 != name)).collect();
        if words.is_empty() {
            // A class of one register (tpidr2): its own value, which the kernel must have
            // cleared at exec for anything to arrive but the plant.
            words = written.values[0].1.iter().copied().filter(|v| written.whose(*v).is_some()).collect();
        }
        let value = words[(rnd() % words.len() as u64) as usize];
        let t0 = Instant::now();
        let started = linux::exec_with_registers(&written.values, written.gprs.as_deref(), &["regtorture", PROBE], Some((sites.note, offset, value)));
        let (pid, mut out) = match started {
            Ok(x) => x,
            Err(e) if round == 0 && (e.raw_os_error().is_some() || e.to_string().contains("PTRACE_TRACEME")) => {
                skip(&mut r, format!("cannot plant a value at the exec stop here: {e}"));
                return r;
            }
            Err(e) => {
                r.injected += 1;
                r.missed += 1;
                r.note(format!("round {round}: {e}"));
                continue;
            }
        };
        r.injected += 1;
        let text = read_all(&mut out, Duration::from_secs(10));
        let _ = linux::reap(pid as i64, Duration::from_secs(10));
        let Some(lanes) = serde_json::from_str::<Probe>(text.trim()).ok().and_then(|p| p.lanes) else {
            r.missed += 1;
            r.note(format!("round {round}: the probe printed no entry state: {:?}", text.trim()));
            continue;
        };
        let mut rep = LeakReport::default();
        classify(&mut rep, &lanes, &written, true);
        // Only the planted lane and value are the control's: a kernel that leaks registers at
        // exec (riscv64's integer registers, docs/findings) shows them too, the execve check's
        // finding, not a miss.
        // The value in its own register is that too (measured on riscv64: 86 of 100 plants
        // also showed in the register that wrote them).
        let owner = written.whose(value).map(|w| (w.1, w.2));
        let own = |l: &Leak| owner.as_ref().is_some_and(|(r, ln)| *r == l.register && *ln == l.lane);
        rep.leaks.retain(|l| l.class == sites.class && ((l.observed.0 == value && !own(l)) || (l.register == name && l.lane == lane)));
        let hit = |l: &Leak| l.register == name && l.lane == lane && l.observed.0 == value;
        match rep.leaks.as_slice() {
            [l] if hit(l) => {
                r.detected += 1;
                latencies.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            [] => {
                r.missed += 1;
                r.note(format!("{name} lane {lane} = {value:#x} planted at the exec stop, no leak reported"));
            }
            other => {
                r.misplaced += 1;
                let got: Vec<String> = other.iter().map(|l| format!("{} lane {} = {:#x}", l.register, l.lane, l.observed.0)).collect();
                r.note(format!("{name} lane {lane} = {value:#x} planted, reported {}", got.join(", ")));
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    r.median_latency_us = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    r
}

/// Put the leak checks into a run's report, each lane with the known bug it matches; the
/// verdict and exit code follow from what the report then holds (`Report::decide`).
pub fn attach(rep: &mut crate::schema::Report, l: LeakReport) {
    let mut all = rep.leaks.take().unwrap_or_default();
    all.execs += l.execs;
    if all.entry.is_empty() {
        all.entry = l.entry;
    }
    all.skip = all.skip.or(l.skip);
    all.processes = all.processes.max(l.processes);
    all.first_use += l.first_use;
    all.leaks.extend(l.leaks);
    all.not_initial.extend(l.not_initial);
    all.informational += l.informational;
    all.core_dumps += l.core_dumps;
    all.core_skip = all.core_skip.or(l.core_skip);
    all.core.extend(l.core);
    for x in all.leaks.iter_mut().chain(all.not_initial.iter_mut()).chain(all.core.iter_mut()).filter(|x| x.signature.is_none()) {
        x.signature = crate::signature::find_leak(arch::name(), x);
    }
    rep.leaks = Some(all);
    rep.decide();
}

/// The thread numbers each of `processes` checking processes owns (0 for one process).
pub fn process_stride(processes: u32) -> u32 {
    if processes > 1 { crate::pattern::MAX_THREADS / processes } else { 0 }
}

/// The other checking processes of `--processes`, started by the first.
#[derive(Default)]
pub struct Others {
    children: Vec<(u32, std::process::Child)>,
}

/// Start processes 1..N of `--processes N`: the same run (seed included, so that every
/// process reads the others' values), each with its index, reporting JSON on a pipe. Each dies
/// with this one (PR_SET_PDEATHSIG) and is reaped by [`Others::finish`].
pub fn start_processes(args: &crate::cli::RunArgs, seed: u64) -> std::io::Result<Others> {
    let list = |v: Vec<String>| v.join(",");
    let mut others = Others::default();
    for i in 1..args.processes {
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg("run")
            .args(["--duration", &format!("{}ms", args.duration.as_millis().max(1))])
            .args(["--seed", &format!("{seed:#x}"), "--spin", &args.spin.to_string(), "--execs", "0"])
            .args(["--processes", &args.processes.to_string(), "--process-index", &i.to_string(), "--json", "-", "--quiet"])
            .args(["--stop-on-first", if args.stop_on_first && !args.keep_going { "true" } else { "false" }]);
        if args.stop_on_known {
            cmd.arg("--stop-on-known");
        }
        if !args.known.is_empty() {
            cmd.args(["--known", &args.known.join(",")]);
        }
        if let Some(t) = args.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        if !args.classes.is_empty() {
            cmd.args(["--classes", &list(args.classes.iter().map(|c| c.name().to_string()).collect())]);
        }
        if !args.windows.is_empty() {
            cmd.args(["--windows", &list(args.windows.iter().map(|w| w.name().to_string()).collect())]);
        }
        if !args.triggers.is_empty() {
            cmd.args(["--triggers", &list(args.triggers.clone())]);
        }
        if let Some(vl) = args.sve_vl {
            cmd.args(["--sve-vl", &vl.to_string()]);
        }
        if let Some(vl) = args.sme_vl {
            cmd.args(["--sme-vl", &vl.to_string()]);
        }
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).stdin(std::process::Stdio::null());
        let cmd = linux::die_with_parent(&mut cmd);
        others.children.push((i, cmd.spawn()?));
    }
    Ok(others)
}

impl Others {
    /// Wait for every other process (stopped when this run was interrupted), read its report,
    /// and move what it found into `rep`: another process's value is a leak; any other finding
    /// is added as it is. Returns the leak report of `--processes`.
    pub fn finish(mut self, rep: &mut crate::schema::Report, duration: Duration) -> LeakReport {
        use crate::schema::{Reading, Report};
        let mut l = LeakReport { processes: self.children.len() as u32 + 1, ..Default::default() };
        for (i, child) in &mut self.children {
            if rep.interrupted {
                linux::terminate(child.id() as i32);
            }
            let mut text = String::new();
            if let Some(mut out) = child.stdout.take() {
                let _ = out.read_to_string(&mut text);
            }
            let _ = linux::reap(child.id() as i64, duration + Duration::from_secs(30));
            let Ok(other) = serde_json::from_str::<Report>(text.trim()) else {
                if rep.interrupted {
                    // Stopped before it could catch the stop signal: nothing to report.
                    continue;
                }
                l.not_initial.push(Leak {
                    source: "process".into(),
                    class: ClassId::Gpr,
                    register: "-".into(),
                    lane: 0,
                    observed: Hex(0),
                    expected: Hex(0),
                    reading: format!("checking process {i} gave no report (it died?)"),
                    signature: None,
                });
                continue;
            };
            rep.total_checks += other.total_checks;
            rep.mismatch_count += other.mismatch_count;
            rep.fault_count += other.fault_count;
            rep.faults.extend(other.faults);
            rep.mismatches.extend(other.mismatches);
        }
        // Every lane, of any process, that held another process's value.
        for m in &rep.mismatches {
            for lane in &m.lanes {
                if let Reading::OtherProcess { process, thread, class, register, lane: their } = &lane.reading {
                    l.leaks.push(Leak {
                        source: "process".into(),
                        class: m.class,
                        register: m.register.clone(),
                        lane: lane.lane as u32,
                        observed: lane.observed,
                        expected: lane.expected,
                        reading: format!("process {process}'s (thread {thread}) {class} {register} lane {their}, in thread {} ({} window)", m.thread, m.window),
                        signature: None,
                    });
                }
            }
        }
        // The verdict follows when `l` is attached (`attach`, `Report::decide`).
        l
    }
}

/// Read a pipe to its end or until `patience` runs out (the child is then killed by `reap`).
fn read_all(f: &mut std::fs::File, patience: Duration) -> String {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while start.elapsed() < patience {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layouts() -> Vec<ClassLayout> {
        let mut l = ClassLayout::data_regs(ClassId::Sse, "xmm", 2, 16);
        l.push("mxcsr", 4, RegKind::Control { valid: 0xe07f, fixed: 0x1f80, init: 0x1f80 });
        vec![l]
    }

    /// This backend's gpr layout.
    fn gpr_layout() -> ClassLayout {
        arch::native().detect().into_iter().find(|d| d.id() == ClassId::Gpr).expect("every backend has gpr").layout
    }

    /// Where the backend issues execve from assembly (riscv64), every register it loads gets a
    /// value of its own that names it, the gpr layout's from the class's buffer, the others
    /// (gp, tp, t6) from register numbers past the layout; the registers it leaves alone get
    /// none. Elsewhere there is no table.
    #[test]
    fn every_register_the_assembly_execve_loads_has_a_named_value() {
        let p = Pattern::new(11);
        let gpr = gpr_layout();
        let w = Written::new(&p, std::slice::from_ref(&gpr), EXEC_THREAD, 5);
        let names = arch::native().execve_registers();
        let Some(table) = &w.gprs else {
            assert!(names.is_empty(), "a backend with an assembly execve gets a table");
            return;
        };
        assert_eq!(table.len(), names.len());
        let buf = &w.values[0].1;
        for (v, name) in table.iter().zip(names) {
            if name.is_empty() {
                assert_eq!(*v, 0, "a register the routine leaves alone");
                continue;
            }
            assert_eq!(w.whose(*v), Some((ClassId::Gpr, name.to_string(), 0)), "{name}");
            if let Some(r) = gpr.regs.iter().find(|r| r.name == *name) {
                assert_eq!(*v, buf[r.offset / 8], "{name} comes from the class's buffer");
            }
        }
        let distinct: std::collections::HashSet<_> = table.iter().filter(|v| **v != 0).collect();
        assert_eq!(distinct.len(), names.iter().filter(|n| !n.is_empty()).count(), "one value per register");
    }

    /// The gpr control's lanes: every register the backend names is a data register of the gpr
    /// layout (so the process writes a pattern value there) with an `NT_PRSTATUS` offset.
    #[test]
    fn every_gpr_plant_site_is_a_data_register_with_a_prstatus_offset() {
        let names = arch::native().exec_plant_gprs();
        let gpr = gpr_layout();
        assert_eq!(ExecSites::gpr().map_or(0, |s| s.lanes.len()), names.len(), "{names:?}");
        for n in names {
            assert!(gpr.regs.iter().any(|r| r.name == *n && r.kind == RegKind::Data), "{n}");
        }
    }

    #[test]
    fn a_written_value_is_a_leak_an_initial_one_is_not() {
        let p = Pattern::new(7);
        let w = Written::new(&p, &layouts(), EXEC_THREAD, 3);
        let buf = &w.values[0].1;
        let lanes = vec![
            EntryLane::new(ClassId::Sse, "xmm1", 0, buf[1], Some(0)), // xmm0 lane 1's value
            EntryLane::new(ClassId::Sse, "xmm1", 1, 0, Some(0)),
            EntryLane::new(ClassId::Sse, "xmm0", 0, 0x1234, Some(0)), // untagged, not initial
            EntryLane::new(ClassId::Mxcsr, "mxcsr", 0, 0x1f80, Some(0x1f80)),
        ];
        let mut rep = LeakReport::default();
        classify(&mut rep, &lanes, &w, true);
        assert_eq!(rep.leaks.len(), 1, "{:?}", rep.leaks);
        assert!(rep.leaks[0].reading.contains("sse xmm0 lane 1"), "{}", rep.leaks[0].reading);
        assert_eq!(rep.not_initial.len(), 1);
        let mut lax = LeakReport::default();
        classify(&mut lax, &lanes, &w, false);
        assert_eq!((lax.leaks.len(), lax.not_initial.len(), lax.informational), (1, 0, 1));
        // Another iteration's values are other words: no leak.
        let other = Written::new(&p, &layouts(), EXEC_THREAD, 4);
        let mut none = LeakReport::default();
        classify(&mut none, &lanes[..2], &other, true);
        assert!(none.leaks.is_empty());
    }

    /// The first-use rule: zero is right; a value a checking thread of this process wrote is
    /// a stale state (not initial, with whose it is), any other value not initial; control
    /// registers are never read as a writer's. (Another process's value, a leak, is the
    /// selftest's `first-use` row.)
    #[test]
    fn a_first_use_read_sorts_stale_foreign_and_unknown_values() {
        let mut l = ClassLayout::data_regs(ClassId::Vector, "v", 4, 16);
        l.push("vtype", 8, RegKind::control(0xcb));
        let plan = crate::plan::Plan {
            layouts: vec![l.clone()],
            windows: vec![],
            threads: 1,
            duration: Duration::ZERO,
            pattern: Pattern::new(11),
            spin: 0,
            stop_on_first: false,
            stop_on_known: false,
            keep: 0,
        };
        let p = plan.pattern;
        let value = |thread: u32, reg: u32, lane: u32, it: u64| {
            p.lo(crate::pattern::Identity { thread, class: ClassId::Vector, reg, lane }) as u64 | (p.hi(it) as u64) << 32
        };
        let mut buf = vec![0u64; l.words];
        let (leaks, stale) = classify_first_use(&plan, &l, 0, &buf);
        assert!(leaks.is_empty() && stale.is_empty(), "all zero is the rule");
        buf[2 * 2 + 1] = value(3, 1, 0, 40); // v2 lane 1 holds checking thread 3's v1 lane 0
        buf[0] = 0x0123_4567_89ab_cdef; // v0 lane 0: nobody's value
        buf[8] = value(3, 1, 0, 40); // vtype: a control register, never a writer's
        let (leaks, stale) = classify_first_use(&plan, &l, 0, &buf);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(stale.len(), 3, "{stale:?}");
        assert_eq!((stale[0].register.as_str(), stale[0].lane), ("v0", 0));
        assert!(stale[0].reading.starts_with("not zero at first use"), "{}", stale[0].reading);
        assert_eq!((stale[1].register.as_str(), stale[1].lane), ("v2", 1));
        assert!(stale[1].reading.starts_with("checking thread 3's vector v1 lane 0 (iteration 40)"), "{}", stale[1].reading);
        assert_eq!(stale[1].source, "first use");
        assert!(stale[2].reading.starts_with("not zero"), "{}", stale[2].reading);
    }
}
