//! The journal as the object store MetaStore writes through: operations go
//! to the journal, reads and listings see the journal's objects first and
//! the directory's after.
use super::{Journal, Stored};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result, UploadPart, path::Path,
};
use std::{collections::HashSet, ops::Range, sync::Arc};

/// A directory store's objects, behind its journal.
#[derive(Debug, Clone)]
pub(crate) struct JournalStore(pub(crate) Arc<Journal>);

impl std::fmt::Display for JournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JournalStore({})", self.0.root.display())
    }
}

pub(super) fn not_found(path: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: "deleted".into(),
    }
}

fn object_meta(path: &Path, stored: &Stored) -> ObjectMeta {
    ObjectMeta {
        location: path.clone(),
        last_modified: stored.modified,
        size: stored.data.len() as u64,
        e_tag: Some(stored.operation.to_string()),
        version: None,
    }
}

/// The directory's file for `path`, read here and now: a local read costs
/// less than handing it to a blocking thread and waking up again, which is
/// what `LocalFileSystem` does for every read.
struct DirectoryFile(std::path::PathBuf);

impl DirectoryFile {
    fn of(store: &JournalStore, path: &Path) -> Result<Self> {
        Ok(Self(store.0.backend.path_to_filesystem(path)?))
    }

    fn io_error(&self, path: &Path, err: std::io::Error) -> object_store::Error {
        if err.kind() == std::io::ErrorKind::NotFound {
            return not_found_because(path, err);
        }
        object_store::Error::Generic {
            store: "anda journal",
            source: format!("{}: {err}", self.0.display()).into(),
        }
    }

    fn meta(&self, path: &Path) -> Result<ObjectMeta> {
        let found = std::fs::metadata(&self.0).map_err(|err| self.io_error(path, err))?;
        if !found.is_file() {
            return Err(not_found(path));
        }
        Ok(ObjectMeta {
            location: path.clone(),
            last_modified: found
                .modified()
                .map(chrono::DateTime::<chrono::Utc>::from)
                .unwrap_or_default(),
            size: found.len(),
            e_tag: None,
            version: None,
        })
    }

    fn read(&self, path: &Path, range: Range<u64>) -> Result<Bytes> {
        use std::io::{Read, Seek, SeekFrom};
        let fail = |err| self.io_error(path, err);
        let mut file = std::fs::File::open(&self.0).map_err(fail)?;
        file.seek(SeekFrom::Start(range.start)).map_err(fail)?;
        let mut data = vec![0; (range.end - range.start) as usize];
        file.read_exact(&mut data).map_err(fail)?;
        Ok(Bytes::from(data))
    }
}

fn not_found_because(path: &Path, err: std::io::Error) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: Box::new(err),
    }
}

/// The bytes of an object of `size` that `options` asks for.
pub(super) fn byte_range(options: &GetOptions, size: u64) -> Result<Range<u64>> {
    match &options.range {
        Some(range) => range
            .as_range(size)
            .map_err(|source| object_store::Error::Generic {
                store: "anda journal",
                source: Box::new(source),
            }),
        None => Ok(0..size),
    }
}

/// A read answered from memory.
pub(super) fn answer(meta: ObjectMeta, range: Range<u64>, data: Bytes) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(futures::stream::once(async move { Ok(data) }).boxed()),
        meta,
        range,
        attributes: Default::default(),
        extensions: Default::default(),
    }
}

/// The two object stores of a directory store (the journal, and what is
/// held above MetaStore) take each put whole, in memory.
#[async_trait]
pub(super) trait TakesWholePuts: ObjectStore + Clone {
    async fn put_whole(&self, path: &Path, data: Bytes, mode: &PutMode) -> Result<PutResult>;
}

/// A copy: the object read, then put whole.
pub(super) async fn copy<S: TakesWholePuts>(
    store: &S,
    from: &Path,
    to: &Path,
    options: CopyOptions,
) -> Result<()> {
    let data = store.get(from).await?.bytes().await?;
    let mode = match options.mode {
        CopyMode::Overwrite => PutMode::Overwrite,
        CopyMode::Create => PutMode::Create,
    };
    store.put_whole(to, data, &mode).await.map(drop)
}

