//! The journal file's bytes: what one group commit appends, and how a file
//! left by a stopped process is read back.
//!
//! A file is a run of batches, each the operations one sync made durable:
//!
//! ```text
//! "ANDJ" | sequence u64 | payload length u32 | payload crc32 | header crc32 | payload
//! ```
//!
//! (little endian; the header checksum covers the 20 bytes before it). The
//! payload is a run of operations, `1 | path length u32 | path | length u64 |
//! bytes` for a put and `2 | path length u32 | path` for a delete.
//!
//! A batch is written only after the one before it was synced, so a power
//! cut can damage the last batch alone. A damaged batch with a sound batch
//! after it therefore means the disk lost synced bytes: that is refused,
//! never read as the end of the journal.
use bytes::{Buf, Bytes};

const MAGIC: [u8; 4] = *b"ANDJ";
/// The bytes before a batch's payload.
pub(crate) const HEADER_LEN: usize = 24;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// One backend operation, as it is replayed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Put { path: String, data: Bytes },
    Delete { path: String },
}

/// Payloads shorter than this are copied into the batch's framing; longer
/// ones are written from where the engine left them.
const COPIED_PAYLOAD: usize = 4096;
/// Framing is closed into a part once it is this long: one buffer grown to
/// a commit's size was reallocated into fresh (zeroed) memory every commit.
const FRAMING_PART: usize = 16 << 10;

/// A batch being gathered: its operations as the parts to write (framing,
/// and payloads taken as they came rather than copied), and their length and
/// checksum so far.
#[derive(Default)]
pub(crate) struct Batch {
    parts: Vec<Bytes>,
    /// Framing (and short payloads) not yet closed into a part.
    framing: Vec<u8>,
    len: usize,
    crc: crc32fast::Hasher,
}

impl Batch {
    /// Whether the batch holds no operation yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0 && self.framing.is_empty()
    }

    pub(crate) fn push_put(&mut self, path: &str, data: &Bytes) {
        self.push_path(PUT, path);
        self.framing
            .extend_from_slice(&(data.len() as u64).to_le_bytes());
        if data.len() < COPIED_PAYLOAD {
            self.framing.extend_from_slice(data);
        } else {
            self.close_framing();
            self.crc.update(data);
            self.len += data.len();
            self.parts.push(data.clone());
        }
    }

    pub(crate) fn push_delete(&mut self, path: &str) {
        self.push_path(DELETE, path);
    }

    fn push_path(&mut self, kind: u8, path: &str) {
        if self.framing.len() >= FRAMING_PART {
            self.close_framing();
        }
        if self.framing.is_empty() {
            self.framing.reserve(FRAMING_PART + COPIED_PAYLOAD);
        }
        self.framing.push(kind);
        self.framing
            .extend_from_slice(&(path.len() as u32).to_le_bytes());
        self.framing.extend_from_slice(path.as_bytes());
    }

    fn close_framing(&mut self) {
        if !self.framing.is_empty() {
            let framing = std::mem::take(&mut self.framing);
            self.crc.update(&framing);
            self.len += framing.len();
            self.parts.push(Bytes::from(framing));
        }
    }

    /// The batch with its header, ready to append.
    pub(crate) fn seal(mut self, sequence: u64) -> Sealed {
        self.close_framing();
        let payload_len = u32::try_from(self.len).expect("a batch under 4 GiB");
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC);
        header[4..12].copy_from_slice(&sequence.to_le_bytes());
        header[12..16].copy_from_slice(&payload_len.to_le_bytes());
        header[16..20].copy_from_slice(&self.crc.finalize().to_le_bytes());
        let header_crc = crc32fast::hash(&header[0..20]);
        header[20..24].copy_from_slice(&header_crc.to_le_bytes());
        Sealed {
            header,
            parts: self.parts,
        }
    }
}

/// A sealed batch: its header, then the parts of its payload.
pub(crate) struct Sealed {
    header: [u8; HEADER_LEN],
    parts: Vec<Bytes>,
}

impl Sealed {
    /// The batch's bytes, in the order they are written.
    pub(crate) fn slices(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.header[..]).chain(self.parts.iter().map(|part| &part[..]))
    }

    pub(crate) fn len(&self) -> usize {
        self.slices().map(<[u8]>::len).sum()
    }

    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.slices().flatten().copied().collect()
    }
}

/// What a journal file holds.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The operations of every sound batch, in order.
    pub operations: Vec<Operation>,
    /// The last sound batch's sequence number.
    pub last_sequence: Option<u64>,
    /// Where the last sound batch ends.
    pub end: u64,
    /// Bytes past the last sound batch that are not zeros: a batch a power
    /// cut tore. (A prepared file is zeros past what was written into it.)
    pub torn_bytes: u64,
}

