//! Who may do what: principals, their per-topic grants, and the secrets that identify them.
//!
//! One model serves both front doors. The gRPC gateway maps a bearer token to a [`Principal`]
//! ([`Credentials::by_secret`]); the Kafka listener maps a SASL/PLAIN user name and password to
//! one ([`Credentials::by_name_and_secret`]). Each request then asks [`Principal::allows`] for
//! the topic and [`Operation`] it is about to touch. Without credentials configured every caller
//! is [`Principal::anonymous`], who may do everything.
//!
//! Secrets are compared in constant time, and against every entry, so the time a refusal takes
//! says nothing about which entry or how much of a secret was right.

use std::sync::Arc;

use serde::Deserialize;

/// What a grant allows on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Consume, commit and read committed offsets, describe.
    Read,
    /// Produce.
    Write,
    /// Create, delete, alter, describe.
    Admin,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Admin => "admin",
        })
    }
}

/// Which topics a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPattern {
    /// Every topic (`*`).
    Any,
    /// Topics whose name starts with this (`prefix*`).
    Prefix(String),
    /// Exactly this topic.
    Exact(String),
}

impl TopicPattern {
    /// Parses `*`, `prefix*` or an exact name (of a topic, or of what else a pattern names:
    /// transactional ids, groups).
    ///
    /// # Errors
    /// A message for an empty pattern or a `*` anywhere but at the end.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let (body, wildcard) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if body.contains('*') {
            return Err(format!(
                "pattern {pattern:?}: `*` is allowed only at the end"
            ));
        }
        Ok(match (body.is_empty(), wildcard) {
            (true, true) => TopicPattern::Any,
            (true, false) => return Err("empty pattern".to_owned()),
            (false, true) => TopicPattern::Prefix(body.to_owned()),
            (false, false) => TopicPattern::Exact(body.to_owned()),
        })
    }

    /// Whether `topic` is covered.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Any => true,
            TopicPattern::Prefix(prefix) => topic.starts_with(prefix.as_str()),
            TopicPattern::Exact(name) => topic == name,
        }
    }
}

/// Operations allowed on the topics a pattern covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The topics.
    pub pattern: TopicPattern,
    /// The operations.
    pub ops: Vec<Operation>,
}

/// Whether `patterns` cover `name`; `None` (no list configured) covers every name.
fn covers(patterns: Option<&[TopicPattern]>, name: &str) -> bool {
    patterns.is_none_or(|patterns| patterns.iter().any(|p| p.matches(name)))
}

/// Who is calling, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: Arc<str>,
    /// `None` allows everything (no credentials configured).
    grants: Option<Arc<[Grant]>>,
    /// The transactional ids it may use (patterns as for topics); `None`: any.
    transactional_ids: Option<Arc<[TopicPattern]>>,
    /// The consumer groups it may use (patterns as for topics); `None`: any.
    groups: Option<Arc<[TopicPattern]>>,
}

impl Principal {
    /// The caller when no credentials are configured: may do everything.
    pub fn anonymous() -> Self {
        Self {
            name: Arc::from("anonymous"),
            grants: None,
            transactional_ids: None,
            groups: None,
        }
    }

    /// A principal limited to `grants`, with any transactional id and any group.
    pub fn new(name: &str, grants: Vec<Grant>) -> Self {
        Self {
            name: Arc::from(name),
            grants: Some(Arc::from(grants)),
            transactional_ids: None,
            groups: None,
        }
    }

    /// The same principal, limited to the transactional ids `patterns` cover.
    #[must_use]
    pub fn with_transactional_ids(self, patterns: Vec<TopicPattern>) -> Self {
        Self {
            transactional_ids: Some(Arc::from(patterns)),
            ..self
        }
    }

    /// The patterns of the transactional ids it may use; `None` for any.
    pub fn transactional_ids(&self) -> Option<&[TopicPattern]> {
        self.transactional_ids.as_deref()
    }

    /// Whether the principal may use transactional id `id` (Kafka's WRITE on the
    /// TRANSACTIONAL_ID resource).
    pub fn may_use_transactional_id(&self, id: &str) -> bool {
        covers(self.transactional_ids.as_deref(), id)
    }

    /// The same principal, limited to the consumer groups `patterns` cover.
    #[must_use]
    pub fn with_groups(self, patterns: Vec<TopicPattern>) -> Self {
        Self {
            groups: Some(Arc::from(patterns)),
            ..self
        }
    }

    /// The patterns of the consumer groups it may use; `None` for any.
    pub fn groups(&self) -> Option<&[TopicPattern]> {
        self.groups.as_deref()
    }

