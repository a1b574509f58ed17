//! The positive control: inject real faults through the kernel and require that every one is
//! caught, in the right register and lane.
//!
//! A checking thread runs `spin` windows of one class. The injector signals it; the handler
//! (`arch::linux`) looks at the interrupted instruction address, and only when the thread was
//! inside the class's live window does it XOR a random mask into that register's image in the
//! signal frame. sigreturn then loads the wrong value into the live register: the same way a
//! kernel bug would hand it back. The checking thread must report exactly that register, lane
//! and bits in the window the fault landed in.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};


use crate::arch::linux;
use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::engine::{Checker, handler_values};
use crate::injection::{Fault, pick_fault};
use crate::pattern::{Identity, Pattern, mix64};
use crate::plan::Plan;
use crate::schema::{ClassResult, Reading, SelftestReport, SelftestStatus};
use crate::window::WindowKind;

/// What the checking thread tells the injector after each window with a difference.
struct Found {
    iteration: u64,
    diffs: Vec<(usize, usize, u64)>,
    /// (register, lane, the other process and thread) of every lane read as another process's.
    leaks: Vec<(String, usize, u32, u32)>,
    at: Instant,
}

/// The thread numbers each process owns during the process-leak control: the checking thread
/// is process 0's thread 0, the planted values are process 1's thread 0.
const LEAK_STRIDE: u32 = 512;

/// Inject `faults` faults into each of `classes` (all available ones when empty).
pub fn run(descs: &[ClassDesc], classes: &[ClassId], faults: u32, seed: u64) -> std::io::Result<SelftestReport> {
    let mut results = Vec::new();
    for d in descs.iter().filter(|d| classes.is_empty() || classes.contains(&d.id())) {
        let r = match &d.available {
            Err(why) => ClassResult::empty(d.id(), SelftestStatus::Skipped, Some(why.clone())),
            Ok(()) => run_class(&d.layout, faults, seed, false)?,
        };
        results.push(r);
        // The process-leak control: another process's value delivered into a register.
        if d.available.is_ok() && !d.id().is_transition() && leak_lanes(&d.layout).next().is_some() {
            results.push(run_class(&d.layout, faults, seed, true)?);
        }
    }
    // The execve check's control: a value planted at the exec stop must be read as a leak.
    if let Some(site) = crate::arch::native().fp_regset() {
        if let Some(d) = descs.iter().find(|d| d.id() == site.class && (classes.is_empty() || classes.contains(&d.id()))) {
            results.push(match &d.available {
                Err(why) => ClassResult { control: Some("exec-leak".into()), ..ClassResult::empty(d.id(), SelftestStatus::Skipped, Some(why.clone())) },
                Ok(()) => crate::leak::exec_control(&d.layout, site, seed, faults),
            });
        }
    }
    linux::restore_default_handlers();
    let passed = results.iter().all(ClassResult::passed) && results.iter().any(|r| r.status == SelftestStatus::Tested);
    Ok(SelftestReport { faults_per_class: faults, classes: results, passed })
}

/// The lanes a process-leak fault can go into: full 64-bit lanes of plain-data registers.
fn leak_lanes(layout: &ClassLayout) -> impl Iterator<Item = (usize, usize)> + '_ {
    layout
        .regs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RegKind::Data)
        .flat_map(|(i, r)| (0..r.bytes / 8).map(move |l| (i, l)))
}

/// A fault that turns a lane into process 1's value: the low half of a pattern word names its
/// writer (thread, class, register, lane), so XOR-ing the two writers' low halves makes the
/// lane decode as process 1's, whatever the iteration.
fn pick_leak(layout: &ClassLayout, p: &Pattern, rnd: &mut impl FnMut() -> u64) -> Fault {
    let lanes: Vec<(usize, usize)> = leak_lanes(layout).collect();
    let (reg, lane) = lanes[(rnd() % lanes.len() as u64) as usize];
    let id = |thread| Identity { thread, class: layout.id, reg: reg as u32, lane: lane as u32 };
    let mask = (p.lo(id(crate::leak::ident(0))) ^ p.lo(id(LEAK_STRIDE))) as u64;
    Fault { class: layout.id, reg, lane, mask }
}

fn run_class(layout: &ClassLayout, faults: u32, seed: u64, leak: bool) -> std::io::Result<ClassResult> {
    // Under the process-leak control this process is process 0 of two.
    crate::leak::set_process(0, if leak { LEAK_STRIDE } else { 0 });
    let r = run_class_inner(layout, faults, seed, leak);
    crate::leak::set_process(0, 0);
    r
}

