//! The one place the engine takes the partition log from (`spindle_log`), so the engine's view
//! of the log's API is visible at a glance.

pub(crate) use spindle_log::batch;
pub(crate) use spindle_log::{Clock, Log, LogConfig, Offset, SystemClock};
