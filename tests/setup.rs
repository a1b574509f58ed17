//! scripts/pick-rust, the choice of Debian's rustc that scripts/setup installs, fed
//! `apt-cache madison` lines as data: the newest version every needed package and
//! architecture has, whatever the order of the lines; a clear refusal when there is none.

use std::io::Write;
use std::process::{Command, Stdio};

fn pick(madison: &str) -> (i32, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pick-rust");
    let mut child = Command::new("bash").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(madison.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const OLD: &str = "1.85.0+dfsg3-1~deb12u3";
const NEW: &str = "1.96.0+dfsg1-1~deb12u1";

/// Madison lines for `versions` of every package the build needs, on the given std arches.
fn lines(versions: &[(&str, &str)], std_arches: &[&str]) -> String {
    let mut s = String::new();
    for (v, suite) in versions {
        for pkg in ["rustc-web", "cargo-web"] {
            s += &format!(" {pkg} | {v} | http://deb.debian.org/debian{suite} amd64 Packages\n");
        }
        for a in std_arches {
            let name = if *a == "amd64" { "libstd-rust-web-dev".to_string() } else { format!("libstd-rust-web-dev:{a}") };
            s += &format!("{name} | {v} | http://deb.debian.org/debian{suite} {a} Packages\n");
        }
    }
    s
}

#[test]
fn the_newest_version_common_to_every_architecture_is_chosen() {
    let all = ["amd64", "ppc64el", "arm64"];
    // Both in the archive for every architecture, listed oldest first: the newest wins.
    let (code, v, err) = pick(&lines(&[(OLD, " bookworm/main"), (NEW, "-security bookworm-security/main")], &all));
    assert_eq!((code, v.as_str()), (0, NEW), "{err}");
    // The ppc64el security index did not download: 1.96 is there for two arches only.
    let mut partial = lines(&[(OLD, " bookworm/main")], &all);
    partial += &lines(&[(NEW, "-security bookworm-security/main")], &["amd64", "arm64"]);
    let (code, v, err) = pick(&partial);
    assert_eq!((code, v.as_str()), (0, OLD), "{err}");
}

#[test]
fn no_common_version_is_refused_naming_what_is_missing() {
    // After the point release that drops 1.85, with the ppc64el security index failing.
    let (code, v, err) = pick(&lines(&[(NEW, "-security bookworm-security/main")], &["amd64", "arm64"]));
    assert_eq!(code, 1, "{v}");
    assert!(v.is_empty(), "nothing chosen: {v}");
    assert!(err.contains(NEW) && err.contains("libstd-rust-web-dev:ppc64el"), "{err}");
    let (code, _, err) = pick("");
    assert_eq!(code, 1);
    assert!(err.contains("apt-get update"), "{err}");
}

#[test]
fn versions_are_ordered_as_dpkg_orders_them() {
    // 1.100 is newer than 1.96 (a string sort says otherwise); a ~ is older than its release.
    let all = ["amd64", "ppc64el", "arm64"];
    let (code, v, err) = pick(&lines(&[("1.96.0+dfsg1-1~deb12u1", ""), ("1.100.0+dfsg1-1~deb12u1", ""), ("1.96.0+dfsg1-1", "")], &all));
    assert_eq!((code, v.as_str()), (0, "1.100.0+dfsg1-1~deb12u1"), "{err}");
}
