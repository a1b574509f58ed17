//! What a run checks and for how long: the one value the engine, the triggers and the report
//! builders all read.

use std::time::Duration;

use crate::class::{ClassId, ClassLayout};
use crate::pattern::Pattern;
use crate::window::WindowKind;

/// What a run checks and for how long.
#[derive(Clone, Debug)]
pub struct Plan {
    pub layouts: Vec<ClassLayout>,
    pub windows: Vec<WindowKind>,
    pub threads: usize,
    pub duration: Duration,
    pub pattern: Pattern,
    /// Loop iterations a window spins.
    pub spin: u64,
    /// Stop at the first finding that matches no known bug (see `signature`).
    pub stop_on_first: bool,
    /// With `stop_on_first`: stop at a known bug's finding too (triage hunts one finding,
    /// whatever it is).
    pub stop_on_known: bool,
    /// Mismatch records kept in detail (all are counted).
    pub keep: usize,
}

impl Plan {
    /// The name of register `reg` of `class`, for readings that point at another register.
    pub fn reg_name(&self, class: ClassId, reg: usize) -> String {
        self.layouts.iter().find(|l| l.id == class).and_then(|l| l.regs.get(reg)).map(|r| r.name.clone()).unwrap_or_else(|| format!("{class}[{reg}]"))
    }
}
