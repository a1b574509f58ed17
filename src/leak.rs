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
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::arch::{self, EntryLane, linux};
use crate::class::{ClassId, ClassLayout, RegKind};
use crate::pattern::{Pattern, Template};
use crate::schema::{Hex, Leak, LeakReport};

/// The thread number of the values a process holds when it calls execve.
pub const EXEC_THREAD: u32 = 1022;
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
/// their chance to arise otherwise is nil) and the control registers' values.
pub struct Written {
    pub values: Vec<(ClassId, Vec<u64>)>,
    words: HashMap<u64, (ClassId, String, u32)>,
    controls: Vec<(ClassId, String, u64)>,
}

impl Written {
    pub fn new(p: &Pattern, layouts: &[ClassLayout], thread: u32, it: u64) -> Written {
        let mut w = Written { values: Vec::new(), words: HashMap::new(), controls: Vec::new() };
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
                    RegKind::Control { .. } => w.controls.push((l.id, r.name.clone(), buf[w0])),
                    _ => {}
                }
            }
            w.values.push((l.id, buf));
        }
        w
    }

    /// Whose value `v`, found in `class` register `reg`, is: the register it was written to.
    pub fn whose(&self, class: ClassId, reg: &str, v: u64, init: Option<u64>) -> Option<(ClassId, String, u32)> {
        if let Some(x) = self.words.get(&v) {
            return Some(x.clone());
        }
        self.controls
            .iter()
            .find(|(c, n, val)| *c == class && n == reg && *val == v && Some(v) != init)
            .map(|(c, n, _)| (*c, n.clone(), 0))
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
        };
        if let Some((c, r, l)) = written.whose(e.class, &e.register, e.value, e.init) {
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
    let mut rep = LeakReport::default();
    let mut strict_seen = None;
    for round in 0..rounds {
        let written = Written::new(&p, layouts, EXEC_THREAD, round as u64 + 1);
        let (pid, mut out) = linux::exec_with_registers(&written.values, &["regtorture", PROBE])?;
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
        let probe: Probe = serde_json::from_str(text.trim()).map_err(|e| {
            std::io::Error::other(format!("the execve probe (exit status {status:#x}) printed no entry state: {e}: {:?}", text.trim()))
        })?;
        let Some(lanes) = probe.lanes else {
            return Err(std::io::Error::other("the execve probe found no entry state: the binary was linked without the entry stub"));
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

/// Put the leak checks into a run's report: a leak makes a clean verdict "leak", a register
/// not initial after a static entry makes it "corruption"; either way exit code 1.
pub fn attach(rep: &mut crate::schema::Report, l: LeakReport) {
    use crate::schema::Verdict;
    if rep.verdict == Verdict::Clean {
        if !l.leaks.is_empty() {
            rep.verdict = Verdict::Leak;
        } else if !l.not_initial.is_empty() {
            rep.verdict = Verdict::Corruption;
        }
    }
    if rep.verdict != Verdict::Clean && rep.exit_code == crate::error::EXIT_CLEAN {
        rep.exit_code = crate::error::EXIT_CORRUPTION;
    }
    rep.leaks = Some(l);
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
}
