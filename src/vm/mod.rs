//! `regtorture vm`: boot a kernel under QEMU with regtorture as the whole user space, and
//! turn what it reports into the same verdict and exit code as a local run.
//!
//! The host side builds a newc initramfs ([`cpio`]) holding the static regtorture binary of the
//! guest architecture as `/init` and the run options, starts `qemu-system-*` with the console
//! on a pipe, follows the phases the guest prints ([`init`]), and parses the JSON report the
//! guest writes between markers. A kernel that does not boot, panics or hangs is reported with
//! its own report of the trouble (kept from the oops's first line) and its last console lines
//! within the timeout; QEMU never outlives the command.

pub mod cpio;
pub mod init;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::arch::linux;
use crate::cli::{Cli, Command as Sub, GuestArch, VmArgs};
use crate::error::{EXIT_BISECT_SKIP, EXIT_CORRUPTION, EXIT_ENVIRONMENT};
use crate::error::{Error, Result};
use crate::report::human;
use crate::schema::{Report, TriageReport};

/// Where the host puts the run options inside the initramfs.
pub const ARGS_FILE: &str = "/regtorture.args";
pub const MARK_PHASE: &str = "REGTORTURE-VM: phase";
pub const MARK_BEGIN: &str = "REGTORTURE-VM: json-begin";
pub const MARK_END: &str = "REGTORTURE-VM: json-end";
pub const MARK_ERROR: &str = "REGTORTURE-VM: error";

/// The SBI firmware a riscv64 guest boots through: Debian's `opensbi` package.
pub const RISCV_FIRMWARE: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

/// What QEMU and the guest binary are for one guest architecture.
struct Guest {
    /// The Rust target of the guest binary.
    triple: &'static str,
    /// ELF e_machine of the guest's binaries.
    elf_machine: u16,
    qemu: &'static str,
    console: &'static str,
    /// The name the guest's `arch::name()` reports.
    arch: &'static str,
}

impl GuestArch {
    fn guest(self) -> Guest {
        match self {
            GuestArch::Ppc64le => {
                Guest { triple: "powerpc64le-unknown-linux-gnu", elf_machine: 21, qemu: "qemu-system-ppc64", console: "hvc0", arch: "powerpc64" }
            }
            GuestArch::Aarch64 => {
                Guest { triple: "aarch64-unknown-linux-gnu", elf_machine: 183, qemu: "qemu-system-aarch64", console: "ttyAMA0", arch: "aarch64" }
            }
            GuestArch::X86_64 => Guest { triple: "x86_64-unknown-linux-gnu", elf_machine: 62, qemu: "qemu-system-x86_64", console: "ttyS0", arch: "x86_64" },
            GuestArch::Riscv64 => {
                Guest { triple: "riscv64gc-unknown-linux-gnu", elf_machine: 243, qemu: "qemu-system-riscv64", console: "ttyS0", arch: "riscv64" }
            }
        }
    }

    fn triple(self) -> &'static str {
        self.guest().triple
    }

    fn qemu(self) -> &'static str {
        self.guest().qemu
    }

    fn is_host(self) -> bool {
        self.guest().arch == crate::arch::name()
    }
}

/// Check that `path` is a static 64-bit little-endian ELF executable for `arch`.
fn check_elf(path: &Path, arch: GuestArch) -> std::result::Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let u16at = |o: usize| data.get(o..o.checked_add(2)?).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32at = |o: usize| data.get(o..o.checked_add(4)?).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let u64at = |o: usize| data.get(o..o.checked_add(8)?).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if data.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err(format!("{} is not a 64-bit little-endian ELF file", path.display()));
    }
    if u16at(18) != Some(arch.guest().elf_machine) {
        return Err(format!("{} is not a {} binary", path.display(), arch.triple()));
    }
    let (phoff, phentsize, phnum) = (u64at(32).unwrap_or(0) as usize, u16at(54).unwrap_or(0) as usize, u16at(56).unwrap_or(0) as usize);
    for i in 0..phnum {
        // A crafted header may point anywhere: an offset that overflows is no header at all.
        let Some(at) = i.checked_mul(phentsize).and_then(|o| o.checked_add(phoff)) else {
            return Err(format!("{} has a broken program header table", path.display()));
        };
        if u32at(at) == Some(3) {
            return Err(format!("{} is dynamically linked: a VM's init must be static (scripts/cross builds it)", path.display()));
        }
    }
    Ok(())
}

