//! [`Progress`]: the live line on stderr while a run goes (indicatif), off for `--json` and when
//! stderr is not a terminal, so scripts and logs get clean output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bench::args::Stop;
use crate::bench::throughput::{Sample, Totals};

/// A progress bar (for `--count` runs) or a timed bar (for `--duration-secs` runs), or nothing.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    stop: Stop,
}

impl Progress {
    /// A progress display for a run that ends at `stop` after a warm-up of `warmup`, shown
    /// only if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, stop: Stop, warmup: Duration) -> Self {
        if !wanted || !std::io::stderr().is_terminal() {
            return Self::disabled();
        }
        let (len, template) = match stop {
            Stop::Count(n) => (
                n,
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} msgs  {msg}",
            ),
            Stop::Duration(d) => (
                d.as_secs(),
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        if !warmup.is_zero() {
            bar.set_message(format!("warming up for {} s", warmup.as_secs()));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar: Some(bar),
            stop,
        }
    }

    /// Shows nothing.
    pub fn disabled() -> Self {
        Self {
            bar: None,
            stop: Stop::Count(0),
        }
    }

    /// Shows the totals and the latest per-second rates.
    pub fn update(&self, totals: &Totals, latest: Option<&Sample>, elapsed: Duration) {
        let Some(bar) = &self.bar else { return };
        match self.stop {
            // A consume-only run counts what it reads.
            Stop::Count(_) if totals.produced_messages == 0 => {
                bar.set_position(totals.consumed_messages);
            }
            Stop::Count(_) => bar.set_position(totals.produced_messages),
            Stop::Duration(_) => bar.set_position(elapsed.as_secs()),
        }
        let Some(s) = latest else { return };
        let mut msg = format!(
            "{:.0} msgs/s  {:.1} MB/s",
            s.messages_per_sec,
            s.bytes_per_sec / 1e6
        );
        if totals.consumed_messages > 0 {
            msg.push_str(&format!("  consumed {:.0} msgs/s", s.consumed_per_sec));
        }
        if totals.errors > 0 {
            msg.push_str(&format!("  errors {}", totals.errors));
        }
        bar.set_message(msg);
    }

    /// Removes the line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
