use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// Record a test that could not check what it is for, as tests/common does: scripts/test
/// counts the lines of target/test-skips.
fn skip(reason: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("unnamed test").to_string();
    let line = format!("regtorture (lib): {test}: {reason}\n");
    eprint!("SKIP {line}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-skips");
    let _ = std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(line.as_bytes()));
}

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regtorture-reproducer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compile (and link, statically) `source` with `cc`; warnings are errors.
fn compile(cc: &str, source: &str, dir: &Path, name: &str, extra: &[&str]) -> std::result::Result<(), String> {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let out = Command::new(cc)
        .args(["-O2", "-static", "-pthread", "-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .arg("-o")
        .arg(dir.join(name))
        .arg(&c)
        .output()
        .map_err(|e| format!("{cc}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("{cc} {name}: {}", String::from_utf8_lossy(&out.stderr))) }
}

/// Every class alone with every window and trigger; every window alone; every trigger alone;
/// no trigger; all together (also as the positive control).
fn combos(arch: GuestArch) -> Vec<(String, Setup, Vec<&'static str>)> {
    let classes = classes_for(arch).to_vec();
    let windows = windows_for(arch).to_vec();
    let all = strings(&TRIGGERS);
    let mut v = Vec::new();
    for c in &classes {
        v.push((format!("class-{}", c.name()), Setup::new(arch, vec![*c], windows.clone(), all.clone()), vec![]));
    }
    for w in &windows {
        v.push((format!("window-{}", w.name()), Setup::new(arch, vec![classes[0]], vec![*w], all.clone()), vec![]));
    }
    for t in TRIGGERS {
        v.push((format!("trigger-{t}"), Setup::new(arch, classes.clone(), vec![windows[0]], strings(&[t])), vec![]));
    }
    v.push(("no-trigger".into(), Setup::new(arch, classes.clone(), windows.clone(), vec![]), vec![]));
    let mut everything = Setup::new(arch, classes.clone(), windows.clone(), all.clone());
    everything.threads = 3;
    everything.kernel = Some("Linux 6.1.0-50-powerpc64le (Debian)".into());
    v.push(("everything".into(), everything.clone(), vec![]));
    v.push(("everything-inject".into(), everything, vec!["-DREGTORTURE_INJECT"]));
    v
}

fn compiles_everywhere(arch: GuestArch, cc: &str) {
    if !have(cc) {
        skip(&format!("no {cc} to compile the {} reproducers with", arch_name(arch)));
        return;
    }
    let dir = scratch(arch_name(arch));
    let mut failed = Vec::new();
    for (name, setup, extra) in combos(arch) {
        let source = emit_c(&setup).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(e) = compile(cc, &source, &dir, &name, &extra) {
            failed.push(e);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_x86_64_setup_compiles_with_the_host_gcc() {
    if host_arch() != Some(GuestArch::X86_64) {
        skip("the host is not x86_64: its gcc makes no x86_64 programs");
        return;
    }
    compiles_everywhere(GuestArch::X86_64, "gcc");
}

#[test]
fn every_ppc64le_setup_compiles_with_the_cross_gcc() {
    compiles_everywhere(GuestArch::Ppc64le, cross_gcc(GuestArch::Ppc64le));
}

#[test]
fn what_the_c_backend_cannot_express_is_a_clean_error_that_says_what_it_can() {
    let t = strings(&["tgkill"]);
    let cases = [
        (Setup::new(GuestArch::Ppc64le, vec![ClassId::Avx], vec![WindowKind::Spin], t.clone()), "the class avx on ppc64le"),
        (Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::ScvSleep], t.clone()), "the window kind scv-sleep on x86_64"),
        (Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Fork], t.clone()), "the window kind fork"),
        (Setup::new(GuestArch::X86_64, vec![ClassId::X87], vec![WindowKind::Spin], t.clone()), "the class x87"),
        (Setup::new(GuestArch::Aarch64, vec![ClassId::Neon], vec![WindowKind::Spin], t.clone()), "the architecture aarch64"),
        (Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Spin], strings(&["membarrier"])), "the trigger membarrier"),
        (Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Spin], strings(&["all"])), "the trigger all"),
        (Setup::new(GuestArch::X86_64, vec![], vec![WindowKind::Spin], t.clone()), "without register classes"),
        // Everything it cannot express, not only the first.
        (
            Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Signal], strings(&["inject"])),
            "the window kind signal on x86_64 and the trigger inject",
        ),
        (Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![], t.clone()), "without window kinds"),
    ];
    for (setup, what) in cases {
        let e = emit_c(&setup).unwrap_err();
        assert!(matches!(e, Error::CannotExpress { .. }), "{e:?}");
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        let text = e.to_string();
        assert!(text.contains(what), "{text}");
        assert!(text.contains("ppc64le: classes fpr, vsx, gpr") && text.contains("x86_64: classes sse, avx"), "{text}");
        assert!(text.contains("triggers io_uring, tgkill, timer"), "{text}");
    }
    let mut many = Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Spin], t.clone());
    many.threads = 5000;
    assert!(matches!(emit_c(&many), Err(Error::CannotExpress { .. })));
    let mut comment = Setup::new(GuestArch::X86_64, vec![ClassId::Sse], vec![WindowKind::Spin], t);
    comment.kernel = Some("6.1 */ int x;".into());
    assert!(matches!(emit_c(&comment), Err(Error::Usage(_))));
    comment.kernel = None;
    comment.finding = Some("two\nlines".into());
    assert!(matches!(emit_c(&comment), Err(Error::Usage(_))));
}

