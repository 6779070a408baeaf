//! `spindle`: runs a Spindle node (`spindle serve`, also the default with no subcommand),
//! checks configuration files (`spindle config check FILE`), and administers a running cluster
//! over the Kafka protocol (`spindle topic …`, `spindle group …`, `spindle cluster …`, see
//! `docs/CLI.md`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spindle_tools::admin::{self, AdminCommand};
use spindle_tools::server::alloc::{self, WireSafeAllocator};
use spindle_tools::server::config::{self, ServeArgs};
use spindle_tools::server::node;

/// See `spindle_tools::server::alloc`: a garbage array length on the wire must not abort the node.
#[global_allocator]
static ALLOCATOR: WireSafeAllocator = WireSafeAllocator;

/// Spindle: a streaming storage engine that speaks Kafka.
#[derive(Debug, Parser)]
#[command(name = "spindle", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (the default).
    Serve(Box<ServeArgs>),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(flatten)]
    Admin(Box<AdminCommand>),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a TOML configuration file without starting anything.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(ServeArgs::parse_default()),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Admin(command)) => admin::run(*command),
        Some(Command::Config(ConfigCommand::Check { file })) => match config::check_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("spindle: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("spindle: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config.log_level);
    if !alloc::keep_freed_memory_for_reuse() {
        tracing::warn!(
            "the system allocator refused its settings; large buffers are remapped on every use"
        );
    }
    match node::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("spindle: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `level`, unless RUST_LOG gives a filter.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a person at a terminal who has not asked for none (NO_COLOR).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// `ServeArgs` for a bare `spindle`: only the `SPINDLE_*` variables apply.
trait ParseDefault {
    fn parse_default() -> Self;
}

impl ParseDefault for ServeArgs {
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            args: ServeArgs,
        }
        Bare::parse_from(["spindle"]).args
    }
}
