//! regtorture: finds operating-system (and CPU) bugs that corrupt user-space floating-point and
//! vector register state.
//!
//! The flow of a run: [`cli`] → [`app`] builds an [`crate::plan::Plan`] from the register classes the
//! [`arch`] backend detected → [`engine`] runs checking threads (fill → [`window`] → check) while
//! [`trigger`]s drive the kernel → mismatches are read by [`pattern`] and matched against
//! [`signature`]s → a [`crate::schema::Report`] is rendered as text, JSON or KTAP. [`selftest`] proves
//! the detector on this machine by injecting faults through signal frames.

#![deny(unsafe_code)]

/// Print a line to standard output; a closed pipe (`| head`) is not worth a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

#[allow(unsafe_code)]
pub mod arch;

pub mod app;
pub mod bench;
pub mod class;
pub mod cli;
pub mod coredump;
pub mod elf;
pub mod engine;
pub mod error;
pub mod forensics;
pub mod injection;
pub mod leak;
pub mod pattern;
pub mod plan;
pub mod report;
pub mod reproducer;
pub mod runner;
pub mod schema;
pub mod selftest;
pub mod signature;
pub mod trace;
pub mod triage;
pub mod trigger;
pub mod vm;
pub mod window;
