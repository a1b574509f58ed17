//! TLB shootdowns: an aggressor thread maps, writes, write-protects and unmaps pages of this
//! process's address space over and over; each protection change and unmap makes the kernel
//! flush the TLB of every CPU running a checking thread (a flush IPI, taken at an arbitrary
//! instruction of the window).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Tlb {
    rounds: AtomicU64,
}

impl Trigger for Tlb {
    fn name(&self) -> &'static str {
        "tlb"
    }
    fn describe(&self) -> &'static str {
        "mmap/mprotect/munmap churn: TLB shootdown IPIs to CPUs running checking threads"
    }
    fn available(&self) -> Result<(), String> {
        linux::tlb_churn().map_err(|e| format!("mmap failed: {e}"))
    }
    fn has_aggressor(&self) -> bool {
        true
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        while !ctx.stopped() {
            if linux::tlb_churn().is_ok() {
                self.rounds.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    fn events(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }
}
