//! [`Report`]: what a run measured, printed as text or as one JSON object, and saved.
//!
//! The JSON keys are the same in every mode where they mean the same thing, so scripts can
//! compare an embedded run with a Kafka-protocol run: `messages_per_sec`, `bytes_per_sec`
//! (payload: record values only, no keys or framing), `latency_us` (per produce request, from
//! its intended send time to its acknowledgement), `errors`, `throughput_series`,
//! `latency_series` (count, p50, p99 and max of the requests intended in each second) and
//! `config` (the flags of the run). A run with a target rate adds `send_delay_us`: how late
//! its requests left after their intended times, the generator's own lag, which the latency
//! includes. Consumers, where a mode has them, add `consume`; the embedded mode adds `syncs`
//! when its writes were synced (group commit at work: how many batches each sync made
//! durable).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::bench::args::LoadArgs;
use crate::bench::latency::{Latency, LatencySample};
use crate::bench::plot;
use crate::bench::producer_task::ProducerOutcome;
use crate::bench::throughput::{Sample, Totals};

/// What the consumers of a run measured.
#[derive(Debug, Clone)]
pub struct ConsumeReport {
    /// Time from the first fetch to the last record counted.
    pub elapsed: Duration,
    /// Records read.
    pub messages: u64,
    /// Payload bytes read (record values).
    pub bytes: u64,
    /// End-to-end latency per batch: from the producer's timestamp (ms resolution) to its
    /// arrival at a consumer.
    pub e2e: Latency,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// `embedded`, `kafka` or `grpc`.
    pub mode: &'static str,
    /// The run's settings, echoed into the JSON.
    pub config: Value,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Final counters.
    pub totals: Totals,
    /// Batches acknowledged.
    pub batches: u64,
    /// Produce latency per batch.
    pub latency: Latency,
    /// How late the producers sent each request after its intended time (paced runs only;
    /// empty otherwise). See [`ProducerOutcome::send_delay`].
    pub send_delay: Latency,
    /// The same, second by second.
    pub latency_series: Vec<LatencySample>,
    /// Per-second throughput.
    pub series: Vec<Sample>,
    /// The first error met, if any (the rest are only counted).
    pub first_error: Option<String>,
    /// Consumer figures, when the run had consumers.
    pub consume: Option<ConsumeReport>,
    /// Syncs the engine made during the measured part of the run, when it made any (embedded
    /// mode: durable write rounds and fdatasyncs).
    pub syncs: Option<u64>,
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

impl Report {
    /// The report of a run with producers only, from their merged `outcome`: no consumer
    /// figures and no sync count (a mode that counts syncs sets `syncs` itself).
    pub fn produced(
        mode: &'static str,
        config: Value,
        elapsed: Duration,
        totals: Totals,
        series: Vec<Sample>,
        latency_series: Vec<LatencySample>,
        outcome: ProducerOutcome,
    ) -> Report {
        Report {
            mode,
            config,
            elapsed,
            totals,
            batches: outcome.batches,
            latency: outcome.latency,
            send_delay: outcome.send_delay,
            latency_series,
            series,
            first_error: outcome.first_error,
            consume: None,
            syncs: None,
        }
    }

    /// Acknowledged messages per second over the run.
    pub fn messages_per_sec(&self) -> f64 {
        per_sec(self.totals.produced_messages, self.elapsed)
    }

    /// Acknowledged payload bytes per second over the run.
    pub fn bytes_per_sec(&self) -> f64 {
        per_sec(self.totals.produced_bytes, self.elapsed)
    }

    /// Acknowledged batches per sync: how many producers' batches one group commit carried.
    fn batches_per_sync(&self, syncs: u64) -> f64 {
        if syncs > 0 {
            self.batches as f64 / syncs as f64
        } else {
            0.0
        }
    }