fn run_class_inner(layout: &ClassLayout, faults: u32, seed: u64, leak: bool) -> std::io::Result<ClassResult> {
    let plan = Plan {
        layouts: vec![layout.clone()],
        windows: vec![WindowKind::Spin],
        threads: 1,
        duration: Duration::ZERO,
        pattern: Pattern::new(seed),
        spin: 100_000,
        stop_on_first: false,
        keep: 0,
    };
    linux::set_clobber_values(handler_values(&plan))?;
    let mut state = seed ^ 0x5e1f_7e57;
    let mut rnd = move || {
        state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        state
    };
    let mut r = ClassResult::empty(layout.id, SelftestStatus::Tested, None);
    if leak {
        r.control = Some("process-leak".into());
    }
    let mut latencies = Vec::new();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<Found>();
    let (tid_tx, tid_rx) = mpsc::channel::<i32>();
    std::thread::scope(|s| -> std::io::Result<()> {
        let (plan, stop, done) = (&plan, &stop, &done);
        s.spawn(move || {
            let Ok(mut c) = Checker::new(plan, 0) else { return };
            let _ = tid_tx.send(linux::gettid());
            while !stop.load(Ordering::Relaxed) {
                linux::CURRENT_ITERATION.store(c.iteration + 1, Ordering::Release);
                if !c.window(0, WindowKind::Spin, plan.spin) {
                    let diffs = c.differences(0);
                    let leaks = if leak {
                        c.mismatches(0, WindowKind::Spin, Duration::ZERO, &[])
                            .into_iter()
                            .flat_map(|m| {
                                m.lanes
                                    .into_iter()
                                    .filter_map(|l| match l.reading {
                                        Reading::OtherProcess { process, thread, .. } => Some((m.register.clone(), l.lane, process, thread)),
                                        _ => None,
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let _ = tx.send(Found { iteration: c.iteration, diffs, leaks, at: Instant::now() });
                }
                done.store(c.iteration, Ordering::Release);
            }
        });
        let tid = tid_rx.recv_timeout(Duration::from_secs(5)).map_err(|_| std::io::Error::other("checking thread did not start"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut result = Ok(());
        while r.injected < faults && Instant::now() < deadline {
            let fault = if leak { pick_leak(layout, &plan.pattern, &mut rnd) } else { pick_fault(layout, &mut rnd) };
            let t0 = Instant::now();
            let (state, it) = match linux::inject_fault(tid, fault) {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match state {
                linux::INJECT_MISSED => {
                    r.outside_window += 1;
                    continue;
                }
                linux::INJECT_LANDED => r.injected += 1,
                _ => {
                    r.injected += 1;
                    r.missed += 1;
                    r.note(format!("the signal frame holds no image of {:?}", fault));
                    continue;
                }
            }
            // Wait for the window the fault landed in to be checked.
            let mut verdict = None;
            while verdict.is_none() {
                match rx.recv_timeout(Duration::from_millis(1)) {
                    Ok(f) if f.iteration < it => {
                        r.spurious += 1;
                        r.note(format!("mismatch in iteration {} where nothing was injected", f.iteration));
                    }
                    Ok(f) => verdict = Some(Some(f)),
                    Err(_) if done.load(Ordering::Acquire) >= it => {
                        // The window is checked; a report may still be in the channel.
                        verdict = Some(rx.try_recv().ok());
                    }
                    Err(_) => {}
                }
            }
            let reg = &layout.regs[fault.reg].name;
            match verdict.flatten() {
                Some(f)
                    if f.diffs == [(fault.reg, fault.lane, fault.mask)]
                        && f.iteration == it
                        && (!leak || f.leaks == [(reg.clone(), fault.lane, 1, 0)]) =>
                {
                    r.detected += 1;
                    latencies.push(f.at.duration_since(t0).as_secs_f64() * 1e6);
                }
                Some(f) => {
                    r.misplaced += 1;
                    r.note(format!("{reg} lane {} ^ {:#x} injected, reported {:?}", fault.lane, fault.mask, f.diffs));
                }
                None => {
                    r.missed += 1;
                    r.note(format!("{reg} lane {} ^ {:#x} injected, nothing reported", fault.lane, fault.mask));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        // Mismatches after the last injection's window are spurious too.
        let last = done.load(Ordering::Acquire);
        for f in rx.try_iter() {
            if f.iteration > last {
                r.spurious += 1;
            }
        }
        result
    })?;
    latencies.sort_by(|a, b| a.total_cmp(b));
    r.median_latency_us = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    if r.injected < faults {
        let landed = r.injected;
        r.note(format!("only {landed} of {faults} faults landed inside a window within 60 s"));
        r.missed += faults - r.injected;
    }
    Ok(r)
}

