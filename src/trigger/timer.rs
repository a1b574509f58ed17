//! Timer signals: each checking thread gets a POSIX timer of its own (SIGEV_THREAD_ID) that
//! fires every 100 µs, so signals arrive from the kernel's timer interrupt path, at arbitrary
//! instructions of the window. The handler clobbers every register before it returns. After
//! `linux::SIGNALS_PER_WINDOW` signals in one window the timer stops until the thread begins
//! its next window (`linux::WindowTimer`), so a handler slower than the interval (an emulated
//! CPU saving wide vector state) cannot keep the thread from its windows.

use std::time::Duration;

use super::{About, Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Timer;

const INTERVAL: Duration = Duration::from_micros(100);

impl Trigger for Timer {
    fn about(&self) -> About {
        About::hooks("timer", "a POSIX timer per checking thread (SIGEV_THREAD_ID, 100 us, at most 3 a window); the handler clobbers every register")
    }
    fn available(&self) -> Result<(), String> {
        linux::ThreadTimer::new(linux::gettid(), linux::sig_timer(), Duration::from_secs(3600))
            .map(drop)
            .map_err(|e| format!("timer_create(SIGEV_THREAD_ID) failed: {e}"))
    }
    fn checker_start(&self, _ctx: &TriggerCtx) -> Option<Box<dyn Send>> {
        linux::WindowTimer::new(linux::sig_timer(), INTERVAL).ok().map(|t| Box::new(t) as Box<dyn Send>)
    }
    fn events(&self) -> u64 {
        linux::handled(linux::sig_timer())
    }
    fn details(&self, _: Duration, _: f64) -> Vec<(String, f64)> {
        vec![("frame_rewrites".into(), linux::frame_rewrites(linux::sig_timer()) as f64)]
    }
}
