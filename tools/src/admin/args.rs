//! The admin command line: `spindle topic …`, `spindle group …`, `spindle cluster …`,
//! `spindle acl …`.
//!
//! Every command takes `--bootstrap HOST:PORT` (any node; `SPINDLE_BOOTSTRAP`, default
//! `127.0.0.1:9092`) and `--json`, before or after the subcommand (they are `global`). What
//! clap can check is checked here, so a wrong command line is a usage error (exit status 2)
//! before any connection is made: `KEY=VALUE` shapes, positive partition counts, exactly one
//! reset target, `--dry-run` against `--execute`.

use crate::admin::console::StartAt;
use clap::{ArgGroup, Args, Subcommand};

use crate::admin::error::AdminError;
use crate::sasl::SaslArgs;
use crate::transport::{Security, TlsArgs};

/// Topic, group and cluster administration over the Kafka protocol.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create, list, describe, alter and delete topics.
    Topic(TopicArgs),
    /// List and describe consumer groups (members, assignments, lag); reset their offsets.
    Group(GroupArgs),
    /// Show the cluster: id, controller, brokers.
    Cluster(ClusterArgs),
    /// List who may do what (Kafka's ACLs; on Spindle, the grants of the configuration file).
    Acl(AclArgs),
}

/// Where to connect and how to print, shared by every admin command.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Address of any node of the cluster (several, separated by commas, are tried in order).
    #[arg(
        long,
        global = true,
        env = "SPINDLE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap: String,
    /// TLS, for a listener that serves it.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// SASL login, for a listener that asks for it.
    #[command(flatten)]
    pub sasl: SaslArgs,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ConnectArgs {
    /// TLS and the SASL login these flags ask for.
    ///
    /// # Errors
    /// [`AdminError::Invalid`] for a CA file that cannot be used, or only one of user name and
    /// password.
    pub fn security(&self) -> Result<Security, AdminError> {
        Ok(Security {
            tls: self.tls.client().map_err(AdminError::Invalid)?,
            login: self.sasl.login().map_err(AdminError::Invalid)?,
        })
    }
}