    /// Whether the principal may use consumer group `group` (Kafka's READ and DESCRIBE on the
    /// GROUP resource: join it, commit and fetch its offsets, describe it).
    pub fn may_use_group(&self, group: &str) -> bool {
        covers(self.groups.as_deref(), group)
    }

    /// The principal's name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The principal's grants; `None` for one that may do everything.
    pub fn grants(&self) -> Option<&[Grant]> {
        self.grants.as_deref()
    }

    /// Whether the principal may do `op` on `topic`.
    pub fn allows(&self, op: Operation, topic: &str) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants
                .iter()
                .any(|g| g.ops.contains(&op) && g.pattern.matches(topic)),
        }
    }

    /// Whether the principal may do anything at all on `topic` (it may then see the topic in
    /// listings and describe it).
    pub fn allows_any(&self, topic: &str) -> bool {
        [Operation::Read, Operation::Write, Operation::Admin]
            .into_iter()
            .any(|op| self.allows(op, topic))
    }

    /// Whether the principal may do `op` on every topic (a grant on `*`): what acts on the
    /// whole node rather than a topic (deleting a consumer group) asks for.
    pub fn allows_everywhere(&self, op: Operation) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants
                .iter()
                .any(|g| g.ops.contains(&op) && g.pattern == TopicPattern::Any),
        }
    }
}

impl Default for Principal {
    fn default() -> Self {
        Self::anonymous()
    }
}

/// The configured secrets and the principal each identifies.
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Vec<(Vec<u8>, Principal)>,
}

impl std::fmt::Debug for Credentials {
    // The secrets never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(_, p)| p.name()))
            .finish()
    }
}

impl Credentials {
    /// Builds the table from `(secret, principal)` pairs. A principal may be listed more than
    /// once with different secrets (to rotate one).
    ///
    /// # Errors
    /// A message for an empty secret or a secret listed twice.
    pub fn new(entries: impl IntoIterator<Item = (String, Principal)>) -> Result<Self, String> {
        let mut table: Vec<(Vec<u8>, Principal)> = Vec::new();
        for (secret, principal) in entries {
            if secret.is_empty() {
                return Err(format!(
                    "principal {:?} has an empty token",
                    principal.name()
                ));
            }
            if table.iter().any(|(known, _)| known == secret.as_bytes()) {
                return Err(format!(
                    "the token of principal {:?} is listed twice",
                    principal.name()
                ));
            }
            table.push((secret.into_bytes(), principal));
        }
        Ok(Self { entries: table })
    }

    /// The principal whose secret is `secret` (a bearer token).
    pub fn by_secret(&self, secret: &[u8]) -> Option<&Principal> {
        let mut found = None;
        for (known, principal) in &self.entries {
            if constant_time_eq(known, secret) {
                found = Some(principal);
            }
        }
        found
    }

    /// The principal named `name` whose secret is `secret` (a SASL/PLAIN user and password).
    pub fn by_name_and_secret(&self, name: &str, secret: &[u8]) -> Option<&Principal> {
        let mut found = None;
        for (known, principal) in &self.entries {
            let secret_matches = constant_time_eq(known, secret);
            if constant_time_eq(principal.name().as_bytes(), name.as_bytes()) && secret_matches {
                found = Some(principal);
            }
        }
        found
    }

    /// The principal named `name` (one identified otherwise than by a secret, such as by a
    /// client certificate).
    pub fn by_name(&self, name: &str) -> Option<&Principal> {
        self.entries
            .iter()
            .map(|(_, p)| p)
            .find(|p| p.name() == name)
    }

    /// The principal a verified client certificate (DER) names: the one called as its
    /// subject's common name (CN), as Kafka names `User:CN=…`.
    ///
    /// # Errors
    /// A message for a certificate that does not parse, has no common name, or names no
    /// principal.
    pub fn by_certificate(&self, der: &[u8]) -> Result<&Principal, String> {
        let name = common_name(der)?;
        self.by_name(&name)
            .ok_or_else(|| format!("client certificate CN={name} names no principal"))
    }

    /// Every secret and the principal it identifies, in configuration order (for deriving
    /// other forms of the secrets, such as SCRAM's salted keys).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Principal)> {
        self.entries
            .iter()
            .map(|(secret, p)| (secret.as_slice(), p))
    }

    /// Whether no secret is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The common name of a certificate's subject (DER).
///
/// # Errors
/// A message for a certificate that does not parse or has no common name.
pub fn common_name(der: &[u8]) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("client certificate does not parse: {e}"))?;
    let name = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| format!("client certificate {} has no common name", parsed.subject()))?;
    Ok(name.to_owned())
}

