//! `spindle-bench`: Spindle's load generator. See `docs/BENCHMARKS.md` for how the figures in
//! the documentation were measured.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = spindle_tools::bench::args::Cli::parse();
    match spindle_tools::bench::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spindle-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
