//! Signals from outside: an aggressor thread sends a real-time signal to every checking thread
//! with tgkill(2), again and again. The handler overwrites every register of every class before
//! it returns, so the kernel's signal-frame save (`copy_fpstate_to_sigframe` on x86) and
//! sigreturn restore must both be right for the checking thread to see its values again.
//!
//! At most `linux::SIGNALS_PER_WINDOW` signals per window a thread begins: real-time signals
//! queue, and where the handler takes longer than the aggressor's pause (under QEMU's TCG, with
//! V or SVE frames of kilobytes) an unbounded queue kept the checking threads in their handlers
//! and no window completed. Natively a window seldom outlasts that many pauses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Repeat, TriggerCtx};
use crate::arch::linux;

pub(super) fn trigger() -> Repeat {
    Repeat::new("tgkill", "an aggressor thread signals each checking thread; the handler clobbers every register", Duration::from_micros(50), signal_each)
        .events_from(|| linux::handled(linux::sig_tgkill()), "signals_sent")
        .detail("frame_rewrites", || linux::frame_rewrites(linux::sig_tgkill()))
}

/// Per checking-thread number: how many windows it had begun when it was last signalled, and
/// how many signals it was sent since it began that many. Only the aggressor thread uses them.
static WINDOW: [AtomicU64; linux::THREAD_SLOTS_MAX] = [const { AtomicU64::new(u64::MAX) }; linux::THREAD_SLOTS_MAX];
static SENT: [AtomicU64; linux::THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; linux::THREAD_SLOTS_MAX];

/// One signal to every checking thread that has had fewer than `SIGNALS_PER_WINDOW` since it
/// began its current window; returns how many were sent.
fn signal_each(ctx: &TriggerCtx, _round: u64) -> u64 {
    let due = |tid: i32| match linux::windows_begun(tid) {
        Some((slot, begun)) => {
            if WINDOW[slot].swap(begun, Ordering::Relaxed) != begun {
                SENT[slot].store(0, Ordering::Relaxed);
            }
            SENT[slot].fetch_add(1, Ordering::Relaxed) < linux::SIGNALS_PER_WINDOW
        }
        // Not registered (yet, or any more): no window of it to signal.
        None => false,
    };
    ctx.checker_tids().into_iter().filter(|&tid| due(tid) && linux::tgkill(tid, linux::sig_tgkill()).is_ok()).count() as u64
}

/// The frame rewrites' positive control (`rewrite-control`, on request): the tgkill aggressor
/// with every rewrite of the clobbering handler recording one rewritten lane one bit off
/// (`linux::set_rewrite_plant`): the window must report exactly that lane, once per plant.
pub(super) struct RewriteControl;

impl super::Trigger for RewriteControl {
    fn about(&self) -> super::About {
        super::About::aggressor(
            "rewrite-control",
            "positive control: tgkill signals whose handler rewrites the frame and records one lane wrong, which must be reported",
        )
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        linux::set_rewrite_plant(true);
        let mut round = 0;
        while !ctx.stopped() {
            signal_each(ctx, round);
            round += 1;
            std::thread::sleep(Duration::from_micros(50));
        }
        linux::set_rewrite_plant(false);
    }
    fn events(&self) -> u64 {
        linux::frame_rewrites(linux::sig_tgkill())
    }
    fn details(&self, _: Duration, _: f64) -> Vec<(String, f64)> {
        let by_class = crate::class::ClassId::ALL.iter().map(|&c| (c, linux::rewrite_plants_of(c))).filter(|&(_, n)| n > 0);
        std::iter::once(("planted".into(), linux::rewrite_plants() as f64)).chain(by_class.map(|(c, n)| (format!("planted.{c}"), n as f64))).collect()
    }
}
