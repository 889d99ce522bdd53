//! Checkpoints: what the journal holds, put into the directory and synced,
//! then the journal removed; when the journal passes a size bound, on a
//! timer, at flush and at close.
use super::{FILE_NAME, Journal, NEXT_NAME, SET_ASIDE_NAME, Snapshot, Stored, Writer, sums};
use crate::StoreError;
use object_store::path::Path;
use std::sync::{Arc, atomic::Ordering};
use tokio::time::Duration;

/// A journal past this size is checkpointed at the next acknowledgement.
pub(super) const CHECKPOINT_BYTES: u64 = 64 << 20;
/// How often a journal holding anything is checkpointed in the background.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);

/// A journal that grew past this before its checkpoint gets a prepared
/// successor; smaller ones (short-lived stores, tests) are not worth one.
const PREPARED_FROM: u64 = 1 << 20;
/// The smallest prepared journal.
pub(super) const PREPARED_MIN: u64 = 16 << 20;
/// Room past [`CHECKPOINT_BYTES`] for the batch that crosses it.
const PREPARED_SLACK: u64 = 8 << 20;

impl Journal {
    /// Starts a checkpoint in the background, unless one is started already.
    /// The calls go on meanwhile; one that fails is retried, and reported by
    /// flush and close, which run one of their own.
    pub(super) fn start_checkpoint(&self) {
        let Some(journal) = self.me.upgrade() else {
            return;
        };
        if self.checkpoint_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.checkpoint_started.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(async move {
            let _ = journal.checkpoint().await;
            journal.checkpoint_started.store(false, Ordering::Release);
        });
    }

