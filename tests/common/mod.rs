//! What the end-to-end tests share.

use std::io::Write as _;

/// Record that the calling test did not check what it is for, and why. The line goes to
/// standard error and to `target/test-skips`, which scripts/test counts and lists in its
/// closing summary: a skip is never a silent pass.
#[allow(dead_code)]
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

/// The regtorture binary under test.
#[allow(dead_code)]
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_regtorture"))
}

/// Run `cmd` with no input: its exit code, its standard output as JSON (null if it is not),
/// its standard error.
#[allow(dead_code)]
pub fn run_json(cmd: &mut std::process::Command) -> (i32, serde_json::Value, String) {
    let out = cmd.stdin(std::process::Stdio::null()).output().expect("run regtorture");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}
