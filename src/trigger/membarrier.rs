//! IPIs: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` from an aggressor thread interrupts
//! every CPU that is running a thread of this process, so checking threads take an interrupt
//! (and return to user space through the exit path that restores lazily-switched FP state) at an
//! arbitrary instruction of their window.

use std::time::Duration;

use super::Repeat;
use crate::arch::linux;

const CMD_QUERY: i32 = 0;
const CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;

pub(super) fn trigger() -> Repeat {
    Repeat::new("membarrier", "membarrier(PRIVATE_EXPEDITED) IPIs to every CPU running a checking thread", Duration::from_micros(20), |_, _| {
        linux::membarrier(CMD_PRIVATE_EXPEDITED).is_ok() as u64
    })
    .available(registered)
}

/// Whether PRIVATE_EXPEDITED is supported, after registering for it.
fn registered() -> Result<(), String> {
    let cmds = linux::membarrier(CMD_QUERY).map_err(|e| format!("membarrier is not supported: {e}"))?;
    if cmds & CMD_PRIVATE_EXPEDITED == 0 {
        return Err("membarrier(PRIVATE_EXPEDITED) is not supported by this kernel (Linux 4.14+)".into());
    }
    linux::membarrier(CMD_REGISTER_PRIVATE_EXPEDITED).map(drop).map_err(|e| format!("membarrier registration failed: {e}"))
}
