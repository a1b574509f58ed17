//! `regtorture campaign`: a matrix of guest architectures × kernels, each cell one boot of
//! `regtorture vm` (this binary, as a child process) running the default test or a profile.
//!
//! Each cell writes its JSON report (`cells/<id>.json`) and its console (`cells/<id>.log`)
//! into the output directory; a cell whose report is there already is not run again, so an
//! interrupted campaign resumes where it stopped. A cell that found something no known-bug
//! signature names is triaged in the same kind of boot (`vm ... -- triage`), with the C
//! reproducer next to it where the C backend expresses the architecture. After every cell the
//! summary is written anew (`summary.json`, `summary.md`): verdict, checks, trigger events,
//! time to the first finding, and the known bug or "new". Up to `--jobs` guests run at once.
//!
//! Past one machine, `--emit kubernetes` writes the same matrix as an Indexed Job, whose
//! completion index is the cell (`--cell`): the cluster schedules, this module only runs one
//! cell per pod. Kernels given by Debian suite are fetched with the repository's
//! `scripts/kernels` (a private apt state; the machine's own apt configuration is untouched).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::class::ClassId;
use crate::cli::{CampaignArgs, CampaignProfile, GuestArch};
use crate::error::{EXIT_CLEAN, EXIT_CORRUPTION, Error, Result};
use crate::reproducer::{arch_name, classes_for};

/// The Debian suites a kernel may be named by (scripts/kernels takes the same names).
pub const SUITES: [&str; 6] = ["bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid", "experimental"];

/// Where a cell's kernel comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSpec {
    /// A Debian suite, resolved per architecture.
    Suite(String),
    /// An image for every architecture of the campaign (`PATH`) or for one (`ARCH=PATH`).
    Path { arch: Option<GuestArch>, path: PathBuf },
}

impl KernelSpec {
    /// `sid`, `/boot/vmlinuz`, or `riscv64=target/kernels/riscv64/vmlinux-6.12`.
    pub fn parse(s: &str) -> std::result::Result<KernelSpec, String> {
        let s = s.trim();
        if SUITES.contains(&s) {
            return Ok(KernelSpec::Suite(s.to_string()));
        }
        if let Some((a, p)) = s.split_once('=') {
            let arch = <GuestArch as clap::ValueEnum>::from_str(a, true)
                .map_err(|_| format!("'{a}' in '{s}' is no guest architecture: ppc64le, aarch64, x86_64 or riscv64"))?;
            return Ok(KernelSpec::Path { arch: Some(arch), path: PathBuf::from(p) });
        }
        if s.contains('/') || Path::new(s).exists() {
            return Ok(KernelSpec::Path { arch: None, path: PathBuf::from(s) });
        }
        Err(format!("'{s}' is neither a Debian suite ({}) nor a kernel image path (ARCH=PATH for one architecture)", SUITES.join(", ")))
    }

    /// The cell label: the suite, or the image's file name.
    fn label(&self) -> String {
        match self {
            KernelSpec::Suite(s) => s.clone(),
            KernelSpec::Path { path, .. } => path.file_name().map_or_else(|| "kernel".into(), |n| n.to_string_lossy().into_owned()),
        }
    }
}

/// One cell of the matrix.
#[derive(Clone, Debug)]
pub struct Cell {
    pub index: usize,
    pub arch: GuestArch,
    pub kernel: KernelSpec,
    /// `<arch>-<label>`, the name of its files.
    pub id: String,
}

/// The cells, architectures outside, kernels inside, in the order given; an `ARCH=PATH` kernel
/// only for its architecture.
pub fn cells(archs: &[GuestArch], kernels: &[KernelSpec]) -> Vec<Cell> {
    let mut out = Vec::new();
    for &arch in archs {
        for k in kernels {
            if let KernelSpec::Path { arch: Some(only), .. } = k {
                if *only != arch {
                    continue;
                }
            }
            let label: String = k.label().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
            out.push(Cell { index: out.len(), arch, kernel: k.clone(), id: format!("{}-{label}", arch_name(arch)) });
        }
    }
    out
}

/// Debian's name of the architecture (scripts/kernels, target/kernels/).
fn debian_arch(a: GuestArch) -> &'static str {
    match a {
        GuestArch::Ppc64le => "ppc64el",
        GuestArch::Aarch64 => "arm64",
        GuestArch::X86_64 => "amd64",
        GuestArch::Riscv64 => "riscv64",
    }
}

