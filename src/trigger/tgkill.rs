//! Signals from outside: an aggressor thread sends a real-time signal to every checking thread
//! with tgkill(2), again and again. The handler overwrites every register of every class before
//! it returns, so the kernel's signal-frame save (`copy_fpstate_to_sigframe` on x86) and
//! sigreturn restore must both be right for the checking thread to see its values again.

use std::time::Duration;

use super::{Repeat, TriggerCtx};
use crate::arch::linux;

pub(super) fn trigger() -> Repeat {
    Repeat::new("tgkill", "an aggressor thread signals each checking thread; the handler clobbers every register", Duration::from_micros(50), signal_each)
        .events_from(|| linux::handled(linux::sig_tgkill()), "signals_sent")
}

/// One signal to every checking thread; returns how many were sent.
fn signal_each(ctx: &TriggerCtx, _round: u64) -> u64 {
    ctx.checker_tids().into_iter().filter(|&tid| linux::tgkill(tid, linux::sig_tgkill()).is_ok()).count() as u64
}