/// Compares without stopping at the first difference (the lengths may still differ in time).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(pattern: &str, ops: &[Operation]) -> Grant {
        Grant {
            pattern: TopicPattern::parse(pattern).unwrap(),
            ops: ops.to_vec(),
        }
    }

    fn credentials() -> Credentials {
        Credentials::new([
            (
                "w-token".to_owned(),
                Principal::new(
                    "writer",
                    vec![
                        grant("orders", &[Operation::Read, Operation::Write]),
                        grant("logs.*", &[Operation::Read]),
                    ],
                ),
            ),
            (
                "r-token".to_owned(),
                Principal::new("reader", vec![grant("*", &[Operation::Read])]),
            ),
            (
                "a-token".to_owned(),
                Principal::new("admin", vec![grant("*", &[Operation::Admin])]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn patterns_parse_and_match() {
        assert_eq!(TopicPattern::parse("*").unwrap(), TopicPattern::Any);
        let prefix = TopicPattern::parse("logs.*").unwrap();
        assert!(prefix.matches("logs.app") && prefix.matches("logs."));
        assert!(!prefix.matches("logs") && !prefix.matches("xlogs.app"));
        let exact = TopicPattern::parse("orders").unwrap();
        assert!(exact.matches("orders") && !exact.matches("orders2"));
        assert!(TopicPattern::parse("").is_err());
        assert!(TopicPattern::parse("a*b").is_err());
        assert!(TopicPattern::parse("**").is_err());
    }

    #[test]
    fn transactional_ids_are_any_unless_limited() {
        let writer = Principal::new("writer", vec![grant("*", &[Operation::Write])]);
        assert!(writer.may_use_transactional_id("anything"));
        let limited = writer.with_transactional_ids(vec![TopicPattern::parse("app-*").unwrap()]);
        assert!(limited.may_use_transactional_id("app-1"));
        assert!(!limited.may_use_transactional_id("other-1"));
        let none = Principal::new("none", vec![]).with_transactional_ids(vec![]);
        assert!(!none.may_use_transactional_id("app-1"));
        assert!(Principal::anonymous().may_use_transactional_id("app-1"));
    }

    #[test]
    fn groups_are_any_unless_limited() {
        let reader = Principal::new("r", vec![]);
        assert!(reader.may_use_group("anything"));
        let limited = reader.with_groups(vec![TopicPattern::parse("billing-*").unwrap()]);
        assert!(limited.may_use_group("billing-1"));
        assert!(!limited.may_use_group("audit"));
        assert!(
            limited.may_use_transactional_id("x"),
            "groups limit groups alone"
        );
        let none = Principal::new("none", vec![]).with_groups(vec![]);
        assert!(!none.may_use_group("billing-1"));
        assert!(Principal::anonymous().may_use_group("billing-1"));
    }

    #[test]
    fn grants_are_per_topic_and_operation() {
        let creds = credentials();
        let writer = creds.by_secret(b"w-token").unwrap();
        assert_eq!(writer.name(), "writer");
        assert!(writer.allows(Operation::Write, "orders"));
        assert!(writer.allows(Operation::Read, "logs.app"));
        assert!(!writer.allows(Operation::Write, "logs.app"));
        assert!(!writer.allows(Operation::Admin, "orders"));
        assert!(!writer.allows_any("payments"));
        assert!(!writer.allows_everywhere(Operation::Read));
        let reader = creds.by_secret(b"r-token").unwrap();
        assert!(reader.allows(Operation::Read, "anything"));
        assert!(!reader.allows(Operation::Write, "anything"));
        assert!(reader.allows_everywhere(Operation::Read));
        assert!(!reader.allows_everywhere(Operation::Admin));
        assert!(Principal::anonymous().allows_everywhere(Operation::Admin));
    }

    #[test]
    fn a_name_and_secret_must_belong_together() {
        let creds = credentials();
        let reader = creds.by_name_and_secret("reader", b"r-token").unwrap();
        assert_eq!(reader.name(), "reader");
        assert!(creds.by_name_and_secret("writer", b"r-token").is_none());
        assert!(creds.by_name_and_secret("reader", b"r-toke").is_none());
        assert!(creds.by_name_and_secret("nobody", b"").is_none());
        assert!(creds.by_secret(b"nope").is_none());
    }

    #[test]
    fn empty_and_repeated_secrets_are_refused() {
        let p = Principal::new("a", vec![]);
        assert!(Credentials::new([(String::new(), p.clone())]).is_err());
        assert!(Credentials::new([("t".to_owned(), p.clone()), ("t".to_owned(), p)]).is_err());
        assert!(!format!("{:?}", credentials()).contains("token"));
    }
}
