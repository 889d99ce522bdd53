//! A write-ahead journal beneath a directory store's sidecar layout.
//!
//! AndaDB writes one commit as some seventy objects, and a directory store
//! used to make each durable on its own: a file fsync and a directory fsync
//! per object, hundreds per commit. Here every backend operation (a put or a
//! delete, as MetaStore issues them) is held in memory, where reads and
//! listings see it first, and gathered into the next batch of one journal
//! file. A call that tells its caller "done" ends in [`Journal::sync`]: the
//! batch is appended and made durable with one `fdatasync`, and calls that
//! arrive meanwhile share the next one (group commit). Above MetaStore,
//! [`Staged`] holds what the engine writes until that point and passes it
//! down then, outside the engine's lock (`staged.rs`).
//!
//! Files reach the directory only at a checkpoint, after the journal holding
//! them is durable: when the journal passes [`checkpoint::CHECKPOINT_BYTES`],
//! every [`checkpoint::CHECKPOINT_INTERVAL`] while it holds anything, and at
//! close (`checkpoint.rs`). An object
//! written and then replaced or deleted in between never reaches it. The
//! checkpoint writes each object's latest state, syncs them, then removes
//! the journal. A process that stops before that leaves the journal behind,
//! and the next open replays it into the directory before AndaDB reads
//! anything: the durable state is always what a prefix of the engine's
//! writes left, which is what AndaDB's own recovery expects of a store that
//! stopped mid-commit.
mod checkpoint;
mod disk;
mod files;
mod format;
mod staged;
mod store;
pub(crate) mod sums;
#[cfg(test)]
mod tests;

use crate::StoreError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use disk::Disk;
use format::Operation;
use object_store::{local::LocalFileSystem, path::Path};
pub(crate) use staged::Staged;
use std::{
    collections::HashMap,
    fs::File,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};
pub(crate) use store::JournalStore;

/// The journal's file, at the top of the store directory.
pub const FILE_NAME: &str = "anda.journal";
/// The journal a running checkpoint is putting into the directory, set aside
/// so that new batches go on into a fresh [`FILE_NAME`] meanwhile.
pub const SET_ASIDE_NAME: &str = "anda.journal.0";
/// The next journal, prepared ahead by a checkpoint (see [`Disk::prepare`]);
/// it holds nothing until it takes [`FILE_NAME`].
const NEXT_NAME: &str = "anda.journal.next";

/// An object's state in memory, until a checkpoint puts it in the directory.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub data: Bytes,
    pub modified: DateTime<Utc>,
    /// The number of the operation that wrote it: its ETag.
    pub operation: u64,
}

/// What a checkpoint writes: each object's path, the number of the
/// operation that last changed it, and its state then.
type Snapshot = Arc<Vec<(Path, u64, Option<Stored>)>>;

struct Entry {
    operation: u64,
    /// `None` for a delete.
    value: Option<Stored>,
}

struct State {
    overlay: HashMap<Path, Entry, foldhash::fast::RandomState>,
    /// Operations not yet appended to the file.
    batch: format::Batch,
    /// The number of the last operation taken.
    taken: u64,
    /// Why the journal stopped accepting operations, once a sync failed.
    failed: Option<String>,
    /// The last operation a running checkpoint may put into the directory
    /// (0 when none runs).
    checkpointing_through: u64,
}

struct Writer {
    file: Option<File>,
    len: u64,
    next_sequence: u64,
}

/// The journal of one open directory store.
pub(crate) struct Journal {
    root: PathBuf,
    /// Where reads of what the journal does not hold go.
    backend: LocalFileSystem,
    /// Where every change to the directory goes.
    disk: Disk,
    /// The checksums of the payloads in the directory.
    sums: sums::Sums,
    /// Which files the directory holds.
    files: files::Files,
    state: Mutex<State>,
    /// The file, held by whoever appends to it or checkpoints.
    writer: tokio::sync::Mutex<Writer>,
    /// The number of the last operation that is durable.
    durable: AtomicU64,
    /// Held by the one checkpoint that runs at a time.
    checkpointing: tokio::sync::Mutex<()>,
    /// Held while writes are passed into the journal and synced
    /// (`staged.rs`), and while anything takes the batch to append it: a
    /// batch holds whole passes, so a stop never leaves half of one.
    pub(crate) passing: tokio::sync::Mutex<()>,
    /// Whether a checkpoint task is already started.
    checkpoint_started: AtomicBool,
    /// Set when the store is closed or failed to open: nothing more is written.
    finished: AtomicBool,
    /// Whether [`NEXT_NAME`] is prepared, for the next journal to take.
    next_ready: AtomicBool,
    /// Set as the store closes: no next journal is prepared.
    closing: AtomicBool,
    /// This journal, for the tasks it starts.
    me: std::sync::Weak<Journal>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.root.display())
    }
}

