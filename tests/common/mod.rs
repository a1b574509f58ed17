//! What the end-to-end tests share.

use std::io::Write as _;

/// Record that the calling test did not check what it is for, and why. The line goes to
/// standard error and to `target/test-skips`, which scripts/test counts and lists in its
/// closing summary: a skip is never a silent pass.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("unnamed test").to_string();
    let line = format!("{}: {test}: {reason}\n", env!("CARGO_CRATE_NAME"));
    eprint!("SKIP {line}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-skips");
    let written = std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skip in {path}: {e}");
    }
}