/// The `run` options of a profile on `arch`, or why the profile has nothing to run there.
pub fn profile_args(p: CampaignProfile, arch: GuestArch) -> std::result::Result<Vec<String>, String> {
    Ok(match p {
        CampaignProfile::Default => vec![],
        CampaignProfile::Signals => ["--triggers", "io_uring,timer,tgkill"].map(String::from).to_vec(),
        CampaignProfile::Transitions => {
            let std_arch = match arch {
                GuestArch::Ppc64le => "powerpc64",
                a => arch_name(a),
            };
            let t: Vec<&str> = ClassId::ALL.iter().filter(|c| c.is_transition() && c.archs().contains(&std_arch)).map(|c| c.name()).collect();
            if t.is_empty() {
                return Err(format!("{} has no transition class", arch_name(arch)));
            }
            vec!["--classes".into(), t.join(",")]
        }
    })
}

/// The image of `cell`: its path, or the suite's kernel in target/kernels (fetched with
/// scripts/kernels when it is not there yet).
fn resolve(cell: &Cell) -> Result<PathBuf> {
    let suite = match &cell.kernel {
        KernelSpec::Path { path, .. } if path.is_file() => return Ok(path.clone()),
        KernelSpec::Path { path, .. } => return Err(Error::Usage(format!("no kernel image at {}", path.display()))),
        KernelSpec::Suite(s) => s,
    };
    let deb = debian_arch(cell.arch);
    let image = |d: PathBuf| {
        std::fs::read_dir(d).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinu")))
    };
    if let Some(p) = image(PathBuf::from(format!("target/kernels/{deb}-{suite}"))) {
        return Ok(p);
    }
    // scripts/setup's own kernel of the architecture (target/kernels/<arch>/): bookworm's when
    // its name has no "+debNN" tag (6.1.0-57-arm64), trixie's when the tag is deb13.
    if let Some(p) = image(PathBuf::from(format!("target/kernels/{deb}"))) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if (suite == "bookworm" && !name.contains("+deb")) || (suite == "trixie" && name.contains("+deb13")) {
            return Ok(p);
        }
    }
    let script = Path::new("scripts/kernels");
    if !script.is_file() {
        return Err(Error::Environment(format!(
            "no {deb} kernel of {suite} in target/kernels, and no scripts/kernels here to fetch one: run the campaign from the repository, or name the image as {}=PATH",
            arch_name(cell.arch)
        )));
    }
    let out = Command::new("bash").arg(script).args([suite.as_str(), deb]).output().map_err(Error::io("cannot run scripts/kernels"))?;
    let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
    if !out.status.success() || path.is_empty() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Environment(format!("scripts/kernels {suite} {deb} failed: {}", why.trim())));
    }
    Ok(PathBuf::from(path))
}

/// What the summary says of one cell.
fn summarize(cell: &Cell, kernel: Option<&Path>, exit: Option<i32>, report: Option<&Value>, triage: Option<Value>, note: &str) -> Value {
    let mut row = json!({
        "cell": cell.index, "id": cell.id, "arch": arch_name(cell.arch), "kernel": cell.kernel.label(),
        "image": kernel.map(|k| k.display().to_string()), "exit_code": exit, "note": note,
    });
    let Some(r) = report else {
        row["verdict"] = json!("error");
        return row;
    };
    let arr = |k: &str| r[k].as_array().cloned().unwrap_or_default();
    // The leak checks' findings: execve and process leaks, lanes not initial, core dumps.
    let leaks: Vec<Value> = ["leaks", "not_initial", "core"].iter().flat_map(|k| r["leaks"][k].as_array().cloned().unwrap_or_default()).collect();
    let mut known: Vec<String> = arr("known_findings").iter().filter_map(|k| k["id"].as_str().map(String::from)).collect();
    let mut new = 0;
    for f in arr("mismatches").iter().chain(leaks.iter()).chain(arr("faults").iter()) {
        match f["signature"]["id"].as_str() {
            Some(id) => known.push(id.to_string()),
            None => new += 1,
        }
    }
    known.sort();
    known.dedup();
    let first = arr("mismatches")
        .iter()
        .chain(arr("faults").iter())
        .filter_map(|f| f["elapsed_s"].as_f64())
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))));
    row["verdict"] = r["verdict"].clone();
    row["kernel_release"] = r["machine"]["kernel"].clone();
    row["checks"] = r["total_checks"].clone();
    row["elapsed_s"] = r["elapsed_s"].clone();
    row["trigger_events"] = json!(arr("triggers").iter().filter_map(|t| t["events"].as_u64()).sum::<u64>());
    row["first_finding_s"] = json!(first);
    row["known"] = json!(known);
    row["new"] = json!(new);
    if let Some(t) = triage {
        row["triage"] = t;
    }
    row
}

