//! [`NamePattern`]: a regular expression matched against whole names, as Kafka matches the
//! patterns of KIP-848 subscriptions and of ListTransactions (RE2J there, the `regex` crate
//! here: the same RE2 syntax, and linear-time matching, so no pattern a client sends can make
//! the node backtrack for long).

use regex::{Regex, RegexBuilder};

/// The most bytes a compiled pattern may take (`regex`'s size limit): a pattern that needs more
/// is refused rather than held in memory.
pub const PATTERN_SIZE_MAX: usize = 1 << 20;

/// The longest pattern accepted, in bytes: compiling is linear in the pattern's length but runs
/// on the shard that serves the request, so a pattern of megabytes is refused before it is
/// parsed. Topic names are at most 249 bytes; this leaves room for long alternations of them.
pub const PATTERN_BYTES_MAX: usize = 16 * 1024;

/// A regular expression that matches a name only as a whole.
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    whole: Regex,
}

impl NamePattern {
    /// Compiles `source` (RE2 syntax).
    ///
    /// # Errors
    /// Why it does not compile, naming the pattern, on one line.
    pub fn new(source: &str) -> Result<Self, String> {
        if source.len() > PATTERN_BYTES_MAX {
            return Err(format!(
                "a pattern of {} bytes is longer than the {PATTERN_BYTES_MAX} allowed",
                source.len()
            ));
        }
        let whole = RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(PATTERN_SIZE_MAX)
            .build()
            .map_err(|e| format!("{source:?}: {}", e.to_string().replace('\n', " ")))?;
        Ok(Self {
            source: source.to_owned(),
            whole,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.whole.is_match(name)
    }
}

/// Two patterns are the same when written the same.
impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_names_only() {
        let p = NamePattern::new("orders(-eu)?|pay.*").expect("compiles");
        assert!(p.matches("orders"));
        assert!(p.matches("orders-eu"));
        assert!(p.matches("payments"));
        assert!(
            !p.matches("old-orders"),
            "a match inside the name is not one"
        );
        assert!(!p.matches("orders-us"));
        let refused = NamePattern::new("orders(").expect_err("does not compile");
        assert!(refused.starts_with("\"orders(\": "), "{refused}");
        assert!(!refused.contains('\n'));
        let long = "a".repeat(PATTERN_BYTES_MAX + 1);
        let refused = NamePattern::new(&long).expect_err("too long");
        assert!(refused.contains("longer than"), "{refused}");
    }
}
