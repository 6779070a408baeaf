//! [`NamePattern`]: a regular expression matched against whole names, as Kafka matches the
//! patterns of KIP-848 subscriptions and of ListTransactions (RE2J there, the `regex` crate
//! here: the same RE2 syntax, and linear-time matching, so no pattern a client sends can make
//! the node backtrack for long).

use regex::{Regex, RegexBuilder};

/// The most bytes a compiled pattern may take (`regex`'s size limit): a pattern that needs more
/// is refused rather than held in memory.
pub const PATTERN_SIZE_MAX: usize = 1 << 20;

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
    }
}