/// `spindle topic …`.
#[derive(Debug, Clone, Args)]
pub struct TopicArgs {
    /// Connection and output options.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic command.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The topic commands.
#[derive(Debug, Clone, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// Number of partitions (the server's default when not given).
        #[arg(short, long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replicas per partition (the server's default when not given).
        #[arg(short = 'r', long, value_parser = clap::value_parser!(i16).range(1..))]
        replication_factor: Option<i16>,
        /// A topic configuration, e.g. `retention.ms=86400000`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Succeed without changing anything when the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics.
    List,
    /// Show a topic's partitions (leader, start and end offsets) and configuration.
    Describe {
        /// The topic's name.
        name: String,
    },
    /// Change a topic's partition count or configuration.
    #[command(group(
        ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["partitions", "set", "delete"])
    ))]
    Alter {
        /// The topic's name.
        name: String,
        /// Grow the topic to this many partitions (partitions are never removed).
        #[arg(short, long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Set a configuration, e.g. `retention.ms=1000`; repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove a configuration override (back to the default); repeatable.
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Delete the records below an offset (Kafka's DeleteRecords): the partitions' start
    /// offset moves there for good.
    DeleteRecords {
        /// The topic's name.
        name: String,
        /// Delete every record below this offset; `end` deletes every record written.
        #[arg(long, value_name = "OFFSET|end", value_parser = parse_before)]
        before: i64,
        /// Only this partition (repeatable); all of the topic's partitions when not given.
        #[arg(short, long = "partition", value_name = "PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
        partitions: Vec<i32>,
    },
    /// Produce records from standard input, one a line (a line is a value, or with
    /// --key-separator a key, the separator and a value); acknowledged by every replica.
    Produce {
        /// The topic's name.
        name: String,
        /// Split each line into key and value at the first occurrence of this (a line without
        /// it has no key).
        #[arg(short = 'K', long, value_name = "SEP")]
        key_separator: Option<String>,
        /// Send every record to this partition (else by key, else round robin).
        #[arg(short, long, value_parser = clap::value_parser!(i32).range(0..))]
        partition: Option<i32>,
        /// A header every record carries, e.g. `source=cli`; repeatable.
        #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        headers: Vec<(String, String)>,
        /// Compress the batches.
        #[arg(short = 'z', long, value_enum, default_value_t = Codec::None)]
        compression: Codec,
    },
    /// Print a topic's records, one a line: from --from to the end the partitions have when
    /// the command starts, or on as records arrive with --follow.
    Consume {
        /// The topic's name.
        name: String,
        /// Only this partition (repeatable); all of the topic's partitions when not given.
        #[arg(short, long = "partition", value_name = "PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
        partitions: Vec<i32>,
        /// Where to start in each partition: `beginning`, `end` or an offset.
        #[arg(short = 'o', long = "from", value_name = "beginning|end|OFFSET", default_value = "beginning", value_parser = parse_start)]
        from: StartAt,
        /// Stop after this many records.
        #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Keep waiting for new records at the end (until --count, or Ctrl-C).
        #[arg(short, long)]
        follow: bool,
        /// Print each record's key, this separator, then its value.
        #[arg(short = 'K', long, value_name = "SEP")]
        key_separator: Option<String>,
    },
    /// Delete topics and all their records.
    Delete {
        /// The topics' names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Skip topics that do not exist instead of failing.
        #[arg(long)]
        if_exists: bool,
    },
}

/// `spindle group …`.
#[derive(Debug, Clone, Args)]
pub struct GroupArgs {
    /// Connection and output options.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The group command.
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The group commands.
#[derive(Debug, Clone, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List,
    /// Show a group's state, members with their assignments, and committed offsets with lag.
    Describe {
        /// The group id.
        group: String,
    },
    /// Move a group's committed offsets (only while the group has no members).
    ResetOffsets(ResetArgs),
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        /// The group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete a group's committed offsets of a topic (Kafka's OffsetDelete); refused for a
    /// topic the group's members subscribe to.
    DeleteOffsets {
        /// The group id.
        group: String,
        /// The topic whose offsets go.
        #[arg(long)]
        topic: String,
        /// Only this partition (repeatable); all of the topic's partitions when not given.
        #[arg(short, long = "partition", value_name = "PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
        partitions: Vec<i32>,
    },
}

/// `spindle group reset-offsets`.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "to_timestamp"])
))]
pub struct ResetArgs {
    /// The group id.
    pub group: String,
    /// The topic whose offsets move (all its partitions).
    #[arg(long)]
    pub topic: String,
    /// To the first offset still in each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the end of each partition (skip everything not yet consumed).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset in every partition (kept within each partition's start and end).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    pub to_offset: Option<i64>,
    /// To the first record at or after this time (milliseconds since the Unix epoch).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(0..))]
    pub to_timestamp: Option<i64>,
    /// Show the plan without changing anything (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
}

/// `spindle cluster …`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Connection and output options.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The cluster command.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster commands.
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller and every broker.
    Info,
    /// Show the client quotas (Kafka's DescribeClientQuotas, as `kafka-configs.sh --describe
    /// --entity-type users,clients`): each entity with the byte rates set for it; describing
    /// them needs the right to describe the cluster (on Spindle: admin on every topic).
    Quotas {
        /// Change an entity's quotas instead.
        #[command(subcommand)]
        command: Option<QuotasCommand>,
    },
}

