//! The command line: clap definitions and the parsers of its values.

use std::time::Duration;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::class::ClassId;
use crate::window::WindowKind;

/// Finds operating-system bugs that corrupt user-space floating-point and vector registers.
///
/// With no subcommand, `run` with its defaults: every register class and window kind this
/// machine has, every trigger that works here, for 30 seconds, ending with a verdict line.
/// Exit codes: 0 clean, 1 corruption found, 2 usage error, 3 environment problem.
#[derive(Debug, Parser)]
#[command(
    name = "regtorture",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("REGTORTURE_GIT_REVISION"), ")"),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check registers across windows while triggers drive the kernel (the default).
    Run(RunArgs),
    /// Inject faults through signal frames and require that every one is detected.
    Selftest(SelftestArgs),
    /// List register classes, window kinds and triggers, and why any is unavailable here.
    List,
    /// Measure checks per second against a bare assembly loop, and trigger event rates.
    Bench(BenchArgs),
    /// Write the man pages and shell completions into DIR (for packages: scripts/package).
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Run until the first finding, then narrow triggers, window kinds, classes and threads to
    /// the smallest setup that still reproduces it; print its command line.
    ///
    /// Exit codes: 0 nothing found, 1 a finding was triaged, 2 usage error, 3 environment.
    Triage(TriageArgs),
    /// Boot a kernel under QEMU with regtorture as init: selftest, then run; the same verdict.
    ///
    /// Exit codes as for run; a kernel that does not boot exits 3 (125 with --bisect, for
    /// `git bisect run`); one that panics or hangs once the test started exits 1.
    Vm(VmArgs),
    /// Write a standalone C program that reproduces a setup: the classes' registers loaded,
    /// the windows run with the triggers on, the registers read back and compared.
    ///
    /// The C backend expresses ppc64le fpr, vsx and gpr and x86_64 sse and avx; windows spin,
    /// syscall, yield, sleep (and the scv- ones on ppc64le); triggers io_uring, tgkill, timer.
    /// The program exits 0 clean, 1 on a wrong register or a fault, 3 on a setup error.
    #[command(name = "export-c")]
    ExportC(ExportArgs),
    /// Boot a matrix of architectures x kernels with `regtorture vm`, one report per cell and a
    /// summary table; resumes where it stopped; triages a new finding.
    ///
    /// Kernels are Debian suites (bookworm, trixie, sid, experimental, fetched with
    /// scripts/kernels into target/kernels) or image paths (ARCH=PATH for one architecture).
    /// Writes `DIR/cells/<arch>-<kernel>.json` and `.log`, and `DIR/summary.json` and `summary.md`.
    /// Exit codes: 0 every cell clean (or known), 1 a cell found something, 2 usage error,
    /// 3 a cell gave no result.
    Campaign(CampaignArgs),
}

/// A campaign cell's test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CampaignProfile {
    /// The default run (every class, window and trigger).
    Default,
    /// The io_uring + signals phase: triggers io_uring, timer and tgkill only.
    Signals,
    /// The transition classes of the architecture only.
    Transitions,
}

/// What `campaign --emit` writes instead of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CampaignEmit {
    /// A Kubernetes Indexed Job, one completion per cell.
    Kubernetes,
}

#[derive(Debug, Args, Clone)]
pub struct CampaignArgs {
    /// Guest architectures, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub arch: Vec<GuestArch>,
    /// Kernels, comma-separated: Debian suites, image paths, or ARCH=PATH.
    #[arg(long, value_delimiter = ',', required = true, value_parser = crate::campaign::KernelSpec::parse)]
    pub kernel: Vec<crate::campaign::KernelSpec>,
    /// How long each cell runs (the guest's --duration).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub duration: Duration,
    /// The test of every cell.
    #[arg(long, value_enum, default_value = "default")]
    pub profile: CampaignProfile,
    /// Guests at once, 1 to 16.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub jobs: u32,
    /// Output directory (a campaign already there is resumed).
    #[arg(long, default_value = "campaign")]
    pub out: PathBuf,
    /// Do not triage a cell's new finding.
    #[arg(long)]
    pub no_triage: bool,
    /// Run only cell N (0-based, in the order of the summary: a Kubernetes completion index).
    #[arg(long)]
    pub cell: Option<usize>,
    /// Write the campaign for an engine to run, instead of running it.
    #[arg(long, value_enum)]
    pub emit: Option<CampaignEmit>,
}

