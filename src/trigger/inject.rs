//! A positive control for the whole run path: every 200 ms, rewrite one register of one
//! checking thread in its signal frame while it is inside a window (as `selftest` does), so
//! that the run must find, diagnose and report a corruption. Runs only when named
//! (`--triggers inject`); the events are faults that landed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{About, Trigger, TriggerCtx};
use crate::arch::linux;
use crate::pattern::mix64;

pub(super) fn control() -> Control {
    Control::new(
        "inject",
        "positive control, only when named: writes a wrong register value into a checking thread's signal frame every 200 ms",
        || Ok(()),
        land,
    )
}

/// Land the rewrites, one every 200 ms.
fn land(c: &Control, ctx: &TriggerCtx) {
    let mut state = 0x1a2b_3c4d_u64;
    let mut rnd = move || {
        state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        state
    };
    every_200ms_land_one(
        ctx,
        &c.landed,
        || true,
        |tids, layouts| {
            let tid = tids[(rnd() % tids.len() as u64) as usize];
            let layout = &layouts[(rnd() % layouts.len() as u64) as usize];
            linux::inject_fault(tid, crate::injection::pick_fault(layout, &mut rnd))
        },
    );
}

/// A positive control: an aggressor that rewrites checking threads' signal frames (see
/// [`every_200ms_land_one`]), counting the rewrites that landed inside a window.
pub struct Control {
    about: About,
    act: fn(&Control, &TriggerCtx),
    pub(super) landed: AtomicU64,
}

impl Control {
    pub(super) fn new(name: &'static str, describe: &'static str, check: fn() -> Result<(), String>, act: fn(&Control, &TriggerCtx)) -> Control {
        Control { about: About::aggressor(name, describe).when(check), act, landed: AtomicU64::new(0) }
    }
}

impl Trigger for Control {
    fn about(&self) -> About {
        self.about
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        (self.act)(self, ctx)
    }
    fn events(&self) -> u64 {
        self.landed.load(Ordering::Relaxed)
    }
}

/// Every 200 ms, when `ready()`, call `attempt` (a checking thread and what to do to its frame)
/// until one attempt lands inside a window, counting those that land in `landed`. Shared by
/// the positive controls (`inject`, `replay`, `fault`).
pub(super) fn every_200ms_land_one(
    ctx: &TriggerCtx,
    landed: &AtomicU64,
    ready: impl Fn() -> bool,
    mut attempt: impl FnMut(&[i32], &[crate::class::ClassLayout]) -> std::io::Result<(linux::Inject, u64)>,
) {
    while !ctx.stopped() {
        std::thread::sleep(Duration::from_millis(200));
        let tids = ctx.checker_tids();
        if !ready() || tids.is_empty() || ctx.plan.layouts.is_empty() {
            continue;
        }
        for _ in 0..1000 {
            if ctx.stopped() {
                return;
            }
            match attempt(&tids, &ctx.plan.layouts) {
                Ok((linux::Inject::Landed, _)) => {
                    landed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}
