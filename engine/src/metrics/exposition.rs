//! [`Exposition`]: the Prometheus text format (version 0.0.4), written by hand.
//!
//! The format is small enough not to need a crate: one `# HELP` and one `# TYPE` line per
//! family, then `name{label="value",…} number` per sample. Two traps: label values must escape
//! backslash, double quote and newline (topic and group names come from clients), and a
//! family's samples must follow its header without another family in between, so callers
//! write one family at a time across all shards.

use std::fmt::{Display, Write};

use super::histogram::HistogramSnapshot;

/// The `Content-Type` of the text this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        self.out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {}\n",
            kind.as_str()
        ));
    }

    /// One sample of the family last started.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _infallible = writeln!(self.out, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram in seconds, buckets
    /// cumulative and ending with `+Inf`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound_us, seen) in h.cumulative() {
            self.out.push_str(&bucket);
            self.labels(labels, Some(&seconds(bound_us)));
            let _infallible = writeln!(self.out, " {seen}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _infallible = writeln!(self.out, " {}", h.count());
        self.sample(&format!("{name}_sum"), labels, seconds(h.sum_us));
        self.sample(&format!("{name}_count"), labels, h.count());
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    // Writing to a String cannot fail, hence the `_infallible` bindings above.
    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let le = le.map(|le| ("le", le));
        for (i, (key, value)) in labels.iter().copied().chain(le).enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// Microseconds as a decimal number of seconds, without float rounding noise.
pub(crate) fn seconds(us: u64) -> String {
    let (whole, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Appends a label value with `\`, `"` and newline escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{LatencyHistogram, LATENCY_BOUNDS_US};
    use std::time::Duration;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut e = Exposition::default();
        e.family("t_total", "A test.", Kind::Counter);
        e.sample("t_total", &[("topic", "a\\b\"c\nd")], 7);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP t_total A test.\n# TYPE t_total counter\nt_total{topic=\"a\\\\b\\\"c\\nd\"} 7\n"
        );
    }

    #[test]
    fn a_sample_without_labels_has_no_braces() {
        let mut e = Exposition::default();
        e.sample("up", &[], 1);
        assert_eq!(e.finish(), "up 1\n");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(40));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_secs(100));
        let mut e = Exposition::default();
        e.histogram("lat_seconds", &[("shard", "0")], &h.snapshot());
        let text = e.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), LATENCY_BOUNDS_US.len() + 3);
        assert_eq!(lines[0], "lat_seconds_bucket{shard=\"0\",le=\"0.00005\"} 1");
        assert!(lines.contains(&"lat_seconds_bucket{shard=\"0\",le=\"0.0005\"} 1"));
        assert!(lines.contains(&"lat_seconds_bucket{shard=\"0\",le=\"0.001\"} 3"));
        assert!(lines.contains(&"lat_seconds_bucket{shard=\"0\",le=\"30\"} 3"));
        assert!(lines.contains(&"lat_seconds_bucket{shard=\"0\",le=\"+Inf\"} 4"));
        assert!(lines.contains(&"lat_seconds_sum{shard=\"0\"} 100.00144"));
        assert!(lines.contains(&"lat_seconds_count{shard=\"0\"} 4"));
        let counts: Vec<u64> = lines[..=LATENCY_BOUNDS_US.len()]
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(250), "0.00025");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(10_000_000), "10");
    }
}
