//! The admin commands of the `spindle` binary: `spindle topic …`, `spindle group …`,
//! `spindle cluster …` and `spindle acl …`, spoken over the Kafka protocol so they work against any node of a
//! Spindle cluster (or of any Kafka-compatible one).
//!
//! Layout, one noun per file:
//! - [`args`]: the command line (clap); wrong arguments fail there with exit status 2;
//! - [`connection`]: one blocking connection, frames and API version negotiation;
//! - [`client`]: routing to the bootstrap node, partition leaders and group coordinators;
//! - [`topic`], [`records`], [`group`], [`reset`], [`cluster`], [`acl`]: the commands;
//! - [`table`]: aligned human tables and the `--json` switch;
//! - [`error`]: what can fail, worded for operators; [`limits`]: timeouts and sizes.
//!
//! Contract with `main`: [`run`] executes one parsed [`AdminCommand`], prints its result on
//! stdout (a table, or one JSON document with `--json`) and any error as one `spindle: …` line
//! on stderr, and returns exit status 0 or 1. [`execute`] is the same without the process
//! concerns, for tests.

pub mod acl;
pub mod args;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod console;
pub mod error;
pub mod group;
pub mod group_delete;
pub mod limits;
pub mod records;
pub mod reset;
pub mod table;
pub mod topic;

use std::io::Write;
use std::process::ExitCode;

pub use args::AdminCommand;
use args::ConnectArgs;
pub use error::AdminError;

use crate::admin::client::Client;
use crate::admin::table::Printer;

/// Runs one admin command, printing its result on stdout and an error on stderr.
///
/// Exit status: 0 on success, 1 on any failure (unknown topic or group, server unreachable,
/// a Kafka error). Usage errors never get here: clap exits with 2 while parsing.
pub fn run(cmd: AdminCommand) -> ExitCode {
    // Buffered: `topic consume` prints a line per record and flushes after each read (stdout
    // alone would write every line on its own). Dropping the buffer writes what is left.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let outcome = execute(cmd, &mut out);
    let flushed = out.flush();
    match outcome.and(flushed.map_err(AdminError::Output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spindle: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one admin command, writing its result to `out`.
///
/// # Errors
/// Whatever the command fails with; see [`AdminError`].
pub fn execute(cmd: AdminCommand, out: &mut dyn Write) -> Result<(), AdminError> {
    let connect: &ConnectArgs = match &cmd {
        AdminCommand::Topic(a) => &a.connect,
        AdminCommand::Group(a) => &a.connect,
        AdminCommand::Cluster(a) => &a.connect,
        AdminCommand::Acl(a) => &a.connect,
    };
    let mut printer = Printer::new(connect.json, out);
    let mut client = Client::connect_as(&connect.bootstrap, connect.security()?)?;
    match cmd {
        AdminCommand::Topic(a) => topic::run(&mut client, a.command, &mut printer),
        AdminCommand::Group(a) => group::run(&mut client, a.command, &mut printer),
        AdminCommand::Cluster(a) => cluster::run(&mut client, a.command, &mut printer),
        AdminCommand::Acl(a) => acl::run(&mut client, a.command, &mut printer),
    }
}
