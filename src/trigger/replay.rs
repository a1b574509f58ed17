//! A positive control for diagnosis: every 200 ms, make a checking thread's signal frame look
//! as a known kernel bug left its registers (powerpc: f0/vs0 holding the FPSCR image that
//! save_fpu's `mffs f0` produced, v0 the VSCR image), so that sigreturn hands the thread that
//! exact corruption and the report must name the bug. Runs only when named
//! (`--triggers replay`); available where the architecture has a replayable bug.

use super::TriggerCtx;
use super::inject::Control;
use crate::arch::{self, linux};
use crate::class::ClassId;
use crate::injection::Fault;

pub(super) fn control() -> Control {
    Control::new(
        "replay",
        "positive control, only when named: replays a known bug's corruption (powerpc save_fpu: vs0 <- FPSCR) through a signal frame",
        available,
        land,
    )
}

/// Whether the control can run here.
fn available() -> Result<(), String> {
    if arch::native().replays_known_bug() { Ok(()) } else { Err(format!("no known bug of {} is replayed (powerpc64 only)", arch::name())) }
}
/// Land the rewrites, one every 200 ms.
fn land(c: &Control, ctx: &TriggerCtx) {
    // Under qemu-user the frame has no VSCR image (QEMU saves VRSAVE there), so a VMX replay
    // would not be the bug's corruption: replay FP/VSX only.
    let emulated = linux::user_mode_emulation();
    let classes: Vec<ClassId> = ctx.plan.layouts.iter().map(|l| l.id).filter(|&c| !(emulated && c == ClassId::Vmx)).collect();
    if classes.is_empty() {
        return;
    }
    let mut k = 0usize;
    super::inject::every_200ms_land_one(
        ctx,
        &c.landed,
        || true,
        |tids, _| {
            k += 1;
            let fault = Fault { class: classes[k % classes.len()], reg: 0, lane: 0, mask: 0 };
            linux::replay_known_bug(tids[k % tids.len()], fault)
        },
    );
}
