//! A positive control for fault forensics: rewrite a checking thread's signal frame so that
//! sigreturn sends it to a bad address, as a kernel bug in signal delivery would. On powerpc64
//! the thread is left exactly as the fast-syscall-exit signal bug leaves it (at the vDSO
//! trampoline's `bctrl` with CTR = MSR and r12 = 0, an intact signal frame above r1), so the
//! fault must be caught, read ("CTR holds the MSR image", ...), named, and survived; elsewhere
//! the PC becomes the flags/PSTATE image, a fault no thread survives, and the run must still
//! end with the forensics report and exit 1. Runs only when named (`--triggers fault`).

use std::sync::atomic::Ordering;

use super::TriggerCtx;
use super::inject::Control;
use crate::arch::{self, linux};
use crate::injection::Fault;

pub(super) fn control() -> Control {
    Control::new(
        "fault",
        "positive control, only when named: a signal frame rewritten so that sigreturn jumps to the MSR/flags image (powerpc: the fast-exit signal bug's exact state)",
        available,
        land,
    )
}

/// Whether the control can run here.
fn available() -> Result<(), String> {
    let start = linux::vdso_image().map_or(0, |(img, base)| arch::native().signal_trampoline(img, base).0);
    if !arch::native().needs_trampoline_start() || start != 0 {
        Ok(())
    } else {
        Err("the vDSO has no signal trampoline to return to (user-mode emulation, or an old kernel)".into())
    }
}
/// Land the rewrites, one every 200 ms.
fn land(c: &Control, ctx: &TriggerCtx) {
    let mut k = 0usize;
    // One at a time: the powerpc control's frame copy must be returned from first.
    let ready = || linux::fault_count() >= c.landed.load(Ordering::Relaxed);
    super::inject::every_200ms_land_one(ctx, &c.landed, ready, |tids, layouts| {
        k += 1;
        let class = layouts[k % layouts.len()].id;
        linux::misreturn(tids[k % tids.len()], Fault { class, reg: 0, lane: 0, mask: 0 })
    });
}