/// What is known of the object at a path without asking the disk.
enum Known {
    /// The journal holds it (`None`: deleted).
    Journaled(Option<Stored>),
    /// Neither the journal nor the directory holds it.
    Absent,
    /// The directory may hold it.
    AskTheDirectory,
}

impl JournalStore {
    fn known(&self, path: &Path) -> Known {
        match self.0.lookup(path) {
            Some(value) => Known::Journaled(value),
            None if !self.0.files.may_hold(path.as_ref()) => Known::Absent,
            None => Known::AskTheDirectory,
        }
    }

    /// Whether an object is at `path`, in the journal or the directory.
    fn exists(&self, path: &Path) -> Result<bool> {
        match self.known(path) {
            Known::Journaled(value) => Ok(value.is_some()),
            Known::Absent => Ok(false),
            Known::AskTheDirectory => match DirectoryFile::of(self, path)?.meta(path) {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(err) => Err(err),
            },
        }
    }

    /// What the journal or the directory holds at `path`.
    fn read(&self, path: &Path, options: &GetOptions) -> Result<(ObjectMeta, Range<u64>, Bytes)> {
        let (meta, stored) = match self.known(path) {
            Known::Journaled(None) => return Err(not_found(path)),
            Known::Journaled(Some(stored)) => (object_meta(path, &stored), Some(stored)),
            Known::Absent => {
                return Err(not_found_because(path, std::io::ErrorKind::NotFound.into()));
            }
            Known::AskTheDirectory => (DirectoryFile::of(self, path)?.meta(path)?, None),
        };
        options.check_preconditions(&meta)?;
        let range = byte_range(options, meta.size)?;
        let from_directory = stored.is_none();
        let data = match stored {
            _ if options.head => Bytes::new(),
            Some(stored) => stored.data.slice(range.start as usize..range.end as usize),
            None => DirectoryFile::of(self, path)?.read(path, range.clone())?,
        };
        if from_directory {
            let whole = !options.head && range == (0..meta.size);
            self.checked(path, meta.size, whole.then_some(&data))?;
        }
        Ok((meta, range, data))
    }

    /// Refuses a payload read from the directory that is not what anda
    /// wrote there (see `sums.rs`), and reports it, so that the call that
    /// read it is refused even if the engine would skip the error.
    fn checked(&self, path: &Path, size: u64, whole: Option<&Bytes>) -> Result<()> {
        let Err(damage) = self
            .0
            .sums
            .check(path.as_ref(), size, whole.map(|b| &b[..]))
        else {
            return Ok(());
        };
        let problem = damage.problem(&self.0.root.join(path.as_ref()));
        let message = crate::describe(&problem);
        crate::damage::report(problem);
        Err(object_store::Error::Generic {
            store: "anda journal",
            source: message.into(),
        })
    }

    fn put_bytes(&self, path: &Path, data: Bytes, mode: &PutMode) -> Result<PutResult> {
        match mode {
            PutMode::Overwrite => {}
            PutMode::Create => {
                if self.exists(path)? {
                    return Err(object_store::Error::AlreadyExists {
                        path: path.to_string(),
                        source: "an object is already there".into(),
                    });
                }
            }
            PutMode::Update(_) => {
                return Err(object_store::Error::NotImplemented {
                    operation: "`put_opts` with mode `PutMode::Update`".into(),
                    implementer: self.to_string(),
                });
            }
        }
        let stored = self.0.put(path, data)?;
        Ok(PutResult {
            e_tag: Some(stored.operation.to_string()),
            version: None,
            extensions: Default::default(),
        })
    }

    /// Deletes `path`. An object known to be missing (deleted in the
    /// journal, or in neither the journal nor the files account) is reported
    /// missing; one the directory may hold is deleted without asking it, as
    /// that would cost a file system call for each of a commit's many
    /// deletes (an object store may answer a delete of a missing object
    /// either way).
    fn delete_one(&self, path: Path) -> Result<Path> {
        if let Known::Journaled(None) | Known::Absent = self.known(&path) {
            return Err(not_found(&path));
        }
        self.0.delete(&path)?;
        Ok(path)
    }

