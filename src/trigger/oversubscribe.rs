//! Preemption: more checking threads than CPUs, so the scheduler preempts checking threads in
//! the middle of their windows and their state is saved and restored by context switches.
//! Events are the involuntary context switches the checking threads took.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{About, Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Oversubscribe {
    preemptions: Arc<AtomicU64>,
}

/// Adds the checking thread's preemptions to the count when the thread ends.
struct Count(Arc<AtomicU64>, u64);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_add(linux::involuntary_switches().saturating_sub(self.1), Ordering::Relaxed);
    }
}

impl Trigger for Oversubscribe {
    fn about(&self) -> About {
        About::hooks("preempt", "CPUs + 1 extra checking threads: preemption and context switches mid-window")
    }
    fn extra_threads(&self) -> usize {
        linux::allowed_cpus().len() + 1
    }
    fn checker_start(&self, _ctx: &TriggerCtx) -> Option<Box<dyn Send>> {
        Some(Box::new(Count(self.preemptions.clone(), linux::involuntary_switches())))
    }
    fn events(&self) -> u64 {
        self.preemptions.load(Ordering::Relaxed)
    }
}
