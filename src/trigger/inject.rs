//! A positive control for the whole run path: every 200 ms, rewrite one register of one
//! checking thread in its signal frame while it is inside a window (as `selftest` does), so
//! that the run must find, diagnose and report a corruption. Runs only when named
//! (`--triggers inject`); the events are faults that landed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Trigger, TriggerCtx};
use crate::arch::linux;
use crate::pattern::mix64;

#[derive(Default)]
pub struct Inject {
    landed: AtomicU64,
}

impl Trigger for Inject {
    fn name(&self) -> &'static str {
        "inject"
    }
    fn describe(&self) -> &'static str {
        "positive control, only when named: writes a wrong register value into a checking thread's signal frame every 200 ms"
    }
    fn available(&self) -> Result<(), String> {
        Ok(())
    }
    fn has_aggressor(&self) -> bool {
        true
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        let mut state = 0x1a2b_3c4d_u64;
        let mut rnd = move || {
            state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        while !ctx.stopped() {
            std::thread::sleep(Duration::from_millis(200));
            let tids = ctx.checker_tids();
            if tids.is_empty() || ctx.plan.layouts.is_empty() {
                continue;
            }
            // Try until one lands inside a window of the class it was meant for.
            for _ in 0..1000 {
                if ctx.stopped() {
                    return;
                }
                let tid = tids[(rnd() % tids.len() as u64) as usize];
                let layout = &ctx.plan.layouts[(rnd() % ctx.plan.layouts.len() as u64) as usize];
                let fault = crate::selftest::pick_fault(layout, &mut rnd);
                match linux::inject_fault(tid, fault) {
                    Ok((linux::INJECT_LANDED, _)) => {
                        self.landed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
    }
    fn events(&self) -> u64 {
        self.landed.load(Ordering::Relaxed)
    }
}