    /// Puts every object the journal holds into the directory, syncs them
    /// and removes the journal. The journal is set aside first, so calls go
    /// on into a new one while the objects are written.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        let _only = self.checkpointing.lock().await;
        let passing = self.passing.lock().await;
        let mut writer = self.writer.lock().await;
        let (objects, through) = self.snapshot(&mut writer)?;
        drop(passing);
        let set_aside_left = self.root.join(SET_ASIDE_NAME).exists();
        if writer.len == 0 && objects.is_empty() && !set_aside_left {
            self.written_through(through);
            return Ok(());
        }
        if set_aside_left || writer.len == 0 {
            // A checkpoint that failed left its journal set aside: both files
            // hold operations of these objects, so both go when they are in.
            let written = self.write_out(objects.clone(), &[SET_ASIDE_NAME, FILE_NAME]);
            self.written_through(through);
            written?;
            writer.file = None;
            writer.len = 0;
        } else {
            self.disk
                .rename_top(FILE_NAME, SET_ASIDE_NAME)
                .map_err(|err| self.checkpoint_failed(err.to_string()))?;
            let used = writer.len;
            writer.file = None;
            writer.len = 0;
            drop(writer);
            let journal = self
                .me
                .upgrade()
                .expect("a checkpoint runs on a live journal");
            let objects = objects.clone();
            let (done, finished) = tokio::sync::oneshot::channel();
            // A thread of its own, behind the calls: on a small machine a
            // checkpoint takes the CPU time they leave, not theirs.
            std::thread::Builder::new()
                .name("anda-checkpoint".into())
                .spawn(move || {
                    lower_priority();
                    let written = journal.write_out(objects, &[SET_ASIDE_NAME]);
                    journal.written_through(through);
                    if written.is_ok() {
                        journal.prepare_next(used);
                    }
                    let _ = done.send(written);
                })
                .map_err(|err| self.checkpoint_failed(err.to_string()))?;
            finished
                .await
                .map_err(|err| self.checkpoint_failed(err.to_string()))??;
        }
        let mut state = self.lock();
        for (path, operation, _) in objects.iter() {
            if state
                .overlay
                .get(path)
                .is_some_and(|entry| entry.operation == *operation)
            {
                state.overlay.remove(path);
            }
        }
        Ok(())
    }

    /// Every object the journal holds, once every operation on them is in
    /// the synced journal: the batch and the objects are taken together.
    /// With them, the number of the last operation they may hold: until
    /// [`Self::written_through`] it, a put they hold may reach the directory.
    fn snapshot(&self, writer: &mut Writer) -> Result<(Snapshot, u64), StoreError> {
        let (batch, taken, objects) = {
            let mut state = self.lock();
            if let Some(why) = &state.failed {
                return Err(StoreError::OutcomeUnknown(why.clone()));
            }
            let objects: Vec<(Path, u64, Option<Stored>)> = state
                .overlay
                .iter()
                .map(|(path, entry)| (path.clone(), entry.operation, entry.value.clone()))
                .collect();
            let batch = std::mem::take(&mut state.batch);
            state.checkpointing_through = state.taken;
            (batch, state.taken, objects)
        };
        self.append(writer, batch, taken)?;
        Ok((Arc::new(objects), taken))
    }

    /// Ends a snapshot's writing: deletes may forget what it held again.
    fn written_through(&self, through: u64) {
        let mut state = self.lock();
        if state.checkpointing_through == through {
            state.checkpointing_through = 0;
        }
    }

    fn checkpoint_failed(&self, err: String) -> StoreError {
        StoreError::Engine(format!(
            "cannot checkpoint the journal into {}: {err}; nothing acknowledged is lost, \
             the journal keeps it until a checkpoint succeeds",
            self.root.display()
        ))
    }

    /// Writes `objects` into the directory, syncs them, then removes the
    /// `journals` that held their operations.
    fn write_out(&self, objects: Snapshot, journals: &[&str]) -> Result<(), StoreError> {
        // Puts before deletes: a generation replaced since the last
        // checkpoint is removed after its successor is in the same directory,
        // which then never empties only to be made again.
        let (puts, deletes): (Vec<_>, Vec<_>) =
            objects.iter().partition(|(_, _, value)| value.is_some());
        for (path, _, value) in puts.into_iter().chain(deletes) {
            match value {
                Some(stored) => self.disk.put(path.as_ref(), &stored.data).map(|()| {
                    self.sums.record(path.as_ref(), &stored.data);
                    self.files.added(path.as_ref());
                }),
                None => self.disk.delete(path.as_ref()).map(|()| {
                    self.sums.forget(path.as_ref());
                    self.files.removed(path.as_ref());
                }),
            }
            .map_err(|err| self.checkpoint_failed(format!("{path}: {err}")))?;
        }
        self.sums
            .save(|name, bytes| self.disk.put(name, bytes))
            .map_err(|err| self.checkpoint_failed(format!("{}: {err}", sums::FILE_NAME)))?;
        self.disk
            .sync_all()
            .map_err(|err| self.checkpoint_failed(err.to_string()))?;
        for name in journals {
            self.disk
                .remove(name)
                .map_err(|err| self.checkpoint_failed(err.to_string()))?;
        }
        Ok(())
    }

    /// Prepares the file the journal after the next checkpoint starts in,
    /// as long as the one just checkpointed (at least [`PREPARED_MIN`]),
    /// for a store whose journal grows that far: its appends then reuse
    /// written blocks. Best effort: without one, a new file is made.
    fn prepare_next(&self, used: u64) {
        // A recorded run (the power-cut harness) prepares from its first
        // checkpoint, and small, so that the disks it builds hold prepared
        // journals too.
        let (from, min) = if self.disk.traced() {
            (1, 64 << 10)
        } else {
            (PREPARED_FROM, PREPARED_MIN)
        };
        if used < from
            || self.closing.load(Ordering::Acquire)
            || self.next_ready.load(Ordering::Acquire)
        {
            return;
        }
        let len = used.clamp(min, CHECKPOINT_BYTES + PREPARED_SLACK);
        if self.disk.prepare(NEXT_NAME, len).is_ok() {
            self.next_ready.store(true, Ordering::Release);
        } else {
            let _ = self.disk.remove(NEXT_NAME);
        }
    }

    pub(super) fn checkpoint_in_background(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let journal = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(CHECKPOINT_INTERVAL).await;
                let Some(journal) = journal.upgrade() else {
                    return;
                };
                if journal.finished.load(Ordering::Acquire) {
                    return;
                }
                if journal.holds_anything() {
                    // A failure is retried, and reported by flush and close.
                    let _ = journal.checkpoint().await;
                }
            }
        });
    }

    fn holds_anything(&self) -> bool {
        let state = self.lock();
        !state.overlay.is_empty() || !state.batch.is_empty()
    }
}

/// Lowers the calling thread's scheduling priority (nice +10): it gets about
/// a tenth of a CPU the calls also want, and all of one they leave idle.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let thread = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, thread);
        libc::setpriority(
            libc::PRIO_PROCESS,
            thread,
            current.saturating_add(10).min(19),
        );
    }
}
