//! Checksums of the payloads a checkpoint puts in the directory, so that a
//! damaged one is refused instead of read as absent.
//!
//! The engine's KQL reads a record it cannot decode as absent, without a
//! word (its element loads turn every read error into "not there"), so a
//! truncated, zeroed or flipped payload file made answers silently short.
//! Every payload a checkpoint writes (the write-once generations under
//! `gen/`) has its length and CRC-32 kept here, and the whole table is put in
//! [`FILE_NAME`] at the top of the store at each checkpoint that changed it,
//! before the directory is synced: a table on disk always covers the payloads
//! synced with it, and those a journal still holds are put (and summed) again
//! by the replay. Each read of a payload from the directory is checked
//! against its sum; a mismatch is reported to [`crate::damage`], which makes
//! the call that read it raise `CorruptStoreError` naming the file.
//!
//! The sidecars under `meta/` are not summed: any writer (AndaDB, an older
//! anda) rewrites them in place, which would leave a sum stale. Payloads are
//! never rewritten, so a sum never goes stale; a payload written by an older
//! anda has none and is not checked. A table that does not read back (a
//! power cut can leave one torn) is dropped: nothing is checked until the
//! next checkpoint writes a new one, and nothing is refused for it.
use crate::verify::Problem;
use std::{
    collections::BTreeMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

/// The table's file, at the top of the store directory.
pub const FILE_NAME: &str = "anda.sums";
const MAGIC: &[u8; 8] = b"ANDASUM1";

/// What anda wrote at one path: its length and CRC-32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sum {
    len: u64,
    crc: u32,
}

impl Sum {
    fn of(data: &[u8]) -> Self {
        Self {
            len: data.len() as u64,
            crc: crc32fast::hash(data),
        }
    }
}

/// Whether the object at `key` is summed: a write-once payload.
fn summed(key: &str) -> bool {
    key.starts_with("gen/")
}

/// The sums of a store's payloads.
#[derive(Default)]
pub(crate) struct Sums {
    table: RwLock<BTreeMap<String, Sum>>,
    /// Whether the table changed since it was last written.
    changed: AtomicBool,
}

/// A payload read back that is not what anda wrote.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    key: String,
    what: String,
}

impl Damage {
    /// The problem, naming the file (`file`, the key's path on disk).
    pub(crate) fn problem(&self, file: &std::path::Path) -> Problem {
        // gen/<database>/<collection>/data/<document>.cbor/<generation>
        let parts: Vec<&str> = self.key.split('/').collect();
        let collection = match parts.len() {
            n if n >= 5 => parts[2],
            _ => parts.get(1).copied().unwrap_or("?"),
        };
        let document = match parts.as_slice() {
            [_, _, _, "data", name, _] => name.strip_suffix(".cbor").and_then(|n| n.parse().ok()),
            _ => None,
        };
        Problem {
            collection: collection.to_string(),
            document,
            message: format!(
                "the file {} is damaged: {}; its record is refused rather than left out",
                file.display(),
                self.what
            ),
        }
    }
}

impl Sums {
    /// The table `root` holds, or an empty one (see the module's doc).
    pub(crate) fn load(root: &std::path::Path) -> Self {
        let (table, changed) = match std::fs::read(root.join(FILE_NAME)) {
            Ok(bytes) => match decode(&bytes) {
                Some(table) => (table, false),
                None => (BTreeMap::new(), true),
            },
            Err(_) => (BTreeMap::new(), false),
        };
        Self {
            table: RwLock::new(table),
            changed: AtomicBool::new(changed),
        }
    }

    /// Notes what a checkpoint put at `key`.
    pub(crate) fn record(&self, key: &str, data: &[u8]) {
        if summed(key) {
            self.write().insert(key.to_string(), Sum::of(data));
            self.changed.store(true, Ordering::Release);
        }
    }

    /// Notes that a checkpoint deleted `key`.
    pub(crate) fn forget(&self, key: &str) {
        if summed(key) && self.write().remove(key).is_some() {
            self.changed.store(true, Ordering::Release);
        }
    }

