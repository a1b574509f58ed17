//! The subcommands: turn parsed arguments into a plan, run it, render the report, pick the exit
//! code.

use std::io::Write;
use std::time::Duration;

use crate::arch::{self, linux};
use crate::class::{ClassDesc, ClassId};
use crate::cli::{Cli, Command, ExportArgs, RunArgs, SelftestArgs};
use crate::error::{EXIT_CLEAN, EXIT_CORRUPTION, EXIT_KSFT_SKIP};
use crate::error::{Error, Result};
use crate::report::{human, json, metrics, progress};
use crate::runner::{check_json_path, check_writable, deliver, emit, run_report, select_classes, selftest_for, set_vl};
use crate::schema::Report;
use crate::selftest;
use crate::trigger::{self};
use crate::window::WindowKind;

/// Run the command line; returns the exit code.
/// What a process does before its command line is read: fault forensics on the main thread
/// (a kernel bug can corrupt regtorture in any phase, init of a VM included: a fault is
/// reported, not a silent death), then the two roles that are not commands and never return:
/// init of a `regtorture vm` guest (PID 1 with the run options the host packed; a container's
/// PID 1 has none and runs its command line like any other process), and the fresh copy the
/// execve leak check starts. The returned guard keeps the alternate signal stack.
pub fn early() -> std::io::Result<linux::AltStack> {
    let forensics = linux::protect_thread();
    if crate::vm::init::is_guest() {
        crate::vm::init::main();
    }
    if std::env::args().nth(1).as_deref() == Some(crate::leak::PROBE) {
        crate::leak::probe_main();
    }
    forensics
}

pub fn main_with(cli: Cli) -> Result<i32> {
    match cli.command {
        None => run(&cli.run),
        Some(Command::Run(a)) => run(&a),
        Some(Command::Selftest(a)) => selftest_cmd(&a),
        Some(Command::List) => list(),
        Some(Command::Bench(a)) => crate::bench::run(&a),
        Some(Command::Vm(a)) => crate::vm::run(&a),
        Some(Command::Triage(a)) => triage(&a),
        Some(Command::Generate(a)) => generate(&a.dir),
        Some(Command::ExportC(a)) => export_c(&a),
        Some(Command::Campaign(a)) => crate::campaign::run(&a),
    }
}

/// `export-c`: the setup from the command line, as a standalone C program.
fn export_c(a: &ExportArgs) -> Result<i32> {
    use crate::reproducer;
    let arch = match a.arch.or_else(reproducer::host_arch) {
        Some(arch) => arch,
        None => return Err(Error::Usage(format!("no C backend for this machine ({}): name one with --arch", arch::name()))),
    };
    let mut setup = reproducer::Setup::new(arch, a.classes.clone(), a.windows.clone(), a.triggers.clone());
    setup.threads = a.threads.unwrap_or(0) as usize;
    setup.seconds = a.duration.as_secs_f64().ceil() as u64;
    setup.spin = a.spin;
    setup.kernel = a.found_on.clone();
    setup.finding = a.finding.clone();
    let text = reproducer::emit_c(&setup)?;
    if a.emit_c == "-" {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    } else {
        std::fs::write(&a.emit_c, &text).map_err(Error::io(format!("cannot write the C program to {}", a.emit_c)))?;
        eprintln!("regtorture: wrote {} ({}); build it with {} -O2 -static -pthread", a.emit_c, reproducer::command_line(&setup), reproducer::cross_gcc(arch));
    }
    Ok(EXIT_CLEAN)
}

/// The man pages (regtorture.1 and one per subcommand) and the bash, zsh and fish completions,
/// from the clap definitions, into `dir`/man and `dir`/completions.
fn generate(dir: &std::path::Path) -> Result<i32> {
    use clap::CommandFactory;
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).map_err(Error::io(format!("cannot make {}", d.display())))?;
    }
    let mut cmd = Cli::command();
    let write = |path: std::path::PathBuf, page: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out).map_err(Error::io("cannot render a man page"))?;
        std::fs::write(&path, out).map_err(Error::io(format!("cannot write {}", path.display())))
    };
    write(man.join("regtorture.1"), cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap names are 'static: a few bytes leaked once, for a command that then exits.
        let name: &'static str = Box::leak(format!("regtorture-{}", sub.get_name()).into_boxed_str());
        write(man.join(format!("{name}.1")), sub.clone().name(name))?;
    }
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "regtorture", &completions).map_err(Error::io("cannot write the completions"))?;
    }
    say!("regtorture: man pages in {}, completions in {}", man.display(), completions.display());
    Ok(EXIT_CLEAN)
}

