//! The positive control: inject real faults through the kernel and require that every one is
//! caught, in the right register and lane.
//!
//! A checking thread runs `spin` windows of one class. The injector signals it; the handler
//! (`arch::linux`) looks at the interrupted instruction address, and only when the thread was
//! inside the class's live window does it XOR a random mask into that register's image in the
//! signal frame. sigreturn then loads the wrong value into the live register: the same way a
//! kernel bug would hand it back. The checking thread must report exactly that register, lane
//! and bits in the window the fault landed in.

mod first_use;
mod frame_rows;
mod trigger_rows;

use crate::arch::linux;
use crate::class::{ClassDesc, ClassId, ClassLayout};
pub use crate::error::SelftestError;
use crate::injection::Fault;
use crate::pattern::{Identity, Pattern};
use crate::schema::{ClassResult, SelftestReport, SelftestStatus};
use crate::window::WindowKind;

/// The thread numbers each process owns during the process-leak control: the checking thread
/// is process 0's thread 0, the planted values are process 1's thread 0.
const LEAK_STRIDE: u32 = 512;

/// Inject `faults` faults into each of `classes` (all available ones when empty).
pub fn run(descs: &[ClassDesc], classes: &[ClassId], faults: u32, seed: u64) -> Result<SelftestReport, SelftestError> {
    let mut results = Vec::new();
    for d in descs.iter().filter(|d| classes.is_empty() || classes.contains(&d.id())) {
        let r = match &d.available {
            Err(why) => ClassResult::empty(d.id(), SelftestStatus::Skipped, Some(why.clone())),
            Ok(()) => frame_rows::fault_row(&d.layout, faults, seed)?,
        };
        results.push(r);
        // The process-leak control: another process's value delivered into a register.
        if d.available.is_ok() && !d.id().is_transition() && leak_lanes(&d.layout).next().is_some() {
            results.push(frame_rows::process_leak_row(&d.layout, faults, seed)?);
        }
        // The scrub rule's control: another process's value delivered into a lane that the
        // kernel scrubbed at the syscall.
        if d.available.is_ok() && crate::arch::native().scrubbed(d.id(), WindowKind::Syscall) {
            results.push(frame_rows::scrubbed_leak_row(&d.layout, faults, seed)?);
        }
        // The first-use reader's control.
        if d.available.is_ok() {
            results.extend(first_use::first_use_control(&d.layout, faults, seed));
        }
    }
    // The execve check's controls: a value planted at the exec stop must be read as a leak,
    // in the FP class's lanes (NT_PRFPREG), in integer registers (NT_PRSTATUS) and in the
    // backend's other sites (aarch64's TPIDR2 through NT_ARM_TLS).
    let fp = crate::arch::native().fp_regset().map(crate::leak::ExecSites::fp);
    for sites in fp.into_iter().chain(crate::leak::ExecSites::gpr()).chain(crate::leak::ExecSites::others()) {
        if let Some(d) = descs.iter().find(|d| d.id() == sites.class && (classes.is_empty() || classes.contains(&d.id()))) {
            results.push(match &d.available {
                Err(why) => ClassResult { control: Some("exec-leak".into()), ..ClassResult::empty(d.id(), SelftestStatus::Skipped, Some(why.clone())) },
                Ok(()) => crate::leak::exec_control(&d.layout, &sites, seed, faults),
            });
        }
    }
    // The core-dump check's control: a core compared with an expectation one bit off must be
    // reported in exactly that lane.
    if let Some(site) = crate::arch::native().fp_regset() {
        if let Some(d) = descs.iter().find(|d| d.id() == site.class && d.available.is_ok() && (classes.is_empty() || classes.contains(&d.id()))) {
            results.push(crate::coredump::control(&d.layout, seed, faults));
        }
    }
    // The controls that run as triggers: a ptrace write, and a frame rewrite, told wrong.
    let reached: Vec<ClassLayout> =
        descs.iter().filter(|d| d.available.is_ok() && (classes.is_empty() || classes.contains(&d.id()))).map(|d| d.layout.clone()).collect();
    results.extend(trigger_rows::rows(&reached, faults, seed));
    linux::restore_default_handlers();
    let passed = results.iter().all(ClassResult::passed) && results.iter().any(|r| r.status == SelftestStatus::Tested);
    Ok(SelftestReport { faults_per_class: faults, classes: results, passed })
}

/// The lanes a process-leak fault can go into: full 64-bit lanes of plain-data registers.
fn leak_lanes(layout: &ClassLayout) -> impl Iterator<Item = (usize, usize)> + '_ {
    layout.data_lanes().map(|(_, r, l)| (r, l))
}

/// A fault that turns a lane into process 1's value: the low half of a pattern word names its
/// writer (thread, class, register, lane), so XOR-ing the two writers' low halves makes the
/// lane decode as process 1's, whatever the iteration.
fn pick_leak(layout: &ClassLayout, p: &Pattern, rnd: &mut dyn FnMut() -> u64) -> Fault {
    let lanes: Vec<(usize, usize)> = leak_lanes(layout).collect();
    let (reg, lane) = lanes[(rnd() % lanes.len() as u64) as usize];
    let id = |thread| Identity { thread, class: layout.id, reg: reg as u32, lane: lane as u32 };
    let mask = (p.lo(id(crate::leak::ident(0))) ^ p.lo(id(LEAK_STRIDE))) as u64;
    Fault { class: layout.id, reg, lane, mask }
}

/// The value process 1's thread 0 writes to (register, lane) of `layout`'s class in iteration 1.
fn process1_value(layout: &ClassLayout, p: &Pattern, reg: usize, lane: usize) -> u64 {
    let id = Identity { thread: LEAK_STRIDE, class: layout.id, reg: reg as u32, lane: lane as u32 };
    p.lo(id) as u64 | (p.hi(1) as u64) << 32
}