/// A sound batch stands after a damaged one.
#[derive(Debug)]
pub(crate) struct Damaged {
    /// Where the damaged batch starts.
    pub offset: u64,
    /// Where the sound batch after it starts.
    pub sound_at: u64,
}

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the journal is damaged at byte {} with sound records after it (at byte {}): \
             acknowledged writes would be lost if it were cut there",
            self.offset, self.sound_at
        )
    }
}

/// Reads a journal file: its sound batches, then either a torn tail (cut) or
/// damage followed by sound batches (refused).
pub(crate) fn read(file: Bytes) -> Result<Journal, Damaged> {
    let mut journal = Journal::default();
    let mut offset = 0usize;
    while offset < file.len() {
        match batch_at(&file, offset, journal.last_sequence.map(|s| s + 1)) {
            Some((sequence, operations, next)) => {
                journal.operations.extend(operations);
                journal.last_sequence = Some(sequence);
                offset = next;
                journal.end = next as u64;
            }
            None => {
                if let Some(sound_at) = sound_batch_after(&file, offset) {
                    return Err(Damaged {
                        offset: offset as u64,
                        sound_at: sound_at as u64,
                    });
                }
                let rest = &file[offset..];
                if rest.iter().any(|byte| *byte != 0) {
                    journal.torn_bytes = rest.len() as u64;
                }
                break;
            }
        }
    }
    Ok(journal)
}

/// The batch at `offset` if it is whole and sound (and carries `expected` as
/// its sequence number, when given): its operations and where the next starts.
fn batch_at(
    file: &Bytes,
    offset: usize,
    expected: Option<u64>,
) -> Option<(u64, Vec<Operation>, usize)> {
    let header = file.get(offset..offset.checked_add(HEADER_LEN)?)?;
    if header[0..4] != MAGIC {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[0..20]) != word(20) {
        return None;
    }
    let sequence = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
    if expected.is_some_and(|expected| expected != sequence) {
        return None;
    }
    let start = offset + HEADER_LEN;
    let end = start.checked_add(word(12) as usize)?;
    if end > file.len() || crc32fast::hash(&file[start..end]) != word(16) {
        return None;
    }
    let operations = operations(file.slice(start..end))?;
    Some((sequence, operations, end))
}

