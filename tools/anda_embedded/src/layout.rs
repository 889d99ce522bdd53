//! What a store directory may hold before anda writes into it.
use crate::StoreError;
use std::{
    fs,
    path::{Path, PathBuf},
};

/// Entries anda itself creates at the top of a store directory.
const STORE_ENTRIES: [&str; 5] = [
    "anda.lock",
    "gen",
    "meta",
    crate::journal::FILE_NAME,
    crate::journal::sums::FILE_NAME,
];

/// Refuses a directory that holds something other than an anda store (so a
/// mistyped path never scatters a database among a user's files), and a
/// store with a symbolic link inside it (so no write is ever followed out of
/// the store).
pub fn check_directory(root: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: root.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(root).map_err(io)? {
        entries.push(entry.map_err(io)?.file_name());
    }
    let ours = entries
        .iter()
        .any(|name| STORE_ENTRIES.iter().any(|known| name == *known));
    if !entries.is_empty() && !ours {
        let example = entries[0].to_string_lossy().into_owned();
        return Err(StoreError::NotAStore {
            path: root.to_path_buf(),
            detail: format!(
                "it is not empty and holds no anda store (it has {example:?}, among \
                 {} entries); give a new or empty directory",
                entries.len()
            ),
        });
    }
    if let Some(link) = first_symlink(root).map_err(io)? {
        return Err(StoreError::NotAStore {
            path: root.to_path_buf(),
            detail: format!(
                "{} is a symbolic link; anda never writes through a link out of its store",
                link.display()
            ),
        });
    }
    Ok(())
}

fn first_symlink(root: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                return Ok(Some(entry.path()));
            }
            if kind.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(None)
}
