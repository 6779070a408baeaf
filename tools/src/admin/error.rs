//! [`AdminError`]: everything an admin command can fail with, worded for the operator who
//! typed the command. Each variant names what was being done and to what (the topic, the
//! group, the address), so the one line printed before exiting with status 1 is enough to act
//! on. Kafka error codes are shown by their protocol name (`UNKNOWN_TOPIC_OR_PARTITION`), the
//! name operators search for, followed by the server's own message when it sent one.

use std::fmt;
use std::io;

use kafka_protocol::error::ResponseError;

use crate::sasl::SaslFailure;

/// An admin command failed.
#[derive(Debug)]
pub enum AdminError {
    /// No address of the bootstrap (or of a broker it named) accepted a connection.
    Unreachable {
        /// The address as given.
        addr: String,
        /// The last connect error.
        source: io::Error,
    },
    /// A connection broke or timed out during a call.
    Io {
        /// The peer.
        addr: String,
        /// What was being done.
        doing: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// The peer sent something that is not a valid Kafka response, or a request could not be
    /// encoded.
    Protocol {
        /// The peer.
        addr: String,
        /// What is wrong.
        reason: String,
    },
    /// The server does not serve an API this command needs, at any version this client knows.
    Unsupported {
        /// The peer.
        addr: String,
        /// The API's name.
        api: &'static str,
    },
    /// The server answered with a Kafka error code.
    Kafka {
        /// What failed, e.g. `creating topic "orders"`.
        what: String,
        /// The error code.
        code: i16,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// A topic that does not exist.
    UnknownTopic(String),
    /// A group the coordinator does not know.
    UnknownGroup(String),
    /// `group reset-offsets` on a group that still has members.
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Its state as the coordinator reported it.
        state: String,
        /// How many members it has.
        members: usize,
    },
    /// An argument that parsed but makes no sense for the cluster (e.g. a partition of a
    /// topic that does not have it).
    Invalid(String),
    /// Writing the output failed (e.g. a closed pipe).
    Output(io::Error),
    /// This side of a SASL mechanism failed (e.g. the server's SCRAM proof did not verify).
    Sasl(SaslFailure),
}

impl From<SaslFailure> for AdminError {
    fn from(failure: SaslFailure) -> Self {
        match failure {
            SaslFailure::Refused {
                what,
                code,
                message,
            } => Self::Kafka {
                what,
                code,
                message,
            },
            other => Self::Sasl(other),
        }
    }
}

impl AdminError {
    /// A Kafka error for `code`, or `Ok(())` when `code` is 0.
    ///
    /// # Errors
    /// [`AdminError::Kafka`] when `code` is not 0.
    pub fn check(
        code: i16,
        message: Option<&str>,
        what: impl FnOnce() -> String,
    ) -> Result<(), Self> {
        if code == 0 {
            return Ok(());
        }
        Err(Self::Kafka {
            what: what(),
            code,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }
}

/// The protocol's name for `code`: `UnknownTopicOrPartition` becomes `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn code_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE".to_owned();
    };
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_SERVER_ERROR_CODE_{code}");
    }
    let camel = error.to_string();
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { addr, source } => write!(
                f,
                "cannot reach a Kafka server at {addr}: {source} \
                 (is `spindle serve` running there? set --bootstrap or SPINDLE_BOOTSTRAP)"
            ),
            Self::Io {
                addr,
                doing,
                source,
            } => write!(f, "{doing} ({addr}): {source}"),
            Self::Protocol { addr, reason } => {
                write!(
                    f,
                    "unexpected answer from {addr}: {reason} (is it a Kafka server?)"
                )
            }
            Self::Unsupported { addr, api } => {
                write!(f, "the server at {addr} does not support the {api} API")
            }
            Self::Kafka {
                what,
                code,
                message,
            } => {
                write!(f, "{what}: {} ({code})", code_name(*code))?;
                match message {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            Self::UnknownTopic(topic) => write!(f, "unknown topic: {topic}"),
            Self::UnknownGroup(group) => write!(f, "unknown group: {group}"),
            Self::GroupNotEmpty {
                group,
                state,
                members,
            } => write!(
                f,
                "group {group} is {state} with {members} member(s): stop its consumers \
                 before resetting its offsets"
            ),
            Self::Invalid(reason) => f.write_str(reason),
            Self::Output(e) => write!(f, "cannot write the output: {e}"),
            Self::Sasl(failure) => write!(f, "{failure}"),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable { source, .. } | Self::Io { source, .. } => Some(source),
            Self::Output(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_protocol_names() {
        assert_eq!(code_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(code_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(code_name(0), "NONE");
    }

    #[test]
    fn kafka_errors_name_the_code_and_the_message() {
        let e = AdminError::check(36, Some("orders exists"), || "creating topic orders".into());
        let text = e.map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(
            text,
            "creating topic orders: TOPIC_ALREADY_EXISTS (36): orders exists"
        );
        assert!(AdminError::check(0, None, || unreachable!()).is_ok());
    }
}
