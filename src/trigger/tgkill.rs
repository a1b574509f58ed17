//! Signals from outside: an aggressor thread sends a real-time signal to every checking thread
//! with tgkill(2), again and again. The handler overwrites every register of every class before
//! it returns, so the kernel's signal-frame save (`copy_fpstate_to_sigframe` on x86) and
//! sigreturn restore must both be right for the checking thread to see its values again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Tgkill {
    sent: AtomicU64,
}

impl Trigger for Tgkill {
    fn name(&self) -> &'static str {
        "tgkill"
    }
    fn describe(&self) -> &'static str {
        "an aggressor thread signals each checking thread; the handler clobbers every register"
    }
    fn available(&self) -> Result<(), String> {
        Ok(())
    }
    fn has_aggressor(&self) -> bool {
        true
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        while !ctx.stopped() {
            for tid in ctx.checker_tids() {
                if linux::tgkill(tid, linux::sig_tgkill()).is_ok() {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    fn events(&self) -> u64 {
        linux::handled(linux::sig_tgkill())
    }
    fn details(&self, _: Duration, _: f64) -> Vec<(String, f64)> {
        vec![("signals_sent".into(), self.sent.load(Ordering::Relaxed) as f64)]
    }
}
