//! `spindle-bench`: Spindle's load generator. See `docs/BENCHMARKS.md` for how the figures in
//! the documentation were measured.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = spindle_tools::bench::args::Cli::parse();
    // The same heap settings as `spindle serve`, so that the embedded engine is measured as the
    // server runs it.
    if !spindle_tools::server::alloc::keep_freed_memory_for_reuse() {
        eprintln!("spindle-bench: the system allocator refused its settings");
    }
    match spindle_tools::bench::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spindle-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
