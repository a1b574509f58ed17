//! Assembles the register windows of the target architecture (`src/arch/<arch>/regs.S`).
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dir = match arch.as_str() {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "powerpc64" => "powerpc64",
        _ => return,
    };
    let src = format!("src/arch/{dir}/regs.S");
    if std::path::Path::new(&src).exists() {
        println!("cargo:rerun-if-changed={src}");
        cc::Build::new().file(&src).compile("regtorture_regs");
    }
}