    /// The JSON report.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "mode": self.mode,
            "config": self.config,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "messages": self.totals.produced_messages,
            "bytes": self.totals.produced_bytes,
            "batches": self.batches,
            "errors": self.totals.errors,
            "first_error": self.first_error,
            "messages_per_sec": self.messages_per_sec(),
            "bytes_per_sec": self.bytes_per_sec(),
            "mb_per_sec": self.bytes_per_sec() / 1e6,
            "latency_us": self.latency.summary(),
            "latency_histogram": self.latency.buckets(),
            "throughput_series": self.series,
            "latency_series": self.latency_series,
        });
        if self.send_delay.count() > 0 {
            v["send_delay_us"] = json!(self.send_delay.summary());
        }
        if let Some(syncs) = self.syncs {
            v["syncs"] = json!({
                "count": syncs,
                "per_sec": per_sec(syncs, self.elapsed),
                "batches_per_sync": self.batches_per_sync(syncs),
            });
        }
        if let Some(c) = &self.consume {
            v["consume"] = json!({
                "elapsed_secs": c.elapsed.as_secs_f64(),
                "messages": c.messages,
                "bytes": c.bytes,
                "messages_per_sec": per_sec(c.messages, c.elapsed),
                "bytes_per_sec": per_sec(c.bytes, c.elapsed),
                "e2e_latency_us": c.e2e.summary(),
            });
        }
        v
    }

    /// Writes the human-readable report.
    ///
    /// # Errors
    /// Write errors of `out`.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let consume_only = self.totals.produced_messages == 0 && self.consume.is_some();
        if !consume_only {
            writeln!(
                out,
                "{}: {} messages ({:.1} MB) in {:.2} s, {} batches, {} errors",
                self.mode,
                self.totals.produced_messages,
                self.totals.produced_bytes as f64 / 1e6,
                self.elapsed.as_secs_f64(),
                self.batches,
                self.totals.errors
            )?;
            writeln!(
                out,
                "throughput: {:.0} msgs/s, {:.1} MB/s",
                self.messages_per_sec(),
                self.bytes_per_sec() / 1e6
            )?;
            write_latency(out, "produce latency", &self.latency)?;
            if self.send_delay.count() > 0 {
                let s = self.send_delay.summary();
                writeln!(
                    out,
                    "sent late (µs, the generator's own lag, part of the latency): p50 {} | p99 {} | p99.9 {} | max {}",
                    s.p50, s.p99, s.p999, s.max
                )?;
            }
            if let Some(syncs) = self.syncs {
                writeln!(
                    out,
                    "syncs: {syncs} ({:.0}/s), {:.1} batches per sync",
                    per_sec(syncs, self.elapsed),
                    self.batches_per_sync(syncs)
                )?;
            }
        }
        if let Some(c) = &self.consume {
            writeln!(
                out,
                "consumed: {} messages ({:.1} MB of batches) in {:.2} s, {:.0} msgs/s, {:.1} MB/s",
                c.messages,
                c.bytes as f64 / 1e6,
                c.elapsed.as_secs_f64(),
                per_sec(c.messages, c.elapsed),
                per_sec(c.bytes, c.elapsed) / 1e6
            )?;
            if c.e2e.count() > 0 {
                write_latency(out, "end-to-end latency (ms clock)", &c.e2e)?;
            }
        }
        if let Some(e) = &self.first_error {
            writeln!(out, "first error: {e}")?;
        }
        Ok(())
    }

    /// Prints the report as `args` asks (JSON on stdout or text) and writes `--json-out` and
    /// `--plot`.
    ///
    /// # Errors
    /// Failures writing stdout or the output files.
    pub fn emit(&self, args: &LoadArgs) -> anyhow::Result<()> {
        let json = self.to_json();
        let mut stdout = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer(&mut stdout, &json).context("writing JSON to stdout")?;
            writeln!(stdout).context("writing stdout")?;
        } else {
            self.write_text(&mut stdout).context("writing stdout")?;
        }
        if let Some(path) = &args.json_out {
            write_json(path, &json)?;
        }
        if let Some(path) = &args.plot {
            plot::draw(path, self).with_context(|| format!("drawing {}", path.display()))?;
        }
        Ok(())
    }
}

