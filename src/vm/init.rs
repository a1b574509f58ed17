//! The other side of `regtorture vm`: regtorture as `/init` of a freshly booted kernel.
//!
//! Mounts proc, sys, devtmpfs and tmpfs, reads the run options the host wrote into the
//! initramfs (`/regtorture.args`, one per line), runs the selftest and then the run, writes the
//! JSON report to the console between markers, and restarts the machine (the host starts QEMU
//! with -no-reboot, so QEMU exits). PID 1 must never exit, so every path ends in a restart.

use clap::Parser;

use super::{ARGS_FILE, MARK_BEGIN, MARK_END, MARK_ERROR, MARK_PHASE};
use crate::arch::linux;
use crate::cli::{Cli, Command};

fn phase(what: &str) {
    say!("{MARK_PHASE} {what}");
}

fn fail(msg: &str) -> ! {
    say!("{MARK_ERROR} {msg}");
    let e = linux::restart_machine();
    say!("{MARK_ERROR} restart failed: {e}");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Whether this process is init of a kernel booted by `regtorture vm`: PID 1, with the run
/// options file the host packed into the initramfs. PID 1 alone is not enough: in a container
/// (`docker run IMAGE regtorture run ...`, `unshare --pid`) regtorture is PID 1 too, and must
/// do what its command line says.
pub fn is_guest() -> bool {
    std::process::id() == 1 && std::path::Path::new(ARGS_FILE).is_file()
}

/// Run as init; never returns.
pub fn main() -> ! {
    for (src, dir, ty) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs"), ("tmpfs", "/tmp", "tmpfs")] {
        if let Err(e) = linux::mount_fs(src, dir, ty) {
            if dir == "/proc" {
                fail(&format!("cannot mount {dir}: {e}"));
            }
        }
    }
    phase("started");
    // Cores go to a file the run can read (the core-dump check): this machine is the run's own.
    let _ = std::fs::write("/proc/sys/kernel/core_pattern", "/tmp/core.%p");
    let extra = std::fs::read_to_string(ARGS_FILE).unwrap_or_default();
    if extra.lines().next() == Some("triage") {
        triage(&extra);
    }
    let argv = ["regtorture", "run", "--quiet"].into_iter().map(String::from).chain(extra.lines().map(String::from));
    let mut args = match Cli::try_parse_from(argv) {
        Ok(Cli { command: Some(Command::Run(a)), .. }) => a,
        Ok(_) => fail("the run options did not parse as a run"),
        Err(e) => fail(&format!("bad run options: {}", e.render().to_string().lines().next().unwrap_or(""))),
    };
    args.out.quiet = true;
    // The kernel's own timeline of every finding: the guest is root and can mount tracefs.
    args.trace = !args.no_trace;
    phase("selftest");
    let st = match crate::runner::selftest_for(&args) {
        Ok(st) => st,
        Err(e) => fail(&format!("{e} (exit code {})", e.exit_code())),
    };
    phase("run");
    let send = |rep: &crate::schema::Report| {
        say!("{MARK_BEGIN}");
        say!("{}", serde_json::to_string(rep).unwrap_or_default());
        say!("{MARK_END}");
    };
    // A fault that stops the run is reported through `send` too; then the machine restarts
    // (PID 1 must never exit).
    let fatal = |rep: &crate::schema::Report| {
        send(rep);
        let e = linux::restart_machine();
        fail(&format!("restart failed: {e}"));
    };
    match crate::runner::run_report(&args, Some(st), &fatal) {
        Ok(rep) => send(&rep),
        Err(e) => fail(&format!("{e} (exit code {})", e.exit_code())),
    }
    let e = linux::restart_machine();
    fail(&format!("restart failed: {e}"))
}

/// `regtorture vm ... -- triage ...`: the whole triage in this boot (its runs are children of
/// init), its progress as phases, its report between the markers; never returns.
fn triage(extra: &str) -> ! {
    let argv = std::iter::once("regtorture".to_string()).chain(extra.lines().map(String::from));
    let mut args = match Cli::try_parse_from(argv) {
        Ok(Cli { command: Some(Command::Triage(a)), .. }) => a,
        Ok(_) => fail("the triage options did not parse"),
        Err(e) => fail(&format!("bad triage options: {}", e.render().to_string().lines().next().unwrap_or(""))),
    };
    args.run.trace = !args.run.no_trace;
    // The host writes the C reproducer (the path is the host's).
    args.emit_c = None;
    phase("triage");
    match crate::triage::run(&args, &|line| phase(line)) {
        Ok(rep) => {
            say!("{MARK_BEGIN}");
            say!("{}", serde_json::to_string(&rep).unwrap_or_default());
            say!("{MARK_END}");
        }
        Err(e) => fail(&format!("{e} (exit code {})", e.exit_code())),
    }
    let e = linux::restart_machine();
    fail(&format!("restart failed: {e}"))
}
