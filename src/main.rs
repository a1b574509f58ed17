//! The regtorture binary: parse the command line, run, exit with the documented code.

use clap::Parser;
use clap::error::ErrorKind;
use regtorture::{app, cli::Cli};

fn main() {
    // Forensics first; a VM's init and the execve check's probe never return from here.
    let _forensics = app::early();
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
