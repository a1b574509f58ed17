//! Migration: an aggressor thread moves every checking thread to another CPU with
//! sched_setaffinity(2) every millisecond, so its register state is saved on one CPU and
//! restored on another while the window runs.

use std::time::Duration;

use super::{Repeat, TriggerCtx};
use crate::arch::linux;

pub(super) fn trigger() -> Repeat {
    Repeat::new("affinity", "sched_setaffinity churn: checking threads migrate between CPUs mid-window", Duration::from_millis(1), move_each).available(|| {
        match linux::allowed_cpus().len() {
            0 | 1 => Err("only one CPU is available: there is nowhere to migrate to".into()),
            _ => Ok(()),
        }
    })
}

/// Pin every checking thread to the next CPU of the ones allowed; returns how many moved.
fn move_each(ctx: &TriggerCtx, round: u64) -> u64 {
    let cpus = linux::allowed_cpus();
    let mut moved = 0;
    for (i, tid) in ctx.checker_tids().into_iter().enumerate() {
        let cpu = cpus[(round as usize + i) % cpus.len()];
        moved += linux::set_affinity(tid, &[cpu]).is_ok() as u64;
    }
    moved
}
