//! The regtorture binary: parse the command line, run, exit with the documented code.

use clap::Parser;
use clap::error::ErrorKind;
use regtorture::{app, cli::Cli};

fn main() {
    // A kernel bug can corrupt regtorture in any phase: from here on a fault of this thread
    // is reported (init of a VM included), not a silent death.
    let _forensics = regtorture::arch::linux::protect_thread();
    if regtorture::vm::init::is_guest() {
        // Booted as init by `regtorture vm` (PID 1 with the run options it packed; a
        // container's PID 1 has none and runs its command line like any other process).
        regtorture::vm::init::main();
    }
    if std::env::args().nth(1).as_deref() == Some(regtorture::leak::PROBE) {
        // A fresh copy started by the execve leak check: report the entry state and exit.
        regtorture::leak::probe_main();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            // One line: what is wrong and what is accepted.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            let accepted = text.lines().find_map(|l| l.trim().strip_prefix("[possible values: ")).map(|v| v.trim_end_matches(']'));
            match accepted {
                Some(v) => eprintln!("regtorture: error: {first}: use one of {v} (see 'regtorture --help')"),
                None => eprintln!("regtorture: error: {first} (see 'regtorture --help')"),
            }
            std::process::exit(regtorture::error::EXIT_USAGE);
        }
    };
    let code = match app::main_with(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::new(e);
            let code = e.downcast_ref::<regtorture::error::Error>().map_or(regtorture::error::EXIT_ENVIRONMENT, |x| x.exit_code());
            eprintln!("regtorture: error: {e:#}");
            code
        }
    };
    std::process::exit(code);
}
