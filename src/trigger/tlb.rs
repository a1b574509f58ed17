//! TLB shootdowns: an aggressor thread maps, writes, write-protects and unmaps pages of this
//! process's address space over and over; each protection change and unmap makes the kernel
//! flush the TLB of every CPU running a checking thread (a flush IPI, taken at an arbitrary
//! instruction of the window).

use std::time::Duration;

use super::Repeat;
use crate::arch::linux;

pub(super) fn trigger() -> Repeat {
    let churn = || linux::tlb_churn().map_err(|e| format!("mmap failed: {e}"));
    Repeat::new("tlb", "mmap/mprotect/munmap churn: TLB shootdown IPIs to CPUs running checking threads", Duration::from_micros(20), |_, _| {
        linux::tlb_churn().is_ok() as u64
    })
    .available(churn)
}
