//! The `metalab` command: the workbench with no arguments, headless subcommands otherwise.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {}", cli::render(&e));
            ExitCode::from(2)
        }
    }
}