/// The first sound batch starting after `offset`, found by its magic.
fn sound_batch_after(file: &Bytes, offset: usize) -> Option<usize> {
    let mut from = offset + 1;
    while let Some(found) = file
        .get(from..)?
        .windows(MAGIC.len())
        .position(|window| window == MAGIC)
    {
        let at = from + found;
        if batch_at(file, at, None).is_some() {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn operations(mut payload: Bytes) -> Option<Vec<Operation>> {
    let mut operations = Vec::new();
    while payload.has_remaining() {
        let kind = payload.try_get_u8().ok()?;
        let path_len = payload.try_get_u32_le().ok()? as usize;
        if payload.remaining() < path_len {
            return None;
        }
        let path = String::from_utf8(payload.split_to(path_len).to_vec()).ok()?;
        operations.push(match kind {
            PUT => {
                let len = usize::try_from(payload.try_get_u64_le().ok()?).ok()?;
                if payload.remaining() < len {
                    return None;
                }
                Operation::Put {
                    path,
                    data: payload.split_to(len),
                }
            }
            DELETE => Operation::Delete { path },
            _ => return None,
        });
    }
    Some(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(sequence: u64, puts: &[(&str, &[u8])], deletes: &[&str]) -> Vec<u8> {
        let mut batch = Batch::default();
        for (path, data) in puts {
            batch.push_put(path, &Bytes::copy_from_slice(data));
        }
        for path in deletes {
            batch.push_delete(path);
        }
        batch.seal(sequence).to_vec()
    }

    fn three_batches() -> (Vec<u8>, [usize; 3]) {
        let first = batch(7, &[("meta/a", b"one"), ("gen/a/1", b"payload")], &[]);
        let second = batch(8, &[("meta/a", b"two")], &["gen/a/1"]);
        let third = batch(9, &[("meta/b", b"three")], &[]);
        let starts = [0, first.len(), first.len() + second.len()];
        (
            [first, second, third].concat(),
            [starts[0], starts[1], starts[2]],
        )
    }

    #[test]
    fn batches_read_back_in_order() {
        let (file, _) = three_batches();
        let journal = read(Bytes::from(file)).unwrap();
        assert_eq!(journal.last_sequence, Some(9));
        assert_eq!(journal.torn_bytes, 0);
        assert_eq!(
            journal.operations,
            vec![
                Operation::Put {
                    path: "meta/a".into(),
                    data: Bytes::from_static(b"one")
                },
                Operation::Put {
                    path: "gen/a/1".into(),
                    data: Bytes::from_static(b"payload")
                },
                Operation::Put {
                    path: "meta/a".into(),
                    data: Bytes::from_static(b"two")
                },
                Operation::Delete {
                    path: "gen/a/1".into()
                },
                Operation::Put {
                    path: "meta/b".into(),
                    data: Bytes::from_static(b"three")
                },
            ]
        );
    }

    #[test]
    fn long_payloads_are_written_from_their_own_parts_and_read_back() {
        let long: Vec<u8> = (0..3 * COPIED_PAYLOAD).map(|i| i as u8).collect();
        let mut gathered = Batch::default();
        gathered.push_put("gen/a/1", &Bytes::from(long.clone()));
        gathered.push_put("meta/a", &Bytes::from_static(b"short"));
        gathered.push_delete("gen/a/0");
        let sealed = gathered.seal(3);
        // The header, the framing before the long payload, the payload
        // itself, then the short put and the delete in one framing part.
        assert_eq!(sealed.slices().count(), 4);
        assert_eq!(sealed.len(), sealed.to_vec().len());
        let read = read(Bytes::from(sealed.to_vec())).unwrap();
        assert_eq!(
            read.operations,
            vec![
                Operation::Put {
                    path: "gen/a/1".into(),
                    data: Bytes::from(long),
                },
                Operation::Put {
                    path: "meta/a".into(),
                    data: Bytes::from_static(b"short"),
                },
                Operation::Delete {
                    path: "gen/a/0".into(),
                },
            ]
        );
        assert_eq!(read.last_sequence, Some(3));
    }

    #[test]
    fn many_short_operations_are_framed_in_bounded_parts_and_read_back() {
        let mut gathered = Batch::default();
        let short = Bytes::from(vec![7u8; COPIED_PAYLOAD - 1]);
        for i in 0..40 {
            gathered.push_put(&format!("meta/{i}"), &short);
            gathered.push_delete(&format!("gen/{i}/0"));
        }
        let sealed = gathered.seal(0);
        let parts: Vec<usize> = sealed.slices().skip(1).map(<[u8]>::len).collect();
        assert!(parts.len() > 5, "{parts:?}");
        assert!(
            parts
                .iter()
                .all(|len| *len < FRAMING_PART + 2 * COPIED_PAYLOAD)
        );
        let read = read(Bytes::from(sealed.to_vec())).unwrap();
        assert_eq!(read.operations.len(), 80);
        assert_eq!(
            read.operations[78],
            Operation::Put {
                path: "meta/39".into(),
                data: short,
            }
        );
    }

    #[test]
    fn zeros_past_the_last_batch_are_a_prepared_file_not_a_torn_batch() {
        let (mut file, _) = three_batches();
        let written = file.len();
        file.resize(written + 3 * HEADER_LEN + 5, 0);
        let journal = read(Bytes::from(file.clone())).unwrap();
        assert_eq!((journal.end as usize, journal.torn_bytes), (written, 0));
        assert_eq!(journal.last_sequence, Some(9));
        // A torn batch written over the zeros is still cut as torn.
        file[written..written + 4].copy_from_slice(&MAGIC);
        let journal = read(Bytes::from(file.clone())).unwrap();
        assert_eq!(journal.end as usize, written);
        assert_eq!(journal.torn_bytes as usize, file.len() - written);
    }

    #[test]
    fn a_torn_last_batch_is_cut_at_every_length() {
        let (file, starts) = three_batches();
        for len in starts[2]..file.len() {
            let journal = read(Bytes::copy_from_slice(&file[..len])).unwrap();
            assert_eq!(journal.last_sequence, Some(8), "cut at {len}");
            assert_eq!(journal.torn_bytes as usize, len - starts[2]);
        }
    }

    #[test]
    fn damage_to_the_last_batch_is_a_torn_tail() {
        let (mut file, starts) = three_batches();
        file[starts[2] + HEADER_LEN + 2] ^= 0x40;
        let journal = read(Bytes::from(file)).unwrap();
        assert_eq!(journal.last_sequence, Some(8));
    }

    #[test]
    fn damage_before_a_sound_batch_is_refused() {
        let (file, starts) = three_batches();
        // Every byte of the first two batches, flipped or zeroed in turn.
        for at in 0..starts[2] {
            for damage in [|b: u8| b ^ 0x01, |_| 0u8] {
                let mut damaged = file.clone();
                if damaged[at] == damage(damaged[at]) {
                    continue;
                }
                damaged[at] = damage(damaged[at]);
                let err = read(Bytes::from(damaged)).unwrap_err();
                assert!(err.offset as usize <= at, "byte {at}: {err}");
            }
        }
    }

    #[test]
    fn a_stale_batch_with_the_wrong_sequence_ends_the_journal() {
        let mut file = batch(3, &[("meta/a", b"x")], &[]);
        file.extend(batch(3, &[("meta/a", b"y")], &[]));
        let second = file.len() / 2;
        let journal = read(Bytes::from(file)).unwrap();
        assert_eq!(journal.last_sequence, Some(3));
        assert_eq!(journal.operations.len(), 1);
        assert_eq!(journal.torn_bytes as usize, second);
    }
}
