//! An exclusive, process-level lock on a store directory.
//!
//! AndaDB assumes one writer per database; two stores over the same directory
//! would overwrite each other's segments. The lock is an OS file lock (`flock`
//! on Unix, `LockFileEx` on Windows), so it also excludes other processes and
//! is released by the kernel if this process dies.
use crate::StoreError;
use std::{
    fs::{File, OpenOptions, TryLockError},
    path::Path,
};

/// The lock file kept at the top of a store directory.
const LOCK_FILE_NAME: &str = "anda.lock";

/// Holds a store directory exclusively until dropped.
#[derive(Debug)]
pub struct DirectoryLock {
    _file: File,
}

impl DirectoryLock {
    /// Takes the lock without waiting; fails if anyone else holds it.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: dir.to_path_buf(),
                detail: format!("{} is locked", path.display()),
            }),
            Err(TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
        }
    }
}
