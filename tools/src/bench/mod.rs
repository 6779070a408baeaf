//! `spindle-bench`: load generators and latency reports.