#[test]
fn select_keeps_or_drops_the_named_blocks_and_leaves_other_conditionals() {
    let defs = vec![("RT_WITH_A".to_string(), true), ("RT_WITH_B".to_string(), false)];
    let text = "a\n#if RT_WITH_A\nin a\n#ifdef X\nx in a\n#endif\n#endif\n#if RT_WITH_B\nin b\n#if 1\nnested\n#endif\n#endif\n#ifdef Y\ny\n#endif\nz\n";
    assert_eq!(select(text, &defs), "a\nin a\n#ifdef X\nx in a\n#endif\n#ifdef Y\ny\n#endif\nz\n");
}

#[test]
fn the_command_line_names_the_setup_once_each_in_regtortures_spelling() {
    let mut s = Setup::new(GuestArch::Ppc64le, vec![ClassId::Gpr, ClassId::Gpr], vec![WindowKind::ScvSleep], strings(&["timer", "io_uring", "timer"]));
    s.threads = 2;
    assert_eq!(command_line(&s), "regtorture run --classes gpr --windows scv-sleep --triggers io_uring,timer --threads 2 --duration 30s");
    s.triggers = vec!["none".into()];
    s.threads = 0;
    s.spin = 5;
    assert_eq!(command_line(&s), "regtorture run --classes gpr --windows scv-sleep --triggers none --duration 30s --spin 5");
}

#[test]
fn the_header_says_what_where_from_and_how_to_build() {
    let mut s = Setup::new(GuestArch::Ppc64le, vec![ClassId::Gpr], vec![WindowKind::ScvSleep], strings(&["io_uring", "timer"]));
    s.kernel = Some("Debian 6.1.176".into());
    s.finding = Some("powerpc: CTR = MSR on the scv fast exit".into());
    let c = emit_c(&s).unwrap();
    let header = &c[..c.find("*/").unwrap()];
    for want in [
        "Found on:   Debian 6.1.176",
        "Reproduces: powerpc: CTR = MSR on the scv fast exit",
        &command_line(&s),
        "powerpc64le-linux-gnu-gcc -O2 -static -pthread",
        "gcc -O2 -static -pthread",
        "window scv-sleep: clock_nanosleep() for 20 us",
        "issued with `scv 0`",
        "class gpr: r3-r12",
        "trigger timer: a POSIX timer",
        "io_uring: each checking thread queues 128 splices",
        "-DREGTORTURE_INJECT",
        "REPRO-RESULT",
    ] {
        assert!(header.contains(want), "{want} missing from:\n{header}");
    }
    // Only the classes of the setup are compiled in, and the tables list them.
    assert!(c.contains("rt_window_gpr") && !c.contains("rt_window_fpr") && !c.contains("rt_window_vsx"));
    assert!(c.contains("queue_splices") && !c.contains("tgkill_thread") && c.contains("timer_arm"));
    assert!(!c.contains("RT_WITH_"), "every selection is resolved");
    assert!(c.contains("#ifdef REGTORTURE_INJECT"), "the positive control stays a build flag");
    assert!(c.contains("{ \"scv-sleep\", RT_W_SLEEP, 1 },"), "the window table");
    assert!(c.contains("\t&rt_class_gpr,\n}"), "the class table");
}

/// The positive control names a register of each class the way the program prints it.
#[test]
fn each_expressible_class_has_an_injected_register() {
    for arch in [GuestArch::Ppc64le, GuestArch::X86_64] {
        for c in classes_for(arch) {
            assert!(injected_register(*c).is_some(), "{c}");
        }
    }
}
