//! IPIs: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` from an aggressor thread interrupts
//! every CPU that is running a thread of this process, so checking threads take an interrupt
//! (and return to user space through the exit path that restores lazily-switched FP state) at an
//! arbitrary instruction of their window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Membarrier {
    calls: AtomicU64,
}

const CMD_QUERY: i32 = 0;
const CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;

impl Trigger for Membarrier {
    fn name(&self) -> &'static str {
        "membarrier"
    }
    fn describe(&self) -> &'static str {
        "membarrier(PRIVATE_EXPEDITED) IPIs to every CPU running a checking thread"
    }
    fn available(&self) -> Result<(), String> {
        let cmds = linux::membarrier(CMD_QUERY).map_err(|e| format!("membarrier is not supported: {e}"))?;
        if cmds & CMD_PRIVATE_EXPEDITED == 0 {
            return Err("membarrier(PRIVATE_EXPEDITED) is not supported by this kernel (Linux 4.14+)".into());
        }
        linux::membarrier(CMD_REGISTER_PRIVATE_EXPEDITED).map(drop).map_err(|e| format!("membarrier registration failed: {e}"))
    }
    fn has_aggressor(&self) -> bool {
        true
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        while !ctx.stopped() {
            if linux::membarrier(CMD_PRIVATE_EXPEDITED).is_ok() {
                self.calls.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    fn events(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
