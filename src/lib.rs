//! regtorture: finds operating-system (and CPU) bugs that corrupt user-space floating-point and
//! vector register state.
//!
//! The flow of a run: [`cli`] → [`app`] builds an [`crate::plan::Plan`] from the register classes the
//! [`arch`] backend detected → [`engine`] runs checking threads (fill → [`window`] → check) while
//! [`trigger`]s drive the kernel → mismatches are read by [`pattern`] and matched against
//! [`signature`]s → a [`crate::schema::Report`] is rendered as text, JSON or KTAP. [`selftest`] proves
//! the detector on this machine by injecting faults through signal frames.

#![deny(unsafe_code)]
// The library is the binary's: most modules are crate-private (so rustc reports dead code),
// and their documentation is built with --document-private-items (scripts/test), where these
// links resolve.
#![allow(rustdoc::private_intra_doc_links)]

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
pub(crate) mod bench;
pub mod campaign;
pub(crate) mod class;
pub mod cli;
pub(crate) mod coredump;
pub(crate) mod elf;
pub mod engine;
pub mod error;
pub(crate) mod forensics;
pub(crate) mod injection;
pub(crate) mod leak;
pub mod pattern;
pub mod plan;
pub(crate) mod report;
pub(crate) mod reproducer;
pub(crate) mod runner;
pub(crate) mod schema;
pub(crate) mod selftest;
pub(crate) mod signature;
pub(crate) mod trace;
pub(crate) mod triage;
pub mod trigger;
pub(crate) mod vm;
pub mod window;