/// The guest binary: `--guest-binary`, or one built next to this one.
fn guest_binary(args: &VmArgs) -> Result<PathBuf> {
    if let Some(p) = &args.guest_binary {
        check_elf(p, args.arch).map_err(Error::Usage)?;
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().map_err(Error::io("cannot find this executable"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let t = args.arch.triple();
    let mut candidates =
        vec![dir.join(format!("regtorture-{t}")), dir.join("..").join(t).join("release/regtorture"), dir.join("../..").join(t).join("release/regtorture")];
    if args.arch.is_host() {
        candidates.push(exe.clone());
    }
    for c in &candidates {
        if c.exists() && check_elf(c, args.arch).is_ok() {
            return Ok(c.clone());
        }
    }
    Err(Error::Environment(format!(
        "no static regtorture binary for {t}: build it with scripts/cross, put it next to this one as regtorture-{t}, or pass --guest-binary"
    )))
}

fn initramfs(binary: &Path, run_args: &[String]) -> Result<Vec<u8>> {
    let bin = std::fs::read(binary).map_err(Error::io(format!("cannot read {}", binary.display())))?;
    let mut c = cpio::Cpio::default();
    for d in ["dev", "proc", "sys", "tmp"] {
        c.dir(d);
    }
    c.char_device("dev/console", 5, 1);
    c.file("init", 0o755, &bin);
    let mut args = run_args.join("\n");
    args.push('\n');
    c.file(ARGS_FILE.trim_start_matches('/'), 0o644, args.as_bytes());
    Ok(c.finish())
}

fn kvm_usable(arch: GuestArch) -> bool {
    arch.is_host() && std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

fn qemu_command(args: &VmArgs, initrd: &Path, kvm: bool) -> Command {
    let arch = args.arch;
    let mut cmd = Command::new(args.qemu.clone().unwrap_or_else(|| PathBuf::from(arch.qemu())));
    match arch {
        GuestArch::Ppc64le => cmd.args(["-M", "pseries", "-cpu", "power9"]),
        GuestArch::Aarch64 => cmd.args(["-M", "virt", "-cpu", "max"]),
        GuestArch::X86_64 => cmd.args(["-cpu", if kvm { "host" } else { "max" }]),
        // The virt board boots the kernel's Image through OpenSBI (Debian's opensbi package);
        // the CPU has the ratified V 1.0 extension at the chosen VLEN.
        GuestArch::Riscv64 => {
            cmd.args(["-M", "virt", "-bios", RISCV_FIRMWARE]).arg("-cpu").arg(format!("rv64,v=true,vext_spec=v1.0,vlen={}", args.vlen.unwrap_or(256)))
        }
    };
    cmd.args(["-accel", if kvm { "kvm" } else { "tcg,thread=multi" }]);
    cmd.args(["-smp", &args.smp.to_string(), "-m", &args.memory]);
    cmd.args(["-nographic", "-no-reboot", "-nic", "none"]);
    cmd.arg("-kernel").arg(&args.kernel).arg("-initrd").arg(initrd);
    let append = format!("console={} quiet panic=-1 {}", arch.guest().console, args.append);
    cmd.args(["-append", append.trim()]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Kills and reaps QEMU when dropped, and removes the temporary directory.
struct Guard {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a VM run ended.
enum End {
    Report(Box<Report>),
    /// `-- triage ...`: the guest narrowed its first finding.
    Triage(Box<TriageReport>),
    /// The test never started: the kernel did not boot (or QEMU did not start).
    NoStart(String),
    /// The test started but no report came back.
    Failed(String),
    /// A report came back but does not parse: something corrupted it on its way (the guest's
    /// own code computes with the registers a kernel bug may corrupt). The raw text is kept.
    Garbled {
        error: String,
        raw: String,
    },
    /// SIGINT/SIGTERM on the host.
    Interrupted,
}

/// `args` without option `name` and its value (`--name VALUE` or `--name=VALUE`).
fn without_option(args: &[String], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == name {
            skip = true;
        } else if !a.starts_with(&format!("{name}=")) {
            out.push(a.clone());
        }
    }
    out
}

pub fn run(args: &VmArgs) -> Result<i32> {
    let triage = args.run_args.first().is_some_and(|a| a == "triage");
    let mut parse = vec!["regtorture".to_string()];
    if !triage {
        parse.push("run".to_string());
    }
    parse.extend(args.run_args.iter().cloned());
    let mut args = args.clone();
    // `triage --emit-c FILE`: the host's file, written from the guest's report.
    let mut emit_c = None;
    // The guest parses the same options; refuse bad ones here, before booting anything.
    match Cli::try_parse_from(&parse) {
        Ok(Cli { command: Some(Sub::Run(r)), .. }) => {
            // `--known-file` is the host's file: the guest gets the ids it lists.
            if r.known_file.is_some() {
                let ids = r.known_ids()?;
                args.run_args = without_option(&args.run_args, "--known-file");
                if !ids.is_empty() {
                    args.run_args.extend(["--known".to_string(), ids.join(",")]);
                }
            }
        }
        Ok(Cli { command: Some(Sub::Triage(t)), .. }) => {
            // The whole triage runs in one boot: its budget and the boot.
            args.timeout = args.timeout.max(t.budget + Duration::from_secs(180));
            emit_c = t.emit_c;
        }
        Ok(_) => return Err(Error::Usage("options after -- must be options of `run`, or `triage` and its options".into())),
        Err(e) => {
            let first = e.render().to_string().lines().next().unwrap_or("").trim_start_matches("error: ").to_string();
            return Err(Error::Usage(format!("options after --: {first}")));
        }
    }
    let args = &args;
    crate::runner::check_json_path(args.out.json.as_deref())?;
    if args.vlen.is_some() && args.arch != GuestArch::Riscv64 {
        return Err(Error::Usage("--vlen sets a riscv64 guest's vector length: use it with --arch riscv64".into()));
    }
    if !args.kernel.is_file() {
        return Err(Error::Usage(format!("--kernel {}: no such file", args.kernel.display())));
    }
    let binary = guest_binary(args)?;
    let dir = std::env::temp_dir().join(format!("regtorture-vm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(Error::io("cannot make a temporary directory"))?;
    let mut guard = Guard { child: None, dir: dir.clone() };
    let initrd = dir.join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&binary, &args.run_args)?).map_err(Error::io("cannot write the initramfs"))?;
    linux::catch_stop_signals().map_err(Error::io("cannot catch SIGINT/SIGTERM"))?;
    let start = Instant::now();
    let mut end = End::NoStart("not started".into());
    // KVM when it is usable; a KVM that QEMU cannot use (nested virtualisation often refuses
    // MSRs) or whose guest does not reach init ([`KVM_BOOT`]) is tried once and then left for
    // TCG.
    for kvm in [true, false] {
        if kvm && !kvm_usable(args.arch) {
            continue;
        }
        end = attempt(args, &initrd, kvm, &mut guard, start);
        match &end {
            End::NoStart(msg) if kvm && msg.to_lowercase().contains("kvm") => {
                if !args.out.quiet {
                    eprintln!("vm: KVM did not work here, using TCG instead");
                }
            }
            _ => break,
        }
    }
    drop(guard);
    finish(args, end, start, emit_c.as_deref())
}

/// How long a KVM guest may take to reach init's first phase line. A KVM boot takes seconds;
/// measured on a nested host where /dev/kvm opened, the guest spun in the host kernel and never
/// printed a line: such a KVM is then left for TCG.
const KVM_BOOT: Duration = Duration::from_secs(30);

fn attempt(args: &VmArgs, initrd: &Path, kvm: bool, guard: &mut Guard, start: Instant) -> End {
    let say = |msg: &str| {
        if !args.out.quiet {
            eprintln!("vm: {msg}");
        }
    };
    say(&format!("booting {} on {} ({}, {} CPUs)", args.kernel.display(), args.arch.qemu(), if kvm { "KVM" } else { "TCG" }, args.smp));
    let mut child = match qemu_command(args, initrd, kvm).spawn() {
        Ok(c) => c,
        Err(e) => return End::NoStart(format!("cannot start {}: {e}", args.arch.qemu())),
    };
    let (tx, rx) = mpsc::channel::<String>();
    for stream in
        [child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)]
            .into_iter()
            .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                if tx.send(String::from_utf8_lossy(&line).trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    if let Some(mut old) = guard.child.replace(child) {
        let _ = old.kill();
        let _ = old.wait();
    }

    let mut console = Console::default();
    let deadline = start + args.timeout;
    let booted_by = Instant::now() + KVM_BOOT;
    loop {
        if linux::STOP_REQUESTED.load(Ordering::Acquire) {
            break End::Interrupted;
        }
        let now = Instant::now();
        if kvm && !console.started && now >= booted_by {
            break End::NoStart(format!(
                "under KVM the guest did not reach init within {} s (a KVM here that opens but does not run guests?)",
                KVM_BOOT.as_secs()
            ));
        }
        if now >= deadline {
            let what = if console.started { "the test hung" } else { "the kernel did not boot" };
            let msg = format!("{what}: no report within {:.0} s", args.timeout.as_secs_f64());
            break if console.started { End::Failed(msg) } else { End::NoStart(msg) };
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(200))) {
            Ok(line) => {
                if let Some(phase) = console.feed(line) {
                    say(&format!("{phase} ({:.1} s)", start.elapsed().as_secs_f64()));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // QEMU closed its output: it has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break console.end(),
        }
    }
}

/// Lines that open a kernel's own report of trouble (an oops, a BUG, a panic, a warning):
/// the console is kept from the first of them on, because its opening lines (what failed,
/// where, the registers) scroll out of the last lines before the panic ends the guest.
pub const OOPS_MARKS: [&str; 10] = [
    "BUG:",
    "Oops",
    "general protection fault",
    "kernel BUG at",
    "Unable to handle kernel",
    "Internal error:",
    "WARNING: CPU:",
    "Kernel panic",
    "watchdog: BUG",
    "rcu: INFO:",
];

/// What `vm` prints before the reason when the kernel failed under the test (a campaign reads
/// a cell's log by it).
pub const FAILED_UNDER_TEST: &str = "the kernel failed under test: ";

/// How many console lines the kernel's report may fill before the rest is cut.
const OOPS_LINES: usize = 150;

/// What the guest's console said so far: the phases, the report between the markers, the
/// kernel's first report of trouble, and the last lines (for a kernel that died).
#[derive(Default)]
struct Console {
    last: VecDeque<String>,
    oops: Vec<String>,
    started: bool,
    json_text: Option<String>,
    in_json: bool,
}

impl Console {
    /// Take one console line; returns the phase it announces, if it does.
    fn feed(&mut self, line: String) -> Option<String> {
        if let Some(p) = line.strip_prefix(MARK_PHASE) {
            self.started = true;
            return Some(p.trim().to_string());
        }
        if line.starts_with(MARK_BEGIN) {
            self.in_json = true;
            self.json_text = Some(String::new());
        } else if line.starts_with(MARK_END) {
            self.in_json = false;
        } else if self.in_json {
            self.json_text.get_or_insert_with(String::new).push_str(&line);
        } else {
            if line.starts_with(MARK_ERROR) {
                self.started = true;
            }
            if (!self.oops.is_empty() || OOPS_MARKS.iter().any(|m| line.contains(m))) && self.oops.len() < OOPS_LINES {
                self.oops.push(line.clone());
            }
            self.last.push_back(line);
            if self.last.len() > 25 {
                self.last.pop_front();
            }
        }
        None
    }

    /// The console lines worth keeping: the kernel's report from its first line on, then the
    /// last lines where the report was cut; the last lines alone where the kernel said nothing.
    fn tail(&self) -> String {
        let last = self.last.iter().cloned().collect::<Vec<_>>().join("\n");
        if self.oops.is_empty() {
            return format!("last console lines:\n{last}");
        }
        let oops = self.oops.join("\n");
        if self.oops.len() < OOPS_LINES {
            // Every line since the report began is in it (the last lines are its end).
            return format!("the kernel's report:\n{oops}");
        }
        format!("the kernel's report (its first {OOPS_LINES} lines):\n{oops}\n[...]\nlast console lines:\n{last}")
    }

    /// How the run ended, once the console closed.
    fn end(self) -> End {
        let tail = self.tail();
        if let Some(text) = self.json_text {
            return match serde_json::from_str::<Report>(&text) {
                Ok(r) => End::Report(Box::new(r)),
                Err(e) => match serde_json::from_str::<TriageReport>(&text) {
                    Ok(t) => End::Triage(Box::new(t)),
                    Err(_) => End::Garbled { error: e.to_string(), raw: text },
                },
            };
        }
        let why = if self.last.iter().chain(&self.oops).any(|l| l.contains("Kernel panic")) {
            "the kernel panicked"
        } else if let Some(err) = self.last.iter().find(|l| l.starts_with(MARK_ERROR)) {
            err.as_str()
        } else {
            "the VM stopped without a report"
        };
        let msg = format!("{why}; {tail}");
        if self.started { End::Failed(msg) } else { End::NoStart(msg) }
    }
}

fn finish(args: &VmArgs, end: End, start: Instant, emit_c: Option<&str>) -> Result<i32> {
    match end {
        End::Report(rep) => {
            if !args.out.quiet {
                eprintln!("vm: verdict after {:.1} s", start.elapsed().as_secs_f64());
            }
            let prefix = rep.selftest.as_ref().map(|st| format!("{}\n", human::selftest_verdict(st))).unwrap_or_default();
            crate::runner::deliver(&rep, &args.out, &prefix)?;
            Ok(rep.exit_code)
        }
        End::Triage(mut rep) => {
            if !args.out.quiet {
                eprintln!("vm: triage ended after {:.1} s", start.elapsed().as_secs_f64());
            }
            if rep.minimal.is_some() {
                let arch = clap::ValueEnum::to_possible_value(&args.arch).map(|v| v.get_name().to_string()).unwrap_or_default();
                rep.vm_command =
                    Some(format!("regtorture vm --arch {arch} --smp {} --kernel {} -- {}", args.smp, args.kernel.display(), rep.run_args.join(" ")));
            }
            // `--emit-c FILE` is the host's file: the guest's triage left it alone.
            if let Some(path) = emit_c {
                let found_on = Some(format!("the kernel {} under QEMU", args.kernel.display()));
                crate::triage::emit_reproducer(&mut rep, args.arch, path, found_on)?;
            }
            let text = crate::triage::render(&rep);
            if args.out.json.as_deref() == Some("-") {
                eprint!("{text}");
            } else {
                say!("{}", text.trim_end());
            }
            if let Some(path) = &args.out.json {
                crate::runner::emit(path, &serde_json::to_string_pretty(&*rep).unwrap_or_default())?;
            }
            Ok(rep.exit_code)
        }
        End::NoStart(msg) => {
            eprintln!("regtorture vm: could not test: {msg}");
            Ok(if args.bisect { EXIT_BISECT_SKIP } else { EXIT_ENVIRONMENT })
        }
        End::Failed(msg) => {
            eprintln!("regtorture vm: {FAILED_UNDER_TEST}{msg}");
            Ok(EXIT_CORRUPTION)
        }
        End::Garbled { error, raw } => {
            say!("regtorture vm: CORRUPTION: the guest's report arrived corrupted ({error}); the raw report is kept");
            let j = serde_json::json!({
                "verdict": "corruption",
                "exit_code": EXIT_CORRUPTION,
                "report_corrupted": true,
                "error": error,
                "raw": raw,
            });
            match args.out.json.as_deref() {
                Some("-") => say!("{j}"),
                Some(path) => std::fs::write(path, format!("{j}\n")).map_err(Error::io(format!("cannot write {path}")))?,
                None => eprintln!("raw report: {raw}"),
            }
            Ok(EXIT_CORRUPTION)
        }
        End::Interrupted => {
            eprintln!("regtorture vm: interrupted; QEMU stopped");
            Ok(if args.bisect { EXIT_BISECT_SKIP } else { EXIT_ENVIRONMENT })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(lines: &[&str]) -> End {
        let mut c = Console::default();
        for l in lines {
            c.feed(l.to_string());
        }
        c.end()
    }

    #[test]
    fn a_crafted_guest_binary_is_refused_cleanly() {
        // A 64-bit LE ELF for ppc64 whose program-header offset is near 2^64.
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        elf.resize(64, 0);
        elf[18] = 21;
        elf[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        elf[54] = 56;
        elf[56] = 0xff;
        elf[57] = 0xff;
        let path = std::env::temp_dir().join(format!("regtorture-crafted-{}", std::process::id()));
        std::fs::write(&path, &elf).unwrap();
        let err = check_elf(&path, GuestArch::Ppc64le).unwrap_err();
        assert!(err.contains("broken program header table"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_report_that_arrives_garbled_is_kept_raw() {
        // A report whose text a corrupted register turned into nonsense on its way out.
        let end = console(&[&format!("{MARK_PHASE} run"), MARK_BEGIN, "{\"schema_version\": 1.5e300, \"verdict\": \"cl", MARK_END]);
        match end {
            End::Garbled { error, raw } => {
                assert!(raw.contains("1.5e300"), "{raw}");
                assert!(!error.is_empty());
            }
            _ => panic!("not read as a garbled report"),
        }
    }

    #[test]
    fn a_guest_that_died_after_starting_failed_and_one_that_never_started_did_not_boot() {
        let started = console(&[&format!("{MARK_PHASE} selftest"), "Kernel panic - not syncing: Attempted to kill init!"]);
        assert!(matches!(started, End::Failed(m) if m.contains("the kernel panicked")));
        let never = console(&["OF stdout device is: /vdevice/vty@71000000", "Kernel panic - not syncing: VFS"]);
        assert!(matches!(never, End::NoStart(_)));
        let words = console(&["REGTORTURE-VM: error regtorture: CORRUPTION: fatal signal 0x000000000000000b"]);
        assert!(matches!(&words, End::Failed(m) if m.contains("last console lines")));
        assert!(matches!(words, End::Failed(m) if m.contains("fatal signal")));
    }

    #[test]
    fn a_kernel_oops_is_kept_from_its_first_line_however_long_the_panic_that_follows() {
        // An oops opens with what failed and where; the panic's stack that follows it is
        // longer than the last lines, so they alone would lose the opening.
        let mut lines = vec![format!("{MARK_PHASE} run"), "[   35.9] random noise".to_string()];
        lines.push("[   36.0] BUG: kernel NULL pointer dereference, address: 0000000000000018".into());
        lines.push("[   36.0] RIP: 0010:try_to_wake_up+0xe9/0x680".into());
        lines.extend((0..60).map(|i| format!("[   36.1]  frame_{i}+0x10/0x20")));
        lines.push("[   36.2] Kernel panic - not syncing: Fatal exception in interrupt".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let End::Failed(m) = console(&refs) else { panic!("not read as a kernel failure") };
        assert!(m.starts_with("the kernel panicked; the kernel's report:"), "{m}");
        assert!(m.contains("BUG: kernel NULL pointer dereference") && m.contains("frame_0+") && m.contains("Fatal exception"), "{m}");
        assert!(!m.contains("random noise"), "{m}");
        // A report longer than the cap keeps its opening and the last lines.
        let mut long = refs.clone();
        let more: Vec<String> = (0..200).map(|i| format!("[   37.0] more_{i}")).collect();
        long.extend(more.iter().map(String::as_str));
        let End::Failed(m) = console(&long) else { panic!("not read as a kernel failure") };
        assert!(m.contains("BUG: kernel NULL pointer") && m.contains("[...]") && m.contains("more_199"), "{m}");
        assert!(m.contains("the kernel panicked"), "{m}");
    }
}
