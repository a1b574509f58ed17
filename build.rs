//! Assembles the register windows of the target architecture (`src/arch/<arch>/regs.S`), and
//! records the git revision for `--version`.
fn main() {
    // The git revision this binary is built from, for `--version` ("unknown" outside a checkout).
    let rev = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REGTORTURE_GIT_REVISION={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dir = match arch.as_str() {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "powerpc64" => "powerpc64",
        "riscv64" => "riscv64",
        _ => return,
    };
    let src = format!("src/arch/{dir}/regs.S");
    if std::path::Path::new(&src).exists() {
        println!("cargo:rerun-if-changed={src}");
        println!("cargo:rustc-env=REGTORTURE_REGS_S={src}");
        println!("cargo:rerun-if-changed=src/arch/window_op.h");
        println!("cargo:rerun-if-changed=src/arch/gpr_frame.h");
        // aarch64's regs.S includes its SME windows.
        println!("cargo:rerun-if-changed=src/arch/aarch64/sme.S");
        cc::Build::new().file(&src).compile("regtorture_regs");
        // The binary starts at the backend's entry stub, which records the registers as execve
        // left them and jumps to the C runtime's _start (see `leak`).
        let entry = match dir {
            "x86_64" => Some("rt_x86_entry"),
            "aarch64" => Some("rt_a64_entry"),
            "powerpc64" => Some("rt_ppc_entry"),
            "riscv64" => Some("rt_rv_entry"),
            _ => None,
        };
        if let Some(entry) = entry {
            println!("cargo:rustc-link-arg-bins=-Wl,-e,{entry}");
        }
    }
}
