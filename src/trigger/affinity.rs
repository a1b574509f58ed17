//! Migration: an aggressor thread moves every checking thread to another CPU with
//! sched_setaffinity(2) every millisecond, so its register state is saved on one CPU and
//! restored on another while the window runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Trigger, TriggerCtx};
use crate::arch::linux;

#[derive(Default)]
pub struct Affinity {
    moves: AtomicU64,
}

impl Trigger for Affinity {
    fn name(&self) -> &'static str {
        "affinity"
    }
    fn describe(&self) -> &'static str {
        "sched_setaffinity churn: checking threads migrate between CPUs mid-window"
    }
    fn available(&self) -> Result<(), String> {
        if linux::allowed_cpus().len() < 2 {
            return Err("only one CPU is available: there is nowhere to migrate to".into());
        }
        Ok(())
    }
    fn has_aggressor(&self) -> bool {
        true
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        let cpus = linux::allowed_cpus();
        let mut k = 0usize;
        while !ctx.stopped() {
            for (i, tid) in ctx.checker_tids().into_iter().enumerate() {
                let cpu = cpus[(k + i) % cpus.len()];
                if linux::set_affinity(tid, &[cpu]).is_ok() {
                    self.moves.fetch_add(1, Ordering::Relaxed);
                }
            }
            k += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn events(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }
}
