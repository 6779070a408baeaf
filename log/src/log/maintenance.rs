//! Maintenance under the write lock: truncate, retention (and roll by age), close.

use std::rc::Rc;

use super::{Log, RetentionOutcome, Spare};
use crate::error::{IoContext, LogError};
use crate::io;
use crate::limits::{READ_WINDOW_BYTES, SPARE_IDLE_MS, SPARE_SEGMENTS_MAX};
use crate::offset::Offset;
use crate::segment::{log_path, Appender, BatchCursor, Segment, Step, NO_TIMESTAMP};

impl Log {
    /// Removes every record at or after `to`. The log ends on a batch boundary, so the batch
    /// holding `to` goes entirely (the log end becomes its base offset). `to` at or below the
    /// start offset empties the log, which then continues at `to`. Producer snapshots above
    /// the new end go too.
    ///
    /// # Errors
    /// [`LogError::Io`] if a file cannot be read, truncated, removed or created;
    /// [`LogError::Closed`].
    pub async fn truncate(&self, to: Offset) -> Result<(), LogError> {
        let _permit = self.lock().await?;
        self.truncate_locked(to).await?;
        crate::producer_snapshot::remove_above(&self.dir, self.next_offset()).await
    }

    async fn truncate_locked(&self, to: Offset) -> Result<(), LogError> {
        let (start, hw, next) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            (st.start_offset, st.high_watermark, st.next_offset)
        };
        if to >= next {
            return Ok(());
        }
        if to >= hw {
            self.truncate_pending(to);
            return Ok(());
        }
        if to <= start {
            return self.reset_to(to.min(start)).await;
        }
        self.truncate_written(to).await
    }

    /// Drops unwritten batches from the one holding `to` on.
    fn truncate_pending(&self, to: Offset) {
        let mut st = self.state.borrow_mut();
        let keep = st.pending.partition_point(|b| b.last < to);
        let cut = st.pending.get(keep).map_or(st.next_offset, |b| b.base);
        st.pending.truncate(keep);
        st.tail.truncate_from(cut);
        let (start, hw) = (st.start_offset, st.high_watermark);
        st.set_watermarks(start, hw, cut);
    }

    /// Cuts written data at the batch holding `to` (start < to < high watermark).
    async fn truncate_written(&self, to: Offset) -> Result<(), LogError> {
        let start = {
            let st = self.state.borrow();
            self.walk_start(&st, to, None)
        };
        let mut cursor = start.cursor(READ_WINDOW_BYTES);
        let (position, cut) = loop {
            match cursor.next_checked().await? {
                Some(b) if b.last >= to => break (b.position, b.base),
                Some(_) => continue,
                None => break (cursor.position(), cursor.expected_base()),
            }
        };
        if cut <= self.state.borrow().start_offset {
            // `to` lies in the first batch: nothing remains.
            return self.reset_to(cut).await;
        }
        // Segments wholly at or after the cut go; the one holding it is cut (or goes too if the
        // cut is its first batch, leaving its predecessor active).
        let (removed, forget_cleaned): (Vec<Segment>, bool) = {
            let mut st = self.state.borrow_mut();
            let keep = st.segments.partition_point(|s| s.base < cut);
            assert!(keep >= 1, "the cut lies after the start offset");
            st.pending.clear();
            st.tail.truncate_from(cut);
            let removed = st.segments.split_off(keep);
            // From here on reads see the log as it will be: the active segment ends at the cut.
            let a = st.active_mut();
            if a.next > cut {
                a.size = position;
                a.next = cut;
            }
            a.index.truncate_at_position(a.size);
            let start = st.start_offset;
            st.set_watermarks(start, cut, cut);
            // What is appended again from the cut on has not been compacted.
            let forget_cleaned = st.cleaned_to > cut;
            st.cleaned_to = st.cleaned_to.min(cut);
            (removed, forget_cleaned)
        };
        if forget_cleaned {
            super::offset_file::CLEANED_TO.forget(&self.dir).await?;
        }
        for s in &removed {
            s.remove_files(&self.dir).await?;
        }
        self.reopen_active().await
    }

    /// Makes the last segment, already cut in memory, active again: truncates its file,
    /// recomputes its max timestamp, resumes the appender.
    async fn reopen_active(&self) -> Result<(), LogError> {
        let (path, base, size, last_entry) = {
            let st = self.state.borrow();
            let a = st.active();
            (a.path.clone(), a.base, a.size, a.index.last())
        };
        let file = Rc::new(io::open_rw(&path).await?);
        file.truncate(size)
            .await
            .context(|| format!("truncating {} to {size} bytes", path.display()))?;
        let (relative, from, mut max_ts) = last_entry.unwrap_or((0, 0, NO_TIMESTAMP));
        let mut cursor = BatchCursor::new(
            file.clone(),
            path.clone(),
            from,
            base.plus(u64::from(relative)),
            size,
            READ_WINDOW_BYTES,
        );
        loop {
            match cursor.next().await? {
                Step::Batch(b) => max_ts = max_ts.max(b.max_timestamp),
                Step::End => break,
                Step::Damaged { position, reason } => {
                    return Err(LogError::Corrupt {
                        file: path,
                        position,
                        reason,
                    })
                }
            }
        }
        let appender = Appender::resume(&file, &path, size).await?;
        if self.config.borrow().fsync != crate::config::FsyncPolicy::Never {
            self.sync_file(&file, &path).await?;
        }
        let mut st = self.state.borrow_mut();
        st.appender = appender;
        let a = st.active_mut();
        a.file = file;
        a.max_timestamp = max_ts;
        a.bytes_since_index = size - from;
        Ok(())
    }

    /// Removes every segment and starts an empty one at `base`.
    async fn reset_to(&self, base: Offset) -> Result<(), LogError> {
        // A start offset records were deleted below no longer means anything here.
        super::offset_file::LOG_START.forget(&self.dir).await?;
        super::offset_file::CLEANED_TO.forget(&self.dir).await?;
        let removed = {
            let mut st = self.state.borrow_mut();
            st.pending.clear();
            st.tail.clear();
            st.set_watermarks(base, base, base);
            st.cleaned_to = base;
            std::mem::take(&mut st.segments)
        };
        for s in &removed {
            s.remove_files(&self.dir).await?;
        }
        let path = log_path(&self.dir, base);
        let file = io::open_rw(&path).await?;
        file.truncate(0)
            .await
            .context(|| format!("truncating {}", path.display()))?;
        let appender = Appender::resume(&file, &path, 0).await?;
        io::sync_dir_async(&self.dir).await?;
        let mut st = self.state.borrow_mut();
        st.segments.push(Segment::empty(base, Rc::new(file), path));
        st.appender = appender;
        Ok(())
    }

    /// Rolls the active segment if it is older than `segment_ms`, then deletes the oldest whole
    /// segments while the log's segment bytes exceed `retention_bytes`, those whose newest
    /// record is older than `retention_ms`, and those wholly below a start offset that deleting
    /// records set. Never deletes the active segment.
    ///
    /// Their files become spares for the next rolls to write over, as many as the log rolled
    /// since the last run (at least `SPARE_SEGMENTS_MAX`): a log that rolls faster than
    /// retention runs would otherwise delete files only to create as many new ones, and both
    /// cost the disk (see `start_segment_file` and `io::remove_gradually`). Spares beyond that
    /// count, and those no roll has taken for `SPARE_IDLE_MS`, are deleted.
    ///
    /// # Errors
    /// [`LogError::Io`] if rolling or a removal fails; [`LogError::Closed`].
    pub async fn enforce_retention(&self) -> Result<RetentionOutcome, LogError> {
        let now = self.clock.now_ms();
        let (unwanted, spares_wanted) = {
            let mut st = self.state.borrow_mut();
            let wanted = SPARE_SEGMENTS_MAX.max(std::mem::take(&mut st.rolls_since_retention));
            let (mut unwanted, mut kept): (Vec<Spare>, Vec<Spare>) = std::mem::take(&mut st.spares)
                .into_iter()
                .partition(|s| now.saturating_sub(s.since_ms) >= SPARE_IDLE_MS);
            // The oldest go first; rolls take the newest.
            let surplus = kept.len().saturating_sub(wanted);
            unwanted.extend(kept.drain(..surplus));
            st.spares = kept;
            (unwanted, wanted)
        };
        for Spare { path, .. } in unwanted {
            tracing::debug!(file = %path.display(), "deleting a spare segment file no roll needs");
            io::remove_in_background(path);
        }
        let victims = {
            let _permit = self.lock().await?;
            self.retire_segments().await?
        };
        // The files go without the write lock: retiring waits for reads, and appends need not
        // wait for it. Deleting is slow on purpose (`io::remove_gradually`) and runs in its own
        // task, so that neither the shard's other partitions nor a shutdown wait for it.
        let mut outcome = RetentionOutcome::default();
        for victim in victims {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += victim.disk_bytes();
            tracing::debug!(file = %victim.path.display(), "retention: retiring segment");
            let retired = victim.retire(&self.dir).await?;
            let spare = retired.unread && {
                let mut st = self.state.borrow_mut();
                let room = !st.closed && st.spares.len() < spares_wanted;
                if room {
                    st.spares.push(Spare {
                        path: retired.path.clone(),
                        since_ms: now,
                    });
                }
                room
            };
            if !spare {
                io::remove_in_background(retired.path);
            }
        }
        Ok(outcome)
    }

    /// Rolls the active segment if it is too old, and takes the segments that retention deletes
    /// out of the log. Requires the write lock.
    async fn retire_segments(&self) -> Result<Vec<Segment>, LogError> {
        let config = self.config();
        let now = self.clock.now_ms();
        let aged = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            let a = st.active();
            match (config.segment_ms, a.first_write_ms) {
                (Some(ms), Some(first)) if a.size > 0 => {
                    now.saturating_sub(first) >= i64::try_from(ms).unwrap_or(i64::MAX)
                }
                _ => false,
            }
        };
        if aged {
            // The segment it seals may be among the victims.
            self.roll_under_lock().await?;
        }
        let mut victims = Vec::new();
        loop {
            let victim = {
                let mut st = self.state.borrow_mut();
                if st.segments.len() <= 1 {
                    break;
                }
                let total: u64 = st.segments.iter().map(|s| s.size).sum();
                let oldest = &st.segments[0];
                let by_size = config.retention_bytes.is_some_and(|max| total > max);
                let by_age = config.retention_ms.is_some_and(|ms| {
                    oldest.max_timestamp < now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))
                });
                // Records deleted by hand (`delete_records_before`) to its end or beyond.
                let deleted = oldest.next <= st.start_offset;
                if !(by_size || by_age || deleted) {
                    break;
                }
                let victim = st.segments.remove(0);
                let start = st.segments[0].base.max(st.start_offset);
                let (hw, next) = (st.high_watermark, st.next_offset);
                st.set_watermarks(start, hw, next);
                st.tail.drop_before(start);
                victim
            };
            victims.push(victim);
        }
        Ok(victims)
    }

    /// Flushes, syncs and closes every file. Later calls fail with [`LogError::Closed`];
    /// closing twice is fine.
    ///
    /// # Errors
    /// [`LogError::Io`] if the final write, sync or index write fails.
    pub async fn close(&self) -> Result<(), LogError> {
        let target = {
            let st = self.state.borrow();
            if st.closed {
                return Ok(());
            }
            st.next_offset
        };
        let _permit = self.lock().await?;
        self.flush_locked(target).await?;
        let (file, path, size, indexes) = {
            let st = self.state.borrow();
            let a = st.active();
            (
                a.file.clone(),
                a.path.clone(),
                a.size,
                a.encoded_indexes(&self.dir),
            )
        };
        file.truncate(size)
            .await
            .context(|| format!("truncating {} to {size} bytes", path.display()))?;
        self.sync_file(&file, &path).await?;
        crate::segment::write_index_files(indexes, true).await?;
        drop(file);
        let segments = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            st.tail.clear();
            std::mem::take(&mut st.segments)
        };
        for s in segments {
            if let Ok(file) = Rc::try_unwrap(s.file) {
                file.close()
                    .await
                    .context(|| format!("closing {}", s.path.display()))?;
            }
        }
        Ok(())
    }
}