/// A guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GuestArch {
    Ppc64le,
    Aarch64,
    #[value(name = "x86_64")]
    X86_64,
    Riscv64,
}

#[derive(Debug, Args, Clone)]
pub struct VmArgs {
    /// Guest architecture.
    #[arg(long)]
    pub arch: GuestArch,
    /// Kernel image (vmlinux for ppc64le, Image/vmlinuz for aarch64, bzImage/vmlinuz for x86_64,
    /// Image (Debian: vmlinux-*, an EFI-stub Image) for riscv64).
    #[arg(long)]
    pub kernel: PathBuf,
    /// riscv64: the guest CPU's vector length VLEN in bits (128 to 1024, a power of two;
    /// default 256).
    #[arg(long, value_parser = parse_vlen)]
    pub vlen: Option<u32>,
    /// Virtual CPUs, 1 to 64.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
    /// Guest memory, as QEMU takes it (512M, 1G).
    #[arg(long, default_value = "1G", value_parser = parse_memory)]
    pub memory: String,
    /// More kernel command-line arguments.
    #[arg(long, default_value = "")]
    pub append: String,
    /// The qemu-system binary (default: qemu-system-ppc64, -aarch64, -x86_64 or -riscv64 on PATH).
    #[arg(long)]
    pub qemu: Option<PathBuf>,
    /// Give up (and stop QEMU) after this long.
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    pub timeout: Duration,
    /// The static regtorture binary to run as init (default: the cross build next to this one).
    #[arg(long)]
    pub guest_binary: Option<PathBuf>,
    /// Exit codes for `git bisect run`: 0 clean, 1 corruption or kernel failure, 125 untestable.
    #[arg(long)]
    pub bisect: bool,
    /// Where the guest's report goes.
    #[command(flatten)]
    pub out: Output,
    /// Options of `run` for the guest, after `--`.
    #[arg(last = true)]
    pub run_args: Vec<String>,
}

/// Where a report goes: the options `run` and `vm` share.
#[derive(Debug, Args, Clone, Default)]
pub struct Output {
    /// Write the JSON report to FILE, or to standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// Print a KTAP report to standard output (the human summary goes to standard error).
    #[arg(long)]
    pub ktap: bool,
    /// No progress line, and only the verdict line of the human summary.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// How long to run: a number with a unit (500ms, 30s, 5m, 1h).
    #[arg(long, value_parser = parse_duration, default_value = "30s", allow_hyphen_values = true)]
    pub duration: Duration,
    /// Checking threads (default: the number of online CPUs), 1 to 512.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub threads: Option<u32>,
    /// Register classes to check, comma-separated (default: all available). See `list`.
    #[arg(long, value_delimiter = ',', value_parser = parse_class)]
    pub classes: Vec<ClassId>,
    /// Window kinds, comma-separated (default: all). See `list`.
    #[arg(long, value_delimiter = ',', value_parser = parse_window)]
    pub windows: Vec<WindowKind>,
    /// Triggers, comma-separated, or `none` (default: all that work here). See `list`.
    #[arg(long, value_delimiter = ',', value_parser = parse_trigger)]
    pub triggers: Vec<String>,
    /// Fail with exit code 3 when one of these triggers cannot run here.
    #[arg(long, value_delimiter = ',', value_parser = parse_trigger)]
    pub require: Vec<String>,
    /// Pattern seed, decimal or 0x-hex (default: from the clock; printed in the report).
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Loop iterations each window spins with the registers live.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub spin: u64,
    /// Stop at the first finding, true or false; a finding that matches a known bug does not
    /// stop the run (see --known), unless --stop-on-known.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub stop_on_first: bool,
    /// With --stop-on-first: stop at a known bug's finding too (what `triage` runs with).
    #[arg(long)]
    pub stop_on_known: bool,
    /// Keep running after corruption is found (same as --stop-on-first=false).
    #[arg(long)]
    pub keep_going: bool,
    /// Where the report goes.
    #[command(flatten)]
    pub out: Output,
    /// Write Prometheus metrics to FILE (text format, atomically: for node_exporter's textfile
    /// collector).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<String>,
    /// Run the selftest first and put it in the report (a failed selftest makes exit code 1).
    #[arg(long)]
    pub selftest: bool,
    /// aarch64: set the SVE vector length in bytes (16 to 256, a multiple of 16) first.
    #[arg(long, value_parser = parse_vl)]
    pub sve_vl: Option<usize>,
    /// aarch64: set the SME streaming vector length in bytes (16 to 256, a multiple of 16)
    /// first; it sizes the ssve and za classes.
    #[arg(long, value_parser = parse_vl)]
    pub sme_vl: Option<usize>,
    /// Record the kernel's events of regtorture's threads (tracefs; needs root) and show each
    /// finding's kernel timeline. Without tracefs it is skipped with the reason. On by default
    /// inside `regtorture vm`.
    #[arg(long, conflicts_with = "no_trace")]
    pub trace: bool,
    /// Inside `regtorture vm`: do not record the kernel's events.
    #[arg(long)]
    pub no_trace: bool,
    /// With --trace: record system call entries and exits too. Every task then takes the
    /// kernel's syscall slow path, which hides bugs of the fast syscall exit.
    #[arg(long)]
    pub trace_syscalls: bool,
    /// With --trace: the trace buffer of each CPU in KiB, 64 to 1048576.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub trace_buffer_kb: u32,
    /// Fresh copies of regtorture to start with execve from a process whose registers hold
    /// pattern values, each checked at its entry point for the initial state (0: none).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub execs: u32,
    /// Cores to have written by children whose registers hold pattern values (one class each,
    /// in turn), each read and compared lane by lane (0: none). Follows the machine's
    /// core_pattern, never changes it: a pipe to a program is a skip with the reason.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub core_dumps: u32,
    /// Checking processes, each with its own identity in the pattern (1 to 16): a register
    /// value of another one is a leak.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub processes: u32,
    /// Which of the `--processes` this one is (set by the first for the others).
    #[arg(long, hide = true)]
    pub process_index: Option<u32>,
    /// Known bugs to acknowledge on this kernel, by signature id, comma-separated (`regtorture
    /// list` names them): a finding that matches one is still reported and counted, but does
    /// not fail the run (verdict "known", exit 0; KTAP marks it XFAIL). A finding that matches
    /// a known bug never ends a --stop-on-first run, acknowledged or not.
    #[arg(long, value_delimiter = ',', value_parser = parse_known)]
    pub known: Vec<String>,
    /// A file of known bugs to acknowledge, as --known: one signature id a line, `#` starts a
    /// comment (a kernel CI's known-issues list).
    #[arg(long, value_name = "FILE")]
    pub known_file: Option<PathBuf>,
}