fn write_json(path: &Path, json: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(json).context("serialising the report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// The percentiles on one line, then a compact histogram: one row per power-of-two bucket with
/// a bar scaled to the fullest bucket.
fn write_latency(out: &mut impl Write, title: &str, latency: &Latency) -> std::io::Result<()> {
    let s = latency.summary();
    writeln!(
        out,
        "{title} (µs): p50 {} | p99 {} | p99.9 {} | p99.99 {} | max {}  (mean {:.0}, n={})",
        s.p50, s.p99, s.p999, s.p9999, s.max, s.mean, s.count
    )?;
    let buckets = latency.buckets();
    let fullest = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    for b in &buckets {
        let bar = "#".repeat((b.count * 40).div_ceil(fullest) as usize);
        let share = 100.0 * b.count as f64 / s.count.max(1) as f64;
        writeln!(out, "  <= {:>9} µs {:>6.2}% {bar}", b.le_us, share)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let mut latency = Latency::new();
        for us in [100, 200, 300, 5000] {
            latency.record_us(us);
        }
        Report {
            mode: "embedded",
            config: json!({"producers": 1}),
            elapsed: Duration::from_secs(2),
            totals: Totals {
                produced_messages: 1000,
                produced_bytes: 1_024_000,
                ..Totals::default()
            },
            batches: 16,
            latency,
            send_delay: Latency::new(),
            latency_series: Vec::new(),
            series: vec![Sample {
                second: 1.0,
                messages_per_sec: 500.0,
                bytes_per_sec: 512_000.0,
                consumed_per_sec: 0.0,
            }],
            first_error: None,
            consume: None,
            syncs: None,
        }
    }

    #[test]
    fn json_has_the_keys_scripts_rely_on() {
        let v = sample_report().to_json();
        assert_eq!(v["messages_per_sec"].as_f64(), Some(500.0));
        assert_eq!(v["bytes_per_sec"].as_f64(), Some(512_000.0));
        for key in ["p50", "p99", "p999", "p9999", "max"] {
            assert!(v["latency_us"][key].is_u64(), "latency_us.{key}");
        }
        assert_eq!(v["latency_us"]["max"].as_u64(), Some(5003));
        assert_eq!(v["errors"].as_u64(), Some(0));
        assert!(v["throughput_series"].is_array());
        assert!(v["latency_histogram"].is_array());
        assert!(v.get("consume").is_none());
        assert!(v.get("syncs").is_none());
        assert!(
            v.get("send_delay_us").is_none(),
            "an unpaced run has no send delay"
        );
    }

    #[test]
    fn a_paced_run_reports_how_late_its_requests_were_sent() {
        let mut r = sample_report();
        for us in [3, 5, 8, 700] {
            r.send_delay.record_us(us);
        }
        let v = r.to_json();
        assert_eq!(v["send_delay_us"]["count"].as_u64(), Some(4), "{v}");
        assert_eq!(v["send_delay_us"]["p50"].as_u64(), Some(5), "{v}");
        assert!(v["send_delay_us"]["max"].as_u64() >= Some(700), "{v}");
        let mut out = Vec::new();
        r.write_text(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("sent late (µs"), "{text}");
    }

    #[test]
    fn syncs_say_how_many_batches_each_carried() {
        let mut r = sample_report();
        r.syncs = Some(4);
        let v = r.to_json();
        assert_eq!(v["syncs"]["count"].as_u64(), Some(4));
        assert_eq!(v["syncs"]["per_sec"].as_f64(), Some(2.0));
        assert_eq!(v["syncs"]["batches_per_sync"].as_f64(), Some(4.0));
        let mut out = Vec::new();
        r.write_text(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("syncs: 4 (2/s), 4.0 batches per sync"),
            "{text}"
        );
    }

    #[test]
    fn consumer_figures_appear_under_consume() {
        let mut r = sample_report();
        r.consume = Some(ConsumeReport {
            elapsed: Duration::from_secs(1),
            messages: 10,
            bytes: 100,
            e2e: Latency::new(),
        });
        let v = r.to_json();
        assert_eq!(v["consume"]["messages_per_sec"].as_f64(), Some(10.0));
        assert!(v["consume"]["e2e_latency_us"]["p99"].is_u64());
    }

    #[test]
    fn text_report_names_throughput_and_percentiles() {
        let mut out = Vec::new();
        sample_report().write_text(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("500 msgs/s"), "{text}");
        assert!(text.contains("p99.99"), "{text}");
        assert!(text.contains("µs"), "{text}");
    }
}