/// What `spindle cluster quotas` does besides showing them.
#[derive(Debug, Clone, Subcommand)]
pub enum QuotasCommand {
    /// Change one entity's quotas (Kafka's AlterClientQuotas, as `kafka-configs.sh --alter
    /// --entity-type users|clients`); on Spindle the change is kept across restarts.
    Alter {
        /// A part of the entity, `user=NAME` or `client-id=NAME` (repeatable: both make one
        /// entity).
        #[arg(long = "name", value_name = "TYPE=NAME", value_parser = parse_key_value)]
        names: Vec<(String, String)>,
        /// A part of the entity that is the type's default, e.g. `client-id` (every client id
        /// without a quota of its own).
        #[arg(long = "default", value_name = "TYPE")]
        defaults: Vec<String>,
        /// Set a rate, e.g. `producer_byte_rate=1048576` (repeatable).
        #[arg(long = "add", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        add: Vec<(String, String)>,
        /// Remove a rate, e.g. `consumer_byte_rate` (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        /// Have the server check the change without making it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `spindle acl …`.
#[derive(Debug, Clone, Args)]
pub struct AclArgs {
    /// Connection and output options.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The ACL command.
    #[command(subcommand)]
    pub command: AclCommand,
}

/// The ACL commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AclCommand {
    /// List the ACL bindings (Kafka's DescribeAcls, as `kafka-acls.sh --list`), one row per
    /// principal and resource with the operations allowed on it; describing them needs the
    /// right to describe the cluster (on Spindle: admin on every topic).
    List {
        /// Only this principal's bindings (`User:NAME`, or just `NAME`).
        #[arg(long)]
        principal: Option<String>,
    },
}

/// Parses `KEY=VALUE` (the value may itself contain `=`; the key may not be empty).
/// An offset to delete below: a record offset, or `end` (DeleteRecords' -1, the high watermark).
fn parse_before(text: &str) -> Result<i64, String> {
    match text.trim() {
        "end" => Ok(-1),
        t => t
            .parse::<u64>()
            .ok()
            .and_then(|o| i64::try_from(o).ok())
            .ok_or_else(|| format!("expected an offset (0 or more) or `end`, got {text:?}")),
    }
}

/// A codec for `topic produce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl Codec {
    /// The codec as the batch encoder names it.
    pub fn compression(self) -> kafka_protocol::records::Compression {
        use kafka_protocol::records::Compression;
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

fn parse_start(text: &str) -> Result<StartAt, String> {
    match text.trim() {
        "beginning" => Ok(StartAt::Beginning),
        "end" => Ok(StartAt::End),
        t => t
            .parse::<u64>()
            .ok()
            .and_then(|o| i64::try_from(o).ok())
            .map(StartAt::Offset)
            .ok_or_else(|| format!("expected `beginning`, `end` or an offset, got {text:?}")),
    }
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdminCommand,
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("cleanup.policy=a=b"),
            Ok(("cleanup.policy".into(), "a=b".into()))
        );
        assert!(parse_key_value("retention.ms").is_err());
        assert!(parse_key_value("=1").is_err());
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "spindle",
            "topic",
            "--json",
            "list",
            "--bootstrap",
            "10.0.0.1:9092",
        ])
        .unwrap();
        let AdminCommand::Topic(args) = cli.command else {
            panic!("not a topic command")
        };
        assert!(args.connect.json);
        assert_eq!(args.connect.bootstrap, "10.0.0.1:9092");
    }

    #[test]
    fn wrong_command_lines_are_usage_errors() {
        let wrong: &[&[&str]] = &[
            &["spindle", "topic", "alter", "t"],
            &["spindle", "topic", "create", "t", "--partitions", "0"],
            &["spindle", "topic", "create", "t", "--config", "novalue"],
            &["spindle", "group", "reset-offsets", "g", "--topic", "t"],
            &[
                "spindle",
                "group",
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-latest",
                "--to-earliest",
            ],
            &[
                "spindle",
                "group",
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-latest",
                "--dry-run",
                "--execute",
            ],
            &["spindle", "topic", "delete"],
        ];
        for args in wrong {
            let e = Cli::try_parse_from(*args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
