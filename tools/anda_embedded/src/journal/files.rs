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
    /// `None` when the walk at open failed: every question goes to the disk.
    counts: Option<Mutex<HashMap<u64, u32, foldhash::fast::RandomState>>>,
    hasher: foldhash::fast::RandomState,
}

impl Files {
    /// The files below `root`, named as object keys (`a/b/c`).
    pub(crate) fn scan(root: &Path) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let mut counts = HashMap::default();
        let walked = walk(root, String::new(), &mut |key| {
            *counts.entry(hasher.hash_one(key)).or_insert(0) += 1;
        });
        Self {
            counts: walked.ok().map(|()| Mutex::new(counts)),
            hasher,
        }
    }

    /// Whether the directory may hold the file `key`: `false` means it
    /// does not.
    pub(crate) fn may_hold(&self, key: &str) -> bool {
        // A percent-encoded key names a file by its decoded name: left to
        // the disk.
        match self.lock() {
            Some(counts) if !key.contains('%') => counts.contains_key(&self.hasher.hash_one(key)),
            _ => true,
        }
    }

    /// Notes that a checkpoint put the file `key`.
    pub(crate) fn added(&self, key: &str) {
        if let Some(mut counts) = self.lock() {
            *counts.entry(self.hasher.hash_one(key)).or_insert(0) += 1;
        }
    }

    /// Notes that a checkpoint removed the file `key` (or found it gone).
    pub(crate) fn removed(&self, key: &str) {
        if let Some(mut counts) = self.lock() {
            let hash = self.hasher.hash_one(key);
            if let Some(count) = counts.get_mut(&hash) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&hash);
                }
            }
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, HashMap<u64, u32, foldhash::fast::RandomState>>> {
        self.counts
            .as_ref()
            .map(|counts| counts.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Calls `found` with the key of each file below `dir` (`prefix` its key).
fn walk(dir: &Path, prefix: String, found: &mut impl FnMut(&str)) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && prefix.is_empty() => {
            return Ok(());
        }
        other => other?,
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let mut kind = entry.file_type()?;
        if kind.is_symlink() {
            // Reads follow links: a linked directory's files are the store's
            // (a broken link is counted as a file, which only costs a lookup;
            // a loop fails the walk, and every question goes to the disk).
            kind = std::fs::metadata(entry.path()).map_or(kind, |meta| meta.file_type());
        }
        if kind.is_dir() {
            walk(&entry.path(), key, found)?;
        } else {
            found(&key);
        }
    }
    Ok(())
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
        let outside = Scratch::new("files-linked");
        std::fs::create_dir_all(scratch.0.join("meta/db")).unwrap();
        std::fs::write(scratch.0.join("meta/db/there.cbor"), b"x").unwrap();
        std::fs::write(outside.0.join("linked.cbor"), b"y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside.0, scratch.0.join("meta/elsewhere")).unwrap();
        runtime().block_on(async {
            let journal = Journal::open(&scratch.0, false).await.unwrap();
            let store = JournalStore(journal.clone());
            assert!(found(&store, "meta/db/there.cbor").await);
            #[cfg(unix)]
            assert!(found(&store, "meta/elsewhere/linked.cbor").await);
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
        let files = super::Files::scan(&scratch.0);
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