/// `regtorture triage`: progress on standard error, the summary on standard output (standard
/// error when the JSON goes there), the JSON where `--json` says.
fn triage(args: &crate::cli::TriageArgs) -> Result<i32> {
    check_json_path(args.run.out.json.as_deref())?;
    if args.run.out.ktap {
        return Err(Error::Usage("triage has no KTAP output: use --json".into()));
    }
    crate::runner::check_writable("--emit-c", args.emit_c.as_deref())?;
    let mut rep = crate::triage::run(args, &|line| eprintln!("{line}"))?;
    if let Some(path) = &args.emit_c {
        match crate::reproducer::host_arch() {
            Some(arch) => crate::triage::emit_reproducer(&mut rep, arch, path, Some(linux::kernel_release()))?,
            None => rep.reproducer = Some(format!("not written: no C backend for {}", arch::name())),
        }
    }
    let text = crate::triage::render(&rep);
    if args.run.out.json.as_deref() == Some("-") {
        eprint!("{text}");
    } else if args.run.out.quiet {
        say!("{}", text.trim_end().lines().last().unwrap_or(""));
    } else {
        say!("{}", text.trim_end());
    }
    if let Some(path) = &args.run.out.json {
        emit(path, &serde_json::to_string_pretty(&rep).unwrap_or_default())?;
    }
    Ok(rep.exit_code)
}

fn run(args: &RunArgs) -> Result<i32> {
    check_json_path(args.out.json.as_deref())?;
    check_writable("--metrics", args.metrics.as_deref())?;
    let st = if args.selftest { Some(selftest_for(args)?) } else { None };
    // A fault that ends the run: its report goes out here, then the process exits 1. If the
    // report cannot be written, the error and the verdict still reach standard error.
    let rep = match run_report(args, st, &|rep| {
        if let Err(e) = output(rep, args) {
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            eprintln!("regtorture: error: the report of this run could not be written: {e}{cause}");
            eprintln!("{}", human::verdict_line(rep));
        }
    }) {
        Ok(rep) => rep,
        // kselftest's convention for a test runner: nothing testable here is a skip (exit 4),
        // with a KTAP plan of no tests that says why.
        Err(Error::Environment(why)) if args.out.ktap => {
            say!("KTAP version 1\n1..0 # SKIP {}", why.replace('\n', " "));
            eprintln!("regtorture: error: {why}");
            return Ok(EXIT_KSFT_SKIP);
        }
        Err(e) => return Err(e),
    };
    output(&rep, args)?;
    Ok(rep.exit_code)
}

pub fn output(rep: &Report, args: &RunArgs) -> Result<()> {
    deliver(rep, &args.out, "")?;
    if let Some(path) = &args.metrics {
        metrics::write_atomically(path, &metrics::render(rep, metrics::unix_now())).map_err(Error::io(format!("cannot write the metrics to {path}")))?;
    }
    Ok(())
}

fn selftest_cmd(args: &SelftestArgs) -> Result<i32> {
    check_json_path(args.json.as_deref())?;
    set_vl(args.sve_vl, args.sme_vl)?;
    let descs = arch::native().detect();
    let classes: Vec<ClassId> = select_classes(&descs, &args.classes)?.iter().map(ClassDesc::id).collect();
    let classes = if args.classes.is_empty() { Vec::new() } else { classes };
    let line = progress::Line::new(args.quiet, Duration::ZERO);
    line.message("injecting faults through signal frames...");
    let st = selftest::run(&descs, &classes, args.faults, args.seed)?;
    line.finish();
    let text = if args.quiet { String::new() } else { human::selftest(&st) };
    let verdict = human::selftest_verdict(&st);
    if args.json.as_deref() == Some("-") {
        eprint!("{text}");
        eprintln!("{verdict}");
    } else {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        say!("{verdict}");
    }
    if let Some(path) = &args.json {
        emit(path, &json::render(&st))?;
    }
    Ok(if st.passed { EXIT_CLEAN } else { EXIT_CORRUPTION })
}

fn list() -> Result<i32> {
    let descs = arch::native().detect();
    say!("register classes on {} (Linux {}):", arch::name(), linux::kernel_release());
    for d in &descs {
        let regs: Vec<&str> = d.layout.regs.iter().map(|r| r.name.as_str()).collect();
        let span = match (regs.first(), regs.last()) {
            (Some(a), Some(b)) if regs.len() > 1 => format!("{a}..{b}"),
            (Some(a), _) => a.to_string(),
            _ => String::new(),
        };
        match &d.available {
            Ok(()) => say!("  {:<8} available    {} registers ({span})", d.id().name(), regs.len()),
            Err(why) => say!("  {:<8} unavailable  {why}", d.id().name()),
        }
    }
    say!("window kinds:");
    let host = arch::host();
    for w in WindowKind::ALL {
        match w.available(&host) {
            Ok(()) => say!("  {:<12} available    {}", w.name(), w.describe()),
            Err(why) => say!("  {:<12} unavailable  {why}", w.name()),
        }
    }
    say!("known bugs (signature ids, for --known):");
    for id in crate::signature::ids() {
        say!("  {id}");
    }
    say!("triggers:");
    for t in trigger::all().into_iter().chain(trigger::on_request()) {
        match t.available() {
            Ok(()) => say!("  {:<11} available    {}", t.name(), t.describe()),
            Err(why) => say!("  {:<11} unavailable  {why}", t.name()),
        }
    }
    Ok(EXIT_CLEAN)
}

/// For tests and the report: the exit codes.
pub use crate::error::{EXIT_ENVIRONMENT, EXIT_USAGE};
