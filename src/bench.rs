//! `regtorture bench`: what the checking costs, and what the triggers deliver, measured here.
//!
//! 1. Per class, one thread, zero-spin windows: full-register-file checks per second through the
//!    engine (pattern fill, window, compare, counters) against a bare loop over the same
//!    assembly with fixed buffers and a compare, and their ratio.
//! 2. Per trigger, run alone with every class and window for a while: events per second, and
//!    for io_uring the worker creations per second per checking thread.
//! 3. Checks per second with every trigger on against none (a ratio).
//! 4. The task_work + signal path of the powerpc fast-exit signal bug: signals delivered on a
//!    syscall's exit while io-wq workers are created by task_work, per second, and the faults.
//! 5. Transition windows, without triggers and with preempt + affinity: windows per second and
//!    the fraction with a context switch or a migration while the registers were live
//!    (`--transitions`: only this part).
//! 6. What `--trace` costs the default run: checks per second traced against untraced.

use std::time::{Duration, Instant};

use crate::arch::{self, linux};
use crate::cli::BenchArgs;
use crate::engine::{self, Shared};
use crate::error::{Error, Result};
use crate::pattern::{Pattern, Template};
use crate::plan::Plan;
use crate::report::si;
use crate::trigger::{self, TriggerSet};
use crate::window::{WindowKind, WindowOp};

/// `run`'s default `--spin`.
const DEFAULT_SPIN: u64 = 20_000;

fn plan_for(layouts: Vec<crate::class::ClassLayout>, windows: Vec<WindowKind>, threads: usize, d: Duration, spin: u64) -> Plan {
    Plan { layouts, windows, threads, duration: d, pattern: Pattern::new(1), spin, stop_on_first: false, stop_on_known: false, keep: 10 }
}

/// Engine checks per second for one class, one thread, zero spin.
fn engine_rate(plan: &Plan) -> f64 {
    let none = TriggerSet::select(Some(&[]));
    let shared = Shared::new(plan);
    let active = none.start(plan, &shared.stop);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| engine::check_loop(plan, &shared, 0, &active, Some(plan.duration)));
    });
    shared.total_checks() as f64 / start.elapsed().as_secs_f64()
}