impl RunArgs {
    /// Every acknowledged known bug: `--known` and the lines of `--known-file`, checked.
    pub fn known_ids(&self) -> crate::error::Result<Vec<String>> {
        let mut ids = self.known.clone();
        if let Some(path) = &self.known_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| crate::error::Error::Usage(format!("--known-file {}: cannot read it: {e}", path.display())))?;
            for (n, line) in text.lines().enumerate() {
                let id = line.split('#').next().unwrap_or("").trim();
                if id.is_empty() {
                    continue;
                }
                let id = parse_known(id).map_err(|e| crate::error::Error::Usage(format!("--known-file {} line {}: {e}", path.display(), n + 1)))?;
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

#[derive(Debug, Args, Clone)]
pub struct TriageArgs {
    /// The configuration to start from (`--duration` bounds its first run).
    #[command(flatten)]
    pub run: RunArgs,
    /// Bound the whole triage: a number with a unit (10m).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub budget: Duration,
    /// Runs per candidate setup (the first that reproduces accepts it), 1 to 100.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// Write the minimal setup as a standalone C program to FILE (see `export-c`), when the C
    /// backend can express it. Inside `regtorture vm`, the host writes it.
    #[arg(long, value_name = "FILE")]
    pub emit_c: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct SelftestArgs {
    /// Classes to test, comma-separated (default: all available).
    #[arg(long, value_delimiter = ',', value_parser = parse_class)]
    pub classes: Vec<ClassId>,
    /// Faults to inject per class, 1 to 100000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub faults: u32,
    /// Seed, decimal or 0x-hex.
    #[arg(long, value_parser = parse_seed, default_value = "1")]
    pub seed: u64,
    /// Write the JSON report to FILE, or to standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// Only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
    /// aarch64: set the SVE vector length in bytes (16 to 256, a multiple of 16) first.
    #[arg(long, value_parser = parse_vl)]
    pub sve_vl: Option<usize>,
    /// aarch64: set the SME streaming vector length in bytes (16 to 256, a multiple of 16)
    /// first; it sizes the ssve and za classes.
    #[arg(long, value_parser = parse_vl)]
    pub sme_vl: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// Target architecture (default: this machine's).
    #[arg(long)]
    pub arch: Option<GuestArch>,
    /// Register classes, comma-separated.
    #[arg(long, required = true, value_delimiter = ',', value_parser = parse_class)]
    pub classes: Vec<ClassId>,
    /// Window kinds, comma-separated.
    #[arg(long, required = true, value_delimiter = ',', value_parser = parse_window)]
    pub windows: Vec<WindowKind>,
    /// Triggers, comma-separated, or `none`.
    #[arg(long, value_delimiter = ',', value_parser = parse_trigger, default_value = "none")]
    pub triggers: Vec<String>,
    /// Checking threads (default: one per CPU the program finds), 1 to 1022.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1022))]
    pub threads: Option<u32>,
    /// How long the program runs before it declares the kernel clean (whole seconds).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub duration: Duration,
    /// Loop iterations each window spins with the registers live.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub spin: u64,
    /// The kernel the finding was made on, for the program's header.
    #[arg(long, value_name = "RELEASE")]
    pub found_on: Option<String>,
    /// What the program reproduces (a finding's title), for the program's header.
    #[arg(long, value_name = "TEXT")]
    pub finding: Option<String>,
    /// Where to write the C program, or `-` for standard output.
    #[arg(long, value_name = "FILE|-")]
    pub emit_c: String,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// Where to write man/ and completions/.
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Length of each measurement.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub each: Duration,
    /// Only the VM benchmark: boot each kernel found in `DIR/<arch>/` (as scripts/setup lays
    /// them out: ppc64el, arm64, amd64) and time boot to verdict.
    #[arg(long, value_name = "DIR")]
    pub vm: Option<PathBuf>,
    /// Only the transition-window measurement (part 5).
    #[arg(long)]
    pub transitions: bool,
}

/// "500ms", "30s", "5m", "1h", or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: use a number with a unit, like 500ms, 30s, 5m or 1h");
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86400.0 {
        return Err(format!("'{s}' is out of range: a duration must be more than 0 and at most 7 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_class(s: &str) -> Result<ClassId, String> {
    ClassId::from_name(s.trim()).ok_or_else(|| {
        let all: Vec<_> = ClassId::ALL.iter().map(|c| c.name()).collect();
        format!("unknown register class '{s}': one of {}", all.join(", "))
    })
}

fn parse_window(s: &str) -> Result<WindowKind, String> {
    WindowKind::from_name(s.trim()).ok_or_else(|| {
        let all: Vec<_> = WindowKind::ALL.iter().map(|w| w.name()).collect();
        format!("unknown window kind '{s}': one of {}", all.join(", "))
    })
}

fn parse_trigger(s: &str) -> Result<String, String> {
    let s = s.trim();
    let names = crate::trigger::names();
    if s == "none" || s == "all" || names.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown trigger '{s}': one of {}, or none / all", names.join(", ")))
    }
}

fn parse_known(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ids = crate::signature::ids();
    if ids.contains(&s) { Ok(s.to_string()) } else { Err(format!("unknown known-bug id '{s}': one of {}", ids.join(", "))) }
}

fn parse_memory(s: &str) -> Result<String, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    match (num.parse::<u64>(), unit) {
        (Ok(n), "M" | "m") if (128..=1 << 20).contains(&n) => Ok(format!("{n}M")),
        (Ok(n), "G" | "g") if (1..=1024).contains(&n) => Ok(format!("{n}G")),
        _ => Err(format!("'{s}' is not a memory size: use megabytes or gigabytes, like 512M or 2G (at least 128M)")),
    }
}

fn parse_vl(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (16..=256).contains(&n) && n % 16 == 0 => Ok(n),
        _ => Err(format!("'{s}' is not an SVE vector length: use bytes, a multiple of 16 from 16 to 256")),
    }
}

fn parse_vlen(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (128..=1024).contains(&n) && n.is_power_of_two() => Ok(n),
        _ => Err(format!("'{s}' is not a RISC-V vector length: use bits, a power of two from 128 to 1024")),
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a seed: use a decimal or 0x-hex number below 2^64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "5x", "-3s", "0s", "1e9h", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds() {
        assert_eq!(parse_seed("0x10"), Ok(16));
        assert_eq!(parse_seed("10"), Ok(10));
        assert!(parse_seed("0xzz").is_err());
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