/// The bytes of a journal a stopped process left in `root`, if any: what
/// its files hold past nothing (a prepared file's zeros, a first batch a
/// power cut tore before anything was acknowledged).
pub fn unreplayed_bytes(root: &std::path::Path) -> u64 {
    [SET_ASIDE_NAME, FILE_NAME]
        .iter()
        .map(|name| {
            let Ok(bytes) = std::fs::read(root.join(name)) else {
                return 0;
            };
            let len = bytes.len() as u64;
            match format::read(Bytes::from(bytes)) {
                Ok(found) if found.end > 0 => found.end,
                // Only the live journal may end torn; a set-aside one was synced.
                Ok(found) if found.torn_bytes == 0 || *name == FILE_NAME => 0,
                _ => len,
            }
        })
        .sum()
}

fn refusal(state: &State) -> object_store::Result<()> {
    match &state.failed {
        Some(why) => Err(object_store::Error::Generic {
            store: "anda journal",
            source: format!("{why}; the store takes no more writes until it is reopened").into(),
        }),
        None => Ok(()),
    }
}

impl Journal {
    /// Opens the journal of the store directory `root`, whose lock is held:
    /// a journal left there is replayed into the directory first. A store
    /// opened `existing_only` (read-only) refuses one instead, since
    /// replaying writes.
    pub(crate) async fn open(
        root: &std::path::Path,
        existing_only: bool,
    ) -> Result<Arc<Self>, StoreError> {
        let io = |source| StoreError::Io {
            path: root.join(FILE_NAME),
            source,
        };
        let backend = LocalFileSystem::new_with_prefix(root)
            .map_err(|err| io(std::io::Error::other(err.to_string())))?;
        let left = unreplayed_bytes(root);
        if left > 0 && existing_only {
            return Err(StoreError::Unreplayed {
                path: root.to_path_buf(),
                bytes: left,
            });
        }
        // A read-only open changes nothing, not even an empty directory.
        let files = files::Files::scan(root, !existing_only).map_err(|source| StoreError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let journal = Arc::new_cyclic(|me| Self {
            root: root.to_path_buf(),
            backend,
            disk: Disk::new(root),
            sums: sums::Sums::load(root),
            files,
            state: Mutex::new(State {
                overlay: HashMap::default(),
                batch: format::Batch::default(),
                taken: 0,
                failed: None,
                checkpointing_through: 0,
            }),
            writer: tokio::sync::Mutex::new(Writer {
                file: None,
                len: 0,
                next_sequence: 0,
            }),
            durable: AtomicU64::new(0),
            checkpointing: tokio::sync::Mutex::new(()),
            passing: tokio::sync::Mutex::new(()),
            checkpoint_started: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            next_ready: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            me: me.clone(),
        });
        if left > 0 {
            journal.replay().await?;
        }
        if !existing_only {
            // Files that hold nothing to replay: a stopped process's
            // prepared journal, or one whose first batch was never synced.
            for name in [NEXT_NAME, FILE_NAME, SET_ASIDE_NAME] {
                journal.disk.remove(name).map_err(io)?;
            }
        }
        journal.checkpoint_in_background();
        Ok(journal)
    }

    /// The operations a journal file left in the directory holds, if any.
    /// A set-aside journal was wholly synced before it was set aside, so
    /// even a damaged last record there is refused, never cut.
    fn read_left(&self, name: &str) -> Result<format::Journal, StoreError> {
        let path = self.root.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let damaged = |message: String| {
            StoreError::Corrupt(vec![crate::Problem {
                collection: name.to_string(),
                document: None,
                message,
            }])
        };
        let found = format::read(Bytes::from(bytes)).map_err(|err| damaged(err.to_string()))?;
        if name == SET_ASIDE_NAME && found.torn_bytes > 0 {
            return Err(damaged(format!(
                "the journal is damaged: its last {} bytes do not read back, though they were \
                 synced before the journal was set aside",
                found.torn_bytes
            )));
        }
        Ok(found)
    }

    /// Puts what the journal files left in the directory hold into it.
    async fn replay(&self) -> Result<(), StoreError> {
        let set_aside = self.read_left(SET_ASIDE_NAME)?;
        let current = self.read_left(FILE_NAME)?;
        let last_sequence = current.last_sequence.or(set_aside.last_sequence);
        {
            let mut state = self.lock();
            for operation in set_aside.operations.into_iter().chain(current.operations) {
                state.taken += 1;
                let number = state.taken;
                let (path, value) = match operation {
                    Operation::Put { path, data } => (
                        path,
                        Some(Stored {
                            data,
                            modified: Utc::now(),
                            operation: number,
                        }),
                    ),
                    Operation::Delete { path } => (path, None),
                };
                // The path as it was written (`Path::from` would encode it again).
                let path = Path::parse(&path).map_err(|err| {
                    StoreError::Corrupt(vec![crate::Problem {
                        collection: FILE_NAME.to_string(),
                        document: None,
                        message: format!("the journal names an invalid path {path:?}: {err}"),
                    }])
                })?;
                self.hold(
                    &mut state,
                    &path,
                    Entry {
                        operation: number,
                        value,
                    },
                );
            }
            self.durable.store(state.taken, Ordering::Release);
        }
        self.writer.lock().await.next_sequence = last_sequence.map_or(0, |s| s + 1);
        self.checkpoint().await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The object at `path` as the journal holds it: `Some(None)` if it was
    /// deleted, `None` if the directory has its state.
    pub(crate) fn lookup(&self, path: &Path) -> Option<Option<Stored>> {
        self.lock()
            .overlay
            .get(path)
            .map(|entry| entry.value.clone())
    }

    /// The journal's objects under `prefix` (deleted ones as `None`).
    pub(crate) fn under(&self, prefix: Option<&Path>) -> Vec<(Path, Option<Stored>)> {
        self.lock()
            .overlay
            .iter()
            .filter(|(path, _)| prefix.is_none_or(|prefix| path.prefix_matches(prefix)))
            .map(|(path, entry)| (path.clone(), entry.value.clone()))
            .collect()
    }

    /// Refuses a write once a sync failed.
    pub(crate) fn check_writable(&self) -> object_store::Result<()> {
        refusal(&self.lock())
    }

    /// Refuses every write and sync from now on: what the engine was told
    /// is done may not be in the journal, until a reopen replays it.
    pub(crate) fn fail(&self, why: String) {
        self.lock().failed.get_or_insert(why);
    }

    fn take(&self, path: &Path, data: Option<Bytes>) -> object_store::Result<Option<Stored>> {
        let mut state = self.lock();
        refusal(&state)?;
        state.taken += 1;
        let number = state.taken;
        let value = data.map(|data| {
            state.batch.push_put(path.as_ref(), &data);
            Stored {
                data,
                modified: Utc::now(),
                operation: number,
            }
        });
        if value.is_none() {
            state.batch.push_delete(path.as_ref());
        }
        self.hold(
            &mut state,
            path,
            Entry {
                operation: number,
                value: value.clone(),
            },
        );
        Ok(value)
    }

    /// Puts an operation's outcome in the overlay. A delete of a generation
    /// put since the last checkpoint, which no running checkpoint is
    /// writing, never reaches the directory: it is forgotten, so the overlay
    /// holds live objects and deletes of files the directory may hold, not
    /// every generation MetaStore minted and retired (one with every put).
    fn hold(&self, state: &mut State, path: &Path, entry: Entry) {
        if entry.value.is_none() {
            let unwritten = state.overlay.get(path).is_some_and(|held| {
                held.value.is_some() && held.operation > state.checkpointing_through
            });
            if unwritten && !self.files.may_hold(path.as_ref()) {
                state.overlay.remove(path);
                return;
            }
        }
        state.overlay.insert(path.clone(), entry);
    }

    pub(crate) fn put(&self, path: &Path, data: Bytes) -> object_store::Result<Stored> {
        Ok(self.take(path, Some(data))?.expect("a put stores a value"))
    }

    pub(crate) fn delete(&self, path: &Path) -> object_store::Result<()> {
        self.take(path, None).map(drop)
    }

    /// Makes every operation taken so far durable: the acknowledgement
    /// point of a call. Calls that arrive while a sync runs share the next.
    /// Called with [`Self::passing`] held.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let synced = self.sync_taken().await;
        if synced.is_ok() {
            self.disk.acknowledged();
        }
        synced
    }

    /// Acknowledges a call at once if every operation taken is durable
    /// already (`false`: one is not, and the call must sync); needs no
    /// [`Self::passing`], as it takes no batch.
    pub(crate) fn acknowledge_if_durable(&self) -> Result<bool, StoreError> {
        let target = self.taken_so_far()?;
        if self.durable.load(Ordering::Acquire) < target {
            return Ok(false);
        }
        self.disk.acknowledged();
        Ok(true)
    }

    /// The number of the last operation taken; an error once a sync failed.
    fn taken_so_far(&self) -> Result<u64, StoreError> {
        let state = self.lock();
        match &state.failed {
            Some(why) => Err(StoreError::OutcomeUnknown(format!(
                "{why}; the store takes no more calls until it is reopened"
            ))),
            None => Ok(state.taken),
        }
    }

    async fn sync_taken(&self) -> Result<(), StoreError> {
        let target = self.taken_so_far()?;
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let mut writer = self.writer.lock().await;
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let (batch, taken) = {
            let mut state = self.lock();
            let batch = std::mem::take(&mut state.batch);
            (batch, state.taken)
        };
        self.append(&mut writer, batch, taken)?;
        if writer.len >= checkpoint::CHECKPOINT_BYTES {
            self.start_checkpoint();
        }
        Ok(())
    }

    /// Appends a batch holding the operations up to `taken` and syncs it.
    fn append(
        &self,
        writer: &mut Writer,
        batch: format::Batch,
        taken: u64,
    ) -> Result<(), StoreError> {
        if self.finished.load(Ordering::Acquire) || batch.is_empty() {
            self.durable.fetch_max(taken, Ordering::AcqRel);
            return Ok(());
        }
        let batch = batch.seal(writer.next_sequence);
        match self.write_synced(writer, &batch) {
            Ok(()) => {
                writer.next_sequence += 1;
                writer.len += batch.len() as u64;
                self.durable.fetch_max(taken, Ordering::AcqRel);
                Ok(())
            }
            Err(err) => {
                // What reached the disk is unknown (the page cache may have
                // dropped it): refuse everything until a reopen replays what
                // the journal really holds.
                let why = format!(
                    "anda could not make a write durable in {}: {err}",
                    self.root.join(FILE_NAME).display()
                );
                self.fail(why.clone());
                Err(StoreError::OutcomeUnknown(why))
            }
        }
    }

    fn write_synced(&self, writer: &mut Writer, batch: &format::Sealed) -> std::io::Result<()> {
        let created = writer.file.is_none();
        if created {
            writer.file = Some(self.open_file()?);
        }
        let file = writer.file.as_mut().expect("opened above");
        self.disk.append(file, FILE_NAME, writer.len, batch)?;
        self.disk.sync_file(file, FILE_NAME)?;
        if created {
            self.disk.sync_root()?;
        }
        Ok(())
    }

    /// The journal file for the next batches: the prepared one when there
    /// is one, else a new file.
    fn open_file(&self) -> std::io::Result<File> {
        if self.next_ready.swap(false, Ordering::AcqRel) {
            // The set-aside journal's rename must be durable before the
            // prepared file takes its name: a power cut could otherwise keep
            // the second rename and lose the first.
            self.disk.sync_root()?;
            self.disk.rename_top(NEXT_NAME, FILE_NAME)?;
            return self.disk.open_prepared(FILE_NAME);
        }
        self.disk.open_append(FILE_NAME)
    }

    /// Syncs and checkpoints for the last time: the directory is left in
    /// AndaDB's own layout, with no journal.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        self.closing.store(true, Ordering::Release);
        {
            let _passing = self.passing.lock().await;
            self.sync().await?;
        }
        self.checkpoint().await?;
        self.finished.store(true, Ordering::Release);
        self.next_ready.store(false, Ordering::Release);
        self.disk
            .remove(NEXT_NAME)
            .map_err(|source| StoreError::Io {
                path: self.root.join(NEXT_NAME),
                source,
            })
    }

    /// Writes nothing more: for a store that failed to open, whose
    /// operations since the last sync are dropped.
    pub(crate) fn abandon(&self) {
        self.finished.store(true, Ordering::Release);
    }
}
