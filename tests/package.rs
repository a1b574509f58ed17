//! The Debian packages of scripts/package: built for amd64, arm64, ppc64el and riscv64 from the static
//! binaries (scripts/test runs scripts/cross first), and the amd64 one installed here with
//! `dpkg -i`: `regtorture --version` names the git revision, `man -w regtorture` finds the man
//! page, bash completes the subcommands. Removed again at the end.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("bash").args(["-c", cmd]).current_dir(root()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// Removes the package when the test ends, passed or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = sh("dpkg -r regtorture >/dev/null 2>&1");
    }
}

#[test]
fn the_packages_build_and_the_amd64_one_installs_with_man_page_and_completions() {
    let (ok, out) = sh("bash scripts/package");
    assert!(ok, "scripts/package: {out}");
    let version = env!("CARGO_PKG_VERSION");
    for arch in ["amd64", "arm64", "ppc64el", "riscv64"] {
        let deb = format!("target/deb/regtorture_{version}_{arch}.deb");
        let (ok, info) = sh(&format!("dpkg-deb -f {deb} Package Architecture"));
        assert!(ok && info.contains(&format!("Architecture: {arch}")), "{deb}: {info}");
        let (_, files) = sh(&format!("dpkg-deb -c {deb}"));
        for f in [
            "./usr/bin/regtorture",
            "./usr/share/man/man1/regtorture.1.gz",
            "./usr/share/man/man1/regtorture-run.1.gz",
            "./usr/share/bash-completion/completions/regtorture",
            "./usr/share/zsh/vendor-completions/_regtorture",
            "./usr/share/fish/vendor_completions.d/regtorture.fish",
        ] {
            assert!(files.contains(f), "{deb} lacks {f}");
        }
    }
    let (ok, out) = sh(&format!("dpkg -i target/deb/regtorture_{version}_amd64.deb"));
    let _installed = Installed;
    assert!(ok, "dpkg -i: {out}");
    let (ok, v) = sh("/usr/bin/regtorture --version");
    let (_, head) = sh("git rev-parse --short=12 HEAD");
    assert!(ok && v.contains(&format!("(git {}", head.trim())), "{v}");
    let (ok, page) = sh("man -w regtorture");
    assert!(ok && page.trim() == "/usr/share/man/man1/regtorture.1.gz", "man -w: {page}");
    let (ok, page) = sh("man -w regtorture-vm");
    assert!(ok, "man -w regtorture-vm: {page}");
    let (ok, comp) = sh(". /usr/share/bash-completion/completions/regtorture && complete -p regtorture");
    assert!(ok && comp.contains("regtorture"), "bash completion: {comp}");
    // The static binary runs from its installed place.
    let (ok, out) = sh("/usr/bin/regtorture run --duration 1s --triggers none --quiet");
    assert!(ok && out.contains("CLEAN"), "{out}");
}