    /// The directory's listing under `prefix` without what the journal
    /// holds, then the journal's objects.
    fn merged(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let journaled = self.0.under(prefix);
        let shadowed: HashSet<Path, foldhash::fast::RandomState> =
            journaled.iter().map(|(path, _)| path.clone()).collect();
        let directory = match offset {
            Some(offset) => self.0.backend.list_with_offset(prefix, offset),
            None => self.0.backend.list(prefix),
        }
        .try_filter(move |meta| futures::future::ready(!shadowed.contains(&meta.location)));
        let offset = offset.cloned();
        let journaled = journaled
            .into_iter()
            .filter_map(move |(path, value)| {
                let after = offset.as_ref().is_none_or(|offset| path > *offset);
                value
                    .filter(|_| after)
                    .map(|stored| Ok(object_meta(&path, &stored)))
            })
            .collect::<Vec<_>>();
        directory.chain(futures::stream::iter(journaled)).boxed()
    }
}

#[async_trait]
impl TakesWholePuts for JournalStore {
    async fn put_whole(&self, path: &Path, data: Bytes, mode: &PutMode) -> Result<PutResult> {
        self.put_bytes(path, data, mode)
    }
}

#[async_trait]
impl ObjectStore for JournalStore {
    async fn put_opts(
        &self,
        path: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.put_bytes(path, payload.into(), &opts.mode)
    }

    async fn put_multipart_opts(
        &self,
        path: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Ok(Upload::to(self, path))
    }

    async fn get_opts(&self, path: &Path, options: GetOptions) -> Result<GetResult> {
        let (meta, range, data) = self.read(path, &options)?;
        Ok(answer(meta, range, data))
    }

    async fn get_ranges(&self, path: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        ranges
            .iter()
            .map(|range| {
                let options = GetOptions::new().with_range(Some(GetRange::Bounded(range.clone())));
                Ok(self.read(path, &options)?.2)
            })
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let store = self.clone();
        locations
            .and_then(move |path| futures::future::ready(store.delete_one(path)))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.merged(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.merged(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let journaled = self.0.under(prefix);
        let listed = self.0.backend.list_with_delimiter(prefix).await?;
        let depth = prefix.map_or(0, |prefix| prefix.parts().count());
        let mut objects: Vec<ObjectMeta> = listed
            .objects
            .into_iter()
            .filter(|meta| !journaled.iter().any(|(path, _)| *path == meta.location))
            .collect();
        let mut common_prefixes: Vec<Path> = listed.common_prefixes;
        for (path, value) in &journaled {
            let Some(stored) = value else { continue };
            let parts: Vec<_> = path.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(object_meta(path, stored));
            } else {
                let child = Path::from_iter(parts.into_iter().take(depth + 1));
                if !common_prefixes.contains(&child) {
                    common_prefixes.push(child);
                }
            }
        }
        // A directory the journal deleted everything from is gone.
        let mut kept = Vec::with_capacity(common_prefixes.len());
        for child in common_prefixes {
            if self
                .merged(Some(&child), None)
                .next()
                .await
                .transpose()?
                .is_some()
            {
                kept.push(child);
            }
        }
        kept.sort();
        Ok(ListResult {
            common_prefixes: kept,
            objects,
            extensions: Default::default(),
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        copy(self, from, to, options).await
    }
}

/// A multipart upload, gathered in memory and taken as one put.
#[derive(Debug)]
pub(super) struct Upload<S> {
    store: S,
    path: Path,
    parts: Vec<Bytes>,
}

impl<S: TakesWholePuts> Upload<S> {
    pub(super) fn to(store: &S, path: &Path) -> Box<dyn MultipartUpload> {
        Box::new(Self {
            store: store.clone(),
            path: path.clone(),
            parts: Vec::new(),
        })
    }
}

#[async_trait]
impl<S: TakesWholePuts> MultipartUpload for Upload<S> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.parts.push(data.into());
        futures::future::ready(Ok(())).boxed()
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let data = Bytes::from(self.parts.concat());
        self.store
            .put_whole(&self.path, data, &PutMode::Overwrite)
            .await
    }

    async fn abort(&mut self) -> Result<()> {
        self.parts.clear();
        Ok(())
    }
}
