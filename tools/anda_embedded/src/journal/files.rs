//! Which files the store directory holds, so that asking it for one it does
//! not hold costs no system call.
//!
//! A commit asks for some thirty objects that do not exist yet (a new
//! record's sidecar, a new index bucket; MetaStore looks each one up before
//! it creates it), and each question the journal does not answer from memory
//! was a `statx` that found nothing. The directory changes only through this
//! process while its lock is held, so one walk at open and the checkpoints'
//! puts and deletes keep an exact account. Only a "no" is trusted: a name
//! the account holds is still looked up on disk, so a file removed behind
//! the store's back reads as missing, as before. The account keeps a 64-bit
//! hash per file with a count, not the names: a few bytes per file, and two
//! names that share a hash only cost a lookup.
use std::{
    collections::HashMap,
    hash::BuildHasher,
    path::Path,
    sync::{Mutex, MutexGuard},
};

pub(crate) struct Files {
    counts: Mutex<HashMap<u64, u32, foldhash::fast::RandomState>>,
    hasher: foldhash::fast::RandomState,
}

impl Files {
    /// The files below `root`, named as object keys (`a/b/c`). With
    /// `sweep`, the same walk removes the empty directories under `gen/`
    /// (an older anda left one behind for every retired generation), so
    /// opening never walks them again. The store holds no symbolic link
    /// (`layout::check_directory`), so the walk follows none.
    pub(crate) fn scan(root: &Path, sweep: bool) -> std::io::Result<Self> {
        let hasher = foldhash::fast::RandomState::default();
        let mut counts = HashMap::default();
        let mut found = |key: &str| *counts.entry(hasher.hash_one(key)).or_insert(0) += 1;
        for top in std::fs::read_dir(root)? {
            let top = top?;
            let Ok(name) = top.file_name().into_string() else {
                continue;
            };
            if top.file_type()?.is_dir() {
                walk(&top.path(), &name, sweep && name == "gen", &mut found)?;
            } else {
                found(&name);
            }
        }
        Ok(Self {
            counts: Mutex::new(counts),
            hasher,
        })
    }

    /// Whether the directory may hold the file `key`: `false` means it
    /// does not.
    pub(crate) fn may_hold(&self, key: &str) -> bool {
        // A percent-encoded key names a file by its decoded name: left to
        // the disk.
        key.contains('%') || self.lock().contains_key(&self.hasher.hash_one(key))
    }

    /// Notes that a checkpoint put the file `key`. A name put again (a
    /// sidecar rewritten in place) counts again: a count only ever errs
    /// toward asking the disk.
    pub(crate) fn added(&self, key: &str) {
        *self.lock().entry(self.hasher.hash_one(key)).or_insert(0) += 1;
    }

    /// Notes that a checkpoint removed the file `key` (or found it gone).
    pub(crate) fn removed(&self, key: &str) {
        let hash = self.hasher.hash_one(key);
        let mut counts = self.lock();
        if let Some(count) = counts.get_mut(&hash) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&hash);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, u32, foldhash::fast::RandomState>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Calls `found` with the key of each file below `dir` (`prefix` its key);
/// with `sweep`, removes the directories below it that hold no file.
/// Answers whether `dir` holds no file.
fn walk(
    dir: &Path,
    prefix: &str,
    sweep: bool,
    found: &mut impl FnMut(&str),
) -> std::io::Result<bool> {
    let mut empty = true;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            empty = false;
            continue;
        };
        let key = format!("{prefix}/{name}");
        if entry.file_type()?.is_dir() {
            if walk(&entry.path(), &key, sweep, found)? && sweep {
                std::fs::remove_dir(entry.path())?;
            } else {
                empty = false;
            }
        } else {
            found(&key);
            empty = false;
        }
    }
    Ok(empty)
}

#[cfg(test)]
mod tests {
    use super::super::{
        Journal, JournalStore,
        tests::{Scratch, runtime},
    };
    use object_store::{ObjectStoreExt, path::Path};

    async fn found(store: &JournalStore, key: &str) -> bool {
        match store.head(&Path::from(key)).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn the_account_follows_the_walk_and_the_checkpoints() {
        let scratch = Scratch::new("files");
        std::fs::create_dir_all(scratch.0.join("meta/db")).unwrap();
        std::fs::write(scratch.0.join("meta/db/there.cbor"), b"x").unwrap();
        std::fs::create_dir_all(scratch.0.join("gen/db/retired/empty")).unwrap();
        runtime().block_on(async {
            let journal = Journal::open(&scratch.0, false).await.unwrap();
            let store = JournalStore(journal.clone());
            assert!(found(&store, "meta/db/there.cbor").await);
            // The same walk swept the empty directories an older anda left.
            assert!(!scratch.0.join("gen/db").exists());
            assert!(!journal.files.may_hold("meta/db/new.cbor"));
            assert!(!found(&store, "meta/db/new.cbor").await);

            store
                .put(&Path::from("meta/db/new.cbor"), "z".into())
                .await
                .unwrap();
            journal.sync().await.unwrap();
            journal.checkpoint().await.unwrap();
            assert!(journal.files.may_hold("meta/db/new.cbor"));
            assert!(found(&store, "meta/db/new.cbor").await);

            store
                .delete(&Path::from("meta/db/there.cbor"))
                .await
                .unwrap();
            journal.sync().await.unwrap();
            journal.checkpoint().await.unwrap();
            assert!(!journal.files.may_hold("meta/db/there.cbor"));
            assert!(!found(&store, "meta/db/there.cbor").await);

            // A file removed behind the store's back reads as missing.
            std::fs::remove_file(scratch.0.join("meta/db/new.cbor")).unwrap();
            assert!(!found(&store, "meta/db/new.cbor").await);
            journal.close().await.unwrap();
        });
    }

    #[test]
    fn names_sharing_a_hash_are_counted_apart() {
        let scratch = Scratch::new("files-count");
        let files = super::Files::scan(&scratch.0, false).unwrap();
        files.added("a");
        files.added("a");
        files.removed("a");
        assert!(files.may_hold("a"));
        files.removed("a");
        assert!(!files.may_hold("a"));
        // Percent-encoded names are left to the disk.
        assert!(files.may_hold("a%20b"));
    }
}