/// What a cell's `vm` log says of a kernel that failed under the test (panicked, oopsed, hung
/// after the test started): why, the kernel's first line of trouble and where it was (RIP, pc,
/// NIP, epc); `None` for a log that says something else (a kernel that did not boot is an
/// environment problem, not the kernel failing under the test).
fn kernel_failure(log: &str) -> Option<String> {
    use crate::vm::FAILED_UNDER_TEST as FAILED;
    let at = log.find(FAILED)? + FAILED.len();
    let rest = &log[at..];
    let why = rest.split([';', '\n']).next().unwrap_or("").trim();
    // A console line without its "[   36.094821] " timestamp.
    let bare = |l: &str| match l.trim_start().strip_prefix('[').and_then(|x| x.split_once("] ")) {
        Some((_, t)) => t.trim().to_string(),
        None => l.trim().to_string(),
    };
    let lines: Vec<String> = rest.lines().skip(1).map(bare).collect();
    let first = lines.iter().find(|l| crate::vm::OOPS_MARKS.iter().any(|m| l.contains(m)) && !l.starts_with("Kernel panic"));
    let place = lines.iter().find(|l| ["RIP:", "pc :", "NIP ", "NIP:", "epc :"].iter().any(|m| l.starts_with(m)));
    let mut s = why.to_string();
    for part in [first, place].into_iter().flatten() {
        s.push_str(": ");
        s.push_str(part);
    }
    Some(s)
}

/// Whether a cell's findings include one no known-bug signature names.
fn has_new(row: &Value) -> bool {
    row["new"].as_u64().unwrap_or(0) > 0
}

/// The markdown table of the summary rows.
pub fn markdown(rows: &[Value]) -> String {
    let mut s = String::from(
        "| cell | arch | kernel | verdict | checks | trigger events | first finding | known bug / new | reproducer |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let known = r["known"].as_array().map(|k| k.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        let what = match (known.is_empty(), r["new"].as_u64().unwrap_or(0)) {
            (true, 0) => "-".to_string(),
            (false, 0) => known,
            (true, n) => format!("new ({n})"),
            (false, n) => format!("{known}; new ({n})"),
        };
        let first = r["first_finding_s"].as_f64().map_or("-".to_string(), |t| format!("{t:.2} s"));
        let repro =
            r["triage"]["reproducer"].as_str().map(String::from).or_else(|| r["triage"]["note"].as_str().map(String::from)).unwrap_or_else(|| "-".into());
        let kernel = match r["kernel_release"].as_str() {
            Some(rel) => format!("{} ({rel})", r["kernel"].as_str().unwrap_or("")),
            None => r["kernel"].as_str().unwrap_or("").to_string(),
        };
        let verdict = match r["note"].as_str() {
            // One line in a cell of the table: a multi-line error keeps its last line.
            Some(n) if !n.is_empty() => format!("{} ({})", r["verdict"].as_str().unwrap_or("?"), cell_text(n)),
            _ => r["verdict"].as_str().unwrap_or("?").to_string(),
        };
        s += &format!(
            "| {} | {} | {kernel} | {verdict} | {} | {} | {first} | {what} | {repro} |\n",
            r["cell"],
            r["arch"].as_str().unwrap_or(""),
            r["checks"].as_u64().map_or("-".to_string(), |c| c.to_string()),
            r["trigger_events"].as_u64().map_or("-".to_string(), |c| c.to_string()),
        );
    }
    s
}

/// `s` as one markdown table cell: its last non-empty line, with `|` escaped.
fn cell_text(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().replace('|', "\\|")
}

fn write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(Error::io(format!("cannot write {}", path.display())))
}

/// A report already in `cells/`, if it is whole (a verdict).
fn existing(path: &Path) -> Option<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["verdict"].is_string().then_some(v)
}