    /// Checks a read of `key` from the directory: the file's `size`, and
    /// its bytes when `whole` holds all of them.
    pub(crate) fn check(&self, key: &str, size: u64, whole: Option<&[u8]>) -> Result<(), Damage> {
        let Some(sum) = self.read().get(key).copied() else {
            return Ok(());
        };
        let what = if size != sum.len {
            format!("it holds {size} bytes where anda wrote {}", sum.len)
        } else if let Some(data) = whole.filter(|data| crc32fast::hash(data) != sum.crc) {
            format!(
                "its {} bytes do not match the checksum of what anda wrote there",
                data.len()
            )
        } else {
            return Ok(());
        };
        Err(Damage {
            key: key.to_string(),
            what,
        })
    }

    /// Writes the table with `put` if it changed since it was last written.
    pub(crate) fn save(
        &self,
        put: impl FnOnce(&str, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if !self.changed.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = encode(&self.read());
        put(FILE_NAME, &bytes).inspect_err(|_| self.changed.store(true, Ordering::Release))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Sum>> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Sum>> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// `MAGIC`, then per path: its length (u16), the path, the payload's length
/// (u64) and CRC-32 (u32), all little-endian; then the CRC-32 of all before.
fn encode(table: &BTreeMap<String, Sum>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + table.len() * 110);
    out.extend_from_slice(MAGIC);
    // A sorted map: the file lists paths in order without a sort per save.
    for (key, sum) in table {
        // Object store paths are far shorter than 64 KiB; one that is not
        // is left unchecked.
        let Ok(len) = u16::try_from(key.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&sum.len.to_le_bytes());
        out.extend_from_slice(&sum.crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<BTreeMap<String, Sum>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let mut table = BTreeMap::new();
    while let Some(len) = take(2) {
        let len = u16::from_le_bytes(len.try_into().ok()?) as usize;
        let key = String::from_utf8(take(len)?.to_vec()).ok()?;
        let size = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let crc = u32::from_le_bytes(take(4)?.try_into().ok()?);
        table.insert(key, Sum { len: size, crc });
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Scratch, runtime};
    use super::super::{Journal, JournalStore};
    use super::*;
    use bytes::Bytes;
    use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, path::Path};

    const KEY: &str = "gen/db/people/data/7.cbor/g1";

    async fn put(store: &JournalStore, key: &str, data: &'static [u8]) {
        store
            .put(&Path::from(key), Bytes::from_static(data).into())
            .await
            .unwrap();
    }

    /// Reads `key` through the store: its bytes, or the error's text and the
    /// damage reported meanwhile.
    async fn read(store: &JournalStore, key: &str) -> Result<Bytes, (String, Vec<Problem>)> {
        let mark = crate::damage::mark();
        match store.get(&Path::from(key)).await {
            Ok(got) => Ok(got.bytes().await.unwrap()),
            Err(err) => Err((
                err.to_string(),
                crate::damage::since(mark).unwrap_or_default(),
            )),
        }
    }

    fn damage(dir: &std::path::Path, key: &str, how: &str) {
        let file = dir.join(key);
        let mut data = std::fs::read(&file).unwrap();
        match how {
            "truncate" => data.truncate(data.len() / 2),
            "zero" => data.iter_mut().for_each(|b| *b = 0),
            _ => data[3] ^= 0xFF,
        }
        std::fs::write(file, data).unwrap();
    }

    #[test]
    fn the_table_reads_back_and_a_damaged_one_is_dropped() {
        let scratch = Scratch::new("table");
        let sums = Sums::load(&scratch.0);
        sums.record(KEY, b"payload");
        sums.record("meta/db/people/data/7.cbor", b"sidecar");
        sums.record("gen/db/gone/g1", b"x");
        sums.forget("gen/db/gone/g1");
        let mut saved = Vec::new();
        sums.save(|name, bytes| {
            assert_eq!(name, FILE_NAME);
            saved = bytes.to_vec();
            Ok(())
        })
        .unwrap();
        // Nothing changed since: nothing is written.
        sums.save(|_, _| panic!("written again")).unwrap();
        let table = decode(&saved).unwrap();
        assert_eq!(table.len(), 1, "only payloads are summed");
        assert_eq!(table[KEY], Sum::of(b"payload"));

        for broken in [
            Vec::new(),
            saved[..saved.len() - 1].to_vec(),
            vec![0; saved.len()],
            {
                let mut flipped = saved.clone();
                flipped[12] ^= 1;
                flipped
            },
        ] {
            assert_eq!(decode(&broken), None);
            std::fs::write(scratch.0.join(FILE_NAME), &broken).unwrap();
            let dropped = Sums::load(&scratch.0);
            assert!(dropped.check(KEY, 1, None).is_ok(), "nothing is checked");
            assert!(dropped.changed.load(Ordering::Acquire), "rewritten next");
        }
    }

    #[test]
    fn a_payload_read_back_damaged_is_refused_and_reported() {
        for how in ["truncate", "zero", "flip"] {
            let scratch = Scratch::new(how);
            runtime().block_on(async {
                let journal = Journal::open(&scratch.0, false).await.unwrap();
                let store = JournalStore(journal.clone());
                put(&store, KEY, b"a payload of some length").await;
                put(&store, "gen/db/people/data/8.cbor/g1", b"a neighbour").await;
                journal.close().await.unwrap();
                assert!(scratch.0.join(FILE_NAME).exists());

                // Written by an older anda: no sum, not checked.
                let older = scratch.0.join("gen/db/people/data/9.cbor/g0");
                std::fs::create_dir_all(older.parent().unwrap()).unwrap();
                std::fs::write(&older, b"older").unwrap();
                damage(&scratch.0, "gen/db/people/data/9.cbor/g0", how);

                damage(&scratch.0, KEY, how);
                let journal = Journal::open(&scratch.0, true).await.unwrap();
                let store = JournalStore(journal.clone());
                let (err, problems) = read(&store, KEY).await.unwrap_err();
                let file = scratch.0.join(KEY).display().to_string();
                assert!(err.contains(&file), "{err}");
                let problem = problems
                    .iter()
                    .find(|p| p.message.contains(&file))
                    .unwrap_or_else(|| panic!("no damage reported: {problems:?}"));
                assert_eq!(
                    (problem.collection.as_str(), problem.document),
                    ("people", Some(7))
                );
                // A ranged read of a shortened payload is refused too.
                if how == "truncate" {
                    let ranged = store
                        .get_opts(
                            &Path::from(KEY),
                            GetOptions::new().with_range(Some(GetRange::Bounded(0..2))),
                        )
                        .await;
                    assert!(ranged.is_err());
                }
                assert_eq!(
                    read(&store, "gen/db/people/data/8.cbor/g1")
                        .await
                        .unwrap()
                        .as_ref(),
                    b"a neighbour"
                );
                assert!(read(&store, "gen/db/people/data/9.cbor/g0").await.is_ok());
                journal.abandon();
            });
        }
    }

    #[test]
    fn a_replayed_journal_sums_what_it_puts_and_deletes_forget_theirs() {
        let scratch = Scratch::new("sums-replay");
        runtime().block_on(async {
            let journal = Journal::open(&scratch.0, false).await.unwrap();
            let store = JournalStore(journal.clone());
            put(&store, KEY, b"acknowledged, then the process stopped").await;
            put(&store, "gen/db/people/data/1.cbor/g1", b"retired").await;
            journal.sync().await.unwrap();
            // The process stops: nothing reaches the directory but the journal.
            journal.abandon();
            drop(store);
            drop(journal);
            assert!(!scratch.0.join(FILE_NAME).exists());

            let journal = Journal::open(&scratch.0, false).await.unwrap();
            let store = JournalStore(journal.clone());
            assert!(scratch.0.join(KEY).exists(), "replayed");
            store
                .delete(&Path::from("gen/db/people/data/1.cbor/g1"))
                .await
                .unwrap();
            journal.close().await.unwrap();
            let table = decode(&std::fs::read(scratch.0.join(FILE_NAME)).unwrap()).unwrap();
            assert_eq!(table.keys().collect::<Vec<_>>(), [KEY]);

            damage(&scratch.0, KEY, "flip");
            let journal = Journal::open(&scratch.0, false).await.unwrap();
            let store = JournalStore(journal.clone());
            assert!(read(&store, KEY).await.is_err());
            journal.close().await.unwrap();
        });
    }
}