/// The same assembly in a loop with a compare and nothing else: two buffers filled beforehand,
/// alternately, so the registers (control registers too) change from one window to the next as
/// they do in the engine.
fn bare_rate(plan: &Plan) -> f64 {
    let l = &plan.layouts[0];
    let t = Template::new(&plan.pattern, l, 0);
    let mut exp = [vec![0; l.words], vec![0; l.words]];
    t.fill(&plan.pattern, 1, &mut exp[0]);
    t.fill(&plan.pattern, 2, &mut exp[1]);
    let mut obs = vec![0; l.words];
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < plan.duration {
        for i in 0..256 {
            let e = &exp[i & 1];
            let mut op = WindowOp::spin(plan.spin);
            arch::native().run_window(l.id, e, &mut obs, &mut op, None, None);
            if !engine::same(e, &obs) {
                return 0.0;
            }
        }
        n += 256;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Boot-to-verdict time and checks per second inside a VM, per architecture.
fn vm_bench(dir: &std::path::Path, each: Duration) -> Result<i32> {
    let exe = std::env::current_exe().map_err(Error::io("cannot find this executable"))?;
    let run_s = (each.as_secs_f64() * 10.0).max(5.0);
    say!("regtorture bench: VMs from {}, {run_s:.0} s runs", dir.display());
    say!("{:<8} {:>10} {:>12} {:>12} {:>14}  verdict", "arch", "boot->test", "to verdict", "checks/s", "io_uring tw/s");
    for (arch, sub) in [("ppc64le", "ppc64el"), ("aarch64", "arm64"), ("x86_64", "amd64"), ("riscv64", "riscv64")] {
        let kernel = std::fs::read_dir(dir.join(sub))
            .ok()
            .and_then(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinu"))));
        let Some(kernel) = kernel else {
            say!("{arch:<8} no kernel in {}", dir.join(sub).display());
            continue;
        };
        let start = Instant::now();
        let out = std::process::Command::new(&exe)
            .args(["vm", "--arch", arch, "--timeout", "600s", "--json", "-", "--kernel"])
            .arg(&kernel)
            .args(["--", "--duration", &format!("{run_s}s")])
            .output()
            .map_err(Error::io("cannot run regtorture vm"))?;
        let total = start.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "vm: selftest (7.6 s)": when the guest's user space started.
        let booted = stderr.lines().find_map(|l| l.strip_prefix("vm: selftest (").and_then(|r| r.strip_suffix(" s)")).and_then(|x| x.parse::<f64>().ok()));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let checks = v["total_checks"].as_f64().unwrap_or(0.0) / v["elapsed_s"].as_f64().unwrap_or(1.0).max(1e-9);
        let tw = v["triggers"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "io_uring"))
            .and_then(|t| t["details"].as_array().and_then(|d| d.iter().find(|x| x[0] == "task_work_creations_per_s_per_checking_thread")))
            .and_then(|x| x[1].as_f64())
            .unwrap_or(0.0);
        say!(
            "{arch:<8} {:>10} {:>11.1}s {:>12} {:>14}  {} (exit {})",
            booted.map(|b| format!("{b:.1}s")).unwrap_or_else(|| "-".into()),
            total,
            si(checks),
            si(tw),
            v["verdict"].as_str().unwrap_or("none"),
            out.status.code().unwrap_or(-1)
        );
    }
    Ok(crate::error::EXIT_CLEAN)
}

pub fn run(args: &BenchArgs) -> Result<i32> {
    if let Some(dir) = &args.vm {
        return vm_bench(dir, args.each);
    }
    let descs = arch::native().detect();
    let avail: Vec<_> = descs.iter().filter(|d| d.available.is_ok()).collect();
    if avail.is_empty() {
        return Err(Error::Environment("no register class is usable here".into()));
    }
    if args.transitions {
        let bad = transitions(&avail, linux::allowed_cpus().len(), args.each)?;
        return Ok(if bad { crate::error::EXIT_CORRUPTION } else { crate::error::EXIT_CLEAN });
    }
    let windows = WindowKind::runnable(&arch::host());
    let all = plan_for(avail.iter().map(|d| d.layout.clone()).collect(), windows, 1, args.each, DEFAULT_SPIN);
    say!("regtorture bench on {} (Linux {}), {} per measurement", arch::name(), linux::kernel_release(), humanish(args.each));
    say!("\n1. checking cost: full-register-file checks per second, one thread, spin windows");
    say!("   zero spin: the bookkeeping laid bare; default spin ({DEFAULT_SPIN}): as `run` checks");
    say!("{:<8} {:>6} {:>12} {:>12} {:>6} {:>12} {:>12} {:>6}", "class", "bytes", "engine/s", "bare asm/s", "ratio", "engine/s", "bare asm/s", "ratio");
    let mut worst: f64 = f64::MAX;
    for d in &avail {
        let mut cols = Vec::new();
        for spin in [0, DEFAULT_SPIN] {
            let p = plan_for(vec![d.layout.clone()], vec![WindowKind::Spin], 1, args.each, spin);
            let bare = bare_rate(&p);
            let eng = engine_rate(&p);
            let ratio = eng / bare.max(1e-9);
            if spin == 0 {
                worst = worst.min(ratio);
            }
            cols.push(format!("{:>12} {:>12} {:>6.2}", si(eng), si(bare), ratio));
        }
        say!("{:<8} {:>6} {}", d.id().name(), d.layout.words * 8, cols.join(" "));
    }
    say!("lowest engine/bare ratio at zero spin: {worst:.2}");

    let threads = linux::allowed_cpus().len();
    say!("\n2. triggers, each alone, all classes and windows, {threads} checking threads");
    say!("{:<11} {:>12} {:>12}  details", "trigger", "events/s", "checks/s");
    let base = {
        let p = plan_for(all.layouts.clone(), all.windows.clone(), threads, args.each * 2, DEFAULT_SPIN);
        let none = TriggerSet::select(Some(&[]));
        let out = engine::run(&p, &none, |_| {}, &|_| {}).map_err(Error::io("run"))?;
        out.checks.iter().flatten().sum::<u64>() as f64 / out.elapsed.as_secs_f64()
    };
    say!("{:<11} {:>12} {:>12}", "(none)", "-", si(base));
    for name in trigger::all().iter().map(|t| t.name()) {
        let set = TriggerSet::select(Some(&[name.to_string()]));
        if let Some((_, why)) = set.skipped().first() {
            say!("{name:<11} {:>12} {:>12}  skipped: {why}", "-", "-");
            continue;
        }
        let p = plan_for(all.layouts.clone(), all.windows.clone(), threads + set.extra_threads(), args.each * 2, DEFAULT_SPIN);
        let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
        let checks = out.checks.iter().flatten().sum::<u64>() as f64 / out.elapsed.as_secs_f64();
        let t = &out.triggers.iter().find(|t| t.name == name).expect("trigger report");
        let details: Vec<String> = t.details.iter().map(|(k, v)| format!("{k}={}", si(*v))).collect();
        say!("{name:<11} {:>12} {:>12}  {}{}", si(t.events_per_s), si(checks), details.join(" "), if out.mismatch_count > 0 { "  MISMATCHES!" } else { "" });
    }
    say!("\n   io_uring designs, io_uring alone: blocking requests per checking thread x thread lifetime");
    say!("   {:>8} {:>9} {:>22} {:>12}", "requests", "lifetime", "creations/s/thread", "before/in");
    for (n, life) in [(16, None), (16, Some(20)), (64, Some(20)), (128, Some(10)), (128, Some(20)), (128, Some(40))] {
        let life = life.map(Duration::from_millis);
        let set = TriggerSet::of(vec![Box::new(trigger::iouring::IoUring::with(n, life))]);
        if !set.skipped().is_empty() {
            break;
        }
        let p = plan_for(all.layouts.clone(), all.windows.clone(), threads, args.each * 2, DEFAULT_SPIN);
        let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
        let d = &out.triggers[0].details;
        let get = |k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or(0.0);
        let life = life.map(|l| format!("{}ms", l.as_millis())).unwrap_or_else(|| "run".into());
        say!(
            "   {n:>8} {life:>9} {:>22} {:>12}",
            si(get("task_work_creations_per_s_per_checking_thread")),
            format!("{}/{}", si(get("workers_before_windows")), si(get("workers_by_task_work_in_windows")))
        );
    }

    let set = TriggerSet::select(None);
    let p = plan_for(all.layouts.clone(), all.windows.clone(), threads + set.extra_threads(), args.each * 2, DEFAULT_SPIN);
    let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
    let on = out.checks.iter().flatten().sum::<u64>() as f64 / out.elapsed.as_secs_f64();
    say!("\n3. checks per second, all triggers on / off: {} / {} = {:.2}", si(on), si(base), on / base.max(1e-9));
    let mut bad = out.mismatch_count > 0;
    bad |= task_work_signal_path(&all, threads, args.each)?;
    bad |= transitions(&avail, threads, args.each)?;
    bad |= trace_cost(&all, threads, args.each)?;
    bad |= ptrace_cost(&all, threads, args.each)?;
    Ok(if bad { crate::error::EXIT_CORRUPTION } else { crate::error::EXIT_CLEAN })
}

/// Section 6: what `--trace` costs the default run (every class, window kind and trigger, the default
/// spin): checks per second untraced, traced, and traced with system calls, measured in turns
/// (off, on, syscalls; twice) so that drift hits all three alike. True when anything was found.
fn trace_cost(all: &Plan, threads: usize, each: Duration) -> Result<bool> {
    let set = TriggerSet::select(None);
    let p = plan_for(all.layouts.clone(), all.windows.clone(), threads + set.extra_threads(), each * 2, DEFAULT_SPIN);
    let opts = crate::trace::TraceOptions::default();
    if let Err(e) = crate::trace::Tracer::start(&opts) {
        say!("\n6. --trace cost: skipped: {e}");
        return Ok(false);
    }
    let mut rates = [0.0f64; 3];
    let mut bad = false;
    for _ in 0..2 {
        for (i, rate) in rates.iter_mut().enumerate() {
            let tracer = match i {
                0 => None,
                1 => Some(crate::trace::Tracer::start(&opts)?),
                _ => Some(crate::trace::Tracer::start(&opts.clone().with_syscalls())?),
            };
            let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
            drop(tracer);
            bad |= out.mismatch_count > 0 || out.fault_count > 0;
            *rate += out.checks.iter().flatten().sum::<u64>() as f64 / out.elapsed.as_secs_f64() / 2.0;
        }
    }
    let [off, on, sys] = rates;
    say!("\n6. --trace cost, the default run's classes, windows and triggers ({} KiB per CPU):", opts.buffer_kb_per_cpu);
    say!(
        "   checks/s untraced {}, traced {} ({:.2}), traced with --trace-syscalls {} ({:.2})",
        si(off),
        si(on),
        on / off.max(1e-9),
        si(sys),
        sys / off.max(1e-9)
    );
    Ok(bad)
}

/// Section 8: what the ptrace trigger costs the default run's last phase (every other
/// trigger with it), measured in turns (without, with; twice), and what it does: stops per
/// second per checking thread, the share of stops inside a window's live range, the views
/// read and writes made per second. True when anything was found.
fn ptrace_cost(all: &Plan, threads: usize, each: Duration) -> Result<bool> {
    let with: Vec<String> = trigger::all().iter().map(|t| t.name().to_string()).collect();
    let without: Vec<String> = with.iter().filter(|n| *n != "ptrace").cloned().collect();
    let probe = TriggerSet::select(Some(&["ptrace".to_string()]));
    if let Some((_, why)) = probe.skipped().first() {
        say!("\n8. ptrace cost: skipped: {why}");
        return Ok(false);
    }
    let (mut rates, mut bad) = ([0.0f64; 2], false);
    let mut seen = Vec::new();
    for _ in 0..2 {
        for (i, names) in [&without, &with].into_iter().enumerate() {
            let set = TriggerSet::select(Some(names));
            let p = plan_for(all.layouts.clone(), all.windows.clone(), threads + set.extra_threads(), each * 2, DEFAULT_SPIN);
            let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
            bad |= out.mismatch_count > 0 || out.fault_count > 0;
            rates[i] += out.checks.iter().flatten().sum::<u64>() as f64 / out.elapsed.as_secs_f64() / 2.0;
            if let Some(t) = out.triggers.iter().find(|t| t.name == "ptrace") {
                let secs = out.elapsed.as_secs_f64().max(1e-9);
                let get = |k: &str| t.details.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
                seen.push((get("stops_per_s_per_thread"), get("share_in_window"), get("views") / secs, get("writes") / secs, get("syscall_exit_stops") / secs));
            }
        }
    }
    let n = seen.len().max(1) as f64;
    let avg = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| seen.iter().map(f).sum::<f64>() / n;
    say!("\n8. ptrace cost, every other trigger on, all classes and windows, {threads} checking threads:");
    say!("   checks/s without ptrace {}, with {} ({:.2})", si(rates[0]), si(rates[1]), rates[1] / rates[0].max(1e-9));
    say!(
        "   stops/s per checking thread {}, in a live range {:.0} %, views/s {}, writes/s {}, system-call exit stops/s {}",
        si(avg(|x| x.0)),
        100.0 * avg(|x| x.1),
        si(avg(|x| x.2)),
        si(avg(|x| x.3)),
        si(avg(|x| x.4))
    );
    Ok(bad)
}

/// Section 4: the path of the powerpc fast-exit signal bug: io_uring's task_work (io-wq worker
/// creation, TWA_SIGNAL) and timer signals together, with sleep windows (and their scv twins
/// where there are some): the thread spends its windows in the kernel, so both land on a
/// syscall's exit. Counts how many signals were delivered there, and the faults that came of
/// it (each one the bug, where the kernel has it). True when anything was found.
fn task_work_signal_path(all: &Plan, threads: usize, each: Duration) -> Result<bool> {
    let set = TriggerSet::select(Some(&["io_uring".to_string(), "timer".to_string()]));
    if let Some((name, why)) = set.skipped().first() {
        say!("\n4. task_work + signal on a syscall exit: skipped: {name}: {why}");
        return Ok(false);
    }
    let host = arch::host();
    let windows: Vec<WindowKind> = [WindowKind::Sleep, WindowKind::ScvSleep].into_iter().filter(|w| w.available(&host).is_ok()).collect();
    let mut p = plan_for(all.layouts.clone(), windows.clone(), threads, each * 2, DEFAULT_SPIN);
    p.stop_on_first = false;
    let (sig0, exit0) = (linux::handled(linux::sig_timer()), linux::signals_at_syscall_exit());
    let out = engine::run(&p, &set, |_| {}, &|_| {}).map_err(Error::io("run"))?;
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    let rate = |n: u64| si(n as f64 / secs);
    let detail = |k: &str| {
        let t = out.triggers.iter().find(|t| t.name == "io_uring").expect("io_uring ran");
        t.details.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v)
    };
    let names: Vec<&str> = windows.iter().map(|w| w.name()).collect();
    say!("\n4. task_work + signal on a syscall exit (io_uring + timer, {} windows, {threads} threads):", names.join("+"));
    say!("   io-wq workers created by task_work: {}/s per checking thread", si(detail("task_work_creations_per_s_per_checking_thread")));
    say!(
        "   timer signals handled: {}/s, of them delivered on a window's syscall exit: {}/s",
        rate(linux::handled(linux::sig_timer()) - sig0),
        rate(linux::signals_at_syscall_exit() - exit0)
    );
    say!("   faults (the signal set up during that task_work and lost: the fast-exit bug): {}/s", rate(out.fault_count));
    Ok(out.fault_count > 0 || out.mismatch_count > 0)
}

/// Part 5: transition windows (the transition classes: state written through one view, dropped
/// by the window, read through another) with the preempt and affinity triggers, which aim at the
/// moment the kernel rebuilds the state: windows per second, and the fraction of them with a
/// context switch or a migration while the registers were live. True when anything was found.
fn transitions(avail: &[&crate::class::ClassDesc], threads: usize, each: Duration) -> Result<bool> {
    let layouts: Vec<_> = avail.iter().filter(|d| d.id().is_transition()).map(|d| d.layout.clone()).collect();
    if layouts.is_empty() {
        say!("\n5. transition windows: none here (no transition class is available)");
        return Ok(false);
    }
    let names: Vec<String> = layouts.iter().map(|l| l.id.name().to_string()).collect();
    let windows = WindowKind::runnable(&arch::host());
    say!("\n5. transition windows ({}), {threads} checking threads, every window kind", names.join(", "));
    say!("   {:<18} {:>12} {:>14} {:>12} {:>10} {:>10}", "triggers", "windows/s", "transitions/s", "checks/s", "switched", "migrated");
    let mut bad = false;
    for trig in [vec![], vec!["preempt".to_string(), "affinity".to_string()]] {
        let set = TriggerSet::select(Some(&trig));
        let p = plan_for(layouts.clone(), windows.clone(), threads + set.extra_threads(), each * 2, DEFAULT_SPIN);
        let s = &engine::TRANSITION_STATS;
        for c in [&s.windows, &s.changes, &s.switched, &s.migrated] {
            c.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        s.on.store(true, std::sync::atomic::Ordering::Relaxed);
        let out = engine::run(&p, &set, |_| {}, &|_| {});
        s.on.store(false, std::sync::atomic::Ordering::Relaxed);
        let out = out.map_err(Error::io("run"))?;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        let n = get(&s.windows).max(1.0);
        let label = if trig.is_empty() { "(none)".to_string() } else { set.running_names().join("+") };
        say!(
            "   {label:<18} {:>12} {:>14} {:>12} {:>9.1}% {:>9.1}%{}",
            si(get(&s.windows) / secs),
            si(get(&s.changes) / secs),
            si(out.checks.iter().flatten().sum::<u64>() as f64 / secs),
            100.0 * get(&s.switched) / n,
            100.0 * get(&s.migrated) / n,
            if out.mismatch_count > 0 { "  MISMATCHES!" } else { "" }
        );
        bad |= out.mismatch_count > 0 || out.fault_count > 0;
    }
    Ok(bad)
}

fn humanish(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