/// One `regtorture vm` boot: its exit code.
fn boot(exe: &Path, cell: &Cell, kernel: &Path, timeout: Duration, json: &Path, log: &Path, run_args: &[String]) -> Result<Option<i32>> {
    let log = std::fs::File::create(log).map_err(Error::io(format!("cannot create {}", log.display())))?;
    let mut child = Command::new(exe)
        .args(["vm", "--arch", arch_name(cell.arch), "--quiet", "--timeout", &format!("{}s", timeout.as_secs())])
        .arg("--kernel")
        .arg(kernel)
        .arg("--json")
        .arg(json)
        .arg("--")
        .args(run_args)
        .stdout(log.try_clone().map_err(Error::io("cannot share the log"))?)
        .stderr(log)
        .spawn()
        .map_err(Error::io("cannot run regtorture vm"))?;
    // Ctrl-C or SIGTERM to the campaign alone (a service manager's stop) reaches the guest too:
    // `vm` takes SIGTERM as its own stop, kills QEMU and ends.
    let mut asked = false;
    loop {
        if let Some(status) = child.try_wait().map_err(Error::io("cannot wait for regtorture vm"))? {
            return Ok(status.code());
        }
        if !asked && stopping() {
            crate::arch::linux::terminate(child.id() as i32);
            asked = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether SIGINT or SIGTERM asked the campaign to stop.
fn stopping() -> bool {
    crate::arch::linux::STOP_REQUESTED.load(Ordering::Acquire)
}

/// Run (or resume) one cell; its summary row.
fn run_cell(a: &CampaignArgs, exe: &Path, dir: &Path, cell: &Cell, say: &(dyn Fn(String) + Sync)) -> Value {
    let json = dir.join(format!("{}.json", cell.id));
    if let Some(r) = existing(&json) {
        say(format!("campaign: cell {} {}: {} (resumed)", cell.index, cell.id, r["verdict"].as_str().unwrap_or("?")));
        let triage = existing(&dir.join(format!("{}-triage.json", cell.id))).map(|t| triage_row(dir, cell, Some(&t), None));
        return summarize(cell, None, r["exit_code"].as_i64().map(|c| c as i32), Some(&r), triage, "resumed");
    }
    let args = match profile_args(a.profile, cell.arch) {
        Ok(x) => x,
        Err(why) => return summarize(cell, None, None, None, None, &format!("skipped: {why}")),
    };
    let kernel = match resolve(cell) {
        Ok(k) => k,
        Err(e) => return summarize(cell, None, None, None, None, &e.to_string()),
    };
    let mut run_args = vec!["--duration".to_string(), format!("{}s", a.duration.as_secs_f64())];
    run_args.extend(args);
    let timeout = a.duration * 3 + Duration::from_secs(600);
    say(format!("campaign: cell {} {}: booting {} for {:.0} s", cell.index, cell.id, kernel.display(), a.duration.as_secs_f64()));
    let exit = match boot(exe, cell, &kernel, timeout, &json, &dir.join(format!("{}.log", cell.id)), &run_args) {
        Ok(c) => c,
        Err(e) => return summarize(cell, Some(&kernel), None, None, None, &e.to_string()),
    };
    let Some(report) = existing(&json) else {
        let log = dir.join(format!("{}.log", cell.id));
        if let Some(what) = std::fs::read_to_string(&log).ok().as_deref().and_then(kernel_failure) {
            // The kernel died under the test: a finding of the cell, not a missing result.
            say(format!("campaign: cell {} {}: kernel-failed: {what}", cell.index, cell.id));
            let mut row = summarize(cell, Some(&kernel), exit, None, None, &format!("{what}; see {}.log", cell.id));
            row["verdict"] = json!("kernel-failed");
            return row;
        }
        return summarize(cell, Some(&kernel), exit, None, None, &format!("no report (exit {exit:?}): see {}.log", cell.id));
    };
    let mut row = summarize(cell, Some(&kernel), exit, Some(&report), None, "");
    say(format!("campaign: cell {} {}: {}", cell.index, cell.id, report["verdict"].as_str().unwrap_or("?")));
    if has_new(&row) && !a.no_triage && !stopping() {
        say(format!("campaign: cell {} {}: triage", cell.index, cell.id));
        row["triage"] = triage_cell(exe, dir, cell, &kernel, a.duration);
    }
    row
}

/// Triage a cell's new finding in a boot of the same kernel; the C reproducer where the C
/// backend has the architecture.
fn triage_cell(exe: &Path, dir: &Path, cell: &Cell, kernel: &Path, each: Duration) -> Value {
    let json = dir.join(format!("{}-triage.json", cell.id));
    let c = dir.join(format!("{}-repro.c", cell.id));
    let mut args = vec!["triage".to_string(), "--duration".into(), format!("{}s", each.as_secs_f64().max(30.0))];
    if !classes_for(cell.arch).is_empty() {
        args.extend(["--emit-c".to_string(), c.display().to_string()]);
    }
    let exit = boot(exe, cell, kernel, each * 20 + Duration::from_secs(900), &json, &dir.join(format!("{}-triage.log", cell.id)), &args);
    let exit = exit.ok().flatten();
    triage_row(dir, cell, existing(&json).as_ref(), Some(exit))
}

fn triage_row(dir: &Path, cell: &Cell, report: Option<&Value>, exit: Option<Option<i32>>) -> Value {
    let c = dir.join(format!("{}-repro.c", cell.id));
    let mut t = json!({ "report": format!("{}-triage.json", cell.id), "exit_code": exit.flatten() });
    if let Some(r) = report {
        t["command"] = r["triage"]["command"].clone();
    }
    if c.is_file() {
        t["reproducer"] = json!(format!("{}-repro.c", cell.id));
    } else if classes_for(cell.arch).is_empty() {
        t["note"] = json!(format!("triaged; the C backend has no {}", arch_name(cell.arch)));
    }
    t
}

/// `regtorture campaign`.
pub fn run(a: &CampaignArgs) -> Result<i32> {
    if a.arch.is_empty() || a.kernel.is_empty() {
        return Err(Error::Usage("a campaign needs --arch and --kernel (Debian suites or image paths)".into()));
    }
    let all = cells(&a.arch, &a.kernel);
    if all.is_empty() {
        return Err(Error::Usage("no cell: every --kernel ARCH=PATH names an architecture not in --arch".into()));
    }
    if let Some(emit) = a.emit {
        let crate::cli::CampaignEmit::Kubernetes = emit;
        print!("{}", kubernetes(a, &all));
        return Ok(EXIT_CLEAN);
    }
    let run: Vec<Cell> = match a.cell {
        Some(i) => vec![all.get(i).cloned().ok_or_else(|| Error::Usage(format!("--cell {i}: the campaign has cells 0 to {}", all.len() - 1)))?],
        None => all.clone(),
    };
    let dir = a.out.join("cells");
    crate::arch::linux::catch_stop_signals().map_err(Error::io("cannot catch SIGINT/SIGTERM"))?;
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("cannot create {}", dir.display())))?;
    let exe = std::env::current_exe().map_err(Error::io("cannot find this executable"))?;
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Value>>> = Mutex::new(vec![None; run.len()]);
    let say = |s: String| eprintln!("{s}");
    let publish = |rows: &[Option<Value>]| -> Result<()> {
        let done: Vec<Value> = rows.iter().flatten().cloned().collect();
        let name = |ext: &str| match a.cell {
            Some(i) => a.out.join(format!("summary-{i}.{ext}")),
            None => a.out.join(format!("summary.{ext}")),
        };
        write(&name("json"), &serde_json::to_string_pretty(&json!({ "cells": done })).expect("json"))?;
        write(&name("md"), &markdown(&done))
    };
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..(a.jobs as usize).min(run.len()) {
            s.spawn(|| {
                loop {
                    if stopping() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cell) = run.get(i) else { break };
                    let mut row = run_cell(a, &exe, &dir, cell, &say);
                    if stopping() && row["verdict"] == "error" {
                        row["note"] = json!("interrupted: run the campaign again to resume it");
                    }
                    let mut r = rows.lock().unwrap_or_else(|e| e.into_inner());
                    r[i] = Some(row);
                    if let Err(e) = publish(&r) {
                        *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let rows: Vec<Value> = rows.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect();
    print!("{}", markdown(&rows));
    let errors = rows.iter().filter(|r| r["verdict"] == "error").count();
    let found = rows.iter().filter(|r| !matches!(r["verdict"].as_str(), Some("clean") | Some("known") | Some("error"))).count();
    if stopping() {
        eprintln!("campaign: interrupted after {} of {} cells; run it again to resume", rows.len(), run.len());
    }
    eprintln!(
        "campaign: {} cells: {} clean or known, {found} with findings, {errors} without a result; summary in {}",
        rows.len(),
        rows.len() - found - errors,
        a.out.display()
    );
    Ok(if found > 0 {
        EXIT_CORRUPTION
    } else if errors > 0 {
        crate::error::EXIT_ENVIRONMENT
    } else {
        EXIT_CLEAN
    })
}

/// The campaign as a Kubernetes Indexed Job: one completion per cell, `--jobs` at once; the
/// image holds regtorture, its cross builds and QEMU; the kernels come from a read-only volume
/// (the host's target/kernels, mounted at /target/kernels: suite cells find their images
/// there), the reports go to another (`summary-<cell>.json` and `cells/` per index).
pub fn kubernetes(a: &CampaignArgs, cells: &[Cell]) -> String {
    let kernel_arg = |k: &KernelSpec| match k {
        KernelSpec::Suite(s) => s.clone(),
        KernelSpec::Path { arch: Some(ar), path } => format!("{}={}", arch_name(*ar), path.display()),
        KernelSpec::Path { arch: None, path } => path.display().to_string(),
    };
    let archs: Vec<&str> = a.arch.iter().map(|x| arch_name(*x)).collect();
    let kernels: Vec<String> = a.kernel.iter().map(kernel_arg).collect();
    let profile = <CampaignProfile as clap::ValueEnum>::to_possible_value(&a.profile).map_or("default".to_string(), |v| v.get_name().to_string());
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let args: Vec<String> = [
        "campaign",
        "--arch",
        &archs.join(","),
        "--kernel",
        &kernels.join(","),
        "--duration",
        &format!("{}s", a.duration.as_secs_f64()),
        "--profile",
        &profile,
        "--out",
        "/reports",
        "--cell",
        "$(CELL)",
    ]
    .iter()
    .map(|s| quote(s))
    .collect();
    let ids: Vec<String> = cells.iter().map(|c| format!("#   {}: {}", c.index, c.id)).collect();
    format!(
        r#"# regtorture campaign: {n} cells, one per completion index, {jobs} at once (docs/fleet.md).
# Cells:
{ids}
# Kernels are read from the volume "kernels", mounted at /target/kernels and laid out as the
# repository's target/kernels (the working directory is /, so a suite cell takes
# /target/kernels/<debian-arch>-<suite>/vmlinu*); reports are written to the volume "reports"
# (cells/<id>.json, summary-<index>.json). The image holds /regtorture, its static cross builds
# next to it (/regtorture-<target triple>) and qemu-system-*.
apiVersion: batch/v1
kind: Job
metadata:
  name: regtorture-campaign
  labels:
    app.kubernetes.io/name: regtorture-campaign
spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {jobs}
  backoffLimitPerIndex: 1
  template:
    metadata:
      labels:
        app.kubernetes.io/name: regtorture-campaign
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        fsGroup: 65534
      containers:
        - name: cell
          image: regtorture-campaign:latest
          workingDir: /
          env:
            - name: CELL
              valueFrom:
                fieldRef:
                  fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
          command: ["/regtorture"]
          args: [{args}]
          resources:
            requests:
              cpu: "2"
              memory: 2Gi
            limits:
              memory: 4Gi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: kernels
              mountPath: /target/kernels
              readOnly: true
            - name: reports
              mountPath: /reports
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: kernels
          persistentVolumeClaim:
            claimName: regtorture-kernels
            readOnly: true
        - name: reports
          persistentVolumeClaim:
            claimName: regtorture-reports
        - name: tmp
          emptyDir: {{}}
"#,
        n = cells.len(),
        jobs = (a.jobs as usize).min(cells.len()),
        ids = ids.join("\n"),
        args = args.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_parse_as_suites_or_paths() {
        assert_eq!(KernelSpec::parse("sid"), Ok(KernelSpec::Suite("sid".into())));
        assert_eq!(KernelSpec::parse("riscv64=/k/Image"), Ok(KernelSpec::Path { arch: Some(GuestArch::Riscv64), path: "/k/Image".into() }));
        assert_eq!(KernelSpec::parse("/boot/vmlinuz"), Ok(KernelSpec::Path { arch: None, path: "/boot/vmlinuz".into() }));
        assert!(KernelSpec::parse("buster").unwrap_err().contains("neither a Debian suite"));
        assert!(KernelSpec::parse("mips=/k").unwrap_err().contains("no guest architecture"));
    }

    /// Architectures outside, kernels inside; an ARCH=PATH kernel only for its architecture.
    #[test]
    fn the_matrix_is_archs_by_kernels() {
        let k = [KernelSpec::parse("sid").unwrap(), KernelSpec::parse("riscv64=/k/vmlinux-6.12").unwrap()];
        let c = cells(&[GuestArch::Aarch64, GuestArch::Riscv64], &k);
        let ids: Vec<_> = c.iter().map(|c| (c.index, c.id.as_str())).collect();
        assert_eq!(ids, [(0, "aarch64-sid"), (1, "riscv64-sid"), (2, "riscv64-vmlinux-6.12")]);
    }

    #[test]
    fn profiles_name_the_architectures_transitions() {
        assert_eq!(profile_args(CampaignProfile::Default, GuestArch::Riscv64), Ok(vec![]));
        let t = profile_args(CampaignProfile::Transitions, GuestArch::Ppc64le).unwrap();
        assert_eq!(t, ["--classes", "fp-vmx-vsx"]);
        let a = profile_args(CampaignProfile::Transitions, GuestArch::Aarch64).unwrap();
        assert!(a[1].contains("neon-sve") && a[1].contains("sve-ssve"), "{a:?}");
        assert!(profile_args(CampaignProfile::Transitions, GuestArch::Riscv64).unwrap_err().contains("no transition class"));
    }

    /// A report with a known leak and a mismatch no signature names: both counted, the
    /// earliest finding's time kept, the row in the table.
    #[test]
    fn a_cells_summary_reads_its_report() {
        let cell = &cells(&[GuestArch::Riscv64], &[KernelSpec::Suite("sid".into())])[0];
        let r = json!({
            "verdict": "corruption", "total_checks": 1234, "elapsed_s": 10.0, "machine": { "kernel": "7.2.13" },
            "triggers": [{ "events": 5 }, { "events": 7 }],
            "mismatches": [{ "elapsed_s": 3.5, "signature": null }, { "elapsed_s": 1.25, "signature": null }],
            "leaks": { "leaks": [{ "signature": { "id": "riscv-execve-gpr" } }], "core": [] },
            "faults": [], "known_findings": [],
        });
        let row = summarize(cell, None, Some(1), Some(&r), None, "");
        assert_eq!((row["checks"].as_u64(), row["trigger_events"].as_u64(), row["first_finding_s"].as_f64()), (Some(1234), Some(12), Some(1.25)));
        assert_eq!((row["known"].clone(), row["new"].as_u64()), (json!(["riscv-execve-gpr"]), Some(2)));
        assert!(has_new(&row));
        let md = markdown(&[row]);
        assert!(md.contains("| 0 | riscv64 | sid (7.2.13) | corruption | 1234 | 12 | 1.25 s | riscv-execve-gpr; new (2) | - |"), "{md}");
        // A cell without a result keeps one line of its error.
        let err = summarize(cell, None, None, None, None, "scripts/kernels failed:\nW: a | b\nE: 404  Not Found\n");
        assert!(markdown(&[err]).contains("| error (E: 404  Not Found) |"), "{}", markdown(&[]));
    }

    /// A guest whose kernel panicked under the test: the cell says why, the kernel's first
    /// line of trouble and where; a kernel that never booted is not a kernel failure.
    #[test]
    fn a_kernel_that_died_under_the_test_is_named_from_the_cells_log() {
        let log = "regtorture vm: the kernel failed under test: the kernel panicked; the kernel's report:\n\
            [   36.0] BUG: kernel NULL pointer dereference, address: 0000000000000018\n\
            [   36.0] #PF: supervisor read access in kernel mode\n\
            [   36.0] RIP: 0010:try_to_wake_up+0xe9/0x680\n\
            [   36.1] Kernel panic - not syncing: Fatal exception in interrupt\n";
        assert_eq!(
            kernel_failure(log).as_deref(),
            Some("the kernel panicked: BUG: kernel NULL pointer dereference, address: 0000000000000018: RIP: 0010:try_to_wake_up+0xe9/0x680")
        );
        let hung = "regtorture vm: the kernel failed under test: the test hung: no report within 1800 s\n";
        assert_eq!(kernel_failure(hung).as_deref(), Some("the test hung: no report within 1800 s"));
        assert_eq!(kernel_failure("regtorture vm: the kernel did not boot: no report within 60 s\n"), None);
    }
}
