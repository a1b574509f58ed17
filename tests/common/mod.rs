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

/// The environment variable [`tag`] sets: every process a command starts inherits it (QEMU
/// included), so what a test started can be told from anything else running on the machine.
#[allow(dead_code)]
pub const TAG_VAR: &str = "REGTORTURE_TEST_TAG";

/// Mark `cmd` and everything it starts with a tag no other command of any test run shares
/// (this process's id and a counter); [`tagged`] finds them.
#[allow(dead_code)]
pub fn tag(cmd: &mut std::process::Command) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("{}-{n}", std::process::id());
    cmd.env(TAG_VAR, &tag);
    tag
}

/// The live processes carrying `tag` (see [`tag`]) whose name starts with `comm` ("" for any),
/// as "pid name". Processes of other users or of other tests are never counted.
#[allow(dead_code)]
pub fn tagged(tag: &str, comm: &str) -> Vec<String> {
    let want = format!("{TAG_VAR}={tag}");
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .filter(|e| std::fs::read(e.path().join("environ")).is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes())))
                .filter_map(|e| {
                    let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    name.starts_with(comm).then(|| format!("{} {}", e.file_name().to_string_lossy(), name.trim()))
                })
                .collect()
        })
        .unwrap_or_default()
}
